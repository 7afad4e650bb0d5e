//! `erlmcp-gen logs` on a real Docker cluster (the engine's logs API), as `logs_native.rs` does
//! for log files: every node's lines prefixed with its aligned name and merged in time order,
//! `--tail`, `--since`, `--prometheus`, `--format json`, and `--follow` printing new lines until
//! SIGINT ends it with exit 0. Needs Docker; run under `flock /tmp/erlmcp-docker.lock`.

mod cluster_support;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cluster_support::*;

const NAME: &str = "erlmcp-test-logs-docker";
/// API 27180–81, MCP 27280–81, Prometheus 27380: no other Docker test uses them.
const BASE: u16 = 27180;

fn logs_json(cluster: &TestCluster, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = extra.to_vec();
    args.extend(["--format", "json"]);
    let output = cluster.run("logs", &args);
    assert!(output.status.success(), "{}", text(&output));
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output)));
    assert_eq!(json["command"], "logs");
    json["lines"].as_array().cloned().unwrap_or_default()
}

fn time_of(line: &serde_json::Value) -> jiff::Timestamp {
    line["time"]
        .as_str()
        .unwrap_or_else(|| panic!("a line without a time: {line}"))
        .parse()
        .unwrap()
}

fn sources(lines: &[serde_json::Value]) -> Vec<String> {
    let mut names: Vec<String> = lines
        .iter()
        .map(|l| l["node"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn docker_logs_merge_select_and_follow() {
    if !docker_available() {
        return;
    }
    let cluster = TestCluster::new(NAME, BASE, "docker");
    let applied = cluster.run("apply", &[]);
    assert!(applied.status.success(), "{}", text(&applied));

    // Both nodes and Prometheus have logged by the time Prometheus scrapes them.
    let all = |extra: &[&str]| logs_json(&cluster, extra);
    assert!(
        eventually(Duration::from_secs(60), || {
            sources(&all(&["--prometheus"])) == ["node1", "node2", "prometheus"]
        }),
        "{}",
        text(&cluster.run("logs", &["--prometheus"]))
    );

    // Text: every line is `<name padded to the longest> | <line>`, merged in time order.
    let output = cluster.run("logs", &["--prometheus", "--timestamps"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(!stdout.contains('\u{1b}'), "piped output is plain");
    for line in stdout.lines() {
        let (prefix, _) = line
            .split_once(" | ")
            .unwrap_or_else(|| panic!("unprefixed: {line}"));
        let name = prefix.split_whitespace().next().unwrap_or_default();
        assert!(["node1", "node2", "prometheus"].contains(&name), "{line}");
    }
    let bars: Vec<usize> = stdout.lines().map(|l| l.find(" | ").unwrap()).collect();
    assert!(
        bars.windows(2).all(|w| w[0] == w[1]),
        "names aligned: {stdout}"
    );
    let merged = all(&["--prometheus"]);
    let times: Vec<jiff::Timestamp> = merged.iter().map(time_of).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "merged in time order: {merged:?}"
    );
    assert_eq!(
        sources(&all(&[])),
        ["node1", "node2"],
        "Prometheus only with --prometheus"
    );

    // --tail N: the last N lines of each node.
    let tail = all(&["--tail", "1"]);
    assert_eq!(sources(&tail), ["node1", "node2"]);
    assert_eq!(tail.len(), 2, "{tail:?}");
    let node2 = all(&["node2", "--tail", "2"]);
    assert_eq!(sources(&node2), ["node2"]);
    assert_eq!(node2.len(), 2, "{node2:?}");

    // --since D: no line older than D (the engine filters by whole seconds: one more of slack);
    // the history has lines older than that.
    std::thread::sleep(Duration::from_secs(4));
    let asked = jiff::Timestamp::now();
    let recent = all(&["--since", "2s"]);
    let bound = asked - jiff::SignedDuration::from_secs(3);
    assert!(
        recent.iter().all(|l| time_of(l) >= bound),
        "--since 2s: {recent:?}"
    );
    assert!(
        all(&[]).iter().any(|l| time_of(l) < bound),
        "the history reaches further back than --since"
    );

    // --follow prints lines as they come (node2 logs its drain on a restart, node1 sees it back) and
    // SIGINT ends it with exit 0.
    let mut follower = Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args([
            "logs",
            cluster.file.to_str().unwrap(),
            "--runtime",
            "docker",
            "--follow",
            "--tail",
            "0",
        ])
        .env("ERLMCP_STATE_DIR", cluster.dir.path().join("state"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follower.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // Let the follower attach before the new lines are written.
    std::thread::sleep(Duration::from_secs(2));
    let restarted = Command::new("docker")
        .args(["restart", "-t", "5", &format!("{NAME}-node2")])
        .output()
        .unwrap();
    assert!(restarted.status.success(), "{restarted:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while seen.is_none() && Instant::now() < deadline {
        seen = received
            .recv_timeout(Duration::from_millis(500))
            .ok()
            .filter(|line| line.starts_with("node1 | ") || line.starts_with("node2 | "));
    }
    let seen = seen.expect("a new node line within 30 s of node2's restart");
    assert!(seen.contains("timestamp"), "{seen}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follower.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = follower.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = follower.kill();
            panic!("logs --follow ignored SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
