//! `down` on Swarm: every service (and the stress jobs a run left), then (once their tasks' containers are gone) the secrets,
//! configs and overlay network labelled with the cluster, and with `--volumes` its volumes.

use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListContainersOptionsBuilder, ListSecretsOptionsBuilder,
};

use super::observe::service_name;
use super::{SwarmEngine, cluster_filter, engine_error};
use crate::config::model::Cluster;
use crate::progress::Progress;
use crate::stress::containers::stress_filter;

/// How long `down` waits for removed services' containers to stop (each has a 10 s grace).
const TASKS_GONE_WITHIN: Duration = Duration::from_secs(60);

impl SwarmEngine {
    /// Removes the cluster's services, network, secrets and configs (and volumes with `volumes`).
    pub(super) async fn remove_cluster(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let jobs =
            crate::stress::swarm_jobs::remove_stress_jobs(&self.docker, &cluster.name).await?;
        if jobs > 0 {
            progress.info(format!("{jobs} stress job(s) removed"));
        }
        for service in self.cluster_services(cluster).await? {
            let name = service_name(&service);
            self.remove_service(&name).await?;
            progress.info(format!("service {name} removed"));
        }
        // The network, secrets, configs and volumes are in use until the tasks' containers go.
        let filter = cluster_filter(cluster);
        // Stress jobs' containers are on the network too, but not labelled as the cluster's.
        let stress_filter = stress_filter(&cluster.name);
        let deadline = Instant::now() + TASKS_GONE_WITHIN;
        loop {
            let mut left = Vec::new();
            for filter in [&filter, &stress_filter] {
                let options = ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(filter)
                    .build();
                left.extend(
                    self.docker
                        .list_containers(Some(options))
                        .await
                        .map_err(|e| engine_error("listing containers", e))?,
                );
            }
            if left.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                progress.warn(format!(
                    "{} task container(s) still stopping after {}s; the network may stay",
                    left.len(),
                    TASKS_GONE_WITHIN.as_secs()
                ));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let secrets = ListSecretsOptionsBuilder::default()
            .filters(&filter)
            .build();
        for secret in self
            .docker
            .list_secrets(Some(secrets))
            .await
            .map_err(|e| engine_error("listing secrets", e))?
        {
            let id = secret.id.unwrap_or_default();
            self.docker
                .delete_secret(&id)
                .await
                .map_err(|e| engine_error("removing the cluster's swarm secret", e))?;
        }
        let configs = ListConfigsOptionsBuilder::default()
            .filters(&filter)
            .build();
        for config in self
            .docker
            .list_configs(Some(configs))
            .await
            .map_err(|e| engine_error("listing configs", e))?
        {
            let id = config.id.unwrap_or_default();
            self.docker
                .delete_config(&id)
                .await
                .map_err(|e| engine_error(&format!("removing config {id}"), e))?;
        }
        // Secrets and configs first: the networks and volumes go the Docker runtime's way.
        self.engine
            .remove_networks_and_volumes(cluster, volumes, progress)
            .await
    }
}
