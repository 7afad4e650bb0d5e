//! Measurements: HDR latency histograms and the per-second rows that workers send and the parent merges.

use super::failure::FailureCounts;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency the histogram tracks, in microseconds (one hour); larger values saturate.
const MAX_TRACKED_MICROS: u64 = 3_600_000_000;

/// Latencies in microseconds with 3 significant digits; serializes as `[[value, count], ...]`.
///
/// The counts (about 180 KiB for these bounds) are allocated by the first sample, so the many
/// rows that hold no latency (empty seconds, the parent's per-worker counts) cost nothing.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(into = "Vec<[u64; 2]>", try_from = "Vec<[u64; 2]>")]
pub struct LatencyHistogram(Option<Box<Histogram<u64>>>);

impl PartialEq for LatencyHistogram {
    fn eq(&self, other: &Self) -> bool {
        Vec::<[u64; 2]>::from(self.clone()) == Vec::<[u64; 2]>::from(other.clone())
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self(None)
    }

    fn counts(&mut self) -> &mut Histogram<u64> {
        self.0.get_or_insert_with(|| {
            Box::new(
                Histogram::new_with_bounds(1, MAX_TRACKED_MICROS, 3).expect("valid static bounds"),
            )
        })
    }

    /// Records one latency (values above one hour are recorded as one hour).
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        self.counts().saturating_record(micros);
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if let Some(other) = other.0.as_deref().filter(|o| !o.is_empty()) {
            // Both have the same bounds, so adding cannot fail.
            self.counts().add(other).expect("histograms share bounds");
        }
    }

    /// How many samples were recorded.
    pub fn count(&self) -> u64 {
        self.0.as_ref().map_or(0, |h| h.len())
    }

    /// The counts, when there is a sample.
    fn recorded(&self) -> Option<&Histogram<u64>> {
        self.0.as_deref().filter(|h| !h.is_empty())
    }

    /// The latency at quantile `q` (0..=1) in milliseconds, or `None` without samples.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        self.recorded()
            .map(|h| h.value_at_quantile(q) as f64 / 1000.0)
    }

    /// The largest recorded latency in milliseconds, or `None` without samples.
    pub fn max_ms(&self) -> Option<f64> {
        self.recorded().map(|h| h.max() as f64 / 1000.0)
    }

    /// The mean latency in milliseconds, or `None` without samples.
    pub fn mean_ms(&self) -> Option<f64> {
        self.recorded().map(|h| h.mean() / 1000.0)
    }

    /// `(quantile, latency in ms)` along the percentile spectrum, as HdrHistogram's percentile
    /// output: 5 steps per halving of the distance to 100 %, so the tail is sampled densely; the
    /// last point is the largest latency at quantile 1.
    pub fn percentile_spectrum_ms(&self) -> Vec<(f64, f64)> {
        let Some(h) = self.recorded() else {
            return Vec::new();
        };
        h.iter_quantiles(5)
            .map(|v| {
                (
                    v.quantile_iterated_to(),
                    v.value_iterated_to() as f64 / 1000.0,
                )
            })
            .collect()
    }

    /// `(upper bound in ms, count)` per logarithmic bucket (doubling from 0.1 ms), for the distribution chart.
    pub fn log_buckets_ms(&self) -> Vec<(f64, u64)> {
        let Some(h) = self.recorded() else {
            return Vec::new();
        };
        h.iter_log(100, 2.0)
            .map(|v| {
                (
                    v.value_iterated_to() as f64 / 1000.0,
                    v.count_since_last_iteration(),
                )
            })
            .collect()
    }
}

impl From<LatencyHistogram> for Vec<[u64; 2]> {
    fn from(histogram: LatencyHistogram) -> Self {
        histogram.recorded().map_or_else(Vec::new, |h| {
            h.iter_recorded()
                .map(|v| [v.value_iterated_to(), v.count_at_value()])
                .collect()
        })
    }
}

