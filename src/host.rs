//! The facts of the machine that runs the containers, which bound a plan (`validate --host`):
//! Docker engine, open-file limits, ephemeral ports, listen backlog, CPUs and memory, each judged
//! against the cluster. For a local engine (or the native runtime) that is this machine, read
//! from `/proc`; for a Colima VM or another remote engine it is the engine's own machine, read
//! from its info API, not the `/proc` of the machine `validate` runs on. Past the per-process
//! limits, [`system_limits`] judges the machine-wide ones (and [`socket_probe`] measures what a
//! loopback connection costs the kernel), each as a ceiling on sessions; the smallest binds first.
//! [`memory_budget`] adds up what the held sessions cost the machine's memory at once: the
//! kernel's sockets, the load generator's sessions (measured in-process with `--probe`) and the
//! nodes' (from the last stress run of the file, or bounded by their `memory_limit`).

pub mod memory_budget;
pub mod neighbour_table;
pub mod socket_probe;
pub mod system_limits;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::config::model::{Cluster, NOFILE_HEADROOM, RuntimeKind};
use crate::config::units::ByteSize;

/// The listen backlog erlmcp-node asks for; the kernel caps it at `net.core.somaxconn`.
const NODE_BACKLOG: u64 = 4096;

/// What was read off this machine. `None` where a fact could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct HostFacts {
    /// Docker engine version, or why it did not answer.
    pub docker: Result<String, String>,
    /// The Docker socket that was asked.
    pub docker_socket: String,
    /// This process's open-file limit (soft, hard).
    pub nofile: Option<(u64, u64)>,
    /// The Docker daemon's hard open-file limit, when its process is visible.
    pub dockerd_nofile_hard: Option<u64>,
    /// `net.ipv4.ip_local_port_range`.
    pub ephemeral_ports: Option<(u32, u32)>,
    /// `net.core.somaxconn`.
    pub somaxconn: Option<u64>,
    /// Online CPUs.
    pub cpus: usize,
    /// Total memory.
    pub memory: Option<ByteSize>,
    /// Whose facts these are.
    pub machine: Machine,
    /// For a remote engine: the probe container that read its limits (`Ok`: what it ran), or
    /// why there was none. None for this machine, whose `/proc` is read directly.
    pub limits_probe: Option<Result<String, crate::engine_probe::ProbeError>>,
    /// Machine-wide limits (this machine only; left unread for an engine's own machine).
    pub system: Option<system_limits::SystemLimits>,
    /// What one loopback connection pair costs the kernel, with `--probe`: measured, or why not.
    pub socket_cost: Option<Result<socket_probe::SocketCost, String>>,
    /// What one held session costs the load generator, with `--probe`: measured, or why not.
    pub generator_cost: Option<Result<crate::stress::held_memory::HeldSessionCost, String>>,
    /// The nodes' memory as the last stress run of this cluster (in `results/`) measured it.
    pub recorded_run: Option<memory_budget::RecordedRun>,
}

/// The machine the facts describe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Machine {
    /// This machine (`/proc`): a local engine, or the native runtime.
    ThisMachine,
    /// The engine's own machine (a Colima VM, a remote engine), from its info API.
    Engine {
        /// Its kernel (`KernelVersion`).
        kernel: Option<String>,
    },
}

/// How a fact compares with what the cluster needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Enough.
    Ok,
    /// Works, with a caveat.
    Warn,
    /// Does not fit; the plan will fail here.
    Fail,
}

/// One fact judged against the cluster.
#[derive(Debug, Clone, Serialize)]
pub struct HostCheck {
    /// What was checked.
    pub name: &'static str,
    /// What this machine has.
    pub have: String,
    /// What the cluster needs.
    pub need: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What to do about it (empty when fine).
    pub fix: String,
    /// The most sessions this limit lets the machine hold, when it bounds them.
    pub ceiling: Option<u64>,
}

