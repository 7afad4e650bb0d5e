//! The command line: clap types only. `main.rs` maps each subcommand to a `cmd_*` function.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use erlmcp_gen::config::model::Transport;
use erlmcp_gen::config::units::HumanDuration;
use erlmcp_gen::stress_command::WorkersOn;

/// Validate, render, run and load-test a cluster of MCP servers described in one TOML file.
#[derive(Debug, Parser)]
#[command(name = "erlmcp-gen", version, about, propagate_version = true)]
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
    /// For tools.
    Json,
}

/// Which runtime to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RuntimeChoice {
    /// The Docker engine (Colima's socket for a Colima cluster).
    Docker,
    /// Local processes.
    Native,
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
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a cluster file: syntax, types, unknown keys and semantics (exit 0 valid, 1 invalid).
    Validate {
        /// The cluster file (`clusters/colima.toml`).
        cluster: PathBuf,
        /// Also judge this machine: Docker engine, open-file limits, ports, backlog, CPUs, memory.
        #[arg(long)]
        host: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Render the compose file, Prometheus config, Colima script and Dockerfiles.
    Render {
        /// The cluster file.
        cluster: PathBuf,
        /// Output directory.
        #[arg(short = 'o', long = "out", default_value = "generated")]
        out: PathBuf,
        /// Write nothing; fail with a diff when the output directory is stale.
        #[arg(long)]
        check: bool,
    },
    /// Show what `apply` would change (exit 0: nothing, 2: changes, 1: error).
    Plan {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
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
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Refresh every 2 s.
        #[arg(long)]
        watch: bool,
        /// With --watch: stop after this long.
        #[arg(long, default_value = "1h")]
        watch_for: HumanDuration,
    },
    /// Load the running cluster: ramp to N MCP sessions, drive echo at an open-model rate, and
    /// write CSV files, summary.json/txt and report.html (exit 1 when the SLO is breached).
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
        #[arg(long, default_value_t = 16_000)]
        sessions_per_worker: u32,
        /// Where load workers run: `network` = containers on a Docker cluster's network (auto's
        /// choice for Docker: no userland proxy in the path), `host` = processes on this machine.
        #[arg(long, value_enum, default_value = "auto")]
        workers: WorkersOn,
        /// Run the profile on two runtimes and report the second's overhead, e.g. native,docker.
        #[arg(long, value_enum, value_delimiter = ',')]
        compare: Vec<RuntimeChoice>,
    },
    /// Internal: one load-generator worker process of `stress` (shard spec on stdin).
    #[command(hide = true)]
    StressWorker,
    /// Remove the cluster's containers (or processes) and network; volumes only with --volumes.
    Down {
        /// Cluster file and runtime.
        #[command(flatten)]
        runtime: RuntimeArgs,
        /// Also remove the volumes (Prometheus's data).
        #[arg(long)]
        volumes: bool,
    },
}