impl TryFrom<Vec<[u64; 2]>> for LatencyHistogram {
    type Error = String;
    fn try_from(buckets: Vec<[u64; 2]>) -> Result<Self, String> {
        let mut histogram = LatencyHistogram::new();
        for [value, count] in buckets {
            if count == 0 {
                continue;
            }
            histogram
                .counts()
                .record_n(value.clamp(1, MAX_TRACKED_MICROS), count)
                .map_err(|e| format!("bad histogram bucket {value}: {e:?}"))?;
        }
        Ok(histogram)
    }
}

/// One target's session counts during one second, as seen by one worker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetSecond {
    /// Node name.
    pub node: String,
    /// Sessions open at the end of the second.
    pub open: u64,
    /// Most sessions open at any instant during the second (per worker; summed over workers
    /// it is an upper bound, as workers may peak at different instants).
    pub peak_open: u64,
    /// Sessions whose handshake completed during the second.
    pub opened: u64,
    /// Sessions that stopped being open during the second (normally or not).
    pub closed: u64,
    /// Failed session attempts plus open sessions that ended abnormally.
    pub failed: u64,
}

/// Everything measured during one second of a run: one worker's, or the merge of all workers'.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondRow {
    /// Whole seconds since the run started.
    pub second: u64,
    /// Per-target session counts.
    pub targets: Vec<TargetSecond>,
    /// Most sessions open at any instant during the second over all targets (per worker;
    /// summed over workers it is an upper bound, as workers may peak at different instants).
    pub peak_open: u64,
    /// Requests that fell due (by the schedule) during the second.
    pub sent: u64,
    /// Requests answered successfully during the second.
    pub ok: u64,
    /// Requests that failed during the second.
    pub failed: u64,
    /// Request failures by class.
    pub request_failures: FailureCounts,
    /// Session failures (attempts and abnormal ends) by class.
    pub session_failures: FailureCounts,
    /// Latency of the requests answered successfully during the second.
    pub latency: LatencyHistogram,
    /// How long those answers waited in the worker's socket after the kernel received them
    /// (TCP sessions with receive timestamps only): the generator's own share of `latency`'s
    /// tail that its latency leaves out.
    #[serde(default)]
    pub read_delay: LatencyHistogram,
    /// How late after their intended time those requests began to be written (part of
    /// `latency`): the generator's own lag on the sending side.
    #[serde(default)]
    pub send_delay: LatencyHistogram,
    /// CPU seconds the worker processes used during the second (0 for in-process shards,
    /// whose CPU time is the parent's).
    #[serde(default)]
    pub worker_cpu_seconds: f64,
    /// Streamable HTTP sessions that went on over a new connection after the node closed their
    /// idle one.
    #[serde(default)]
    pub reconnects: u64,
}

impl SecondRow {
    /// Adds another worker's row for the same second.
    pub fn merge(&mut self, other: &SecondRow) {
        self.merge_counts(other);
        self.latency.merge(&other.latency);
        self.read_delay.merge(&other.read_delay);
        self.send_delay.merge(&other.send_delay);
    }

    /// Adds another row's counts and gauges, not its latency.
    fn merge_counts(&mut self, other: &SecondRow) {
        for target in &other.targets {
            match self.targets.iter_mut().find(|t| t.node == target.node) {
                Some(mine) => {
                    mine.open += target.open;
                    mine.peak_open += target.peak_open;
                    mine.opened += target.opened;
                    mine.closed += target.closed;
                    mine.failed += target.failed;
                }
                None => self.targets.push(target.clone()),
            }
        }
        self.peak_open += other.peak_open;
        self.sent += other.sent;
        self.ok += other.ok;
        self.failed += other.failed;
        self.request_failures.merge(&other.request_failures);
        self.session_failures.merge(&other.session_failures);
        self.worker_cpu_seconds += other.worker_cpu_seconds;
        self.reconnects += other.reconnects;
    }

