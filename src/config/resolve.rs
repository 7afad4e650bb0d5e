//! Raw → resolved: applies every default once, in one place, and records where each resolved
//! value came from so that later checks can point at it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::ops::Range;

use super::grammar::{self, Grammar};
use super::model::*;
use super::problems;
use super::raw::*;
use super::units::{ByteSize, HumanDuration};
use crate::diagnostic::Diagnostic;

/// Where resolved values came from: a dotted key (`node.node3.api_port`, `stress.connections`) →
/// the byte range of the key's value (or of the table that would hold it, for defaults).
#[derive(Debug, Default, Clone)]
pub struct SpanIndex {
    spans: HashMap<String, Range<usize>>,
    written: HashSet<String>,
}

impl SpanIndex {
    /// The span recorded for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Range<usize>> {
        self.spans.get(key).cloned()
    }

    /// The span of `key` when the file wrote it (not the place a default stands for).
    pub fn written(&self, key: &str) -> Option<Range<usize>> {
        self.get(key).filter(|_| self.written.contains(key))
    }

    fn set(&mut self, key: impl Into<String>, span: Range<usize>) {
        self.spans.insert(key.into(), span);
    }

    fn set_written(&mut self, key: &str, span: Range<usize>) {
        self.written.insert(key.to_string());
        self.set(key, span);
    }
}

/// Resolution state: the span index being filled and the problems found so far.
struct Resolver {
    spans: SpanIndex,
    problems: Vec<Diagnostic>,
}

impl Resolver {
    /// Takes the written value (recording its span under `key`) or the default (recording
    /// `fallback`, the place a reader would look for it).
    fn value<T: Clone>(
        &mut self,
        key: &str,
        written: Option<&S<T>>,
        fallback: Option<Range<usize>>,
        default: T,
    ) -> T {
        match written {
            Some(value) => {
                self.spans.set_written(key, value.span());
                value.get_ref().clone()
            }
            None => {
                if let Some(span) = fallback {
                    self.spans.set(key, span);
                }
                default
            }
        }
    }

    fn problem(&mut self, diagnostic: Diagnostic, span: Option<Range<usize>>) {
        self.problems.push(diagnostic.at(span));
    }

    /// Takes a text value like [`Resolver::value`] and checks a written one against `grammar`.
    fn text(
        &mut self,
        key: &str,
        written: Option<&S<String>>,
        fallback: Option<Range<usize>>,
        default: String,
        grammar: &Grammar,
    ) -> String {
        let value = self.value(key, written, fallback, default);
        if let Some(written) = written
            && !grammar.accepts(written.get_ref())
        {
            self.problem(
                problems::bad_grammar(key, written.get_ref(), grammar),
                Some(written.span()),
            );
        }
        value
    }

    /// An optional text value: `None` when not written, or when written against `grammar`
    /// (that is reported as a problem).
    fn optional_text(
        &mut self,
        key: &str,
        written: Option<&S<String>>,
        grammar: &Grammar,
    ) -> Option<String> {
        let written = written?;
        let text = self.text(key, Some(written), None, String::new(), grammar);
        grammar.accepts(&text).then_some(text)
    }

    /// Maps a text value onto one of `allowed`.
    fn choice<T: Copy>(
        &mut self,
        key: &str,
        written: Option<&S<String>>,
        allowed: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(value) = written else { return default };
        self.spans.set(key, value.span());
        match allowed.iter().find(|(name, _)| *name == value.get_ref()) {
            Some((_, choice)) => *choice,
            None => {
                let names: Vec<&str> = allowed.iter().map(|(name, _)| *name).collect();
                self.problem(
                    problems::unknown_value(key, value.get_ref(), &names),
                    Some(value.span()),
                );
                default
            }
        }
    }

    /// Checks a host port (base + offset) fits in 1..=65535.
    fn port(&mut self, key: &str, what: &str, port: u64) -> u16 {
        match u16::try_from(port) {
            Ok(port) if port > 0 => port,
            _ => {
                let span = self.spans.get(key);
                self.problem(problems::bad_port(what, port), span);
                0
            }
        }
    }
}

