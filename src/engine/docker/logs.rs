//! `logs` on Docker: each container's lines through the engine's logs API, timestamps on so
//! they merge in time order.

use futures_util::StreamExt as _;

use super::DockerEngine;
use crate::config::model::Cluster;
use crate::logs::{FollowSeam, LogLine, LogRequest, merge, split_docker_timestamp};

/// Whose logs: a container's, or (on Swarm) every task's of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogTarget {
    /// `<cluster>-<source>` is a container.
    Container,
    /// `<cluster>-<source>` is a Swarm service.
    Service,
}

/// One container's (or service's) lines through the engine's logs API (timestamps on, to
/// merge by).
pub(super) fn container_logs(
    docker: &bollard::Docker,
    target: LogTarget,
    container: &str,
    source: &str,
    request: &LogRequest,
    follow: bool,
    since_unix: i32,
) -> impl futures_util::Stream<Item = LogLine> + use<> {
    let options = bollard::query_parameters::LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .follow(follow)
        .since(since_unix)
        .tail(&request.max_lines().to_string())
        .build();
    let source = source.to_string();
    let name = container.to_string();
    let stream = match target {
        LogTarget::Container => docker.logs(container, Some(options)).boxed(),
        LogTarget::Service => docker.service_logs(container, Some(options)).boxed(),
    };
    stream
        .map(move |item| match item {
            Ok(output) => String::from_utf8_lossy(&output.into_bytes())
                .lines()
                .map(|line| {
                    let (at, text) = split_docker_timestamp(line);
                    LogLine {
                        source: source.clone(),
                        at,
                        text: text.to_string(),
                    }
                })
                .collect::<Vec<_>>(),
            Err(e) => {
                eprintln!("warning: no logs from {name}: {e}");
                Vec::new()
            }
        })
        .flat_map(futures_util::stream::iter)
}

impl DockerEngine {
    /// Each source's container's lines, history first merged in time order, then with
    /// `follow` lines as they come until Ctrl-C.
    pub(crate) async fn stream_logs(
        &self,
        target: LogTarget,
        cluster: &Cluster,
        sources: &[String],
        request: &LogRequest,
        follow: bool,
        emit: &mut dyn FnMut(Vec<LogLine>) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let docker = self.docker.clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let since = request
            .since
            .map_or(0, |d| now.saturating_sub(d).as_secs() as i32);
        // History first, merged in time order; then, with --follow, lines as they come.
        let mut history = Vec::new();
        for source in sources {
            let container = format!("{}-{source}", cluster.name);
            history.push(
                container_logs(&docker, target, &container, source, request, false, since)
                    .collect::<Vec<_>>()
                    .await,
            );
        }
        let seams: Vec<FollowSeam> = history
            .iter()
            .map(|lines| FollowSeam::after(lines))
            .collect();
        emit(merge(history))?;
        if !follow {
            return Ok(());
        }
        let now = jiff::Timestamp::now();
        let streams = sources.iter().zip(seams).map(|(source, mut seam)| {
            let container = format!("{}-{source}", cluster.name);
            let from = seam.since_second(now) as i32;
            container_logs(&docker, target, &container, source, request, true, from)
                .filter(move |line| {
                    let fresh = seam.admits(line);
                    async move { fresh }
                })
                .boxed()
        });
        let mut merged = futures_util::stream::select_all(streams);
        loop {
            tokio::select! {
                line = merged.next() => match line {
                    Some(line) => emit(vec![line])?,
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        Ok(())
    }
}
