//! The MCP methods, one file per family. Each takes a [`crate::dispatch::Request`] and returns a
//! result built from the official SDK's types (`rmcp::model`).

pub mod lifecycle;
pub mod prompts;
pub mod resources;
pub mod tools;

use rmcp::model::{Implementation, ServerCapabilities};

/// How long a client may cache the static lists (tools, prompts, resources): they never change
/// while the node runs. The 2026-07-28 revision requires `ttlMs` and `cacheScope` on these
/// results (the Python SDK rejects them without); older clients ignore the extra fields.
pub const STATIC_TTL_MS: u64 = 5 * 60 * 1000;

/// What this server offers.
pub fn capabilities() -> ServerCapabilities {
    serde_json::from_value(serde_json::json!({
        "tools": {"listChanged": false},
        "resources": {"listChanged": false, "subscribe": false},
        "prompts": {"listChanged": false},
        "logging": {}
    }))
    .expect("static capabilities parse")
}

/// This server's name and version.
pub fn server_info() -> Implementation {
    Implementation::new("erlmcp-node", env!("CARGO_PKG_VERSION")).with_title("erlmcp cluster node")
}
