//! The resolved cluster: what the user wrote with every default applied, ready for validation,
//! rendering and planning. No `Option` where a default exists.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::Serialize;

use super::units::{ByteSize, HumanDuration};

/// Port the node's HTTP API (/mcp, /health, /ready, /metrics) listens on inside a container.
pub const CONTAINER_API_PORT: u16 = 8080;
/// Port the node's MCP-over-TCP listener uses inside a container.
pub const CONTAINER_LISTENER_PORT: u16 = 9100;
/// Port Prometheus listens on inside its container.
pub const CONTAINER_PROMETHEUS_PORT: u16 = 9090;
/// File descriptors a node needs beyond one per connection (listeners, metrics, logs, the runtime).
pub const NOFILE_HEADROOM: u64 = 1024;
/// Most nodes one cluster file may ask for: far above what one engine runs (each node holds
/// ports, a container and its limits), low enough that a typo cannot make `validate` or `render`
/// build a hundred thousand nodes.
pub const MAX_NODES: u32 = 1000;

/// A whole cluster, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// The cluster file's path as the user gave it (for headers and messages).
    pub source: String,
    /// Cluster name.
    pub name: String,
    /// Cluster version (image tag).
    pub version: String,
    /// The cluster secret's file when the cluster file names one (resolved against the cluster
    /// file's directory); None: `apply` generates one in the cluster's state directory.
    pub secret_file: Option<std::path::PathBuf>,
    /// Where it runs.
    pub runtime: Runtime,
    /// The Colima VM, when the runtime is Colima.
    pub vm: Option<Vm>,
    /// The node image.
    pub image: Image,
    /// Docker network name.
    pub network: String,
    /// The nodes, in order (node 1 first).
    pub nodes: Vec<Node>,
    /// Prometheus.
    pub prometheus: Prometheus,
    /// Log rotation.
    pub logging: Logging,
    /// Kernel tuning.
    pub tuning: Tuning,
    /// Service-level objectives.
    pub slo: Slo,
    /// Default stress profile.
    pub stress: StressProfile,
    /// `[kubernetes]`: the manifests of `generated/k8s/`.
    pub kubernetes: Kubernetes,
    /// How Docker Swarm rolls, places and publishes the cluster's services (`kind = "swarm"`).
    pub swarm: Swarm,
}

/// Which runtime runs the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Docker inside a Colima VM.
    Colima,
    /// Any Docker engine (`DOCKER_HOST` or the default socket).
    Docker,
    /// Local `erlmcp-node` processes.
    Native,
    /// Docker Swarm services (the engine must be a swarm manager).
    Swarm,
}

/// `[runtime]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Runtime {
    /// The runtime kind.
    pub kind: RuntimeKind,
    /// Colima profile.
    pub colima_profile: String,
    /// Host address ports are published on.
    pub publish_address: IpAddr,
}

/// `[vm]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Vm {
    /// Virtual CPUs.
    pub cpus: u32,
    /// Memory.
    pub memory: ByteSize,
    /// Disk.
    pub disk: ByteSize,
    /// `vz` or `qemu`.
    pub vm_type: String,
}

/// How the node image is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageBuild {
    /// `source` when the builder image is present, else `prebuilt`.
    Auto,
    /// The multi-stage Dockerfile (needs the Rust builder image).
    Source,
    /// A host-built static binary copied `FROM scratch` (needs no registry).
    Prebuilt,
}

/// `[image]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Image {
    /// Repository name (`erlmcp-node`).
    pub repository: String,
    /// Rust builder image for the multi-stage build.
    pub builder: String,
    /// Build mode.
    pub build: ImageBuild,
}

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Seeds membership and places new sessions.
    Coordinator,
    /// Serves sessions.
    Worker,
}

impl Role {
    /// The role's one spelling: in the environment (`ERLMCP_ROLE`), labels and state files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Coordinator => "coordinator",
            Role::Worker => "worker",
        }
    }

    /// The role a label or state file names; None for anything else (Prometheus has none).
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Coordinator, Role::Worker]
            .into_iter()
            .find(|role| role.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// Name (`node1`); also its hostname on the cluster network.
    pub name: String,
    /// 1-based position.
    pub index: u32,
    /// Role.
    pub role: Role,
    /// Host port of the HTTP API.
    pub api_port: u16,
    /// Host port of the MCP TCP listener.
    pub listener_port: u16,
    /// Maximum concurrent MCP connections.
    pub connections: u32,
    /// CPU limit in cores.
    pub cpu_limit: f64,
    /// Memory limit.
    pub memory_limit: ByteSize,
    /// CPU reservation in cores.
    pub cpu_reservation: f64,
    /// Memory reservation.
    pub memory_reservation: ByteSize,
    /// Open-file limit.
    pub nofile: u64,
    /// Idle connection timeout.
    pub idle_timeout: HumanDuration,
    /// How long an idle HTTP keep-alive connection stays open after a response.
    pub keep_alive_timeout: HumanDuration,
}

