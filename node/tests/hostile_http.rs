//! The API port against hostile clients: half-sent requests, idle keep-alive connections, every
//! connection taken, requests whose clients left, and clients that do not read their responses.
//! All traffic is to 127.0.0.1 and bounded.

mod harness;

use std::net::SocketAddr;
use std::time::Duration;

use harness::{TestNode, WAIT, call, flood_until_write_timeout, http};
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

/// Everything the server sends until it closes (within the test's wait), as text; None when it
/// kept the connection open.
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut raw = Vec::new();
    match tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await {
        Ok(_) => Some(String::from_utf8_lossy(&raw).into_owned()),
        Err(_) => None,
    }
}

fn stateless_sleep(id: u64, ms: u64) -> String {
    let mut sleep = call(id, "sleep_ms", json!({ "ms": ms }));
    sleep["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28"});
    sleep.to_string()
}

fn post_head(addr: SocketAddr, accept: &str, length: usize) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: {accept}\r\nMCP-Protocol-Version: 2026-07-28\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn stateless_requests_whose_clients_left_are_cancelled() {
    let node = TestNode::start(|_| {}).await;
    let mut clients = Vec::new();
    for (id, accept) in [(1, "application/json"), (2, "text/event-stream")] {
        let body = stateless_sleep(id, 60_000);
        let mut stream = TcpStream::connect(node.api).await.unwrap();
        let request = post_head(node.api, accept, body.len()) + &body;
        stream.write_all(request.as_bytes()).await.unwrap();
        clients.push(stream);
    }
    assert!(eventually(|| node.node.metrics.in_flight.get() == 2).await);
    drop(clients);
    assert!(
        eventually(|| node.node.metrics.in_flight.get() == 0).await,
        "requests of clients that left kept running"
    );
}

#[tokio::test]
async fn a_half_sent_header_is_closed_by_the_read_timeout() {
    let node = TestNode::start(|c| c.read_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.is_some(), "a half-sent header held its connection");
}

#[tokio::test]
async fn a_half_sent_body_gets_408_and_a_close() {
    let node = TestNode::start(|c| c.read_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    let request = post_head(node.api, "application/json", 100) + "{\"jsonrpc\":";
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream)
        .await
        .expect("closed within the wait");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        node.metrics()
            .await
            .contains("erlmcp_connections_closed_total{reason=\"read_timeout\"} 1")
    );
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_sent() {
    let node = TestNode::start(|c| c.max_line_bytes = 1024).await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    // Announces 100 MiB, sends a few bytes: the answer must not wait for the rest.
    let request = post_head(node.api, "application/json", 100 << 20) + "{\"jsonrpc\":";
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream)
        .await
        .expect("closed within the wait");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let node = TestNode::start(|c| c.keep_alive_timeout = Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    let request = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", node.api);
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    // No second request: the server ends the connection rather than hold it.
    assert!(read_until_closed(&mut stream).await.is_some());
}

#[tokio::test]
async fn a_keep_alive_connection_idle_past_the_read_timeout_still_serves() {
    // A client idle between calls keeps its connection for the keep-alive timeout: the read
    // timeout bounds a started request head, not the wait for the next one.
    let node = TestNode::start(|c| {
        c.read_timeout = Duration::from_millis(200);
        c.keep_alive_timeout = WAIT * 6;
    })
    .await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    let get = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", node.api);
    stream.write_all(get.as_bytes()).await.unwrap();
    read_health_answers(&mut stream, 1).await;
    tokio::time::sleep(Duration::from_millis(1_000)).await; // five read timeouts, parked
    stream.write_all(get.as_bytes()).await.unwrap();
    read_health_answers(&mut stream, 1).await;
}

#[tokio::test]
async fn a_new_connection_that_sends_nothing_is_closed_by_the_read_timeout() {
    // The long keep-alive timeout is for connections that have made a request.
    let node = TestNode::start(|c| {
        c.read_timeout = Duration::from_millis(500);
        c.keep_alive_timeout = WAIT * 6;
    })
    .await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    assert_eq!(read_until_closed(&mut stream).await.as_deref(), Some(""));
}

