//! The member table: what this node heard from each other member, and who is alive.
//!
//! A member is alive while the freshest word of it is younger than `dead_after`: this node's
//! direct contact (its heartbeat, or its reply to ours), or dated second-hand word from replies
//! ("the replier's freshest word of this member is `heard_ms_ago` old"), so a node lists the
//! whole cluster from a few replies without contacting everyone. Word only ages as it travels:
//! the receiver dates it from when it *sent* its request, never later, and passes on at most
//! the freshness it holds, so no claim about a stopped member is ever fresher than that
//! member's last real contact, and a stopped member is dead everywhere within `dead_after`
//! (plus one exchange) of stopping.
//! Undated records (replies from older nodes) are only addresses to try. Every function takes
//! `now`, so liveness is tested with explicit timestamps.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::config::Role;
use crate::fanout::{Candidates, LearnedPeer, LivePeer};

/// A member as it describes itself in heartbeats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Node name, unique in the cluster.
    pub name: String,
    /// `coordinator` or `worker`.
    pub role: Role,
    /// `host:port` of its API (heartbeats, `/mcp`).
    pub api: String,
    /// `host:port` of its MCP-over-TCP listener.
    pub listener: String,
    /// Session capacity.
    pub capacity: usize,
    /// Open sessions when it sent the record.
    pub load: usize,
    /// Its start time in ms since the Unix epoch: a restarted node has a higher one.
    pub incarnation: u64,
}

/// Longest member name: names travel in session ids (`<name>~<id>`) and log lines.
pub const MAX_NAME_BYTES: usize = 64;

impl MemberRecord {
    /// Refuses a record the node must never act on: a name that is not `[A-Za-z0-9._-]{1,64}`,
    /// or an `api`/`listener` that is not exactly `host:port` (the proxy builds URLs from it,
    /// so a path, query, userinfo or whitespace would let a member steer requests).
    pub fn check(&self) -> Result<(), String> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_NAME_BYTES
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !name_ok {
            return Err(format!(
                "member name {:?} is not 1 to {MAX_NAME_BYTES} of A-Z a-z 0-9 . _ -",
                self.name
            ));
        }
        for (field, value) in [("api", &self.api), ("listener", &self.listener)] {
            if !is_host_port(value) {
                return Err(format!(
                    "{field} {value:?} is not host:port (a DNS name or IP address and a port)"
                ));
            }
        }
        Ok(())
    }
}

/// True when `text` is `host:port` and nothing else: an IPv4 address or DNS name (labels of
/// 1 to 63 letters, digits, `-` or `_`, not starting or ending with `-`; 253 bytes at most) or
/// a bracketed IPv6 address, a colon, and a port from 1 to 65535 in digits.
pub fn is_host_port(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let port_ok = (1..=5).contains(&port.len())
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p != 0);
    if !port_ok {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    is_dns_name_or_ipv4(host)
}

fn is_dns_name_or_ipv4(host: &str) -> bool {
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return true;
    }
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    (1..=253).contains(&host.len()) && host.split('.').all(label_ok)
}

/// Whether a member was heard from directly within `dead_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// Heard from within `dead_after`.
    Alive,
    /// Silent for longer than `dead_after`; kept listed so operators see it.
    Dead,
}

/// What the node reports about one member (itself included) in `/cluster` and `cluster_status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// `coordinator` or `worker`.
    pub role: Role,
    /// `alive` or `dead`.
    pub state: Liveness,
    /// Where clients reach its API.
    pub api: String,
    /// Where clients reach its MCP-over-TCP listener.
    pub listener: String,
    /// Session capacity.
    pub capacity: usize,
    /// Open sessions, as of its last heartbeat (live for the node itself).
    pub load: usize,
    /// Milliseconds since the freshest word of it: this node's direct contact, or a peer's dated
    /// word (0 for the node itself).
    pub last_heard_ms_ago: u64,
}

