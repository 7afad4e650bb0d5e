//! The run's summary: totals, percentiles, throughput, error rate, SLO verdict, machine, command.

use crate::host::socket_probe::KernelCounters;
use crate::stress::failure::FailureCounts;
use crate::stress::machine::MachineFacts;
use crate::stress::resources::NodeSample;
use crate::stress::stats::{LatencyHistogram, Timeline};
use crate::stress::{Slo, StressOptions, StressTarget, Transport};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Everything [`StressSummary::build`] needs; all of it measured by the run.
#[derive(Debug)]
pub struct SummaryInputs<'a> {
    /// The run's options.
    pub options: &'a StressOptions,
    /// The targets it loaded.
    pub targets: &'a [StressTarget],
    /// The merged per-second rows.
    pub timeline: &'a Timeline,
    /// Per-node resource samples `(second, sample)`.
    pub samples: &'a [(u64, NodeSample)],
    /// The machine it ran on.
    pub machine: MachineFacts,
    /// CPU seconds used by the parent and every worker process.
    pub generator_cpu_seconds: f64,
    /// The same over the hold alone (the seconds requests were sent), if it was measured.
    pub generator_hold_cpu_seconds: Option<f64>,
    /// Worker shards run.
    pub workers: u32,
    /// Workers that ended without reporting completion (crashed, or abandoned after overrunning).
    pub workers_lost: u32,
    /// Seconds requests were being sent (the hold, or less if interrupted).
    pub hold_seconds: f64,
    /// Seconds from start to the last worker's end.
    pub wall_seconds: f64,
    /// Seconds from the planned end of the hold to the last worker's end (closing sessions).
    pub drain_seconds: f64,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Start time, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Peak resident memory of the parent plus each worker process's own, bytes.
    pub generator_peak_memory_bytes: Option<u64>,
    /// The kernel's counters before any worker connected and just before the hold ended.
    pub kernel: (Option<KernelCounters>, Option<KernelCounters>),
}

/// Latency percentiles in milliseconds; `None` when no request succeeded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// 99.9th percentile.
    pub p999: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Mean.
    pub mean: Option<f64>,
}

/// What the send delay is, as `summary.txt` and `report.html` explain it.
pub const SEND_DELAY_MEANING: &str =
    "requests due but not yet being written: the generator's own lag, part of the latency";

/// What the read delay is, as `summary.txt` and `report.html` explain it.
pub const READ_DELAY_MEANING: &str =
    "answers waiting in the generator after the kernel received them; not part of the latency";

impl LatencySummary {
    /// `p50 …, p99 …, p99.9 …, max …` in ms: how a generator delay is written.
    pub fn delay_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3} ms"));
        format!(
            "p50 {}, p99 {}, p99.9 {}, max {}",
            ms(self.p50),
            ms(self.p99),
            ms(self.p999),
            ms(self.max)
        )
    }

    /// The percentiles of `histogram`.
    pub fn of(histogram: &LatencyHistogram) -> Self {
        LatencySummary {
            p50: histogram.quantile_ms(0.50),
            p95: histogram.quantile_ms(0.95),
            p99: histogram.quantile_ms(0.99),
            p999: histogram.quantile_ms(0.999),
            max: histogram.max_ms(),
            mean: histogram.mean_ms(),
        }
    }
}

/// Session counts over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionSummary {
    /// Sessions asked for.
    pub target: u64,
    /// Most sessions open at once (see [`crate::stress::stats::SecondRow::peak_open`]).
    pub peak_open: u64,
    /// Fewest sessions open at a second boundary during the hold (after the ramp).
    pub min_open_during_hold: Option<u64>,
    /// Handshakes completed (including re-placed sessions).
    pub opened: u64,
    /// Failed attempts plus sessions that ended abnormally.
    pub failed: u64,
    /// Those failures by class.
    pub failures: FailureCounts,
    /// Streamable HTTP sessions that went on over a new connection after the node closed
    /// their idle keep-alive one (not failures: the session survived).
    #[serde(default)]
    pub reconnects: u64,
}

