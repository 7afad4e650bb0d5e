//! The `erlmcp-node` binary: `serve` (the default), `stdio`, `healthcheck`, `limits` and
//! `baseline`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use erlmcp_node::cluster_secret::{ClusterSecret, MembershipAuth};
use erlmcp_node::config::{NodeConfig, Role, parse_duration};

/// The MCP server every erlmcp cluster node runs.
#[derive(Debug, Parser)]
#[command(name = "erlmcp-node", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve MCP over TCP and Streamable HTTP (the default).
    Serve,
    /// Serve one MCP session over stdin/stdout.
    Stdio,
    /// Exit 0 when this node's /health answers 200 within 2 s, else 1 (the image's HEALTHCHECK).
    Healthcheck {
        /// Ask this plain-HTTP URL on an IP address instead (e.g. Prometheus's
        /// http://127.0.0.1:9090/-/ready, whose image has no wget).
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the limits a node meets here (open files, port range, listen backlog, the kernel's
    /// open-file ceilings, CPUs) as one JSON line: the probe `erlmcp-gen validate --host` runs
    /// in a container on a remote engine.
    Limits,
    /// A bare newline echo server: the baseline benchmarks compare against.
    Baseline {
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// Port.
        #[arg(long)]
        port: u16,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Cluster name (labels only).
    #[arg(long, env = "ERLMCP_CLUSTER", default_value = "erlmcp", global = true)]
    cluster: String,
    /// This node's name.
    #[arg(long, env = "ERLMCP_NODE_NAME", global = true)]
    node_name: Option<String>,
    /// coordinator or worker.
    #[arg(long, env = "ERLMCP_ROLE", default_value = "worker", global = true)]
    role: String,
    /// Address both listeners bind.
    #[arg(long, env = "ERLMCP_BIND", default_value = "0.0.0.0", global = true)]
    bind: IpAddr,
    /// HTTP API port: /mcp, /health, /ready, /metrics.
    #[arg(long, env = "ERLMCP_API_PORT", default_value_t = 8080, global = true)]
    api_port: u16,
    /// MCP-over-TCP port.
    #[arg(
        long,
        env = "ERLMCP_LISTENER_PORT",
        default_value_t = 9100,
        global = true
    )]
    listener_port: u16,
    /// Sessions beyond which new connections get an error and are closed.
    #[arg(
        long,
        env = "ERLMCP_MAX_CONNECTIONS",
        default_value_t = 25_000,
        global = true
    )]
    max_connections: usize,
    /// Other nodes' host:api_port, comma-separated.
    #[arg(long, env = "ERLMCP_SEEDS", default_value = "", global = true)]
    seeds: String,
    /// The host other nodes reach this node at (default: the node name).
    #[arg(long, env = "ERLMCP_ADVERTISE_HOST", global = true)]
    advertise_host: Option<String>,
    /// Extra Host/Origin names the API port answers besides loopback (comma-separated).
    #[arg(long, env = "ERLMCP_ALLOWED_HOSTS", default_value = "", global = true)]
    allowed_hosts: String,
    /// Close sessions idle this long (30s, 5m).
    #[arg(long, env = "ERLMCP_IDLE_TIMEOUT", default_value = "300s", value_parser = parse_duration, global = true)]
    idle_timeout: Duration,
    /// Longest accepted line in bytes.
    #[arg(long, env = "ERLMCP_MAX_LINE_BYTES", default_value_t = 1 << 20, global = true)]
    max_line_bytes: usize,
    /// Most messages in one JSON-RPC batch (only revision 2025-03-26 has batches).
    #[arg(long, env = "ERLMCP_MAX_BATCH", default_value_t = 64, global = true)]
    max_batch: usize,
    /// Bytes of unfinished lines all connections together may hold.
    #[arg(long, env = "ERLMCP_INPUT_BUDGET_BYTES", default_value_t = 64 << 20, global = true)]
    input_budget_bytes: usize,
    /// A started TCP line, HTTP header block or body must arrive within this (slowloris), and a
    /// new HTTP connection's first request must start within it.
    #[arg(long, env = "ERLMCP_READ_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    read_timeout: Duration,
    /// Close an HTTP keep-alive connection idle this long after a response (default: the idle
    /// timeout, so an HTTP session's connection lasts as long as a TCP session may idle).
    #[arg(long, env = "ERLMCP_KEEP_ALIVE_TIMEOUT", value_parser = parse_duration, global = true)]
    keep_alive_timeout: Option<Duration>,
    /// A client that does not read a reply within this is disconnected, its requests cancelled.
    #[arg(long, env = "ERLMCP_WRITE_TIMEOUT", default_value = "30s", value_parser = parse_duration, global = true)]
    write_timeout: Duration,
    /// Long requests (sleep_ms) one session may run at once.
    #[arg(
        long,
        env = "ERLMCP_MAX_IN_FLIGHT",
        default_value_t = 32,
        global = true
    )]
    max_in_flight: usize,
    /// Messages queued for one session's long requests (progress beyond it is dropped).
    #[arg(
        long,
        env = "ERLMCP_OUTBOUND_QUEUE",
        default_value_t = 64,
        global = true
    )]
    outbound_queue: usize,
    /// HTTP connections open at once on the API port (default: --max-connections, since every
    /// Streamable HTTP client keeps one open); they share the open-file limit with TCP sessions.
    #[arg(long, env = "ERLMCP_MAX_HTTP_CONNECTIONS", global = true)]
    max_http_connections: Option<usize>,
    /// Further HTTP connections kept for /health, /ready and /metrics.
    #[arg(
        long,
        env = "ERLMCP_PROBE_CONNECTIONS",
        default_value_t = 16,
        global = true
    )]
    probe_connections: usize,
    /// How long SIGTERM waits for in-flight requests.
    #[arg(long, env = "ERLMCP_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    drain_timeout: Duration,
    /// Listen backlog (capped by net.core.somaxconn).
    #[arg(long, env = "ERLMCP_BACKLOG", default_value_t = 4096, global = true)]
    backlog: u32,
    /// How often the node heartbeats every seed and known member (500ms, 1s).
    #[arg(long, env = "ERLMCP_HEARTBEAT_INTERVAL", default_value = "1s", value_parser = parse_duration, global = true)]
    heartbeat_interval: Duration,
    /// A member not heard from directly this long is marked dead (must exceed the interval).
    #[arg(long, env = "ERLMCP_DEAD_AFTER", default_value = "3s", value_parser = parse_duration, global = true)]
    dead_after: Duration,
    /// A dead member silent this long is dropped from the member table (10m, 1h).
    #[arg(long, env = "ERLMCP_FORGET_DEAD_AFTER", default_value = "10m", value_parser = parse_duration, global = true)]
    forget_dead_after: Duration,
    /// Heartbeats sent further than this from now are refused (replay window, clock skew).
    #[arg(long, env = "ERLMCP_HEARTBEAT_MAX_SKEW", default_value = "30s", value_parser = parse_duration, global = true)]
    heartbeat_max_skew: Duration,
    /// File holding the cluster secret that authenticates heartbeats (one line, >= 32 bytes).
    #[arg(long, env = "ERLMCP_CLUSTER_SECRET_FILE", global = true)]
    cluster_secret_file: Option<PathBuf>,
    /// Without a secret, accept and send unauthenticated heartbeats (tests and development only).
    #[arg(long, env = "ERLMCP_INSECURE_OPEN_MEMBERSHIP", global = true)]
    insecure_open_membership: bool,
    /// Pass Authorization, Cookie and Proxy-Authorization through the /mcp proxy.
    #[arg(long, env = "ERLMCP_PROXY_FORWARD_CREDENTIALS", global = true)]
    proxy_forward_credentials: bool,
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, env = "ERLMCP_LOG", default_value = "info", global = true)]
    log_level: tracing::Level,
}

