//! What a Swarm cluster wants: the Docker driver's images, the overlay network and one service
//! per node and for Prometheus, worked out once per command, and the planner's view of them.

use super::service_spec::{ServiceWant, service_want};
use crate::config::model::Cluster;
use crate::engine::docker::DockerDesired;
use crate::engine::image;
use crate::plan::{Desired, ResourceKind};

/// Everything `apply` needs, computed once by the driver's `prepare`.
#[derive(Debug, Clone)]
pub struct SwarmDesired {
    /// The images (and the containers they were worked out for), as the Docker driver has them.
    pub images: DockerDesired,
    /// The overlay network.
    pub network: String,
    /// Services, coordinator first, Prometheus last.
    pub services: Vec<ServiceWant>,
}

/// The hash the planner compares, of anything serializable.
pub(super) fn hash_of(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_vec(value).expect("specs serialize");
    image::short_hash(&[&json])
}

impl SwarmDesired {
    /// The services for the Docker driver's containers.
    pub fn new(cluster: &Cluster, images: DockerDesired) -> Self {
        let services = images
            .containers
            .iter()
            .map(|container| service_want(cluster, container))
            .collect();
        SwarmDesired {
            network: images.network.clone(),
            images,
            services,
        }
    }

    /// The service a step names (the plan names only wanted services).
    pub(super) fn service(&self, name: &str) -> &ServiceWant {
        self.services
            .iter()
            .find(|s| s.name == name)
            .expect("the plan names only wanted services")
    }

    /// The desired resources as the planner sees them.
    pub(super) fn planned(&self) -> Vec<Desired> {
        let mut desired = vec![Desired {
            kind: ResourceKind::Image,
            name: self.images.node_image.tag.clone(),
            config_hash: self.images.node_image.tag.clone(),
        }];
        if let Some(image) = &self.images.prometheus_image {
            desired.push(Desired {
                kind: ResourceKind::Image,
                name: image.tag.clone(),
                config_hash: image.tag.clone(),
            });
        }
        desired.push(Desired {
            kind: ResourceKind::Network,
            name: self.network.clone(),
            config_hash: hash_of(&("overlay", &self.network)),
        });
        desired.extend(self.services.iter().map(|service| Desired {
            kind: service.kind,
            name: service.name.clone(),
            config_hash: hash_of(service),
        }));
        desired
    }
}
