//! The Docker driver's primitive steps: the network, volumes, a container's create and start
//! (and its removal), and the engine's open-file cap.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};

use super::container_spec::{ContainerSpec, create_body};
use super::{DockerEngine, engine_error, is_not_found};
use crate::config::model::Cluster;
use crate::deploy_spec::{LABEL_CLUSTER, LABEL_CONFIG_HASH};
use crate::plan::{Change, ResourceKind, Step};
use crate::progress::{Progress, Task};

impl DockerEngine {
    pub(super) async fn ensure_network(
        &self,
        cluster: &Cluster,
        step: &Step,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        if matches!(step.change, Change::Recreate { .. }) {
            self.docker.remove_network(&step.name).await.map_err(|e| {
                engine_error(
                    &format!("replacing network {} (run `down` first)", step.name),
                    e,
                )
            })?;
        }
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), cluster.name.clone()),
            (
                LABEL_CONFIG_HASH.to_string(),
                step.config_hash.clone().unwrap_or_default(),
            ),
        ]);
        self.docker
            .create_network(NetworkCreateRequest {
                name: step.name.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| engine_error(&format!("creating network {}", step.name), e))?;
        progress.info(format!("network {} created", step.name));
        Ok(())
    }

    pub(super) async fn create_volume(&self, cluster: &Cluster, step: &Step) -> anyhow::Result<()> {
        let labels = HashMap::from([
            (LABEL_CLUSTER.to_string(), cluster.name.clone()),
            (
                LABEL_CONFIG_HASH.to_string(),
                step.config_hash.clone().unwrap_or_default(),
            ),
        ]);
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(step.name.clone()),
                labels: Some(labels),
                ..Default::default()
            })
            .await
            .map_err(|e| engine_error(&format!("creating volume {}", step.name), e))?;
        Ok(())
    }

    pub(super) async fn remove_container(&self, name: &str) -> anyhow::Result<()> {
        // A graceful stop first: the node drains in-flight requests on SIGTERM.
        let stop = StopContainerOptionsBuilder::default().t(10).build();
        match self.docker.stop_container(name, Some(stop)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            Err(_) => {} // already stopped, or stopping failed: force-remove below
        }
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(&format!("removing container {name}"), e)),
        }
    }

    /// Removes the old container (if any), creates and starts the new one. A container this
    /// step created but could not start is removed again, so a failed apply leaves nothing
    /// half-made behind.
    pub(super) async fn start_container(
        &self,
        spec: &ContainerSpec,
        step: &Step,
        progress: &Progress,
        task: &Task,
    ) -> anyhow::Result<()> {
        if matches!(step.change, Change::Recreate { .. }) {
            task.step("removing the old container");
            self.remove_container(&spec.name).await?;
        }
        let hash = step.config_hash.clone().unwrap_or_default();
        let nofile = self.allowed_nofile(spec, progress);
        for (host, _, contents) in &spec.files {
            write_mounted_file(Path::new(host), contents)?;
        }
        task.step("creating");
        let body = create_body(spec, &hash, nofile);
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        self.docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| engine_error(&format!("creating container {}", spec.name), e))?;
        task.step("starting");
        if let Err(e) = self.docker.start_container(&spec.name, None).await {
            let error = engine_error(&format!("starting container {}", spec.name), e);
            let _ = self.remove_container(&spec.name).await;
            return Err(error.context(format!(
                "{} was removed again; fix the cause and run `apply` again",
                spec.name
            )));
        }
        Ok(())
    }

    /// A removal step: a container goes (a removed node's ports may belong to a new one); a
    /// volume is kept and said so; the network stays until `down`.
    pub(super) async fn remove_step(&self, step: &Step, progress: &Progress) -> anyhow::Result<()> {
        match step.kind {
            ResourceKind::Coordinator | ResourceKind::Worker | ResourceKind::Prometheus => {
                let task = progress.task(format!("{} {}", step.kind, step.name));
                self.remove_container(&step.name).await?;
                task.done("removed (no longer in the cluster file)");
            }
            ResourceKind::Volume => progress.info(format!(
                "volume {} is no longer used; kept (`down --volumes` removes it)",
                step.name
            )),
            ResourceKind::Network => progress.info(format!(
                "network {} is not in the cluster file; `down` removes it",
                step.name
            )),
            ResourceKind::Image => {}
        }
        Ok(())
    }

    /// The engine refuses a `nofile` above its own hard limit (runc: "error setting rlimit …
    /// operation not permitted"), so ask for no more than it can give, and say so.
    pub(super) fn allowed_nofile(&self, spec: &ContainerSpec, progress: &Progress) -> Option<u64> {
        spec.nofile
            .map(|wanted| self.clamp_nofile(&spec.name, wanted, progress))
    }

    /// `wanted` open files for container `name`, or the engine's limit when that is lower
    /// (with a warning naming both numbers).
    pub(crate) fn clamp_nofile(&self, name: &str, wanted: u64, progress: &Progress) -> u64 {
        let cap = self
            .daemon_nofile
            .or_else(|| crate::host::own_nofile().map(|(_, hard)| hard));
        match cap {
            Some(allowed) if wanted > allowed => {
                progress.warn(format!(
                    "{name}: nofile {wanted} is above the engine's own limit {allowed}; clamped to {allowed}"
                ));
                allowed
            }
            _ => wanted,
        }
    }
}

/// Writes a file `apply` mounts read-only into a container (0644: the container's user reads it).
pub(super) fn write_mounted_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    let dir = path.parent().expect("mounted files live in a directory");
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    std::fs::write(path, contents).map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))
}
