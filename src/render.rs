//! The renderer: minijinja templates from `templates/` (embedded in the binary) turn a resolved
//! cluster into the files of `generated/`, byte for byte the same for the same input.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use minijinja::value::Serde;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::config::model::{
    CONTAINER_API_PORT, CONTAINER_LISTENER_PORT, CONTAINER_PROMETHEUS_PORT, Cluster, Role,
};
use crate::deploy_spec::{self, EnvVar, Healthcheck, NodeDeployment, Port, PrometheusDeployment};

pub mod escape;
pub mod kubernetes;

/// Every template: (output file name, template source).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "docker-compose.yml",
        include_str!("../templates/docker-compose.yml.j2"),
    ),
    (
        "prometheus.yml",
        include_str!("../templates/prometheus.yml.j2"),
    ),
    ("alerts.yml", include_str!("../templates/alerts.yml.j2")),
    (
        "colima-setup.sh",
        include_str!("../templates/colima-setup.sh.j2"),
    ),
    ("Dockerfile", include_str!("../templates/Dockerfile.j2")),
    (
        "Dockerfile.prebuilt",
        include_str!("../templates/Dockerfile.prebuilt.j2"),
    ),
    (
        "Dockerfile.dockerignore",
        include_str!("../templates/Dockerfile.dockerignore.j2"),
    ),
];

/// Rendering failed: a template bug (undefined variable, syntax), never a user error.
#[derive(Debug, thiserror::Error)]
#[error("template {file} failed to render: {source}")]
pub struct RenderError {
    /// The output file whose template failed.
    pub file: String,
    /// minijinja's error, with the template line.
    pub source: minijinja::Error,
}

/// One rendered file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name inside the output directory.
    pub name: String,
    /// Contents, `\n` line endings, one trailing newline.
    pub contents: String,
}

/// What the templates see: the cluster with every derived value spelled out.
#[derive(Debug, Serialize)]
struct RenderContext {
    header: String,
    name: String,
    image: String,
    image_builder: String,
    network: String,
    publish_address: String,
    coordinator: String,
    seeds: String,
    container_api_port: u16,
    container_listener_port: u16,
    container_prometheus_port: u16,
    max_nofile: u64,
    nodes: Vec<NodeContext>,
    prometheus: PrometheusContext,
    logging: LoggingContext,
    cluster_secret: &'static str,
    host_sysctls: BTreeMap<String, String>,
    /// The shell script Colima runs as root at every VM boot, each setting already one quoted
    /// word; the template quotes it again for YAML and for the setup script.
    provision_script: String,
    colima: ColimaContext,
    alerts: AlertsContext,
    compose_build: ComposeBuild,
}

/// Where the compose file's `build:` finds the workspace (the context of the `source` build)
/// and the rendered source Dockerfile, so the file works in the directory it is written to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComposeBuild {
    /// The build context, the workspace: relative to the output directory when that lies inside
    /// it, else absolute.
    pub context: String,
    /// The rendered `Dockerfile`, relative to the context (absolute when outside it).
    pub dockerfile: String,
}

impl ComposeBuild {
    /// Files rendered into `<workspace>/generated/` (the committed render).
    pub fn in_generated() -> Self {
        ComposeBuild {
            context: "..".into(),
            dockerfile: "generated/Dockerfile".into(),
        }
    }

    /// Files written into `out`, with the workspace at `workspace` (`None` when this binary has
    /// none: the context is then `out` itself, whose Dockerfile still needs the sources beside it).
    pub fn for_dir(out: &Path, workspace: Option<&Path>) -> Self {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let out = absolute(out);
        let Some(root) = workspace.map(absolute) else {
            return ComposeBuild {
                context: ".".into(),
                dockerfile: "Dockerfile".into(),
            };
        };
        match out.strip_prefix(&root) {
            Ok(inside) => {
                let depth = inside.components().count();
                ComposeBuild {
                    context: if depth == 0 {
                        ".".into()
                    } else {
                        vec![".."; depth].join("/")
                    },
                    dockerfile: inside.join("Dockerfile").to_string_lossy().into_owned(),
                }
            }
            Err(_) => ComposeBuild {
                context: root.to_string_lossy().into_owned(),
                dockerfile: out.join("Dockerfile").to_string_lossy().into_owned(),
            },
        }
    }
}

/// Share of a node's capacity (sessions, memory) at which an alert fires.
pub const NEAR_LIMIT: f64 = 0.9;

