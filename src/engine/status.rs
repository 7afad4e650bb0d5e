//! What `status` reports per node, the same for every runtime: state, health, uptime, and the
//! node's own figures read from its `/metrics`; plus Prometheus's view of its targets.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;

use crate::probe;

/// One node's status.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Node name.
    pub node: String,
    /// Container or process name.
    pub name: String,
    /// `running`, `exited`, `missing`, …
    pub state: String,
    /// `healthy`, `unhealthy`, `starting` or `unknown`.
    pub health: String,
    /// Seconds since it started, when running.
    pub uptime_seconds: Option<u64>,
    /// `erlmcp_connections_active` summed over transports, from its `/metrics`.
    pub connections: Option<f64>,
    /// `process_resident_memory_bytes`, from its `/metrics`.
    pub rss_bytes: Option<f64>,
    /// The machine it runs on, where the runtime places nodes (a Swarm node's hostname).
    pub host: Option<String>,
    /// Why it is not running, when the runtime says (a Swarm task rejected because its engine
    /// could not pull the image, with the engine's error).
    pub error: Option<String>,
}

/// Prometheus's health of one scrape target.
#[derive(Debug, Clone, Serialize)]
pub struct TargetHealth {
    /// The target's `node` label.
    pub node: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// The last scrape error, if any.
    pub last_error: String,
}

/// The whole cluster's status.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// Cluster name.
    pub cluster: String,
    /// Runtime.
    pub runtime: String,
    /// Nodes.
    pub nodes: Vec<NodeStatus>,
    /// Prometheus targets, or why they could not be read.
    pub prometheus: Result<Vec<TargetHealth>, String>,
}

/// Reads a node's connections and RSS from its `/metrics`; `None`s when it does not answer.
pub async fn node_figures(api: SocketAddr) -> (Option<f64>, Option<f64>) {
    match probe::get(api, "/metrics", Duration::from_secs(2)).await {
        Ok(response) if response.status == 200 => (
            probe::metric_sum(&response.body, "erlmcp_connections_active", &[]),
            probe::metric_sum(&response.body, "process_resident_memory_bytes", &[]),
        ),
        _ => (None, None),
    }
}

/// Asks Prometheus for its targets' health.
pub async fn prometheus_targets(addr: SocketAddr) -> Result<Vec<TargetHealth>, String> {
    let response = probe::get(addr, "/api/v1/targets?state=active", Duration::from_secs(3))
        .await
        .map_err(|e| format!("not reachable ({e})"))?;
    let json: serde_json::Value =
        serde_json::from_str(&response.body).map_err(|e| e.to_string())?;
    let targets = json["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    Ok(targets
        .iter()
        .filter(|t| t["labels"]["node"].is_string())
        .map(|t| TargetHealth {
            node: t["labels"]["node"].as_str().unwrap_or_default().to_string(),
            health: t["health"].as_str().unwrap_or("unknown").to_string(),
            last_error: t["lastError"].as_str().unwrap_or_default().to_string(),
        })
        .collect())
}

impl ClusterStatus {
    /// The status as a table for people.
    pub fn to_text(&self) -> String {
        let mut out = format!("cluster {} on {}\n", self.cluster, self.runtime);
        out.push_str(&format!(
            "  {:<10} {:<22} {:<10} {:<10} {:>9} {:>12} {:>10}\n",
            "NODE", "NAME", "STATE", "HEALTH", "UPTIME", "CONNECTIONS", "RSS"
        ));
        for node in &self.nodes {
            let uptime = node.uptime_seconds.map_or("-".into(), |s| format!("{s}s"));
            let connections = node.connections.map_or("-".into(), |c| format!("{c:.0}"));
            let rss = node.rss_bytes.map_or("-".into(), |b| {
                crate::config::units::ByteSize(b as u64).approx()
            });
            out.push_str(&format!(
                "  {:<10} {:<22} {:<10} {:<10} {:>9} {:>12} {:>10}",
                node.node, node.name, node.state, node.health, uptime, connections, rss
            ));
            if let Some(host) = &node.host {
                out.push_str(&format!("  on {host}"));
            }
            out.push('\n');
            if let Some(error) = &node.error {
                out.push_str(&format!("    {error}\n"));
            }
        }
        match &self.prometheus {
            Ok(targets) if targets.is_empty() => out.push_str("prometheus: no node targets yet\n"),
            Ok(targets) => {
                let up = targets.iter().filter(|t| t.health == "up").count();
                out.push_str(&format!(
                    "prometheus: {up}/{} node targets up\n",
                    targets.len()
                ));
                for target in targets.iter().filter(|t| t.health != "up") {
                    out.push_str(&format!(
                        "  {} {}: {}\n",
                        target.node, target.health, target.last_error
                    ));
                }
            }
            Err(why) => out.push_str(&format!(
                "prometheus: {why}: metrics are not being collected\n"
            )),
        }
        out
    }
}
