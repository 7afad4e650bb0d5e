//! Membership at 63 nodes, simulated: the member table, the reply and the fan-out the heartbeat
//! loop uses, stepped through simulated milliseconds with no sockets and no wall clock. Each
//! node ticks once a simulated second at its own phase; an exchange reaches the target 2 ms
//! after it is sent and the reply is folded 5 ms after. Deterministic (fixed seeds).
//! Run with `--nocapture` to see the measured simulated times.

use std::collections::HashMap;
use std::time::Duration;

use erlmcp_node::config::Role;
use erlmcp_node::fanout::{self, MAX_TARGETS, SplitMix64};
use erlmcp_node::membership::{Liveness, MemberRecord, MemberTable};
use tokio::time::Instant;

const NODES: usize = 63;
const INTERVAL_MS: u64 = 1000;
const DEAD_AFTER: Duration = Duration::from_secs(3);
const SEED: &str = "127.0.0.1:40000";

struct SimNode {
    record: MemberRecord,
    table: MemberTable,
    random: SplitMix64,
    phase_ms: u64,
    up: bool,
    sent_ms: u64,
}

struct Cluster {
    base: Instant,
    nodes: Vec<SimNode>,
    by_api: HashMap<String, usize>,
    seeds: Vec<String>,
    /// Most heartbeats one node sent in one round, and most it received in one second.
    most_sent: usize,
    received_this_second: Vec<usize>,
    most_received: usize,
    most_received_by_a_non_seed: usize,
}

fn record(i: usize, incarnation: u64) -> MemberRecord {
    MemberRecord {
        name: format!("node{}", i + 1),
        role: if i == 0 {
            Role::Coordinator
        } else {
            Role::Worker
        },
        api: format!("127.0.0.1:{}", 40000 + i),
        listener: format!("127.0.0.1:{}", 40100 + i),
        capacity: 16000,
        load: 0,
        incarnation,
    }
}

impl Cluster {
    fn new() -> Self {
        let mut phases = SplitMix64::new(99);
        let nodes: Vec<SimNode> = (0..NODES)
            .map(|i| SimNode {
                record: record(i, 1),
                table: MemberTable::new(format!("node{}", i + 1)),
                random: SplitMix64::new(i as u64),
                phase_ms: phases.below(INTERVAL_MS as usize) as u64,
                up: true,
                sent_ms: 0,
            })
            .collect();
        let by_api = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.record.api.clone(), i))
            .collect();
        Cluster {
            base: Instant::now(),
            nodes,
            by_api,
            seeds: vec![SEED.to_string()],
            most_sent: 0,
            received_this_second: vec![0; NODES],
            most_received: 0,
            most_received_by_a_non_seed: 0,
        }
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    /// Node `i`'s heartbeat round at `ms`, exactly as `heartbeat::beat_once` does it.
    fn tick(&mut self, i: usize, ms: u64) {
        let sent_at = self.at(ms);
        let node = &mut self.nodes[i];
        let candidates = node.table.fanout_candidates(sent_at, DEAD_AFTER);
        let targets = fanout::choose(&self.seeds, &node.record.api, &candidates, &mut node.random);
        node.table.tried(&targets, sent_at);
        let sender = node.record.clone();
        self.most_sent = self.most_sent.max(targets.len());
        for address in targets {
            let j = self.by_api[&address];
            self.nodes[i].sent_ms += 1;
            let sent_ms = ms * 1000 + self.nodes[i].sent_ms % 1000;
            if !self.nodes[j].up {
                continue;
            }
            self.received_this_second[j] += 1;
            let target = &mut self.nodes[j];
            let arrived = sent_at + Duration::from_millis(2);
            let heard = target
                .table
                .heard_heartbeat(sender.clone(), sent_ms, arrived);
            assert_eq!(heard, Ok(true));
            let reply = target
                .table
                .reply_records(target.record.clone(), arrived, DEAD_AFTER);
            let replier = target.record.name.clone();
            let folded = sent_at + Duration::from_millis(5);
            self.nodes[i]
                .table
                .fold_reply(&replier, reply, sent_at, folded);
        }
    }

    /// Runs every node's ticks in `from..to` ms, calling `check` every 10 ms.
    fn run(&mut self, from: u64, to: u64, mut check: impl FnMut(&Cluster, u64)) {
        for ms in from..to {
            if ms % 1000 == 0 {
                for (j, count) in self.received_this_second.iter_mut().enumerate() {
                    self.most_received = self.most_received.max(*count);
                    if j != 0 {
                        self.most_received_by_a_non_seed =
                            self.most_received_by_a_non_seed.max(*count);
                    }
                    *count = 0;
                }
            }
            for i in 0..NODES {
                if self.nodes[i].up && ms % INTERVAL_MS == self.nodes[i].phase_ms {
                    self.tick(i, ms);
                }
            }
            if ms % 10 == 0 {
                check(self, ms);
            }
        }
    }

    /// Node `i`'s view of node `victim`: None while it does not list it.
    fn state_of(&self, i: usize, victim: usize, ms: u64) -> Option<Liveness> {
        let name = &self.nodes[victim].record.name;
        self.nodes[i]
            .table
            .members(self.at(ms), DEAD_AFTER)
            .into_iter()
            .find(|m| &m.name == name)
            .map(|m| m.state)
    }

    /// True when every up node lists every other up node alive.
    fn converged(&self, ms: u64) -> bool {
        let now = self.at(ms);
        let up = self.nodes.iter().filter(|n| n.up).count();
        self.nodes.iter().filter(|n| n.up).all(|n| {
            n.table
                .members(now, DEAD_AFTER)
                .iter()
                .filter(|m| m.state == Liveness::Alive)
                .count()
                == up - 1
        })
    }
}

