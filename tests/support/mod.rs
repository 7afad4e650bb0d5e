//! Test doubles for stress tests: a mock MCP node and a bare echo server, each on its own
//! thread and runtime, bound to 127.0.0.1 port 0, killable mid-run; and a real erlmcp-node.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How a mock server behaves.
#[derive(Debug, Clone, Copy)]
pub struct MockConfig {
    /// Speak MCP (handshake, `tools/call echo`), or echo every line back unchanged.
    pub mcp: bool,
    /// Sessions it holds before refusing new ones with a JSON-RPC error.
    pub capacity: usize,
    /// Whether it answers echo requests (false: it reads them and stays silent).
    pub answers: bool,
}

impl MockConfig {
    /// An MCP node that answers everything, with room for `capacity` sessions.
    pub fn mcp(capacity: usize) -> Self {
        Self {
            mcp: true,
            capacity,
            answers: true,
        }
    }

    /// A bare newline echo server.
    pub fn baseline() -> Self {
        Self {
            mcp: false,
            capacity: usize::MAX,
            answers: true,
        }
    }
}

/// A running mock server; dropping it kills it.
pub struct MockServer {
    /// Where it listens.
    pub addr: SocketAddr,
    kill: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
    active: Arc<AtomicUsize>,
}

impl MockServer {
    /// Starts a server with `config`.
    pub fn start(config: MockConfig) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (kill, killed) = watch::channel(false);
        let active = Arc::new(AtomicUsize::new(0));
        let counter = active.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(serve(config, addr_tx, killed, counter));
        });
        let addr = addr_rx.recv().unwrap();
        Self {
            addr,
            kill,
            thread: Some(thread),
            active,
        }
    }

    /// Sessions currently open.
    pub fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection at once, like a node crash.
    pub fn kill(&mut self) {
        let _ = self.kill.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn serve(
    config: MockConfig,
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
    mut killed: watch::Receiver<bool>,
    active: Arc<AtomicUsize>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    addr_tx.send(listener.local_addr().unwrap()).unwrap();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let active = active.clone();
                connections.spawn(async move { handle(config, stream, active).await });
            }
            _ = killed.wait_for(|k| *k) => break,
        }
    }
    // Dropping the tasks drops their sockets: peers see the connection end.
    connections.shutdown().await;
    active.store(0, Ordering::SeqCst);
}

async fn handle(config: MockConfig, mut stream: TcpStream, active: Arc<AtomicUsize>) {
    if active.fetch_add(1, Ordering::SeqCst) >= config.capacity {
        let refusal = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32000,\"message\":\"at capacity\"}}\n";
        let _ = stream.write_all(refusal.as_bytes()).await;
        let _ = stream.shutdown().await;
        active.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = if !config.mcp {
            Some(line)
        } else {
            let request: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let id = request["id"].clone();
            match request["method"].as_str() {
                Some("initialize") => Some(
                    serde_json::json!({"jsonrpc":"2.0","id":id,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"mock","version":"0"}}}).to_string(),
                ),
                Some("tools/call") if config.answers => {
                    let text = request["params"]["arguments"]["text"].clone();
                    Some(serde_json::json!({"jsonrpc":"2.0","id":id,"result":{"content":[{"type":"text","text":text}],"isError":false}}).to_string())
                }
                _ => None,
            }
        };
        if let Some(mut reply) = reply {
            reply.push('\n');
            if writer.write_all(reply.as_bytes()).await.is_err() {
                break;
            }
        }
    }
    active.fetch_sub(1, Ordering::SeqCst);
}

/// A loopback address nothing listens on (bound, then released).
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A real erlmcp-node (the node crate's server, in this process on its own runtime thread),
/// bound to 127.0.0.1 on free ports; stopped (drained) when dropped.
pub struct RealNode {
    /// The node's shared state, to look at its sessions.
    pub node: erlmcp_node::state::Node,
    /// Its API port: Streamable HTTP at `/mcp`, `/metrics`.
    pub api: SocketAddr,
    /// Its MCP-over-TCP listener.
    pub tcp: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RealNode {
    /// Starts a node that admits at most `max_connections` sessions (its `--max-connections`).
    pub fn start(max_connections: usize) -> Self {
        let mut config = erlmcp_node::config::NodeConfig::for_tests();
        config.max_connections = max_connections;
        config.drain_timeout = std::time::Duration::from_secs(1);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = erlmcp_node::server::Server::bind(config).unwrap();
                ready_tx
                    .send((
                        server.node.clone(),
                        server.api_addr(),
                        server.listener_addr(),
                    ))
                    .unwrap();
                let _ = server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        let (node, api, tcp) = ready_rx.recv().unwrap();
        RealNode {
            node,
            api,
            tcp,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Streamable HTTP sessions the node holds now.
    pub fn http_sessions(&self) -> usize {
        self.node.http_sessions.lock().unwrap().len()
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
