//! `scripts/swarm-lab.sh`: a three-engine swarm on this one machine (engines in containers
//! running the host's own dockerd) places a three-replica service spread over `node.labels.zone`
//! on three distinct engines, and when one engine is killed outright the swarm reschedules its
//! task onto a survivor within a bounded wait. And `erlmcp-gen` itself against the lab: `apply`
//! without a registry stops until every engine has the images, then runs the nodes over the
//! engines; `stress` runs its workers as jobs over the engines, and when an engine that runs a
//! node is killed in the middle of the hold, the run still ends by itself, its summary shows the
//! loss, and the lost node comes back on a survivor. The lab is always taken down, the host
//! engine's own swarm state is never touched. Needs Docker and containers with all capabilities
//! but CAP_SYS_RESOURCE (the script says why); takes /tmp/erlmcp-docker.lock itself.

mod cluster_support;
mod swarm_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cluster_support::{docker_available, eventually, text};
use swarm_support::DockerLock;

/// The node image built for the lab on the host engine and loaded into every inner engine.
const IMAGE: &str = "erlmcp-lab-node:test";
const SERVICE: &str = "erlmcp-lab-probe";
const MANAGER: &str = "unix:///tmp/erlmcp-lab/1/docker.sock";
/// The engine the test kills; not lab-1, which is the only manager.
const LOST: &str = "erlmcp-lab-3";
/// The cluster `erlmcp-gen` applies to the lab.
const CLUSTER: &str = "erlmcp-lab-stress";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/swarm-lab.sh")
}

fn swarm_lab(args: &[&str]) -> Output {
    Command::new("timeout")
        .arg("300")
        .arg(script())
        .args(args)
        .output()
        .unwrap()
}

/// The docker CLI against the lab's manager engine, bounded to 60 s.
fn manager(args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["60", "docker"])
        .args(args)
        .env("DOCKER_HOST", MANAGER)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Takes the lab down (and the lab's node image off the host engine) when dropped, even on panic.
struct Lab;

impl Lab {
    fn up() -> Lab {
        let _ = swarm_lab(&["down"]); // what an aborted run left behind
        let up = swarm_lab(&["up", "3", IMAGE]);
        let lab = Lab;
        assert!(up.status.success(), "{}", text(&up));
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let down = swarm_lab(&["down"]);
        if !down.status.success() {
            eprintln!("swarm-lab.sh down failed: {}", text(&down));
        }
        let _ = Command::new("docker").args(["rmi", "-f", IMAGE]).output();
    }
}

/// `(node, state)` of each task the swarm wants running.
fn running_tasks() -> Vec<(String, String)> {
    let ps = manager(&[
        "service",
        "ps",
        SERVICE,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}}\t{{.CurrentState}}",
    ]);
    stdout(&ps)
        .lines()
        .filter_map(|line| {
            let (node, state) = line.split_once('\t')?;
            Some((node.to_string(), state.to_string()))
        })
        .collect()
}

/// The nodes of three tasks that all run, when there are exactly three.
fn three_running() -> Option<Vec<String>> {
    let tasks = running_tasks();
    (tasks.len() == 3 && tasks.iter().all(|(_, s)| s.starts_with("Running")))
        .then(|| tasks.into_iter().map(|(node, _)| node).collect())
}

/// The node image: the static erlmcp-node `FROM scratch`, as `apply`'s prebuilt image is.
fn build_node_image(binary: &Path) {
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(binary, context.path().join("erlmcp-node")).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY erlmcp-node /usr/local/bin/erlmcp-node\nUSER 10001:10001\n\
         ENTRYPOINT [\"/usr/local/bin/erlmcp-node\"]\nCMD [\"serve\"]\n",
    )
    .unwrap();
    let build = Command::new("docker")
        .args(["build", "-q", "-t", IMAGE])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", text(&build));
}

/// True when this machine can host the lab's engines; a loud SKIPPED (with the reason) otherwise.
fn lab_possible() -> bool {
    let check = swarm_lab(&["check"]);
    if !check.status.success() {
        eprintln!(
            "SKIPPED: containers here cannot run a nested dockerd: {}",
            String::from_utf8_lossy(&check.stderr).trim()
        );
    }
    check.status.success()
}

/// The lab, up with the node image in every engine, under the Docker lock (the lab goes down
/// before the lock is released: fields drop in order).
struct LabSession {
    _lab: Lab,
    _lock: DockerLock,
}

