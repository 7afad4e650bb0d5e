//! One container as the cluster wants it (from the deployment spec) and the engine's create
//! request for it: limits, ports, labels, health check, mounts and least privilege.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, HostConfigLogConfig,
    NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum,
};
use serde::Serialize;

use crate::config::model::Cluster;
use crate::deploy_spec::{self, Addressing, LABEL_CONFIG_HASH};
use crate::engine::{image, secret};
use crate::plan::ResourceKind;

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

/// Health checks run this often so `apply` is not slower than it must be.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// The container for one node: its deployment spec, in the engine's terms.
pub(crate) fn node_spec(
    cluster: &Cluster,
    node: &crate::config::model::Node,
    image: &str,
) -> ContainerSpec {
    let spec = deploy_spec::node_deployment(cluster, node, &Addressing::ClusterNetwork);
    ContainerSpec {
        kind: ResourceKind::of_role(spec.role),
        node: spec.node.clone(),
        image: image.to_string(),
        cmd: spec.command.clone(),
        env: spec.env_map(),
        labels: spec.labels.clone(),
        ports: spec
            .ports
            .iter()
            .map(|p| (p.container, p.host_address.to_string(), p.host))
            .collect(),
        nano_cpus: (spec.limits.cpus * 1e9) as i64,
        // Docker has no hard CPU reservation outside swarm: a weight stands in for it.
        cpu_shares: match spec.reservations {
            Some(r) if r.cpus > 0.0 => ((r.cpus * 1024.0) as i64).max(2),
            _ => 0,
        },
        memory: spec.limits.memory.0 as i64,
        memory_reservation: spec.reservations.map_or(0, |r| r.memory.0 as i64),
        nofile: Some(spec.nofile),
        sysctls: spec.sysctls.clone(),
        log: log_config(cluster),
        network: (cluster.network.clone(), spec.node.clone()),
        healthcheck: Some(spec.healthcheck.test.clone()),
        volumes: Vec::new(),
        read_only_files: vec![(
            secret::stored_path(&cluster.name).display().to_string(),
            spec.secret.target.clone(),
        )],
        files: Vec::new(),
        user: spec.user.into(),
        name: spec.name,
    }
}

/// The Prometheus container: its deployment spec with `image`, its configuration files written
/// under the state directory (the root filesystem is read-only, so nothing can be copied in).
pub(crate) fn prometheus_spec(
    cluster: &Cluster,
    image: &str,
    volume: &str,
    config: String,
    alerts: String,
) -> ContainerSpec {
    // The local image (Debian's binary `FROM scratch`) has no shell and no wget, so it carries
    // the static `erlmcp-node` to probe with; the registry image has busybox's wget.
    let probe = image
        .starts_with(image::LOCAL_PROMETHEUS_REPOSITORY)
        .then_some(image::PROMETHEUS_HEALTHCHECK_BINARY);
    let spec = deploy_spec::prometheus_deployment(cluster, image, probe);
    let contents = |file: &str| match file {
        "prometheus.yml" => config.clone(),
        _ => alerts.clone(),
    };
    ContainerSpec {
        kind: ResourceKind::Prometheus,
        node: deploy_spec::PROMETHEUS_NAME.into(),
        image: spec.image.clone(),
        cmd: spec.command.clone(),
        env: BTreeMap::new(),
        labels: spec.labels.clone(),
        ports: vec![(
            spec.port.container,
            spec.port.host_address.to_string(),
            spec.port.host,
        )],
        nano_cpus: (spec.limits.cpus * 1e9) as i64,
        cpu_shares: 0,
        memory: spec.limits.memory.0 as i64,
        memory_reservation: 0,
        nofile: None,
        sysctls: BTreeMap::new(),
        log: log_config(cluster),
        network: (cluster.network.clone(), deploy_spec::PROMETHEUS_NAME.into()),
        healthcheck: Some(spec.healthcheck.test.clone()),
        volumes: vec![(volume.to_string(), spec.data.target.clone())],
        read_only_files: Vec::new(),
        files: spec
            .config_files
            .iter()
            .map(|file| {
                let host = crate::engine::native::state_dir(&cluster.name)
                    .join("files")
                    .join(&spec.name)
                    .join(&file.source);
                (
                    host.display().to_string(),
                    file.target.clone(),
                    contents(&file.source),
                )
            })
            .collect(),
        user: spec.user.into(),
        name: spec.name,
    }
}

pub use deploy_spec::{NODE_USER, PROMETHEUS_USER};

pub(super) fn log_config(cluster: &Cluster) -> (String, BTreeMap<String, String>) {
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
pub(super) fn binds(spec: &ContainerSpec) -> Vec<String> {
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
pub(super) fn create_body(
    spec: &ContainerSpec,
    hash: &str,
    nofile: Option<u64>,
) -> ContainerCreateBody {
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
    use super::super::desired::short_hash_of;
    use super::*;
    use crate::deploy_spec::LABEL_NODE;

    fn local_cluster() -> Cluster {
        crate::config::committed_cluster("local.toml")
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
    fn a_container_gets_its_nodes_deployment_spec() {
        let cluster = local_cluster();
        for node in &cluster.nodes {
            let spec = deploy_spec::node_deployment(&cluster, node, &Addressing::ClusterNetwork);
            let container = node_spec(&cluster, node, "img:1");
            assert_eq!(container.env, spec.env_map());
            assert_eq!(container.labels, spec.labels);
            assert_eq!(container.healthcheck.as_ref(), Some(&spec.healthcheck.test));
            assert_eq!(container.nofile, Some(spec.nofile));
            assert_eq!(container.read_only_files[0].1, spec.secret.target);
        }
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
}