/// The limit with the smallest ceiling: what stops the machine first as sessions grow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindsFirst {
    /// The check whose limit it is.
    pub limit: &'static str,
    /// Its ceiling, in sessions.
    pub sessions: u64,
}

/// The smallest ceiling among the checks.
pub fn binds_first(checks: &[HostCheck]) -> Option<BindsFirst> {
    checks
        .iter()
        .filter_map(|c| Some((c.ceiling?, c.name)))
        .min()
        .map(|(sessions, limit)| BindsFirst { limit, sessions })
}

/// Sessions the cluster holds at once on its machine: what `stress` opens.
pub fn sessions_asked(cluster: &Cluster) -> u64 {
    u64::from(cluster.stress.connections)
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Parses the `Max open files` line of a `/proc/<pid>/limits` file.
fn nofile_from_limits(limits: &str) -> Option<(u64, u64)> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace();
    let soft = numbers.next()?.parse().ok()?;
    let hard = numbers.next()?.parse().ok()?;
    Some((soft, hard))
}

/// The Docker daemon's hard open-file limit, when its process is visible from here.
pub fn dockerd_nofile_hard() -> Option<u64> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        if std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim() == "dockerd") {
            let limits = std::fs::read_to_string(path.join("limits")).ok()?;
            return nofile_from_limits(&limits).map(|(_, hard)| hard);
        }
    }
    None
}

/// This process's open-file limit (soft, hard).
pub fn own_nofile() -> Option<(u64, u64)> {
    read_trimmed("/proc/self/limits").and_then(|l| nofile_from_limits(&l))
}

/// The Docker socket of a plain Docker cluster: `DOCKER_HOST`'s, or `/var/run/docker.sock`.
pub fn default_docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// The Docker socket this cluster's runtime talks to.
pub fn docker_socket(cluster: &Cluster) -> PathBuf {
    if let Ok(host) = std::env::var("DOCKER_HOST")
        && let Some(path) = host.strip_prefix("unix://")
    {
        return PathBuf::from(path);
    }
    if cluster.runtime.kind == RuntimeKind::Colima {
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let colima = PathBuf::from(home)
            .join(".colima")
            .join(&cluster.runtime.colima_profile)
            .join("docker.sock");
        if colima.exists() {
            return colima;
        }
    }
    PathBuf::from("/var/run/docker.sock")
}

/// Asks the engine's `/version` over its Unix socket (no Docker CLI, no extra dependency).
fn docker_version(socket: &PathBuf) -> Result<String, String> {
    let json = docker_get(socket, "/version")?;
    let version = json["Version"].as_str().unwrap_or("unknown");
    let api = json["ApiVersion"].as_str().unwrap_or("unknown");
    Ok(format!("{version} (API {api})"))
}

/// The engine's own machine from its `/info`: CPUs (`NCPU`), memory (`MemTotal`), kernel.
pub fn engine_machine(
    socket: &PathBuf,
) -> Result<(usize, Option<ByteSize>, Option<String>), String> {
    let info = docker_get(socket, "/info")?;
    Ok(machine_from_info(&info))
}

fn machine_from_info(info: &serde_json::Value) -> (usize, Option<ByteSize>, Option<String>) {
    (
        info["NCPU"].as_u64().map_or(1, |n| n.max(1) as usize),
        info["MemTotal"].as_u64().map(ByteSize),
        info["KernelVersion"].as_str().map(str::to_string),
    )
}

/// True when `socket` is this machine's own engine, whose machine `/proc` describes.
fn is_local_engine(socket: &std::path::Path) -> bool {
    socket == std::path::Path::new("/var/run/docker.sock")
        || socket == std::path::Path::new("/run/docker.sock")
}

/// GETs `path` from the engine's API over its Unix socket, as JSON.
fn docker_get(socket: &PathBuf, path: &str) -> Result<serde_json::Value, String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    let timeout = Some(Duration::from_secs(3));
    stream
        .set_read_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(timeout)
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).map_err(|e| format!("unexpected answer: {e}"))
}

