//! The `erlmcp-gen` binary end to end: exit codes, output formats, render and `--check`.

use std::path::Path;
use std::process::{Command, Output};

fn erlmcp_gen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn validate_exits_zero_for_a_valid_file() {
    let output = erlmcp_gen(&["validate", "clusters/local.toml"]);
    assert!(output.status.success(), "{}", stdout(&output));
    assert!(stdout(&output).contains("clusters/local.toml: valid — 2 nodes, 2000 connections"));
}

#[test]
fn validate_exits_three_with_the_position_on_stderr_for_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\nname = \"x\"\n\n[nodes]\ncount = 0\n").unwrap();
    let output = erlmcp_gen(&["validate", bad.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    // Diagnostics are not the result: stdout stays empty for an invalid file.
    assert_eq!(stdout(&output), "");
    let text = stderr(&output);
    assert!(text.contains("bad.toml:5:9"), "{text}");
    assert!(text.contains("invalid (1 error)"), "{text}");
}

#[test]
fn validate_json_lists_diagnostics_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\nname = \"x\"\n\n[nodes]\ncount = 0\n").unwrap();
    let output = erlmcp_gen(&["validate", bad.to_str().unwrap(), "--format", "json"]);
    assert_eq!(output.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert_eq!(json["diagnostics"][0]["code"], "no-nodes");
    assert_eq!(json["diagnostics"][0]["line"], 5);
    assert_eq!(json["diagnostics"][0]["column"], 9);
    assert_eq!(json["diagnostics"][0]["severity"], "error");
}

#[test]
fn validate_host_judges_this_machine() {
    let output = erlmcp_gen(&[
        "validate",
        "clusters/local.toml",
        "--host",
        "--format",
        "json",
    ]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let checks = json["host"]["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for expected in ["docker engine", "open files per process", "cpus", "memory"] {
        assert!(names.contains(&expected), "{names:?}");
    }
}

#[test]
fn render_writes_every_file_and_check_passes_then_fails_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = erlmcp_gen(&["render", "clusters/local.toml", "-o", out]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "docker-compose.yml",
        "prometheus.yml",
        "colima-setup.sh",
        "Dockerfile",
        "Dockerfile.prebuilt",
    ] {
        assert!(Path::new(out).join(file).exists(), "{file}");
    }
    let check = erlmcp_gen(&["render", "clusters/local.toml", "-o", out, "--check"]);
    assert!(check.status.success());

    let compose = Path::new(out).join("docker-compose.yml");
    let edited = std::fs::read_to_string(&compose)
        .unwrap()
        .replace("retries: 5", "retries: 9");
    std::fs::write(&compose, edited).unwrap();
    let check = erlmcp_gen(&["render", "clusters/local.toml", "-o", out, "--check"]);
    assert_eq!(check.status.code(), Some(5));
    let diff = stdout(&check);
    assert!(
        diff.contains("-      retries: 9") && diff.contains("+      retries: 5"),
        "{diff}"
    );
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        stderr.contains("run `erlmcp-gen render clusters/local.toml"),
        "{stderr}"
    );
}

#[test]
fn committed_generated_directory_is_the_render_of_colima_toml() {
    let check = erlmcp_gen(&["render", "clusters/colima.toml", "--check"]);
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn render_refuses_an_invalid_file_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\nname = \"x\"\n\n[nodes]\ncount = 0\n").unwrap();
    let out = dir.path().join("out");
    let output = erlmcp_gen(&["render", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    assert!(!out.exists());
}

#[test]
fn stress_refuses_in_network_workers_for_a_native_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args([
            "stress",
            "clusters/local.toml",
            "--runtime",
            "native",
            "--workers",
            "network",
            "-q",
        ])
        .env("ERLMCP_STATE_DIR", dir.path())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--workers network needs the Docker runtime"),
        "{stderr}"
    );
}

fn bad_file(dir: &tempfile::TempDir) -> String {
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[cluster]\nname = \"x\"\n\n[nodes]\ncount = 0\n").unwrap();
    bad.to_str().unwrap().to_string()
}

#[test]
fn diagnostics_are_colored_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let bad = bad_file(&dir);
    let piped = erlmcp_gen(&["validate", &bad]);
    assert!(!stderr(&piped).contains('\u{1b}'), "{}", stderr(&piped));
    let always = erlmcp_gen(&["validate", &bad, "--color", "always"]);
    assert!(stderr(&always).contains("\u{1b}["), "{}", stderr(&always));
    let never = Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(["--color", "never", "validate", &bad])
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(!stderr(&never).contains('\u{1b}'));
    let no_color = Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(["validate", &bad])
        .env("NO_COLOR", "1")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert!(
        !stderr(&no_color).contains('\u{1b}'),
        "{}",
        stderr(&no_color)
    );
}

#[test]
fn render_refuses_a_hostile_value_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let marker = dir.path().join("marker");
    std::fs::write(
        &bad,
        format!(
            "[cluster]\nname = \"x\"\nversion = \"1\\nprivileged: true\"\n\n[runtime]\ncolima_profile = \"$(touch {})\"\n\n[nodes]\ncount = 1\n\n[[node]]\nname = \"node1\"\nrole = \"coordinator\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = erlmcp_gen(&["render", bad.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a version") && stderr.contains("is not a DNS label"),
        "{stderr}"
    );
    assert!(!out.exists() && !marker.exists());
}

#[test]
fn cluster_files_over_a_mebibyte_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.toml");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).unwrap();
    let output = erlmcp_gen(&["validate", big.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("at most 1048576"));
}

#[test]
fn validate_json_gives_both_places_of_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[cluster]\nname = \"x\"\n\n[nodes]\ncount = 2\n\n[[node]]\nname = \"node1\"\nrole = \"coordinator\"\n\n[[node]]\nname = \"node1\"\n",
    )
    .unwrap();
    let output = erlmcp_gen(&["validate", bad.to_str().unwrap(), "--format", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let duplicate = &json["diagnostics"][0];
    assert_eq!(duplicate["code"], "duplicate-node");
    assert_eq!(duplicate["line"], 12);
    assert_eq!(duplicate["related"][0]["line"], 8);
    assert_eq!(duplicate["related"][0]["note"], "first entry for this node");
}
