//! The node's settings. `main.rs` fills them from flags and `ERLMCP_*` environment variables.

use std::net::IpAddr;
use std::time::Duration;

use crate::cluster_secret::{ClusterSecret, DEFAULT_REPLAY_WINDOW, MembershipAuth};

/// Whether the node coordinates the cluster or serves as a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Seeds membership.
    Coordinator,
    /// Serves sessions.
    Worker,
}

/// Everything a node needs to run.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Cluster name (labels only).
    pub cluster: String,
    /// This node's name.
    pub node_name: String,
    /// Coordinator or worker.
    pub role: Role,
    /// Address both listeners bind.
    pub bind: IpAddr,
    /// HTTP API port (`/mcp`, `/health`, `/ready`, `/metrics`); 0 picks a free one.
    pub api_port: u16,
    /// MCP-over-TCP port; 0 picks a free one.
    pub listener_port: u16,
    /// Concurrent sessions beyond which new connections are refused.
    pub max_connections: usize,
    /// Descriptors TCP sessions and the API port's HTTP connections share (a Streamable HTTP
    /// session holds none of its own): what the open-file limit leaves after the probe lane and
    /// the node's own files ([`crate::fd_limit`]).
    pub connection_descriptors: usize,
    /// Other nodes' `host:api_port` to join through.
    pub seeds: Vec<String>,
    /// The host other nodes reach this node at.
    pub advertise_host: String,
    /// Extra `Host`/`Origin` names the API port answers (see [`crate::rebinding`]).
    pub allowed_hosts: Vec<String>,
    /// A session that completes no message this long is closed; a `GET /mcp` stream ends after
    /// this long.
    pub idle_timeout: Duration,
    /// Longest accepted JSON-RPC line; longer ones get an error and a close.
    pub max_line_bytes: usize,
    /// Most messages in one JSON-RPC batch (revision 2025-03-26); a longer batch is one
    /// invalid request, so what one line can make the node answer stays bounded.
    pub max_batch: usize,
    /// Bytes of partially read lines all connections together may hold; past it the connection
    /// that would grow gets an error and a close.
    pub input_budget_bytes: usize,
    /// A message (TCP line, HTTP header block or body) started but not finished this long
    /// closes its connection (slowloris), as does a new HTTP connection that sends nothing.
    pub read_timeout: Duration,
    /// An HTTP keep-alive connection idle this long after a response is closed.
    pub keep_alive_timeout: Duration,
    /// A client that does not take a reply (or notification) within this long is disconnected
    /// and its requests cancelled (TCP sessions and the API port's responses alike).
    pub write_timeout: Duration,
    /// Long requests (`sleep_ms`) one session may have running; more get an error.
    pub max_in_flight_per_session: usize,
    /// Messages (progress, responses) queued for one session's long requests; progress beyond
    /// it is dropped rather than queued.
    pub outbound_queue: usize,
    /// HTTP connections open at once on the API port (each Streamable HTTP client keeps one),
    /// within `connection_descriptors`.
    pub max_http_connections: usize,
    /// Further HTTP connections kept for `/health`, `/ready` and `/metrics` when the others are
    /// all taken (operators' probes get through a full node).
    pub probe_connections: usize,
    /// How long SIGTERM waits for in-flight requests.
    pub drain_timeout: Duration,
    /// Listen backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: u32,
    /// How often the node sends its heartbeat to every seed and its fan-out of members.
    pub heartbeat_interval: Duration,
    /// A member with no word of it this long (direct, or a peer's dated word) is dead.
    pub dead_after: Duration,
    /// A dead member silent this long is dropped from the table (so past members cannot fill it).
    pub forget_dead_after: Duration,
    /// How heartbeats are authenticated (or that membership is off).
    pub membership: MembershipAuth,
    /// A heartbeat sent further than this from now (either side) is refused as stale: the
    /// replay window, and the clock skew tolerated between hosts.
    pub replay_window: Duration,
    /// Whether the `/mcp` proxy passes `Authorization`, `Cookie` and `Proxy-Authorization` on.
    pub proxy_forward_credentials: bool,
}

impl NodeConfig {
    /// A config for tests: loopback, ephemeral ports, small limits.
    pub fn for_tests() -> Self {
        NodeConfig {
            cluster: "test".into(),
            node_name: "node1".into(),
            role: Role::Coordinator,
            bind: IpAddr::from([127, 0, 0, 1]),
            api_port: 0,
            listener_port: 0,
            max_connections: 100,
            connection_descriptors: usize::MAX,
            seeds: Vec::new(),
            advertise_host: "127.0.0.1".into(),
            allowed_hosts: Vec::new(),
            idle_timeout: Duration::from_secs(300),
            max_line_bytes: 1 << 20,
            max_batch: 64,
            input_budget_bytes: 64 << 20,
            read_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(300),
            write_timeout: Duration::from_secs(30),
            max_in_flight_per_session: 32,
            outbound_queue: 64,
            max_http_connections: 256,
            probe_connections: 16,
            drain_timeout: Duration::from_secs(5),
            backlog: 1024,
            heartbeat_interval: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
            forget_dead_after: Duration::from_secs(600),
            membership: MembershipAuth::Secret(ClusterSecret::for_tests()),
            replay_window: DEFAULT_REPLAY_WINDOW,
            proxy_forward_credentials: false,
        }
    }
}

/// Parses `500ms`, `30s`, `5m`, `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let value: u64 = text[..digits]
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like `30s` or `5m`"))?;
    let millis = match &text[digits..] {
        "ms" => value,
        "s" | "" => value * 1000,
        "m" => value * 60_000,
        "h" => value * 3_600_000,
        _ => return Err(format!("`{text}` is not a duration like `30s` or `5m`")),
    };
    Ok(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("soon").is_err());
    }
}
