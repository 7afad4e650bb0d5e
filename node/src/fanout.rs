//! Who a node heartbeats in one round: every seed plus a bounded, partly random choice of
//! members, so a cluster's heartbeats grow with N·(MAX_TARGETS + seeds), not N·(N−1).
//!
//! Liveness does not need every member heard directly: replies carry dated second-hand word
//! (see [`crate::membership`]), so contacting a few members a round keeps every view fresh.
//! The choice is pure: the caller hands in the candidates and a random source.

use tokio::time::Instant;

/// Live members picked at random each round: word of everyone spreads through them.
pub const RANDOM_LIVE: usize = 3;
/// Live members heard from directly least recently: every live member is contacted directly
/// at least once every ⌈live / LEAST_RECENT⌉ rounds, whatever the random picks were.
pub const LEAST_RECENT: usize = 2;
/// Dead members probed each round, so a member that returns at its address is found again.
pub const DEAD_PROBES: usize = 1;
/// Addresses learned second-hand and not yet heard from, tried each round (never tried first).
pub const UNTRIED: usize = 2;
/// Most targets in one round besides the seeds (8); every seed is contacted every round on top.
pub const MAX_TARGETS: usize = RANDOM_LIVE + LEAST_RECENT + DEAD_PROBES + UNTRIED;

/// A live member: where to reach it and when this node last heard it directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePeer {
    /// Its API address.
    pub api: String,
    /// Last direct contact (its heartbeat or its reply); None when only word of it came in
    /// (such members sort first among the least recent).
    pub last_direct: Option<Instant>,
}

/// An address learned second-hand: where, and when this node last tried it (None: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedPeer {
    /// Its API address.
    pub api: String,
    /// Last heartbeat sent there.
    pub last_tried: Option<Instant>,
}

/// What the member table offers for one round.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    /// Members alive now.
    pub live: Vec<LivePeer>,
    /// API addresses of members dead now (still listed).
    pub dead: Vec<String>,
    /// Addresses learned second-hand, never heard from at them.
    pub learned: Vec<LearnedPeer>,
}

/// This round's targets: every seed, then at most [`MAX_TARGETS`] others, never `own`, each
/// address once.
pub fn choose(
    seeds: &[String],
    own: &str,
    candidates: &Candidates,
    random: &mut SplitMix64,
) -> Vec<String> {
    let mut targets: Vec<String> = Vec::with_capacity(seeds.len() + MAX_TARGETS);
    let mut add = |targets: &mut Vec<String>, address: &str| {
        let new = address != own && !targets.iter().any(|t| t == address);
        if new {
            targets.push(address.to_string());
        }
        new
    };
    for seed in seeds {
        add(&mut targets, seed);
    }

    // Shuffled first so that ties (everyone heard at the same instant) break at random.
    let mut live: Vec<&LivePeer> = candidates.live.iter().collect();
    random.shuffle(&mut live);
    live.sort_by_key(|peer| peer.last_direct);
    let mut taken = 0;
    let mut rest = Vec::with_capacity(live.len());
    for peer in live {
        if taken < LEAST_RECENT && add(&mut targets, &peer.api) {
            taken += 1;
        } else {
            rest.push(peer.api.as_str());
        }
    }
    pick_random(&mut targets, rest, RANDOM_LIVE, random, &mut add);
    let dead = candidates.dead.iter().map(String::as_str).collect();
    pick_random(&mut targets, dead, DEAD_PROBES, random, &mut add);

    let mut learned: Vec<&LearnedPeer> = candidates.learned.iter().collect();
    random.shuffle(&mut learned);
    // None sorts before Some: never-tried addresses first, then the longest untried.
    learned.sort_by_key(|peer| peer.last_tried);
    let mut taken = 0;
    for peer in learned {
        if taken == UNTRIED {
            break;
        }
        if add(&mut targets, &peer.api) {
            taken += 1;
        }
    }
    targets
}

/// Adds up to `count` of `pool` at random (those `add` refuses do not count).
fn pick_random(
    targets: &mut Vec<String>,
    mut pool: Vec<&str>,
    count: usize,
    random: &mut SplitMix64,
    add: &mut impl FnMut(&mut Vec<String>, &str) -> bool,
) {
    random.shuffle(&mut pool);
    let mut taken = 0;
    for address in pool {
        if taken == count {
            break;
        }
        if add(targets, address) {
            taken += 1;
        }
    }
}

