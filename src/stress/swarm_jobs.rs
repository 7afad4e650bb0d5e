//! The load generator's side of a swarm cluster: each `stress` worker is its own one-task Swarm
//! job on the cluster's overlay network, so sessions go task to task across engines rather than
//! through published ports (host-mode ports on 127.0.0.1 go through the userland proxy, which
//! failed at about 9,000 connections on one port here).
//!
//! One job per worker, not one job of N replicas: on Docker 20.10 every task of a replicated
//! job gets slot 0, so `{{.Task.Slot}}` cannot pick a shard. A service has no stdin, so the
//! shard spec goes in [`SHARD_ENV`] with a wall-clock start time (see [`super::job_worker`]);
//! the events come back through the service's logs, and an early stop is the service's removal
//! (its stop signal, SIGINT, ends the shard the way Ctrl-C does).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicatedJob, TaskSpec,
    TaskSpecContainerSpec, TaskSpecLogDriver, TaskSpecPlacement, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, LogsOptionsBuilder,
};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::io::StreamReader;

use super::containers::{FD_HEADROOM, STRESS_WORKER_USER, stress_filter, stress_labels};
use super::job_worker::SHARD_ENV;
use super::worker::ShardSpec;
use super::{TargetKind, WorkerHost, WorkerInput, WorkerPipes};
use crate::config::model::{CONTAINER_API_PORT, CONTAINER_LISTENER_PORT, Cluster};
use crate::deploy_spec::resource_name;
use crate::engine::swarm::SwarmEngine;
use crate::progress::Progress;

/// Time for Swarm to schedule and start the first job, ahead of the shared start.
const START_LEAD_BASE: Duration = Duration::from_secs(8);

/// Time added to the lead for each job: they are created one after the other.
const START_LEAD_PER_JOB: Duration = Duration::from_millis(500);

/// How long a job's logs are still read after its task has ended (the last lines may lag).
const LOG_TAIL_AFTER_END: Duration = Duration::from_secs(3);

/// How long a removal of a job service may take before it is left to the next sweep.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(15);

/// How long a worker's container has, after its SIGINT, to finish its last requests and rows.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Log lines buffered between a job's log stream and the parent's reader.
const LOG_CHUNKS_BUFFERED: usize = 64;

/// Starts `stress` workers as Swarm jobs of this `erlmcp-gen` binary's image on the overlay.
pub struct SwarmJobs {
    docker: Docker,
    /// The worker image's ID (Swarm does not try a registry for an image named by ID).
    image: String,
    network: String,
    cluster: String,
    nofile: u64,
    constraints: Vec<String>,
    /// Node name → the DNS name of its task on the overlay.
    names: HashMap<String, String>,
}

/// The name a node's task answers to on the overlay: `tasks.<service>` resolves to the task's
/// own address, so sessions skip the service's virtual IP (IPVS: a NAT hop, and an idle timeout
/// that drops quiet sessions).
pub fn task_dns_name(cluster: &Cluster, node: &str) -> String {
    format!("tasks.{}", resource_name(cluster, node))
}

/// A worker job's service name.
pub fn job_name(cluster: &str, worker: u32) -> String {
    format!("{cluster}-stress-worker-{worker}")
}

/// What a job's worker needs beyond its shard.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSettings {
    /// Image (by ID).
    pub image: String,
    /// The cluster the worker loads (its label).
    pub cluster: String,
    /// The overlay network.
    pub network: String,
    /// Open-file limit (sessions plus headroom, clamped to the engine's).
    pub nofile: u64,
    /// Placement constraints: the engines the image check asked.
    pub constraints: Vec<String>,
}

