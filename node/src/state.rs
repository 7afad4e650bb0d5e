//! The shared node handle: configuration, metrics, the drain flag, the Streamable HTTP
//! sessions and the member table. Cheap to clone (an `Arc`), handed to every listener and
//! connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::NodeConfig;
use crate::framing::InputBudget;
use crate::long_task::Cancels;
pub use crate::membership::Member;
use crate::membership::{Liveness, MemberRecord, MemberTable};
use crate::metrics::Metrics;
use crate::peer::Peers;
use crate::session::Session;

/// A Streamable HTTP session: its MCP state, the requests it may cancel, and its slot.
pub struct HttpSession {
    /// MCP state.
    pub session: Session,
    /// Cancellation handles of its running long requests.
    pub cancels: Cancels,
    /// Its share of `max_connections`, freed when the session ends.
    pub slot: SessionSlot,
    /// Last request or open stream: HTTP has no connection to close, so idleness ends a session.
    pub last_seen: tokio::time::Instant,
}

/// The node's shared state.
pub struct NodeState {
    /// Settings.
    pub config: NodeConfig,
    /// Metrics.
    pub metrics: Metrics,
    /// When the node started.
    pub started: Instant,
    draining: AtomicBool,
    sessions_open: AtomicUsize,
    descriptors_held: AtomicUsize,
    /// Streamable HTTP sessions by `Mcp-Session-Id`.
    pub http_sessions: Mutex<HashMap<String, HttpSession>>,
    /// Ports actually bound (after port 0 was resolved): (api, listener).
    pub bound_ports: Mutex<(u16, u16)>,
    /// Start time in ms since the Unix epoch: tells a restarted node from its previous run.
    pub incarnation: u64,
    /// Every other member heard from, and addresses learned second-hand.
    pub member_table: Mutex<MemberTable>,
    /// The HTTP client to other nodes.
    pub peers: Peers,
    /// Bytes all connections together may hold in partially read lines.
    pub input_budget: InputBudget,
    /// Turns true when the drain timeout passed with requests still running: each then answers
    /// with a shutting-down error instead of its result.
    pub abandon: tokio::sync::watch::Sender<bool>,
    /// TCP sessions with long requests running or replies still to write (the drain waits for
    /// them to flush).
    pub sessions_busy: AtomicUsize,
}

/// A cheap handle to the node's state.
pub type Node = Arc<NodeState>;

impl NodeState {
    /// A fresh node.
    pub fn new(config: NodeConfig) -> Node {
        let ports = (config.api_port, config.listener_port);
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let member_table = Mutex::new(MemberTable::new(config.node_name.clone()));
        let input_budget = config.input_budget_bytes;
        Arc::new(NodeState {
            config,
            metrics: Metrics::new(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            sessions_open: AtomicUsize::new(0),
            descriptors_held: AtomicUsize::new(0),
            http_sessions: Mutex::new(HashMap::new()),
            bound_ports: Mutex::new(ports),
            incarnation,
            member_table,
            peers: Peers::new(),
            input_budget: InputBudget::new(input_budget),
            abandon: tokio::sync::watch::Sender::new(false),
            sessions_busy: AtomicUsize::new(0),
        })
    }

    /// True once SIGTERM (or shutdown) started the drain.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Starts the drain: `/ready` turns false and listeners stop accepting.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Claims a session slot; None when the node is full or draining.
    pub fn try_open_session(self: &Arc<Self>, transport: &'static str) -> Option<SessionSlot> {
        if self.is_draining() {
            return None;
        }
        let claimed = self
            .sessions_open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.config.max_connections).then_some(open + 1)
            })
            .is_ok();
        if !claimed {
            return None;
        }
        // A TCP session holds a descriptor: it also needs one of the pool's.
        let descriptor = if transport == TCP {
            match self.try_hold_descriptor() {
                Some(descriptor) => Some(descriptor),
                None => {
                    self.sessions_open.fetch_sub(1, Ordering::AcqRel);
                    return None;
                }
            }
        } else {
            None
        };
        self.metrics
            .connections_active
            .with_label_values(&[transport])
            .inc();
        self.metrics
            .connections_total
            .with_label_values(&[transport])
            .inc();
        Some(SessionSlot {
            node: Arc::clone(self),
            transport,
            _descriptor: descriptor,
        })
    }

    /// Claims one of the descriptors TCP sessions and the API port's HTTP connections share;
    /// None when every one is held.
    pub fn try_hold_descriptor(self: &Arc<Self>) -> Option<DescriptorSlot> {
        self.descriptors_held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.config.connection_descriptors).then_some(held + 1)
            })
            .ok()?;
        Some(DescriptorSlot {
            node: Arc::clone(self),
        })
    }

    /// Open sessions on every transport.
    pub fn sessions_open(&self) -> usize {
        self.sessions_open.load(Ordering::Acquire)
    }

    /// True when the node accepts new sessions.
    pub fn is_ready(&self) -> bool {
        !self.is_draining() && self.sessions_open() < self.config.max_connections
    }

    /// This node as it describes itself in heartbeats.
    pub fn as_record(&self) -> MemberRecord {
        let (api, listener) = *self.bound_ports.lock().expect("ports lock");
        MemberRecord {
            name: self.config.node_name.clone(),
            role: self.config.role,
            api: format!("{}:{api}", self.config.advertise_host),
            listener: format!("{}:{listener}", self.config.advertise_host),
            capacity: self.config.max_connections,
            load: self.sessions_open(),
            incarnation: self.incarnation,
        }
    }

    /// Ends HTTP sessions idle for longer than the idle timeout (a client that never sends
    /// DELETE would otherwise hold its slot forever); returns how many ended.
    pub fn expire_http_sessions(&self) -> usize {
        let now = tokio::time::Instant::now();
        let idle = self.config.idle_timeout;
        let mut sessions = self.http_sessions.lock().expect("sessions lock");
        let before = sessions.len();
        sessions.retain(|_, s| now.duration_since(s.last_seen) < idle);
        before - sessions.len()
    }

    /// This node as a member of the cluster: always alive, its load live.
    pub fn as_member(&self) -> Member {
        Member::from_record(&self.as_record(), Liveness::Alive, Default::default())
    }

    /// Every member this node knows of, itself included, by name; dead ones stay listed.
    pub fn members(&self) -> Vec<Member> {
        let now = tokio::time::Instant::now();
        let mut members = self
            .member_table
            .lock()
            .expect("member table lock")
            .members(now, self.config.dead_after);
        members.push(self.as_member());
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
    }
}

