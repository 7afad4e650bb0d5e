//! Measures what one loopback TCP connection costs this kernel (`validate --host --probe`): opens
//! a bounded number of connection pairs on 127.0.0.1, and reads slab memory, TCP buffer pages and
//! conntrack entries before and after. A session of the native runtime is one such connection
//! (two sockets, both ends on this machine), so the figures scale to the cluster's sessions.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Connection pairs per round: enough that the slab and page counters move well past their
/// granularity, few enough to stay far below the open-file limit and finish in a fraction of a second.
pub const PAIRS: u64 = 2_000;

/// Rounds measured; the median resists other processes allocating at the same moment.
const ROUNDS: usize = 3;

/// The whole probe gives up past this, whatever it has measured.
const DEADLINE: Duration = Duration::from_secs(10);

/// The message each client leaves unread in its peer's receive queue for the in-flight figure.
const IN_FLIGHT_MESSAGE: &[u8] = &[b'x'; 200];

/// Kernel counters read before and after opening the pairs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelCounters {
    /// `Slab` of /proc/meminfo, bytes.
    pub slab: u64,
    /// `SUnreclaim` of /proc/meminfo, bytes.
    pub slab_unreclaimable: u64,
    /// `TCP: … mem` of /proc/net/sockstat, pages.
    pub tcp_pages: u64,
    /// `nf_conntrack_count`, when the kernel tracks connections.
    pub conntrack: Option<u64>,
}

/// What one loopback connection pair costs, as measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SocketCost {
    /// Connection pairs held open per round.
    pub pairs: u64,
    /// Rounds measured (the figures are their medians).
    pub rounds: usize,
    /// Slab bytes per pair (both sockets, their files, and the conntrack entry if any).
    pub slab_bytes_per_pair: u64,
    /// Of which unreclaimable.
    pub unreclaimable_bytes_per_pair: u64,
    /// TCP buffer pages per idle pair (after one exchange, nothing queued), in thousandths.
    pub tcp_millipages_per_idle_pair: u64,
    /// TCP buffer pages per pair with one 200-byte message unread, in thousandths.
    pub tcp_millipages_per_queued_pair: u64,
    /// New conntrack entries per pair, in thousandths (1000 = every connection is tracked).
    pub conntrack_millientries_per_pair: Option<u64>,
    /// How long the probe took, milliseconds.
    pub elapsed_ms: u64,
}

/// Parses `Slab` and `SUnreclaim` (kB) out of /proc/meminfo, as bytes.
pub fn slab_from_meminfo(meminfo: &str) -> Option<(u64, u64)> {
    let field = |name: &str| -> Option<u64> {
        let line = meminfo.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line[name.len()..].split_whitespace().next()?.parse().ok()?;
        Some(kib * 1024)
    };
    Some((field("Slab:")?, field("SUnreclaim:")?))
}

/// Parses the `TCP:` line of /proc/net/sockstat: its `mem` figure, in pages.
pub fn tcp_pages_from_sockstat(sockstat: &str) -> Option<u64> {
    let line = sockstat.lines().find(|l| l.starts_with("TCP:"))?;
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == "mem" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Reads the counters now.
pub fn read_counters() -> Option<KernelCounters> {
    let (slab, slab_unreclaimable) =
        slab_from_meminfo(&std::fs::read_to_string("/proc/meminfo").ok()?)?;
    let tcp_pages = tcp_pages_from_sockstat(&std::fs::read_to_string("/proc/net/sockstat").ok()?)?;
    let conntrack = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_count")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    Some(KernelCounters {
        slab,
        slab_unreclaimable,
        tcp_pages,
        conntrack,
    })
}

