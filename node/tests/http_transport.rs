//! Streamable HTTP at /mcp, and /health, /ready, /metrics, against an in-process node.

mod support;

use support::{TestNode, http};

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");
const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

fn session_id(headers: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .expect("an Mcp-Session-Id header")
        .trim()
        .to_string()
}

#[test]
fn a_session_lives_from_initialize_to_delete() {
    let node = TestNode::start(|_| {});
    let (status, headers, body) = http(node.api, "POST", "/mcp", &[ACCEPT, JSON], INIT);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"protocolVersion\":\"2025-06-18\""),
        "{body}"
    );
    let id = session_id(&headers);
    let with_session = [
        ACCEPT,
        JSON,
        ("Mcp-Session-Id", id.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let (status, _, _) = http(
        node.api,
        "POST",
        "/mcp",
        &with_session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"over http"}}}"#;
    let (status, _, body) = http(node.api, "POST", "/mcp", &with_session, call);
    assert_eq!(status, 200);
    assert!(body.contains("over http"), "{body}");
    assert!(
        node.node
            .metrics
            .render()
            .contains("erlmcp_connections_active{transport=\"http\"} 1")
    );
    let (status, _, _) = http(
        node.api,
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", id.as_str())],
        "",
    );
    assert_eq!(status, 200);
    let (status, _, _) = http(node.api, "POST", "/mcp", &with_session, call);
    assert_eq!(status, 404, "a deleted session is gone");
    assert!(
        node.node
            .metrics
            .render()
            .contains("erlmcp_connections_active{transport=\"http\"} 0")
    );
}

#[test]
fn requests_need_a_session_a_good_version_and_a_friendly_origin() {
    let node = TestNode::start(|_| {});
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#;
    assert_eq!(
        http(node.api, "POST", "/mcp", &[ACCEPT, JSON], call).0,
        400,
        "no session id"
    );
    assert_eq!(
        http(
            node.api,
            "POST",
            "/mcp",
            &[ACCEPT, JSON, ("Mcp-Session-Id", "nope")],
            call
        )
        .0,
        404
    );
    assert_eq!(
        http(
            node.api,
            "POST",
            "/mcp",
            &[ACCEPT, JSON, ("MCP-Protocol-Version", "1999-01-01")],
            call
        )
        .0,
        400
    );
    assert_eq!(
        http(
            node.api,
            "POST",
            "/mcp",
            &[ACCEPT, JSON, ("Origin", "https://evil.example")],
            INIT
        )
        .0,
        403
    );
    assert_eq!(
        http(
            node.api,
            "POST",
            "/mcp",
            &[ACCEPT, JSON, ("Origin", "http://localhost:3000")],
            INIT
        )
        .0,
        200
    );
    assert_eq!(
        http(
            node.api,
            "POST",
            "/mcp",
            &[("Accept", "text/html"), JSON],
            INIT
        )
        .0,
        406
    );
    assert_eq!(
        http(node.api, "POST", "/mcp", &[ACCEPT, JSON], "{broken").0,
        400
    );
}

#[test]
fn the_stateless_revision_needs_no_session() {
    let node = TestNode::start(|_| {});
    let headers = [ACCEPT, JSON, ("MCP-Protocol-Version", "2026-07-28")];
    let (status, _, body) = http(
        node.api,
        "POST",
        "/mcp",
        &headers,
        r#"{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{}}"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("2026-07-28"), "{body}");
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{"text":"stateless"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
    let (status, _, body) = http(node.api, "POST", "/mcp", &headers, call);
    assert_eq!(status, 200);
    assert!(body.contains("stateless"), "{body}");
}

#[test]
fn long_requests_stream_progress_over_sse() {
    let node = TestNode::start(|_| {});
    let (_, headers, _) = http(node.api, "POST", "/mcp", &[ACCEPT, JSON], INIT);
    let id = session_id(&headers);
    let sleep = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"sleep_ms","arguments":{"ms":250},"_meta":{"progressToken":"p"}}}"#;
    let (status, headers, body) = http(
        node.api,
        "POST",
        "/mcp",
        &[ACCEPT, JSON, ("Mcp-Session-Id", id.as_str())],
        sleep,
    );
    assert_eq!(status, 200);
    assert!(headers.contains("text/event-stream"), "{headers}");
    assert!(body.contains("notifications/progress"), "{body}");
    assert!(body.contains("slept 250 ms"), "{body}");
    // A JSON-only client gets just the result.
    let json_only = [
        ("Accept", "application/json"),
        JSON,
        ("Mcp-Session-Id", id.as_str()),
    ];
    let (status, _, body) = http(
        node.api,
        "POST",
        "/mcp",
        &json_only,
        &sleep.replace("\"id\":5", "\"id\":6"),
    );
    assert_eq!(status, 200);
    assert!(body.starts_with("{\"jsonrpc\":\"2.0\",\"id\":6"), "{body}");
}

#[test]
fn health_ready_and_metrics_answer() {
    let mut node = TestNode::start(|config| config.max_connections = 1);
    assert_eq!(http(node.api, "GET", "/health", &[], "").0, 200);
    assert_eq!(http(node.api, "GET", "/ready", &[], "").0, 200);
    let (status, _, body) = http(node.api, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    for name in [
        "erlmcp_connections_active",
        "erlmcp_requests_total",
        "erlmcp_latency_p99_ms",
        "process_resident_memory_bytes",
    ] {
        assert!(body.contains(name), "{name}");
    }
    let _full = support::Client::connect(node.tcp);
    assert!(
        support::eventually(|| http(node.api, "GET", "/ready", &[], "").0 == 503),
        "a full node is not ready"
    );
    node.node.start_draining();
    let (status, _, body) = http(node.api, "GET", "/ready", &[], "");
    assert_eq!((status, body.trim()), (503, "draining"));
    node.shutdown();
}
