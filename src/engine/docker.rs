//! The Docker driver: builds images, creates the network, volumes and containers, waits for
//! health, and reads state back, all through the engine's API (bollard), never the docker CLI.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HealthStatusEnum, HostConfig,
    HostConfigLogConfig, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker, body_full};
use futures_util::StreamExt as _;
use serde::Serialize;

use super::arch;
use super::image::{self, BuildContext};
use super::secret;
use super::status::{self, ClusterStatus, NodeStatus};
use super::{LABEL_CLUSTER, LABEL_CONFIG_HASH, LABEL_NODE, LABEL_ROLE, reachable};
use crate::config::model::{
    CONTAINER_API_PORT, CONTAINER_LISTENER_PORT, CONTAINER_PROMETHEUS_PORT, Cluster, ImageBuild,
    Role,
};
use crate::plan::{Change, Desired, Observed, Plan, ResourceKind, Step};
use crate::progress::Progress;
use crate::render;

/// A connection to a Docker engine.
pub struct DockerEngine {
    docker: Docker,
    socket: String,
    /// The daemon's hard open-file limit, when it runs on this machine and we can see it.
    daemon_nofile: Option<u64>,
}

/// How the node image comes about.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// Already in the engine.
    Present,
    /// Built from this context.
    Build(BuildContext),
    /// Pulled from a registry.
    Pull,
}

/// An image the cluster needs.
#[derive(Debug, Clone)]
pub struct ImageNeed {
    /// Reference.
    pub tag: String,
    /// How to get it.
    pub source: ImageSource,
}

/// One container as the cluster wants it. Maps are ordered so the hash is stable.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Which resource this is.
    pub kind: ResourceKind,
    /// Node name (or `prometheus`).
    pub node: String,
    /// Image reference.
    pub image: String,
    /// Command (arguments to the image's entrypoint).
    pub cmd: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Labels, without the hash label.
    pub labels: BTreeMap<String, String>,
    /// (container port, host address, host port).
    pub ports: Vec<(u16, String, u16)>,
    /// CPU limit in billionths of a core.
    pub nano_cpus: i64,
    /// CPU weight standing in for a reservation (Docker has no hard CPU reservation outside swarm).
    pub cpu_shares: i64,
    /// Memory limit in bytes.
    pub memory: i64,
    /// Memory reservation in bytes.
    pub memory_reservation: i64,
    /// Open-file limit wanted (the engine may allow less; apply clamps and warns).
    pub nofile: Option<u64>,
    /// Sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// Log driver and options.
    pub log: (String, BTreeMap<String, String>),
    /// Network and this container's alias on it.
    pub network: (String, String),
    /// Health check command, if the image can run one.
    pub healthcheck: Option<Vec<String>>,
    /// (volume, mount point).
    pub volumes: Vec<(String, String)>,
    /// Host files mounted read-only: (host path, path in the container). The cluster secret is
    /// one; its path is hashed, never its value.
    pub read_only_files: Vec<(String, String)>,
    /// Files `apply` writes on the host before the create and mounts read-only (the root
    /// filesystem is read-only, so nothing can be copied in): (host path, path in the
    /// container, contents).
    pub files: Vec<(String, String, String)>,
    /// `uid:gid` the process runs as (never root).
    pub user: String,
}

/// Everything `apply` needs, computed once by [`DockerEngine::prepare`].
#[derive(Debug, Clone)]
pub struct DockerDesired {
    /// The node image.
    pub node_image: ImageNeed,
    /// The Prometheus image, when Prometheus is enabled.
    pub prometheus_image: Option<ImageNeed>,
    /// The network.
    pub network: String,
    /// The Prometheus data volume, when Prometheus is enabled.
    pub volume: Option<String>,
    /// Containers, coordinator first.
    pub containers: Vec<ContainerSpec>,
}

/// Health checks run this often so `apply` is not slower than it must be.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

fn short_hash_of(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).expect("specs serialize");
    image::short_hash(&[&json])
}

