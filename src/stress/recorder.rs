//! The worker-side tally that sessions and the dispatcher report into, cut into one row per second.

use super::failure::FailureClass;
use super::stats::{SecondRow, TargetSecond};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long the generator itself held one answered request: after its intended time, before
/// it began writing it, and after the kernel received its answer, before reading it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GeneratorDelays {
    /// Intended send time to the start of the write (part of the latency).
    pub send: Duration,
    /// Kernel receive timestamp of the answer to its read (not part of the latency).
    pub read: Duration,
}

/// Counts since the last cut, plus the open-session gauge per target.
#[derive(Debug)]
pub struct Recorder {
    state: Mutex<SecondRow>,
    /// Requests sent and not yet resolved (answered or failed).
    outstanding: AtomicU64,
}

impl Recorder {
    /// A recorder for the given target node names (indexes match the worker's target table).
    pub fn new(nodes: &[String]) -> Self {
        let targets = nodes
            .iter()
            .map(|node| TargetSecond {
                node: node.clone(),
                ..TargetSecond::default()
            })
            .collect();
        Self {
            state: Mutex::new(SecondRow {
                targets,
                ..SecondRow::default()
            }),
            outstanding: AtomicU64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut SecondRow) -> R) -> R {
        // A panic elsewhere must not lose the counts: take the data even from a poisoned lock.
        let mut guard = self
            .state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut guard)
    }

    /// `n` requests fell due.
    pub fn requests_sent(&self, n: u64) {
        self.outstanding.fetch_add(n, Ordering::SeqCst);
        self.with(|row| row.sent += n);
    }

    /// Requests sent and not yet resolved.
    pub fn outstanding(&self) -> u64 {
        self.outstanding.load(Ordering::SeqCst)
    }

    /// A request was answered successfully after `latency` (from its intended send time).
    pub fn request_ok(&self, latency: Duration) {
        self.answered_in_time(latency, None);
    }

    fn answered_in_time(&self, latency: Duration, delays: Option<GeneratorDelays>) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        self.with(|row| {
            row.ok += 1;
            row.latency.record(latency);
            if let Some(delays) = delays {
                row.send_delay.record(delays.send);
                row.read_delay.record(delays.read);
            }
        });
    }

    /// A request was answered `latency` after its intended send time, its bound being
    /// `request_timeout`: within the bound it is a success; past it, a timeout. An overloaded
    /// worker can read an answer before its timer has had the chance to expire the request,
    /// and that answer came too late all the same.
    pub fn request_answered(&self, latency: Duration, request_timeout: Duration) {
        self.request_answered_with_delays(latency, None, request_timeout);
    }

    /// [`Self::request_answered`], with the generator's own delays recorded beside the latency
    /// when the answer is a success.
    pub fn request_answered_with_delays(
        &self,
        latency: Duration,
        delays: Option<GeneratorDelays>,
        request_timeout: Duration,
    ) {
        if latency > request_timeout {
            self.requests_failed(FailureClass::RequestTimeout, 1);
        } else {
            self.answered_in_time(latency, delays);
        }
    }

    /// `n` requests failed with `class`.
    pub fn requests_failed(&self, class: FailureClass, n: u64) {
        if n == 0 {
            return;
        }
        self.outstanding.fetch_sub(n, Ordering::SeqCst);
        self.with(|row| {
            row.failed += n;
            row.request_failures.add(class, n);
        });
    }

    /// A session on `target` completed its handshake.
    pub fn session_opened(&self, target: usize) {
        self.with(|row| {
            let t = &mut row.targets[target];
            t.open += 1;
            t.opened += 1;
            t.peak_open = t.peak_open.max(t.open);
            let open: u64 = row.targets.iter().map(|t| t.open).sum();
            row.peak_open = row.peak_open.max(open);
        });
    }

    /// An open session on `target` ended, abnormally when `failure` is set.
    pub fn session_closed(&self, target: usize, failure: Option<FailureClass>) {
        self.with(|row| {
            let t = &mut row.targets[target];
            t.open = t.open.saturating_sub(1);
            t.closed += 1;
            if let Some(class) = failure {
                t.failed += 1;
                row.session_failures.add(class, 1);
            }
        });
    }

    /// A Streamable HTTP session opened a new connection because the node had closed its idle
    /// one (the session itself went on).
    pub fn http_reconnected(&self) {
        self.with(|row| row.reconnects += 1);
    }

    /// An attempt to open a session on `target` failed with `class`.
    pub fn session_attempt_failed(&self, target: usize, class: FailureClass) {
        self.with(|row| {
            row.targets[target].failed += 1;
            row.session_failures.add(class, 1);
        });
    }

    /// Returns the counts since the last cut as the row of `second` and starts a new row.
    /// The open-session gauge carries over.
    pub fn cut(&self, second: u64) -> SecondRow {
        self.with(|row| {
            let targets = row
                .targets
                .iter()
                .map(|t| TargetSecond {
                    node: t.node.clone(),
                    open: t.open,
                    peak_open: t.open,
                    ..TargetSecond::default()
                })
                .collect();
            let peak_open = row.targets.iter().map(|t| t.open).sum();
            let next = SecondRow {
                targets,
                peak_open,
                ..SecondRow::default()
            };
            let mut taken = std::mem::replace(row, next);
            taken.second = second;
            taken
        })
    }
}

