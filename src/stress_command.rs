//! `erlmcp-gen stress`: a stress profile (from the cluster file, overridden by flags) run against
//! the running cluster, with a baseline echo server driven by the same generator in the same run,
//! on one runtime or, with `--compare`, on several for the container overhead.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;

use crate::config::model::{Cluster, RuntimeKind};
use crate::engine::Runtime;
use crate::engine::docker::DockerEngine;
use crate::engine::swarm::SwarmEngine;
use crate::progress::Progress;
use crate::report::summary::ClusterFileFacts;
use crate::stress::containers::{
    ContainerBaselines, ContainerWorkers, network_targets, remove_stress_containers,
};
use crate::stress::docker_stats::DockerSampler;
use crate::stress::find_max::{FindMaxPlan, FindMaxResult};
use crate::stress::rate_search::find_max_async;
use crate::stress::resources::{NativeSampler, NoSampler, ResourceSampler};
use crate::stress::swarm_jobs::{SwarmJobs, remove_stress_jobs};
use crate::stress::targets::{Baselines, cluster_targets};
use crate::stress::{
    RemoteWorkers, Slo, StressOptions, StressSummary, StressTarget, Transport, WorkerHost as _,
    WorkerLaunch,
};
use std::sync::Arc;

/// Where the load-generator workers run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkersOn {
    /// `network` for a Docker or swarm cluster, `host` for a native one.
    Auto,
    /// Processes on this machine, through the nodes' published ports.
    Host,
    /// Containers on the cluster's Docker network, or Swarm jobs on its overlay network (no
    /// userland proxy in the path).
    Network,
}

/// A stress run's settings, as flags override the cluster file's `[stress]` profile.
#[derive(Debug, Clone)]
pub struct StressRequest {
    /// Concurrent sessions.
    pub connections: u32,
    /// Hold time after the ramp.
    pub duration: Duration,
    /// Ramp time.
    pub ramp: Duration,
    /// Total echo requests per second.
    pub rate: f64,
    /// TCP or Streamable HTTP for the MCP sessions.
    pub transport: Transport,
    /// Drive the baseline echo servers too.
    pub baseline: bool,
    /// Sessions per worker process.
    pub sessions_per_worker: u32,
    /// Output directory (default `results/<cluster>-<UTC time>`).
    pub out: Option<PathBuf>,
    /// The command line, recorded in the summary.
    pub command_line: String,
    /// Live progress line.
    pub progress: bool,
    /// Where the workers run.
    pub workers_on: WorkersOn,
}

