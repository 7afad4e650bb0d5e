//! An unchanged official MCP client from another language, the Python SDK (`pip install mcp`),
//! connects to the coordinator's `/mcp` and its session lands, through the proxy, on the
//! least-loaded worker. CI installs the SDK; elsewhere a missing SDK is a loud skip.

mod support;

use std::process::Command;
use std::time::Duration;

use erlmcp_node::config::Role;
use support::{Client, TestNode, eventually, http};

fn sdk_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "CI installs the Python MCP SDK (pip install mcp)"
        );
        eprintln!("SKIPPED: python mcp SDK not installed (pip install mcp)");
    }
    ok
}

fn script() -> String {
    format!("{}/tests/python/sdk_client.py", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) {
    let output = Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.ends_with("ok\n"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn python_sdk_through_the_coordinator_lands_on_the_least_loaded_worker() {
    if !sdk_available() {
        return;
    }
    let fast = |config: &mut erlmcp_node::config::NodeConfig| {
        config.cluster = "erlmcp".into(); // the script looks for it in erlmcp://node/info
        config.heartbeat_interval = Duration::from_millis(100);
        config.dead_after = Duration::from_millis(600);
    };
    let coordinator = TestNode::start(|c| {
        c.node_name = "coordinator".into();
        fast(c);
    });
    let seed = coordinator.api.to_string();
    let worker = TestNode::start(move |c| {
        c.node_name = "w1".into();
        c.role = Role::Worker;
        c.seeds = vec![seed];
        fast(c);
    });
    // One open session makes the coordinator busier than the idle worker.
    let mut busy = Client::connect(coordinator.tcp);
    busy.initialize();
    assert!(eventually(|| {
        let (_, _, body) = http(coordinator.api, "GET", "/cluster/placement", &[], "");
        body.contains(r#""name":"w1""#)
    }));
    run(&["http", &format!("http://{}/mcp", coordinator.api)]);
    let http_sessions = |node: &TestNode| {
        node.node
            .metrics
            .render()
            .lines()
            .find(|l| l.starts_with("erlmcp_connections_total{transport=\"http\"}"))
            .map(str::to_string)
    };
    assert_eq!(
        http_sessions(&worker).as_deref(),
        Some("erlmcp_connections_total{transport=\"http\"} 1")
    );
    assert_eq!(
        http_sessions(&coordinator).as_deref(),
        Some("erlmcp_connections_total{transport=\"http\"} 0")
    );
}
