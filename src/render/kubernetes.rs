//! The Kubernetes manifests of `generated/k8s/`: a kustomization of StatefulSets, Services, a
//! PodDisruptionBudget and (optionally) Prometheus, rendered from the same deployment spec the
//! compose file uses, with [`Addressing::Kubernetes`] for the nodes' environment.
//!
//! A StatefulSet has one pod template, and the coordinator's environment differs from a worker's
//! (`ERLMCP_ROLE`), so the coordinator is its own StatefulSet of one (`<cluster>-coordinator-0`,
//! the pod every node seeds from) and the workers are one StatefulSet (`<cluster>-worker-0…`).
//! Workers the cluster file gives different settings cannot share that template: the manifests
//! give every worker the first worker's settings and say so, and `validate` reports it (an error
//! when the file has a `[kubernetes]` table).

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::value::Serde;
use serde::Serialize;

use super::{
    RenderError, RenderedFile, ScrapeTargets, context, cpus, environment, escape, normalize,
};
use crate::config::model::{
    CONTAINER_API_PORT, CONTAINER_LISTENER_PORT, CONTAINER_PROMETHEUS_PORT, Cluster, Role,
};
use crate::config::units::ByteSize;
use crate::deploy_spec::{
    self, Addressing, CLUSTER_SECRET_NAME, CONTAINER_SECRET_PATH, EnvVar, Healthcheck, NODE_USER,
    NodeDeployment, PROMETHEUS_CONFIG_DIR, PROMETHEUS_DATA_PATH,
};

/// The directory of the manifests inside the output directory.
pub const DIR: &str = "k8s";
/// The file kustomize makes the cluster Secret from; written by the user, never rendered.
pub const SECRET_FILE: &str = "cluster-secret";
/// The variable the pod's own name is put in (from the downward API), which the variables that
/// follow the pod name refer to.
pub const POD_NAME_VAR: &str = "ERLMCP_POD_NAME";
/// Label telling node pods from Prometheus's, which share the cluster label.
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
/// Longest StatefulSet name: its pods carry `controller-revision-hash: <name>-<10 characters>`,
/// a label value of at most 63 characters.
pub const STATEFULSET_NAME_MAX: usize = 52;

/// Sysctls the kubelet allows in a pod without `--allowed-unsafe-sysctls` (Kubernetes 1.29 and
/// later: `pkg/kubelet/sysctl/safe_sysctls.go`). Namespaced and isolated per pod.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Every manifest template: (file name inside [`DIR`], template source).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "kustomization.yaml",
        include_str!("../../templates/k8s/kustomization.yaml.j2"),
    ),
    (
        "namespace.yaml",
        include_str!("../../templates/k8s/namespace.yaml.j2"),
    ),
    (
        "headless-service.yaml",
        include_str!("../../templates/k8s/headless-service.yaml.j2"),
    ),
    (
        "service.yaml",
        include_str!("../../templates/k8s/service.yaml.j2"),
    ),
    ("pdb.yaml", include_str!("../../templates/k8s/pdb.yaml.j2")),
    (
        "statefulset.yaml",
        include_str!("../../templates/k8s/statefulset.yaml.j2"),
    ),
    (
        "prometheus-deployment.yaml",
        include_str!("../../templates/k8s/prometheus-deployment.yaml.j2"),
    ),
    (
        "prometheus-service.yaml",
        include_str!("../../templates/k8s/prometheus-service.yaml.j2"),
    ),
];

/// The templates, for the renderer's environment.
pub(super) fn templates() -> impl Iterator<Item = (String, &'static str)> {
    TEMPLATES
        .iter()
        .map(|(name, source)| (format!("{DIR}/{name}"), *source))
}

/// The Kubernetes names of a cluster's resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    /// The coordinator's StatefulSet.
    pub coordinator_set: String,
    /// The workers' StatefulSet.
    pub worker_set: String,
    /// The headless Service behind the pods' DNS names.
    pub headless_service: String,
    /// The clients' Service.
    pub client_service: String,
    /// The Secret kustomize generates.
    pub secret: String,
}

impl Names {
    /// The names for `cluster`.
    pub fn of(cluster: &Cluster) -> Self {
        let name = &cluster.name;
        Names {
            coordinator_set: format!("{name}-coordinator"),
            worker_set: format!("{name}-worker"),
            headless_service: format!("{name}-nodes"),
            client_service: name.clone(),
            secret: format!("{name}-cluster-secret"),
        }
    }

