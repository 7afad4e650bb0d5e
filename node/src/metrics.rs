//! Prometheus metrics, and the rolling p99 the seed's docs query as `erlmcp_latency_p99_ms`.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use crate::membership::{Liveness, Member};

/// Method labels with their own series; anything else counts as `other`, so label values stay bounded.
pub const METHODS: [&str; 14] = [
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "prompts/list",
    "prompts/get",
    "logging/setLevel",
    "server/discover",
    "notification",
    "invalid",
    "other",
];

/// The label index of a method.
pub fn method_index(method: &str) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method)
        .unwrap_or(METHODS.len() - 1)
}

/// A request's outcome label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered with a result.
    Ok,
    /// Answered with a JSON-RPC error.
    Error,
}

/// Why the node ended a connection on its own: each is a bound a client hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// No complete message within the idle timeout.
    IdleTimeout,
    /// A started message (line, HTTP header or body) not finished within the read timeout.
    ReadTimeout,
    /// The client did not take a reply within the write timeout.
    WriteTimeout,
    /// A line longer than the maximum message size.
    LineTooLong,
    /// The node-wide budget for partially read input was spent.
    InputBudget,
    /// Every HTTP connection slot, the probe reserve included, was taken.
    HttpFull,
}

impl CloseReason {
    const ALL: [CloseReason; 6] = [
        CloseReason::IdleTimeout,
        CloseReason::ReadTimeout,
        CloseReason::WriteTimeout,
        CloseReason::LineTooLong,
        CloseReason::InputBudget,
        CloseReason::HttpFull,
    ];

    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::ReadTimeout => "read_timeout",
            CloseReason::WriteTimeout => "write_timeout",
            CloseReason::LineTooLong => "line_too_long",
            CloseReason::InputBudget => "input_budget",
            CloseReason::HttpFull => "http_full",
        }
    }
}

/// Latency buckets of the rolling window: 0.05 ms doubling up to ~100 s.
const ROLLING_BUCKETS: usize = 32;
const ROLLING_WINDOW: Duration = Duration::from_secs(10);

/// Counts of recent latencies in exponential buckets: this window and the one before, so the
/// p99 always covers at least one full window.
struct Rolling {
    started: Instant,
    current: [u64; ROLLING_BUCKETS],
    previous: [u64; ROLLING_BUCKETS],
}

fn bucket_of(micros: u64) -> usize {
    // Bucket i holds latencies below 50 µs · 2^i.
    let mut bound = 50u64;
    for i in 0..ROLLING_BUCKETS {
        if micros < bound {
            return i;
        }
        bound = bound.saturating_mul(2);
    }
    ROLLING_BUCKETS - 1
}

fn bucket_upper_ms(i: usize) -> f64 {
    0.05 * f64::from(1u32 << i.min(31))
}

/// Every metric a node exports.
pub struct Metrics {
    registry: Registry,
    /// Open sessions per transport.
    pub connections_active: IntGaugeVec,
    /// Accepted sessions per transport.
    pub connections_total: IntCounterVec,
    /// Connections refused at capacity.
    pub connections_rejected: IntCounter,
    closed: [IntCounter; CloseReason::ALL.len()],
    /// Long requests refused because their session had the most it may run.
    pub in_flight_refused: IntCounter,
    /// Progress notifications dropped because their session's outbound queue was full.
    pub progress_dropped: IntCounter,
    requests: Vec<[IntCounter; 2]>,
    durations: Vec<Histogram>,
    latency_p99_ms: Gauge,
    /// Requests being processed right now (drain waits for zero).
    pub in_flight: IntGauge,
    rolling: Mutex<Rolling>,
    rolling_total: AtomicU64,
    cluster_members: IntGaugeVec,
    cluster_member_load: IntGaugeVec,
    /// Bytes read from the node's MCP and HTTP sockets (one add per read call).
    pub network_receive_bytes: IntCounter,
    /// Bytes written to them (one add per write call).
    pub network_transmit_bytes: IntCounter,
}

