//! `[swarm] registry` on a real single-engine swarm with a real registry: `apply` pushes the
//! node and Prometheus images to a private registry (Debian's `docker-registry`, the
//! distribution registry, run by the test on a free loopback port) and the services name them
//! by digest; the registry's catalog and tags show them, the digest in each service is the
//! registry's own for that tag, the nodes become healthy, a re-apply touches nothing, a changed
//! registry is a change to `plan`, a task whose engine lacks the image pulls it from the
//! registry by digest, a pull that fails shows in `status` (and `apply` stops at its push when
//! the registry is gone), and `down` leaves nothing labelled.
//!
//! Needs Docker and `/usr/bin/docker-registry` (`apt-get install docker-registry`; a loud SKIPPED
//! without it, a failure under CI). Docker treats registries on 127.0.0.0/8 as insecure, so the
//! engine pushes there over plain HTTP with no configuration. Run it plainly (`cargo test --test
//! runtime_swarm_registry`): it takes `/tmp/erlmcp-docker.lock` itself.

mod cluster_support;
mod registry_support;
mod swarm_support;

use std::process::Command;
use std::time::Duration;

use bollard::query_parameters::RemoveImageOptionsBuilder;
use cluster_support::*;
use registry_support::*;
use swarm_support::*;

const NAME: &str = "erlmcp-test-swarm-registry";
/// API 27780–27781, listeners 27880–27881, Prometheus 27980: no other test uses them.
const BASE: u16 = 27780;
/// The path under the registry the test pushes to.
const PATH: &str = "erlmcp-test";

/// The image reference the live service hands its engines.
fn service_image(service: &str) -> String {
    service_spec(service)
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.image)
        .unwrap_or_default()
}

/// Untags the registry's names from this engine (the images keep their local tags), so no tag
/// for a registry that is gone stays behind.
fn untag(references: &[String]) {
    block_on(async {
        let docker = engine().await;
        for reference in references {
            let options = RemoveImageOptionsBuilder::default().noprune(true).build();
            let _ = docker.remove_image(reference, Some(options), None).await;
        }
    });
}

/// Whether this engine has an image by `reference`.
fn has_image(reference: &str) -> bool {
    block_on(async { engine().await.inspect_image(reference).await.is_ok() })
}

/// A new task for the service with its spec unchanged (`docker service update --force`),
/// without the CLI asking a registry for the image's digest again.
fn force_new_task(service: &str) {
    let forced = Command::new("docker")
        .args([
            "service",
            "update",
            "--detach",
            "--force",
            "--no-resolve-image",
        ])
        .arg(service)
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", text(&forced));
}

fn write_cluster(cluster: &TestCluster, registry: &str) {
    let text = cluster_toml(NAME, BASE, "swarm", "128MiB");
    std::fs::write(
        &cluster.file,
        format!("{text}\n[swarm]\nregistry = \"{registry}\"\n"),
    )
    .unwrap();
}

