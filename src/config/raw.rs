//! The cluster file as the user wrote it: every key optional where a default exists, every leaf
//! with its source span so that diagnostics can point at it.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::units::{ByteSize, HumanDuration};

/// A value with the byte range it came from in the cluster file.
pub type S<T> = Spanned<T>;

/// The whole cluster file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClusterFile {
    /// `[cluster]`: name and version.
    pub cluster: S<RawCluster>,
    /// `[runtime]`: where the cluster runs.
    #[serde(default)]
    pub runtime: Option<S<RawRuntime>>,
    /// `[vm]`: the Colima VM (only for `runtime.kind = "colima"`).
    #[serde(default)]
    pub vm: Option<S<RawVm>>,
    /// `[image]`: the node image.
    #[serde(default)]
    pub image: Option<S<RawImage>>,
    /// `[network]`: the cluster's container network.
    #[serde(default)]
    pub network: Option<S<RawNetwork>>,
    /// `[nodes]`: how many nodes, their names and host ports.
    pub nodes: S<RawNodes>,
    /// `[defaults]`: settings every node gets unless its `[[node]]` entry overrides them.
    #[serde(default)]
    pub defaults: Option<S<RawNodeSettings>>,
    /// `[[node]]`: per-node overrides, by name.
    #[serde(default)]
    pub node: Vec<S<RawNodeSettings>>,
    /// `[prometheus]`: the metrics server.
    #[serde(default)]
    pub prometheus: Option<S<RawPrometheus>>,
    /// `[logging]`: container log rotation.
    #[serde(default)]
    pub logging: Option<S<RawLogging>>,
    /// `[tuning]`: kernel settings.
    #[serde(default)]
    pub tuning: Option<S<RawTuning>>,
    /// `[slo]`: service-level objectives the stress run is judged by.
    #[serde(default)]
    pub slo: Option<S<RawSlo>>,
    /// `[stress]`: the default load profile.
    #[serde(default)]
    pub stress: Option<S<RawStress>>,
    /// `[kubernetes]`: how the manifests in `generated/k8s/` deploy the cluster.
    #[serde(default)]
    pub kubernetes: Option<S<RawKubernetes>>,
    /// `[swarm]`: rolling updates, placement and publishing on Docker Swarm.
    #[serde(default)]
    pub swarm: Option<S<RawSwarm>>,
}

/// `[cluster]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    /// Cluster name: prefixes container names and labels.
    pub name: S<String>,
    /// Cluster version: tags the node image.
    #[serde(default)]
    pub version: Option<S<String>>,
    /// File holding the cluster secret, relative to the cluster file (else `apply` makes one).
    #[serde(default)]
    pub secret_file: Option<S<String>>,
}

/// `[runtime]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    /// `colima`, `docker` or `native`.
    #[serde(default)]
    pub kind: Option<S<String>>,
    /// Colima profile name.
    #[serde(default)]
    pub colima_profile: Option<S<String>>,
    /// The host address ports are published on.
    #[serde(default)]
    pub publish_address: Option<S<String>>,
}

/// `[vm]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVm {
    /// Virtual CPUs.
    pub cpus: S<u32>,
    /// VM memory.
    pub memory: S<ByteSize>,
    /// VM disk.
    pub disk: S<ByteSize>,
    /// `vz` or `qemu`.
    #[serde(default)]
    pub vm_type: Option<S<String>>,
}

/// `[image]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImage {
    /// Image repository name for the node image.
    #[serde(default)]
    pub repository: Option<S<String>>,
    /// The Rust image the multi-stage (`source`) build starts from.
    #[serde(default)]
    pub builder: Option<S<String>>,
    /// `auto`, `source` or `prebuilt`.
    #[serde(default)]
    pub build: Option<S<String>>,
}

/// `[network]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNetwork {
    /// Docker network name.
    #[serde(default)]
    pub name: Option<S<String>>,
}

/// `[nodes]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodes {
    /// Number of nodes; names are `<prefix>1` … `<prefix>N`.
    pub count: S<u32>,
    /// Node name prefix.
    #[serde(default)]
    pub prefix: Option<S<String>>,
    /// Host port of node 1's HTTP API; node i gets `api_port + i - 1`.
    #[serde(default)]
    pub api_port: Option<S<u32>>,
    /// Host port of node 1's MCP TCP listener; node i gets `listener_port + i - 1`.
    #[serde(default)]
    pub listener_port: Option<S<u32>>,
}

