//! Properties of the JSON-RPC layer under the dispatcher, over generated input: arbitrary bytes
//! and arbitrary JSON never panic and only ever produce well-formed JSON-RPC 2.0 responses, one
//! line each; every request with an id gets exactly one answer carrying that id, one message
//! per line or in a 2025-03-26 batch. The case counts are bounded so `cargo test` stays fast.

use std::collections::HashMap;

use erlmcp_node::config::NodeConfig;
use erlmcp_node::dispatch::{Reply, dispatch};
use erlmcp_node::session::Session;
use erlmcp_node::state::{Node, NodeState};
use proptest::prelude::*;
use serde_json::{Value, json};

const CASES: u32 = 256;

/// The session a generated message meets: fresh, or after a handshake at one revision.
fn session(node: &Node, version: Option<&str>) -> Session {
    let mut session = Session::default();
    if let Some(version) = version {
        let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
            "protocolVersion": version, "capabilities": {}, "clientInfo": {"name":"p","version":"0"}}});
        for line in [
            init,
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        ] {
            dispatch(line.to_string().as_bytes(), &mut session, node);
        }
    }
    session
}

/// Panics unless `value` is one JSON-RPC 2.0 response: `jsonrpc`, an id that is a string, a
/// number or null, and exactly one of `result` and a well-formed `error`.
fn assert_response(value: &Value) {
    let object = value.as_object().expect("a response is an object");
    assert_eq!(object.get("jsonrpc"), Some(&json!("2.0")), "{value}");
    let id = object.get("id").expect("a response has an id");
    assert!(id.is_string() || id.is_number() || id.is_null(), "{value}");
    match (object.get("result"), object.get("error")) {
        (Some(_), None) => assert_eq!(object.len(), 3, "{value}"),
        (None, Some(error)) => {
            assert_eq!(object.len(), 3, "{value}");
            assert!(error["code"].is_i64(), "{value}");
            assert!(error["message"].is_string(), "{value}");
        }
        _ => panic!("a response has exactly one of result and error: {value}"),
    }
}

/// Dispatches `line`, checks what it writes, and returns the ids it answers (the ids of
/// long requests, whose answer comes later, included).
fn answers(line: &[u8], session: &mut Session, node: &Node) -> Vec<Value> {
    let reply = dispatch(line, session, node);
    let mut out = Vec::new();
    if reply.write_line(&mut out) {
        assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(out.last(), Some(&b'\n'), "one line, newline-terminated");
    }
    let mut ids = Vec::new();
    if !out.is_empty() {
        let written: Value = serde_json::from_slice(&out).expect("the reply is JSON");
        match &written {
            Value::Array(batch) => {
                assert!(!batch.is_empty(), "an empty batch answer is never sent");
                for response in batch {
                    assert_response(response);
                    ids.push(response["id"].clone());
                }
            }
            response => {
                assert_response(response);
                ids.push(response["id"].clone());
            }
        }
    }
    if let Reply::Long(task) = &reply {
        ids.push(serde_json::from_str(task.id.json()).expect("an id is JSON"));
    }
    ids
}

