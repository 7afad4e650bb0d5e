//! `status` on Swarm, read from tasks: the swarm node each node's task runs on, the task's
//! state and health, its uptime, and the node's own figures.

use std::collections::HashMap;

use bollard::models::{Task, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;

use super::{SwarmEngine, engine_error};
use crate::config::model::Cluster;
use crate::deploy_spec::resource_name;
use crate::engine::status::{self, ClusterStatus, NodeStatus};

/// A task's state, and its health as Swarm implies it: a task of a service with a healthcheck
/// is `starting` until the check passes and `running` once it has.
pub(super) fn state_and_health(task: Option<&Task>) -> (String, String) {
    let Some(task) = task else {
        return ("missing".into(), "unknown".into());
    };
    let state = task.status.as_ref().and_then(|s| s.state);
    let health = match state {
        Some(TaskState::RUNNING) => "healthy",
        Some(TaskState::STARTING) => "starting",
        Some(TaskState::FAILED | TaskState::REJECTED) => "unhealthy",
        _ => "unknown",
    };
    (
        state.map_or("unknown".to_string(), |s| s.to_string()),
        health.into(),
    )
}

/// The task that stands for the service now: the newest one meant to run, else the newest.
pub(super) fn current_task(tasks: &[Task]) -> Option<&Task> {
    let newest = |t: &&Task| t.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    tasks
        .iter()
        .filter(|t| t.desired_state == Some(TaskState::RUNNING))
        .max_by_key(newest)
        .or_else(|| tasks.iter().max_by_key(newest))
}

impl SwarmEngine {
    /// Per-node task state, health, host and uptime, figures, and Prometheus's target health.
    pub(super) async fn cluster_status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        let mut hosts: HashMap<String, String> = HashMap::new();
        for node in self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(|e| engine_error("listing swarm nodes", e))?
        {
            let hostname = node
                .description
                .and_then(|d| d.hostname)
                .unwrap_or_default();
            hosts.insert(node.id.unwrap_or_default(), hostname);
        }
        let mut nodes = Vec::new();
        for node in &cluster.nodes {
            let name = resource_name(cluster, &node.name);
            let filters = HashMap::from([("service", vec![name.as_str()])]);
            let options = ListTasksOptionsBuilder::default().filters(&filters).build();
            let tasks = self
                .docker
                .list_tasks(Some(options))
                .await
                .map_err(|e| engine_error(&format!("listing tasks of {name}"), e))?;
            let task = current_task(&tasks);
            let (state, health) = state_and_health(task);
            let uptime = task
                .filter(|_| state == "running")
                .and_then(|t| t.status.as_ref())
                .and_then(|s| s.timestamp.as_deref())
                .and_then(crate::engine::docker::seconds_since_rfc3339);
            let host = task
                .and_then(|t| t.node_id.as_ref())
                .and_then(|id| hosts.get(id).cloned());
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
                host,
            });
        }
        let prometheus = if cluster.prometheus.enabled {
            status::prometheus_targets(cluster.reachable(cluster.prometheus.port)).await
        } else {
            Err("disabled in the cluster file".into())
        };
        Ok(ClusterStatus {
            cluster: cluster.name.clone(),
            runtime: "swarm".into(),
            nodes,
            prometheus,
        })
    }
}
