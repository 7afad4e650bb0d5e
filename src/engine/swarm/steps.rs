//! The Swarm driver's primitive steps: the overlay network, the cluster secret and Prometheus's
//! files as immutable Swarm objects, a service's create or rolling update (and its removal), and
//! the wait until its task runs the wanted spec, healthy.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine as _;
use bollard::models::{
    ConfigSpec, NetworkCreateRequest, SecretSpec, ServiceUpdateStatusStateEnum, TaskState,
};
use bollard::query_parameters::{
    InspectServiceOptions, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};

use super::registry::RegistryLogin;
use super::service_spec::{ServiceWant, StartFacts, object_name, service_spec};
use super::{ReadyImages, SwarmEngine, engine_error, is_not_found};
use crate::config::model::Cluster;
use crate::deploy_spec::{LABEL_CLUSTER, LABEL_CONFIG_HASH};
use crate::engine::secret;
use crate::plan::{Change, ResourceKind, Step};
use crate::progress::{Progress, Task};

/// What a task that ended for want of its image means when the engines pull from the registry.
pub(super) fn pull_hint(last: &str, pulled: bool) -> &'static str {
    if pulled && super::image_presence::lacked_image(last) {
        ": its engine could not pull the image from `[swarm] registry` (is the registry up, reachable from \
         every engine, trusted by each (`insecure-registries` for plain HTTP) and, if it needs a login, \
         in `auths` of the Docker client's config.json?)"
    } else {
        ""
    }
}

/// The labels of a Swarm object of the cluster, with the hash it was made from.
fn object_labels(cluster: &Cluster, hash: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_CLUSTER.to_string(), cluster.name.clone()),
        (LABEL_CONFIG_HASH.to_string(), hash.to_string()),
    ])
}

