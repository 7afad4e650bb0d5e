//! Placement: how many sessions each worker opens on each target, and from which source address.
//!
//! Pure planning, no I/O: sessions are spread over targets in proportion to capacity and
//! over workers so that no worker holds more than `sessions_per_worker` sockets.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Splits `total` into parts proportional to `weights` (largest remainder, exact sum).
pub fn proportional_split(total: u64, weights: &[u64]) -> Vec<u64> {
    let weight_sum: u64 = weights.iter().sum();
    if weights.is_empty() {
        return Vec::new();
    }
    if weight_sum == 0 {
        return proportional_split(total, &vec![1; weights.len()]);
    }
    let exact: Vec<(u64, u128)> = weights
        .iter()
        .map(|w| {
            let scaled = total as u128 * *w as u128;
            (
                (scaled / weight_sum as u128) as u64,
                scaled % weight_sum as u128,
            )
        })
        .collect();
    let mut parts: Vec<u64> = exact.iter().map(|(floor, _)| *floor).collect();
    let mut left = total - parts.iter().sum::<u64>();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by(|a, b| exact[*b].1.cmp(&exact[*a].1).then(a.cmp(b)));
    for index in by_remainder {
        if left == 0 {
            break;
        }
        parts[index] += 1;
        left -= 1;
    }
    parts
}

/// How many worker processes `connections` sessions need at `sessions_per_worker` each.
pub fn worker_count(connections: u64, sessions_per_worker: u64) -> u64 {
    connections.div_ceil(sessions_per_worker.max(1)).max(1)
}

/// Sessions per worker per target: `plan[worker][target]`.
pub fn plan_sessions(
    connections: u64,
    capacities: &[u64],
    sessions_per_worker: u64,
) -> Vec<Vec<u64>> {
    let per_target = proportional_split(connections, capacities);
    let workers = worker_count(connections, sessions_per_worker) as usize;
    let mut plan = vec![vec![0; capacities.len()]; workers];
    for (target, sessions) in per_target.iter().enumerate() {
        // Rotate which worker gets the remainder so workers stay within one session of each other.
        let mut split = proportional_split(*sessions, &vec![1; workers]);
        split.rotate_right(target % workers);
        for (worker, n) in split.into_iter().enumerate() {
            plan[worker][target] = n;
        }
    }
    plan
}

/// The order in which a worker's session slots open: targets interleaved, so a ramp
/// reaches every target from its first second.
pub fn slot_targets(sessions_per_target: &[u64]) -> Vec<usize> {
    let mut left = sessions_per_target.to_vec();
    let mut order = Vec::with_capacity(left.iter().sum::<u64>() as usize);
    while left.iter().any(|n| *n > 0) {
        for (target, n) in left.iter_mut().enumerate() {
            if *n > 0 {
                *n -= 1;
                order.push(target);
            }
        }
    }
    order
}

/// Source addresses per worker. `bind()` to port 0 draws from half the ~28,000 ephemeral ports
/// of an address, and a phase that just ended leaves its ports in TIME_WAIT; eight addresses
/// keep a worker's ~16,000 sessions far from that limit.
pub const SOURCES_PER_WORKER: u8 = 8;

/// Workers with address sets of their own: the third octet is `worker + 1`, capped at 255.
pub const MAX_SOURCE_WORKERS: u64 = 255;

/// Source addresses a worker binds its client sockets to when the target is on loopback.
///
/// Each source address has its own ~28,000 ephemeral ports (32768–60999), so spreading
/// over several keeps one destination reachable by far more sessions. Worker `w` uses
/// `127.block.(w+1).2 ..= 127.block.(w+1).(1+count)`, disjoint from every other worker.
///
/// `block` should differ between runs (and phases) that follow each other within a minute:
/// closed client sockets sit in TIME_WAIT for 60 s, and while an address has thousands of
/// them, each `bind(addr:0)` scans for a free port and takes about 1 ms (measured: 7,000
/// binds took 7.6 s on an address with ~7,500 TIME_WAIT sockets, 0.07 s on a fresh one),
/// long enough to stall a worker's single thread.
pub fn loopback_sources(block: u8, worker: u32, count: u8) -> Vec<IpAddr> {
    let third = u8::try_from(worker + 1).unwrap_or(u8::MAX);
    (0..count.max(1))
        .map(|i| IpAddr::V4(Ipv4Addr::new(127, block, third, 2 + i)))
        .collect()
}

/// A source-address block for this process and phase, different from recent runs' blocks
/// (see [`loopback_sources`]); never 0, which holds 127.0.0.1.
pub fn source_block(process_id: u32, phase: u32) -> u8 {
    1 + ((process_id
        .wrapping_mul(7)
        .wrapping_add(phase.wrapping_mul(101)))
        % 254) as u8
}

/// The source address for slot `slot` towards `target`, if the session should bind one.
pub fn source_for(target: SocketAddr, sources: &[IpAddr], slot: usize) -> Option<IpAddr> {
    match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && !sources.is_empty() => {
            Some(sources[slot % sources.len()])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_split_is_exact_and_proportional() {
        // (total, weights, expected)
        let cases: [(u64, &[u64], &[u64]); 5] = [
            (10, &[1, 1], &[5, 5]),
            (10, &[3, 1], &[8, 2]),
            (7, &[1, 1, 1], &[3, 2, 2]),
            (5, &[0, 0], &[3, 2]),
            (100_000, &[60_000, 60_000], &[50_000, 50_000]),
        ];
        for (total, weights, expected) in cases {
            assert_eq!(
                proportional_split(total, weights),
                expected,
                "{total} over {weights:?}"
            );
        }
    }

    #[test]
    fn plan_respects_the_per_worker_cap() {
        // (connections, capacities, per worker, workers)
        let cases: [(u64, &[u64], u64, usize); 3] = [
            (100, &[10, 10], 16_000, 1),
            (100_000, &[60_000, 60_000], 16_000, 7),
            (30_000, &[1, 1], 16_000, 2),
        ];
        for (connections, capacities, per_worker, workers) in cases {
            let plan = plan_sessions(connections, capacities, per_worker);
            assert_eq!(plan.len(), workers);
            assert_eq!(plan.iter().flatten().sum::<u64>(), connections);
            assert!(plan.iter().all(|w| w.iter().sum::<u64>() <= per_worker));
        }
    }

    #[test]
    fn slots_interleave_targets() {
        assert_eq!(slot_targets(&[3, 1]), vec![0, 1, 0, 0]);
    }

    #[test]
    fn sources_only_for_loopback_targets() {
        let sources = loopback_sources(1, 0, 2);
        let local: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let remote: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(
            source_for(local, &sources, 3),
            Some("127.1.1.3".parse().unwrap())
        );
        assert_eq!(source_for(remote, &sources, 3), None);
        assert_ne!(loopback_sources(1, 1, 1), loopback_sources(1, 0, 1));
        for pid in [0, 1, 253, 254, 4_000_000] {
            assert_ne!(source_block(pid, 0), 0);
            assert_ne!(source_block(pid, 0), source_block(pid, 1));
        }
    }
}
