//! The command line: clap types only. `main.rs` maps each subcommand to a `cmd_*` function.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use erlmcp_gen::config::model::Transport;
use erlmcp_gen::config::units::HumanDuration;
use erlmcp_gen::stress::find_max::RateStep;
use erlmcp_gen::stress_command::WorkersOn;

/// Validate, render, run and load-test a cluster of MCP servers described in one TOML file.
#[derive(Debug, Parser)]
#[command(
    name = "erlmcp-gen",
    version,
    about,
    propagate_version = true,
    after_help = erlmcp_gen::output::exit_code_table()
)]
pub struct Cli {
    /// When to color output: auto (on a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always, even when piped.
    Always,
    /// Never.
    Never,
}

impl From<ColorArg> for erlmcp_gen::terminal::ColorChoice {
    fn from(arg: ColorArg) -> Self {
        match arg {
            ColorArg::Auto => Self::Auto,
            ColorArg::Always => Self::Always,
            ColorArg::Never => Self::Never,
        }
    }
}

/// Output format for machine readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// One JSON document on stdout (with `schema_version`), nothing else there.
    Json,
}

impl From<Format> for erlmcp_gen::output::Format {
    fn from(format: Format) -> Self {
        match format {
            Format::Text => Self::Text,
            Format::Json => Self::Json,
        }
    }
}

/// `--format`, the same on every subcommand.
#[derive(Debug, Clone, Copy, Args)]
pub struct FormatArg {
    /// Output format: text for people, json for tools (results on stdout, progress on stderr).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Old spelling of `--format json`.
    #[arg(long, hide = true)]
    json: bool,
}

impl FormatArg {
    /// The format asked for.
    pub fn get(self) -> erlmcp_gen::output::Format {
        if self.json {
            erlmcp_gen::output::Format::Json
        } else {
            self.format.into()
        }
    }
}

/// A shell `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Which runtime to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// The Docker engine (Colima's socket for a Colima cluster).
    Docker,
    /// Local processes.
    Native,
    /// Docker Swarm services (the engine must be a swarm manager).
    Swarm,
}

