//! Streamable HTTP at `/mcp`: the session handshake and its headers, the stateless revision,
//! SSE for long requests, the GET stream, DELETE, Origin and Host checks; and the ops endpoints.

mod harness;

use std::net::SocketAddr;

use harness::{HttpResponse, TestNode, call, http, initialize, sse_messages};
use serde_json::{Value, json};

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");

async fn post(addr: SocketAddr, extra: &[(&str, &str)], body: &Value) -> HttpResponse {
    let mut headers = vec![ACCEPT, JSON];
    headers.extend_from_slice(extra);
    http(addr, "POST", "/mcp", &headers, &body.to_string()).await
}

/// Initializes and returns the session id.
async fn open_session(addr: SocketAddr) -> String {
    let init = post(addr, &[], &initialize(1, "2025-06-18")).await;
    assert_eq!(init.status, 200, "{init:?}");
    assert_eq!(init.json()["result"]["protocolVersion"], "2025-06-18");
    let id = init
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let headers = [
        ("Mcp-Session-Id", id.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(post(addr, &headers, &initialized).await.status, 202);
    id
}

#[tokio::test]
async fn a_session_is_issued_required_and_ended_by_delete() {
    let node = TestNode::start(|_| {}).await;
    let id = open_session(node.api).await;
    let with = [
        ("Mcp-Session-Id", id.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];

    let echo = post(
        node.api,
        &with,
        &call(2, "echo", json!({"text":"over http"})),
    )
    .await;
    assert_eq!(echo.status, 200);
    assert_eq!(echo.json()["result"]["content"][0]["text"], "over http");
    let tools = post(
        node.api,
        &with,
        &json!({"jsonrpc":"2.0","id":3,"method":"tools/list"}),
    )
    .await;
    assert_eq!(tools.json()["result"]["tools"].as_array().unwrap().len(), 5);
    let unknown = post(
        node.api,
        &with,
        &json!({"jsonrpc":"2.0","id":4,"method":"no/such"}),
    )
    .await;
    assert_eq!(unknown.json()["error"]["code"], -32601);
    let malformed = http(node.api, "POST", "/mcp", &[ACCEPT, JSON, with[0]], "{oops").await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["error"]["code"], -32700);

    let missing = post(node.api, &[], &call(5, "echo", json!({"text":"x"}))).await;
    assert_eq!(missing.status, 400);
    let wrong = [("Mcp-Session-Id", "not-a-session")];
    assert_eq!(
        post(node.api, &wrong, &call(6, "echo", json!({"text":"x"})))
            .await
            .status,
        404
    );

    assert_eq!(
        http(node.api, "DELETE", "/mcp", &with, "").await.status,
        200
    );
    assert_eq!(
        post(node.api, &with, &call(7, "echo", json!({"text":"x"})))
            .await
            .status,
        404
    );
    assert_eq!(node.node.sessions_open(), 0, "the slot is freed");
}

#[tokio::test]
async fn an_unsupported_protocol_version_header_is_a_400() {
    let node = TestNode::start(|_| {}).await;
    let id = open_session(node.api).await;
    let headers = [
        ("Mcp-Session-Id", id.as_str()),
        ("MCP-Protocol-Version", "1999-01-01"),
    ];
    let reply = post(
        node.api,
        &headers,
        &json!({"jsonrpc":"2.0","id":2,"method":"ping"}),
    )
    .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_forbidden() {
    let node = TestNode::start(|_| {}).await;
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"server/discover"});
    let evil = post(node.api, &[("Origin", "https://evil.example")], &ping).await;
    assert_eq!(evil.status, 403);
    let local = post(node.api, &[("Origin", "http://localhost:3000")], &ping).await;
    assert_eq!(local.status, 200);
    let rebound = post(node.api, &[("Host", "evil.example:8080")], &ping).await;
    assert_eq!(
        rebound.status, 403,
        "a loopback-bound node answers loopback Host names only"
    );
}

#[tokio::test]
async fn hosts_and_origins_are_compared_exactly_not_by_prefix() {
    let node = TestNode::start(|c| c.allowed_hosts = vec!["mcp.example".into()]).await;
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"server/discover"});
    let cases = [
        (("Host", "127.0.0.1.evil.example"), 403),
        (("Host", "localhost.evil.example:8080"), 403),
        (("Host", "user@127.0.0.1:8080"), 403),
        (("Host", "[::1]:8080"), 200),
        (("Host", "mcp.example:8080"), 200),
        (("Origin", "http://127.0.0.1.evil.example"), 403),
        (("Origin", "http://localhost.evil.example:3000"), 403),
        (("Origin", "http://[::1]:3000"), 200),
        (("Origin", "https://mcp.example"), 200),
    ];
    for (header, status) in cases {
        let reply = post(node.api, &[header], &ping).await;
        assert_eq!(reply.status, status, "{header:?}: {reply:?}");
    }
}

/// Opens a session at `version` and returns its headers.
async fn session_at(addr: SocketAddr, version: &'static str) -> Vec<(&'static str, String)> {
    let init = post(addr, &[], &initialize(1, version)).await;
    let id = init
        .header("mcp-session-id")
        .expect("a session id")
        .to_string();
    let headers = vec![
        ("Mcp-Session-Id", id),
        ("MCP-Protocol-Version", version.to_string()),
    ];
    let borrowed: Vec<_> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(post(addr, &borrowed, &initialized).await.status, 202);
    headers
}

