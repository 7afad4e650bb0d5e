//! The MCP dispatcher: one JSON-RPC line in, one [`Reply`] out. Transport-neutral: TCP, HTTP and
//! stdio all call [`dispatch`] with the session's state and write what it returns.

use std::borrow::Cow;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::long_task::LongTask;
use crate::methods;
use crate::metrics::{Outcome, method_index};
use crate::session::{Phase, STATELESS_VERSION, Session};
use crate::state::NodeState;

/// JSON-RPC error codes this server uses.
pub mod code {
    /// Malformed JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// Not a valid JSON-RPC request (or not allowed in this phase).
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Bad parameters (including unknown tools).
    pub const INVALID_PARAMS: i32 = -32602;
    /// The server failed.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Implementation-defined: the node is at capacity.
    pub const AT_CAPACITY: i32 = -32000;
    /// A resource does not exist.
    pub const RESOURCE_NOT_FOUND: i32 = -32002;
}

/// What a transport does after dispatching one message.
#[derive(Debug)]
pub enum Reply {
    /// Nothing to send (a notification).
    None,
    /// One JSON-RPC message to send (no trailing newline).
    Message(Vec<u8>),
    /// A request that runs on (progress, cancellation): the transport runs it.
    Long(LongTask),
    /// The client cancelled the request with this id (its JSON text).
    Cancel(String),
}

/// An error a method returns; becomes a JSON-RPC error response.
#[derive(Debug, Clone)]
pub struct MethodError {
    /// Error code.
    pub code: i32,
    /// One-sentence message.
    pub message: Cow<'static, str>,
}

impl MethodError {
    /// A new error.
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Self {
        MethodError {
            code,
            message: message.into(),
        }
    }

    /// Invalid parameters, naming what is wrong.
    pub fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        MethodError::new(code::INVALID_PARAMS, message)
    }
}

/// What a method produced: a result to serialize, or a long task.
pub enum MethodReply {
    /// A result (already JSON).
    Result(Vec<u8>),
    /// A long-running request.
    Long(LongTask),
}

/// A method's view of one request.
pub struct Request<'a> {
    /// The request id's JSON text.
    pub id: &'a RawValue,
    /// Raw params, if any.
    pub params: Option<&'a RawValue>,
    /// The node.
    pub node: &'a NodeState,
}

impl Request<'_> {
    /// Parses the params into `T` (an rmcp model type, usually); absent params parse as `{}`.
    pub fn params<'de, T: Deserialize<'de>>(&'de self) -> Result<T, MethodError> {
        let text = self.params.map_or("{}", RawValue::get);
        serde_json::from_str(text)
            .map_err(|e| MethodError::invalid_params(format!("invalid params: {e}")))
    }
}

/// Serializes a result value.
pub fn to_result(value: &impl Serialize) -> Result<MethodReply, MethodError> {
    serde_json::to_vec(value)
        .map(MethodReply::Result)
        .map_err(|e| {
            MethodError::new(
                code::INTERNAL_ERROR,
                format!("cannot serialize the result: {e}"),
            )
        })
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Just the `_meta` protocol version of a stateless (2026-07-28) request.
#[derive(Deserialize)]
struct MetaOnly<'a> {
    #[serde(borrow, rename = "_meta", default)]
    meta: Option<MetaVersion<'a>>,
}

#[derive(Deserialize)]
struct MetaVersion<'a> {
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion", default)]
    version: Option<Cow<'a, str>>,
}

/// A JSON-RPC success response.
pub fn response(id: &RawValue, result: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + id.get().len() + result.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(b",\"result\":");
    out.extend_from_slice(result);
    out.push(b'}');
    out
}

/// A JSON-RPC error response; `id` None writes `"id":null` (the request's id was unreadable).
pub fn error_response(id: Option<&RawValue>, code: i32, message: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        code: i32,
        message: &'a str,
    }
    let body = serde_json::to_string(&ErrorBody { code, message }).expect("plain struct");
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"error\":{body}}}",
        id.map_or("null", RawValue::get)
    )
    .into_bytes()
}

/// A JSON-RPC notification.
pub fn notification(method: &str, params: &impl Serialize) -> Vec<u8> {
    let params = serde_json::to_string(params).expect("notification params serialize");
    format!(
        "{{\"jsonrpc\":\"2.0\",\"method\":{},\"params\":{params}}}",
        serde_json::to_string(method).expect("str")
    )
    .into_bytes()
}

/// Handles one message for `session` and records it in the node's metrics.
pub fn dispatch(line: &[u8], session: &mut Session, node: &NodeState) -> Reply {
    let started = Instant::now();
    let (method, reply) = dispatch_inner(line, session, node);
    let outcome = match &reply {
        Reply::Message(bytes) if bytes.windows(9).any(|w| w == b"\"error\":{") => Outcome::Error,
        _ => Outcome::Ok,
    };
    node.metrics.record(method, outcome, started.elapsed());
    reply
}

