//! erlmcp-gen: turn one reviewed TOML file into a running, observable, load-tested MCP cluster.
//!
//! # Layout
//! - [`config`]: the cluster file: raw shape, resolved model, units, the wording of its problems.
//! - [`diagnostic`]: findings that point at `file:line:column` with a caret and a hint.
//! - [`validate`]: semantic checks of a resolved cluster.
//! - [`host`]: the facts of this machine that bound a plan (`validate --host`).
//! - [`render`]: templates → `generated/` (compose, Prometheus, Colima script, Dockerfiles).

pub mod config;
pub mod diagnostic;
pub mod host;
pub mod render;
pub mod validate;