#[test]
fn sixty_three_nodes_converge_detect_a_kill_within_five_seconds_and_send_a_bounded_fanout() {
    let mut cluster = Cluster::new();

    // All 63 start at once, knowing only the seed.
    let mut converged_at = None;
    cluster.run(0, 30_000, |cluster, ms| {
        if converged_at.is_none() && cluster.converged(ms) {
            converged_at = Some(ms);
        }
    });
    let converged_at = converged_at.expect("the 63 nodes did not converge within 30 s");
    println!("converged: every node lists all 63 alive {converged_at} ms (simulated) after start");

    // Steady state: nobody alive is ever listed dead.
    cluster.most_received = 0;
    cluster.most_received_by_a_non_seed = 0;
    cluster.run(30_000, 60_000, |cluster, ms| {
        assert!(
            cluster.converged(ms),
            "a live member was listed dead at {ms} ms"
        );
    });
    println!(
        "steady state: at most {} heartbeats sent by a node in one round; at most {} received \
         in one second by the seed, {} by any other node",
        cluster.most_sent, cluster.most_received, cluster.most_received_by_a_non_seed
    );
    assert!(cluster.most_sent <= MAX_TARGETS + cluster.seeds.len());

    // SIGKILL one worker: it neither ticks nor answers from now on.
    let victim = 40;
    let killed_at = 60_000;
    cluster.nodes[victim].up = false;
    let mut dead_at: Vec<Option<u64>> = vec![None; NODES];
    cluster.run(killed_at, 75_000, |cluster, ms| {
        for (i, seen) in dead_at.iter_mut().enumerate() {
            if i == victim {
                continue;
            }
            match (cluster.state_of(i, victim, ms), *seen) {
                (Some(Liveness::Dead), None) => *seen = Some(ms),
                (Some(Liveness::Alive), Some(first)) => {
                    panic!(
                        "node{} resurrected the victim at {ms} ms (dead at {first})",
                        i + 1
                    )
                }
                _ => {}
            }
        }
    });
    let detections: Vec<u64> = dead_at
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != victim)
        .map(|(i, seen)| seen.unwrap_or_else(|| panic!("node{} never listed it dead", i + 1)))
        .map(|ms| ms - killed_at)
        .collect();
    let (first, last) = (
        *detections.iter().min().unwrap(),
        *detections.iter().max().unwrap(),
    );
    println!(
        "killed node{}: first listed dead after {first} ms, dead everywhere after {last} ms (simulated)",
        victim + 1
    );
    assert!(last <= 5_000, "dead everywhere only after {last} ms");
    assert!(
        first >= DEAD_AFTER.as_millis() as u64 - INTERVAL_MS,
        "listed dead too early: {first} ms"
    );

    // Restarted (a new incarnation at the same address): alive everywhere again.
    cluster.nodes[victim].record.incarnation = 2;
    cluster.nodes[victim].table = MemberTable::new(cluster.nodes[victim].record.name.clone());
    cluster.nodes[victim].up = true;
    let restarted_at = 75_000;
    let mut back_at = None;
    cluster.run(restarted_at, 105_000, |cluster, ms| {
        if back_at.is_none() && cluster.converged(ms) {
            back_at = Some(ms);
        }
    });
    let back_at = back_at.expect("the restarted node did not rejoin within 30 s");
    println!(
        "restarted: every node lists all 63 alive {} ms (simulated) after the restart",
        back_at - restarted_at
    );
    assert!(cluster.most_sent <= MAX_TARGETS + cluster.seeds.len());
}