    /// Sessions open at the end of the second, over all targets.
    pub fn open_sessions(&self) -> u64 {
        self.targets.iter().map(|t| t.open).sum()
    }
}

/// The per-second rows of a whole run: counts kept per worker until every worker has reported
/// past a second, then merged once; latency merged over the workers as rows arrive.
///
/// A worker whose thread was busy may skip a second (its counts then land in its next row).
/// For that second the merge carries the worker's open-session gauge forward from its
/// previous row, so a late report does not look like closed sessions.
///
/// One latency histogram is about 180 KiB; keeping one per worker and second grew the parent
/// by 6 MB a second with 32 workers (4.3 GB in a 500,000-session run), so each second keeps
/// one for all workers. The counts were kept per worker and second too (a row names every
/// target: 1 MB a second with 63 workers and 63 nodes); a timeline that knows its workers
/// ([`Timeline::for_workers`]) settles each second once all of them are past it, and keeps
/// one merged row for it and one row per worker for the gauge.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// Per worker and second: every count and gauge, the latency left empty. Seconds up to
    /// `settled_through` are gone but each worker's latest row before them.
    workers: BTreeMap<u32, BTreeMap<u64, SecondRow>>,
    /// Per second: the latency of every worker's row.
    latency: BTreeMap<u64, LatencyHistogram>,
    /// Every worker's read and send delays over the whole run (no per-second view is shown).
    read_delay: LatencyHistogram,
    send_delay: LatencyHistogram,
    /// How many workers report; `None`: unknown, nothing is settled.
    expected_workers: Option<usize>,
    /// Workers that will send no more rows: they no longer hold seconds open.
    ended: std::collections::BTreeSet<u32>,
    /// Merged counts of the settled seconds.
    settled: BTreeMap<u64, SecondRow>,
    /// Every second up to this one is settled.
    settled_through: Option<u64>,
    /// The sum of every per-worker row dropped when its second settled.
    dropped_total: SecondRow,
}

impl Timeline {
    /// A timeline for `workers` reporting workers, which settles seconds as they pass.
    pub fn for_workers(workers: usize) -> Self {
        Self {
            expected_workers: Some(workers),
            ..Self::default()
        }
    }

    /// Adds one worker's row.
    pub fn add(&mut self, worker: u32, row: &SecondRow) {
        self.latency
            .entry(row.second)
            .or_default()
            .merge(&row.latency);
        self.read_delay.merge(&row.read_delay);
        self.send_delay.merge(&row.send_delay);
        if self.is_settled(row.second) {
            // Rows come in time order per worker, so this is only a repeated second.
            let mut counts = row.clone();
            counts.latency = LatencyHistogram::default();
            self.dropped_total.merge_counts(&counts);
            self.settled
                .entry(row.second)
                .or_insert_with(|| SecondRow {
                    second: row.second,
                    ..SecondRow::default()
                })
                .merge_counts(&counts);
            return;
        }
        self.workers
            .entry(worker)
            .or_default()
            .entry(row.second)
            .or_insert_with(|| SecondRow {
                second: row.second,
                ..SecondRow::default()
            })
            .merge_counts(row);
        self.settle();
    }

    /// Says that `worker` sends no more rows, so it holds no second open.
    pub fn worker_ended(&mut self, worker: u32) {
        self.ended.insert(worker);
        self.settle();
    }

    fn is_settled(&self, second: u64) -> bool {
        self.settled_through
            .is_some_and(|through| second <= through)
    }

