//! Waiting for a container to become healthy (and Prometheus ready), and the log lines that say
//! why one did not.

use std::time::{Duration, Instant};

use anyhow::bail;
use bollard::models::HealthStatusEnum;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt as _;

use super::{DockerEngine, engine_error};
use crate::config::model::Cluster;
use crate::progress::Task;

impl DockerEngine {
    pub(super) async fn wait_container_healthy(
        &self,
        name: &str,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let inspect = self
                .docker
                .inspect_container(name, None)
                .await
                .map_err(|e| engine_error(&format!("inspecting {name}"), e))?;
            let state = inspect.state.unwrap_or_default();
            if state.running != Some(true) || state.restarting == Some(true) {
                let logs = self.log_tail(name).await;
                bail!(
                    "{name} stopped or keeps restarting (exit code {}) before it became healthy; its last log lines:\n{logs}",
                    state.exit_code.unwrap_or(-1)
                );
            }
            let health = state.health.unwrap_or_default();
            if health.status == Some(HealthStatusEnum::HEALTHY) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let last = health
                    .log
                    .unwrap_or_default()
                    .last()
                    .and_then(|l| l.output.clone())
                    .unwrap_or_default();
                bail!(
                    "{name} did not become healthy within {}s (health: {}; last check said: {}); \
                     `docker logs {name}` shows why, `apply` again retries",
                    timeout.as_secs(),
                    health.status.unwrap_or(HealthStatusEnum::EMPTY),
                    last.trim()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub(super) async fn wait_prometheus_ready(
        &self,
        cluster: &Cluster,
        task: &Task,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        task.step("waiting for /-/ready");
        let addr = cluster.reachable(cluster.prometheus.port);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(response) = crate::probe::get(addr, "/-/ready", Duration::from_secs(2)).await
                && response.status == 200
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "prometheus did not answer http://{addr}/-/ready within {}s",
                    timeout.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub(super) async fn log_tail(&self, name: &str) -> String {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail("20")
            .build();
        let mut stream = self.docker.logs(name, Some(options));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&chunk.to_string());
        }
        text
    }
}
