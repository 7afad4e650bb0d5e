//! Checks that a render is inert: hostile strings placed straight into a resolved cluster (no
//! validation) come back out of every artifact as data. Shared by `render_hostile.rs` and
//! `validate_or_inert.rs`.
//!
//! - YAML (`docker-compose.yml`, `prometheus.yml`, the provisioning script's `colima.yaml` entry):
//!   parsed back, the document has exactly the keys of a render of ordinary values, and every
//!   value reads back as the string the model holds (after compose's `$$` → `$`).
//! - Shell (`colima-setup.sh`): with every single-quoted word and comment blanked, the script is
//!   byte for byte the script rendered from ordinary values; so no value reached the shell outside
//!   single quotes.
//! - Dockerfile: the same instruction on every line as the render of ordinary values.

#![allow(dead_code)]

use std::collections::BTreeMap;

use erlmcp_gen::config::Cluster;
use erlmcp_gen::config::model::Vm;
use erlmcp_gen::render::{self, RenderedFile};
use serde_yaml_ng::Value;

/// Every string field of the cluster model a template writes, one hostile string each.
#[derive(Debug, Clone)]
pub struct Strings {
    /// `[cluster] name`.
    pub name: String,
    /// `[cluster] version`.
    pub version: String,
    /// `[runtime] colima_profile`.
    pub profile: String,
    /// `[vm] vm_type`.
    pub vm_type: String,
    /// `[image] repository`.
    pub repository: String,
    /// `[image] builder`.
    pub builder: String,
    /// `[network] name`.
    pub network: String,
    /// Node names (a number is appended per node, so they stay distinct).
    pub node: String,
    /// `[prometheus] image`.
    pub prometheus_image: String,
    /// `[logging] driver`.
    pub driver: String,
    /// A sysctl name (an index is appended per entry).
    pub sysctl_key: String,
    /// A sysctl value.
    pub sysctl_value: String,
    /// The cluster file's path (written into every header).
    pub source: String,
}

impl Strings {
    /// The same string in every field.
    pub fn all(value: &str) -> Self {
        Strings {
            name: value.into(),
            version: value.into(),
            profile: value.into(),
            vm_type: value.into(),
            repository: value.into(),
            builder: value.into(),
            network: value.into(),
            node: value.into(),
            prometheus_image: value.into(),
            driver: value.into(),
            sysctl_key: value.into(),
            sysctl_value: value.into(),
            source: value.into(),
        }
    }

    /// Ordinary values: what the hostile render is compared with.
    pub fn neutral() -> Self {
        Strings {
            name: "vname".into(),
            version: "vversion".into(),
            profile: "vprofile".into(),
            vm_type: "vvmtype".into(),
            repository: "vrepository".into(),
            builder: "vbuilder".into(),
            network: "vnetwork".into(),
            node: "vnode".into(),
            prometheus_image: "vprometheus".into(),
            driver: "vdriver".into(),
            sysctl_key: "vsysctl".into(),
            sysctl_value: "vvalue".into(),
            source: "vsource".into(),
        }
    }
}

/// `clusters/local.toml`, resolved: two nodes, one container sysctl, Prometheus on.
pub fn base_cluster() -> Cluster {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/local.toml"))
        .unwrap();
    erlmcp_gen::config::parse("clusters/local.toml", &text)
        .unwrap()
        .0
}

/// `base` with every string field replaced, bypassing validation; two host and two container
/// sysctls so both maps have more than one entry.
pub fn with_strings(base: &Cluster, s: &Strings) -> Cluster {
    let mut c = base.clone();
    c.source = s.source.clone();
    c.name = s.name.clone();
    c.version = s.version.clone();
    c.runtime.colima_profile = s.profile.clone();
    c.vm = Some(Vm {
        cpus: 2,
        memory: erlmcp_gen::config::units::ByteSize(4 << 30),
        disk: erlmcp_gen::config::units::ByteSize(20 << 30),
        vm_type: s.vm_type.clone(),
    });
    c.image.repository = s.repository.clone();
    c.image.builder = s.builder.clone();
    c.network = s.network.clone();
    for (i, node) in c.nodes.iter_mut().enumerate() {
        node.name = format!("{}{}", s.node, i + 1);
    }
    c.prometheus.image = s.prometheus_image.clone();
    c.logging.driver = s.driver.clone();
    let sysctls: BTreeMap<String, String> = (0..2)
        .map(|i| (format!("{}{i}", s.sysctl_key), s.sysctl_value.clone()))
        .collect();
    c.tuning.host = sysctls.clone();
    c.tuning.container = sysctls;
    c.kubernetes.namespace = s.name.clone();
    c.kubernetes.image = s.repository.clone();
    c.kubernetes.prometheus = true;
    c
}

