//! Semantic checks of a resolved cluster: what parses but cannot work (port clashes, capacity,
//! coordinators, resources, open-file limits, the range of every number and duration) and what
//! works but exposes more than it seems to (ports published beyond loopback).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::model::{Cluster, MAX_NODES, NOFILE_HEADROOM, Role, RuntimeKind};
use crate::config::problems;
use crate::config::units::{ByteSize, HumanDuration};
use crate::config::{self, SpanIndex};
use crate::diagnostic::{Diagnostic, Severity};

/// The smallest memory limit Docker accepts for a container (it refuses less than 6 MiB).
pub const MIN_CONTAINER_MEMORY: ByteSize = ByteSize(6 << 20);
/// Most CPU cores one limit may name.
pub const MAX_CPUS: f64 = 1024.0;
/// Most connections one node may hold (ten times what a 2-core machine held in this project's
/// measurements; a typo beyond it is caught here, not by an engine later).
pub const MAX_CONNECTIONS: u32 = 10_000_000;
/// The kernel's ceiling for `fs.nr_open`, and so for any open-file limit.
pub const MAX_NOFILE: u64 = 1_073_741_816;
/// Most echo requests per second a stress profile may ask for.
pub const MAX_STRESS_RATE: f64 = 10_000_000.0;

/// Everything `validate` found in one file: the cluster as far as it resolved, and every
/// finding (syntax, shape, resolution and semantic), errors and warnings, in file order.
#[derive(Debug)]
pub struct Validated {
    /// The resolved cluster, when the file parsed and had every required key.
    pub cluster: Option<(Cluster, SpanIndex)>,
    /// Every finding, in file order, with findings repeated for many nodes reported once.
    pub findings: Vec<Diagnostic>,
}

impl Validated {
    /// The cluster, when it resolved and no finding is an error.
    pub fn valid_cluster(&self) -> Option<&Cluster> {
        match &self.cluster {
            Some((cluster, _)) if !has_errors(&self.findings) => Some(cluster),
            _ => None,
        }
    }
}

/// Parses, resolves and checks cluster-file text: every finding in one run.
pub fn file(path: &str, text: &str) -> Validated {
    let parsed = config::parse_all(path, text);
    let mut findings = parsed.problems;
    if let Some((cluster, spans)) = &parsed.cluster {
        findings.extend(check(cluster, spans));
    }
    Validated {
        cluster: parsed.cluster,
        findings: collapse_repeats(findings),
    }
}

/// Every semantic finding, errors and warnings, in file order where they have a place.
pub fn check(cluster: &Cluster, spans: &SpanIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    check_exposure(cluster, spans, &mut found);
    // A file that names no usable node already has its error; node checks would only add noise.
    if !cluster.nodes.is_empty() {
        check_coordinator(cluster, spans, &mut found);
        check_ports(cluster, spans, &mut found);
        check_capacity(cluster, spans, &mut found);
        check_nofile(cluster, spans, &mut found);
        check_resources(cluster, spans, &mut found);
        check_node_ranges(cluster, spans, &mut found);
    }
    check_ranges(cluster, spans, &mut found);
    check_kubernetes(cluster, spans, &mut found);
    collapse_repeats(found)
}

/// What `generated/k8s/` cannot express, when the file asks for Kubernetes (`[kubernetes]`):
/// workers of different settings (one pod template) and StatefulSet names past their limit.
fn check_kubernetes(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    use crate::render::kubernetes::{self, Names, STATEFULSET_NAME_MAX};
    if !cluster.kubernetes.written {
        return;
    }
    let unlike = kubernetes::workers_unlike_the_first(cluster);
    if let Some(first_unlike) = unlike.first() {
        let first = cluster
            .nodes
            .iter()
            .find(|n| n.role == Role::Worker)
            .map_or("", |n| n.name.as_str());
        let span = spans
            .get(&format!("node.{first_unlike}"))
            .or(spans.get("kubernetes"));
        found.push(problems::kubernetes_uneven_workers(&unlike, first).at(span));
    }
    let names = Names::of(cluster);
    let longest = names.coordinator_set;
    if longest.len() > STATEFULSET_NAME_MAX {
        found.push(
            problems::kubernetes_name_too_long(&cluster.name, &longest, STATEFULSET_NAME_MAX)
                .at(spans.get("cluster.name")),
        );
    }
}