impl ServeArgs {
    /// The keep-alive timeout, which defaults to the idle timeout.
    fn keep_alive_timeout(&self) -> Duration {
        self.keep_alive_timeout.unwrap_or(self.idle_timeout)
    }

    fn config(&self) -> Result<NodeConfig, String> {
        let role = match self.role.as_str() {
            "coordinator" => Role::Coordinator,
            "worker" => Role::Worker,
            other => return Err(format!("--role must be coordinator or worker, not {other}")),
        };
        if self.heartbeat_interval.is_zero() {
            return Err("--heartbeat-interval must be above zero".into());
        }
        for (flag, value) in [
            ("--read-timeout", self.read_timeout),
            ("--write-timeout", self.write_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--keep-alive-timeout", self.keep_alive_timeout()),
        ] {
            if value.is_zero() {
                return Err(format!("{flag} must be above zero"));
            }
        }
        if self.dead_after <= self.heartbeat_interval {
            return Err(format!(
                "--dead-after ({:?}) must exceed --heartbeat-interval ({:?}), or every member flaps",
                self.dead_after, self.heartbeat_interval
            ));
        }
        if self.forget_dead_after <= self.dead_after {
            return Err(format!(
                "--forget-dead-after ({:?}) must exceed --dead-after ({:?})",
                self.forget_dead_after, self.dead_after
            ));
        }
        if self.heartbeat_max_skew.is_zero() || self.heartbeat_max_skew >= self.forget_dead_after {
            return Err(format!(
                "--heartbeat-max-skew ({:?}) must be above zero and below --forget-dead-after ({:?}), \
                 or a heartbeat captured before a member was forgotten could be replayed",
                self.heartbeat_max_skew, self.forget_dead_after
            ));
        }
        let membership = self.membership()?;
        let node_name = self
            .node_name
            .clone()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
            })
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "node".into());
        let seeds: Vec<String> = self
            .seeds
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if !seeds.is_empty() && !membership.is_enabled() {
            return Err(
                "--seeds needs --cluster-secret-file (ERLMCP_CLUSTER_SECRET_FILE), or \
                 --insecure-open-membership for tests: without a secret anyone who reaches the \
                 API port could join"
                    .into(),
            );
        }
        Ok(NodeConfig {
            cluster: self.cluster.clone(),
            advertise_host: self
                .advertise_host
                .clone()
                .unwrap_or_else(|| node_name.clone()),
            node_name,
            role,
            bind: self.bind,
            api_port: self.api_port,
            listener_port: self.listener_port,
            max_connections: self.max_connections,
            connection_descriptors: usize::MAX,
            allowed_hosts: self
                .allowed_hosts
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            seeds,
            idle_timeout: self.idle_timeout,
            max_line_bytes: self.max_line_bytes,
            max_batch: self.max_batch,
            input_budget_bytes: self.input_budget_bytes,
            read_timeout: self.read_timeout,
            keep_alive_timeout: self.keep_alive_timeout(),
            write_timeout: self.write_timeout,
            max_in_flight_per_session: self.max_in_flight,
            outbound_queue: self.outbound_queue,
            max_http_connections: self.max_http_connections.unwrap_or(self.max_connections),
            probe_connections: self.probe_connections,
            drain_timeout: self.drain_timeout,
            backlog: self.backlog,
            heartbeat_interval: self.heartbeat_interval,
            dead_after: self.dead_after,
            forget_dead_after: self.forget_dead_after,
            membership,
            replay_window: self.heartbeat_max_skew,
            proxy_forward_credentials: self.proxy_forward_credentials,
        })
    }

    /// A secret file, or the explicit opt-out, or membership off.
    fn membership(&self) -> Result<MembershipAuth, String> {
        match (&self.cluster_secret_file, self.insecure_open_membership) {
            (Some(_), true) => Err(
                "--cluster-secret-file and --insecure-open-membership exclude each other".into(),
            ),
            (Some(path), false) => ClusterSecret::from_file(path).map(MembershipAuth::Secret),
            (None, true) => Ok(MembershipAuth::InsecureOpen),
            (None, false) => Ok(MembershipAuth::Disabled),
        }
    }
}

