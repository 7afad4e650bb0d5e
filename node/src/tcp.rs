//! MCP over plain TCP, newline-delimited (the stdio framing), one session per connection.
//!
//! Memory is the design constraint: a node holds tens of thousands of idle sessions. An idle
//! connection is a task waiting for readability that owns a socket, three bytes of session
//! state and an empty line buffer; bytes are read into a per-thread scratch buffer, and the
//! channel for long-running requests exists only while one runs.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus::IntCounter;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::dispatch::{self, Reply, code};
use crate::framing::{LineBuffer, LineTooLong};
use crate::long_task::{Cancels, LongTask};
use crate::session::Session;
use crate::state::{Node, SessionSlot};

thread_local! {
    /// Where every connection on this worker thread reads into.
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; 64 * 1024].into_boxed_slice());
}

/// Binds a listener with an explicit backlog (tokio's default of 1024 drops connection storms).
pub fn bind(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Accepts connections until `shutdown` turns true. A connection beyond capacity (or during a
/// drain) gets a JSON-RPC error and is closed; accept errors (like running out of descriptors)
/// back off instead of spinning.
pub async fn serve(listener: TcpListener, node: Node, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        match accepted {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(5);
                match node.try_open_session("tcp") {
                    Some(slot) => {
                        tokio::spawn(connection(stream, node.clone(), slot));
                    }
                    None => {
                        node.metrics.connections_rejected.inc();
                        tokio::spawn(reject(stream, node.clone()));
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Tells a connection the node is full (or draining), then closes it.
async fn reject(stream: TcpStream, node: Node) {
    let message = if node.is_draining() {
        format!(
            "node {} is shutting down; connect to another node",
            node.config.node_name
        )
    } else {
        format!(
            "node {} is at capacity ({} sessions); connect to another node",
            node.config.node_name, node.config.max_connections
        )
    };
    let mut line = dispatch::error_response(None, code::AT_CAPACITY, &message);
    line.push(b'\n');
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        write_all(&stream, &line, &node.metrics.network_transmit_bytes),
    )
    .await;
}

/// Writes every byte, waiting for the socket when it is full; counts each write in `sent`.
async fn write_all(stream: &TcpStream, mut bytes: &[u8], sent: &IntCounter) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                sent.inc_by(n as u64);
                bytes = &bytes[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Long requests running on one connection: their outbox and cancellation handles.
struct Running {
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    inbox: mpsc::UnboundedReceiver<Vec<u8>>,
    cancels: Cancels,
    count: usize,
}

/// What one read produced.
enum Read {
    Lines {
        out: Vec<u8>,
        long: Vec<LongTask>,
        cancels: Vec<String>,
    },
    Again,
    Closed,
    TooLong,
}

/// Serves one session until the client leaves, idles out, or breaks the framing.
async fn connection(stream: TcpStream, node: Node, _slot: SessionSlot) {
    let _ = stream.set_nodelay(true);
    let mut session = Session::default();
    let mut framing = LineBuffer::default();
    let mut running: Option<Box<Running>> = None;
    let idle = node.config.idle_timeout;
    loop {
        // Wait for input, for a long request's message, or for the idle timeout.
        let ready = match running.as_mut() {
            None => match tokio::time::timeout(idle, stream.readable()).await {
                Ok(Ok(())) => true,
                Ok(Err(_)) | Err(_) => return,
            },
            Some(run) => tokio::select! {
                ready = stream.readable() => { if ready.is_err() { return; } true }
                message = run.inbox.recv() => {
                    if let Some(mut message) = message {
                        message.push(b'\n');
                        if write_all(&stream, &message, &node.metrics.network_transmit_bytes).await.is_err() {
                            return;
                        }
                        // A final response (not a progress notification) ends one long request.
                        if !message.starts_with(b"{\"jsonrpc\":\"2.0\",\"method\"") {
                            run.count = run.count.saturating_sub(1);
                        }
                    }
                    false
                }
            },
        };
        if let Some(run) = &running
            && run.count == 0
            && run.inbox.is_empty()
        {
            running = None; // no long request left: give the channel's memory back
        }
        if !ready {
            continue;
        }
        let max_line = node.config.max_line_bytes;
        let read = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            match stream.try_read(&mut scratch[..]) {
                Ok(0) => Read::Closed,
                Ok(n) => {
                    node.metrics.network_receive_bytes.inc_by(n as u64);
                    let mut out = Vec::new();
                    let mut long = Vec::new();
                    let mut cancels = Vec::new();
                    let fed =
                        framing.feed(&scratch[..n], max_line, |line| {
                            match dispatch::dispatch(line, &mut session, &node) {
                                Reply::None => {}
                                Reply::Message(message) => {
                                    out.extend_from_slice(&message);
                                    out.push(b'\n');
                                }
                                Reply::Long(task) => long.push(task),
                                Reply::Cancel(id) => cancels.push(id),
                            }
                        });
                    match fed {
                        Ok(()) => Read::Lines { out, long, cancels },
                        Err(LineTooLong) => Read::TooLong,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Again,
                Err(_) => Read::Closed,
            }
        });
        match read {
            Read::Again => continue,
            Read::Closed => return,
            Read::TooLong => {
                let message = format!("line longer than {max_line} bytes; closing the connection");
                let mut line = dispatch::error_response(None, code::INVALID_REQUEST, &message);
                line.push(b'\n');
                let _ = write_all(&stream, &line, &node.metrics.network_transmit_bytes).await;
                return;
            }
            Read::Lines { out, long, cancels } => {
                if !out.is_empty()
                    && write_all(&stream, &out, &node.metrics.network_transmit_bytes)
                        .await
                        .is_err()
                {
                    return;
                }
                for id in cancels {
                    if let Some(cancel) = running.as_mut().and_then(|r| r.cancels.remove(&id)) {
                        let _ = cancel.send(());
                        if let Some(run) = running.as_mut() {
                            run.count = run.count.saturating_sub(1);
                        }
                    }
                }
                for task in long {
                    let run = running.get_or_insert_with(|| {
                        let (outbox, inbox) = mpsc::unbounded_channel();
                        Box::new(Running {
                            outbox,
                            inbox,
                            cancels: Cancels::new(),
                            count: 0,
                        })
                    });
                    let (cancel, cancelled) = oneshot::channel();
                    run.cancels.insert(task.key(), cancel);
                    run.count += 1;
                    let outbox = run.outbox.clone();
                    let node = node.clone();
                    tokio::spawn(async move {
                        node.metrics.in_flight.inc();
                        task.run(outbox, cancelled).await;
                        node.metrics.in_flight.dec();
                    });
                }
            }
        }
    }
}
