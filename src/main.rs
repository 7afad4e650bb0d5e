//! The `erlmcp-gen` binary: a thin shell over the library.

use clap::{Parser, Subcommand};

/// Validate, render, run and load-test a cluster of MCP servers described in one TOML file.
#[derive(Debug, Parser)]
#[command(name = "erlmcp-gen", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Internal: one load-generator worker process of `stress` (shard spec on stdin).
    #[command(hide = true)]
    StressWorker,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Some(Command::StressWorker) => erlmcp_gen::stress::worker_main(),
        None => Ok(()),
    }
}