/// Resolves a parsed cluster file. `source` is the file's path as the user gave it.
pub fn resolve(
    raw: &RawClusterFile,
    source: &str,
) -> Result<(Cluster, SpanIndex), Vec<Diagnostic>> {
    let (cluster, spans, problems) = resolve_all(raw, source);
    if problems.is_empty() {
        Ok((cluster, spans))
    } else {
        Err(problems)
    }
}

/// Resolves a parsed cluster file and returns every problem found on the way together with the
/// cluster (a value with a problem is replaced by its default or left out), so that semantic
/// checks can still run and report everything in one go.
pub fn resolve_all(raw: &RawClusterFile, source: &str) -> (Cluster, SpanIndex, Vec<Diagnostic>) {
    let mut r = Resolver {
        spans: SpanIndex::default(),
        problems: Vec::new(),
    };
    let cluster_table = raw.cluster.get_ref();
    let name = r.text(
        "cluster.name",
        Some(&cluster_table.name),
        None,
        String::new(),
        &grammar::CLUSTER_NAME,
    );
    let version = r.text(
        "cluster.version",
        cluster_table.version.as_ref(),
        None,
        "0.1.0".to_string(),
        &grammar::VERSION,
    );

    let secret_file = cluster_table.secret_file.as_ref().map(|file| {
        r.spans.set("cluster.secret_file", file.span());
        if !grammar::SECRET_FILE.accepts(file.get_ref()) {
            r.problem(
                problems::bad_grammar("cluster.secret_file", file.get_ref(), &grammar::SECRET_FILE),
                Some(file.span()),
            );
        }
        let beside = std::path::Path::new(source)
            .parent()
            .unwrap_or(std::path::Path::new(""));
        beside.join(file.get_ref())
    });
    let runtime = resolve_runtime(&mut r, raw, &name);
    let vm = resolve_vm(&mut r, raw, runtime.kind);
    let image = resolve_image(&mut r, raw);
    let network = r.text(
        "network.name",
        raw.network.as_ref().and_then(|n| n.get_ref().name.as_ref()),
        None,
        format!("{name}-net"),
        &grammar::DNS_LABEL,
    );
    let nodes = resolve_nodes(&mut r, raw);
    let prometheus = resolve_prometheus(&mut r, raw);
    let logging = resolve_logging(&mut r, raw);
    let tuning = resolve_tuning(&mut r, raw);
    let slo = resolve_slo(&mut r, raw);
    let capacity: u64 = nodes.iter().map(|n| u64::from(n.connections)).sum();
    let stress = resolve_stress(&mut r, raw, capacity);
    let kubernetes = resolve_kubernetes(&mut r, raw, &name, &image, &version, &prometheus);
    let swarm = resolve_swarm(&mut r, raw);
    check_pushed_names(&mut r, &swarm, &image, &prometheus);

    let cluster = Cluster {
        source: source.to_string(),
        name,
        version,
        secret_file,
        runtime,
        vm,
        image,
        network,
        nodes,
        prometheus,
        logging,
        tuning,
        slo,
        stress,
        kubernetes,
        swarm,
    };
    (cluster, r.spans, r.problems)
}

fn resolve_runtime(r: &mut Resolver, raw: &RawClusterFile, cluster_name: &str) -> Runtime {
    let table = raw.runtime.as_ref().map(|t| t.get_ref());
    let kind = r.choice(
        "runtime.kind",
        table.and_then(|t| t.kind.as_ref()),
        &[
            ("colima", RuntimeKind::Colima),
            ("docker", RuntimeKind::Docker),
            ("native", RuntimeKind::Native),
            ("swarm", RuntimeKind::Swarm),
        ],
        RuntimeKind::Docker,
    );
    let colima_profile = r.text(
        "runtime.colima_profile",
        table.and_then(|t| t.colima_profile.as_ref()),
        None,
        cluster_name.to_string(),
        &grammar::DNS_LABEL,
    );
    let address_text = r.value(
        "runtime.publish_address",
        table.and_then(|t| t.publish_address.as_ref()),
        None,
        "127.0.0.1".to_string(),
    );
    let publish_address = address_text.parse::<IpAddr>().unwrap_or_else(|_| {
        let span = r.spans.get("runtime.publish_address");
        r.problem(problems::bad_address(&address_text), span);
        IpAddr::from([127, 0, 0, 1])
    });
    Runtime {
        kind,
        colima_profile,
        publish_address,
    }
}

