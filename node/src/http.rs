//! The API port: Streamable HTTP at `/mcp` (POST, GET stream, DELETE; `Mcp-Session-Id` and
//! `MCP-Protocol-Version` for the handshake revisions, per-request `_meta` for the stateless
//! 2026-07-28 one), `/health`, `/ready`, `/metrics` for operators, and the cluster routes of
//! [`crate::cluster_api`]. Requests for sessions another node owns go through [`crate::proxy`].

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::stream::{self, Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{self, Reply};
use crate::jsonrpc::{ErrorObject, Incoming, Message, Response as RpcResponse, code};
use crate::long_task::{self, Cancels, LongTask};
use crate::session::{STATELESS_VERSION, Session, is_stateless, version_index};
use crate::state::{HttpSession, Node};

/// The Streamable HTTP session header (lowercase, as `HeaderName` wants it).
pub const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";

/// The API router. A POST body is one JSON-RPC message, so it gets the TCP line limit (413
/// beyond it) rather than axum's default.
pub fn router(node: Node) -> Router {
    let body_limit = DefaultBodyLimit::max(node.config.max_line_bytes);
    Router::new()
        .route("/mcp", get(mcp_get).post(mcp_post).delete(mcp_delete))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .merge(crate::cluster_api::routes())
        .layer(body_limit)
        .with_state(node)
}

/// `/health`: the process runs.
pub(crate) async fn health() -> &'static str {
    "ok\n"
}

/// `/ready`: accepting sessions, draining or full.
pub(crate) async fn ready(State(node): State<Node>) -> Response {
    if node.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else if node.is_draining() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "full\n").into_response()
    }
}

