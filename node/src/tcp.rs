//! MCP over plain TCP, newline-delimited (the stdio framing), one session per connection.
//!
//! Memory is the design constraint: a node holds tens of thousands of idle sessions. An idle
//! connection is a task waiting for readability that owns a socket, three bytes of session
//! state and an empty line buffer; bytes are read into a per-thread scratch buffer, and the
//! channel for long-running requests exists only while one runs.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::socket::{MsgFlags, recv};
use prometheus::IntCounter;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::dispatch::{self, Reply};
use crate::framing::{FrameError, LineBuffer};
use crate::jsonrpc::{ErrorObject, Message, Response, code};
use crate::long_task::{Cancels, LongTask};
use crate::metrics::CloseReason;
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
                match node.try_open_session(crate::state::TCP) {
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
    let mut line = Response::error(None, ErrorObject::new(code::AT_CAPACITY, message)).to_vec();
    line.push(b'\n');
    let sent = &node.metrics.network_transmit_bytes;
    let _ = write_all(&stream, &line, Duration::from_secs(1), sent).await;
}

/// Why a write failed.
enum WriteFailed {
    /// The peer is gone.
    Closed,
    /// The peer did not take the bytes within the write timeout.
    TimedOut,
}

/// Writes every byte. The socket almost always takes a reply at once, so no timer is armed
/// unless it is full; then the client has `limit` to read the rest.
/// Each write's length is added to `sent` (one add per write call).
async fn write_all(
    stream: &TcpStream,
    bytes: &[u8],
    limit: Duration,
    sent: &IntCounter,
) -> Result<(), WriteFailed> {
    let rest = match stream.try_write(bytes) {
        Ok(n) if n == bytes.len() => {
            sent.inc_by(n as u64);
            return Ok(());
        }
        Ok(0) => return Err(WriteFailed::Closed),
        Ok(n) => {
            sent.inc_by(n as u64);
            &bytes[n..]
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => bytes,
        Err(_) => return Err(WriteFailed::Closed),
    };
    // Boxed: the timer lives on the heap only while a socket is full, so it does not enlarge
    // every idle session's task.
    match Box::pin(tokio::time::timeout(
        limit,
        write_slowly(stream, rest, sent),
    ))
    .await
    {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(WriteFailed::Closed),
        Err(_) => Err(WriteFailed::TimedOut),
    }
}

async fn write_slowly(stream: &TcpStream, mut bytes: &[u8], sent: &IntCounter) -> io::Result<()> {
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

/// Writes `bytes` or says why the connection must end.
async fn send(stream: &TcpStream, node: &Node, bytes: &[u8]) -> Result<(), ()> {
    let sent = &node.metrics.network_transmit_bytes;
    match write_all(stream, bytes, node.config.write_timeout, sent).await {
        Ok(()) => Ok(()),
        Err(WriteFailed::Closed) => Err(()),
        Err(WriteFailed::TimedOut) => {
            node.metrics.closed(CloseReason::WriteTimeout);
            Err(())
        }
    }
}

/// A long request's message as a line, and whether it ends its request (a final response,
/// not a progress notification).
fn into_line(message: Message) -> (Vec<u8>, bool) {
    let mut line = message.to_vec();
    line.push(b'\n');
    (line, message.is_response())
}

/// Long requests running on one connection: their bounded outbox and cancellation handles.
/// Exists only while one runs or its replies wait to be written (an idle session holds none of
/// it); dropping it cancels them all, and the drain waits for it to go.
struct Running {
    outbox: mpsc::Sender<Message>,
    inbox: mpsc::Receiver<Message>,
    cancels: Cancels,
    count: usize,
    node: Node,
}

impl Running {
    fn new(node: &Node) -> Box<Running> {
        let (outbox, inbox) = mpsc::channel(node.config.outbound_queue.max(1));
        node.sessions_busy.fetch_add(1, Ordering::AcqRel);
        Box::new(Running {
            outbox,
            inbox,
            cancels: Cancels::new(),
            count: 0,
            node: node.clone(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.node.sessions_busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What waiting on a session with long requests running came to.
enum Wait {
    /// Input is ready.
    Readable,
    /// A long request's message was written (or its queue closed).
    Wrote,
    /// The session ends: the client is gone, too slow to read, or stalled mid-line.
    End,
}

/// Waits for input or a long request's message (and writes it), or for a started line's read
/// timeout.
async fn wait_running(
    stream: &TcpStream,
    node: &Node,
    run: &mut Running,
    stalled_at: Option<Instant>,
) -> Wait {
    tokio::select! {
        ready = stream.readable() => if ready.is_ok() { Wait::Readable } else { Wait::End },
        message = run.inbox.recv() => {
            // Only the bytes wait for the socket, not the typed message.
            if let Some((line, ends_request)) = message.map(into_line) {
                if send(stream, node, &line).await.is_err() {
                    return Wait::End;
                }
                if ends_request {
                    run.count = run.count.saturating_sub(1);
                }
            }
            Wait::Wrote
        }
        _ = tokio::time::sleep_until(stalled_at.unwrap_or_else(Instant::now)), if stalled_at.is_some() => {
            node.metrics.closed(CloseReason::ReadTimeout);
            Wait::End
        }
    }
}

/// What one read produced.
enum Read {
    Lines { lines: usize, out: Vec<u8> },
    Again,
    Closed,
    Framing(FrameError),
}

/// One read of what the socket holds into `buffer`; 0 is the end of the stream.
///
/// A read that fills less than `buffer` emptied the socket, so it clears the socket's readiness
/// too, and the next wait sleeps until more bytes arrive. (`try_read` keeps the readiness until
/// a read fails, so every request cost a second `recvfrom` that found nothing: 3.00 system calls
/// per reply against the bare echo's 2.00, node/README.md "Measured"; tokio's own reads clear
/// it this way.)
fn read_available(stream: &TcpStream, buffer: &mut [u8]) -> io::Result<usize> {
    let capacity = buffer.len();
    let mut emptied = None;
    let read = stream.try_io(Interest::READABLE, || {
        let n = recv(stream.as_raw_fd(), buffer, MsgFlags::empty()).map_err(io::Error::from)?;
        if 0 < n && n < capacity {
            emptied = Some(n);
            // Tells tokio the socket is drained; the bytes are returned below.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match emptied {
        Some(n) => Ok(n),
        None => read,
    }
}

/// Serves one session until the client leaves, idles out, stalls, or breaks the framing.
async fn connection(stream: TcpStream, node: Node, _slot: SessionSlot) {
    let _ = stream.set_nodelay(true);
    let mut session = Session::default();
    let mut framing = LineBuffer::new(node.config.max_line_bytes, &node.input_budget);
    let mut running: Option<Box<Running>> = None;
    let (idle, read_timeout) = (node.config.idle_timeout, node.config.read_timeout);
    // Idleness counts from the last complete message (bytes that finish nothing do not reset
    // it); a started line must end within the read timeout.
    let mut last_message = Instant::now();
    let mut partial_since: Option<Instant> = None;
    loop {
        let stalled_at = partial_since.map(|since| since + read_timeout);
        let ready = match running.as_mut() {
            None => {
                let idle_at = last_message + idle;
                let (deadline, reason) = match stalled_at {
                    Some(at) if at < idle_at => (at, CloseReason::ReadTimeout),
                    _ => (idle_at, CloseReason::IdleTimeout),
                };
                match tokio::time::timeout_at(deadline, stream.readable()).await {
                    Ok(Ok(())) => true,
                    Ok(Err(_)) => return,
                    Err(_) => {
                        node.metrics.closed(reason);
                        return;
                    }
                }
            }
            // While requests run the client is waiting, not idle; a started line still must end.
            // Boxed, so only sessions with requests running pay for this wait's state.
            Some(run) => match Box::pin(wait_running(&stream, &node, run, stalled_at)).await {
                Wait::Readable => true,
                Wait::Wrote => false,
                Wait::End => return,
            },
        };
        if let Some(run) = &running
            && run.count == 0
            && run.inbox.is_empty()
        {
            running = None; // no long request left: give the channel's memory back
            // The client was waiting for that answer, not idle: its idle time starts now.
            last_message = Instant::now();
        }
        if !ready {
            continue;
        }
        let read = SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            match read_available(&stream, &mut scratch[..]) {
                Ok(0) => Read::Closed,
                Ok(n) => {
                    node.metrics.network_receive_bytes.inc_by(n as u64);
                    let mut lines = 0;
                    let mut out = Vec::new();
                    // Each reply is acted on as its line is dispatched, in order: replies
                    // borrow the framing buffer, and a cancel must find the request an
                    // earlier line of the same read started.
                    let fed = framing.feed(&scratch[..n], |line| {
                        lines += 1;
                        let reply = dispatch::dispatch(line, &mut session, &node);
                        reply.write_line(&mut out);
                        match reply {
                            Reply::Long(task) => start(task, &mut running, &node, &mut out),
                            Reply::Cancel(id) => cancel(&mut running, &id),
                            Reply::Batch(batch) => {
                                batch.cancels.iter().for_each(|id| cancel(&mut running, id));
                            }
                            Reply::None | Reply::Response(_) => {}
                        }
                    });
                    match fed {
                        Ok(()) => Read::Lines { lines, out },
                        Err(error) => Read::Framing(error),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Read::Again,
                Err(_) => Read::Closed,
            }
        });
        match read {
            Read::Again => continue,
            Read::Closed => return,
            Read::Framing(error) => {
                let (message, reason) = match error {
                    FrameError::LineTooLong => (
                        format!(
                            "line longer than {} bytes; closing the connection",
                            node.config.max_line_bytes
                        ),
                        CloseReason::LineTooLong,
                    ),
                    FrameError::BudgetExhausted => (
                        format!(
                            "node {} holds too much partially received input; closing the connection",
                            node.config.node_name
                        ),
                        CloseReason::InputBudget,
                    ),
                };
                node.metrics.closed(reason);
                let mut line =
                    Response::error(None, ErrorObject::invalid_request(message)).to_vec();
                line.push(b'\n');
                let _ = send(&stream, &node, &line).await;
                return;
            }
            Read::Lines { lines, out } => {
                if lines > 0 {
                    last_message = Instant::now();
                    partial_since = framing.has_partial().then_some(last_message);
                } else if partial_since.is_none() && framing.has_partial() {
                    partial_since = Some(Instant::now());
                }
                if !out.is_empty() && send(&stream, &node, &out).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Starts a long request on the session, or answers (into `out`) that it has too many running.
fn start(task: LongTask, running: &mut Option<Box<Running>>, node: &Node, out: &mut Vec<u8>) {
    let run = running.get_or_insert_with(|| Running::new(node));
    if run.count >= node.config.max_in_flight_per_session {
        node.metrics.in_flight_refused.inc();
        let message = format!(
            "too many requests in flight on this session (at most {}); wait for one to finish",
            node.config.max_in_flight_per_session
        );
        Response::error(Some(task.id), ErrorObject::new(code::AT_CAPACITY, message)).write(out);
        out.push(b'\n');
        return;
    }
    let (cancel, cancelled) = oneshot::channel();
    run.cancels.insert(task.key(), cancel);
    run.count += 1;
    tokio::spawn(task.run_on(node.clone(), run.outbox.clone(), cancelled));
}

/// Cancels the running request with this id (JSON text), if there is one: it sends nothing more.
fn cancel(running: &mut Option<Box<Running>>, id: &str) {
    if let Some(run) = running.as_mut()
        && let Some(cancel) = run.cancels.remove(id)
    {
        let _ = cancel.send(());
        run.count = run.count.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::time::timeout;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        (client, server)
    }

    /// Waits for `stream` to be readable and reads once.
    async fn next_read(stream: &TcpStream, buffer: &mut [u8]) -> usize {
        timeout(Duration::from_secs(5), stream.readable())
            .await
            .expect("readable within 5 s")
            .unwrap();
        read_available(stream, buffer).unwrap()
    }

    #[tokio::test]
    async fn a_read_that_empties_the_socket_leaves_the_next_wait_asleep() {
        let (mut client, server) = pair().await;
        let mut buffer = [0u8; 64];
        client.write_all(b"one line\n").await.unwrap();
        assert_eq!(next_read(&server, &mut buffer).await, 9);
        assert_eq!(&buffer[..9], b"one line\n");
        // Nothing more was sent, so the wait for more sleeps instead of waking at once to a
        // read that would find nothing.
        let woke = timeout(Duration::from_millis(50), server.readable()).await;
        assert!(woke.is_err(), "woke with nothing to read");
        client.write_all(b"two\n").await.unwrap();
        assert_eq!(next_read(&server, &mut buffer).await, 4);
        drop(client);
        assert_eq!(next_read(&server, &mut buffer).await, 0, "end of stream");
    }

    #[tokio::test]
    async fn a_read_that_fills_the_buffer_keeps_the_socket_ready_for_the_rest() {
        let (mut client, server) = pair().await;
        let mut buffer = [0u8; 4];
        client.write_all(b"123456789").await.unwrap();
        // The first read may find only part of the bytes; every byte comes, in order.
        let mut got = Vec::new();
        while got.len() < 9 {
            let n = next_read(&server, &mut buffer).await;
            got.extend_from_slice(&buffer[..n]);
        }
        assert_eq!(got, b"123456789");
    }
}
