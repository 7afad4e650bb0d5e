//! `erlmcp-gen init`: a commented cluster file sized for this machine from what `validate --host`
//! reads (the open-file limit bounds a node's connections, CPUs bound the node count, free ports
//! pick the port block), so a first user starts from a file that validates and fits.

use std::fmt::Write as _;

use serde::Serialize;

use crate::config::model::{MAX_NODES, NOFILE_HEADROOM, RuntimeKind};
use crate::host::{HostFacts, nofile_bound};

/// Connections `init` asks for when not told: enough to see the cluster work, few enough that
/// a laptop's stress run finishes quickly.
pub const DEFAULT_CONNECTIONS_PER_CPU: u32 = 1000;
/// The most connections `init` picks by itself (`--connections` may ask for more).
pub const DEFAULT_CONNECTIONS_CAP: u32 = 10_000;
/// The open-file limit assumed when this machine's cannot be read (a common default soft limit
/// raised once).
const UNKNOWN_NOFILE_BOUND: u64 = 4096;

/// The port blocks `init` tries, in order: (first node API port, first node listener port,
/// Prometheus port). Each fits `MAX_NODES` nodes without clashing.
pub const PORT_BLOCKS: [(u16, u16, u16); 3] = [
    (8080, 9100, 9090),
    (18080, 19100, 19090),
    (28080, 29100, 29090),
];

/// What the operator asked `init` for.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// `[cluster] name`.
    pub name: String,
    /// Concurrent sessions the cluster should hold; `None`: sized from the machine.
    pub connections: Option<u32>,
    /// `[runtime] kind`.
    pub runtime: RuntimeKind,
}

/// The sizes chosen, and the facts they came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sizing {
    /// `[nodes] count`.
    pub nodes: u32,
    /// `[defaults] connections`.
    pub connections_per_node: u32,
    /// `[defaults] nofile`.
    pub nofile: u64,
    /// The open-file bound a node has here (hard limit, and dockerd's for containers).
    pub nofile_bound: u64,
    /// Online CPUs.
    pub cpus: usize,
    /// `[nodes] api_port`.
    pub api_port: u16,
    /// `[nodes] listener_port`.
    pub listener_port: u16,
    /// `[prometheus] port`.
    pub prometheus_port: u16,
    /// `[stress] connections`.
    pub stress_connections: u32,
    /// The port block's ports were free when `init` looked.
    pub ports_free: bool,
}

/// Sizes the cluster. `ports_free(first, count)` says whether `count` ports from `first` are free.
pub fn size(
    request: &InitRequest,
    facts: &HostFacts,
    ports_free: impl Fn(u16, u16) -> bool,
) -> Sizing {
    let bound = nofile_bound(facts, request.runtime).unwrap_or(UNKNOWN_NOFILE_BOUND);
    // At least one connection per node, even where the limit leaves no room: the file still
    // validates, and `validate --host` then says what to raise.
    let per_node_max = bound
        .saturating_sub(NOFILE_HEADROOM)
        .clamp(1, u64::from(u32::MAX)) as u32;
    let cpus = facts.cpus.max(1);
    let connections = request.connections.unwrap_or_else(|| {
        let by_cpu = DEFAULT_CONNECTIONS_PER_CPU.saturating_mul(cpus as u32);
        by_cpu
            .min(DEFAULT_CONNECTIONS_CAP)
            .min(per_node_max.saturating_mul(cpus as u32))
            .max(1)
    });
    // Two nodes at least, so the file shows a coordinator and a worker.
    let nodes = connections.div_ceil(per_node_max).clamp(2, MAX_NODES);
    let connections_per_node = connections.div_ceil(nodes).max(1);
    let need = u64::from(connections_per_node) + NOFILE_HEADROOM;
    let nofile = need.next_multiple_of(1024).min(bound).max(need);
    let block = PORT_BLOCKS.iter().find(|(api, listener, prometheus)| {
        ports_free(*api, nodes as u16)
            && ports_free(*listener, nodes as u16)
            && ports_free(*prometheus, 1)
    });
    let (api_port, listener_port, prometheus_port) = block.copied().unwrap_or(PORT_BLOCKS[1]);
    Sizing {
        nodes,
        connections_per_node,
        nofile,
        nofile_bound: bound,
        cpus,
        api_port,
        listener_port,
        prometheus_port,
        stress_connections: connections,
        ports_free: block.is_some(),
    }
}

