//! The load generator behind `erlmcp-gen stress`.
//!
//! # Layout
//! - `protocol`: the wire lines (MCP initialize/initialized/echo, baseline echo) and reply parsing.
//! - `session`: one TCP session: connect, handshake, pipelined echo requests matched by id.
//! - `wire_time`: when a session's bytes crossed the wire (kernel receive timestamps).
//! - `http_session`: one Streamable HTTP session (POST `/mcp` on its own HTTP/1.1 connection).
//! - `schedule`: open-model pacing; every request's intended send time is fixed by the rate.
//! - `failure`: the failure classes every failed attempt or request is counted under.
//! - `recorder`: a worker's running tally, cut into one row per second.
//! - `stats`: HDR latency histograms, per-second rows and their merge over workers.
//! - `placement`: pure planning of sessions over targets, workers and source addresses.
//! - `worker`: one shard of sessions (in a `stress-worker` process, a container, or in-process).
//! - `held_memory`: what a held session costs a worker, measured in-process (`validate --host --probe`).
//! - `find_max`: `--find-max`'s pure part: the rates to step through, each step's verdict, the table.
//! - `rate_search`: runs those steps (a baseline and a cluster run each) and writes find-max.txt/csv.
//! - `job_worker`: a worker as a Swarm job: shard from the environment, wall-clock start, exit 0.
//! - `run`: the parent: plans, starts workers (together, on `go`), aggregates, samples, writes the report.
//! - `resources`: per-node resource sampling (/proc and the node's `/metrics`).
//! - `machine`: facts about the machine and CPU time of processes.
//! - `targets`: a running cluster's nodes as stress targets, and the native baseline echo servers.
//! - `containers`: stress workers and baseline echo servers as containers on a Docker cluster's network.
//! - `docker_stats`: per-container resource samples through the engine's stats API.
//! - `swarm_jobs`: stress workers as one-task Swarm jobs on a swarm cluster's overlay network.
//!
//! Workers outside this machine's process table (containers on a Docker cluster's network, jobs
//! on a swarm's overlay) come from a [`WorkerHost`]; [`containers`] is the Docker one,
//! [`swarm_jobs`] the Swarm one.

pub mod containers;
pub mod docker_stats;
pub mod failure;
pub mod find_max;
pub mod held_memory;
pub mod http_session;
pub mod job_worker;
pub mod machine;
pub mod placement;
pub mod protocol;
pub mod rate_search;
pub mod recorder;
pub mod resources;
pub mod run;
pub mod schedule;
pub mod session;
pub mod stats;
pub mod swarm_jobs;
pub mod targets;
pub mod wire_time;
pub mod worker;

pub use run::{StressSummary, run, run_with_sampler};
pub use worker::worker_main;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// What speaks on a target's TCP port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// An MCP node: newline-delimited JSON-RPC with an `initialize` handshake.
    Mcp,
    /// A bare newline echo server (no handshake): the baseline the cluster is compared with.
    BaselineEcho,
}

pub use crate::config::model::Transport;

/// One node to load.
#[derive(Debug, Clone, PartialEq)]
pub struct StressTarget {
    /// Node name, as in the cluster TOML.
    pub node: String,
    /// Its MCP-over-TCP (or baseline echo) listener.
    pub tcp_addr: SocketAddr,
    /// Its HTTP API (`/metrics`, `/ready`), if it has one.
    pub api_addr: Option<SocketAddr>,
    /// Its process id when it runs natively on this machine (for /proc sampling).
    pub pid: Option<u32>,
    /// How many sessions it accepts; sessions are placed in proportion to it.
    pub capacity: u32,
    /// MCP node or baseline echo server.
    pub kind: TargetKind,
}

/// The service-level objective a run is judged by.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Slo {
    /// Highest acceptable p99 latency over the run, in milliseconds.
    pub p99_ms: f64,
    /// Highest acceptable fraction of failed requests (0..=1).
    pub max_error_rate: f64,
}

/// How the parent talks to a started worker that is not a child of this process.
pub enum WorkerInput {
    /// The worker's stdin: the shard spec goes here, then `go`, and `stop` to end it early.
    Stdin(Pin<Box<dyn AsyncWrite + Send>>),
    /// The worker got its spec when it was started (a Swarm job has no stdin) and starts at the
    /// spec's wall-clock start time; awaiting this ends it early.
    Started {
        /// Ends the worker early (e.g. removes its job service).
        stop: BoxFuture<'static, ()>,
    },
}

/// A started worker that is not a child of this process: its input, its stdout, and what to
/// do once its stdout has ended (e.g. remove its container).
pub struct WorkerPipes {
    /// How the spec, `go` and an early stop reach the worker.
    pub input: WorkerInput,
    /// The worker's stdout: one JSON event per line.
    pub output: Pin<Box<dyn AsyncRead + Send>>,
    /// Awaited after `output` ends; cleans up after the worker.
    pub finished: BoxFuture<'static, ()>,
}

