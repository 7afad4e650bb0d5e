//! The native runtime: the cluster as local `erlmcp-node` processes on this host's ports (and the
//! host's Prometheus, when installed), with a state file so `plan`, `status` and `down` work as
//! they do on Docker. It serves where no Docker engine answers and is the baseline the stress
//! report compares containers against.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::driver::{Driver, Unhealthy};
use super::image;
use super::reachable;
use super::status::{self, ClusterStatus, NodeStatus};
use crate::config::model::{Cluster, Node};
use crate::deploy_spec::{self, Addressing};
use crate::plan::{Change, Desired, Observed, ResourceKind, Step};
use crate::progress::{Progress, Task};

/// One process as the cluster wants it. Ordered maps keep the hash stable.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessSpec {
    /// Name (`<cluster>-<node>`), as containers are named.
    pub name: String,
    /// Which resource this is.
    pub kind: ResourceKind,
    /// Node name (or `prometheus`).
    pub node: String,
    /// The program.
    pub program: PathBuf,
    /// Content hash of the program, so a rebuilt binary restarts the process.
    pub program_hash: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Environment added to this process's own.
    pub env: BTreeMap<String, String>,
    /// Port answering `/health` (nodes) or `/-/ready` (Prometheus).
    pub health_port: u16,
    /// Files written before the start: (path, contents).
    pub files: Vec<(PathBuf, String)>,
}

/// A process the state file remembers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Running {
    /// Name.
    pub name: String,
    /// Node name (or `prometheus`).
    pub node: String,
    /// Role label as on containers: `coordinator`, `worker` or `prometheus`.
    pub role: String,
    /// Process id.
    pub pid: i32,
    /// Program path, to tell our process from a reused pid.
    pub program: PathBuf,
    /// Configuration hash it was started with.
    pub config_hash: String,
    /// Start time (seconds since the epoch).
    pub started_at: u64,
    /// Health port.
    pub health_port: u16,
}

/// The state file: what this runtime started for one cluster.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// Cluster name.
    pub cluster: String,
    /// Processes.
    pub processes: Vec<Running>,
}

/// The native runtime for one cluster.
pub struct NativeEngine {
    dir: PathBuf,
    /// Held while the state file is read, changed and written.
    state_lock: std::sync::Mutex<()>,
    /// The processes this command started, to see one exit before it answered.
    children: std::sync::Mutex<std::collections::HashMap<String, std::process::Child>>,
}

/// Where the native runtime keeps state, logs and Prometheus data for a cluster.
pub fn state_dir(cluster: &str) -> PathBuf {
    let base = std::env::var_os("ERLMCP_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("erlmcp-gen")))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state/erlmcp-gen"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("erlmcp-gen"));
    base.join(cluster)
}

/// A dynamically or statically linked `erlmcp-node` to run on this host (beside erlmcp-gen,
/// `ERLMCP_NODE_BINARY`, or built in the workspace).
pub fn node_program(progress: &Progress) -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("ERLMCP_NODE_BINARY") {
        return Ok(PathBuf::from(path));
    }
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.join("erlmcp-node")))
        && sibling.is_file()
    {
        return Ok(sibling);
    }
    let root = image::workspace_root().ok_or_else(|| {
        anyhow!("no erlmcp-node beside erlmcp-gen: install both, or set ERLMCP_NODE_BINARY")
    })?;
    image::cargo_build_node(progress, &root, "erlmcp-node (release build)", &[], None)?;
    Ok(root.join("target/release/erlmcp-node"))
}

fn file_hash(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(image::short_hash(&[&bytes]))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when `pid` is a live (not zombie) process running `program`.
fn alive(pid: i32, program: &Path) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return false;
    }
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&name))
}

impl NativeEngine {
    /// The runtime for `cluster`, keeping its state under [`state_dir`].
    pub fn new(cluster: &Cluster) -> Self {
        NativeEngine::in_dir(state_dir(&cluster.name))
    }

    fn in_dir(dir: PathBuf) -> Self {
        NativeEngine {
            dir,
            state_lock: Default::default(),
            children: Default::default(),
        }
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Reads the state file (empty when there is none).
    pub fn load_state(&self) -> anyhow::Result<State> {
        match std::fs::read_to_string(self.state_path()) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is damaged; remove it after stopping its processes",
                    self.state_path().display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", self.state_path().display())),
        }
    }

    /// Writes the state file through a temporary name, so a crash never leaves half a file.
    fn save_state(&self, state: &State) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let temporary = self.dir.join(".state.json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(state)?)?;
        std::fs::rename(&temporary, self.state_path())?;
        Ok(())
    }

