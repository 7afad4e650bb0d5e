//! erlmcp-gen: turn one reviewed TOML file into a running, observable, load-tested MCP cluster.
//!
//! # Layout
//! - [`config`]: the cluster file: raw shape, resolved model, units, the wording of its problems.
//! - [`deploy_spec`]: each node's deployment (env contract, ports, limits, labels, secret) and
//!   Prometheus's, computed once; the compose template and every runtime read it.
//! - [`diagnostic`]: findings that point at `file:line:column` with a caret and a hint
//!   (rendered by annotate-snippets).
//! - [`validate`]: semantic checks of a resolved cluster.
//! - [`host`]: the facts of this machine that bound a plan (`validate --host`).
//! - [`inherited_descriptors`]: descriptors a parent handed us never reach the processes we
//!   start (native nodes outlive `apply`).
//! - [`init`]: a commented cluster file sized for this machine (`init`).
//! - [`logs`]: `logs`: every node's lines, prefixed with its name, merged in time order.
//! - [`metrics_collection`]: whether anything provides Prometheus; a cluster without it says so.
//! - [`output`]: the output contract: JSON documents, stdout/stderr, the exit code table.
//! - [`plan`]: the pure planner: desired vs observed resources → create/recreate/remove.
//! - [`engine`]: the runtimes that carry a plan out: Docker (bollard) and native processes.
//! - [`probe`]: tiny HTTP GETs for health, metrics and Prometheus's API.
//! - [`progress`]: spinners on a terminal, plain lines elsewhere, nothing when quiet.
//! - [`render`]: templates → `generated/` (compose, Prometheus, Colima script, Dockerfiles), each
//!   value escaped for the language it lands in.
//! - [`stress`]: the load generator behind `erlmcp-gen stress` (sessions, workers, pacing, stats).
//! - [`stress_command`]: `stress` against a running cluster: targets, baselines, `--compare`.
//! - [`report`]: the files a stress run writes (CSV, summary, HTML with SVG charts).
//! - [`terminal`]: the one place output gets (or loses) color: `--color`, `NO_COLOR`, pipes.

pub mod config;
pub mod deploy_spec;
pub mod diagnostic;
pub mod engine;
pub mod engine_probe;
pub mod host;
pub mod inherited_descriptors;
pub mod init;
pub mod logs;
pub mod metrics_collection;
pub mod output;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod render;
pub mod report;
pub mod stress;
pub mod stress_command;
pub mod terminal;
pub mod validate;
