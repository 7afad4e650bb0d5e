//! The native runtime passes the same lifecycle as Docker: local `erlmcp-node` processes answer
//! MCP on their ports, the host's Prometheus (when installed) scrapes them, re-apply is a no-op,
//! a changed node is the only one restarted, `down` stops everything, and a taken port fails
//! clearly without leaving a dead process in the state file.

mod cluster_support;

use std::time::Duration;

use cluster_support::*;

const NAME: &str = "erlmcp-test-native";
const BASE: u16 = 38080;

fn pids(cluster: &TestCluster) -> Vec<(String, i64)> {
    pids_of(cluster, NAME)
}

fn pids_of(cluster: &TestCluster, name: &str) -> Vec<(String, i64)> {
    let path = cluster
        .dir
        .path()
        .join("state")
        .join(name)
        .join("state.json");
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["pid"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pid_of(cluster: &TestCluster, name: &str) -> i64 {
    pids(cluster)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, p)| p)
        .unwrap()
}

#[test]
fn native_runtime_lifecycle() {
    let cluster = TestCluster::new(NAME, BASE, "native");
    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    for port in [BASE + 100, BASE + 101] {
        let name = mcp_initialize(port).unwrap_or_else(|e| panic!("node on {port}: {e}"));
        assert!(name.contains("erlmcp"), "{name}");
    }
    // apply made the cluster secret; the nodes authenticate each other with it and see each
    // other alive, and its value is in no node's environment (only its path is).
    let secret = assert_stored_secret(cluster.dir.path(), NAME);
    let both_alive = [("node1", "alive"), ("node2", "alive")].map(|(n, s)| (n.into(), s.into()));
    assert!(
        eventually(Duration::from_secs(20), || member_states(BASE)
            == both_alive),
        "{:?}",
        member_states(BASE)
    );
    for (name, pid) in pids(&cluster) {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let environ = String::from_utf8_lossy(&environ);
        assert!(
            !environ.contains(&secret),
            "{name}'s environment holds the secret"
        );
        if name.ends_with("node1") {
            assert!(environ.contains("ERLMCP_CLUSTER_SECRET_FILE="), "{name}");
        }
    }
    if erlmcp_gen::engine::image::host_prometheus().is_some() {
        let all_up = eventually(Duration::from_secs(60), || {
            let status = cluster.run("status", &["--format", "json"]);
            let json: serde_json::Value =
                serde_json::from_slice(&status.stdout).unwrap_or_default();
            let targets = json["prometheus"]["targets"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            targets.len() == 2 && targets.iter().all(|t| t["health"] == "up")
        });
        assert!(all_up, "{}", text(&cluster.run("status", &[])));
    } else {
        assert!(std::env::var("CI").is_err(), "CI installs prometheus");
        eprintln!("SKIPPED: the Prometheus part (no `prometheus` on this host)");
    }

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

    let node1 = pid_of(&cluster, &format!("{NAME}-node1"));
    let node2 = pid_of(&cluster, &format!("{NAME}-node2"));
    // Memory limits do not apply to processes, so change something a process does see.
    std::fs::write(
        &cluster.file,
        cluster_toml(NAME, BASE, "native", "128MiB").replace(
            "[[node]]\nname = \"node2\"\n",
            "[[node]]\nname = \"node2\"\nconnections = 150\n",
        ),
    )
    .unwrap();
    let plan = cluster.run("plan", &["--format", "json", "--detailed-exitcode"]);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));
    assert_eq!(pid_of(&cluster, &format!("{NAME}-node1")), node1);
    assert_ne!(pid_of(&cluster, &format!("{NAME}-node2")), node2);

    let status = cluster.run("status", &[]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("healthy"),
        "{}",
        text(&status)
    );

    let down = cluster.run("down", &[]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(pids(&cluster).is_empty());
    assert!(
        mcp_initialize(BASE + 100).is_err(),
        "node1 still answers after down"
    );
    assert_eq!(
        assert_stored_secret(cluster.dir.path(), NAME),
        secret,
        "down keeps it"
    );
    let down = cluster.run("down", &["--volumes"]);
    assert!(down.status.success(), "{}", text(&down));
    assert!(!stored_secret(cluster.dir.path(), NAME).exists());
}

#[test]
fn a_taken_port_fails_clearly_without_a_dead_process_in_the_state() {
    const TAKEN_NAME: &str = "erlmcp-test-native-port";
    const TAKEN_BASE: u16 = 38380;
    let cluster = TestCluster::new(TAKEN_NAME, TAKEN_BASE, "native");
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", TAKEN_BASE + 100)).unwrap();
    let applied = cluster.run("apply", &[]);
    assert_eq!(applied.status.code(), Some(1), "{}", text(&applied));
    let stderr = String::from_utf8_lossy(&applied.stderr);
    assert!(stderr.contains(&format!("{TAKEN_NAME}-node1")), "{stderr}");
    let state = cluster
        .dir
        .path()
        .join("state")
        .join(TAKEN_NAME)
        .join("state.json");
    let text = std::fs::read_to_string(state).unwrap_or_default();
    assert!(
        !text.contains("node1"),
        "state still names the failed node: {text}"
    );
}

#[test]
fn nodes_do_not_inherit_descriptors_erlmcp_gen_inherited() {
    const INHERIT_NAME: &str = "erlmcp-test-native-fds";
    const INHERIT_BASE: u16 = 38680;
    let cluster = TestCluster::new(INHERIT_NAME, INHERIT_BASE, "native");
    let held = cluster.dir.path().join("held-by-the-caller");
    // A shell opens fd 7 without close-on-exec, as `flock` or a CI runner would hand it over.
    let applied = std::process::Command::new("bash")
        .arg("-c")
        .arg(r#"exec 7>>"$HELD"; exec "$BIN" apply "$FILE" --runtime native"#)
        .env("HELD", &held)
        .env("BIN", env!("CARGO_BIN_EXE_erlmcp-gen"))
        .env("FILE", &cluster.file)
        .env("ERLMCP_STATE_DIR", cluster.dir.path().join("state"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(applied.status.success(), "{}", text(&applied));
    // The nodes, and the host's Prometheus where one is installed: every process apply leaves.
    let processes = pids_of(&cluster, INHERIT_NAME);
    assert!(processes.len() >= 2, "{processes:?}");
    for (name, pid) in processes {
        let open: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .collect();
        assert!(
            !open.contains(&held),
            "{name} (pid {pid}) holds the caller's descriptor: {open:?}"
        );
    }
    let down = cluster.run("down", &[]);
    assert!(down.status.success(), "{}", text(&down));
}
