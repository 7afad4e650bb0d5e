//! `scripts/colima-quickstart.sh`, the README's first command: it completes in a clean clone on a
//! machine without Prometheus (the cluster comes up without it, the run warns and `status` says
//! no metrics are collected), and with a `colima` on PATH whose profile is not running it starts
//! the VM from the cluster file and deploys on the VM's engine (a fake `colima` and a fake
//! `erlmcp-gen` record what they were asked).
//!
//! The clean-clone test deploys on the Docker engine (or native processes) on local.toml's fixed
//! ports: run it under the shared lock, `flock /tmp/erlmcp-docker.lock cargo test --test
//! quickstart` (or `QUICKSTART_LOCK=/tmp/erlmcp-docker.lock cargo test --test quickstart`, which
//! takes the lock only for the deployment, not the build; never both). Its cost is one release build of the two workspace crates in the clone (the
//! dependencies come from this workspace's `target/`, which it shares, so they are compiled only
//! when no quickstart or static test build ran there before) plus one apply and one down.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const WORKSPACE: &str = env!("CARGO_MANIFEST_DIR");

fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A PATH that has every program of this one except `hidden`: each directory is mirrored by
/// symlinks, so `command -v prometheus` fails while bash, git and cargo are still found.
fn path_without(hidden: &[&str], into: &Path) -> String {
    let mut dirs = Vec::new();
    for (i, dir) in std::env::split_paths(&std::env::var_os("PATH").unwrap()).enumerate() {
        let mirror = into.join(format!("path{i}"));
        std::fs::create_dir_all(&mirror).unwrap();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            if !hidden.iter().any(|h| name == *h) {
                let _ = std::os::unix::fs::symlink(entry.path(), mirror.join(&name));
            }
        }
        dirs.push(mirror);
    }
    std::env::join_paths(dirs).unwrap().into_string().unwrap()
}

fn quickstart(dir: &Path, path: &str, state: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(dir.join("scripts/colima-quickstart.sh"));
    command
        .current_dir(dir)
        .args(args)
        .env("PATH", path)
        .env("ERLMCP_STATE_DIR", state)
        .env("NO_COLOR", "1")
        .env_remove("DOCKER_HOST")
        .env_remove("COLIMA_HOME");
    command
}

#[test]
fn the_quickstart_completes_in_a_clean_clone_without_prometheus_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let clone = tmp.path().join("clone");
    let cloned = Command::new("git")
        .args(["clone", "-q", WORKSPACE])
        .arg(&clone)
        .output()
        .unwrap();
    assert!(cloned.status.success(), "{}", text(&cloned));
    let state = tmp.path().join("state");
    // No prometheus, and no apt-get to install it with.
    let path = path_without(&["prometheus", "promtool", "apt-get"], tmp.path());
    // The shared cache: this workspace's target/ (QUICKSTART_TARGET_DIR names another, e.g. that
    // of a clone where the quickstart already ran).
    let target = std::env::var_os("QUICKSTART_TARGET_DIR")
        .map_or_else(|| PathBuf::from(WORKSPACE).join("target"), PathBuf::from);
    // QUICKSTART_LOCK=/tmp/erlmcp-docker.lock (instead of wrapping the test in flock) lets the
    // build run outside the lock and only the deployment wait for it.
    let lock = std::env::var_os("QUICKSTART_LOCK");
    let run_quickstart = |args: &[&str]| {
        let mut command = quickstart(&clone, &path, &state, args);
        command.env("CARGO_TARGET_DIR", &target);
        if let Some(lock) = &lock {
            command.env("ERLMCP_QUICKSTART_LOCK", lock);
        }
        command.output().unwrap()
    };
    let run = run_quickstart(&["--no-test"]);
    let down = run_quickstart(&["--clean"]);
    let all = text(&run);
    assert!(run.status.success(), "{all}");
    assert!(
        all.contains("WARNING: no prometheus on PATH and it cannot be installed here"),
        "{all}"
    );
    assert!(all.contains("WITHOUT Prometheus"), "{all}");
    assert!(
        all.contains("clusters/colima.toml does not fit this machine (")
            && all.contains("); using clusters/local.toml instead"),
        "{all}"
    );
    assert!(all.contains("metrics are not being collected"), "{all}");
    assert!(down.status.success(), "{}", text(&down));
}

#[test]
fn with_colima_installed_and_its_profile_stopped_the_vm_is_started_from_the_cluster_file() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let log = tmp.path().join("calls.log");
    // A stopped profile until `start`, which makes the VM's Docker socket.
    write_script(
        &bin.join("colima"),
        &format!(
            "#!/bin/sh\necho \"colima $*\" >> '{log}'\n\
             case \"$1\" in\n\
               status) [ -S \"$HOME/.colima/erlmcp/docker.sock\" ] ;;\n\
               start) mkdir -p \"$HOME/.colima/erlmcp\" && python3 -c 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \"$HOME/.colima/erlmcp/docker.sock\" ;;\n\
               *) exit 0 ;;\n\
             esac\n",
            log = log.display()
        ),
    );
    // erlmcp-gen records its arguments and the engine it was pointed at; colima.toml fits.
    let fake_gen = bin.join("erlmcp-gen");
    write_script(
        &fake_gen,
        &format!(
            "#!/bin/sh\necho \"erlmcp-gen $* DOCKER_HOST=$DOCKER_HOST\" >> '{log}'\n",
            log = log.display()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    // The quickstart with the fakes first on PATH; it must succeed.
    let run = || {
        let output = quickstart(
            Path::new(WORKSPACE),
            &path,
            &tmp.path().join("state"),
            &["--no-test"],
        )
        .env("HOME", &home)
        .env("ERLMCP_GEN", &fake_gen)
        .output()
        .unwrap();
        assert!(output.status.success(), "{}", text(&output));
    };
    run();
    let calls = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = calls.lines().collect();
    let socket = format!(
        "DOCKER_HOST=unix://{}/.colima/erlmcp/docker.sock",
        home.display()
    );
    let position = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no call `{prefix}…` in\n{calls}"))
    };
    let status = position("colima status --profile erlmcp");
    let render = position("erlmcp-gen render clusters/colima.toml");
    // The VM as the cluster file sizes it: [vm] cpus 12, memory 16GiB, disk 100GiB, vz.
    let start = position(
        "colima start --profile erlmcp --cpu 12 --memory 16 --disk 100 --vm-type vz --runtime docker",
    );
    let tune = position("colima ssh --profile erlmcp -- sudo sysctl -w net.core.somaxconn=65535");
    let apply = position("erlmcp-gen apply clusters/colima.toml");
    assert!(
        status < render && render < start && start < tune && tune < apply,
        "{calls}"
    );
    assert!(
        lines[apply].ends_with(&socket),
        "apply on the VM's engine:\n{calls}"
    );
    let config = std::fs::read_to_string(home.join(".colima/erlmcp/colima.yaml")).unwrap();
    assert!(config.contains("cpu: 12"), "{config}");
    // A running profile is left alone.
    std::fs::write(&log, "").unwrap();
    run();
    let calls = std::fs::read_to_string(&log).unwrap();
    assert!(!calls.contains("colima start"), "{calls}");
    assert!(calls.contains(&socket), "{calls}");
}