/// `results/<cluster>-YYYYmmdd-HHMMSS` (UTC).
pub fn default_out_dir(cluster: &str) -> PathBuf {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since the epoch (the inverse of the usual days-from-civil).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    PathBuf::from("results").join(format!(
        "{cluster}-{year:04}{month:02}{day:02}-{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

/// The cluster file's `[slo]` as the stress run judges it.
pub fn slo(cluster: &Cluster) -> Slo {
    Slo {
        p99_ms: cluster.slo.p99.0.as_secs_f64() * 1000.0,
        max_error_rate: cluster.slo.error_rate_percent / 100.0,
    }
}

fn options(cluster: &Cluster, request: &StressRequest, runtime: &str, out: &Path) -> StressOptions {
    let mut options = StressOptions::new(
        request.connections,
        request.duration,
        request.rate,
        out.to_path_buf(),
    );
    options.ramp = request.ramp;
    options.transport = request.transport;
    options.sessions_per_worker = request.sessions_per_worker;
    options.slo = slo(cluster);
    options.cluster = cluster.name.clone();
    options.runtime = runtime.to_string();
    options.command_line = request.command_line.clone();
    options.progress = request.progress;
    options.launch = WorkerLaunch::current_exe().unwrap_or(WorkerLaunch::InProcess);
    options.cluster_file = std::fs::read(&cluster.source)
        .ok()
        .map(|bytes| ClusterFileFacts {
            path: cluster.source.clone(),
            sha256: hex_sha256(&bytes),
            slo_p99: cluster.slo.p99.to_string(),
        });
    options
}

/// SHA-256 of `bytes`, lowercase hex (how a summary names the cluster file it loaded).
pub fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Runs the profile against the cluster on `runtime`, writing every file into `out`.
pub async fn run_on(
    cluster: &Cluster,
    runtime: &Runtime,
    request: &StressRequest,
    out: &Path,
    progress: &Progress,
) -> anyhow::Result<StressSummary> {
    if request.workers_on == WorkersOn::Network && matches!(runtime, Runtime::Native(_)) {
        bail!("--workers network needs the Docker runtime; a native cluster has no network");
    }
    let mut targets = cluster_targets(cluster, runtime).await?;
    let options = options(cluster, request, runtime.name(), out);
    if request.workers_on == WorkersOn::Host || matches!(runtime, Runtime::Native(_)) {
        warn_if_conntrack_short(request, progress);
    }
    match runtime {
        Runtime::Docker(engine) if request.workers_on != WorkersOn::Host => {
            run_in_network(cluster, engine, request, targets, options, progress).await
        }
        Runtime::Swarm(swarm) if request.workers_on != WorkersOn::Host => {
            run_as_jobs(cluster, swarm, request, targets, options, progress).await
        }
        // Samplers watch the cluster's nodes only: the baselines sit idle during the cluster's
        // phase, and their own phase is not sampled.
        Runtime::Docker(engine) => {
            let sampler = DockerSampler::new(engine.client(), &cluster.name, &targets)?;
            let _baselines = host_baselines(cluster, request, &mut targets, progress)?;
            crate::stress::run::run_async(targets, &options, Box::new(sampler)).await
        }
        Runtime::Native(_) | Runtime::Swarm(_) => {
            let sampler: Box<dyn ResourceSampler> = Box::new(NativeSampler::new(&targets));
            let _baselines = host_baselines(cluster, request, &mut targets, progress)?;
            crate::stress::run::run_async(targets, &options, sampler).await
        }
    }
}

/// Runs `stress --find-max`: the profile at each rate of `plan` against the cluster on `runtime`
/// (workers on this machine), each step in its own directory under `out`.
pub async fn find_max_on(
    cluster: &Cluster,
    runtime: &Runtime,
    request: &StressRequest,
    plan: &FindMaxPlan,
    out: &Path,
    progress: &Progress,
) -> anyhow::Result<FindMaxResult> {
    if request.workers_on == WorkersOn::Network {
        bail!("--find-max runs its workers on this machine: use `--workers host` (or auto)");
    }
    let mut targets = cluster_targets(cluster, runtime).await?;
    let options = options(cluster, request, runtime.name(), out);
    warn_if_conntrack_short(request, progress);
    let _baselines = host_baselines(cluster, request, &mut targets, progress)?;
    match runtime {
        Runtime::Docker(engine) => {
            let client = engine.client();
            let name = cluster.name.clone();
            find_max_async(targets, &options, plan, |nodes| {
                match DockerSampler::new(client.clone(), &name, nodes) {
                    Ok(sampler) => Box::new(sampler) as Box<dyn ResourceSampler>,
                    Err(_) => Box::new(NoSampler),
                }
            })
            .await
        }
        Runtime::Native(_) | Runtime::Swarm(_) => {
            find_max_async(targets, &options, plan, |nodes| {
                Box::new(NativeSampler::new(nodes)) as Box<dyn ResourceSampler>
            })
            .await
        }
    }
}

/// Baseline echo processes on this machine, added to `targets`; they stop when dropped.
fn host_baselines(
    cluster: &Cluster,
    request: &StressRequest,
    targets: &mut Vec<StressTarget>,
    progress: &Progress,
) -> anyhow::Result<Option<Baselines>> {
    if !request.baseline {
        return Ok(None);
    }
    let baselines = Baselines::start(cluster, progress)?;
    targets.extend(baselines.targets.clone());
    Ok(Some(baselines))
}

/// Workers (and baselines) as containers on the cluster network, removed again afterwards.
async fn run_in_network(
    cluster: &Cluster,
    engine: &DockerEngine,
    request: &StressRequest,
    mut targets: Vec<StressTarget>,
    mut options: StressOptions,
    progress: &Progress,
) -> anyhow::Result<StressSummary> {
    let targets_on_bridge = cluster.nodes.len() as u64 * if request.baseline { 2 } else { 1 };
    warn_if_neighbour_table_small(targets_on_bridge, request, progress);
    let exe = std::env::current_exe()?;
    let workers =
        ContainerWorkers::prepare(engine, cluster, &exe, request.sessions_per_worker, progress)
            .await?;
    progress.info(format!("stress workers run as {}", workers.describe()));
    options.launch = WorkerLaunch::Remote(RemoteWorkers(Arc::new(workers)));
    // The sampler reads each node's /metrics through its published API port, from this machine.
    let sampler = DockerSampler::new(engine.client(), &cluster.name, &targets)?;
    network_targets(engine, cluster, &mut targets).await?;
    let baselines = if request.baseline {
        let baselines = ContainerBaselines::start(engine, cluster, progress).await?;
        targets.extend(baselines.targets.clone());
        Some(baselines)
    } else {
        None
    };
    let result = crate::stress::run::run_async(targets, &options, Box::new(sampler)).await;
    if let Some(baselines) = baselines {
        baselines.remove().await;
    }
    // Workers remove their own containers as they end; this catches any that did not.
    let _ = remove_stress_containers(&engine.client(), &cluster.name).await;
    result
}

/// Warns before a run whose containers need more neighbour (ARP) entries than this machine's
/// kernel keeps: past the table's size connects stall on SYN retransmits (the 1,000,000-session
/// Docker run of 2026-12-02 held at most 22,401 sessions so). Only for the local engine, whose
/// kernel is this one; `validate --host` reports the same check.
fn warn_if_neighbour_table_small(targets: u64, request: &StressRequest, progress: &Progress) {
    if std::env::var_os("DOCKER_HOST").is_some() {
        return;
    }
    let workers = crate::stress::placement::worker_count(
        u64::from(request.connections),
        u64::from(request.sessions_per_worker),
    );
    let check =
        crate::host::neighbour_table::judge(crate::host::neighbour_table::read(), targets, workers);
    if check.verdict != crate::host::Verdict::Ok {
        progress.warn(format!(
            "{} on this machine: have {}; need {}; fix: {}",
            check.name, check.have, check.need, check.fix
        ));
    }
}

/// Warns before a run from this machine whose sessions do not fit the connection-tracking
/// table as it is now. A previous run's closed connections stay in it for the TIME_WAIT
/// timeout (120 s by default) and a full table drops new connections' packets: in a series of
/// 100,000-session runs starting about 75 s apart on the default 262,144 entries (2026-12-07) the
/// third overflowed it (the kernel logged "table full"), its open sessions fell to 61,898 in the
/// hold and 38 % of its requests timed out. `validate --host` reports the same check, but only
/// at the time it runs.
fn warn_if_conntrack_short(request: &StressRequest, progress: &Progress) {
    let limits = crate::host::system_limits::read();
    let sessions = u64::from(request.connections);
    if let Some(check) = conntrack_check(&limits, sessions, request.ramp, request.baseline) {
        progress.warn(format!(
            "{} on this machine now: have {}; need {}; fix: {}",
            check.name, check.have, check.need, check.fix
        ));
    }
}

/// The conntrack check of a run of `sessions` ramped over `ramp`, when it does not pass.
fn conntrack_check(
    limits: &crate::host::system_limits::SystemLimits,
    sessions: u64,
    ramp: Duration,
    baseline: bool,
) -> Option<crate::host::HostCheck> {
    let demand = crate::host::system_limits::Demand {
        sessions,
        largest_nofile: 0,
        node_memory_limits: 0,
        memory_total: None,
        ramp_seconds: ramp.as_secs(),
        baseline,
    };
    let check = crate::host::system_limits::judge_conntrack(limits, demand);
    (check.verdict != crate::host::Verdict::Ok).then_some(check)
}

/// Workers as Swarm jobs on the cluster's overlay network; every job is removed afterwards.
async fn run_as_jobs(
    cluster: &Cluster,
    swarm: &SwarmEngine,
    request: &StressRequest,
    targets: Vec<StressTarget>,
    mut options: StressOptions,
    progress: &Progress,
) -> anyhow::Result<StressSummary> {
    if request.baseline {
        // Host baselines listen on this machine's loopback, which the jobs cannot reach.
        progress.warn(
            "no baseline on swarm jobs: the baseline echo servers are not on the overlay \
             network (use `--workers host` for a baseline on swarm)",
        );
    }
    warn_if_neighbour_table_small(cluster.nodes.len() as u64, request, progress);
    let exe = std::env::current_exe()?;
    let jobs =
        SwarmJobs::prepare(swarm, cluster, &exe, request.sessions_per_worker, progress).await?;
    progress.info(format!("stress workers run as {}", jobs.describe()));
    options.launch = WorkerLaunch::Remote(RemoteWorkers(Arc::new(jobs)));
    // The sampler reads each node's /metrics through its published API port, from this machine.
    let sampler: Box<dyn ResourceSampler> = Box::new(NativeSampler::new(&targets));
    let result = crate::stress::run::run_async(targets, &options, sampler).await;
    // Jobs are removed as their streams end; this catches those that did not (an error, Ctrl-C,
    // a worker that outlived the run's bounds).
    if let Err(e) = remove_stress_jobs(&swarm.client(), &cluster.name).await {
        progress.warn(format!("stress jobs may be left: {e:#}"));
    }
    result
}

/// The runtimes `--compare` names, checked.
pub fn compare_runtimes(kinds: &[RuntimeKind]) -> anyhow::Result<(RuntimeKind, RuntimeKind)> {
    match kinds {
        [a, b] if a != b => Ok((*a, *b)),
        _ => bail!("--compare takes two different runtimes, like `--compare native,docker`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_dirs_name_the_cluster_and_a_utc_time() {
        let dir = default_out_dir("erlmcp");
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("erlmcp-20"), "{name}");
        assert_eq!(name.len(), "erlmcp-20261126-201811".len());
    }

    #[test]
    fn a_run_is_warned_when_an_earlier_run_s_closed_connections_fill_the_conntrack_table() {
        use crate::host::system_limits::{Conntrack, LoopbackTracking, SystemLimits};
        // A 100,000-session run without baseline on the default table, which still holds the
        // closed connections of earlier runs (2026-12-07: the third of a series of such runs
        // overflowed it); the count is this test's, not a measured one.
        let table = |count| SystemLimits {
            conntrack: Some(Conntrack {
                max: 262_144,
                count,
                loopback: LoopbackTracking::Tracked("test".into()),
                time_wait_seconds: Some(120),
            }),
            ..SystemLimits::default()
        };
        let ramp = Duration::from_secs(30);
        let check = conntrack_check(&table(199_943), 100_000, ramp, false);
        let check = check.expect("an almost full table is reported");
        assert_eq!(check.verdict, crate::host::Verdict::Fail);
        assert!(check.have.contains("199,943 in use"), "{}", check.have);
        assert!(check.fix.contains("nf_conntrack_max"), "{}", check.fix);
        // The same run on an empty table fits; with a baseline first it does not (the
        // baseline's 100,000 closed connections are tracked through the 30 s ramp).
        assert!(conntrack_check(&table(258), 100_000, ramp, false).is_none());
        assert!(conntrack_check(&table(258), 100_000, ramp, true).is_none());
        assert!(conntrack_check(&table(258), 200_000, ramp, true).is_some());
    }

    #[test]
    fn compare_needs_two_different_runtimes() {
        assert!(compare_runtimes(&[RuntimeKind::Native, RuntimeKind::Docker]).is_ok());
        assert!(compare_runtimes(&[RuntimeKind::Native]).is_err());
        assert!(compare_runtimes(&[RuntimeKind::Native, RuntimeKind::Native]).is_err());
    }
}
