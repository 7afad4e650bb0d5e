//! The MCP methods, one file per family. Each takes a [`Request`] and returns a result built
//! from the official SDK's types (`rmcp::model`), serialized once into a [`JsonText`].

pub mod lifecycle;
pub mod prompts;
pub mod resources;
pub mod tools;

use rmcp::model::{Implementation, ServerCapabilities};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::jsonrpc::{ErrorObject, Id, JsonText};
use crate::long_task::LongTask;
use crate::state::NodeState;

/// A method's view of one request.
pub struct Request<'a> {
    /// The request's id.
    pub id: &'a Id<'a>,
    /// Raw params, if any.
    pub params: Option<&'a RawValue>,
    /// The node.
    pub node: &'a NodeState,
}

impl Request<'_> {
    /// Parses the params into `T` (an rmcp model type, usually); absent params parse as `{}`.
    pub fn params<'de, T: Deserialize<'de>>(&'de self) -> Result<T, ErrorObject> {
        let text = self.params.map_or("{}", RawValue::get);
        serde_json::from_str(text)
            .map_err(|e| ErrorObject::invalid_params(format!("invalid params: {e}")))
    }
}

/// What a method produced: a result, or a request that runs on.
pub enum MethodReply {
    /// A result.
    Result(JsonText),
    /// A long-running request.
    Long(LongTask),
}

/// A method's answer: what it produced, or the JSON-RPC error it fails with.
pub type MethodResult = Result<MethodReply, ErrorObject>;

/// Serializes a result value.
pub fn to_result(value: &impl serde::Serialize) -> MethodResult {
    JsonText::of(value).map(MethodReply::Result)
}

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
