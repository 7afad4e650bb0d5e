//! When a session's bytes crossed the wire: the kernel's receive timestamps (`SO_TIMESTAMPNS`)
//! for what it reads, and for the Streamable HTTP session, whose reads and writes hyper makes,
//! a stream that notes them as they happen.
//!
//! A reply's latency ends when the reply reached this machine, not when a busy worker got round
//! to reading it; that difference is reported apart as the generator's read delay. Where the
//! kernel gives no timestamp, the arrival is the time of the read: still correct, only later.

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Oldest kernel receive timestamp taken as a reply's arrival; an older one means the wall
/// clock stepped between the packet and the read, and the read's own time is used instead.
/// (A reply that really waited this long is past any request timeout anyway.)
pub const MAX_ARRIVAL_AGE: Duration = Duration::from_secs(60);

/// Asks the kernel to timestamp what arrives on `socket`; best effort.
pub fn enable(socket: &impl AsFd) {
    // Without timestamps every arrival is the time of the read.
    let _ = setsockopt(socket, sockopt::ReceiveTimestampns, &true);
}

/// One non-blocking read of what `stream` holds into `buffer`: the byte count and the kernel's
/// receive timestamp, if it gave one. `WouldBlock` when nothing is ready.
///
/// A short read drained the socket, so it clears the stream's readiness: the next read then
/// waits for the socket instead of costing a system call that finds nothing (tokio's own reads
/// do the same).
pub fn try_recv_timestamped(
    stream: &TcpStream,
    buffer: &mut [u8],
) -> std::io::Result<(usize, Option<TimeSpec>)> {
    let mut short = None;
    let capacity = buffer.len();
    let read = stream.try_io(Interest::READABLE, || {
        let got = recv_timestamped(stream.as_raw_fd(), buffer)?;
        if 0 < got.0 && got.0 < capacity {
            short = Some(got);
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        Ok(got)
    });
    match (read, short) {
        (_, Some(got)) => Ok(got),
        (read, None) => read,
    }
}

/// One `recvmsg` into `buffer`: the byte count and the kernel's receive timestamp, if it gave one.
pub fn recv_timestamped(
    fd: RawFd,
    buffer: &mut [u8],
) -> std::io::Result<(usize, Option<TimeSpec>)> {
    // Room for one `SCM_TIMESTAMPNS` message (CMSG_SPACE of a timespec is 32 bytes on Linux).
    let mut control = [0u8; 64];
    let mut iov = [IoSliceMut::new(buffer)];
    let message = recvmsg::<()>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    let received = message.cmsgs().ok().and_then(|mut messages| {
        messages.find_map(|m| match m {
            ControlMessageOwned::ScmTimestampns(at) => Some(at),
            _ => None,
        })
    });
    Ok((message.bytes, received))
}

/// The monotonic time at which a read's bytes arrived, from the kernel's wall-clock timestamp.
///
/// Only the age of the timestamp (wall clock now minus then, microseconds apart) is taken from
/// the wall clock, so a clock step since the run began moves nothing; an age that makes no
/// sense (negative, or a step in between) falls back to `now`, the time of the read.
pub fn arrival(received: Option<TimeSpec>, now: Instant) -> Instant {
    let Some(received) = received else {
        return now;
    };
    let received = Duration::new(received.tv_sec() as u64, received.tv_nsec() as u32);
    let age = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|wall| wall.checked_sub(received))
        .filter(|age| *age < MAX_ARRIVAL_AGE)
        .unwrap_or_default();
    now.checked_sub(age).unwrap_or(now)
}

/// What a [`NotingStream`] saw of the exchange under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireTimes {
    /// When the first write since [`WireNotes::expect_request`] began.
    pub written: Option<Instant>,
    /// When the bytes of the latest read that returned any arrived.
    pub arrived: Option<Instant>,
}

/// The times a [`NotingStream`] notes, shared with the session whose connection it carries.
#[derive(Debug, Clone)]
pub struct WireNotes(Arc<Mutex<WireTimes>>);

