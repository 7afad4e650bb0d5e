//! A worker: one shard of sessions in one process, ramped, driven and reported second by second.
//!
//! The parent runs shards in worker processes (`erlmcp-gen stress-worker`, spec as one JSON
//! line on stdin, events as JSON lines on stdout) because one process may hold at most
//! 20,000 open files here; tests may run a shard in-process through [`run_shard`].

use super::failure::FailureClass;
use super::http_session::HttpSession;
use super::machine::{process_cpu_seconds, process_peak_memory_bytes};
use super::placement::{slot_targets, source_for};
use super::recorder::Recorder;
use super::schedule::OpenSchedule;
use super::session::{Session, SessionEnd};
use super::stats::SecondRow;
use super::{TargetKind, Transport};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until};

/// How long a worker avoids a target after it refused or timed out a connect, or was full.
const AVOID_TARGET_FOR: Duration = Duration::from_secs(1);

/// One target as a worker sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardTarget {
    /// Node name.
    pub node: String,
    /// Where its MCP (or baseline echo) TCP listener is.
    pub tcp_addr: SocketAddr,
    /// Its HTTP API port (Streamable HTTP at `/mcp`), when it has one.
    #[serde(default)]
    pub http_addr: Option<SocketAddr>,
    /// MCP node or bare echo server.
    pub kind: TargetKind,
    /// Sessions this worker initially places on it.
    pub sessions: u64,
    /// A DNS name the worker resolves when it starts, replacing the addresses' IP (their ports
    /// stay): the parent cannot resolve names that exist only on a Swarm overlay network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

/// Everything a worker needs to run its shard; sent by the parent as one JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// Worker index (0-based).
    pub worker: u32,
    /// How MCP targets are driven (baseline echo targets always over TCP).
    #[serde(default)]
    pub transport: Transport,
    /// Targets and this worker's initial placement on each.
    pub targets: Vec<ShardTarget>,
    /// Source addresses for sessions to loopback targets (empty: let the kernel choose).
    pub sources: Vec<IpAddr>,
    /// Ramp length: session `i` of `n` opens at `ramp * i / n`.
    pub ramp_ms: u64,
    /// Hold length after the ramp, during which requests are sent.
    pub hold_ms: u64,
    /// This worker's share of the total request rate (req/s).
    pub rate: f64,
    /// Bound on connect plus handshake.
    pub connect_timeout_ms: u64,
    /// Bound on each request, from its intended send time.
    pub request_timeout_ms: u64,
    /// Bound on the connection attempts of one session slot (first placement plus re-placements).
    pub max_attempts_per_slot: u32,
    /// The worker is its own process (not a task of the parent): its rows carry its CPU time,
    /// and it starts only on a `go` line on stdin, which the parent sends once every worker is
    /// up, so workers whose start took a while (containers) still share one clock and one hold.
    #[serde(default)]
    pub own_process: bool,
    /// For a worker that gets no `go` line (a Swarm job has no stdin): the wall-clock time,
    /// in ms since the Unix epoch, at which every worker of the run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at_unix_ms: Option<u64>,
}

impl ShardSpec {
    /// How many sessions this worker opens.
    pub fn sessions(&self) -> u64 {
        self.targets.iter().map(|t| t.sessions).sum()
    }
}

/// What a worker reports to the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WorkerEvent {
    /// The counts of one second (boxed: a row is ten times the size of the other variant).
    Second(Box<SecondRow>),
    /// The shard finished; every request it sent is resolved in the rows already reported.
    Done {
        /// CPU time (user + system) the worker process used, when it is its own process.
        cpu_seconds: Option<f64>,
        /// Peak resident memory of the worker process (`VmHWM`), when it is its own process.
        #[serde(default)]
        peak_memory_bytes: Option<u64>,
    },
    /// The worker could not run its shard; it ends without `done` (a job worker reports a
    /// failure this way and exits 0, so Swarm never retries it).
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// Where requests are handed to open sessions; closed (None) once the run stops sending.
type Registry = Mutex<Option<Vec<mpsc::UnboundedSender<Instant>>>>;

/// Per-target "avoid until" times (ms since shard start), for re-placement.
struct TargetHealth {
    start: Instant,
    avoid_until_ms: Vec<AtomicU64>,
}