impl LabSession {
    /// `None` without Docker, or (after a loud SKIPPED) where containers cannot run the engines.
    fn start() -> Option<LabSession> {
        if !docker_available() {
            return None;
        }
        // Found (or built) before the lock, so a cold build does not hold up the other Docker
        // tests.
        let binary = erlmcp_gen::engine::image::static_node_binary(
            &erlmcp_gen::progress::Progress::new(true),
        )
        .unwrap();
        let lock = DockerLock::take();
        if !lab_possible() {
            return None;
        }
        build_node_image(&binary);
        Some(LabSession {
            _lab: Lab::up(),
            _lock: lock,
        })
    }
}

#[test]
fn swarm_lab_spreads_over_zones_and_reschedules_a_lost_host() {
    let Some(_lab) = LabSession::start() else {
        return;
    };

    let nodes = manager(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    let ready: BTreeSet<String> = stdout(&nodes)
        .lines()
        .filter_map(|line| line.strip_suffix(" Ready").map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = (1..=3).map(|i| format!("erlmcp-lab-{i}")).collect();
    assert_eq!(ready, expected, "{}", text(&nodes));

    // Nothing can be pulled: --no-resolve-image keeps the manager off the registry, and every
    // engine already holds the image.
    let create = manager(&[
        "service",
        "create",
        "--detach",
        "--name",
        SERVICE,
        "--replicas",
        "3",
        "--placement-pref",
        "spread=node.labels.zone",
        "--no-resolve-image",
        IMAGE,
    ]);
    assert!(create.status.success(), "{}", text(&create));
    let mut placed = None;
    let spread = eventually(Duration::from_secs(90), || {
        placed = three_running();
        placed.is_some()
    });
    assert!(spread, "tasks never all ran: {:?}", running_tasks());
    let placed: BTreeSet<String> = placed.unwrap().into_iter().collect();
    assert_eq!(placed, expected, "one task per zone");

    // A host lost without warning: SIGKILL to its engine, no swarm leave.
    let lost_at = Instant::now();
    let lose = swarm_lab(&["lose", "3"]);
    assert!(lose.status.success(), "{}", text(&lose));
    let mut after = None;
    let rescheduled = eventually(Duration::from_secs(60), || {
        after = three_running().filter(|nodes| nodes.iter().all(|n| n != LOST));
        after.is_some()
    });
    assert!(
        rescheduled,
        "the lost engine's task was not rescheduled within 60 s: {:?}",
        running_tasks()
    );
    eprintln!(
        "swarm lab: {LOST} killed, its task running on a survivor after {:.1} s; tasks on {:?}",
        lost_at.elapsed().as_secs_f64(),
        after.unwrap()
    );
    let status = manager(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    assert!(
        stdout(&status).contains(&format!("{LOST} Down")),
        "{}",
        text(&status)
    );
}

/// Three nodes on the lab's worker engines (lab-2 and lab-3), no Prometheus (its image would be
/// one more to copy), an SLO loose enough that only a loss can fail it.
fn lab_cluster_toml() -> String {
    format!(
        r#"[cluster]
name = "{CLUSTER}"
version = "0.1.0"

[runtime]
kind = "swarm"

[nodes]
count = 3
api_port = 27780
listener_port = 27880

[defaults]
connections = 1000
cpu_limit = 0.5
memory_limit = "128MiB"
nofile = 4096

[[node]]
name = "node1"
role = "coordinator"

[swarm.placement]
constraints = ["node.role==worker"]

[prometheus]
enabled = false

[slo]
p99 = "2s"
error_rate_percent = 50
"#
    )
}

/// `erlmcp-gen` against the lab's manager, with its state in `dir`, bounded to 300 s.
fn lab_gen(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("timeout");
    command
        .arg("300")
        .arg(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(args)
        .env("DOCKER_HOST", MANAGER)
        .env("ERLMCP_STATE_DIR", dir.join("state"))
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// The lab engine (hostname) each node of the cluster runs on, from `status --format json`.
fn node_engines(dir: &Path, file: &Path) -> Vec<(String, String, String)> {
    let status = lab_gen(dir, &["status", file.to_str().unwrap(), "--format", "json"])
        .output()
        .unwrap();
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&status.stdout) else {
        return Vec::new();
    };
    json["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let field = |k: &str| n[k].as_str().unwrap_or_default().to_string();
            (field("node"), field("host"), field("health"))
        })
        .collect()
}

/// Runs `args` once; when it stops because an engine lacks the images, copies them over with
/// `swarm-lab.sh load` (there is no registry) and runs it again.
fn with_images_loaded(dir: &Path, args: &[&str]) -> Output {
    let first = lab_gen(dir, args).output().unwrap();
    if first.status.success() {
        return first;
    }
    assert!(
        text(&first).contains("scripts/swarm-lab.sh load"),
        "{args:?} failed for another reason than missing images: {}",
        text(&first)
    );
    let load = swarm_lab(&["load"]);
    assert!(load.status.success(), "{}", text(&load));
    lab_gen(dir, args).output().unwrap()
}

#[test]
fn stress_across_the_lab_ends_and_reports_a_host_lost_in_the_hold() {
    let Some(_lab) = LabSession::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{CLUSTER}.toml"));
    std::fs::write(&file, lab_cluster_toml()).unwrap();
    let file_arg = file.to_str().unwrap();

    let apply = with_images_loaded(dir.path(), &["apply", file_arg, "-q"]);
    assert!(apply.status.success(), "{}", text(&apply));
    let placed = node_engines(dir.path(), &file);
    assert_eq!(placed.len(), 3, "{placed:?}");
    assert!(
        placed
            .iter()
            .all(|(_, host, health)| host != "erlmcp-lab-1" && health == "healthy"),
        "every node healthy on a worker engine: {placed:?}"
    );
    // The engine to lose: one that runs a node (lab-3 unless every node landed on lab-2).
    let lost_engine = if placed.iter().any(|(_, host, _)| host == LOST) {
        LOST
    } else {
        "erlmcp-lab-2"
    };
    let lost_index = lost_engine.trim_start_matches("erlmcp-lab-");
    let lost_nodes: Vec<String> = placed
        .iter()
        .filter(|(_, host, _)| host == lost_engine)
        .map(|(node, _, _)| node.clone())
        .collect();

    // A first, short run gets the worker image onto every engine.
    let out = dir.path().join("warm-up");
    let stress_args = |out: &Path, duration: &'static str| {
        vec![
            "stress".to_string(),
            file_arg.to_string(),
            "--no-baseline".into(),
            "--connections".into(),
            "300".into(),
            "--sessions-per-worker".into(),
            "100".into(),
            "--ramp".into(),
            "3s".into(),
            "--duration".into(),
            duration.into(),
            "--rate".into(),
            "150".into(),
            "--out".into(),
            out.to_str().unwrap().to_string(),
            "-q".into(),
        ]
    };
    let warm_args = stress_args(&out, "3s");
    let warm_refs: Vec<&str> = warm_args.iter().map(String::as_str).collect();
    let warm = with_images_loaded(dir.path(), &warm_refs);
    assert!(warm.status.success(), "{}", text(&warm));

    // The run that loses a host: killed 15 s into a 40 s hold.
    let out = dir.path().join("lost-host");
    let run_args = stress_args(&out, "40s");
    let run = lab_gen(
        dir.path(),
        &run_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(18));
    let lose = swarm_lab(&["lose", lost_index]);
    assert!(lose.status.success(), "{}", text(&lose));
    let lost_at = Instant::now();
    let run = run.wait_with_output().unwrap();
    let ended_after = lost_at.elapsed();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json"))
            .unwrap_or_else(|e| panic!("no summary.json ({e}): {}", text(&run))),
    )
    .unwrap();
    let requests = &summary["requests"];
    let (sent, ok, failed) = (
        requests["sent"].as_u64().unwrap(),
        requests["ok"].as_u64().unwrap(),
        requests["failed"].as_u64().unwrap(),
    );
    assert_eq!(sent, ok + failed, "every request resolved: {requests}");
    let workers_lost = summary["generator"]["workers_lost"].as_u64().unwrap();
    let sessions_failed = summary["sessions"]["failed"].as_u64().unwrap();
    let reconnects = summary["sessions"]["reconnects"].as_u64().unwrap();
    assert!(
        workers_lost + sessions_failed + reconnects + failed > 0,
        "the loss of {lost_engine} shows in the summary: {summary}"
    );
    if workers_lost > 0 {
        assert_eq!(summary["verdict"]["passed"], false, "{summary}");
        assert!(!run.status.success(), "a run that lost a worker fails");
    }
    assert_eq!(summary["interrupted"], false, "{summary}");

    // Swarm brings the lost engine's nodes back on a survivor, and status reads them there.
    let mut after = Vec::new();
    let back = eventually(Duration::from_secs(90), || {
        after = node_engines(dir.path(), &file);
        after.len() == 3
            && after
                .iter()
                .all(|(_, host, health)| host != lost_engine && health == "healthy")
    });
    assert!(
        back,
        "nodes {lost_nodes:?} not back on a survivor: {after:?}"
    );
    eprintln!(
        "swarm lab stress: {lost_engine} (nodes {lost_nodes:?}) killed in the hold; the run ended \
         {:.1} s later: {ok}/{sent} requests ok, {failed} failed, {sessions_failed} sessions \
         failed, {reconnects} re-placed, {workers_lost} workers lost; nodes now on {after:?}",
        ended_after.as_secs_f64()
    );
}