    /// Merges every second that all live workers are past and drops their per-worker rows.
    fn settle(&mut self) {
        let Some(expected) = self.expected_workers else {
            return;
        };
        if self.workers.len() < expected {
            return;
        }
        // A live worker may still send its latest second again; the one before is final.
        let Some(live_last) = self
            .workers
            .iter()
            .filter(|(worker, _)| !self.ended.contains(worker))
            .map(|(_, rows)| rows.keys().next_back().copied().unwrap_or(0))
            .min()
        else {
            return;
        };
        let Some(through) = live_last.checked_sub(1) else {
            return;
        };
        if self.settled_through.is_some_and(|done| through <= done) {
            return;
        }
        let from = self.settled_through.map_or(0, |done| done + 1);
        let seconds: std::collections::BTreeSet<u64> = self
            .workers
            .values()
            .flat_map(|rows| rows.range(from..=through).map(|(second, _)| *second))
            .collect();
        for second in seconds {
            if let Some(merged) = self.unsettled_counts(second) {
                self.settled.insert(second, merged);
            }
        }
        self.settled_through = Some(through);
        for rows in self.workers.values_mut() {
            // Keep the latest settled row: later skipped seconds carry its gauge forward.
            let keep_from = rows
                .range(..=through)
                .next_back()
                .map(|(second, _)| *second);
            let Some(keep_from) = keep_from else { continue };
            let kept = rows.split_off(&keep_from);
            for dropped in rows.values() {
                self.dropped_total.merge_counts(dropped);
            }
            *rows = kept;
        }
    }

    /// Per-worker rows kept now (the memory that grows with the run when nothing settles).
    pub fn rows_kept(&self) -> usize {
        self.workers.values().map(BTreeMap::len).sum()
    }

    /// The merged row of one second, if any worker reported it.
    pub fn row(&self, second: u64) -> Option<SecondRow> {
        let mut merged = self.counts(second)?;
        if let Some(latency) = self.latency(second) {
            merged.latency = latency.clone();
        }
        Some(merged)
    }

    /// The merged counts and gauges of one second, its latency left empty (no histogram copy).
    pub fn counts(&self, second: u64) -> Option<SecondRow> {
        if self.is_settled(second) {
            return self.settled.get(&second).cloned();
        }
        self.unsettled_counts(second)
    }

    fn unsettled_counts(&self, second: u64) -> Option<SecondRow> {
        if !self.workers.values().any(|rows| rows.contains_key(&second)) {
            return None;
        }
        let mut merged = SecondRow {
            second,
            ..SecondRow::default()
        };
        for rows in self.workers.values() {
            if let Some(row) = rows.get(&second) {
                merged.merge_counts(row);
            } else if let Some((_, earlier)) = rows.range(..second).next_back() {
                merged.merge_counts(&gauge_only(earlier));
            }
        }
        Some(merged)
    }

    /// The latency of one second over every worker.
    pub fn latency(&self, second: u64) -> Option<&LatencyHistogram> {
        self.latency.get(&second)
    }

    /// The merged rows in time order.
    pub fn rows(&self) -> Vec<SecondRow> {
        let unsettled = self
            .workers
            .values()
            .flat_map(|rows| rows.keys().copied())
            .filter(|second| !self.is_settled(*second));
        let seconds: std::collections::BTreeSet<u64> =
            self.settled.keys().copied().chain(unsettled).collect();
        seconds
            .into_iter()
            .filter_map(|second| self.row(second))
            .collect()
    }

    /// The sum of every row of every worker (its `second` and gauges are meaningless).
    pub fn total(&self) -> SecondRow {
        let mut total = self.dropped_total.clone();
        for row in self.workers.values().flat_map(|rows| rows.values()) {
            total.merge_counts(row);
        }
        for latency in self.latency.values() {
            total.latency.merge(latency);
        }
        total.read_delay.merge(&self.read_delay);
        total.send_delay.merge(&self.send_delay);
        total
    }
}

