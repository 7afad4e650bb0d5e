//! MCP over TCP against an in-process node: every method and error path, malformed, oversized
//! and slow-drip input, admission control, idle timeout and the drain.

mod support;

use std::io::Write;
use std::time::Duration;

use serde_json::json;
use support::{Client, TestNode};

#[test]
fn handshake_negotiates_the_version_and_lists_capabilities() {
    let node = TestNode::start(|_| {});
    let mut client = Client::connect(node.tcp);
    let init = client.initialize();
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "erlmcp-node");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    let mut other = Client::connect(node.tcp);
    let unknown = other.request(1, "initialize", json!({"protocolVersion": "1999-01-01", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}));
    assert_eq!(unknown["result"]["protocolVersion"], "2025-11-25");
}

#[test]
fn every_method_answers() {
    let node = TestNode::start(|_| {});
    let mut c = Client::connect(node.tcp);
    c.initialize();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("ping", json!({}), "/result"),
        ("tools/list", json!({}), "/result/tools/4/name"),
        (
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}}),
            "/result/content/0/text",
        ),
        (
            "tools/call",
            json!({"name": "add", "arguments": {"a": 2, "b": 3.5}}),
            "/result/content/0/text",
        ),
        (
            "tools/call",
            json!({"name": "node_info", "arguments": {}}),
            "/result/structuredContent/name",
        ),
        (
            "tools/call",
            json!({"name": "cluster_status", "arguments": {}}),
            "/result/structuredContent/members/0/name",
        ),
        (
            "tools/call",
            json!({"name": "sleep_ms", "arguments": {"ms": 10}}),
            "/result/content/0/text",
        ),
        ("resources/list", json!({}), "/result/resources/1/uri"),
        (
            "resources/read",
            json!({"uri": "erlmcp://node/info"}),
            "/result/contents/0/uri",
        ),
        (
            "resources/read",
            json!({"uri": "erlmcp://cluster/members"}),
            "/result/contents/0/text",
        ),
        (
            "resources/templates/list",
            json!({}),
            "/result/resourceTemplates",
        ),
        ("prompts/list", json!({}), "/result/prompts/0/name"),
        (
            "prompts/get",
            json!({"name": "cluster_health_report", "arguments": {"focus": "latency"}}),
            "/result/messages/0/content/text",
        ),
        ("logging/setLevel", json!({"level": "warning"}), "/result"),
        ("server/discover", json!({}), "/result/supportedVersions"),
    ];
    for (i, (method, params, pointer)) in cases.into_iter().enumerate() {
        let reply = c.request(100 + i as u64, method, params);
        assert_eq!(reply["id"], 100 + i as u64, "{method}: {reply}");
        assert!(
            reply.pointer(pointer).is_some(),
            "{method}: no {pointer} in {reply}"
        );
    }
    assert_eq!(
        c.request(
            1,
            "tools/call",
            json!({"name": "echo", "arguments": {"text": "hi"}})
        )["result"]["content"][0]["text"],
        "hi"
    );
    assert_eq!(
        c.request(
            2,
            "tools/call",
            json!({"name": "add", "arguments": {"a": 2, "b": 3.5}})
        )["result"]["content"][0]["text"],
        "5.5"
    );
}

