//! `down` on Docker: every container, network and (with `--volumes`) volume labelled with the
//! cluster, and the stress containers left behind; plus cutting a container off the network.

use super::{DockerEngine, engine_error};
use crate::config::model::Cluster;
use crate::progress::Progress;

impl DockerEngine {
    /// Removes the cluster's containers and network (and volumes with `volumes`), found by label.
    pub(super) async fn remove_cluster(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let leftovers =
            crate::stress::containers::remove_stress_containers(&self.docker, &cluster.name)
                .await?;
        if leftovers > 0 {
            progress.info(format!("{leftovers} stress container(s) removed"));
        }
        let containers = self.cluster_containers(cluster).await?;
        let removals = containers.iter().map(|(name, _, _)| async move {
            let task = progress.task(format!("container {name}"));
            let result = self.remove_container(name).await;
            match &result {
                Ok(()) => task.done("removed"),
                Err(_) => task.failed("not removed"),
            }
            result
        });
        for result in futures_util::future::join_all(removals).await {
            result?;
        }
        self.remove_networks_and_volumes(cluster, volumes, progress)
            .await
    }

    /// Removes the cluster's networks by label, and its volumes with `volumes` (otherwise says
    /// each is kept); Swarm's `down` ends the same way.
    pub(in crate::engine) async fn remove_networks_and_volumes(
        &self,
        cluster: &Cluster,
        volumes: bool,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        let networks = self.cluster_networks(cluster).await?;
        for network in networks {
            let name = network.name.unwrap_or_default();
            self.docker
                .remove_network(&name)
                .await
                .map_err(|e| engine_error(&format!("removing network {name}"), e))?;
            progress.info(format!("network {name} removed"));
        }
        let found = self.cluster_volumes(cluster).await?;
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

    /// Cuts a container off the cluster network (for failure tests).
    pub async fn disconnect(&self, network: &str, container: &str) -> anyhow::Result<()> {
        self.docker
            .disconnect_network(
                network,
                bollard::models::NetworkDisconnectRequest {
                    container: container.to_string(),
                    force: Some(true),
                },
            )
            .await
            .map_err(|e| engine_error(&format!("disconnecting {container} from {network}"), e))
    }
}