    /// The pod that runs `cluster.nodes[index]`: the coordinator is pod 0 of its own set, the
    /// workers count from 0 in file order.
    pub fn pod(&self, cluster: &Cluster, index: usize) -> String {
        let node = &cluster.nodes[index];
        if node.role == Role::Coordinator {
            return format!("{}-0", self.coordinator_set);
        }
        let ordinal = cluster.nodes[..index]
            .iter()
            .filter(|n| n.role == Role::Worker)
            .count();
        format!("{}-{ordinal}", self.worker_set)
    }
}

/// The addressing every node pod of `cluster` gets.
pub fn addressing(cluster: &Cluster) -> Addressing {
    let names = Names::of(cluster);
    Addressing::Kubernetes {
        coordinator_pod: format!("{}-0", names.coordinator_set),
        allowed_hosts: client_service_names(&names.client_service, &cluster.kubernetes.namespace),
        service: names.headless_service,
    }
}

/// The node pods' deployment specs, in file order, with the `[kubernetes]` image.
pub fn node_specs(cluster: &Cluster) -> Vec<NodeDeployment> {
    let addressing = addressing(cluster);
    cluster
        .nodes
        .iter()
        .map(|node| {
            let mut spec = deploy_spec::node_deployment(cluster, node, &addressing);
            spec.image = cluster.kubernetes.image.clone();
            spec
        })
        .collect()
}

/// The DNS names of the client Service inside the Kubernetes cluster, shortest first.
pub fn client_service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// The settings a pod template carries: two nodes with equal ones can share a StatefulSet.
fn pod_template_key(spec: &NodeDeployment) -> String {
    format!(
        "{:?} {:?} {:?} {:?}",
        spec.env, spec.limits, spec.reservations, spec.command
    )
}

/// Workers whose pod template differs from the first worker's (their names), in file order.
pub fn workers_unlike_the_first(cluster: &Cluster) -> Vec<String> {
    let specs = node_specs(cluster);
    let mut workers = specs.iter().filter(|s| s.role == Role::Worker);
    let Some(first) = workers.next().map(pod_template_key) else {
        return Vec::new();
    };
    workers
        .filter(|s| pod_template_key(s) != first)
        .map(|s| s.node.clone())
        .collect()
}

