//! MCP over TCP against hostile clients: each test is one way a single client could hold a
//! node's memory, descriptors or tasks, and the bound that stops it. All traffic is to 127.0.0.1
//! and bounded in count and time.

mod harness;

use std::time::Duration;

use harness::{Client, TestNode, WAIT, call, flood_until_write_timeout};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Polls `check` every 20 ms until it holds or the test's wait runs out.
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Sends `byte` every `every`, at most `count` times, while watching for the server to close;
/// true when it did.
async fn drip_until_closed(
    stream: &mut TcpStream,
    byte: u8,
    every: Duration,
    count: usize,
) -> bool {
    let mut buffer = [0u8; 4096];
    for _ in 0..count {
        if stream.write_all(&[byte]).await.is_err() {
            return true;
        }
        let deadline = tokio::time::Instant::now() + every;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
                Err(_) => break, // nothing yet: drip again
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => {} // a reply (or the close's error line): keep watching
            }
        }
    }
    false
}

async fn initialized_stream(node: &TestNode) -> TcpStream {
    let mut stream = TcpStream::connect(node.tcp).await.unwrap();
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"it","version":"0"}}});
    stream
        .write_all(format!("{init}\n").as_bytes())
        .await
        .unwrap();
    let mut reply = [0u8; 4096];
    let n = stream.read(&mut reply).await.unwrap();
    assert!(n > 0);
    stream
}

#[tokio::test]
async fn a_drip_that_completes_no_message_is_closed_by_the_idle_timeout() {
    // One byte every 150 ms never finishes a message: the 600 ms idle timeout still applies.
    let node = TestNode::start(|c| c.idle_timeout = Duration::from_millis(600)).await;
    let mut stream = initialized_stream(&node).await;
    let closed = drip_until_closed(&mut stream, b' ', Duration::from_millis(150), 40).await;
    assert!(closed, "a client dripping bytes outlived the idle timeout");
}

#[tokio::test]
async fn a_line_started_but_not_finished_is_closed_by_the_read_timeout() {
    let node = TestNode::start(|c| {
        c.idle_timeout = Duration::from_secs(300);
        c.read_timeout = Duration::from_millis(500);
    })
    .await;
    let mut stream = initialized_stream(&node).await;
    let closed = drip_until_closed(&mut stream, b'x', Duration::from_millis(100), 60).await;
    assert!(closed, "a slowloris line outlived the read timeout");
    assert!(
        node.metrics()
            .await
            .contains("erlmcp_connections_closed_total{reason=\"read_timeout\"} 1")
    );
}