/// The alert rules' thresholds, from `[slo]` and each node's limits.
#[derive(Debug, Serialize)]
struct AlertsContext {
    p99: String,
    p99_seconds: f64,
    error_rate_percent: f64,
    error_ratio: f64,
    nodes: Vec<NodeAlertsContext>,
}

#[derive(Debug, Serialize)]
struct NodeAlertsContext {
    name: String,
    connections: u32,
    sessions_threshold: u64,
    memory_limit: String,
    memory_threshold_bytes: u64,
}

#[derive(Debug, Serialize)]
struct NodeContext {
    name: String,
    container_name: String,
    role: Role,
    is_coordinator: bool,
    api_port: u16,
    listener_port: u16,
    scrape_target: String,
    connections: u32,
    idle_timeout: String,
    nofile: u64,
    cpu_limit: String,
    memory_limit: String,
    has_reservation: bool,
    cpu_reservation: String,
    memory_reservation: String,
    /// The rest comes from the node's deployment spec, as every runtime gets it.
    user: &'static str,
    command: Vec<String>,
    env: Vec<EnvVar>,
    secret: String,
    ports: Vec<PortContext>,
    healthcheck: HealthcheckContext,
    labels: BTreeMap<String, String>,
    sysctls: BTreeMap<String, String>,
}

/// A published port as compose writes it.
#[derive(Debug, Serialize)]
struct PortContext {
    address: String,
    host: u16,
    container: u16,
}

impl From<&Port> for PortContext {
    fn from(port: &Port) -> Self {
        PortContext {
            address: port.host_address.to_string(),
            host: port.host,
            container: port.container,
        }
    }
}

/// A health check with compose's duration syntax.
#[derive(Debug, Serialize)]
struct HealthcheckContext {
    test: Vec<String>,
    interval: String,
    timeout: String,
    retries: u32,
    start_period: String,
}

impl From<&Healthcheck> for HealthcheckContext {
    fn from(check: &Healthcheck) -> Self {
        let seconds = |d: std::time::Duration| format!("{}s", d.as_secs());
        HealthcheckContext {
            test: check.test.clone(),
            interval: seconds(check.interval),
            timeout: seconds(check.timeout),
            retries: check.retries,
            start_period: seconds(check.start_period),
        }
    }
}

/// A read-only file or volume mount: (source, target).
#[derive(Debug, Serialize)]
struct MountContext {
    source: String,
    target: String,
}

#[derive(Debug, Serialize)]
struct PrometheusContext {
    enabled: bool,
    image: String,
    port: u16,
    scrape_interval: String,
    node_scrape_interval: String,
    retention: String,
    cpu_limit: String,
    memory_limit: String,
    name: String,
    user: &'static str,
    command: Vec<String>,
    ports: Vec<PortContext>,
    healthcheck: HealthcheckContext,
    labels: BTreeMap<String, String>,
    config_files: Vec<MountContext>,
    data: MountContext,
}

#[derive(Debug, Serialize)]
struct LoggingContext {
    driver: String,
    max_size: String,
    max_files: u32,
}

#[derive(Debug, Serialize)]
struct ColimaContext {
    profile: String,
    cpus: u64,
    memory_gib: u64,
    disk_gib: u64,
    vm_type: String,
}

/// CPU counts as compose writes them: `3`, `2.5`.
fn cpus(value: f64) -> String {
    format!("{value}")
}

/// Where Prometheus reaches the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ScrapeTargets {
    /// By pod DNS name through this headless Service (`<pod>.<service>:8080`), in Kubernetes.
    PodDns(String),
    /// By container name on the cluster network (`node1:8080`).
    ClusterNetwork,
    /// On this host's published ports (`127.0.0.1:8080`), for the native runtime.
    HostPorts,
}