    /// Every process the cluster wants.
    fn prepare_specs(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<Vec<ProcessSpec>> {
        let program = node_program(progress)?;
        let program_hash = file_hash(&program)?;
        let mut specs: Vec<ProcessSpec> = cluster
            .nodes
            .iter()
            .map(|node| node_spec(cluster, node, &program, &program_hash))
            .collect();
        specs.sort_by_key(|s| s.kind);
        if cluster.prometheus.enabled {
            match image::host_prometheus() {
                Some(prometheus) => specs.push(self.prometheus_spec(cluster, &prometheus)?),
                None => progress.warn(
                    "no `prometheus` on this host (Debian's `prometheus` package); the native cluster runs without it",
                ),
            }
        }
        Ok(specs)
    }

    fn prometheus_spec(&self, cluster: &Cluster, program: &Path) -> anyhow::Result<ProcessSpec> {
        let config_path = self.dir.join("prometheus.yml");
        let config = crate::render::prometheus_config_for_host_ports(cluster)?;
        // prometheus.yml's rule_files names alerts.yml relative to itself.
        let alerts = (
            self.dir.join("alerts.yml"),
            crate::render::alerts_for_host_ports(cluster)?,
        );
        let p = &cluster.prometheus;
        let listen = reachable(cluster, p.port);
        Ok(ProcessSpec {
            name: format!("{}-prometheus", cluster.name),
            kind: ResourceKind::Prometheus,
            node: "prometheus".into(),
            program: program.to_path_buf(),
            program_hash: file_hash(program)?,
            args: vec![
                format!("--config.file={}", config_path.display()),
                format!(
                    "--storage.tsdb.path={}",
                    self.dir.join("prometheus-data").display()
                ),
                format!("--storage.tsdb.retention.time={}", p.retention),
                format!("--web.listen-address={listen}"),
            ],
            env: BTreeMap::new(),
            health_port: p.port,
            files: vec![(config_path, config), alerts],
        })
    }

    /// The desired resources as the planner sees them.
    fn planned(specs: &[ProcessSpec]) -> Vec<Desired> {
        specs
            .iter()
            .map(|spec| Desired {
                kind: spec.kind,
                name: spec.name.clone(),
                config_hash: image::short_hash(&[
                    &serde_json::to_vec(spec).expect("specs serialize")
                ]),
            })
            .collect()
    }

    /// The processes the state file names, with whether each is alive and answering.
    async fn observe_processes(&self, cluster: &Cluster) -> anyhow::Result<Vec<Observed>> {
        let state = self.load_state()?;
        let mut observed = Vec::new();
        for process in &state.processes {
            let healthy =
                alive(process.pid, &process.program) && self.answers(cluster, process).await;
            observed.push(Observed {
                kind: ResourceKind::of_role_label(Some(&process.role)),
                name: process.name.clone(),
                config_hash: Some(process.config_hash.clone()),
                healthy,
            });
        }
        Ok(observed)
    }

    async fn answers(&self, cluster: &Cluster, process: &Running) -> bool {
        let path = if process.role == deploy_spec::PROMETHEUS_NAME {
            "/-/ready"
        } else {
            "/health"
        };
        crate::probe::get(
            reachable(cluster, process.health_port),
            path,
            Duration::from_secs(1),
        )
        .await
        .is_ok_and(|r| r.status == 200)
    }

    /// Before the first start of an apply: the logs directory, and every node gets the whole
    /// hard open-file limit, not the shell's soft one.
    fn ready_to_start(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.dir.join("logs"))?;
        if let Ok((_, hard)) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        {
            let _ = nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                hard,
                hard,
            );
        }
        Ok(())
    }

    /// Changes the state file under the lock, saving it at once, so an interrupted apply is
    /// repaired by the next `apply` or `down` and starts running together never lose a record.
    fn update_state<T>(
        &self,
        cluster: &Cluster,
        change: impl FnOnce(&mut State) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let _guard = self.state_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.load_state()?;
        state.cluster = cluster.name.clone();
        let result = change(&mut state)?;
        self.save_state(&state)?;
        Ok(result)
    }

    fn log_path(&self, spec: &ProcessSpec) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", spec.node))
    }

    /// Stops the old process of a recreate, writes the spec's files, starts the new process
    /// and records it.
    fn start_process(
        &self,
        cluster: &Cluster,
        spec: &ProcessSpec,
        step: &Step,
        task: &Task,
    ) -> anyhow::Result<()> {
        self.ready_to_start()?;
        if matches!(step.change, Change::Recreate { .. }) {
            task.step("stopping the old process");
            self.stop(&spec.name)?;
        }
        for (path, contents) in &spec.files {
            std::fs::write(path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(spec))?;
        task.step("starting");
        let child = Command::new(&spec.program)
            .args(&spec.args)
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: Ctrl-C in this terminal must not stop the cluster.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", spec.program.display()))?;
        let running = Running {
            name: spec.name.clone(),
            node: spec.node.clone(),
            role: spec.kind.role_label().into(),
            pid: child.id() as i32,
            program: spec.program.clone(),
            config_hash: step.config_hash.clone().unwrap_or_default(),
            started_at: now(),
            health_port: spec.health_port,
        };
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(spec.name.clone(), child);
        let recorded = self.update_state(cluster, |state| {
            state.processes.retain(|p| p.name != spec.name);
            state.processes.push(running);
            Ok(())
        });
        if let Err(error) = recorded {
            // Nothing unrecorded may keep running: `down` would never find it.
            if let Some(mut child) = self.forget_child(&spec.name) {
                let _ = child.kill();
            }
            return Err(error);
        }
        Ok(())
    }

    fn forget_child(&self, name: &str) -> Option<std::process::Child> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }

    /// Waits for the process `start_process` started to answer its health port.
    async fn wait_answering(
        &self,
        cluster: &Cluster,
        spec: &ProcessSpec,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let log_path = self.log_path(spec);
        let running = self
            .load_state()?
            .processes
            .into_iter()
            .find(|p| p.name == spec.name)
            .ok_or_else(|| anyhow!("{} is not in the state file", spec.name))?;
        loop {
            let exited = match self
                .children
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(&spec.name)
            {
                Some(child) => child.try_wait()?,
                None => None,
            };
            if let Some(status) = exited {
                let tail = log_tail(&log_path);
                bail!(
                    "{} exited ({status}) before it answered; the end of {}:\n{tail}",
                    spec.name,
                    log_path.display()
                );
            }
            if self.answers(cluster, &running).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not answer on port {} within {}s; see {}",
                    spec.name,
                    spec.health_port,
                    timeout.as_secs(),
                    log_path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops one process (SIGTERM, then SIGKILL after 10 s) and forgets it.
    fn stop(&self, name: &str) -> anyhow::Result<()> {
        let _ = self.forget_child(name);
        let _guard = self.state_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut state = self.load_state()?;
        if let Some(process) = state.processes.iter().find(|p| p.name == name).cloned() {
            terminate(process.pid, &process.program);
            state.processes.retain(|p| p.name != name);
            self.save_state(&state)?;
        }
        Ok(())
    }

    /// Per-node state, health, uptime and figures, and Prometheus's target health.
    async fn cluster_status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        let state = self.load_state()?;
        let mut nodes = Vec::new();
        for node in &cluster.nodes {
            let name = format!("{}-{}", cluster.name, node.name);
            let process = state.processes.iter().find(|p| p.name == name);
            let (state_text, health, uptime, figures) = match process {
                Some(p) if alive(p.pid, &p.program) => {
                    let healthy = self.answers(cluster, p).await;
                    let figures = status::node_figures(reachable(cluster, node.api_port)).await;
                    (
                        "running".to_string(),
                        if healthy { "healthy" } else { "unhealthy" }.to_string(),
                        Some(now().saturating_sub(p.started_at)),
                        figures,
                    )
                }
                Some(_) => ("exited".into(), "unknown".into(), None, (None, None)),
                None => ("missing".into(), "unknown".into(), None, (None, None)),
            };
            nodes.push(NodeStatus {
                node: node.name.clone(),
                name,
                state: state_text,
                health,
                uptime_seconds: uptime,
                connections: figures.0,
                rss_bytes: figures.1,
            });
        }
        let prometheus = if state
            .processes
            .iter()
            .any(|p| p.role == deploy_spec::PROMETHEUS_NAME)
        {
            status::prometheus_targets(reachable(cluster, cluster.prometheus.port)).await
        } else {
            Err("not running (no host prometheus, or disabled)".into())
        };
        Ok(ClusterStatus {
            cluster: cluster.name.clone(),
            runtime: "native".into(),
            nodes,
            prometheus,
        })
    }

    /// Stops every process the state file names; removes Prometheus's data with `volumes`.
    fn stop_all(&self, volumes: bool, progress: &Progress) -> anyhow::Result<()> {
        let state = self.load_state()?;
        for process in &state.processes {
            let task = progress.task(format!("process {}", process.name));
            self.stop(&process.name)?;
            task.done("stopped");
        }
        let _ = std::fs::remove_file(self.state_path());
        let data = self.dir.join("prometheus-data");
        if volumes {
            let _ = std::fs::remove_dir_all(&data);
            progress.info(format!("{} removed", data.display()));
        } else if data.exists() {
            progress.info(format!(
                "{} kept (`down --volumes` removes it)",
                data.display()
            ));
        }
        Ok(())
    }

    /// The pid of a node's process, for resource sampling and failure tests.
    pub fn pid_of(&self, name: &str) -> Option<i32> {
        self.load_state()
            .ok()?
            .processes
            .into_iter()
            .find(|p| p.name == name)
            .map(|p| p.pid)
    }
}