/// Request counts over the run; `sent == ok + failed` always.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestSummary {
    /// Requests that fell due by the schedule.
    pub sent: u64,
    /// Answered successfully.
    pub ok: u64,
    /// Failed (see `failures`).
    pub failed: u64,
    /// Failures by class.
    pub failures: FailureCounts,
    /// `failed / sent` (0 when nothing was sent).
    pub error_rate: f64,
    /// Successful answers per second of hold.
    pub throughput_rps: f64,
}

/// What the load generator itself cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GeneratorCost {
    /// Worker shards.
    pub workers: u32,
    /// Workers that ended without reporting completion; their unresolved requests are missing.
    pub workers_lost: u32,
    /// CPU seconds (user + system) of the parent and all workers.
    pub cpu_seconds: f64,
    /// CPU microseconds per request sent, ramp and teardown included (`None` when none was sent).
    pub cpu_us_per_request: Option<f64>,
    /// CPU seconds during the hold alone (whole seconds of worker reports, so slightly wider).
    pub hold_cpu_seconds: Option<f64>,
    /// Hold CPU microseconds per request sent: the cost of driving the load, without the ramp.
    pub hold_cpu_us_per_request: Option<f64>,
    /// The generator's share of the whole machine in the hold: hold CPU seconds over
    /// (hold seconds × cores); 1.0 would be every core busy generating load.
    #[serde(default)]
    pub hold_machine_share: Option<f64>,
    /// How long successful answers waited in the workers' sockets between the kernel's receive
    /// timestamp and the worker's read: the generator's own delay, which the latency leaves out
    /// (TCP sessions only; `None` without timestamps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_delay_ms: Option<LatencySummary>,
    /// How late after their intended time successful requests began to be written: the
    /// generator's own lag on the sending side, which the latency includes (TCP sessions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_delay_ms: Option<LatencySummary>,
}

/// Generator CPU seconds in the hold over the CPU seconds the machine had in it
/// (`hold_seconds × cores`); `None` without a reading, a hold, or a core count.
pub fn hold_machine_share(
    hold_cpu_seconds: Option<f64>,
    hold_seconds: f64,
    cores: usize,
) -> Option<f64> {
    let available = hold_seconds * cores as f64;
    hold_cpu_seconds
        .filter(|_| available > 0.0)
        .map(|cpu| cpu / available)
}

/// What the held sessions cost in memory, each total also per session at the peak.
///
/// The kernel's figures are growth from before the first connection to just before the hold
/// ended, over the whole machine: both ends of every connection (loopback: generator and node),
/// their socket files and conntrack entries, and anything else the machine did meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryUse {
    /// Sessions the per-session figures divide by (the peak open at once).
    pub sessions: u64,
    /// Sum of every node's peak resident memory, bytes (`None`: nodes not sampled).
    pub nodes_peak_bytes: Option<u64>,
    /// Peak resident memory of the generator (parent and each worker process), bytes.
    pub generator_peak_bytes: Option<u64>,
    /// Growth of the kernel's slab (`Slab` of /proc/meminfo), bytes; may be negative.
    pub kernel_slab_growth_bytes: Option<i64>,
    /// Growth of its unreclaimable part (`SUnreclaim`), bytes.
    pub kernel_unreclaimable_growth_bytes: Option<i64>,
    /// Pages of TCP buffer memory in use just before the hold ended (`sockstat` TCP mem).
    pub tcp_pages_at_hold_end: Option<u64>,
    /// Tracked connections just before the hold ended (`nf_conntrack_count`).
    pub conntrack_at_hold_end: Option<u64>,
}

impl MemoryUse {
    fn build(
        samples: &[(u64, NodeSample)],
        generator_peak_bytes: Option<u64>,
        kernel: (Option<KernelCounters>, Option<KernelCounters>),
        sessions: u64,
    ) -> Self {
        let mut nodes_peak: BTreeMap<&str, u64> = BTreeMap::new();
        for (_, sample) in samples {
            if let Some(bytes) = sample.memory_bytes {
                let peak = nodes_peak.entry(&sample.node).or_default();
                *peak = (*peak).max(bytes);
            }
        }
        let growth = |field: fn(&KernelCounters) -> u64| match kernel {
            (Some(start), Some(end)) => Some(field(&end) as i64 - field(&start) as i64),
            _ => None,
        };
        MemoryUse {
            sessions,
            nodes_peak_bytes: (!nodes_peak.is_empty()).then(|| nodes_peak.values().sum()),
            generator_peak_bytes,
            kernel_slab_growth_bytes: growth(|k| k.slab),
            kernel_unreclaimable_growth_bytes: growth(|k| k.slab_unreclaimable),
            tcp_pages_at_hold_end: kernel.1.map(|k| k.tcp_pages),
            conntrack_at_hold_end: kernel.1.and_then(|k| k.conntrack),
        }
    }

