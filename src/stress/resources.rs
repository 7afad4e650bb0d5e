//! Per-node resource sampling: CPU, memory, open files and sessions of each node, once a second.
//!
//! [`ResourceSampler`] is the seam for other runtimes (e.g. Docker's stats API);
//! [`NativeSampler`] reads /proc for nodes whose pid is known and each node's Prometheus
//! `/metrics` over a hand-written HTTP/1.1 GET.

use super::StressTarget;
use super::machine::{clock_ticks_per_second, cpu_ticks_from_stat, meminfo_kib};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Bound on each `/metrics` request.
const METRICS_TIMEOUT: Duration = Duration::from_millis(800);

/// One node's resources at one moment; a value is `None` when no source provided it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSample {
    /// Node name.
    pub node: String,
    /// CPU use since the previous sample, in percent of one core.
    pub cpu_percent: Option<f64>,
    /// Resident memory in bytes.
    pub memory_bytes: Option<u64>,
    /// The memory the node may use (container limit, or the machine's memory natively).
    pub memory_limit_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// Open sessions as the node itself counts them, over every transport
    /// (`erlmcp_connections_active`).
    pub sessions: Option<u64>,
    /// Bytes per second the node read from its sockets since the previous sample (its
    /// `erlmcp_network_receive_bytes_total`).
    #[serde(default)]
    pub rx_bytes_per_second: Option<f64>,
    /// Bytes per second it wrote (`erlmcp_network_transmit_bytes_total`).
    #[serde(default)]
    pub tx_bytes_per_second: Option<f64>,
    /// Where the numbers came from, e.g. "proc+metrics".
    pub source: String,
}

/// Something that can measure every node's resources right now.
pub trait ResourceSampler: Send {
    /// One sample per node it knows about.
    fn sample(&mut self) -> Vec<NodeSample>;
}

/// A sampler that measures nothing (no node exposes anything to sample).
#[derive(Debug, Default)]
pub struct NoSampler;

impl ResourceSampler for NoSampler {
    fn sample(&mut self) -> Vec<NodeSample> {
        Vec::new()
    }
}

#[derive(Debug)]
struct NativeNode {
    node: String,
    pid: Option<u32>,
    api_addr: Option<SocketAddr>,
    /// CPU seconds and when they were read, for the next CPU % delta.
    last_cpu: Option<(f64, Instant)>,
    /// The network byte counters (received, sent) and when they were read, for the next rates.
    last_network: Option<(f64, f64, Instant)>,
}

/// Samples natively running nodes through `/proc/<pid>` and their `/metrics`.
#[derive(Debug)]
pub struct NativeSampler {
    nodes: Vec<NativeNode>,
    machine_memory: Option<u64>,
}

impl NativeSampler {
    /// A sampler for the targets that have a pid or an API address.
    pub fn new(targets: &[StressTarget]) -> Self {
        let nodes = targets
            .iter()
            .filter(|t| t.pid.is_some() || t.api_addr.is_some())
            .map(|t| NativeNode {
                node: t.node.clone(),
                pid: t.pid,
                api_addr: t.api_addr,
                last_cpu: None,
                last_network: None,
            })
            .collect();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Self {
            nodes,
            machine_memory: meminfo_kib(&meminfo, "MemTotal").map(|k| k * 1024),
        }
    }

    /// Whether there is any node to sample.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

/// What /proc says about one process.
struct ProcReading {
    cpu_seconds: Option<f64>,
    memory_bytes: Option<u64>,
    open_fds: Option<u64>,
}

fn read_proc(pid: u32, ticks_per_second: f64) -> Option<ProcReading> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    Some(ProcReading {
        cpu_seconds: cpu_ticks_from_stat(&stat).map(|t| t as f64 / ticks_per_second),
        memory_bytes: meminfo_kib(&status, "VmRSS").map(|k| k * 1024),
        open_fds: open_fds(pid),
    })
}

