//! `erlmcp_network_{receive,transmit}_bytes_total` count the bytes of the node's MCP and HTTP
//! sockets: an echo of a known size moves both counters by at least its size.

mod harness;

use harness::{Client, TestNode, call};
use serde_json::json;

fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
        .unwrap_or_else(|| panic!("{name} missing:\n{metrics}")) as u64
}

#[tokio::test]
async fn an_echo_moves_both_counters_by_at_least_its_size() {
    let node = TestNode::start(|_| {}).await;
    // Reading /metrics is itself HTTP traffic: compare two readings around the echo, each of
    // which counts the previous reading's bytes.
    let before = node.metrics().await;
    let (rx0, tx0) = (
        counter(&before, "erlmcp_network_receive_bytes_total"),
        counter(&before, "erlmcp_network_transmit_bytes_total"),
    );
    let text = "x".repeat(10_000);
    let mut client = Client::initialized(node.tcp).await;
    let echo = client
        .request(&call(7, "echo", json!({ "text": text })))
        .await;
    assert_eq!(
        echo["result"]["content"][0]["text"].as_str().map(str::len),
        Some(10_000)
    );
    let after = node.metrics().await;
    let (rx1, tx1) = (
        counter(&after, "erlmcp_network_receive_bytes_total"),
        counter(&after, "erlmcp_network_transmit_bytes_total"),
    );
    assert!(rx1 - rx0 >= 10_000, "received {rx0} -> {rx1}");
    assert!(tx1 - tx0 >= 10_000, "sent {tx0} -> {tx1}");
    // The HTTP side counts too: the first scrape's response is in the second's figure.
    assert!(
        tx1 - tx0 >= 10_000 + before.len() as u64,
        "sent {tx0} -> {tx1}"
    );
}
