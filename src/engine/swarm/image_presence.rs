//! Whether every engine that may run a service has its image, asked of Swarm itself before any
//! service is created. Without `[swarm] registry`, `apply` builds the images on the manager's
//! engine alone and hands Swarm their IDs; a task Swarm places on another engine is rejected
//! ("No such image") and quietly rescheduled on the manager, which piles every node onto one
//! host whatever `[swarm.placement]` asked. A global job that runs the image's `--version` on
//! each eligible engine shows where the image is missing, and `apply` stops there with the
//! commands that copy it. With a registry the engines pull, and this check is not made.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::models::{
    NodeState, ServiceSpec, ServiceSpecMode, Task, TaskSpec, TaskSpecContainerSpec,
    TaskSpecPlacement, TaskSpecRestartPolicy, TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::ListNodesOptions;

use super::service_spec::object_name;
use super::{SwarmEngine, engine_error};
use crate::config::model::Cluster;
use crate::deploy_spec::LABEL_CLUSTER;

/// How long the check waits for every engine's answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// What one engine said about one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The image ran there.
    Present,
    /// The engine does not have it.
    Missing,
    /// Anything else (the task failed, or had not ended in time), with what Swarm said.
    Unknown(String),
}

/// Whether a task's error says its engine had no such image (and, with a registry, could not
/// pull it): Swarm logs the failed pull only, and the container create after it says this.
pub(super) fn lacked_image(err: &str) -> bool {
    err.contains("No such image")
}

/// What Swarm's task for one engine ended as: present, missing or unknown.
pub fn presence_of(state: Option<&TaskState>, err: Option<&str>) -> Presence {
    match (state, err) {
        (Some(TaskState::COMPLETE), _) => Presence::Present,
        (_, Some(err)) if lacked_image(err) => Presence::Missing,
        (Some(state), err) => Presence::Unknown(format!(
            "{state}{}",
            err.map_or(String::new(), |e| format!(": {e}"))
        )),
        (None, _) => Presence::Unknown("no task".into()),
    }
}

/// Whether a task state is final (the task will not run again).
pub(crate) fn task_state_is_final(state: Option<&TaskState>) -> bool {
    matches!(
        state,
        Some(
            TaskState::COMPLETE
                | TaskState::FAILED
                | TaskState::REJECTED
                | TaskState::SHUTDOWN
                | TaskState::ORPHANED
                | TaskState::REMOVE
        )
    )
}

/// The error `apply` stops with: which engines lack which image, and how to copy it there.
pub fn missing_message(missing: &BTreeMap<String, Vec<String>>, manager: &str) -> String {
    let mut text = String::from(
        "the swarm's other engines do not have the images `apply` built on this one (the file has \
         no `[swarm] registry`: Swarm gets the images by ID), so Swarm would reject their tasks \
         there and pile every node onto this engine:\n",
    );
    for (image, hosts) in missing {
        text.push_str(&format!("  {image}: missing on {}\n", hosts.join(", ")));
    }
    text.push_str(&format!(
        "set `[swarm] registry` to a registry every engine can pull from (`apply` then pushes the \
         images there), or copy each image to those engines and run `apply` again, for example\n  \
         docker -H <manager, {manager}> save <image> | docker -H <engine> load\n\
         (`scripts/swarm-lab.sh load` does it for the lab's engines)"
    ));
    text
}

/// Each engine's answer so far (`None`: its task has not ended yet): present when any of its
/// tasks completed, else what its first ended task said.
pub fn answers_by_engine(tasks: &[Task]) -> BTreeMap<String, Option<Presence>> {
    let mut answers: BTreeMap<String, Option<Presence>> = BTreeMap::new();
    let mut ordered: Vec<&Task> = tasks.iter().collect();
    ordered.sort_by_key(|t| t.created_at.clone().map(|d| d.to_string()));
    for task in ordered {
        let node = task.node_id.clone().unwrap_or_default();
        let status = task.status.as_ref();
        let state = status.and_then(|s| s.state.as_ref());
        let answer = answers.entry(node).or_default();
        if !task_state_is_final(state) {
            continue;
        }
        let presence = presence_of(state, status.and_then(|s| s.err.as_deref()));
        if answer.is_none() || presence == Presence::Present {
            *answer = Some(presence);
        }
    }
    answers
}

