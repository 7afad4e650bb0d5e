//! What `stress` loads: the running cluster's nodes as load targets (on the runtime that runs
//! them), and the bare echo servers it is compared with in the same run.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::bail;

use crate::config::model::Cluster;
use crate::engine::Runtime;
use crate::progress::Progress;
use crate::stress::{StressTarget, TargetKind};

/// The cluster's nodes as load targets. Fails, naming the fix, when none answers `/ready`.
pub async fn cluster_targets(
    cluster: &Cluster,
    runtime: &Runtime,
) -> anyhow::Result<Vec<StressTarget>> {
    let mut targets = Vec::new();
    let mut answering = 0;
    // On a swarm of several hosts each node's host-mode ports are on the engine that runs it;
    // elsewhere (no host known) they are where `cluster.reachable` says.
    let hosts = match runtime {
        Runtime::Swarm(swarm) => swarm.node_hosts(cluster).await?,
        Runtime::Native(_) | Runtime::Docker(_) => Default::default(),
    };
    for node in &cluster.nodes {
        let at = |port| crate::engine::swarm::published_at(cluster, hosts.get(&node.name), port);
        let api = at(node.api_port);
        let pid = match runtime {
            Runtime::Native(engine) => engine
                .pid_of(&format!("{}-{}", cluster.name, node.name))
                .map(|p| p as u32),
            Runtime::Docker(_) | Runtime::Swarm(_) => None,
        };
        if crate::probe::get(api, "/health", Duration::from_secs(2))
            .await
            .is_ok_and(|r| r.status == 200)
        {
            answering += 1;
        }
        targets.push(StressTarget {
            node: node.name.clone(),
            tcp_addr: at(node.listener_port),
            api_addr: Some(api),
            pid,
            capacity: node.connections,
            kind: TargetKind::Mcp,
        });
    }
    if answering == 0 {
        bail!(
            "no node of {} answers on {}; start it first: `erlmcp-gen apply {} --runtime {}`",
            cluster.name,
            runtime.name(),
            cluster.source,
            runtime.name()
        );
    }
    Ok(targets)
}

/// Bare echo servers (`erlmcp-node baseline`) on loopback, one per node with the node's capacity,
/// so the baseline holds as many sessions as the cluster under the same per-process fd cap.
/// They stop when this value is dropped.
pub struct Baselines {
    children: Vec<Child>,
    /// Their targets.
    pub targets: Vec<StressTarget>,
}

impl Baselines {
    /// Starts one baseline per node.
    pub fn start(cluster: &Cluster, progress: &Progress) -> anyhow::Result<Self> {
        let program = crate::engine::native::node_program(progress)?;
        let mut baselines = Baselines {
            children: Vec::new(),
            targets: Vec::new(),
        };
        for node in &cluster.nodes {
            // Ask the kernel for a free port, then hand it to the child (a tiny race, retried by
            // the readiness check below).
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let child = Command::new(&program)
                .args([
                    "baseline",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            baselines.children.push(child);
            baselines.targets.push(StressTarget {
                node: format!("baseline-{}", node.name),
                tcp_addr: ([127, 0, 0, 1], port).into(),
                api_addr: None,
                pid: baselines.children.last().map(Child::id),
                capacity: node.connections,
                kind: TargetKind::BaselineEcho,
            });
        }
        for target in &baselines.targets {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while std::net::TcpStream::connect(target.tcp_addr).is_err() {
                if std::time::Instant::now() > deadline {
                    bail!(
                        "the baseline echo server on {} did not start",
                        target.tcp_addr
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(baselines)
    }
}

impl Drop for Baselines {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