/// One finding per place: a `[defaults]` value wrong for every node is reported once, with the
/// number of other nodes it also applies to; then sorted by place.
fn collapse_repeats(found: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen: Vec<(Diagnostic, usize)> = Vec::new();
    for diagnostic in found {
        let repeat = if diagnostic.span.is_some() {
            seen.iter_mut().find(|(first, _)| {
                first.code == diagnostic.code
                    && first.span == diagnostic.span
                    && first.severity == diagnostic.severity
            })
        } else {
            None
        };
        match repeat {
            Some((_, others)) => *others += 1,
            None => seen.push((diagnostic, 0)),
        }
    }
    let mut out: Vec<Diagnostic> = seen
        .into_iter()
        .map(|(d, others)| {
            if others == 0 {
                d
            } else {
                problems::same_for_other_nodes(d, others)
            }
        })
        .collect();
    out.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    out
}

fn check_exposure(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    let address = cluster.runtime.publish_address;
    // Native nodes bind this address too, so the warning holds for every runtime.
    if !address.is_loopback() {
        found.push(
            problems::published_beyond_loopback(&address.to_string())
                .at(spans.get("runtime.publish_address")),
        );
    }
}

/// True when any finding is an error.
pub fn has_errors(found: &[Diagnostic]) -> bool {
    found.iter().any(|d| d.severity == Severity::Error)
}

fn check_coordinator(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    let coordinators: Vec<_> = cluster
        .nodes
        .iter()
        .filter(|n| n.role == Role::Coordinator)
        .collect();
    match coordinators.len() {
        1 => {}
        0 => found.push(problems::coordinator_count(0).at(spans.get("nodes"))),
        n => {
            let second = coordinators[1];
            found.push(
                problems::coordinator_count(n).at(spans.get(&format!("node.{}.role", second.name))),
            );
        }
    }
}

fn check_ports(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    // (port, who, span key) in the order a reader meets them.
    let mut published: Vec<(u16, String, String)> = Vec::new();
    for node in &cluster.nodes {
        published.push((
            node.api_port,
            format!("{}'s API port", node.name),
            format!("node.{}.api_port", node.name),
        ));
        published.push((
            node.listener_port,
            format!("{}'s listener port", node.name),
            format!("node.{}.listener_port", node.name),
        ));
    }
    if cluster.prometheus.enabled {
        published.push((
            cluster.prometheus.port,
            "Prometheus".into(),
            "prometheus.port".into(),
        ));
    }
    let mut first_user: BTreeMap<u16, (&str, &str)> = BTreeMap::new();
    // Port 0 stands for a port that was already reported out of range.
    for (port, who, key) in published.iter().filter(|(port, _, _)| *port != 0) {
        match first_user.get(port) {
            Some((other, other_key)) => {
                let here = spans.get(key);
                let there = spans
                    .written(other_key)
                    .filter(|s| Some(s) != here.as_ref());
                found.push(
                    problems::port_clash(*port, who, other)
                        .at(here)
                        .also_at(there, format!("{other} is set here")),
                );
            }
            None => {
                first_user.insert(*port, (who, key));
            }
        }
    }
}

fn check_capacity(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    let capacity = cluster.capacity();
    let target = cluster.stress.connections;
    if capacity < u64::from(target) {
        let per_node = cluster.nodes.first().map_or(1, |n| n.connections);
        found.push(
            problems::capacity_short(capacity, target, per_node)
                .at(spans.get("stress.connections")),
        );
    }
}

