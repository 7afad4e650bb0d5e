//! The wording of every problem a cluster file can have: one constructor per class, so messages,
//! labels and hints live in one place.

use super::grammar::{Grammar, shown};
use crate::diagnostic::Diagnostic;

/// The TOML did not parse or a value had the wrong type or an unknown key.
pub fn syntax(message: &str) -> Diagnostic {
    let message = message.trim().replace('\n', "; ");
    let code = if message.contains("is not a duration") || message.contains("is not a size") {
        "bad-unit"
    } else {
        "syntax"
    };
    let hint = if message.contains("unknown field") {
        "remove the key or fix its spelling; README.md lists every key under 'Cluster file reference'"
    } else if message.contains("missing field") {
        "add the key; README.md lists the required keys under 'Cluster file reference'"
    } else if code == "bad-unit" {
        "durations look like `30s`, `1m30s` or `1.5s`, sizes like `512MiB` or `4GiB`"
    } else {
        "fix the TOML at the caret; README.md has a complete example"
    };
    Diagnostic::error(code, message).hint(hint)
}

/// A text value outside its allowed set.
pub fn unknown_value(key: &str, value: &str, allowed: &[&str]) -> Diagnostic {
    Diagnostic::error(
        "unknown-value",
        format!("`{key}` cannot be `{}`", shown(value)),
    )
    .label(format!("expected one of: {}", allowed.join(", ")))
    .hint(format!("write one of {}", allowed.join(", ")))
}

/// `[nodes] count = 0`.
pub fn no_nodes() -> Diagnostic {
    Diagnostic::error("no-nodes", "a cluster needs at least one node")
        .hint("set `count` to 1 or more")
}

/// A `[[node]]` entry without `name`.
pub fn override_without_name() -> Diagnostic {
    Diagnostic::error(
        "missing-name",
        "this `[[node]]` entry does not say which node it is for",
    )
    .hint("add `name = \"node1\"` (or whichever node it overrides)")
}

/// A `[[node]]` entry naming a node the count does not produce.
pub fn unknown_node(name: &str, prefix: &str, count: u32) -> Diagnostic {
    Diagnostic::error(
        "unknown-node",
        format!("there is no node `{}`", shown(name)),
    )
    .label(format!("nodes are {prefix}1 … {prefix}{count}"))
    .hint("use one of those names, or raise `[nodes] count` to add nodes")
}

/// Two `[[node]]` entries for the same node.
pub fn duplicate_node(name: &str) -> Diagnostic {
    Diagnostic::error(
        "duplicate-node",
        format!("node `{}` is overridden twice", shown(name)),
    )
    .label("second entry for this node")
    .hint("merge the two `[[node]]` entries into one")
}

/// A per-node key (name, role, ports) written in `[defaults]`.
pub fn misplaced_in_defaults(key: &str) -> Diagnostic {
    Diagnostic::error("misplaced-key", format!("`{key}` cannot be a default for every node"))
        .hint(format!(
            "move `{key}` into a `[[node]]` entry; ports are set for all nodes by `[nodes] api_port`/`listener_port`"
        ))
}

/// A port outside 1..=65535 (possibly after adding the node index).
pub fn bad_port(what: &str, port: u64) -> Diagnostic {
    Diagnostic::error(
        "bad-port",
        format!("{what} would be {port}, outside 1–65535"),
    )
    .hint("choose a lower base port or fewer nodes")
}

/// An address that does not parse.
pub fn bad_address(text: &str) -> Diagnostic {
    Diagnostic::error(
        "bad-address",
        format!("`{}` is not an IP address", shown(text)),
    )
    .hint("write an address such as `127.0.0.1` (local only) or `0.0.0.0` (every interface)")
}

/// The Colima runtime without a `[vm]` table.
pub fn colima_without_vm() -> Diagnostic {
    Diagnostic::error("missing-vm", "the colima runtime needs a `[vm]` table")
        .hint("add `[vm]` with `cpus`, `memory` and `disk`, or choose `kind = \"docker\"`")
}

/// A sysctl name that is not one.
pub fn bad_sysctl_name(name: &str) -> Diagnostic {
    Diagnostic::error(
        "bad-sysctl",
        format!("`{}` is not a sysctl name", shown(name)),
    )
    .label("expected a sysctl name")
    .hint(format!("write {}", super::grammar::SYSCTL_NAME.rule))
}

/// A sysctl value that is neither a number nor a string.
pub fn bad_sysctl_value(name: &str) -> Diagnostic {
    Diagnostic::error(
        "bad-sysctl",
        format!("`{name}` needs a number or a string value"),
    )
    .hint("write `65535` or `\"1024 65535\"`")
}