#[tokio::test]
async fn partial_lines_of_many_connections_share_the_input_budget() {
    let node = TestNode::start(|c| {
        c.max_line_bytes = 1_000;
        c.input_budget_bytes = 2_500;
    })
    .await;
    let mut first = Client::initialized(node.tcp).await;
    let mut second = Client::initialized(node.tcp).await;
    let mut third = Client::initialized(node.tcp).await;
    // Each line is within the per-line limit; together they are past the node's budget.
    first.send_raw(&[b'x'; 900]).await;
    assert!(eventually(|| node.node.input_budget.held() >= 900).await);
    second.send_raw(&[b'x'; 900]).await;
    assert!(eventually(|| node.node.input_budget.held() >= 1_800).await);
    third.send_raw(&[b'x'; 900]).await;
    let refusal = third.recv().await.expect("an error line before the close");
    assert_eq!(refusal["error"]["code"], -32600);
    assert!(
        refusal["error"]["message"]
            .as_str()
            .unwrap()
            .contains("partially received input"),
        "{refusal}"
    );
    assert!(third.closed().await);
    assert!(node.node.input_budget.held() <= 2_500);
    // The others keep their partial lines and are still served.
    for client in [&mut first, &mut second] {
        client.send_raw(b"\n").await; // ends the line of x: a parse error, not a close
        let reply = client.recv().await.expect("still served");
        assert_eq!(reply["error"]["code"], -32700);
    }
    assert!(eventually(|| node.node.input_budget.held() == 0).await);
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected_by_the_write_timeout() {
    let node = TestNode::start(|c| c.write_timeout = Duration::from_millis(300)).await;
    let mut stream = initialized_stream(&node).await;
    for id in 10..13 {
        let sleep = call(id, "sleep_ms", json!({"ms": 60_000}));
        stream
            .write_all(format!("{sleep}\n").as_bytes())
            .await
            .unwrap();
    }
    assert!(eventually(|| node.node.metrics.in_flight.get() == 3).await);
    // Large echoes, pipelined, never read: the socket buffers fill, then the server's write
    // waits. At most 1,000 requests of 60 KiB, bounded in time by the test's wait.
    let request = format!(
        "{}\n",
        call(2, "echo", json!({"text": "y".repeat(60 * 1024)}))
    );
    flood_until_write_timeout(&node, &mut stream, request.as_bytes()).await;
    assert!(eventually(|| node.node.sessions_open() == 0).await);
    assert!(
        eventually(|| node.node.metrics.in_flight.get() == 0).await,
        "the disconnected client's requests kept running"
    );
}

#[tokio::test]
async fn in_flight_requests_per_session_are_bounded() {
    let node = TestNode::start(|c| c.max_in_flight_per_session = 4).await;
    let mut client = Client::initialized(node.tcp).await;
    // A flood of long requests with progress tokens: only the cap runs, the rest are refused.
    for id in 1..=100 {
        let mut sleep = call(id, "sleep_ms", json!({"ms": 1_000}));
        sleep["params"]["_meta"] = json!({"progressToken": id});
        client.send(&sleep).await;
        assert!(node.node.metrics.in_flight.get() <= 4);
    }
    let (mut refused, mut done) = (0, Vec::new());
    while refused + done.len() < 100 {
        let message = client.recv().await.expect("an answer to every request");
        assert!(node.node.metrics.in_flight.get() <= 4);
        if message.get("id").is_none() {
            continue; // progress
        }
        if message["error"]["code"] == -32000 {
            let text = message["error"]["message"].as_str().unwrap();
            assert!(text.contains("in flight"), "{message}");
            refused += 1;
        } else {
            assert!(message["result"].is_object(), "{message}");
            done.push(message["id"].as_u64().unwrap());
        }
    }
    assert_eq!(refused, 96);
    done.sort_unstable();
    assert_eq!(done, [1, 2, 3, 4]);
    // Room again once they finished.
    let again = client
        .request(&call(200, "sleep_ms", json!({"ms": 10})))
        .await;
    assert!(again["result"].is_object(), "{again}");
}

#[tokio::test]
async fn a_client_that_leaves_cancels_its_requests() {
    let node = TestNode::start(|_| {}).await;
    let mut client = Client::initialized(node.tcp).await;
    for id in 1..=3 {
        client
            .send(&call(id, "sleep_ms", json!({"ms": 60_000})))
            .await;
    }
    assert!(eventually(|| node.node.metrics.in_flight.get() == 3).await);
    drop(client);
    assert!(
        eventually(|| node.node.metrics.in_flight.get() == 0).await,
        "requests of a gone client kept running"
    );
}

#[tokio::test]
async fn a_long_request_does_not_count_as_idleness() {
    let node = TestNode::start(|c| c.idle_timeout = Duration::from_millis(300)).await;
    let mut client = Client::initialized(node.tcp).await;
    // The request outlasts the idle timeout; the client waits for it, then asks again at once.
    let slept = client
        .request(&call(2, "sleep_ms", json!({"ms": 800})))
        .await;
    assert!(slept["result"].is_object(), "{slept}");
    let echo = client
        .request(&call(3, "echo", json!({"text": "still here"})))
        .await;
    assert_eq!(echo["result"]["content"][0]["text"], "still here");
}

#[tokio::test]
async fn a_long_progress_token_gets_no_progress() {
    let node = TestNode::start(|_| {}).await;
    let mut client = Client::initialized(node.tcp).await;
    // Every progress notification repeats the token, and the outbound queue counts messages:
    // a message-sized token would make each queued notification message-sized.
    for (id, token, progress) in [(5, "t".repeat(64), true), (6, "t".repeat(4_096), false)] {
        let mut sleep = call(id, "sleep_ms", json!({"ms": 350}));
        sleep["params"]["_meta"] = json!({ "progressToken": token });
        client.send(&sleep).await;
        let first = client.recv().await.expect("a message");
        let got_progress = first["method"] == "notifications/progress";
        assert_eq!(got_progress, progress, "{id}: {first}");
        let mut last = first;
        while last["id"] != id {
            last = client.recv().await.expect("the response");
        }
        assert!(last.get("result").is_some(), "{last}");
    }
}
