//! One load-generating session over Streamable HTTP: its own HTTP/1.1 keep-alive connection to
//! a node's API port, the `initialize` handshake as POSTs to `/mcp`, then one `tools/call echo`
//! POST at a time.
//!
//! The node answers a POST with one JSON body when the request accepts only `application/json`
//! (an SSE stream only when it accepts `text/event-stream`), so every answer here is plain JSON.
//! The session lives on the node under the `Mcp-Session-Id` its `initialize` answer carries, not
//! in the connection: a stopped session is ended with `DELETE /mcp`, or the node would hold its
//! slot until its idle timeout. So when the node closes an idle keep-alive connection (it does
//! after its keep-alive timeout), the session opens a new connection when its next request is
//! due and goes on under the same id, as an HTTP client's connection pool would; each such
//! reconnect is counted, and its time is part of that request's latency (counted from the
//! request's intended send time).
//!
//! hyper makes the reads and writes (in its connection future, which the session drives in its
//! own task), so the connection's stream notes them ([`wire_time`]): a request's latency starts at its intended time (or at its first write where
//! that came first) and ends when the kernel received the answer's last bytes, as a TCP
//! session's does; the time until the session has the whole answer in hand is its read delay.

use super::failure::FailureClass;
use super::protocol::{self, Reply};
use super::recorder::{GeneratorDelays, Recorder};
use super::session::{SessionEnd, connect, far_future};
use super::wire_time::{NotingStream, WireNotes};
use futures_util::FutureExt;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::collections::VecDeque;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, sleep_until, timeout};

/// The Streamable HTTP session header.
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
/// The header naming the negotiated MCP revision on every request after `initialize`.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// The MCP endpoint on the node's API port.
const MCP_PATH: &str = "/mcp";
/// Largest answer body read; an echo answer is about 150 bytes, `initialize`'s under 1 KiB.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The connection's read buffer. hyper's adaptive default starts at 8 KiB; answer heads here are
/// a few hundred bytes, bodies stream through, and sessions are held by the tens of thousands.
const READ_BUFFER_BYTES: usize = 4096;

type Sender = SendRequest<Full<Bytes>>;
/// A request in flight: it owns the connection while it runs and hands it back with the answer,
/// saying whether it had to open a new one first.
type Call = Pin<Box<dyn Future<Output = (Connection, bool, Result<Answer, FailureClass>)> + Send>>;

/// An established Streamable HTTP session, ready to carry echo requests.
#[derive(Debug)]
pub struct HttpSession {
    connection: Connection,
    headers: SessionHeaders,
    next_id: u64,
    addr: SocketAddr,
    source: Option<IpAddr>,
}

/// The future that does an HTTP/1.1 connection's I/O.
type Driver = http1::Connection<TokioIo<NotingStream>, Full<Bytes>>;

