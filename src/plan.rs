//! The planner: a pure function from the desired resources (derived from the cluster file) and the
//! observed ones (read from the runtime) to the changes that make them agree. Nothing here talks
//! to Docker or starts a process.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::config::model::Role;

/// What kind of thing a resource is; also the order `apply` works in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// A container image.
    Image,
    /// The cluster network.
    Network,
    /// A named volume.
    Volume,
    /// The coordinator node.
    Coordinator,
    /// A worker node.
    Worker,
    /// Prometheus.
    Prometheus,
}

impl ResourceKind {
    /// The kind of a node with `role`.
    pub fn of_role(role: Role) -> Self {
        match role {
            Role::Coordinator => ResourceKind::Coordinator,
            Role::Worker => ResourceKind::Worker,
        }
    }

    /// The kind of a cluster container or process from its role label: a node's role, or none
    /// (Prometheus).
    pub fn of_role_label(label: Option<&str>) -> Self {
        label
            .and_then(Role::from_name)
            .map_or(ResourceKind::Prometheus, ResourceKind::of_role)
    }

    /// The role label a resource of this kind carries (`prometheus` for Prometheus).
    pub fn role_label(self) -> &'static str {
        match self {
            ResourceKind::Coordinator => Role::Coordinator.as_str(),
            ResourceKind::Worker => Role::Worker.as_str(),
            _ => crate::deploy_spec::PROMETHEUS_NAME,
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ResourceKind::Image => "image",
            ResourceKind::Network => "network",
            ResourceKind::Volume => "volume",
            ResourceKind::Coordinator => "coordinator",
            ResourceKind::Worker => "worker",
            ResourceKind::Prometheus => "prometheus",
        };
        f.write_str(name)
    }
}

/// A resource as the cluster file wants it: its identity and a hash of its whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Desired {
    /// Kind.
    pub kind: ResourceKind,
    /// Name in the runtime (container, network, volume or image name).
    pub name: String,
    /// Hash of the configuration (the `erlmcp.config-hash` label).
    pub config_hash: String,
}

/// A resource as the runtime has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Observed {
    /// Kind.
    pub kind: ResourceKind,
    /// Name in the runtime.
    pub name: String,
    /// Its `erlmcp.config-hash` label, if it has one.
    pub config_hash: Option<String>,
    /// For nodes and Prometheus: running and not unhealthy. Always true for other kinds.
    pub healthy: bool,
}

/// What `apply` will do to one resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Change {
    /// Missing: create it.
    Create,
    /// Present but different or broken: replace it.
    Recreate {
        /// Why.
        reason: String,
    },
    /// Present but no longer in the cluster file: remove it.
    Remove,
    /// Present and as wanted.
    Unchanged,
}

/// One resource and its change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Kind.
    pub kind: ResourceKind,
    /// Name.
    pub name: String,
    /// The change.
    #[serde(flatten)]
    pub change: Change,
    /// The configuration hash the resource will have after the step (none for removals).
    pub config_hash: Option<String>,
}

/// Every step, in the order `apply` carries them out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Cluster name.
    pub cluster: String,
    /// Runtime the plan is for.
    pub runtime: String,
    /// The steps.
    pub steps: Vec<Step>,
}

impl Plan {
    /// True when any step changes something.
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(|s| s.change != Change::Unchanged)
    }

    /// Steps of one kind.
    pub fn of_kind(&self, kind: ResourceKind) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(move |s| s.kind == kind)
    }

    /// Counts per change, for the summary line.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for step in &self.steps {
            let key = match step.change {
                Change::Create => "create",
                Change::Recreate { .. } => "recreate",
                Change::Remove => "remove",
                Change::Unchanged => "unchanged",
            };
            *counts.entry(key).or_insert(0) += 1;
        }
        counts
    }

    /// The plan for people, one line per resource and a summary.
    pub fn to_text(&self) -> String {
        let mut out = format!("plan for cluster {} on {}:\n", self.cluster, self.runtime);
        for step in &self.steps {
            let (mark, what) = match &step.change {
                Change::Create => ("+", "create".to_string()),
                Change::Recreate { reason } => ("~", format!("recreate ({reason})")),
                Change::Remove => ("-", "remove".to_string()),
                Change::Unchanged => ("=", "unchanged".to_string()),
            };
            out.push_str(&format!(
                "  {mark} {:<12} {:<32} {what}\n",
                step.kind.to_string(),
                step.name
            ));
        }
        let counts = self.counts();
        let summary: Vec<String> = ["create", "recreate", "remove", "unchanged"]
            .iter()
            .map(|k| format!("{} to {k}", counts.get(k).copied().unwrap_or(0)))
            .collect();
        out.push_str(&format!("{}\n", summary.join(", ")));
        if !self.has_changes() {
            out.push_str("no changes: the cluster is as the file describes\n");
        }
        out
    }
}