/// `/metrics`: the Prometheus text.
pub(crate) async fn metrics(State(node): State<Node>) -> Response {
    node.metrics.observe_members(&node.members());
    let body = node.metrics.render();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// An error response with a JSON-RPC body.
pub fn rpc_error(status: StatusCode, rpc_code: i32, message: &str) -> Response {
    let body = RpcResponse::error(None, ErrorObject::new(rpc_code, message.to_string())).to_vec();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn refusal(status: StatusCode, rpc_code: i32, message: &str) -> Box<Response> {
    Box::new(rpc_error(status, rpc_code, message))
}

/// DNS-rebinding protection ([`crate::rebinding`]): a `Host` or `Origin` that is not this
/// node's gets 403.
pub fn check_origin_and_host(node: &Node, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let text = |name| headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"));
    match crate::rebinding::check(&node.config, text(header::HOST), text(header::ORIGIN)) {
        Ok(()) => Ok(()),
        Err(crate::rebinding::Refusal::Host) => Err(refusal(
            StatusCode::FORBIDDEN,
            code::INVALID_REQUEST,
            "Host not allowed",
        )),
        Err(crate::rebinding::Refusal::Origin) => Err(refusal(
            StatusCode::FORBIDDEN,
            code::INVALID_REQUEST,
            "Origin not allowed",
        )),
    }
}

fn accepts(headers: &HeaderMap, kind: &str) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(kind) || v.contains("*/*"))
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn json_response(status: StatusCode, body: Vec<u8>, session_id: Option<&str>) -> Response {
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(id) = session_id.and_then(|id| HeaderValue::from_str(id).ok()) {
        response.headers_mut().insert(SESSION_HEADER, id);
    }
    response
}

/// A new unguessable session id.
fn new_session_id() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        // No /dev/urandom: mix the clock and a counter (unique, if not secret).
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes[..8].copy_from_slice(&n.to_le_bytes());
        bytes[8..].copy_from_slice(&(t as u64).to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn mcp_post(State(node): State<Node>, mut headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = check_origin_and_host(&node, &headers) {
        return *refused;
    }
    if let Some(forwarded) =
        crate::proxy::forward_to_owner(&node, Method::POST, &mut headers, body.clone()).await
    {
        return forwarded;
    }
    if !accepts(&headers, "application/json") && !accepts(&headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Accept must include application/json or text/event-stream",
        );
    }
    let header_version = header_text(&headers, VERSION_HEADER);
    if let Some(version) = header_version
        && version_index(version).is_none()
    {
        let message = format!("unsupported MCP-Protocol-Version: {version}");
        return rpc_error(StatusCode::BAD_REQUEST, code::INVALID_REQUEST, &message);
    }
    // Parsed once: the method and `_meta` route the message, then the dispatcher handles it.
    let incoming = Incoming::parse(&body, node.config.max_batch);
    let (method, params) = match &incoming {
        Incoming::Request(call) => (Some(call.method.as_ref()), call.params),
        Incoming::Notification { method, params } => (Some(method.as_ref()), *params),
        _ => (None, None),
    };
    // Discovery is how a client finds out which revisions exist, so it never needs a session.
    let stateless = header_version == Some(STATELESS_VERSION) || method == Some("server/discover");
    let stateless_body = is_stateless(params);
    let initialize = method == Some("initialize");

    // The handshake creates a session; the stateless revision needs none.
    if initialize && !stateless {
        if let Some(placed) = crate::proxy::place_initialize(&node, &headers, &body).await {
            return placed;
        }
        let Some(slot) = node.try_open_session("http") else {
            node.metrics.connections_rejected.inc();
            let message = format!(
                "node {} is at capacity; connect to another node",
                node.config.node_name
            );
            return rpc_error(StatusCode::SERVICE_UNAVAILABLE, code::AT_CAPACITY, &message);
        };
        let mut session = Session::default();
        let reply = dispatch::dispatch_message(incoming, &mut session, &node);
        let Reply::Response(response) = reply else {
            return StatusCode::ACCEPTED.into_response();
        };
        if response.is_error() {
            // A failed initialize opens no session.
            return json_response(StatusCode::OK, response.to_vec(), None);
        }
        let id = new_session_id();
        node.http_sessions.lock().expect("sessions lock").insert(
            id.clone(),
            HttpSession {
                session,
                cancels: Cancels::new(),
                slot,
                last_seen: tokio::time::Instant::now(),
            },
        );
        return json_response(StatusCode::OK, response.to_vec(), Some(&id));
    }

    let session_id = header_text(&headers, SESSION_HEADER).map(str::to_string);
    let reply = match &session_id {
        _ if stateless || (session_id.is_none() && stateless_body) => {
            let mut session = Session::default();
            dispatch::dispatch_message(incoming, &mut session, &node)
        }
        None => {
            return rpc_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "missing Mcp-Session-Id: send initialize first",
            );
        }
        Some(id) => {
            let mut sessions = node.http_sessions.lock().expect("sessions lock");
            let Some(http) = sessions.get_mut(id) else {
                drop(sessions);
                return rpc_error(
                    StatusCode::NOT_FOUND,
                    code::INVALID_REQUEST,
                    "unknown or expired Mcp-Session-Id",
                );
            };
            http.last_seen = tokio::time::Instant::now();
            let reply = dispatch::dispatch_message(incoming, &mut http.session, &node);
            let cancelled = match &reply {
                Reply::Cancel(request) => std::slice::from_ref(request),
                Reply::Batch(batch) => batch.cancels.as_slice(),
                _ => &[],
            };
            for request in cancelled {
                if let Some(cancel) = http.cancels.remove(request) {
                    let _ = cancel.send(());
                }
            }
            reply
        }
    };
    match reply {
        Reply::None | Reply::Cancel(_) => StatusCode::ACCEPTED.into_response(),
        Reply::Response(response) => {
            // An error without an id answers a body that was no readable request.
            let status = if response.id.is_none() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::OK
            };
            json_response(status, response.to_vec(), None)
        }
        Reply::Batch(batch) if batch.responses.is_empty() => StatusCode::ACCEPTED.into_response(),
        Reply::Batch(batch) => {
            let mut body = Vec::new();
            crate::jsonrpc::write_batch(&batch.responses, &mut body);
            json_response(StatusCode::OK, body, None)
        }
        Reply::Long(task) => {
            run_long(
                node,
                task,
                session_id,
                accepts(&headers, "text/event-stream"),
            )
            .await
        }
    }
}

