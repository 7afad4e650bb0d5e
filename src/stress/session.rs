//! One load-generating session: a TCP connection, its handshake, and its pipelined echo requests.

use super::TargetKind;
use super::failure::FailureClass;
use super::protocol::{self, Reply};
use super::recorder::Recorder;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep_until, timeout};

/// How many unsolicited lines the handshake skips before giving up on an answer.
const MAX_HANDSHAKE_LINES: usize = 8;

/// Read buffer per session. Replies are one short line each (an echo reply is under 200 bytes,
/// `initialize`'s under 1 KiB) and a longer line still reads whole, in several fills; tokio's
/// default of 8 KiB made the buffer most of a held session's memory (250,000 sessions: 18.4 KB
/// of generator memory each).
const READ_BUFFER_BYTES: usize = 1024;

/// An established session, ready to carry echo requests.
#[derive(Debug)]
pub struct Session {
    lines: Lines<BufReader<OwnedReadHalf>>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The run asked it to stop and every request it carried was resolved.
    Stopped,
    /// The connection broke or misbehaved; its in-flight requests were counted as failures.
    Died(FailureClass),
}

impl Session {
    /// Connects to `addr` (from `source` when given), and for MCP targets performs the
    /// `initialize` handshake, all within `connect_timeout`.
    pub async fn open(
        addr: SocketAddr,
        kind: TargetKind,
        source: Option<IpAddr>,
        connect_timeout: Duration,
    ) -> Result<Session, FailureClass> {
        match timeout(
            connect_timeout,
            Self::connect_and_handshake(addr, kind, source),
        )
        .await
        {
            Ok(result) => result,
            Err(_elapsed) => Err(FailureClass::ConnectTimeout),
        }
    }

    async fn connect_and_handshake(
        addr: SocketAddr,
        kind: TargetKind,
        source: Option<IpAddr>,
    ) -> Result<Session, FailureClass> {
        let stream = connect(addr, source).await?;
        let (reader, writer) = stream.into_split();
        let mut session = Session {
            lines: BufReader::with_capacity(READ_BUFFER_BYTES, reader).lines(),
            writer,
            next_id: protocol::INITIALIZE_ID + 1,
        };
        if kind == TargetKind::Mcp {
            session.handshake().await?;
        }
        Ok(session)
    }

    async fn handshake(&mut self) -> Result<(), FailureClass> {
        // A full node may already have written its refusal and closed; the write can then fail
        // while the refusal is still readable, so read the answer either way.
        let wrote = self
            .writer
            .write_all(protocol::initialize_line().as_bytes())
            .await;
        for _ in 0..MAX_HANDSHAKE_LINES {
            let line = match self.lines.next_line().await {
                Ok(Some(line)) => line,
                Ok(None) => return Err(FailureClass::Reset),
                Err(e) => return Err(FailureClass::from_stream_error(&e)),
            };
            match protocol::parse_reply(&line) {
                Reply::Ok(protocol::INITIALIZE_ID) if wrote.is_ok() => {
                    self.writer
                        .write_all(protocol::initialized_line().as_bytes())
                        .await
                        .map_err(|e| FailureClass::from_stream_error(&e))?;
                    return Ok(());
                }
                Reply::Refusal | Reply::Error(_) => return Err(FailureClass::RejectedAtCapacity),
                Reply::Unsolicited => continue,
                _ => return Err(FailureClass::ProtocolError),
            }
        }
        Err(FailureClass::ProtocolError)
    }