fn check_nofile(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    for node in &cluster.nodes {
        if node.nofile < u64::from(node.connections) + NOFILE_HEADROOM {
            found.push(
                problems::nofile_too_low(
                    &node.name,
                    node.nofile,
                    node.connections,
                    NOFILE_HEADROOM,
                )
                .at(spans.get(&format!("node.{}.nofile", node.name))),
            );
        }
    }
}

fn check_resources(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    for node in &cluster.nodes {
        if node.cpu_reservation > node.cpu_limit {
            found.push(
                problems::reservation_above_limit(&node.name, "CPU")
                    .at(spans.get(&format!("node.{}.cpu_reservation", node.name))),
            );
        }
        if node.memory_reservation > node.memory_limit {
            found.push(
                problems::reservation_above_limit(&node.name, "memory")
                    .at(spans.get(&format!("node.{}.memory_reservation", node.name))),
            );
        }
    }
    // Only a Colima VM has a size the file states; other hosts are judged by `validate --host`.
    let (Some(vm), RuntimeKind::Colima) = (&cluster.vm, cluster.runtime.kind) else {
        return;
    };
    let prometheus_cpu = if cluster.prometheus.enabled {
        cluster.prometheus.cpu_limit
    } else {
        0.0
    };
    let prometheus_memory = if cluster.prometheus.enabled {
        cluster.prometheus.memory_limit.0
    } else {
        0
    };
    let cpu_reserved: f64 = cluster.nodes.iter().map(|n| n.cpu_reservation).sum();
    let memory_reserved: u64 = cluster.nodes.iter().map(|n| n.memory_reservation.0).sum();
    let cpu_limits: f64 = cluster.nodes.iter().map(|n| n.cpu_limit).sum::<f64>() + prometheus_cpu;
    let memory_limits: u64 =
        cluster.nodes.iter().map(|n| n.memory_limit.0).sum::<u64>() + prometheus_memory;
    let cpus = f64::from(vm.cpus);
    if cpu_reserved > cpus {
        found.push(
            problems::reservation_exceeds(
                "CPU",
                &format!("{cpu_reserved} cores"),
                &format!("{cpus} cores"),
            )
            .at(spans.get("vm.cpus")),
        );
    } else if cpu_limits > cpus {
        found.push(
            problems::limits_overcommit(
                "CPU",
                &format!("{cpu_limits} cores"),
                &format!("{cpus} cores"),
            )
            .at(spans.get("vm.cpus")),
        );
    }
    if memory_reserved > vm.memory.0 {
        found.push(
            problems::reservation_exceeds(
                "memory",
                &ByteSize(memory_reserved).to_string(),
                &vm.memory.to_string(),
            )
            .at(spans.get("vm.memory")),
        );
    } else if memory_limits > vm.memory.0 {
        found.push(
            problems::limits_overcommit(
                "memory",
                &ByteSize(memory_limits).to_string(),
                &vm.memory.to_string(),
            )
            .at(spans.get("vm.memory")),
        );
    }
}

/// A duration outside `min..=max` (inclusive), as a finding at `key`.
fn duration_in(
    key: &str,
    value: HumanDuration,
    min: Duration,
    max: Duration,
    range: &str,
    spans: &SpanIndex,
    found: &mut Vec<Diagnostic>,
) {
    if value.0 < min || value.0 > max {
        found.push(problems::out_of_range(key, &value.to_string(), range).at(spans.get(key)));
    }
}

/// A CPU count that is not a finite number in `(0, MAX_CPUS]` (or `[0, …]` for reservations).
fn cpus_in(
    key: &str,
    value: f64,
    zero_allowed: bool,
    spans: &SpanIndex,
    found: &mut Vec<Diagnostic>,
) {
    let low_ok = if zero_allowed {
        value >= 0.0
    } else {
        value > 0.0
    };
    if !(value.is_finite() && low_ok && value <= MAX_CPUS) {
        let range = if zero_allowed {
            "finite, from 0 to 1024 cores"
        } else {
            "finite, above 0 and at most 1024 cores"
        };
        found.push(problems::out_of_range(key, &value.to_string(), range).at(spans.get(key)));
    }
}