fn node_context(
    cluster: &Cluster,
    node: &crate::config::model::Node,
    spec: &NodeDeployment,
    targets: &ScrapeTargets,
) -> NodeContext {
    NodeContext {
        name: node.name.clone(),
        container_name: spec.name.clone(),
        role: node.role,
        is_coordinator: node.role == Role::Coordinator,
        api_port: node.api_port,
        listener_port: node.listener_port,
        scrape_target: match targets {
            ScrapeTargets::ClusterNetwork => format!("{}:{CONTAINER_API_PORT}", node.name),
            ScrapeTargets::HostPorts => cluster.reachable(node.api_port).to_string(),
            ScrapeTargets::PodDns(service) => {
                format!("{}.{service}:{CONTAINER_API_PORT}", node.name)
            }
        },
        connections: node.connections,
        idle_timeout: node.idle_timeout.to_string(),
        nofile: spec.nofile,
        cpu_limit: cpus(spec.limits.cpus),
        memory_limit: spec.limits.memory.docker_shorthand(),
        has_reservation: spec.reservations.is_some(),
        cpu_reservation: cpus(spec.reservations.map_or(0.0, |r| r.cpus)),
        memory_reservation: spec
            .reservations
            .map_or(crate::config::units::ByteSize(0), |r| r.memory)
            .docker_shorthand(),
        user: spec.user,
        command: spec.command.clone(),
        env: spec.env.clone(),
        secret: spec.secret.source.clone(),
        ports: spec.ports.iter().map(PortContext::from).collect(),
        healthcheck: HealthcheckContext::from(&spec.healthcheck),
        labels: spec.labels.clone(),
        sysctls: spec.sysctls.clone(),
    }
}

fn prometheus_context(cluster: &Cluster, spec: &PrometheusDeployment) -> PrometheusContext {
    let p = &cluster.prometheus;
    PrometheusContext {
        enabled: p.enabled,
        image: spec.image.clone(),
        port: p.port,
        scrape_interval: p.scrape_interval.to_string(),
        node_scrape_interval: p.node_scrape_interval.to_string(),
        retention: p.retention.to_string(),
        cpu_limit: cpus(spec.limits.cpus),
        memory_limit: spec.limits.memory.docker_shorthand(),
        name: spec.name.clone(),
        user: spec.user,
        command: spec.command.clone(),
        ports: vec![PortContext::from(&spec.port)],
        healthcheck: HealthcheckContext::from(&spec.healthcheck),
        labels: spec.labels.clone(),
        // Compose mounts the rendered files beside it.
        config_files: spec
            .config_files
            .iter()
            .map(|f| MountContext {
                source: format!("./{}", f.source),
                target: f.target.clone(),
            })
            .collect(),
        data: MountContext {
            source: spec.data.name.clone(),
            target: spec.data.target.clone(),
        },
    }
}

fn context(cluster: &Cluster, targets: &ScrapeTargets) -> RenderContext {
    let coordinator = cluster
        .coordinator()
        .map_or_else(String::new, |n| n.name.clone());
    let deployment = deploy_spec::deployment(cluster);
    let nodes = cluster
        .nodes
        .iter()
        .zip(&deployment.nodes)
        .map(|(node, spec)| node_context(cluster, node, spec, targets))
        .collect();
    let p = &cluster.prometheus;
    // Without a [vm] table the script sizes a VM that fits every container's limits.
    let colima = match &cluster.vm {
        Some(vm) => ColimaContext {
            profile: cluster.runtime.colima_profile.clone(),
            cpus: u64::from(vm.cpus),
            memory_gib: vm.memory.gib_ceil(),
            disk_gib: vm.disk.gib_ceil(),
            vm_type: vm.vm_type.clone(),
        },
        None => {
            let cpu: f64 = cluster.nodes.iter().map(|n| n.cpu_limit).sum::<f64>() + p.cpu_limit;
            let memory: u64 =
                cluster.nodes.iter().map(|n| n.memory_limit.0).sum::<u64>() + p.memory_limit.0;
            ColimaContext {
                profile: cluster.runtime.colima_profile.clone(),
                cpus: cpu.ceil() as u64,
                memory_gib: memory.div_ceil(1 << 30),
                disk_gib: 20,
                vm_type: "qemu".into(),
            }
        }
    };
    RenderContext {
        header: format!(
            "Generated by erlmcp-gen from {}. Do not edit: change the cluster file and run `erlmcp-gen render {}`.",
            cluster.source, cluster.source
        ),
        name: cluster.name.clone(),
        image: cluster.image_ref(),
        image_builder: cluster.image.builder.clone(),
        network: cluster.network.clone(),
        publish_address: cluster.runtime.publish_address.to_string(),
        seeds: format!("{coordinator}:{CONTAINER_API_PORT}"),
        coordinator,
        container_api_port: CONTAINER_API_PORT,
        container_listener_port: CONTAINER_LISTENER_PORT,
        container_prometheus_port: CONTAINER_PROMETHEUS_PORT,
        max_nofile: cluster.nodes.iter().map(|n| n.nofile).max().unwrap_or(0),
        nodes,
        prometheus: prometheus_context(
            cluster,
            &deploy_spec::prometheus_deployment(cluster, &p.image, None),
        ),
        logging: LoggingContext {
            driver: cluster.logging.driver.clone(),
            max_size: cluster.logging.max_size.docker_shorthand(),
            max_files: cluster.logging.max_files,
        },
        cluster_secret: deploy_spec::CLUSTER_SECRET_NAME,
        host_sysctls: cluster.tuning.host.clone(),
        provision_script: cluster
            .tuning
            .host
            .iter()
            .map(|(key, value)| format!("sysctl -w {}\n", escape::sh(&format!("{key}={value}"))))
            .collect(),
        colima,
        compose_build: ComposeBuild::in_generated(),
        alerts: AlertsContext {
            p99: cluster.slo.p99.to_string(),
            p99_seconds: cluster.slo.p99.0.as_secs_f64(),
            error_rate_percent: cluster.slo.error_rate_percent,
            error_ratio: cluster.slo.error_rate_percent / 100.0,
            nodes: cluster
                .nodes
                .iter()
                .map(|node| NodeAlertsContext {
                    name: node.name.clone(),
                    connections: node.connections,
                    sessions_threshold: (f64::from(node.connections) * NEAR_LIMIT).ceil() as u64,
                    memory_limit: node.memory_limit.to_string(),
                    memory_threshold_bytes: (node.memory_limit.0 as f64 * NEAR_LIMIT).ceil() as u64,
                })
                .collect(),
        },
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    // minijinja would JSON-escape every value in a `.yml` file; the templates quote explicitly.
    env.set_auto_escape_callback(|_| AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default delimiters are valid");
    env.set_syntax(syntax);
    escape::register(&mut env);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("embedded template {name} does not parse: {e:#}"));
    }
    for (name, source) in kubernetes::templates() {
        env.add_template_owned(name.clone(), source)
            .unwrap_or_else(|e| panic!("embedded template {name} does not parse: {e:#}"));
    }
    env
}

