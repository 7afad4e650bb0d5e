//! The parent of a run: plans the shards, starts the workers, merges their rows, samples the
//! nodes, handles Ctrl-C, and writes every output file.

use super::machine::{MachineFacts, process_cpu_seconds, process_peak_memory_bytes};
use super::placement::{SOURCES_PER_WORKER, loopback_sources, plan_sessions, source_block};
use super::resources::{NativeSampler, NoSampler, NodeSample, ResourceSampler};
use super::stats::Timeline;
use super::worker::{ShardSpec, ShardTarget, WorkerEvent, run_shard};
use super::{
    StressOptions, StressTarget, TargetKind, Transport, WorkerInput, WorkerLaunch, WorkerPipes,
};
use crate::host::socket_probe::read_counters;
use crate::report;
pub use crate::report::summary::StressSummary;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};

/// Most sessions one process may hold: the open-file cap here is 20,000, less room for the rest.
const IN_PROCESS_SESSION_LIMIT: u32 = 18_000;

/// Extra time, beyond the planned run and its timeouts, before the parent stops workers itself.
const OVERRUN_GRACE: Duration = Duration::from_secs(30);

/// Sessions a second the parent expects the workers to close after the hold, at the least.
/// Closing is the kernel's work on both ends (FIN, TIME_WAIT, the node's wakeup and close):
/// 1,000,000 sessions closed at about 13,000 a second on 2 cores (2026-12-02), so a third
/// of that leaves a slower machine room before the workers are called overrun.
const CLOSES_PER_SECOND_EXPECTED: u64 = 5_000;

/// How long after the start the parent lets workers run before it stops them: the plan, every
/// timeout a session may still be in, the time to close every session, and a grace.
fn overrun_bound(options: &StressOptions) -> Duration {
    options.ramp
        + options.duration
        + options.connect_timeout * options.max_attempts_per_session.max(1)
        + options.request_timeout
        + Duration::from_secs(u64::from(options.connections) / CLOSES_PER_SECOND_EXPECTED)
        + OVERRUN_GRACE
}

/// The progress line's redraw interval.
const PROGRESS_REDRAW: Duration = Duration::from_millis(200);

/// Runs a stress test with the native resource sampler and writes every file into `options.out_dir`.
///
/// Targets of kind [`TargetKind::BaselineEcho`] are driven first, with the same options, into
/// `out_dir/baseline/`; the MCP targets then get the main run, and its summary compares the two.
pub fn run(targets: Vec<StressTarget>, options: &StressOptions) -> anyhow::Result<StressSummary> {
    let sampler = NativeSampler::new(&targets);
    run_with_sampler(targets, options, Box::new(sampler))
}

/// Like [`run`], with a caller-chosen resource sampler (e.g. Docker stats).
pub fn run_with_sampler(
    targets: Vec<StressTarget>,
    options: &StressOptions,
    sampler: Box<dyn ResourceSampler>,
) -> anyhow::Result<StressSummary> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run_async(targets, options, sampler))
}

/// The async body of [`run_with_sampler`], for callers already inside a tokio runtime.
pub async fn run_async(
    targets: Vec<StressTarget>,
    options: &StressOptions,
    sampler: Box<dyn ResourceSampler>,
) -> anyhow::Result<StressSummary> {
    if targets.is_empty() {
        bail!("no targets to load");
    }
    if options.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if matches!(options.launch, WorkerLaunch::InProcess)
        && options.connections > IN_PROCESS_SESSION_LIMIT
    {
        bail!(
            "{} sessions cannot be held in one process (open-file cap); run workers as processes",
            options.connections
        );
    }
    let (baseline, cluster): (Vec<_>, Vec<_>) = targets
        .into_iter()
        .partition(|t| t.kind == TargetKind::BaselineEcho);
    if options.transport == Transport::Http
        && let Some(t) = cluster.iter().find(|t| t.api_addr.is_none())
    {
        bail!(
            "node {} has no HTTP API address: `--transport http` drives Streamable HTTP at its /mcp",
            t.node
        );
    }
    if cluster.is_empty() {
        return Ok(run_phase(0, baseline, options, sampler).await?.summary);
    }
    let baseline_run = if baseline.is_empty() {
        None
    } else {
        let mut baseline_options = options.clone();
        baseline_options.out_dir = options.out_dir.join("baseline");
        // The baseline is a bare newline echo server: it is driven over TCP in every run.
        baseline_options.transport = Transport::Tcp;
        let phase = run_phase(1, baseline, &baseline_options, Box::new(NoSampler)).await?;
        if phase.summary.interrupted {
            return Ok(phase.summary);
        }
        Some(phase)
    };
    let mut phase = run_phase(0, cluster, options, sampler).await?;
    if let Some(baseline) = baseline_run {
        phase.summary.attach_baseline(&baseline.summary);
        report::write_all(
            &options.out_dir,
            &phase.summary,
            &phase.timeline,
            &phase.samples,
            Some(&baseline.timeline),
        )?;
    }
    Ok(phase.summary)
}