fn resolve_vm(r: &mut Resolver, raw: &RawClusterFile, kind: RuntimeKind) -> Option<Vm> {
    let Some(table) = &raw.vm else {
        if kind == RuntimeKind::Colima {
            let span = r.spans.get("runtime.kind");
            r.problem(problems::colima_without_vm(), span);
        }
        return None;
    };
    r.spans.set("vm", table.span());
    let vm = table.get_ref();
    r.spans.set("vm.cpus", vm.cpus.span());
    r.spans.set("vm.memory", vm.memory.span());
    r.spans.set("vm.disk", vm.disk.span());
    let vm_type = r.choice(
        "vm.vm_type",
        vm.vm_type.as_ref(),
        &[("qemu", "qemu"), ("vz", "vz")],
        "qemu",
    );
    Some(Vm {
        cpus: *vm.cpus.get_ref(),
        memory: *vm.memory.get_ref(),
        disk: *vm.disk.get_ref(),
        vm_type: vm_type.to_string(),
    })
}

fn resolve_image(r: &mut Resolver, raw: &RawClusterFile) -> Image {
    let table = raw.image.as_ref().map(|t| t.get_ref());
    Image {
        repository: r.text(
            "image.repository",
            table.and_then(|t| t.repository.as_ref()),
            None,
            "erlmcp-node".to_string(),
            &grammar::IMAGE_NAME_GRAMMAR,
        ),
        builder: r.text(
            "image.builder",
            table.and_then(|t| t.builder.as_ref()),
            None,
            "docker.io/library/rust:1-bookworm".to_string(),
            &grammar::IMAGE_REFERENCE_GRAMMAR,
        ),
        build: r.choice(
            "image.build",
            table.and_then(|t| t.build.as_ref()),
            &[
                ("auto", ImageBuild::Auto),
                ("source", ImageBuild::Source),
                ("prebuilt", ImageBuild::Prebuilt),
            ],
            ImageBuild::Auto,
        ),
    }
}

/// Per-node keys that only make sense in `[[node]]`.
fn reject_per_node_keys_in_defaults(r: &mut Resolver, defaults: &RawNodeSettings) {
    let misplaced = [
        ("name", defaults.name.as_ref().map(|v| v.span())),
        ("role", defaults.role.as_ref().map(|v| v.span())),
        ("api_port", defaults.api_port.as_ref().map(|v| v.span())),
        (
            "listener_port",
            defaults.listener_port.as_ref().map(|v| v.span()),
        ),
    ];
    for (key, span) in misplaced {
        if span.is_some() {
            r.problem(problems::misplaced_in_defaults(key), span);
        }
    }
}

