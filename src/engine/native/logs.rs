//! `logs` on native: each source's file in the state directory, then with `follow` the lines
//! appended to it.

use crate::logs::{self, FileFollower, LogLine, LogRequest};

use super::NativeEngine;

impl NativeEngine {
    /// Each source's lines, merged in time order; with `follow`, new complete lines as they are
    /// written, until Ctrl-C.
    pub(super) async fn read_logs(
        &self,
        sources: &[String],
        request: &LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let (lines, ends) = logs::read_native(&self.dir, sources, request)?;
        emit(logs::merge(lines))?;
        if !follow {
            return Ok(());
        }
        let mut followers: Vec<FileFollower> = sources
            .iter()
            .zip(ends)
            .map(|(source, end)| FileFollower::new(&self.dir, source, end))
            .collect();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(logs::FOLLOW_POLL) => {}
                _ = tokio::signal::ctrl_c() => break,
            }
            let mut fresh = Vec::new();
            for follower in &mut followers {
                fresh.push(follower.poll()?);
            }
            emit(logs::merge(fresh))?;
        }
        Ok(())
    }
}
