//! Each node's deployment, and Prometheus's, computed once from the resolved cluster: name, role,
//! environment (the node's whole environment contract), ports, limits, ulimits, sysctls,
//! healthcheck, labels, mounts and the cluster secret. The compose template renders from it and
//! every runtime translates it into its own resources (containers, processes; Swarm services and
//! Kubernetes manifests next), so nothing here names a runtime's types.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::model::{
    CONTAINER_API_PORT, CONTAINER_LISTENER_PORT, CONTAINER_PROMETHEUS_PORT, Cluster, Node, Role,
};
use crate::config::units::ByteSize;

/// Label naming the cluster a resource belongs to.
pub const LABEL_CLUSTER: &str = "erlmcp.cluster";
/// Label naming the node (or `prometheus`).
pub const LABEL_NODE: &str = "erlmcp.node";
/// Label naming the node's role.
pub const LABEL_ROLE: &str = "erlmcp.role";
/// Label holding the hash of the configuration the resource was created from.
pub const LABEL_CONFIG_HASH: &str = "erlmcp.config-hash";

/// The cluster secret's name where a runtime names secrets (compose, Swarm, Kubernetes).
pub const CLUSTER_SECRET_NAME: &str = "erlmcp_cluster_secret";
/// Where a containerised node reads the cluster secret: compose's file-based secrets, Swarm
/// secrets and Kubernetes Secret volumes all put a file here.
pub const CONTAINER_SECRET_PATH: &str = "/run/secrets/erlmcp_cluster_secret";
/// The user nodes run as (the images' `USER`).
pub const NODE_USER: &str = "10001:10001";
/// The user Prometheus runs as: `nobody`, who owns its data directory in both images.
pub const PROMETHEUS_USER: &str = "65534:65534";
/// The node binary inside its image.
pub const NODE_BINARY_IN_IMAGE: &str = "/usr/local/bin/erlmcp-node";
/// The name Prometheus goes by wherever a node has a name (labels, hostname, log source).
pub const PROMETHEUS_NAME: &str = "prometheus";
/// Where Prometheus keeps its data inside its container.
pub const PROMETHEUS_DATA_PATH: &str = "/prometheus";
/// Where Prometheus's configuration files are mounted inside its container.
pub const PROMETHEUS_CONFIG_DIR: &str = "/etc/prometheus";

/// How a node is reached, which decides the addresses in its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// In a container on the cluster network: bound to every interface on the container ports,
    /// known to the others by its node name, the secret at [`CONTAINER_SECRET_PATH`].
    ClusterNetwork,
    /// A process on this host: bound to the publish address on its host ports, known by the
    /// address this machine reaches them on, the secret read from `secret_file`.
    HostPorts {
        /// The cluster secret's file on this host.
        secret_file: PathBuf,
    },
    /// A pod of a Kubernetes StatefulSet: bound to every interface on the container ports, named
    /// after its pod (known only where it runs, see [`EnvVar::after_pod_name`]) and known to
    /// the others as `<pod>.<service>`, the headless Service's DNS name; the secret mounted at
    /// [`CONTAINER_SECRET_PATH`].
    Kubernetes {
        /// The headless Service that gives every pod its DNS name.
        service: String,
        /// The coordinator's pod name (`<statefulset>-0`).
        coordinator_pod: String,
        /// The names clients reach the API by (the client Service's), which the node's
        /// DNS-rebinding check must accept besides its own.
        allowed_hosts: Vec<String>,
    },
}

/// The node's variable for the extra `Host` names its API accepts (Kubernetes only).
pub const ALLOWED_HOSTS_VAR: &str = "ERLMCP_ALLOWED_HOSTS";

/// One environment variable of the node's contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    /// Name (`ERLMCP_…`).
    pub name: &'static str,
    /// Value.
    pub value: String,
    /// The value follows the pod's own name (`<pod><value>`), which only the runtime knows;
    /// false everywhere but [`Addressing::Kubernetes`].
    pub after_pod_name: bool,
}

