//! The MCP dispatcher: one JSON-RPC line in, one typed [`Reply`] out. Transport-neutral: TCP,
//! HTTP and stdio all call [`dispatch`] with the session's state and write what it returns; the
//! reply's kind (result, error, batch, long request) is a value, so no transport re-reads bytes.

use std::time::Instant;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::jsonrpc::{Call, ErrorObject, Incoming, Response, write_batch};
use crate::long_task::LongTask;
use crate::methods::{self, MethodReply, Request, to_result};
use crate::metrics::{Outcome, method_index};
use crate::session::{BATCH_VERSION, Phase, Session, is_stateless};
use crate::state::NodeState;

/// What a transport does after dispatching one message. Borrows ids from the input line.
#[derive(Debug)]
pub enum Reply<'a> {
    /// Nothing to send (a notification, or a message JSON-RPC says not to answer).
    None,
    /// One response to send.
    Response(Response<'a>),
    /// A batch's answer: its responses (one JSON array; nothing when empty) and the requests
    /// its `notifications/cancelled` elements cancel.
    Batch(BatchReply<'a>),
    /// A request that runs on (progress, cancellation): the transport runs it.
    Long(LongTask),
    /// The client cancelled the request with this id (its JSON text).
    Cancel(String),
}

/// What a batch produced.
#[derive(Debug, Default)]
pub struct BatchReply<'a> {
    /// One response per request in the batch, in order.
    pub responses: Vec<Response<'a>>,
    /// Ids (JSON text) of the long requests the batch cancels.
    pub cancels: Vec<String>,
}

impl Reply<'_> {
    /// Appends what the client reads now (a response, or a batch's array) and a newline to
    /// `out`; returns whether anything was written.
    pub fn write_line(&self, out: &mut Vec<u8>) -> bool {
        match self {
            Reply::Response(response) => response.write(out),
            Reply::Batch(batch) if !batch.responses.is_empty() => {
                write_batch(&batch.responses, out)
            }
            _ => return false,
        }
        out.push(b'\n');
        true
    }
}

/// Handles one line (or HTTP body) for `session` and records each request in the node's
/// metrics.
pub fn dispatch<'a>(line: &'a [u8], session: &mut Session, node: &NodeState) -> Reply<'a> {
    dispatch_message(Incoming::parse(line, node.config.max_batch), session, node)
}

/// [`dispatch`] for a message the transport already parsed (HTTP looks at the method and
/// `_meta` first, to route it to a session).
pub fn dispatch_message<'a>(
    incoming: Incoming<'a>,
    session: &mut Session,
    node: &NodeState,
) -> Reply<'a> {
    let started = Instant::now();
    match incoming {
        Incoming::Batch(elements) => {
            if !accepts_batches(session) {
                // The revisions after 2025-03-26 (and the stateless one) removed batching: a
                // batch is not a valid message there, so it gets one error and runs nothing.
                let message = format!(
                    "invalid request: JSON-RPC batches are not part of MCP {}; send one message at a time",
                    if session.phase == Phase::New {
                        "before a 2025-03-26 session is initialized"
                    } else {
                        session.version()
                    }
                );
                let response = Response::error(None, ErrorObject::invalid_request(message));
                node.metrics
                    .record(method_index("invalid"), Outcome::Error, started.elapsed());
                return Reply::Response(response);
            }
            let mut batch = BatchReply::default();
            for element in elements {
                let started = Instant::now();
                let incoming = Incoming::parse_value(element);
                // Inside a batch, `one` answers long requests and nested batches itself.
                match one(incoming, true, session, node, started) {
                    Reply::Response(response) => batch.responses.push(response),
                    Reply::Cancel(id) => batch.cancels.push(id),
                    Reply::None | Reply::Long(_) | Reply::Batch(_) => {}
                }
            }
            Reply::Batch(batch)
        }
        incoming => one(incoming, false, session, node, started),
    }
}

/// Whether a batch is a valid message in this session: only revision 2025-03-26 has them.
fn accepts_batches(session: &Session) -> bool {
    session.phase != Phase::New && session.version() == BATCH_VERSION
}