/// What one phase measured (its files are already written).
struct PhaseOutput {
    summary: StressSummary,
    timeline: Timeline,
    samples: Vec<(u64, NodeSample)>,
}

/// How the parent tells one worker to stop early.
enum StopHandle {
    InProcess(watch::Sender<bool>),
    Process(Option<Pin<Box<dyn AsyncWrite + Send>>>),
    /// A worker without stdin (a Swarm job): the future ends it, once.
    Started(Option<futures_util::future::BoxFuture<'static, ()>>),
}

impl StopHandle {
    /// Tells a worker process that waits for it to start (in-process shards start at once).
    async fn go(&mut self) {
        if let StopHandle::Process(Some(stdin)) = self {
            let _ = stdin.write_all(b"go\n").await;
            let _ = stdin.flush().await;
        }
    }

    async fn stop(&mut self) {
        match self {
            StopHandle::InProcess(tx) => {
                let _ = tx.send(true);
            }
            StopHandle::Process(stdin) => {
                if let Some(mut stdin) = stdin.take() {
                    let _ = stdin.write_all(b"stop\n").await;
                    let _ = stdin.flush().await;
                    // Keep it open until the worker exits: closing would also mean stop, and it is.
                    *self = StopHandle::Process(Some(stdin));
                }
            }
            StopHandle::Started(stop) => {
                if let Some(stop) = stop.take() {
                    stop.await;
                }
            }
        }
    }
}

/// What the workers send the parent: `(worker, Some(event))`, then `(worker, None)` when it ends.
type EventSender = mpsc::UnboundedSender<(u32, Option<WorkerEvent>)>;

/// How long before the hold's end the kernel's memory is read (sessions are all still open).
const KERNEL_READ_BEFORE_END: Duration = Duration::from_millis(500);

/// The parent's CPU seconds in the hold, from its readings at the hold's start and end.
///
/// The workers start their clocks when told to go, a little before the parent's, so they can
/// all finish before the parent's hold-end timer fires: the hold then ended with them, and the
/// reading taken `now` (after the last worker) closes it.
fn hold_cpu_seconds(
    (begin, end): (Option<f64>, Option<f64>),
    now: impl FnOnce() -> Option<f64>,
) -> Option<f64> {
    let end = end.or_else(|| begin.and(now()))?;
    Some((end - begin?).max(0.0))
}

/// One measured run against one set of targets; `phase` picks fresh source addresses.
async fn run_phase(
    phase: u32,
    targets: Vec<StressTarget>,
    options: &StressOptions,
    mut sampler: Box<dyn ResourceSampler>,
) -> anyhow::Result<PhaseOutput> {
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    let cpu_at_start = process_cpu_seconds("self").unwrap_or(0.0);
    // Before any worker connects: the kernel's memory without this run's sockets.
    let kernel_at_start = read_counters();
    let mut specs = shard_specs(&targets, options, source_block(std::process::id(), phase));
    // Workers that get no `go` line start at a shared wall-clock time instead.
    let start_at = match &options.launch {
        WorkerLaunch::Remote(host) => host.0.start_lead(specs.len()),
        _ => None,
    }
    .map(|lead| SystemTime::now() + lead);
    if let Some(at) = start_at {
        let unix_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for spec in &mut specs {
            spec.start_at_unix_ms = Some(unix_ms);
        }
    }
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    // Listened to from here on: Ctrl-C while workers start (job services are slow to create, and
    // the shared start may lie seconds ahead) stops the ones started rather than leaving them.
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut stops = Vec::new();
    let mut failed_to_start = None;
    for spec in specs.iter().cloned() {
        tokio::select! {
            started = launch(spec, &options.launch, events_tx.clone()) => match started {
                Ok(stop) => stops.push(stop),
                Err(e) => failed_to_start = Some(e),
            },
            _ = &mut ctrl_c => failed_to_start = Some(anyhow::anyhow!("interrupted while the workers started")),
        }
        if failed_to_start.is_some() {
            break;
        }
    }
    drop(events_tx);
    if failed_to_start.is_none() {
        // Every worker is up and holds its spec: start them together, and the run's clock with them.
        for stop in &mut stops {
            stop.go().await;
        }
        if let Some(wait) = start_at.and_then(|at| at.duration_since(SystemTime::now()).ok()) {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = &mut ctrl_c => failed_to_start = Some(anyhow::anyhow!("interrupted before the run's start")),
            }
        }
    }
    if let Some(e) = failed_to_start {
        // The workers already started would run their shard without a reader.
        for stop in &mut stops {
            stop.stop().await;
        }
        return Err(e);
    }
    let started_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();

