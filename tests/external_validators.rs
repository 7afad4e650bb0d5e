//! The rendered files pass the tools their consumers use: `docker-compose config`,
//! `promtool check config`, `shellcheck` and `kubernetes-validate` (the Kubernetes API schemas,
//! offline). CI installs the tools; elsewhere a missing tool is a
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

/// `render -o DIR` anywhere: `docker-compose config` resolves the coordinator's `build:` to the
/// workspace and a Dockerfile that exists (it used to name `DIR/../generated/Dockerfile`).
#[test]
fn a_compose_file_rendered_elsewhere_builds_from_a_dockerfile_that_exists() {
    if !tool_available("docker-compose") {
        return;
    }
    let workspace = env!("CARGO_MANIFEST_DIR");
    let outside = tempfile::tempdir().unwrap();
    let inside = tempfile::Builder::new()
        .prefix("render-test-")
        .tempdir_in(format!("{workspace}/target"))
        .unwrap();
    for dir in [outside.path().join("x"), inside.path().join("deep/er")] {
        let output = Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
            .current_dir(workspace)
            .args(["render", "clusters/local.toml", "-o"])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let config = Command::new("docker-compose")
            .arg("-f")
            .arg(dir.join("docker-compose.yml"))
            .arg("config")
            .output()
            .unwrap();
        assert!(
            config.status.success(),
            "{}",
            String::from_utf8_lossy(&config.stderr)
        );
        let resolved: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&config.stdout).unwrap();
        let build = &resolved["services"]["node1"]["build"];
        let context = Path::new(build["context"].as_str().expect("a build context"));
        let dockerfile = context.join(build["dockerfile"].as_str().expect("a dockerfile"));
        assert_eq!(
            std::fs::canonicalize(context).unwrap(),
            std::fs::canonicalize(workspace).unwrap(),
            "{build:?}"
        );
        assert!(
            dockerfile.is_file(),
            "{} does not exist",
            dockerfile.display()
        );
        assert_eq!(
            std::fs::canonicalize(&dockerfile).unwrap(),
            std::fs::canonicalize(dir.join("Dockerfile")).unwrap()
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

/// The Kubernetes version the manifests are validated against: the oldest still supported by
/// the major providers when this was written, and the first with every safe sysctl used.
const KUBERNETES_VERSION: &str = "1.30";

/// Every manifest of `dir/k8s` passes `kubernetes-validate --strict` (unknown fields rejected);
/// the kustomization is not an API object and is checked by the renderer's unit tests.
fn kubernetes_validate(dir: &Path) {
    let manifests: Vec<_> = std::fs::read_dir(dir.join("k8s"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|e| e == "yaml")
                && p.file_name().is_some_and(|n| n != "kustomization.yaml")
        })
        .collect();
    assert!(manifests.len() >= 6, "{manifests:?}");
    run_ok(
        Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
            .args(&manifests),
    );
}

#[test]
fn kubernetes_manifests_pass_kubernetes_validate() {
    if !tool_available("kubernetes-validate") {
        return;
    }
    for cluster in ["colima.toml", "local.toml", "bench-100k.toml"] {
        let dir = tempfile::tempdir().unwrap();
        render_into(cluster, dir.path());
        kubernetes_validate(dir.path());
    }
}

#[test]
fn kubernetes_prometheus_configs_pass_promtool() {
    if !tool_available("promtool") {
        return;
    }
    for cluster in ["colima.toml", "local.toml"] {
        let dir = tempfile::tempdir().unwrap();
        render_into(cluster, dir.path());
        run_ok(
            Command::new("promtool")
                .args(["check", "config"])
                .arg(dir.path().join("k8s/prometheus.yml")),
        );
    }
}

mod inert;

/// Hostile strings in every field the tools accept any string for (values, labels, image
/// names), with node and sysctl names (YAML keys, scrape targets) ordinary: the renders still
/// pass each tool, and no value became a key, an option or a command.
fn hostile_renders() -> Vec<(String, tempfile::TempDir)> {
    let base = inert::base_cluster();
    [
        "x\nprivileged: true\ncap_add: [ALL]",
        "$(touch /tmp/erlmcp-external-marker)",
        "'; touch /tmp/erlmcp-external-marker; '",
        "${HOME}",
        "a: b # c",
        "- [x] {y} &z *w !t %u @v",
    ]
    .iter()
    .map(|hostile| {
        let mut strings = inert::Strings::all(hostile);
        strings.node = "node".into();
        strings.sysctl_key = "net.core.somaxconn".into();
        let cluster = inert::with_strings(&base, &strings);
        let dir = tempfile::tempdir().unwrap();
        render::write(&render::render(&cluster).unwrap(), dir.path()).unwrap();
        (hostile.to_string(), dir)
    })
    .collect()
}

#[test]
fn hostile_renders_pass_the_external_validators() {
    let (compose, promtool, shellcheck, kubernetes) = (
        tool_available("docker-compose"),
        tool_available("promtool"),
        tool_available("shellcheck"),
        tool_available("kubernetes-validate"),
    );
    for (hostile, dir) in hostile_renders() {
        let context = format!("for {hostile:?}");
        if compose {
            let output = Command::new("docker-compose")
                .arg("-f")
                .arg(dir.path().join("docker-compose.yml"))
                .arg("config")
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "docker-compose config failed {context}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            // compose's own reading of the file: no service gained a key.
            let config: serde_yaml_ng::Value = serde_yaml_ng::from_slice(&output.stdout).unwrap();
            let services = config["services"].as_mapping().unwrap();
            for (name, service) in services {
                for key in ["privileged", "cap_add", "pid", "volumes_from"] {
                    assert!(
                        service.get(key).is_none(),
                        "{name:?} gained `{key}` {context}"
                    );
                }
            }
        }
        if promtool {
            run_ok(
                Command::new("promtool")
                    .args(["check", "config"])
                    .arg(dir.path().join("prometheus.yml")),
            );
        }
        if shellcheck {
            run_ok(Command::new("shellcheck").arg(dir.path().join("colima-setup.sh")));
        }
        if kubernetes {
            kubernetes_validate(dir.path());
        }
    }
    assert!(!Path::new("/tmp/erlmcp-external-marker").exists());
}
