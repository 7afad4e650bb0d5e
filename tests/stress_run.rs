//! End-to-end stress runs against mock servers and a real erlmcp-node: counts reconcile,
//! failures are classified, files are written with their exact schemas, over TCP and HTTP.

mod support;

use erlmcp_gen::report::csv::{CONNECTIONS_HEADER, LATENCY_HEADER, RESOURCES_HEADER};
use erlmcp_gen::stress::failure::FailureClass;
use erlmcp_gen::stress::{
    Slo, StressOptions, StressSummary, StressTarget, TargetKind, Transport, WorkerLaunch, run,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use support::{MockConfig, MockServer, RealNode, closed_port};

fn out_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("erlmcp-stress-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn target(node: &str, addr: SocketAddr, capacity: u32, kind: TargetKind) -> StressTarget {
    StressTarget {
        node: node.into(),
        tcp_addr: addr,
        api_addr: None,
        pid: Some(std::process::id()),
        capacity,
        kind,
    }
}

/// A short run: `connections` sessions, 300 ms ramp, `hold_ms` hold, `rate` req/s.
fn options(name: &str, connections: u32, hold_ms: u64, rate: f64) -> StressOptions {
    let mut options = StressOptions::new(
        connections,
        Duration::from_millis(hold_ms),
        rate,
        out_dir(name),
    );
    options.ramp = Duration::from_millis(300);
    options.connect_timeout = Duration::from_secs(2);
    options.request_timeout = Duration::from_millis(500);
    options.command_line = format!("test {name}");
    options
}

fn assert_reconciles(summary: &StressSummary) {
    let r = &summary.requests;
    assert_eq!(r.sent, r.ok + r.failed, "sent = ok + failed");
    assert_eq!(
        r.failed,
        r.failures.total(),
        "every failed request has a class"
    );
}

fn first_line(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn mcp_run_holds_every_session_and_writes_every_file() {
    let server = MockServer::start(MockConfig::mcp(1000));
    let options = options("mcp", 20, 1500, 200.0);
    let summary = run(
        vec![target("node1", server.addr, 1000, TargetKind::Mcp)],
        &options,
    )
    .unwrap();

    assert_reconciles(&summary);
    assert_eq!(summary.sessions.peak_open, 20);
    assert_eq!(summary.sessions.failed, 0);
    assert!(summary.requests.ok > 0);
    assert_eq!(summary.requests.failed, 0);
    assert!(summary.latency_ms.p99.is_some());
    assert!(summary.verdict.passed);
    assert!(summary.generator.cpu_us_per_request.is_some());
    assert!(summary.generator.hold_cpu_us_per_request.is_some());
    let share = summary.generator.hold_machine_share.expect("hold share");
    assert!(share > 0.0 && share <= 1.0, "{share}");

    let dir = &options.out_dir;
    assert_eq!(first_line(dir.join("connections.csv")), CONNECTIONS_HEADER);
    assert_eq!(first_line(dir.join("latency.csv")), LATENCY_HEADER);
    assert_eq!(first_line(dir.join("resource-usage.csv")), RESOURCES_HEADER);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(json["requests"]["sent"], summary.requests.sent);
    // serde_json parses floats to within an ulp or so, not exactly (no `float_roundtrip`).
    let written = json["generator"]["hold_machine_share"].as_f64().unwrap();
    assert!((written - share).abs() < 1e-12, "{written} against {share}");
    let text = std::fs::read_to_string(dir.join("summary.txt")).unwrap();
    assert!(text.contains("PASS"), "{text}");
    // TCP sessions read the kernel's receive timestamps: how long requests waited to be
    // written and answers to be read is reported beside the latency.
    let delays = [
        ("read", &summary.generator.read_delay_ms),
        ("send", &summary.generator.send_delay_ms),
    ];
    for (name, delay) in delays {
        let p99 = delay.as_ref().and_then(|d| d.p99);
        assert!(p99.is_some_and(|p99| p99 >= 0.0), "{name}: {delay:?}");
        assert!(json["generator"][format!("{name}_delay_ms")]["p99"].is_number());
        assert!(text.contains(&format!("{name} delay:  p50 ")), "{text}");
    }

    // The CSV rows add up to the summary.
    let latency = std::fs::read_to_string(dir.join("latency.csv")).unwrap();
    let column_sum = |index: usize| -> u64 {
        latency
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(index).unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(column_sum(1), summary.requests.sent);
    assert_eq!(column_sum(2), summary.requests.ok);

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 6);
    for row in ["<th>Send delay</th><td>p50 ", "<th>Read delay</th><td>p50 "] {
        assert!(html.contains(row), "report.html has {row}");
    }
    assert!(
        !html.contains("no data measured"),
        "every chart has measured data"
    );
    assert!(!html.contains("<script"));
}

#[test]
fn refused_connections_are_counted_and_requests_fail_without_sessions() {
    let options = options("refused", 4, 500, 20.0);
    let summary = run(
        vec![target("gone", closed_port(), 10, TargetKind::Mcp)],
        &options,
    )
    .unwrap();
    assert_reconciles(&summary);
    assert_eq!(summary.sessions.peak_open, 0);
    let refused = summary.sessions.failures.get(FailureClass::ConnectRefused);
    assert_eq!(
        refused,
        summary.sessions.failures.total(),
        "every attempt was refused"
    );
    // Each slot tries at least once and at most max_attempts_per_session (5) times.
    assert!((4..=4 * 5).contains(&refused), "{refused} attempts");
    assert_eq!(summary.requests.ok, 0);
    assert_eq!(
        summary.requests.failures.get(FailureClass::NoOpenSession),
        summary.requests.sent
    );
    assert!(!summary.verdict.passed);
}

#[test]
fn a_full_node_rejects_at_capacity() {
    let server = MockServer::start(MockConfig::mcp(5));
    let mut options = options("full", 8, 500, 0.0);
    options.max_attempts_per_session = 1;
    let summary = run(
        vec![target("small", server.addr, 5, TargetKind::Mcp)],
        &options,
    )
    .unwrap();
    assert_eq!(summary.sessions.peak_open, 5);
    assert_eq!(
        summary
            .sessions
            .failures
            .get(FailureClass::RejectedAtCapacity),
        3
    );
}

#[test]
fn a_silent_node_shows_request_timeouts() {
    let server = MockServer::start(MockConfig {
        answers: false,
        ..MockConfig::mcp(100)
    });
    let options = options("silent", 4, 800, 20.0);
    let summary = run(
        vec![target("mute", server.addr, 100, TargetKind::Mcp)],
        &options,
    )
    .unwrap();
    assert_reconciles(&summary);
    assert!(summary.requests.sent > 0);
    assert_eq!(
        summary.requests.failures.get(FailureClass::RequestTimeout),
        summary.requests.sent
    );
}

#[test]
fn a_node_killed_mid_run_counts_failures_and_re_places_sessions() {
    let survivor = MockServer::start(MockConfig::mcp(1000));
    let mut victim = MockServer::start(MockConfig::mcp(1000));
    let targets = vec![
        target("survivor", survivor.addr, 1000, TargetKind::Mcp),
        target("victim", victim.addr, 1000, TargetKind::Mcp),
    ];
    let options = options("kill", 20, 2500, 100.0);
    let killer = std::thread::spawn(move || {
        // Kill once every session is open (ramp is 300 ms) and requests are flowing.
        std::thread::sleep(Duration::from_millis(1200));
        victim.kill();
    });
    let summary = run(targets, &options).unwrap();
    killer.join().unwrap();

    assert_reconciles(&summary);
    assert_eq!(summary.sessions.peak_open, 20);
    assert_eq!(
        summary.sessions.failures.get(FailureClass::Reset),
        10,
        "each victim session died once"
    );
    let survivor_summary = summary
        .targets
        .iter()
        .find(|t| t.node == "survivor")
        .unwrap();
    assert_eq!(
        survivor_summary.peak_open, 20,
        "the victim's sessions were re-placed on the survivor"
    );
    assert!(summary.requests.ok > 0);
}

#[test]
fn baseline_echo_is_driven_without_handshake_and_compared() {
    let baseline = MockServer::start(MockConfig::baseline());
    let node = MockServer::start(MockConfig::mcp(1000));
    let options = options("baseline", 10, 1000, 100.0);
    let summary = run(
        vec![
            target("baseline", baseline.addr, 1000, TargetKind::BaselineEcho),
            target("node1", node.addr, 1000, TargetKind::Mcp),
        ],
        &options,
    )
    .unwrap();
    assert_reconciles(&summary);
    let comparison = summary.baseline.expect("baseline ran");
    assert!(comparison.throughput_rps > 0.0);
    assert!(comparison.throughput_ratio.is_some());
    assert!(
        options
            .out_dir
            .join("baseline")
            .join("latency.csv")
            .exists()
    );
    assert_eq!(
        summary.targets.len(),
        1,
        "the main run loads the MCP node only"
    );
    let html = std::fs::read_to_string(options.out_dir.join("report.html")).unwrap();
    for row in ["Baseline send delay", "Baseline read delay"] {
        assert!(
            html.contains(&format!("<th>{row}</th><td>p50 ")),
            "report.html has {row}"
        );
    }
}

#[test]
fn an_slo_breach_fails_the_verdict() {
    let server = MockServer::start(MockConfig::mcp(100));
    let mut options = options("slo", 4, 800, 50.0);
    options.slo = Slo {
        p99_ms: 0.000_001,
        max_error_rate: 0.0,
    };
    let summary = run(
        vec![target("node1", server.addr, 100, TargetKind::Mcp)],
        &options,
    )
    .unwrap();
    assert_eq!(summary.verdict.p99_ok, Some(false));
    assert!(summary.verdict.error_rate_ok);
    assert!(!summary.verdict.passed);
    assert!(
        std::fs::read_to_string(options.out_dir.join("summary.txt"))
            .unwrap()
            .contains("BREACH")
    );
}

#[test]
fn two_worker_processes_aggregate_into_one_run() {
    let a = MockServer::start(MockConfig::mcp(1000));
    let b = MockServer::start(MockConfig::mcp(1000));
    let mut options = options("workers", 20, 1000, 100.0);
    options.sessions_per_worker = 10;
    options.launch = WorkerLaunch::Process(env!("CARGO_BIN_EXE_erlmcp-gen").into());
    let summary = run(
        vec![
            target("a", a.addr, 1000, TargetKind::Mcp),
            target("b", b.addr, 1000, TargetKind::Mcp),
        ],
        &options,
    )
    .unwrap();
    assert_reconciles(&summary);
    assert_eq!(summary.generator.workers, 2);
    assert_eq!(summary.generator.workers_lost, 0);
    assert!(summary.generator.hold_cpu_seconds.is_some());
    assert_eq!(summary.sessions.peak_open, 20);
    assert_eq!(summary.requests.failed, 0);
    assert!(summary.requests.ok > 0);
    for t in &summary.targets {
        assert_eq!(t.peak_open, 10, "{}", t.node);
    }
}

#[test]
fn a_worker_that_dies_without_reporting_is_counted_as_lost() {
    let server = MockServer::start(MockConfig::mcp(100));
    let mut options = options("lost", 4, 500, 10.0);
    // A "worker" that exits at once without a word, like one killed by the OOM killer.
    options.launch = WorkerLaunch::Command {
        program: "true".into(),
        args: Vec::new(),
    };
    let summary = run(
        vec![target("node1", server.addr, 100, TargetKind::Mcp)],
        &options,
    )
    .unwrap();
    assert_eq!(summary.generator.workers_lost, 1);
    assert!(!summary.verdict.passed);
    assert!(
        std::fs::read_to_string(options.out_dir.join("summary.txt"))
            .unwrap()
            .contains("LOST")
    );
}

/// A real node as an MCP target with both its addresses.
fn real_target(name: &str, node: &RealNode, capacity: u32) -> StressTarget {
    StressTarget {
        api_addr: Some(node.api),
        ..target(name, node.tcp, capacity, TargetKind::Mcp)
    }
}

fn http_options(name: &str, connections: u32, hold_ms: u64, rate: f64) -> StressOptions {
    let mut options = options(name, connections, hold_ms, rate);
    options.transport = Transport::Http;
    options
}

fn summary_json(options: &StressOptions) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(options.out_dir.join("summary.json")).unwrap())
        .unwrap()
}

