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