/// `\n` line endings, no trailing spaces, exactly one trailing newline.
fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 1);
    for line in text.replace("\r\n", "\n").lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

/// Renders every file for `cluster`, as written into `<workspace>/generated/`.
pub fn render(cluster: &Cluster) -> Result<Vec<RenderedFile>, RenderError> {
    render_for(cluster, &ComposeBuild::in_generated())
}

/// Renders every file for `cluster`, the compose file's `build:` pointing where `build` says.
pub fn render_for(
    cluster: &Cluster,
    build: &ComposeBuild,
) -> Result<Vec<RenderedFile>, RenderError> {
    let env = environment();
    let mut ctx = context(cluster, &ScrapeTargets::ClusterNetwork);
    ctx.compose_build = build.clone();
    let mut files = TEMPLATES
        .iter()
        .map(|(name, _)| {
            let template = env.get_template(name).map_err(|source| RenderError {
                file: name.to_string(),
                source,
            })?;
            let text = template.render(Serde(&ctx)).map_err(|source| RenderError {
                file: name.to_string(),
                source,
            })?;
            Ok(RenderedFile {
                name: name.to_string(),
                contents: normalize(&text),
            })
        })
        .collect::<Result<Vec<_>, RenderError>>()?;
    files.extend(kubernetes::render(cluster)?);
    Ok(files)
}

/// The Prometheus configuration for a cluster of local processes: the same as the rendered
/// `prometheus.yml`, but scraping the nodes' ports on this host.
pub fn prometheus_config_for_host_ports(cluster: &Cluster) -> Result<String, RenderError> {
    let env = environment();
    let ctx = context(cluster, &ScrapeTargets::HostPorts);
    let fail = |source| RenderError {
        file: "prometheus.yml".into(),
        source,
    };
    let template = env.get_template("prometheus.yml").map_err(fail)?;
    Ok(normalize(&template.render(Serde(&ctx)).map_err(fail)?))
}

/// The alert rules for a cluster of local processes, written beside its `prometheus.yml`.
pub fn alerts_for_host_ports(cluster: &Cluster) -> Result<String, RenderError> {
    let env = environment();
    let ctx = context(cluster, &ScrapeTargets::HostPorts);
    let fail = |source| RenderError {
        file: "alerts.yml".into(),
        source,
    };
    let template = env.get_template("alerts.yml").map_err(fail)?;
    Ok(normalize(&template.render(Serde(&ctx)).map_err(fail)?))
}

