//! `apply`, `plan`, `status` and `down` against the real Docker engine with a private 2-node
//! cluster: nodes answer MCP through their published ports, Prometheus scrapes them, re-apply is a
//! no-op, a changed node is the only one recreated, `down` leaves nothing labelled behind, and a
//! taken host port gives a clear error and a clean state; every container runs with least
//! privilege and holds the cluster secret as a file, never in its environment. Needs Docker.

mod cluster_support;

use std::process::Command;
use std::time::Duration;

use cluster_support::*;

const NAME: &str = "erlmcp-test-docker";
const BASE: u16 = 28080;

fn container_id(name: &str) -> String {
    let output = Command::new("docker")
        .args(["inspect", "-f", "{{.Id}}", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// The engine's view of a container (through bollard, as `apply` sees it).
fn inspect(name: &str) -> bollard::models::ContainerInspectResponse {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let docker = bollard::Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        docker
            .inspect_container(
                name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .unwrap()
    })
}

/// Least privilege on the live container, a health check, and no secret value in its env.
fn assert_locked_down(name: &str, secret: &str) {
    let container = inspect(name);
    let host = container.host_config.unwrap();
    assert_eq!(host.readonly_rootfs, Some(true), "{name}: read-only root");
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]), "{name}");
    assert!(
        host.security_opt
            .unwrap_or_default()
            .contains(&"no-new-privileges:true".to_string()),
        "{name}: no-new-privileges"
    );
    let config = container.config.unwrap();
    let user = config.user.unwrap_or_default();
    assert!(
        !user.is_empty() && !user.starts_with("0") && !user.starts_with("root"),
        "{name} runs as {user:?}"
    );
    let test = config.healthcheck.and_then(|h| h.test).unwrap_or_default();
    assert!(
        !test.is_empty() && test[0] != "NONE",
        "{name} has no health check"
    );
    let env = config.env.unwrap_or_default().join("\n");
    assert!(
        !env.contains(secret),
        "{name}'s environment holds the secret"
    );
    let health = container
        .state
        .and_then(|s| s.health)
        .and_then(|h| h.status)
        .map(|s| s.to_string());
    assert_eq!(health.as_deref(), Some("healthy"), "{name}");
}

fn labelled(kind: &str) -> String {
    let filter = format!("label=erlmcp.cluster={NAME}");
    let args: Vec<&str> = match kind {
        "container" => vec!["ps", "-a", "-q", "--filter", &filter],
        "network" => vec!["network", "ls", "-q", "--filter", &filter],
        _ => vec!["volume", "ls", "-q", "--filter", &filter],
    };
    let output = Command::new("docker").args(&args).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[test]
fn docker_runtime_lifecycle() {
    if !docker_available() {
        return;
    }
    let cluster = TestCluster::new(NAME, BASE, "docker");

    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    for port in [BASE + 100, BASE + 101] {
        let name = mcp_initialize(port).unwrap_or_else(|e| panic!("node on {port}: {e}"));
        assert!(name.contains("erlmcp"), "{name}");
    }

    // Prometheus scrapes every node: one up target per node, and the seed's query has a series each.
    let all_up = eventually(Duration::from_secs(60), || {
        let status = cluster.run("status", &["--format", "json"]);
        let json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap_or_default();
        let targets = json["prometheus"]["targets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        targets.len() == 2 && targets.iter().all(|t| t["health"] == "up")
    });
    assert!(all_up, "{}", text(&cluster.run("status", &[])));
    let series = eventually(Duration::from_secs(30), || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let response = runtime.block_on(erlmcp_gen::probe::get(
            ([127, 0, 0, 1], BASE + 200).into(),
            "/api/v1/query?query=erlmcp_connections_active",
            Duration::from_secs(3),
        ));
        response.is_ok_and(|r| {
            let json: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_default();
            let result = json["data"]["result"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut nodes: Vec<String> = result
                .iter()
                .map(|s| s["metric"]["node"].to_string())
                .collect();
            nodes.sort();
            nodes.dedup();
            nodes.len() == 2
        })
    });
    assert!(
        series,
        "Prometheus has no erlmcp_connections_active series for both nodes"
    );

    // Membership is authenticated by the secret apply made; the containers hold it as a
    // read-only file, never in their environment, and run with least privilege.
    let secret = assert_stored_secret(cluster.dir.path(), NAME);
    let both_alive = [("node1", "alive"), ("node2", "alive")].map(|(n, s)| (n.into(), s.into()));
    assert!(
        eventually(Duration::from_secs(20), || member_states(BASE)
            == both_alive),
        "{:?}",
        member_states(BASE)
    );
    for container in ["node1", "node2", "prometheus"] {
        assert_locked_down(&format!("{NAME}-{container}"), &secret);
    }

    // Re-apply touches nothing.
    let plan = cluster.run("plan", &[]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let again = cluster.run("apply", &[]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("nothing to do"),
        "{}",
        text(&again)
    );
    assert_eq!(
        assert_stored_secret(cluster.dir.path(), NAME),
        secret,
        "re-apply kept it"
    );

    // One changed node is the only one recreated.
    let node1 = container_id(&format!("{NAME}-node1"));
    let node2 = container_id(&format!("{NAME}-node2"));
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
    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(container_id(&format!("{NAME}-node1")), node1);
    assert_ne!(container_id(&format!("{NAME}-node2")), node2);

    // down leaves nothing labelled but the volume; --volumes removes that too.
    let down = cluster.run("down", &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(labelled("container"), "");
    assert_eq!(labelled("network"), "");
    assert_ne!(
        labelled("volume"),
        "",
        "the Prometheus volume is kept without --volumes"
    );
    assert_eq!(
        assert_stored_secret(cluster.dir.path(), NAME),
        secret,
        "down keeps it"
    );
    let down = cluster.run("down", &["--volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(labelled("volume"), "");
    assert!(!stored_secret(cluster.dir.path(), NAME).exists());
}

#[test]
fn a_taken_host_port_fails_clearly_and_leaves_a_clean_state() {
    if !docker_available() {
        return;
    }
    const TAKEN_NAME: &str = "erlmcp-test-docker-port";
    const TAKEN_BASE: u16 = 28380;
    let cluster = TestCluster::new(TAKEN_NAME, TAKEN_BASE, "docker");
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", TAKEN_BASE + 100)).unwrap();
    let applied = cluster.run("apply", &[]);
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert!(
        stderr.contains(&format!("starting container {TAKEN_NAME}-node1")),
        "{stderr}"
    );
    assert!(
        stderr.contains("already") || stderr.contains("in use"),
        "{stderr}"
    );
    let filter = format!("label=erlmcp.cluster={TAKEN_NAME}");
    let left = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &filter])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "a half-made container was left behind"
    );
}