    // Resource sampling runs on its own thread: /proc reads and HTTP GETs block.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler_thread = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut samples: Vec<(u64, NodeSample)> = Vec::new();
            let mut second = 0u64;
            while sampling.load(Ordering::Relaxed) {
                let now = start.elapsed().as_secs();
                if now >= second {
                    samples.extend(sampler.sample().into_iter().map(|s| (now, s)));
                    second = now + 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };

    let progress = options.progress.then(|| progress_bar(options.connections));
    let planned_end = options.ramp + options.duration;
    let overrun = overrun_bound(options);
    let mut timeline = Timeline::for_workers(specs.len());
    let mut last_drawn: Option<Instant> = None;
    let mut running = specs.len();
    let mut worker_cpu_seconds = 0.0;
    // Each worker's own peak; in-process workers are inside the parent's.
    let mut worker_peak_memory = 0u64;
    // Kernel memory with every session open: read when the hold ends.
    let mut kernel_at_hold_end = None;
    let mut interrupted_at: Option<Duration> = None;
    let mut done = vec![false; specs.len()];
    let mut overran = false;
    let (mut failed_requests, mut failed_sessions) = (0u64, 0u64);
    // The parent's own CPU time at the start and end of the hold, for the hold-only cost.
    let mut parent_cpu_hold: (Option<f64>, Option<f64>) = (None, None);
    let hold_start_timer = tokio::time::sleep(options.ramp);
    let hold_end_timer = tokio::time::sleep(planned_end);
    let mut hold_start_timer = std::pin::pin!(hold_start_timer);
    let mut hold_end_timer = std::pin::pin!(hold_end_timer);
    // Workers close their sessions as the hold ends: read the kernel just before.
    let kernel_timer = tokio::time::sleep(
        planned_end.saturating_sub(KERNEL_READ_BEFORE_END.min(options.duration / 2)),
    );
    let mut kernel_timer = std::pin::pin!(kernel_timer);
    let mut overrun_timer = std::pin::pin!(tokio::time::sleep(overrun));
    while running > 0 {
        tokio::select! {
            event = events_rx.recv() => match event {
                Some((worker, Some(WorkerEvent::Second(row)))) => {
                    timeline.add(worker, &row);
                    failed_requests += row.failed;
                    failed_sessions += row.session_failures.total();
                    // Every worker's row lands here (63 a second at 1,000,000 sessions) and a
                    // merge reads each worker's targets: redraw at most five times a second.
                    if let Some(bar) = &progress
                        && last_drawn.is_none_or(|at: Instant| at.elapsed() >= PROGRESS_REDRAW)
                    {
                        last_drawn = Some(Instant::now());
                        update_progress(bar, &timeline, row.second, options, (failed_requests, failed_sessions));
                    }
                }
                Some((worker, Some(WorkerEvent::Done { cpu_seconds, peak_memory_bytes }))) => {
                    done[worker as usize] = true;
                    worker_cpu_seconds += cpu_seconds.unwrap_or(0.0);
                    worker_peak_memory += peak_memory_bytes.unwrap_or(0);
                }
                Some((worker, Some(WorkerEvent::Failed { error }))) => {
                    // It ends without `done` and is counted as lost.
                    eprintln!("stress worker {worker} failed: {error}");
                }
                Some((worker, None)) => {
                    running -= 1;
                    timeline.worker_ended(worker);
                }
                None => break,
            },
            () = &mut hold_start_timer, if parent_cpu_hold.0.is_none() => {
                parent_cpu_hold.0 = process_cpu_seconds("self").ok();
            }
            () = &mut hold_end_timer, if parent_cpu_hold.1.is_none() => {
                parent_cpu_hold.1 = process_cpu_seconds("self").ok();
            }
            () = &mut kernel_timer, if kernel_at_hold_end.is_none() => {
                kernel_at_hold_end = read_counters();
            }
            _ = &mut ctrl_c, if interrupted_at.is_none() => {
                interrupted_at = Some(start.elapsed());
                kernel_at_hold_end = kernel_at_hold_end.or_else(read_counters);
                parent_cpu_hold.1.get_or_insert(process_cpu_seconds("self").unwrap_or(0.0));
                for stop in &mut stops { stop.stop().await; }
            }
            () = &mut overrun_timer => {
                // Workers that outlive every bound they were given are stopped; if they still
                // do not finish, the parent gives up on them and the summary says so.
                if overran {
                    break;
                }
                overran = true;
                // Past the hold the workers are only closing sessions: the hold itself is whole.
                if start.elapsed() < planned_end {
                    interrupted_at.get_or_insert(start.elapsed());
                }
                for stop in &mut stops { stop.stop().await; }
                overrun_timer.set(tokio::time::sleep(OVERRUN_GRACE));
            }
        }
    }
    // A worker that ended without saying it was done may have left requests unresolved.
    let workers_lost = done.iter().filter(|d| !**d).count() as u32;
    sampling.store(false, Ordering::Relaxed);
    let samples = sampler_thread.join().unwrap_or_default();
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let wall = start.elapsed();
    let parent_cpu = process_cpu_seconds("self").unwrap_or(cpu_at_start) - cpu_at_start;
    let hold_seconds = match interrupted_at {
        Some(at) => at.saturating_sub(options.ramp).as_secs_f64(),
        None => options.duration.as_secs_f64(),
    };
    let hold_window =
        options.ramp.as_secs()..=(options.ramp.as_secs_f64() + hold_seconds).ceil() as u64;
    let workers_hold_cpu: f64 = timeline
        .rows()
        .iter()
        .filter(|r| hold_window.contains(&r.second) && r.second > *hold_window.start())
        .map(|r| r.worker_cpu_seconds)
        .sum();
    let parent_hold_cpu = hold_cpu_seconds(parent_cpu_hold, || process_cpu_seconds("self").ok());
    let summary = StressSummary::build(&report::summary::SummaryInputs {
        options,
        targets: &targets,
        timeline: &timeline,
        samples: &samples,
        machine: MachineFacts::read(),
        generator_cpu_seconds: parent_cpu + worker_cpu_seconds,
        generator_hold_cpu_seconds: parent_hold_cpu.map(|parent| parent + workers_hold_cpu),
        generator_peak_memory_bytes: process_peak_memory_bytes("self")
            .ok()
            .map(|parent| parent + worker_peak_memory),
        kernel: (kernel_at_start, kernel_at_hold_end),
        workers: specs.len() as u32,
        workers_lost,
        hold_seconds,
        wall_seconds: wall.as_secs_f64(),
        drain_seconds: wall.saturating_sub(planned_end).as_secs_f64(),
        interrupted: interrupted_at.is_some(),
        started_unix,
    });
    report::write_all(&options.out_dir, &summary, &timeline, &samples, None)?;
    Ok(PhaseOutput {
        summary,
        timeline,
        samples,
    })
}

/// The shard of every worker: sessions per target, source addresses and rate share.
pub fn shard_specs(
    targets: &[StressTarget],
    options: &StressOptions,
    source_block: u8,
) -> Vec<ShardSpec> {
    let capacities: Vec<u64> = targets.iter().map(|t| u64::from(t.capacity)).collect();
    let plan = plan_sessions(
        u64::from(options.connections),
        &capacities,
        u64::from(options.sessions_per_worker),
    );
    plan.into_iter()
        .enumerate()
        .map(|(worker, sessions)| {
            let worker_sessions: u64 = sessions.iter().sum();
            ShardSpec {
                worker: worker as u32,
                transport: options.transport,
                targets: targets
                    .iter()
                    .zip(sessions)
                    .map(|(t, n)| ShardTarget {
                        node: t.node.clone(),
                        tcp_addr: t.tcp_addr,
                        http_addr: t.api_addr,
                        kind: t.kind,
                        sessions: n,
                        host: None,
                    })
                    .collect(),
                sources: loopback_sources(source_block, worker as u32, SOURCES_PER_WORKER),
                ramp_ms: options.ramp.as_millis() as u64,
                hold_ms: options.duration.as_millis() as u64,
                rate: options.rate * worker_sessions as f64 / f64::from(options.connections),
                connect_timeout_ms: options.connect_timeout.as_millis() as u64,
                request_timeout_ms: options.request_timeout.as_millis() as u64,
                max_attempts_per_slot: options.max_attempts_per_session.max(1),
                own_process: !matches!(options.launch, WorkerLaunch::InProcess),
                start_at_unix_ms: None,
            }
        })
        .collect()
}

/// Starts one worker, in-process or as a `stress-worker` child, forwarding its events.
async fn launch(
    spec: ShardSpec,
    launch: &WorkerLaunch,
    events: EventSender,
) -> anyhow::Result<StopHandle> {
    let worker = spec.worker;
    match launch {
        WorkerLaunch::InProcess => {
            let (stop_tx, stop_rx) = watch::channel(false);
            let (shard_tx, mut shard_rx) = mpsc::unbounded_channel();
            let shard = tokio::spawn(run_shard(spec, stop_rx, shard_tx));
            tokio::spawn(async move {
                while let Some(event) = shard_rx.recv().await {
                    let _ = events.send((worker, Some(event)));
                }
                if shard.await.is_ok() {
                    // Its CPU time is this process's, which the parent measures itself.
                    let done = WorkerEvent::Done {
                        cpu_seconds: None,
                        peak_memory_bytes: None,
                    };
                    let _ = events.send((worker, Some(done)));
                }
                let _ = events.send((worker, None));
            });
            Ok(StopHandle::InProcess(stop_tx))
        }
        WorkerLaunch::Process(exe) => {
            spawn_worker_process(spec, exe, &["stress-worker".to_string()], events).await
        }
        WorkerLaunch::Command { program, args } => {
            spawn_worker_process(spec, program, args, events).await
        }
        WorkerLaunch::Remote(host) => {
            let pipes = host.0.start(&spec).await.with_context(|| {
                format!("starting stress worker {worker} on {}", host.0.describe())
            })?;
            Ok(attach_worker(spec, pipes, events).await)
        }
    }
}

/// Starts `program args...` as a worker: spec on its stdin, events from its stdout.
async fn spawn_worker_process(
    spec: ShardSpec,
    exe: &std::path::Path,
    args: &[String],
    events: EventSender,
) -> anyhow::Result<StopHandle> {
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting worker {}", exe.display()))?;
    let input = child.stdin.take().context("worker stdin")?;
    let output = child.stdout.take().context("worker stdout")?;
    let pipes = WorkerPipes {
        input: WorkerInput::Stdin(Box::pin(input)),
        output: Box::pin(output),
        finished: Box::pin(async move {
            let _ = child.wait().await;
        }),
    };
    Ok(attach_worker(spec, pipes, events).await)
}

/// Sends a started worker its spec and forwards its events until its stdout ends.
async fn attach_worker(spec: ShardSpec, pipes: WorkerPipes, events: EventSender) -> StopHandle {
    let worker = spec.worker;
    let WorkerPipes {
        input,
        output,
        finished,
    } = pipes;
    let handle = match input {
        WorkerInput::Stdin(mut input) => {
            let mut line = serde_json::to_string(&spec).expect("shard specs serialize");
            line.push('\n');
            // A worker that cannot take its spec ends without reporting and is counted as lost;
            // the other workers' run goes on.
            if let Err(e) = async {
                input.write_all(line.as_bytes()).await?;
                input.flush().await
            }
            .await
            {
                eprintln!("stress worker {worker}: could not send its shard spec: {e}");
            }
            StopHandle::Process(Some(input))
        }
        WorkerInput::Started { stop } => StopHandle::Started(Some(stop)),
    };
    tokio::spawn(async move {
        let mut lines = BufReader::new(output).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<WorkerEvent>(&line) {
                Ok(event) => {
                    let _ = events.send((worker, Some(event)));
                }
                Err(e) => {
                    eprintln!("stress worker {worker}: unreadable line ({e}): {line}")
                }
            }
        }
        finished.await;
        let _ = events.send((worker, None));
    });
    handle
}