/// Options every runtime command shares.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// The cluster file.
    pub cluster: PathBuf,
    /// Override the cluster file's runtime (a Docker cluster falls back to native only when not given).
    #[arg(long, value_enum)]
    pub runtime: Option<RuntimeChoice>,
    /// Print no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Output format.
    #[command(flatten)]
    pub format: FormatArg,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a cluster file: syntax, types, unknown keys and semantics (exit 0 valid, 3 invalid,
    /// 4 when `--host` finds this machine cannot run it).
    Validate {
        /// The cluster file (`clusters/colima.toml`).
        cluster: PathBuf,
        /// Also judge this machine: Docker engine, open-file limits, ports, backlog, CPUs, memory.
        #[arg(long)]
        host: bool,
        /// With --host: measure what a loopback connection costs the kernel (opens 3 × 2,000
        /// loopback connection pairs for about a second, then closes them).
        #[arg(long, requires = "host")]
        probe: bool,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Render the compose file, Prometheus config, Colima script and Dockerfiles.
    Render {
        /// The cluster file.
        cluster: PathBuf,
        /// Output directory.
        #[arg(short = 'o', long = "out", default_value = "generated")]
        out: PathBuf,
        /// Write nothing; exit 5 with a diff when the output directory is stale.
        #[arg(long)]
        check: bool,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Show what `apply` would change (exit 0 either way; 2 for changes with --detailed-exitcode).
    Plan {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Exit 2 when apply would change something (as terraform's -detailed-exitcode).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Build the image and make the runtime match the cluster file, health-gated.
    Apply {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// How long each node may take to become healthy.
        #[arg(long, default_value = "60s")]
        health_timeout: HumanDuration,
        /// Start containers without waiting for them to become healthy.
        #[arg(long)]
        no_wait: bool,
    },
    /// Per node: state, health, uptime, connections, RSS; and Prometheus's targets.
    Status {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Refresh every 2 s (with --format json: one compact document per line).
        #[arg(long)]
        watch: bool,
        /// With --watch: stop after this long.
        #[arg(long, default_value = "1h")]
        watch_for: HumanDuration,
    },
    /// Load the running cluster: ramp to N MCP sessions, drive echo at an open-model rate, and
    /// write CSV files, summary.json/txt and report.html (exit 99 when the SLO is breached).
    Stress {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Concurrent sessions (default: the file's `[stress] connections`).
        #[arg(long)]
        connections: Option<u32>,
        /// Hold time after the ramp (default: `[stress] duration`).
        #[arg(long)]
        duration: Option<HumanDuration>,
        /// Linear ramp time (default: `[stress] ramp`).
        #[arg(long)]
        ramp: Option<HumanDuration>,
        /// Total echo requests per second (default: `[stress] rate`).
        #[arg(long)]
        rate: Option<f64>,
        /// How sessions talk to the nodes (default: `[stress] transport`): tcp, or http
        /// (Streamable HTTP at each node's /mcp; the baseline stays bare TCP echo).
        #[arg(long, value_enum)]
        transport: Option<Transport>,
        /// Output directory (default: results/<cluster>-<UTC time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Skip the bare echo baseline.
        #[arg(long)]
        no_baseline: bool,
        /// Sessions per load-generator process (each session is an open file).
        #[arg(long, default_value_t = erlmcp_gen::stress::DEFAULT_SESSIONS_PER_WORKER)]
        sessions_per_worker: u32,
        /// Where load workers run: `network` = containers on a Docker cluster's network, or
        /// Swarm jobs on a swarm's overlay (auto's choice for both: no userland proxy in the
        /// path), `host` = processes on this machine.
        #[arg(long, value_enum, default_value = "auto")]
        workers: WorkersOn,
        /// Run the profile on two runtimes and report the second's overhead, e.g. native,docker.
        #[arg(long, value_enum, value_delimiter = ',')]
        compare: Vec<RuntimeChoice>,
        /// Step the rate up (a short baseline and cluster run per step) until the cluster breaks
        /// the SLO or falls more than 5 % behind; writes find-max.txt and find-max.csv.
        #[arg(long, conflicts_with = "compare")]
        find_max: bool,
        /// With --find-max: the first step's rate (default: --rate, else `[stress] rate`).
        #[arg(long, requires = "find_max")]
        start: Option<f64>,
        /// With --find-max: how the rate grows each step, `5000` (add) or `x1.5` (multiply);
        /// default x2.
        #[arg(long, requires = "find_max")]
        step: Option<RateStep>,
        /// With --find-max: the highest rate to offer (default 16 × --start; at most 24 steps).
        #[arg(long, requires = "find_max")]
        max: Option<f64>,
        /// With --find-max: go on past the cluster's first broken step until the baseline
        /// itself falls behind (or --max), to measure cluster/baseline at the rate where the
        /// generator and the machine run out; needs the baseline.
        #[arg(long, requires = "find_max", conflicts_with = "no_baseline")]
        until_baseline_behind: bool,
    },
    /// Internal: one load-generator worker process of `stress` (shard spec on stdin).
    #[command(hide = true)]
    StressWorker {
        /// Read the shard spec from ERLMCP_STRESS_SHARD and start at its start time (a Swarm
        /// job has no stdin); always exits 0, reporting a failure as an event.
        #[arg(long)]
        shard_from_env: bool,
    },
    /// Remove the cluster's containers (or processes) and network; volumes only with --volumes.
    Down {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Also remove the volumes (Prometheus's data).
        #[arg(long)]
        volumes: bool,
    },
    /// Every node's log lines, prefixed with its name and merged in time order.
    Logs {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Only these nodes (`node1`, …, or `prometheus`); default: every node.
        nodes: Vec<String>,
        /// Keep printing new lines until Ctrl-C.
        #[arg(long, short)]
        follow: bool,
        /// Only the last N lines of each node (at most 100000).
        #[arg(long, short = 'n')]
        tail: Option<usize>,
        /// Only lines newer than this (`10m`, `1h30m`).
        #[arg(long)]
        since: Option<HumanDuration>,
        /// Print each line's time before it.
        #[arg(long, short)]
        timestamps: bool,
        /// Include Prometheus's log.
        #[arg(long)]
        prometheus: bool,
    },
    /// Write a commented cluster file sized for this machine (open-file limit, CPUs, ports).
    Init {
        /// Concurrent sessions the cluster should hold (default: what this machine can hold,
        /// at most 10000).
        #[arg(long)]
        connections: Option<u32>,
        /// Runtime the file asks for.
        #[arg(long, value_enum, default_value_t = RuntimeChoice::Docker)]
        runtime: RuntimeChoice,
        /// Cluster name.
        #[arg(long, default_value = "local")]
        name: String,
        /// Where to write it (`-` for stdout); an existing file is kept unless --force.
        #[arg(short = 'o', long = "out", default_value = "cluster.toml")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
        /// Output format.
        #[command(flatten)]
        format: FormatArg,
    },
    /// Print a shell completion script: `erlmcp-gen completions bash > /etc/bash_completion.d/erlmcp-gen`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: ShellArg,
        /// Output format (json: the script in a document's `script` field).
        #[command(flatten)]
        format: FormatArg,
    },
    /// Print the man page (roff): `erlmcp-gen man > erlmcp-gen.1`.
    Man {
        /// Output format (json: the page in a document's `roff` field).
        #[command(flatten)]
        format: FormatArg,
    },
}