/// Settings a node can have, in `[defaults]` or in a `[[node]]` override. `name`, `role` and the
/// ports belong only in `[[node]]`; resolution reports them when `[defaults]` has them.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNodeSettings {
    /// Which node a `[[node]]` entry overrides (`node3`).
    #[serde(default)]
    pub name: Option<S<String>>,
    /// `coordinator` or `worker`.
    #[serde(default)]
    pub role: Option<S<String>>,
    /// This node's host API port.
    #[serde(default)]
    pub api_port: Option<S<u32>>,
    /// This node's host listener port.
    #[serde(default)]
    pub listener_port: Option<S<u32>>,
    /// Maximum concurrent MCP connections.
    #[serde(default)]
    pub connections: Option<S<u32>>,
    /// CPU limit (cores).
    #[serde(default)]
    pub cpu_limit: Option<S<f64>>,
    /// Memory limit.
    #[serde(default)]
    pub memory_limit: Option<S<ByteSize>>,
    /// CPU reservation (cores).
    #[serde(default)]
    pub cpu_reservation: Option<S<f64>>,
    /// Memory reservation.
    #[serde(default)]
    pub memory_reservation: Option<S<ByteSize>>,
    /// Open-file limit (soft = hard).
    #[serde(default)]
    pub nofile: Option<S<u64>>,
    /// Idle MCP connections are closed after this long.
    #[serde(default)]
    pub idle_timeout: Option<S<HumanDuration>>,
    /// Idle HTTP keep-alive connections are closed after this long.
    #[serde(default)]
    pub keep_alive_timeout: Option<S<HumanDuration>>,
}

/// `[prometheus]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheus {
    /// Run Prometheus at all.
    #[serde(default)]
    pub enabled: Option<S<bool>>,
    /// Image used where a registry is reachable.
    #[serde(default)]
    pub image: Option<S<String>>,
    /// Host port of the Prometheus UI/API.
    #[serde(default)]
    pub port: Option<S<u32>>,
    /// Global scrape interval.
    #[serde(default)]
    pub scrape_interval: Option<S<HumanDuration>>,
    /// Scrape interval of the node job.
    #[serde(default)]
    pub node_scrape_interval: Option<S<HumanDuration>>,
    /// TSDB retention.
    #[serde(default)]
    pub retention: Option<S<HumanDuration>>,
    /// CPU limit (cores).
    #[serde(default)]
    pub cpu_limit: Option<S<f64>>,
    /// Memory limit.
    #[serde(default)]
    pub memory_limit: Option<S<ByteSize>>,
}

/// `[logging]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogging {
    /// Docker log driver.
    #[serde(default)]
    pub driver: Option<S<String>>,
    /// Rotate a log file at this size.
    #[serde(default)]
    pub max_size: Option<S<ByteSize>>,
    /// Keep this many files.
    #[serde(default)]
    pub max_files: Option<S<u32>>,
}

/// `[tuning]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTuning {
    /// Sysctls applied to the VM or host (`colima-setup.sh tune`).
    #[serde(default)]
    pub host: BTreeMap<String, S<toml::Value>>,
    /// Sysctls set in every node container's own network namespace.
    #[serde(default)]
    pub container: BTreeMap<String, S<toml::Value>>,
}

/// `[slo]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    /// p99 latency must stay below this.
    #[serde(default)]
    pub p99: Option<S<HumanDuration>>,
    /// Failed requests must stay below this share, in percent.
    #[serde(default)]
    pub error_rate_percent: Option<S<f64>>,
}

/// `[stress]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStress {
    /// Concurrent MCP sessions to hold.
    #[serde(default)]
    pub connections: Option<S<u32>>,
    /// How long to hold them after the ramp.
    #[serde(default)]
    pub duration: Option<S<HumanDuration>>,
    /// How long the linear ramp takes.
    #[serde(default)]
    pub ramp: Option<S<HumanDuration>>,
    /// Total `tools/call echo` requests per second (open model).
    #[serde(default)]
    pub rate: Option<S<f64>>,
    /// `tcp` or `http`.
    #[serde(default)]
    pub transport: Option<S<String>>,
}

/// `[kubernetes]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    /// Namespace every resource goes into.
    #[serde(default)]
    pub namespace: Option<S<String>>,
    /// Full node image reference, with the registry the cluster pulls from.
    #[serde(default)]
    pub image: Option<S<String>>,
    /// Deploy Prometheus beside the nodes.
    #[serde(default)]
    pub prometheus: Option<S<bool>>,
    /// `ClusterIP`, `LoadBalancer` or `NodePort`.
    #[serde(default)]
    pub service_type: Option<S<String>>,
}

/// `[swarm]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarm {
    /// `[swarm.update]`: how a changed node is rolled.
    #[serde(default)]
    pub update: Option<S<RawSwarmUpdate>>,
    /// `[swarm.placement]`: where tasks run.
    #[serde(default)]
    pub placement: Option<S<RawSwarmPlacement>>,
    /// `host` or `ingress`.
    #[serde(default)]
    pub publish_mode: Option<S<String>>,
    /// The registry repository the images are pushed to and every engine pulls from.
    #[serde(default)]
    pub registry: Option<S<String>>,
}

/// `[swarm.update]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarmUpdate {
    /// Tasks updated at once.
    #[serde(default)]
    pub parallelism: Option<S<u32>>,
    /// `stop-first` or `start-first`.
    #[serde(default)]
    pub order: Option<S<String>>,
    /// `rollback`, `pause` or `continue`.
    #[serde(default)]
    pub failure_action: Option<S<String>>,
    /// How long an updated task is watched for failure.
    #[serde(default)]
    pub monitor: Option<S<HumanDuration>>,
}

/// `[swarm.placement]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSwarmPlacement {
    /// Constraints like `node.role==manager`.
    #[serde(default)]
    pub constraints: Vec<S<String>>,
    /// Spread over this node attribute (`node.labels.zone`).
    #[serde(default)]
    pub spread: Option<S<String>>,
}