    /// One line: each total, and per session at the peak.
    pub fn to_text(&self) -> String {
        let figure = |bytes: Option<i64>| match bytes {
            None => "n/a".to_string(),
            Some(b) => format!(
                "{:.1} MiB ({})",
                b as f64 / (1024.0 * 1024.0),
                self.per_session(Some(b))
                    .map_or("n/a per session".to_string(), |p| format!(
                        "{p:.0} B/session"
                    ))
            ),
        };
        let mut line = format!(
            "memory:      at {} sessions: nodes {}, generator {}, kernel slab growth {} (unreclaimable {})",
            self.sessions,
            figure(self.nodes_peak_bytes.map(|b| b as i64)),
            figure(self.generator_peak_bytes.map(|b| b as i64)),
            figure(self.kernel_slab_growth_bytes),
            figure(self.kernel_unreclaimable_growth_bytes),
        );
        if let Some(pages) = self.tcp_pages_at_hold_end {
            let _ = write!(line, ", TCP buffers {pages} pages");
        }
        if let Some(entries) = self.conntrack_at_hold_end {
            let _ = write!(line, ", conntrack {entries} entries");
        }
        line
    }

    /// `bytes / sessions`, when both are known and there were sessions.
    pub fn per_session(&self, bytes: Option<i64>) -> Option<f64> {
        bytes
            .filter(|_| self.sessions > 0)
            .map(|b| b as f64 / self.sessions as f64)
    }
}

/// The SLO check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SloVerdict {
    /// The objective.
    pub slo: Slo,
    /// Whether p99 is within it (`None`: no successful request to judge).
    pub p99_ok: Option<bool>,
    /// Whether the error rate is within it.
    pub error_rate_ok: bool,
    /// Both hold, the run was not interrupted and no worker was lost.
    pub passed: bool,
}

/// The same profile against the bare echo baseline, and the cluster's ratio to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    /// Baseline successful answers per second.
    pub throughput_rps: f64,
    /// Baseline latency.
    pub latency_ms: LatencySummary,
    /// Baseline error rate.
    pub error_rate: f64,
    /// Cluster throughput divided by baseline throughput (`None` if the baseline answered nothing).
    pub throughput_ratio: Option<f64>,
    /// The generator's read delay in the baseline run (see [`GeneratorCost::read_delay_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_delay_ms: Option<LatencySummary>,
    /// The generator's send delay in the baseline run (see [`GeneratorCost::send_delay_ms`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_delay_ms: Option<LatencySummary>,
}

/// Per-target session counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetSummary {
    /// Node name.
    pub node: String,
    /// Most sessions open on it at once.
    pub peak_open: u64,
    /// Handshakes completed on it.
    pub opened: u64,
    /// Failed attempts and abnormal ends on it.
    pub failed: u64,
}

/// One node's resources over the run, from its samples; `None` where no sample had the value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeResourceSummary {
    /// Node name.
    pub node: String,
    /// Samples taken.
    pub samples: u64,
    /// Mean CPU, percent of one core.
    pub mean_cpu_percent: Option<f64>,
    /// Highest CPU, percent of one core.
    pub max_cpu_percent: Option<f64>,
    /// Highest resident memory, bytes.
    pub peak_memory_bytes: Option<u64>,
    /// Memory limit, bytes (last seen).
    pub memory_limit_bytes: Option<u64>,
    /// Most open file descriptors.
    pub peak_open_fds: Option<u64>,
    /// Most sessions the node itself reported.
    pub peak_sessions: Option<u64>,
    /// Mean bytes per second the node read from its sockets.
    #[serde(default)]
    pub mean_rx_bytes_per_second: Option<f64>,
    /// Mean bytes per second it wrote.
    #[serde(default)]
    pub mean_tx_bytes_per_second: Option<f64>,
}