/// Reads until `count` complete `/health` answers (`ok` bodies) arrived, within the wait.
async fn read_health_answers(stream: &mut TcpStream, count: usize) -> String {
    let mut raw = Vec::new();
    let mut chunk = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = String::from_utf8_lossy(&raw).into_owned();
        if text.matches("HTTP/1.1 200").count() >= count
            && text.matches("\r\n\r\nok\n").count() >= count
        {
            return text;
        }
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("{count} answers not received; got {text:?}"))
            .unwrap();
        assert!(n > 0, "closed before {count} answers; got {text:?}");
        raw.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn a_keep_alive_connection_parked_between_requests_keeps_serving_them() {
    // Between requests the connection is taken back from hyper; requests that were read ahead
    // (pipelined, or the start of one) must survive that and be answered in order.
    let node = TestNode::start(|c| c.read_timeout = Duration::from_secs(5)).await;
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    let get = format!("GET /health HTTP/1.1\r\nHost: {}\r\n\r\n", node.api);
    stream.write_all(get.as_bytes()).await.unwrap();
    read_health_answers(&mut stream, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await; // parked now
    stream.write_all(get.as_bytes()).await.unwrap();
    read_health_answers(&mut stream, 1).await;
    // Two whole requests and half of a third in one write, the rest of the third later.
    let (half, rest) = get.split_at(20);
    let pipelined = format!("{get}{get}{half}");
    stream.write_all(pipelined.as_bytes()).await.unwrap();
    read_health_answers(&mut stream, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(rest.as_bytes()).await.unwrap();
    read_health_answers(&mut stream, 1).await;
    // And a POST with a body on the same connection after all that.
    let body = stateless_sleep(9, 1);
    let request = post_head(node.api, "application/json", body.len()) + &body;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(WAIT, stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
}

#[tokio::test]
async fn with_every_http_connection_taken_probes_still_answer() {
    let node = TestNode::start(|c| {
        c.max_http_connections = 3;
        c.probe_connections = 2;
    })
    .await;
    // Three idle connections take every full slot (a client holding them open, sending nothing).
    let mut hogs = Vec::new();
    for _ in 0..3 {
        hogs.push(TcpStream::connect(node.api).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await; // let the node accept them
    assert_eq!(http(node.api, "GET", "/health", &[], "").await.status, 200);
    assert_eq!(http(node.api, "GET", "/ready", &[], "").await.status, 200);
    assert!(node.metrics().await.contains("erlmcp_connections_active"));
    let mcp = http(node.api, "POST", "/mcp", &[], "{}").await;
    assert_eq!(mcp.status, 503, "{mcp:?}");
    assert!(mcp.body.contains("only /health"), "{mcp:?}");
    // Past the probe reserve too, a connection is closed at once instead of queued.
    tokio::time::sleep(Duration::from_millis(100)).await; // the probes' slots come back
    for _ in 0..2 {
        hogs.push(TcpStream::connect(node.api).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut late = TcpStream::connect(node.api).await.unwrap();
    let answer = read_until_closed(&mut late).await;
    assert_eq!(answer.as_deref(), Some(""), "closed without an answer");
    assert!(
        eventually(|| node
            .node
            .metrics
            .render()
            .contains("reason=\"http_full\"} 1"))
        .await
    );
    // Idle connections hold the probe lane only briefly: a probe that retries gets through
    // while every other connection is still held.
    let mut served = false;
    for _ in 0..40 {
        let mut stream = TcpStream::connect(node.api).await.unwrap();
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            node.api
        );
        let _ = stream.write_all(request.as_bytes()).await;
        if read_until_closed(&mut stream)
            .await
            .is_some_and(|a| a.starts_with("HTTP/1.1 200"))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(served, "a retrying probe never got through");
    // Freed slots serve again.
    drop(hogs);
    let mut served = false;
    for _ in 0..50 {
        let mut stream = TcpStream::connect(node.api).await.unwrap();
        let request = format!(
            "GET /health HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            node.api
        );
        let _ = stream.write_all(request.as_bytes()).await;
        if read_until_closed(&mut stream)
            .await
            .is_some_and(|a| a.starts_with("HTTP/1.1 200"))
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served);
}

#[tokio::test]
async fn http_bodies_being_read_count_against_the_input_budget() {
    let node = TestNode::start(|c| {
        c.max_line_bytes = 1_000;
        c.input_budget_bytes = 2_500;
    })
    .await;
    // Two half-sent bodies of 1,000 bytes each hold 2,000 of the 2,500.
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(node.api).await.unwrap();
        let request = post_head(node.api, "application/json", 1_000) + "{";
        stream.write_all(request.as_bytes()).await.unwrap();
        slow.push(stream);
    }
    assert!(eventually(|| node.node.input_budget.held() == 2_000).await);
    let refused = http(
        node.api,
        "POST",
        "/mcp",
        &[("Content-Type", "application/json")],
        &"x".repeat(900),
    )
    .await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(
        refused.body.contains("partially received input"),
        "{refused:?}"
    );
    drop(slow);
    assert!(eventually(|| node.node.input_budget.held() == 0).await);
}

/// A connection to the API port that reads as little as the kernel allows: its receive buffer
/// is as small as it can be, so the server's writes back up within a few hundred KiB.
async fn connect_not_reading(addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn an_sse_stream_nobody_reads_is_closed_by_the_write_timeout_and_its_request_cancelled() {
    use erlmcp_node::write_deadline::{WriteDeadline, is_write_timeout};
    use hyper_util::rt::TokioIo;
    use hyper_util::service::TowerToHyperService;

    // The API port's connection (router, write deadline, hyper) on an in-memory pipe of 4 KiB:
    // a loopback socket's buffers take megabytes, which progress events of a few hundred bytes,
    // ten a second, would need minutes to fill.
    let mut config = erlmcp_node::config::NodeConfig::for_tests();
    config.write_timeout = Duration::from_millis(300);
    let node = erlmcp_node::state::NodeState::new(config);
    let (mut client, server) = tokio::io::duplex(4096);
    let routes = erlmcp_node::http::router(node.clone());
    let connection = tokio::spawn(hyper::server::conn::http1::Builder::new().serve_connection(
        TokioIo::new(WriteDeadline::new(server, node.config.write_timeout)),
        TowerToHyperService::new(routes),
    ));
    let mut sleep = call(1, "sleep_ms", json!({ "ms": 60_000 }));
    sleep["params"]["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "progressToken": "p".repeat(64),
    });
    let body = sleep.to_string();
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let request = post_head(addr, "text/event-stream", body.len()) + &body;
    client.write_all(request.as_bytes()).await.unwrap();
    assert!(eventually(|| node.metrics.in_flight.get() == 1).await);
    // Never read: the pipe fills, the write waits, the deadline ends the connection.
    let ended = tokio::time::timeout(WAIT, connection)
        .await
        .expect("the connection of a client that stopped reading was kept")
        .unwrap();
    let error = ended.expect_err("ended by an error");
    assert!(is_write_timeout(&error), "{error:?}");
    assert!(
        eventually(|| node.metrics.in_flight.get() == 0).await,
        "the request of a client that stopped reading its stream kept running"
    );
}

#[tokio::test]
async fn json_responses_nobody_reads_are_closed_by_the_write_timeout() {
    let node = TestNode::start(|c| c.write_timeout = Duration::from_millis(300)).await;
    let mut stream = connect_not_reading(node.api).await;
    let mut echo = call(1, "echo", json!({ "text": "y".repeat(60 * 1024) }));
    echo["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28"});
    let body = echo.to_string();
    let request = post_head(node.api, "application/json", body.len()) + &body;
    // Pipelined on one keep-alive connection, never read: the responses back up, then the
    // server's write waits. At most 1,000 requests of 60 KiB, bounded by the test's wait.
    flood_until_write_timeout(&node, &mut stream, request.as_bytes()).await;
}

#[tokio::test]
async fn a_get_stream_ends_after_the_idle_timeout() {
    let node = TestNode::start(|c| c.idle_timeout = Duration::from_millis(1_500)).await;
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
    let accept = ("Accept", "application/json, text/event-stream");
    let opened = http(node.api, "POST", "/mcp", &[accept], &init.to_string()).await;
    let id = opened
        .header("mcp-session-id")
        .expect("a session")
        .to_string();
    // Its keep-alives are a few bytes every 15 s: a client that never reads them would never
    // fill a socket, so only the stream's own end frees the connection.
    let mut stream = TcpStream::connect(node.api).await.unwrap();
    let head = format!(
        "GET /mcp HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\n\r\n",
        node.api
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The stream's end is the last chunk; the connection then waits for its next request, which
    // the read timeout bounds.
    let mut raw = Vec::new();
    let ended = tokio::time::timeout(WAIT, async {
        let mut chunk = [0u8; 1024];
        while !raw.ends_with(b"\r\n0\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        ended.is_ok() && raw.starts_with(b"HTTP/1.1 200"),
        "the GET stream held its connection past the idle timeout: {}",
        String::from_utf8_lossy(&raw)
    );
}
