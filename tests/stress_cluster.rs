//! `erlmcp-gen stress` against a real cluster (clusters/local.toml's shape, private names and
//! ports) on both runtimes: the CSV schemas, counts that reconcile, and a node killed mid-run
//! showing up as counted failures and re-placed sessions rather than a crash.

mod cluster_support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cluster_support::*;

fn header(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn summary(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap()
}

fn check_files(out: &Path) {
    assert_eq!(
        header(&out.join("connections.csv")),
        "second,target,open,opened,closed,failed"
    );
    assert_eq!(
        header(&out.join("latency.csv")),
        "second,sent,ok,failed,p50_ms,p95_ms,p99_ms,p999_ms,max_ms"
    );
    assert_eq!(
        header(&out.join("resource-usage.csv")),
        "second,node,cpu_percent,memory_bytes,memory_limit_bytes,open_fds,sessions,rx_bytes_per_second,tx_bytes_per_second,source"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.matches("<svg").count() >= 5,
        "report.html has its charts"
    );
    assert!(out.join("summary.txt").exists());
    let s = summary(out);
    let (sent, ok, failed) = (
        s["requests"]["sent"].as_u64().unwrap(),
        s["requests"]["ok"].as_u64().unwrap(),
        s["requests"]["failed"].as_u64().unwrap(),
    );
    assert_eq!(sent, ok + failed, "sent = ok + failed");
    assert!(sent > 0);
}

/// Checks a run during which a node was killed: the generator ended normally, its files
/// reconcile, and the kill shows up as counted failures. Returns the summary.
fn survived_a_kill(run: &std::process::Output, out: &Path) -> serde_json::Value {
    assert!(
        run.status.code().is_some(),
        "the generator did not crash: {}",
        text(run)
    );
    check_files(out);
    let s = summary(out);
    let failures =
        s["sessions"]["failed"].as_u64().unwrap() + s["requests"]["failed"].as_u64().unwrap();
    assert!(failures > 0, "the kill shows up as counted failures: {s}");
    s
}

fn stress(cluster: &TestCluster, out: &Path, extra: &[&str]) -> std::process::Output {
    let out = out.to_str().unwrap();
    let mut args = vec![
        "--connections",
        "100",
        "--duration",
        "4s",
        "--ramp",
        "1s",
        "--rate",
        "100",
        "--out",
        out,
        "-q",
    ];
    args.extend_from_slice(extra);
    cluster.run("stress", &args)
}

#[test]
fn native_stress_writes_reconciled_files() {
    let cluster = TestCluster::new("erlmcp-test-stress-native", 39080, "native");
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let out = cluster.dir.path().join("results");
    let run = stress(&cluster, &out, &[]);
    assert!(run.status.code().is_some(), "{}", text(&run));
    check_files(&out);
    let s = summary(&out);
    assert_eq!(s["sessions"]["peak_open"], 100, "{s}");
    assert!(
        s["baseline"]["throughput_rps"].as_f64().unwrap() > 0.0,
        "the baseline ran in the same run"
    );
    assert!(out.join("baseline/summary.json").exists());
    let sampled = std::fs::read_to_string(out.join("resource-usage.csv")).unwrap();
    assert!(sampled.contains(",node1,"), "{sampled}");
    assert!(
        !sampled.contains("baseline-"),
        "only the cluster's nodes are sampled in its phase: {sampled}"
    );
}

#[test]
fn a_node_killed_mid_run_is_counted_and_its_sessions_replaced() {
    let cluster = TestCluster::new("erlmcp-test-stress-kill", 39380, "native");
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let state = cluster
        .dir
        .path()
        .join("state/erlmcp-test-stress-kill/state.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state).unwrap()).unwrap();
    let node2 = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["node"] == "node2")
        .map(|p| p["pid"].as_i64().unwrap())
        .unwrap();
    let out = cluster.dir.path().join("results");
    let file = cluster.file.clone();
    let state_dir = cluster.dir.path().join("state");
    let out_arg = out.clone();
    let runner = std::thread::spawn(move || {
        Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
            .args([
                "stress",
                file.to_str().unwrap(),
                "--runtime",
                "native",
                "--no-baseline",
                "-q",
            ])
            .args([
                "--connections",
                "100",
                "--duration",
                "6s",
                "--ramp",
                "1s",
                "--rate",
                "100",
            ])
            .arg("--out")
            .arg(&out_arg)
            .env("ERLMCP_STATE_DIR", state_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    });
    std::thread::sleep(Duration::from_secs(3));
    let _ = Command::new("kill")
        .args(["-KILL", &node2.to_string()])
        .status();
    let s = survived_a_kill(&runner.join().unwrap(), &out);
    let node1 = s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["node"] == "node1")
        .unwrap()
        .clone();
    assert!(
        node1["opened"].as_u64().unwrap() > 50,
        "node2's sessions were re-placed on node1: {node1}"
    );
}

/// Names of the stress containers (workers, baselines) of `cluster` that still exist.
fn stress_containers_of(cluster: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args([
            "ps",
            "-a",
            "--filter",
            &format!("label=erlmcp.stress-of={cluster}"),
            "--format",
            "{{.Names}}",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn docker_stress_runs_workers_and_baselines_on_the_cluster_network() {
    if !docker_available() {
        return;
    }
    let cluster = TestCluster::new("erlmcp-test-stress-docker", 28680, "docker");
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let out = cluster.dir.path().join("results");
    // `--workers auto` on Docker: worker and baseline containers on the cluster network.
    let run = stress(&cluster, &out, &[]);
    assert!(run.status.code().is_some(), "{}", text(&run));
    check_files(&out);
    check_files(&out.join("baseline"));
    let s = summary(&out);
    assert_eq!(s["sessions"]["peak_open"], 100, "{s}");
    assert_eq!(s["sessions"]["failed"], 0, "{s}");
    assert_eq!(
        summary(&out.join("baseline"))["sessions"]["peak_open"],
        100,
        "the baseline containers held their sessions"
    );
    assert!(s["baseline"].is_object(), "the summary compares: {s}");
    assert_eq!(
        stress_containers_of("erlmcp-test-stress-docker"),
        Vec::<String>::new(),
        "every stress container is removed after the run"
    );
    // MCP over Streamable HTTP from the same in-network workers, to each node's API port.
    let http_out = cluster.dir.path().join("results-http");
    let run = stress(
        &cluster,
        &http_out,
        &["--no-baseline", "--transport", "http"],
    );
    assert!(run.status.code().is_some(), "{}", text(&run));
    check_files(&http_out);
    let s = summary(&http_out);
    assert_eq!(s["transport"], "http", "{s}");
    assert_eq!(s["sessions"]["peak_open"], 100, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
}

#[test]
fn docker_stress_from_host_workers_goes_through_published_ports() {
    if !docker_available() {
        return;
    }
    let cluster = TestCluster::new("erlmcp-test-stress-dhost", 29580, "docker");
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let out = cluster.dir.path().join("results");
    let run = stress(&cluster, &out, &["--no-baseline", "--workers", "host"]);
    assert!(run.status.code().is_some(), "{}", text(&run));
    check_files(&out);
    assert_eq!(summary(&out)["sessions"]["peak_open"], 100);
}

#[test]
fn a_docker_node_killed_mid_run_is_counted_and_its_sessions_replaced() {
    if !docker_available() {
        return;
    }
    let name = "erlmcp-test-stress-dkill";
    let cluster = TestCluster::new(name, 29880, "docker");
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));
    let out = cluster.dir.path().join("results");
    let file = cluster.file.clone();
    let out_arg = out.clone();
    let runner = std::thread::spawn(move || {
        Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
            .args(["stress", file.to_str().unwrap(), "--runtime", "docker"])
            .args(["--no-baseline", "-q", "--connections", "100"])
            .args(["--duration", "8s", "--ramp", "1s", "--rate", "100"])
            .arg("--out")
            .arg(&out_arg)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap()
    });
    // The workers' containers start before their sessions: wait for them, then for the hold.
    assert!(
        eventually(Duration::from_secs(60), || !stress_containers_of(name)
            .is_empty()),
        "the stress workers started"
    );
    std::thread::sleep(Duration::from_secs(4));
    let killed = Command::new("docker")
        .args(["kill", &format!("{name}-node2")])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", text(&killed));
    let s = survived_a_kill(&runner.join().unwrap(), &out);
    assert!(
        s["sessions"]["opened"].as_u64().unwrap() > 100,
        "the killed node's sessions were opened again (on node1, or on node2 once the engine restarted it): {s}"
    );
}