    /// Sends one echo request per intended send time received on `due` and matches the
    /// answers by id, until `due` closes (stop) or the connection breaks.
    ///
    /// A request that falls due while earlier ones are unanswered is pipelined on the same
    /// connection (ids keep them apart), so the schedule never waits for the server.
    /// Every request taken from `due` is resolved exactly once into `recorder`: answered,
    /// failed, or timed out `request_timeout` after its intended time.
    pub async fn drive(
        mut self,
        mut due: UnboundedReceiver<Instant>,
        request_timeout: Duration,
        recorder: &Recorder,
    ) -> SessionEnd {
        let mut in_flight: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut stopping = false;
        let end = loop {
            if stopping && in_flight.is_empty() {
                break SessionEnd::Stopped;
            }
            let oldest_deadline = in_flight.front().map(|(_, at)| *at + request_timeout);
            tokio::select! {
                line = self.lines.next_line() => match line {
                    Ok(Some(line)) => {
                        if let Some(died) = Self::on_line(&line, &mut in_flight, recorder) {
                            break SessionEnd::Died(died);
                        }
                    }
                    Ok(None) => break SessionEnd::Died(FailureClass::Reset),
                    Err(e) => break SessionEnd::Died(FailureClass::from_stream_error(&e)),
                },
                next = due.recv(), if !stopping => match next {
                    Some(intended) => {
                        let id = self.next_id;
                        self.next_id += 1;
                        in_flight.push_back((id, intended));
                        let line = protocol::echo_request_line(id);
                        match timeout(request_timeout, self.writer.write_all(line.as_bytes())).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break SessionEnd::Died(FailureClass::from_stream_error(&e)),
                            Err(_) => break SessionEnd::Died(FailureClass::RequestTimeout),
                        }
                    }
                    None => stopping = true,
                },
                () = sleep_until(oldest_deadline.unwrap_or_else(far_future)), if oldest_deadline.is_some() => {
                    let now = Instant::now();
                    while in_flight.front().is_some_and(|(_, at)| *at + request_timeout <= now) {
                        in_flight.pop_front();
                        recorder.requests_failed(FailureClass::RequestTimeout, 1);
                    }
                }
            }
        };
        if let SessionEnd::Died(class) = end {
            // Whatever was in flight or still queued for this session dies with it.
            recorder.requests_failed(class, in_flight.len() as u64);
            due.close();
            let mut queued = 0;
            while due.try_recv().is_ok() {
                queued += 1;
            }
            recorder.requests_failed(class, queued);
        }
        end
    }

    /// Resolves one received line; returns the failure that ends the session, if it does.
    fn on_line(
        line: &str,
        in_flight: &mut VecDeque<(u64, Instant)>,
        recorder: &Recorder,
    ) -> Option<FailureClass> {
        let take = |in_flight: &mut VecDeque<(u64, Instant)>, id: u64| {
            let position = in_flight.iter().position(|(pending, _)| *pending == id)?;
            in_flight.remove(position).map(|(_, at)| at)
        };
        match protocol::parse_reply(line) {
            Reply::Ok(id) => {
                // An id no longer in flight is a late answer to a request already counted as timed out.
                if let Some(intended) = take(in_flight, id) {
                    recorder.request_ok(Instant::now().saturating_duration_since(intended));
                }
                None
            }
            Reply::Error(id) => {
                if take(in_flight, id).is_some() {
                    recorder.requests_failed(FailureClass::ProtocolError, 1);
                }
                None
            }
            Reply::Unsolicited => None,
            Reply::Refusal => Some(FailureClass::RejectedAtCapacity),
            Reply::Malformed => Some(FailureClass::ProtocolError),
        }
    }
}

/// Opens a TCP connection to `addr`, from `source` when given, with Nagle off; connect errors
/// are classified. Both session kinds (TCP and Streamable HTTP) connect through here.
pub(super) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
) -> Result<TcpStream, FailureClass> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| FailureClass::from_connect_error(&e))?;
    if let Some(source) = source {
        // bind() with port 0 draws from only half the ephemeral range, and sockets left in
        // TIME_WAIT by an earlier phase (the baseline) would hold those ports: reusing them
        // is safe for a client, and without it a second phase stalls in the kernel.
        let _ = socket.set_reuseaddr(true);
        socket
            .bind(SocketAddr::new(source, 0))
            .map_err(|_| FailureClass::ConnectError)?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| FailureClass::from_connect_error(&e))?;
    // Small requests must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

pub(super) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400)
}