fn resolve_nodes(r: &mut Resolver, raw: &RawClusterFile) -> Vec<Node> {
    let nodes = raw.nodes.get_ref();
    let nodes_span = raw.nodes.span();
    r.spans.set("nodes", nodes_span.clone());
    r.spans.set("nodes.count", nodes.count.span());
    let written_count = *nodes.count.get_ref();
    if written_count == 0 {
        r.problem(problems::no_nodes(), Some(nodes.count.span()));
    }
    // Past the bound the file names no nodes at all: one finding, not one per node.
    let count = if written_count > MAX_NODES {
        r.problem(
            problems::too_many_nodes(written_count.into(), MAX_NODES),
            Some(nodes.count.span()),
        );
        0
    } else {
        written_count
    };
    let prefix = r.text(
        "nodes.prefix",
        nodes.prefix.as_ref(),
        None,
        "node".to_string(),
        &grammar::NODE_PREFIX,
    );
    let longest = format!("{prefix}{count}");
    if count > 0 && grammar::NODE_PREFIX.accepts(&prefix) && longest.len() > grammar::DNS_LABEL_MAX
    {
        let span = r.spans.get("nodes.prefix").or(Some(nodes.count.span()));
        r.problem(
            problems::bad_grammar("node name", &longest, &grammar::DNS_LABEL),
            span,
        );
    }
    let api_base = r.value(
        "nodes.api_port",
        nodes.api_port.as_ref(),
        Some(nodes_span.clone()),
        8080,
    );
    let listener_base = r.value(
        "nodes.listener_port",
        nodes.listener_port.as_ref(),
        Some(nodes_span.clone()),
        9100,
    );

    let empty = RawNodeSettings::default();
    let (defaults, defaults_span) = match &raw.defaults {
        Some(d) => (d.get_ref(), d.span()),
        None => (&empty, nodes_span.clone()),
    };
    reject_per_node_keys_in_defaults(r, defaults);

    // Index the overrides by name, reporting the ones that name no node.
    let names: Vec<String> = (1..=count).map(|i| format!("{prefix}{i}")).collect();
    let mut overrides: BTreeMap<&str, &S<RawNodeSettings>> = BTreeMap::new();
    for entry in raw.node.iter().filter(|_| written_count <= MAX_NODES) {
        let Some(name) = &entry.get_ref().name else {
            r.problem(problems::override_without_name(), Some(entry.span()));
            continue;
        };
        if !names.iter().any(|n| n == name.get_ref()) {
            r.problem(
                problems::unknown_node(name.get_ref(), &prefix, count),
                Some(name.span()),
            );
        } else if let Some(first) = overrides.get(name.get_ref().as_str()) {
            let first_span = first.get_ref().name.as_ref().map(|n| n.span());
            r.problem(
                problems::duplicate_node(name.get_ref())
                    .also_at(first_span, "first entry for this node"),
                Some(name.span()),
            );
        } else {
            overrides.insert(name.get_ref(), entry);
        }
    }

    let mut resolved = Vec::new();
    for (position, name) in names.iter().enumerate() {
        let index = position as u32 + 1;
        let key = |field: &str| format!("node.{name}.{field}");
        let entry = overrides.get(name.as_str());
        let own = entry.map(|e| e.get_ref());
        let entry_span = entry.map(|e| e.span());
        // A node's value comes from its own entry, else [defaults], else the built-in default.
        macro_rules! setting {
            ($field:ident, $default:expr) => {{
                if let Some(value) = defaults.$field.as_ref() {
                    r.spans
                        .set_written(concat!("defaults.", stringify!($field)), value.span());
                }
                let written = own
                    .and_then(|o| o.$field.as_ref())
                    .or(defaults.$field.as_ref());
                r.value(
                    &key(stringify!($field)),
                    written,
                    Some(defaults_span.clone()),
                    $default,
                )
            }};
        }
        let role = r.choice(
            &key("role"),
            own.and_then(|o| o.role.as_ref()),
            &[("coordinator", Role::Coordinator), ("worker", Role::Worker)],
            Role::Worker,
        );
        if let Some(span) = entry_span.clone() {
            r.spans.set(format!("node.{name}"), span);
        }
        let api_port = r.value(
            &key("api_port"),
            own.and_then(|o| o.api_port.as_ref()),
            r.spans.get("nodes.api_port"),
            api_base.saturating_add(index - 1),
        );
        let listener_port = r.value(
            &key("listener_port"),
            own.and_then(|o| o.listener_port.as_ref()),
            r.spans.get("nodes.listener_port"),
            listener_base.saturating_add(index - 1),
        );
        let api_port = r.port(
            &key("api_port"),
            &format!("{name}'s API port"),
            api_port.into(),
        );
        let listener_port = r.port(
            &key("listener_port"),
            &format!("{name}'s listener port"),
            listener_port.into(),
        );
        let idle_timeout = setting!(
            idle_timeout,
            HumanDuration(std::time::Duration::from_secs(300))
        );
        // As long as a session may idle: a client between calls keeps its connection, as a TCP
        // session does, instead of reconnecting for every call made after a pause.
        let keep_alive_timeout = setting!(keep_alive_timeout, idle_timeout);
        resolved.push(Node {
            name: name.clone(),
            index,
            role,
            api_port,
            listener_port,
            connections: setting!(connections, 1000),
            cpu_limit: setting!(cpu_limit, 1.0),
            memory_limit: setting!(memory_limit, ByteSize(512 << 20)),
            cpu_reservation: setting!(cpu_reservation, 0.0),
            memory_reservation: setting!(memory_reservation, ByteSize(0)),
            nofile: setting!(nofile, 65_536),
            idle_timeout,
            keep_alive_timeout,
        });
    }
    resolved
}

