//! `stress --find-max` end to end against mock servers: the steps run baseline and cluster,
//! the search stops at the first step that does not hold, and find-max.txt/csv are written.

mod support;

use erlmcp_gen::stress::find_max::{CSV_HEADER, FindMaxPlan, RateStep, StepVerdict};
use erlmcp_gen::stress::rate_search::{find_max_async, step_dir_name};
use erlmcp_gen::stress::resources::{NoSampler, ResourceSampler};
use erlmcp_gen::stress::{Slo, StressOptions, StressTarget, TargetKind};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use support::{MockConfig, MockServer};

fn target(node: &str, addr: SocketAddr, kind: TargetKind) -> StressTarget {
    StressTarget {
        node: node.into(),
        tcp_addr: addr,
        api_addr: None,
        pid: None,
        capacity: 1000,
        kind,
    }
}

/// Tiny steps: 8 sessions, 200 ms ramp, 500 ms hold.
fn options(name: &str) -> StressOptions {
    let dir = std::env::temp_dir().join(format!(
        "erlmcp-find-max-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = StressOptions::new(8, Duration::from_millis(500), 1.0, dir);
    options.ramp = Duration::from_millis(200);
    options.connect_timeout = Duration::from_secs(2);
    options.request_timeout = Duration::from_millis(300);
    options.slo = Slo {
        p99_ms: 250.0,
        max_error_rate: 0.01,
    };
    options
}

fn search(
    targets: Vec<StressTarget>,
    options: &StressOptions,
    plan: &FindMaxPlan,
) -> erlmcp_gen::stress::find_max::FindMaxResult {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(find_max_async(targets, options, plan, |_| {
            Box::new(NoSampler) as Box<dyn ResourceSampler>
        }))
        .unwrap()
}

fn csv_rows(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("find-max.csv"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn a_cluster_that_keeps_up_is_stepped_to_the_max() {
    let baseline = MockServer::start(MockConfig::baseline());
    let node = MockServer::start(MockConfig::mcp(1000));
    let options = options("holds");
    let plan = FindMaxPlan::new(40.0, Some(RateStep::Times(2.0)), Some(160.0)).unwrap();
    let result = search(
        vec![
            target("baseline", baseline.addr, TargetKind::BaselineEcho),
            target("node1", node.addr, TargetKind::Mcp),
        ],
        &options,
        &plan,
    );
    let verdicts: Vec<StepVerdict> = result.steps.iter().map(|(_, v)| *v).collect();
    assert_eq!(verdicts, vec![StepVerdict::Held; 3], "{result:?}");
    assert_eq!(result.highest_held(), Some(160.0));
    for (index, (step, _)) in result.steps.iter().enumerate() {
        assert!(step.baseline_rps.is_some_and(|b| b > 0.0), "{step:?}");
        assert!(step.ratio().is_some(), "{step:?}");
        let dir = options.out_dir.join(step_dir_name(index, step.offered));
        assert!(dir.join("summary.json").exists(), "{}", dir.display());
        assert!(dir.join("baseline").join("summary.json").exists());
    }
    let rows = csv_rows(&options.out_dir);
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], CSV_HEADER);
    assert!(
        rows[3].starts_with("160.0,") && rows[3].ends_with(",held"),
        "{}",
        rows[3]
    );
    let text = std::fs::read_to_string(options.out_dir.join("find-max.txt")).unwrap();
    assert!(text.contains("highest rate held: 160.0 req/s"), "{text}");
}

#[test]
fn the_search_stops_at_the_first_step_that_breaks_the_slo() {
    let baseline = MockServer::start(MockConfig::baseline());
    let silent = MockServer::start(MockConfig {
        answers: false,
        ..MockConfig::mcp(1000)
    });
    let options = options("breaks");
    let plan = FindMaxPlan::new(20.0, Some(RateStep::Plus(20.0)), Some(100.0)).unwrap();
    let result = search(
        vec![
            target("baseline", baseline.addr, TargetKind::BaselineEcho),
            target("node1", silent.addr, TargetKind::Mcp),
        ],
        &options,
        &plan,
    );
    assert_eq!(result.steps.len(), 1, "{result:?}");
    assert_eq!(result.steps[0].1, StepVerdict::SloBreached);
    assert_eq!(result.highest_held(), None);
    assert_eq!(csv_rows(&options.out_dir).len(), 2);
    let text = std::fs::read_to_string(options.out_dir.join("find-max.txt")).unwrap();
    assert!(text.contains("highest rate held: none"), "{text}");
}
