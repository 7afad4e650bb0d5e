//! The one interface every runtime implements: work out the desired resources, observe what
//! runs, carry out one primitive step of a plan (provide, remove, start, wait for health,
//! discard), report status, read logs, take the cluster down. The order of the steps is not the driver's
//! business: [`super::schedule`] derives it from the plan, the same for every runtime.

use std::time::Duration;

use crate::config::model::Cluster;
use crate::logs::{LogLine, LogRequest};
use crate::plan::{Desired, Observed, Step};
use crate::progress::{Progress, Task};

use super::status::ClusterStatus;

/// What a driver leaves behind when a node it started never becomes healthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unhealthy {
    /// Left in place, so the operator can read why (`docker logs`); the next `apply` recreates
    /// it (the planner sees it unhealthy).
    Keep,
    /// Stopped and forgotten (a process that never answers is of no use to inspect).
    Discard,
}

/// A runtime's primitive steps. `Want` is everything [`Driver::prepare`] worked out (specs,
/// images), computed once per command.
// The futures are awaited where they are made, never spawned, so no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait Driver {
    /// The prepared desired state.
    type Want;

    /// `docker`, `native`, … (in plans and status).
    fn name(&self) -> &'static str;

    /// Works out the desired resources (may build the node binary; builds no image).
    async fn prepare(&self, cluster: &Cluster, progress: &Progress) -> anyhow::Result<Self::Want>;

    /// The desired resources as the planner sees them.
    fn desired(&self, want: &Self::Want) -> Vec<Desired>;

    /// What the runtime has for this cluster now.
    async fn observe(&self, cluster: &Cluster, want: &Self::Want) -> anyhow::Result<Vec<Observed>>;

    /// Makes an image, the network or a volume present (a create or recreate step).
    async fn provide(
        &self,
        cluster: &Cluster,
        want: &Self::Want,
        step: &Step,
        progress: &Progress,
    ) -> anyhow::Result<()>;

    /// Carries out a removal step (a node or Prometheus no longer in the file; a volume or
    /// network is kept and said so).
    async fn remove(&self, step: &Step, progress: &Progress) -> anyhow::Result<()>;

    /// Creates (or, for a recreate, replaces) and starts a node or Prometheus, without waiting
    /// for health. On an error it leaves nothing half-made behind.
    async fn start(
        &self,
        cluster: &Cluster,
        want: &Self::Want,
        step: &Step,
        progress: &Progress,
        task: &Task,
    ) -> anyhow::Result<()>;

    /// Waits until what [`Driver::start`] started is healthy, at most `timeout`.
    async fn wait_healthy(
        &self,
        cluster: &Cluster,
        want: &Self::Want,
        step: &Step,
        timeout: Duration,
        task: &Task,
    ) -> anyhow::Result<()>;

    /// What a never-healthy start leaves behind.
    fn unhealthy(&self) -> Unhealthy;

    /// Stops and forgets what [`Driver::start`] started (after a failed health wait, when
    /// [`Driver::unhealthy`] says [`Unhealthy::Discard`]).
    async fn discard(&self, step: &Step) -> anyhow::Result<()>;

    /// Per-node state, health, uptime and figures, and Prometheus's target health.
    async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus>;

    /// Removes what the cluster runs; with `volumes`, its data too (the stored secret is the
    /// caller's).
    async fn down(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()>;

    /// Hands `emit` the lines of `sources` (node names, `prometheus`), merged in time order;
    /// with `follow`, then new lines as they come, until Ctrl-C.
    async fn logs(
        &self,
        cluster: &Cluster,
        sources: &[String],
        request: &LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()>;
}
