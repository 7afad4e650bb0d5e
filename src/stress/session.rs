//! One load-generating session: a TCP connection, its handshake, and its pipelined echo requests.

use super::TargetKind;
use super::failure::FailureClass;
use super::protocol::{self, Reply};
use super::recorder::{GeneratorDelays, Recorder};
use super::wire_time;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
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

/// Longest line a session accepts from a server; a longer one ends the session as a protocol error.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// The read half of a session: whole lines, each at most [`MAX_LINE_BYTES`], into one buffer
/// reused for every line (a line per reply: no allocation per reply), each with the time the
/// kernel received it.
///
/// The arrival time comes from the socket's receive timestamps ([`wire_time`]).
#[derive(Debug)]
struct LineReader {
    socket: OwnedReadHalf,
    buffer: Box<[u8]>,
    /// The unread bytes of `buffer`.
    start: usize,
    end: usize,
    line: Vec<u8>,
    /// `line` holds a whole line that the caller has seen; the next read starts a new one.
    complete: bool,
    /// When the bytes of the latest read arrived (the read that completed `line`, once it is whole).
    arrived: Instant,
    /// When that read was made.
    read_at: Instant,
}

/// What [`LineReader::next_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum LineRead {
    Line,
    Eof,
    TooLong,
}

impl LineReader {
    fn new(socket: OwnedReadHalf) -> Self {
        wire_time::enable(socket.as_ref());
        Self {
            socket,
            buffer: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            line: Vec::new(),
            complete: false,
            arrived: Instant::now(),
            read_at: Instant::now(),
        }
    }

    /// Reads the next line (without its `\n`) into [`Self::line`].
    ///
    /// Cancel-safe, so it can sit in a `select!`: bytes read so far stay in `line` and the
    /// next call goes on from them.
    async fn next_line(&mut self) -> std::io::Result<LineRead> {
        if self.complete {
            self.line.clear();
            self.complete = false;
        }
        loop {
            if self.start == self.end && self.fill().await? == 0 {
                return Ok(LineRead::Eof);
            }
            let available = &self.buffer[self.start..self.end];
            let (take, found) = match available.iter().position(|b| *b == b'\n') {
                Some(end) => (end, true),
                None => (available.len(), false),
            };
            if self.line.len() + take > MAX_LINE_BYTES {
                return Ok(LineRead::TooLong);
            }
            self.line.extend_from_slice(&available[..take]);
            self.start += take + usize::from(found);
            if found {
                self.complete = true;
                return Ok(LineRead::Line);
            }
        }
    }

    /// Reads what the socket has into the (empty) buffer and notes when it arrived; 0 is EOF.
    ///
    /// Cancel-safe: nothing is read until the socket is ready, and a read is never abandoned.
    async fn fill(&mut self) -> std::io::Result<usize> {
        self.start = 0;
        self.end = 0;
        let stream = self.socket.as_ref();
        loop {
            stream.readable().await?;
            let (count, received) = match wire_time::try_recv_timestamped(stream, &mut self.buffer)
            {
                Ok(got) => got,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            };
            self.end = count;
            self.read_at = Instant::now();
            self.arrived = wire_time::arrival(received, self.read_at);
            return Ok(count);
        }
    }

    fn line(&self) -> &[u8] {
        &self.line
    }

    /// When the kernel received the line last returned (at the latest: the read's own time).
    fn arrived(&self) -> Instant {
        self.arrived
    }

    /// How long the line last returned waited in the socket before the read that took it.
    fn read_delay(&self) -> Duration {
        self.read_at.saturating_duration_since(self.arrived)
    }
}

/// A request sent and not yet resolved.
#[derive(Debug)]
struct InFlight {
    id: u64,
    /// Where its latency starts: its intended send time, or the start of its write where that
    /// came first (the dispatcher hands requests out up to a timer tick early).
    intended: Instant,
    /// How late after `intended` the session began writing it.
    send_delay: Duration,
}

