//! `scripts/swarm-lab.sh`: a three-engine swarm on this one machine (engines in containers
//! running the host's own dockerd) places a three-replica service spread over `node.labels.zone`
//! on three distinct engines, and when one engine is killed outright the swarm reschedules its
//! task onto a survivor within a bounded wait. The lab is always taken down, the host engine's own
//! swarm state is never touched. Needs Docker and containers with all capabilities but
//! CAP_SYS_RESOURCE (the script says why); takes /tmp/erlmcp-docker.lock itself.

mod cluster_support;

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use cluster_support::{docker_available, eventually, text};

/// The node image built for the lab on the host engine and loaded into every inner engine.
const IMAGE: &str = "erlmcp-lab-node:test";
const SERVICE: &str = "erlmcp-lab-probe";
const MANAGER: &str = "unix:///tmp/erlmcp-lab/1/docker.sock";
/// The engine the test kills; not lab-1, which is the only manager.
const LOST: &str = "erlmcp-lab-3";

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

#[test]
fn swarm_lab_spreads_over_zones_and_reschedules_a_lost_host() {
    if !docker_available() {
        return;
    }
    // Found (or built) before the lock, so a cold build does not hold up the other Docker tests.
    let binary =
        erlmcp_gen::engine::image::static_node_binary(&erlmcp_gen::progress::Progress::new(true))
            .unwrap();
    let lock = File::create("/tmp/erlmcp-docker.lock").unwrap();
    lock.lock().unwrap();
    if !lab_possible() {
        return;
    }
    build_node_image(&binary);
    let _lab = Lab::up();

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
