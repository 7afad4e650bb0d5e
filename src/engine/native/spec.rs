//! The processes a native cluster wants: each node from its deployment spec on this host's
//! ports, the host's Prometheus, and the `erlmcp-node` binary they run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow};
use serde::Serialize;

use super::NativeEngine;
use crate::config::model::{Cluster, Node};
use crate::deploy_spec::{self, Addressing};
use crate::engine::image;
use crate::plan::{Desired, ResourceKind};
use crate::progress::Progress;

/// One process as the cluster wants it. Ordered maps keep the hash stable.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessSpec {
    /// Name (`<cluster>-<node>`), as containers are named.
    pub name: String,
    /// Which resource this is.
    pub kind: ResourceKind,
    /// Node name (or `prometheus`).
    pub node: String,
    /// The program.
    pub program: PathBuf,
    /// Content hash of the program, so a rebuilt binary restarts the process.
    pub program_hash: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment added to this process's own.
    pub env: BTreeMap<String, String>,
    /// Port answering `/health` (nodes) or `/-/ready` (Prometheus).
    pub health_port: u16,
    /// Files written before the start: (path, contents).
    pub files: Vec<(PathBuf, String)>,
}

/// A dynamically or statically linked `erlmcp-node` to run on this host (beside erlmcp-gen,
/// `ERLMCP_NODE_BINARY`, or built in the workspace).
pub fn node_program(progress: &Progress) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ERLMCP_NODE_BINARY") {
        return Ok(PathBuf::from(path));
    }
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("erlmcp-node")))
        && sibling.is_file()
    {
        return Ok(sibling);
    }
    let root = image::workspace_root().ok_or_else(|| {
        anyhow!("no erlmcp-node beside erlmcp-gen: install both, or set ERLMCP_NODE_BINARY")
    })?;
    image::cargo_build_node(progress, &root, "erlmcp-node (release build)", &[], None)?;
    Ok(root.join("target/release/erlmcp-node"))
}

fn file_hash(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(image::short_hash(&[&bytes]))
}

impl NativeEngine {
    /// Every process the cluster wants.
    pub(super) fn prepare_specs(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<Vec<ProcessSpec>> {
        let program = node_program(progress)?;
        let program_hash = file_hash(&program)?;
        let mut specs: Vec<ProcessSpec> = cluster
            .nodes
            .iter()
            .map(|node| node_spec(cluster, node, &program, &program_hash))
            .collect();
        specs.sort_by_key(|s| s.kind);
        if cluster.prometheus.enabled {
            match image::host_prometheus() {
                Some(prometheus) => specs.push(self.prometheus_spec(cluster, &prometheus)?),
                None => progress.warn(
                    "no `prometheus` on this host (Debian's `prometheus` package); the native cluster runs without it",
                ),
            }
        }
        Ok(specs)
    }

    pub(super) fn prometheus_spec(
        &self,
        cluster: &Cluster,
        program: &Path,
    ) -> anyhow::Result<ProcessSpec> {
        let config_path = self.dir.join("prometheus.yml");
        let config = crate::render::prometheus_config_for_host_ports(cluster)?;
        // prometheus.yml's rule_files names alerts.yml relative to itself.
        let alerts = (
            self.dir.join("alerts.yml"),
            crate::render::alerts_for_host_ports(cluster)?,
        );
        let p = &cluster.prometheus;
        let listen = cluster.reachable(p.port);
        Ok(ProcessSpec {
            name: format!("{}-prometheus", cluster.name),
            kind: ResourceKind::Prometheus,
            node: "prometheus".into(),
            program: program.to_path_buf(),
            program_hash: file_hash(program)?,
            args: vec![
                format!("--config.file={}", config_path.display()),
                format!(
                    "--storage.tsdb.path={}",
                    self.dir.join("prometheus-data").display()
                ),
                format!("--storage.tsdb.retention.time={}", p.retention),
                format!("--web.listen-address={listen}"),
            ],
            env: BTreeMap::new(),
            health_port: p.port,
            files: vec![(config_path, config), alerts],
        })
    }

    /// The desired resources as the planner sees them.
    pub(super) fn planned(specs: &[ProcessSpec]) -> Vec<Desired> {
        specs
            .iter()
            .map(|spec| Desired {
                kind: spec.kind,
                name: spec.name.clone(),
                config_hash: image::short_hash(&[
                    &serde_json::to_vec(spec).expect("specs serialize")
                ]),
            })
            .collect()
    }
}

impl ProcessSpec {
    pub(super) fn of<'a>(specs: &'a [ProcessSpec], name: &str) -> &'a ProcessSpec {
        specs
            .iter()
            .find(|s| s.name == name)
            .expect("the plan names only wanted processes")
    }
}

/// The process for one node: its deployment spec on this host's ports.
pub(super) fn node_spec(
    cluster: &Cluster,
    node: &Node,
    program: &Path,
    program_hash: &str,
) -> ProcessSpec {
    let addressing = Addressing::HostPorts {
        secret_file: crate::engine::secret::stored_path(&cluster.name),
    };
    let spec = deploy_spec::node_deployment(cluster, node, &addressing);
    ProcessSpec {
        kind: ResourceKind::of_role(spec.role),
        node: spec.node.clone(),
        program: program.to_path_buf(),
        program_hash: program_hash.to_string(),
        args: spec.command.clone(),
        env: spec.env_map(),
        health_port: node.api_port,
        files: Vec::new(),
        name: spec.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_gets_its_nodes_deployment_spec_on_host_ports() {
        let cluster = crate::config::committed_cluster("local.toml");
        let node = &cluster.nodes[1];
        let process = node_spec(&cluster, node, Path::new("/bin/erlmcp-node"), "h");
        let addressing = Addressing::HostPorts {
            secret_file: crate::engine::secret::stored_path(&cluster.name),
        };
        let spec = deploy_spec::node_deployment(&cluster, node, &addressing);
        assert_eq!(process.env, spec.env_map());
        assert_eq!(process.kind, ResourceKind::Worker);
        assert_eq!(process.args, ["serve"]);
        assert_eq!(process.health_port, node.api_port);
    }
}