fn file<'a>(files: &'a [RenderedFile], name: &str) -> &'a str {
    &files.iter().find(|f| f.name == name).unwrap().contents
}

/// Compose's reading of a scalar: `$$` is one `$`; a lone `$` would be interpolation.
fn compose_unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.next() != Some('$') {
            return Err(format!("a lone `$` in {text:?} is compose interpolation"));
        }
        out.push(c);
    }
    Ok(out)
}

/// The document's structure: mapping keys and the kinds of leaves. Keys that come from the
/// model (service names, sysctl names, `depends_on` targets) are replaced by their role, so a
/// render of other strings has the same shape exactly when no value added or removed a key.
fn shape(value: &Value, path: &str, cluster: &Cluster) -> String {
    match value {
        Value::Mapping(map) => {
            let mut entries: Vec<String> = map
                .iter()
                .map(|(k, v)| {
                    // Compose interpolates values, not keys: keys are plain YAML.
                    let key = k.as_str();
                    let key = key.unwrap_or("<non-string key>");
                    let role = match path {
                        "services" | "services.*.depends_on" | "services.prometheus.depends_on" => {
                            match cluster.nodes.iter().position(|n| n.name == key) {
                                Some(i) => format!("<node{}>", i + 1),
                                None => key.to_string(),
                            }
                        }
                        "services.*.sysctls" => {
                            match cluster.tuning.container.keys().position(|s| s == key) {
                                Some(i) => format!("<sysctl{i}>"),
                                None => key.to_string(),
                            }
                        }
                        _ => key.to_string(),
                    };
                    let child_path = match (path, role.starts_with("<node")) {
                        ("services", true) => "services.*".to_string(),
                        _ if path.is_empty() => role.clone(),
                        _ => format!("{path}.{role}"),
                    };
                    format!("{role}: {}", shape(v, &child_path, cluster))
                })
                .collect();
            entries.sort();
            format!("{{{}}}", entries.join(", "))
        }
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(|v| shape(v, path, cluster)).collect();
            format!("[{}]", items.join(", "))
        }
        Value::String(_) => "str".into(),
        Value::Number(_) => "num".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
        Value::Tagged(_) => "tagged".into(),
    }
}

fn yaml(text: &str, what: &str) -> Value {
    serde_yaml_ng::from_str(text).unwrap_or_else(|e| panic!("{what} does not parse: {e}\n{text}"))
}

fn get<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| {
        v.get(*key)
            .unwrap_or_else(|| panic!("no `{key}` on the way to {path:?} in {v:?}"))
    })
}

