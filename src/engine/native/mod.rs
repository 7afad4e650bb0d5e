//! The native runtime: the cluster as local `erlmcp-node` processes on this host's ports (and the
//! host's Prometheus, when installed), with a state file so `plan`, `status` and `down` work as
//! they do on Docker. It serves where no Docker engine answers and is the baseline the stress
//! report compares containers against.

//!
//! # Layout
//! - `spec`: the processes the cluster wants (from the deployment spec) and the node binary.
//! - `state`: the state file (what this runtime started), changed under a lock.
//! - `process`: starting, health-waiting, stopping processes. `observe`: what runs, `status`.
//! - `logs`: the state directory's log files, read and followed.

mod logs;
mod observe;
mod process;
mod spec;
mod state;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use spec::{ProcessSpec, node_program};
pub use state::{Running, State};

use super::driver::{Driver, Unhealthy};
use super::status::ClusterStatus;
use crate::config::model::Cluster;
use crate::logs::{LogLine, LogRequest};
use crate::plan::{Desired, Observed, Step};
use crate::progress::{Progress, Task};

/// The native runtime for one cluster.
pub struct NativeEngine {
    dir: PathBuf,
    /// Held while the state file is read, changed and written.
    state_lock: std::sync::Mutex<()>,
    /// The processes this command started, to see one exit before it answered.
    children: std::sync::Mutex<std::collections::HashMap<String, std::process::Child>>,
}

/// Where the native runtime keeps state, logs and Prometheus data for a cluster.
pub fn state_dir(cluster: &str) -> PathBuf {
    let base = std::env::var_os("ERLMCP_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("erlmcp-gen")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/erlmcp-gen"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("erlmcp-gen"));
    base.join(cluster)
}

impl NativeEngine {
    /// The runtime for `cluster`, keeping its state under [`state_dir`].
    pub fn new(cluster: &Cluster) -> Self {
        NativeEngine::in_dir(state_dir(&cluster.name))
    }

    fn in_dir(dir: PathBuf) -> Self {
        NativeEngine {
            dir,
            state_lock: Default::default(),
            children: Default::default(),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The pid of a node's process, for resource sampling and failure tests.
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        self.load_state()
            .ok()?
            .processes
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.pid)
    }
}

impl Driver for NativeEngine {
    type Want = Vec<ProcessSpec>;

    fn name(&self) -> &'static str {
        "native"
    }

    async fn prepare(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<Vec<ProcessSpec>> {
        self.prepare_specs(cluster, progress)
    }

    fn desired(&self, specs: &Vec<ProcessSpec>) -> Vec<Desired> {
        NativeEngine::planned(specs)
    }

    async fn observe(
        &self,
        cluster: &Cluster,
        _: &Vec<ProcessSpec>,
    ) -> anyhow::Result<Vec<Observed>> {
        self.observe_processes(cluster).await
    }

    /// Processes need no image, network or volume.
    async fn provide(
        &self,
        _: &Cluster,
        _: &Vec<ProcessSpec>,
        _: &Step,
        _: &Progress,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    async fn remove(&self, step: &Step, progress: &Progress) -> anyhow::Result<()> {
        let task = progress.task(format!("{} {}", step.kind, step.name));
        self.stop(&step.name)?;
        task.done("stopped (no longer in the cluster file)");
        Ok(())
    }

    async fn start(
        &self,
        cluster: &Cluster,
        specs: &Vec<ProcessSpec>,
        step: &Step,
        _: &Progress,
        task: &Task,
    ) -> anyhow::Result<()> {
        self.start_process(cluster, ProcessSpec::of(specs, &step.name), step, task)
    }

    async fn wait_healthy(
        &self,
        cluster: &Cluster,
        specs: &Vec<ProcessSpec>,
        step: &Step,
        timeout: Duration,
        _: &Task,
    ) -> anyhow::Result<()> {
        self.wait_answering(cluster, ProcessSpec::of(specs, &step.name), timeout)
            .await
    }

    /// Leave no dead process in the state: the next apply starts it afresh.
    fn unhealthy(&self) -> Unhealthy {
        Unhealthy::Discard
    }

    async fn discard(&self, step: &Step) -> anyhow::Result<()> {
        self.stop(&step.name)
    }

    async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        self.cluster_status(cluster).await
    }

    async fn down(&self, _: &Cluster, volumes: bool, progress: &Progress) -> anyhow::Result<()> {
        self.stop_all(volumes, progress)
    }

    async fn logs(
        &self,
        _: &Cluster,
        sources: &[String],
        request: &LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        self.read_logs(sources, request, follow, emit).await
    }
}
