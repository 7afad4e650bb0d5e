//! `initialize`, `server/discover` and `logging/setLevel`.

use rmcp::model::{DiscoverResult, InitializeRequestParams, InitializeResult, ProtocolVersion};

use super::{MethodResult, Request, to_result};
use super::{capabilities, server_info};
use crate::jsonrpc::ErrorObject;
use crate::session::{LOG_LEVELS, Phase, SUPPORTED_VERSIONS, Session, negotiate, version_index};

fn protocol_version(text: &str) -> ProtocolVersion {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .expect("a string is a protocol version")
}

/// Answers the handshake with the negotiated revision and moves the session on.
pub fn initialize(request: &Request, session: &mut Session) -> MethodResult {
    let params: InitializeRequestParams = request.params()?;
    let version = negotiate(params.protocol_version.as_str());
    session.phase = Phase::Initializing;
    session.version = version_index(version).expect("negotiate returns a supported version");
    let result = InitializeResult::new(capabilities())
        .with_server_info(server_info())
        .with_protocol_version(protocol_version(version))
        .with_instructions(format!(
            "erlmcp cluster node {}: tools echo, add, sleep_ms, cluster_status, node_info",
            request.node.config.node_name
        ));
    to_result(&result)
}

/// The stateless revision's discovery: versions and capabilities, no session.
pub fn discover(_request: &Request) -> MethodResult {
    let versions = SUPPORTED_VERSIONS
        .iter()
        .map(|v| protocol_version(v))
        .collect();
    to_result(&DiscoverResult::new(versions, capabilities()).with_server_info(server_info()))
}

/// Remembers the client's log level (this server sends no log notifications below it).
/// rmcp deprecates its type for this method (SEP-2577 retires logging), while the handshake
/// revisions this server speaks still define it, so the one field is read here.
pub fn set_level(request: &Request, session: &mut Session) -> MethodResult {
    #[derive(serde::Deserialize)]
    struct SetLevel {
        level: String,
    }
    let params: SetLevel = request.params()?;
    let index = LOG_LEVELS
        .iter()
        .position(|l| *l == params.level)
        .ok_or_else(|| {
            ErrorObject::invalid_params(format!("unknown log level: {}", params.level))
        })?;
    session.log_level = index as u8;
    to_result(&serde_json::json!({}))
}
