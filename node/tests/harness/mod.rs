//! Shared by the integration tests: an in-process node on ephemeral loopback ports, a line
//! client for MCP over TCP and a minimal HTTP/1.1 client (no HTTP client dependency needed).

#![allow(dead_code)] // each test file uses a different part

use std::net::SocketAddr;
use std::time::Duration;

use erlmcp_node::config::NodeConfig;
use erlmcp_node::server::Server;
use erlmcp_node::state::Node;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every wait in these tests is bounded by this, so a broken server fails a test, not hangs it.
pub const WAIT: Duration = Duration::from_secs(10);

/// A node running in this process.
pub struct TestNode {
    pub node: Node,
    pub api: SocketAddr,
    pub tcp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: JoinHandle<anyhow::Result<()>>,
}

impl TestNode {
    /// Starts a node with `tweak` applied to the test config.
    pub async fn start(tweak: impl FnOnce(&mut NodeConfig)) -> TestNode {
        let mut config = NodeConfig::for_tests();
        tweak(&mut config);
        let server = Server::bind(config).expect("bind on loopback");
        let (api, tcp, node) = (
            server.api_addr(),
            server.listener_addr(),
            server.node.clone(),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async move {
            let _ = stopped.await;
        }));
        TestNode {
            node,
            api,
            tcp,
            stop: Some(stop),
            task,
        }
    }

    /// Fires shutdown (the drain starts) without waiting for it to finish.
    pub fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// A `/metrics` scrape.
    pub async fn metrics(&self) -> String {
        http(self.api, "GET", "/metrics", &[], "").await.body
    }
}

/// Writes `request` to a client that never reads, at most 1,000 times and for at most
/// [`WAIT`], and asserts the server hung up (a write failed) and counted the close as a write
/// timeout.
pub async fn flood_until_write_timeout(node: &TestNode, stream: &mut TcpStream, request: &[u8]) {
    let flood = tokio::time::timeout(WAIT, async {
        for _ in 0..1_000 {
            if stream.write_all(request).await.is_err() {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(flood, Ok(true)),
        "the server kept a client that never reads: {flood:?}"
    );
    let metrics = node.metrics().await;
    assert!(
        metrics.contains("erlmcp_connections_closed_total{reason=\"write_timeout\"} 1"),
        "{metrics}"
    );
}

/// One MCP-over-TCP connection.
pub struct Client {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (read, writer) = stream.into_split();
        Client {
            reader: BufReader::new(read),
            writer,
        }
    }

    /// Connects and completes the handshake.
    pub async fn initialized(addr: SocketAddr) -> Client {
        let mut client = Client::connect(addr).await;
        let reply = client.request(&initialize(1, "2025-06-18")).await;
        assert_eq!(reply["result"]["protocolVersion"], "2025-06-18", "{reply}");
        client
            .send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
            .await;
        client
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("write");
    }

    pub async fn send(&mut self, message: &Value) {
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        self.send_raw(&line).await;
    }

    /// The next line, parsed; None when the server closed the connection.
    pub async fn recv(&mut self) -> Option<Value> {
        let mut line = String::new();
        let n = tokio::time::timeout(WAIT, self.reader.read_line(&mut line))
            .await
            .expect("a reply within the wait")
            .ok()?;
        (n > 0).then(|| serde_json::from_str(&line).expect("replies are JSON"))
    }

    pub async fn request(&mut self, message: &Value) -> Value {
        self.send(message).await;
        self.recv().await.expect("a reply, not a close")
    }

    /// True when the server closed the connection (EOF or reset) within the wait.
    pub async fn closed(&mut self) -> bool {
        let mut rest = Vec::new();
        matches!(
            tokio::time::timeout(WAIT, self.reader.read_to_end(&mut rest)).await,
            Ok(Ok(_)) | Ok(Err(_))
        )
    }
}

pub fn initialize(id: u64, version: &str) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"initialize","params":{
        "protocolVersion":version,"capabilities":{},"clientInfo":{"name":"it","version":"0"}}})
}

pub fn call(id: u64, tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":arguments}})
}

/// An HTTP response, headers lower-cased.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request with `Connection: close`; reads the whole response (de-chunked).
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: {addr}\r\n"));
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .expect("a response within the wait")
        .expect("read");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// The `data:` payloads of an SSE body, parsed.
pub fn sse_messages(body: &str) -> Vec<Value> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("SSE data is JSON"))
        .collect()
}
