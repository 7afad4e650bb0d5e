//! Shared by the runtime tests: a private cluster file per test, the `erlmcp-gen` binary, and a
//! minimal MCP client that proves a node answers through its published port.

#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// A cluster file in a temporary directory, removed (and its cluster taken down) at the end.
pub struct TestCluster {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub runtime: &'static str,
}

/// A 2-node cluster with its own name and ports, so tests and real clusters never collide.
pub fn cluster_toml(name: &str, base_port: u16, runtime: &str, worker_memory: &str) -> String {
    cluster_toml_with_nodes(name, base_port, runtime, worker_memory, 2)
}

/// The same with `count` nodes.
pub fn cluster_toml_with_nodes(
    name: &str,
    base_port: u16,
    runtime: &str,
    worker_memory: &str,
    count: u32,
) -> String {
    format!(
        r#"[cluster]
name = "{name}"
version = "0.0.1"

[runtime]
kind = "{runtime}"

[nodes]
count = {count}
api_port = {api}
listener_port = {listener}

[defaults]
connections = 200
cpu_limit = 0.5
memory_limit = "128MiB"
nofile = 4096
idle_timeout = "5m"

[[node]]
name = "node1"
role = "coordinator"

[[node]]
name = "node2"
memory_limit = "{worker_memory}"

[prometheus]
port = {prometheus}
memory_limit = "256MiB"
scrape_interval = "2s"
node_scrape_interval = "1s"

[stress]
connections = 100
"#,
        api = base_port,
        listener = base_port + 100,
        prometheus = base_port + 200,
    )
}

impl TestCluster {
    pub fn new(name: &str, base_port: u16, runtime: &'static str) -> Self {
        Self::with_nodes(name, base_port, runtime, 2)
    }

    /// A cluster of `count` nodes.
    pub fn with_nodes(name: &str, base_port: u16, runtime: &'static str, count: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &file,
            cluster_toml_with_nodes(name, base_port, runtime, "128MiB", count),
        )
        .unwrap();
        TestCluster { dir, file, runtime }
    }

    /// Rewrites the file with a different worker memory limit (changes node2 only).
    pub fn change_worker_memory(&self, name: &str, base_port: u16, memory: &str) {
        std::fs::write(
            &self.file,
            cluster_toml(name, base_port, self.runtime, memory),
        )
        .unwrap();
    }

    /// `plan --detailed-exitcode` must find changes: the names of the resources it would
    /// change, and the plan as JSON (for a failing assertion's message).
    pub fn planned_changes(&self) -> (Vec<String>, serde_json::Value) {
        let plan = self.run("plan", &["--format", "json", "--detailed-exitcode"]);
        assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
        let json: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
        let changed = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] != "unchanged")
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect();
        (changed, json)
    }

    /// Runs `erlmcp-gen <command> <file> --runtime <runtime> <extra…>`.
    pub fn run(&self, command: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            command,
            self.file.to_str().unwrap(),
            "--runtime",
            self.runtime,
        ];
        args.extend_from_slice(extra);
        erlmcp_gen(&args, self.dir.path())
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        let _ = self.run("down", &["--volumes", "--quiet"]);
    }
}

/// Runs the erlmcp-gen binary with a private native-state directory.
pub fn erlmcp_gen(args: &[&str], state: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(args)
        .env("ERLMCP_STATE_DIR", state.join("state"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Initializes an MCP session over TCP and returns the server's name from `serverInfo`.
pub fn mcp_initialize(port: u16) -> Result<String, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let request = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"erlmcp-gen-tests","version":"0"}}}"#;
    writeln!(writer, "{request}").map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let json: serde_json::Value =
        serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
    json["result"]["serverInfo"]["name"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no serverInfo in {line}"))
}

/// True when a Docker engine answers; false (with a loud SKIPPED) elsewhere; a failure under CI.
pub fn docker_available() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "a Docker engine is required under CI"
        );
        eprintln!("SKIPPED: no Docker engine answers (`docker info` failed)");
    }
    ok
}

/// Polls `check` every 500 ms for up to `limit`.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    false
}

/// Where `apply` keeps the cluster secret of `name` under a test's private state directory.
pub fn stored_secret(dir: &Path, name: &str) -> PathBuf {
    dir.join("state")
        .join(name)
        .join("secret")
        .join("cluster-secret")
}

/// `(name, state)` of each member node on API port `port` lists in `GET /cluster`.
pub fn member_states(port: u16) -> Vec<(String, String)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Ok(response) = runtime.block_on(erlmcp_gen::probe::get(
        ([127, 0, 0, 1], port).into(),
        "/cluster",
        Duration::from_secs(2),
    )) else {
        return Vec::new();
    };
    let json: serde_json::Value = serde_json::from_str(&response.body).unwrap_or_default();
    json["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let field = |f: &str| m[f].as_str().unwrap_or_default().to_string();
            (field("name"), field("state"))
        })
        .collect()
}

/// Asserts the secret `apply` stored: 64 hex digits, 0444 in a 0700 directory; returns it.
pub fn assert_stored_secret(dir: &Path, name: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = stored_secret(dir, name);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(path.parent().unwrap()), 0o700, "{}", path.display());
    assert_eq!(mode(&path), 0o444, "{}", path.display());
    let secret = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert_eq!(secret.len(), 64, "{secret:?}");
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    secret
}
