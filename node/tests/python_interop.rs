//! The official MCP Python SDK (`pip install mcp`) drives the node over stdio and Streamable
//! HTTP, unchanged, with the handshake revisions and with the stateless 2026-07-28 one (the
//! SDK probes `server/discover`). Without the SDK the test says SKIPPED loudly and passes.

mod harness;

use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/sdk_interop.py");
const BIN: &str = env!("CARGO_BIN_EXE_erlmcp-node");

fn sdk_installed() -> bool {
    let found = Command::new("python3")
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: python mcp SDK not installed (pip install mcp)");
    }
    found
}

fn run_script(args: &[&str]) {
    let output = Command::new("timeout")
        .args(["90", "python3", "-W", "ignore", SCRIPT])
        .args(args)
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the Python SDK client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[test]
fn python_sdk_over_stdio() {
    if sdk_installed() {
        run_script(&["stdio", BIN]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_streamable_http() {
    if !sdk_installed() {
        return;
    }
    let node = harness::TestNode::start(|_| {}).await;
    let url = format!("http://{}/mcp", node.api);
    tokio::task::spawn_blocking(move || run_script(&["http", &url]))
        .await
        .expect("the script ran");
}

#[test]
fn python_sdk_stateless_revision_over_stdio() {
    if sdk_installed() {
        run_script(&["modern-stdio", BIN]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_stateless_revision_over_streamable_http() {
    if !sdk_installed() {
        return;
    }
    let node = harness::TestNode::start(|_| {}).await;
    let url = format!("http://{}/mcp", node.api);
    tokio::task::spawn_blocking(move || run_script(&["modern-http", &url]))
        .await
        .expect("the script ran");
}
