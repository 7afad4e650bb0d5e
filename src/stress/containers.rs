//! The load generator's side of a Docker cluster: `stress` workers and the baseline echo servers
//! as containers on the cluster's own network. Sessions then go container to container, not
//! through the userland proxy behind published ports, which failed at about 9,000 connections
//! on one port here and shares the 20,000 open-file cap of every process.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder,
};
use futures_util::future::BoxFuture;
use futures_util::{StreamExt as _, TryStreamExt as _};
use tokio_util::io::StreamReader;

use crate::config::model::{CONTAINER_API_PORT, CONTAINER_LISTENER_PORT, Cluster};
use crate::engine::docker::{DockerEngine, NODE_USER, least_privilege, nofile_ulimits};
use crate::engine::image;
use crate::progress::Progress;
use crate::stress::worker::ShardSpec;
use crate::stress::{StressTarget, TargetKind, WorkerHost, WorkerInput, WorkerPipes};

/// Label on the containers `stress` runs (load workers, baseline echo servers): the cluster
/// they load. Not `erlmcp.cluster`, so `plan` never counts them as the cluster's own.
pub const LABEL_STRESS_OF: &str = "erlmcp.stress-of";

/// Label saying what a stress container is: `worker` or `baseline`.
const LABEL_STRESS_ROLE: &str = "erlmcp.stress-role";

/// The user stress workers run as (`nobody`, as in their image).
pub const STRESS_WORKER_USER: &str = "65534:65534";

/// Open files a worker container asks for beyond its sessions (stdio, the runtime's own).
pub(crate) const FD_HEADROOM: u64 = 512;

/// How long a baseline echo container may take to listen.
const BASELINE_START_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts `stress` workers as containers of this `erlmcp-gen` binary on the cluster network.
pub struct ContainerWorkers {
    docker: Docker,
    image: String,
    network: String,
    cluster: String,
    nofile: u64,
}

impl ContainerWorkers {
    /// Builds the worker image from `binary` (this program) when the engine lacks it, and
    /// removes stress containers an earlier, interrupted run of this cluster left behind.
    pub async fn prepare(
        engine: &DockerEngine,
        cluster: &Cluster,
        binary: &Path,
        sessions_per_worker: u32,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        remove_stress_containers(&engine.client(), &cluster.name).await?;
        let image = worker_image(engine, cluster, binary, progress).await?;
        let nofile = engine.clamp_nofile(
            "stress workers",
            u64::from(sessions_per_worker) + FD_HEADROOM,
            progress,
        );
        Ok(Self {
            docker: engine.client(),
            image,
            network: cluster.network.clone(),
            cluster: cluster.name.clone(),
            nofile,
        })
    }

    fn name(&self, worker: u32) -> String {
        format!("{}-stress-worker-{worker}", self.cluster)
    }

    async fn start_worker(&self, worker: u32) -> anyhow::Result<WorkerPipes> {
        let name = self.name(worker);
        let body = worker_body(&self.image, &self.cluster, &self.network, self.nofile);
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| anyhow!("creating {name}: {e}"))?;
        let attach = AttachContainerOptionsBuilder::default()
            .stdin(true)
            .stdout(true)
            .stderr(true)
            .stream(true)
            .build();
        let attached = match self.docker.attach_container(&name, Some(attach)).await {
            Ok(attached) => attached,
            Err(e) => {
                remove_container(&self.docker, &name).await;
                bail!("attaching to {name}: {e}");
            }
        };
        if let Err(e) = self.docker.start_container(&name, None).await {
            remove_container(&self.docker, &name).await;
            bail!("starting {name}: {e}");
        }
        // The worker's stdout carries its events; its stderr is passed on as ours.
        let label = name.clone();
        let stdout = attached
            .output
            .map_err(|e| std::io::Error::other(e.to_string()))
            .try_filter_map(move |chunk| {
                let bytes = match chunk {
                    LogOutput::StdOut { message } | LogOutput::Console { message } => Some(message),
                    LogOutput::StdErr { message } => {
                        eprint!("{label}: {}", String::from_utf8_lossy(&message));
                        None
                    }
                    LogOutput::StdIn { .. } => None,
                };
                std::future::ready(Ok(bytes))
            });
        let docker = self.docker.clone();
        Ok(WorkerPipes {
            input: WorkerInput::Stdin(attached.input),
            output: Box::pin(StreamReader::new(stdout)),
            finished: Box::pin(async move { remove_container(&docker, &name).await }),
        })
    }
}

