//! The Docker Swarm driver: each node is a one-replica service on an attachable overlay
//! network, Prometheus another, the cluster secret a Swarm secret and Prometheus's files Swarm
//! configs; a changed node is rolled the Swarm way (a service update, its update and rollback
//! settings from `[swarm.update]`). Images are built by the Docker driver it wraps, through the
//! same engine API (bollard), never the docker CLI.
//!
//! # Layout
//! - [`service_spec`]: a service from the deployment spec, and the engine's `ServiceSpec`.
//! - `desired`: everything the cluster wants, worked out once; `observe`: what the swarm has.
//! - `steps`: the overlay network, secrets, configs, a service's create, update and removal,
//!   and the wait for its task to be healthy.
//! - `status` (tasks: where each node runs, its state and health), `down` (by label).
//! - `image_presence`: before the first service, whether every engine has the images (no
//!   registry); `registry`: before the first service, the images pushed to `[swarm] registry`.

mod desired;
mod down;
mod image_presence;
pub(crate) use image_presence::task_state_is_final;
mod observe;
pub mod registry;
pub mod service_spec;
mod status;
mod steps;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, bail};
use bollard::Docker;
use bollard::models::LocalNodeState;

pub use desired::SwarmDesired;
pub use status::published_at;

use super::docker::{DockerEngine, LogTarget, cluster_filter, is_not_found};
use super::driver::{Driver, Unhealthy};
use super::status::ClusterStatus;
use crate::config::model::Cluster;
use crate::logs::{LogLine, LogRequest};
use crate::plan::{Desired, Observed, ResourceKind, Step};
use crate::progress::{Progress, Task};

/// A connection to a Docker engine that is a swarm manager.
pub struct SwarmEngine {
    engine: DockerEngine,
    docker: Docker,
    /// Made once per command before the first service: the images pushed to the registry, or,
    /// with no registry, checked on every engine.
    images_ready: tokio::sync::OnceCell<Result<ReadyImages, String>>,
}

/// The images as the services may use them.
#[derive(Debug, Default)]
pub(super) struct ReadyImages {
    /// Each pushed image's digest reference by its pushed `repo:tag` (empty: no registry).
    pushed: BTreeMap<String, String>,
    /// The registry's login from the Docker client's config, also handed to Swarm.
    login: Option<Box<registry::RegistryLogin>>,
}

fn engine_error(what: &str, error: bollard::errors::Error) -> anyhow::Error {
    let message = match &error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    anyhow!("{what}: the engine said: {message}")
}

impl SwarmEngine {
    /// Connects to the cluster's engine and checks it manages a swarm.
    pub async fn connect(cluster: &Cluster) -> anyhow::Result<Self> {
        let engine = DockerEngine::connect(cluster).await?;
        let docker = engine.client();
        let info = docker
            .info()
            .await
            .map_err(|e| engine_error("asking the engine about its swarm", e))?;
        let swarm = info.swarm.unwrap_or_default();
        if swarm.local_node_state != Some(LocalNodeState::ACTIVE) {
            bail!(
                "the Docker engine at {} is not part of a swarm; run `docker swarm init` (or join one) first, \
                 or use `--runtime docker`",
                engine.version().await
            );
        }
        if swarm.control_available != Some(true) {
            bail!(
                "the Docker engine at {} is a swarm worker; point DOCKER_HOST at a manager",
                engine.version().await
            );
        }
        Ok(SwarmEngine {
            engine,
            docker,
            images_ready: tokio::sync::OnceCell::new(),
        })
    }

    /// The engine client (cheap to clone).
    pub fn client(&self) -> Docker {
        self.docker.clone()
    }

    /// The manager's engine as the Docker driver sees it (images are built there).
    pub fn docker_engine(&self) -> &DockerEngine {
        &self.engine
    }
}

