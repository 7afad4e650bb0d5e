//! What a native cluster runs: the state file's processes, alive and answering, for the planner
//! and for `status`.

use std::time::Duration;

use super::NativeEngine;
use super::process::{alive, now};
use super::state::Running;
use crate::config::model::Cluster;
use crate::deploy_spec;
use crate::engine::status::{self, ClusterStatus, NodeStatus};
use crate::plan::{Observed, ResourceKind};

impl NativeEngine {
    /// The processes the state file names, with whether each is alive and answering.
    pub(super) async fn observe_processes(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<Observed>> {
        let state = self.load_state()?;
        let mut observed = Vec::new();
        for process in &state.processes {
            let healthy =
                alive(process.pid, &process.program) && self.answers(cluster, process).await;
            observed.push(Observed {
                kind: ResourceKind::of_role_label(Some(&process.role)),
                name: process.name.clone(),
                config_hash: Some(process.config_hash.clone()),
                healthy,
            });
        }
        Ok(observed)
    }

    pub(super) async fn answers(&self, cluster: &Cluster, process: &Running) -> bool {
        let path = if process.role == deploy_spec::PROMETHEUS_NAME {
            "/-/ready"
        } else {
            "/health"
        };
        crate::probe::get(
            cluster.reachable(process.health_port),
            path,
            Duration::from_secs(1),
        )
        .await
        .is_ok_and(|r| r.status == 200)
    }

    /// Per-node state, health, uptime and figures, and Prometheus's target health.
    pub(super) async fn cluster_status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        let state = self.load_state()?;
        let mut nodes = Vec::new();
        for node in &cluster.nodes {
            let name = format!("{}-{}", cluster.name, node.name);
            let process = state.processes.iter().find(|p| p.name == name);
            let (state_text, health, uptime, figures) = match process {
                Some(p) if alive(p.pid, &p.program) => {
                    let healthy = self.answers(cluster, p).await;
                    let figures = status::node_figures(cluster.reachable(node.api_port)).await;
                    (
                        "running".to_string(),
                        if healthy { "healthy" } else { "unhealthy" }.to_string(),
                        Some(now().saturating_sub(p.started_at)),
                        figures,
                    )
                }
                Some(_) => ("exited".into(), "unknown".into(), None, (None, None)),
                None => ("missing".into(), "unknown".into(), None, (None, None)),
            };
            nodes.push(NodeStatus {
                node: node.name.clone(),
                name,
                state: state_text,
                health,
                uptime_seconds: uptime,
                connections: figures.0,
                rss_bytes: figures.1,
                host: None,
                error: None,
            });
        }
        let prometheus = if state
            .processes
            .iter()
            .any(|p| p.role == deploy_spec::PROMETHEUS_NAME)
        {
            status::prometheus_targets(cluster.reachable(cluster.prometheus.port)).await
        } else {
            Err("not running (no host prometheus, or disabled)".into())
        };
        Ok(ClusterStatus {
            cluster: cluster.name.clone(),
            runtime: "native".into(),
            nodes,
            prometheus,
        })
    }
}