/// One published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// What it serves: `api`, `listener` or `web`.
    pub name: &'static str,
    /// Port inside the container.
    pub container: u16,
    /// Address it is published on.
    pub host_address: IpAddr,
    /// Port on the host.
    pub host: u16,
}

/// CPU and memory, as a limit or a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Resources {
    /// Cores.
    pub cpus: f64,
    /// Memory.
    pub memory: ByteSize,
}

/// How the runtime checks a container is healthy (the intervals compose writes; a driver that
/// waits on health itself may check more often).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Healthcheck {
    /// The command, exec form (`CMD` first, as compose and the engine take it).
    pub test: Vec<String>,
    /// Between checks.
    pub interval: Duration,
    /// For one check.
    pub timeout: Duration,
    /// Failures in a row before unhealthy.
    pub retries: u32,
    /// Grace after the start.
    pub start_period: Duration,
}

/// A file the runtime hands a container read-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileMount {
    /// The file's name in the rendered output (`prometheus.yml`) or the secret's name.
    pub source: String,
    /// Path inside the container.
    pub target: String,
}

/// A named volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeMount {
    /// Volume name in the runtime.
    pub name: String,
    /// Path inside the container.
    pub target: String,
}

/// One node as every runtime deploys it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeDeployment {
    /// Node name; also its hostname and network alias.
    pub node: String,
    /// Resource name in the runtime (`<cluster>-<node>`).
    pub name: String,
    /// Role.
    pub role: Role,
    /// Image reference.
    pub image: String,
    /// Arguments to the image's entrypoint (or to the binary, natively).
    pub command: Vec<String>,
    /// The environment contract, in a fixed order.
    pub env: Vec<EnvVar>,
    /// Published ports: the API first, then the MCP listener.
    pub ports: Vec<Port>,
    /// Limits.
    pub limits: Resources,
    /// Reservations, when the file asks for any.
    pub reservations: Option<Resources>,
    /// Open-file limit, soft and hard.
    pub nofile: u64,
    /// Per-container sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// Health check.
    pub healthcheck: Healthcheck,
    /// Labels (without the config hash, which the runtime adds).
    pub labels: BTreeMap<String, String>,
    /// The cluster secret: its name and where the node reads it.
    pub secret: FileMount,
    /// `uid:gid`, never root.
    pub user: &'static str,
}

/// Prometheus as every container runtime deploys it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrometheusDeployment {
    /// Resource name in the runtime (`<cluster>-prometheus`).
    pub name: String,
    /// Image reference.
    pub image: String,
    /// Arguments to the image's entrypoint.
    pub command: Vec<String>,
    /// The web port.
    pub port: Port,
    /// Limits.
    pub limits: Resources,
    /// Health check.
    pub healthcheck: Healthcheck,
    /// Labels (without the config hash).
    pub labels: BTreeMap<String, String>,
    /// Its data.
    pub data: VolumeMount,
    /// `prometheus.yml` and `alerts.yml`, read-only (the rules are named relative to the config).
    pub config_files: Vec<FileMount>,
    /// `uid:gid`, never root.
    pub user: &'static str,
}

/// The whole cluster's deployment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    /// The cluster network.
    pub network: String,
    /// Nodes in file order (the coordinator where the file puts it).
    pub nodes: Vec<NodeDeployment>,
    /// Prometheus, when enabled.
    pub prometheus: Option<PrometheusDeployment>,
}

/// The whole cluster's deployment on the cluster network, Prometheus with the file's image.
pub fn deployment(cluster: &Cluster) -> Deployment {
    Deployment {
        network: cluster.network.clone(),
        nodes: cluster
            .nodes
            .iter()
            .map(|node| node_deployment(cluster, node, &Addressing::ClusterNetwork))
            .collect(),
        prometheus: cluster
            .prometheus
            .enabled
            .then(|| prometheus_deployment(cluster, &cluster.prometheus.image, None)),
    }
}