#[test]
fn swarm_pulls_its_images_from_the_registry_by_digest() {
    if !docker_available() || !registry_available() {
        return;
    }
    let _swarm = SwarmGuard::take();
    let registry = Registry::start_on_loopback();
    let cluster = TestCluster::new(NAME, BASE, "swarm");
    let prefix = format!("{}/{PATH}", registry.address());
    write_cluster(&cluster, &prefix);

    let started = std::time::Instant::now();
    let applied = cluster.run("apply", &[]);
    registry.assert_success(&applied);
    eprintln!(
        "first apply with a registry (images pushed, 3 services healthy): {:.1?}",
        started.elapsed()
    );
    assert!(
        !String::from_utf8_lossy(&applied.stderr).contains("images on every engine"),
        "engines pull: no presence check: {}",
        text(&applied)
    );

    // Every service names its image under the registry, by the digest the registry serves.
    let mut pushed = Vec::new();
    for service in ["node1", "node2", "prometheus"] {
        let image = service_image(&format!("{NAME}-{service}"));
        let (reference, digest) = image
            .split_once('@')
            .unwrap_or_else(|| panic!("{service}: {image} has no digest"));
        assert!(
            digest.starts_with("sha256:") && digest.len() == 71,
            "{image}"
        );
        let (repo, tag) = reference.rsplit_once(':').unwrap();
        let path = repo
            .strip_prefix(&format!("{}/", registry.address()))
            .unwrap_or_else(|| panic!("{service}: {image} is not under {prefix}"));
        assert_eq!(
            registry.manifest_digest(path, tag),
            digest,
            "{service}: the registry serves other bytes for {reference}"
        );
        if service == "node1" {
            assert_eq!(path, format!("{PATH}/erlmcp-node"));
            assert!(tag.starts_with("0.0.1-"), "the cluster's own tag: {tag}");
        }
        pushed.push((path.to_string(), tag.to_string(), reference.to_string()));
    }
    assert_eq!(
        service_image(&format!("{NAME}-node1")),
        service_image(&format!("{NAME}-node2"))
    );

    // The registry's catalog and tags list show what was pushed.
    let catalog = registry.json("/v2/_catalog");
    let repositories: Vec<&str> = catalog["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r.as_str())
        .collect();
    for (path, tag, _) in &pushed {
        assert!(repositories.contains(&path.as_str()), "{catalog}");
        let tags = registry.json(&format!("/v2/{path}/tags/list"));
        assert!(
            tags["tags"].as_array().unwrap().iter().any(|t| t == tag),
            "{tags}"
        );
    }

    // The nodes run, healthy, and answer MCP.
    let healthy = eventually(Duration::from_secs(60), || {
        let status = cluster.run("status", &["--format", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        json["nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.len() == 2 && nodes.iter().all(|n| n["health"] == "healthy"))
    });
    assert!(healthy, "{}", text(&cluster.run("status", &[])));
    for port in [BASE + 100, BASE + 101] {
        mcp_initialize(port).unwrap_or_else(|e| panic!("node on {port}: {e}"));
    }

    // A second apply touches nothing (and pushes nothing).
    let plan = cluster.run("plan", &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let versions: Vec<u64> = ["node1", "node2", "prometheus"]
        .iter()
        .map(|s| service_version(&format!("{NAME}-{s}")).1)
        .collect();
    let started = std::time::Instant::now();
    let again = cluster.run("apply", &[]);
    eprintln!("no-op re-apply with a registry: {:.1?}", started.elapsed());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again)
    );
    let after: Vec<u64> = ["node1", "node2", "prometheus"]
        .iter()
        .map(|s| service_version(&format!("{NAME}-{s}")).1)
        .collect();
    assert_eq!(after, versions);

    // Another registry is a change of every service to `plan` (the config-hash label).
    write_cluster(&cluster, &format!("{prefix}/elsewhere"));
    let (changed, json) = cluster.planned_changes();
    assert_eq!(
        changed,
        ["node1", "node2", "prometheus"].map(|s| format!("{NAME}-{s}")),
        "{json}"
    );
    write_cluster(&cluster, &prefix);

    // A real pull: once this engine no longer has the pushed image by its name, node2's next
    // task must pull it from the registry, by digest.
    let node_image = service_image(&format!("{NAME}-node2"));
    let (by_tag, digest) = node_image.split_once('@').unwrap();
    let by_digest = format!("{}@{digest}", by_tag.rsplit_once(':').unwrap().0);
    let pushed_names = [by_tag.to_string(), by_digest.clone()];
    untag(&pushed_names);
    assert!(!has_image(&by_digest), "{by_digest} is still on the engine");
    let before = service_version(&format!("{NAME}-node2")).1;
    force_new_task(&format!("{NAME}-node2"));
    let pulled = eventually(Duration::from_secs(60), || {
        service_version(&format!("{NAME}-node2")).1 > before
            && has_image(&by_digest)
            && mcp_initialize(BASE + 101).is_ok()
    });
    assert!(
        pulled,
        "node2 did not come back from a pull\n{}\n--- registry\n{}",
        text(&cluster.run("status", &[])),
        registry.log()
    );

    // A pull that fails: the registry is gone, so node2's next task cannot pull and is
    // rejected. `status` shows the engine's error, and `apply` stops at its push, naming the
    // registry.
    drop(registry);
    untag(&pushed_names);
    force_new_task(&format!("{NAME}-node2"));
    let mut last = serde_json::Value::Null;
    let rejected = eventually(Duration::from_secs(60), || {
        let status = cluster.run("status", &["--format", "json"]);
        last = serde_json::from_slice(&status.stdout).unwrap_or_default();
        last["nodes"][1]["error"]
            .as_str()
            .is_some_and(|e| e.contains("rejected") && e.contains("No such image"))
    });
    assert!(rejected, "{last}");
    let status = cluster.run("status", &[]);
    let shown = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(
        shown.contains("No such image") && shown.contains("could not pull"),
        "{shown}"
    );
    eprintln!("status with a failed pull:\n{shown}");
    let failed = cluster.run("apply", &[]);
    assert!(!failed.status.success(), "{}", text(&failed));
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("is the registry running"),
        "{}",
        text(&failed)
    );

    // down is unchanged: nothing labelled stays.
    let down = cluster.run("down", &["--volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(labelled(NAME)[..2], [0, 0], "services, networks");
    untag(&pushed.into_iter().map(|(_, _, r)| r).collect::<Vec<_>>());
}