/// A row that only says how many sessions were open at its end.
fn gauge_only(row: &SecondRow) -> SecondRow {
    let targets: Vec<TargetSecond> = row
        .targets
        .iter()
        .map(|t| TargetSecond {
            node: t.node.clone(),
            open: t.open,
            peak_open: t.open,
            ..TargetSecond::default()
        })
        .collect();
    SecondRow {
        second: row.second,
        peak_open: targets.iter().map(|t| t.open).sum(),
        targets,
        ..SecondRow::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn histogram_round_trips_through_json() {
        let mut h = LatencyHistogram::new();
        for n in [1, 2, 3, 50, 1000] {
            h.record(ms(n));
        }
        let json = serde_json::to_string(&h).unwrap();
        let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.count(), 5);
        assert_eq!(back.max_ms().map(|v| v.round()), Some(1000.0));
    }

    #[test]
    fn empty_histogram_has_no_percentiles() {
        let h = LatencyHistogram::new();
        assert_eq!(h.quantile_ms(0.99), None);
        assert_eq!(h.max_ms(), None);
        assert!(h.log_buckets_ms().is_empty());
    }

    #[test]
    fn rows_from_two_workers_merge_per_second_and_target() {
        let row = |node: &str, open, sent, ok, failed| SecondRow {
            second: 3,
            targets: vec![TargetSecond {
                node: node.into(),
                open,
                opened: open,
                ..Default::default()
            }],
            sent,
            ok,
            failed,
            ..Default::default()
        };
        let mut timeline = Timeline::default();
        timeline.add(0, &row("a", 10, 5, 4, 1));
        timeline.add(1, &row("a", 7, 3, 3, 0));
        timeline.add(1, &row("b", 2, 1, 0, 1));
        let merged = timeline.row(3).unwrap();
        assert_eq!(merged.open_sessions(), 19);
        assert_eq!(merged.targets.len(), 2);
        assert_eq!((merged.sent, merged.ok, merged.failed), (9, 7, 2));
    }

    #[test]
    fn latency_is_kept_once_per_second_not_once_per_worker_and_second() {
        let row = |second, samples: &[u64]| {
            let mut latency = LatencyHistogram::new();
            for ms_ in samples {
                latency.record(ms(*ms_));
            }
            SecondRow {
                second,
                latency,
                ..Default::default()
            }
        };
        let mut timeline = Timeline::default();
        timeline.add(0, &row(1, &[1, 2]));
        timeline.add(1, &row(1, &[3]));
        timeline.add(1, &row(2, &[4]));
        assert_eq!(timeline.row(1).unwrap().latency.count(), 3);
        assert_eq!(timeline.row(2).unwrap().latency.count(), 1);
        assert_eq!(timeline.total().latency.count(), 4);
        // The per-worker rows carry counts only: no histogram per worker and second.
        assert_eq!(timeline.latency.len(), 2);
        assert!(
            timeline
                .workers
                .values()
                .flat_map(|rows| rows.values())
                .all(|r| r.latency.0.is_none())
        );
        assert!(
            LatencyHistogram::default().0.is_none(),
            "allocated before a sample"
        );
    }

    #[test]
    fn a_skipped_second_carries_the_open_gauge_forward() {
        let row = |second, open, sent| SecondRow {
            second,
            targets: vec![TargetSecond {
                node: "a".into(),
                open,
                ..Default::default()
            }],
            sent,
            ..Default::default()
        };
        let mut timeline = Timeline::default();
        timeline.add(0, &row(1, 10, 1));
        timeline.add(1, &row(1, 10, 1));
        // Worker 1 is late for second 2 and reports its counts in second 3.
        timeline.add(0, &row(2, 10, 1));
        timeline.add(0, &row(3, 10, 1));
        timeline.add(1, &row(3, 10, 2));
        let rows = timeline.rows();
        assert_eq!(
            rows.iter().map(|r| r.open_sessions()).collect::<Vec<_>>(),
            vec![20, 20, 20]
        );
        assert_eq!(
            rows.iter().map(|r| r.sent).collect::<Vec<_>>(),
            vec![2, 1, 3]
        );
        assert_eq!(timeline.total().sent, 6);
    }

    /// Rows in a canonical order of targets, to compare merges done in different orders.
    fn canonical(mut row: SecondRow) -> SecondRow {
        row.targets.sort_by(|a, b| a.node.cmp(&b.node));
        row
    }

    fn target_row(second: u64, node: &str, open: u64, sent: u64) -> SecondRow {
        SecondRow {
            second,
            targets: vec![TargetSecond {
                node: node.into(),
                open,
                opened: sent,
                ..Default::default()
            }],
            sent,
            ok: sent / 2,
            ..Default::default()
        }
    }

    #[test]
    fn a_timeline_that_knows_its_workers_keeps_a_bounded_number_of_rows() {
        let mut timeline = Timeline::for_workers(3);
        for second in 1..=1_000 {
            for worker in 0..3 {
                timeline.add(worker, &target_row(second, "a", 10, 1));
            }
        }
        // One latest row per worker for the gauge, plus the seconds not yet settled.
        assert!(timeline.rows_kept() <= 6, "{}", timeline.rows_kept());
        assert_eq!(timeline.rows().len(), 1_000);
        assert_eq!(timeline.total().sent, 3_000);
        assert_eq!(timeline.counts(500).unwrap().open_sessions(), 30);
        // Before settling, a run of 63 workers kept 63 rows a second for its whole length.
        let mut unsettled = Timeline::default();
        for second in 1..=100 {
            unsettled.add(0, &target_row(second, "a", 1, 1));
        }
        assert_eq!(unsettled.rows_kept(), 100);
    }

    #[test]
    fn an_ended_worker_no_longer_holds_seconds_open() {
        let mut timeline = Timeline::for_workers(2);
        timeline.add(0, &target_row(1, "a", 5, 1));
        timeline.add(1, &target_row(1, "b", 7, 1));
        timeline.worker_ended(1);
        for second in 2..=100 {
            timeline.add(0, &target_row(second, "a", 5, 1));
        }
        assert!(timeline.rows_kept() <= 4, "{}", timeline.rows_kept());
        // The ended worker's last gauge is carried forward as before.
        assert_eq!(timeline.counts(50).unwrap().open_sessions(), 12);
    }

    proptest::proptest! {
        /// Settling changes no figure: every second, the rows and the total read the same as a
        /// timeline that keeps every worker's rows, at every point of the run.
        #[test]
        fn settling_seconds_changes_no_figure(
            workers in 1usize..4,
            steps in proptest::collection::vec((0usize..4, 1u64..3, 0u64..20, 0u64..5, 0usize..3), 1..60),
            end_first in proptest::bool::ANY,
        ) {
            let mut settled = Timeline::for_workers(workers);
            let mut kept = Timeline::default();
            let mut last = vec![0u64; workers];
            let nodes = ["a", "b", "c"];
            let mut worker0_ended = false;
            for (i, (worker, skip, open, sent, node)) in steps.into_iter().enumerate() {
                let mut worker = worker % workers;
                if worker0_ended && worker == 0 {
                    worker = 1;
                }
                // Each worker's seconds rise, sometimes skipping one.
                last[worker] += skip;
                let mut row = target_row(last[worker], nodes[node], open, sent);
                row.latency.record(Duration::from_millis(sent + 1));
                settled.add(worker as u32, &row);
                kept.add(worker as u32, &row);
                if end_first && i == 10 && workers > 1 {
                    // Worker 0 ends; its later steps go to another worker.
                    settled.worker_ended(0);
                    worker0_ended = true;
                }
                let a: Vec<SecondRow> = settled.rows().into_iter().map(canonical).collect();
                let b: Vec<SecondRow> = kept.rows().into_iter().map(canonical).collect();
                proptest::prop_assert_eq!(a, b);
            }
            proptest::prop_assert_eq!(canonical(settled.total()), canonical(kept.total()));
        }
    }
}
