//! What a Docker cluster wants: images, network, volume and containers, worked out once per
//! command, and the planner's view of them.

use serde::Serialize;

use super::DockerEngine;
use super::container_spec::{ContainerSpec, node_spec, prometheus_spec};
use super::images::ImageNeed;
use crate::config::model::Cluster;
use crate::engine::image;
use crate::plan::{Desired, ResourceKind};
use crate::progress::Progress;
use crate::render;

/// Everything `apply` needs, computed once by [`DockerEngine::prepare`].
#[derive(Debug, Clone)]
pub struct DockerDesired {
    /// The node image.
    pub node_image: ImageNeed,
    /// The Prometheus image, when Prometheus is enabled.
    pub prometheus_image: Option<ImageNeed>,
    /// The network.
    pub network: String,
    /// The Prometheus data volume, when Prometheus is enabled.
    pub volume: Option<String>,
    /// Containers, coordinator first.
    pub containers: Vec<ContainerSpec>,
}

pub(super) fn short_hash_of(value: &impl Serialize) -> String {
    let json = serde_json::to_vec(value).expect("specs serialize");
    image::short_hash(&[&json])
}

impl DockerEngine {
    /// Works out every resource the cluster wants: finds (or builds on the host) the static node
    /// binary, assembles image contexts and names images by content hash. Builds no image.
    pub(super) async fn prepare_desired(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<DockerDesired> {
        let rendered = render::render(cluster)?;
        let file = |name: &str| {
            rendered
                .iter()
                .find(|f| f.name == name)
                .map(|f| f.contents.clone())
                .expect("every template renders")
        };
        let node_image = self
            .node_image(
                cluster,
                progress,
                &file("Dockerfile"),
                &file("Dockerfile.prebuilt"),
            )
            .await?;
        let prometheus_image = if cluster.prometheus.enabled {
            Some(self.prometheus_image(cluster, progress).await?)
        } else {
            None
        };
        let mut containers: Vec<ContainerSpec> = cluster
            .nodes
            .iter()
            .map(|node| node_spec(cluster, node, &node_image.tag))
            .collect();
        containers.sort_by_key(|c| c.kind);
        let volume = cluster
            .prometheus
            .enabled
            .then(|| format!("{}-prometheus-data", cluster.name));
        if let (Some(image), Some(volume)) = (&prometheus_image, &volume) {
            containers.push(prometheus_spec(
                cluster,
                &image.tag,
                volume,
                file("prometheus.yml"),
                file("alerts.yml"),
            ));
        }
        Ok(DockerDesired {
            node_image,
            prometheus_image,
            network: cluster.network.clone(),
            volume,
            containers,
        })
    }

    /// The desired resources as the planner sees them.
    pub(super) fn planned(want: &DockerDesired) -> Vec<Desired> {
        let mut desired = vec![Desired {
            kind: ResourceKind::Image,
            name: want.node_image.tag.clone(),
            config_hash: want.node_image.tag.clone(),
        }];
        if let Some(image) = &want.prometheus_image {
            desired.push(Desired {
                kind: ResourceKind::Image,
                name: image.tag.clone(),
                config_hash: image.tag.clone(),
            });
        }
        desired.push(Desired {
            kind: ResourceKind::Network,
            name: want.network.clone(),
            config_hash: short_hash_of(&("bridge", &want.network)),
        });
        if let Some(volume) = &want.volume {
            desired.push(Desired {
                kind: ResourceKind::Volume,
                name: volume.clone(),
                config_hash: short_hash_of(&("local", volume)),
            });
        }
        for spec in &want.containers {
            desired.push(Desired {
                kind: spec.kind,
                name: spec.name.clone(),
                config_hash: short_hash_of(spec),
            });
        }
        desired
    }
}
