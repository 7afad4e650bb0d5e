//! `erlmcp-gen apply` on `scripts/swarm-lab.sh`'s three-engine swarm with `[swarm] registry`:
//! the lab's engines start empty (no image loaded) and trust a plain-HTTP registry on the lab
//! bridge's gateway (`ERLMCP_LAB_REGISTRY_PORT`), the test runs Debian's `docker-registry`
//! there, and a 3-node cluster constrained to the two worker engines comes up healthy: `apply`
//! built and pushed the images on the manager, and each worker engine that runs a node pulled
//! the node image by digest. A re-apply touches nothing; `down` leaves no service.
//!
//! Needs Docker, nested dockerd (as `tests/swarm_lab.rs`; a loud SKIPPED when this machine
//! cannot) and `/usr/bin/docker-registry` (SKIPPED without it, a failure under CI). Takes
//! /tmp/erlmcp-docker.lock itself.

mod cluster_support;
mod registry_support;

use std::collections::BTreeSet;
use std::fs::File;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cluster_support::{cluster_toml_with_nodes, docker_available, eventually, text};
use registry_support::{Registry, free_port, registry_available};

const NAME: &str = "erlmcp-test-lab-registry";
/// Ports inside the lab's engines (host mode publishes on each engine's own address).
const BASE: u16 = 29130;
const MANAGER: &str = "unix:///tmp/erlmcp-lab/1/docker.sock";
const WORKERS: [&str; 2] = ["erlmcp-lab-2", "erlmcp-lab-3"];

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/swarm-lab.sh")
}

fn swarm_lab(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new("timeout");
    command.arg("300").arg(script()).args(args);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// The docker CLI against lab engine `i`, bounded to 60 s.
fn engine(i: u8, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["60", "docker"])
        .args(args)
        .env(
            "DOCKER_HOST",
            format!("unix:///tmp/erlmcp-lab/{i}/docker.sock"),
        )
        .output()
        .unwrap()
}

/// Takes the lab down when dropped, even on panic.
struct Lab;

impl Drop for Lab {
    fn drop(&mut self) {
        let down = swarm_lab(&["down"], &[]);
        if !down.status.success() {
            eprintln!("swarm-lab.sh down failed: {}", text(&down));
        }
    }
}

/// erlmcp-gen against the lab's manager, with the static node binary found before the lock.
fn erlmcp_gen(args: &[&str], dir: &Path, node_binary: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(args)
        .env("DOCKER_HOST", MANAGER)
        .env("ERLMCP_NODE_BINARY", node_binary)
        .env("ERLMCP_STATE_DIR", dir.join("state"))
        .output()
        .unwrap()
}

#[test]
fn lab_engines_pull_the_images_apply_pushed() {
    if !docker_available() || !registry_available() {
        return;
    }
    let binary =
        erlmcp_gen::engine::image::static_node_binary(&erlmcp_gen::progress::Progress::new(true))
            .unwrap();
    let lock = File::create("/tmp/erlmcp-docker.lock").unwrap();
    lock.lock().unwrap();
    let check = swarm_lab(&["check"], &[]);
    if !check.status.success() {
        eprintln!(
            "SKIPPED: containers here cannot run a nested dockerd: {}",
            String::from_utf8_lossy(&check.stderr).trim()
        );
        return;
    }

    let _ = swarm_lab(&["down"], &[]); // what an aborted run left behind
    let port = free_port();
    let up = swarm_lab(
        &["up", "3"],
        &[("ERLMCP_LAB_REGISTRY_PORT", port.to_string())],
    );
    let _lab = Lab;
    assert!(up.status.success(), "{}", text(&up));
    for i in 1..=3 {
        let images = engine(i, &["images", "-q"]);
        assert_eq!(stdout(&images).trim(), "", "lab-{i} starts with no image");
    }
    let address = swarm_lab(&["registry"], &[]);
    assert!(address.status.success(), "{}", text(&address));
    let address = stdout(&address).trim().to_string();
    let ip: IpAddr = address.rsplit_once(':').unwrap().0.parse().unwrap();
    assert_eq!(address, format!("{ip}:{port}"));
    let registry = Registry::start_on(ip, port);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{NAME}.toml"));
    std::fs::write(
        &file,
        format!(
            "{}\n[swarm]\nregistry = \"{address}/lab\"\n\n[swarm.placement]\nconstraints = [\"node.role==worker\"]\n",
            cluster_toml_with_nodes(NAME, BASE, "swarm", "128MiB", 3)
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();

    let started = std::time::Instant::now();
    let applied = erlmcp_gen(&["apply", file], dir.path(), &binary);
    registry.assert_success(&applied);
    eprintln!(
        "lab apply with a registry (3 nodes and Prometheus on 2 worker engines, images built and pushed on the manager, pulled by the workers): {:.1?}",
        started.elapsed()
    );

    // Every node runs, healthy, on a worker engine, which had no image before.
    let mut json = serde_json::Value::Null;
    let healthy = eventually(Duration::from_secs(60), || {
        let status = erlmcp_gen(&["status", file, "--format", "json"], dir.path(), &binary);
        json = serde_json::from_slice(&status.stdout).unwrap_or_default();
        json["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.len() == 3 && nodes.iter().all(|n| n["health"] == "healthy"))
    });
    assert!(healthy, "{json}");
    let hosts: BTreeSet<&str> = json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["host"].as_str().unwrap_or_default())
        .collect();
    assert!(
        hosts.iter().all(|h| WORKERS.contains(h)),
        "constrained to the workers: {json}"
    );

    // Each of those engines holds the node image under the registry's name, by the digest the
    // services name: it was pulled.
    let service = engine(
        1,
        &[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            &format!("{NAME}-node1"),
        ],
    );
    let image = stdout(&service).trim().to_string();
    let (reference, digest) = image
        .split_once('@')
        .unwrap_or_else(|| panic!("{}", text(&service)));
    let repo = reference.rsplit_once(':').unwrap().0;
    assert_eq!(repo, format!("{address}/lab/erlmcp-node"));
    for host in &hosts {
        let i: u8 = host.rsplit('-').next().unwrap().parse().unwrap();
        let images = engine(
            i,
            &[
                "images",
                "--digests",
                "--format",
                "{{.Repository}}@{{.Digest}}",
            ],
        );
        assert!(
            stdout(&images)
                .lines()
                .any(|l| l == format!("{repo}@{digest}")),
            "{host} did not pull {repo}@{digest}: {}",
            text(&images)
        );
    }
    let catalog = registry.json("/v2/_catalog");
    assert!(
        catalog["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "lab/erlmcp-node"),
        "{catalog}"
    );

    // A second apply touches nothing.
    let again = erlmcp_gen(&["apply", file], dir.path(), &binary);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again)
    );

    let down = erlmcp_gen(&["down", file, "--volumes"], dir.path(), &binary);
    assert!(down.status.success(), "{}", text(&down));
    let services = engine(1, &["service", "ls", "-q"]);
    assert_eq!(stdout(&services).trim(), "", "{}", text(&services));
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}
