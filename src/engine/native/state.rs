//! The state file: what the native runtime started for one cluster, so `plan`, `status` and
//! `down` work as they do on Docker. Written through a temporary name, changed under a lock.

use std::path::PathBuf;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use super::NativeEngine;
use crate::config::model::Cluster;

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

impl NativeEngine {
    pub(super) fn state_path(&self) -> PathBuf {
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
    pub(super) fn save_state(&self, state: &State) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let temporary = self.dir.join(".state.json.tmp");
        std::fs::write(&temporary, serde_json::to_vec_pretty(state)?)?;
        std::fs::rename(&temporary, self.state_path())?;
        Ok(())
    }

    /// Changes the state file under the lock, saving it at once, so an interrupted apply is
    /// repaired by the next `apply` or `down` and starts running together never lose a record.
    pub(super) fn update_state<T>(
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::native::NativeEngine;

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