impl NodeResourceSummary {
    /// Summaries per node, in order of first appearance.
    pub fn from_samples(samples: &[(u64, NodeSample)]) -> Vec<NodeResourceSummary> {
        let mut nodes: Vec<NodeResourceSummary> = Vec::new();
        let mut cpu_sums: Vec<(f64, u64)> = Vec::new();
        let mut network_sums: Vec<(f64, f64, u64)> = Vec::new();
        for (_, sample) in samples {
            let index = match nodes.iter().position(|n| n.node == sample.node) {
                Some(index) => index,
                None => {
                    nodes.push(NodeResourceSummary {
                        node: sample.node.clone(),
                        ..Default::default()
                    });
                    cpu_sums.push((0.0, 0));
                    network_sums.push((0.0, 0.0, 0));
                    nodes.len() - 1
                }
            };
            let node = &mut nodes[index];
            node.samples += 1;
            if let Some(cpu) = sample.cpu_percent {
                cpu_sums[index].0 += cpu;
                cpu_sums[index].1 += 1;
                node.max_cpu_percent = Some(node.max_cpu_percent.map_or(cpu, |m| m.max(cpu)));
            }
            let max = |a: Option<u64>, b: Option<u64>| a.max(b);
            node.peak_memory_bytes = max(node.peak_memory_bytes, sample.memory_bytes);
            node.memory_limit_bytes = sample.memory_limit_bytes.or(node.memory_limit_bytes);
            node.peak_open_fds = max(node.peak_open_fds, sample.open_fds);
            node.peak_sessions = max(node.peak_sessions, sample.sessions);
            if let (Some(rx), Some(tx)) = (sample.rx_bytes_per_second, sample.tx_bytes_per_second) {
                let sums = &mut network_sums[index];
                (sums.0, sums.1, sums.2) = (sums.0 + rx, sums.1 + tx, sums.2 + 1);
            }
        }
        for (node, (sum, count)) in nodes.iter_mut().zip(cpu_sums) {
            node.mean_cpu_percent = (count > 0).then(|| sum / count as f64);
        }
        for (node, (rx, tx, count)) in nodes.iter_mut().zip(network_sums) {
            if count > 0 {
                node.mean_rx_bytes_per_second = Some(rx / count as f64);
                node.mean_tx_bytes_per_second = Some(tx / count as f64);
            }
        }
        nodes
    }
}

/// Which cluster file a run loaded, so a report names exactly what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterFileFacts {
    /// The path as the user gave it.
    pub path: String,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The `[slo] p99` bound as the file writes it (`50ms`), for the report to state in its unit.
    pub slo_p99: String,
}

/// The summary of one run, written as `summary.json` and `summary.txt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressSummary {
    /// Cluster name.
    pub cluster: String,
    /// Runtime recorded by the caller ("native", "docker").
    pub runtime: String,
    /// How the MCP sessions talked to the nodes (summaries from before HTTP read as TCP).
    #[serde(default)]
    pub transport: Transport,
    /// The exact command line.
    pub command_line: String,
    /// Start, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Requested sessions.
    pub connections: u32,
    /// Planned ramp, seconds.
    pub ramp_seconds: f64,
    /// Planned hold, seconds.
    pub duration_seconds: f64,
    /// Seconds requests were actually sent.
    pub hold_seconds: f64,
    /// Wall-clock seconds of the whole run.
    pub wall_seconds: f64,
    /// Seconds the workers took after the planned hold end to close every session.
    #[serde(default)]
    pub drain_seconds: f64,
    /// Requested total rate, req/s.
    pub rate: f64,
    /// Sessions.
    pub sessions: SessionSummary,
    /// Sessions per target.
    pub targets: Vec<TargetSummary>,
    /// Requests.
    pub requests: RequestSummary,
    /// Latency of successful requests, from intended send time.
    pub latency_ms: LatencySummary,
    /// The generator's own cost.
    pub generator: GeneratorCost,
    /// SLO verdict.
    pub verdict: SloVerdict,
    /// Resources per node.
    pub resources: Vec<NodeResourceSummary>,
    /// The machine.
    pub machine: MachineFacts,
    /// Comparison with the baseline echo server, when one was run.
    pub baseline: Option<BaselineComparison>,
    /// The erlmcp-gen version that ran it.
    #[serde(default)]
    pub tool_version: String,
    /// The cluster file it loaded (absent for runs driven from the library with no file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_file: Option<ClusterFileFacts>,
    /// What the held sessions cost in memory: nodes, generator, kernel.
    #[serde(default)]
    pub memory: MemoryUse,
}