/// How many descriptors a process has open.
///
/// Since Linux 6.2 the size of `/proc/<pid>/fd` is that count, read without listing it.
/// Listing it (the only way before) costs time per descriptor and leaves a /proc inode and a
/// dentry cached per descriptor: sampled every second at 250,000 sessions that was gigabytes of
/// slab and a core's share that grew with the sessions, so the listing is only the fallback.
pub fn open_fds(pid: u32) -> Option<u64> {
    let dir = format!("/proc/{pid}/fd");
    match fs::metadata(&dir) {
        Ok(meta) if meta.len() > 0 => Some(meta.len()),
        Ok(_) => fs::read_dir(&dir).ok().map(|d| d.count() as u64),
        Err(_) => None,
    }
}

impl NativeNode {
    fn sample(&mut self, ticks_per_second: f64, machine_memory: Option<u64>) -> NodeSample {
        let now = Instant::now();
        let mut sample = NodeSample {
            node: self.node.clone(),
            ..NodeSample::default()
        };
        let mut sources = Vec::new();
        let mut cpu_seconds = None;
        if let Some(proc) = self.pid.and_then(|pid| read_proc(pid, ticks_per_second)) {
            sources.push("proc");
            cpu_seconds = proc.cpu_seconds;
            sample.memory_bytes = proc.memory_bytes;
            sample.memory_limit_bytes = machine_memory;
            sample.open_fds = proc.open_fds;
        }
        if let Some(text) = self.api_addr.and_then(|addr| http_get(addr, "/metrics")) {
            // /proc is exact for this process; /metrics fills in what /proc could not say.
            sources.push("metrics");
            let metric = |name| metric_value(&text, name, None);
            // Over every transport: an HTTP run's sessions are `transport="http"`.
            sample.sessions =
                crate::probe::metric_sum(&text, "erlmcp_connections_active", &[]).map(|v| v as u64);
            cpu_seconds = cpu_seconds.or_else(|| metric("process_cpu_seconds_total"));
            sample.memory_bytes = sample
                .memory_bytes
                .or_else(|| metric("process_resident_memory_bytes").map(|v| v as u64));
            sample.open_fds = sample
                .open_fds
                .or_else(|| metric("process_open_fds").map(|v| v as u64));
            if let (Some(rx), Some(tx)) = (
                metric("erlmcp_network_receive_bytes_total"),
                metric("erlmcp_network_transmit_bytes_total"),
            ) {
                (sample.rx_bytes_per_second, sample.tx_bytes_per_second) =
                    network_rates(self.last_network.replace((rx, tx, now)), (rx, tx, now));
            }
        }
        if let Some(cpu) = cpu_seconds {
            if let Some((last, at)) = self.last_cpu {
                let wall = now.duration_since(at).as_secs_f64();
                if wall > 0.0 {
                    sample.cpu_percent = Some(((cpu - last) / wall * 100.0).max(0.0));
                }
            }
            self.last_cpu = Some((cpu, now));
        }
        sample.source = if sources.is_empty() {
            "unavailable".to_string()
        } else {
            sources.join("+")
        };
        sample
    }
}

/// Bytes per second between two readings of the (received, sent) counters; none for the first
/// reading, and none across a counter reset (a restarted node).
fn network_rates(
    last: Option<(f64, f64, Instant)>,
    (rx, tx, now): (f64, f64, Instant),
) -> (Option<f64>, Option<f64>) {
    match last {
        Some((last_rx, last_tx, at)) if rx >= last_rx && tx >= last_tx => {
            let wall = now.duration_since(at).as_secs_f64();
            if wall > 0.0 {
                (Some((rx - last_rx) / wall), Some((tx - last_tx) / wall))
            } else {
                (None, None)
            }
        }
        _ => (None, None),
    }
}

impl ResourceSampler for NativeSampler {
    fn sample(&mut self) -> Vec<NodeSample> {
        let ticks = clock_ticks_per_second() as f64;
        let machine_memory = self.machine_memory;
        self.nodes
            .iter_mut()
            .map(|n| n.sample(ticks, machine_memory))
            .collect()
    }
}