/// Runs a long request: as an SSE stream (progress, then the response) when the client accepts
/// one, else as a single JSON response once it is done.
async fn run_long(node: Node, task: LongTask, session_id: Option<String>, sse: bool) -> Response {
    let (outbox, mut inbox) = mpsc::channel::<Message>(node.config.outbound_queue.max(1));
    let (cancel, cancelled) = oneshot::channel();
    // A session's request can be cancelled by a later POST; a stateless one only by its client
    // leaving, so its handle lives (and dies) with this response.
    let mut held = Some(cancel);
    if let Some(id) = &session_id
        && let Some(http) = node
            .http_sessions
            .lock()
            .expect("sessions lock")
            .get_mut(id)
    {
        http.cancels.retain(|_, cancel| !cancel.is_closed()); // finished ones
        if http.cancels.len() >= node.config.max_in_flight_per_session {
            node.metrics.in_flight_refused.inc();
            let refusal = long_task::refusal(task.id, node.config.max_in_flight_per_session);
            return json_response(StatusCode::OK, refusal.to_vec(), None);
        }
        http.cancels
            .insert(task.key(), held.take().expect("not yet taken"));
    }
    tokio::spawn(task.run_on(node.clone(), outbox, cancelled));
    if sse {
        let events = stream::unfold((inbox, held), |(mut inbox, held)| async move {
            let message = inbox.recv().await?;
            let event = Event::default()
                .event("message")
                .data(String::from_utf8_lossy(&message.to_vec()));
            Some((Ok::<_, Infallible>(event), (inbox, held)))
        });
        return Sse::new(events).into_response();
    }
    let mut last = None;
    while let Some(message) = inbox.recv().await {
        last = Some(message);
    }
    drop(held);
    match last {
        Some(message) if message.is_response() => {
            json_response(StatusCode::OK, message.to_vec(), None)
        }
        _ => StatusCode::ACCEPTED.into_response(), // cancelled: no response, as the spec says
    }
}

/// `GET /mcp`: the session's server-to-client stream. This server starts no requests of its
/// own, so the stream carries keep-alives until the session ends, the node drains or the idle
/// timeout passes.
async fn mcp_get(State(node): State<Node>, mut headers: HeaderMap) -> Response {
    if let Err(refused) = check_origin_and_host(&node, &headers) {
        return *refused;
    }
    if let Some(forwarded) =
        crate::proxy::forward_to_owner(&node, Method::GET, &mut headers, Bytes::new()).await
    {
        return forwarded;
    }
    if !accepts(&headers, "text/event-stream") {
        return rpc_error(
            StatusCode::NOT_ACCEPTABLE,
            code::INVALID_REQUEST,
            "Accept must include text/event-stream",
        );
    }
    let Some(id) = header_text(&headers, SESSION_HEADER).map(str::to_string) else {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    if !node
        .http_sessions
        .lock()
        .expect("sessions lock")
        .contains_key(&id)
    {
        return rpc_error(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "unknown or expired Mcp-Session-Id",
        );
    }
    Sse::new(session_stream(node, id))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn session_stream(node: Node, id: String) -> impl Stream<Item = Result<Event, Infallible>> {
    // The stream carries no messages, and its keep-alives are too small ever to fill a socket,
    // so a client that stopped reading it looks like one that listens: neither the write
    // timeout nor anything else would end it. It ends after the idle timeout (the spec lets a
    // server close it at any time; a client that wants it opens it again), so it holds an HTTP
    // connection for at most that long.
    let ends = tokio::time::Instant::now() + node.config.idle_timeout;
    // Checks once a second whether the session still exists; ends when it does not.
    stream::unfold((node, id), move |(node, id)| async move {
        loop {
            tokio::time::sleep_until(
                ends.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            )
            .await;
            // An open stream is a live client: it keeps its session from expiring.
            let alive = !node.is_draining()
                && tokio::time::Instant::now() < ends
                && node
                    .http_sessions
                    .lock()
                    .expect("sessions lock")
                    .get_mut(&id)
                    .map(|s| s.last_seen = tokio::time::Instant::now())
                    .is_some();
            if !alive {
                return None::<(Result<Event, Infallible>, (Node, String))>;
            }
        }
    })
    .boxed()
}

async fn mcp_delete(State(node): State<Node>, mut headers: HeaderMap) -> Response {
    if let Err(refused) = check_origin_and_host(&node, &headers) {
        return *refused;
    }
    if let Some(forwarded) =
        crate::proxy::forward_to_owner(&node, Method::DELETE, &mut headers, Bytes::new()).await
    {
        return forwarded;
    }
    let Some(id) = header_text(&headers, SESSION_HEADER) else {
        return rpc_error(
            StatusCode::BAD_REQUEST,
            code::INVALID_REQUEST,
            "missing Mcp-Session-Id",
        );
    };
    match node.http_sessions.lock().expect("sessions lock").remove(id) {
        Some(_) => StatusCode::OK.into_response(),
        None => rpc_error(
            StatusCode::NOT_FOUND,
            code::INVALID_REQUEST,
            "unknown or expired Mcp-Session-Id",
        ),
    }
}