/// The resource name of a node or of Prometheus (`<cluster>-<name>`).
pub fn resource_name(cluster: &Cluster, name: &str) -> String {
    format!("{}-{name}", cluster.name)
}

/// The labels every resource of the cluster carries.
pub fn cluster_labels(cluster: &Cluster) -> BTreeMap<String, String> {
    BTreeMap::from([(LABEL_CLUSTER.to_string(), cluster.name.clone())])
}

/// One node's deployment, addressed as `addressing` says.
pub fn node_deployment(cluster: &Cluster, node: &Node, addressing: &Addressing) -> NodeDeployment {
    let address = cluster.runtime.publish_address;
    let mut labels = cluster_labels(cluster);
    labels.insert(LABEL_NODE.into(), node.name.clone());
    labels.insert(LABEL_ROLE.into(), node.role.as_str().into());
    let has_reservation = node.cpu_reservation > 0.0 || node.memory_reservation.0 > 0;
    NodeDeployment {
        node: node.name.clone(),
        name: resource_name(cluster, &node.name),
        role: node.role,
        image: cluster.image_ref(),
        command: vec!["serve".into()],
        env: node_env(cluster, node, addressing),
        ports: vec![
            Port {
                name: "api",
                container: CONTAINER_API_PORT,
                host_address: address,
                host: node.api_port,
            },
            Port {
                name: "listener",
                container: CONTAINER_LISTENER_PORT,
                host_address: address,
                host: node.listener_port,
            },
        ],
        limits: Resources {
            cpus: node.cpu_limit,
            memory: node.memory_limit,
        },
        reservations: has_reservation.then_some(Resources {
            cpus: node.cpu_reservation,
            memory: node.memory_reservation,
        }),
        nofile: node.nofile,
        sysctls: cluster.tuning.container.clone(),
        healthcheck: Healthcheck {
            test: vec![
                "CMD".into(),
                NODE_BINARY_IN_IMAGE.into(),
                "healthcheck".into(),
            ],
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            retries: 5,
            start_period: Duration::from_secs(5),
        },
        labels,
        secret: FileMount {
            source: CLUSTER_SECRET_NAME.into(),
            target: CONTAINER_SECRET_PATH.into(),
        },
        user: NODE_USER,
    }
}

/// The node's environment contract: every `ERLMCP_*` variable a node is started with, in the
/// order the compose file lists them. The one place a variable is added or renamed.
pub fn node_env(cluster: &Cluster, node: &Node, addressing: &Addressing) -> Vec<EnvVar> {
    let coordinator = cluster.coordinator();
    let per_pod = matches!(addressing, Addressing::Kubernetes { .. });
    let (bind, api_port, listener_port, advertise, seeds, secret_file) = match addressing {
        Addressing::ClusterNetwork => (
            "0.0.0.0".to_string(),
            CONTAINER_API_PORT,
            CONTAINER_LISTENER_PORT,
            node.name.clone(),
            format!(
                "{}:{CONTAINER_API_PORT}",
                coordinator.map_or("", |c| c.name.as_str())
            ),
            CONTAINER_SECRET_PATH.to_string(),
        ),
        Addressing::HostPorts { secret_file } => (
            cluster.runtime.publish_address.to_string(),
            node.api_port,
            node.listener_port,
            cluster.reachable(node.api_port).ip().to_string(),
            cluster
                .reachable(coordinator.map_or(0, |c| c.api_port))
                .to_string(),
            secret_file.display().to_string(),
        ),
        Addressing::Kubernetes {
            service,
            coordinator_pod,
            ..
        } => (
            "0.0.0.0".to_string(),
            CONTAINER_API_PORT,
            CONTAINER_LISTENER_PORT,
            format!(".{service}"),
            format!("{coordinator_pod}.{service}:{CONTAINER_API_PORT}"),
            CONTAINER_SECRET_PATH.to_string(),
        ),
    };
    let var = |name: &'static str, value: String| EnvVar {
        name,
        value,
        after_pod_name: false,
    };
    let pod_var = |name: &'static str, value: String| EnvVar {
        name,
        value,
        after_pod_name: per_pod,
    };
    let node_name = if per_pod {
        String::new()
    } else {
        node.name.clone()
    };
    let mut env = vec![
        var("ERLMCP_CLUSTER", cluster.name.clone()),
        pod_var("ERLMCP_NODE_NAME", node_name),
        var("ERLMCP_ROLE", node.role.as_str().into()),
        var("ERLMCP_BIND", bind),
        var("ERLMCP_API_PORT", api_port.to_string()),
        var("ERLMCP_LISTENER_PORT", listener_port.to_string()),
        var("ERLMCP_MAX_CONNECTIONS", node.connections.to_string()),
        var("ERLMCP_IDLE_TIMEOUT", node.idle_timeout.to_string()),
        var(
            "ERLMCP_KEEP_ALIVE_TIMEOUT",
            node.keep_alive_timeout.to_string(),
        ),
        pod_var("ERLMCP_ADVERTISE_HOST", advertise),
        var("ERLMCP_SEEDS", seeds),
        // A path, never the value: `docker inspect` and /proc show the environment.
        var("ERLMCP_CLUSTER_SECRET_FILE", secret_file),
    ];
    // Only where clients come through a Service's names: elsewhere the node's own name and
    // loopback are all, and an extra variable would change every existing config hash.
    if let Addressing::Kubernetes { allowed_hosts, .. } = addressing {
        env.push(var(ALLOWED_HOSTS_VAR, allowed_hosts.join(",")));
    }
    env
}

