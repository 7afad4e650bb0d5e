//! One Swarm service as the cluster wants it, translated from the container the deployment spec
//! describes (the Docker driver's [`ContainerSpec`]), and the engine's `ServiceSpec` for it:
//! one replica, hostname and network alias = the node name, limits and reservations, ulimits,
//! sysctls, healthcheck, the cluster secret as a Swarm secret, rolling update and rollback
//! settings, placement, published ports and labels.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    HealthConfig, Limit, Mount, MountType, MountVolumeOptions, NetworkAttachmentConfig,
    ResourceObject, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecContainerSpecConfigs, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecFile1, TaskSpecContainerSpecSecrets, TaskSpecLogDriver, TaskSpecPlacement,
    TaskSpecPlacementPreferences, TaskSpecPlacementSpread, TaskSpecResources,
    TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum,
};
use serde::Serialize;

use crate::config::model::{
    Cluster, FailureAction, PublishMode, SwarmPlacement, SwarmUpdate, UpdateOrder,
};
use crate::deploy_spec::{self, Addressing, LABEL_CLUSTER, LABEL_CONFIG_HASH};
use crate::engine::docker::{ContainerSpec, nofile_ulimits};
use crate::plan::ResourceKind;

/// Most characters in a Swarm secret or config name.
const OBJECT_NAME_MAX: usize = 64;

/// A file handed to a service as a Swarm config (Prometheus's `prometheus.yml`, `alerts.yml`).
#[derive(Debug, Clone, Serialize)]
pub struct ConfigFile {
    /// The config's name: the cluster, and a hash of the target and content (configs are
    /// immutable, so a changed file is a new config).
    pub name: String,
    /// Path inside the container.
    pub target: String,
    /// The file's content (in the hash through `name`).
    #[serde(skip)]
    pub content: String,
}

/// One service as the cluster wants it. Maps are ordered so its hash is stable.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceWant {
    /// Service name (`<cluster>-<node>`, as the Docker driver names containers).
    pub name: String,
    /// Which resource this is.
    pub kind: ResourceKind,
    /// Node name (or `prometheus`): the hostname and the alias on the overlay network.
    pub node: String,
    /// Image reference: the local content-hashed tag (`apply` hands Swarm the image's ID), or
    /// the same image under `[swarm] registry` (`apply` hands Swarm its digest reference).
    pub image: String,
    /// Arguments to the image's entrypoint.
    pub args: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Labels on the service and its containers, without the hash label.
    pub labels: BTreeMap<String, String>,
    /// (container port, published port).
    pub ports: Vec<(u16, u16)>,
    /// How ports are published.
    pub publish_mode: PublishMode,
    /// CPU limit in billionths of a core.
    pub nano_cpus: i64,
    /// Memory limit in bytes.
    pub memory: i64,
    /// CPU reservation in billionths of a core (Swarm schedules by it).
    pub reserved_nano_cpus: i64,
    /// Memory reservation in bytes.
    pub reserved_memory: i64,
    /// Open-file limit wanted (apply clamps to the engine's own limit and warns).
    pub nofile: Option<u64>,
    /// Sysctls (`ContainerSpec.Sysctls`, API 1.40+).
    pub sysctls: BTreeMap<String, String>,
    /// Log driver and options.
    pub log: (String, BTreeMap<String, String>),
    /// The overlay network.
    pub network: String,
    /// Health check command.
    pub healthcheck: Option<Vec<String>>,
    /// Named volume and mount point (Prometheus's data).
    pub volume: Option<(String, String)>,
    /// Where the cluster secret is mounted, for nodes (its Swarm name is worked out by `apply`
    /// from the stored secret, which is never hashed).
    pub secret_target: Option<String>,
    /// Files handed over as Swarm configs.
    pub configs: Vec<ConfigFile>,
    /// `uid:gid`, never root.
    pub user: String,
    /// Rolling update (and rollback) settings.
    pub update: SwarmUpdate,
    /// Placement.
    pub placement: SwarmPlacement,
}