/// Handles one message and records it; inside a batch, a long request is refused (its
/// progress and late response have no place in the batch's single array).
fn one<'a>(
    incoming: Incoming<'a>,
    in_batch: bool,
    session: &mut Session,
    node: &NodeState,
    started: Instant,
) -> Reply<'a> {
    let (method, mut reply) = match incoming {
        Incoming::Request(call) => {
            let index = method_index(&call.method);
            (index, request(call, in_batch, session, node))
        }
        Incoming::Notification { method, params } => (
            method_index("notification"),
            notification_received(&method, params, session),
        ),
        // A response to a server request: this server sends none, so there is nothing to match.
        Incoming::Response => (method_index("other"), Reply::None),
        Incoming::Invalid(response) => (method_index("invalid"), Reply::Response(response)),
        Incoming::Ignored => (method_index("invalid"), Reply::None),
        Incoming::Batch(_) => (
            method_index("invalid"),
            Reply::Response(Response::error(
                None,
                ErrorObject::invalid_request("invalid request: a batch inside a batch"),
            )),
        ),
    };
    if in_batch && let Reply::Long(task) = reply {
        let error = ErrorObject::invalid_request(
            "invalid request: a long-running tool call cannot be part of a batch; send it on its own",
        );
        reply = Reply::Response(Response::error(Some(task.id), error));
    }
    let outcome = match &reply {
        Reply::Response(response) if response.is_error() => Outcome::Error,
        _ => Outcome::Ok,
    };
    node.metrics.record(method, outcome, started.elapsed());
    reply
}

fn request<'a>(
    call: Call<'a>,
    in_batch: bool,
    session: &mut Session,
    node: &NodeState,
) -> Reply<'a> {
    let Call { id, method, params } = call;
    let stateless = is_stateless(params);
    let allowed = match method.as_ref() {
        "initialize" => !in_batch,
        "ping" | "server/discover" => true,
        _ => session.phase != Phase::New || stateless,
    };
    if !allowed {
        let message = if in_batch {
            "invalid request: initialize must not be part of a batch"
        } else {
            "session not initialized: send initialize (or a 2026-07-28 request with _meta) first"
        };
        return Reply::Response(Response::error(
            Some(id),
            ErrorObject::invalid_request(message),
        ));
    }
    let request = Request {
        id: &id,
        params,
        node,
    };
    let result = match method.as_ref() {
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
        _ => Err(ErrorObject::new(
            crate::jsonrpc::code::METHOD_NOT_FOUND,
            format!("method not found: {method}"),
        )),
    };
    match result {
        Ok(MethodReply::Result(result)) => Reply::Response(Response::result(id, result)),
        Ok(MethodReply::Long(task)) => Reply::Long(task),
        Err(error) => Reply::Response(Response::error(Some(id), error)),
    }
}