impl Sizing {
    /// Why the file cannot run on this machine as written, or `None` when every node's `nofile`
    /// fits the bound. It cannot when the limit leaves no room for a connection, or when the ask
    /// needs more than `MAX_NODES` nodes at the bound: the file keeps the ask (and validates), and
    /// `validate --host` says what binds.
    pub fn does_not_fit(&self) -> Option<String> {
        (self.nofile > self.nofile_bound).then(|| {
            format!(
                "{} connections need {} per node over {} nodes (open files {}), above this machine's \
                 open-file bound of {} per node; `validate --host` will say what to raise",
                self.stress_connections,
                self.connections_per_node,
                self.nodes,
                self.nofile,
                self.nofile_bound
            )
        })
    }
}

/// Whether `count` TCP ports from `first` can be bound on 127.0.0.1 right now.
pub fn loopback_ports_free(first: u16, count: u16) -> bool {
    (0..count).all(|i| {
        first
            .checked_add(i)
            .is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
    })
}

/// The cluster file, every value commented with why it was chosen.
pub fn cluster_file(request: &InitRequest, sizing: &Sizing) -> String {
    let kind = match request.runtime {
        RuntimeKind::Native => "native",
        RuntimeKind::Docker => "docker",
        RuntimeKind::Colima => "colima",
        RuntimeKind::Swarm => "swarm",
    };
    let s = sizing;
    let mut f = String::new();
    let _ = writeln!(
        f,
        "# Written by `erlmcp-gen init` for this machine: {} CPUs, open-file bound {} per node.\n\
         # Check it against the machine with `erlmcp-gen validate FILE --host`;\n\
         # README.md lists every key under 'Cluster file reference'.\n",
        s.cpus, s.nofile_bound
    );
    // A JSON string is a valid TOML basic string: the name cannot break out of its quotes.
    let name = serde_json::to_string(&request.name).unwrap_or_default();
    let _ = writeln!(f, "[cluster]\nname = {name}\nversion = \"0.1.0\"\n");
    let _ = writeln!(
        f,
        "[runtime]\n# docker: any Docker engine (falls back to native when none answers); native: local processes.\nkind = \"{kind}\"\n"
    );
    let _ = writeln!(
        f,
        "[nodes]\n\
         # {} connections at most {} per node here (open-file bound {} less {NOFILE_HEADROOM} for the node's own files).\n\
         count = {}\n\
         # Node i gets api_port + i - 1 and listener_port + i - 1{}.\n\
         api_port = {}\n\
         listener_port = {}\n",
        s.stress_connections,
        s.nofile_bound.saturating_sub(NOFILE_HEADROOM),
        s.nofile_bound,
        s.nodes,
        if s.ports_free {
            "; these were free on 127.0.0.1 when init ran"
        } else {
            "; init found no free block of ports: check these"
        },
        s.api_port,
        s.listener_port
    );
    let _ = writeln!(
        f,
        "[defaults]\n\
         connections = {}\n\
         # At least connections + {NOFILE_HEADROOM}; at most this machine's bound ({}).\n\
         nofile = {}\n\
         cpu_limit = 1.0\n\
         memory_limit = \"256MiB\"\n\
         idle_timeout = \"5m\"\n",
        s.connections_per_node, s.nofile_bound, s.nofile
    );
    let _ = writeln!(
        f,
        "# Exactly one coordinator; every other node is a worker.\n[[node]]\nname = \"node1\"\nrole = \"coordinator\"\n"
    );
    let _ = writeln!(
        f,
        "[prometheus]\nport = {}\nmemory_limit = \"512MiB\"\n",
        s.prometheus_port
    );
    let _ = writeln!(
        f,
        "# A stress run fails (exit 99) when its p99 is above p99 or more than error_rate_percent of requests fail.\n\
         [slo]\np99 = \"30ms\"\nerror_rate_percent = 0.1\n"
    );
    let _ = write!(
        f,
        "# `erlmcp-gen stress` holds this many sessions for `duration` after a linear `ramp`,\n\
         # sending `rate` echo calls per second in all. Durations read like 90s, 1m30s or 1.5s.\n\
         [stress]\nconnections = {}\nduration = \"1m\"\nramp = \"30s\"\nrate = 1000\n",
        s.stress_connections
    );
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate;

    fn facts(hard: u64, cpus: usize) -> HostFacts {
        HostFacts {
            docker: Err("no engine".into()),
            docker_socket: "/nonexistent.sock".into(),
            nofile: Some((1024, hard)),
            dockerd_nofile_hard: None,
            ephemeral_ports: Some((32768, 60999)),
            somaxconn: Some(4096),
            cpus,
            memory: None,
            machine: crate::host::Machine::ThisMachine,
            limits_probe: None,
            system: None,
            socket_cost: None,
            generator_cost: None,
            recorded_run: None,
        }
    }

    fn request(connections: Option<u32>, runtime: RuntimeKind) -> InitRequest {
        InitRequest {
            name: "first".into(),
            connections,
            runtime,
        }
    }

    /// The file validates, holds the connections asked for, and each node fits the bound.
    fn assert_fits(request: &InitRequest, facts: &HostFacts) -> Sizing {
        let sizing = size(request, facts, |_, _| true);
        let text = cluster_file(request, &sizing);
        let validated = validate::file("init.toml", &text);
        let cluster = validated.valid_cluster().unwrap_or_else(|| {
            panic!("{text}\n{:#?}", validated.findings);
        });
        assert_eq!(cluster.nodes.len() as u32, sizing.nodes);
        assert!(cluster.capacity() >= u64::from(sizing.stress_connections));
        // Each node fits the bound, unless no sizing could: no room for a connection, or the
        // ask needs more than MAX_NODES nodes at the bound (and then it says so).
        let room = u64::from(MAX_NODES) * sizing.nofile_bound.saturating_sub(NOFILE_HEADROOM);
        if sizing.nofile_bound > NOFILE_HEADROOM && u64::from(sizing.stress_connections) <= room {
            assert!(sizing.nofile <= sizing.nofile_bound, "{sizing:?}");
        }
        assert_eq!(
            sizing.does_not_fit().is_some(),
            sizing.nofile > sizing.nofile_bound,
            "{sizing:?}"
        );
        sizing
    }

    #[test]
    fn a_low_open_file_limit_spreads_connections_over_more_nodes() {
        let sizing = assert_fits(&request(Some(10_000), RuntimeKind::Docker), &facts(4096, 2));
        // 3072 connections per node at most: 10000 need 4 nodes.
        assert_eq!((sizing.nodes, sizing.connections_per_node), (4, 2500));
        assert_eq!(sizing.nofile, 4096);
    }

    #[test]
    fn an_ask_beyond_the_node_cap_keeps_the_ask_and_says_it_does_not_fit() {
        // Found by every_sizing_validates: 1,000 nodes at a 2,106-file bound hold 1,082,000,
        // so 711,582 fit; 2,000,000 do not.
        let sizing = assert_fits(
            &request(Some(2_000_000), RuntimeKind::Native),
            &facts(2106, 2),
        );
        assert_eq!(sizing.nodes, MAX_NODES);
        assert_eq!(sizing.stress_connections, 2_000_000);
        let why = sizing.does_not_fit().expect("does not fit");
        assert!(why.contains("open-file bound of 2106"), "{why}");
        let fits = assert_fits(
            &request(Some(711_582), RuntimeKind::Native),
            &facts(2106, 2),
        );
        assert_eq!(fits.does_not_fit(), None, "{fits:?}");
    }

    #[test]
    fn a_high_limit_keeps_two_nodes() {
        let sizing = assert_fits(&request(None, RuntimeKind::Native), &facts(1 << 20, 4));
        assert_eq!((sizing.nodes, sizing.stress_connections), (2, 4000));
        assert_eq!(sizing.nofile, 3072);
    }

    #[test]
    fn a_taken_port_block_moves_to_the_next() {
        let sizing = size(
            &request(None, RuntimeKind::Docker),
            &facts(65536, 2),
            |first, _| first >= 18_000,
        );
        assert_eq!(
            (
                sizing.api_port,
                sizing.listener_port,
                sizing.prometheus_port
            ),
            (18080, 19100, 19090)
        );
        assert!(sizing.ports_free);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

        /// Whatever the machine and the ask, the file validates and holds the ask.
        #[test]
        fn every_sizing_validates(
            hard in 0u64..2_000_000,
            cpus in 0usize..256,
            connections in proptest::option::of(1u32..2_000_000),
            native in proptest::bool::ANY,
        ) {
            let runtime = if native { RuntimeKind::Native } else { RuntimeKind::Docker };
            assert_fits(&request(connections, runtime), &facts(hard, cpus));
        }
    }
}
