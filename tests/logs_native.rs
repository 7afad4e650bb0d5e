//! `erlmcp-gen logs` on a native cluster, without running one: log files laid out as the native
//! runtime writes them (`$ERLMCP_STATE_DIR/<cluster>/logs/<node>.log`), merged in time order
//! with aligned prefixes; `--follow` prints appended lines and ends cleanly on Ctrl-C (SIGINT).

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CLUSTER: &str = "[cluster]\nname = \"logtest\"\n\n[runtime]\nkind = \"native\"\n\n[nodes]\ncount = 2\napi_port = 47480\nlistener_port = 47580\n\n[[node]]\nname = \"node1\"\nrole = \"coordinator\"\n\n[prometheus]\nport = 47690\n";

fn node_line(time: &str, message: &str) -> String {
    format!(
        "{{\"timestamp\":\"{time}\",\"level\":\"INFO\",\"fields\":{{\"message\":\"{message}\"}}}}\n"
    )
}

/// A state directory with two nodes' and Prometheus's logs, interleaved in time.
fn lay_out(dir: &Path) -> String {
    let logs = dir.join("state").join("logtest").join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("node1.log"),
        node_line("2026-11-30T10:00:01Z", "one-a") + &node_line("2026-11-30T10:00:04Z", "one-b"),
    )
    .unwrap();
    std::fs::write(
        logs.join("node2.log"),
        node_line("2026-11-30T10:00:02Z", "two-a") + &node_line("2026-11-30T10:00:05Z", "two-b"),
    )
    .unwrap();
    std::fs::write(
        logs.join("prometheus.log"),
        "ts=2026-11-30T10:00:03Z level=info msg=prom-a\n",
    )
    .unwrap();
    let file = dir.join("cluster.toml");
    std::fs::write(&file, CLUSTER).unwrap();
    file.to_str().unwrap().to_string()
}

fn logs(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"));
    command
        .arg("logs")
        .args(args)
        .env("ERLMCP_STATE_DIR", dir.join("state"))
        .env_remove("CLICOLOR_FORCE");
    command
}

fn messages(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|line| {
            let (prefix, rest) = line.split_once(" | ").unwrap();
            let message = rest
                .split("\"message\":\"")
                .nth(1)
                .map(|m| m.split('"').next().unwrap().to_string())
                .unwrap_or_else(|| rest.split("msg=").nth(1).unwrap().to_string());
            format!("{prefix}:{message}")
        })
        .collect()
}

#[test]
fn every_source_is_merged_in_time_order_with_aligned_names() {
    let dir = tempfile::tempdir().unwrap();
    let file = lay_out(dir.path());
    let output = logs(dir.path(), &[&file, "--prometheus"]).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        !stdout.contains('\u{1b}'),
        "piped output is plain: {stdout}"
    );
    assert_eq!(
        messages(&stdout),
        [
            "node1     :one-a",
            "node2     :two-a",
            "prometheus:prom-a",
            "node1     :one-b",
            "node2     :two-b",
        ]
    );
    // A node by name, its last line only.
    let output = logs(dir.path(), &[&file, "node2", "--tail", "1"])
        .output()
        .unwrap();
    assert_eq!(
        messages(&String::from_utf8(output.stdout).unwrap()),
        ["node2:two-b"]
    );
    // JSON: one document, times as RFC 3339.
    let output = logs(dir.path(), &[&file, "--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["lines"].as_array().unwrap().len(), 4);
    assert_eq!(json["lines"][0]["time"], "2026-11-30T10:00:01Z");
}

#[test]
fn follow_prints_appended_lines_and_ends_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let file = lay_out(dir.path());
    let mut child = logs(dir.path(), &[&file, "--follow", "--tail", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let node2 = dir.path().join("state/logtest/logs/node2.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = None;
    // Append until the follower (which may still be starting) prints it; bounded in time.
    while seen.is_none() && Instant::now() < deadline {
        let mut log = std::fs::OpenOptions::new()
            .append(true)
            .open(&node2)
            .unwrap();
        log.write_all(node_line("2026-11-30T10:00:09Z", "appended").as_bytes())
            .unwrap();
        seen = received.recv_timeout(Duration::from_millis(500)).ok();
    }
    let seen = seen.expect("the appended line within 20 s");
    assert!(
        seen.starts_with("node2 | ") && seen.contains("appended"),
        "{seen}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "logs --follow ignored Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}