fn resolve_prometheus(r: &mut Resolver, raw: &RawClusterFile) -> Prometheus {
    let table = raw.prometheus.as_ref().map(|t| t.get_ref());
    let fallback = raw.prometheus.as_ref().map(|t| t.span());
    let secs = |s| HumanDuration(std::time::Duration::from_secs(s));
    let port = r.value(
        "prometheus.port",
        table.and_then(|t| t.port.as_ref()),
        fallback.clone(),
        9090,
    );
    Prometheus {
        enabled: r.value(
            "prometheus.enabled",
            table.and_then(|t| t.enabled.as_ref()),
            fallback.clone(),
            true,
        ),
        image: r.text(
            "prometheus.image",
            table.and_then(|t| t.image.as_ref()),
            fallback.clone(),
            "docker.io/prom/prometheus:v2.53.0".to_string(),
            &grammar::IMAGE_REFERENCE_GRAMMAR,
        ),
        port: r.port("prometheus.port", "Prometheus's port", port.into()),
        scrape_interval: r.value(
            "prometheus.scrape_interval",
            table.and_then(|t| t.scrape_interval.as_ref()),
            fallback.clone(),
            secs(10),
        ),
        node_scrape_interval: r.value(
            "prometheus.node_scrape_interval",
            table.and_then(|t| t.node_scrape_interval.as_ref()),
            fallback.clone(),
            secs(5),
        ),
        retention: r.value(
            "prometheus.retention",
            table.and_then(|t| t.retention.as_ref()),
            fallback.clone(),
            secs(7 * 86_400),
        ),
        cpu_limit: r.value(
            "prometheus.cpu_limit",
            table.and_then(|t| t.cpu_limit.as_ref()),
            fallback.clone(),
            1.0,
        ),
        memory_limit: r.value(
            "prometheus.memory_limit",
            table.and_then(|t| t.memory_limit.as_ref()),
            fallback,
            ByteSize(1 << 30),
        ),
    }
}

fn resolve_logging(r: &mut Resolver, raw: &RawClusterFile) -> Logging {
    let table = raw.logging.as_ref().map(|t| t.get_ref());
    Logging {
        // Only these two drivers take the `max-size`/`max-file` options every container gets.
        driver: r
            .choice(
                "logging.driver",
                table.and_then(|t| t.driver.as_ref()),
                &[("json-file", "json-file"), ("local", "local")],
                "json-file",
            )
            .to_string(),
        max_size: r.value(
            "logging.max_size",
            table.and_then(|t| t.max_size.as_ref()),
            None,
            ByteSize(50 << 20),
        ),
        max_files: r.value(
            "logging.max_files",
            table.and_then(|t| t.max_files.as_ref()),
            None,
            3,
        ),
    }
}

