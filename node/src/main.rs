//! The `erlmcp-node` binary: `serve` (the default), `stdio`, `healthcheck` and `baseline`.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
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
    Healthcheck,
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
    /// Close sessions idle this long (30s, 5m).
    #[arg(long, env = "ERLMCP_IDLE_TIMEOUT", default_value = "300s", value_parser = parse_duration, global = true)]
    idle_timeout: Duration,
    /// Longest accepted line in bytes.
    #[arg(long, env = "ERLMCP_MAX_LINE_BYTES", default_value_t = 1 << 20, global = true)]
    max_line_bytes: usize,
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
    /// Log level: error, warn, info, debug, trace.
    #[arg(long, env = "ERLMCP_LOG", default_value = "info", global = true)]
    log_level: tracing::Level,
}

impl ServeArgs {
    fn config(&self) -> Result<NodeConfig, String> {
        let role = match self.role.as_str() {
            "coordinator" => Role::Coordinator,
            "worker" => Role::Worker,
            other => return Err(format!("--role must be coordinator or worker, not {other}")),
        };
        if self.heartbeat_interval.is_zero() {
            return Err("--heartbeat-interval must be above zero".into());
        }
        if self.dead_after <= self.heartbeat_interval {
            return Err(format!(
                "--dead-after ({:?}) must exceed --heartbeat-interval ({:?}), or every member flaps",
                self.dead_after, self.heartbeat_interval
            ));
        }
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
            seeds: self
                .seeds
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            idle_timeout: self.idle_timeout,
            max_line_bytes: self.max_line_bytes,
            drain_timeout: self.drain_timeout,
            backlog: self.backlog,
            heartbeat_interval: self.heartbeat_interval,
            dead_after: self.dead_after,
        })
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
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if let Some(Command::Healthcheck) = cli.command {
        let addr = SocketAddr::from(([127, 0, 0, 1], cli.serve.api_port));
        let healthy = erlmcp_node::healthcheck::check(addr, Duration::from_secs(2));
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
                let server = erlmcp_node::server::Server::bind(config)?;
                server.run(erlmcp_node::server::termination()).await
            }
            Some(Command::Stdio) => {
                erlmcp_node::stdio::serve(erlmcp_node::state::NodeState::new(config)).await
            }
            Some(Command::Baseline { bind, port }) => {
                erlmcp_node::baseline::serve(SocketAddr::new(bind, port), config.backlog).await
            }
            Some(Command::Healthcheck) => unreachable!("handled above"),
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
