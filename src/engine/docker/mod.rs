//! The Docker driver: builds images, creates the network, volumes and containers, waits for
//! health, and reads state back, all through the engine's API (bollard), never the docker CLI.
//!
//! # Layout
//! - [`container_spec`]: a container from the deployment spec, and the engine's create request.
//! - [`images`]: the node and Prometheus images and how each is made present.
//! - `desired`: everything the cluster wants, worked out once; `observe`: what the engine has.
//! - `steps`: the primitive steps (network, volume, container start and removal).
//! - `health`: health and readiness waits; `status`, `down`, `logs`; `rfc3339`: the engine's
//!   timestamps.

mod container_spec;
mod desired;
mod down;
mod health;
mod images;
mod logs;
mod observe;
mod rfc3339;
mod status;
mod steps;

use std::collections::HashMap;
use std::time::Duration;

use anyhow::anyhow;
use bollard::{API_DEFAULT_VERSION, Docker};

pub use container_spec::{ContainerSpec, NODE_USER, PROMETHEUS_USER};
pub(crate) use container_spec::{least_privilege, nofile_ulimits};
#[cfg(test)]
pub(crate) use container_spec::{node_spec, prometheus_spec};
pub use desired::DockerDesired;
pub use images::{ImageNeed, ImageSource};
pub use logs::LogTarget;
pub(crate) use rfc3339::seconds_since_rfc3339;

use super::driver::{Driver, Unhealthy};
use super::status::ClusterStatus;
use crate::config::model::Cluster;
use crate::deploy_spec::LABEL_CLUSTER;
use crate::logs::{LogLine, LogRequest};
use crate::plan::{Desired, Observed, ResourceKind, Step};
use crate::progress::{Progress, Task};

/// A connection to a Docker engine.
pub struct DockerEngine {
    docker: Docker,
    socket: String,
    /// The daemon's hard open-file limit, when it runs on this machine and we can see it.
    daemon_nofile: Option<u64>,
}

fn engine_error(what: &str, error: bollard::errors::Error) -> anyhow::Error {
    let message = match &error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    anyhow!("{what}: the engine said: {message}")
}

/// Whether the engine answered 404 (no such object).
pub(crate) fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

pub(in crate::engine) fn cluster_filter(cluster: &Cluster) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_CLUSTER}={}", cluster.name)],
    )])
}

impl DockerEngine {
    /// Connects to the cluster's engine (`DOCKER_HOST`, Colima's socket, or the default one).
    pub async fn connect(cluster: &Cluster) -> anyhow::Result<Self> {
        let socket = crate::host::docker_socket(cluster);
        let socket = socket.to_string_lossy().into_owned();
        let unreachable = |why: String| {
            anyhow!(
                "no Docker engine answers at {socket} ({why}); start Docker (or `generated/colima-setup.sh start`), \
                 set DOCKER_HOST, or use `--runtime native`"
            )
        };
        let docker = Docker::connect_with_socket(&socket, 120, API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?;
        // Older engines (20.10 speaks API 1.41) refuse newer clients: agree on a version first.
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        docker
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let local = socket == "/var/run/docker.sock" || socket == "/run/docker.sock";
        Ok(DockerEngine {
            docker,
            socket,
            daemon_nofile: if local {
                crate::host::dockerd_nofile_hard()
            } else {
                None
            },
        })
    }

    /// The engine client (cheap to clone).
    pub fn client(&self) -> Docker {
        self.docker.clone()
    }

    /// The engine's version, for messages.
    pub async fn version(&self) -> String {
        match self.docker.version().await {
            Ok(v) => format!("{} at {}", v.version.unwrap_or_default(), self.socket),
            Err(_) => self.socket.clone(),
        }
    }

    async fn image_present(&self, tag: &str) -> bool {
        self.docker.inspect_image(tag).await.is_ok()
    }
}

impl DockerDesired {
    /// The container spec a step names (the plan names only wanted containers).
    fn container(&self, name: &str) -> &ContainerSpec {
        self.containers
            .iter()
            .find(|c| c.name == name)
            .expect("the plan names only wanted containers")
    }
}

impl Driver for DockerEngine {
    type Want = DockerDesired;

    fn name(&self) -> &'static str {
        "docker"
    }

    async fn prepare(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<DockerDesired> {
        self.prepare_desired(cluster, progress).await
    }

    fn desired(&self, want: &DockerDesired) -> Vec<Desired> {
        DockerEngine::planned(want)
    }

    async fn observe(
        &self,
        cluster: &Cluster,
        want: &DockerDesired,
    ) -> anyhow::Result<Vec<Observed>> {
        self.observe_cluster(cluster, want).await
    }

    async fn provide(
        &self,
        cluster: &Cluster,
        want: &DockerDesired,
        step: &Step,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match step.kind {
            ResourceKind::Image => {
                let need = if step.name == want.node_image.tag {
                    &want.node_image
                } else {
                    want.prometheus_image
                        .as_ref()
                        .expect("the plan names only wanted images")
                };
                self.provide_image(need, progress).await
            }
            ResourceKind::Network => self.ensure_network(cluster, step, progress).await,
            ResourceKind::Volume => self.create_volume(cluster, step).await,
            other => unreachable!("{other} is started, not provided"),
        }
    }

    async fn remove(&self, step: &Step, progress: &Progress) -> anyhow::Result<()> {
        self.remove_step(step, progress).await
    }

    async fn start(
        &self,
        _cluster: &Cluster,
        want: &DockerDesired,
        step: &Step,
        progress: &Progress,
        task: &Task,
    ) -> anyhow::Result<()> {
        self.start_container(want.container(&step.name), step, progress, task)
            .await
    }

    async fn wait_healthy(
        &self,
        cluster: &Cluster,
        want: &DockerDesired,
        step: &Step,
        timeout: Duration,
        task: &Task,
    ) -> anyhow::Result<()> {
        if want.container(&step.name).healthcheck.is_none() {
            return Ok(());
        }
        self.wait_container_healthy(&step.name, timeout).await?;
        if step.kind == ResourceKind::Prometheus {
            self.wait_prometheus_ready(cluster, task, timeout).await?;
        }
        Ok(())
    }

    fn unhealthy(&self) -> Unhealthy {
        Unhealthy::Keep
    }

    async fn discard(&self, step: &Step) -> anyhow::Result<()> {
        self.remove_container(&step.name).await
    }

    async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        self.cluster_status(cluster).await
    }

    async fn down(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        self.remove_cluster(cluster, volumes, progress).await
    }

    async fn logs(
        &self,
        cluster: &Cluster,
        sources: &[String],
        request: &LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.stream_logs(
            LogTarget::Container,
            cluster,
            sources,
            request,
            follow,
            emit,
        )
        .await
    }
}