/// Prometheus's deployment with `image`. `probe_binary` names a health-check program the image
/// carries when it has no `wget` (the registry-free local image carries the static node binary).
pub fn prometheus_deployment(
    cluster: &Cluster,
    image: &str,
    probe_binary: Option<&str>,
) -> PrometheusDeployment {
    let p = &cluster.prometheus;
    let ready = format!("http://127.0.0.1:{CONTAINER_PROMETHEUS_PORT}/-/ready");
    let test = match probe_binary {
        Some(binary) => vec![
            "CMD".into(),
            binary.into(),
            "healthcheck".into(),
            "--url".into(),
            ready,
        ],
        None => vec![
            "CMD".into(),
            "wget".into(),
            "-q".into(),
            "-O".into(),
            "/dev/null".into(),
            ready,
        ],
    };
    let mut labels = cluster_labels(cluster);
    labels.insert(LABEL_NODE.into(), PROMETHEUS_NAME.into());
    PrometheusDeployment {
        name: resource_name(cluster, PROMETHEUS_NAME),
        image: image.to_string(),
        command: vec![
            format!("--config.file={PROMETHEUS_CONFIG_DIR}/prometheus.yml"),
            format!("--storage.tsdb.path={PROMETHEUS_DATA_PATH}"),
            format!("--storage.tsdb.retention.time={}", p.retention),
            format!("--web.listen-address=:{CONTAINER_PROMETHEUS_PORT}"),
        ],
        port: Port {
            name: "web",
            container: CONTAINER_PROMETHEUS_PORT,
            host_address: cluster.runtime.publish_address,
            host: p.port,
        },
        limits: Resources {
            cpus: p.cpu_limit,
            memory: p.memory_limit,
        },
        healthcheck: Healthcheck {
            test,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(3),
            retries: 5,
            start_period: Duration::from_secs(10),
        },
        labels,
        data: VolumeMount {
            name: format!("{}-prometheus-data", cluster.name),
            target: PROMETHEUS_DATA_PATH.into(),
        },
        config_files: ["prometheus.yml", "alerts.yml"]
            .into_iter()
            .map(|file| FileMount {
                source: file.into(),
                target: format!("{PROMETHEUS_CONFIG_DIR}/{file}"),
            })
            .collect(),
        user: PROMETHEUS_USER,
    }
}

