//! What the swarm has for a cluster, found by label (images by name): the overlay network and
//! the services, each healthy when a task of its runs (Swarm counts a task with a healthcheck
//! as running only once it is healthy).

use std::collections::{HashMap, HashSet};

use bollard::models::{Service, TaskState};
use bollard::query_parameters::{ListServicesOptionsBuilder, ListTasksOptionsBuilder};

use super::desired::SwarmDesired;
use super::{SwarmEngine, cluster_filter, engine_error};
use crate::config::model::Cluster;
use crate::deploy_spec::{LABEL_CONFIG_HASH, LABEL_ROLE};
use crate::engine::docker::ImageSource;
use crate::plan::{Observed, ResourceKind};

impl SwarmEngine {
    /// What the swarm has for this cluster.
    pub(super) async fn observe_cluster(
        &self,
        cluster: &Cluster,
        want: &SwarmDesired,
    ) -> anyhow::Result<Vec<Observed>> {
        let mut observed = Vec::new();
        let images = std::iter::once(&want.images.node_image).chain(&want.images.prometheus_image);
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
        for network in self.engine.cluster_networks(cluster).await? {
            let labels = network.labels.unwrap_or_default();
            observed.push(Observed {
                kind: ResourceKind::Network,
                name: network.name.unwrap_or_default(),
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy: true,
            });
        }
        let running = self.running_services().await?;
        for service in self.cluster_services(cluster).await? {
            let labels = service_labels(&service);
            let id = service.id.clone().unwrap_or_default();
            observed.push(Observed {
                kind: ResourceKind::of_role_label(labels.get(LABEL_ROLE).map(String::as_str)),
                name: service_name(&service),
                config_hash: labels.get(LABEL_CONFIG_HASH).cloned(),
                healthy: running.contains(&id),
            });
        }
        Ok(observed)
    }

    /// Services labelled with the cluster.
    pub(super) async fn cluster_services(&self, cluster: &Cluster) -> anyhow::Result<Vec<Service>> {
        let options = ListServicesOptionsBuilder::default()
            .filters(&cluster_filter(cluster))
            .build();
        self.docker
            .list_services(Some(options))
            .await
            .map_err(|e| engine_error("listing services", e))
    }

    /// The IDs of services with a task meant to run that runs.
    async fn running_services(&self) -> anyhow::Result<HashSet<String>> {
        let filters = HashMap::from([("desired-state", vec!["running"])]);
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        let tasks = self
            .docker
            .list_tasks(Some(options))
            .await
            .map_err(|e| engine_error("listing tasks", e))?;
        Ok(tasks
            .into_iter()
            .filter(|t| t.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING))
            .filter_map(|t| t.service_id)
            .collect())
    }
}

/// A service's labels.
pub(super) fn service_labels(service: &Service) -> HashMap<String, String> {
    service
        .spec
        .as_ref()
        .and_then(|s| s.labels.clone())
        .unwrap_or_default()
}

/// A service's name.
pub(super) fn service_name(service: &Service) -> String {
    service
        .spec
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_default()
}