impl ProcessSpec {
    fn of<'a>(specs: &'a [ProcessSpec], name: &str) -> &'a ProcessSpec {
        specs
            .iter()
            .find(|s| s.name == name)
            .expect("the plan names only wanted processes")
    }
}

impl Driver for NativeEngine {
    type Want = Vec<ProcessSpec>;

    fn name(&self) -> &'static str {
        "native"
    }

    async fn prepare(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<Vec<ProcessSpec>> {
        self.prepare_specs(cluster, progress)
    }

    fn desired(&self, specs: &Vec<ProcessSpec>) -> Vec<Desired> {
        NativeEngine::planned(specs)
    }

    async fn observe(
        &self,
        cluster: &Cluster,
        _: &Vec<ProcessSpec>,
    ) -> anyhow::Result<Vec<Observed>> {
        self.observe_processes(cluster).await
    }

    /// Processes need no image, network or volume.
    async fn provide(
        &self,
        _: &Cluster,
        _: &Vec<ProcessSpec>,
        _: &Step,
        _: &Progress,
    ) -> anyhow::Result<()> {
        Ok(())
    }

    async fn remove(&self, step: &Step, progress: &Progress) -> anyhow::Result<()> {
        let task = progress.task(format!("{} {}", step.kind, step.name));
        self.stop(&step.name)?;
        task.done("stopped (no longer in the cluster file)");
        Ok(())
    }

    async fn start(
        &self,
        cluster: &Cluster,
        specs: &Vec<ProcessSpec>,
        step: &Step,
        _: &Progress,
        task: &Task,
    ) -> anyhow::Result<()> {
        self.start_process(cluster, ProcessSpec::of(specs, &step.name), step, task)
    }

    async fn wait_healthy(
        &self,
        cluster: &Cluster,
        specs: &Vec<ProcessSpec>,
        step: &Step,
        timeout: Duration,
        _: &Task,
    ) -> anyhow::Result<()> {
        self.wait_answering(cluster, ProcessSpec::of(specs, &step.name), timeout)
            .await
    }

    /// Leave no dead process in the state: the next apply starts it afresh.
    fn unhealthy(&self) -> Unhealthy {
        Unhealthy::Discard
    }

    async fn discard(&self, step: &Step) -> anyhow::Result<()> {
        self.stop(&step.name)
    }

    async fn status(&self, cluster: &Cluster) -> anyhow::Result<ClusterStatus> {
        self.cluster_status(cluster).await
    }

    async fn down(&self, _: &Cluster, volumes: bool, progress: &Progress) -> anyhow::Result<()> {
        self.stop_all(volumes, progress)
    }
}