/// Reads every fact of the machine that runs the cluster: this one for the native runtime or a
/// local engine, else the engine's own (a Colima VM, a remote engine) when it answers.
/// With `probe`, also measures what a loopback connection costs this machine's kernel.
pub fn read_facts(cluster: &Cluster, probe: bool) -> HostFacts {
    let socket = docker_socket(cluster);
    let mut facts = read_facts_at(socket.clone());
    let sha256 = std::fs::read(&cluster.source)
        .ok()
        .map(|bytes| crate::stress_command::hex_sha256(&bytes));
    facts.recorded_run = memory_budget::last_recorded_run(
        std::path::Path::new("results"),
        &cluster.name,
        sha256.as_deref(),
    );
    if cluster.runtime.kind == RuntimeKind::Native || is_local_engine(&socket) {
        if probe {
            let soft = facts.nofile.map(|(soft, _)| soft);
            let cost = socket_probe::measure(soft);
            if let (Some(system), Ok(cost)) = (facts.system.take(), &cost) {
                facts.system = Some(system_limits::with_measured_tracking(system, cost));
            }
            facts.socket_cost = Some(cost);
            facts.generator_cost = Some(crate::stress::held_memory::measure(soft));
        }
        return facts;
    }
    match engine_machine(&socket) {
        Ok(machine) => {
            let image = cluster.image_ref();
            let nofile = cluster.nodes.iter().map(|n| n.nofile).max().unwrap_or(0);
            let probed = crate::engine_probe::probe(&socket, &image, nofile);
            with_probe(engine_facts(facts, machine), &image, probed)
        }
        Err(_) => facts,
    }
}

/// A remote engine's facts with what a probe container of `image` read inside it: the
/// open-file limit a node container gets, a fresh network namespace's port range and backlog
/// cap. On an error those stay unknown and the error says why.
pub fn with_probe(
    facts: HostFacts,
    image: &str,
    probed: Result<crate::engine_probe::EngineLimits, crate::engine_probe::ProbeError>,
) -> HostFacts {
    match probed {
        Ok(limits) => HostFacts {
            nofile: limits.nofile,
            ephemeral_ports: limits.ephemeral_ports,
            somaxconn: limits.somaxconn,
            limits_probe: Some(Ok(format!(
                "a probe container of {image} ({} CPUs, {})",
                limits.cpus, limits.arch
            ))),
            ..facts
        },
        Err(why) => HostFacts {
            limits_probe: Some(Err(why)),
            ..facts
        },
    }
}

/// The facts of a remote engine's machine: its CPUs, memory and kernel replace this machine's,
/// and what only a process inside it could read (open-file limits, ports, backlog) is unknown
/// until [`with_probe`] fills it in.
pub fn engine_facts(
    local: HostFacts,
    (cpus, memory, kernel): (usize, Option<ByteSize>, Option<String>),
) -> HostFacts {
    HostFacts {
        cpus,
        memory,
        machine: Machine::Engine { kernel },
        nofile: None,
        dockerd_nofile_hard: None,
        ephemeral_ports: None,
        somaxconn: None,
        system: None,
        socket_cost: None,
        generator_cost: None,
        ..local
    }
}