/// The engine's spec of the job that runs `shard`: a single task that is never restarted, the
/// spec in the environment, on the overlay, least privilege, logs the parent can read.
pub fn job_spec(settings: &JobSettings, shard: &ShardSpec) -> ServiceSpec {
    let labels = stress_labels(&settings.cluster, "worker");
    let shard_json = serde_json::to_string(shard).expect("shard specs serialize");
    let container = TaskSpecContainerSpec {
        image: Some(settings.image.clone()),
        labels: Some(labels.clone()),
        // The worker image's entrypoint is `erlmcp-gen stress-worker`.
        args: Some(vec!["--shard-from-env".into()]),
        env: Some(vec![format!("{SHARD_ENV}={shard_json}")]),
        user: Some(STRESS_WORKER_USER.into()),
        read_only: Some(true),
        // API 1.41 has no `no-new-privileges` for services: no capabilities and a non-root user.
        capability_drop: Some(vec!["ALL".into()]),
        ulimits: Some(crate::engine::docker::nofile_ulimits(settings.nofile)),
        stop_signal: Some("SIGINT".into()),
        stop_grace_period: Some(STOP_GRACE.as_nanos() as i64),
        ..Default::default()
    };
    let task = TaskSpec {
        container_spec: Some(container),
        // No CPU or memory limit: a throttled generator would measure itself, not the cluster,
        // and an OOM-killed task exits non-zero, which Swarm retries.
        resources: None,
        restart_policy: Some(TaskSpecRestartPolicy {
            condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
            max_attempts: Some(0),
            ..Default::default()
        }),
        placement: Some(TaskSpecPlacement {
            constraints: (!settings.constraints.is_empty()).then(|| settings.constraints.clone()),
            ..Default::default()
        }),
        networks: Some(vec![NetworkAttachmentConfig {
            target: Some(settings.network.clone()),
            ..Default::default()
        }]),
        // The events come back through the service's logs, which need a driver that keeps them.
        log_driver: Some(TaskSpecLogDriver {
            name: Some("json-file".into()),
            options: None,
        }),
        ..Default::default()
    };
    ServiceSpec {
        name: Some(job_name(&settings.cluster, shard.worker)),
        labels: Some(labels),
        mode: Some(ServiceSpecMode {
            replicated_job: Some(ServiceSpecModeReplicatedJob {
                max_concurrent: Some(1),
                total_completions: Some(1),
            }),
            ..Default::default()
        }),
        task_template: Some(task),
        ..Default::default()
    }
}

/// `shard` as a job's worker sees it: the cluster's nodes by their task names on the overlay
/// and their container ports, no loopback source addresses.
pub fn shard_on_overlay(shard: &ShardSpec, names: &HashMap<String, String>) -> ShardSpec {
    let mut shard = shard.clone();
    shard.sources.clear();
    let unresolved = Ipv4Addr::UNSPECIFIED.into();
    for target in &mut shard.targets {
        let Some(name) = names.get(&target.node) else {
            continue;
        };
        if target.kind != TargetKind::Mcp {
            continue;
        }
        target.host = Some(name.clone());
        target.tcp_addr = SocketAddr::new(unresolved, CONTAINER_LISTENER_PORT);
        if target.http_addr.is_some() {
            target.http_addr = Some(SocketAddr::new(unresolved, CONTAINER_API_PORT));
        }
    }
    shard
}

/// How far ahead the shared start of `workers` jobs lies.
pub fn start_lead(workers: usize) -> Duration {
    START_LEAD_BASE + START_LEAD_PER_JOB * workers as u32
}

impl SwarmJobs {
    /// Builds the worker image from `binary` when the manager's engine lacks it, checks every
    /// engine the cluster's placement allows has it, and removes the jobs of an earlier,
    /// interrupted run of this cluster.
    pub async fn prepare(
        swarm: &SwarmEngine,
        cluster: &Cluster,
        binary: &Path,
        sessions_per_worker: u32,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        let docker = swarm.client();
        let left = remove_stress_jobs(&docker, &cluster.name).await?;
        if left > 0 {
            progress.info(format!(
                "removed {left} stress job(s) an earlier run of {} left",
                cluster.name
            ));
        }
        let engine = swarm.docker_engine();
        let tag = super::containers::worker_image(engine, cluster, binary, progress).await?;
        let image = docker
            .inspect_image(&tag)
            .await
            .map_err(|e| anyhow!("inspecting the worker image {tag}: {e}"))?
            .id
            .with_context(|| format!("the worker image {tag} has no ID"))?;
        swarm
            .check_images_on_every_engine(cluster, &[(tag, image.clone())])
            .await?;
        let nofile = engine.clamp_nofile(
            "stress workers",
            u64::from(sessions_per_worker) + FD_HEADROOM,
            progress,
        );
        let names = cluster
            .nodes
            .iter()
            .map(|n| (n.name.clone(), task_dns_name(cluster, &n.name)))
            .collect();
        Ok(Self {
            docker,
            image,
            network: cluster.network.clone(),
            cluster: cluster.name.clone(),
            nofile,
            constraints: cluster.swarm.placement.constraints.clone(),
            names,
        })
    }