/// What `apply` settles only when it starts a service: nothing here is in the config hash.
#[derive(Debug, Clone, Default)]
pub struct StartFacts {
    /// The image as Swarm gets it: its ID without a registry (Swarm does not try a registry for
    /// an image named by ID), `repo:tag@sha256:<digest>` with one (every engine pulls those
    /// bytes and no others).
    pub image: Option<String>,
    /// The Swarm secret holding the cluster secret: its ID and name (Swarm wants both).
    pub secret: Option<(String, String)>,
    /// The IDs of the Swarm configs, in the order of [`ServiceWant::configs`].
    pub config_ids: Vec<String>,
    /// The open-file limit the engine allows.
    pub nofile: Option<u64>,
    /// Bumped to make Swarm replace tasks of an unchanged spec (an unhealthy service).
    pub force_update: Option<u64>,
}

/// The name of an immutable Swarm object (secret, config) of `cluster`: the cluster, `what`
/// and the first hex digits of `hash`, at most 64 characters.
pub fn object_name(cluster: &str, what: &str, hash: &str) -> String {
    let prefix = format!("{cluster}-{what}-");
    let room = OBJECT_NAME_MAX.saturating_sub(prefix.len()).min(hash.len());
    format!("{prefix}{}", &hash[..room])
}

/// The service for a container of the Docker driver's desired state.
pub fn service_want(cluster: &Cluster, container: &ContainerSpec) -> ServiceWant {
    let node = cluster.nodes.iter().find(|n| n.name == container.node);
    let reservations = node.and_then(|node| {
        deploy_spec::node_deployment(cluster, node, &Addressing::ClusterNetwork).reservations
    });
    let configs = container
        .files
        .iter()
        .map(|(_, target, content)| ConfigFile {
            name: object_name(
                &cluster.name,
                "cfg",
                &crate::engine::image::short_hash(&[target.as_bytes(), content.as_bytes()]),
            ),
            target: target.clone(),
            content: content.clone(),
        })
        .collect();
    ServiceWant {
        name: container.name.clone(),
        kind: container.kind,
        node: container.node.clone(),
        image: container.image.clone(),
        args: container.cmd.clone(),
        env: container.env.clone(),
        labels: container.labels.clone(),
        ports: container
            .ports
            .iter()
            .map(|(inside, _, published)| (*inside, *published))
            .collect(),
        publish_mode: cluster.swarm.publish_mode,
        nano_cpus: container.nano_cpus,
        memory: container.memory,
        reserved_nano_cpus: reservations.map_or(0, |r| (r.cpus * 1e9) as i64),
        reserved_memory: container.memory_reservation,
        nofile: container.nofile,
        sysctls: container.sysctls.clone(),
        log: container.log.clone(),
        network: cluster.network.clone(),
        healthcheck: container.healthcheck.clone(),
        volume: container.volumes.first().cloned(),
        secret_target: (!container.read_only_files.is_empty())
            .then(|| deploy_spec::CONTAINER_SECRET_PATH.to_string()),
        configs,
        user: container.user.clone(),
        update: cluster.swarm.update.clone(),
        placement: cluster.swarm.placement.clone(),
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The `uid` and `gid` of a `uid:gid` user.
fn owner(user: &str) -> (String, String) {
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    (uid.to_string(), gid.to_string())
}

/// The engine's service spec for `want`, labelled with `hash`.
pub fn service_spec(want: &ServiceWant, hash: &str, facts: &StartFacts) -> ServiceSpec {
    let mut labels: HashMap<String, String> = want.labels.clone().into_iter().collect();
    labels.insert(LABEL_CONFIG_HASH.into(), hash.into());
    let (uid, gid) = owner(&want.user);
    let file = |name: &str, mode: u32| TaskSpecContainerSpecFile {
        name: Some(name.to_string()),
        uid: Some(uid.clone()),
        gid: Some(gid.clone()),
        mode: Some(mode),
    };
    let secrets = match (&want.secret_target, &facts.secret) {
        (Some(target), Some((id, name))) => Some(vec![TaskSpecContainerSpecSecrets {
            // An absolute target is allowed for secrets since API 1.39 on Linux.
            file: Some(file(target, 0o400)),
            secret_id: Some(id.clone()),
            secret_name: Some(name.clone()),
        }]),
        _ => None,
    };
    let configs = (!want.configs.is_empty()).then(|| {
        want.configs
            .iter()
            .zip(
                facts
                    .config_ids
                    .iter()
                    .map(Some)
                    .chain(std::iter::repeat(None)),
            )
            .map(|(config, id)| TaskSpecContainerSpecConfigs {
                config_id: id.cloned(),
                file: Some(TaskSpecContainerSpecFile1 {
                    name: Some(config.target.clone()),
                    uid: Some(uid.clone()),
                    gid: Some(gid.clone()),
                    mode: Some(0o444),
                }),
                config_name: Some(config.name.clone()),
                ..Default::default()
            })
            .collect()
    });
    let mounts = want.volume.as_ref().map(|(volume, target)| {
        vec![Mount {
            target: Some(target.clone()),
            source: Some(volume.clone()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                // The volume is made by the engine on the task's first start: label it so
                // `down --volumes` finds it.
                labels: Some(HashMap::from([(
                    LABEL_CLUSTER.to_string(),
                    want.labels.get(LABEL_CLUSTER).cloned().unwrap_or_default(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        }]
    });
    let container = TaskSpecContainerSpec {
        image: Some(facts.image.clone().unwrap_or_else(|| want.image.clone())),
        labels: Some(labels.clone()),
        args: Some(want.args.clone()),
        hostname: Some(want.node.clone()),
        env: Some(want.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        user: Some(want.user.clone()),
        read_only: Some(true),
        // Swarm's API 1.41 has no `no-new-privileges`; dropping every capability and a non-root
        // user keep the node as unprivileged as the Docker driver's containers otherwise.
        capability_drop: Some(vec!["ALL".into()]),
        mounts,
        // The node drains in-flight requests on SIGTERM.
        stop_grace_period: Some(nanos(Duration::from_secs(10))),
        health_check: want.healthcheck.as_ref().map(|test| HealthConfig {
            test: Some(test.clone()),
            interval: Some(nanos(Duration::from_secs(2))),
            timeout: Some(nanos(Duration::from_secs(3))),
            retries: Some(3),
            start_period: Some(nanos(Duration::from_secs(5))),
            ..Default::default()
        }),
        secrets,
        configs,
        sysctls: (!want.sysctls.is_empty()).then(|| want.sysctls.clone().into_iter().collect()),
        ulimits: facts.nofile.or(want.nofile).map(nofile_ulimits),
        ..Default::default()
    };
    let reserved = want.reserved_nano_cpus > 0 || want.reserved_memory > 0;
    let placement = &want.placement;
    let task = TaskSpec {
        container_spec: Some(container),
        resources: Some(TaskSpecResources {
            limits: Some(Limit {
                nano_cpus: Some(want.nano_cpus),
                memory_bytes: Some(want.memory),
                ..Default::default()
            }),
            reservations: reserved.then(|| ResourceObject {
                nano_cpus: (want.reserved_nano_cpus > 0).then_some(want.reserved_nano_cpus),
                memory_bytes: (want.reserved_memory > 0).then_some(want.reserved_memory),
                ..Default::default()
            }),
            ..Default::default()
        }),
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
            delay: Some(nanos(Duration::from_secs(2))),
            ..Default::default()
        }),
        placement: Some(TaskSpecPlacement {
            constraints: (!placement.constraints.is_empty()).then(|| placement.constraints.clone()),
            preferences: placement.spread.as_ref().map(|spread| {
                vec![TaskSpecPlacementPreferences {
                    spread: Some(TaskSpecPlacementSpread {
                        spread_descriptor: Some(spread.clone()),
                    }),
                }]
            }),
            ..Default::default()
        }),
        force_update: facts.force_update,
        log_driver: Some(TaskSpecLogDriver {
            name: Some(want.log.0.clone()),
            options: Some(want.log.1.clone().into_iter().collect()),
        }),
        ..Default::default()
    };
    ServiceSpec {
        name: Some(want.name.clone()),
        labels: Some(labels),
        task_template: Some(task),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        update_config: Some(update_config(&want.update)),
        rollback_config: Some(rollback_config(&want.update)),
        networks: Some(vec![NetworkAttachmentConfig {
            target: Some(want.network.clone()),
            // Membership seeds and Prometheus's targets name nodes by node name.
            aliases: Some(vec![want.node.clone()]),
            ..Default::default()
        }]),
        endpoint_spec: Some(endpoint_spec(want)),
    }
}

/// Published ports. Host mode is the default for the MCP TCP listener: sessions are
/// long-lived connections, and the routing mesh (ingress) sends them through IPVS, whose idle
/// timeout (900 s by default) drops quiet sessions, adds a NAT hop and hides the client's
/// address, while with one replica per node its load balancing buys nothing. Ingress is
/// there for a multi-engine swarm where a client must reach a node through any engine. Either
/// way Swarm binds every interface (it takes no host address), so `publish_address` does
/// not apply; the service keeps its virtual IP, which stays the same across a rolling update,
/// so peers that resolved a node's name keep reaching it.
fn endpoint_spec(want: &ServiceWant) -> EndpointSpec {
    let mode = match want.publish_mode {
        PublishMode::Host => EndpointPortConfigPublishModeEnum::HOST,
        PublishMode::Ingress => EndpointPortConfigPublishModeEnum::INGRESS,
    };
    EndpointSpec {
        mode: Some(EndpointSpecModeEnum::VIP),
        ports: Some(
            want.ports
                .iter()
                .map(|(target, published)| EndpointPortConfig {
                    target_port: Some(i64::from(*target)),
                    published_port: Some(i64::from(*published)),
                    publish_mode: Some(mode),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

fn update_config(update: &SwarmUpdate) -> ServiceSpecUpdateConfig {
    ServiceSpecUpdateConfig {
        parallelism: Some(i64::from(update.parallelism)),
        failure_action: Some(match update.failure_action {
            FailureAction::Rollback => ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK,
            FailureAction::Pause => ServiceSpecUpdateConfigFailureActionEnum::PAUSE,
            FailureAction::Continue => ServiceSpecUpdateConfigFailureActionEnum::CONTINUE,
        }),
        monitor: Some(nanos(update.monitor.0)),
        order: Some(match update.order {
            UpdateOrder::StopFirst => ServiceSpecUpdateConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecUpdateConfigOrderEnum::START_FIRST,
        }),
        ..Default::default()
    }
}

/// A rollback goes the way the update came; a failed rollback pauses (there is nothing older
/// to roll back to).
fn rollback_config(update: &SwarmUpdate) -> ServiceSpecRollbackConfig {
    ServiceSpecRollbackConfig {
        parallelism: Some(i64::from(update.parallelism)),
        failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
        monitor: Some(nanos(update.monitor.0)),
        order: Some(match update.order {
            UpdateOrder::StopFirst => ServiceSpecRollbackConfigOrderEnum::STOP_FIRST,
            UpdateOrder::StartFirst => ServiceSpecRollbackConfigOrderEnum::START_FIRST,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::docker::{node_spec, prometheus_spec};

    fn cluster() -> Cluster {
        crate::config::committed_cluster("local.toml")
    }

    fn node2(cluster: &Cluster) -> ServiceWant {
        service_want(cluster, &node_spec(cluster, &cluster.nodes[1], "img:1"))
    }

    fn facts() -> StartFacts {
        StartFacts {
            image: Some("sha256:abc".into()),
            secret: Some(("id1".into(), "c-sec-1234".into())),
            config_ids: Vec::new(),
            nofile: Some(2048),
            force_update: None,
        }
    }

    #[test]
    fn a_node_is_one_replica_named_and_aliased_by_its_node_name() {
        let cluster = cluster();
        let want = node2(&cluster);
        let spec = service_spec(&want, "h1", &facts());
        assert_eq!(spec.name.as_deref(), Some(want.name.as_str()));
        assert_eq!(
            spec.mode.unwrap().replicated.unwrap().replicas,
            Some(1),
            "one task per node"
        );
        let container = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(container.hostname.as_deref(), Some("node2"));
        assert_eq!(
            container.image.as_deref(),
            Some("sha256:abc"),
            "by ID: no pull"
        );
        let network = &spec.networks.unwrap()[0];
        assert_eq!(network.target.as_deref(), Some(cluster.network.as_str()));
        assert_eq!(network.aliases.as_deref(), Some(&["node2".to_string()][..]));
        assert_eq!(spec.labels.unwrap()[LABEL_CONFIG_HASH], "h1");
        assert_eq!(container.labels.unwrap()[LABEL_CONFIG_HASH], "h1");
    }

    #[test]
    fn limits_reservations_ulimits_sysctls_and_health_reach_the_task() {
        let mut cluster = cluster();
        cluster.nodes[1].cpu_reservation = 0.25;
        cluster.nodes[1].memory_reservation = crate::config::units::ByteSize(64 << 20);
        cluster
            .tuning
            .container
            .insert("net.core.somaxconn".into(), "4096".into());
        let want = node2(&cluster);
        let task = service_spec(&want, "h", &facts()).task_template.unwrap();
        let resources = task.resources.unwrap();
        let limits = resources.limits.unwrap();
        assert_eq!(
            limits.nano_cpus,
            Some((cluster.nodes[1].cpu_limit * 1e9) as i64)
        );
        assert_eq!(
            limits.memory_bytes,
            Some(cluster.nodes[1].memory_limit.0 as i64)
        );
        let reserved = resources.reservations.unwrap();
        assert_eq!(reserved.nano_cpus, Some(250_000_000));
        assert_eq!(reserved.memory_bytes, Some(64 << 20));
        let container = task.container_spec.unwrap();
        let ulimits = container.ulimits.unwrap();
        assert_eq!(
            (ulimits[0].soft, ulimits[0].hard),
            (Some(2048), Some(2048)),
            "clamped"
        );
        assert_eq!(container.sysctls.unwrap()["net.core.somaxconn"], "4096");
        assert!(
            container
                .health_check
                .unwrap()
                .test
                .unwrap()
                .contains(&"healthcheck".into())
        );
        assert_eq!(container.read_only, Some(true));
        assert_eq!(container.capability_drop, Some(vec!["ALL".to_string()]));
    }

    #[test]
    fn the_secret_is_a_swarm_secret_file_never_an_environment_value() {
        let cluster = cluster();
        let want = node2(&cluster);
        let container = service_spec(&want, "h", &facts())
            .task_template
            .unwrap()
            .container_spec
            .unwrap();
        let secret = &container.secrets.unwrap()[0];
        assert_eq!(secret.secret_name.as_deref(), Some("c-sec-1234"));
        assert_eq!(secret.secret_id.as_deref(), Some("id1"));
        let file = secret.file.as_ref().unwrap();
        assert_eq!(
            file.name.as_deref(),
            Some(deploy_spec::CONTAINER_SECRET_PATH)
        );
        assert_eq!(
            (file.uid.as_deref(), file.mode),
            (Some("10001"), Some(0o400))
        );
        let env = container.env.unwrap();
        assert!(env.contains(&format!(
            "ERLMCP_CLUSTER_SECRET_FILE={}",
            deploy_spec::CONTAINER_SECRET_PATH
        )));
    }

    #[test]
    fn update_rollback_placement_and_ports_follow_the_swarm_table() {
        let mut cluster = cluster();
        cluster.swarm.update.parallelism = 2;
        cluster.swarm.update.failure_action = FailureAction::Pause;
        cluster.swarm.update.order = UpdateOrder::StartFirst;
        cluster.swarm.publish_mode = PublishMode::Ingress;
        cluster.swarm.placement.constraints = vec!["node.role==manager".into()];
        cluster.swarm.placement.spread = Some("node.labels.zone".into());
        let spec = service_spec(&node2(&cluster), "h", &facts());
        let update = spec.update_config.unwrap();
        assert_eq!(update.parallelism, Some(2));
        assert_eq!(
            update.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::PAUSE)
        );
        assert_eq!(
            update.order,
            Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
        );
        assert_eq!(update.monitor, Some(5_000_000_000));
        let rollback = spec.rollback_config.unwrap();
        assert_eq!(
            rollback.order,
            Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST)
        );
        let placement = spec.task_template.unwrap().placement.unwrap();
        assert_eq!(placement.constraints.unwrap(), ["node.role==manager"]);
        assert_eq!(
            placement.preferences.unwrap()[0]
                .spread
                .as_ref()
                .unwrap()
                .spread_descriptor
                .as_deref(),
            Some("node.labels.zone")
        );
        let ports = spec.endpoint_spec.unwrap().ports.unwrap();
        let listener = ports.iter().find(|p| p.target_port == Some(9100)).unwrap();
        assert_eq!(
            listener.published_port,
            Some(i64::from(cluster.nodes[1].listener_port))
        );
        assert_eq!(
            listener.publish_mode,
            Some(EndpointPortConfigPublishModeEnum::INGRESS)
        );
    }

    #[test]
    fn prometheus_gets_its_files_as_configs_named_by_content_and_its_data_volume() {
        let cluster = cluster();
        let container = prometheus_spec(&cluster, "prom:1", "c-data", "a".into(), "b".into());
        let want = service_want(&cluster, &container);
        assert_eq!(want.secret_target, None);
        assert_eq!(want.configs.len(), 2);
        assert!(want.configs.iter().all(|c| c.name.len() <= OBJECT_NAME_MAX));
        let changed = prometheus_spec(&cluster, "prom:1", "c-data", "a2".into(), "b".into());
        let other = service_want(&cluster, &changed);
        assert_ne!(
            want.configs[0].name, other.configs[0].name,
            "new content, new config"
        );
        assert_eq!(want.configs[1].name, other.configs[1].name);
        let container = service_spec(&want, "h", &StartFacts::default())
            .task_template
            .unwrap()
            .container_spec
            .unwrap();
        assert_eq!(container.image.as_deref(), Some("prom:1"));
        let mount = &container.mounts.unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("c-data"));
        assert_eq!(container.configs.unwrap().len(), 2);
    }

    #[test]
    fn a_pushed_image_reaches_swarm_as_its_digest_reference() {
        let cluster = cluster();
        let mut want = node2(&cluster);
        want.image = "127.0.0.1:5000/team/img:1".into();
        let digest = format!("127.0.0.1:5000/team/img:1@sha256:{}", "e".repeat(64));
        let facts = StartFacts {
            image: Some(digest.clone()),
            ..facts()
        };
        let container = service_spec(&want, "h", &facts)
            .task_template
            .unwrap()
            .container_spec
            .unwrap();
        assert_eq!(
            container.image,
            Some(digest),
            "every engine pulls these bytes"
        );
    }

    #[test]
    fn object_names_fit_swarm_for_the_longest_cluster_name() {
        let longest = "c".repeat(crate::config::grammar::CLUSTER_NAME_MAX);
        let name = object_name(&longest, "sec", "0123456789abcdef");
        assert_eq!(name.len(), OBJECT_NAME_MAX);
        assert!(name.starts_with(&format!("{longest}-sec-")));
        assert_eq!(object_name("c", "sec", "0123"), "c-sec-0123");
    }
}