impl Member {
    /// A member as last heard, with its liveness at the time of asking.
    pub fn from_record(record: &MemberRecord, state: Liveness, last_heard_ago: Duration) -> Self {
        Member {
            name: record.name.clone(),
            role: record.role,
            state,
            api: record.api.clone(),
            listener: record.listener.clone(),
            capacity: record.capacity,
            load: record.load,
            last_heard_ms_ago: u64::try_from(last_heard_ago.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

/// Members beyond this many (heard plus learned) are ignored: a member with the secret (or,
/// with open membership, anyone) must not grow the table without bound.
pub const MAX_MEMBERS: usize = 1024;

/// Most records in one heartbeat reply: the replier's own and its 63 freshest live members
/// (a 63-node cluster fits whole; ~200 bytes a record keeps a reply near 13 KB). Records past
/// this many in a received reply are ignored.
pub const MAX_REPLY_MEMBERS: usize = 64;

/// Dated word older than this is only an address: replies list live members only, so a
/// genuine age is below `dead_after`; the bound keeps a hostile age from mattering.
pub const MAX_WORD_AGE: Duration = Duration::from_secs(60);

/// A record as a heartbeat reply lists it: the member's record and how old the replier's
/// freshest word of it is. `heard_ms_ago` is absent in replies from nodes before dated word
/// (their records are then addresses only) and on the replier's own record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatedRecord {
    /// The member's record, fields inline (so older nodes read the list as plain records).
    #[serde(flatten)]
    pub record: MemberRecord,
    /// Milliseconds between the replier's freshest word of the member and the reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heard_ms_ago: Option<u64>,
}

struct Heard {
    record: MemberRecord,
    /// This node's last direct contact (what fan-out rotates on); None when only word of it
    /// came in.
    last_direct: Option<Instant>,
    /// The freshest word of it: `last_direct` or a later dated claim (what liveness reads).
    freshest: Instant,
    /// Send time of the last heartbeat accepted from it: a replay is never later than this.
    last_sent_ms: Option<u64>,
}

struct Learned {
    record: MemberRecord,
    learned_at: Instant,
    /// Last heartbeat sent to its address (fan-out tries never-tried addresses first).
    last_tried: Option<Instant>,
}

/// A heartbeat refused because its send time is not later than the last one accepted from the
/// same member: a replay (or a member whose clock went backwards by more than an interval).
#[derive(Debug, PartialEq, Eq)]
pub struct Replayed;

/// Every other member this node heard from directly, and addresses it learned second-hand.
pub struct MemberTable {
    self_name: String,
    heard: BTreeMap<String, Heard>,
    learned: BTreeMap<String, Learned>,
}

impl MemberTable {
    /// An empty table for the node called `self_name` (which never lists itself).
    pub fn new(self_name: impl Into<String>) -> Self {
        MemberTable {
            self_name: self_name.into(),
            heard: BTreeMap::new(),
            learned: BTreeMap::new(),
        }
    }

    /// Direct contact: `record`'s node answered our heartbeat. Returns false when the record is
    /// ignored: it is this node, malformed, an older incarnation than the one already heard, or
    /// new while the table is full.
    pub fn heard_directly(&mut self, record: MemberRecord, now: Instant) -> bool {
        if record.name == self.self_name || record.check().is_err() {
            return false;
        }
        match self.heard.get(&record.name) {
            Some(known) if known.record.incarnation > record.incarnation => return false,
            None if !self.learned.contains_key(&record.name) && self.is_full() => return false,
            _ => {}
        }
        if self
            .learned
            .get(&record.name)
            .is_some_and(|learned| learned.record.incarnation <= record.incarnation)
        {
            self.learned.remove(&record.name);
        }
        let previous = self.heard.get(&record.name);
        let last_sent_ms = previous.and_then(|h| h.last_sent_ms);
        // Word of the same run may be fresher than this contact (it was dated later elsewhere);
        // a new incarnation starts afresh.
        let freshest = previous
            .filter(|h| h.record.incarnation == record.incarnation)
            .map_or(now, |h| h.freshest.max(now));
        self.heard.insert(
            record.name.clone(),
            Heard {
                record,
                last_direct: Some(now),
                freshest,
                last_sent_ms,
            },
        );
        true
    }

    /// Direct contact by an authenticated heartbeat sent at `sent_ms`. A send time not later
    /// than the last accepted from the same member is a replay and changes nothing; otherwise
    /// as [`MemberTable::heard_directly`].
    pub fn heard_heartbeat(
        &mut self,
        record: MemberRecord,
        sent_ms: u64,
        now: Instant,
    ) -> Result<bool, Replayed> {
        let name = record.name.clone();
        if let Some(last) = self.heard.get(&name).and_then(|h| h.last_sent_ms)
            && sent_ms <= last
        {
            return Err(Replayed);
        }
        let accepted = self.heard_directly(record, now);
        if accepted && let Some(heard) = self.heard.get_mut(&name) {
            heard.last_sent_ms = Some(sent_ms);
        }
        Ok(accepted)
    }

    /// Undated second-hand records (replies from nodes before dated word): addresses worth a
    /// heartbeat. They say nothing about liveness, so a member only learned of is not listed.
    pub fn learn(&mut self, records: impl IntoIterator<Item = MemberRecord>, now: Instant) {
        for record in records {
            if record.name == self.self_name || record.check().is_err() {
                continue;
            }
            let newer_than_heard = self
                .heard
                .get(&record.name)
                .is_none_or(|known| known.record.incarnation < record.incarnation);
            let newer_than_learned = self
                .learned
                .get(&record.name)
                .is_none_or(|known| known.record.incarnation < record.incarnation);
            let known =
                self.heard.contains_key(&record.name) || self.learned.contains_key(&record.name);
            if newer_than_heard && newer_than_learned && (known || !self.is_full()) {
                self.learned.insert(
                    record.name.clone(),
                    Learned {
                        record,
                        learned_at: now,
                        last_tried: None,
                    },
                );
            }
        }
    }

    /// Dated second-hand word: someone heard `record`'s member directly at `heard_at` (or
    /// earlier). It freshens the member's entry, never past `now` and never backwards; word of a
    /// member not in the table, or of a newer incarnation, enters it (not yet heard directly).
    /// Word of an older incarnation, of this node, or past a full table is ignored.
    pub fn heard_of(&mut self, record: MemberRecord, heard_at: Instant, now: Instant) {
        if record.name == self.self_name || record.check().is_err() {
            return;
        }
        let heard_at = heard_at.min(now);
        match self.heard.get_mut(&record.name) {
            Some(known) if known.record.incarnation == record.incarnation => {
                known.freshest = known.freshest.max(heard_at);
            }
            Some(known) if known.record.incarnation > record.incarnation => {}
            Some(known) => {
                *known = Heard {
                    record,
                    last_direct: None,
                    freshest: heard_at,
                    last_sent_ms: known.last_sent_ms,
                };
            }
            None => {
                if self
                    .learned
                    .get(&record.name)
                    .is_some_and(|l| l.record.incarnation > record.incarnation)
                    || (!self.learned.contains_key(&record.name) && self.is_full())
                {
                    return;
                }
                self.learned.remove(&record.name);
                self.heard.insert(
                    record.name.clone(),
                    Heard {
                        record,
                        last_direct: None,
                        freshest: heard_at,
                        last_sent_ms: None,
                    },
                );
            }
        }
    }

    /// Folds a heartbeat reply from `replier`, to a request sent at `sent_at`: the replier's own
    /// record is direct contact now; every other record is word dated from `sent_at` (the reply
    /// was made after it, so the word is never taken as fresher than it is), or an address
    /// when undated or older than [`MAX_WORD_AGE`]. At most [`MAX_REPLY_MEMBERS`] are read.
    pub fn fold_reply(
        &mut self,
        replier: &str,
        members: Vec<DatedRecord>,
        sent_at: Instant,
        now: Instant,
    ) {
        for dated in members.into_iter().take(MAX_REPLY_MEMBERS) {
            if dated.record.name == replier {
                self.heard_directly(dated.record, now);
                continue;
            }
            let heard_at = dated
                .heard_ms_ago
                .map(Duration::from_millis)
                .filter(|age| *age <= MAX_WORD_AGE)
                .and_then(|age| sent_at.checked_sub(age));
            match heard_at {
                Some(heard_at) => self.heard_of(dated.record, heard_at, now),
                None => self.learn([dated.record], now),
            }
        }
    }

    /// What a heartbeat reply lists: `own` first, then up to [`MAX_REPLY_MEMBERS`] − 1 members
    /// alive at `now`, freshest first, each dated by the age of the freshest word of it here.
    pub fn reply_records(
        &self,
        own: MemberRecord,
        now: Instant,
        dead_after: Duration,
    ) -> Vec<DatedRecord> {
        let mut alive: Vec<&Heard> = self
            .heard
            .values()
            .filter(|h| now.saturating_duration_since(h.freshest) <= dead_after)
            .collect();
        alive.sort_by_key(|h| std::cmp::Reverse(h.freshest));
        let own = DatedRecord {
            record: own,
            heard_ms_ago: None,
        };
        let others = alive.into_iter().take(MAX_REPLY_MEMBERS - 1).map(|h| {
            let age = now.saturating_duration_since(h.freshest);
            DatedRecord {
                record: h.record.clone(),
                // Rounded up: passing word on never makes it younger.
                heard_ms_ago: Some(
                    u64::try_from(age.as_micros().div_ceil(1000)).unwrap_or(u64::MAX),
                ),
            }
        });
        std::iter::once(own).chain(others).collect()
    }

    /// This round's fan-out candidates at `now`: live members with their last direct contact,
    /// dead members' addresses, and learned addresses with when they were last tried.
    pub fn fanout_candidates(&self, now: Instant, dead_after: Duration) -> Candidates {
        let mut candidates = Candidates::default();
        for heard in self.heard.values() {
            if now.saturating_duration_since(heard.freshest) <= dead_after {
                candidates.live.push(LivePeer {
                    api: heard.record.api.clone(),
                    last_direct: heard.last_direct,
                });
            } else {
                candidates.dead.push(heard.record.api.clone());
            }
        }
        candidates.learned = self
            .learned
            .values()
            .map(|learned| LearnedPeer {
                api: learned.record.api.clone(),
                last_tried: learned.last_tried,
            })
            .collect();
        candidates
    }

    /// Notes that a heartbeat went to each of `addresses` at `now` (learned ones are then
    /// tried after the never-tried).
    pub fn tried<'a>(&mut self, addresses: impl IntoIterator<Item = &'a String>, now: Instant) {
        for address in addresses {
            for learned in self.learned.values_mut() {
                if learned.record.api == *address {
                    learned.last_tried = Some(now);
                }
            }
        }
    }

    /// Drops members not heard from directly for `after`, and addresses learned that long ago
    /// and never confirmed, so past members do not fill the table or draw heartbeats forever.
    /// Returns the names of the members dropped (learned addresses are not named).
    pub fn forget(&mut self, now: Instant, after: Duration) -> Vec<String> {
        let stale = |at: Instant| now.saturating_duration_since(at) > after;
        self.learned.retain(|_, learned| !stale(learned.learned_at));
        let gone: Vec<String> = self
            .heard
            .iter()
            .filter(|(_, heard)| stale(heard.freshest))
            .map(|(name, _)| name.clone())
            .collect();
        for name in &gone {
            self.heard.remove(name);
        }
        gone
    }

    fn is_full(&self) -> bool {
        self.heard.len() + self.learned.len() >= MAX_MEMBERS
    }

    /// Every member heard from directly, by name, with its liveness at `now` (from the freshest
    /// word of it).
    pub fn members(&self, now: Instant, dead_after: Duration) -> Vec<Member> {
        self.heard
            .values()
            .map(|heard| {
                let ago = now.saturating_duration_since(heard.freshest);
                let state = if ago > dead_after {
                    Liveness::Dead
                } else {
                    Liveness::Alive
                };
                Member::from_record(&heard.record, state, ago)
            })
            .collect()
    }

    /// Counts a session this node just placed on `name`, so a burst of new sessions does not
    /// all go to the member that looked idlest at its last heartbeat. Its next heartbeat
    /// replaces the estimate with its own count.
    pub fn count_placed_session(&mut self, name: &str) {
        if let Some(heard) = self.heard.get_mut(name) {
            heard.record.load = heard.record.load.saturating_add(1);
        }
    }

    /// API addresses of every member heard from or learned of, dead ones included (a restarted
    /// node answers there again).
    pub fn addresses(&self) -> Vec<String> {
        let heard = self.heard.values().map(|h| h.record.api.clone());
        let learned = self.learned.values().map(|l| l.record.api.clone());
        let mut addresses: Vec<String> = heard.chain(learned).collect();
        addresses.sort();
        addresses.dedup();
        addresses
    }

    /// The API address of the member called `name`, if it was ever heard from directly.
    pub fn api_of(&self, name: &str) -> Option<String> {
        self.heard.get(name).map(|h| h.record.api.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEAD_AFTER: Duration = Duration::from_secs(3);

    fn record(name: &str, api: &str, incarnation: u64) -> MemberRecord {
        MemberRecord {
            name: name.into(),
            role: Role::Worker,
            api: api.into(),
            listener: "h:9100".into(),
            capacity: 10,
            load: 0,
            incarnation,
        }
    }

    fn states(table: &MemberTable, now: Instant) -> Vec<(String, Liveness)> {
        table
            .members(now, DEAD_AFTER)
            .into_iter()
            .map(|m| (m.name, m.state))
            .collect()
    }

    #[test]
    fn a_member_is_dead_only_after_dead_after_of_silence() {
        let start = Instant::now();
        let mut table = MemberTable::new("self");
        assert!(table.heard_directly(record("w1", "w1:8080", 1), start));
        let at = |ms| start + Duration::from_millis(ms);
        assert_eq!(states(&table, at(3000)), [("w1".into(), Liveness::Alive)]);
        assert_eq!(states(&table, at(3001)), [("w1".into(), Liveness::Dead)]);
        let member = &table.members(at(3001), DEAD_AFTER)[0];
        assert_eq!(member.last_heard_ms_ago, 3001);
        // A heartbeat brings it back; the dead member stayed listed meanwhile.
        table.heard_directly(record("w1", "w1:8080", 1), at(5000));
        assert_eq!(states(&table, at(5000)), [("w1".into(), Liveness::Alive)]);
    }

    #[test]
    fn a_restart_replaces_the_record_and_an_older_incarnation_is_ignored() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "old:8080", 1), now);
        assert!(table.heard_directly(record("w1", "new:8080", 2), now));
        assert!(!table.heard_directly(record("w1", "old:8080", 1), now));
        assert_eq!(table.api_of("w1").as_deref(), Some("new:8080"));
    }

    #[test]
    fn replies_pass_on_live_members_only() {
        let start = Instant::now();
        let mut table = MemberTable::new("self");
        table.heard_directly(record("old", "old:8080", 1), start);
        let later = start + Duration::from_secs(4);
        table.heard_directly(record("new", "new:8080", 1), later);
        let names: Vec<String> = table
            .reply_records(record("self", "me:8080", 1), later, DEAD_AFTER)
            .into_iter()
            .map(|r| r.record.name)
            .collect();
        assert_eq!(names, ["self", "new"]);
    }

    fn dated(name: &str, incarnation: u64, heard_ms_ago: Option<u64>) -> DatedRecord {
        DatedRecord {
            record: record(name, &format!("{name}:8080"), incarnation),
            heard_ms_ago,
        }
    }

    fn silent_ms(table: &MemberTable, name: &str, now: Instant) -> u64 {
        let members = table.members(now, DEAD_AFTER);
        members
            .iter()
            .find(|m| m.name == name)
            .unwrap()
            .last_heard_ms_ago
    }

    #[test]
    fn dated_word_keeps_a_member_alive_aged_from_the_request_send_time() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "w1:8080", 1), start);
        // Sent at 2000, answered at 2400: the replier heard w1 500 ms before it replied, so
        // w1 was heard at 1500 or later; the table takes 1500, never 1900.
        table.fold_reply(
            "w2",
            vec![dated("w2", 1, None), dated("w1", 1, Some(500))],
            at(2000),
            at(2400),
        );
        assert_eq!(silent_ms(&table, "w1", at(2400)), 900);
        assert_eq!(
            states(&table, at(4500)),
            [
                ("w1".into(), Liveness::Alive),
                ("w2".into(), Liveness::Alive)
            ]
        );
        assert_eq!(states(&table, at(4501))[0], ("w1".into(), Liveness::Dead));
    }

    #[test]
    fn word_never_makes_a_member_fresher_than_the_freshest_claim() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "w1:8080", 1), at(1000));
        // Older word than what the table holds changes nothing.
        table.fold_reply("w2", vec![dated("w1", 1, Some(800))], at(1500), at(1500));
        assert_eq!(silent_ms(&table, "w1", at(1500)), 500);
        // A claim dated in the future (a lying clock) is taken as `now` at most.
        table.heard_of(record("w1", "w1:8080", 1), at(9000), at(2000));
        assert_eq!(silent_ms(&table, "w1", at(2000)), 0);
        // Passing word on only ages it: the reply's age is what the table holds, rounded up.
        let reply = table.reply_records(record("self", "me:8080", 1), at(2700), DEAD_AFTER);
        assert_eq!(reply[1].heard_ms_ago, Some(700));
    }

    #[test]
    fn a_stopped_member_dies_everywhere_however_often_word_is_passed_around() {
        // Three tables pass word of w1 around every 100 ms after w1's last contact at 0:
        // without resurrection, each lists it dead once dead_after has passed since 0.
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut tables: Vec<MemberTable> = ["a", "b", "c"]
            .iter()
            .map(|n| MemberTable::new(*n))
            .collect();
        for table in &mut tables {
            table.heard_directly(record("w1", "w1:8080", 1), start);
        }
        for step in 1..=40u64 {
            let now = at(step * 100);
            let from = (step % 3) as usize;
            let to = ((step + 1) % 3) as usize;
            let reply = tables[from].reply_records(record("x", "x:8080", 1), now, DEAD_AFTER);
            let word = reply.into_iter().skip(1).collect(); // without the replier's own record
            tables[to].fold_reply("x", word, now, now);
        }
        for table in &tables {
            assert_eq!(states(table, at(3000)), [("w1".into(), Liveness::Alive)]);
            assert_eq!(states(table, at(3001)), [("w1".into(), Liveness::Dead)]);
        }
    }

    #[test]
    fn undated_stale_or_unknown_word_is_only_an_address() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "w1:8080", 1), start);
        table.fold_reply(
            "old-node",
            vec![
                dated("w1", 1, None),           // a reply from before dated word
                dated("w1", 1, Some(u64::MAX)), // an absurd age
                dated("w1", 1, Some(61_000)),   // older than MAX_WORD_AGE
                dated("w3", 1, None),           // never heard, undated: an address
            ],
            at(2000),
            at(2000),
        );
        assert_eq!(silent_ms(&table, "w1", at(2000)), 2000);
        assert_eq!(table.members(at(2000), DEAD_AFTER).len(), 1);
        assert_eq!(table.addresses(), ["w1:8080", "w3:8080"]);
    }

    #[test]
    fn dated_word_of_an_unknown_member_or_a_newer_incarnation_lists_it() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "w1:8080", 2), start);
        table.fold_reply(
            "x",
            vec![
                dated("w3", 1, Some(100)),
                dated("w1", 1, Some(0)), // an older run: ignored
            ],
            at(1000),
            at(1000),
        );
        assert_eq!(silent_ms(&table, "w3", at(1000)), 100);
        assert_eq!(silent_ms(&table, "w1", at(1000)), 1000);
        let candidates = table.fanout_candidates(at(1000), DEAD_AFTER);
        let never_direct: Vec<&str> = candidates
            .live
            .iter()
            .filter(|p| p.last_direct.is_none())
            .map(|p| p.api.as_str())
            .collect();
        assert_eq!(never_direct, ["w3:8080"]);
        // w1 restarted: word of its new run replaces the old record.
        table.fold_reply("x", vec![dated("w1", 3, Some(0))], at(3500), at(3500));
        assert_eq!(states(&table, at(3500))[0], ("w1".into(), Liveness::Alive));
        // Word never enters a full table.
        let mut full = MemberTable::new("self");
        for i in 0..MAX_MEMBERS {
            full.heard_directly(record(&format!("m{i}"), "m:8080", 1), start);
        }
        full.heard_of(record("late", "late:8080", 1), start, start);
        assert_eq!(full.members(start, DEAD_AFTER).len(), MAX_MEMBERS);
    }

    #[test]
    fn a_reply_lists_and_reads_a_bounded_number_of_records() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        for i in 0..200 {
            table.heard_directly(record(&format!("m{i}"), "m:8080", 1), now);
        }
        let reply = table.reply_records(record("self", "me:8080", 1), now, DEAD_AFTER);
        assert_eq!(reply.len(), MAX_REPLY_MEMBERS);
        assert_eq!(reply[0].record.name, "self");
        let mut other = MemberTable::new("other");
        let long: Vec<DatedRecord> = (0..300)
            .map(|i| dated(&format!("n{i}"), 1, Some(0)))
            .collect();
        other.fold_reply("x", long, now, now);
        assert_eq!(other.members(now, DEAD_AFTER).len(), MAX_REPLY_MEMBERS);
    }

    #[test]
    fn an_old_reply_without_dates_still_parses_and_new_ones_read_as_plain_records() {
        let old = r#"{"name":"w1","role":"worker","api":"w1:8080","listener":"w1:9100","capacity":1,"load":0,"incarnation":3}"#;
        let parsed: DatedRecord = serde_json::from_str(old).unwrap();
        assert_eq!(parsed.heard_ms_ago, None);
        assert_eq!(parsed.record.incarnation, 3);
        let new = serde_json::to_string(&DatedRecord {
            heard_ms_ago: Some(250),
            ..parsed
        })
        .unwrap();
        assert!(
            new.ends_with(r#""incarnation":3,"heard_ms_ago":250}"#),
            "{new}"
        );
        let as_old: MemberRecord = serde_json::from_str(&new).unwrap();
        assert_eq!(as_old.name, "w1");
    }

    #[test]
    fn fanout_candidates_split_live_dead_and_learned_and_remember_tries() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut table = MemberTable::new("self");
        table.heard_directly(record("gone", "gone:8080", 1), start);
        table.heard_directly(record("here", "here:8080", 1), at(4000));
        table.learn([record("new", "new:8080", 1)], at(4000));
        let candidates = table.fanout_candidates(at(4000), DEAD_AFTER);
        assert_eq!(candidates.live.len(), 1);
        assert_eq!(candidates.live[0].api, "here:8080");
        assert_eq!(candidates.dead, ["gone:8080"]);
        assert_eq!(candidates.learned[0].last_tried, None);
        table.tried(&["new:8080".to_string()], at(4100));
        let candidates = table.fanout_candidates(at(4100), DEAD_AFTER);
        assert_eq!(candidates.learned[0].last_tried, Some(at(4100)));
    }

    #[test]
    fn a_placed_session_counts_until_the_next_heartbeat() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "w1:8080", 1), now);
        table.count_placed_session("w1");
        table.count_placed_session("w1");
        table.count_placed_session("unknown");
        assert_eq!(table.members(now, DEAD_AFTER)[0].load, 2);
        table.heard_directly(record("w1", "w1:8080", 1), now);
        assert_eq!(table.members(now, DEAD_AFTER)[0].load, 0);
    }

    #[test]
    fn the_table_is_bounded_but_known_members_still_update() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        for i in 0..MAX_MEMBERS {
            table.heard_directly(record(&format!("m{i}"), "m:8080", 1), now);
        }
        assert!(!table.heard_directly(record("one-too-many", "x:8080", 1), now));
        table.learn([record("learned-too-many", "y:8080", 1)], now);
        assert_eq!(table.addresses(), ["m:8080"]);
        assert!(table.heard_directly(record("m0", "m:8080", 2), now));
        assert_eq!(table.members(now, DEAD_AFTER).len(), MAX_MEMBERS);
    }

    #[test]
    fn the_node_never_lists_itself() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        assert!(!table.heard_directly(record("self", "me:8080", 1), now));
        table.learn([record("self", "me:8080", 1)], now);
        assert!(table.members(now, DEAD_AFTER).is_empty());
        assert!(table.addresses().is_empty());
    }

    #[test]
    fn learned_members_are_addresses_not_members() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "w1:8080", 5), now);
        table.learn(
            [
                record("w2", "w2:8080", 1),
                record("w1", "stale:8080", 4), // older than what w1 said itself
            ],
            now,
        );
        assert_eq!(table.addresses(), ["w1:8080", "w2:8080"]);
        assert_eq!(states(&table, now), [("w1".into(), Liveness::Alive)]);
        // Once w2 answers, it is a member and no longer only learned.
        table.heard_directly(record("w2", "w2:8080", 1), now);
        assert_eq!(table.addresses(), ["w1:8080", "w2:8080"]);
        assert_eq!(table.members(now, DEAD_AFTER).len(), 2);
    }

    #[test]
    fn a_restarted_member_learned_elsewhere_is_tried_at_its_new_address() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        table.heard_directly(record("w1", "old:8080", 1), now);
        table.learn([record("w1", "new:8080", 2)], now);
        assert_eq!(table.addresses(), ["new:8080", "old:8080"]);
        table.heard_directly(record("w1", "new:8080", 2), now);
        assert_eq!(table.addresses(), ["new:8080"]);
    }

    #[test]
    fn addresses_must_be_host_and_port_and_nothing_else() {
        for good in [
            "w1:8080",
            "127.0.0.1:27500",
            "[::1]:8080",
            "erlmcp-w1.cluster_net:1",
            "a.b-c.d:65535",
        ] {
            assert!(is_host_port(good), "{good}");
        }
        for bad in [
            "127.0.0.1:27500/admin?x=",
            "user@host:80",
            "host:80/",
            "host :80",
            "host:80 ",
            "host",
            "host:",
            ":80",
            "host:0",
            "host:65536",
            "host:+80",
            "-host:80",
            "host-:80",
            "a..b:80",
            "[::1:80",
            "[not-v6]:80",
            "http://host:80",
            "host:80#x",
            "h%2f:80",
        ] {
            assert!(!is_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn malformed_records_are_never_heard_or_learned() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        assert!(!table.heard_directly(record("evil", "127.0.0.1:27500/admin?x=", 1), now));
        assert!(!table.heard_directly(record("a~b", "w:8080", 1), now));
        assert!(!table.heard_directly(record(&"n".repeat(65), "w:8080", 1), now));
        let mut bad_listener = record("w1", "w1:8080", 1);
        bad_listener.listener = "w1:9100?x".into();
        assert!(!table.heard_directly(bad_listener.clone(), now));
        table.learn([bad_listener, record("w2", "user@w2:8080", 1)], now);
        assert!(table.addresses().is_empty());
        assert!(table.members(now, DEAD_AFTER).is_empty());
    }

    #[test]
    fn a_heartbeat_not_later_than_the_last_accepted_is_a_replay() {
        let now = Instant::now();
        let mut table = MemberTable::new("self");
        assert_eq!(
            table.heard_heartbeat(record("w1", "w1:8080", 1), 100, now),
            Ok(true)
        );
        assert_eq!(
            table.heard_heartbeat(record("w1", "w1:8080", 1), 100, now),
            Err(Replayed)
        );
        assert_eq!(
            table.heard_heartbeat(record("w1", "w1:8080", 1), 99, now),
            Err(Replayed)
        );
        // A reply in between is direct contact but does not reset the replay mark.
        assert!(table.heard_directly(record("w1", "w1:8080", 1), now));
        assert_eq!(
            table.heard_heartbeat(record("w1", "w1:8080", 1), 100, now),
            Err(Replayed)
        );
        assert_eq!(
            table.heard_heartbeat(record("w1", "w1:8080", 1), 101, now),
            Ok(true)
        );
    }

    #[test]
    fn dead_members_and_stale_learned_addresses_are_forgotten_after_the_forget_time() {
        let start = Instant::now();
        let forget_after = Duration::from_secs(600);
        let at = |s| start + Duration::from_secs(s);
        let mut table = MemberTable::new("self");
        table.heard_directly(record("gone", "gone:8080", 1), start);
        table.learn([record("never-answered", "never:8080", 1)], start);
        table.heard_directly(record("stays", "stays:8080", 1), at(500));
        assert!(table.forget(at(600), forget_after).is_empty());
        assert_eq!(table.members(at(600), DEAD_AFTER).len(), 2);
        assert_eq!(table.forget(at(601), forget_after), ["gone"]);
        assert_eq!(states(&table, at(601)), [("stays".into(), Liveness::Dead)]);
        assert_eq!(table.addresses(), ["stays:8080"]);
        // Forgetting frees room: a full table takes new members again.
        for i in 0..MAX_MEMBERS - 1 {
            table.heard_directly(record(&format!("m{i}"), "m:8080", 1), at(601));
        }
        assert!(!table.heard_directly(record("late", "late:8080", 1), at(601)));
        table.forget(at(1202), forget_after);
        assert!(table.heard_directly(record("late", "late:8080", 1), at(1202)));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever a member sends, an address with anything but host characters and one port
        /// (a path, query, fragment, userinfo, whitespace, escapes) is never accepted.
        #[test]
        fn no_address_with_url_syntax_is_accepted(
            host in "[a-z0-9.-]{0,20}",
            port in 0u32..70_000,
            junk in "[/?#@ %\t\\[\\]]{1,3}",
            at in 0usize..3,
        ) {
            let address = match at {
                0 => format!("{host}{junk}:{port}"),
                1 => format!("{host}:{port}{junk}"),
                _ => format!("{junk}{host}:{port}"),
            };
            proptest::prop_assert!(!is_host_port(&address), "{}", address);
        }

        /// Well-formed names and ports are accepted exactly when the port is 1 to 65535.
        #[test]
        fn dns_names_with_a_port_are_accepted(
            labels in proptest::collection::vec("[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", 1..4),
            port in 0u32..70_000,
        ) {
            let address = format!("{}:{port}", labels.join("."));
            proptest::prop_assert_eq!(is_host_port(&address), (1..=65_535).contains(&port));
        }
    }
}
