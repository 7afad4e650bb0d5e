//! The kernel's neighbour (ARP) table, which binds containers long before sockets do. It is one
//! table for every network namespace on the machine, sized by the initial namespace's
//! `net.ipv4.neigh.default.gc_thresh*`: each container on a bridge keeps an entry per peer it
//! talks to, and once the table holds `gc_thresh3` entries the kernel refuses new ones
//! ("neighbor table overflow!") and drops the packets that needed them, so connects to that
//! peer wait for SYN retransmits. Loopback (the native runtime) needs no entries.

use serde::Serialize;

use super::system_limits::grouped;
use super::{HostCheck, Verdict};

/// The table's garbage-collection thresholds (`net.ipv4.neigh.default.gc_thresh1..3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NeighbourLimits {
    /// Below this many entries the collector leaves the table alone.
    pub gc_thresh1: u64,
    /// Above this many, entries older than 5 s are collected: peers are resolved again and again.
    pub gc_thresh2: u64,
    /// The table's hard size: past it new entries are refused and their packets dropped.
    pub gc_thresh3: u64,
}

/// Reads the thresholds from `/proc`; `None` where the kernel has no IPv4 neighbour table.
pub fn read() -> Option<NeighbourLimits> {
    let read = |n: u8| {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/neigh/default/gc_thresh{n}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    Some(NeighbourLimits {
        gc_thresh1: read(1)?,
        gc_thresh2: read(2)?,
        gc_thresh3: read(3)?,
    })
}

/// Entries a cluster of `nodes` containers loaded by `workers` worker containers on one bridge
/// needs at once: each worker resolves every node and each node every worker (both ends keep
/// one), each node its peers (membership, at most all of them), and everyone the gateway.
pub fn entries_needed(nodes: u64, workers: u64) -> u64 {
    2 * nodes * workers + nodes * nodes.saturating_sub(1) + nodes + workers
}

/// Judges the table for `nodes` node containers and `workers` worker containers on one bridge.
pub fn judge(limits: Option<NeighbourLimits>, nodes: u64, workers: u64) -> HostCheck {
    let name = "neighbour table (ARP), containers on one bridge";
    let need = entries_needed(nodes, workers);
    let need_text = format!(
        "{} entries: {nodes} nodes × {workers} load workers at both ends, the nodes' peers and the gateway",
        grouped(need)
    );
    let Some(limits) = limits else {
        return HostCheck {
            name,
            have: "unknown (/proc/sys/net/ipv4/neigh/default unreadable)".into(),
            need: need_text,
            verdict: Verdict::Warn,
            fix: String::new(),
            ceiling: None,
        };
    };
    let verdict = if need > limits.gc_thresh3 {
        Verdict::Fail
    } else if need > limits.gc_thresh2 {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    let fix = match verdict {
        Verdict::Ok => String::new(),
        _ => format!(
            "`sysctl -w net.ipv4.neigh.default.gc_thresh1={} net.ipv4.neigh.default.gc_thresh2={} \
             net.ipv4.neigh.default.gc_thresh3={}` (one table for every namespace; past gc_thresh3 \
             the kernel logs \"neighbor table overflow!\" and drops the packets, so connects wait \
             for SYN retransmits); apply it yourself (validate never changes the host)",
            need,
            need * 2,
            need * 4
        ),
    };
    HostCheck {
        name,
        have: format!(
            "gc_thresh2 {}, gc_thresh3 {} (the hard size)",
            grouped(limits.gc_thresh2),
            grouped(limits.gc_thresh3)
        ),
        need: need_text,
        verdict,
        fix,
        ceiling: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Linux's defaults, which this machine had on 2026-12-02.
    const DEFAULTS: NeighbourLimits = NeighbourLimits {
        gc_thresh1: 128,
        gc_thresh2: 512,
        gc_thresh3: 1024,
    };

    #[test]
    fn the_million_session_docker_run_overflows_the_default_table() {
        // clusters/bench-1m.toml on the Docker runtime: 63 nodes, 63 workers of 16,000 sessions.
        // On 2026-12-02 that run held at most 22,401 sessions, the kernel logging "neighbor table
        // overflow!" and /proc/net/stat/arp_cache counting 9.7 million table_fulls.
        let check = judge(Some(DEFAULTS), 63, 63);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(check.need.starts_with("11,970 entries"), "{}", check.need);
        assert!(check.fix.contains("gc_thresh3=47880"), "{}", check.fix);
    }

    #[test]
    fn six_nodes_and_seven_workers_fit_the_default_table() {
        // clusters/bench-100k.toml on Docker: the run of 2026-11-27 held all 100,000 sessions.
        let check = judge(Some(DEFAULTS), 6, 7);
        assert_eq!(check.verdict, Verdict::Ok);
        assert!(check.fix.is_empty());
    }

    #[test]
    fn between_the_soft_and_the_hard_size_is_a_warning() {
        let need = entries_needed(10, 20);
        assert!(
            need > DEFAULTS.gc_thresh2 && need <= DEFAULTS.gc_thresh3,
            "{need}"
        );
        assert_eq!(judge(Some(DEFAULTS), 10, 20).verdict, Verdict::Warn);
    }

    #[test]
    fn raised_thresholds_pass() {
        let raised = NeighbourLimits {
            gc_thresh1: 11_970,
            gc_thresh2: 23_940,
            gc_thresh3: 47_880,
        };
        assert_eq!(judge(Some(raised), 63, 63).verdict, Verdict::Ok);
    }

    #[test]
    fn an_unreadable_table_is_a_warning_that_still_says_the_need() {
        let check = judge(None, 63, 63);
        assert_eq!(check.verdict, Verdict::Warn);
        assert!(check.need.contains("11,970"));
    }
}
