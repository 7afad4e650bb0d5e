//! The apply schedule, derived from a plan in one place for every runtime: images, the network
//! and volumes; then removals (a removed node's ports may belong to a new one); the coordinator,
//! healthy before anything else; new workers together; changed workers one at a time, each
//! healthy before the next; then Prometheus. [`apply`] carries it out against a [`Driver`].

use std::time::Duration;

use anyhow::Context as _;

use super::driver::{Driver, Unhealthy};
use crate::config::model::Cluster;
use crate::plan::{Change, Plan, ResourceKind, Step};
use crate::progress::Progress;

/// One action of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// Make an image, the network or a volume present.
    Provide(&'a Step),
    /// Carry out a removal.
    Remove(&'a Step),
    /// Start these nodes together; every one healthy before the next action.
    Start(Vec<&'a Step>),
}

/// The actions that carry out `plan`, in order. Unchanged resources have none.
pub fn schedule(plan: &Plan) -> Vec<Action<'_>> {
    let changes = |kind: ResourceKind| {
        plan.of_kind(kind)
            .filter(|s| matches!(s.change, Change::Create | Change::Recreate { .. }))
    };
    let mut actions: Vec<Action<'_>> = [
        ResourceKind::Image,
        ResourceKind::Network,
        ResourceKind::Volume,
    ]
    .into_iter()
    .flat_map(changes)
    .map(Action::Provide)
    .collect();
    actions.extend(
        plan.steps
            .iter()
            .filter(|s| s.change == Change::Remove)
            .map(Action::Remove),
    );
    actions.extend(changes(ResourceKind::Coordinator).map(|s| Action::Start(vec![s])));
    let (created, recreated): (Vec<&Step>, Vec<&Step>) =
        changes(ResourceKind::Worker).partition(|s| s.change == Change::Create);
    if !created.is_empty() {
        actions.push(Action::Start(created));
    }
    actions.extend(recreated.into_iter().map(|s| Action::Start(vec![s])));
    actions.extend(changes(ResourceKind::Prometheus).map(|s| Action::Start(vec![s])));
    actions
}

/// Carries out `plan` on `driver`, action by action; stops at the first failed action (after
/// every start of that action has finished). Without `health_timeout`, nodes are started and
/// not waited for.
pub async fn apply<D: Driver>(
    driver: &D,
    cluster: &Cluster,
    want: &D::Want,
    plan: &Plan,
    progress: &Progress,
    health_timeout: Option<Duration>,
) -> anyhow::Result<()> {
    for action in schedule(plan) {
        match action {
            Action::Provide(step) => driver.provide(cluster, want, step, progress).await?,
            Action::Remove(step) => driver.remove(step, progress).await?,
            Action::Start(steps) => {
                let starts = steps
                    .iter()
                    .map(|step| start_one(driver, cluster, want, step, progress, health_timeout));
                for result in futures_util::future::join_all(starts).await {
                    result?;
                }
            }
        }
    }
    Ok(())
}

