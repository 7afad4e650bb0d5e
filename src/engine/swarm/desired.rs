//! What a Swarm cluster wants: the Docker driver's images, the overlay network and one service
//! per node and for Prometheus, worked out once per command, and the planner's view of them.

use super::registry::Push;
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
    /// The images pushed to `[swarm] registry` before the first service starts (none without
    /// one).
    pub pushes: Vec<Push>,
}

/// The hash the planner compares, of anything serializable.
pub(super) fn hash_of(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_vec(value).expect("specs serialize");
    image::short_hash(&[&json])
}

impl SwarmDesired {
    /// The services for the Docker driver's containers; with `[swarm] registry`, each service
    /// names its image under the registry (so a changed registry changes its config hash).
    pub fn new(cluster: &Cluster, images: DockerDesired) -> Self {
        let pushes: Vec<Push> = std::iter::once(&images.node_image)
            .chain(&images.prometheus_image)
            .filter_map(|image| {
                Some(Push {
                    local: image.tag.clone(),
                    pushed: cluster.swarm.pushed_as(&image.tag)?,
                })
            })
            .collect();
        let services = images
            .containers
            .iter()
            .map(|container| {
                let mut service = service_want(cluster, container);
                if let Some(push) = pushes.iter().find(|p| p.local == service.image) {
                    service.image = push.pushed.clone();
                }
                service
            })
            .collect();
        SwarmDesired {
            network: images.network.clone(),
            images,
            services,
            pushes,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::docker::{ImageNeed, ImageSource, node_spec, prometheus_spec};

    /// The local committed 2-node cluster as the Docker driver would have it, images present.
    fn desired(registry: Option<&str>) -> SwarmDesired {
        let mut cluster = crate::config::committed_cluster("local.toml");
        cluster.swarm.registry = registry.map(str::to_string);
        let node_tag = "erlmcp-node:0.1.0-0123456789abcdef";
        let prometheus_tag = "erlmcp-prometheus-local:fedcba9876543210";
        let mut containers: Vec<_> = cluster
            .nodes
            .iter()
            .map(|node| node_spec(&cluster, node, node_tag))
            .collect();
        containers.push(prometheus_spec(
            &cluster,
            prometheus_tag,
            "data",
            "a".into(),
            "b".into(),
        ));
        let images = DockerDesired {
            node_image: ImageNeed {
                tag: node_tag.into(),
                source: ImageSource::Present,
            },
            prometheus_image: Some(ImageNeed {
                tag: prometheus_tag.into(),
                source: ImageSource::Present,
            }),
            network: cluster.network.clone(),
            volume: Some("data".into()),
            containers,
        };
        SwarmDesired::new(&cluster, images)
    }

    fn service_hashes(want: &SwarmDesired) -> Vec<String> {
        want.planned()
            .into_iter()
            .filter(|d| !matches!(d.kind, ResourceKind::Image | ResourceKind::Network))
            .map(|d| d.config_hash)
            .collect()
    }

    #[test]
    fn without_a_registry_nothing_is_pushed_and_services_name_the_local_image() {
        let want = desired(None);
        assert!(want.pushes.is_empty());
        assert_eq!(want.services[0].image, "erlmcp-node:0.1.0-0123456789abcdef");
    }

    #[test]
    fn with_a_registry_both_images_are_pushed_under_it_with_their_own_tags() {
        let want = desired(Some("127.0.0.1:5000/team"));
        let pushed: Vec<_> = want.pushes.iter().map(|p| p.pushed.as_str()).collect();
        assert_eq!(
            pushed,
            [
                "127.0.0.1:5000/team/erlmcp-node:0.1.0-0123456789abcdef",
                "127.0.0.1:5000/team/erlmcp-prometheus-local:fedcba9876543210"
            ]
        );
        let images: Vec<_> = want.services.iter().map(|s| s.image.as_str()).collect();
        assert_eq!(images[0], pushed[0]);
        assert_eq!(images[1], pushed[0]);
        assert_eq!(images[2], pushed[1], "Prometheus");
    }

    #[test]
    fn a_changed_registry_changes_every_service_hash_and_the_same_one_none() {
        let none = service_hashes(&desired(None));
        let one = service_hashes(&desired(Some("127.0.0.1:5000/team")));
        let again = service_hashes(&desired(Some("127.0.0.1:5000/team")));
        let other = service_hashes(&desired(Some("registry.example.com/team")));
        assert_eq!(one, again, "a second apply sees no change");
        for (a, b) in none.iter().zip(&one).chain(one.iter().zip(&other)) {
            assert_ne!(a, b, "a new registry is a change of every service");
        }
    }
}