/// SplitMix64: a small, fast, seedable generator. Not cryptographic: it only spreads
/// heartbeats, and a member that knows the choice gains nothing (every target is
/// authenticated either way).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator started at `seed` (the same seed gives the same sequence).
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0); the modulo bias is negligible for table-sized `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher–Yates in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    fn live(n: usize, start: Instant) -> Vec<LivePeer> {
        (0..n)
            .map(|i| LivePeer {
                api: format!("live{i}:8080"),
                last_direct: Some(start + Duration::from_millis(i as u64)),
            })
            .collect()
    }

    fn seeds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_round_is_every_seed_and_at_most_max_targets_others_each_once() {
        let start = Instant::now();
        let candidates = Candidates {
            live: live(62, start),
            dead: (0..10).map(|i| format!("dead{i}:8080")).collect(),
            learned: (0..10)
                .map(|i| LearnedPeer {
                    api: format!("learned{i}:8080"),
                    last_tried: None,
                })
                .collect(),
        };
        let seeds = seeds(&["seed1:8080", "seed2:8080", "me:8080"]);
        let mut random = SplitMix64::new(7);
        for _ in 0..200 {
            let targets = choose(&seeds, "me:8080", &candidates, &mut random);
            let unique: BTreeSet<&String> = targets.iter().collect();
            assert_eq!(unique.len(), targets.len(), "{targets:?}");
            assert_eq!(targets[..2], seeds[..2]);
            assert!(!targets.iter().any(|t| t == "me:8080"));
            assert_eq!(targets.len(), 2 + MAX_TARGETS, "{targets:?}");
            let count = |prefix: &str| targets.iter().filter(|t| t.starts_with(prefix)).count();
            assert_eq!(count("live"), RANDOM_LIVE + LEAST_RECENT);
            assert_eq!(count("dead"), DEAD_PROBES);
            assert_eq!(count("learned"), UNTRIED);
            // The two heard from least recently are always in.
            assert!(targets.contains(&"live0:8080".to_string()));
            assert!(targets.contains(&"live1:8080".to_string()));
        }
    }

    #[test]
    fn a_small_cluster_is_contacted_whole() {
        let start = Instant::now();
        let candidates = Candidates {
            live: live(4, start),
            dead: vec!["dead0:8080".into()],
            learned: vec![],
        };
        let mut targets = choose(&[], "me", &candidates, &mut SplitMix64::new(1));
        targets.sort();
        assert_eq!(
            targets,
            [
                "dead0:8080",
                "live0:8080",
                "live1:8080",
                "live2:8080",
                "live3:8080"
            ]
        );
    }

    #[test]
    fn a_seed_that_is_also_a_member_counts_once_and_not_against_the_bound() {
        let start = Instant::now();
        let candidates = Candidates {
            live: live(20, start),
            ..Candidates::default()
        };
        let seeds = seeds(&["live0:8080"]);
        let targets = choose(&seeds, "me", &candidates, &mut SplitMix64::new(3));
        assert_eq!(targets[0], "live0:8080");
        assert_eq!(targets.len(), 1 + RANDOM_LIVE + LEAST_RECENT);
        // live0 was the least recent; the next two least recent take its place.
        assert!(targets.contains(&"live1:8080".to_string()));
        assert!(targets.contains(&"live2:8080".to_string()));
    }

    #[test]
    fn every_dead_member_is_probed_within_a_bounded_number_of_rounds() {
        let candidates = Candidates {
            live: vec![],
            dead: (0..5).map(|i| format!("dead{i}:8080")).collect(),
            learned: vec![],
        };
        let mut random = SplitMix64::new(11);
        let mut probed = BTreeSet::new();
        for _ in 0..100 {
            let targets = choose(&[], "me", &candidates, &mut random);
            assert_eq!(targets.len(), DEAD_PROBES);
            probed.extend(targets);
        }
        assert_eq!(probed.len(), 5);
    }

    #[test]
    fn never_tried_addresses_go_first_then_the_longest_untried() {
        let start = Instant::now();
        let tried = |i: usize, at: Option<u64>| LearnedPeer {
            api: format!("l{i}:8080"),
            last_tried: at.map(|ms| start + Duration::from_millis(ms)),
        };
        let candidates = Candidates {
            live: vec![],
            dead: vec![],
            learned: vec![
                tried(0, Some(5)),
                tried(1, None),
                tried(2, Some(1)),
                tried(3, Some(9)),
            ],
        };
        let targets = choose(&[], "me", &candidates, &mut SplitMix64::new(5));
        assert_eq!(targets, ["l1:8080", "l2:8080"]);
    }

    #[test]
    fn the_generator_is_deterministic_and_in_range() {
        let mut a = SplitMix64::new(42);
        let mut b = SplitMix64::new(42);
        for n in 1..500 {
            let x = a.below(n);
            assert_eq!(x, b.below(n));
            assert!(x < n);
        }
    }
}
