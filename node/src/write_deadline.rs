//! A write timeout for the API port's connections. Hyper has none of its own, so a client that
//! stops reading a response (an SSE stream above all) would hold its connection slot until it
//! left. [`WriteDeadline`] wraps the socket and fails a write that has made no progress for the
//! limit; hyper then ends the connection, which drops the response and so cancels its request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

/// A stream whose writes must make progress within a limit.
#[derive(Debug)]
pub struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    /// Armed (on the heap, so an idle connection carries no timer) when a write first finds the
    /// socket full; dropped when a write makes progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

/// The error a stalled write fails with (inside an [`io::Error`] of kind `TimedOut`).
#[derive(Debug)]
pub struct WriteTimedOut;

impl std::fmt::Display for WriteTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the peer took none of a write within the write timeout")
    }
}

impl std::error::Error for WriteTimedOut {}

/// Whether `error` (or anything in its source chain) is a [`WriteTimedOut`].
pub fn is_write_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        let inner = error
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<WriteTimedOut>());
        if inner || error.is::<WriteTimedOut>() {
            return true;
        }
        next = error.source();
    }
    false
}

impl<T> WriteDeadline<T> {
    /// Wraps `inner`: a write pending for `limit` without progress fails.
    pub fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            stalled: None,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Runs one write-side operation; while it stays pending the stall timer runs, and once
    /// the timer has fired the operation fails.
    fn poll_progress<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>>
    where
        T: Unpin,
    {
        if let Poll::Ready(done) = op(Pin::new(&mut self.inner), cx) {
            self.stalled = None;
            return Poll::Ready(done);
        }
        let limit = self.limit;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, WriteTimedOut)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_progress(cx, |inner, cx| inner.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .poll_progress(cx, |inner, cx| inner.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_progress(cx, |inner, cx| inner.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut()
            .poll_progress(cx, |inner, cx| inner.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMIT: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_takes_fails_after_the_limit() {
        let (near, _far) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(near, LIMIT);
        let started = tokio::time::Instant::now();
        let error = stream.write_all(&[b'x'; 1024]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(is_write_timeout(&error));
        // Paused clock: virtual time, which jumps straight to the timer.
        assert!(started.elapsed() >= LIMIT, "failed before the limit");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_keeps_reading_is_never_timed_out() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(near, LIMIT);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 64];
            // Slower in total than the limit, but every read makes room within it.
            while got.len() < 1024 {
                tokio::time::sleep(LIMIT / 2).await;
                let n = far.read(&mut chunk).await.unwrap();
                got.extend_from_slice(&chunk[..n]);
            }
            got
        });
        stream.write_all(&[b'y'; 1024]).await.unwrap();
        assert_eq!(reader.await.unwrap(), vec![b'y'; 1024]);
        assert!(
            stream.stalled.is_none(),
            "no timer left armed after progress"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn reads_are_untouched() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut stream = WriteDeadline::new(near, LIMIT);
        far.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
    }

    #[test]
    fn other_errors_are_not_write_timeouts() {
        let error = io::Error::new(io::ErrorKind::TimedOut, "elsewhere");
        assert!(!is_write_timeout(&error));
    }
}
