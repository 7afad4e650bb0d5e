//! The machine-wide limits that bind long before the per-process one once a cluster holds a
//! million sessions on one kernel: open files (`fs.file-max`, `fs.nr_open`), connection tracking,
//! TCP buffer memory (`tcp_mem`), ephemeral ports per source address, kernel memory per socket.
//! Read from `/proc` (and the raw table of the firewall), judged as a number of sessions: a
//! native session is one loopback connection, so two sockets on this machine.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::socket_probe::SocketCost;
use super::{HostCheck, Verdict};
use crate::config::units::ByteSize;
use crate::stress::DEFAULT_SESSIONS_PER_WORKER;
use crate::stress::placement::{MAX_SOURCE_WORKERS, SOURCES_PER_WORKER};

/// What was read of the kernel's machine-wide limits; `None` where a value could not be read.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SystemLimits {
    /// `fs.file-max`: open files the whole kernel allows.
    pub file_max: Option<u64>,
    /// Open files now (the first field of `fs.file-nr`).
    pub files_open: Option<u64>,
    /// `fs.nr_open`: the most any process's open-file limit may be raised to.
    pub nr_open: Option<u64>,
    /// Connection tracking; `None` when the kernel has none (`/proc/sys/net/netfilter` absent).
    pub conntrack: Option<Conntrack>,
    /// `net.ipv4.tcp_mem` (low, pressure, high), in pages.
    pub tcp_mem_pages: Option<[u64; 3]>,
    /// TCP buffer pages in use now (`/proc/net/sockstat`).
    pub tcp_pages_in_use: Option<u64>,
    /// This kernel's page size, bytes.
    pub page_size: Option<u64>,
    /// `MemAvailable` now, bytes.
    pub mem_available: Option<u64>,
    /// `vm.min_free_kbytes`, bytes: what the kernel keeps free for itself.
    pub min_free_bytes: Option<u64>,
    /// The neighbour (ARP) table's thresholds: containers on a bridge need entries, loopback none.
    pub neighbour: Option<super::neighbour_table::NeighbourLimits>,
}

/// The connection-tracking table.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Conntrack {
    /// `net.netfilter.nf_conntrack_max`.
    pub max: u64,
    /// Entries now (`nf_conntrack_count`).
    pub count: u64,
    /// Whether loopback connections take an entry.
    pub loopback: LoopbackTracking,
    /// `nf_conntrack_tcp_timeout_time_wait`: seconds a closed connection stays tracked.
    pub time_wait_seconds: Option<u64>,
}