fn resolve_tuning(r: &mut Resolver, raw: &RawClusterFile) -> Tuning {
    let mut tuning = Tuning {
        host: BTreeMap::new(),
        container: BTreeMap::new(),
    };
    let Some(table) = &raw.tuning else {
        return tuning;
    };
    let table = table.get_ref();
    for (scope, written, out) in [
        ("host", &table.host, &mut tuning.host),
        ("container", &table.container, &mut tuning.container),
    ] {
        for (name, value) in written {
            let span = Some(value.span());
            r.spans.set(format!("tuning.{scope}.{name}"), value.span());
            if !grammar::SYSCTL_NAME.accepts(name) {
                r.problem(problems::bad_sysctl_name(name), span);
                continue;
            }
            if scope == "container" && !name.starts_with("net.") {
                r.problem(problems::sysctl_not_namespaced(name), span);
                continue;
            }
            let text = match value.get_ref() {
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::String(s) if grammar::SYSCTL_VALUE.accepts(s) => s.clone(),
                toml::Value::String(s) => {
                    r.problem(
                        problems::bad_grammar(
                            &format!("tuning.{scope}.{name}"),
                            s,
                            &grammar::SYSCTL_VALUE,
                        ),
                        span,
                    );
                    continue;
                }
                _ => {
                    r.problem(problems::bad_sysctl_value(name), span);
                    continue;
                }
            };
            out.insert(name.clone(), text);
        }
    }
    tuning
}

fn resolve_slo(r: &mut Resolver, raw: &RawClusterFile) -> Slo {
    let table = raw.slo.as_ref().map(|t| t.get_ref());
    let fallback = raw.slo.as_ref().map(|t| t.span());
    Slo {
        p99: r.value(
            "slo.p99",
            table.and_then(|t| t.p99.as_ref()),
            fallback.clone(),
            HumanDuration(std::time::Duration::from_millis(30)),
        ),
        error_rate_percent: r.value(
            "slo.error_rate_percent",
            table.and_then(|t| t.error_rate_percent.as_ref()),
            fallback,
            0.1,
        ),
    }
}

fn resolve_stress(r: &mut Resolver, raw: &RawClusterFile, capacity: u64) -> StressProfile {
    let table = raw.stress.as_ref().map(|t| t.get_ref());
    let fallback = raw.stress.as_ref().map(|t| t.span());
    let secs = |s| HumanDuration(std::time::Duration::from_secs(s));
    StressProfile {
        connections: r.value(
            "stress.connections",
            table.and_then(|t| t.connections.as_ref()),
            fallback.clone(),
            u32::try_from(capacity).unwrap_or(u32::MAX),
        ),
        duration: r.value(
            "stress.duration",
            table.and_then(|t| t.duration.as_ref()),
            fallback.clone(),
            secs(60),
        ),
        ramp: r.value(
            "stress.ramp",
            table.and_then(|t| t.ramp.as_ref()),
            fallback.clone(),
            secs(30),
        ),
        rate: r.value(
            "stress.rate",
            table.and_then(|t| t.rate.as_ref()),
            fallback,
            1000.0,
        ),
        transport: r.choice(
            "stress.transport",
            table.and_then(|t| t.transport.as_ref()),
            &[("tcp", Transport::Tcp), ("http", Transport::Http)],
            Transport::Tcp,
        ),
    }
}

fn resolve_kubernetes(
    r: &mut Resolver,
    raw: &RawClusterFile,
    cluster_name: &str,
    image: &Image,
    version: &str,
    prometheus: &Prometheus,
) -> Kubernetes {
    if let Some(table) = &raw.kubernetes {
        r.spans.set("kubernetes", table.span());
    }
    let table = raw.kubernetes.as_ref().map(|t| t.get_ref());
    let fallback = raw.kubernetes.as_ref().map(|t| t.span());
    Kubernetes {
        written: table.is_some(),
        namespace: r.text(
            "kubernetes.namespace",
            table.and_then(|t| t.namespace.as_ref()),
            fallback.clone(),
            cluster_name.to_string(),
            &grammar::DNS_LABEL,
        ),
        image: r.text(
            "kubernetes.image",
            table.and_then(|t| t.image.as_ref()),
            fallback.clone(),
            format!("{}:{version}", image.repository),
            &grammar::IMAGE_REFERENCE_GRAMMAR,
        ),
        prometheus: r.value(
            "kubernetes.prometheus",
            table.and_then(|t| t.prometheus.as_ref()),
            fallback,
            prometheus.enabled,
        ),
        service_type: r.choice(
            "kubernetes.service_type",
            table.and_then(|t| t.service_type.as_ref()),
            &[
                ("ClusterIP", ServiceType::ClusterIP),
                ("LoadBalancer", ServiceType::LoadBalancer),
                ("NodePort", ServiceType::NodePort),
            ],
            ServiceType::ClusterIP,
        ),
    }
}