impl StressSummary {
    /// Builds the summary from what the run measured.
    pub fn build(inputs: &SummaryInputs<'_>) -> Self {
        let options = inputs.options;
        let total = inputs.timeline.total();
        let ramp_end = options.ramp.as_secs();
        // The hold as it happened: an interrupted run held for less than planned.
        let hold_end = (options.ramp.as_secs_f64() + inputs.hold_seconds).floor() as u64;
        let rows = inputs.timeline.rows();
        let min_open_during_hold = rows
            .iter()
            .filter(|r| r.second > ramp_end && r.second <= hold_end)
            .map(|r| r.open_sessions())
            .min();
        let targets = inputs
            .targets
            .iter()
            .map(|t| {
                let of = |r: &crate::stress::stats::SecondRow| {
                    r.targets.iter().find(|x| x.node == t.node).cloned()
                };
                TargetSummary {
                    node: t.node.clone(),
                    peak_open: rows
                        .iter()
                        .filter_map(&of)
                        .map(|x| x.peak_open)
                        .max()
                        .unwrap_or(0),
                    opened: rows.iter().filter_map(&of).map(|x| x.opened).sum(),
                    failed: rows.iter().filter_map(&of).map(|x| x.failed).sum(),
                }
            })
            .collect::<Vec<_>>();
        let sessions = SessionSummary {
            target: u64::from(options.connections),
            peak_open: rows.iter().map(|r| r.peak_open).max().unwrap_or(0),
            min_open_during_hold,
            opened: targets.iter().map(|t| t.opened).sum(),
            failed: targets.iter().map(|t| t.failed).sum(),
            failures: total.session_failures.clone(),
            reconnects: total.reconnects,
        };
        let error_rate = if total.sent == 0 {
            0.0
        } else {
            total.failed as f64 / total.sent as f64
        };
        let requests = RequestSummary {
            sent: total.sent,
            ok: total.ok,
            failed: total.failed,
            failures: total.request_failures.clone(),
            error_rate,
            throughput_rps: if inputs.hold_seconds > 0.0 {
                total.ok as f64 / inputs.hold_seconds
            } else {
                0.0
            },
        };
        let latency_ms = LatencySummary::of(&total.latency);
        let p99_ok = latency_ms.p99.map(|p99| p99 <= options.slo.p99_ms);
        let error_rate_ok = error_rate <= options.slo.max_error_rate;
        let verdict = SloVerdict {
            slo: options.slo,
            p99_ok,
            error_rate_ok,
            passed: p99_ok.unwrap_or(total.sent == 0)
                && error_rate_ok
                && !inputs.interrupted
                && inputs.workers_lost == 0,
        };
        let generator = GeneratorCost {
            workers: inputs.workers,
            workers_lost: inputs.workers_lost,
            cpu_seconds: inputs.generator_cpu_seconds,
            cpu_us_per_request: (total.sent > 0)
                .then(|| inputs.generator_cpu_seconds * 1e6 / total.sent as f64),
            hold_cpu_seconds: inputs.generator_hold_cpu_seconds,
            hold_cpu_us_per_request: inputs
                .generator_hold_cpu_seconds
                .filter(|_| total.sent > 0)
                .map(|cpu| cpu * 1e6 / total.sent as f64),
            hold_machine_share: hold_machine_share(
                inputs.generator_hold_cpu_seconds,
                inputs.hold_seconds,
                inputs.machine.cores,
            ),
            read_delay_ms: (total.read_delay.count() > 0)
                .then(|| LatencySummary::of(&total.read_delay)),
            send_delay_ms: (total.send_delay.count() > 0)
                .then(|| LatencySummary::of(&total.send_delay)),
        };
        let memory = MemoryUse::build(
            inputs.samples,
            inputs.generator_peak_memory_bytes,
            inputs.kernel,
            sessions.peak_open,
        );
        StressSummary {
            cluster: options.cluster.clone(),
            runtime: options.runtime.clone(),
            transport: options.transport,
            command_line: options.command_line.clone(),
            started_unix: inputs.started_unix,
            interrupted: inputs.interrupted,
            connections: options.connections,
            ramp_seconds: options.ramp.as_secs_f64(),
            duration_seconds: options.duration.as_secs_f64(),
            hold_seconds: inputs.hold_seconds,
            wall_seconds: inputs.wall_seconds,
            drain_seconds: inputs.drain_seconds,
            rate: options.rate,
            sessions,
            targets,
            requests,
            latency_ms,
            generator,
            verdict,
            resources: NodeResourceSummary::from_samples(inputs.samples),
            machine: inputs.machine.clone(),
            baseline: None,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            cluster_file: options.cluster_file.clone(),
            memory,
        }
    }