#[tokio::test]
async fn batches_answer_by_revision() {
    let node = TestNode::start(|_| {}).await;
    let batch = json!([
        {"jsonrpc":"2.0","id":1,"method":"ping"},
        {"jsonrpc":"2.0","method":"notifications/whatever"},
        "not a request",
        call(2, "echo", json!({"text":"batched"})),
    ]);
    // 2025-03-26 has batches: one array, one answer per request, in order.
    let headers = session_at(node.api, "2025-03-26").await;
    let with: Vec<_> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = post(node.api, &with, &batch).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let answers = reply.json();
    assert_eq!(answers.as_array().map(Vec::len), Some(3), "{answers}");
    assert_eq!(answers[0]["id"], 1);
    assert_eq!(answers[1]["error"]["code"], -32600);
    assert!(answers[1]["id"].is_null());
    assert_eq!(answers[2]["result"]["content"][0]["text"], "batched");
    let notifications = json!([{"jsonrpc":"2.0","method":"notifications/whatever"}]);
    assert_eq!(post(node.api, &with, &notifications).await.status, 202);
    let empty = post(node.api, &with, &json!([])).await;
    assert_eq!(empty.status, 400);
    assert_eq!(empty.json()["error"]["code"], -32600);

    // 2025-06-18 removed them: the array is one invalid request, and nothing in it runs.
    let headers = session_at(node.api, "2025-06-18").await;
    let with: Vec<_> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let reply = post(node.api, &with, &batch).await;
    assert_eq!(reply.status, 400, "{reply:?}");
    assert_eq!(reply.json()["error"]["code"], -32600);
    assert!(reply.json()["id"].is_null());
}

#[tokio::test]
async fn the_stateless_revision_needs_no_session() {
    let node = TestNode::start(|_| {}).await;
    let version = [("MCP-Protocol-Version", "2026-07-28")];
    let discover = post(
        node.api,
        &version,
        &json!({"jsonrpc":"2.0","id":1,"method":"server/discover"}),
    )
    .await;
    assert_eq!(discover.status, 200);
    assert!(discover.header("mcp-session-id").is_none());
    let mut echo = call(2, "echo", json!({"text":"stateless"}));
    echo["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28"});
    let reply = post(node.api, &version, &echo).await;
    assert_eq!(reply.json()["result"]["content"][0]["text"], "stateless");
    assert_eq!(node.node.sessions_open(), 0);
}

#[tokio::test]
async fn a_long_request_streams_progress_then_its_result_over_sse() {
    let node = TestNode::start(|_| {}).await;
    let id = open_session(node.api).await;
    let with = [("Mcp-Session-Id", id.as_str())];
    let mut sleep = call(9, "sleep_ms", json!({"ms": 250}));
    sleep["params"]["_meta"] = json!({"progressToken": 77});
    let reply = post(node.api, &with, &sleep).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let messages = sse_messages(&reply.body);
    assert!(messages.len() >= 2, "{messages:?}");
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages.last().unwrap()["id"], 9);

    // A client that takes JSON only gets the final response alone.
    let plain = http(
        node.api,
        "POST",
        "/mcp",
        &[("Accept", "application/json"), JSON, with[0]],
        &call(10, "sleep_ms", json!({"ms": 50})).to_string(),
    )
    .await;
    assert_eq!(plain.json()["id"], 10);
}

#[tokio::test]
async fn the_get_stream_opens_for_a_session_and_ends_with_it() {
    let node = TestNode::start(|_| {}).await;
    let id = open_session(node.api).await;
    let sse = ("Accept", "text/event-stream");
    assert_eq!(http(node.api, "GET", "/mcp", &[sse], "").await.status, 405);
    let unknown = [sse, ("Mcp-Session-Id", "nope")];
    assert_eq!(
        http(node.api, "GET", "/mcp", &unknown, "").await.status,
        404
    );

    let api = node.api;
    let owned = id.clone();
    let stream = tokio::spawn(async move {
        http(
            api,
            "GET",
            "/mcp",
            &[sse, ("Mcp-Session-Id", owned.as_str())],
            "",
        )
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        http(
            node.api,
            "DELETE",
            "/mcp",
            &[("Mcp-Session-Id", id.as_str())],
            ""
        )
        .await
        .status,
        200
    );
    let stream = stream.await.unwrap();
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let node = TestNode::start(|_| {}).await;
    let health = http(node.api, "GET", "/health", &[], "").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    assert_eq!(http(node.api, "GET", "/ready", &[], "").await.status, 200);
    let metrics = http(node.api, "GET", "/metrics", &[], "").await;
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(metrics.body.contains("erlmcp_connections_rejected_total"));
}

#[tokio::test]
async fn an_abandoned_session_expires_after_the_idle_timeout() {
    let node = TestNode::start(|c| c.idle_timeout = std::time::Duration::from_millis(200)).await;
    let id = open_session(node.api).await;
    assert_eq!(node.node.sessions_open(), 1);
    let mut expired = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        if node.node.sessions_open() == 0 {
            expired = true;
            break;
        }
    }
    assert!(expired, "the slot is given back");
    let ping = json!({"jsonrpc":"2.0","id":2,"method":"ping"});
    assert_eq!(
        post(node.api, &[("Mcp-Session-Id", id.as_str())], &ping)
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn a_body_over_the_line_limit_is_refused_with_413() {
    let node = TestNode::start(|c| c.max_line_bytes = 1024).await;
    let big = call(1, "echo", json!({"text": "x".repeat(2048)}));
    assert_eq!(post(node.api, &[], &big).await.status, 413);
}
