//! `down` on Swarm: every service, then (once their tasks' containers are gone) the overlay
//! network, secrets and configs labelled with the cluster, and with `--volumes` its volumes.

use std::time::{Duration, Instant};

use bollard::query_parameters::{
    ListConfigsOptionsBuilder, ListContainersOptionsBuilder, ListSecretsOptionsBuilder,
    ListVolumesOptionsBuilder,
};

use super::observe::service_name;
use super::{SwarmEngine, cluster_filter, engine_error};
use crate::config::model::Cluster;
use crate::progress::Progress;

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
        for service in self.cluster_services(cluster).await? {
            let name = service_name(&service);
            self.remove_service(&name).await?;
            progress.info(format!("service {name} removed"));
        }
        // The network, secrets, configs and volumes are in use until the tasks' containers go.
        let filter = cluster_filter(cluster);
        let deadline = Instant::now() + TASKS_GONE_WITHIN;
        loop {
            let options = ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build();
            let left = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(|e| engine_error("listing containers", e))?;
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
        for network in self.cluster_networks(cluster).await? {
            let name = network.name.unwrap_or_default();
            self.docker
                .remove_network(&name)
                .await
                .map_err(|e| engine_error(&format!("removing network {name}"), e))?;
            progress.info(format!("network {name} removed"));
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
        let options = ListVolumesOptionsBuilder::default()
            .filters(&filter)
            .build();
        let found = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| engine_error("listing volumes", e))?
            .volumes
            .unwrap_or_default();
        for volume in found {
            if volumes {
                self.docker
                    .remove_volume(
                        &volume.name,
                        None::<bollard::query_parameters::RemoveVolumeOptions>,
                    )
                    .await
                    .map_err(|e| engine_error(&format!("removing volume {}", volume.name), e))?;
                progress.info(format!("volume {} removed", volume.name));
            } else {
                progress.info(format!(
                    "volume {} kept (`down --volumes` removes it)",
                    volume.name
                ));
            }
        }
        Ok(())
    }
}