/// `[prometheus]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Prometheus {
    /// Whether it runs.
    pub enabled: bool,
    /// Registry image.
    pub image: String,
    /// Host port.
    pub port: u16,
    /// Global scrape interval.
    pub scrape_interval: HumanDuration,
    /// Node job scrape interval.
    pub node_scrape_interval: HumanDuration,
    /// TSDB retention.
    pub retention: HumanDuration,
    /// CPU limit in cores.
    pub cpu_limit: f64,
    /// Memory limit.
    pub memory_limit: ByteSize,
}

/// `[logging]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Logging {
    /// Log driver.
    pub driver: String,
    /// Rotation size.
    pub max_size: ByteSize,
    /// Files kept.
    pub max_files: u32,
}

/// `[tuning]`, resolved: sysctl name → value as text.
#[derive(Debug, Clone, Serialize)]
pub struct Tuning {
    /// VM/host-wide sysctls.
    pub host: BTreeMap<String, String>,
    /// Per-container (network-namespaced) sysctls.
    pub container: BTreeMap<String, String>,
}

/// `[slo]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Slo {
    /// p99 latency bound.
    pub p99: HumanDuration,
    /// Error-rate bound in percent.
    pub error_rate_percent: f64,
}

/// The transport a stress run's MCP sessions use (`[stress] transport`, `stress --transport`).
///
/// Baseline echo targets are bare newline echo servers and are driven over TCP either way.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Newline-delimited JSON-RPC on each node's MCP listener, requests pipelined.
    #[default]
    Tcp,
    /// Streamable HTTP: POST /mcp on each node's API port, one HTTP/1.1 connection per
    /// session, one request at a time.
    Http,
}

impl Transport {
    /// The name used in the file, on the command line and in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Http => "http",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `[stress]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct StressProfile {
    /// Concurrent sessions.
    pub connections: u32,
    /// Hold time after the ramp.
    pub duration: HumanDuration,
    /// Ramp time.
    pub ramp: HumanDuration,
    /// Total echo requests per second.
    pub rate: f64,
    /// Transport.
    pub transport: Transport,
}

/// How the Kubernetes client Service is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ServiceType {
    /// Reachable inside the Kubernetes cluster only.
    ClusterIP,
    /// An external load balancer from the cloud provider.
    LoadBalancer,
    /// A port on every Kubernetes node.
    NodePort,
}

impl ServiceType {
    /// The spelling Kubernetes and the cluster file use.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::LoadBalancer => "LoadBalancer",
            ServiceType::NodePort => "NodePort",
        }
    }
}

/// `[kubernetes]`, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Kubernetes {
    /// Whether the file has a `[kubernetes]` table (the user means to deploy there).
    pub written: bool,
    /// Namespace of every resource.
    pub namespace: String,
    /// Full node image reference.
    pub image: String,
    /// Deploy Prometheus (its ConfigMap, Deployment and Service).
    pub prometheus: bool,
    /// The client Service's type.
    pub service_type: ServiceType,
}

impl Cluster {
    /// Sum of every node's connection capacity.
    pub fn capacity(&self) -> u64 {
        self.nodes.iter().map(|n| u64::from(n.connections)).sum()
    }

    /// The coordinator (validation guarantees exactly one).
    pub fn coordinator(&self) -> Option<&Node> {
        self.nodes.iter().find(|n| n.role == Role::Coordinator)
    }

    /// The image reference `repository:version`.
    pub fn image_ref(&self) -> String {
        format!("{}:{}", self.image.repository, self.version)
    }

    /// Where this machine reaches a port published on the cluster's publish address (an
    /// unspecified address is reached on loopback).
    pub fn reachable(&self, port: u16) -> SocketAddr {
        let ip = match self.runtime.publish_address {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            other => other,
        };
        SocketAddr::new(ip, port)
    }
}