/// A host-wide sysctl listed under `[tuning.container]`.
pub fn sysctl_not_namespaced(name: &str) -> Diagnostic {
    Diagnostic::error(
        "not-namespaced",
        format!("`{name}` cannot be set per container"),
    )
    .hint("containers may only set network-namespaced `net.*` sysctls; move it to `[tuning.host]`")
}

/// Not exactly one coordinator.
pub fn coordinator_count(count: usize) -> Diagnostic {
    if count == 0 {
        Diagnostic::error("coordinator", "no node is the coordinator")
            .hint("add `[[node]]` with `name = \"node1\"` and `role = \"coordinator\"`")
    } else {
        Diagnostic::error(
            "coordinator",
            format!("{count} nodes are coordinators; exactly one must be"),
        )
        .label("another coordinator")
        .hint("keep `role = \"coordinator\"` on one node and make the others workers")
    }
}

/// Two things publish the same host port.
pub fn port_clash(port: u16, this: &str, other: &str) -> Diagnostic {
    Diagnostic::error("port-clash", format!("host port {port} is published twice"))
        .label(format!("{this} here, and {other} already uses it"))
        .hint("give every published port its own number (node ports count up from `[nodes] api_port` and `listener_port`)")
}

/// The nodes together hold fewer connections than the stress profile wants.
pub fn capacity_short(capacity: u64, target: u32, per_node: u32) -> Diagnostic {
    let nodes_needed = u64::from(target).div_ceil(u64::from(per_node.max(1)));
    Diagnostic::error(
        "capacity",
        format!("the nodes hold {capacity} connections in all, fewer than the {target} the stress profile asks for"),
    )
    .hint(format!(
        "raise `connections` per node, or use {nodes_needed} nodes (`[nodes] count = {nodes_needed}`), or lower `[stress] connections`"
    ))
}

/// A node's open-file limit is below its connections plus headroom.
pub fn nofile_too_low(node: &str, nofile: u64, connections: u32, headroom: u64) -> Diagnostic {
    let needed = u64::from(connections) + headroom;
    Diagnostic::error(
        "nofile",
        format!("{node} may open {nofile} files but its {connections} connections need at least {needed}"),
    )
    .label(format!("one descriptor per connection plus {headroom} for the node itself"))
    .hint(format!("set `nofile` to {needed} or more, or lower `connections`"))
}

/// Reservations that do not fit the VM.
pub fn reservation_exceeds(what: &str, total: &str, available: &str) -> Diagnostic {
    Diagnostic::error(
        "reservation",
        format!("the containers reserve {total} of {what} but the VM has {available}"),
    )
    .hint("lower the reservations or give the VM more (`[vm]`)")
}

/// Limits that overcommit the VM (allowed: containers rarely peak together).
pub fn limits_overcommit(what: &str, total: &str, available: &str) -> Diagnostic {
    Diagnostic::error(
        "overcommit",
        format!("the containers' {what} limits add up to {total}, more than the VM's {available}"),
    )
    .warning()
    .hint("fine while the nodes do not all peak at once; raise `[vm]` for headroom")
}

/// A reservation above its own limit.
pub fn reservation_above_limit(node: &str, what: &str) -> Diagnostic {
    Diagnostic::error(
        "reservation",
        format!("{node} reserves more {what} than its limit allows"),
    )
    .hint(format!(
        "make the {what} reservation at most the {what} limit"
    ))
}

/// An SLO or stress value out of range.
pub fn out_of_range(key: &str, value: &str, range: &str) -> Diagnostic {
    Diagnostic::error("range", format!("`{key}` = {value} is out of range"))
        .label(format!("must be {range}"))
        .hint(format!("choose a value that is {range}"))
}

/// A text value outside its field's grammar.
pub fn bad_grammar(key: &str, value: &str, grammar: &Grammar) -> Diagnostic {
    Diagnostic::error(
        "grammar",
        format!("`{key}` = \"{}\" is not {}", shown(value), grammar.name),
    )
    .label(format!("expected {}", grammar.name))
    .hint(format!("write {}", grammar.rule))
}

/// More nodes than one cluster file may ask for.
pub fn too_many_nodes(count: u64, max: u32) -> Diagnostic {
    Diagnostic::error(
        "range",
        format!("`nodes.count` = {count} is more nodes than one cluster may have"),
    )
    .label(format!("must be from 1 to {max}"))
    .hint(format!(
        "a cluster has at most {max} nodes; split the load over several cluster files"
    ))
}

/// Ports published on an address other people can reach.
pub fn published_beyond_loopback(address: &str) -> Diagnostic {
    Diagnostic::error(
        "exposed",
        format!("every port is published on {address}, reachable from the network"),
    )
    .warning()
    .label("not a loopback address")
    .hint("each node's MCP listener and HTTP API (neither authenticates), /metrics and Prometheus are then open to anyone who reaches this host; use `127.0.0.1` unless a firewall stands in front")
}