/// One HTTP/1.1 connection: the handle requests are sent on, the times its stream notes, and
/// its I/O, which [`exchange`] drives in the session's own task.
///
/// The connection has no task of its own: with one, every request woke that task to write it
/// and woke the session's again with the answer, two hand-overs between tasks on a worker that
/// is busy with thousands of sessions. While the connection is idle nothing polls it, so a
/// close by the node is seen at the next request (which then goes on over a new connection).
struct Connection {
    sender: Sender,
    notes: WireNotes,
    /// `None` once the connection has ended.
    driver: Option<Pin<Box<Driver>>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("closed", &self.sender.is_closed())
            .field("driven", &self.driver.is_some())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr` (from `source` when given) and completes the HTTP/1.1 handshake.
    async fn open(addr: SocketAddr, source: Option<IpAddr>) -> Result<Connection, FailureClass> {
        let (stream, notes) = NotingStream::new(connect(addr, source).await?);
        let mut builder = http1::Builder::new();
        builder.read_buf_exact_size(Some(READ_BUFFER_BYTES));
        let (sender, driver) = builder
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| class_of_hyper(&e))?;
        Ok(Connection {
            sender,
            notes,
            driver: Some(Box::pin(driver)),
        })
    }
}

/// Sends `message` on `connection`; when the node has closed the connection (it closes idle
/// keep-alive connections), opens a new one first, and when the request met a connection the
/// node closed just as it was sent, sends it once more on a new one. The flag says whether a new
/// connection was opened. An echo is safe to send twice; the node never saw the first.
async fn send_reconnecting(
    mut connection: Connection,
    headers: SessionHeaders,
    message: Bytes,
    (addr, source): (SocketAddr, Option<IpAddr>),
    bound: Duration,
) -> (Connection, bool, Result<Answer, FailureClass>) {
    let mut reconnected = false;
    if connection.sender.is_closed() {
        match timeout(bound, Connection::open(addr, source)).await {
            Ok(Ok(fresh)) => {
                connection = fresh;
                reconnected = true;
            }
            Ok(Err(class)) => return (connection, false, Err(class)),
            Err(_elapsed) => return (connection, false, Err(FailureClass::ConnectTimeout)),
        }
    }
    connection.notes.expect_request();
    let result = exchange(&mut connection, headers.post(message.clone())).await;
    if reconnected || !matches!(result, Err(FailureClass::Reset)) {
        return (connection, reconnected, result);
    }
    match timeout(bound, Connection::open(addr, source)).await {
        Ok(Ok(mut fresh)) => {
            fresh.notes.expect_request();
            let result = exchange(&mut fresh, headers.post(message)).await;
            (fresh, true, result)
        }
        Ok(Err(class)) => (connection, false, Err(class)),
        Err(_elapsed) => (connection, false, Err(FailureClass::ConnectTimeout)),
    }
}

/// The headers every request of the session carries.
#[derive(Debug, Clone)]
struct SessionHeaders {
    /// `Host`: the node validates it (a loopback-bound node answers loopback names only).
    host: HeaderValue,
    /// `Mcp-Session-Id` and `MCP-Protocol-Version`, once `initialize` has answered.
    session: Option<(HeaderValue, HeaderValue)>,
}

impl SessionHeaders {
    fn new(addr: SocketAddr) -> Result<Self, FailureClass> {
        Ok(SessionHeaders {
            host: HeaderValue::from_str(&addr.to_string())
                .map_err(|_| FailureClass::ConnectError)?,
            session: None,
        })
    }

    /// A request to `/mcp` with the session's headers.
    fn request(&self, method: Method, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = Uri::from_static(MCP_PATH);
        let headers = request.headers_mut();
        headers.insert(HOST, self.host.clone());
        if let Some((id, version)) = &self.session {
            headers.insert(SESSION_HEADER, id.clone());
            headers.insert(VERSION_HEADER, version.clone());
        }
        request
    }

    /// A JSON-RPC message POSTed to `/mcp`, asking for a plain JSON answer.
    fn post(&self, message: impl Into<Bytes>) -> Request<Full<Bytes>> {
        let mut request = self.request(Method::POST, message.into());
        let headers = request.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // application/json only: the node then never answers with an SSE stream.
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        request
    }
}

/// One HTTP answer, read in full.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// What the answer to one echo request means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Answered with a result for its id.
    Ok,
    /// This request failed; the session goes on.
    Failed(FailureClass),
    /// The session is unusable: this request and everything queued behind it fail.
    Died(FailureClass),
}

/// One request on the wire and the connection it holds until answered.
struct Outstanding {
    id: u64,
    /// Its intended send time.
    due: Instant,
    /// Where its deadline counts from: `due`, or its hand-out where that came first.
    intended: Instant,
    /// When it could first be sent: `due`, or later when it waited for the connection.
    ready: Instant,
    /// Already counted as timed out: its late answer only frees the connection.
    counted: bool,
    call: Call,
}

impl HttpSession {
    /// Connects to the API port at `addr` (from `source` when given) and performs the
    /// `initialize` + `notifications/initialized` handshake, all within `connect_timeout`.
    pub async fn open(
        addr: SocketAddr,
        source: Option<IpAddr>,
        connect_timeout: Duration,
    ) -> Result<HttpSession, FailureClass> {
        match timeout(connect_timeout, Self::connect_and_handshake(addr, source)).await {
            Ok(result) => result,
            Err(_elapsed) => Err(FailureClass::ConnectTimeout),
        }
    }

    async fn connect_and_handshake(
        addr: SocketAddr,
        source: Option<IpAddr>,
    ) -> Result<HttpSession, FailureClass> {
        let mut headers = SessionHeaders::new(addr)?;
        let mut connection = Connection::open(addr, source).await?;
        let answer = exchange(
            &mut connection,
            headers.post(protocol::initialize_request()),
        )
        .await?;
        headers.session = Some(judge_initialize(&answer)?);
        let answer = exchange(
            &mut connection,
            headers.post(protocol::initialized_notification()),
        )
        .await?;
        // The node answers a notification with 202 Accepted and no body.
        if !answer.status.is_success() {
            return Err(FailureClass::ProtocolError);
        }
        Ok(HttpSession {
            connection,
            headers,
            next_id: protocol::INITIALIZE_ID + 1,
            addr,
            source,
        })
    }

    /// Sends one echo request per intended send time received on `due`, one at a time, until
    /// `due` closes (stop) or the session breaks; a stopped session is ended with `DELETE /mcp`.
    ///
    /// HTTP/1.1 has no multiplexing: a request that falls due while another is unanswered
    /// waits in this session's queue. Its latency still counts from its intended send time, so
    /// that queueing shows up as latency (as a stalled server does), never as fewer requests.
    /// Every request taken from `due` is resolved exactly once into `recorder`: answered,
    /// failed, or timed out `request_timeout` after its intended time, whether it was on the
    /// wire or still queued by then. A request that timed out on the wire still holds the
    /// connection until its late answer arrives; the requests behind it time out meanwhile.
    pub async fn drive(
        self,
        mut due: UnboundedReceiver<Instant>,
        request_timeout: Duration,
        recorder: &Recorder,
    ) -> SessionEnd {
        let HttpSession {
            connection,
            headers,
            mut next_id,
            addr,
            source,
        } = self;
        // The connection is here while it is free, and inside `outstanding` otherwise.
        let mut idle = Some(connection);
        // Since when the connection has been free after an answer (none yet: free from the
        // start): a request queued behind another was ready to go only then.
        let mut free_since: Option<Instant> = None;
        let mut outstanding: Option<Outstanding> = None;
        let mut queued: VecDeque<Instant> = VecDeque::new();
        let mut stopping = false;
        let end = loop {
            let now = Instant::now();
            while queued
                .front()
                .is_some_and(|at| *at + request_timeout <= now)
            {
                queued.pop_front();
                recorder.requests_failed(FailureClass::RequestTimeout, 1);
            }
            if outstanding.is_none()
                && !queued.is_empty()
                && let Some(connection) = idle.take()
                && let Some(intended) = queued.pop_front()
            {
                let id = next_id;
                next_id += 1;
                outstanding = Some(Outstanding {
                    id,
                    due: intended,
                    intended: intended.min(Instant::now()),
                    ready: free_since.map_or(intended, |free| intended.max(free)),
                    counted: false,
                    call: Box::pin(send_reconnecting(
                        connection,
                        headers.clone(),
                        Bytes::from(protocol::echo_request(id)),
                        (addr, source),
                        request_timeout,
                    )),
                });
            }
            let unresolved = outstanding.as_ref().is_some_and(|o| !o.counted);
            if stopping && queued.is_empty() && !unresolved {
                break SessionEnd::Stopped;
            }
            // Requests resolve in order, so the earliest deadline is the wire's or the queue's head.
            let deadline = match &outstanding {
                Some(o) if !o.counted => Some(o.intended + request_timeout),
                _ => queued.front().map(|at| *at + request_timeout),
            };
            tokio::select! {
                (connection, reconnected, result) = answer_of(&mut outstanding) => {
                    let Some(done) = outstanding.take() else { continue };
                    if reconnected {
                        recorder.http_reconnected();
                    }
                    let outcome = match result {
                        Ok(answer) => judge_echo(answer.status, &answer.body, done.id),
                        Err(class) => Outcome::Died(class),
                    };
                    if !done.counted {
                        match outcome {
                            Outcome::Ok => {
                                let (latency, delays) = timing(&done, &connection.notes, reconnected);
                                recorder.request_answered_with_delays(latency, delays, request_timeout);
                            }
                            Outcome::Failed(class) | Outcome::Died(class) => {
                                recorder.requests_failed(class, 1)
                            }
                        }
                    }
                    if let Outcome::Died(class) = outcome {
                        break SessionEnd::Died(class);
                    }
                    free_since = Some(Instant::now());
                    idle = Some(connection);
                }
                next = due.recv(), if !stopping => match next {
                    Some(intended) => queued.push_back(intended),
                    None => stopping = true,
                },
                () = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    if let Some(o) = outstanding.as_mut()
                        && !o.counted
                        && o.intended + request_timeout <= Instant::now()
                    {
                        o.counted = true;
                        recorder.requests_failed(FailureClass::RequestTimeout, 1);
                    }
                    // Queued requests past their deadline are swept at the top of the loop.
                }
            }
        };
        match end {
            SessionEnd::Stopped => {
                // A request still on the wire (already counted as timed out) keeps the
                // connection busy: the node then ends the session at its idle timeout.
                if outstanding.is_none()
                    && let Some(connection) = idle
                {
                    end_session(connection, &headers, request_timeout).await;
                }
            }
            SessionEnd::Died(class) => {
                // Whatever was queued or still due for this session dies with it.
                let mut lost = queued.len() as u64;
                lost += u64::from(outstanding.is_some_and(|o| !o.counted));
                due.close();
                while due.try_recv().is_ok() {
                    lost += 1;
                }
                recorder.requests_failed(class, lost);
            }
        }
        end
    }

    /// Ends a session that carried no requests (the run stopped while it was opening).
    pub async fn close(self, bound: Duration) {
        end_session(self.connection, &self.headers, bound).await;
    }
}

/// The latency of an answered request, and the generator's delays in it, from what its
/// connection's stream noted; the answer is in hand now.
///
/// A request handed out before its time (the dispatcher hands out up to a timer tick early)
/// starts its latency at its first write. One that had to open a new connection first starts
/// at its intended time (or hand-out) and reports no generator delays: its wait was the
/// connection's, not the generator's.
fn timing(
    done: &Outstanding,
    notes: &WireNotes,
    reconnected: bool,
) -> (Duration, Option<GeneratorDelays>) {
    let now = Instant::now();
    let times = notes.times();
    let arrived = times.arrived.unwrap_or(now).min(now);
    let written = times.written.filter(|_| !reconnected);
    let start = written.map_or(done.intended, |written| done.due.min(written));
    let delays = written.map(|written| GeneratorDelays {
        send: written.saturating_duration_since(done.ready),
        read: now.saturating_duration_since(arrived),
    });
    (arrived.saturating_duration_since(start), delays)
}

/// `DELETE /mcp`: frees the session's slot on the node now rather than at its idle timeout.
/// Best effort within `bound`: the run's counts do not depend on it.
async fn end_session(mut connection: Connection, headers: &SessionHeaders, bound: Duration) {
    let request = headers.request(Method::DELETE, Bytes::new());
    let _ = timeout(bound, exchange(&mut connection, request)).await;
}

/// Resolves with the outstanding request's answer; never, when there is none.
async fn answer_of(
    outstanding: &mut Option<Outstanding>,
) -> (Connection, bool, Result<Answer, FailureClass>) {
    match outstanding {
        Some(o) => o.call.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Sends one request on `connection` and reads its whole answer (bounded), driving the
/// connection's I/O meanwhile.
async fn exchange(
    connection: &mut Connection,
    request: Request<Full<Bytes>>,
) -> Result<Answer, FailureClass> {
    let Connection { sender, driver, .. } = connection;
    let answer = send_and_read(sender, request);
    tokio::pin!(answer);
    let Some(running) = driver.as_mut() else {
        return answer.await;
    };
    tokio::select! {
        // The answer first: once it is whole, the connection's I/O waits for the next request.
        biased;
        answer = &mut answer => {
            // One more turn of the connection's I/O, which returns it to idle and says it
            // wants the next request: without it, that request's send waited on the
            // connection and then on the worker's run queue before it was written.
            if running.as_mut().now_or_never().is_some() {
                *driver = None;
            }
            return answer;
        }
        _ended = running.as_mut() => {}
    }
    // The connection ended first: dropping it fails whatever still waits on it (closed, or reset).
    *driver = None;
    answer.await
}

/// Sends one request and reads its whole answer (bounded); the connection's I/O is driven
/// beside it.
async fn send_and_read(
    sender: &mut Sender,
    request: Request<Full<Bytes>>,
) -> Result<Answer, FailureClass> {
    sender.ready().await.map_err(|e| class_of_hyper(&e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| class_of_hyper(&e))?;
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| class_of_body_error(e.as_ref()))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// The session id and negotiated revision from the answer to `initialize`.
///
/// 503 is the node's refusal at capacity (or while draining); any other failure is a protocol
/// error: a status other than 200, a body that is not the result for `initialize`'s id, or no
/// `Mcp-Session-Id`.
fn judge_initialize(answer: &Answer) -> Result<(HeaderValue, HeaderValue), FailureClass> {
    if answer.status == StatusCode::SERVICE_UNAVAILABLE {
        return Err(FailureClass::RejectedAtCapacity);
    }
    if answer.status != StatusCode::OK {
        return Err(FailureClass::ProtocolError);
    }
    let text = std::str::from_utf8(&answer.body).map_err(|_| FailureClass::ProtocolError)?;
    if protocol::parse_reply(text.as_bytes()) != Reply::Ok(protocol::INITIALIZE_ID) {
        return Err(FailureClass::ProtocolError);
    }
    let session_id = answer
        .headers
        .get(SESSION_HEADER)
        .filter(|id| !id.is_empty())
        .ok_or(FailureClass::ProtocolError)?
        .clone();
    // The revision the node chose; it must name it on every later request.
    let version = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.pointer("/result/protocolVersion")
                .and_then(|v| v.as_str())
                .and_then(|v| HeaderValue::from_str(v).ok())
        })
        .unwrap_or(HeaderValue::from_static(protocol::PROTOCOL_VERSION));
    Ok((session_id, version))
}

/// What the answer to echo request `id` means.
fn judge_echo(status: StatusCode, body: &[u8], id: u64) -> Outcome {
    match status {
        StatusCode::OK => match protocol::parse_reply(body) {
            Reply::Ok(answered) if answered == id => Outcome::Ok,
            Reply::Error(answered) if answered == id => {
                Outcome::Failed(FailureClass::ProtocolError)
            }
            _ => Outcome::Died(FailureClass::ProtocolError),
        },
        // The node no longer knows the session (it restarted, expired it, or its owner is
        // gone): the session was lost by the peer, as a reset connection loses a TCP session.
        StatusCode::NOT_FOUND => Outcome::Died(FailureClass::Reset),
        _ => Outcome::Died(FailureClass::ProtocolError),
    }
}

/// Classifies an error of the HTTP connection.
fn class_of_hyper(error: &hyper::Error) -> FailureClass {
    if error.is_parse() || error.is_user() {
        return FailureClass::ProtocolError;
    }
    if error.is_timeout() {
        return FailureClass::RequestTimeout;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return FailureClass::from_stream_error(io);
        }
        source = cause.source();
    }
    // Closed or canceled: the peer went away mid-session.
    FailureClass::Reset
}

/// Classifies an error reading an answer body: the connection's, or an oversized body.
fn class_of_body_error(error: &(dyn std::error::Error + Send + Sync + 'static)) -> FailureClass {
    match error.downcast_ref::<hyper::Error>() {
        Some(error) => class_of_hyper(error),
        None => FailureClass::ProtocolError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::wire_time::testing::{
        StepsHeld, assert_the_block_is_read_delay, drive_through_a_block, steps, timestamping_on,
    };
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpListener;

    fn answer(status: u16, session: Option<&str>, body: &str) -> Answer {
        let mut headers = HeaderMap::new();
        if let Some(id) = session {
            headers.insert(SESSION_HEADER, HeaderValue::from_str(id).unwrap());
        }
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from(body.to_string()),
        }
    }

    const INIT_OK: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{},"serverInfo":{"name":"erlmcp","version":"0.1.0"}}}"#;

    #[test]
    fn initialize_answer_gives_session_id_and_negotiated_version() {
        let (id, version) = judge_initialize(&answer(200, Some("abc123"), INIT_OK)).unwrap();
        assert_eq!(id, "abc123");
        assert_eq!(version, "2025-03-26");

        // Without a protocolVersion in the result, the requested revision is assumed.
        let bare = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let (_, version) = judge_initialize(&answer(200, Some("x"), bare)).unwrap();
        assert_eq!(version, protocol::PROTOCOL_VERSION);
    }

    #[test]
    fn initialize_failures_are_classified() {
        let full = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"node n1 is at capacity"}}"#;
        let failed = r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad version"}}"#;
        let cases = [
            (answer(503, None, full), FailureClass::RejectedAtCapacity),
            (answer(200, None, INIT_OK), FailureClass::ProtocolError),
            (answer(200, Some(""), INIT_OK), FailureClass::ProtocolError),
            (answer(200, Some("x"), failed), FailureClass::ProtocolError),
            (
                answer(200, Some("x"), "<html>"),
                FailureClass::ProtocolError,
            ),
            (answer(403, None, full), FailureClass::ProtocolError),
            (answer(406, None, full), FailureClass::ProtocolError),
        ];
        for (answer, class) in cases {
            assert_eq!(judge_initialize(&answer).unwrap_err(), class, "{answer:?}");
        }
    }

    #[test]
    fn echo_answers_are_judged_by_status_and_id() {
        let ok = r#"{"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text","text":"x"}],"isError":false}}"#;
        let error = r#"{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"x"}}"#;
        let cases = [
            (200, ok, 5, Outcome::Ok),
            (200, ok, 6, Outcome::Died(FailureClass::ProtocolError)),
            (200, error, 5, Outcome::Failed(FailureClass::ProtocolError)),
            (
                200,
                "not json",
                5,
                Outcome::Died(FailureClass::ProtocolError),
            ),
            (404, error, 5, Outcome::Died(FailureClass::Reset)),
            (400, error, 5, Outcome::Died(FailureClass::ProtocolError)),
        ];
        for (status, body, id, outcome) in cases {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                judge_echo(status, body.as_bytes(), id),
                outcome,
                "{status} {body}"
            );
        }
    }

    #[test]
    fn requests_carry_host_accept_and_session_headers() {
        let mut headers = SessionHeaders::new("127.0.0.1:8080".parse().unwrap()).unwrap();
        let first = headers.post(protocol::initialize_request());
        assert_eq!(first.method(), Method::POST);
        assert_eq!(first.uri(), "/mcp");
        assert_eq!(first.headers()[HOST], "127.0.0.1:8080");
        assert_eq!(first.headers()[ACCEPT], "application/json");
        assert_eq!(first.headers()[CONTENT_TYPE], "application/json");
        assert!(!first.headers().contains_key(SESSION_HEADER));

        headers.session = Some((
            HeaderValue::from_static("s1"),
            HeaderValue::from_static("2025-06-18"),
        ));
        let later = headers.post(protocol::echo_request(2));
        assert_eq!(later.headers()[SESSION_HEADER], "s1");
        assert_eq!(later.headers()[VERSION_HEADER], "2025-06-18");
        let end = headers.request(Method::DELETE, Bytes::new());
        assert_eq!(end.method(), Method::DELETE);
        assert_eq!(end.headers()[SESSION_HEADER], "s1");

        let v6 = SessionHeaders::new("[::1]:9".parse().unwrap()).unwrap();
        assert_eq!(v6.host, "[::1]:9");
    }

    #[tokio::test]
    async fn an_oversized_body_is_a_protocol_error() {
        let body = Full::new(Bytes::from(vec![b'x'; 100]));
        let error = Limited::new(body, 10).collect().await.unwrap_err();
        assert_eq!(
            class_of_body_error(error.as_ref()),
            FailureClass::ProtocolError
        );
    }

    /// A scripted HTTP/1.1 server for one connection: answers the handshake, then answers echo
    /// requests only while `answer_echo` says so. Returns its address.
    async fn scripted_node(status_for_initialize: u16, answer_echo: bool) -> SocketAddr {
        scripted_node_closing_after(status_for_initialize, answer_echo, 1000).await
    }

    /// A node that answers `per_connection` requests on each connection and then closes it (as
    /// a node closes an idle keep-alive connection), and knows only session `s1`.
    async fn scripted_node_closing_after(
        status_for_initialize: u16,
        answer_echo: bool,
        per_connection: usize,
    ) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..16 {
                let (stream, _) = listener.accept().await.unwrap();
                serve_scripted(stream, status_for_initialize, answer_echo, per_connection).await;
            }
        });
        addr
    }

    async fn serve_scripted(
        stream: tokio::net::TcpStream,
        status_for_initialize: u16,
        answer_echo: bool,
        per_connection: usize,
    ) {
        {
            let mut stream = BufReader::new(stream);
            // Each loop reads one request (head, then Content-Length bytes) and answers it.
            for _ in 0..per_connection {
                let mut session = false;
                let mut length = 0usize;
                let mut first = String::new();
                if stream.read_line(&mut first).await.unwrap_or(0) == 0 {
                    return;
                }
                // A request head here is a handful of lines.
                for _ in 0..64 {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    session |= lower.trim_end() == "mcp-session-id: s1";
                }
                let mut body = vec![0; length];
                stream.read_exact(&mut body).await.unwrap();
                let body = String::from_utf8(body).unwrap();
                let (status, extra, reply) = if body.contains("\"initialize\"") {
                    (
                        status_for_initialize,
                        "mcp-session-id: s1\r\n",
                        INIT_OK.to_string(),
                    )
                } else if body.contains("notifications/initialized") || first.starts_with("DELETE")
                {
                    (202, "", String::new())
                } else if !session {
                    (404, "", String::new())
                } else if answer_echo {
                    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let reply = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{}}}}"#, id["id"]);
                    (200, "", reply)
                } else {
                    // Never answers: hold the connection open.
                    std::future::pending::<()>().await;
                    unreachable!()
                };
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n",
                    reply.len()
                );
                let stream = stream.get_mut();
                stream.write_all(head.as_bytes()).await.unwrap();
                stream.write_all(reply.as_bytes()).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_full_node_is_rejected_at_capacity() {
        let addr = scripted_node(503, true).await;
        let error = HttpSession::open(addr, None, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(error, FailureClass::RejectedAtCapacity);
    }

    #[tokio::test]
    async fn nothing_listening_is_connect_refused() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap(); // dropped: the port is closed again
        let error = HttpSession::open(addr, None, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert_eq!(error, FailureClass::ConnectRefused);
    }

    /// Drives `session` with `n` requests all due now, then stop.
    async fn drive_all_due_now(
        session: HttpSession,
        n: u64,
        request_timeout: Duration,
    ) -> (SessionEnd, Recorder) {
        let recorder = Recorder::new(&["n".to_string()]);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let now = Instant::now();
        recorder.requests_sent(n);
        for _ in 0..n {
            tx.send(now).unwrap();
        }
        drop(tx);
        let end = session.drive(rx, request_timeout, &recorder).await;
        (end, recorder)
    }

    #[tokio::test]
    async fn queued_requests_are_answered_in_turn_and_each_resolved_once() {
        let addr = scripted_node(200, true).await;
        let session = HttpSession::open(addr, None, Duration::from_secs(2))
            .await
            .unwrap();
        // Five requests due at once: one on the wire, four queued behind it.
        let (end, recorder) = drive_all_due_now(session, 5, Duration::from_secs(5)).await;
        assert_eq!(end, SessionEnd::Stopped);
        let row = recorder.cut(1);
        assert_eq!((row.ok, row.failed), (5, 0));
        assert_eq!(recorder.outstanding(), 0);
    }

    #[tokio::test]
    async fn a_request_sent_before_its_time_counts_its_latency_from_the_send() {
        // Handed out 300 ms early; counted from its intended time, the answer came before it
        // and the latency read 0 (the histogram's lowest value, 0.001 ms).
        const EARLY: Duration = Duration::from_millis(300);
        let addr = scripted_node(200, true).await;
        let session = HttpSession::open(addr, None, Duration::from_secs(2))
            .await
            .unwrap();
        let recorder = Recorder::new(&["n".to_string()]);
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        recorder.requests_sent(1);
        tx.send(Instant::now() + EARLY).unwrap();
        drop(tx);
        let end = session.drive(rx, Duration::from_secs(5), &recorder).await;
        assert_eq!(end, SessionEnd::Stopped);
        let row = recorder.cut(1);
        assert_eq!(row.ok, 1);
        let latency = row.latency.max_ms().unwrap();
        // A loopback HTTP exchange takes tens of microseconds at the least.
        assert!(latency > 0.01, "latency {latency} ms");
        assert!(
            latency < EARLY.as_secs_f64() * 1000.0,
            "latency {latency} ms"
        );
    }

    /// An HTTP node on a thread of its own, so it answers while the test's runtime is blocked:
    /// it answers the handshake at once and each echo request only on the test's go.
    fn stepped_http_node() -> (SocketAddr, StepsHeld) {
        use std::io::{BufRead, Read, Write};
        let (server, held) = steps();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let mut requests = std::io::BufReader::new(socket.try_clone().unwrap());
            let mut socket = socket;
            loop {
                let mut length = 0usize;
                let mut line = String::new();
                if requests.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                while line != "\r\n" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                    line.clear();
                    if requests.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                }
                let mut body = vec![0; length];
                requests.read_exact(&mut body).unwrap();
                let body = String::from_utf8(body).unwrap();
                let (status, extra, reply) = if body.contains("\"initialize\"") {
                    (200, "mcp-session-id: s1\r\n", INIT_OK.to_string())
                } else if body.contains("\"tools/call\"") {
                    let _ = server.received.send(());
                    if server.go.recv().is_err() {
                        return;
                    }
                    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
                    let reply = format!(r#"{{"jsonrpc":"2.0","id":{},"result":{{}}}}"#, id["id"]);
                    (200, "", reply)
                } else {
                    (202, "", String::new())
                };
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n{extra}content-length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = socket.write_all(answer.as_bytes());
                if status == 200 && extra.is_empty() {
                    let _ = server.answered.send(());
                }
            }
        });
        (addr, held)
    }

    /// An open session to `addr` and a recorder with one request due at each of `intended`
    /// queued (and the queue closed, so the session stops once they are resolved).
    async fn requests_due_at(
        addr: SocketAddr,
        intended: &[Instant],
    ) -> (HttpSession, Recorder, UnboundedReceiver<Instant>) {
        let session = HttpSession::open(addr, None, Duration::from_secs(5))
            .await
            .unwrap();
        let (recorder, rx) = crate::stress::recorder::with_requests_due("n", intended);
        (session, recorder, rx)
    }

    #[tokio::test]
    async fn a_busy_worker_s_delay_in_reading_an_answer_is_read_delay_not_latency() {
        // Once the node has the request, the worker's thread is blocked; the node answers inside
        // the block, and the answer waits in the socket until the block (300 ms) ends. Before
        // the stream noted the kernel's receive time, that wait was latency (latency 300 ms).
        let _timestamping = timestamping_on();
        let (addr, steps) = stepped_http_node();
        let intended = Instant::now();
        let (session, recorder, rx) = requests_due_at(addr, &[intended]).await;
        let drive = session.drive(rx, Duration::from_secs(5), &recorder);
        let (end, answer_out) = drive_through_a_block(drive, &steps).await;
        assert_eq!(end, SessionEnd::Stopped);
        assert_the_block_is_read_delay(&recorder.cut(1), intended, answer_out);
    }

    #[tokio::test]
    async fn a_request_sent_late_counts_its_lateness_as_send_delay_and_as_latency() {
        const LATE: Duration = Duration::from_millis(300);
        // Due 300 ms ago: the generator is that late sending it. (Before the stream noted the
        // write, an HTTP session reported no send delay at all.)
        let addr = scripted_node(200, true).await;
        let (session, recorder, rx) = requests_due_at(addr, &[Instant::now() - LATE]).await;
        drive_to_the_end(session, &recorder, rx).await;
        let row = recorder.cut(1);
        assert_eq!(row.ok, 1);
        let late_ms = LATE.as_secs_f64() * 1000.0;
        let send_delay = row.send_delay.max_ms().unwrap();
        assert!(send_delay >= late_ms, "send delay {send_delay} ms");
        let latency = row.latency.max_ms().unwrap();
        assert!(latency >= late_ms, "latency {latency} ms");
    }

    #[tokio::test]
    async fn a_request_queued_behind_another_waits_for_the_connection_not_for_the_generator() {
        // Two requests due at once; the node holds the first answer `HELD`. The second waits
        // that long for the session's one connection: latency, but not the generator's delay.
        const HELD: Duration = Duration::from_millis(200);
        let (addr, StepsHeld { received, go, .. }) = stepped_http_node();
        std::thread::spawn(move || {
            for wait in [HELD, Duration::ZERO] {
                if received.recv().is_err() {
                    return;
                }
                std::thread::sleep(wait);
                let _ = go.send(());
            }
        });
        let now = Instant::now();
        let (session, recorder, rx) = requests_due_at(addr, &[now, now]).await;
        drive_to_the_end(session, &recorder, rx).await;
        let row = recorder.cut(1);
        assert_eq!(row.ok, 2);
        let held_ms = HELD.as_secs_f64() * 1000.0;
        let latency = row.latency.max_ms().unwrap();
        assert!(latency >= held_ms * 0.99, "latency {latency} ms");
        let send_delay = row.send_delay.max_ms().unwrap();
        assert!(send_delay < held_ms / 2.0, "send delay {send_delay} ms");
    }

    /// Drives `session` over what `rx` holds until it is resolved; the session stops.
    async fn drive_to_the_end(
        session: HttpSession,
        recorder: &Recorder,
        rx: UnboundedReceiver<Instant>,
    ) {
        let end = session.drive(rx, Duration::from_secs(5), recorder).await;
        assert_eq!(end, SessionEnd::Stopped);
    }

    #[tokio::test]
    async fn a_silent_node_times_out_the_wire_and_the_queue() {
        let addr = scripted_node(200, false).await;
        let session = HttpSession::open(addr, None, Duration::from_secs(2))
            .await
            .unwrap();
        let (end, recorder) = drive_all_due_now(session, 3, Duration::from_millis(200)).await;
        assert_eq!(end, SessionEnd::Stopped);
        let row = recorder.cut(1);
        assert_eq!(row.ok, 0);
        assert_eq!(row.request_failures.get(FailureClass::RequestTimeout), 3);
        assert_eq!(recorder.outstanding(), 0);
    }

    #[tokio::test]
    async fn a_session_whose_connection_the_node_closed_goes_on_over_a_new_one() {
        // Two requests a connection: the handshake fills the first, then every second echo
        // finds its connection closed (before sending, or just as it is sent).
        let addr = scripted_node_closing_after(200, true, 2).await;
        let session = HttpSession::open(addr, None, Duration::from_secs(2))
            .await
            .unwrap();
        let (end, recorder) = drive_all_due_now(session, 5, Duration::from_secs(5)).await;
        assert_eq!(end, SessionEnd::Stopped);
        let row = recorder.cut(1);
        assert_eq!((row.ok, row.failed), (5, 0), "{row:?}");
        // Five echoes at two a connection, the first connection taken by the handshake.
        assert_eq!(row.reconnects, 3, "{row:?}");
        assert_eq!(recorder.outstanding(), 0);
    }
}