    /// Records the baseline run's figures and the cluster's throughput ratio to it.
    pub fn attach_baseline(&mut self, baseline: &StressSummary) {
        let base = baseline.requests.throughput_rps;
        self.baseline = Some(BaselineComparison {
            throughput_rps: base,
            latency_ms: baseline.latency_ms.clone(),
            error_rate: baseline.requests.error_rate,
            throughput_ratio: (base > 0.0).then(|| self.requests.throughput_rps / base),
            read_delay_ms: baseline.generator.read_delay_ms.clone(),
            send_delay_ms: baseline.generator.send_delay_ms.clone(),
        });
    }

    /// The transport in words, for `summary.txt` and `report.html`.
    pub fn transport_text(&self) -> &'static str {
        match self.transport {
            Transport::Tcp => "tcp (newline-delimited JSON-RPC, requests pipelined per session)",
            Transport::Http => {
                "http (Streamable HTTP POST /mcp, one HTTP/1.1 connection per session, one request \
                 at a time; the baseline is the bare TCP echo server)"
            }
        }
    }

    /// The human-readable `summary.txt`.
    pub fn to_text(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3} ms"));
        let mut out = String::new();
        let _ = writeln!(
            out,
            "erlmcp-gen stress: {} ({})",
            self.cluster, self.runtime
        );
        let _ = writeln!(out, "transport:   {}", self.transport_text());
        let _ = writeln!(out, "command:     {}", self.command_line);
        let _ = writeln!(
            out,
            "machine:     {} cores, {} MiB, kernel {}, {}",
            self.machine.cores,
            self.machine.memory_bytes.map_or(0, |b| b / (1024 * 1024)),
            self.machine.kernel.as_deref().unwrap_or("?"),
            self.machine.cpu_model.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            out,
            "plan:        {} sessions, ramp {:.0} s, hold {:.0} s, {} req/s{}",
            self.connections,
            self.ramp_seconds,
            self.duration_seconds,
            self.rate,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let s = &self.sessions;
        let _ = writeln!(
            out,
            "sessions:    peak {} / {}, min during hold {}, opened {}, failed {}",
            s.peak_open,
            s.target,
            s.min_open_during_hold
                .map_or("n/a".to_string(), |v| v.to_string()),
            s.opened,
            s.failed
        );
        for (class, n) in &s.failures.0 {
            let _ = writeln!(out, "  session {class}: {n}");
        }
        if s.reconnects > 0 {
            let _ = writeln!(
                out,
                "  reconnected: {} (HTTP sessions that went on over a new connection after the node closed their idle one)",
                s.reconnects
            );
        }
        for t in &self.targets {
            let _ = writeln!(
                out,
                "  {}: peak {}, opened {}, failed {}",
                t.node, t.peak_open, t.opened, t.failed
            );
        }
        let r = &self.requests;
        let _ = writeln!(
            out,
            "requests:    sent {}, ok {}, failed {} (error rate {:.4} %), throughput {:.1} req/s over {:.1} s",
            r.sent,
            r.ok,
            r.failed,
            r.error_rate * 100.0,
            r.throughput_rps,
            self.hold_seconds
        );
        for (class, n) in &r.failures.0 {
            let _ = writeln!(out, "  request {class}: {n}");
        }
        if self.drain_seconds >= 1.0 {
            let _ = writeln!(
                out,
                "drain:       {:.1} s after the hold to close every session",
                self.drain_seconds
            );
        }
        let l = &self.latency_ms;
        let _ = writeln!(
            out,
            "latency:     p50 {}, p95 {}, p99 {}, p99.9 {}, max {}",
            ms(l.p50),
            ms(l.p95),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        );
        let g = &self.generator;
        let _ = writeln!(
            out,
            "generator:   {} workers, {:.2} CPU s in all ({} µs/request), {} CPU s in the hold ({} µs/request, {} of the machine){}",
            g.workers,
            g.cpu_seconds,
            g.cpu_us_per_request
                .map_or("n/a".to_string(), |v| format!("{v:.1}")),
            g.hold_cpu_seconds
                .map_or("n/a".to_string(), |v| format!("{v:.2}")),
            g.hold_cpu_us_per_request
                .map_or("n/a".to_string(), |v| format!("{v:.1}")),
            g.hold_machine_share
                .map_or("n/a".to_string(), |v| format!("{:.1} %", v * 100.0)),
            if g.workers_lost > 0 {
                format!(
                    ", {} workers LOST (ended without completing)",
                    g.workers_lost
                )
            } else {
                String::new()
            }
        );
        if let Some(d) = &g.send_delay_ms {
            let _ = writeln!(
                out,
                "send delay:  {} ({SEND_DELAY_MEANING})",
                d.delay_text()
            );
        }
        if let Some(d) = &g.read_delay_ms {
            let _ = writeln!(
                out,
                "read delay:  {} ({READ_DELAY_MEANING})",
                d.delay_text()
            );
        }
        for n in &self.resources {
            let _ = writeln!(
                out,
                "node {}: CPU mean {} max {} (% of a core), peak memory {} MiB, peak fds {}, peak sessions {}, network rx {} tx {} (mean)",
                n.node,
                n.mean_cpu_percent
                    .map_or("n/a".into(), |v| format!("{v:.1}")),
                n.max_cpu_percent
                    .map_or("n/a".into(), |v| format!("{v:.1}")),
                n.peak_memory_bytes
                    .map_or("n/a".into(), |v| (v / (1024 * 1024)).to_string()),
                n.peak_open_fds.map_or("n/a".into(), |v| v.to_string()),
                n.peak_sessions.map_or("n/a".into(), |v| v.to_string()),
                bytes_per_second(n.mean_rx_bytes_per_second),
                bytes_per_second(n.mean_tx_bytes_per_second),
            );
        }
        let _ = writeln!(out, "{}", self.memory.to_text());
        if let Some(b) = &self.baseline {
            let _ = writeln!(
                out,
                "baseline:    {:.1} req/s, p50 {}, p99 {}; cluster/baseline throughput {}",
                b.throughput_rps,
                ms(b.latency_ms.p50),
                ms(b.latency_ms.p99),
                b.throughput_ratio
                    .map_or("n/a".to_string(), |v| format!("{v:.3}"))
            );
            if let Some(d) = &b.read_delay_ms {
                let _ = writeln!(out, "baseline read delay: {}", d.delay_text());
            }
            if let Some(d) = &b.send_delay_ms {
                let _ = writeln!(out, "baseline send delay: {}", d.delay_text());
            }
        }
        let v = &self.verdict;
        let _ = writeln!(
            out,
            "SLO:         p99 <= {} ms: {}, error rate <= {}: {} => {}",
            v.slo.p99_ms,
            v.p99_ok
                .map_or("n/a", |ok| if ok { "ok" } else { "BREACH" }),
            v.slo.max_error_rate,
            if v.error_rate_ok { "ok" } else { "BREACH" },
            if v.passed { "PASS" } else { "FAIL" }
        );
        out
    }
}