fn progress_bar(connections: u32) -> ProgressBar {
    let bar = ProgressBar::new(u64::from(connections));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} sessions  {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn update_progress(
    bar: &ProgressBar,
    timeline: &Timeline,
    second: u64,
    options: &StressOptions,
    failed: (u64, u64),
) {
    // Every worker's row lands here: read the counts and the second's p99 without copying its
    // histogram.
    let Some(row) = timeline.counts(second) else {
        return;
    };
    let p99 = timeline.latency(second).and_then(|l| l.quantile_ms(0.99));
    let phase = if second <= options.ramp.as_secs() {
        "ramp"
    } else if second <= (options.ramp + options.duration).as_secs() {
        "hold"
    } else {
        "drain"
    };
    bar.set_position(row.open_sessions());
    bar.set_message(format!(
        "{phase} | {} req/s | p99 {} | errors {} req, {} sessions",
        row.ok,
        p99.map_or("-".to_string(), |v| format!("{v:.1} ms")),
        failed.0,
        failed.1,
    ));
}

#[cfg(test)]
mod tests {
    use super::hold_cpu_seconds;

    #[test]
    fn the_overrun_bound_leaves_time_to_close_every_session() {
        let mut options = super::StressOptions::new(
            1_000_000,
            std::time::Duration::from_secs(120),
            2_000.0,
            std::path::PathBuf::from("unused"),
        );
        options.ramp = std::time::Duration::from_secs(600);
        // 2026-12-02: closing 1,000,000 sessions took 75 s after the hold, past the old bound
        // (the plan + 25 s of connects + 5 s + 30 s), and a whole hold was called interrupted.
        let bound = super::overrun_bound(&options);
        assert!(
            bound >= std::time::Duration::from_secs(720 + 75 + 60),
            "{bound:?}"
        );
        options.connections = 100;
        assert!(super::overrun_bound(&options) < std::time::Duration::from_secs(720 + 61));
    }

    #[test]
    fn the_hold_cpu_is_the_difference_of_the_two_readings() {
        assert_eq!(hold_cpu_seconds((Some(1.0), Some(3.5)), || None), Some(2.5));
    }

    #[test]
    fn a_hold_that_ended_with_the_workers_is_closed_by_the_last_reading() {
        // Before the fix this was None, and a short run's summary lost its hold cost.
        assert_eq!(hold_cpu_seconds((Some(1.0), None), || Some(2.0)), Some(1.0));
    }

    #[test]
    fn a_run_that_never_reached_its_hold_has_no_hold_cpu() {
        assert_eq!(hold_cpu_seconds((None, None), || Some(2.0)), None);
        assert_eq!(hold_cpu_seconds((None, Some(2.0)), || Some(2.0)), None);
    }
}
