//! Runtimes that run a cluster: [`docker`] (the Docker engine through bollard), [`swarm`]
//! (Docker Swarm services, through the same API) and [`native`] (local `erlmcp-node`
//! processes), all behind one [`driver::Driver`] interface. Each turns the
//! cluster's deployment spec ([`crate::deploy_spec`]) into [`crate::plan::Desired`] resources and
//! reads back [`crate::plan::Observed`] ones; [`schedule`] carries a [`crate::plan::Plan`] out in
//! the same order on every runtime. Beside them: the images both build ([`image`]) for the
//! engine's CPU ([`arch`]), the cluster
//! secret both hand their nodes ([`secret`]) and what `status` reports ([`status`]).

pub mod arch;
pub mod docker;
pub mod driver;
#[cfg(test)]
mod fake;
pub mod image;
pub mod native;
pub mod schedule;
pub mod secret;
pub mod status;
pub mod swarm;

use std::time::Duration;

pub use crate::deploy_spec::{LABEL_CLUSTER, LABEL_CONFIG_HASH, LABEL_NODE, LABEL_ROLE};

use crate::config::model::{Cluster, RuntimeKind};
use crate::plan::{self as planner, Plan};
use crate::progress::Progress;
use docker::{DockerDesired, DockerEngine};
use driver::Driver;
use native::{NativeEngine, ProcessSpec};
use status::ClusterStatus;
use swarm::{SwarmDesired, SwarmEngine};

/// The runtime a command acts on.
pub enum Runtime {
    /// A Docker engine.
    Docker(DockerEngine),
    /// Local processes.
    Native(NativeEngine),
    /// Docker Swarm services.
    Swarm(SwarmEngine),
}

/// A runtime with the cluster's desired resources worked out.
pub enum Prepared {
    /// Docker and its containers, images, network and volume.
    Docker(DockerEngine, Box<DockerDesired>),
    /// Native and its processes.
    Native(NativeEngine, Vec<ProcessSpec>),
    /// Swarm and its services, images and network.
    Swarm(SwarmEngine, Box<SwarmDesired>),
}

impl Runtime {
    /// The runtime the cluster file names, or `choice` when given. A Docker cluster falls back to
    /// native processes when no engine answers, and says so.
    pub async fn select(
        cluster: &Cluster,
        choice: Option<RuntimeKind>,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        let kind = choice.unwrap_or(cluster.runtime.kind);
        if kind == RuntimeKind::Native {
            return Ok(Runtime::Native(NativeEngine::new(cluster)));
        }
        // A swarm cluster runs on a swarm: never a silent fallback to containers or processes.
        if kind == RuntimeKind::Swarm {
            return Ok(Runtime::Swarm(SwarmEngine::connect(cluster).await?));
        }
        match DockerEngine::connect(cluster).await {
            Ok(engine) => Ok(Runtime::Docker(engine)),
            // An explicit `--runtime docker` means docker: no silent fallback.
            Err(error) if choice.is_some() => Err(error),
            Err(error) => {
                progress.warn(format!(
                    "{error:#}\nusing the native runtime (local processes) instead"
                ));
                Ok(Runtime::Native(NativeEngine::new(cluster)))
            }
        }
    }

    /// `docker` or `native`.
    pub fn name(&self) -> &'static str {
        match self {
            Runtime::Docker(engine) => engine.name(),
            Runtime::Native(engine) => engine.name(),
            Runtime::Swarm(engine) => engine.name(),
        }
    }

    /// Works out the desired resources (may build the node binary; builds no image).
    pub async fn prepare(self, cluster: &Cluster, progress: &Progress) -> anyhow::Result<Prepared> {
        Ok(match self {
            Runtime::Docker(engine) => {
                let want = engine.prepare(cluster, progress).await?;
                Prepared::Docker(engine, Box::new(want))
            }
            Runtime::Native(engine) => {
                let specs = engine.prepare(cluster, progress).await?;
                Prepared::Native(engine, specs)
            }
            Runtime::Swarm(engine) => {
                let want = engine.prepare(cluster, progress).await?;
                Prepared::Swarm(engine, Box::new(want))
            }
        })
    }

    /// The Docker engine client of a container runtime (Docker or Swarm).
    pub fn engine_client(&self) -> Option<bollard::Docker> {
        match self {
            Runtime::Docker(engine) => Some(engine.client()),
            Runtime::Swarm(engine) => Some(engine.client()),
            Runtime::Native(_) => None,
        }
    }

    /// Per-node status.
    pub async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        match self {
            Runtime::Docker(engine) => engine.status(cluster).await,
            Runtime::Native(engine) => engine.status(cluster).await,
            Runtime::Swarm(engine) => engine.status(cluster).await,
        }
    }

    /// Hands `emit` the lines of `sources`, merged in time order; with `follow`, new ones as they
    /// come, until Ctrl-C.
    pub async fn logs(
        &self,
        cluster: &Cluster,
        sources: &[String],
        request: &crate::logs::LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<crate::logs::LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        match self {
            Runtime::Docker(engine) => engine.logs(cluster, sources, request, follow, emit).await,
            Runtime::Native(engine) => engine.logs(cluster, sources, request, follow, emit).await,
            Runtime::Swarm(engine) => engine.logs(cluster, sources, request, follow, emit).await,
        }
    }

    /// Removes what the cluster runs; with `volumes`, its data and its stored secret too.
    pub async fn down(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match self {
            Runtime::Docker(engine) => engine.down(cluster, volumes, progress).await?,
            Runtime::Native(engine) => engine.down(cluster, volumes, progress).await?,
            Runtime::Swarm(engine) => engine.down(cluster, volumes, progress).await?,
        }
        let stored = secret::stored_path(&cluster.name);
        if volumes {
            if secret::remove(&cluster.name)? {
                progress.info(format!("cluster secret {} removed", stored.display()));
            }
        } else if stored.exists() {
            progress.info(format!(
                "cluster secret {} kept (`down --volumes` removes it)",
                stored.display()
            ));
        }
        Ok(())
    }
}

impl Prepared {
    /// Desired against observed.
    pub async fn plan(&self, cluster: &Cluster) -> anyhow::Result<Plan> {
        Ok(match self {
            Prepared::Docker(engine, want) => plan_of(engine, cluster, want).await?,
            Prepared::Native(engine, specs) => plan_of(engine, cluster, specs).await?,
            Prepared::Swarm(engine, want) => plan_of(engine, cluster, want).await?,
        })
    }

    /// Carries out a plan made by [`Prepared::plan`].
    pub async fn apply(
        &self,
        cluster: &Cluster,
        plan: &Plan,
        progress: &Progress,
        health_timeout: Option<Duration>,
    ) -> anyhow::Result<()> {
        // Before any node starts: a node with seeds and no secret refuses to start.
        secret::ensure(cluster)?;
        match self {
            Prepared::Docker(engine, want) => {
                schedule::apply(engine, cluster, want, plan, progress, health_timeout).await
            }
            Prepared::Native(engine, specs) => {
                schedule::apply(engine, cluster, specs, plan, progress, health_timeout).await
            }
            Prepared::Swarm(engine, want) => {
                schedule::apply(engine, cluster, want, plan, progress, health_timeout).await
            }
        }
    }
}

/// Desired against observed, for any driver.
pub async fn plan_of<D: Driver>(
    driver: &D,
    cluster: &Cluster,
    want: &D::Want,
) -> anyhow::Result<Plan> {
    let observed = driver.observe(cluster, want).await?;
    Ok(planner::plan(
        &cluster.name,
        driver.name(),
        &driver.desired(want),
        &observed,
    ))
}