/// A recorder for one target and a session's queue with one request due at each of `due`; the
/// queue is closed behind them, so a session driven from it stops once they are resolved.
#[cfg(test)]
pub(super) fn with_requests_due(
    node: &str,
    due: &[tokio::time::Instant],
) -> (
    Recorder,
    tokio::sync::mpsc::UnboundedReceiver<tokio::time::Instant>,
) {
    let recorder = Recorder::new(&[node.to_string()]);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    recorder.requests_sent(due.len() as u64);
    for at in due {
        tx.send(*at).unwrap();
    }
    (recorder, rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_resets_counters_but_keeps_the_open_gauge() {
        let recorder = Recorder::new(&["a".to_string(), "b".to_string()]);
        recorder.session_opened(0);
        recorder.session_opened(0);
        recorder.session_attempt_failed(1, FailureClass::ConnectRefused);
        recorder.requests_sent(3);
        recorder.request_ok(Duration::from_millis(2));
        recorder.requests_failed(FailureClass::RequestTimeout, 2);
        assert_eq!(recorder.outstanding(), 0);
        let first = recorder.cut(1);
        assert_eq!(
            (first.second, first.sent, first.ok, first.failed),
            (1, 3, 1, 2)
        );
        assert_eq!((first.targets[0].open, first.targets[0].opened), (2, 2));
        assert_eq!(first.targets[1].failed, 1);
        assert_eq!(first.session_failures.get(FailureClass::ConnectRefused), 1);

        recorder.session_closed(0, Some(FailureClass::Reset));
        let second = recorder.cut(2);
        assert_eq!((second.sent, second.ok, second.failed), (0, 0, 0));
        assert_eq!(
            (
                second.targets[0].open,
                second.targets[0].closed,
                second.targets[0].failed
            ),
            (1, 1, 1)
        );
        assert_eq!(second.latency.count(), 0);
    }

    #[test]
    fn an_answer_past_the_request_bound_counts_as_a_timeout() {
        let recorder = Recorder::new(&["a".to_string()]);
        let bound = Duration::from_secs(5);
        recorder.requests_sent(3);
        // (latency, counted ok)
        for latency in [
            Duration::from_millis(3),
            bound,
            bound + Duration::from_millis(1),
        ] {
            recorder.request_answered(latency, bound);
        }
        let row = recorder.cut(1);
        assert_eq!((row.ok, row.failed), (2, 1));
        assert_eq!(row.request_failures.get(FailureClass::RequestTimeout), 1);
        assert_eq!(row.latency.count(), 2);
        assert_eq!(recorder.outstanding(), 0);
    }
}
