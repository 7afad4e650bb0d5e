//! The rendered files pass the tools their consumers use: `docker-compose config`,
//! `promtool check config` and `shellcheck`. CI installs the tools; elsewhere a missing tool is a
//! loud skip, and under CI (`CI=true`) it is a failure.

use std::path::Path;
use std::process::Command;

use erlmcp_gen::{config, render};

fn tool_available(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{tool} is required under CI; .ci/run installs it"
        );
        eprintln!("SKIPPED: {tool} is not installed (scripts/test.sh installs it)");
    }
    found
}

fn render_into(cluster: &str, dir: &Path) {
    let path = format!("clusters/{cluster}");
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let (cluster, _) = config::parse(&path, &text).unwrap();
    render::write(&render::render(&cluster).unwrap(), dir).unwrap();
}

fn run_ok(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn compose_files_pass_docker_compose_config() {
    if !tool_available("docker-compose") {
        return;
    }
    for cluster in ["colima.toml", "local.toml"] {
        let dir = tempfile::tempdir().unwrap();
        render_into(cluster, dir.path());
        run_ok(
            Command::new("docker-compose")
                .arg("-f")
                .arg(dir.path().join("docker-compose.yml"))
                .args(["config", "-q"]),
        );
    }
}

#[test]
fn prometheus_configs_pass_promtool() {
    if !tool_available("promtool") {
        return;
    }
    for cluster in ["colima.toml", "local.toml"] {
        let dir = tempfile::tempdir().unwrap();
        render_into(cluster, dir.path());
        run_ok(
            Command::new("promtool")
                .args(["check", "config"])
                .arg(dir.path().join("prometheus.yml")),
        );
    }
}

#[test]
fn colima_scripts_pass_shellcheck() {
    if !tool_available("shellcheck") {
        return;
    }
    for cluster in ["colima.toml", "local.toml"] {
        let dir = tempfile::tempdir().unwrap();
        render_into(cluster, dir.path());
        run_ok(Command::new("shellcheck").arg(dir.path().join("colima-setup.sh")));
    }
}

#[test]
fn project_scripts_pass_shellcheck() {
    if !tool_available("shellcheck") {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(root.join("scripts")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "sh") {
            // -x follows `source scripts/lib.sh`, resolved from the repository root.
            run_ok(
                Command::new("shellcheck")
                    .current_dir(root)
                    .arg("-x")
                    .arg(entry.path()),
            );
        }
    }
}