#[test]
fn error_paths_have_their_codes_and_the_session_lives_on() {
    let node = TestNode::start(|_| {});
    let mut c = Client::connect(node.tcp);
    assert_eq!(
        c.request(1, "tools/list", json!({}))["error"]["code"],
        -32600,
        "before initialize"
    );
    c.initialize();
    let cases: Vec<(&str, serde_json::Value, i64)> = vec![
        ("no/such/method", json!({}), -32601),
        (
            "tools/call",
            json!({"name": "nope", "arguments": {}}),
            -32602,
        ),
        (
            "tools/call",
            json!({"name": "echo", "arguments": {}}),
            -32602,
        ),
        (
            "tools/call",
            json!({"name": "sleep_ms", "arguments": {"ms": 999999}}),
            -32602,
        ),
        ("tools/call", json!({"arguments": {}}), -32602),
        ("resources/read", json!({"uri": "erlmcp://nothing"}), -32002),
        ("prompts/get", json!({"name": "nope"}), -32602),
        ("logging/setLevel", json!({"level": "loud"}), -32602),
    ];
    for (method, params, code) in cases {
        let reply = c.request(7, method, params.clone());
        assert_eq!(reply["error"]["code"], code, "{method} {params}: {reply}");
    }
    c.send_raw(b"{this is not json\n");
    assert_eq!(c.receive().unwrap()["error"]["code"], -32700);
    c.send_raw(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n");
    assert_eq!(c.receive().unwrap()["error"]["code"], -32600);
    assert!(
        c.request(8, "ping", json!({}))["result"].is_object(),
        "the session lives on"
    );
}

#[test]
fn slow_drip_input_is_reassembled() {
    let node = TestNode::start(|_| {});
    let mut c = Client::connect(node.tcp);
    c.initialize();
    let line = b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"drip\"}}}\n";
    for byte in line {
        c.writer.write_all(&[*byte]).unwrap();
        c.writer.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(c.receive().unwrap()["result"]["content"][0]["text"], "drip");
}

#[test]
fn an_oversized_line_gets_an_error_and_a_close() {
    let node = TestNode::start(|config| config.max_line_bytes = 1024);
    let mut c = Client::connect(node.tcp);
    c.initialize();
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"{}\"}}}}}}\n",
        "x".repeat(4096)
    );
    c.send_raw(big.as_bytes());
    let reply = c.receive().unwrap();
    assert_eq!(reply["error"]["code"], -32600);
    assert!(reply["error"]["message"].as_str().unwrap().contains("1024"));
    assert!(c.receive().is_none(), "closed after the error");
}

#[test]
fn beyond_max_connections_a_client_is_told_and_closed_and_others_are_served() {
    let node = TestNode::start(|config| config.max_connections = 2);
    let mut a = Client::connect(node.tcp);
    let mut b = Client::connect(node.tcp);
    a.initialize();
    b.initialize();
    let mut c = Client::connect(node.tcp);
    let refusal = c.receive().unwrap();
    assert_eq!(refusal["error"]["code"], -32000);
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("capacity")
    );
    assert!(c.receive().is_none());
    assert!(a.request(5, "ping", json!({}))["result"].is_object());
    assert!(
        node.node
            .metrics
            .render()
            .contains("erlmcp_connections_rejected_total 1")
    );
    drop(a);
    // The freed slot is usable again.
    let reopened = support::eventually(|| {
        let mut d = Client::connect(node.tcp);
        d.initialize().get("result").is_some()
    });
    assert!(reopened);
}

#[test]
fn an_idle_client_is_closed() {
    let node = TestNode::start(|config| config.idle_timeout = Duration::from_millis(200));
    let mut c = Client::connect(node.tcp);
    c.initialize();
    assert!(
        c.receive().is_none(),
        "an idle session is closed by the server"
    );
}

#[test]
fn sleep_ms_reports_progress_and_can_be_cancelled() {
    let node = TestNode::start(|_| {});
    let mut c = Client::connect(node.tcp);
    c.initialize();
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "sleep_ms", "arguments": {"ms": 350}, "_meta": {"progressToken": "t1"}}}));
    let mut progress = 0;
    loop {
        let message = c.receive().unwrap();
        if message["method"] == "notifications/progress" {
            assert_eq!(message["params"]["progressToken"], "t1");
            progress += 1;
        } else {
            assert_eq!(message["result"]["content"][0]["text"], "slept 350 ms");
            break;
        }
    }
    assert!(progress >= 2, "{progress} progress notifications");
    c.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sleep_ms", "arguments": {"ms": 5000}}}));
    c.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 2, "reason": "test"}}));
    // The cancelled request gets no answer; the next request is answered first.
    assert_eq!(c.request(3, "ping", json!({}))["id"], 3);
}

#[test]
fn the_drain_stops_accepting_and_finishes_in_flight_requests() {
    let mut node = TestNode::start(|config| config.drain_timeout = Duration::from_secs(5));
    let mut c = Client::connect(node.tcp);
    c.initialize();
    c.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "sleep_ms", "arguments": {"ms": 600}}}));
    std::thread::sleep(Duration::from_millis(100));
    let tcp = node.tcp;
    let state = node.node.clone();
    let shutdown = std::thread::spawn(move || node.shutdown());
    assert_eq!(
        c.receive().unwrap()["result"]["content"][0]["text"],
        "slept 600 ms",
        "in-flight work finished"
    );
    shutdown.join().unwrap();
    assert!(state.is_draining());
    assert!(
        std::net::TcpStream::connect(tcp).is_err(),
        "no longer accepting"
    );
}