#[test]
fn http_run_against_a_real_node_holds_every_session_and_ends_them() {
    let node = RealNode::start(1000);
    let options = http_options("http", 200, 2500, 300.0);
    let summary = run(vec![real_target("node1", &node, 1000)], &options).unwrap();

    assert_reconciles(&summary);
    assert_eq!(summary.sessions.opened, 200);
    assert_eq!(summary.sessions.peak_open, 200);
    assert_eq!(summary.sessions.failed, 0);
    assert!(summary.requests.sent > 0);
    assert_eq!(summary.requests.ok, summary.requests.sent);
    assert_eq!(summary.requests.failed, 0);
    assert!(summary.latency_ms.p99.is_some());
    assert_eq!(summary.transport, Transport::Http);
    assert_eq!(summary_json(&options)["transport"], "http");
    let text = std::fs::read_to_string(options.out_dir.join("summary.txt")).unwrap();
    assert!(text.contains("transport:   http"), "{text}");
    let html = std::fs::read_to_string(options.out_dir.join("report.html")).unwrap();
    assert!(html.contains("Streamable HTTP"));
    // The node's own count (its /metrics, over every transport) saw them all.
    assert_eq!(summary.resources[0].peak_sessions, Some(200));
    // Every stopped session was ended with DELETE /mcp: the node holds none of them now.
    assert_eq!(node.http_sessions(), 0);
}