    fn settings(&self) -> JobSettings {
        JobSettings {
            image: self.image.clone(),
            cluster: self.cluster.clone(),
            network: self.network.clone(),
            nofile: self.nofile,
            constraints: self.constraints.clone(),
        }
    }

    async fn start_job(&self, shard: &ShardSpec) -> anyhow::Result<WorkerPipes> {
        let shard = shard_on_overlay(shard, &self.names);
        let spec = job_spec(&self.settings(), &shard);
        let name = job_name(&self.cluster, shard.worker);
        // A job left by an interrupted run would make the create conflict.
        let _ = self.docker.delete_service(&name).await;
        self.docker
            .create_service(spec, None)
            .await
            .map_err(|e| anyhow!("creating job {name}: {e}"))?;
        let output = job_output(self.docker.clone(), name.clone());
        let (docker, stop_name) = (self.docker.clone(), name.clone());
        let stop = Box::pin(async move { remove_job(&docker, &stop_name).await });
        let docker = self.docker.clone();
        Ok(WorkerPipes {
            input: WorkerInput::Started { stop },
            output: Box::pin(output),
            finished: Box::pin(async move { remove_job(&docker, &name).await }),
        })
    }
}

impl WorkerHost for SwarmJobs {
    fn describe(&self) -> String {
        format!("swarm jobs on overlay network {}", self.network)
    }

    fn start_lead(&self, workers: usize) -> Option<Duration> {
        Some(start_lead(workers))
    }

    fn start<'a>(&'a self, spec: &'a ShardSpec) -> BoxFuture<'a, anyhow::Result<WorkerPipes>> {
        Box::pin(self.start_job(spec))
    }
}

/// Whether `line` is a worker's last event (`done` or `failed`): its stream ends there, since
/// a service's logs are followed past its task's end.
pub fn is_last_event(line: &[u8]) -> bool {
    let line = line.trim_ascii_start();
    line.starts_with(br#"{"event":"done""#) || line.starts_with(br#"{"event":"failed""#)
}

/// A piece of a job's stdout (a cursor, so that no byte-buffer crate is needed).
type LogChunk = std::io::Result<std::io::Cursor<Vec<u8>>>;

/// A job's stdout, read through its service's logs, ending after its last event, or once its
/// task has ended (or the service is gone) and the last lines had time to come.
fn job_output(docker: Docker, name: String) -> impl tokio::io::AsyncRead + Send {
    let (tx, rx) = mpsc::channel::<LogChunk>(LOG_CHUNKS_BUFFERED);
    tokio::spawn(follow_job(docker, name, tx));
    StreamReader::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    }))
}

async fn follow_job(docker: Docker, name: String, tx: mpsc::Sender<LogChunk>) {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.service_logs(&name, Some(options));
    let mut line = Vec::new();
    let mut ended_at: Option<Instant> = None;
    let mut poll = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            item = logs.next() => match item {
                Some(Ok(LogOutput::StdOut { message })) => {
                    line.extend_from_slice(&message);
                    if tx.send(Ok(std::io::Cursor::new(message.to_vec()))).await.is_err() {
                        return;
                    }
                    // Only whole lines are looked at: a long one may come in pieces.
                    while let Some(end) = line.iter().position(|b| *b == b'\n') {
                        let last = is_last_event(&line[..end]);
                        line.drain(..=end);
                        if last {
                            return;
                        }
                    }
                }
                Some(Ok(LogOutput::StdErr { message })) => {
                    eprint!("{name}: {}", String::from_utf8_lossy(&message));
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    eprintln!("{name}: its logs ended: {e}");
                    return;
                }
                None => return,
            },
            _ = poll.tick() => {
                if let Some(at) = ended_at {
                    if at.elapsed() >= LOG_TAIL_AFTER_END {
                        return;
                    }
                } else if let Some(why) = task_ended(&docker, &name).await {
                    if !why.is_empty() {
                        eprintln!("{name}: {why}");
                    }
                    ended_at = Some(Instant::now());
                }
            }
        }
    }
}

