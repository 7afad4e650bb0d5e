//! erlmcp-node: the MCP server every cluster node runs.
//!
//! # Layout
//! - [`config`]: the node's settings (flags and `ERLMCP_*` variables map onto them).
//! - [`framing`]: newline-delimited JSON-RPC: complete lines out of a byte stream, bounded.
//! - [`jsonrpc`]: JSON-RPC 2.0 messages: ids, incoming requests/notifications/batches, outgoing
//!   responses and notifications (serialized once), error codes.
//! - [`fd_limit`]: the open-file limit against the config: raise the soft limit, clamp
//!   `max_connections`.
//! - [`session`]: one MCP session's few bytes of state (phase, protocol version, log level).
//! - [`dispatch`]: the MCP dispatcher: one JSON-RPC message (or batch) in, a typed reply out.
//! - [`methods`]: the MCP methods, one file per family (lifecycle, tools, resources, prompts);
//!   they see [`jsonrpc`] types and the node, never the dispatcher.
//! - [`long_task`]: requests that outlive their dispatch (`sleep_ms`): progress and cancellation.
//! - [`metrics`]: Prometheus metrics and the rolling p99.
//! - [`state`]: the shared node handle: config, metrics, drain flag, HTTP sessions, members.
//! - [`membership`]: the member table: records heard directly, dated second-hand word,
//!   liveness, learned addresses.
//! - [`fanout`]: which seeds and members one heartbeat round goes to (bounded, partly random).
//! - [`placement`]: which live member with room takes a new session (lowest load ratio).
//! - [`peer`]: the pooled HTTP client a node reaches other nodes' API ports with.
//! - [`heartbeat`]: the loop that POSTs this node's record to its fan-out every interval.
//! - [`cluster_secret`]: the cluster secret and the HMACs that authenticate heartbeats and replies.
//! - [`cluster_api`]: `/cluster`, `/cluster/placement` and `POST /cluster/heartbeat`.
//! - [`proxy`]: the coordinator forwards new `/mcp` sessions to the placed node, and their
//!   later requests (session ids `<node>~<id>`) to it.
//! - [`rebinding`]: DNS-rebinding protection: the exact `Host`/`Origin` values the API port answers.
//! - [`tcp`]: the MCP-over-TCP listener: admission, accept loop, lean per-connection loop.
//! - [`api_listener`]: the API port's connections: connection cap and probe reserve, header
//!   and body read timeouts, shutdown.
//! - [`api_connection`]: one API connection: hyper serves its requests; between them it is
//!   parked with nothing but its socket.
//! - [`write_deadline`]: the API port's write timeout (a socket wrapper; hyper has none).
//! - [`counted_io`]: a socket wrapper that counts bytes in and out for the network metrics.
//! - [`http`]: the API port: Streamable HTTP at `/mcp`, `/health`, `/ready`, `/metrics`.
//! - [`stdio`]: one MCP session over stdin/stdout.
//! - [`server`]: runs the listeners together until shutdown, then drains.
//! - [`baseline`]: a bare newline echo server, the yardstick benchmarks compare against.
//! - [`healthcheck`]: `erlmcp-node healthcheck`, the image's HEALTHCHECK (no curl in `scratch`).
//! - [`limits`]: `erlmcp-node limits`, the limits a node meets where it runs, as JSON (the probe
//!   `validate --host` runs on a remote engine).

pub mod api_connection;
pub mod api_listener;
pub mod baseline;
pub mod cluster_api;
pub mod cluster_secret;
pub mod config;
pub mod counted_io;
pub mod dispatch;
pub mod fanout;
pub mod fd_limit;
pub mod framing;
pub mod healthcheck;
pub mod heartbeat;
pub mod http;
pub mod jsonrpc;
pub mod limits;
pub mod long_task;
pub mod membership;
pub mod methods;
pub mod metrics;
pub mod peer;
pub mod placement;
pub mod process_metrics;
pub mod proxy;
pub mod rebinding;
pub mod server;
pub mod session;
pub mod state;
pub mod stdio;
pub mod tcp;
pub mod write_deadline;