#[test]
fn an_http_node_at_capacity_rejects_sessions_as_counted_failures() {
    let node = RealNode::start(5);
    let mut options = http_options("http-full", 8, 800, 20.0);
    options.max_attempts_per_session = 1;
    let summary = run(vec![real_target("small", &node, 5)], &options).unwrap();

    assert_reconciles(&summary);
    assert_eq!(summary.sessions.peak_open, 5);
    assert_eq!(
        summary
            .sessions
            .failures
            .get(FailureClass::RejectedAtCapacity),
        3
    );
    assert_eq!(summary.sessions.failures.total(), 3);
    assert_eq!(summary.requests.failed, 0);
    assert_eq!(node.http_sessions(), 0);
}

#[test]
fn an_http_run_drives_the_baseline_over_tcp() {
    let baseline = MockServer::start(MockConfig::baseline());
    let node = RealNode::start(1000);
    let options = http_options("http-baseline", 10, 1000, 50.0);
    let summary = run(
        vec![
            target("baseline", baseline.addr, 1000, TargetKind::BaselineEcho),
            real_target("node1", &node, 1000),
        ],
        &options,
    )
    .unwrap();
    assert_reconciles(&summary);
    assert_eq!(summary.transport, Transport::Http);
    assert_eq!(summary.requests.failed, 0);
    let comparison = summary.baseline.expect("baseline ran");
    assert!(comparison.throughput_rps > 0.0);
    let baseline_json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(options.out_dir.join("baseline").join("summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(baseline_json["transport"], "tcp");
    assert_eq!(baseline_json["requests"]["failed"], 0);
}

#[test]
fn an_http_run_needs_every_node_to_have_an_api_address() {
    let server = MockServer::start(MockConfig::mcp(10));
    let options = http_options("http-no-api", 2, 200, 0.0);
    let error = run(
        vec![target("tcp-only", server.addr, 10, TargetKind::Mcp)],
        &options,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("no HTTP API address"), "{error}");
}

/// Workers started the way Swarm jobs are (`stress-worker --shard-from-env`, no stdin, the
/// spec in the environment), as processes of this machine; records each one's exit status.
struct EnvWorkers {
    statuses: std::sync::Arc<std::sync::Mutex<Vec<std::process::ExitStatus>>>,
    start_times: std::sync::Mutex<Vec<Option<u64>>>,
}

impl erlmcp_gen::stress::WorkerHost for EnvWorkers {
    fn describe(&self) -> String {
        "environment-spec worker processes".into()
    }

    fn start_lead(&self, _workers: usize) -> Option<Duration> {
        Some(Duration::from_millis(700))
    }

    fn start<'a>(
        &'a self,
        spec: &'a erlmcp_gen::stress::worker::ShardSpec,
    ) -> futures_util::future::BoxFuture<'a, anyhow::Result<erlmcp_gen::stress::WorkerPipes>> {
        Box::pin(async move {
            self.start_times.lock().unwrap().push(spec.start_at_unix_ms);
            let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
                .args(["stress-worker", "--shard-from-env"])
                .env(
                    erlmcp_gen::stress::job_worker::SHARD_ENV,
                    serde_json::to_string(spec)?,
                )
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()?;
            let output = child.stdout.take().unwrap();
            let pid = child.id().unwrap().to_string();
            let statuses = self.statuses.clone();
            Ok(erlmcp_gen::stress::WorkerPipes {
                input: erlmcp_gen::stress::WorkerInput::Started {
                    stop: Box::pin(async move {
                        let _ = std::process::Command::new("kill")
                            .args(["-INT", &pid])
                            .status();
                    }),
                },
                output: Box::pin(output),
                finished: Box::pin(async move {
                    if let Ok(status) = child.wait().await {
                        statuses.lock().unwrap().push(status);
                    }
                }),
            })
        })
    }
}