impl TargetHealth {
    fn avoid(&self, target: usize) {
        let until = (Instant::now() + AVOID_TARGET_FOR - self.start).as_millis() as u64;
        self.avoid_until_ms[target].store(until, Ordering::Relaxed);
    }

    /// The next target after `failed` (in table order) that is not being avoided, else `failed + 1`.
    fn next_after(&self, failed: usize) -> usize {
        let now = (Instant::now() - self.start).as_millis() as u64;
        let n = self.avoid_until_ms.len();
        (1..=n)
            .map(|step| (failed + step) % n)
            .find(|t| self.avoid_until_ms[*t].load(Ordering::Relaxed) <= now)
            .unwrap_or((failed + 1) % n)
    }
}

/// Runs one shard to completion, sending its rows on `events`; `stop` ends it early (Ctrl-C).
pub async fn run_shard(
    spec: ShardSpec,
    stop: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<WorkerEvent>,
) {
    let start = Instant::now();
    let ramp = Duration::from_millis(spec.ramp_ms);
    let hold_end = start + ramp + Duration::from_millis(spec.hold_ms);
    let mut shard = ShardSlots::new(spec);
    let spec = shard.spec.clone();
    let recorder = shard.recorder.clone();
    let registry = shard.registry.clone();
    let order = slot_targets(&spec.targets.iter().map(|t| t.sessions).collect::<Vec<_>>());
    let total = order.len().max(1) as u32;
    for (slot, target) in order.into_iter().enumerate() {
        shard.spawn(
            slot,
            target,
            start + ramp.mul_f64(slot as f64 / total as f64),
        );
    }

    let last_reported = Arc::new(AtomicU64::new(0));
    let cpu_meter = Arc::new(CpuMeter::new(spec.own_process));
    let reporter = tokio::spawn(report_every_second(
        recorder.clone(),
        events.clone(),
        start,
        last_reported.clone(),
        cpu_meter.clone(),
    ));
    let dispatcher = tokio::spawn(dispatch(
        OpenSchedule::new(start + ramp, spec.rate, hold_end),
        recorder.clone(),
        registry.clone(),
        stop.clone(),
    ));

    let mut stop = stop;
    let held_to_the_end = tokio::select! {
        _ = sleep_until(hold_end) => true,
        _ = stop.wait_for(|stopped| *stopped) => false,
    };
    let _ = shard.finish.send(true);
    // The dispatcher ends by itself at `hold_end` or on `stop`; wait so no request is issued after.
    let _ = dispatcher.await;
    // Let the last requests resolve before any session closes, so that a burst of closing
    // connections does not delay (and so inflate the latency of) answers still on their way.
    let drain_deadline = Instant::now() + Duration::from_millis(spec.request_timeout_ms);
    while recorder.outstanding() > 0 && Instant::now() < drain_deadline {
        sleep(Duration::from_millis(10)).await;
    }
    // The row of the hold's last second is cut before any session closes: that row's timer and
    // the hold's end fall on one instant, and a session closed first would show in the hold as
    // one fewer open (the likely cause of a 100,000-session run's "min during hold 99999", one
    // session closed normally in its last second; not reproduced in a test).
    let hold_end_second = (hold_end - start).as_secs_f64().round() as u64;
    while held_to_the_end
        && last_reported.load(Ordering::SeqCst) < hold_end_second
        && Instant::now() < hold_end + Duration::from_secs(1)
    {
        sleep(Duration::from_millis(1)).await;
    }
    // Dropping every sender tells each session to finish its in-flight requests and close.
    shard.close().await;
    reporter.abort();
    let _ = reporter.await;
    // The final row takes the second after the last one reported, so no second is reported twice.
    let last = last_reported.load(Ordering::SeqCst) + 1;
    let mut row = recorder.cut(last);
    row.worker_cpu_seconds = cpu_meter.since_last();
    let _ = events.send(WorkerEvent::Second(Box::new(row)));
}

/// This process's CPU time since the previous reading, when the worker is its own process.
struct CpuMeter {
    enabled: bool,
    /// The previous reading, as `f64` bits.
    last: AtomicU64,
}

impl CpuMeter {
    fn new(enabled: bool) -> Self {
        let now = if enabled {
            process_cpu_seconds("self").unwrap_or(0.0)
        } else {
            0.0
        };
        Self {
            enabled,
            last: AtomicU64::new(now.to_bits()),
        }
    }

