//! The shared node handle: configuration, metrics, the drain flag and the Streamable HTTP
//! sessions. Cheap to clone (an `Arc`), handed to every listener and connection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::Serialize;

use crate::config::NodeConfig;
use crate::long_task::Cancels;
use crate::metrics::Metrics;
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

/// What the node knows about one cluster member (itself, until membership lands).
#[derive(Debug, Clone, Serialize)]
pub struct Member {
    /// Node name.
    pub name: String,
    /// `coordinator` or `worker`.
    pub role: crate::config::Role,
    /// `alive` or `dead`.
    pub state: &'static str,
    /// Where clients reach its API.
    pub api: String,
    /// Where clients reach its MCP-over-TCP listener.
    pub listener: String,
    /// Session capacity.
    pub capacity: usize,
    /// Open sessions.
    pub load: usize,
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
    /// Streamable HTTP sessions by `Mcp-Session-Id`.
    pub http_sessions: Mutex<HashMap<String, HttpSession>>,
    /// Ports actually bound (after port 0 was resolved): (api, listener).
    pub bound_ports: Mutex<(u16, u16)>,
}

/// A cheap handle to the node's state.
pub type Node = Arc<NodeState>;

impl NodeState {
    /// A fresh node.
    pub fn new(config: NodeConfig) -> Node {
        let ports = (config.api_port, config.listener_port);
        Arc::new(NodeState {
            config,
            metrics: Metrics::new(),
            started: Instant::now(),
            draining: AtomicBool::new(false),
            sessions_open: AtomicUsize::new(0),
            http_sessions: Mutex::new(HashMap::new()),
            bound_ports: Mutex::new(ports),
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

    /// This node as a member of the cluster.
    pub fn as_member(&self) -> Member {
        let (api, listener) = *self.bound_ports.lock().expect("ports lock");
        Member {
            name: self.config.node_name.clone(),
            role: self.config.role,
            state: "alive",
            api: format!("{}:{api}", self.config.advertise_host),
            listener: format!("{}:{listener}", self.config.advertise_host),
            capacity: self.config.max_connections,
            load: self.sessions_open(),
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

    /// Every member this node knows of.
    pub fn members(&self) -> Vec<Member> {
        vec![self.as_member()]
    }
}

/// A claimed session slot; dropping it frees the slot.
pub struct SessionSlot {
    node: Node,
    transport: &'static str,
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