impl WireNotes {
    fn new() -> Self {
        WireNotes(Arc::new(Mutex::new(WireTimes {
            written: None,
            arrived: None,
        })))
    }

    fn with<R>(&self, f: impl FnOnce(&mut WireTimes) -> R) -> R {
        // The times are plain values: a panic elsewhere leaves them usable.
        let mut guard = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        f(&mut guard)
    }

    /// A request is about to be sent: the next write is its first.
    pub fn expect_request(&self) {
        self.with(|times| {
            times.written = None;
            times.arrived = None;
        });
    }

    /// What was noted since [`Self::expect_request`].
    pub fn times(&self) -> WireTimes {
        self.with(|times| *times)
    }
}

/// A TCP stream for hyper that reads with receive timestamps and notes when a request's first
/// write began and when the latest bytes read arrived.
#[derive(Debug)]
pub struct NotingStream {
    stream: TcpStream,
    notes: WireNotes,
}

impl NotingStream {
    /// Wraps `stream`, turning its receive timestamps on; the notes go to the returned handle.
    pub fn new(stream: TcpStream) -> (Self, WireNotes) {
        enable(&stream);
        let notes = WireNotes::new();
        (
            NotingStream {
                stream,
                notes: notes.clone(),
            },
            notes,
        )
    }

    fn note_write(&self) {
        self.notes.with(|times| {
            times.written.get_or_insert_with(Instant::now);
        });
    }
}

impl AsyncRead for NotingStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            ready!(this.stream.poll_read_ready(cx))?;
            let (count, received) =
                match try_recv_timestamped(&this.stream, buf.initialize_unfilled()) {
                    Ok(got) => got,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Poll::Ready(Err(e)),
                };
            if count > 0 {
                let at = arrival(received, Instant::now());
                this.notes.with(|times| times.arrived = Some(at));
            }
            buf.advance(count);
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncWrite for NotingStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.note_write();
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.note_write();
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// What tests of timestamped reads share.
#[cfg(test)]
pub(super) mod testing {
    use crate::stress::stats::SecondRow;
    use std::sync::mpsc::{Receiver, Sender, channel};
    use std::time::Duration;
    use tokio::time::Instant;

    /// A test server's ends of its steps: it says when a request has arrived, answers only on
    /// the test's go, and says when the answer is out.
    pub struct ServerSteps {
        pub received: Sender<()>,
        pub go: Receiver<()>,
        pub answered: Sender<()>,
    }

    /// The test's ends of [`ServerSteps`].
    pub struct StepsHeld {
        pub received: Receiver<()>,
        pub go: Sender<()>,
        pub answered: Receiver<()>,
    }

    /// Both ends of a server's steps.
    pub fn steps() -> (ServerSteps, StepsHeld) {
        let (received_tx, received) = channel();
        let (go, go_rx) = channel();
        let (answered_tx, answered) = channel();
        (
            ServerSteps {
                received: received_tx,
                go: go_rx,
                answered: answered_tx,
            },
            StepsHeld {
                received,
                go,
                answered,
            },
        )
    }

    /// How long [`drive_through_a_block`] blocks the test's thread once the answer is out.
    pub const BLOCK: Duration = Duration::from_millis(300);