    fn since_last(&self) -> f64 {
        if !self.enabled {
            return 0.0;
        }
        let Ok(now) = process_cpu_seconds("self") else {
            return 0.0;
        };
        let last = f64::from_bits(self.last.swap(now.to_bits(), Ordering::SeqCst));
        (now - last).max(0.0)
    }
}

/// Cuts a row at every whole second since `start`.
async fn report_every_second(
    recorder: Arc<Recorder>,
    events: mpsc::UnboundedSender<WorkerEvent>,
    start: Instant,
    last_reported: Arc<AtomicU64>,
    cpu_meter: Arc<CpuMeter>,
) {
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        let at = tick.tick().await;
        let second = (at - start).as_secs_f64().round() as u64;
        let mut row = recorder.cut(second);
        row.worker_cpu_seconds = cpu_meter.since_last();
        last_reported.store(second, Ordering::SeqCst);
        if events.send(WorkerEvent::Second(Box::new(row))).is_err() {
            return;
        }
    }
}

/// How early the dispatcher wakes for a request, and how far ahead of the time it wakes it takes
/// what falls due: one tick of tokio's timer.
///
/// Tokio's timers fire on whole milliseconds and round a deadline up, so a request woken for at
/// its own intended time went out up to 1 ms late, and that lateness was its latency (the median
/// request's send delay was 0.8 ms at 100,000 sessions and 20,000 req/s; the README's "Measured"
/// has the runs, their command and machine). Woken a tick early, a request goes out up to a tick before its time, and its
/// session starts its latency at the write instead ([`Session::drive`]).
const TIMER_TICK: Duration = Duration::from_millis(1);

/// Issues requests at their intended times, round-robin over the open sessions.
async fn dispatch(
    mut schedule: OpenSchedule,
    recorder: Arc<Recorder>,
    registry: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let mut cursor = 0usize;
    while let Some(at) = schedule.next_at() {
        let wake = at.checked_sub(TIMER_TICK).unwrap_or(at);
        tokio::select! {
            _ = sleep_until(wake) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        let due = schedule.take_due(Instant::now() + TIMER_TICK);
        recorder.requests_sent(due.len() as u64);
        let mut guard = registry.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sessions) = guard.as_mut() else {
            recorder.requests_failed(FailureClass::NoOpenSession, due.len() as u64);
            return;
        };
        for intended in due {
            loop {
                if sessions.is_empty() {
                    recorder.requests_failed(FailureClass::NoOpenSession, 1);
                    break;
                }
                cursor %= sessions.len();
                if sessions[cursor].send(intended).is_ok() {
                    cursor += 1;
                    break;
                }
                // That session has ended: forget it and hand the request to the next one.
                sessions.swap_remove(cursor);
            }
        }
    }
}

/// A session of the run's transport: TCP, or Streamable HTTP (MCP targets of an HTTP run).
enum AnySession {
    Tcp(Session),
    Http(HttpSession),
}

impl AnySession {
    /// Opens a session to `target` for `slot`, over `transport` when the target is an MCP node
    /// and over TCP when it is a baseline echo server.
    async fn open(
        transport: Transport,
        target: &ShardTarget,
        sources: &[IpAddr],
        slot: usize,
        connect_timeout: Duration,
    ) -> Result<AnySession, FailureClass> {
        match (transport, target.kind) {
            (Transport::Http, TargetKind::Mcp) => {
                // The parent refuses an HTTP run with a target that has no API address.
                let addr = target.http_addr.ok_or(FailureClass::ConnectError)?;
                let source = source_for(addr, sources, slot);
                HttpSession::open(addr, source, connect_timeout)
                    .await
                    .map(AnySession::Http)
            }
            _ => {
                let source = source_for(target.tcp_addr, sources, slot);
                Session::open(target.tcp_addr, target.kind, source, connect_timeout)
                    .await
                    .map(AnySession::Tcp)
            }
        }
    }

    async fn drive(
        self,
        due: mpsc::UnboundedReceiver<Instant>,
        request_timeout: Duration,
        recorder: &Recorder,
    ) -> SessionEnd {
        match self {
            AnySession::Tcp(session) => session.drive(due, request_timeout, recorder).await,
            AnySession::Http(session) => session.drive(due, request_timeout, recorder).await,
        }
    }

    /// Ends a session that never carried requests (a TCP one just closes).
    async fn close(self, bound: Duration) {
        if let AnySession::Http(session) = self {
            session.close(bound).await;
        }
    }
}