impl SwarmEngine {
    /// Fails when an engine that may run the cluster's services lacks one of `images`
    /// (`(reference, ID)` pairs). A swarm of one engine is not asked: the images were built on it.
    pub(crate) async fn check_images_on_every_engine(
        &self,
        cluster: &Cluster,
        images: &[(String, String)],
    ) -> anyhow::Result<()> {
        let nodes = self
            .docker
            .list_nodes(None::<ListNodesOptions>)
            .await
            .map_err(|e| engine_error("listing swarm nodes", e))?;
        let hostname = |id: &str| {
            nodes
                .iter()
                .find(|n| n.id.as_deref() == Some(id))
                .and_then(|n| n.description.as_ref()?.hostname.clone())
                .unwrap_or_else(|| id.to_string())
        };
        let ready = nodes
            .iter()
            .filter(|n| n.status.as_ref().and_then(|s| s.state) == Some(NodeState::READY))
            .count();
        if ready < 2 {
            return Ok(());
        }
        let manager = self
            .docker
            .info()
            .await
            .ok()
            .and_then(|info| info.name)
            .unwrap_or_else(|| "this engine".into());
        let mut missing: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (reference, id) in images {
            for (node, presence) in self.ask_engines(cluster, id).await? {
                match presence {
                    Presence::Present => {}
                    Presence::Missing => {
                        let hosts = missing.entry(reference.clone()).or_default();
                        let host = hostname(&node);
                        if !hosts.contains(&host) {
                            hosts.push(host);
                        }
                    }
                    Presence::Unknown(what) => anyhow::bail!(
                        "could not tell whether {} has image {reference}: its check task ended {what}",
                        hostname(&node)
                    ),
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!(missing_message(&missing, &manager)))
        }
    }

    /// Runs `image --version` once on every engine the cluster's placement allows, as a global
    /// job, and reports each engine's answer; the job is removed whatever happens.
    async fn ask_engines(
        &self,
        cluster: &Cluster,
        image_id: &str,
    ) -> anyhow::Result<Vec<(String, Presence)>> {
        let hash = crate::engine::image::short_hash(&[image_id.as_bytes()]);
        let name = object_name(&cluster.name, "imagecheck", &hash);
        let constraints = &cluster.swarm.placement.constraints;
        let spec = ServiceSpec {
            name: Some(name.clone()),
            labels: Some(HashMap::from([(
                LABEL_CLUSTER.to_string(),
                cluster.name.clone(),
            )])),
            mode: Some(ServiceSpecMode {
                global_job: Some(HashMap::new()),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image_id.to_string()),
                    args: Some(vec!["--version".into()]),
                    read_only: Some(true),
                    capability_drop: Some(vec!["ALL".into()]),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: (!constraints.is_empty()).then(|| constraints.clone()),
                    ..Default::default()
                }),
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        // A check left by an interrupted run would make the create conflict.
        let _ = self.docker.delete_service(&name).await;
        self.docker
            .create_service(spec, None)
            .await
            .map_err(|e| engine_error(&format!("creating image check {name}"), e))?;
        let answers = self.wait_for_answers(&name).await;
        let removed = self.docker.delete_service(&name).await;
        let answers = answers?;
        removed.map_err(|e| engine_error(&format!("removing image check {name}"), e))?;
        Ok(answers)
    }

    /// Polls the job's tasks until every engine that got one has answered, or the check's time
    /// is up. Swarm replaces a rejected task with a new one on the same engine, again and again,
    /// so an engine's answer is its first ended task, not its last.
    async fn wait_for_answers(&self, service: &str) -> anyhow::Result<Vec<(String, Presence)>> {
        let deadline = Instant::now() + CHECK_TIMEOUT;
        loop {
            let tasks = self.service_tasks(service).await?;
            let answers = answers_by_engine(&tasks);
            let all_answered = !answers.is_empty() && answers.values().all(Option::is_some);
            if all_answered || Instant::now() >= deadline {
                return Ok(answers
                    .into_iter()
                    .map(|(node, answer)| {
                        let answer = answer.unwrap_or_else(|| {
                            Presence::Unknown(format!("without an answer in {CHECK_TIMEOUT:?}"))
                        });
                        (node, answer)
                    })
                    .collect());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_task_means_present_and_no_such_image_means_missing() {
        assert_eq!(
            presence_of(Some(&TaskState::COMPLETE), None),
            Presence::Present
        );
        assert_eq!(
            presence_of(
                Some(&TaskState::REJECTED),
                Some("No such image: sha256:fbcb5d65389c")
            ),
            Presence::Missing
        );
        assert!(matches!(
            presence_of(Some(&TaskState::FAILED), Some("task: non-zero exit (1)")),
            Presence::Unknown(what) if what.contains("non-zero exit")
        ));
        assert!(matches!(presence_of(None, None), Presence::Unknown(_)));
    }

    fn task(node: &str, created: &str, state: TaskState, err: Option<&str>) -> Task {
        Task {
            node_id: Some(node.into()),
            created_at: Some(created.into()),
            status: Some(bollard::models::TaskStatus {
                state: Some(state),
                err: err.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_engine_answers_once_though_swarm_retries_its_rejected_task() {
        let missing = Some("No such image: sha256:ab");
        let tasks = [
            task("n2", "2026-12-02T10:00:01Z", TaskState::REJECTED, missing),
            task("n1", "2026-12-02T10:00:01Z", TaskState::COMPLETE, None),
            task("n2", "2026-12-02T10:00:02Z", TaskState::REJECTED, missing),
            task("n2", "2026-12-02T10:00:03Z", TaskState::PENDING, None),
            task("n3", "2026-12-02T10:00:01Z", TaskState::RUNNING, None),
        ];
        let answers = answers_by_engine(&tasks);
        assert_eq!(answers.len(), 3);
        assert_eq!(answers["n1"], Some(Presence::Present));
        assert_eq!(answers["n2"], Some(Presence::Missing));
        assert_eq!(answers["n3"], None, "still running: no answer yet");
    }

    #[test]
    fn the_message_names_every_image_and_engine_and_the_copy() {
        let missing = BTreeMap::from([(
            "erlmcp-node:0.1.0-abc".to_string(),
            vec!["lab-2".to_string(), "lab-3".to_string()],
        )]);
        let text = missing_message(&missing, "lab-1");
        assert!(
            text.contains("erlmcp-node:0.1.0-abc: missing on lab-2, lab-3"),
            "{text}"
        );
        assert!(
            text.contains("save <image> | docker -H <engine> load"),
            "{text}"
        );
        assert!(text.contains("lab-1"), "{text}");
        assert!(text.contains("`[swarm] registry`"), "{text}");
    }
}