/// A plain HTTP/1.1 GET to a node's API; `None` on any error or non-200 answer.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, METRICS_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(METRICS_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(METRICS_TIMEOUT)).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: text/plain\r\n\r\n"
    )
    .ok()?;
    let mut response = Vec::new();
    // Bounded: the node closes after one response; the read timeout ends a stalled one.
    stream
        .take(16 * 1024 * 1024)
        .read_to_end(&mut response)
        .ok()?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status_ok = head
        .lines()
        .next()
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("200"));
    if !status_ok {
        return None;
    }
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    Some(if chunked {
        dechunk(body)
    } else {
        body.to_string()
    })
}

/// Decodes a chunked HTTP/1.1 body.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

/// The value of the first sample of `name` (whose labels contain `label`, if given) in Prometheus text.
pub fn metric_value(text: &str, name: &str, label: Option<&str>) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((metric, labels)) => (metric, labels),
                None => (series, ""),
            };
            (metric == name && label.is_none_or(|l| labels.contains(l)))
                .then(|| value.trim().parse().ok())?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_fds_counts_a_process_s_descriptors() {
        let listed = |pid: u32| fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count() as u64;
        let pid = std::process::id();
        let files: Vec<fs::File> = (0..64)
            .map(|_| fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let after = open_fds(pid).unwrap();
        // Other test threads open and close descriptors too: compare with a listing taken
        // next to it; the 64 this test holds must show.
        assert!(after >= 64, "{after}");
        assert!(
            after.abs_diff(listed(pid)) <= 8,
            "{after} against {}",
            listed(pid)
        );
        drop(files);
        assert_eq!(open_fds(u32::MAX), None);
    }

    #[test]
    fn network_rates_come_from_two_readings_and_skip_resets() {
        let start = Instant::now();
        let later = start + Duration::from_secs(2);
        assert_eq!(network_rates(None, (10.0, 20.0, start)), (None, None));
        assert_eq!(
            network_rates(Some((10.0, 20.0, start)), (1010.0, 4020.0, later)),
            (Some(500.0), Some(2000.0))
        );
        // A restarted node's counters start again from zero: no negative rate.
        assert_eq!(
            network_rates(Some((1010.0, 4020.0, start)), (5.0, 5.0, later)),
            (None, None)
        );
    }

    const METRICS: &str = "# HELP x\n# TYPE erlmcp_connections_active gauge\n\
        erlmcp_connections_active{transport=\"http\"} 3\n\
        erlmcp_connections_active{transport=\"tcp\"} 1234\n\
        process_resident_memory_bytes 5.5e7\n\
        process_cpu_seconds_total 12.5\n";

    #[test]
    fn prometheus_values_are_found() {
        let cases = [
            (
                "erlmcp_connections_active",
                Some("transport=\"tcp\""),
                Some(1234.0),
            ),
            (
                "erlmcp_connections_active",
                Some("transport=\"http\""),
                Some(3.0),
            ),
            ("process_resident_memory_bytes", None, Some(55_000_000.0)),
            ("process_cpu_seconds_total", None, Some(12.5)),
            ("process_open_fds", None, None),
        ];
        for (name, label, expected) in cases {
            assert_eq!(metric_value(METRICS, name, label), expected, "{name}");
        }
    }

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
            "hello world"
        );
    }

    #[test]
    fn this_process_samples_through_proc() {
        let target = StressTarget {
            node: "me".into(),
            tcp_addr: "127.0.0.1:1".parse().unwrap(),
            api_addr: None,
            pid: Some(std::process::id()),
            capacity: 1,
            kind: super::super::TargetKind::Mcp,
        };
        let mut sampler = NativeSampler::new(&[target]);
        let first = sampler.sample();
        let second = sampler.sample();
        assert_eq!(first[0].source, "proc");
        assert!(first[0].memory_bytes.unwrap() > 0);
        assert!(second[0].open_fds.unwrap() > 0);
        assert!(second[0].cpu_percent.is_some());
    }
}