/// The names the images get under `[swarm] registry` must still be image names.
fn check_pushed_names(r: &mut Resolver, swarm: &Swarm, image: &Image, prometheus: &Prometheus) {
    for local in [&image.repository, &prometheus.image] {
        let Some(pushed) = swarm.pushed_as(local) else {
            continue;
        };
        let name = pushed
            .rsplit_once(':')
            .map_or(pushed.as_str(), |(name, _)| name);
        if name.len() > grammar::IMAGE_REFERENCE_MAX {
            let span = r.spans.get("swarm.registry");
            r.problem(
                problems::swarm_registry_name_too_long(name, grammar::IMAGE_REFERENCE_MAX),
                span,
            );
        }
    }
}

fn resolve_swarm(r: &mut Resolver, raw: &RawClusterFile) -> Swarm {
    let defaults = Swarm::default();
    let table = raw.swarm.as_ref().map(|t| t.get_ref());
    let update = table.and_then(|t| t.update.as_ref()).map(|t| t.get_ref());
    let placement = table
        .and_then(|t| t.placement.as_ref())
        .map(|t| t.get_ref());
    let publish_mode = r.choice(
        "swarm.publish_mode",
        table.and_then(|t| t.publish_mode.as_ref()),
        &[
            ("host", PublishMode::Host),
            ("ingress", PublishMode::Ingress),
        ],
        defaults.publish_mode,
    );
    let order = r.choice(
        "swarm.update.order",
        update.and_then(|t| t.order.as_ref()),
        &[
            ("stop-first", UpdateOrder::StopFirst),
            ("start-first", UpdateOrder::StartFirst),
        ],
        defaults.update.order,
    );
    if order == UpdateOrder::StartFirst && publish_mode == PublishMode::Host {
        let span = r.spans.get("swarm.update.order");
        r.problem(problems::start_first_on_host_ports(), span);
    }
    let parallelism = r.value(
        "swarm.update.parallelism",
        update.and_then(|t| t.parallelism.as_ref()),
        None,
        defaults.update.parallelism,
    );
    if parallelism == 0 {
        let span = r.spans.get("swarm.update.parallelism");
        r.problem(
            problems::out_of_range("swarm.update.parallelism", "0", "1 or more"),
            span,
        );
    }
    let failure_action = r.choice(
        "swarm.update.failure_action",
        update.and_then(|t| t.failure_action.as_ref()),
        &[
            ("rollback", FailureAction::Rollback),
            ("pause", FailureAction::Pause),
            ("continue", FailureAction::Continue),
        ],
        defaults.update.failure_action,
    );
    let monitor = r.value(
        "swarm.update.monitor",
        update.and_then(|t| t.monitor.as_ref()),
        None,
        defaults.update.monitor,
    );
    let mut constraints = Vec::new();
    for (i, constraint) in placement
        .map(|p| p.constraints.as_slice())
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("swarm.placement.constraints.{i}");
        let text = r.text(
            &key,
            Some(constraint),
            None,
            String::new(),
            &grammar::SWARM_CONSTRAINT,
        );
        if grammar::SWARM_CONSTRAINT.accepts(&text) {
            constraints.push(text);
        }
    }
    let spread = r.optional_text(
        "swarm.placement.spread",
        placement.and_then(|p| p.spread.as_ref()),
        &grammar::SWARM_SPREAD,
    );
    let registry = r.optional_text(
        "swarm.registry",
        table.and_then(|t| t.registry.as_ref()),
        &grammar::SWARM_REGISTRY,
    );
    Swarm {
        registry,
        update: SwarmUpdate {
            parallelism: parallelism.max(1),
            order,
            failure_action,
            monitor,
        },
        placement: SwarmPlacement {
            constraints,
            spread,
        },
        publish_mode,
    }
}