/// A measured byte rate as people read it: `812.3 KiB/s`, or `n/a`.
pub fn bytes_per_second(rate: Option<f64>) -> String {
    rate.map_or("n/a".into(), |r| {
        format!(
            "{}/s",
            crate::config::units::ByteSize(r.max(0.0).round() as u64).approx()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_machine_share_divides_by_the_machine_s_cpu_seconds() {
        // (hold CPU s, hold s, cores, share)
        let cases = [
            (Some(6.0), 30.0, 2, Some(0.1)),
            (Some(60.0), 30.0, 2, Some(1.0)),
            (Some(1.0), 0.0, 2, None),
            (Some(1.0), 10.0, 0, None),
            (None, 30.0, 2, None),
        ];
        for (cpu, hold, cores, share) in cases {
            assert_eq!(
                hold_machine_share(cpu, hold, cores),
                share,
                "{cpu:?} {hold} {cores}"
            );
        }
    }

    #[test]
    fn node_resources_summarise_their_samples() {
        let sample = |node: &str, cpu, memory| NodeSample {
            node: node.into(),
            cpu_percent: cpu,
            memory_bytes: memory,
            ..NodeSample::default()
        };
        let samples = vec![
            (0, sample("a", None, Some(10))),
            (1, sample("a", Some(10.0), Some(30))),
            (1, sample("b", None, None)),
            (2, sample("a", Some(30.0), Some(20))),
        ];
        let nodes = NodeResourceSummary::from_samples(&samples);
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].samples, 3);
        assert_eq!(nodes[0].mean_cpu_percent, Some(20.0));
        assert_eq!(nodes[0].max_cpu_percent, Some(30.0));
        assert_eq!(nodes[0].peak_memory_bytes, Some(30));
        assert_eq!(nodes[1].mean_cpu_percent, None);
        assert_eq!(nodes[0].mean_rx_bytes_per_second, None);
    }

    #[test]
    fn node_network_rates_average_the_samples_that_have_them() {
        let sample = |rx: Option<f64>, tx: Option<f64>| NodeSample {
            node: "a".into(),
            rx_bytes_per_second: rx,
            tx_bytes_per_second: tx,
            ..NodeSample::default()
        };
        let samples = vec![
            (0, sample(None, None)),
            (1, sample(Some(100.0), Some(1000.0))),
            (2, sample(Some(300.0), Some(3000.0))),
        ];
        let nodes = NodeResourceSummary::from_samples(&samples);
        assert_eq!(nodes[0].mean_rx_bytes_per_second, Some(200.0));
        assert_eq!(nodes[0].mean_tx_bytes_per_second, Some(2000.0));
        assert_eq!(bytes_per_second(Some(2048.0)), "2.0KiB/s");
        assert_eq!(bytes_per_second(None), "n/a");
    }

    #[test]
    fn memory_use_sums_node_peaks_and_divides_by_the_peak_sessions() {
        let sample = |node: &str, memory| NodeSample {
            node: node.into(),
            memory_bytes: Some(memory),
            ..NodeSample::default()
        };
        let samples = vec![
            (1, sample("a", 1000)),
            (2, sample("a", 3000)),
            (2, sample("b", 2000)),
        ];
        let start = KernelCounters {
            slab: 10_000,
            slab_unreclaimable: 4_000,
            tcp_pages: 1,
            conntrack: Some(5),
        };
        let end = KernelCounters {
            slab: 30_000,
            slab_unreclaimable: 3_000,
            tcp_pages: 7,
            conntrack: Some(105),
        };
        let memory = MemoryUse::build(&samples, Some(500), (Some(start), Some(end)), 100);
        assert_eq!(memory.nodes_peak_bytes, Some(5000));
        assert_eq!(memory.kernel_slab_growth_bytes, Some(20_000));
        assert_eq!(memory.kernel_unreclaimable_growth_bytes, Some(-1_000));
        assert_eq!(
            memory.per_session(memory.kernel_slab_growth_bytes),
            Some(200.0)
        );
        assert_eq!(memory.conntrack_at_hold_end, Some(105));
        let text = memory.to_text();
        assert!(text.contains("at 100 sessions"), "{text}");
        assert!(text.contains("nodes 0.0 MiB (50 B/session)"), "{text}");
        assert!(text.contains("conntrack 105 entries"), "{text}");
    }

    #[test]
    fn memory_use_without_readings_says_so() {
        let memory = MemoryUse::build(&[], None, (None, None), 0);
        assert_eq!(memory.nodes_peak_bytes, None);
        assert_eq!(memory.per_session(Some(10)), None);
        assert!(memory.to_text().contains("nodes n/a"));
    }
}