/// The image workers run, built on `engine` from `binary` (this program) when it lacks it, or
/// from the workspace's source when this program is not a Linux one.
pub(crate) async fn worker_image(
    engine: &DockerEngine,
    cluster: &Cluster,
    binary: &Path,
    progress: &Progress,
) -> anyhow::Result<String> {
    let from_source = !image::runs_in_linux_container(binary);
    let context = if from_source {
        let root = image::workspace_root().with_context(|| {
            format!(
                "this erlmcp-gen ({}) is not a Linux program, so the worker containers cannot \
                 run it, and building their image from source needs the erlmcp-gen workspace; \
                 use `--workers host`",
                binary.display()
            )
        })?;
        progress.info(format!(
            "stress workers: this erlmcp-gen is not a Linux program; building the worker \
             image from source in {}",
            cluster.image.builder
        ));
        image::source_stress_worker_context(&cluster.image.builder, &root)?
    } else {
        image::stress_worker_context(binary)?
    };
    let built = engine.ensure_image(context, progress).await;
    let image = if from_source {
        built.with_context(|| {
            format!(
                "the worker image's source build needs {} (pull it, or use `--workers host`)",
                cluster.image.builder
            )
        })?
    } else {
        built?
    };
    Ok(image)
}

impl WorkerHost for ContainerWorkers {
    fn describe(&self) -> String {
        format!("containers on network {}", self.network)
    }

    fn start<'a>(&'a self, spec: &'a ShardSpec) -> BoxFuture<'a, anyhow::Result<WorkerPipes>> {
        Box::pin(self.start_worker(spec.worker))
    }
}

/// The cluster's MCP targets as containers on its network reach them: each node's address on
/// the network with its in-container listener port (MCP over TCP) and API port (MCP over HTTP).
/// Build samplers, which read `/metrics` from this machine, before the rewrite.
pub async fn network_targets(
    engine: &DockerEngine,
    cluster: &Cluster,
    targets: &mut [StressTarget],
) -> anyhow::Result<()> {
    let docker = engine.client();
    for target in targets.iter_mut().filter(|t| t.kind == TargetKind::Mcp) {
        let container = format!("{}-{}", cluster.name, target.node);
        let ip = container_ip(&docker, &container, &cluster.network).await?;
        target.tcp_addr = SocketAddr::new(ip, CONTAINER_LISTENER_PORT);
        target.api_addr = Some(SocketAddr::new(ip, CONTAINER_API_PORT));
    }
    Ok(())
}

/// A container's address on `network`.
async fn container_ip(docker: &Docker, container: &str, network: &str) -> anyhow::Result<IpAddr> {
    let inspect = docker
        .inspect_container(container, None)
        .await
        .map_err(|e| anyhow!("inspecting {container}: {e}"))?;
    let address = inspect
        .network_settings
        .and_then(|s| s.networks)
        .and_then(|n| n.get(network).cloned())
        .and_then(|endpoint| endpoint.ip_address)
        .filter(|ip| !ip.is_empty())
        .with_context(|| {
            format!("{container} has no address on network {network}; is it running? (`erlmcp-gen status`)")
        })?;
    address
        .parse()
        .with_context(|| format!("{container}'s address {address}"))
}

/// Baseline echo servers (`erlmcp-node baseline`) as containers of the node image on the
/// cluster network, one per node with the node's capacity: the same path as the nodes, so the
/// baseline ratio is about MCP handling, not about containers. Remove them with [`Self::remove`].
pub struct ContainerBaselines {
    docker: Docker,
    names: Vec<String>,
    /// Their targets.
    pub targets: Vec<StressTarget>,
}

impl ContainerBaselines {
    /// Starts one baseline container per node and waits until each listens.
    pub async fn start(
        engine: &DockerEngine,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        let docker = engine.client();
        let first = cluster.nodes.first().context("the cluster has no nodes")?;
        let node_container = format!("{}-{}", cluster.name, first.name);
        let image = docker
            .inspect_container(&node_container, None)
            .await
            .map_err(|e| anyhow!("inspecting {node_container}: {e}"))?
            .config
            .and_then(|c| c.image)
            .with_context(|| format!("{node_container} names no image"))?;
        let mut baselines = ContainerBaselines {
            docker: docker.clone(),
            names: Vec::new(),
            targets: Vec::new(),
        };
        let task = progress.task("baseline echo containers");
        for node in &cluster.nodes {
            let name = format!("{}-stress-baseline-{}", cluster.name, node.name);
            // As many open files as its node gets.
            let nofile = engine.clamp_nofile(&name, node.nofile, progress);
            let started = match baselines.start_one(&image, cluster, &name, nofile).await {
                Ok(()) => container_ip(&docker, &name, &cluster.network).await,
                Err(e) => Err(e),
            };
            let ip = match started {
                Ok(ip) => ip,
                Err(e) => {
                    task.failed("not started");
                    baselines.remove().await;
                    return Err(e);
                }
            };
            baselines.targets.push(StressTarget {
                node: format!("baseline-{}", node.name),
                tcp_addr: SocketAddr::new(ip, CONTAINER_LISTENER_PORT),
                api_addr: None,
                pid: None,
                capacity: node.connections,
                kind: TargetKind::BaselineEcho,
            });
        }
        task.done(format!("{} listening", baselines.names.len()));
        Ok(baselines)
    }