/// Reads the facts, asking the Docker engine at `socket`.
pub fn read_facts_at(socket: PathBuf) -> HostFacts {
    let memory = read_trimmed("/proc/meminfo").and_then(|m| {
        let line = m.lines().find(|l| l.starts_with("MemTotal:"))?.to_string();
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(ByteSize(kib * 1024))
    });
    HostFacts {
        docker: docker_version(&socket),
        docker_socket: socket.display().to_string(),
        nofile: own_nofile(),
        dockerd_nofile_hard: dockerd_nofile_hard(),
        ephemeral_ports: read_trimmed("/proc/sys/net/ipv4/ip_local_port_range").and_then(|r| {
            let mut parts = r.split_whitespace().map(|p| p.parse().ok());
            Some((parts.next()??, parts.next()??))
        }),
        somaxconn: read_trimmed("/proc/sys/net/core/somaxconn").and_then(|s| s.parse().ok()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory,
        machine: Machine::ThisMachine,
        limits_probe: None,
        system: Some(system_limits::read()),
        socket_cost: None,
        generator_cost: None,
        recorded_run: None,
    }
}

/// The most open files one node may have here: the hard limit, and dockerd's for containers.
pub fn nofile_bound(facts: &HostFacts, runtime: RuntimeKind) -> Option<u64> {
    let (_, hard) = facts.nofile?;
    Some(match facts.dockerd_nofile_hard {
        Some(dockerd) if runtime != RuntimeKind::Native => hard.min(dockerd),
        _ => hard,
    })
}

/// Judges the facts against the cluster.
pub fn judge(cluster: &Cluster, facts: &HostFacts) -> Vec<HostCheck> {
    let mut checks = Vec::new();
    let uses_docker = cluster.runtime.kind != RuntimeKind::Native;

    checks.push(match (&facts.docker, uses_docker) {
        (Ok(version), _) => HostCheck {
            name: "docker engine",
            have: format!("{version} at {}", facts.docker_socket),
            need: if uses_docker { "a reachable engine".into() } else { "none (native runtime)".into() },
            verdict: Verdict::Ok,
            fix: String::new(),
            ceiling: None,
        },
        (Err(why), true) => HostCheck {
            name: "docker engine",
            have: why.clone(),
            need: "a reachable engine".into(),
            verdict: Verdict::Fail,
            fix: "start Docker (or `generated/colima-setup.sh start`), set DOCKER_HOST, or run with `--runtime native`".into(),
            ceiling: None,
        },
        (Err(why), false) => HostCheck {
            name: "docker engine",
            have: why.clone(),
            need: "none (native runtime)".into(),
            verdict: Verdict::Ok,
            fix: String::new(),
            ceiling: None,
        },
    });

    checks.push(HostCheck {
        name: "judged machine",
        have: match &facts.machine {
            Machine::ThisMachine => "this machine (/proc)".into(),
            Machine::Engine { kernel } => format!(
                "the engine's own machine at {} (its info API; kernel {}; limits {})",
                facts.docker_socket,
                kernel.as_deref().unwrap_or("unknown"),
                match &facts.limits_probe {
                    Some(Ok(probe)) => format!("read by {probe}"),
                    _ => "not read".into(),
                }
            ),
        },
        need: "the machine that runs the containers".into(),
        verdict: Verdict::Ok,
        fix: String::new(),
        ceiling: None,
    });
    checks.push(judge_nofile(cluster, facts));
    checks.extend(judge_machine_wide(cluster, facts));

    if let Some(somaxconn) = facts.somaxconn {
        let fits = somaxconn >= NODE_BACKLOG;
        checks.push(HostCheck {
            name: "listen backlog (somaxconn)",
            have: somaxconn.to_string(),
            need: format!("{NODE_BACKLOG} (erlmcp-node's backlog) for connection storms"),
            verdict: if fits { Verdict::Ok } else { Verdict::Warn },
            fix: if fits {
                String::new()
            } else {
                format!("sysctl -w net.core.somaxconn={NODE_BACKLOG} (or `generated/colima-setup.sh tune`)")
            },
            ceiling: None,
        });
    }

    // A Colima cluster runs inside its VM, which `validate` already compares with the limits
    // when the VM is not up; once its engine answers, the VM's own CPUs and memory are judged.
    if cluster.runtime.kind != RuntimeKind::Colima || facts.machine != Machine::ThisMachine {
        let reserved: f64 = cluster.nodes.iter().map(|n| n.cpu_reservation).sum();
        let limits: f64 = cluster.nodes.iter().map(|n| n.cpu_limit).sum();
        let cpus = facts.cpus as f64;
        checks.push(HostCheck {
            name: "cpus",
            have: format!("{} cores", facts.cpus),
            need: format!("{reserved} reserved, {limits} at the limits"),
            verdict: if reserved > cpus {
                Verdict::Fail
            } else if limits > cpus {
                Verdict::Warn
            } else {
                Verdict::Ok
            },
            fix: if reserved > cpus {
                "lower `cpu_reservation`".into()
            } else if limits > cpus {
                "the nodes share the cores when all are busy; the load generator needs CPU too"
                    .into()
            } else {
                String::new()
            },
            ceiling: None,
        });
        if let Some(memory) = facts.memory {
            let reserved: u64 = cluster.nodes.iter().map(|n| n.memory_reservation.0).sum();
            let limits: u64 = cluster.nodes.iter().map(|n| n.memory_limit.0).sum();
            checks.push(HostCheck {
                name: "memory",
                have: memory.approx(),
                need: format!(
                    "{} reserved, {} at the limits",
                    ByteSize(reserved),
                    ByteSize(limits)
                ),
                verdict: if reserved > memory.0 {
                    Verdict::Fail
                } else if limits > memory.0 {
                    Verdict::Warn
                } else {
                    Verdict::Ok
                },
                fix: if reserved > memory.0 {
                    "lower `memory_reservation`".into()
                } else {
                    String::new()
                },
                ceiling: None,
            });
        }
    }
    checks
}

/// The machine-wide limits (this machine only) and ephemeral ports, each with its session ceiling.
fn judge_machine_wide(cluster: &Cluster, facts: &HostFacts) -> Vec<HostCheck> {
    let demand = system_limits::Demand {
        sessions: sessions_asked(cluster),
        largest_nofile: cluster.nodes.iter().map(|n| n.nofile).max().unwrap_or(0),
        node_memory_limits: cluster.nodes.iter().map(|n| n.memory_limit.0).sum(),
        memory_total: facts.memory.map(|m| m.0),
        ramp_seconds: cluster.stress.ramp.0.as_secs(),
        baseline: true,
    };
    let Some(system) = &facts.system else {
        return system_limits::judge_ephemeral_ports(facts.ephemeral_ports, demand)
            .into_iter()
            .collect();
    };
    let cost = facts.socket_cost.as_ref().and_then(|c| c.as_ref().ok());
    let mut checks = system_limits::judge(system, cost, facts.ephemeral_ports, demand);
    if cluster.runtime.kind != RuntimeKind::Native {
        checks.push(neighbour_table::judge(
            system.neighbour,
            cluster.nodes.len() as u64,
            crate::stress::placement::worker_count(
                demand.sessions,
                u64::from(crate::stress::DEFAULT_SESSIONS_PER_WORKER),
            ),
        ));
    }
    if let Some(Err(why)) = &facts.socket_cost {
        checks.push(HostCheck {
            name: "socket probe",
            have: format!("failed: {why}"),
            need: "2,000 loopback connection pairs for about a second".into(),
            verdict: Verdict::Warn,
            fix: "the kernel-memory and tcp_mem checks above are unmeasured".into(),
            ceiling: None,
        });
    }
    let generator = facts.generator_cost.as_ref().and_then(|c| c.as_ref().ok());
    checks.push(memory_budget::judge(
        system,
        cost,
        generator,
        facts.recorded_run.as_ref(),
        demand,
    ));
    if let Some(Err(why)) = &facts.generator_cost {
        checks.push(HostCheck {
            name: "generator probe",
            have: format!("failed: {why}"),
            need: format!(
                "{} MCP sessions held in-process for about a second",
                crate::stress::held_memory::SESSIONS
            ),
            verdict: Verdict::Warn,
            fix: "the generator's part of the memory check above is unmeasured".into(),
            ceiling: None,
        });
    }
    checks
}

/// The open-file cap binds every process: each node, each load worker, Docker's port proxy.
fn judge_nofile(cluster: &Cluster, facts: &HostFacts) -> HostCheck {
    if let Some(Err(refused)) = &facts.limits_probe
        && refused.nofile_refused
    {
        let worst = cluster.nodes.iter().map(|n| n.nofile).max().unwrap_or(0);
        return HostCheck {
            name: "open files per process",
            have: refused.message.clone(),
            need: format!("nofile {worst} in a node container"),
            verdict: Verdict::Fail,
            fix: "lower `nofile` (and `connections`) to what the engine grants, or raise the engine's own limit (dockerd's LimitNOFILE in the VM)".into(),
            ceiling: None,
        };
    }
    let Some((soft, hard)) = facts.nofile else {
        return HostCheck {
            name: "open files per process",
            have: "unknown".into(),
            need: "one descriptor per connection".into(),
            verdict: Verdict::Warn,
            fix: match facts.machine {
                Machine::ThisMachine => "could not read /proc/self/limits".into(),
                Machine::Engine { .. } => match &facts.limits_probe {
                    Some(Err(why)) => format!("not read inside the engine's machine: {why}"),
                    _ => "not read inside the engine's machine".into(),
                },
            },
            ceiling: None,
        };
    };
    let mut have = format!("soft {soft}, hard {hard}");
    if cluster.runtime.kind != RuntimeKind::Native
        && let Some(dockerd) = facts.dockerd_nofile_hard
    {
        have.push_str(&format!("; dockerd hard {dockerd}"));
    }
    let bound = nofile_bound(facts, cluster.runtime.kind).unwrap_or(hard);
    let per_node_max = bound.saturating_sub(NOFILE_HEADROOM);
    let worst = cluster
        .nodes
        .iter()
        .max_by_key(|n| (n.connections, std::cmp::Reverse(n.index)))
        .expect("a cluster has nodes");
    let need = u64::from(worst.connections) + NOFILE_HEADROOM;
    let target = u64::from(cluster.stress.connections);
    let nodes_needed = target.div_ceil(per_node_max.max(1));
    let workers_needed = target.div_ceil(per_node_max.max(1));
    // The cluster's nodes, each at most what the per-process cap lets it hold.
    let ceiling = cluster
        .nodes
        .iter()
        .map(|n| u64::from(n.connections).min(per_node_max))
        .sum();
    if need > bound {
        HostCheck {
            name: "open files per process",
            have,
            need: format!(
                "{need} for {} ({} connections + {NOFILE_HEADROOM})",
                worst.name, worst.connections
            ),
            verdict: Verdict::Fail,
            fix: format!(
                "this hard limit cannot be raised from inside; a node here holds at most {per_node_max} connections, \
                 so {target} connections need {nodes_needed} nodes (`[nodes] count = {nodes_needed}`, \
                 `connections = {}`), and the load generator uses {workers_needed} worker processes",
                target.div_ceil(nodes_needed.max(1))
            ),
            ceiling: Some(ceiling),
        }
    } else {
        HostCheck {
            name: "open files per process",
            have,
            need: format!(
                "{need} for {} ({} connections + {NOFILE_HEADROOM})",
                worst.name, worst.connections
            ),
            verdict: if soft < need {
                Verdict::Warn
            } else {
                Verdict::Ok
            },
            fix: if soft < need {
                format!(
                    "erlmcp-gen raises the soft limit to {hard} for the processes it starts; run `ulimit -n {hard}` for others"
                )
            } else {
                String::new()
            },
            ceiling: Some(ceiling),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_max_open_files_from_proc_limits() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 20000                files\n";
        assert_eq!(nofile_from_limits(limits), Some((1024, 20000)));
    }

    #[test]
    fn a_node_above_the_hard_limit_does_not_fit_and_the_fix_says_what_would() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/colima.toml"))
                .unwrap();
        let (cluster, _) = crate::config::parse("clusters/colima.toml", &text).unwrap();
        let facts = HostFacts {
            docker: Ok("20.10 (API 1.41)".into()),
            docker_socket: "/var/run/docker.sock".into(),
            nofile: Some((20000, 20000)),
            dockerd_nofile_hard: None,
            ephemeral_ports: Some((32768, 60999)),
            somaxconn: Some(4096),
            cpus: 2,
            memory: Some(ByteSize(24 << 30)),
            machine: Machine::ThisMachine,
            limits_probe: None,
            system: None,
            socket_cost: None,
            generator_cost: None,
            recorded_run: None,
        };
        let check = judge_nofile(&cluster, &facts);
        assert_eq!(check.verdict, Verdict::Fail);
        assert!(
            check.fix.contains("at most 18976 connections"),
            "{}",
            check.fix
        );
        assert!(check.fix.contains("need 6 nodes"), "{}", check.fix);
    }

    #[test]
    fn a_colima_engine_is_judged_by_its_own_cpus_and_memory_not_this_machines() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/colima.toml"))
                .unwrap();
        let (cluster, _) = crate::config::parse("clusters/colima.toml", &text).unwrap();
        let info =
            serde_json::json!({"NCPU": 8, "MemTotal": 8u64 << 30, "KernelVersion": "6.8.0-colima"});
        let local = read_facts_at(PathBuf::from("/nonexistent.sock"));
        let facts = engine_facts(local, machine_from_info(&info));
        assert_eq!((facts.cpus, facts.memory), (8, Some(ByteSize(8 << 30))));
        assert_eq!(facts.nofile, None, "this machine's limits are not the VM's");
        let checks = judge(&cluster, &facts);
        let check = |name: &str| checks.iter().find(|c| c.name == name).unwrap().clone();
        assert!(check("judged machine").have.contains("kernel 6.8.0-colima"));
        // 4 nodes reserve 10 cores and 12 GiB: more than this VM's 8 cores and 8 GiB.
        assert_eq!(check("cpus").verdict, Verdict::Fail);
        assert_eq!(check("memory").verdict, Verdict::Fail);
        assert!(
            check("open files per process")
                .fix
                .contains("not read inside the engine's machine")
        );
    }

    fn colima_engine() -> (Cluster, HostFacts) {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/colima.toml"))
                .unwrap();
        let (cluster, _) = crate::config::parse("clusters/colima.toml", &text).unwrap();
        let info = serde_json::json!({"NCPU": 12, "MemTotal": 16u64 << 30});
        let local = read_facts_at(PathBuf::from("/nonexistent.sock"));
        (cluster, engine_facts(local, machine_from_info(&info)))
    }

    #[test]
    fn a_probe_containers_limits_are_judged_as_the_engines_own() {
        let (cluster, facts) = colima_engine();
        let limits = crate::engine_probe::EngineLimits {
            nofile: Some((65536, 65536)),
            ephemeral_ports: Some((1024, 65535)),
            somaxconn: Some(4096),
            file_max: None,
            nr_open: None,
            cpus: 12,
            arch: "aarch64".into(),
        };
        let facts = with_probe(facts, "erlmcp-node:0.1.0", Ok(limits));
        let checks = judge(&cluster, &facts);
        let check = |name: &str| checks.iter().find(|c| c.name == name).unwrap().clone();
        let nofile = check("open files per process");
        assert_eq!(nofile.verdict, Verdict::Ok, "{nofile:?}");
        assert!(nofile.have.contains("hard 65536"), "{nofile:?}");
        assert!(
            check("judged machine")
                .have
                .contains("read by a probe container of erlmcp-node:0.1.0")
        );
    }

    #[test]
    fn an_engine_that_refuses_the_nodes_nofile_fails_the_check_with_its_reason() {
        let (cluster, facts) = colima_engine();
        let refused = crate::engine_probe::ProbeError {
            message:
                "the engine could not start a container with nofile 65536: operation not permitted"
                    .into(),
            nofile_refused: true,
        };
        let facts = with_probe(facts, "erlmcp-node:0.1.0", Err(refused));
        let checks = judge(&cluster, &facts);
        let nofile = checks
            .iter()
            .find(|c| c.name == "open files per process")
            .unwrap();
        assert_eq!(nofile.verdict, Verdict::Fail);
        assert!(nofile.have.contains("operation not permitted"));
        assert!(nofile.fix.contains("lower `nofile`"));
    }
}
