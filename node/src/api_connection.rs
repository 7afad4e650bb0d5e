//! One API-port connection: hyper serves its requests, and between requests the connection is
//! parked with nothing but its socket.
//!
//! A hyper HTTP/1 connection owns an 8 KiB read buffer and an 8 KiB write buffer from its first
//! byte to its last (hyper's smallest: `max_buf_size` cannot go below 8 KiB), plus its state
//! machine, about 20 KiB of a node's RSS per idle keep-alive connection in all. A node holds tens
//! of thousands of Streamable HTTP sessions whose clients keep a connection open and idle between
//! requests, so once a response is completely written and no request is in progress the
//! connection is taken back from hyper (`graceful_shutdown` of an idle connection closes nothing
//! but hyper's state; `into_parts` returns the socket and any bytes hyper had read ahead), and the
//! task waits for the socket to become readable, holding no buffer, as a TCP session does. The
//! next request gets a fresh hyper connection over the same socket. The client sees one
//! keep-alive connection throughout.
//!
//! Two timeouts bound a connection between requests. A connection parked after a response waits
//! up to the keep-alive timeout for its next request's first byte (an idle client's connection
//! is closed then, not at the read timeout: a client idle between calls would otherwise reconnect
//! for nearly every call). A new connection must start its first request within the head
//! timeout (the read timeout), and every request head, once started, must be complete within it
//! (slowloris).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::header::{CONNECTION, HeaderMap};
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api_listener::LaneSlot;
use crate::counted_io::CountedStream;
use crate::metrics::CloseReason;
use crate::state::Node;
use crate::write_deadline::{WriteDeadline, is_write_timeout};

/// How one lane's connections are served.
#[derive(Clone)]
pub struct Serving {
    /// Its routes.
    pub routes: Router,
    /// Whether it keeps connections alive between requests.
    pub keep_alive: bool,
    /// How long a request head may take: a new connection's first request from the
    /// connection's start, every later one from its first byte.
    pub head_timeout: Duration,
    /// How long a connection parked after a response waits for the next request's first byte.
    pub keep_alive_timeout: Duration,
}

/// The socket as hyper sees it.
type Socket = CountedStream<WriteDeadline<TcpStream>>;