/// Compares desired with observed. Resources are matched by kind and name; a node or Prometheus
/// whose role changed is matched by name alone, so a worker promoted to coordinator is recreated.
pub fn plan(cluster: &str, runtime: &str, desired: &[Desired], observed: &[Observed]) -> Plan {
    let is_container = |k: ResourceKind| {
        matches!(
            k,
            ResourceKind::Coordinator | ResourceKind::Worker | ResourceKind::Prometheus
        )
    };
    let same = |d: &Desired, o: &Observed| {
        d.name == o.name && (d.kind == o.kind || (is_container(d.kind) && is_container(o.kind)))
    };
    let mut steps = Vec::new();
    for want in desired {
        let change = match observed.iter().find(|o| same(want, o)) {
            None => Change::Create,
            // Images are named by their content hash: present means identical.
            Some(_) if want.kind == ResourceKind::Image => Change::Unchanged,
            Some(have) if have.config_hash.as_deref() != Some(want.config_hash.as_str()) => {
                Change::Recreate {
                    reason: "configuration changed".into(),
                }
            }
            Some(have) if !have.healthy => Change::Recreate {
                reason: "not running or unhealthy".into(),
            },
            Some(_) => Change::Unchanged,
        };
        steps.push(Step {
            kind: want.kind,
            name: want.name.clone(),
            change,
            config_hash: Some(want.config_hash.clone()),
        });
    }
    for have in observed {
        // Images are never removed: older ones may still be in use elsewhere or be rolled back to.
        if have.kind != ResourceKind::Image && !desired.iter().any(|d| same(d, have)) {
            steps.push(Step {
                kind: have.kind,
                name: have.name.clone(),
                change: Change::Remove,
                config_hash: None,
            });
        }
    }
    steps.sort_by(|a, b| {
        a.kind
            .cmp(&b.kind)
            .then_with(|| natural_key(&a.name).cmp(&natural_key(&b.name)))
    });
    Plan {
        cluster: cluster.to_string(),
        runtime: runtime.to_string(),
        steps,
    }
}

/// Sorts `node10` after `node9`.
fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_string(), number.parse().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResourceKind::*;

    fn want(kind: ResourceKind, name: &str, hash: &str) -> Desired {
        Desired {
            kind,
            name: name.into(),
            config_hash: hash.into(),
        }
    }

    fn have(kind: ResourceKind, name: &str, hash: &str, healthy: bool) -> Observed {
        Observed {
            kind,
            name: name.into(),
            config_hash: Some(hash.into()),
            healthy,
        }
    }

    fn changes(plan: &Plan) -> Vec<(String, &'static str)> {
        plan.steps
            .iter()
            .map(|s| {
                let change = match s.change {
                    Change::Create => "create",
                    Change::Recreate { .. } => "recreate",
                    Change::Remove => "remove",
                    Change::Unchanged => "unchanged",
                };
                (s.name.clone(), change)
            })
            .collect()
    }

    #[test]
    fn empty_runtime_creates_everything_in_order() {
        let desired = [
            want(Prometheus, "c-prometheus", "p"),
            want(Worker, "c-node2", "w"),
            want(Coordinator, "c-node1", "c"),
            want(Network, "c-net", "n"),
            want(Image, "img:1-abc", "abc"),
        ];
        let plan = plan("c", "docker", &desired, &[]);
        assert_eq!(
            changes(&plan),
            [
                ("img:1-abc".into(), "create"),
                ("c-net".into(), "create"),
                ("c-node1".into(), "create"),
                ("c-node2".into(), "create"),
                ("c-prometheus".into(), "create"),
            ]
        );
        assert!(plan.has_changes());
    }

    #[test]
    fn same_hashes_mean_no_changes() {
        let desired = [want(Network, "n", "1"), want(Coordinator, "c-node1", "h")];
        let observed = [
            have(Network, "n", "1", true),
            have(Coordinator, "c-node1", "h", true),
        ];
        let plan = plan("c", "docker", &desired, &observed);
        assert!(!plan.has_changes());
        assert!(plan.to_text().contains("no changes"));
    }

    #[test]
    fn one_changed_node_is_the_only_recreate() {
        let desired = [
            want(Coordinator, "c-node1", "a"),
            want(Worker, "c-node2", "b2"),
            want(Worker, "c-node3", "c"),
        ];
        let observed = [
            have(Coordinator, "c-node1", "a", true),
            have(Worker, "c-node2", "b1", true),
            have(Worker, "c-node3", "c", true),
        ];
        let plan = plan("c", "docker", &desired, &observed);
        assert_eq!(
            changes(&plan),
            [
                ("c-node1".into(), "unchanged"),
                ("c-node2".into(), "recreate"),
                ("c-node3".into(), "unchanged"),
            ]
        );
    }

    #[test]
    fn orphans_are_removed_and_unhealthy_nodes_recreated() {
        let desired = [want(Coordinator, "c-node1", "a")];
        let observed = [
            have(Coordinator, "c-node1", "a", false),
            have(Worker, "c-node2", "b", true),
        ];
        let plan = plan("c", "docker", &desired, &observed);
        assert_eq!(
            changes(&plan),
            [("c-node1".into(), "recreate"), ("c-node2".into(), "remove")]
        );
    }

    #[test]
    fn present_images_are_kept_and_old_ones_never_removed() {
        let desired = [want(Image, "img:1-new", "new")];
        let observed = [
            have(Image, "img:1-new", "new", true),
            have(Image, "img:1-old", "old", true),
        ];
        let plan = plan("c", "docker", &desired, &observed);
        assert_eq!(changes(&plan), [("img:1-new".into(), "unchanged")]);
    }

    #[test]
    fn ten_nodes_sort_naturally() {
        let desired: Vec<_> = (1..=10)
            .map(|i| want(Worker, &format!("c-node{i}"), "h"))
            .collect();
        let plan = plan("c", "native", &desired, &[]);
        assert_eq!(plan.steps.last().unwrap().name, "c-node10");
    }

    #[test]
    fn json_shape_is_stable() {
        let plan = plan(
            "c",
            "docker",
            &[want(Worker, "c-node2", "h")],
            &[have(Worker, "c-node2", "x", true)],
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "cluster": "c",
                "runtime": "docker",
                "steps": [{"kind": "worker", "name": "c-node2", "action": "recreate",
                           "reason": "configuration changed", "config_hash": "h"}]
            })
        );
    }
}
