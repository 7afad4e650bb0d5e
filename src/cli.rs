//! The command line: clap types only. `main.rs` maps each subcommand to a `cmd_*` function.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Validate, render, run and load-test a cluster of MCP servers described in one TOML file.
#[derive(Debug, Parser)]
#[command(name = "erlmcp-gen", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format for machine readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For tools.
    Json,
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
}