/// Writes the files into `dir` (created if missing). Each file is written to a temporary name
/// and renamed, so a full disk or a crash never leaves a half-written file behind.
pub fn write(files: &[RenderedFile], dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for file in files {
        let path = dir.join(&file.name);
        // Names like `k8s/service.yaml` live in a subdirectory; the temporary file beside them.
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)?;
        let base = path.file_name().unwrap_or_default().to_string_lossy();
        let temporary = parent.join(format!(".{base}.tmp"));
        std::fs::write(&temporary, &file.contents).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })?;
        if file.name.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::rename(&temporary, &path)?;
        written.push(path);
    }
    Ok(written)
}

/// A file in the output directory that differs from a fresh render.
#[derive(Debug)]
pub struct StaleFile {
    /// File name.
    pub name: String,
    /// Unified diff from what is on disk to what a render writes.
    pub diff: String,
}

/// Compares a fresh render with `dir`; an empty result means `dir` is up to date.
pub fn stale_files(files: &[RenderedFile], dir: &Path) -> Vec<StaleFile> {
    files
        .iter()
        .filter_map(|file| {
            let path = dir.join(&file.name);
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            if on_disk == file.contents {
                return None;
            }
            let shown = path.display().to_string();
            let diff = similar::TextDiff::from_lines(&on_disk, &file.contents)
                .unified_diff()
                .context_radius(3)
                .header(
                    &format!("{shown} (on disk)"),
                    &format!("{shown} (rendered)"),
                )
                .to_string();
            Some(StaleFile {
                name: file.name.clone(),
                diff,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses() {
        let env = environment();
        for (name, _) in TEMPLATES {
            assert!(env.get_template(name).is_ok(), "{name}");
        }
    }

    /// `[swarm] registry` is for `apply` on Swarm alone: no rendered file changes with it (so it
    /// needs no escaping there, and `render --check` stays quiet when it is added).
    #[test]
    fn the_swarm_registry_reaches_no_rendered_file() {
        let mut cluster = crate::config::committed_cluster("local.toml");
        let before = render(&cluster).unwrap();
        cluster.swarm.registry = Some("registry.example.com:5000/team".into());
        let after = render(&cluster).unwrap();
        assert_eq!(before.len(), after.len());
        for (a, b) in before.iter().zip(&after) {
            assert_eq!((&a.name, &a.contents), (&b.name, &b.contents));
        }
    }

    /// The compose file says what the runtimes do: every node's environment, labels, ports,
    /// ulimits and healthcheck read back from the YAML equal its deployment spec.
    #[test]
    fn the_compose_file_carries_each_nodes_deployment_spec() {
        let cluster = crate::config::committed_cluster("local.toml");
        let compose = render(&cluster)
            .unwrap()
            .into_iter()
            .find(|f| f.name == "docker-compose.yml")
            .unwrap();
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&compose.contents).unwrap();
        let text_map = |value: &serde_yaml_ng::Value| -> BTreeMap<String, String> {
            serde_yaml_ng::from_value(value.clone()).unwrap()
        };
        let spec = deploy_spec::deployment(&cluster);
        for node in &spec.nodes {
            let service = &yaml["services"][node.node.as_str()];
            assert_eq!(
                text_map(&service["environment"]),
                node.env_map(),
                "{}",
                node.node
            );
            assert_eq!(text_map(&service["labels"]), node.labels);
            let ports: Vec<String> = serde_yaml_ng::from_value(service["ports"].clone()).unwrap();
            let wanted: Vec<String> = node
                .ports
                .iter()
                .map(|p| format!("{}:{}:{}", p.host_address, p.host, p.container))
                .collect();
            assert_eq!(ports, wanted);
            assert_eq!(
                service["ulimits"]["nofile"]["hard"].as_u64(),
                Some(node.nofile)
            );
            let test: Vec<String> =
                serde_yaml_ng::from_value(service["healthcheck"]["test"].clone()).unwrap();
            assert_eq!(test, node.healthcheck.test);
            assert_eq!(service["user"].as_str(), Some(node.user));
        }
        let prometheus = spec.prometheus.unwrap();
        let service = &yaml["services"]["prometheus"];
        let command: Vec<String> = serde_yaml_ng::from_value(service["command"].clone()).unwrap();
        assert_eq!(command, prometheus.command);
        assert_eq!(text_map(&service["labels"]), prometheus.labels);
    }

    #[test]
    fn normalize_keeps_one_trailing_newline() {
        assert_eq!(normalize("a  \r\nb\n\n\n"), "a\nb\n");
        assert_eq!(normalize("a"), "a\n");
    }
}
