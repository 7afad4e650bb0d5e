//! `status` on Swarm, read from tasks: the swarm node each node's task runs on, the task's
//! state and health, its uptime, and the node's own figures.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use bollard::models::{Task, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;

use super::{SwarmEngine, engine_error};
use crate::config::model::{Cluster, PublishMode};
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

/// Why the service does not run, when its current task is not running: the newest ended task's
/// state, the engine it was on (`hostname` of its swarm node ID) and its error (`No such
/// image: …` when its engine could not pull the image).
pub(super) fn task_error(
    tasks: &[Task],
    hostname: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let current = current_task(tasks)?;
    if current.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING) {
        return None;
    }
    let newest = |t: &&Task| t.version.as_ref().and_then(|v| v.index).unwrap_or(0);
    let failed = tasks
        .iter()
        .filter(|t| {
            let status = t.status.as_ref();
            matches!(
                status.and_then(|s| s.state),
                Some(TaskState::REJECTED | TaskState::FAILED)
            ) && status
                .and_then(|s| s.err.as_deref())
                .is_some_and(|e| !e.is_empty())
        })
        .max_by_key(newest)?;
    let status = failed.status.as_ref()?;
    let state = status.state.map_or("unknown".into(), |s| s.to_string());
    let err = status.err.as_deref().unwrap_or_default();
    let why = if super::image_presence::lacked_image(err) {
        " (its engine does not have the image and could not pull it)"
    } else {
        ""
    };
    let on = failed
        .node_id
        .as_deref()
        .and_then(hostname)
        .filter(|h| !h.is_empty())
        .map(|h| format!(" on {h}"))
        .unwrap_or_default();
    Some(format!("task {state}{on}: {err}{why}"))
}

/// Where a port published by a task is reached: in host mode on the engine that runs it (the
/// address the swarm knows that engine by), through the routing mesh on this machine.
pub fn published_at(cluster: &Cluster, host: Option<&IpAddr>, port: u16) -> SocketAddr {
    match (cluster.swarm.publish_mode, host) {
        (PublishMode::Host, Some(addr)) => SocketAddr::new(*addr, port),
        _ => cluster.reachable(port),
    }
}

impl SwarmEngine {
    /// Every task of service `name`, old ones included.
    pub(super) async fn service_tasks(&self, name: &str) -> anyhow::Result<Vec<Task>> {
        let filters = HashMap::from([("service", vec![name])]);
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        self.docker
            .list_tasks(Some(options))
            .await
            .map_err(|e| engine_error(&format!("listing tasks of {name}"), e))
    }

    /// Every swarm engine by ID: its hostname, and the address the swarm knows it by (where its
    /// host-mode ports are reached), when that address is a usable one.
    async fn engines(&self) -> anyhow::Result<HashMap<String, (String, Option<IpAddr>)>> {
        let mut engines = HashMap::new();
        for node in self
            .docker
            .list_nodes(None::<bollard::query_parameters::ListNodesOptions>)
            .await
            .map_err(|e| engine_error("listing swarm nodes", e))?
        {
            let id = node.id.unwrap_or_default();
            let addr = node
                .status
                .and_then(|s| s.addr)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .filter(|a| !a.is_unspecified());
            let hostname = node
                .description
                .and_then(|d| d.hostname)
                .unwrap_or_default();
            engines.insert(id, (hostname, addr));
        }
        Ok(engines)
    }

    /// The address of the engine that runs each cluster node's current task, by node name (as
    /// in the cluster file); a node with no task placed yet is left out. On a swarm of several
    /// hosts a node's host-mode ports are there, not on this machine.
    pub async fn node_hosts(&self, cluster: &Cluster) -> anyhow::Result<HashMap<String, IpAddr>> {
        let engines = self.engines().await?;
        let mut hosts = HashMap::new();
        for node in &cluster.nodes {
            let tasks = self
                .service_tasks(&resource_name(cluster, &node.name))
                .await?;
            let addr = current_task(&tasks)
                .and_then(|t| t.node_id.as_ref())
                .and_then(|id| engines.get(id))
                .and_then(|(_, addr)| *addr);
            if let Some(addr) = addr {
                hosts.insert(node.name.clone(), addr);
            }
        }
        Ok(hosts)
    }

    /// Per-node task state, health, host and uptime, figures, and Prometheus's target health.
    pub(super) async fn cluster_status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        let engines = self.engines().await?;
        let hostname = |id: &str| engines.get(id).map(|(hostname, _)| hostname.clone());
        let address = |id: &String| engines.get(id).and_then(|(_, addr)| addr.as_ref());
        let mut nodes = Vec::new();
        for node in &cluster.nodes {
            let name = resource_name(cluster, &node.name);
            let tasks = self.service_tasks(&name).await?;
            let task = current_task(&tasks);
            let (state, health) = state_and_health(task);
            let uptime = task
                .filter(|_| state == "running")
                .and_then(|t| t.status.as_ref())
                .and_then(|s| s.timestamp.as_deref())
                .and_then(crate::engine::docker::seconds_since_rfc3339);
            let host = task
                .and_then(|t| t.node_id.as_ref())
                .and_then(|id| hostname(id));
            let host_addr = task.and_then(|t| t.node_id.as_ref()).and_then(address);
            let (connections, rss) = if state == "running" {
                status::node_figures(published_at(cluster, host_addr, node.api_port)).await
            } else {
                (None, None)
            };
            let error = task_error(&tasks, hostname);
            nodes.push(NodeStatus {
                node: node.name.clone(),
                name,
                state,
                health,
                uptime_seconds: uptime,
                connections,
                rss_bytes: rss,
                host,
                error,
            });
        }
        let prometheus = if cluster.prometheus.enabled {
            let name = resource_name(cluster, crate::deploy_spec::PROMETHEUS_NAME);
            let tasks = self.service_tasks(&name).await.unwrap_or_default();
            let host_addr = current_task(&tasks)
                .and_then(|t| t.node_id.as_ref())
                .and_then(address);
            let at = published_at(cluster, host_addr, cluster.prometheus.port);
            status::prometheus_targets(at).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ObjectVersion, TaskStatus};

    fn task(index: u64, node: &str, desired: TaskState, state: TaskState, err: &str) -> Task {
        Task {
            version: Some(ObjectVersion { index: Some(index) }),
            node_id: Some(node.into()),
            desired_state: Some(desired),
            status: Some(TaskStatus {
                state: Some(state),
                err: (!err.is_empty()).then(|| err.to_string()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_task_rejected_for_its_image_is_the_reason_until_one_runs() {
        let pull = "No such image: 127.0.0.1:5000/erlmcp-node:0.1.0-ab@sha256:00";
        let mut tasks = vec![
            task(10, "n2", TaskState::SHUTDOWN, TaskState::REJECTED, pull),
            task(12, "n2", TaskState::RUNNING, TaskState::PREPARING, ""),
        ];
        let hostname = |id: &str| (id == "n2").then(|| "lab-2".to_string());
        assert_eq!(
            task_error(&tasks, hostname).as_deref(),
            Some(
                format!(
                    "task rejected on lab-2: {pull} (its engine does not have the image and could not pull it)"
                )
                .as_str()
            )
        );
        tasks.push(task(14, "n1", TaskState::RUNNING, TaskState::RUNNING, ""));
        assert_eq!(
            task_error(&tasks, hostname),
            None,
            "running again: no error to show"
        );
        assert_eq!(task_error(&[], hostname), None);
    }
}