/// Starts one node and waits for its health; a never-healthy one is kept or discarded as the
/// driver says, and the error says which.
async fn start_one<D: Driver>(
    driver: &D,
    cluster: &Cluster,
    want: &D::Want,
    step: &Step,
    progress: &Progress,
    health_timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let task = progress.task(format!("{} {}", step.kind, step.name));
    if let Err(error) = driver.start(cluster, want, step, progress, &task).await {
        task.failed("not started");
        return Err(error);
    }
    let Some(timeout) = health_timeout else {
        task.done("started");
        return Ok(());
    };
    task.step("waiting for healthy");
    match driver
        .wait_healthy(cluster, want, step, timeout, &task)
        .await
    {
        Ok(()) => {
            task.done("healthy");
            Ok(())
        }
        Err(error) => {
            task.failed("not healthy");
            match driver.unhealthy() {
                Unhealthy::Keep => Err(error),
                Unhealthy::Discard => {
                    let discarded = driver.discard(step).await;
                    let error = error.context(format!(
                        "{} was stopped again; fix the cause and run `apply` again",
                        step.name
                    ));
                    match discarded {
                        Ok(()) => Err(error),
                        Err(also) => {
                            Err(error).context(format!("and stopping it failed: {also:#}"))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeRuntime;
    use crate::engine::plan_of;
    use crate::plan::Desired;
    use crate::progress::Mode;
    use ResourceKind::*;

    fn cluster() -> Cluster {
        crate::config::committed_cluster("local.toml")
    }

    fn want(kind: ResourceKind, name: &str, hash: &str) -> Desired {
        Desired {
            kind,
            name: name.into(),
            config_hash: hash.into(),
        }
    }

    /// An image, the network, a volume, the coordinator, three workers and Prometheus.
    fn whole_cluster(worker_hashes: [&str; 3]) -> Vec<Desired> {
        let mut desired = vec![
            want(Image, "img:1", "img:1"),
            want(Network, "c-net", "n"),
            want(Volume, "c-data", "v"),
            want(Coordinator, "c-node1", "c"),
        ];
        for (i, hash) in worker_hashes.iter().enumerate() {
            desired.push(want(Worker, &format!("c-node{}", i + 2), hash));
        }
        desired.push(want(Prometheus, "c-prometheus", "p"));
        desired
    }

    const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

    /// Plans against what the fake runs and applies the plan; returns the calls and the result.
    async fn apply_once(fake: &FakeRuntime) -> (Vec<String>, anyhow::Result<()>) {
        let cluster = cluster();
        let progress = Progress::with_mode(Mode::Quiet);
        let plan = plan_of(fake, &cluster, &()).await.unwrap();
        let result = apply(fake, &cluster, &(), &plan, &progress, TIMEOUT).await;
        (fake.take_calls(), result)
    }

    fn calls(list: &[&str]) -> Vec<String> {
        list.iter().map(|c| c.to_string()).collect()
    }

    #[tokio::test]
    async fn a_new_cluster_starts_the_coordinator_first_then_new_workers_together_then_prometheus()
    {
        let fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Keep);
        let (made, result) = apply_once(&fake).await;
        result.unwrap();
        assert_eq!(
            made,
            calls(&[
                "provide img:1",
                "provide c-net",
                "provide c-data",
                "start c-node1",
                "healthy c-node1",
                "start c-node2",
                "start c-node3",
                "start c-node4",
                "healthy c-node2",
                "healthy c-node3",
                "healthy c-node4",
                "start c-prometheus",
                "healthy c-prometheus",
            ])
        );
    }

    #[tokio::test]
    async fn a_second_apply_touches_nothing() {
        let fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Keep);
        apply_once(&fake).await.1.unwrap();
        let plan = plan_of(&fake, &cluster(), &()).await.unwrap();
        assert!(!plan.has_changes(), "{}", plan.to_text());
        let (made, result) = apply_once(&fake).await;
        result.unwrap();
        assert_eq!(made, Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_changed_worker_is_rolled_alone_and_changed_workers_one_at_a_time() {
        let mut fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Keep);
        apply_once(&fake).await.1.unwrap();
        fake.want(whole_cluster(["a", "b2", "c"]));
        let (made, result) = apply_once(&fake).await;
        result.unwrap();
        assert_eq!(made, calls(&["start c-node3", "healthy c-node3"]));
        fake.want(whole_cluster(["a3", "b3", "c"]));
        let (made, result) = apply_once(&fake).await;
        result.unwrap();
        assert_eq!(
            made,
            calls(&[
                "start c-node2",
                "healthy c-node2",
                "start c-node3",
                "healthy c-node3",
            ])
        );
    }

    #[tokio::test]
    async fn nodes_no_longer_in_the_file_are_removed_before_any_start() {
        let mut fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Keep);
        apply_once(&fake).await.1.unwrap();
        let mut fewer = whole_cluster(["a", "b", "c"]);
        fewer.retain(|d| d.name != "c-node4");
        fewer
            .iter_mut()
            .find(|d| d.name == "c-node1")
            .unwrap()
            .config_hash = "c2".into();
        fake.want(fewer);
        let (made, result) = apply_once(&fake).await;
        result.unwrap();
        assert_eq!(
            made,
            calls(&["remove c-node4", "start c-node1", "healthy c-node1"])
        );
    }

    #[tokio::test]
    async fn a_coordinator_never_healthy_stops_the_apply_and_is_kept_where_the_driver_keeps_it() {
        let fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Keep)
            .never_healthy("c-node1");
        let (made, result) = apply_once(&fake).await;
        let error = format!("{:#}", result.unwrap_err());
        assert_eq!(error, "c-node1 did not become healthy within 5s");
        assert_eq!(
            made[3..],
            calls(&["start c-node1", "unhealthy c-node1"])[..]
        );
        assert!(fake.running().contains(&"c-node1".to_string()));
        // The next plan recreates it: it runs but is not healthy.
        let plan = plan_of(&fake, &cluster(), &()).await.unwrap();
        let step = plan.steps.iter().find(|s| s.name == "c-node1").unwrap();
        assert!(matches!(step.change, Change::Recreate { .. }));
    }

    #[tokio::test]
    async fn a_node_never_healthy_is_discarded_where_the_driver_discards_it() {
        let fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Discard)
            .never_healthy("c-node3");
        let (made, result) = apply_once(&fake).await;
        let error = format!("{:#}", result.unwrap_err());
        assert_eq!(
            error,
            "c-node3 was stopped again; fix the cause and run `apply` again: \
             c-node3 did not become healthy within 5s"
        );
        assert!(made.contains(&"discard c-node3".to_string()));
        assert!(!made.contains(&"start c-prometheus".to_string()));
        assert!(!fake.running().contains(&"c-node3".to_string()));
    }

    #[tokio::test]
    async fn a_create_failing_mid_apply_leaves_the_others_of_its_batch_and_starts_nothing_after() {
        let fake = FakeRuntime::new(whole_cluster(["a", "b", "c"]), Unhealthy::Keep)
            .start_fails("c-node3");
        let (made, result) = apply_once(&fake).await;
        let error = format!("{:#}", result.unwrap_err());
        assert_eq!(
            error,
            "creating c-node3: the engine said: no space left on device"
        );
        assert_eq!(
            made[3..],
            calls(&[
                "start c-node1",
                "healthy c-node1",
                "start c-node2",
                "start-failed c-node3",
                "start c-node4",
                "healthy c-node2",
                "healthy c-node4",
            ])[..]
        );
        let mut running = fake.running();
        running.sort();
        assert_eq!(
            running,
            ["c-data", "c-net", "c-node1", "c-node2", "c-node4", "img:1"]
        );
        // The next apply makes only what is missing.
        let plan = plan_of(&fake, &cluster(), &()).await.unwrap();
        let pending: Vec<&str> = plan
            .steps
            .iter()
            .filter(|s| s.change != Change::Unchanged)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(pending, ["c-node3", "c-prometheus"]);
    }

    #[test]
    fn without_changes_there_is_nothing_to_do() {
        let plan = crate::plan::plan("c", "fake", &[], &[]);
        assert!(schedule(&plan).is_empty());
    }
}