/// Words the dispatcher looks for, so generated JSON reaches past the first checks.
const WORDS: &[&str] = &[
    "jsonrpc",
    "2.0",
    "id",
    "method",
    "params",
    "result",
    "error",
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/read",
    "prompts/get",
    "logging/setLevel",
    "server/discover",
    "notifications/cancelled",
    "notifications/initialized",
    "name",
    "arguments",
    "echo",
    "add",
    "sleep_ms",
    "node_info",
    "text",
    "ms",
    "a",
    "b",
    "uri",
    "level",
    "requestId",
    "_meta",
    "progressToken",
    "protocolVersion",
    "io.modelcontextprotocol/protocolVersion",
    "2025-03-26",
    "2025-11-25",
    "2026-07-28",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(WORDS).prop_map(String::from),
        1 => ".{0,6}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..70_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        word().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// One generated message: a request (its id is filled in later, unique), a notification, or
/// any JSON that is not a request.
#[derive(Debug, Clone)]
enum Generated {
    Request { method: String, params: Value },
    Notification { method: String, params: Value },
    Other(Value),
}

fn generated() -> impl Strategy<Value = Generated> {
    let method = prop::sample::select(WORDS).prop_map(String::from);
    let tool_params = (
        prop::sample::select(&["echo", "add", "sleep_ms", "node_info", "nope"][..]),
        json_value(),
    )
        .prop_map(|(name, arguments)| json!({"name": name, "arguments": arguments}));
    prop_oneof![
        4 => (method.clone(), json_value())
            .prop_map(|(method, params)| Generated::Request { method, params }),
        3 => tool_params
            .prop_map(|params| Generated::Request { method: "tools/call".into(), params }),
        2 => (method, json_value())
            .prop_map(|(method, params)| Generated::Notification { method, params }),
        2 => json_value().prop_map(|mut value| {
            // Whatever this is, it must not pass for a request with one of the real ids, nor
            // (an array, read as a 2025-03-26 batch) hold elements answered by their own id.
            let elements = match &mut value {
                Value::Array(elements) => elements.iter_mut().collect(),
                object => vec![object],
            };
            for object in elements.into_iter().filter_map(Value::as_object_mut) {
                object.remove("id");
            }
            Generated::Other(value)
        }),
    ]
}

/// The messages as JSON, with each request's id (alternately a number and a string), and
/// those ids.
fn materialize(messages: &[Generated]) -> (Vec<Value>, Vec<Value>) {
    let mut ids = Vec::new();
    let values = messages
        .iter()
        .enumerate()
        .map(|(i, message)| match message {
            Generated::Request { method, params } => {
                let id = if i % 2 == 0 {
                    json!(1_000_000 + i)
                } else {
                    json!(format!("req-{i}"))
                };
                ids.push(id.clone());
                json!({"jsonrpc":"2.0","id":id,"method":method,"params":params})
            }
            Generated::Notification { method, params } => {
                json!({"jsonrpc":"2.0","method":method,"params":params})
            }
            Generated::Other(value) => value.clone(),
        })
        .collect();
    (values, ids)
}

fn assert_each_answered_once(requests: &[Value], answered: &[Value]) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for id in answered.iter().filter(|id| !id.is_null()) {
        *counts.entry(id.to_string()).or_default() += 1;
    }
    for id in requests {
        assert_eq!(counts.remove(&id.to_string()), Some(1), "request {id}");
    }
    assert!(counts.is_empty(), "answers to no request: {counts:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn arbitrary_bytes_get_well_formed_answers(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        version in prop::sample::select(&[None, Some("2025-03-26"), Some("2025-11-25")][..]),
    ) {
        let node = NodeState::new(NodeConfig::for_tests());
        let mut session = session(&node, version);
        answers(&bytes, &mut session, &node);
    }

    #[test]
    fn damaged_requests_get_well_formed_answers(
        message in generated(),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let node = NodeState::new(NodeConfig::for_tests());
        let mut session = session(&node, Some("2025-03-26"));
        let (values, _) = materialize(&[message]);
        let mut bytes = values[0].to_string().into_bytes();
        for (at, byte) in damage {
            let at = at.index(bytes.len() + 1);
            bytes.insert(at, byte);
        }
        answers(&bytes, &mut session, &node);
    }

    #[test]
    fn arbitrary_json_gets_well_formed_answers(
        value in json_value(),
        version in prop::sample::select(&[None, Some("2025-03-26"), Some("2025-11-25")][..]),
    ) {
        let node = NodeState::new(NodeConfig::for_tests());
        let mut session = session(&node, version);
        answers(value.to_string().as_bytes(), &mut session, &node);
    }

    #[test]
    fn every_request_gets_exactly_one_answer_line_by_line(
        messages in prop::collection::vec(generated(), 0..12),
        version in prop::sample::select(&[None, Some("2025-03-26"), Some("2025-11-25")][..]),
    ) {
        let node = NodeState::new(NodeConfig::for_tests());
        let mut session = session(&node, version);
        let (values, ids) = materialize(&messages);
        let mut answered = Vec::new();
        for value in values {
            answered.extend(answers(value.to_string().as_bytes(), &mut session, &node));
        }
        assert_each_answered_once(&ids, &answered);
    }

    #[test]
    fn every_request_in_a_batch_gets_exactly_one_answer(
        messages in prop::collection::vec(generated(), 1..12),
    ) {
        let node = NodeState::new(NodeConfig::for_tests());
        let mut session = session(&node, Some("2025-03-26"));
        let (values, ids) = materialize(&messages);
        let batch = Value::Array(values).to_string();
        let answered = answers(batch.as_bytes(), &mut session, &node);
        assert_each_answered_once(&ids, &answered);
    }
}