/// What one session slot shares with the rest of its shard.
struct SlotContext {
    spec: Arc<ShardSpec>,
    recorder: Arc<Recorder>,
    registry: Arc<Registry>,
    health: Arc<TargetHealth>,
    finished: watch::Receiver<bool>,
}

impl SlotContext {
    fn is_finished(&self) -> bool {
        *self.finished.borrow()
    }

    /// Opens the slot's session at `opens_at`, re-placing it on another target when the
    /// attempt fails or the session dies, up to `max_attempts_per_slot` attempts.
    async fn run(mut self, slot: usize, mut target: usize, opens_at: Instant) {
        tokio::select! {
            _ = sleep_until(opens_at) => {}
            _ = self.finished.wait_for(|f| *f) => return,
        }
        let connect_timeout = Duration::from_millis(self.spec.connect_timeout_ms);
        let request_timeout = Duration::from_millis(self.spec.request_timeout_ms);
        for attempt in 1..=self.spec.max_attempts_per_slot {
            if self.is_finished() {
                return;
            }
            let shard_target = &self.spec.targets[target];
            match AnySession::open(
                self.spec.transport,
                shard_target,
                &self.spec.sources,
                slot,
                connect_timeout,
            )
            .await
            {
                Ok(session) => {
                    self.recorder.session_opened(target);
                    let (tx, rx) = mpsc::unbounded_channel();
                    let registered = match self
                        .registry
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                    {
                        Some(sessions) => {
                            sessions.push(tx);
                            true
                        }
                        None => false,
                    };
                    if !registered {
                        // The run stopped while this session was connecting: close it at once.
                        session.close(request_timeout).await;
                        self.recorder.session_closed(target, None);
                        return;
                    }
                    match session.drive(rx, request_timeout, &self.recorder).await {
                        SessionEnd::Stopped => {
                            self.recorder.session_closed(target, None);
                            return;
                        }
                        SessionEnd::Died(class) => {
                            self.recorder.session_closed(target, Some(class))
                        }
                    }
                }
                Err(class) => {
                    self.recorder.session_attempt_failed(target, class);
                    if matches!(
                        class,
                        FailureClass::ConnectRefused
                            | FailureClass::ConnectTimeout
                            | FailureClass::RejectedAtCapacity
                    ) {
                        self.health.avoid(target);
                    }
                }
            }
            target = self.health.next_after(target);
            // Back off a little more each attempt so a dead node is not hammered.
            let backoff = Duration::from_millis(50 * u64::from(attempt));
            tokio::select! {
                _ = sleep(backoff) => {}
                _ = self.finished.wait_for(|f| *f) => return,
            }
        }
    }
}

/// A shard's session slots and what they share: [`run_shard`] drives them, and `held_memory`
/// opens some and sends nothing, to measure what a held session costs a worker.
pub(super) struct ShardSlots {
    spec: Arc<ShardSpec>,
    recorder: Arc<Recorder>,
    registry: Arc<Registry>,
    health: Arc<TargetHealth>,
    finish: watch::Sender<bool>,
    finished: watch::Receiver<bool>,
    slots: JoinSet<()>,
    next_slot: usize,
}

impl ShardSlots {
    /// A shard with no slot yet; `finished` flips when the hold ends or the run is stopped.
    pub(super) fn new(spec: ShardSpec) -> Self {
        let nodes: Vec<String> = spec.targets.iter().map(|t| t.node.clone()).collect();
        let (finish, finished) = watch::channel(false);
        Self {
            spec: Arc::new(spec),
            recorder: Arc::new(Recorder::new(&nodes)),
            registry: Arc::new(Mutex::new(Some(Vec::new()))),
            health: Arc::new(TargetHealth {
                start: Instant::now(),
                avoid_until_ms: nodes.iter().map(|_| AtomicU64::new(0)).collect(),
            }),
            finish,
            finished,
            slots: JoinSet::new(),
            next_slot: 0,
        }
    }

    /// Spawns the slot that opens its session on `target` at `opens_at`.
    fn spawn(&mut self, slot: usize, target: usize, opens_at: Instant) {
        let context = SlotContext {
            spec: self.spec.clone(),
            recorder: self.recorder.clone(),
            registry: self.registry.clone(),
            health: self.health.clone(),
            finished: self.finished.clone(),
        };
        self.slots.spawn(context.run(slot, target, opens_at));
        self.next_slot = self.next_slot.max(slot + 1);
    }