/// The transport label of MCP-over-TCP sessions, the ones that hold a descriptor.
pub const TCP: &str = "tcp";

/// A claimed session slot; dropping it frees the slot.
pub struct SessionSlot {
    node: Node,
    transport: &'static str,
    /// A TCP session's descriptor from the shared pool.
    _descriptor: Option<DescriptorSlot>,
}

/// One descriptor of the pool TCP sessions and HTTP connections share; dropping it returns it.
pub struct DescriptorSlot {
    node: Node,
}

impl Drop for DescriptorSlot {
    fn drop(&mut self) {
        self.node.descriptors_held.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        self.node.sessions_open.fetch_sub(1, Ordering::AcqRel);
        self.node
            .metrics
            .connections_active
            .with_label_values(&[self.transport])
            .dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn tcp_sessions_are_capped_by_descriptors_and_http_sessions_only_by_max_connections() {
        let mut config = NodeConfig::for_tests();
        config.max_connections = 3;
        config.connection_descriptors = 1;
        let node = NodeState::new(config);
        let tcp = node.try_open_session(TCP).expect("a first TCP session");
        assert!(
            node.try_open_session(TCP).is_none(),
            "past the descriptor cap"
        );
        assert_eq!(
            node.sessions_open(),
            1,
            "a refused TCP session takes no slot"
        );
        let http = [node.try_open_session("http"), node.try_open_session("http")];
        assert!(http.iter().all(Option::is_some));
        assert!(
            node.try_open_session("http").is_none(),
            "past max_connections"
        );
        drop(tcp);
        assert!(
            node.try_open_session(TCP).is_some(),
            "a closed TCP session frees its descriptor"
        );
    }

    #[test]
    fn http_connections_and_tcp_sessions_draw_on_one_descriptor_pool() {
        let mut config = NodeConfig::for_tests();
        config.connection_descriptors = 2;
        let node = NodeState::new(config);
        let connection = node
            .try_hold_descriptor()
            .expect("an HTTP connection's descriptor");
        let tcp = node
            .try_open_session(TCP)
            .expect("the pool's last descriptor");
        assert!(node.try_hold_descriptor().is_none(), "the pool is empty");
        assert!(
            node.try_open_session(TCP).is_none(),
            "no descriptor left for TCP"
        );
        drop(connection);
        assert!(
            node.try_open_session(TCP).is_some(),
            "a closed HTTP connection returns its descriptor"
        );
        drop(tcp);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_http_sessions_expire_and_free_their_slots() {
        let mut config = NodeConfig::for_tests();
        config.idle_timeout = Duration::from_secs(60);
        let node = NodeState::new(config);
        for id in ["busy", "idle"] {
            let slot = node.try_open_session("http").expect("room");
            let session = HttpSession {
                session: Session::default(),
                cancels: Cancels::new(),
                slot,
                last_seen: tokio::time::Instant::now(),
            };
            node.http_sessions
                .lock()
                .unwrap()
                .insert(id.into(), session);
        }
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(node.expire_http_sessions(), 0);
        node.http_sessions
            .lock()
            .unwrap()
            .get_mut("busy")
            .unwrap()
            .last_seen = tokio::time::Instant::now();
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(node.expire_http_sessions(), 1);
        assert!(node.http_sessions.lock().unwrap().contains_key("busy"));
        assert_eq!(node.sessions_open(), 1);
    }
}