fn memory_at_least_engine_minimum(
    key: &str,
    value: ByteSize,
    spans: &SpanIndex,
    found: &mut Vec<Diagnostic>,
) {
    if value < MIN_CONTAINER_MEMORY {
        found.push(
            problems::out_of_range(
                key,
                &value.to_string(),
                "at least 6MiB (Docker refuses a smaller container memory limit)",
            )
            .at(spans.get(key)),
        );
    }
}

fn check_node_ranges(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    let day = Duration::from_secs(86_400);
    for node in &cluster.nodes {
        let key = |field: &str| format!("node.{}.{field}", node.name);
        // Name the key where the user wrote it: `defaults.cpu_limit` for a value every node
        // takes from `[defaults]`, `node2.cpu_limit` for one in node2's own entry.
        let shown = |field: &str| {
            let from_defaults = spans
                .written(&key(field))
                .is_some_and(|value| spans.written(&format!("defaults.{field}")) == Some(value));
            if from_defaults {
                format!("defaults.{field}")
            } else {
                format!("{}.{field}", node.name)
            }
        };
        if node.connections == 0 || node.connections > MAX_CONNECTIONS {
            found.push(
                problems::out_of_range(
                    &shown("connections"),
                    &node.connections.to_string(),
                    "from 1 to 10000000",
                )
                .at(spans.get(&key("connections"))),
            );
        }
        if node.nofile > MAX_NOFILE {
            found.push(
                problems::out_of_range(
                    &shown("nofile"),
                    &node.nofile.to_string(),
                    "at most 1073741816 (the kernel's ceiling for fs.nr_open)",
                )
                .at(spans.get(&key("nofile"))),
            );
        }
        for (field, value, zero_allowed) in [
            ("cpu_limit", node.cpu_limit, false),
            ("cpu_reservation", node.cpu_reservation, true),
        ] {
            if !(value.is_finite()
                && (if zero_allowed {
                    value >= 0.0
                } else {
                    value > 0.0
                })
                && value <= MAX_CPUS)
            {
                let range = if zero_allowed {
                    "finite, from 0 to 1024 cores"
                } else {
                    "finite, above 0 and at most 1024 cores"
                };
                found.push(
                    problems::out_of_range(&shown(field), &value.to_string(), range)
                        .at(spans.get(&key(field))),
                );
            }
        }
        if node.memory_limit < MIN_CONTAINER_MEMORY {
            found.push(
                problems::out_of_range(
                    &shown("memory_limit"),
                    &node.memory_limit.to_string(),
                    "at least 6MiB (Docker refuses a smaller container memory limit)",
                )
                .at(spans.get(&key("memory_limit"))),
            );
        }
        if node.idle_timeout.0.is_zero() || node.idle_timeout.0 > 30 * day {
            found.push(
                problems::out_of_range(
                    &shown("idle_timeout"),
                    &node.idle_timeout.to_string(),
                    "above 0 and at most 30d (0 would close every session at once)",
                )
                .at(spans.get(&key("idle_timeout"))),
            );
        }
        let out_of_range = |d: HumanDuration| d.0.is_zero() || d.0 > 30 * day;
        // Unwritten, it is the idle timeout, whose own problem is reported above.
        let inherited = node.keep_alive_timeout == node.idle_timeout;
        if out_of_range(node.keep_alive_timeout) && !(inherited && out_of_range(node.idle_timeout))
        {
            found.push(
                problems::out_of_range(
                    &shown("keep_alive_timeout"),
                    &node.keep_alive_timeout.to_string(),
                    "above 0 and at most 30d (0 would close every HTTP connection after one response)",
                )
                .at(spans.get(&key("keep_alive_timeout"))),
            );
        }
    }
}