/// Per-pair cost in thousandths of a unit; a counter that went down counts as zero.
fn per_pair_milli(before: u64, after: u64, pairs: u64) -> u64 {
    after.saturating_sub(before) * 1000 / pairs.max(1)
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

/// One round's raw readings: before, with idle pairs open, with a message queued on each.
#[derive(Debug, Clone, Copy)]
pub struct Round {
    /// Before any pair was opened.
    pub before: KernelCounters,
    /// Every pair open, one byte exchanged each way, nothing queued.
    pub idle: KernelCounters,
    /// Every pair with one unread message in the server side's receive queue.
    pub queued: KernelCounters,
}

/// The per-pair cost from the rounds' readings (medians over rounds).
pub fn cost_from_rounds(rounds: &[Round], pairs: u64, elapsed: Duration) -> SocketCost {
    let each = |f: &dyn Fn(&Round) -> u64| median(rounds.iter().map(f).collect());
    let conntrack = rounds
        .iter()
        .map(|r| {
            Some(per_pair_milli(
                r.before.conntrack?,
                r.idle.conntrack?,
                pairs,
            ))
        })
        .collect::<Option<Vec<_>>>()
        .map(median);
    SocketCost {
        pairs,
        rounds: rounds.len(),
        slab_bytes_per_pair: each(&|r| per_pair_milli(r.before.slab, r.idle.slab, pairs)) / 1000,
        unreclaimable_bytes_per_pair: each(&|r| {
            per_pair_milli(
                r.before.slab_unreclaimable,
                r.idle.slab_unreclaimable,
                pairs,
            )
        }) / 1000,
        tcp_millipages_per_idle_pair: each(&|r| {
            per_pair_milli(r.before.tcp_pages, r.idle.tcp_pages, pairs)
        }),
        tcp_millipages_per_queued_pair: each(&|r| {
            per_pair_milli(r.before.tcp_pages, r.queued.tcp_pages, pairs)
        }),
        conntrack_millientries_per_pair: conntrack,
        elapsed_ms: elapsed.as_millis() as u64,
    }
}

/// Closes with a reset, so neither end lingers in TIME_WAIT (or in conntrack) after the probe.
pub(crate) fn close_at_once(stream: TcpStream) {
    let _ = tokio::net::TcpSocket::from_std_stream(stream).set_zero_linger();
}

/// Opens `pairs` loopback pairs, exchanges a byte on each and reads the counters; then queues
/// one unread message per pair and reads them again. Everything is closed on return.
fn one_round(pairs: u64, deadline: Instant) -> Result<Round, String> {
    use std::io::{Read, Write};
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let timeout = Some(Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(50));
    let before = read_counters().ok_or("cannot read /proc/meminfo or /proc/net/sockstat")?;
    let mut open: Vec<(TcpStream, TcpStream)> = Vec::with_capacity(pairs as usize);
    let result = (|| {
        for _ in 0..pairs {
            if Instant::now() > deadline {
                return Err(format!(
                    "gave up after {DEADLINE:?} with {} pairs open",
                    open.len()
                ));
            }
            let client = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            let (server, _) = listener.accept().map_err(|e| format!("accept: {e}"))?;
            for end in [&client, &server] {
                end.set_read_timeout(timeout).map_err(|e| e.to_string())?;
                end.set_write_timeout(timeout).map_err(|e| e.to_string())?;
            }
            open.push((client, server));
        }
        // One exchange each way, as an initialized session has had, then nothing left queued.
        let mut byte = [0u8; 1];
        for (client, server) in &mut open {
            client.write_all(b"i").map_err(|e| e.to_string())?;
            server.read_exact(&mut byte).map_err(|e| e.to_string())?;
            server.write_all(b"r").map_err(|e| e.to_string())?;
            client.read_exact(&mut byte).map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
        let idle = read_counters().ok_or("cannot read the counters")?;
        for (client, _) in &mut open {
            client
                .write_all(IN_FLIGHT_MESSAGE)
                .map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
        let queued = read_counters().ok_or("cannot read the counters")?;
        Ok(Round {
            before,
            idle,
            queued,
        })
    })();
    for (client, server) in open {
        close_at_once(client);
        close_at_once(server);
    }
    result
}

/// Measures what one loopback connection pair costs this kernel; bounded by [`PAIRS`] pairs
/// (fewer when the open-file limit is low), [`ROUNDS`] rounds and [`DEADLINE`].
pub fn measure(soft_nofile: Option<u64>) -> Result<SocketCost, String> {
    // Two descriptors per pair; leave the process room for everything else it has open.
    let pairs = soft_nofile
        .map_or(PAIRS, |soft| PAIRS.min(soft.saturating_sub(256) / 2))
        .max(1);
    if pairs < 100 {
        return Err(format!(
            "the soft open-file limit ({}) leaves room for too few pairs to measure",
            soft_nofile.unwrap_or(0)
        ));
    }
    let started = Instant::now();
    let deadline = started + DEADLINE;
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        rounds.push(one_round(pairs, deadline)?);
    }
    Ok(cost_from_rounds(&rounds, pairs, started.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slab_and_tcp_pages_from_proc_text() {
        let meminfo = "MemTotal:       24683568 kB\nSlab:             870436 kB\nSReclaimable:     774040 kB\nSUnreclaim:        96396 kB\n";
        assert_eq!(
            slab_from_meminfo(meminfo),
            Some((870436 * 1024, 96396 * 1024))
        );
        let sockstat =
            "sockets: used 37\nTCP: inuse 3 orphan 0 tw 0 alloc 3 mem 186\nUDP: inuse 0 mem 0\n";
        assert_eq!(tcp_pages_from_sockstat(sockstat), Some(186));
        assert_eq!(tcp_pages_from_sockstat("UDP: inuse 0 mem 0\n"), None);
    }

    #[test]
    fn the_cost_is_the_median_round_per_pair() {
        let counters = |slab: u64, tcp_pages: u64, conntrack: u64| KernelCounters {
            slab,
            slab_unreclaimable: slab / 2,
            tcp_pages,
            conntrack: Some(conntrack),
        };
        // Round two's slab jumped (another process allocating): the median ignores it.
        let rounds = [
            (0, 8_000_000, 10, 1000, 2000),
            (0, 90_000_000, 10, 1000, 2000),
            (0, 8_200_000, 12, 1100, 2000),
        ]
        .map(|(base, slab, pages, queued, tracked)| Round {
            before: counters(base, 10, 5),
            idle: counters(slab, pages, 5 + tracked),
            queued: counters(slab, queued, 5 + tracked),
        });
        let cost = cost_from_rounds(&rounds, 2000, Duration::from_millis(300));
        assert_eq!(cost.slab_bytes_per_pair, 4100);
        assert_eq!(cost.tcp_millipages_per_idle_pair, 0);
        assert_eq!(cost.tcp_millipages_per_queued_pair, 495);
        assert_eq!(cost.conntrack_millientries_per_pair, Some(1000));
    }
}
