//! erlmcp-gen: turn one reviewed TOML file into a running, observable, load-tested MCP cluster.
//!
//! # Layout
//! - `stress`: the load generator behind `erlmcp-gen stress` (sessions, workers, pacing, stats).
//! - `report`: the files a stress run writes (CSV, summary, HTML with SVG charts).

pub mod report;
pub mod stress;