    async fn start_one(
        &mut self,
        image: &str,
        cluster: &Cluster,
        name: &str,
        nofile: u64,
    ) -> anyhow::Result<()> {
        let body = baseline_body(image, cluster, nofile);
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| anyhow!("creating {name}: {e}"))?;
        self.names.push(name.to_string());
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| anyhow!("starting {name}: {e}"))?;
        // It says so on stderr once its listener is bound.
        let logs = LogsOptionsBuilder::default()
            .follow(true)
            .stdout(true)
            .stderr(true)
            .build();
        let mut stream = self.docker.logs(name, Some(logs));
        let listening = async {
            while let Some(Ok(chunk)) = stream.next().await {
                if chunk.to_string().contains("listening") {
                    return true;
                }
            }
            false
        };
        match tokio::time::timeout(BASELINE_START_TIMEOUT, listening).await {
            Ok(true) => Ok(()),
            _ => bail!(
                "the baseline echo container {name} did not start listening within {} s",
                BASELINE_START_TIMEOUT.as_secs()
            ),
        }
    }

    /// Removes every baseline container this value started.
    pub async fn remove(&self) {
        for name in &self.names {
            remove_container(&self.docker, name).await;
        }
    }
}

/// The labels of a stress container or job: the cluster it loads and its role.
pub(crate) fn stress_labels(cluster: &str, role: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_STRESS_OF.to_string(), cluster.to_string()),
        (LABEL_STRESS_ROLE.to_string(), role.to_string()),
    ])
}

/// The engine filter that finds what `stress` made for `cluster`: containers, swarm jobs.
pub(crate) fn stress_filter(cluster: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_STRESS_OF}={cluster}")],
    )])
}

/// Force-removes a container; gone already is fine.
async fn remove_container(docker: &Docker, name: &str) {
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    let _ = docker.remove_container(name, Some(options)).await;
}

/// Removes every stress container of `cluster` on this engine (workers, baselines, swarm
/// jobs' task containers), e.g. ones an interrupted run left behind. Returns how many there were.
pub async fn remove_stress_containers(docker: &Docker, cluster: &str) -> anyhow::Result<usize> {
    let filters = stress_filter(cluster);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let found = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| anyhow!("listing stress containers: {e}"))?;
    for container in &found {
        if let Some(id) = &container.id {
            remove_container(docker, id).await;
        }
    }
    Ok(found.len())
}

/// A stress worker's create request: attached stdio, the cluster network, least privilege.
fn worker_body(image: &str, cluster: &str, network: &str, nofile: u64) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        labels: Some(stress_labels(cluster, "worker")),
        user: Some(STRESS_WORKER_USER.into()),
        host_config: Some(HostConfig {
            network_mode: Some(network.to_string()),
            ulimits: Some(nofile_ulimits(nofile)),
            ..least_privilege()
        }),
        ..Default::default()
    }
}

/// A baseline echo server's create request: the node image's `baseline`, least privilege.
fn baseline_body(image: &str, cluster: &Cluster, nofile: u64) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec![
            "baseline".into(),
            "--bind".into(),
            "0.0.0.0".into(),
            "--port".into(),
            CONTAINER_LISTENER_PORT.to_string(),
        ]),
        labels: Some(stress_labels(&cluster.name, "baseline")),
        // The image's health check asks a node's /health; a baseline has none.
        healthcheck: Some(HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }),
        user: Some(NODE_USER.into()),
        host_config: Some(HostConfig {
            network_mode: Some(cluster.network.clone()),
            ulimits: Some(nofile_ulimits(nofile)),
            ..least_privilege()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stress_workers_and_baselines_run_with_least_privilege() {
        let cluster = crate::config::parse(
            "clusters/local.toml",
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/local.toml"))
                .unwrap(),
        )
        .unwrap()
        .0;
        for body in [
            worker_body("w:1", &cluster.name, &cluster.network, 1024),
            baseline_body("n:1", &cluster, 1024),
        ] {
            let host = body.host_config.unwrap();
            assert_eq!(host.readonly_rootfs, Some(true));
            assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
            assert_eq!(
                host.security_opt,
                Some(vec!["no-new-privileges:true".to_string()])
            );
            assert!(!body.user.unwrap().starts_with('0'));
        }
    }

    #[test]
    fn stress_containers_are_labelled_apart_from_the_cluster() {
        let labels = stress_labels("erlmcp", "worker");
        assert_eq!(labels[LABEL_STRESS_OF], "erlmcp");
        assert_eq!(labels[LABEL_STRESS_ROLE], "worker");
        assert!(!labels.contains_key(crate::engine::LABEL_CLUSTER));
    }
}