/// `[swarm]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Swarm {
    /// How a changed node's service is rolled (also its rollback).
    pub update: SwarmUpdate,
    /// Where services' tasks may run.
    pub placement: SwarmPlacement,
    /// How the node and Prometheus ports are published.
    pub publish_mode: PublishMode,
    /// The registry repository (`host[:port][/path]`) `apply` pushes the images under, so that
    /// every engine pulls them; none: the images stay on the manager's engine.
    pub registry: Option<String>,
}

/// `[swarm.update]`, resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwarmUpdate {
    /// Tasks updated at once.
    pub parallelism: u32,
    /// Stop the old task first, or start the new one first.
    pub order: UpdateOrder,
    /// What Swarm does when an updated task fails.
    pub failure_action: FailureAction,
    /// How long Swarm watches an updated task for failure.
    pub monitor: HumanDuration,
}

/// `[swarm.update] order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old task, then start the new one.
    StopFirst,
    /// Start the new task, then stop the old one (needs free ports: ingress publishing).
    StartFirst,
}

impl UpdateOrder {
    /// The engine's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateOrder::StopFirst => "stop-first",
            UpdateOrder::StartFirst => "start-first",
        }
    }
}

/// `[swarm.update] failure_action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureAction {
    /// Roll the service back to its previous spec.
    Rollback,
    /// Pause the update.
    Pause,
    /// Carry on.
    Continue,
}

/// `[swarm.placement]`, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SwarmPlacement {
    /// Constraints like `node.role==manager`, each checked against its grammar.
    pub constraints: Vec<String>,
    /// The node attribute tasks spread over (`node.labels.zone`), if any.
    pub spread: Option<String>,
}

/// `[swarm] publish_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// On the host the task runs on, straight to the container.
    Host,
    /// On every swarm node, through the IPVS routing mesh.
    Ingress,
}

impl Swarm {
    /// Where a locally built or present image (`[host/]path/name[:tag][@digest]`) goes under
    /// `registry`: `<registry>/<name>:<tag>`, its own last name component and tag (an image with
    /// no tag is tagged by its digest, or `latest`); none without a registry.
    pub fn pushed_as(&self, local: &str) -> Option<String> {
        let registry = self.registry.as_ref()?;
        let (named, digest) = local.split_once('@').unwrap_or((local, ""));
        let last = named.rsplit('/').next().unwrap_or(named);
        let (name, tag) = match last.split_once(':') {
            Some((name, tag)) => (name, tag.to_string()),
            None => match digest.split_once(':') {
                Some((algorithm, hex)) => {
                    (last, format!("{algorithm}-{}", &hex[..hex.len().min(16)]))
                }
                None => (last, "latest".to_string()),
            },
        };
        Some(format!("{registry}/{name}:{tag}"))
    }
}

impl Default for Swarm {
    fn default() -> Self {
        Swarm {
            update: SwarmUpdate {
                parallelism: 1,
                order: UpdateOrder::StopFirst,
                failure_action: FailureAction::Rollback,
                monitor: HumanDuration(std::time::Duration::from_secs(5)),
            },
            placement: SwarmPlacement {
                constraints: Vec::new(),
                spread: None,
            },
            publish_mode: PublishMode::Host,
            registry: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_role_reads_back_from_its_one_spelling() {
        for role in [Role::Coordinator, Role::Worker] {
            assert_eq!(Role::from_name(role.as_str()), Some(role));
            assert_eq!(
                serde_json::to_value(role).unwrap(),
                serde_json::json!(role.as_str())
            );
        }
        assert_eq!(Role::from_name("prometheus"), None);
    }

    #[test]
    fn an_image_goes_under_the_registry_by_its_last_name_and_its_tag() {
        let mut swarm = Swarm::default();
        assert_eq!(swarm.pushed_as("erlmcp-node:0.1.0-abc"), None);
        swarm.registry = Some("127.0.0.1:5000/team".into());
        for (local, pushed) in [
            (
                "erlmcp-node:0.1.0-abc",
                "127.0.0.1:5000/team/erlmcp-node:0.1.0-abc",
            ),
            (
                "docker.io/prom/prometheus:v2.53.0",
                "127.0.0.1:5000/team/prometheus:v2.53.0",
            ),
            ("localhost:5000/a/b", "127.0.0.1:5000/team/b:latest"),
            (
                "prom/prometheus@sha256:0123456789abcdef0123",
                "127.0.0.1:5000/team/prometheus:sha256-0123456789abcdef",
            ),
            ("r.io/x:1@sha256:00ff", "127.0.0.1:5000/team/x:1"),
        ] {
            assert_eq!(swarm.pushed_as(local).as_deref(), Some(pushed), "{local}");
        }
    }
}
