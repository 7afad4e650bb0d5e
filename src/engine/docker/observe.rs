//! What the engine has for a cluster, found by label (images by name).

use std::collections::HashMap;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
};

use super::desired::DockerDesired;
use super::images::ImageSource;
use super::{DockerEngine, cluster_filter, engine_error};
use crate::config::model::Cluster;
use crate::deploy_spec::{LABEL_CONFIG_HASH, LABEL_ROLE};
use crate::plan::{Observed, ResourceKind};

impl DockerEngine {
    /// What the engine has for this cluster, found by label (images by name).
    pub(super) async fn observe_cluster(
        &self,
        cluster: &Cluster,
        want: &DockerDesired,
    ) -> anyhow::Result<Vec<Observed>> {
        let mut observed = Vec::new();
        let mut images = vec![want.node_image.clone()];
        images.extend(want.prometheus_image.clone());
        for image in images {
            if matches!(image.source, ImageSource::Present) {
                observed.push(Observed {
                    kind: ResourceKind::Image,
                    name: image.tag.clone(),
                    config_hash: Some(image.tag.clone()),
                    healthy: true,
                });
            }
        }
        let networks = self.cluster_networks(cluster).await?;
        for network in networks {
            let labels = network.labels.unwrap_or_default();
            observed.push(Observed {
                kind: ResourceKind::Network,
                name: network.name.unwrap_or_default(),
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy: true,
            });
        }
        let volumes = self.cluster_volumes(cluster).await?;
        for volume in volumes {
            observed.push(Observed {
                kind: ResourceKind::Volume,
                name: volume.name,
                config_hash: volume.labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy: true,
            });
        }
        for (name, labels, healthy) in self.cluster_containers(cluster).await? {
            let kind = ResourceKind::of_role_label(labels.get(LABEL_ROLE).map(String::as_str));
            observed.push(Observed {
                kind,
                name,
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy,
            });
        }
        Ok(observed)
    }

    /// Networks labelled with the cluster.
    pub(in crate::engine) async fn cluster_networks(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<bollard::models::Network>> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(&cluster_filter(cluster))
            .build();
        self.docker
            .list_networks(Some(options))
            .await
            .map_err(|e| engine_error("listing networks", e))
    }

    /// Volumes labelled with the cluster.
    pub(super) async fn cluster_volumes(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<bollard::models::Volume>> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&cluster_filter(cluster))
            .build();
        let found = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| engine_error("listing volumes", e))?;
        Ok(found.volumes.unwrap_or_default())
    }

    /// (name, labels, running and not unhealthy) of every container labelled with the cluster.
    pub(super) async fn cluster_containers(
        &self,
        cluster: &Cluster,
    ) -> anyhow::Result<Vec<(String, HashMap<String, String>, bool)>> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&cluster_filter(cluster))
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine_error("listing containers", e))?;
        let mut found = Vec::new();
        for container in containers {
            let name = container
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let status = container.status.unwrap_or_default();
            let running = status.starts_with("Up");
            let healthy = running && !status.contains("(unhealthy)");
            found.push((name, container.labels.unwrap_or_default(), healthy));
        }
        Ok(found)
    }
}
