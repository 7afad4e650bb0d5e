//! The MCP methods, one file per family. Each takes a [`crate::dispatch::Request`] and returns a
//! result built from the official SDK's types (`rmcp::model`).

pub mod lifecycle;
pub mod prompts;
pub mod resources;
pub mod tools;

use rmcp::model::{Implementation, ServerCapabilities};

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