    /// Runs `drive` (a session's) beside a block: once the server has the request it answers,
    /// and once the answer is out the test's thread blocks for [`BLOCK`], so nothing on its
    /// runtime reads the answer meanwhile. Returns what `drive` returned and when the answer
    /// was out.
    pub async fn drive_through_a_block<T>(
        drive: impl std::future::Future<Output = T>,
        steps: &StepsHeld,
    ) -> (T, Instant) {
        let block = async {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while steps.received.try_recv().is_err() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the server got no request in 5 s"
                );
                tokio::task::yield_now().await;
            }
            // From here to the end of the block there is no await.
            steps.go.send(()).unwrap();
            steps
                .answered
                .recv_timeout(Duration::from_secs(5))
                .expect("the server answers within 5 s");
            let answer_out = Instant::now();
            std::thread::sleep(BLOCK);
            answer_out
        };
        tokio::join!(drive, block)
    }

    /// Asserts that `row`'s one answer, due at `intended`, ended its latency when it was out
    /// (1 ms for the histogram's rounding) and spent the [`BLOCK`] as read delay.
    pub fn assert_the_block_is_read_delay(row: &SecondRow, intended: Instant, answer_out: Instant) {
        assert_eq!(row.ok, 1);
        let latency = row.latency.max_ms().unwrap();
        let out_ms = (answer_out - intended).as_secs_f64() * 1000.0;
        assert!(
            latency <= out_ms + 1.0,
            "latency {latency} ms, answer out after {out_ms} ms"
        );
        let read_delay = row.read_delay.max_ms().unwrap();
        let block_ms = BLOCK.as_secs_f64() * 1000.0;
        assert!(read_delay >= block_ms * 0.99, "read delay {read_delay} ms");
    }

    /// Holds the machine's receive timestamping on while it lives; made once it is on.
    ///
    /// Linux turns timestamping on for every socket when the first one asks, but a moment
    /// later (from a work queue), and off when the last one closes. A test socket opened
    /// alone can be answered inside that moment, without a timestamp.
    pub struct TimestampingOn {
        _sender: std::net::TcpStream,
        _receiver: std::net::TcpStream,
    }

    pub fn timestamping_on() -> TimestampingOn {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sender = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (receiver, _) = listener.accept().unwrap();
        super::enable(&receiver);
        let mut byte = [0u8; 1];
        for _ in 0..500 {
            sender.write_all(b"x").unwrap();
            let (_, received) = super::recv_timestamped(receiver.as_raw_fd(), &mut byte).unwrap();
            if received.is_some() {
                return TimestampingOn {
                    _sender: sender,
                    _receiver: receiver,
                };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the kernel gave no receive timestamp in 5 s");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn an_arrival_is_the_kernel_s_time_unless_that_time_is_impossible() {
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        };
        let at = |since_epoch: Duration| {
            Some(TimeSpec::new(
                since_epoch.as_secs() as i64,
                i64::from(since_epoch.subsec_nanos()),
            ))
        };
        let before = Instant::now();
        // 200 ms ago by the kernel's timestamp: 200 ms before now.
        let age = before.saturating_duration_since(arrival(
            at(wall() - Duration::from_millis(200)),
            Instant::now(),
        ));
        assert!(
            age >= Duration::from_millis(150) && age < Duration::from_secs(5),
            "{age:?}"
        );
        let impossible = [
            // No timestamp.
            None,
            // In the future: the wall clock stepped back since.
            at(wall() + Duration::from_secs(5)),
            // Older than any answer can be: the clock stepped forward.
            at(wall() - MAX_ARRIVAL_AGE * 2),
        ];
        for received in impossible {
            // The read's own time.
            assert!(arrival(received, Instant::now()) >= before, "{received:?}");
        }
    }

    #[tokio::test]
    async fn a_noting_stream_notes_the_first_write_of_a_request_and_the_arrival_of_its_answer() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let (mut server, _) = accepted.unwrap();
        let (mut stream, notes) = NotingStream::new(client.unwrap());

        notes.expect_request();
        assert_eq!(notes.times().written, None);
        let before = Instant::now();
        stream.write_all(b"first").await.unwrap();
        let first = notes.times().written.expect("the write is noted");
        assert!(first >= before);
        // A later write of the same request leaves its start where it was.
        stream.write_all(b" second").await.unwrap();
        assert_eq!(notes.times().written, Some(first));

        let mut got = [0u8; 12];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(b"answer").await.unwrap();
        let mut answer = [0u8; 6];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
        let arrived = notes.times().arrived.expect("the read is noted");
        assert!(first <= arrived && arrived <= Instant::now());

        // The next request starts with nothing noted.
        notes.expect_request();
        assert_eq!(
            notes.times(),
            WireTimes {
                written: None,
                arrived: None
            }
        );
        // A read that finds the peer gone (0 bytes) notes no arrival.
        drop(server);
        assert_eq!(stream.read(&mut answer).await.unwrap(), 0);
        assert_eq!(notes.times().arrived, None);
    }
}