/// `Some` once the job's task has ended (with what Swarm said when it did not complete), or
/// the service is gone; `None` while it is pending or running.
async fn task_ended(docker: &Docker, name: &str) -> Option<String> {
    let filters = HashMap::from([("service", vec![name])]);
    let options = ListTasksOptionsBuilder::default().filters(&filters).build();
    let tasks = match docker.list_tasks(Some(options)).await {
        Ok(tasks) => tasks,
        Err(e) => return Some(format!("its tasks cannot be listed: {e}")),
    };
    let states: Vec<_> = tasks
        .iter()
        .filter_map(|t| t.status.as_ref())
        .map(|s| (s.state, s.err.clone()))
        .collect();
    let running = states
        .iter()
        .any(|(state, _)| !crate::engine::swarm::task_state_is_final(state.as_ref()));
    if states.is_empty() {
        // Not scheduled yet, or removed (an early stop) while its logs had not ended.
        return match docker.inspect_service(name, None).await {
            Err(e) if crate::engine::docker::is_not_found(&e) => Some(String::new()),
            _ => None,
        };
    }
    if running {
        return None;
    }
    Some(
        states
            .iter()
            .filter(|(state, _)| *state != Some(TaskState::COMPLETE))
            .map(|(state, err)| {
                let state = state.map_or("unknown".to_string(), |s| s.to_string());
                format!(
                    "task {state}{}",
                    err.as_ref().map_or(String::new(), |e| format!(": {e}"))
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// Removes one job service, bounded in time; gone already is fine.
async fn remove_job(docker: &Docker, name: &str) {
    let _ = tokio::time::timeout(REMOVE_TIMEOUT, docker.delete_service(name)).await;
}

/// Removes every stress job of `cluster`, e.g. ones an interrupted run left behind, and then
/// their task containers on this engine: Docker 20.10 keeps a finished job's container after
/// its service is removed (moby/moby#42789). Returns how many jobs there were.
pub async fn remove_stress_jobs(docker: &Docker, cluster: &str) -> anyhow::Result<usize> {
    let filters = stress_filter(cluster);
    let options = ListServicesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let found = docker
        .list_services(Some(options))
        .await
        .map_err(|e| anyhow!("listing stress jobs: {e}"))?;
    for service in &found {
        if let Some(id) = &service.id {
            remove_job(docker, id).await;
        }
    }
    super::containers::remove_stress_containers(docker, cluster).await?;
    Ok(found.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::containers::LABEL_STRESS_OF;
    use crate::stress::worker::ShardTarget;

    fn cluster() -> Cluster {
        crate::config::committed_cluster("local.toml")
    }

    fn shard(cluster: &Cluster) -> ShardSpec {
        ShardSpec {
            worker: 2,
            transport: Default::default(),
            targets: cluster
                .nodes
                .iter()
                .map(|n| ShardTarget {
                    node: n.name.clone(),
                    tcp_addr: SocketAddr::from(([127, 0, 0, 1], n.listener_port)),
                    http_addr: Some(SocketAddr::from(([127, 0, 0, 1], n.api_port))),
                    kind: TargetKind::Mcp,
                    sessions: 5,
                    host: None,
                })
                .collect(),
            sources: vec!["127.0.4.2".parse().unwrap()],
            ramp_ms: 1000,
            hold_ms: 5000,
            rate: 10.0,
            connect_timeout_ms: 500,
            request_timeout_ms: 500,
            max_attempts_per_slot: 5,
            own_process: true,
            start_at_unix_ms: Some(1_700_000_000_000),
        }
    }

    fn settings(cluster: &Cluster) -> JobSettings {
        JobSettings {
            image: "sha256:abc".into(),
            cluster: cluster.name.clone(),
            network: cluster.network.clone(),
            nofile: 16_512,
            constraints: vec!["node.role == manager".into()],
        }
    }

    fn overlay_shard(cluster: &Cluster) -> ShardSpec {
        let names = cluster
            .nodes
            .iter()
            .map(|n| (n.name.clone(), task_dns_name(cluster, &n.name)))
            .collect();
        shard_on_overlay(&shard(cluster), &names)
    }

    #[test]
    fn a_job_is_one_task_never_restarted_and_labelled_as_the_clusters_stress() {
        let cluster = cluster();
        let spec = job_spec(&settings(&cluster), &overlay_shard(&cluster));
        assert_eq!(spec.name, Some(format!("{}-stress-worker-2", cluster.name)));
        let job = spec.mode.unwrap().replicated_job.unwrap();
        assert_eq!(
            (job.max_concurrent, job.total_completions),
            (Some(1), Some(1))
        );
        let labels = spec.labels.unwrap();
        assert_eq!(labels[LABEL_STRESS_OF], cluster.name);
        assert!(!labels.contains_key(crate::deploy_spec::LABEL_CLUSTER));
        let task = spec.task_template.unwrap();
        let restart = task.restart_policy.unwrap();
        assert_eq!(
            restart.condition,
            Some(TaskSpecRestartPolicyConditionEnum::NONE)
        );
        let container = task.container_spec.unwrap();
        assert_eq!(container.labels.unwrap()[LABEL_STRESS_OF], cluster.name);
    }

    #[test]
    fn a_job_carries_its_shard_in_the_environment_and_starts_the_worker_from_it() {
        let cluster = cluster();
        let shard = overlay_shard(&cluster);
        let spec = job_spec(&settings(&cluster), &shard);
        let container = spec.task_template.unwrap().container_spec.unwrap();
        assert_eq!(container.args, Some(vec!["--shard-from-env".to_string()]));
        let env = container.env.unwrap();
        assert_eq!(env.len(), 1);
        let value = env[0].strip_prefix(&format!("{SHARD_ENV}=")).unwrap();
        assert_eq!(
            crate::stress::job_worker::parse_env_shard(Some(value)).unwrap(),
            shard
        );
    }

    #[test]
    fn a_job_runs_on_the_overlay_with_least_privilege_its_nofile_and_readable_logs() {
        let cluster = cluster();
        let spec = job_spec(&settings(&cluster), &overlay_shard(&cluster));
        let task = spec.task_template.unwrap();
        let networks = task.networks.unwrap();
        assert_eq!(networks.len(), 1);
        assert_eq!(
            networks[0].target.as_deref(),
            Some(cluster.network.as_str())
        );
        let container = task.container_spec.unwrap();
        assert_eq!(container.read_only, Some(true));
        assert_eq!(container.capability_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(container.user.as_deref(), Some(STRESS_WORKER_USER));
        assert_eq!(container.stop_signal.as_deref(), Some("SIGINT"));
        let ulimit = &container.ulimits.unwrap()[0];
        assert_eq!((ulimit.soft, ulimit.hard), (Some(16_512), Some(16_512)));
        assert_eq!(task.log_driver.unwrap().name.as_deref(), Some("json-file"));
        assert_eq!(
            task.placement.unwrap().constraints,
            Some(vec!["node.role == manager".to_string()])
        );
        // Unthrottled: the generator must not measure its own limits.
        assert_eq!(task.resources, None);
        assert_eq!(spec.endpoint_spec, None, "a worker publishes nothing");
    }

    #[test]
    fn on_the_overlay_nodes_are_their_task_names_and_container_ports() {
        let cluster = cluster();
        let shard = overlay_shard(&cluster);
        assert!(shard.sources.is_empty());
        let first = &shard.targets[0];
        assert_eq!(
            first.host.as_deref(),
            Some(format!("tasks.{}-{}", cluster.name, cluster.nodes[0].name).as_str())
        );
        assert_eq!(first.tcp_addr.port(), CONTAINER_LISTENER_PORT);
        assert_eq!(first.http_addr.unwrap().port(), CONTAINER_API_PORT);
    }

    #[test]
    fn a_stream_ends_at_done_or_failed_and_not_at_a_row() {
        assert!(is_last_event(br#"{"event":"done","cpu_seconds":1.0}"#));
        assert!(is_last_event(br#"{"event":"failed","error":"x"}"#));
        assert!(!is_last_event(br#"{"event":"second","second":1}"#));
    }

    #[test]
    fn the_start_lead_grows_with_the_jobs_created_one_by_one() {
        assert!(start_lead(7) > start_lead(1));
        assert!(start_lead(1) >= START_LEAD_BASE);
    }
}