/// SIGTERM (the node drains), then SIGKILL if it is still there after 10 s.
fn terminate(pid: i32, program: &Path) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if !alive(pid, program) {
        return;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid, program) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if alive(pid, program) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    // Reap it if it is our own child (during one apply), so it does not linger as a zombie.
    let _ = nix::sys::wait::waitpid(
        Pid::from_raw(pid),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

fn log_tail(path: &Path) -> String {
    let text = File::open(path)
        .and_then(|mut f| {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut f, &mut s)?;
            Ok(s)
        })
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The process for one node: its deployment spec on this host's ports.
fn node_spec(cluster: &Cluster, node: &Node, program: &Path, program_hash: &str) -> ProcessSpec {
    let addressing = Addressing::HostPorts {
        secret_file: super::secret::stored_path(&cluster.name),
    };
    let spec = deploy_spec::node_deployment(cluster, node, &addressing);
    ProcessSpec {
        kind: ResourceKind::of_role(spec.role),
        node: spec.node.clone(),
        program: program.to_path_buf(),
        program_hash: program_hash.to_string(),
        args: spec.command.clone(),
        env: spec.env_map(),
        health_port: node.api_port,
        files: Vec::new(),
        name: spec.name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_process_is_alive_and_a_made_up_pid_is_not() {
        let me = std::process::id() as i32;
        let exe = std::env::current_exe().unwrap();
        assert!(alive(me, &exe));
        assert!(!alive(me, Path::new("/no/such/program-name-xyz")));
        assert!(!alive(i32::MAX, &exe));
    }

    #[test]
    fn state_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let engine = NativeEngine::in_dir(dir.path().join("c"));
        assert!(engine.load_state().unwrap().processes.is_empty());
        let state = State {
            cluster: "c".into(),
            processes: vec![Running {
                name: "c-node1".into(),
                node: "node1".into(),
                role: "coordinator".into(),
                pid: 1,
                program: "/bin/true".into(),
                config_hash: "h".into(),
                started_at: 0,
                health_port: 1,
            }],
        };
        engine.save_state(&state).unwrap();
        assert_eq!(engine.load_state().unwrap().processes[0].name, "c-node1");
    }
}