fn dispatch_inner(line: &[u8], session: &mut Session, node: &NodeState) -> (usize, Reply) {
    let invalid = method_index("invalid");
    let envelope: Envelope = match serde_json::from_slice(line) {
        Ok(envelope) => envelope,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return (
                invalid,
                Reply::Message(error_response(
                    None,
                    code::PARSE_ERROR,
                    "parse error: malformed JSON",
                )),
            );
        }
        Err(_) => {
            let message = if line.first() == Some(&b'[') {
                "batches are not supported: send one message per line"
            } else {
                "invalid request: expected a JSON-RPC object"
            };
            return (
                invalid,
                Reply::Message(error_response(None, code::INVALID_REQUEST, message)),
            );
        }
    };
    if envelope.jsonrpc.as_deref() != Some("2.0") {
        let reply = error_response(
            envelope.id,
            code::INVALID_REQUEST,
            "invalid request: jsonrpc must be \"2.0\"",
        );
        return (
            invalid,
            if envelope.id.is_some() {
                Reply::Message(reply)
            } else {
                Reply::None
            },
        );
    }
    let Some(method) = envelope.method.as_deref() else {
        // A response to a server request: this server sends none, so there is nothing to match.
        return (method_index("other"), Reply::None);
    };
    let Some(id) = envelope.id else {
        return (
            method_index("notification"),
            notification_received(method, envelope.params, session),
        );
    };
    let index = method_index(method);
    let stateless = is_stateless(envelope.params);
    let allowed = match method {
        "initialize" | "ping" | "server/discover" => true,
        _ => session.phase != Phase::New || stateless,
    };
    if !allowed {
        let message =
            "session not initialized: send initialize (or a 2026-07-28 request with _meta) first";
        return (
            index,
            Reply::Message(error_response(Some(id), code::INVALID_REQUEST, message)),
        );
    }
    let request = Request {
        id,
        params: envelope.params,
        node,
    };
    let result = match method {
        "initialize" => methods::lifecycle::initialize(&request, session),
        "ping" => to_result(&serde_json::json!({})),
        "server/discover" => methods::lifecycle::discover(&request),
        "logging/setLevel" => methods::lifecycle::set_level(&request, session),
        "tools/list" => methods::tools::list(&request),
        "tools/call" => methods::tools::call(&request),
        "resources/list" => methods::resources::list(&request),
        "resources/read" => methods::resources::read(&request),
        "resources/templates/list" => methods::resources::templates(&request),
        "prompts/list" => methods::prompts::list(&request),
        "prompts/get" => methods::prompts::get(&request),
        _ => Err(MethodError::new(
            code::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    };
    let reply = match result {
        Ok(MethodReply::Result(bytes)) => Reply::Message(response(id, &bytes)),
        Ok(MethodReply::Long(task)) => Reply::Long(task),
        Err(error) => Reply::Message(error_response(Some(id), error.code, &error.message)),
    };
    (index, reply)
}

fn is_stateless(params: Option<&RawValue>) -> bool {
    params
        .and_then(|p| serde_json::from_str::<MetaOnly>(p.get()).ok())
        .and_then(|m| m.meta?.version)
        .is_some_and(|v| v == STATELESS_VERSION)
}

fn notification_received(method: &str, params: Option<&RawValue>, session: &mut Session) -> Reply {
    match method {
        "notifications/initialized" => {
            if session.phase == Phase::Initializing {
                session.phase = Phase::Ready;
            }
            Reply::None
        }
        "notifications/cancelled" => {
            #[derive(Deserialize)]
            struct Cancelled<'a> {
                #[serde(borrow, rename = "requestId")]
                request_id: Option<&'a RawValue>,
            }
            params
                .and_then(|p| serde_json::from_str::<Cancelled>(p.get()).ok())
                .and_then(|c| c.request_id)
                .map_or(Reply::None, |id| Reply::Cancel(id.get().to_string()))
        }
        // Unknown notifications are ignored, as JSON-RPC requires.
        _ => Reply::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;

    fn run(lines: &[&str]) -> Vec<serde_json::Value> {
        let node = NodeState::new(NodeConfig::for_tests());
        let mut session = Session::default();
        lines
            .iter()
            .filter_map(
                |line| match dispatch(line.as_bytes(), &mut session, &node) {
                    Reply::Message(bytes) => Some(serde_json::from_slice(&bytes).unwrap()),
                    _ => None,
                },
            )
            .collect()
    }

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;
    const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

    #[test]
    fn malformed_json_is_a_parse_error_with_null_id() {
        let out = run(&["{not json"]);
        assert_eq!(out[0]["error"]["code"], -32700);
        assert!(out[0]["id"].is_null());
    }

    #[test]
    fn batches_and_non_objects_are_invalid_requests() {
        assert_eq!(run(&["[1,2]"])[0]["error"]["code"], -32600);
        assert_eq!(run(&["42"])[0]["error"]["code"], -32600);
        assert_eq!(
            run(&[r#"{"jsonrpc":"1.0","id":3,"method":"ping"}"#])[0]["error"]["code"],
            -32600
        );
    }

    #[test]
    fn requests_before_initialize_are_refused_but_ping_works() {
        let out = run(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#,
        ]);
        assert_eq!(out[0]["error"]["code"], -32600);
        assert_eq!(out[1]["result"], serde_json::json!({}));
    }

    #[test]
    fn unknown_methods_get_method_not_found_and_the_session_lives_on() {
        let out = run(&[
            INIT,
            INITIALIZED,
            r#"{"jsonrpc":"2.0","id":"x","method":"no/such"}"#,
            r#"{"jsonrpc":"2.0","id":"y","method":"ping"}"#,
        ]);
        assert_eq!(out[1]["error"]["code"], -32601);
        assert_eq!(out[1]["id"], "x");
        assert_eq!(out[2]["id"], "y");
    }

    #[test]
    fn stateless_requests_need_no_initialize() {
        let out = run(&[
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#,
        ]);
        assert_eq!(out[0]["result"]["content"][0]["text"], "hi");
    }

    #[test]
    fn notifications_get_no_reply() {
        assert!(
            run(&[
                INITIALIZED,
                r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#
            ])
            .is_empty()
        );
    }
}