impl NodeDeployment {
    /// The environment as a name → value map (for runtimes that take one).
    pub fn env_map(&self) -> BTreeMap<String, String> {
        self.env
            .iter()
            .map(|v| (v.name.to_string(), v.value.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_cluster() -> Cluster {
        crate::config::committed_cluster("local.toml")
    }

    fn env_of<'a>(node: &'a NodeDeployment, name: &str) -> &'a str {
        &node.env.iter().find(|v| v.name == name).unwrap().value
    }

    #[test]
    fn on_the_cluster_network_nodes_bind_everything_and_seed_from_the_coordinator() {
        let cluster = local_cluster();
        let spec = deployment(&cluster);
        let worker = &spec.nodes[1];
        assert_eq!(worker.name, format!("{}-node2", cluster.name));
        assert_eq!(worker.role, Role::Worker);
        assert_eq!(env_of(worker, "ERLMCP_BIND"), "0.0.0.0");
        assert_eq!(env_of(worker, "ERLMCP_API_PORT"), "8080");
        assert_eq!(env_of(worker, "ERLMCP_ADVERTISE_HOST"), "node2");
        assert_eq!(env_of(worker, "ERLMCP_SEEDS"), "node1:8080");
        assert_eq!(env_of(worker, "ERLMCP_ROLE"), "worker");
        assert_eq!(
            env_of(worker, "ERLMCP_CLUSTER_SECRET_FILE"),
            CONTAINER_SECRET_PATH
        );
        assert_eq!(worker.labels[LABEL_ROLE], "worker");
        assert_eq!(worker.labels[LABEL_NODE], "node2");
        assert_eq!(worker.ports[0].host, cluster.nodes[1].api_port);
        assert_eq!(worker.ports[0].container, CONTAINER_API_PORT);
        assert_eq!(worker.nofile, cluster.nodes[1].nofile);
        assert_eq!(worker.user, NODE_USER);
    }

    #[test]
    fn on_host_ports_nodes_bind_the_publish_address_and_read_the_stored_secret() {
        let cluster = local_cluster();
        let addressing = Addressing::HostPorts {
            secret_file: "/state/secret".into(),
        };
        let worker = node_deployment(&cluster, &cluster.nodes[1], &addressing);
        let coordinator_api = cluster.coordinator().unwrap().api_port;
        assert_eq!(env_of(&worker, "ERLMCP_BIND"), "127.0.0.1");
        assert_eq!(
            env_of(&worker, "ERLMCP_API_PORT"),
            cluster.nodes[1].api_port.to_string()
        );
        assert_eq!(env_of(&worker, "ERLMCP_ADVERTISE_HOST"), "127.0.0.1");
        assert_eq!(
            env_of(&worker, "ERLMCP_SEEDS"),
            format!("127.0.0.1:{coordinator_api}")
        );
        assert_eq!(
            env_of(&worker, "ERLMCP_CLUSTER_SECRET_FILE"),
            "/state/secret"
        );
    }

    #[test]
    fn every_runtime_gets_the_same_variables_in_the_same_order() {
        let cluster = local_cluster();
        let names = |addressing: &Addressing| -> Vec<&'static str> {
            node_env(&cluster, &cluster.nodes[0], addressing)
                .iter()
                .map(|v| v.name)
                .collect()
        };
        let host = Addressing::HostPorts {
            secret_file: "/s".into(),
        };
        assert_eq!(names(&Addressing::ClusterNetwork), names(&host));
        assert_eq!(names(&host).len(), 12);
    }

    #[test]
    fn the_keep_alive_timeout_is_the_idle_timeout_unless_written() {
        let file = |extra: &str| {
            let text = format!(
                "[cluster]\nname = \"k\"\n\n[nodes]\ncount = 2\n\n[defaults]\nidle_timeout = \"10m\"\n{extra}"
            );
            crate::config::parse("k.toml", &text).unwrap().0
        };
        let keep_alive = |cluster: &Cluster, index: usize| {
            let node = node_deployment(cluster, &cluster.nodes[index], &Addressing::ClusterNetwork);
            env_of(&node, "ERLMCP_KEEP_ALIVE_TIMEOUT").to_string()
        };
        let inherited = file("");
        assert_eq!(
            keep_alive(&inherited, 0),
            inherited.nodes[0].idle_timeout.to_string()
        );
        let written = file(
            "keep_alive_timeout = \"90s\"\n\n[[node]]\nname = \"node2\"\nkeep_alive_timeout = \"2m\"\n",
        );
        assert_eq!(keep_alive(&written, 0), "90s");
        assert_eq!(keep_alive(&written, 1), "2m");
    }

