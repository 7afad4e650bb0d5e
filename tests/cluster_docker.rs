//! Membership and failure detection on the Docker engine, with three nodes in containers: a
//! stopped worker is marked dead within the bound and placement stops choosing it while sessions
//! on the other nodes go on; restarted, it is alive again; cut off the cluster network (through
//! the engine API), it is dead to the others; with the coordinator stopped, the workers keep
//! serving and placing. Finally a node removed from the file has its container removed.

mod cluster_support;

use std::process::Command;
use std::time::Duration;

use cluster_support::*;

const NAME: &str = "erlmcp-test-members";
const BASE: u16 = 28980;

fn get(port: u16, path: &str) -> Option<serde_json::Value> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let response = runtime
        .block_on(erlmcp_gen::probe::get(
            ([127, 0, 0, 1], port).into(),
            path,
            Duration::from_secs(2),
        ))
        .ok()?;
    serde_json::from_str(&response.body).ok()
}

/// The state node `seen_from` (1-based) reports for node `node`.
fn state_of(seen_from: u16, node: &str) -> Option<String> {
    let cluster = get(BASE + seen_from - 1, "/cluster")?;
    cluster["members"]
        .as_array()?
        .iter()
        .find(|m| m["name"] == node)
        .and_then(|m| m["state"].as_str().map(str::to_string))
}

fn docker(args: &[&str]) {
    let status = Command::new("docker").args(args).status().unwrap();
    assert!(status.success(), "docker {args:?}");
}

fn engine_network(action: &str, container: &str) {
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
        let network = format!("{NAME}-net");
        if action == "disconnect" {
            let request = bollard::models::NetworkDisconnectRequest {
                container: container.into(),
                force: Some(true),
            };
            docker.disconnect_network(&network, request).await.unwrap();
        } else {
            let request = bollard::models::NetworkConnectRequest {
                container: container.into(),
                endpoint_config: Some(bollard::models::EndpointSettings {
                    aliases: Some(vec![
                        container
                            .trim_start_matches(&format!("{NAME}-"))
                            .to_string(),
                    ]),
                    ..Default::default()
                }),
            };
            docker.connect_network(&network, request).await.unwrap();
        }
    });
}

#[test]
fn docker_membership_survives_stops_partitions_and_coordinator_loss() {
    if !docker_available() {
        return;
    }
    let cluster = TestCluster::with_nodes(NAME, BASE, "docker", 3);
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let limit = Duration::from_secs(30);
    assert!(
        eventually(limit, || (1..=3).all(|n| state_of(1, &format!("node{n}"))
            .as_deref()
            == Some("alive"))),
        "node1 sees every member alive: {:?}",
        get(BASE, "/cluster")
    );

    // A session on node2 lives through everything that happens to node3.
    mcp_initialize(BASE + 101).unwrap();

    docker(&["stop", "-t", "0", &format!("{NAME}-node3")]);
    assert!(
        eventually(limit, || state_of(1, "node3").as_deref() == Some("dead")),
        "node1 marks node3 dead"
    );
    assert!(
        eventually(limit, || state_of(2, "node3").as_deref() == Some("dead")),
        "node2 marks node3 dead"
    );
    for _ in 0..5 {
        let placed = get(BASE, "/cluster/placement").unwrap();
        assert_ne!(
            placed["name"], "node3",
            "placement skips the dead node: {placed}"
        );
    }
    mcp_initialize(BASE + 101).unwrap();

    docker(&["start", &format!("{NAME}-node3")]);
    assert!(
        eventually(limit, || state_of(1, "node3").as_deref() == Some("alive")),
        "node3 rejoins"
    );

    // Cut node2 off the cluster network through the engine API, then put it back.
    engine_network("disconnect", &format!("{NAME}-node2"));
    assert!(
        eventually(limit, || state_of(1, "node2").as_deref() == Some("dead")),
        "a cut-off node is dead"
    );
    engine_network("connect", &format!("{NAME}-node2"));
    assert!(
        eventually(limit, || state_of(1, "node2").as_deref() == Some("alive")),
        "and alive once back"
    );

    // Without the coordinator the workers keep seeing each other, placing and serving.
    docker(&["stop", "-t", "0", &format!("{NAME}-node1")]);
    assert!(eventually(limit, || state_of(2, "node1").as_deref() == Some("dead")));
    assert_eq!(state_of(2, "node3").as_deref(), Some("alive"));
    assert!(get(BASE + 1, "/cluster/placement").is_some_and(|p| p["name"] != "node1"));
    mcp_initialize(BASE + 101).unwrap();

    // A node removed from the file loses its container on the next apply.
    std::fs::write(
        &cluster.file,
        cluster_toml_with_nodes(NAME, BASE, "docker", "128MiB", 2),
    )
    .unwrap();
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let left = Command::new("docker")
        .args(["ps", "-a", "-q", "--filter", &format!("name={NAME}-node3")])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&left.stdout).trim(),
        "",
        "node3's container is gone"
    );
}