    /// Spawns `count` more slots on the first target, their opens spread evenly over `over` as
    /// a ramp spreads them.
    pub(super) fn open(&mut self, count: usize, over: Duration) {
        let start = Instant::now();
        for i in 0..count {
            let opens_at = start + over.mul_f64(i as f64 / count.max(1) as f64);
            self.spawn(self.next_slot, 0, opens_at);
        }
    }

    /// Sessions open and registered for requests now.
    pub(super) fn registered(&self) -> usize {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, Vec::len)
    }

    /// Stops every slot (sessions close, slots still opening give up) and waits for them.
    pub(super) async fn close(mut self) {
        let _ = self.finish.send(true);
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        while self.slots.join_next().await.is_some() {}
    }
}

/// The `erlmcp-gen stress-worker` process: reads a [`ShardSpec`] line from stdin, runs it, and
/// writes [`WorkerEvent`] JSON lines to stdout. Stdin closing, a `stop` line or Ctrl-C stop it early;
/// with [`ShardSpec::own_process`] it starts on a `go` line (and ends at once on `stop` before it).
pub fn worker_main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let mut stdin = BufReader::new(tokio::io::stdin()).lines();
        let line = stdin.next_line().await?.ok_or_else(|| anyhow::anyhow!("no shard spec on stdin"))?;
        let spec: ShardSpec = serde_json::from_str(&line)?;
        if spec.own_process {
            loop {
                match stdin.next_line().await?.as_deref().map(str::trim) {
                    Some("go") => break,
                    Some("stop") | None => return Ok(()),
                    Some(_) => {}
                }
            }
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            tokio::select! {
                _ = async { while let Ok(Some(line)) = stdin.next_line().await { if line.trim() == "stop" { break; } } } => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = stop_tx.send(true);
        });
        let (events_tx, mut events_rx) = mpsc::unbounded_channel();
        let shard = tokio::spawn(run_shard(spec, stop_rx, events_tx));
        let mut stdout = tokio::io::stdout();
        while let Some(event) = events_rx.recv().await {
            let mut line = serde_json::to_string(&event)?;
            line.push('\n');
            stdout.write_all(line.as_bytes()).await?;
            stdout.flush().await?;
        }
        shard.await?;
        let done = WorkerEvent::Done {
            cpu_seconds: process_cpu_seconds("self").ok(),
            peak_memory_bytes: process_peak_memory_bytes("self").ok(),
        };
        let mut line = serde_json::to_string(&done)?;
        line.push('\n');
        stdout.write_all(line.as_bytes()).await?;
        stdout.flush().await?;
        Ok(())
    });
    // The stdin watcher sits in a blocking read until the parent closes stdin; don't wait for it.
    runtime.shutdown_background();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::stats::TargetSecond;

    #[tokio::test(start_paused = true)]
    async fn a_request_is_handed_out_within_a_timer_tick_before_its_time_not_after_it() {
        // Every 10 ms from 10.5 ms on: between the timer's whole milliseconds, which a sleep
        // until the request's own time rounds up to (0.5 ms late each, before the fix).
        let start = Instant::now() + Duration::from_micros(10_500);
        let schedule = OpenSchedule::new(start, 100.0, start + Duration::from_millis(35));
        let (session, mut handed_out) = mpsc::unbounded_channel();
        let registry = Arc::new(Mutex::new(Some(vec![session])));
        let recorder = Arc::new(Recorder::new(&["node1".to_string()]));
        let (_stop, stop) = watch::channel(false);
        tokio::spawn(dispatch(schedule, recorder, registry, stop));
        let mut count = 0;
        while let Some(intended) = handed_out.recv().await {
            let now = Instant::now();
            assert!(now <= intended, "{:?} after its time", now - intended);
            assert!(intended - now <= TIMER_TICK, "{:?} early", intended - now);
            count += 1;
        }
        assert_eq!(count, 4);
    }

    #[tokio::test]
    async fn the_hold_s_last_row_counts_every_session_still_open() {
        // No requests, so nothing waits to drain at the hold's end: the sessions closed at once,
        // and where that came before the last row's cut, the hold's last second lost them.
        const SESSIONS: u64 = 20;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        const RUNS: u64 = 5;
        let (_test_done, done) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            // Hold every connection open, silent, until the test ends.
            let held: Vec<_> = (0..SESSIONS * RUNS)
                .map_while(|_| listener.accept().ok())
                .collect();
            let _ = done.recv();
            drop(held);
        });
        for _ in 0..RUNS {
            let spec = ShardSpec {
                worker: 0,
                transport: Transport::Tcp,
                targets: vec![ShardTarget {
                    node: "baseline".into(),
                    tcp_addr: addr,
                    http_addr: None,
                    kind: TargetKind::BaselineEcho,
                    sessions: SESSIONS,
                    host: None,
                }],
                sources: vec![],
                ramp_ms: 0,
                hold_ms: 1000,
                rate: 0.0,
                connect_timeout_ms: 2000,
                request_timeout_ms: 2000,
                max_attempts_per_slot: 1,
                own_process: false,
                start_at_unix_ms: None,
            };
            let (events, mut rows) = mpsc::unbounded_channel();
            let (_stop, stop) = watch::channel(false);
            run_shard(spec, stop, events).await;
            let mut last_of_hold = None;
            while let Ok(event) = rows.try_recv() {
                if let WorkerEvent::Second(row) = event
                    && row.second == 1
                {
                    last_of_hold = Some(row.open_sessions());
                }
            }
            assert_eq!(last_of_hold, Some(SESSIONS));
        }
    }

    #[test]
    fn spec_and_events_round_trip_as_json_lines() {
        let spec = ShardSpec {
            worker: 3,
            transport: Transport::Http,
            targets: vec![ShardTarget {
                node: "n1".into(),
                tcp_addr: "127.0.0.1:7000".parse().unwrap(),
                http_addr: Some("127.0.0.1:8000".parse().unwrap()),
                kind: TargetKind::Mcp,
                sessions: 12,
                host: None,
            }],
            sources: vec!["127.0.4.2".parse().unwrap()],
            ramp_ms: 1000,
            hold_ms: 2000,
            rate: 12.5,
            connect_timeout_ms: 500,
            request_timeout_ms: 700,
            max_attempts_per_slot: 5,
            own_process: true,
            start_at_unix_ms: None,
        };
        let line = serde_json::to_string(&spec).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<ShardSpec>(&line).unwrap(), spec);

        let mut row = SecondRow {
            second: 4,
            sent: 2,
            ok: 1,
            failed: 1,
            ..SecondRow::default()
        };
        row.targets.push(TargetSecond {
            node: "n1".into(),
            open: 12,
            ..TargetSecond::default()
        });
        row.latency.record(Duration::from_micros(1500));
        for event in [
            WorkerEvent::Second(Box::new(row)),
            WorkerEvent::Done {
                cpu_seconds: Some(1.5),
                peak_memory_bytes: Some(4096),
            },
        ] {
            let line = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<WorkerEvent>(&line).unwrap(), event);
        }
    }

    #[test]
    fn a_spec_without_transport_fields_is_a_tcp_run() {
        let line = r#"{"worker":0,"targets":[{"node":"n1","tcp_addr":"127.0.0.1:7000","kind":"mcp","sessions":2}],"sources":[],"ramp_ms":0,"hold_ms":0,"rate":1.0,"connect_timeout_ms":1,"request_timeout_ms":1,"max_attempts_per_slot":1}"#;
        let spec: ShardSpec = serde_json::from_str(line).unwrap();
        assert_eq!(spec.transport, Transport::Tcp);
        assert_eq!(spec.targets[0].http_addr, None);
        let http = serde_json::to_string(&Transport::Http).unwrap();
        assert_eq!(http, "\"http\"");
    }

    #[test]
    fn re_placement_skips_avoided_targets() {
        let health = TargetHealth {
            start: Instant::now(),
            avoid_until_ms: (0..3).map(|_| AtomicU64::new(0)).collect(),
        };
        // (avoided targets, failed target, expected next)
        let cases: [(&[usize], usize, usize); 3] = [(&[], 0, 1), (&[1], 0, 2), (&[0, 1, 2], 0, 1)];
        for (avoided, failed, next) in cases {
            for t in 0..3 {
                health.avoid_until_ms[t].store(0, Ordering::Relaxed);
            }
            for t in avoided {
                health.avoid(*t);
            }
            assert_eq!(health.next_after(failed), next, "{avoided:?}");
        }
    }
}
