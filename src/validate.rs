//! Semantic checks of a resolved cluster: what parses but cannot work (port clashes, capacity,
//! coordinators, resources, open-file limits, SLO ranges).

use std::collections::BTreeMap;

use crate::config::SpanIndex;
use crate::config::model::{Cluster, NOFILE_HEADROOM, Role, RuntimeKind};
use crate::config::problems;
use crate::config::units::ByteSize;
use crate::diagnostic::{Diagnostic, Severity};

/// Every semantic finding, errors and warnings, in file order where they have a place.
pub fn check(cluster: &Cluster, spans: &SpanIndex) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    check_coordinator(cluster, spans, &mut found);
    check_ports(cluster, spans, &mut found);
    check_capacity(cluster, spans, &mut found);
    check_nofile(cluster, spans, &mut found);
    check_resources(cluster, spans, &mut found);
    check_ranges(cluster, spans, &mut found);
    found.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    found
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
    let mut first_user: BTreeMap<u16, &str> = BTreeMap::new();
    for (port, who, key) in &published {
        match first_user.get(port) {
            Some(other) => found.push(problems::port_clash(*port, who, other).at(spans.get(key))),
            None => {
                first_user.insert(*port, who);
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

fn check_ranges(cluster: &Cluster, spans: &SpanIndex, found: &mut Vec<Diagnostic>) {
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
    if !(stress_rate > 0.0 && stress_rate.is_finite()) {
        found.push(
            problems::out_of_range("stress.rate", &stress_rate.to_string(), "above 0")
                .at(spans.get("stress.rate")),
        );
    }
    if cluster.stress.connections == 0 {
        found.push(
            problems::out_of_range("stress.connections", "0", "at least 1")
                .at(spans.get("stress.connections")),
        );
    }
    for node in &cluster.nodes {
        if node.connections == 0 {
            found.push(
                problems::out_of_range(&format!("{}.connections", node.name), "0", "at least 1")
                    .at(spans.get(&format!("node.{}.connections", node.name))),
            );
        }
        if node.cpu_limit.is_nan() || node.cpu_limit <= 0.0 {
            found.push(
                problems::out_of_range(
                    &format!("{}.cpu_limit", node.name),
                    &node.cpu_limit.to_string(),
                    "above 0",
                )
                .at(spans.get(&format!("node.{}.cpu_limit", node.name))),
            );
        }
    }
}
