//! `apply`, `plan`, `status` and `down` on a real single-engine Docker Swarm with a private
//! 2-node cluster: each node is a one-replica service whose MCP listener answers through its
//! published port, Prometheus (a service finding nodes by their names on the overlay network)
//! scrapes both, re-apply touches nothing, a changed node is rolled alone by a service update
//! (the other services keep their versions), and `down` leaves nothing labelled behind.
//!
//! Needs Docker. The test makes this engine a swarm manager (through the engine API, advertising
//! 127.0.0.1) when it is not part of a swarm and leaves the swarm again at the end. It takes
//! `/tmp/erlmcp-docker.lock` itself, so run it plainly (`cargo test --test runtime_swarm`); if
//! you wrap it in `flock` anyway, set `ERLMCP_DOCKER_LOCK_HELD=1`.

mod cluster_support;
mod swarm_support;

use std::time::Duration;

use cluster_support::*;
use swarm_support::*;

const NAME: &str = "erlmcp-test-swarm";
/// API 28130–28131, listeners 28230–28231, Prometheus 28330: no other test uses them.
const BASE: u16 = 28130;

#[test]
fn swarm_runtime_lifecycle() {
    if !docker_available() {
        return;
    }
    let _swarm = SwarmGuard::take();
    let cluster = TestCluster::new(NAME, BASE, "swarm");

    let started = std::time::Instant::now();
    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    eprintln!(
        "first apply (images present or built, 3 services healthy): {:.1?}",
        started.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&applied.stderr).contains("publishes ports on every interface"),
        "Swarm cannot bind 127.0.0.1 only, and apply says so: {}",
        text(&applied)
    );
    for port in [BASE + 100, BASE + 101] {
        let name = mcp_initialize(port).unwrap_or_else(|e| panic!("node on {port}: {e}"));
        assert!(name.contains("erlmcp"), "{name}");
    }

    // The spec Swarm holds: one replica, the node's name as hostname and alias, limits and
    // reservations, ulimits, a healthcheck, the secret as a Swarm secret file, host-mode ports,
    // the rolling-update settings, and no secret value anywhere in the environment.
    let secret = assert_stored_secret(cluster.dir.path(), NAME);
    let spec = service_spec(&format!("{NAME}-node2"));
    let task = spec.task_template.clone().unwrap();
    let container = task.container_spec.clone().unwrap();
    assert_eq!(container.hostname.as_deref(), Some("node2"));
    assert_eq!(container.read_only, Some(true));
    // bollard reads the engine's `Healthcheck` key as `HealthCheck` (the engine takes either
    // on input), so the CLI shows what Swarm holds.
    let health = std::process::Command::new("docker")
        .args([
            "service",
            "inspect",
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Healthcheck.Test}}",
            &format!("{NAME}-node2"),
        ])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&health.stdout).contains("healthcheck"),
        "{}",
        text(&health)
    );
    assert_eq!(container.user.as_deref(), Some("10001:10001"));
    assert!(
        !container
            .env
            .unwrap_or_default()
            .join("\n")
            .contains(&secret),
        "the environment holds the secret"
    );
    let secrets = container.secrets.unwrap_or_default();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        secrets[0].file.as_ref().and_then(|f| f.name.as_deref()),
        Some("/run/secrets/erlmcp_cluster_secret")
    );
    assert_eq!(
        container.ulimits.unwrap_or_default()[0].soft,
        Some(4096),
        "nofile"
    );
    let limits = task.resources.unwrap().limits.unwrap();
    assert_eq!(limits.memory_bytes, Some(128 << 20));
    assert_eq!(limits.nano_cpus, Some(500_000_000));
    let ports = spec.endpoint_spec.unwrap().ports.unwrap();
    assert!(
        ports
            .iter()
            .all(|p| p.publish_mode
                == Some(bollard::models::EndpointPortConfigPublishModeEnum::HOST))
    );
    let update = spec.update_config.unwrap();
    assert_eq!(update.parallelism, Some(1));
    assert_eq!(
        update.failure_action,
        Some(bollard::models::ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
    );
    assert_eq!(
        spec.networks.unwrap()[0].aliases.as_deref(),
        Some(&["node2".to_string()][..])
    );

    // Prometheus scrapes every node by its name on the overlay network.
    let all_up = eventually(Duration::from_secs(90), || {
        let status = cluster.run("status", &["--format", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let targets = json["prometheus"]["targets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        targets.len() == 2 && targets.iter().all(|t| t["health"] == "up")
    });
    assert!(all_up, "{}", text(&cluster.run("status", &[])));

    // Status reads tasks: where each node runs, its task state and health.
    let status = cluster.run("status", &["--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(json["runtime"], "swarm", "{json}");
    for node in json["nodes"].as_array().unwrap() {
        assert_eq!(node["state"], "running", "{node}");
        assert_eq!(node["health"], "healthy", "{node}");
        assert!(
            node["host"].as_str().is_some_and(|h| !h.is_empty()),
            "{node}"
        );
    }
    // Membership works across services: the seed resolves and the secret authenticates.
    let both_alive = [("node1", "alive"), ("node2", "alive")].map(|(n, s)| (n.into(), s.into()));
    assert!(
        eventually(Duration::from_secs(30), || member_states(BASE)
            == both_alive),
        "{:?}",
        member_states(BASE)
    );

    // Re-apply touches nothing.
    let plan = cluster.run("plan", &["--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let node1 = service_version(&format!("{NAME}-node1"));
    let node2 = service_version(&format!("{NAME}-node2"));
    let started = std::time::Instant::now();
    let again = cluster.run("apply", &[]);
    eprintln!("no-op re-apply: {:.1?}", started.elapsed());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again)
    );
    assert_eq!(service_version(&format!("{NAME}-node1")), node1);
    assert_eq!(service_version(&format!("{NAME}-node2")), node2);

    // One changed node is rolled alone, by a service update (same service, new version).
    cluster.change_worker_memory(NAME, BASE, "192MiB");
    let (changed, _) = cluster.planned_changes();
    // Prometheus follows: its alert rules carry each node's memory threshold.
    assert_eq!(
        changed,
        [
            format!("{NAME}-node2").as_str(),
            format!("{NAME}-prometheus").as_str()
        ]
    );
    let started = std::time::Instant::now();
    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    eprintln!(
        "rolling update of node2 and Prometheus, each healthy: {:.1?}",
        started.elapsed()
    );
    assert_eq!(service_version(&format!("{NAME}-node1")), node1);
    let (id, version) = service_version(&format!("{NAME}-node2"));
    assert_eq!(id, node2.0, "node2 was updated in place, not recreated");
    assert!(version > node2.1, "node2 was updated");
    let memory = service_spec(&format!("{NAME}-node2"))
        .task_template
        .and_then(|t| t.resources)
        .and_then(|r| r.limits)
        .and_then(|l| l.memory_bytes);
    assert_eq!(memory, Some(192 << 20));
    mcp_initialize(BASE + 101).expect("the rolled node answers");

    // logs reads each node's service logs, timestamped and named by node.
    let logs = cluster.run("logs", &["node1", "--format", "json"]);
    assert!(logs.status.success(), "{}", text(&logs));
    let json: serde_json::Value = serde_json::from_slice(&logs.stdout).unwrap();
    let lines = json["lines"].as_array().cloned().unwrap_or_default();
    assert!(!lines.is_empty(), "{}", text(&logs));
    assert!(
        lines
            .iter()
            .all(|l| l["node"] == "node1" && l["time"].is_string()),
        "{lines:?}"
    );

    // down leaves nothing labelled but the Prometheus volume; --volumes removes that too.
    let down = cluster.run("down", &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        labelled(NAME)[..4],
        [0, 0, 0, 0],
        "services, networks, secrets, configs"
    );
    let down = cluster.run("down", &["--volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(labelled(NAME), [0; 5]);
}
