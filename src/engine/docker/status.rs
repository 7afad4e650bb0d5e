//! `status` on Docker: each node's container state, health and uptime, and its own figures.

use super::rfc3339::seconds_since_rfc3339;
use super::{DockerEngine, engine_error, is_not_found};
use crate::config::model::Cluster;
use crate::engine::status::{self, ClusterStatus, NodeStatus};

impl DockerEngine {
    /// Per-node state, health, uptime and figures, and Prometheus's target health.
    pub(super) async fn cluster_status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        let mut nodes = Vec::new();
        for node in &cluster.nodes {
            let name = format!("{}-{}", cluster.name, node.name);
            let (state, health, uptime) = match self.docker.inspect_container(&name, None).await {
                Ok(inspect) => {
                    let state = inspect.state.unwrap_or_default();
                    let health = state
                        .health
                        .and_then(|h| h.status)
                        .map_or("unknown".to_string(), |s| s.to_string());
                    let uptime = state
                        .started_at
                        .as_deref()
                        .and_then(seconds_since_rfc3339)
                        .filter(|_| state.running == Some(true));
                    let status = state
                        .status
                        .map_or("unknown".to_string(), |s| s.to_string());
                    (status, health, uptime)
                }
                Err(e) if is_not_found(&e) => ("missing".into(), "unknown".into(), None),
                Err(e) => return Err(engine_error(&format!("inspecting {name}"), e)),
            };
            let (connections, rss) = if state == "running" {
                status::node_figures(cluster.reachable(node.api_port)).await
            } else {
                (None, None)
            };
            nodes.push(NodeStatus {
                node: node.name.clone(),
                name,
                state,
                health,
                uptime_seconds: uptime,
                connections,
                rss_bytes: rss,
                host: None,
                error: None,
            });
        }
        let prometheus = if cluster.prometheus.enabled {
            status::prometheus_targets(cluster.reachable(cluster.prometheus.port)).await
        } else {
            Err("disabled in the cluster file".into())
        };
        Ok(ClusterStatus {
            cluster: cluster.name.clone(),
            runtime: "docker".into(),
            nodes,
            prometheus,
        })
    }
}
