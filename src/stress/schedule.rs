//! Open-model pacing: the intended send time of every request, fixed in advance by the rate.
//!
//! Request `k` is due at `start + k / rate`, whatever happened to earlier requests. A
//! stalled server therefore shows up as latency (measured from the intended time), not as
//! fewer requests: no coordinated omission.

use std::time::Duration;
use tokio::time::Instant;

/// The intended send times of requests at a constant rate over `[start, until)`.
#[derive(Debug, Clone)]
pub struct OpenSchedule {
    start: Instant,
    until: Instant,
    rate: f64,
    issued: u64,
}

impl OpenSchedule {
    /// A schedule of `rate` requests per second from `start` until (excluding) `until`.
    pub fn new(start: Instant, rate: f64, until: Instant) -> Self {
        Self {
            start,
            until,
            rate,
            issued: 0,
        }
    }

    /// The intended time of the next request, or `None` once the schedule is over.
    pub fn next_at(&self) -> Option<Instant> {
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            return None;
        }
        let at = self.start + Duration::from_secs_f64(self.issued as f64 / self.rate);
        (at < self.until).then_some(at)
    }

    /// Takes every request due at or before `now`, returning their intended times in order.
    pub fn take_due(&mut self, now: Instant) -> Vec<Instant> {
        let mut due = Vec::new();
        while let Some(at) = self.next_at() {
            if at > now {
                break;
            }
            due.push(at);
            self.issued += 1;
        }
        due
    }

    /// How many requests have been taken so far.
    pub fn issued(&self) -> u64 {
        self.issued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn requests_fall_due_at_fixed_intervals() {
        let t0 = Instant::now();
        let mut schedule = OpenSchedule::new(t0, 100.0, t0 + ms(1000));
        // (now, how many are due by then in total)
        let cases = [(0, 1), (9, 1), (10, 2), (55, 6), (999, 100), (5000, 100)];
        for (now, total) in cases {
            schedule.take_due(t0 + ms(now));
            assert_eq!(schedule.issued(), total, "at {now} ms");
        }
        assert_eq!(schedule.next_at(), None);
    }

    #[test]
    fn a_late_caller_gets_the_original_intended_times() {
        let t0 = Instant::now();
        let mut schedule = OpenSchedule::new(t0, 10.0, t0 + ms(1000));
        let due = schedule.take_due(t0 + ms(350));
        assert_eq!(due, vec![t0, t0 + ms(100), t0 + ms(200), t0 + ms(300)]);
    }

    #[test]
    fn zero_rate_sends_nothing() {
        let t0 = Instant::now();
        let mut schedule = OpenSchedule::new(t0, 0.0, t0 + ms(1000));
        assert!(schedule.take_due(t0 + ms(2000)).is_empty());
    }
}