/// An established session, ready to carry echo requests.
#[derive(Debug)]
pub struct Session {
    reader: LineReader,
    writer: OwnedWriteHalf,
    next_id: u64,
    /// The request line being written, reused for every request.
    request: Vec<u8>,
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
            reader: LineReader::new(reader),
            writer,
            next_id: protocol::INITIALIZE_ID + 1,
            request: Vec::with_capacity(128),
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
            match self.reader.next_line().await {
                Ok(LineRead::Line) => {}
                Ok(LineRead::Eof) => return Err(FailureClass::Reset),
                Ok(LineRead::TooLong) => return Err(FailureClass::ProtocolError),
                Err(e) => return Err(FailureClass::from_stream_error(&e)),
            }
            match protocol::parse_reply(self.reader.line()) {
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
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut stopping = false;
        // One timer for the whole session, armed at the oldest request's deadline. It is not
        // moved when that request is answered: it fires early, expires nothing, and is armed
        // again at the new oldest. So a request costs no timer of its own. (Moving it away
        // when nothing is left in flight, to spare that early firing, was measured on
        // 2026-12-03: no change in the generator's CPU per request.)
        let expiry = sleep_until(far_future());
        tokio::pin!(expiry);
        let mut armed = false;
        let end = loop {
            if stopping && in_flight.is_empty() {
                break SessionEnd::Stopped;
            }
            if !armed && let Some(oldest) = in_flight.front() {
                expiry.as_mut().reset(oldest.intended + request_timeout);
                armed = true;
            }
            tokio::select! {
                // Answers first: they free in-flight slots and stop their latency clock.
                biased;
                read = self.reader.next_line() => match read {
                    Ok(LineRead::Line) => {
                        if let Some(died) = Self::on_line(self.reader.line(), self.reader.arrived(), self.reader.read_delay(), &mut in_flight, request_timeout, recorder) {
                            break SessionEnd::Died(died);
                        }
                    }
                    Ok(LineRead::Eof) => break SessionEnd::Died(FailureClass::Reset),
                    Ok(LineRead::TooLong) => break SessionEnd::Died(FailureClass::ProtocolError),
                    Err(e) => break SessionEnd::Died(FailureClass::from_stream_error(&e)),
                },
                next = due.recv(), if !stopping => match next {
                    Some(intended) => {
                        let id = self.next_id;
                        self.next_id += 1;
                        let now = Instant::now();
                        in_flight.push_back(InFlight {
                            id,
                            intended: intended.min(now),
                            send_delay: now.saturating_duration_since(intended),
                        });
                        protocol::write_echo_request_line(&mut self.request, id);
                        match timeout(request_timeout, self.writer.write_all(&self.request)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => break SessionEnd::Died(FailureClass::from_stream_error(&e)),
                            Err(_) => break SessionEnd::Died(FailureClass::RequestTimeout),
                        }
                    }
                    None => stopping = true,
                },
                () = &mut expiry, if armed => {
                    armed = false;
                    let now = Instant::now();
                    while in_flight.front().is_some_and(|r| r.intended + request_timeout <= now) {
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
        line: &[u8],
        arrived: Instant,
        read_delay: Duration,
        in_flight: &mut VecDeque<InFlight>,
        request_timeout: Duration,
        recorder: &Recorder,
    ) -> Option<FailureClass> {
        let take = |in_flight: &mut VecDeque<InFlight>, id: u64| {
            let position = in_flight.iter().position(|pending| pending.id == id)?;
            in_flight.remove(position)
        };
        match protocol::parse_reply(line) {
            Reply::Ok(id) => {
                // An id no longer in flight is a late answer to a request already counted as timed out.
                if let Some(request) = take(in_flight, id) {
                    let latency = arrived.saturating_duration_since(request.intended);
                    let delays = GeneratorDelays {
                        send: request.send_delay,
                        read: read_delay,
                    };
                    recorder.request_answered_with_delays(latency, Some(delays), request_timeout);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::wire_time::testing::{
        ServerSteps, StepsHeld, assert_the_block_is_read_delay, drive_through_a_block, steps,
        timestamping_on,
    };
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    /// A connected pair: the session's reader (and its write half, which must live as long
    /// or the socket half-closes) and the server's socket.
    async fn pair() -> ((LineReader, OwnedWriteHalf), TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (read, write) = client.unwrap().into_split();
        ((LineReader::new(read), write), accepted.unwrap().0)
    }

    #[tokio::test]
    async fn lines_are_read_whole_and_the_buffer_is_reused() {
        let ((mut reader, _write), mut server) = pair().await;
        server.write_all(b"{\"id\":2,").await.unwrap();
        // The first half arrives, the read is abandoned (a select! took another branch) ...
        let abandoned = timeout(Duration::from_millis(50), reader.next_line()).await;
        assert!(abandoned.is_err());
        // ... and the next read goes on from what it had.
        server.write_all(b"\"result\":1}\nsecond\n").await.unwrap();
        assert_eq!(reader.next_line().await.unwrap(), LineRead::Line);
        assert_eq!(reader.line(), b"{\"id\":2,\"result\":1}");
        assert_eq!(reader.next_line().await.unwrap(), LineRead::Line);
        assert_eq!(reader.line(), b"second");
        drop(server);
        assert_eq!(reader.next_line().await.unwrap(), LineRead::Eof);
    }

    #[tokio::test]
    async fn a_line_over_the_cap_is_refused_and_one_at_the_cap_is_read() {
        // (line length before the newline, what the read finds)
        let cases = [
            (MAX_LINE_BYTES, LineRead::Line),
            (MAX_LINE_BYTES + 1, LineRead::TooLong),
        ];
        for (length, expected) in cases {
            let ((mut reader, _write), mut server) = pair().await;
            let writer = tokio::spawn(async move {
                let mut line = vec![b'x'; length];
                line.push(b'\n');
                let _ = server.write_all(&line).await;
                // Hold the socket open until the reader is done with it.
                let _ = server.read(&mut [0u8; 1]).await;
            });
            assert_eq!(reader.next_line().await.unwrap(), expected, "{length}");
            if expected == LineRead::Line {
                assert_eq!(reader.line().len(), length);
            }
            drop(reader);
            writer.abort();
        }
    }

    /// An echo server on a thread of its own, so it answers while the test's runtime is
    /// blocked; with `steps`, in the test's time.
    fn echo_on_its_own_thread(steps: Option<ServerSteps>) -> SocketAddr {
        use std::io::{BufRead, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let mut lines = std::io::BufReader::new(socket.try_clone().unwrap());
            let mut socket = socket;
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                if let Some(steps) = &steps {
                    let _ = steps.received.send(());
                    if steps.go.recv().is_err() {
                        return;
                    }
                }
                let _ = socket.write_all(line.as_bytes());
                if let Some(steps) = &steps {
                    let _ = steps.answered.send(());
                }
                line.clear();
            }
        });
        addr
    }

    /// A threaded echo that answers each request only on the test's go.
    fn stepped_echo() -> (SocketAddr, StepsHeld) {
        let (server, held) = steps();
        (echo_on_its_own_thread(Some(server)), held)
    }

    /// A session to `echo` with one request due at `intended` queued (and the queue closed,
    /// so the session stops once it is answered).
    async fn one_request_to(
        echo: SocketAddr,
        intended: Instant,
    ) -> (Session, Recorder, UnboundedReceiver<Instant>) {
        let session = Session::open(echo, TargetKind::BaselineEcho, None, Duration::from_secs(5))
            .await
            .unwrap();
        let (recorder, rx) = crate::stress::recorder::with_requests_due("baseline", &[intended]);
        (session, recorder, rx)
    }

    #[tokio::test]
    async fn a_busy_worker_s_delay_in_reading_an_answer_is_read_delay_not_latency() {
        // Once the request has reached the echo, the worker's thread is blocked; the echo
        // answers inside the block, and the answer waits in the socket until the block (300 ms)
        // ends. Before receive timestamps that wait was latency. (Every
        // step waits on the one before, so no scheduling order matters: CI once saw latency
        // 301 ms when the block began at a guessed moment after the send.)
        let _timestamping = timestamping_on();
        let (echo, steps) = stepped_echo();
        let intended = Instant::now();
        let (session, recorder, rx) = one_request_to(echo, intended).await;
        let drive = session.drive(rx, Duration::from_secs(5), &recorder);
        let (end, answer_out) = drive_through_a_block(drive, &steps).await;
        assert_eq!(end, SessionEnd::Stopped);
        assert_the_block_is_read_delay(&recorder.cut(1), intended, answer_out);
    }

    #[tokio::test]
    async fn a_request_written_before_its_time_counts_its_latency_from_the_write() {
        // Handed out 300 ms early (the dispatcher hands out up to a timer tick early); the echo
        // answers 50 ms after it has the request. Counted from the intended time, the answer
        // came before it and the latency read 0.
        const EARLY: Duration = Duration::from_millis(300);
        const ECHO_TAKES: Duration = Duration::from_millis(50);
        let (echo, StepsHeld { received, go, .. }) = stepped_echo();
        std::thread::spawn(move || {
            if received.recv().is_ok() {
                std::thread::sleep(ECHO_TAKES);
                let _ = go.send(());
            }
        });
        let (session, recorder, rx) = one_request_to(echo, Instant::now() + EARLY).await;
        let end = session.drive(rx, Duration::from_secs(5), &recorder).await;
        assert_eq!(end, SessionEnd::Stopped);
        let row = recorder.cut(1);
        assert_eq!(row.ok, 1);
        let latency = row.latency.max_ms().unwrap();
        let echo_ms = ECHO_TAKES.as_secs_f64() * 1000.0;
        assert!(latency >= echo_ms * 0.99, "latency {latency} ms");
        assert!(
            latency < EARLY.as_secs_f64() * 1000.0,
            "latency {latency} ms"
        );
        let send_delay = row.send_delay.max_ms().unwrap();
        assert!(send_delay < 1.0, "send delay {send_delay} ms");
    }

    #[tokio::test]
    async fn a_request_written_late_counts_its_lateness_as_send_delay_and_as_latency() {
        const LATE: Duration = Duration::from_millis(300);
        // Due 300 ms ago: the generator is that late handing it to the socket.
        let echo = echo_on_its_own_thread(None);
        let (session, recorder, rx) = one_request_to(echo, Instant::now() - LATE).await;
        let end = session.drive(rx, Duration::from_secs(5), &recorder).await;
        assert_eq!(end, SessionEnd::Stopped);
        let row = recorder.cut(1);
        let late_ms = LATE.as_secs_f64() * 1000.0;
        let send_delay = row.send_delay.max_ms().unwrap();
        assert!(send_delay >= late_ms, "send delay {send_delay} ms");
        let latency = row.latency.max_ms().unwrap();
        assert!(latency >= late_ms, "latency {latency} ms");
    }

    /// A baseline-style server that echoes the first `answered` lines, then reads on in silence.
    async fn echo_first(answered: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let (read, mut write) = socket.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut seen = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                seen += 1;
                if seen <= answered {
                    let _ = write.write_all(format!("{line}\n").as_bytes()).await;
                }
            }
        });
        addr
    }

    /// A session to a baseline-style server that answers its first request only.
    async fn session_answering_only_the_first() -> (Session, Recorder) {
        let addr = echo_first(1).await;
        let session = Session::open(addr, TargetKind::BaselineEcho, None, Duration::from_secs(1))
            .await
            .unwrap();
        (session, Recorder::new(&["baseline".to_string()]))
    }

    fn assert_one_answered_one_timed_out(recorder: &Recorder) {
        let row = recorder.cut(1);
        assert_eq!((row.ok, row.failed), (1, 1));
        assert_eq!(row.request_failures.get(FailureClass::RequestTimeout), 1);
        assert_eq!(recorder.outstanding(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_request_times_out_at_its_own_deadline_not_the_first_one() {
        let (session, recorder) = session_answering_only_the_first().await;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let t0 = Instant::now();
        let timeout_after = Duration::from_secs(5);
        recorder.requests_sent(2);
        tx.send(t0).unwrap();
        // The second is handed out at its time (one handed out early would count from then).
        tokio::spawn(async move {
            tokio::time::sleep_until(t0 + Duration::from_secs(2)).await;
            tx.send(t0 + Duration::from_secs(2)).unwrap();
        });
        // The session timer is armed at the first request's deadline (t0 + 5 s); that one is
        // answered, so the timer fires, expires nothing, and is armed at t0 + 7 s.
        let end = session.drive(rx, timeout_after, &recorder).await;
        assert_eq!(end, SessionEnd::Stopped);
        assert!(Instant::now() >= t0 + Duration::from_secs(7));
        assert_one_answered_one_timed_out(&recorder);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_after_the_session_went_quiet_still_times_out() {
        // The first request is answered and leaves nothing in flight; the second, sent after
        // the first one's deadline and never answered, must still time out at its own.
        let (session, recorder) = session_answering_only_the_first().await;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let t0 = Instant::now();
        let timeout_after = Duration::from_secs(5);
        let feeder = async {
            recorder.requests_sent(1);
            tx.send(t0).unwrap();
            // Yielding (not sleeping) waits for the answer without moving the paused clock.
            while recorder.outstanding() > 0 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep_until(t0 + Duration::from_secs(10)).await;
            recorder.requests_sent(1);
            tx.send(Instant::now()).unwrap();
            drop(tx);
        };
        let (end, ()) = tokio::join!(session.drive(rx, timeout_after, &recorder), feeder);
        assert_eq!(end, SessionEnd::Stopped);
        assert!(Instant::now() >= t0 + Duration::from_secs(15));
        assert_one_answered_one_timed_out(&recorder);
    }
}
