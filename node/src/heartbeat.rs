//! The heartbeat loop: every `heartbeat_interval` the node POSTs its record to every seed and
//! every member it knows (all at once, each bounded), and folds the replies into its table.
//! A reply is direct contact with the node that sent it; the member list in it is second-hand.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

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
    loop {
        tokio::select! {
            biased;
            _ = stopped.wait_for(|stop| *stop) => return,
            _ = async {
                ticker.tick().await;
                beat_once(&node).await;
            } => {
                log_changes(&node, &mut last_states);
                forget_past_members(&node, &mut last_states);
            }
        }
    }
}

/// One round: a heartbeat to every target, concurrently, each bounded by the exchange timeout.
pub async fn beat_once(node: &Node) {
    let record = node.as_record();
    let timeout = node.config.heartbeat_interval.min(MAX_EXCHANGE);
    let exchanges = targets(node).into_iter().map(|address| {
        let record = &record;
        async move {
            let reply = node
                .peers
                .heartbeat(&address, record, &node.config.membership, timeout)
                .await;
            (address, reply)
        }
    });
    for (address, reply) in join_all(exchanges).await {
        match reply {
            Ok(reply) => fold_reply(node, reply),
            Err(error) => {
                tracing::debug!(%address, error = %format!("{error:#}"), "heartbeat failed")
            }
        }
    }
}

/// Seeds and known members' API addresses, without this node's own.
fn targets(node: &Node) -> BTreeSet<String> {
    let own = node.as_record().api;
    let known = node
        .member_table
        .lock()
        .expect("member table lock")
        .addresses();
    node.config
        .seeds
        .iter()
        .cloned()
        .chain(known)
        .filter(|address| *address != own)
        .collect()
}

/// The replier's own record is direct contact; the rest of its list is addresses to try.
fn fold_reply(node: &Node, reply: HeartbeatReply) {
    let now = Instant::now();
    let mut table = node.member_table.lock().expect("member table lock");
    let (own, others): (Vec<_>, Vec<_>) = reply
        .members
        .into_iter()
        .partition(|record| record.name == reply.node);
    for record in own {
        table.heard_directly(record, now);
    }
    table.learn(others, now);
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
    use crate::membership::MemberRecord;
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
        fold_reply(
            &node,
            HeartbeatReply {
                node: "seed".into(),
                members: vec![
                    record("seed", "seed:8080"),
                    record("other", "other:8080"),
                    record("me", "127.0.0.1:8080"),
                ],
            },
        );
        let names: Vec<String> = node.members().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["me", "seed"]); // `other` is only an address to try
        assert_eq!(
            targets(&node).into_iter().collect::<Vec<_>>(),
            ["other:8080", "seed:8080"]
        );
    }

    #[test]
    fn targets_are_seeds_and_known_members_but_never_the_node_itself() {
        let node = node(&["127.0.0.1:8080", "seed:8080"]);
        node.member_table.lock().unwrap().learn(
            [record("w1", "w1:8080"), record("w2", "seed:8080")],
            Instant::now(),
        );
        assert_eq!(
            targets(&node).into_iter().collect::<Vec<_>>(),
            ["seed:8080", "w1:8080"]
        );
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
        assert!(targets(&node).is_empty());
        stop.send(true).unwrap();
        running.await.unwrap();
    }
}