fn check_ranges(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
    let second = Duration::from_secs(1);
    let hour = Duration::from_secs(3600);
    let day = 24 * hour;
    let p99 = cluster.slo.p99.0;
    if p99.is_zero() || p99.as_secs() > 60 {
        found.push(
            problems::out_of_range(
                "slo.p99",
                &cluster.slo.p99.to_string(),
                "above 0 and at most 60s",
            )
            .at(spans.get("slo.p99")),
        );
    }
    let rate = cluster.slo.error_rate_percent;
    if !(rate > 0.0 && rate <= 100.0) {
        found.push(
            problems::out_of_range(
                "slo.error_rate_percent",
                &rate.to_string(),
                "above 0 and at most 100",
            )
            .at(spans.get("slo.error_rate_percent")),
        );
    }
    let stress_rate = cluster.stress.rate;
    if !(stress_rate > 0.0 && stress_rate <= MAX_STRESS_RATE) {
        found.push(
            problems::out_of_range(
                "stress.rate",
                &stress_rate.to_string(),
                "above 0 and at most 10000000 requests per second",
            )
            .at(spans.get("stress.rate")),
        );
    }
    // With no usable node the default (the nodes' capacity) is 0 for a reason already reported.
    if cluster.stress.connections == 0 && !cluster.nodes.is_empty() {
        found.push(
            problems::out_of_range("stress.connections", "0", "at least 1")
                .at(spans.get("stress.connections")),
        );
    }
    let stress = &cluster.stress;
    duration_in(
        "stress.duration",
        stress.duration,
        Duration::from_millis(1),
        day,
        "above 0 and at most 1d",
        spans,
        found,
    );
    duration_in(
        "stress.ramp",
        stress.ramp,
        Duration::ZERO,
        day,
        "at most 1d",
        spans,
        found,
    );
    let p = &cluster.prometheus;
    if p.enabled {
        for (key, value) in [
            ("prometheus.scrape_interval", p.scrape_interval),
            ("prometheus.node_scrape_interval", p.node_scrape_interval),
        ] {
            duration_in(
                key,
                value,
                second,
                hour,
                "from 1s to 1h (0 would scrape without pause)",
                spans,
                found,
            );
        }
        duration_in(
            "prometheus.retention",
            p.retention,
            hour,
            3650 * day,
            "from 1h to 3650d",
            spans,
            found,
        );
        cpus_in("prometheus.cpu_limit", p.cpu_limit, false, spans, found);
        memory_at_least_engine_minimum("prometheus.memory_limit", p.memory_limit, spans, found);
    }
    if let Some(vm) = &cluster.vm {
        if vm.cpus == 0 || f64::from(vm.cpus) > MAX_CPUS {
            found.push(
                problems::out_of_range("vm.cpus", &vm.cpus.to_string(), "from 1 to 1024")
                    .at(spans.get("vm.cpus")),
            );
        }
        if vm.memory < ByteSize(1 << 30) {
            found.push(
                problems::out_of_range("vm.memory", &vm.memory.to_string(), "at least 1GiB")
                    .at(spans.get("vm.memory")),
            );
        }
        if vm.disk < ByteSize(1 << 30) {
            found.push(
                problems::out_of_range("vm.disk", &vm.disk.to_string(), "at least 1GiB")
                    .at(spans.get("vm.disk")),
            );
        }
    }
    let logging = &cluster.logging;
    if logging.max_size < ByteSize(1 << 10) {
        found.push(
            problems::out_of_range(
                "logging.max_size",
                &logging.max_size.to_string(),
                "at least 1KiB",
            )
            .at(spans.get("logging.max_size")),
        );
    }
    if logging.max_files == 0 || logging.max_files > 100 {
        found.push(
            problems::out_of_range(
                "logging.max_files",
                &logging.max_files.to_string(),
                "from 1 to 100",
            )
            .at(spans.get("logging.max_files")),
        );
    }
    debug_assert!(cluster.nodes.len() <= MAX_NODES as usize);
}