fn compose_str(value: &Value, path: &[&str]) -> String {
    let text = get(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string"));
    compose_unescape(text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Blanks single-quoted words and comments of a bash script; what remains is everything the
/// shell parses as code or expands.
pub fn shell_skeleton(script: &str) -> String {
    let mut out = String::with_capacity(script.len());
    let mut chars = script.chars().peekable();
    let mut previous = '\n';
    let mut in_double = false;
    while let Some(c) = chars.next() {
        if in_double {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_double = false,
                _ => {}
            }
        } else {
            match c {
                '\'' => {
                    for inner in chars.by_ref() {
                        if inner == '\'' {
                            break;
                        }
                    }
                    out.push_str("''");
                }
                '#' if previous.is_whitespace() => {
                    for inner in chars.by_ref() {
                        if inner == '\n' {
                            out.push('\n');
                            break;
                        }
                    }
                    previous = '\n';
                    continue;
                }
                '\\' => {
                    out.push(c);
                    out.extend(chars.next());
                }
                '"' => {
                    in_double = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        previous = c;
    }
    // `'a'\''b'` is one word: quoted, an escaped quote, quoted; `$'…'` (only `\xHH` escapes
    // inside, never `\'`) is one quoted word too.
    out = out.replace("$''", "''");
    while out.contains(r"''\'''") {
        out = out.replace(r"''\'''", "''");
    }
    out
}

/// Renders `cluster` and its neutral twin and checks every artifact is inert.
pub fn assert_inert(base: &Cluster, strings: &Strings) {
    let cluster = with_strings(base, strings);
    let neutral_cluster = with_strings(base, &Strings::neutral());
    assert_structure(&cluster, &neutral_cluster, &format!("{strings:?}"));
    assert_values(&cluster);
}

/// The renders of `cluster` and of `neutral_cluster` (the same counts of nodes and sysctls,
/// ordinary strings) have the same YAML keys, the same shell code outside single quotes and
/// the same Dockerfile instructions.
pub fn assert_structure(cluster: &Cluster, neutral_cluster: &Cluster, strings: &str) {
    let files = render::render(cluster).expect("render never fails on a resolved model");
    let neutral = render::render(neutral_cluster).unwrap();
    let compose = yaml(file(&files, "docker-compose.yml"), "docker-compose.yml");
    let neutral_compose = yaml(
        file(&neutral, "docker-compose.yml"),
        "neutral docker-compose.yml",
    );
    assert_eq!(
        shape(&compose, "", cluster),
        shape(&neutral_compose, "", neutral_cluster),
        "docker-compose.yml changed shape for {strings}"
    );
    let prometheus = yaml(file(&files, "prometheus.yml"), "prometheus.yml");
    let neutral_prometheus = yaml(file(&neutral, "prometheus.yml"), "neutral prometheus.yml");
    assert_eq!(
        shape(&prometheus, "", cluster),
        shape(&neutral_prometheus, "", neutral_cluster)
    );

    // colima-setup.sh: nothing outside single quotes differs from the ordinary render.
    let script = file(&files, "colima-setup.sh");
    let skeleton = shell_skeleton(script);
    let neutral_skeleton = shell_skeleton(file(&neutral, "colima-setup.sh"));
    if let Some((got, want)) = skeleton
        .lines()
        .zip(neutral_skeleton.lines())
        .find(|(a, b)| a != b)
    {
        panic!(
            "a value reached colima-setup.sh outside single quotes for {strings}:\n got: {got}\nwant: {want}"
        );
    }
    assert_eq!(skeleton.lines().count(), neutral_skeleton.lines().count());

    // Kubernetes manifests: the same keys in every file.
    for rendered in files.iter().filter(|f| f.name.starts_with("k8s/")) {
        let name = &rendered.name;
        let document = yaml(&rendered.contents, name);
        let neutral_document = yaml(file(&neutral, name), name);
        assert_eq!(
            shape(&document, "", cluster),
            shape(&neutral_document, "", neutral_cluster),
            "{name} changed shape for {strings}"
        );
    }

    // Dockerfiles: the same instruction on every line.
    for name in [
        "Dockerfile",
        "Dockerfile.prebuilt",
        "Dockerfile.dockerignore",
    ] {
        let instructions = |text: &str| -> Vec<String> {
            text.lines()
                .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            instructions(file(&files, name)),
            instructions(file(&neutral, name)),
            "{name} changed lines for {strings}"
        );
    }
}

/// Every string of `cluster` reads back from the rendered YAML as the model holds it (after
/// compose's `$$` → `$`).
pub fn assert_values(cluster: &Cluster) {
    let files = render::render(cluster).expect("render never fails on a resolved model");
    let compose = yaml(file(&files, "docker-compose.yml"), "docker-compose.yml");
    for node in &cluster.nodes {
        let svc = &node.name;
        assert_eq!(compose_str(&compose, &["services", svc, "hostname"]), *svc);
        assert_eq!(
            compose_str(&compose, &["services", svc, "container_name"]),
            format!("{}-{}", cluster.name, svc)
        );
        assert_eq!(
            compose_str(&compose, &["services", svc, "image"]),
            cluster.image_ref()
        );
        assert_eq!(
            compose_str(
                &compose,
                &["services", svc, "environment", "ERLMCP_CLUSTER"]
            ),
            cluster.name
        );
        assert_eq!(
            compose_str(&compose, &["services", svc, "labels", "erlmcp.node"]),
            *svc
        );
        assert_eq!(
            compose_str(&compose, &["services", svc, "logging", "driver"]),
            cluster.logging.driver
        );
        for (key, value) in &cluster.tuning.container {
            let sysctls = get(&compose, &["services", svc, "sysctls"])
                .as_mapping()
                .unwrap();
            let found = sysctls
                .iter()
                .find(|(k, _)| k.as_str() == Some(key.as_str()))
                .unwrap_or_else(|| panic!("sysctl {key:?} missing"));
            assert_eq!(compose_unescape(found.1.as_str().unwrap()).unwrap(), *value);
        }
    }
    assert_eq!(
        compose_str(&compose, &["services", "prometheus", "image"]),
        cluster.prometheus.image
    );
    assert_eq!(
        compose_str(&compose, &["networks", "cluster", "name"]),
        cluster.network
    );
    assert_eq!(
        compose_str(&compose, &["volumes", "prometheus-data", "name"]),
        format!("{}-prometheus-data", cluster.name)
    );

    let prometheus = yaml(file(&files, "prometheus.yml"), "prometheus.yml");
    assert_eq!(
        get(&prometheus, &["global", "external_labels", "cluster"]).as_str(),
        Some(cluster.name.as_str())
    );
    let targets = get(&prometheus, &["scrape_configs"]).as_sequence().unwrap()[0]
        .get("static_configs")
        .unwrap()
        .as_sequence()
        .unwrap();
    for (target, node) in targets.iter().zip(&cluster.nodes) {
        assert_eq!(
            get(target, &["labels", "node"]).as_str(),
            Some(node.name.as_str())
        );
    }
    assert_kubernetes_values(cluster);
}
/// The kubelet's reading of an env value or argument: `$$` is one `$`, and the only
/// reference is `ref_prefix` (the pod name) at the start.
fn k8s_unescape(text: &str, ref_prefix: Option<&str>) -> String {
    let rest = match ref_prefix {
        Some(prefix) => text
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{text:?} does not start with {prefix}")),
        None => text,
    };
    let plain = compose_unescape(rest).unwrap_or_else(|e| panic!("kubelet expansion: {e}"));
    format!("{}{plain}", ref_prefix.unwrap_or(""))
}

/// Every string of `cluster` reads back from the Kubernetes manifests as the model holds it.
pub fn assert_kubernetes_values(cluster: &Cluster) {
    let files = render::render(cluster).expect("render never fails on a resolved model");
    let kustomization = yaml(file(&files, "k8s/kustomization.yaml"), "kustomization");
    assert_eq!(
        get(&kustomization, &["namespace"]).as_str(),
        Some(cluster.kubernetes.namespace.as_str())
    );
    let pod_ref = "$(ERLMCP_POD_NAME)";
    for set_file in ["k8s/coordinator.yaml", "k8s/workers.yaml"] {
        let set = yaml(file(&files, set_file), set_file);
        assert_eq!(
            get(&set, &["metadata", "labels", "erlmcp.cluster"]).as_str(),
            Some(cluster.name.as_str())
        );
        let container = &get(&set, &["spec", "template", "spec", "containers"])[0];
        assert_eq!(
            get(container, &["image"]).as_str(),
            Some(cluster.kubernetes.image.as_str())
        );
        let env: BTreeMap<String, String> = get(container, &["env"])
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|v| {
                Some((
                    v.get("name")?.as_str()?.into(),
                    v.get("value")?.as_str()?.into(),
                ))
            })
            .collect();
        assert_eq!(k8s_unescape(&env["ERLMCP_CLUSTER"], None), cluster.name);
        assert_eq!(
            k8s_unescape(&env["ERLMCP_ADVERTISE_HOST"], Some(pod_ref)),
            format!("{pod_ref}.{}-nodes", cluster.name)
        );
        assert_eq!(
            k8s_unescape(&env["ERLMCP_SEEDS"], None),
            format!("{0}-coordinator-0.{0}-nodes:8080", cluster.name)
        );
    }
}

/// The provisioning script as the rendered `colima-setup.sh` holds it: the single-quoted word
/// assigned to `PROVISION_SCRIPT_YAML`, unquoted the way the shell does.
pub fn provision_yaml_scalar(script: &str) -> String {
    let line = script
        .lines()
        .find_map(|l| l.strip_prefix("PROVISION_SCRIPT_YAML="))
        .expect("the script assigns PROVISION_SCRIPT_YAML");
    // The word may span lines when the YAML scalar holds none (it escapes line breaks), so one
    // line is the whole word: 'a'\''b' → a'b.
    line.trim_start_matches('\'')
        .trim_end_matches('\'')
        .replace(r"'\''", "'")
}
