//! erlmcp-gen: turn one reviewed TOML file into a running, observable, load-tested MCP cluster.
//!
//! # Layout
//! (filled in as modules land)
