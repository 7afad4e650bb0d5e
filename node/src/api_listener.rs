//! The API port's connections: how many may be open, how long each may take to send a request,
//! and how they end on shutdown. The routes themselves are [`crate::http`]'s.
//!
//! Two lanes share the port. Up to `max_http_connections` connections get every route; when
//! those are all taken, up to `probe_connections` more get only `/health`, `/ready` and
//! `/metrics` (anything else is 503) and no keep-alive, so an operator's probe gets through a node
//! that clients have filled; a connection there must send its request head within 2 s, so idle
//! connections cannot hold the probe lane for long. Past both, a connection is closed at once
//! (its descriptor is back before the next accept). A new connection must send its first request
//! head within the read timeout, every request its head within the read timeout of its first
//! byte and its body within the read timeout after the head; a keep-alive connection idle after
//! a response is closed after the keep-alive timeout. A
//! client that takes none of a response for the write timeout is disconnected
//! ([`crate::write_deadline`]). Each connection is served by [`crate::api_connection`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::api_connection::{Serving, stopped};
use crate::jsonrpc::code;
use crate::metrics::CloseReason;
use crate::state::{DescriptorSlot, Node};

/// Serves the API port until `stop` turns true, then asks open connections to finish their
/// current request and waits for them (the caller bounds the wait).
pub async fn serve(listener: TcpListener, node: Node, mut stop: watch::Receiver<bool>) {
    let lane_size = |n: usize| n.min(Semaphore::MAX_PERMITS);
    let full = Lane {
        slots: Arc::new(Semaphore::new(lane_size(node.config.max_http_connections))),
        size: lane_size(node.config.max_http_connections),
        shares_descriptors: true,
        serving: Serving {
            routes: with_body_deadline(crate::http::router(node.clone()), &node),
            keep_alive: true,
            head_timeout: node.config.read_timeout,
            keep_alive_timeout: node.config.keep_alive_timeout,
        },
    };
    let probes = Lane {
        slots: Arc::new(Semaphore::new(lane_size(node.config.probe_connections))),
        size: lane_size(node.config.probe_connections),
        // The probe lane's descriptors are set aside by `fd_limit`, outside the shared pool.
        shares_descriptors: false,
        serving: Serving {
            routes: with_body_deadline(probe_router(node.clone()), &node),
            keep_alive: false,
            head_timeout: node.config.read_timeout.min(PROBE_HEAD_TIMEOUT),
            // Never parked: a probe connection closes after its one response.
            keep_alive_timeout: node.config.read_timeout.min(PROBE_HEAD_TIMEOUT),
        },
    };
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped(&mut stop) => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, backoff_ms = backoff.as_millis() as u64, "API accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        backoff = Duration::from_millis(5);
        let lane = [&full, &probes]
            .into_iter()
            .find_map(|lane| Some((lane, lane.take(&node)?)));
        let Some((lane, slot)) = lane else {
            node.metrics.closed(CloseReason::HttpFull);
            continue; // dropping the stream closes it
        };
        tokio::spawn(crate::api_connection::serve(
            stream,
            lane.serving.clone(),
            slot,
            stop.clone(),
            node.clone(),
        ));
    }
    drop(listener);
    for lane in [full, probes] {
        let size = u32::try_from(lane.size).unwrap_or(u32::MAX);
        let _ = lane.slots.acquire_many(size).await;
    }
}

/// One lane of connections: its slots and what it serves.
struct Lane {
    slots: Arc<Semaphore>,
    size: usize,
    /// Whether a connection here also takes a descriptor of the pool TCP sessions draw from.
    shares_descriptors: bool,
    serving: Serving,
}

impl Lane {
    /// A slot of this lane (and a descriptor of the shared pool, where the lane draws on it);
    /// None when either is taken up.
    fn take(&self, node: &Node) -> Option<LaneSlot> {
        let permit = self.slots.clone().try_acquire_owned().ok()?;
        let descriptor = match self.shares_descriptors {
            true => Some(node.try_hold_descriptor()?),
            false => None,
        };
        Some(LaneSlot {
            _permit: permit,
            _descriptor: descriptor,
        })
    }
}

/// What one API connection holds while it is open; dropping it frees both.
pub struct LaneSlot {
    _permit: OwnedSemaphorePermit,
    _descriptor: Option<DescriptorSlot>,
}

impl LaneSlot {
    /// A slot of a lane of its own, for tests of one connection.
    #[cfg(test)]
    pub fn alone() -> Self {
        LaneSlot {
            _permit: Arc::new(Semaphore::new(1)).try_acquire_owned().unwrap(),
            _descriptor: None,
        }
    }
}

/// A probe sends its request at once; a connection in the probe lane that does not is making
/// room for the next probe after this long, however long `read_timeout` is.
const PROBE_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe lane's routes: what an operator's health check and scraper need, nothing else.
fn probe_router(node: Node) -> Router {
    Router::new()
        .route("/health", get(crate::http::health))
        .route("/ready", get(crate::http::ready))
        .route("/metrics", get(crate::http::metrics))
        .fallback(|| async {
            crate::http::rpc_error(
                StatusCode::SERVICE_UNAVAILABLE,
                code::AT_CAPACITY,
                "every HTTP connection is taken; only /health, /ready and /metrics answer now",
            )
        })
        .with_state(node)
}

/// Reads each request's body within the read timeout (hyper bounds only the head) and within the
/// message size (413 as soon as it is passed, not after buffering it).
fn with_body_deadline(routes: Router, node: &Node) -> Router {
    routes.layer(axum::middleware::from_fn_with_state(
        node.clone(),
        read_body_within,
    ))
}

async fn read_body_within(State(node): State<Node>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limit = node.config.max_line_bytes;
    // A declared length past the limit is refused before a byte of the body is read.
    let declared = axum::body::HttpBody::size_hint(&body).lower();
    if declared > u64::try_from(limit).unwrap_or(u64::MAX) {
        return too_long(limit);
    }
    // The body is held whole until its handler is done: it counts against the node's input
    // budget like TCP's partial lines, at its declared size (the limit when undeclared).
    let charge = axum::body::HttpBody::size_hint(&body)
        .upper()
        .map_or(limit, |declared| {
            usize::try_from(declared).unwrap_or(limit).min(limit)
        });
    let Some(_reservation) = node.input_budget.reserve(charge) else {
        node.metrics.closed(CloseReason::InputBudget);
        return closing(crate::http::rpc_error(
            StatusCode::SERVICE_UNAVAILABLE,
            code::AT_CAPACITY,
            "the node holds too much partially received input; retry later",
        ));
    };
    let read = tokio::time::timeout(node.config.read_timeout, axum::body::to_bytes(body, limit));
    match read.await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(error)) => {
            let too_long = error
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            if too_long {
                self::too_long(limit)
            } else {
                closing(StatusCode::BAD_REQUEST.into_response())
            }
        }
        Err(_) => {
            node.metrics.closed(CloseReason::ReadTimeout);
            let message = format!(
                "request body not received within {:?}",
                node.config.read_timeout
            );
            closing(crate::http::rpc_error(
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                &message,
            ))
        }
    }
}

fn too_long(limit: usize) -> Response {
    let message = format!("body longer than {limit} bytes");
    closing(crate::http::rpc_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        code::INVALID_REQUEST,
        &message,
    ))
}

/// The rest of the body was never read, so the connection cannot carry another request.
fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}
