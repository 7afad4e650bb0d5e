//! Admission control (a full node refuses clearly and keeps serving) and the graceful drain.

mod harness;

use std::time::Duration;

use harness::{Client, TestNode, WAIT, call, http};
use serde_json::json;

#[tokio::test]
async fn beyond_max_connections_a_client_gets_an_error_and_a_close() {
    let node = TestNode::start(|c| c.max_connections = 2).await;
    let mut first = Client::initialized(node.tcp).await;
    let mut second = Client::initialized(node.tcp).await;
    assert_eq!(http(node.api, "GET", "/ready", &[], "").await.status, 503);

    let mut third = Client::connect(node.tcp).await;
    let refusal = third.recv().await.expect("an error line before the close");
    assert_eq!(refusal["error"]["code"], -32000);
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("capacity")
    );
    assert!(third.closed().await);
    assert!(
        node.metrics()
            .await
            .contains("erlmcp_connections_rejected_total 1")
    );

    // Everyone admitted is still served, and a freed slot admits again.
    for client in [&mut first, &mut second] {
        let echo = client
            .request(&call(7, "echo", json!({"text":"still here"})))
            .await;
        assert_eq!(echo["result"]["content"][0]["text"], "still here");
    }
    drop(first);
    let mut again = None;
    for _ in 0..100 {
        if node.node.sessions_open() < 2 {
            again = Some(Client::initialized(node.tcp).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a closed session frees its slot");
}

#[tokio::test]
async fn http_sessions_count_against_the_same_cap() {
    let node = TestNode::start(|c| c.max_connections = 1).await;
    let _tcp = Client::initialized(node.tcp).await;
    let body = harness::initialize(1, "2025-06-18").to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let refused = http(node.api, "POST", "/mcp", &headers, &body).await;
    assert_eq!(refused.status, 503);
    assert_eq!(refused.json()["error"]["code"], -32000);
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_then_returns() {
    let mut node = TestNode::start(|c| c.drain_timeout = WAIT).await;
    let mut busy = Client::initialized(node.tcp).await;
    busy.send(&call(1, "sleep_ms", json!({"ms": 300}))).await;
    // Wait until the request is in flight, then start the drain.
    for _ in 0..100 {
        if node.node.metrics.in_flight.get() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.shutdown();
    for _ in 0..100 {
        if node.node.is_draining() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The in-flight request still completes.
    let done = busy.recv().await.expect("the in-flight response");
    assert_eq!(done["id"], 1);
    assert!(done["result"].is_object(), "{done}");
    // The server returns by itself once nothing is in flight.
    let finished = tokio::time::timeout(WAIT, &mut node.task).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
}

#[tokio::test]
async fn a_draining_node_is_not_ready_and_refuses_new_sessions() {
    let node = TestNode::start(|_| {}).await;
    node.node.start_draining();
    assert_eq!(http(node.api, "GET", "/ready", &[], "").await.status, 503);
    assert_eq!(http(node.api, "GET", "/health", &[], "").await.status, 200);
    let mut late = Client::connect(node.tcp).await;
    let refusal = late.recv().await.expect("a refusal line");
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("shutting down")
    );
    let _ = json!(null);
}

#[tokio::test]
async fn past_the_drain_timeout_every_in_flight_request_gets_a_shutting_down_error() {
    let mut node = TestNode::start(|c| c.drain_timeout = Duration::from_millis(300)).await;
    let mut tcp = Client::initialized(node.tcp).await;
    for id in [1, 2] {
        tcp.send(&call(id, "sleep_ms", json!({"ms": 30_000}))).await;
    }
    // A stateless HTTP request answered as JSON, and one answered as an SSE stream.
    let mut posts = Vec::new();
    for (id, accept) in [(3, "application/json"), (4, "text/event-stream")] {
        let mut sleep = call(id, "sleep_ms", json!({"ms": 30_000}));
        sleep["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28"});
        let api = node.api;
        posts.push(tokio::spawn(async move {
            let headers = [
                ("Content-Type", "application/json"),
                ("Accept", accept),
                ("MCP-Protocol-Version", "2026-07-28"),
            ];
            http(api, "POST", "/mcp", &headers, &sleep.to_string()).await
        }));
    }
    for _ in 0..200 {
        if node.node.metrics.in_flight.get() == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(node.node.metrics.in_flight.get(), 4);
    node.shutdown();
    let shutting_down = |reply: &serde_json::Value, id: u64| {
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["error"]["code"], -32000, "{reply}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains("shutting down"), "{reply}");
    };
    let mut answers = [tcp.recv().await.unwrap(), tcp.recv().await.unwrap()];
    answers.sort_by_key(|reply| reply["id"].as_u64());
    shutting_down(&answers[0], 1);
    shutting_down(&answers[1], 2);
    let json_reply = posts.remove(0).await.unwrap();
    assert_eq!(json_reply.status, 200);
    shutting_down(&json_reply.json(), 3);
    let sse_reply = posts.remove(0).await.unwrap();
    let events = harness::sse_messages(&sse_reply.body);
    shutting_down(events.last().expect("an event"), 4);
    let finished = tokio::time::timeout(WAIT, &mut node.task).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
}

#[tokio::test]
async fn the_api_port_answers_through_the_drain() {
    let mut node = TestNode::start(|c| c.drain_timeout = WAIT).await;
    let mut busy = Client::initialized(node.tcp).await;
    busy.send(&call(1, "sleep_ms", json!({"ms": 1_500}))).await;
    for _ in 0..100 {
        if node.node.metrics.in_flight.get() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.shutdown();
    for _ in 0..100 {
        if node.node.is_draining() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Still draining (the request runs): the probe says so instead of being refused.
    let ready = http(node.api, "GET", "/ready", &[], "").await;
    assert_eq!(ready.status, 503);
    assert!(ready.body.contains("draining"));
    assert_eq!(http(node.api, "GET", "/health", &[], "").await.status, 200);
    let body = harness::initialize(1, "2025-06-18").to_string();
    let headers = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    assert_eq!(
        http(node.api, "POST", "/mcp", &headers, &body).await.status,
        503,
        "no new MCP sessions during the drain"
    );
    let done = busy.recv().await.expect("the in-flight response");
    assert!(done["result"].is_object(), "{done}");
    let finished = tokio::time::timeout(WAIT, &mut node.task).await;
    assert!(matches!(finished, Ok(Ok(Ok(())))), "{finished:?}");
}
