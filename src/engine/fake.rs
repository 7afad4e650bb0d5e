//! A runtime that runs nothing and records every call, so the apply schedule, a second apply,
//! rollback and error paths are tested without an engine. What it "runs" is what it observes
//! next, so a second plan sees the first apply's result.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::bail;

use super::driver::{Driver, Unhealthy};
use super::status::ClusterStatus;
use crate::config::model::Cluster;
use crate::logs::{LogLine, LogRequest};
use crate::plan::{Desired, Observed, Step};
use crate::progress::{Progress, Task};

/// The fake runtime.
pub struct FakeRuntime {
    desired: Vec<Desired>,
    running: Mutex<Vec<Observed>>,
    calls: Mutex<Vec<String>>,
    never_healthy: BTreeSet<String>,
    start_fails: BTreeSet<String>,
    unhealthy: Unhealthy,
}

impl FakeRuntime {
    /// A runtime wanting `desired` and running nothing.
    pub fn new(desired: Vec<Desired>, unhealthy: Unhealthy) -> Self {
        FakeRuntime {
            desired,
            running: Mutex::default(),
            calls: Mutex::default(),
            never_healthy: BTreeSet::new(),
            start_fails: BTreeSet::new(),
            unhealthy,
        }
    }

    /// `name` starts but never becomes healthy.
    pub fn never_healthy(mut self, name: &str) -> Self {
        self.never_healthy.insert(name.into());
        self
    }

    /// Starting `name` fails.
    pub fn start_fails(mut self, name: &str) -> Self {
        self.start_fails.insert(name.into());
        self
    }

    /// Wants `desired` from now on (the cluster file changed).
    pub fn want(&mut self, desired: Vec<Desired>) {
        self.desired = desired;
    }

    /// Every call so far, `verb name`, and forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// The names of what runs now.
    pub fn running(&self) -> Vec<String> {
        self.running
            .lock()
            .unwrap()
            .iter()
            .map(|o| o.name.clone())
            .collect()
    }

    fn record(&self, verb: &str, name: &str) {
        self.calls.lock().unwrap().push(format!("{verb} {name}"));
    }

    fn set_running(&self, step: &Step, healthy: bool) {
        let mut running = self.running.lock().unwrap();
        running.retain(|o| o.name != step.name);
        running.push(Observed {
            kind: step.kind,
            name: step.name.clone(),
            config_hash: step.config_hash.clone(),
            healthy,
        });
    }

    fn forget(&self, name: &str) {
        self.running.lock().unwrap().retain(|o| o.name != name);
    }
}

impl Driver for FakeRuntime {
    type Want = ();

    fn name(&self) -> &'static str {
        "fake"
    }

    async fn prepare(&self, _: &Cluster, _: &Progress) -> anyhow::Result<()> {
        Ok(())
    }

    fn desired(&self, _: &()) -> Vec<Desired> {
        self.desired.clone()
    }

    async fn observe(&self, _: &Cluster, _: &()) -> anyhow::Result<Vec<Observed>> {
        Ok(self.running.lock().unwrap().clone())
    }

    async fn provide(&self, _: &Cluster, _: &(), step: &Step, _: &Progress) -> anyhow::Result<()> {
        self.record("provide", &step.name);
        self.set_running(step, true);
        Ok(())
    }

    async fn remove(&self, step: &Step, _: &Progress) -> anyhow::Result<()> {
        self.record("remove", &step.name);
        self.forget(&step.name);
        Ok(())
    }

    async fn start(
        &self,
        _: &Cluster,
        _: &(),
        step: &Step,
        _: &Progress,
        _: &Task,
    ) -> anyhow::Result<()> {
        if self.start_fails.contains(&step.name) {
            self.record("start-failed", &step.name);
            // As the real drivers: a failed start leaves nothing behind (a recreate's old
            // resource is gone too).
            self.forget(&step.name);
            bail!(
                "creating {}: the engine said: no space left on device",
                step.name
            );
        }
        self.record("start", &step.name);
        self.set_running(step, false);
        Ok(())
    }

    async fn wait_healthy(
        &self,
        _: &Cluster,
        _: &(),
        step: &Step,
        timeout: Duration,
        _: &Task,
    ) -> anyhow::Result<()> {
        // Yield once, as a real wait does, so starts scheduled together all begin first.
        tokio::task::yield_now().await;
        if self.never_healthy.contains(&step.name) {
            self.record("unhealthy", &step.name);
            bail!(
                "{} did not become healthy within {}s",
                step.name,
                timeout.as_secs()
            );
        }
        self.record("healthy", &step.name);
        self.set_running(step, true);
        Ok(())
    }

    fn unhealthy(&self) -> Unhealthy {
        self.unhealthy
    }

    async fn discard(&self, step: &Step) -> anyhow::Result<()> {
        self.record("discard", &step.name);
        self.forget(&step.name);
        Ok(())
    }

    async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        Ok(ClusterStatus {
            cluster: cluster.name.clone(),
            runtime: "fake".into(),
            nodes: Vec::new(),
            prometheus: Err("fake".into()),
        })
    }

    async fn down(&self, _: &Cluster, _: bool, _: &Progress) -> anyhow::Result<()> {
        self.record("down", "*");
        self.running.lock().unwrap().clear();
        Ok(())
    }

    async fn logs(
        &self,
        _: &Cluster,
        sources: &[String],
        request: &LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        for source in sources {
            self.record("logs", source);
        }
        let _ = (request, follow);
        emit(Vec::new())
    }
}