/// The same finding for several nodes, reported once.
pub fn same_for_other_nodes(diagnostic: Diagnostic, others: usize) -> Diagnostic {
    let note = format!(
        "the same for {others} other node{}",
        if others == 1 { "" } else { "s" }
    );
    let label = match &diagnostic.label {
        Some(label) => format!("{label}; {note}"),
        None => note,
    };
    diagnostic.label(label)
}

/// A key (or, with no table, a table) the file format does not have.
pub fn unknown_key(
    name: &str,
    table: Option<&str>,
    suggestion: Option<&str>,
    known: &[&str],
) -> Diagnostic {
    let (message, list) = match table {
        Some(table) => (
            format!("unknown key `{}` in `[{table}]`", shown(name)),
            format!("`[{table}]` has {}", known.join(", ")),
        ),
        None => (
            format!("unknown table `[{}]`", shown(name)),
            format!("the tables are {}", known.join(", ")),
        ),
    };
    let diagnostic = Diagnostic::error("unknown-key", message);
    let diagnostic = match suggestion {
        Some(suggestion) => diagnostic.label(format!("did you mean `{suggestion}`?")),
        None => diagnostic.label("not a key of the cluster file"),
    };
    diagnostic.hint(format!(
        "{list}; README.md lists every key under 'Cluster file reference'"
    ))
}

/// A value of the wrong type, in the file's terms.
pub fn wrong_type(key: &str, expected: &str, found: &str) -> Diagnostic {
    Diagnostic::error(
        "wrong-type",
        format!("`{key}` must be {expected}, not {found}"),
    )
    .label(format!("expected {expected}"))
    .hint("README.md shows each key with an example value under 'Cluster file reference'")
}

/// A required table is absent.
pub fn missing_table(name: &str) -> Diagnostic {
    Diagnostic::error("missing-key", format!("the file has no `[{name}]` table"))
        .hint("add it; README.md lists the required keys under 'Cluster file reference'")
}

/// A required key is absent from its table.
pub fn missing_key(table: &str, key: &str) -> Diagnostic {
    Diagnostic::error("missing-key", format!("`[{table}]` has no `{key}`"))
        .label(format!("`{key}` is required here"))
        .hint(format!(
            "add `{key}`; README.md lists the required keys under 'Cluster file reference'"
        ))
}

/// A key or table written twice (TOML forbids it).
pub fn duplicate_key(key: &str) -> Diagnostic {
    Diagnostic::error(
        "duplicate-key",
        format!("`{}` is defined twice", shown(key.trim_matches('"'))),
    )
    .label("defined again here")
    .hint("keep one of the two; TOML allows each key once per table")
}

/// Workers with different settings, which one Kubernetes pod template cannot hold.
pub fn kubernetes_uneven_workers(unlike: &[String], first: &str) -> Diagnostic {
    Diagnostic::error(
        "kubernetes-workers",
        format!(
            "{} {} settings different from {first}'s, but the Kubernetes workers share one pod template",
            unlike.join(", "),
            if unlike.len() == 1 { "has" } else { "have" }
        ),
    )
    .label("this worker differs from the first")
    .hint("give every worker the same connections, limits, reservations and idle_timeout (set them in `[defaults]`), or remove `[kubernetes]`")
}

/// A cluster name too long for the Kubernetes StatefulSet names derived from it.
pub fn kubernetes_name_too_long(name: &str, longest: &str, max: usize) -> Diagnostic {
    Diagnostic::error(
        "kubernetes-name",
        format!(
            "the StatefulSet `{}` derived from the cluster name `{}` is longer than {max} characters",
            shown(longest),
            shown(name)
        ),
    )
    .label(format!("at most {} characters here for Kubernetes", max - (longest.len() - name.len())))
    .hint("shorten `[cluster] name`: Kubernetes labels each pod with `<statefulset>-<hash>`, at most 63 characters")
}

/// `order = "start-first"` with host-mode publishing: the new task cannot bind the host port the
/// old one still holds.
pub fn start_first_on_host_ports() -> Diagnostic {
    Diagnostic::error(
        "start-first-host-ports",
        "`swarm.update.order` = \"start-first\" cannot work with host-mode ports",
    )
    .label("the new task would need the host port the old task still holds")
    .hint("write `order = \"stop-first\"`, or `publish_mode = \"ingress\"` in `[swarm]`")
}

/// An image name under `[swarm] registry` longer than a registry takes.
pub fn swarm_registry_name_too_long(pushed: &str, max: usize) -> Diagnostic {
    Diagnostic::error(
        "grammar",
        format!(
            "`swarm.registry` makes the image name \"{}\" ({} characters), longer than the {max} a registry takes",
            shown(pushed),
            pushed.len()
        ),
    )
    .label("the images are pushed under this")
    .hint("shorten `[swarm] registry`, or the image's name (`[image] repository`, `[prometheus] image`)")
}