#[test]
fn workers_without_stdin_take_their_shard_from_the_environment_and_start_together() {
    let a = MockServer::start(MockConfig::mcp(1000));
    let b = MockServer::start(MockConfig::mcp(1000));
    let mut options = options("env-workers", 20, 1000, 100.0);
    options.sessions_per_worker = 10;
    let host = std::sync::Arc::new(EnvWorkers {
        statuses: Default::default(),
        start_times: Default::default(),
    });
    options.launch = WorkerLaunch::Remote(erlmcp_gen::stress::RemoteWorkers(host.clone()));
    let summary = run(
        vec![
            target("a", a.addr, 1000, TargetKind::Mcp),
            target("b", b.addr, 1000, TargetKind::Mcp),
        ],
        &options,
    )
    .unwrap();
    assert_reconciles(&summary);
    assert_eq!(summary.generator.workers, 2);
    assert_eq!(summary.generator.workers_lost, 0);
    assert_eq!(summary.sessions.peak_open, 20);
    assert_eq!(summary.requests.failed, 0);
    assert!(summary.requests.ok > 0);
    let starts = host.start_times.lock().unwrap().clone();
    assert_eq!(starts.len(), 2);
    assert!(starts[0].is_some(), "the spec names the shared start");
    assert_eq!(starts[0], starts[1], "one start for every worker");
    let statuses = host.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 2);
    assert!(statuses.iter().all(|s| s.success()), "{statuses:?}");
}

#[test]
fn a_job_worker_without_a_shard_reports_the_failure_and_exits_zero() {
    // Swarm retries a job task that exits non-zero; the failure must be an event instead.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(["stress-worker", "--shard-from-env"])
        .env_remove(erlmcp_gen::stress::job_worker::SHARD_ENV)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with(r#"{"event":"failed","error":"ERLMCP_STRESS_SHARD is not set"#),
        "{stdout}"
    );
}