/// A memory size as a Kubernetes quantity (`4Gi`, `512Mi`, else bytes).
pub fn quantity(size: ByteSize) -> String {
    let bytes = size.0;
    for (shift, suffix) in [(40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[derive(Debug, Serialize)]
struct ResourcesContext {
    cpu: String,
    memory: String,
}

#[derive(Debug, Serialize)]
struct ProbeContext {
    interval: u64,
    timeout: u64,
    retries: u32,
    start_period: u64,
}

impl From<&Healthcheck> for ProbeContext {
    fn from(check: &Healthcheck) -> Self {
        ProbeContext {
            interval: check.interval.as_secs().max(1),
            timeout: check.timeout.as_secs().max(1),
            retries: check.retries.max(1),
            start_period: check.start_period.as_secs(),
        }
    }
}

/// An environment variable with its value already written as a YAML scalar.
#[derive(Debug, Serialize)]
struct EnvContext {
    name: &'static str,
    value: String,
}

impl From<&EnvVar> for EnvContext {
    fn from(var: &EnvVar) -> Self {
        // Only the pod-name reference may expand; the rest is escaped like any value.
        let value = if var.after_pod_name {
            escape::yaml_quoted(&format!(
                "$({POD_NAME_VAR}){}",
                var.value.replace('$', "$$")
            ))
        } else {
            escape::k8s_expanded(&var.value)
        };
        EnvContext {
            name: var.name,
            value,
        }
    }
}

#[derive(Debug, Serialize)]
struct SetContext {
    file: String,
    name: String,
    about: String,
    notes: Vec<String>,
    replicas: usize,
    image: String,
    args: Vec<String>,
    env: Vec<EnvContext>,
    labels: BTreeMap<String, String>,
    sysctls: BTreeMap<String, String>,
    limits: ResourcesContext,
    requests: Option<ResourcesContext>,
    probe: ProbeContext,
}

#[derive(Debug, Serialize)]
struct SecretContext {
    name: String,
    key: &'static str,
    file: &'static str,
    dir: String,
}

#[derive(Debug, Serialize)]
struct PrometheusContext {
    name: String,
    image: String,
    args: Vec<String>,
    port: u16,
    retention: String,
    labels: BTreeMap<String, String>,
    limits: ResourcesContext,
    probe: ProbeContext,
    uid: String,
    gid: String,
    config_map: String,
    config_files: Vec<&'static str>,
    config_dir: &'static str,
    data_dir: &'static str,
}

#[derive(Debug, Serialize)]
struct KubernetesContext {
    header: String,
    name: String,
    secret_source: Option<String>,
    namespace: String,
    labels: BTreeMap<String, String>,
    cluster_labels: BTreeMap<String, String>,
    headless_service: String,
    client_service: String,
    pdb: String,
    service_type: &'static str,
    api_port: u16,
    listener_port: u16,
    pod_name_var: &'static str,
    uid: String,
    gid: String,
    nofile: u64,
    secret: SecretContext,
    unsafe_sysctls: Vec<String>,
    resources: Vec<String>,
    prometheus: Option<PrometheusContext>,
}

/// The manifests' context with the StatefulSet being rendered.
#[derive(Debug, Serialize)]
struct WithSet<'a> {
    #[serde(flatten)]
    ctx: &'a KubernetesContext,
    set: &'a SetContext,
}

fn user_parts(user: &str) -> (String, String) {
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    (uid.to_string(), gid.to_string())
}

fn set_context(
    cluster: &Cluster,
    file: &str,
    name: String,
    specs: &[&NodeDeployment],
    node_labels: &BTreeMap<String, String>,
) -> SetContext {
    let first = specs[0];
    let role = first.role;
    let mut labels = node_labels.clone();
    labels.insert(deploy_spec::LABEL_ROLE.into(), role.as_str().into());
    let nodes: Vec<&str> = specs.iter().map(|s| s.node.as_str()).collect();
    let about = match role {
        Role::Coordinator => format!(
            "The coordinator ({}), alone in its StatefulSet: pod {name}-0, the seed of every node.",
            nodes.join(", ")
        ),
        Role::Worker => format!(
            "The workers ({}): pods {name}-0 … {name}-{}.",
            nodes.join(", "),
            specs.len() - 1
        ),
    };
    let mut notes = Vec::new();
    let unlike = workers_unlike_the_first(cluster);
    if role == Role::Worker && !unlike.is_empty() {
        notes.push(format!(
            "One pod template for all workers: {} differ from {} in the cluster file but get {}'s settings here.",
            unlike.join(", "),
            first.node,
            first.node
        ));
    }
    SetContext {
        file: file.to_string(),
        about,
        notes,
        replicas: specs.len(),
        image: first.image.clone(),
        args: first.command.clone(),
        env: first.env.iter().map(EnvContext::from).collect(),
        labels,
        sysctls: first
            .sysctls
            .iter()
            .filter(|(key, _)| SAFE_SYSCTLS.contains(&key.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        limits: ResourcesContext {
            cpu: cpus(first.limits.cpus),
            memory: quantity(first.limits.memory),
        },
        requests: first.reservations.map(|r| ResourcesContext {
            cpu: cpus(r.cpus),
            memory: quantity(r.memory),
        }),
        probe: ProbeContext::from(&first.healthcheck),
        name,
    }
}

/// `cluster` with every node named after the pod that runs it, so the Prometheus templates
/// scrape and alert per pod.
fn cluster_named_by_pod(cluster: &Cluster) -> Cluster {
    let names = Names::of(cluster);
    let mut renamed = cluster.clone();
    for (index, node) in renamed.nodes.iter_mut().enumerate() {
        node.name = names.pod(cluster, index);
    }
    renamed
}

/// Renders the manifests, each named `k8s/<file>`.
pub fn render(cluster: &Cluster) -> Result<Vec<RenderedFile>, RenderError> {
    let env = environment();
    let names = Names::of(cluster);
    let specs = node_specs(cluster);
    let cluster_labels = deploy_spec::cluster_labels(cluster);
    let mut node_labels = cluster_labels.clone();
    node_labels.insert(LABEL_COMPONENT.into(), "node".into());
    let coordinators: Vec<&NodeDeployment> = specs
        .iter()
        .filter(|s| s.role == Role::Coordinator)
        .collect();
    let workers: Vec<&NodeDeployment> = specs.iter().filter(|s| s.role == Role::Worker).collect();
    let mut sets = Vec::new();
    if !coordinators.is_empty() {
        sets.push(set_context(
            cluster,
            "coordinator.yaml",
            names.coordinator_set.clone(),
            &coordinators,
            &node_labels,
        ));
    }
    if !workers.is_empty() {
        sets.push(set_context(
            cluster,
            "workers.yaml",
            names.worker_set.clone(),
            &workers,
            &node_labels,
        ));
    }
    let with_prometheus = cluster.kubernetes.prometheus;
    let mut resources: Vec<String> = ["namespace.yaml", "headless-service.yaml", "service.yaml"]
        .map(String::from)
        .to_vec();
    resources.extend(sets.iter().map(|s| s.file.clone()));
    resources.push("pdb.yaml".into());
    let prometheus = with_prometheus.then(|| {
        resources.push("prometheus-deployment.yaml".into());
        resources.push("prometheus-service.yaml".into());
        let spec = deploy_spec::prometheus_deployment(cluster, &cluster.prometheus.image, None);
        let mut labels = spec.labels.clone();
        labels.insert(LABEL_COMPONENT.into(), "prometheus".into());
        let (uid, gid) = user_parts(spec.user);
        PrometheusContext {
            name: spec.name.clone(),
            image: spec.image.clone(),
            args: spec.command.clone(),
            port: CONTAINER_PROMETHEUS_PORT,
            retention: cluster.prometheus.retention.to_string(),
            labels,
            limits: ResourcesContext {
                cpu: cpus(spec.limits.cpus),
                memory: quantity(spec.limits.memory),
            },
            probe: ProbeContext::from(&spec.healthcheck),
            uid,
            gid,
            config_map: format!("{}-prometheus-config", cluster.name),
            config_files: vec!["prometheus.yml", "alerts.yml"],
            config_dir: PROMETHEUS_CONFIG_DIR,
            data_dir: PROMETHEUS_DATA_PATH,
        }
    });
    let (uid, gid) = user_parts(NODE_USER);
    let secret_dir = Path::new(CONTAINER_SECRET_PATH)
        .parent()
        .map_or_else(|| "/".to_string(), |p| p.display().to_string());
    let ctx = KubernetesContext {
        header: format!(
            "Generated by erlmcp-gen from {}. Do not edit: change the cluster file and run `erlmcp-gen render {}`.",
            cluster.source, cluster.source
        ),
        name: cluster.name.clone(),
        secret_source: cluster
            .secret_file
            .as_ref()
            .map(|p| p.display().to_string()),
        namespace: cluster.kubernetes.namespace.clone(),
        labels: node_labels.clone(),
        cluster_labels,
        headless_service: names.headless_service.clone(),
        client_service: names.client_service.clone(),
        pdb: names.headless_service.clone(),
        service_type: cluster.kubernetes.service_type.as_str(),
        api_port: CONTAINER_API_PORT,
        listener_port: CONTAINER_LISTENER_PORT,
        pod_name_var: POD_NAME_VAR,
        uid,
        gid,
        nofile: cluster.nodes.iter().map(|n| n.nofile).max().unwrap_or(0),
        secret: SecretContext {
            name: names.secret.clone(),
            key: CLUSTER_SECRET_NAME,
            file: SECRET_FILE,
            dir: secret_dir,
        },
        unsafe_sysctls: cluster
            .tuning
            .container
            .keys()
            .filter(|key| !SAFE_SYSCTLS.contains(&key.as_str()))
            .cloned()
            .collect(),
        resources,
        prometheus,
    };
    let render_one = |template: &str, out: &str, extra: Option<&SetContext>| {
        let fail = |source| RenderError {
            file: format!("{DIR}/{out}"),
            source,
        };
        let template = env
            .get_template(&format!("{DIR}/{template}"))
            .map_err(fail)?;
        let text = match extra {
            Some(set) => template.render(Serde(&WithSet { ctx: &ctx, set })),
            None => template.render(Serde(&ctx)),
        }
        .map_err(fail)?;
        Ok(RenderedFile {
            name: format!("{DIR}/{out}"),
            contents: normalize(&text),
        })
    };
    let mut files = Vec::new();
    for name in [
        "kustomization.yaml",
        "namespace.yaml",
        "headless-service.yaml",
        "service.yaml",
    ] {
        files.push(render_one(name, name, None)?);
    }
    for set in &sets {
        files.push(render_one("statefulset.yaml", &set.file, Some(set))?);
    }
    files.push(render_one("pdb.yaml", "pdb.yaml", None)?);
    if with_prometheus {
        for name in ["prometheus-deployment.yaml", "prometheus-service.yaml"] {
            files.push(render_one(name, name, None)?);
        }
        // The same Prometheus files as compose's, scraping the pods by their DNS names.
        let renamed = cluster_named_by_pod(cluster);
        let ctx = context(
            &renamed,
            &ScrapeTargets::PodDns(names.headless_service.clone()),
        );
        for name in ["prometheus.yml", "alerts.yml"] {
            let fail = |source| RenderError {
                file: format!("{DIR}/{name}"),
                source,
            };
            let text = env
                .get_template(name)
                .map_err(fail)?
                .render(Serde(&ctx))
                .map_err(fail)?;
            files.push(RenderedFile {
                name: format!("{DIR}/{name}"),
                contents: normalize(&text),
            });
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy_spec::ALLOWED_HOSTS_VAR;

    fn colima() -> Cluster {
        crate::config::committed_cluster("colima.toml")
    }

    fn file<'a>(files: &'a [RenderedFile], name: &str) -> &'a str {
        &files
            .iter()
            .find(|f| f.name == format!("{DIR}/{name}"))
            .unwrap_or_else(|| panic!("no {name}"))
            .contents
    }

    fn yaml(text: &str) -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(text).unwrap()
    }

    #[test]
    fn quantities_use_binary_suffixes() {
        assert_eq!(quantity(ByteSize(4 << 30)), "4Gi");
        assert_eq!(quantity(ByteSize(512 << 20)), "512Mi");
        assert_eq!(quantity(ByteSize(1536 << 20)), "1536Mi");
        assert_eq!(quantity(ByteSize(1000)), "1000");
    }

    #[test]
    fn the_coordinator_is_pod_0_of_its_own_set_and_workers_count_from_0() {
        let cluster = colima();
        let names = Names::of(&cluster);
        assert_eq!(names.pod(&cluster, 0), "erlmcp-coordinator-0");
        assert_eq!(names.pod(&cluster, 1), "erlmcp-worker-0");
        assert_eq!(names.pod(&cluster, 3), "erlmcp-worker-2");
    }

    /// The kustomization lists exactly the manifests rendered beside it (and no secret value),
    /// and generates the Secret and the Prometheus ConfigMap from files kustomize can read.
    #[test]
    fn the_kustomization_lists_every_manifest_and_generates_the_secret() {
        let cluster = colima();
        let files = render(&cluster).unwrap();
        let kustomization = yaml(file(&files, "kustomization.yaml"));
        assert_eq!(
            kustomization["apiVersion"].as_str(),
            Some("kustomize.config.k8s.io/v1beta1")
        );
        assert_eq!(kustomization["kind"].as_str(), Some("Kustomization"));
        assert_eq!(kustomization["namespace"].as_str(), Some("erlmcp"));
        let listed: Vec<String> =
            serde_yaml_ng::from_value(kustomization["resources"].clone()).unwrap();
        let mut manifests: Vec<String> = files
            .iter()
            .filter_map(|f| f.name.strip_prefix("k8s/"))
            .filter(|n| n.ends_with(".yaml") && *n != "kustomization.yaml")
            .map(String::from)
            .collect();
        let mut sorted = listed.clone();
        sorted.sort();
        manifests.sort();
        assert_eq!(sorted, manifests);
        let generator = &kustomization["secretGenerator"][0];
        assert_eq!(generator["name"].as_str(), Some("erlmcp-cluster-secret"));
        assert_eq!(
            generator["files"][0].as_str(),
            Some("erlmcp_cluster_secret=cluster-secret")
        );
        let config: Vec<String> =
            serde_yaml_ng::from_value(kustomization["configMapGenerator"][0]["files"].clone())
                .unwrap();
        for name in &config {
            assert!(
                files.iter().any(|f| f.name == format!("k8s/{name}")),
                "{name}"
            );
        }
        // The secret comes from a file, never a value in the committed kustomization.
        assert!(generator.get("literals").is_none());
        assert!(generator.get("envs").is_none());
        // Every file kustomize reads is inside its directory (its default load restriction).
        for path in listed.iter().chain(&config) {
            assert!(!path.contains("..") && !path.starts_with('/'), "{path}");
        }
    }

    /// The pods get the deployment spec's environment contract, with the pod-name references
    /// the kubelet expands and every other value as the spec holds it.
    #[test]
    fn the_statefulsets_carry_the_deployment_spec() {
        let cluster = colima();
        let files = render(&cluster).unwrap();
        let specs = node_specs(&cluster);
        for (file_name, spec, replicas) in [
            ("coordinator.yaml", &specs[0], 1),
            ("workers.yaml", &specs[1], 3),
        ] {
            let set = yaml(file(&files, file_name));
            assert_eq!(set["kind"].as_str(), Some("StatefulSet"));
            assert_eq!(set["spec"]["replicas"].as_u64(), Some(replicas));
            assert_eq!(set["spec"]["serviceName"].as_str(), Some("erlmcp-nodes"));
            let pod = &set["spec"]["template"]["spec"];
            let container = &pod["containers"][0];
            let env = container["env"].as_sequence().unwrap();
            assert_eq!(env[0]["name"].as_str(), Some(POD_NAME_VAR));
            let values: Vec<(String, String)> = env[1..]
                .iter()
                .map(|v| {
                    (
                        v["name"].as_str().unwrap().to_string(),
                        v["value"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let wanted: Vec<(String, String)> = spec
                .env
                .iter()
                .map(|v| {
                    let value = if v.after_pod_name {
                        format!("$({POD_NAME_VAR}){}", v.value)
                    } else {
                        v.value.clone()
                    };
                    (v.name.to_string(), value)
                })
                .collect();
            assert_eq!(values, wanted);
            let allowed = values.last().unwrap();
            assert_eq!(allowed.0, ALLOWED_HOSTS_VAR);
            assert_eq!(
                allowed.1,
                "erlmcp,erlmcp.erlmcp,erlmcp.erlmcp.svc,erlmcp.erlmcp.svc.cluster.local"
            );
            assert_eq!(container["image"].as_str(), Some("erlmcp-node:0.7.0"));
            assert_eq!(
                container["livenessProbe"]["httpGet"]["path"].as_str(),
                Some("/health")
            );
            assert_eq!(
                container["readinessProbe"]["httpGet"]["path"].as_str(),
                Some("/ready")
            );
            assert_eq!(
                container["resources"]["limits"]["memory"].as_str(),
                Some("4Gi")
            );
            assert_eq!(
                container["resources"]["requests"]["cpu"].as_str(),
                Some("2.5")
            );
            let security = &container["securityContext"];
            assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
            assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
            assert_eq!(security["capabilities"]["drop"][0].as_str(), Some("ALL"));
            assert_eq!(pod["securityContext"]["runAsUser"].as_u64(), Some(10001));
            assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
            assert_eq!(
                pod["securityContext"]["seccompProfile"]["type"].as_str(),
                Some("RuntimeDefault")
            );
            // Only the safe sysctls of [tuning.container]; the rest would stop the pod.
            let sysctls: Vec<&str> = pod["securityContext"]["sysctls"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap())
                .collect();
            assert_eq!(
                sysctls,
                ["net.ipv4.ip_local_port_range", "net.ipv4.tcp_fin_timeout"]
            );
            let mount = &container["volumeMounts"][0];
            let key = pod["volumes"][0]["secret"]["items"][0]["path"]
                .as_str()
                .unwrap();
            assert_eq!(
                format!("{}/{key}", mount["mountPath"].as_str().unwrap()),
                CONTAINER_SECRET_PATH
            );
        }
    }

    #[test]
    fn prometheus_scrapes_every_pod_by_its_dns_name_and_is_optional() {
        let mut cluster = colima();
        let files = render(&cluster).unwrap();
        let prometheus = file(&files, "prometheus.yml");
        assert!(prometheus.contains("erlmcp-coordinator-0.erlmcp-nodes:8080"));
        assert!(prometheus.contains("erlmcp-worker-2.erlmcp-nodes:8080"));
        assert!(file(&files, "alerts.yml").contains("erlmcp-worker-2"));
        cluster.kubernetes.prometheus = false;
        let files = render(&cluster).unwrap();
        assert!(!files.iter().any(|f| f.name.contains("prometheus")));
        assert!(!file(&files, "kustomization.yaml").contains("configMapGenerator"));
    }

    #[test]
    fn workers_with_their_own_settings_are_named_and_noted() {
        let mut cluster = colima();
        assert!(workers_unlike_the_first(&cluster).is_empty());
        cluster.nodes[3].connections = 10;
        assert_eq!(workers_unlike_the_first(&cluster), ["node4"]);
        let files = render(&cluster).unwrap();
        assert!(file(&files, "workers.yaml").contains("node4 differ from node2"));
    }
}