fn engine_error(what: &str, error: bollard::errors::Error) -> anyhow::Error {
    let message = match &error {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    anyhow!("{what}: the engine said: {message}")
}

fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

fn cluster_filter(cluster: &Cluster) -> HashMap<String, Vec<String>> {
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

    /// Works out every resource the cluster wants: finds (or builds on the host) the static node
    /// binary, assembles image contexts and names images by content hash. Builds no image.
    pub async fn prepare(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<DockerDesired> {
        let rendered = render::render(cluster)?;
        let file = |name: &str| {
            rendered
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.contents.clone())
                .expect("every template renders")
        };
        let node_image = self
            .node_image(
                cluster,
                progress,
                &file("Dockerfile"),
                &file("Dockerfile.prebuilt"),
            )
            .await?;
        let prometheus_image = if cluster.prometheus.enabled {
            Some(self.prometheus_image(cluster, progress).await?)
        } else {
            None
        };
        let mut containers: Vec<ContainerSpec> = cluster
            .nodes
            .iter()
            .map(|node| node_spec(cluster, node, &node_image.tag))
            .collect();
        containers.sort_by_key(|c| c.kind);
        let volume = cluster
            .prometheus
            .enabled
            .then(|| format!("{}-prometheus-data", cluster.name));
        if let (Some(image), Some(volume)) = (&prometheus_image, &volume) {
            containers.push(prometheus_spec(
                cluster,
                &image.tag,
                volume,
                file("prometheus.yml"),
                file("alerts.yml"),
            ));
        }
        Ok(DockerDesired {
            node_image,
            prometheus_image,
            network: cluster.network.clone(),
            volume,
            containers,
        })
    }

    async fn node_image(
        &self,
        cluster: &Cluster,
        progress: &Progress,
        source_dockerfile: &str,
        prebuilt_dockerfile: &str,
    ) -> anyhow::Result<ImageNeed> {
        let builder_present = self.image_present(&cluster.image.builder).await;
        // The engine's CPU decides (src/engine/arch.rs): never an image the engine cannot start.
        let engine_arch = arch::engine_arch(&self.docker).await;
        let decision = arch::decide(
            cluster.image.build,
            &engine_arch,
            builder_present,
            &arch::HostCapabilities::detect(),
        )
        .map_err(|why| anyhow!(why))?;
        let context = match decision {
            arch::NodeImagePlan::Source { because } => {
                if let Some(because) = because {
                    progress.warn(format!("image: {because}"));
                }
                let root = image::workspace_root()
                    .ok_or_else(|| anyhow!("the `source` build needs the erlmcp-gen workspace"))?;
                image::source_node_context(
                    &cluster.image.repository,
                    &cluster.version,
                    source_dockerfile,
                    &root,
                )?
            }
            arch::NodeImagePlan::Prebuilt(build) => {
                if cluster.image.build == ImageBuild::Auto {
                    progress.info(format!(
                        "image: the builder image {} is not in the engine; building the registry-free `prebuilt` image \
                         (a host-built static erlmcp-node for {} FROM scratch)",
                        cluster.image.builder,
                        engine_arch.name()
                    ));
                }
                let binary = image::static_node_binary_for(progress, &build)?;
                image::prebuilt_node_context(
                    &cluster.image.repository,
                    &cluster.version,
                    prebuilt_dockerfile,
                    &binary,
                )?
            }
        };
        let source = if self.image_present(&context.tag).await {
            ImageSource::Present
        } else {
            ImageSource::Build(context.clone())
        };
        Ok(ImageNeed {
            tag: context.tag,
            source,
        })
    }

    /// The file's Prometheus image when the engine has it; else one built from the host's
    /// Prometheus install; else the file's image, pulled during `apply`.
    async fn prometheus_image(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<ImageNeed> {
        let wanted = &cluster.prometheus.image;
        if self.image_present(wanted).await {
            return Ok(ImageNeed {
                tag: wanted.clone(),
                source: ImageSource::Present,
            });
        }
        // The host's install serves only an engine of this machine's CPU.
        let same_cpu = arch::engine_arch(&self.docker).await == arch::Arch::host();
        if let Some(binary) = image::host_prometheus()
            .filter(|binary| same_cpu && image::runs_in_linux_container(binary))
        {
            let static_node = image::static_node_binary(progress)?;
            let context = image::local_prometheus_context(&binary, &static_node)?;
            progress.info(format!(
                "prometheus: {wanted} is not in the engine; using {} built from {} (pull {wanted} to use it instead)",
                context.tag,
                binary.display()
            ));
            let source = if self.image_present(&context.tag).await {
                ImageSource::Present
            } else {
                ImageSource::Build(context.clone())
            };
            return Ok(ImageNeed {
                tag: context.tag,
                source,
            });
        }
        Ok(ImageNeed {
            tag: wanted.clone(),
            source: ImageSource::Pull,
        })
    }

    /// The desired resources as the planner sees them.
    pub fn desired(&self, want: &DockerDesired) -> Vec<Desired> {
        let mut desired = vec![Desired {
            kind: ResourceKind::Image,
            name: want.node_image.tag.clone(),
            config_hash: want.node_image.tag.clone(),
        }];
        if let Some(image) = &want.prometheus_image {
            desired.push(Desired {
                kind: ResourceKind::Image,
                name: image.tag.clone(),
                config_hash: image.tag.clone(),
            });
        }
        desired.push(Desired {
            kind: ResourceKind::Network,
            name: want.network.clone(),
            config_hash: short_hash_of(&("bridge", &want.network)),
        });
        if let Some(volume) = &want.volume {
            desired.push(Desired {
                kind: ResourceKind::Volume,
                name: volume.clone(),
                config_hash: short_hash_of(&("local", volume)),
            });
        }
        for spec in &want.containers {
            desired.push(Desired {
                kind: spec.kind,
                name: spec.name.clone(),
                config_hash: short_hash_of(spec),
            });
        }
        desired
    }

    /// What the engine has for this cluster, found by label (images by name).
    pub async fn observe(
        &self,
        cluster: &Cluster,
        want: &DockerDesired,
    ) -> anyhow::Result<Vec<Observed>> {
        let mut observed = Vec::new();
        let mut images = vec![want.node_image.clone()];
        images.extend(want.prometheus_image.clone());
        for image in images {
            if matches!(image.source, ImageSource::Present) {
                observed.push(Observed {
                    kind: ResourceKind::Image,
                    name: image.tag.clone(),
                    config_hash: Some(image.tag.clone()),
                    healthy: true,
                });
            }
        }
        let networks = self.cluster_networks(cluster).await?;
        for network in networks {
            let labels = network.labels.unwrap_or_default();
            observed.push(Observed {
                kind: ResourceKind::Network,
                name: network.name.unwrap_or_default(),
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy: true,
            });
        }
        let volumes = self.cluster_volumes(cluster).await?;
        for volume in volumes {
            observed.push(Observed {
                kind: ResourceKind::Volume,
                name: volume.name,
                config_hash: volume.labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy: true,
            });
        }
        for (name, labels, healthy) in self.cluster_containers(cluster).await? {
            let kind = match labels.get(LABEL_ROLE).map(String::as_str) {
                Some("coordinator") => ResourceKind::Coordinator,
                Some("worker") => ResourceKind::Worker,
                _ => ResourceKind::Prometheus,
            };
            observed.push(Observed {
                kind,
                name,
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy,
            });
        }
        Ok(observed)
    }

    /// Networks labelled with the cluster.
    async fn cluster_networks(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<bollard::models::Network>> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(&cluster_filter(cluster))
            .build();
        self.docker
            .list_networks(Some(options))
            .await
            .map_err(|e| engine_error("listing networks", e))
    }

    /// Volumes labelled with the cluster.
    async fn cluster_volumes(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<bollard::models::Volume>> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&cluster_filter(cluster))
            .build();
        let found = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| engine_error("listing volumes", e))?;
        Ok(found.volumes.unwrap_or_default())
    }

    /// (name, labels, running and not unhealthy) of every container labelled with the cluster.
    async fn cluster_containers(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<(String, HashMap<String, String>, bool)>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&cluster_filter(cluster))
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine_error("listing containers", e))?;
        let mut found = Vec::new();
        for container in containers {
            let name = container
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let status = container.status.unwrap_or_default();
            let running = status.starts_with("Up");
            let healthy = running && !status.contains("(unhealthy)");
            found.push((name, container.labels.unwrap_or_default(), healthy));
        }
        Ok(found)
    }

    /// Carries out `plan`: images, network, volume, removals, the coordinator (healthy before
    /// anything else), new workers together, changed workers one at a time, then Prometheus.
    pub async fn apply(
        &self,
        cluster: &Cluster,
        want: &DockerDesired,
        plan: &Plan,
        progress: &Progress,
        health_timeout: Option<Duration>,
    ) -> anyhow::Result<()> {
        // Creations and replacements of one kind; removals are carried out separately, first.
        let changes = |kind: ResourceKind| -> Vec<&Step> {
            plan.of_kind(kind)
                .filter(|s| matches!(s.change, Change::Create | Change::Recreate { .. }))
                .collect()
        };
        for step in changes(ResourceKind::Image) {
            let need = if step.name == want.node_image.tag {
                &want.node_image
            } else {
                want.prometheus_image
                    .as_ref()
                    .expect("the plan names only wanted images")
            };
            self.provide_image(need, progress).await?;
        }
        for step in changes(ResourceKind::Network) {
            self.ensure_network(cluster, step, progress).await?;
        }
        for step in changes(ResourceKind::Volume) {
            if step.change != Change::Remove {
                self.create_volume(cluster, step).await?;
            }
        }
        // Orphans go first: a removed node's ports may belong to a new one.
        for step in plan.steps.iter().filter(|s| s.change == Change::Remove) {
            match step.kind {
                ResourceKind::Coordinator | ResourceKind::Worker | ResourceKind::Prometheus => {
                    let task = progress.task(format!("{} {}", step.kind, step.name));
                    self.remove_container(&step.name).await?;
                    task.done("removed (no longer in the cluster file)");
                }
                ResourceKind::Volume => progress.info(format!(
                    "volume {} is no longer used; kept (`down --volumes` removes it)",
                    step.name
                )),
                _ => {}
            }
        }
        let spec = |name: &str| {
            want.containers
                .iter()
                .find(|c| c.name == name)
                .expect("plan names wanted containers")
        };
        for step in changes(ResourceKind::Coordinator) {
            self.replace_container(spec(&step.name), step, progress, health_timeout)
                .await?;
        }
        // New workers start together; changed ones roll one at a time, each healthy before the next.
        let workers = changes(ResourceKind::Worker);
        let (created, recreated): (Vec<&Step>, Vec<&Step>) = workers
            .into_iter()
            .partition(|s| s.change == Change::Create);
        let starts = created
            .iter()
            .map(|step| self.replace_container(spec(&step.name), step, progress, health_timeout));
        for result in futures_util::future::join_all(starts).await {
            result?;
        }
        for step in recreated {
            self.replace_container(spec(&step.name), step, progress, health_timeout)
                .await?;
        }
        for step in changes(ResourceKind::Prometheus) {
            self.replace_container(spec(&step.name), step, progress, health_timeout)
                .await?;
            if let Some(timeout) = health_timeout {
                self.wait_prometheus_ready(cluster, progress, timeout)
                    .await?;
            }
        }
        Ok(())
    }

    /// Builds `context` unless the engine already has its tag; returns the tag.
    pub(crate) async fn ensure_image(
        &self,
        context: BuildContext,
        progress: &Progress,
    ) -> anyhow::Result<String> {
        let need = ImageNeed {
            tag: context.tag.clone(),
            source: if self.image_present(&context.tag).await {
                ImageSource::Present
            } else {
                ImageSource::Build(context)
            },
        };
        self.provide_image(&need, progress).await?;
        Ok(need.tag)
    }

    /// Makes `need` present in the engine: nothing, a build, or a pull.
    async fn provide_image(&self, need: &ImageNeed, progress: &Progress) -> anyhow::Result<()> {
        match &need.source {
            ImageSource::Present => Ok(()),
            ImageSource::Build(context) => {
                let task = progress.task(format!("image {}", need.tag));
                let options = BuildImageOptionsBuilder::default()
                    .dockerfile("Dockerfile")
                    .t(&need.tag)
                    .rm(true)
                    .forcerm(true)
                    .build();
                let mut stream = self.docker.build_image(
                    options,
                    None,
                    Some(body_full(context.tar.clone().into())),
                );
                while let Some(item) = stream.next().await {
                    let info = item.map_err(|e| {
                        task.step("failed");
                        engine_error(&format!("building image {}", need.tag), e)
                    })?;
                    if let Some(detail) = info.error_detail {
                        bail!(
                            "building image {}: {}",
                            need.tag,
                            detail.message.unwrap_or_default()
                        );
                    }
                    if let Some(line) = info
                        .stream
                        .as_deref()
                        .map(str::trim)
                        .filter(|l| l.starts_with("Step"))
                    {
                        task.step(line);
                    }
                }
                task.done("built");
                Ok(())
            }
            ImageSource::Pull => {
                let task = progress.task(format!("image {}", need.tag));
                let options = CreateImageOptionsBuilder::default()
                    .from_image(&need.tag)
                    .build();
                let mut stream = self.docker.create_image(Some(options), None, None);
                while let Some(item) = stream.next().await {
                    if let Err(e) = item {
                        task.failed("pull failed");
                        return Err(engine_error(&format!("pulling {}", need.tag), e)).context(
                            "no registry answered and the host has no Prometheus to build a local image from: \
                             install Debian's `prometheus` package or load the image into the engine",
                        );
                    }
                }
                task.done("pulled");
                Ok(())
            }
        }
    }

    async fn ensure_network(
        &self,
        cluster: &Cluster,
        step: &Step,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        if step.change == Change::Remove {
            progress.info(format!(
                "network {} is not in the cluster file; `down` removes it",
                step.name
            ));
            return Ok(());
        }
        if matches!(step.change, Change::Recreate { .. }) {
            self.docker.remove_network(&step.name).await.map_err(|e| {
                engine_error(
                    &format!("replacing network {} (run `down` first)", step.name),
                    e,
                )
            })?;
        }
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), cluster.name.clone()),
            (
                LABEL_CONFIG_HASH.to_string(),
                step.config_hash.clone().unwrap_or_default(),
            ),
        ]);
        self.docker
            .create_network(NetworkCreateRequest {
                name: step.name.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| engine_error(&format!("creating network {}", step.name), e))?;
        progress.info(format!("network {} created", step.name));
        Ok(())
    }

    async fn create_volume(&self, cluster: &Cluster, step: &Step) -> anyhow::Result<()> {
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), cluster.name.clone()),
            (
                LABEL_CONFIG_HASH.to_string(),
                step.config_hash.clone().unwrap_or_default(),
            ),
        ]);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(step.name.clone()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| engine_error(&format!("creating volume {}", step.name), e))?;
        Ok(())
    }

    async fn remove_container(&self, name: &str) -> anyhow::Result<()> {
        // A graceful stop first: the node drains in-flight requests on SIGTERM.
        let stop = StopContainerOptionsBuilder::default().t(10).build();
        match self.docker.stop_container(name, Some(stop)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(_) => {} // already stopped, or stopping failed: force-remove below
        }
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(&format!("removing container {name}"), e)),
        }
    }

    /// Removes the old container (if any), creates and starts the new one, and waits for health.
    /// A container this step created but could not start is removed again, so a failed apply
    /// leaves nothing half-made behind.
    async fn replace_container(
        &self,
        spec: &ContainerSpec,
        step: &Step,
        progress: &Progress,
        health_timeout: Option<Duration>,
    ) -> anyhow::Result<()> {
        let task = progress.task(format!("{} {}", spec.kind, spec.name));
        if matches!(step.change, Change::Recreate { .. }) {
            task.step("removing the old container");
            self.remove_container(&spec.name).await?;
        }
        let hash = step.config_hash.clone().unwrap_or_default();
        let nofile = self.allowed_nofile(spec, progress);
        for (host, _, contents) in &spec.files {
            write_mounted_file(Path::new(host), contents)?;
        }
        task.step("creating");
        let body = create_body(spec, &hash, nofile);
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        if let Err(e) = self.docker.create_container(Some(options), body).await {
            task.failed("create failed");
            return Err(engine_error(
                &format!("creating container {}", spec.name),
                e,
            ));
        }
        task.step("starting");
        if let Err(e) = self.docker.start_container(&spec.name, None).await {
            task.failed("start failed");
            let error = engine_error(&format!("starting container {}", spec.name), e);
            let _ = self.remove_container(&spec.name).await;
            return Err(error.context(format!(
                "{} was removed again; fix the cause and run `apply` again",
                spec.name
            )));
        }
        match (health_timeout, &spec.healthcheck) {
            (Some(timeout), Some(_)) => {
                task.step("waiting for healthy");
                if let Err(e) = self.wait_healthy(&spec.name, timeout).await {
                    task.failed("not healthy");
                    return Err(e);
                }
                task.done("healthy");
            }
            _ => task.done("started"),
        }
        Ok(())
    }

    /// The engine refuses a `nofile` above its own hard limit (runc: "error setting rlimit …
    /// operation not permitted"), so ask for no more than it can give, and say so.
    fn allowed_nofile(&self, spec: &ContainerSpec, progress: &Progress) -> Option<u64> {
        spec.nofile
            .map(|wanted| self.clamp_nofile(&spec.name, wanted, progress))
    }

    /// `wanted` open files for container `name`, or the engine's limit when that is lower
    /// (with a warning naming both numbers).
    pub(crate) fn clamp_nofile(&self, name: &str, wanted: u64, progress: &Progress) -> u64 {
        let cap = self
            .daemon_nofile
            .or_else(|| crate::host::own_nofile().map(|(_, hard)| hard));
        match cap {
            Some(allowed) if wanted > allowed => {
                progress.warn(format!(
                    "{name}: nofile {wanted} is above the engine's own limit {allowed}; clamped to {allowed}"
                ));
                allowed
            }
            _ => wanted,
        }
    }

    async fn wait_healthy(&self, name: &str, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let inspect = self
                .docker
                .inspect_container(name, None)
                .await
                .map_err(|e| engine_error(&format!("inspecting {name}"), e))?;
            let state = inspect.state.unwrap_or_default();
            if state.running != Some(true) || state.restarting == Some(true) {
                let logs = self.log_tail(name).await;
                bail!(
                    "{name} stopped or keeps restarting (exit code {}) before it became healthy; its last log lines:\n{logs}",
                    state.exit_code.unwrap_or(-1)
                );
            }
            let health = state.health.unwrap_or_default();
            if health.status == Some(HealthStatusEnum::HEALTHY) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let last = health
                    .log
                    .unwrap_or_default()
                    .last()
                    .and_then(|l| l.output.clone())
                    .unwrap_or_default();
                bail!(
                    "{name} did not become healthy within {}s (health: {}; last check said: {}); \
                     `docker logs {name}` shows why, `apply` again retries",
                    timeout.as_secs(),
                    health.status.unwrap_or(HealthStatusEnum::EMPTY),
                    last.trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn wait_prometheus_ready(
        &self,
        cluster: &Cluster,
        progress: &Progress,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let task = progress.task("prometheus ready");
        let addr = reachable(cluster, cluster.prometheus.port);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = crate::probe::get(addr, "/-/ready", Duration::from_secs(2)).await
                && response.status == 200
            {
                task.done(format!("http://{addr}"));
                return Ok(());
            }
            if Instant::now() >= deadline {
                task.failed("not ready");
                bail!(
                    "prometheus did not answer http://{addr}/-/ready within {}s",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn log_tail(&self, name: &str) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("20")
            .build();
        let mut stream = self.docker.logs(name, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }

    /// Per-node state, health, uptime and figures, and Prometheus's target health.
    pub async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
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
                status::node_figures(reachable(cluster, node.api_port)).await
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
            });
        }
        let prometheus = if cluster.prometheus.enabled {
            status::prometheus_targets(reachable(cluster, cluster.prometheus.port)).await
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

    /// Removes the cluster's containers and network (and volumes with `volumes`), found by label.
    pub async fn down(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let leftovers = super::stress_containers::remove_stress_containers(self, cluster).await?;
        if leftovers > 0 {
            progress.info(format!("{leftovers} stress container(s) removed"));
        }
        let containers = self.cluster_containers(cluster).await?;
        let removals = containers.iter().map(|(name, _, _)| async move {
            let task = progress.task(format!("container {name}"));
            let result = self.remove_container(name).await;
            match &result {
                Ok(()) => task.done("removed"),
                Err(_) => task.failed("not removed"),
            }
            result
        });
        for result in futures_util::future::join_all(removals).await {
            result?;
        }
        let networks = self.cluster_networks(cluster).await?;
        for network in networks {
            let name = network.name.unwrap_or_default();
            self.docker
                .remove_network(&name)
                .await
                .map_err(|e| engine_error(&format!("removing network {name}"), e))?;
            progress.info(format!("network {name} removed"));
        }
        let found = self.cluster_volumes(cluster).await?;
        for volume in found {
            if volumes {
                self.docker
                    .remove_volume(
                        &volume.name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                    .map_err(|e| engine_error(&format!("removing volume {}", volume.name), e))?;
                progress.info(format!("volume {} removed", volume.name));
            } else {
                progress.info(format!(
                    "volume {} kept (`down --volumes` removes it)",
                    volume.name
                ));
            }
        }
        Ok(())
    }

    /// Cuts a container off the cluster network (for failure tests).
    pub async fn disconnect(&self, network: &str, container: &str) -> anyhow::Result<()> {
        self.docker
            .disconnect_network(
                network,
                bollard::models::NetworkDisconnectRequest {
                    container: container.to_string(),
                    force: Some(true),
                },
            )
            .await
            .map_err(|e| engine_error(&format!("disconnecting {container} from {network}"), e))
    }
}

/// Seconds from an RFC 3339 timestamp (`2026-11-26T20:11:02.123Z`) to now.
fn seconds_since_rfc3339(text: &str) -> Option<u64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.get(..8)?.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (t.next()??, t.next()??, t.next()??);
    if year < 1971 {
        return None; // "0001-01-01T00:00:00Z" means never started
    }
    // Days from civil date (Howard Hinnant's algorithm, public domain description).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let started = days * 86_400 + hour * 3600 + minute * 60 + second;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs() as i64;
    u64::try_from(now - started).ok()
}

fn node_spec(cluster: &Cluster, node: &crate::config::model::Node, image: &str) -> ContainerSpec {
    let coordinator = cluster.coordinator().map_or("", |n| n.name.as_str());
    let env = BTreeMap::from([
        ("ERLMCP_CLUSTER".to_string(), cluster.name.clone()),
        ("ERLMCP_NODE_NAME".into(), node.name.clone()),
        (
            "ERLMCP_ROLE".into(),
            if node.role == Role::Coordinator {
                "coordinator"
            } else {
                "worker"
            }
            .into(),
        ),
        ("ERLMCP_BIND".into(), "0.0.0.0".into()),
        ("ERLMCP_API_PORT".into(), CONTAINER_API_PORT.to_string()),
        (
            "ERLMCP_LISTENER_PORT".into(),
            CONTAINER_LISTENER_PORT.to_string(),
        ),
        (
            "ERLMCP_MAX_CONNECTIONS".into(),
            node.connections.to_string(),
        ),
        ("ERLMCP_IDLE_TIMEOUT".into(), node.idle_timeout.to_string()),
        ("ERLMCP_ADVERTISE_HOST".into(), node.name.clone()),
        (
            "ERLMCP_SEEDS".into(),
            format!("{coordinator}:{CONTAINER_API_PORT}"),
        ),
        // The path, never the value: `docker inspect` shows the environment.
        (
            "ERLMCP_CLUSTER_SECRET_FILE".into(),
            secret::CONTAINER_SECRET_PATH.into(),
        ),
    ]);
    let role = if node.role == Role::Coordinator {
        "coordinator"
    } else {
        "worker"
    };
    let address = cluster.runtime.publish_address.to_string();
    ContainerSpec {
        name: format!("{}-{}", cluster.name, node.name),
        kind: if node.role == Role::Coordinator {
            ResourceKind::Coordinator
        } else {
            ResourceKind::Worker
        },
        node: node.name.clone(),
        image: image.to_string(),
        cmd: vec!["serve".into()],
        env,
        labels: BTreeMap::from([
            (LABEL_CLUSTER.to_string(), cluster.name.clone()),
            (LABEL_NODE.to_string(), node.name.clone()),
            (LABEL_ROLE.to_string(), role.to_string()),
        ]),
        ports: vec![
            (CONTAINER_API_PORT, address.clone(), node.api_port),
            (CONTAINER_LISTENER_PORT, address, node.listener_port),
        ],
        nano_cpus: (node.cpu_limit * 1e9) as i64,
        cpu_shares: if node.cpu_reservation > 0.0 {
            ((node.cpu_reservation * 1024.0) as i64).max(2)
        } else {
            0
        },
        memory: node.memory_limit.0 as i64,
        memory_reservation: node.memory_reservation.0 as i64,
        nofile: Some(node.nofile),
        sysctls: cluster.tuning.container.clone(),
        log: log_config(cluster),
        network: (cluster.network.clone(), node.name.clone()),
        healthcheck: Some(vec![
            "CMD".into(),
            "/usr/local/bin/erlmcp-node".into(),
            "healthcheck".into(),
        ]),
        volumes: Vec::new(),
        read_only_files: vec![(
            secret::stored_path(&cluster.name).display().to_string(),
            secret::CONTAINER_SECRET_PATH.into(),
        )],
        files: Vec::new(),
        user: NODE_USER.into(),
    }
}

fn prometheus_spec(
    cluster: &Cluster,
    image: &str,
    volume: &str,
    config: String,
    alerts: String,
) -> ContainerSpec {
    let p = &cluster.prometheus;
    ContainerSpec {
        name: format!("{}-prometheus", cluster.name),
        kind: ResourceKind::Prometheus,
        node: "prometheus".into(),
        image: image.to_string(),
        cmd: vec![
            "--config.file=/etc/prometheus/prometheus.yml".into(),
            "--storage.tsdb.path=/prometheus".into(),
            format!("--storage.tsdb.retention.time={}", p.retention),
            format!("--web.listen-address=:{CONTAINER_PROMETHEUS_PORT}"),
        ],
        env: BTreeMap::new(),
        labels: BTreeMap::from([
            (LABEL_CLUSTER.to_string(), cluster.name.clone()),
            (LABEL_NODE.to_string(), "prometheus".to_string()),
        ]),
        ports: vec![(
            CONTAINER_PROMETHEUS_PORT,
            cluster.runtime.publish_address.to_string(),
            p.port,
        )],
        nano_cpus: (p.cpu_limit * 1e9) as i64,
        cpu_shares: 0,
        memory: p.memory_limit.0 as i64,
        memory_reservation: 0,
        nofile: None,
        sysctls: BTreeMap::new(),
        log: log_config(cluster),
        network: (cluster.network.clone(), "prometheus".into()),
        healthcheck: Some(prometheus_healthcheck(image)),
        volumes: vec![(volume.to_string(), "/prometheus".into())],
        read_only_files: Vec::new(),
        // prometheus.yml's rule_files names alerts.yml relative to itself.
        files: [("prometheus.yml", config), ("alerts.yml", alerts)]
            .into_iter()
            .map(|(file, contents)| {
                let host = super::native::state_dir(&cluster.name)
                    .join("files")
                    .join(format!("{}-prometheus", cluster.name))
                    .join(file);
                (
                    host.display().to_string(),
                    format!("/etc/prometheus/{file}"),
                    contents,
                )
            })
            .collect(),
        user: PROMETHEUS_USER.into(),
    }
}

/// The user nodes run as (the images' `USER`).
pub const NODE_USER: &str = "10001:10001";
/// The user Prometheus runs as: `nobody`, who owns its data directory in both images.
pub const PROMETHEUS_USER: &str = "65534:65534";

/// Prometheus's health check. The local image (Debian's binary `FROM scratch`) has no shell
/// and no wget, so it carries the static `erlmcp-node` and asks it; the registry image has
/// busybox's wget.
fn prometheus_healthcheck(image: &str) -> Vec<String> {
    let ready = format!("http://127.0.0.1:{CONTAINER_PROMETHEUS_PORT}/-/ready");
    if image.starts_with(image::LOCAL_PROMETHEUS_REPOSITORY) {
        vec![
            "CMD".into(),
            image::PROMETHEUS_HEALTHCHECK_BINARY.into(),
            "healthcheck".into(),
            "--url".into(),
            ready,
        ]
    } else {
        vec![
            "CMD".into(),
            "wget".into(),
            "-q".into(),
            "-O".into(),
            "/dev/null".into(),
            ready,
        ]
    }
}

/// Writes a file `apply` mounts read-only into a container (0644: the container's user reads it).
fn write_mounted_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = path.parent().expect("mounted files live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    std::fs::write(path, contents).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}

fn log_config(cluster: &Cluster) -> (String, BTreeMap<String, String>) {
    (
        cluster.logging.driver.clone(),
        BTreeMap::from([
            (
                "max-size".to_string(),
                cluster.logging.max_size.docker_shorthand(),
            ),
            (
                "max-file".to_string(),
                cluster.logging.max_files.to_string(),
            ),
        ]),
    )
}

/// What every container erlmcp-gen creates gets (cluster, stress workers, baselines): a
/// read-only root filesystem (writable paths are volumes or tmpfs), no capabilities (the
/// nodes bind unprivileged ports and need none) and no privilege gain through setuid files.
pub(crate) fn least_privilege() -> HostConfig {
    HostConfig {
        readonly_rootfs: Some(true),
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        ..Default::default()
    }
}

/// Volumes, then read-only host files, then the files `apply` wrote, as `-v` strings.
fn binds(spec: &ContainerSpec) -> Vec<String> {
    let volumes = spec
        .volumes
        .iter()
        .map(|(v, target)| format!("{v}:{target}"));
    let read_only = spec
        .read_only_files
        .iter()
        .map(|(host, target)| (host, target))
        .chain(spec.files.iter().map(|(host, target, _)| (host, target)))
        .map(|(host, target)| format!("{host}:{target}:ro"));
    volumes.chain(read_only).collect()
}

/// A container's `nofile` ulimit, soft and hard alike.
pub(crate) fn nofile_ulimits(n: u64) -> Vec<ResourcesUlimits> {
    vec![ResourcesUlimits {
        name: Some("nofile".into()),
        soft: Some(n as i64),
        hard: Some(n as i64),
    }]
}

/// The engine's create request for a spec: least privilege for every container (read-only
/// root filesystem, no capabilities, no privilege gain, a non-root user).
fn create_body(spec: &ContainerSpec, hash: &str, nofile: Option<u64>) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    labels.insert(LABEL_CONFIG_HASH.into(), hash.into());
    let port_bindings = spec
        .ports
        .iter()
        .map(|(inside, address, host)| {
            (
                format!("{inside}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(address.clone()),
                    host_port: Some(host.to_string()),
                }]),
            )
        })
        .collect();
    let second = 1_000_000_000i64;
    ContainerCreateBody {
        hostname: Some(spec.network.1.clone()),
        image: Some(spec.image.clone()),
        user: Some(spec.user.clone()),
        cmd: Some(spec.cmd.clone()),
        env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(labels),
        exposed_ports: Some(
            spec.ports
                .iter()
                .map(|(inside, _, _)| format!("{inside}/tcp"))
                .collect(),
        ),
        healthcheck: spec.healthcheck.as_ref().map(|test| HealthConfig {
            test: Some(test.clone()),
            interval: Some(HEALTH_INTERVAL.as_secs() as i64 * second),
            timeout: Some(3 * second),
            retries: Some(3),
            start_period: Some(5 * second),
            ..Default::default()
        }),
        host_config: Some(HostConfig {
            nano_cpus: Some(spec.nano_cpus),
            cpu_shares: (spec.cpu_shares > 0).then_some(spec.cpu_shares),
            memory: Some(spec.memory),
            memory_reservation: (spec.memory_reservation > 0).then_some(spec.memory_reservation),
            ulimits: nofile.map(nofile_ulimits),
            sysctls: (!spec.sysctls.is_empty()).then(|| spec.sysctls.clone().into_iter().collect()),
            log_config: Some(HostConfigLogConfig {
                typ: Some(spec.log.0.clone()),
                config: Some(spec.log.1.clone().into_iter().collect()),
            }),
            port_bindings: Some(port_bindings),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            network_mode: Some(spec.network.0.clone()),
            binds: Some(binds(spec)),
            ..least_privilege()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                spec.network.0.clone(),
                EndpointSettings {
                    aliases: Some(vec![spec.network.1.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_cluster() -> Cluster {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/local.toml"))
                .unwrap();
        crate::config::parse("clusters/local.toml", &text)
            .unwrap()
            .0
    }

    #[test]
    fn a_node_spec_hash_changes_only_with_that_node() {
        let cluster = local_cluster();
        let a1 = short_hash_of(&node_spec(&cluster, &cluster.nodes[0], "img:1"));
        let b1 = short_hash_of(&node_spec(&cluster, &cluster.nodes[1], "img:1"));
        let mut changed = cluster.clone();
        changed.nodes[1].memory_limit = crate::config::units::ByteSize(1 << 30);
        let a2 = short_hash_of(&node_spec(&changed, &changed.nodes[0], "img:1"));
        let b2 = short_hash_of(&node_spec(&changed, &changed.nodes[1], "img:1"));
        assert_eq!(a1, a2);
        assert_ne!(b1, b2);
    }

    #[test]
    fn create_body_carries_limits_ports_labels_and_health() {
        let cluster = local_cluster();
        let spec = node_spec(&cluster, &cluster.nodes[1], "img:1");
        let body = create_body(&spec, "abc", Some(4096));
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(256 << 20));
        assert_eq!(host.nano_cpus, Some(1_000_000_000));
        assert_eq!(host.ulimits.unwrap()[0].hard, Some(4096));
        let ports = host.port_bindings.unwrap();
        let api = ports["8080/tcp"].clone().unwrap();
        assert_eq!(api[0].host_port.as_deref(), Some("18081"));
        assert_eq!(api[0].host_ip.as_deref(), Some("127.0.0.1"));
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_CONFIG_HASH], "abc");
        assert_eq!(labels[LABEL_NODE], "node2");
        assert!(
            body.env
                .unwrap()
                .contains(&"ERLMCP_SEEDS=node1:8080".to_string())
        );
    }

    #[test]
    fn every_container_runs_with_least_privilege_and_gets_the_secret_as_a_file() {
        let cluster = local_cluster();
        let node = create_body(&node_spec(&cluster, &cluster.nodes[0], "img:1"), "h", None);
        let prometheus = create_body(
            &prometheus_spec(
                &cluster,
                "erlmcp-prometheus-local:abc",
                "vol",
                "cfg".into(),
                "rules".into(),
            ),
            "h",
            None,
        );
        for (body, user) in [(&node, NODE_USER), (&prometheus, PROMETHEUS_USER)] {
            let host = body.host_config.clone().unwrap();
            assert_eq!(host.readonly_rootfs, Some(true));
            assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
            assert_eq!(
                host.security_opt,
                Some(vec!["no-new-privileges:true".to_string()])
            );
            assert_eq!(body.user.as_deref(), Some(user));
            assert!(body.healthcheck.is_some());
        }
        let env = node.env.clone().unwrap();
        assert!(env.contains(&format!(
            "ERLMCP_CLUSTER_SECRET_FILE={}",
            secret::CONTAINER_SECRET_PATH
        )));
        let binds = node.host_config.unwrap().binds.unwrap();
        let stored = secret::stored_path(&cluster.name);
        assert_eq!(
            binds,
            [format!(
                "{}:{}:ro",
                stored.display(),
                secret::CONTAINER_SECRET_PATH
            )]
        );
        let prometheus_binds = prometheus.host_config.unwrap().binds.unwrap();
        assert_eq!(prometheus_binds[0], "vol:/prometheus");
        assert!(prometheus_binds[1].ends_with("prometheus.yml:/etc/prometheus/prometheus.yml:ro"));
        let test = prometheus.healthcheck.unwrap().test.unwrap();
        assert_eq!(test[1..3], ["/bin/erlmcp-node", "healthcheck"]);
        let registry = prometheus_spec(
            &cluster,
            "prom/prometheus:v2",
            "vol",
            "cfg".into(),
            "rules".into(),
        );
        assert_eq!(registry.healthcheck.unwrap()[1], "wget");
    }

    #[test]
    fn rfc3339_start_times_become_uptimes() {
        assert_eq!(seconds_since_rfc3339("0001-01-01T00:00:00Z"), None);
        let uptime = seconds_since_rfc3339("2020-01-01T00:00:00.123456Z").unwrap();
        assert!(uptime > 86_400 * 365);
    }
}