    #[test]
    fn in_kubernetes_nodes_are_named_after_their_pod_and_seed_through_the_headless_service() {
        let cluster = local_cluster();
        let addressing = Addressing::Kubernetes {
            service: "erlmcp-nodes".into(),
            coordinator_pod: "erlmcp-coordinator-0".into(),
            allowed_hosts: vec!["erlmcp".into(), "erlmcp.ns".into()],
        };
        let env = node_env(&cluster, &cluster.nodes[1], &addressing);
        let of = |name: &str| env.iter().find(|v| v.name == name).unwrap();
        assert!(of("ERLMCP_NODE_NAME").after_pod_name);
        assert_eq!(of("ERLMCP_NODE_NAME").value, "");
        assert!(of("ERLMCP_ADVERTISE_HOST").after_pod_name);
        assert_eq!(of("ERLMCP_ADVERTISE_HOST").value, ".erlmcp-nodes");
        assert_eq!(
            of("ERLMCP_SEEDS").value,
            "erlmcp-coordinator-0.erlmcp-nodes:8080"
        );
        assert!(!of("ERLMCP_SEEDS").after_pod_name);
        assert_eq!(of("ERLMCP_BIND").value, "0.0.0.0");
        assert_eq!(
            of("ERLMCP_CLUSTER_SECRET_FILE").value,
            CONTAINER_SECRET_PATH
        );
        assert_eq!(of(ALLOWED_HOSTS_VAR).value, "erlmcp,erlmcp.ns");
        assert!(!of(ALLOWED_HOSTS_VAR).after_pod_name);
        let names: Vec<_> = env.iter().map(|v| v.name).collect();
        let mut compose: Vec<_> =
            node_env(&cluster, &cluster.nodes[1], &Addressing::ClusterNetwork)
                .iter()
                .map(|v| v.name)
                .collect();
        compose.push(ALLOWED_HOSTS_VAR);
        assert_eq!(
            names, compose,
            "the compose contract plus the Service names"
        );
    }

    #[test]
    fn prometheus_is_probed_with_what_its_image_carries() {
        let cluster = local_cluster();
        let registry = prometheus_deployment(&cluster, "prom/prometheus:v2", None);
        assert_eq!(registry.healthcheck.test[1], "wget");
        let local = prometheus_deployment(&cluster, "local:1", Some("/bin/erlmcp-node"));
        assert_eq!(
            local.healthcheck.test[1..3],
            ["/bin/erlmcp-node", "healthcheck"]
        );
        assert_eq!(local.labels[LABEL_NODE], PROMETHEUS_NAME);
        assert!(!local.labels.contains_key(LABEL_ROLE));
        assert_eq!(local.data.target, PROMETHEUS_DATA_PATH);
        assert_eq!(local.user, PROMETHEUS_USER);
    }

    #[test]
    fn reservations_appear_only_when_asked_for() {
        let mut cluster = local_cluster();
        cluster.nodes[0].cpu_reservation = 0.0;
        cluster.nodes[0].memory_reservation = ByteSize(0);
        let spec = node_deployment(&cluster, &cluster.nodes[0], &Addressing::ClusterNetwork);
        assert_eq!(spec.reservations, None);
        cluster.nodes[0].cpu_reservation = 0.5;
        let spec = node_deployment(&cluster, &cluster.nodes[0], &Addressing::ClusterNetwork);
        assert_eq!(spec.reservations.unwrap().cpus, 0.5);
    }
}