fn notification_received(
    method: &str,
    params: Option<&RawValue>,
    session: &mut Session,
) -> Reply<'static> {
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
            .filter_map(|line| {
                let mut out = Vec::new();
                dispatch(line.as_bytes(), &mut session, &node)
                    .write_line(&mut out)
                    .then(|| serde_json::from_slice(&out).unwrap())
            })
            .collect()
    }

    fn init(version: &str) -> String {
        format!(
            r#"{{"jsonrpc":"2.0","id":0,"method":"initialize","params":{{"protocolVersion":"{version}","capabilities":{{}},"clientInfo":{{"name":"t","version":"0"}}}}}}"#
        )
    }

    /// What a session at `version` answers to `line` after its handshake.
    fn in_session(version: &str, line: &str) -> Vec<serde_json::Value> {
        let init = init(version);
        run(&[&init, INITIALIZED, line]).split_off(1)
    }

    #[test]
    fn an_empty_batch_is_one_invalid_request() {
        for version in ["2025-03-26", "2025-11-25"] {
            let out = in_session(version, " [ ] ");
            assert_eq!(out.len(), 1);
            assert_eq!(out[0]["error"]["code"], -32600, "{version}: {out:?}");
            assert!(out[0]["id"].is_null());
        }
        assert_eq!(run(&["[]"])[0]["error"]["code"], -32600);
    }

    #[test]
    fn a_2025_03_26_batch_answers_each_request_once_in_one_array() {
        let batch = r#"[
            {"jsonrpc":"2.0","id":1,"method":"ping"},
            5,
            {"jsonrpc":"2.0","method":"notifications/whatever"},
            {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo","arguments":{"text":"hi"}}},
            [],
            {"jsonrpc":"2.0","id":9,"method":"initialize","params":{}},
            {"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"sleep_ms","arguments":{"ms":1}}},
            {"jsonrpc":"2.0","id":11,"result":{}}
        ]"#;
        let out = in_session("2025-03-26", &batch.replace('\n', ""));
        assert_eq!(out.len(), 1);
        let answers = out[0].as_array().expect("a batch answers with an array");
        let ids: Vec<_> = answers.iter().map(|a| a["id"].clone()).collect();
        assert_eq!(
            ids,
            serde_json::json!([1, null, "b", null, 9, 10])
                .as_array()
                .unwrap()
                .clone()
        );
        assert_eq!(answers[0]["result"], serde_json::json!({}));
        assert_eq!(answers[1]["error"]["code"], -32600); // 5 is no request
        assert_eq!(answers[2]["result"]["content"][0]["text"], "hi");
        assert_eq!(answers[3]["error"]["code"], -32600); // a batch inside a batch
        assert_eq!(answers[4]["error"]["code"], -32600); // initialize is never batched
        assert_eq!(answers[5]["error"]["code"], -32600); // long requests run alone
    }

    #[test]
    fn a_batch_of_notifications_gets_no_answer() {
        let out = in_session(
            "2025-03-26",
            r#"[{"jsonrpc":"2.0","method":"notifications/a"},{"jsonrpc":"2.0","method":"notifications/b"}]"#,
        );
        assert!(out.is_empty(), "{out:?}");
    }

    #[test]
    fn a_batch_past_the_limit_is_one_invalid_request_and_runs_nothing() {
        let node = NodeState::new(NodeConfig::for_tests());
        let limit = node.config.max_batch;
        let mut session = Session::default();
        for line in [init("2025-03-26").as_str(), INITIALIZED] {
            dispatch(line.as_bytes(), &mut session, &node);
        }
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let batch = |n: usize| format!("[{}]", vec![ping; n].join(","));
        let mut out = Vec::new();
        dispatch(batch(limit).as_bytes(), &mut session, &node).write_line(&mut out);
        let within: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(within.as_array().map(Vec::len), Some(limit));
        // A hostile client sends the most that fits in a line: one short error comes back.
        let line = batch(node.config.max_line_bytes / (ping.len() + 1));
        out.clear();
        dispatch(line.as_bytes(), &mut session, &node).write_line(&mut out);
        let refused: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(refused["error"]["code"], -32600, "{refused}");
        assert!(refused["id"].is_null());
        assert!(out.len() < 200, "{} bytes", out.len());
    }

    #[test]
    fn revisions_without_batches_reject_an_array_whole() {
        let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#;
        for version in ["2024-11-05", "2025-06-18", "2025-11-25"] {
            let out = in_session(version, batch);
            assert_eq!(out.len(), 1, "{version}: {out:?}");
            assert_eq!(out[0]["error"]["code"], -32600);
            assert!(out[0]["id"].is_null());
        }
        // Stateless (2026-07-28) requests have no session to negotiate batches in.
        let stateless = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}]"#;
        let out = run(&[stateless]);
        assert_eq!(out[0]["error"]["code"], -32600);
        assert!(out[0]["id"].is_null());
    }

    #[test]
    fn ids_must_be_strings_or_numbers() {
        for id in ["null", "{}", "[1]", "true"] {
            let line = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#);
            let out = run(&[&line]);
            assert_eq!(out[0]["error"]["code"], -32600, "{id}");
            assert!(out[0]["id"].is_null());
        }
        assert_eq!(
            run(&[r#"{"jsonrpc":"2.0","id":-1.5,"method":"ping"}"#])[0]["id"],
            -1.5
        );
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
