//! `erlmcp-gen stress --workers network` on a real single-engine Docker Swarm with a private
//! 2-node cluster: each load worker is a one-task Swarm job on the overlay network, reaching
//! the nodes by their task names, its events read from the job's logs; the run holds its
//! sessions, its requests succeed, and no job, nor a job's container, is left afterwards.
//!
//! Needs Docker; skips loudly without it. Like `runtime_swarm`, it makes this engine a swarm
//! manager when it is not part of one (and leaves the swarm at the end), under
//! `/tmp/erlmcp-docker.lock` (set `ERLMCP_DOCKER_LOCK_HELD=1` if you hold it yourself).

mod cluster_support;
mod swarm_support;

use std::collections::HashMap;

use bollard::query_parameters::{ListContainersOptionsBuilder, ListServicesOptionsBuilder};
use cluster_support::*;
use swarm_support::*;

const NAME: &str = "erlmcp-test-stress-swarm";
/// API 27480–27481, listeners 27580–27581, Prometheus 27680: no other test uses them.
const BASE: u16 = 27480;

/// The label filter that finds what `stress` made for the cluster.
fn stress_label() -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("erlmcp.stress-of={NAME}")],
    )])
}

/// The stress jobs of the cluster that still exist.
fn stress_jobs() -> Vec<String> {
    block_on(async {
        let filters = stress_label();
        engine()
            .await
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|s| s.spec.and_then(|spec| spec.name))
            .collect()
    })
}

/// This engine's containers (any state) labelled as the cluster's stress, with their states.
fn stress_containers() -> Vec<String> {
    block_on(async {
        let filters = stress_label();
        engine()
            .await
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .into_iter()
            .map(|c| format!("{:?} {:?}", c.names, c.state))
            .collect()
    })
}

#[test]
fn swarm_stress_runs_each_worker_as_a_job_on_the_overlay() {
    if !docker_available() {
        return;
    }
    let _swarm = SwarmGuard::take();
    let cluster = TestCluster::new(NAME, BASE, "swarm");
    let applied = cluster.run("apply", &["-q"]);
    assert!(applied.status.success(), "{}", text(&applied));

    let out = cluster.dir.path().join("results");
    // 300 sessions at 150 a worker: two jobs, each with its own shard.
    let run = cluster.run(
        "stress",
        &[
            "--workers",
            "network",
            "--no-baseline",
            "--connections",
            "300",
            "--sessions-per-worker",
            "150",
            "--duration",
            "10s",
            "--ramp",
            "2s",
            "--rate",
            "300",
            "--out",
            out.to_str().unwrap(),
            "-q",
        ],
    );
    assert!(run.status.success(), "{}", text(&run));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&summary["sessions"]).unwrap()
    );
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&summary["requests"]).unwrap()
    );
    assert_eq!(summary["runtime"], "swarm", "{summary}");
    assert_eq!(summary["sessions"]["peak_open"], 300, "{summary}");
    assert_eq!(summary["sessions"]["failed"], 0, "{summary}");
    let requests = &summary["requests"];
    assert!(requests["ok"].as_u64().unwrap() > 1_000, "{summary}");
    assert_eq!(requests["failed"], 0, "{summary}");
    assert_eq!(summary["generator"]["workers"], 2, "{summary}");
    assert_eq!(summary["generator"]["workers_lost"], 0, "{summary}");
    assert_eq!(
        stress_jobs(),
        Vec::<String>::new(),
        "every stress job is removed after the run"
    );
    // Docker 20.10 keeps a finished job's task container after its service is removed.
    assert_eq!(
        stress_containers(),
        Vec::<String>::new(),
        "no stress job's container is left on the engine after the run"
    );
}