/// Whether loopback connections take a conntrack entry, and how that was found out.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "state", content = "how", rename_all = "snake_case")]
pub enum LoopbackTracking {
    /// They do.
    Tracked(String),
    /// They do not.
    Untracked(String),
    /// Could not be told.
    Unknown(String),
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The first field of `fs.file-nr` (allocated file handles).
pub fn files_open_from_file_nr(file_nr: &str) -> Option<u64> {
    file_nr.split_whitespace().next()?.parse().ok()
}

/// The three page counts of `net.ipv4.tcp_mem`.
pub fn tcp_mem_from_sysctl(text: &str) -> Option<[u64; 3]> {
    let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
    Some([fields.next()??, fields.next()??, fields.next()??])
}

/// `MemAvailable` of /proc/meminfo, bytes.
pub fn mem_available_from_meminfo(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The page size from a `/proc/<pid>/smaps` text (`KernelPageSize:  4 kB`).
pub fn page_size_from_smaps(smaps: &str) -> Option<u64> {
    let line = smaps.lines().find(|l| l.starts_with("KernelPageSize:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Which loopback directions a firewall dump exempts from tracking: (outgoing `-o lo`, incoming
/// `-i lo`). Reads `iptables-save -t raw` rules (`-j NOTRACK`, `-j CT --notrack`) and `nft list
/// ruleset` rules (`oif "lo" notrack`, `iifname "lo" notrack`).
pub fn loopback_notrack(dump: &str) -> (bool, bool) {
    let (mut outgoing, mut incoming) = (false, false);
    for line in dump.lines().map(str::trim) {
        let iptables_notrack = line.contains("-j NOTRACK") || line.contains("--notrack");
        let nft_notrack = !line.starts_with('-') && line.split_whitespace().any(|w| w == "notrack");
        if iptables_notrack && line.starts_with("-A OUTPUT") && line.contains("-o lo") {
            outgoing = true;
        }
        if iptables_notrack && line.starts_with("-A PREROUTING") && line.contains("-i lo") {
            incoming = true;
        }
        if nft_notrack && (line.contains("oif \"lo\"") || line.contains("oifname \"lo\"")) {
            outgoing = true;
        }
        if nft_notrack && (line.contains("iif \"lo\"") || line.contains("iifname \"lo\"")) {
            incoming = true;
        }
    }
    (outgoing, incoming)
}

/// The effective uid: the second field of the `Uid:` line of `/proc/self/status`.
pub fn effective_uid_from_status(status: &str) -> Option<u32> {
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// Runs a read-only command for at most `limit`, returning its stdout when it succeeded.
fn run_bounded(program: &str, args: &[&str], limit: Duration) -> Option<String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    // Read on a thread so a large dump cannot fill the pipe and stall the child.
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        stdout.read_to_string(&mut text).map(|_| text)
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < limit => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().ok()?.ok()?;
    status.filter(|s| s.success()).map(|_| text)
}

/// Whether loopback is tracked, from the firewall's raw table (readable only as root).
fn loopback_tracking_from_rules() -> LoopbackTracking {
    let euid = read_proc("/proc/self/status").and_then(|s| effective_uid_from_status(&s));
    if euid != Some(0) {
        return LoopbackTracking::Unknown(
            "not root, so the raw table (iptables-save -t raw) cannot be read".into(),
        );
    }
    let limit = Duration::from_secs(3);
    let iptables = run_bounded("iptables-save", &["-t", "raw"], limit);
    let nft = run_bounded("nft", &["list", "ruleset"], limit);
    if iptables.is_none() && nft.is_none() {
        return LoopbackTracking::Unknown(
            "neither `iptables-save -t raw` nor `nft list ruleset` answered".into(),
        );
    }
    let dump = [iptables, nft]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("\n");
    match loopback_notrack(&dump) {
        (true, true) => LoopbackTracking::Untracked(
            "the raw table has NOTRACK rules for -o lo and -i lo".into(),
        ),
        (false, false) => LoopbackTracking::Tracked(
            "conntrack is in the kernel and the raw table has no NOTRACK rule for lo".into(),
        ),
        _ => LoopbackTracking::Tracked(
            "the raw table exempts only one direction of lo (needs -o lo in OUTPUT and -i lo in PREROUTING)".into(),
        ),
    }
}

/// Reads the machine-wide limits of this machine.
pub fn read() -> SystemLimits {
    let conntrack = match (
        read_proc("/proc/sys/net/netfilter/nf_conntrack_max").and_then(|m| number(&m)),
        read_proc("/proc/sys/net/netfilter/nf_conntrack_count").and_then(|c| number(&c)),
    ) {
        (Some(max), Some(count)) => Some(Conntrack {
            max,
            count,
            loopback: loopback_tracking_from_rules(),
            time_wait_seconds: read_proc(
                "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait",
            )
            .and_then(|t| number(&t)),
        }),
        _ => None,
    };
    let meminfo = read_proc("/proc/meminfo").unwrap_or_default();
    SystemLimits {
        file_max: read_proc("/proc/sys/fs/file-max").and_then(|m| number(&m)),
        files_open: read_proc("/proc/sys/fs/file-nr").and_then(|n| files_open_from_file_nr(&n)),
        nr_open: read_proc("/proc/sys/fs/nr_open").and_then(|n| number(&n)),
        conntrack,
        tcp_mem_pages: read_proc("/proc/sys/net/ipv4/tcp_mem")
            .and_then(|t| tcp_mem_from_sysctl(&t)),
        tcp_pages_in_use: read_proc("/proc/net/sockstat")
            .and_then(|s| super::socket_probe::tcp_pages_from_sockstat(&s)),
        page_size: read_proc("/proc/self/smaps").and_then(|s| page_size_from_smaps(&s)),
        mem_available: mem_available_from_meminfo(&meminfo),
        min_free_bytes: read_proc("/proc/sys/vm/min_free_kbytes")
            .and_then(|k| number(&k))
            .map(|kib| kib * 1024),
        neighbour: super::neighbour_table::read(),
    }
}

/// Replaces the rule-based guess with what the probe saw: new conntrack entries per connection.
pub fn with_measured_tracking(mut limits: SystemLimits, cost: &SocketCost) -> SystemLimits {
    if let (Some(conntrack), Some(milli)) = (
        limits.conntrack.as_mut(),
        cost.conntrack_millientries_per_pair,
    ) {
        let how = format!(
            "measured: {:.2} new entries per loopback connection ({} connections)",
            milli as f64 / 1000.0,
            cost.pairs
        );
        conntrack.loopback = if milli >= 500 {
            LoopbackTracking::Tracked(how)
        } else {
            LoopbackTracking::Untracked(how)
        };
    }
    limits
}

/// What the machine-wide checks judge: the sessions held at once and what the nodes ask.
#[derive(Debug, Clone, Copy)]
pub struct Demand {
    /// Sessions open at once (`[stress] connections`); each is two sockets on this machine.
    pub sessions: u64,
    /// The largest `nofile` a node asks for.
    pub largest_nofile: u64,
    /// The nodes' memory limits, summed.
    pub node_memory_limits: u64,
    /// This machine's memory.
    pub memory_total: Option<u64>,
    /// `[stress] ramp` in seconds: `stress` runs its bare baseline first, and the baseline's
    /// closed connections are still tracked while the cluster's ramp opens its sessions.
    pub ramp_seconds: u64,
    /// The run starts with the bare baseline (`stress` does unless `--no-baseline`).
    pub baseline: bool,
}

/// Linux's default `nf_conntrack_tcp_timeout_time_wait`, when it cannot be read.
const DEFAULT_TIME_WAIT_SECONDS: u64 = 120;

/// Conntrack entries a stress run needs at its peak: one per session, plus the baseline's
/// closed connections still in TIME_WAIT while the cluster opens its own (at most all of
/// them, when the ramp is shorter than the TIME_WAIT timeout). Returns (total, baseline part).
fn tracked_at_peak(demand: Demand, time_wait_seconds: u64) -> (u64, u64) {
    let overlap = if !demand.baseline {
        0
    } else if demand.ramp_seconds <= time_wait_seconds {
        demand.sessions
    } else {
        demand.sessions * time_wait_seconds / demand.ramp_seconds
    };
    (demand.sessions + overlap, overlap)
}

const NOT_APPLIED: &str = "apply it yourself (validate never changes the host)";

/// Thousands separators, for session counts people compare by eye.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn pages(pages: u64, page_size: Option<u64>) -> String {
    match page_size {
        Some(size) => format!("{pages} pages ({})", ByteSize(pages * size).approx()),
        None => format!("{pages} pages"),
    }
}

/// `fs.file-max`: every socket is an open file, and both ends of a loopback session are here.
pub fn judge_file_max(limits: &SystemLimits, demand: Demand) -> Option<HostCheck> {
    let file_max = limits.file_max?;
    let open = limits.files_open.unwrap_or(0);
    let ceiling = file_max.saturating_sub(open) / 2;
    let need = 2 * demand.sessions;
    let fits = demand.sessions <= ceiling;
    Some(HostCheck {
        name: "open files, machine-wide (fs.file-max)",
        have: format!("{} ({} open now)", grouped(file_max), grouped(open)),
        need: format!(
            "{} sockets for {} sessions (2 per session: client and node end)",
            grouped(need),
            grouped(demand.sessions)
        ),
        verdict: if fits { Verdict::Ok } else { Verdict::Fail },
        fix: if fits {
            String::new()
        } else {
            format!(
                "`sysctl -w fs.file-max={}` raises the kernel-wide cap on open files; {NOT_APPLIED}",
                need + open + need / 10
            )
        },
        ceiling: Some(ceiling),
    })
}

/// `fs.nr_open`: no process's open-file limit can be raised above it.
pub fn judge_nr_open(limits: &SystemLimits, demand: Demand) -> Option<HostCheck> {
    let nr_open = limits.nr_open?;
    let fits = demand.largest_nofile <= nr_open;
    Some(HostCheck {
        name: "open-file limit ceiling (fs.nr_open)",
        have: grouped(nr_open),
        need: format!(
            "{} (the largest node `nofile`)",
            grouped(demand.largest_nofile)
        ),
        verdict: if fits { Verdict::Ok } else { Verdict::Fail },
        fix: if fits {
            String::new()
        } else {
            format!(
                "`sysctl -w fs.nr_open={}` lets a process's hard limit go that high (then raise the hard limit itself); {NOT_APPLIED}",
                demand.largest_nofile
            )
        },
        ceiling: None,
    })
}

/// Connection tracking: each tracked loopback connection takes one entry; a full table drops
/// new connections' packets.
pub fn judge_conntrack(limits: &SystemLimits, demand: Demand) -> HostCheck {
    let name = "connection tracking (nf_conntrack_max)";
    let Some(conntrack) = &limits.conntrack else {
        return HostCheck {
            name,
            have: "none (no /proc/sys/net/netfilter: the kernel tracks no connections)".into(),
            need: "no entry per connection".into(),
            verdict: Verdict::Ok,
            fix: String::new(),
            ceiling: None,
        };
    };
    let room = conntrack.max.saturating_sub(conntrack.count);
    let (tracked, how) = match &conntrack.loopback {
        LoopbackTracking::Tracked(how) => (Some(true), format!("loopback tracked ({how})")),
        LoopbackTracking::Untracked(how) => (Some(false), format!("loopback not tracked ({how})")),
        LoopbackTracking::Unknown(why) => (None, format!("loopback tracking unknown ({why})")),
    };
    let have = format!(
        "max {}, {} in use; {how}",
        grouped(conntrack.max),
        grouped(conntrack.count)
    );
    if tracked == Some(false) {
        return HostCheck {
            name,
            have,
            need: "no entry per loopback connection".into(),
            verdict: Verdict::Ok,
            fix: String::new(),
            ceiling: None,
        };
    }
    let time_wait = conntrack
        .time_wait_seconds
        .unwrap_or(DEFAULT_TIME_WAIT_SECONDS);
    let (need, baseline) = tracked_at_peak(demand, time_wait);
    let fits = need <= room;
    HostCheck {
        name,
        have,
        need: format!(
            "{} entries: one per loopback connection ({}), plus up to {} of the baseline's closed \
             connections, tracked for {time_wait} s after it while the {} s ramp opens the cluster's",
            grouped(need),
            grouped(demand.sessions),
            grouped(baseline),
            demand.ramp_seconds
        ),
        verdict: match (fits, tracked) {
            (true, _) => Verdict::Ok,
            (false, Some(true)) => Verdict::Fail,
            (false, _) => Verdict::Warn,
        },
        fix: if fits {
            String::new()
        } else {
            let max = (need + conntrack.count) * 11 / 10;
            format!(
                "either `sysctl -w net.netfilter.nf_conntrack_max={max}` (a larger table: every entry \
                 costs kernel memory, which the probe's per-connection figure includes; raise \
                 /sys/module/nf_conntrack/parameters/hashsize with it, or lookups slow down), or stop \
                 tracking loopback: `iptables -t raw -A PREROUTING -i lo -j CT --notrack` and \
                 `iptables -t raw -A OUTPUT -o lo -j CT --notrack` (loopback connections then take no \
                 entry, and state or NAT rules no longer see loopback traffic); {NOT_APPLIED}"
            )
        },
        // In sessions: the room, shared by the sessions and the baseline's overlap.
        ceiling: tracked
            .is_none_or(|t| t)
            .then_some(room * demand.sessions.max(1) / need.max(1)),
    }
}

/// Ephemeral ports: the generator binds each client socket to one of its source addresses
/// before connecting, so the port must be free on that address, whatever the destination.
pub fn judge_ephemeral_ports(range: Option<(u32, u32)>, demand: Demand) -> Option<HostCheck> {
    let (low, high) = range?;
    let ports = u64::from(high.saturating_sub(low)) + 1;
    // bind(addr:0) scans half the range first; counting only that half keeps binds fast.
    let usable = ports / 2;
    let sources = u64::from(SOURCES_PER_WORKER);
    let per_worker = u64::from(DEFAULT_SESSIONS_PER_WORKER).min(demand.sessions.max(1));
    let workers = demand.sessions.div_ceil(per_worker.max(1)).max(1);
    let per_source = per_worker.div_ceil(sources);
    let fits = per_source <= usable;
    let ceiling = MAX_SOURCE_WORKERS * sources * usable;
    Some(HostCheck {
        name: "ephemeral ports per source address",
        have: format!(
            "{low}–{high}: {ports} ports per source address ({usable} in the half bind() tries first)"
        ),
        need: format!(
            "{} per source address: {} sessions over {workers} workers × {sources} addresses 127.b.w.2–9",
            grouped(per_source),
            grouped(demand.sessions)
        ),
        verdict: if fits { Verdict::Ok } else { Verdict::Warn },
        fix: if fits {
            String::new()
        } else {
            "lower `stress --sessions-per-worker` (more workers, more source addresses), or widen \
             `net.ipv4.ip_local_port_range`"
                .into()
        },
        ceiling: Some(ceiling),
    })
}

/// TCP buffer memory: `tcp_mem` in pages, against the measured pages per pair.
pub fn judge_tcp_mem(
    limits: &SystemLimits,
    cost: Option<&SocketCost>,
    demand: Demand,
) -> Option<HostCheck> {
    let [low, pressure, high] = limits.tcp_mem_pages?;
    let in_use = limits.tcp_pages_in_use.unwrap_or(0);
    let size = limits.page_size;
    let have = format!(
        "low {low}, pressure {pressure}, high {} ({in_use} in use)",
        pages(high, size)
    );
    let Some(cost) = cost else {
        return Some(HostCheck {
            name: "TCP buffer memory (tcp_mem)",
            have,
            need: "not measured: pass `--probe` to measure pages per connection".into(),
            verdict: Verdict::Warn,
            fix: "`validate --host --probe` opens 2,000 loopback connection pairs for about a second to measure".into(),
            ceiling: None,
        });
    };
    let idle_pages = demand.sessions * cost.tcp_millipages_per_idle_pair / 1000;
    let queued = cost.tcp_millipages_per_queued_pair.max(1);
    let queued_ceiling = (high.saturating_sub(in_use)) * 1000 / queued;
    let ceiling = (cost.tcp_millipages_per_idle_pair > 0)
        .then(|| high.saturating_sub(in_use) * 1000 / cost.tcp_millipages_per_idle_pair);
    let verdict = if in_use + idle_pages > high {
        Verdict::Fail
    } else if in_use + idle_pages > pressure {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    Some(HostCheck {
        name: "TCP buffer memory (tcp_mem)",
        have,
        need: format!(
            "{} for {} idle sessions (measured {:.3} pages per idle pair); {} sessions can each \
             hold one unread 200-byte message at once (measured {:.3} pages per pair)",
            pages(idle_pages, size),
            grouped(demand.sessions),
            cost.tcp_millipages_per_idle_pair as f64 / 1000.0,
            grouped(queued_ceiling),
            cost.tcp_millipages_per_queued_pair as f64 / 1000.0
        ),
        verdict,
        fix: match verdict {
            Verdict::Ok => String::new(),
            _ => format!(
                "`sysctl -w net.ipv4.tcp_mem=\"{} {} {}\"` (pages; above pressure the kernel shrinks \
                 every socket's buffers, above high it refuses to allocate); {NOT_APPLIED}",
                low.max(idle_pages),
                (in_use + idle_pages) * 12 / 10,
                (in_use + idle_pages) * 15 / 10
            ),
        },
        ceiling,
    })
}

/// Kernel memory per session, measured by the probe, against the memory available now.
pub fn judge_kernel_memory(
    limits: &SystemLimits,
    cost: Option<&SocketCost>,
    demand: Demand,
) -> HostCheck {
    let name = "kernel memory per session (slab)";
    let Some(cost) = cost else {
        return HostCheck {
            name,
            have: "not measured".into(),
            need: format!(
                "{} sessions × the slab bytes of one loopback connection pair",
                grouped(demand.sessions)
            ),
            verdict: Verdict::Warn,
            fix: "`validate --host --probe` opens 2,000 loopback connection pairs for about a second to measure".into(),
            ceiling: None,
        };
    };
    let per_pair = cost.slab_bytes_per_pair.max(1);
    let need = demand.sessions * per_pair;
    let available = limits.mem_available;
    let ceiling = available.map(|a| a / per_pair);
    let with_nodes = need + demand.node_memory_limits;
    let verdict = match (available, demand.memory_total) {
        (Some(available), _) if need > available => Verdict::Fail,
        (_, Some(total)) if with_nodes > total => Verdict::Warn,
        _ => Verdict::Ok,
    };
    HostCheck {
        name,
        have: format!(
            "measured {} B of slab per loopback connection pair ({} B unreclaimable; median of {} \
             rounds of {} pairs, {} ms); {} available",
            cost.slab_bytes_per_pair,
            cost.unreclaimable_bytes_per_pair,
            cost.rounds,
            cost.pairs,
            cost.elapsed_ms,
            available.map_or("unknown memory".into(), |a| ByteSize(a).approx())
        ),
        need: format!(
            "{} for {} sessions, outside every node's memory limit ({} more at the nodes' limits)",
            ByteSize(need).approx(),
            grouped(demand.sessions),
            ByteSize(demand.node_memory_limits).approx()
        ),
        verdict,
        fix: match verdict {
            Verdict::Ok => String::new(),
            Verdict::Fail => "fewer sessions or more memory: socket memory is the kernel's, no \
                              `memory_limit` bounds it"
                .into(),
            Verdict::Warn => {
                "lower the nodes' `memory_limit` so that they and the kernel's socket \
                              memory fit this machine together"
                    .into()
            }
        },
        ceiling,
    }
}

/// Every machine-wide check, in the order they are printed.
pub fn judge(
    limits: &SystemLimits,
    cost: Option<&SocketCost>,
    ephemeral_ports: Option<(u32, u32)>,
    demand: Demand,
) -> Vec<HostCheck> {
    [
        judge_file_max(limits, demand),
        judge_nr_open(limits, demand),
        Some(judge_conntrack(limits, demand)),
        judge_ephemeral_ports(ephemeral_ports, demand),
        judge_tcp_mem(limits, cost, demand),
        Some(judge_kernel_memory(limits, cost, demand)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// This machine as read on 2026-12-02 (2 cores, 23.5 GiB): the fake /proc of these tests.
    pub(in crate::host) fn limits() -> SystemLimits {
        SystemLimits {
            file_max: files_open_from_file_nr("2466097"),
            files_open: files_open_from_file_nr("910\t0\t2466097\n"),
            nr_open: Some(1_048_576),
            conntrack: Some(Conntrack {
                max: 262_144,
                count: 258,
                loopback: LoopbackTracking::Tracked("test".into()),
                time_wait_seconds: Some(120),
            }),
            tcp_mem_pages: tcp_mem_from_sysctl("287889\t383855\t575778\n"),
            tcp_pages_in_use: Some(186),
            page_size: page_size_from_smaps("Size: 4 kB\nKernelPageSize:        4 kB\n"),
            mem_available: mem_available_from_meminfo("MemAvailable:   23491380 kB\n"),
            min_free_bytes: Some(67_584 * 1024),
            neighbour: None,
        }
    }

    pub(in crate::host) fn demand(sessions: u64) -> Demand {
        Demand {
            sessions,
            largest_nofile: 20_000,
            node_memory_limits: 63 * (320 << 20),
            memory_total: Some(24_683_568 * 1024),
            ramp_seconds: 600,
            baseline: true,
        }
    }

    pub(in crate::host) fn cost(slab: u64, idle_millipages: u64) -> SocketCost {
        SocketCost {
            pairs: 2000,
            rounds: 3,
            slab_bytes_per_pair: slab,
            unreclaimable_bytes_per_pair: slab / 2,
            tcp_millipages_per_idle_pair: idle_millipages,
            tcp_millipages_per_queued_pair: 1000,
            conntrack_millientries_per_pair: Some(1000),
            elapsed_ms: 300,
        }
    }

    #[test]
    fn parses_the_proc_files() {
        let limits = limits();
        assert_eq!(limits.files_open, Some(910));
        assert_eq!(limits.tcp_mem_pages, Some([287_889, 383_855, 575_778]));
        assert_eq!(limits.page_size, Some(4096));
        assert_eq!(limits.mem_available, Some(23_491_380 * 1024));
        assert_eq!(tcp_mem_from_sysctl("1 2"), None);
        assert_eq!(
            effective_uid_from_status("Name:\tx\nUid:\t1000\t0\t0\t0\n"),
            Some(0)
        );
    }

    #[test]
    fn notrack_rules_are_found_for_each_loopback_direction() {
        // (dump, (outgoing exempt, incoming exempt))
        let cases = [
            (
                "*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
                (false, false),
            ),
            (
                "-A OUTPUT -o lo -j NOTRACK\n-A PREROUTING -i lo -j NOTRACK\n",
                (true, true),
            ),
            ("-A OUTPUT -o lo -j CT --notrack\n", (true, false)),
            ("-A PREROUTING -i eth0 -j CT --notrack\n", (false, false)),
            (
                "  chain output {\n    oif \"lo\" notrack\n    iifname \"lo\" counter notrack\n",
                (true, true),
            ),
            ("    oifname \"lo\" counter accept\n", (false, false)),
        ];
        for (dump, expected) in cases {
            assert_eq!(loopback_notrack(dump), expected, "{dump}");
        }
    }

    #[test]
    fn a_million_tracked_loopback_sessions_overflow_this_conntrack_table() {
        let check = judge_conntrack(&limits(), demand(1_000_000));
        assert_eq!(check.verdict, Verdict::Fail);
        // A 600 s ramp: the baseline's last 120 s of closed connections overlap the cluster's.
        assert!(
            check.need.starts_with("1,200,000 entries"),
            "{}",
            check.need
        );
        assert_eq!(check.ceiling, Some((262_144 - 258) * 1_000_000 / 1_200_000));
        assert!(
            check.fix.contains("nf_conntrack_max=1320283"),
            "{}",
            check.fix
        );
        assert!(check.fix.contains("-o lo -j CT --notrack"), "{}", check.fix);
        assert!(check.fix.contains("validate never changes the host"));
        // Untracked loopback needs no entries; unknown tracking only warns.
        let mut untracked = limits();
        untracked.conntrack.as_mut().unwrap().loopback = LoopbackTracking::Untracked("x".into());
        let check = judge_conntrack(&untracked, demand(1_000_000));
        assert_eq!((check.verdict, check.ceiling), (Verdict::Ok, None));
        let mut unknown = limits();
        unknown.conntrack.as_mut().unwrap().loopback = LoopbackTracking::Unknown("x".into());
        assert_eq!(
            judge_conntrack(&unknown, demand(1_000_000)).verdict,
            Verdict::Warn
        );
        assert_eq!(
            judge_conntrack(&limits(), demand(100_000)).verdict,
            Verdict::Ok
        );
    }

    #[test]
    fn the_baseline_s_closed_connections_are_still_tracked_during_the_cluster_s_ramp() {
        // 250,000 sessions ramped over 150 s fit a 262,144 table by themselves, but the
        // baseline's closed connections are tracked for 120 s into that ramp, while it opens
        // 200,000 (measured 2026-12-02: 313,054 entries at the peak of such a run).
        let stage = Demand {
            ramp_seconds: 150,
            ..demand(250_000)
        };
        assert_eq!(tracked_at_peak(stage, 120), (450_000, 200_000));
        assert_eq!(
            tracked_at_peak(
                Demand {
                    ramp_seconds: 60,
                    ..stage
                },
                120
            ),
            (500_000, 250_000)
        );
        let check = judge_conntrack(&limits(), stage);
        assert_eq!(check.verdict, Verdict::Fail, "{}", check.need);
        assert_eq!(
            tracked_at_peak(
                Demand {
                    ramp_seconds: 1200,
                    ..stage
                },
                120
            ),
            (275_000, 25_000)
        );
    }

    #[test]
    fn file_max_counts_both_ends_of_every_session() {
        let check = judge_file_max(&limits(), demand(1_000_000)).unwrap();
        assert_eq!(check.verdict, Verdict::Ok);
        assert_eq!(check.ceiling, Some((2_466_097 - 910) / 2));
        let check = judge_file_max(&limits(), demand(1_300_000)).unwrap();
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(
            check.fix.contains("sysctl -w fs.file-max=2860910"),
            "{}",
            check.fix
        );
    }

    #[test]
    fn the_generator_needs_two_thousand_ports_per_source_address() {
        let check = judge_ephemeral_ports(Some((32768, 60999)), demand(1_000_000)).unwrap();
        assert_eq!(check.verdict, Verdict::Ok);
        assert!(
            check.need.starts_with("2,000 per source address"),
            "{}",
            check.need
        );
        assert!(check.need.contains("63 workers"), "{}", check.need);
        let narrow = judge_ephemeral_ports(Some((60000, 60999)), demand(1_000_000)).unwrap();
        assert_eq!(narrow.verdict, Verdict::Warn);
    }

    #[test]
    fn kernel_memory_is_judged_from_the_measured_bytes_per_pair() {
        let unmeasured = judge_kernel_memory(&limits(), None, demand(1_000_000));
        assert_eq!(
            (unmeasured.verdict, unmeasured.ceiling),
            (Verdict::Warn, None)
        );
        assert!(unmeasured.fix.contains("--probe"));
        let measured = cost(8_600, 0);
        let check = judge_kernel_memory(&limits(), Some(&measured), demand(1_000_000));
        // 8.6 GB of slab fits 22.4 GiB available, but not beside 63 nodes at 320 MiB each.
        assert_eq!(check.verdict, Verdict::Warn, "{check:?}");
        assert_eq!(check.ceiling, Some(23_491_380 * 1024 / 8_600));
        let check = judge_kernel_memory(&limits(), Some(&cost(30_000, 0)), demand(1_000_000));
        assert_eq!(check.verdict, Verdict::Fail);
    }

    #[test]
    fn tcp_mem_binds_only_when_idle_sockets_hold_pages() {
        let idle = judge_tcp_mem(&limits(), Some(&cost(8_600, 0)), demand(1_000_000)).unwrap();
        assert_eq!((idle.verdict, idle.ceiling), (Verdict::Ok, None));
        assert!(
            idle.need.contains("575,592 sessions can each hold"),
            "{}",
            idle.need
        );
        let holding =
            judge_tcp_mem(&limits(), Some(&cost(8_600, 1000)), demand(1_000_000)).unwrap();
        assert_eq!(holding.verdict, Verdict::Fail);
        assert_eq!(holding.ceiling, Some(575_778 - 186));
    }

    #[test]
    fn the_probe_replaces_the_rule_based_guess() {
        let mut cost = cost(8_600, 0);
        cost.conntrack_millientries_per_pair = Some(0);
        let limits = with_measured_tracking(limits(), &cost);
        assert!(matches!(
            limits.conntrack.unwrap().loopback,
            LoopbackTracking::Untracked(how) if how.starts_with("measured")
        ));
    }

    #[test]
    fn session_counts_are_grouped_by_thousands() {
        assert_eq!(grouped(1_000_000), "1,000,000");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(262_144), "262,144");
    }
}