fn is_conflict(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

impl SwarmEngine {
    /// The attachable overlay network (attachable, so stress workers and tests can join it).
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
        self.docker
            .create_network(NetworkCreateRequest {
                name: step.name.clone(),
                driver: Some("overlay".into()),
                attachable: Some(true),
                labels: Some(object_labels(
                    cluster,
                    step.config_hash.as_deref().unwrap_or_default(),
                )),
                ..Default::default()
            })
            .await
            .map_err(|e| engine_error(&format!("creating network {}", step.name), e))?;
        progress.info(format!("overlay network {} created", step.name));
        Ok(())
    }

    /// The stored cluster secret as a Swarm secret named by its content's hash (secrets are
    /// immutable: a new value is a new secret), reused when present: its (ID, name).
    async fn ensure_secret(&self, cluster: &Cluster) -> anyhow::Result<(String, String)> {
        let path = secret::ensure(cluster)?;
        let value = std::fs::read(&path)
            .map_err(|e| anyhow::anyhow!("reading the cluster secret {}: {e}", path.display()))?;
        let hash = crate::engine::image::short_hash(&[&value]);
        let name = object_name(&cluster.name, "sec", &hash);
        let spec = SecretSpec {
            name: Some(name.clone()),
            labels: Some(object_labels(cluster, &hash)),
            data: Some(base64::engine::general_purpose::STANDARD.encode(&value)),
            ..Default::default()
        };
        let id = match self.docker.create_secret(spec).await {
            Ok(created) => created.id,
            Err(e) if is_conflict(&e) => self
                .docker
                .inspect_secret(&name)
                .await
                .map_err(|e| engine_error(&format!("inspecting secret {name}"), e))?
                .id
                .unwrap_or_default(),
            Err(e) => return Err(engine_error(&format!("creating secret {name}"), e)),
        };
        Ok((id, name))
    }

    /// The service's files as Swarm configs, each named by its content's hash: their IDs, in
    /// the order of `want.configs`.
    async fn ensure_configs(
        &self,
        cluster: &Cluster,
        want: &ServiceWant,
    ) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::new();
        for config in &want.configs {
            let spec = ConfigSpec {
                name: Some(config.name.clone()),
                labels: Some(object_labels(cluster, &config.name)),
                data: Some(base64::engine::general_purpose::STANDARD.encode(&config.content)),
                ..Default::default()
            };
            let id = match self.docker.create_config(spec).await {
                Ok(created) => created.id,
                Err(e) if is_conflict(&e) => self
                    .docker
                    .inspect_config(&config.name)
                    .await
                    .map_err(|e| engine_error(&format!("inspecting config {}", config.name), e))?
                    .id
                    .unwrap_or_default(),
                Err(e) => {
                    return Err(engine_error(&format!("creating config {}", config.name), e));
                }
            };
            ids.push(id);
        }
        Ok(ids)
    }

    /// Creates the service, or updates it in place: Swarm then rolls its task as
    /// `[swarm.update]` says (and rolls back on failure), the service's other settings untouched.
    /// With `[swarm] registry`, `ready` holds the image's digest reference and the registry's
    /// login (handed to Swarm so that every engine may pull).
    pub(super) async fn start_service(
        &self,
        cluster: &Cluster,
        want: &ServiceWant,
        ready: &ReadyImages,
        step: &Step,
        progress: &Progress,
        task: &Task,
    ) -> anyhow::Result<()> {
        let hash = step.config_hash.clone().unwrap_or_default();
        let login = ready.login.as_deref();
        let image = match ready.pushed.get(&want.image) {
            Some(reference) => Some(reference.clone()),
            // Named by ID, the image is never looked up in a registry (none is configured):
            // Swarm skips the pull of an image given as its ID. One engine's images only: a
            // multi-engine swarm needs the image on every engine or `[swarm] registry`.
            None => self
                .docker
                .inspect_image(&want.image)
                .await
                .ok()
                .and_then(|image| image.id),
        };
        let mut facts = StartFacts {
            image,
            secret: None,
            config_ids: Vec::new(),
            nofile: want
                .nofile
                .map(|n| self.engine.clamp_nofile(&want.name, n, progress)),
            force_update: None,
        };
        if want.secret_target.is_some() {
            task.step("secret");
            facts.secret = Some(self.ensure_secret(cluster).await?);
        }
        facts.config_ids = self.ensure_configs(cluster, want).await?;
        let existing = match self
            .docker
            .inspect_service(&want.name, None::<InspectServiceOptions>)
            .await
        {
            Ok(service) => Some(service),
            Err(e) if is_not_found(&e) => None,
            Err(e) => {
                return Err(engine_error(
                    &format!("inspecting service {}", want.name),
                    e,
                ));
            }
        };
        let Some(existing) = existing else {
            task.step("creating the service");
            self.docker
                .create_service(
                    service_spec(want, &hash, &facts),
                    login.map(RegistryLogin::credentials),
                )
                .await
                .map_err(|e| engine_error(&format!("creating service {}", want.name), e))?;
            return Ok(());
        };
        let spec = existing.spec.unwrap_or_default();
        let old_hash = spec
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_CONFIG_HASH))
            .cloned();
        if old_hash.as_deref() == Some(hash.as_str()) {
            // Same spec, broken task: a bumped counter makes Swarm replace it.
            let previous = spec
                .task_template
                .as_ref()
                .and_then(|t| t.force_update)
                .unwrap_or(0);
            facts.force_update = Some(previous + 1);
        }
        task.step("rolling update");
        let version = existing.version.and_then(|v| v.index).unwrap_or_default();
        let options = UpdateServiceOptionsBuilder::default()
            .version(version as i32)
            .build();
        self.docker
            .update_service(
                &want.name,
                service_spec(want, &hash, &facts),
                options,
                login.map(RegistryLogin::credentials),
            )
            .await
            .map_err(|e| engine_error(&format!("updating service {}", want.name), e))?;
        Ok(())
    }

    /// Waits until a task of the service runs the spec labelled `hash` (`pulled`: its engines
    /// pull the image from `[swarm] registry`) (Swarm reports a task
    /// with a healthcheck as running once it is healthy), at most `timeout`; a rollback, a
    /// paused update or a failed task ends the wait with what Swarm said.
    pub(super) async fn wait_service_healthy(
        &self,
        want: &ServiceWant,
        pulled: bool,
        hash: &str,
        timeout: Duration,
        task: &Task,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let filters = HashMap::from([("service", vec![want.name.as_str()])]);
        let mut last = String::from("no task yet");
        loop {
            let service = self
                .docker
                .inspect_service(&want.name, None::<InspectServiceOptions>)
                .await
                .map_err(|e| engine_error(&format!("inspecting service {}", want.name), e))?;
            if let Some(update) = service.update_status {
                let state = update.state.unwrap_or(ServiceUpdateStatusStateEnum::EMPTY);
                use ServiceUpdateStatusStateEnum::*;
                if matches!(
                    state,
                    PAUSED | ROLLBACK_STARTED | ROLLBACK_PAUSED | ROLLBACK_COMPLETED
                ) {
                    bail!(
                        "{}: Swarm's update is {state}: {} (`docker service ps {}` shows the tasks)",
                        want.name,
                        update.message.unwrap_or_default(),
                        want.name
                    );
                }
            }
            let options = ListTasksOptionsBuilder::default().filters(&filters).build();
            let tasks = self
                .docker
                .list_tasks(Some(options))
                .await
                .map_err(|e| engine_error(&format!("listing tasks of {}", want.name), e))?;
            let current = tasks.iter().filter(|t| {
                t.spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.labels.as_ref())
                    .and_then(|l| l.get(LABEL_CONFIG_HASH))
                    .is_some_and(|h| h == hash)
            });
            // A rejected task's error (an image its engine could not pull) says more than the
            // pending task Swarm made to replace it.
            let mut said_why = false;
            for candidate in current {
                let status = candidate.status.clone().unwrap_or_default();
                let state = status.state.unwrap_or(TaskState::NEW);
                if state == TaskState::RUNNING
                    && candidate.desired_state == Some(TaskState::RUNNING)
                {
                    return Ok(());
                }
                let why = status.err.as_deref().is_some_and(|e| !e.is_empty());
                if why || !said_why {
                    said_why |= why;
                    last = format!(
                        "task {state}: {}{}",
                        status.message.unwrap_or_default(),
                        status.err.map(|e| format!(" ({e})")).unwrap_or_default()
                    );
                }
            }
            task.step(format!("waiting for healthy ({last})"));
            if Instant::now() >= deadline {
                bail!(
                    "{} did not become healthy within {}s ({last}){}; `docker service ps --no-trunc {}` shows why, \
                     `apply` again retries",
                    want.name,
                    timeout.as_secs(),
                    pull_hint(&last, pulled),
                    want.name
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Removes a service (its tasks stop gracefully, within their stop grace period).
    pub(super) async fn remove_service(&self, name: &str) -> anyhow::Result<()> {
        match self.docker.delete_service(name).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error(&format!("removing service {name}"), e)),
        }
    }

    /// A removal step: a service goes; the network stays until `down`.
    pub(super) async fn remove_step(&self, step: &Step, progress: &Progress) -> anyhow::Result<()> {
        match step.kind {
            ResourceKind::Coordinator | ResourceKind::Worker | ResourceKind::Prometheus => {
                let task = progress.task(format!("{} {}", step.kind, step.name));
                self.remove_service(&step.name).await?;
                task.done("removed (no longer in the cluster file)");
            }
            ResourceKind::Network => progress.info(format!(
                "network {} is not in the cluster file; `down` removes it",
                step.name
            )),
            ResourceKind::Volume | ResourceKind::Image => {}
        }
        Ok(())
    }
}