impl SwarmEngine {
    /// With `[swarm] registry`, pushes the images (engines pull them, so none is looked for on
    /// the engines); without, checks that every engine has them.
    async fn ready_images(
        &self,
        cluster: &Cluster,
        want: &SwarmDesired,
        progress: &Progress,
        task: &Task,
    ) -> anyhow::Result<ReadyImages> {
        if let Some(registry) = &cluster.swarm.registry {
            let login = registry::login_for(registry, |warning| progress.warn(warning))?;
            let pushed = self.push_images(&want.pushes, login.as_ref(), task).await?;
            return Ok(ReadyImages {
                pushed,
                login: login.map(Box::new),
            });
        }
        task.step("images on every engine");
        let mut images = Vec::new();
        let tags = std::iter::once(&want.images.node_image)
            .chain(&want.images.prometheus_image)
            .map(|image| image.tag.clone());
        for tag in tags {
            if let Ok(Some(id)) = self.docker.inspect_image(&tag).await.map(|i| i.id) {
                images.push((tag, id));
            }
        }
        self.check_images_on_every_engine(cluster, &images).await?;
        Ok(ReadyImages::default())
    }
}

impl Driver for SwarmEngine {
    type Want = SwarmDesired;

    fn name(&self) -> &'static str {
        "swarm"
    }

    async fn prepare(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<SwarmDesired> {
        if !cluster.runtime.publish_address.is_unspecified() {
            // Swarm's published ports take no host address: say so rather than pretend.
            progress.warn(format!(
                "swarm publishes ports on every interface of the engine's host; `publish_address = \"{}\"` does not apply \
                 (firewall the ports, or use `--runtime docker` to bind one address)",
                cluster.runtime.publish_address
            ));
        }
        let images = self.engine.prepare(cluster, progress).await?;
        Ok(SwarmDesired::new(cluster, images))
    }

    fn desired(&self, want: &SwarmDesired) -> Vec<Desired> {
        want.planned()
    }

    async fn observe(
        &self,
        cluster: &Cluster,
        want: &SwarmDesired,
    ) -> anyhow::Result<Vec<Observed>> {
        self.observe_cluster(cluster, want).await
    }

    async fn provide(
        &self,
        cluster: &Cluster,
        want: &SwarmDesired,
        step: &Step,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match step.kind {
            ResourceKind::Image => {
                self.engine
                    .provide(cluster, &want.images, step, progress)
                    .await
            }
            ResourceKind::Network => self.ensure_network(cluster, step, progress).await,
            other => unreachable!("{other} is started, not provided, on swarm"),
        }
    }

    async fn remove(&self, step: &Step, progress: &Progress) -> anyhow::Result<()> {
        self.remove_step(step, progress).await
    }

    async fn start(
        &self,
        cluster: &Cluster,
        want: &SwarmDesired,
        step: &Step,
        progress: &Progress,
        task: &Task,
    ) -> anyhow::Result<()> {
        let ready = self
            .images_ready
            .get_or_init(|| async {
                self.ready_images(cluster, want, progress, task)
                    .await
                    .map_err(|e| format!("{e:#}"))
            })
            .await;
        let ready = match ready {
            Ok(ready) => ready,
            Err(error) => bail!("{error}"),
        };
        self.start_service(
            cluster,
            want.service(&step.name),
            ready,
            step,
            progress,
            task,
        )
        .await
    }

    async fn wait_healthy(
        &self,
        _cluster: &Cluster,
        want: &SwarmDesired,
        step: &Step,
        timeout: Duration,
        task: &Task,
    ) -> anyhow::Result<()> {
        let hash = step.config_hash.clone().unwrap_or_default();
        let pulled = !want.pushes.is_empty();
        self.wait_service_healthy(want.service(&step.name), pulled, &hash, timeout, task)
            .await
    }

    /// A service that never became healthy stays: Swarm keeps restarting its task (or rolled
    /// it back), and `docker service ps` shows why.
    fn unhealthy(&self) -> Unhealthy {
        Unhealthy::Keep
    }

    async fn discard(&self, step: &Step) -> anyhow::Result<()> {
        self.remove_service(&step.name).await
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
        self.engine
            .stream_logs(LogTarget::Service, cluster, sources, request, follow, emit)
            .await
    }
}