/// Serves one accepted connection until it closes, a timeout passes or `stop` turns true.
pub async fn serve(
    stream: TcpStream,
    lane: Serving,
    _slot: LaneSlot,
    mut stop: watch::Receiver<bool>,
    node: Node,
) {
    let _ = stream.set_nodelay(true);
    // A client that takes none of a response for the write timeout is disconnected; ending the
    // connection drops the response, which cancels its request.
    let socket = CountedStream::new(
        WriteDeadline::new(stream, node.config.write_timeout),
        node.metrics.network_receive_bytes.clone(),
        node.metrics.network_transmit_bytes.clone(),
    );
    let activity = Arc::new(Activity::default());
    let mut io = Watched {
        inner: socket,
        read_ahead: Bytes::new(),
        activity: activity.clone(),
    };
    let mut service = Tracked {
        inner: TowerToHyperService::new(lane.routes.clone()),
        activity: activity.clone(),
    };
    // A new connection's first request must start within the head timeout, like its head.
    let mut wait = lane.head_timeout;
    loop {
        // Parked: only the socket, until the next request's first byte.
        if io.read_ahead.is_empty() {
            let readable = io.inner.get_ref().get_ref().readable();
            tokio::select! {
                ready = tokio::time::timeout(wait, readable) => {
                    if !matches!(ready, Ok(Ok(()))) {
                        return; // a timeout (or a socket error): dropping it closes it
                    }
                }
                _ = stopped(&mut stop) => return,
            }
        }
        let head_deadline = Instant::now() + lane.head_timeout;
        wait = lane.keep_alive_timeout;
        activity.finished.store(0, Ordering::Release);
        activity.closing.store(false, Ordering::Release);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(head_deadline.saturating_duration_since(Instant::now()))
            .keep_alive(lane.keep_alive);
        // Boxed: the connection's buffers and state exist only while it serves a request, and
        // the parked task stays small.
        let mut connection = Box::new(http.serve_connection(TokioIo::new(io), service));
        let mut parking = false;
        let mut stopping = false;
        let served = loop {
            let polled = poll_fn(|cx| match connection.poll_without_shutdown(cx) {
                Poll::Ready(done) => Poll::Ready(Some(done)),
                Poll::Pending if !parking && !stopping && activity.is_idle() => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            });
            tokio::select! {
                polled = polled => match polled {
                    Some(done) => break done,
                    None => {
                        // Idle: hyper closes only its own state and hands the socket back.
                        parking = true;
                        Pin::new(&mut *connection).graceful_shutdown();
                    }
                },
                _ = stopped(&mut stop), if !stopping => {
                    stopping = true;
                    parking = false;
                    Pin::new(&mut *connection).graceful_shutdown();
                }
            }
        };
        if let Err(error) = &served {
            if is_write_timeout(error) {
                node.metrics.closed(CloseReason::WriteTimeout);
            }
            return;
        }
        let parts = connection.into_parts();
        io = parts.io.into_inner();
        service = parts.service;
        if !parking || stopping || *stop.borrow() {
            // hyper ended the connection itself (`Connection: close`, no keep-alive, the peer
            // closed) or the node is stopping.
            let _ = io.inner.shutdown().await;
            return;
        }
        // Copied: even an empty `read_buf` is a view of hyper's whole 8 KiB read buffer, which
        // it would keep alive for as long as the connection is parked.
        io.read_ahead = Bytes::copy_from_slice(&parts.read_buf);
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
pub async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// What the connection is doing, as its service and socket see it: whether it may be parked.
#[derive(Debug, Default)]
struct Activity {
    /// Requests whose response hyper has not finished with (its body is alive).
    requests: AtomicUsize,
    /// Requests hyper finished with since the current hyper connection started.
    finished: AtomicUsize,
    /// Bytes were written since the last completed flush: hyper may still hold some.
    unflushed: AtomicBool,
    /// A request or its response said the connection ends after it (`Connection: close`, on a
    /// refusal whose body was never read, or HTTP/1.0): hyper closes it, nothing is parked.
    closing: AtomicBool,
}

impl Activity {
    /// At least one response done, no request in progress and every byte handed to the
    /// socket: hyper is waiting for the next request head.
    fn is_idle(&self) -> bool {
        self.finished.load(Ordering::Acquire) > 0
            && self.requests.load(Ordering::Acquire) == 0
            && !self.unflushed.load(Ordering::Acquire)
            && !self.closing.load(Ordering::Acquire)
    }

    /// Notes a request or response that ends the connection after it.
    fn note_close(&self, version: Version, headers: &HeaderMap) {
        let close = headers.get_all(CONNECTION).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("close"))
        });
        if close || version != Version::HTTP_11 {
            self.closing.store(true, Ordering::Release);
        }
    }
}

/// Counts a request from the call until hyper drops its response body (it has encoded all of it
/// by then), or until the request is dropped unanswered.
struct RequestGuard(Arc<Activity>);

impl RequestGuard {
    fn new(activity: Arc<Activity>) -> Self {
        activity.requests.fetch_add(1, Ordering::AcqRel);
        RequestGuard(activity)
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        self.0.requests.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The router as a hyper service whose requests are counted in [`Activity`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

type TrackedFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<Response<TrackedBody<B>>, E>> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>>,
    S::Future: Send + 'static,
    B: 'static,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<B, S::Error>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.activity
            .note_close(request.version(), request.headers());
        let guard = RequestGuard::new(self.activity.clone());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            guard.0.note_close(Version::HTTP_11, response.headers());
            Ok(response.map(|body| TrackedBody {
                inner: body,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its request counted while hyper holds it.
struct TrackedBody<B> {
    inner: B,
    _guard: RequestGuard,
}

impl<B: Body + Unpin> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket with the bytes hyper had read ahead of its last request put back in front, and
/// its writes tracked in [`Activity`].
struct Watched {
    inner: Socket,
    read_ahead: Bytes,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            let taken = self.read_ahead.split_to(n);
            buf.put_slice(&taken);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.activity.unflushed.store(true, Ordering::Release);
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.activity.unflushed.store(true, Ordering::Release);
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.activity.unflushed.store(false, Ordering::Release);
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NodeConfig;
    use crate::state::NodeState;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn a_connection_task_holds_no_hyper_connection_inline() {
        // The task of every open connection is allocated at this size for its whole life,
        // parked or not; hyper's connection (its buffers and state) is boxed only while it serves.
        let node = NodeState::new(NodeConfig::for_tests());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let slot = LaneSlot::alone();
        let (_stop, stopped) = watch::channel(false);
        let serving = Serving {
            routes: crate::http::router(node.clone()),
            keep_alive: true,
            head_timeout: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(1),
        };
        let task = serve(stream, serving, slot, stopped, node);
        let size = std::mem::size_of_val(&task);
        eprintln!("connection task: {size} bytes");
        assert!(size < 2048, "the connection task is {size} bytes");
    }
}