/// Somewhere workers run other than this machine's process table, e.g. containers on the
/// cluster's own network (so that sessions do not cross Docker's userland proxy).
pub trait WorkerHost: Send + Sync {
    /// Where this host runs workers, for messages ("containers on network erlmcp").
    fn describe(&self) -> String;
    /// How far ahead of now the shared wall-clock start of `workers` workers must lie, for a
    /// host whose workers get no `go` line (see [`WorkerInput::Started`]); `None` for one that
    /// reads stdin.
    fn start_lead(&self, _workers: usize) -> Option<Duration> {
        None
    }
    /// Starts the worker of `spec` running `erlmcp-gen stress-worker` with its pipes attached.
    fn start<'a>(
        &'a self,
        spec: &'a worker::ShardSpec,
    ) -> BoxFuture<'a, anyhow::Result<WorkerPipes>>;
}

/// A shared [`WorkerHost`]; equal when it is the same host.
#[derive(Clone)]
pub struct RemoteWorkers(pub Arc<dyn WorkerHost>);

impl std::fmt::Debug for RemoteWorkers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteWorkers({})", self.0.describe())
    }
}

impl PartialEq for RemoteWorkers {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// How shards are run.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerLaunch {
    /// Each shard in its own process: `<exe> stress-worker`.
    Process(PathBuf),
    /// Each shard in its own process started by an arbitrary command that ends up running
    /// `erlmcp-gen stress-worker` with stdin/stdout attached, e.g.
    /// `docker run -i --rm --network <cluster> <image> erlmcp-gen stress-worker`.
    Command {
        /// The program to run.
        program: PathBuf,
        /// All of its arguments (nothing is appended).
        args: Vec<String>,
    },
    /// Each shard started by a [`WorkerHost`] (containers on the cluster network).
    Remote(RemoteWorkers),
    /// Every shard as a task of this process (tests; small runs under the open-file cap).
    InProcess,
}

impl WorkerLaunch {
    /// Worker processes of the running executable (`erlmcp-gen stress-worker`).
    pub fn current_exe() -> anyhow::Result<Self> {
        Ok(WorkerLaunch::Process(std::env::current_exe()?))
    }
}

/// Everything about a run except its targets.
#[derive(Debug, Clone, PartialEq)]
pub struct StressOptions {
    /// Concurrent sessions to ramp to.
    pub connections: u32,
    /// TCP or Streamable HTTP for the MCP targets.
    pub transport: Transport,
    /// How long to hold the sessions and send requests after the ramp.
    pub duration: Duration,
    /// How long the linear ramp to `connections` takes.
    pub ramp: Duration,
    /// Total echo requests per second over all sessions (open model).
    pub rate: f64,
    /// Bound on connect plus handshake of one session.
    pub connect_timeout: Duration,
    /// Bound on one request, from its intended send time.
    pub request_timeout: Duration,
    /// Most sessions one worker holds (each is an open file; the cap is 20,000 per process).
    pub sessions_per_worker: u32,
    /// Bound on connection attempts per session slot (first placement plus re-placements).
    pub max_attempts_per_session: u32,
    /// The SLO the summary's verdict checks.
    pub slo: Slo,
    /// Cluster name (recorded, and used in the report title).
    pub cluster: String,
    /// Runtime the cluster runs on, e.g. "native" or "docker" (recorded only).
    pub runtime: String,
    /// The exact command line that started the run (recorded only).
    pub command_line: String,
    /// Directory all output files are written to (created if missing).
    pub out_dir: PathBuf,
    /// Show a live progress line on stderr.
    pub progress: bool,
    /// How shards run.
    pub launch: WorkerLaunch,
    /// The cluster file the targets came from, named in the report's header.
    pub cluster_file: Option<crate::report::summary::ClusterFileFacts>,
}

/// Sessions one load worker holds unless `stress --sessions-per-worker` says otherwise: each is
/// an open file, under the 20,000 per-process cap with room for the rest.
pub const DEFAULT_SESSIONS_PER_WORKER: u32 = 16_000;

impl StressOptions {
    /// Options with the usual defaults for everything but what a run must name.
    pub fn new(connections: u32, duration: Duration, rate: f64, out_dir: PathBuf) -> Self {
        Self {
            connections,
            transport: Transport::Tcp,
            duration,
            ramp: Duration::from_secs(1),
            rate,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            sessions_per_worker: DEFAULT_SESSIONS_PER_WORKER,
            max_attempts_per_session: 5,
            slo: Slo {
                p99_ms: 100.0,
                max_error_rate: 0.01,
            },
            cluster: "cluster".to_string(),
            runtime: "native".to_string(),
            command_line: String::new(),
            out_dir,
            progress: false,
            launch: WorkerLaunch::InProcess,
            cluster_file: None,
        }
    }
}
