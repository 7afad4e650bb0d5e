//! Starting a node's process (its own process group, logs appended to a file), waiting for it to
//! answer, and stopping it (SIGTERM, then SIGKILL).

use std::fs::{File, OpenOptions};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow, bail};

use super::NativeEngine;
use super::spec::ProcessSpec;
use super::state::Running;
use crate::config::model::Cluster;
use crate::plan::{Change, Step};
use crate::progress::{Progress, Task};

pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// True when `pid` is a live (not zombie) process running `program`.
pub(super) fn alive(pid: i32, program: &Path) -> bool {
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
    /// Before the first start of an apply: the logs directory, and every node gets the whole
    /// hard open-file limit, not the shell's soft one.
    pub(super) fn ready_to_start(&self) -> anyhow::Result<()> {
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

    pub(super) fn log_path(&self, spec: &ProcessSpec) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", spec.node))
    }

    /// Stops the old process of a recreate, writes the spec's files, starts the new process
    /// and records it.
    pub(super) fn start_process(
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

    pub(super) fn forget_child(&self, name: &str) -> Option<std::process::Child> {
        self.children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)
    }

    /// Waits for the process `start_process` started to answer its health port.
    pub(super) async fn wait_answering(
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
    pub(super) fn stop(&self, name: &str) -> anyhow::Result<()> {
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

    /// Stops every process the state file names; removes Prometheus's data with `volumes`.
    pub(super) fn stop_all(&self, volumes: bool, progress: &Progress) -> anyhow::Result<()> {
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
}

/// SIGTERM (the node drains), then SIGKILL if it is still there after 10 s.
pub(super) fn terminate(pid: i32, program: &Path) {
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

pub(super) fn log_tail(path: &Path) -> String {
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
}
