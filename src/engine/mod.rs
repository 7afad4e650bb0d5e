//! Runtimes that run a cluster: [`docker`] (the Docker engine through bollard) and [`native`]
//! (local `erlmcp-node` processes). Both turn the cluster into [`crate::plan::Desired`]
//! resources, read back [`crate::plan::Observed`] ones, and carry out a [`crate::plan::Plan`].
//! Beside them: what `stress` needs of a running cluster ([`targets`], [`docker_stats`],
//! [`stress_containers`]), the images both build ([`image`]) for the engine's CPU ([`arch`]) and the cluster secret both hand
//! their nodes ([`secret`]).

pub mod arch;
pub mod docker;
pub mod docker_stats;
pub mod image;
pub mod native;
pub mod secret;
pub mod status;
pub mod stress_containers;
pub mod targets;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::config::model::Cluster;

/// Label naming the cluster a resource belongs to.
pub const LABEL_CLUSTER: &str = "erlmcp.cluster";
/// Label naming the node (or `prometheus`).
pub const LABEL_NODE: &str = "erlmcp.node";
/// Label naming the node's role.
pub const LABEL_ROLE: &str = "erlmcp.role";
/// Label holding the hash of the configuration the resource was created from.
pub const LABEL_CONFIG_HASH: &str = "erlmcp.config-hash";
/// Label on the containers `stress` runs (load workers, baseline echo servers): the cluster
/// they load. Not `erlmcp.cluster`, so `plan` never counts them as the cluster's own.
pub const LABEL_STRESS_OF: &str = "erlmcp.stress-of";

/// Where this machine reaches a port published on the cluster's publish address.
pub fn reachable(cluster: &Cluster, port: u16) -> SocketAddr {
    let ip = match cluster.runtime.publish_address {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        other => other,
    };
    SocketAddr::new(ip, port)
}

use std::time::Duration;

use crate::config::model::RuntimeKind;
use crate::plan::{self as planner, Plan};
use crate::progress::Progress;
use docker::{DockerDesired, DockerEngine};
use native::{NativeEngine, ProcessSpec};
use status::ClusterStatus;

/// The runtime a command acts on.
pub enum Runtime {
    /// A Docker engine.
    Docker(DockerEngine),
    /// Local processes.
    Native(NativeEngine),
}

/// A runtime with the cluster's desired resources worked out.
pub enum Prepared {
    /// Docker and its containers, images, network and volume.
    Docker(DockerEngine, Box<DockerDesired>),
    /// Native and its processes.
    Native(NativeEngine, Vec<ProcessSpec>),
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
            Runtime::Docker(_) => "docker",
            Runtime::Native(_) => "native",
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
                let specs = engine.prepare(cluster, progress)?;
                Prepared::Native(engine, specs)
            }
        })
    }

    /// Per-node status.
    pub async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        match self {
            Runtime::Docker(engine) => engine.status(cluster).await,
            Runtime::Native(engine) => engine.status(cluster).await,
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
            Runtime::Native(engine) => engine.down(volumes, progress)?,
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
            Prepared::Docker(engine, want) => {
                let observed = engine.observe(cluster, want).await?;
                planner::plan(&cluster.name, "docker", &engine.desired(want), &observed)
            }
            Prepared::Native(engine, specs) => {
                let observed = engine.observe(cluster).await?;
                planner::plan(&cluster.name, "native", &engine.desired(specs), &observed)
            }
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
                engine
                    .apply(cluster, want, plan, progress, health_timeout)
                    .await
            }
            Prepared::Native(engine, specs) => {
                engine
                    .apply(cluster, specs, plan, progress, health_timeout)
                    .await
            }
        }
    }
}