impl Metrics {
    /// Registers every metric, plus the process collector (RSS, CPU, open fds).
    pub fn new() -> Self {
        let registry = Registry::new();
        let connections_active = IntGaugeVec::new(
            Opts::new("erlmcp_connections_active", "Open MCP sessions"),
            &["transport"],
        )
        .expect("valid metric");
        let connections_total = IntCounterVec::new(
            Opts::new("erlmcp_connections_total", "MCP sessions accepted"),
            &["transport"],
        )
        .expect("valid metric");
        let connections_rejected = IntCounter::new(
            "erlmcp_connections_rejected_total",
            "Connections refused at max_connections",
        )
        .expect("valid metric");
        let closed_vec = IntCounterVec::new(
            Opts::new(
                "erlmcp_connections_closed_total",
                "Connections the node closed because a client hit a bound",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let in_flight_refused = IntCounter::new(
            "erlmcp_requests_in_flight_refused_total",
            "Long requests refused at max_in_flight_per_session",
        )
        .expect("valid metric");
        let progress_dropped = IntCounter::new(
            "erlmcp_progress_dropped_total",
            "Progress notifications dropped because the session's outbound queue was full",
        )
        .expect("valid metric");
        let requests_vec = IntCounterVec::new(
            Opts::new("erlmcp_requests_total", "JSON-RPC messages handled"),
            &["method", "outcome"],
        )
        .expect("valid metric");
        let duration_vec = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "erlmcp_request_duration_seconds",
                "Time to handle a request",
            )
            .buckets(prometheus::exponential_buckets(0.00005, 2.0, 18).expect("valid buckets")),
            &["method"],
        )
        .expect("valid metric");
        let latency_p99_ms = Gauge::new(
            "erlmcp_latency_p99_ms",
            "p99 request handling time over the last 10 to 20 seconds, in milliseconds",
        )
        .expect("valid metric");
        let in_flight = IntGauge::new("erlmcp_requests_in_flight", "Requests being handled")
            .expect("valid metric");
        let cluster_members = IntGaugeVec::new(
            Opts::new(
                "erlmcp_cluster_members",
                "Members this node knows, itself included, by state",
            ),
            &["state"],
        )
        .expect("valid metric");
        let cluster_member_load = IntGaugeVec::new(
            Opts::new(
                "erlmcp_cluster_member_load",
                "Open sessions of each live member, as of its last heartbeat",
            ),
            &["node"],
        )
        .expect("valid metric");
        let network_receive_bytes = IntCounter::new(
            "erlmcp_network_receive_bytes_total",
            "Bytes read from the MCP listener's and the HTTP API's sockets",
        )
        .expect("valid metric");
        let network_transmit_bytes = IntCounter::new(
            "erlmcp_network_transmit_bytes_total",
            "Bytes written to the MCP listener's and the HTTP API's sockets",
        )
        .expect("valid metric");
        for collector in [
            Box::new(network_receive_bytes.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(network_transmit_bytes.clone()),
            Box::new(connections_active.clone()),
            Box::new(connections_total.clone()),
            Box::new(connections_rejected.clone()),
            Box::new(closed_vec.clone()),
            Box::new(in_flight_refused.clone()),
            Box::new(progress_dropped.clone()),
            Box::new(requests_vec.clone()),
            Box::new(duration_vec.clone()),
            Box::new(latency_p99_ms.clone()),
            Box::new(in_flight.clone()),
            Box::new(cluster_members.clone()),
            Box::new(cluster_member_load.clone()),
        ] {
            registry.register(collector).expect("unique metric names");
        }
        registry
            .register(Box::new(
                crate::process_metrics::ProcessMetrics::new().expect("valid process metrics"),
            ))
            .expect("unique metric names");
        // Resolve every label once: the hot path then touches only atomics.
        let requests = METHODS
            .iter()
            .map(|m| {
                [
                    requests_vec.with_label_values(&[m, "ok"]),
                    requests_vec.with_label_values(&[m, "error"]),
                ]
            })
            .collect();
        let durations = METHODS
            .iter()
            .map(|m| duration_vec.with_label_values(&[m]))
            .collect();
        for transport in ["tcp", "http", "stdio"] {
            connections_active.with_label_values(&[transport]).set(0);
            connections_total.with_label_values(&[transport]).inc_by(0);
        }
        let closed = CloseReason::ALL.map(|r| closed_vec.with_label_values(&[r.label()]));
        Metrics {
            registry,
            connections_active,
            connections_total,
            connections_rejected,
            closed,
            in_flight_refused,
            progress_dropped,
            requests,
            durations,
            latency_p99_ms,
            in_flight,
            rolling: Mutex::new(Rolling {
                started: Instant::now(),
                current: [0; ROLLING_BUCKETS],
                previous: [0; ROLLING_BUCKETS],
            }),
            rolling_total: AtomicU64::new(0),
            cluster_members,
            cluster_member_load,
            network_receive_bytes,
            network_transmit_bytes,
        }
    }

    /// Sets the cluster gauges from this node's member list. A dead member's load is unknown,
    /// so its series goes away rather than repeating a stale number.
    pub fn observe_members(&self, members: &[Member]) {
        let alive = members
            .iter()
            .filter(|m| m.state == Liveness::Alive)
            .count();
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        self.cluster_members
            .with_label_values(&["alive"])
            .set(count(alive));
        self.cluster_members
            .with_label_values(&["dead"])
            .set(count(members.len() - alive));
        for member in members {
            let name = member.name.as_str();
            match member.state {
                Liveness::Alive => self
                    .cluster_member_load
                    .with_label_values(&[name])
                    .set(count(member.load)),
                Liveness::Dead => {
                    let _ = self.cluster_member_load.remove_label_values(&[name]);
                }
            }
        }
    }

    /// Counts a connection the node closed because its client hit a bound.
    pub fn closed(&self, reason: CloseReason) {
        self.closed[reason as usize].inc();
    }

    /// Records one handled message.
    pub fn record(&self, method: usize, outcome: Outcome, elapsed: Duration) {
        let method = method.min(METHODS.len() - 1);
        self.requests[method][outcome as usize].inc();
        self.durations[method].observe(elapsed.as_secs_f64());
        let bucket = bucket_of(elapsed.as_micros() as u64);
        let mut rolling = self.rolling.lock().expect("metrics lock");
        if rolling.started.elapsed() >= ROLLING_WINDOW {
            rolling.previous = rolling.current;
            rolling.current = [0; ROLLING_BUCKETS];
            rolling.started = Instant::now();
        }
        rolling.current[bucket] += 1;
        self.rolling_total.fetch_add(1, Ordering::Relaxed);
    }

    /// p99 of the rolling window in milliseconds (the upper bound of its bucket), 0 when empty.
    pub fn rolling_p99_ms(&self) -> f64 {
        let rolling = self.rolling.lock().expect("metrics lock");
        let stale = rolling.started.elapsed() >= ROLLING_WINDOW * 2;
        let mut counts = [0u64; ROLLING_BUCKETS];
        if !stale {
            for (i, count) in counts.iter_mut().enumerate() {
                *count = rolling.current[i] + rolling.previous[i];
            }
        }
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = (total as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bucket_upper_ms(i);
            }
        }
        bucket_upper_ms(ROLLING_BUCKETS - 1)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.latency_p99_ms.set(self.rolling_p99_ms());
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("text exposition is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_p99_tracks_the_slow_tail() {
        let metrics = Metrics::new();
        assert_eq!(metrics.rolling_p99_ms(), 0.0);
        for _ in 0..98 {
            metrics.record(0, Outcome::Ok, Duration::from_micros(100));
        }
        for _ in 0..2 {
            metrics.record(0, Outcome::Ok, Duration::from_millis(20));
        }
        let p99 = metrics.rolling_p99_ms();
        assert!((20.0..=51.2).contains(&p99), "{p99}");
    }

    #[test]
    fn exposition_has_the_documented_names() {
        let metrics = Metrics::new();
        metrics.record(
            method_index("tools/call"),
            Outcome::Ok,
            Duration::from_micros(80),
        );
        let text = metrics.render();
        for name in [
            "erlmcp_connections_active{transport=\"tcp\"} 0",
            "erlmcp_connections_total",
            "erlmcp_connections_rejected_total 0",
            "erlmcp_connections_closed_total{reason=\"idle_timeout\"} 0",
            "erlmcp_connections_closed_total{reason=\"input_budget\"} 0",
            "erlmcp_requests_in_flight_refused_total 0",
            "erlmcp_progress_dropped_total 0",
            "erlmcp_requests_total{method=\"tools/call\",outcome=\"ok\"} 1",
            "erlmcp_request_duration_seconds_bucket",
            "erlmcp_latency_p99_ms",
            "process_resident_memory_bytes",
            "process_open_fds",
            "process_cpu_seconds_total",
        ] {
            assert!(text.contains(name), "missing {name}");
        }
    }

    #[test]
    fn cluster_gauges_count_states_and_drop_dead_loads() {
        use crate::config::Role;
        let member = |name: &str, state, load| Member {
            name: name.into(),
            role: Role::Worker,
            state,
            api: String::new(),
            listener: String::new(),
            capacity: 10,
            load,
            last_heard_ms_ago: 0,
        };
        let metrics = Metrics::new();
        metrics.observe_members(&[
            member("a", Liveness::Alive, 3),
            member("b", Liveness::Alive, 1),
        ]);
        metrics.observe_members(&[
            member("a", Liveness::Alive, 4),
            member("b", Liveness::Dead, 1),
        ]);
        let text = metrics.render();
        for line in [
            "erlmcp_cluster_members{state=\"alive\"} 1",
            "erlmcp_cluster_members{state=\"dead\"} 1",
            "erlmcp_cluster_member_load{node=\"a\"} 4",
        ] {
            assert!(text.contains(line), "missing {line}");
        }
        assert!(!text.contains("erlmcp_cluster_member_load{node=\"b\"}"));
    }
}
