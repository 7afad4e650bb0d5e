//! The heartbeat loop: every `heartbeat_interval` the node POSTs its record to every seed and a
//! bounded fan-out of members ([`crate::fanout`]), all at once, each bounded, and folds the
//! replies into its table. A reply is direct contact with the node that sent it; the member
//! list in it is dated second-hand word.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::fanout::{self, SplitMix64};
use crate::membership::Liveness;
use crate::peer::HeartbeatReply;
use crate::state::Node;

/// A heartbeat exchange never takes longer than this, nor longer than one interval.
const MAX_EXCHANGE: Duration = Duration::from_millis(500);

/// Heartbeats until `stopped` turns true (or its sender goes away). With membership disabled
/// (no secret and no opt-in) there is nothing to send and it only waits.
pub async fn run(node: Node, mut stopped: watch::Receiver<bool>) {
    if !node.config.membership.is_enabled() {
        let _ = stopped.wait_for(|stop| *stop).await;
        return;
    }
    let mut ticker = tokio::time::interval(node.config.heartbeat_interval);
    // A slow round delays the next one instead of bunching rounds up.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_states = BTreeMap::new();
    let mut random = random_for(&node);
    loop {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = async {
                ticker.tick().await;
                beat_once(&node, &mut random).await;
            } => {
                log_changes(&node, &mut last_states);
                forget_past_members(&node, &mut last_states);
            }
        }
    }
}

/// Nodes started together pick different targets: the seed mixes the name and the start time.
fn random_for(node: &Node) -> SplitMix64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node.config.node_name.hash(&mut hasher);
    SplitMix64::new(hasher.finish() ^ node.incarnation)
}

/// One round: a heartbeat to each of this round's targets, concurrently, each bounded by the
/// exchange timeout.
pub async fn beat_once(node: &Node, random: &mut SplitMix64) {
    let record = node.as_record();
    let timeout = node.config.heartbeat_interval.min(MAX_EXCHANGE);
    let sent_at = Instant::now();
    let exchanges = targets(node, random).into_iter().map(|address| {
        let record = &record;
        async move {
            let reply = node
                .peers
                .heartbeat(&address, record, &node.config.membership, timeout)
                .await;
            // Folded on arrival, not after the slowest exchange: direct contact is dated when
            // the reply came, which keeps detection within dead_after of the last contact.
            match reply {
                Ok(reply) => fold_reply(node, reply, sent_at),
                Err(error) => {
                    tracing::debug!(%address, error = %format!("{error:#}"), "heartbeat failed")
                }
            }
        }
    });
    join_all(exchanges).await;
}

/// Every seed and a bounded fan-out of members, without this node's own address; learned
/// addresses among them are marked tried.
fn targets(node: &Node, random: &mut SplitMix64) -> Vec<String> {
    let own = node.as_record().api;
    let now = Instant::now();
    let mut table = node.member_table.lock().expect("member table lock");
    let candidates = table.fanout_candidates(now, node.config.dead_after);
    let targets = fanout::choose(&node.config.seeds, &own, &candidates, random);
    table.tried(&targets, now);
    targets
}

/// The replier's own record is direct contact; the rest of its list is word dated from
/// `sent_at`, when this node sent the request.
fn fold_reply(node: &Node, reply: HeartbeatReply, sent_at: Instant) {
    let now = Instant::now();
    let mut table = node.member_table.lock().expect("member table lock");
    table.fold_reply(&reply.node, reply.members, sent_at, now);
}

/// Drops members silent for `forget_dead_after`, so the table holds current members only.
fn forget_past_members(node: &Node, last_states: &mut BTreeMap<String, Liveness>) {
    let forgotten = node
        .member_table
        .lock()
        .expect("member table lock")
        .forget(Instant::now(), node.config.forget_dead_after);
    for name in forgotten {
        last_states.remove(&name);
        tracing::info!(member = %name, after = ?node.config.forget_dead_after, "member forgotten");
    }
}

/// Logs each member that turned alive or dead since the last round.
fn log_changes(node: &Node, last_states: &mut BTreeMap<String, Liveness>) {
    for member in node.members() {
        let before = last_states.insert(member.name.clone(), member.state);
        if before != Some(member.state) {
            match member.state {
                Liveness::Alive => {
                    tracing::info!(member = %member.name, api = %member.api, "member alive")
                }
                Liveness::Dead => tracing::warn!(
                    member = %member.name,
                    silent_ms = member.last_heard_ms_ago,
                    "member dead"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{NodeConfig, Role};
    use crate::membership::{DatedRecord, MemberRecord};
    use crate::state::NodeState;

    fn record(name: &str, api: &str) -> MemberRecord {
        MemberRecord {
            name: name.into(),
            role: Role::Worker,
            api: api.into(),
            listener: format!("{name}:9100"),
            capacity: 10,
            load: 0,
            incarnation: 1,
        }
    }

    fn sorted_targets(node: &Node) -> Vec<String> {
        let mut targets = targets(node, &mut SplitMix64::new(1));
        targets.sort();
        targets
    }

    fn node(seeds: &[&str]) -> Node {
        let mut config = NodeConfig::for_tests();
        config.node_name = "me".into();
        config.api_port = 8080;
        config.seeds = seeds.iter().map(|s| s.to_string()).collect();
        NodeState::new(config)
    }

    #[test]
    fn a_reply_is_direct_contact_with_its_sender_only() {
        let node = node(&[]);
        let undated = |record| DatedRecord {
            record,
            heard_ms_ago: None,
        };
        fold_reply(
            &node,
            HeartbeatReply {
                node: "seed".into(),
                members: vec![
                    undated(record("seed", "seed:8080")),
                    undated(record("other", "other:8080")),
                    undated(record("me", "127.0.0.1:8080")),
                ],
            },
            Instant::now(),
        );
        let names: Vec<String> = node.members().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["me", "seed"]); // `other` is only an address to try
        assert_eq!(sorted_targets(&node), ["other:8080", "seed:8080"]);
    }

    #[test]
    fn targets_are_seeds_and_known_members_but_never_the_node_itself() {
        let node = node(&["127.0.0.1:8080", "seed:8080"]);
        node.member_table.lock().unwrap().learn(
            [record("w1", "w1:8080"), record("w2", "seed:8080")],
            Instant::now(),
        );
        assert_eq!(sorted_targets(&node), ["seed:8080", "w1:8080"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_stops_when_told() {
        let node = node(&[]);
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(run(node, stopped));
        tokio::time::sleep(Duration::from_secs(5)).await; // five rounds with nobody to reach
        assert!(!running.is_finished());
        stop.send(true).unwrap();
        running.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_forgets_members_dead_for_the_forget_time() {
        let mut config = NodeConfig::for_tests();
        config.node_name = "me".into();
        config.forget_dead_after = Duration::from_secs(20);
        let node = NodeState::new(config);
        // Nobody listens at 127.0.0.1:1, so the member never answers again.
        node.member_table
            .lock()
            .unwrap()
            .heard_directly(record("gone", "127.0.0.1:1"), Instant::now());
        let (stop, stopped) = watch::channel(false);
        let running = tokio::spawn(run(node.clone(), stopped));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let names =
            |node: &Node| -> Vec<String> { node.members().into_iter().map(|m| m.name).collect() };
        assert_eq!(names(&node), ["gone", "me"]); // dead, still listed
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert_eq!(names(&node), ["me"]);
        assert!(sorted_targets(&node).is_empty());
        stop.send(true).unwrap();
        running.await.unwrap();
    }
}