/// The command line, with `healthcheck` and `baseline` listing only their own flags: the serve
/// flags are global (so `stdio --node-name x` works) and still accepted there, but hidden.
fn command() -> clap::Command {
    let serve_flags: Vec<clap::Arg> = Cli::command()
        .get_arguments()
        .filter(|a| a.is_global_set())
        .cloned()
        .collect();
    // clap does not propagate a global flag into a subcommand that already has one of that id.
    let own_flags_only = |shown: &'static [&'static str]| {
        let serve_flags = serve_flags.clone();
        move |mut sub: clap::Command| {
            for flag in &serve_flags {
                let id = flag.get_id().as_str();
                if !shown.contains(&id) && !sub.get_arguments().any(|a| a.get_id() == id) {
                    sub = sub.arg(flag.clone().hide(true));
                }
            }
            sub
        }
    };
    Cli::command()
        .mut_subcommand("healthcheck", own_flags_only(&["api_port"]))
        .mut_subcommand("baseline", own_flags_only(&["backlog"]))
        .mut_subcommand("limits", own_flags_only(&[]))
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if let Some(Command::Limits) = &cli.command {
        let limits = erlmcp_node::limits::read_limits();
        println!(
            "{}",
            serde_json::to_string(&limits).expect("limits serialize")
        );
        return ExitCode::SUCCESS;
    }
    if let Some(Command::Healthcheck { url }) = &cli.command {
        let (addr, path) = match url.as_deref().map(erlmcp_node::healthcheck::parse_url) {
            Some(Ok(target)) => target,
            Some(Err(message)) => {
                eprintln!("error: {message}");
                return ExitCode::FAILURE;
            }
            None => (
                SocketAddr::from(([127, 0, 0, 1], cli.serve.api_port)),
                "/health".to_string(),
            ),
        };
        let healthy = erlmcp_node::healthcheck::check_path(addr, &path, Duration::from_secs(2));
        return if healthy {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    // Logs go to stderr as JSON lines; stdout belongs to the stdio transport.
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_max_level(cli.serve.log_level)
        .init();
    let config = match cli.serve.config() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            None | Some(Command::Serve) => {
                let mut config = config;
                erlmcp_node::fd_limit::apply(&mut config);
                match config.membership {
                    MembershipAuth::Secret(_) => {
                        tracing::info!("membership: heartbeats authenticated by the cluster secret")
                    }
                    MembershipAuth::InsecureOpen => tracing::warn!(
                        "membership: OPEN (--insecure-open-membership): anyone who reaches the API port can join"
                    ),
                    MembershipAuth::Disabled => tracing::warn!(
                        "membership: disabled (no --cluster-secret-file): this node serves alone"
                    ),
                }
                let server = erlmcp_node::server::Server::bind(config)?;
                server.run(erlmcp_node::server::termination()).await
            }
            Some(Command::Stdio) => {
                erlmcp_node::stdio::serve(erlmcp_node::state::NodeState::new(config)).await
            }
            Some(Command::Baseline { bind, port }) => {
                erlmcp_node::baseline::serve(SocketAddr::new(bind, port), config.backlog).await
            }
            Some(Command::Healthcheck { .. } | Command::Limits) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %format!("{error:#}"), "exiting");
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
