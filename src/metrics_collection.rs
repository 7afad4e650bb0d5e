//! Whether a cluster's metrics are collected: before `apply`, whether anything can provide its
//! Prometheus (the engine's image, this machine's install, a registry). When nothing can, the
//! cluster comes up without Prometheus, `apply` warns, and a note in the state directory makes
//! `status` say that no metrics are being collected, until an `apply` that has Prometheus again.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::CreateImageOptionsBuilder;
use futures_util::StreamExt as _;

use crate::config::model::Cluster;
use crate::engine::Runtime;
use crate::engine::native::state_dir;
use crate::engine::{arch, image};

/// The note's file name in the cluster's state directory; it holds why Prometheus is missing.
const NOTE: &str = "prometheus-missing";

/// How long `apply` tries the registry for the Prometheus image before it goes on without it.
const PULL_TIMEOUT: Duration = Duration::from_secs(120);

/// Why nothing can provide the cluster's Prometheus on `runtime`, or `None` when something can.
/// For Docker, a registry pull is tried (bounded by [`PULL_TIMEOUT`]) when neither the engine
/// nor this machine has Prometheus; a pulled image is what `apply` would have pulled anyway.
pub async fn missing_prometheus(runtime: &Runtime, cluster: &Cluster) -> Option<String> {
    let host = image::host_prometheus();
    match runtime {
        Runtime::Native(_) => host.is_none().then(|| {
            "no `prometheus` program on this machine's PATH (Debian's `prometheus` package)".into()
        }),
        Runtime::Docker(_) | Runtime::Swarm(_) => {
            let docker = runtime.engine_client().expect("a container runtime");
            let wanted = &cluster.prometheus.image;
            if docker.inspect_image(wanted).await.is_ok() {
                return None;
            }
            // The host's install is built into an image only for an engine of this CPU.
            let same_cpu = arch::engine_arch(&docker).await == arch::Arch::host();
            if same_cpu && host.as_deref().is_some_and(image::runs_in_linux_container) {
                return None;
            }
            let options = CreateImageOptionsBuilder::default()
                .from_image(wanted)
                .build();
            let pull = async {
                let mut stream = docker.create_image(Some(options), None, None);
                while let Some(item) = stream.next().await {
                    item.map_err(|e| e.to_string())?;
                }
                Ok::<(), String>(())
            };
            let failure = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
                Ok(Ok(())) => return None,
                Ok(Err(why)) => why,
                Err(_) => format!("no answer within {}s", PULL_TIMEOUT.as_secs()),
            };
            Some(format!(
                "{wanted} is not in the engine, this machine has no `prometheus` to build a local image \
                 from (Debian's `prometheus` package), and pulling it failed: {failure}"
            ))
        }
    }
}

/// The loud warning `apply` prints when it goes on without Prometheus.
pub fn warning(why: &str) -> String {
    format!(
        "WARNING: the cluster comes up WITHOUT Prometheus, so its metrics are not being collected \
         and its alerts do not fire: {why}.\nInstall Prometheus (`apt-get install prometheus`) or \
         load the image into the engine, then run `apply` again."
    )
}

/// Records in the cluster's state directory `dir` (or, with `None`, clears) why the cluster
/// runs without Prometheus.
pub fn record(dir: &Path, missing: Option<&str>) -> std::io::Result<()> {
    let path = dir.join(NOTE);
    match missing {
        Some(why) => {
            std::fs::create_dir_all(dir)?;
            std::fs::write(path, why)
        }
        None => match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

/// Why the last `apply` brought the cluster whose state directory is `dir` up without
/// Prometheus, if it did.
pub fn recorded(dir: &Path) -> Option<String> {
    std::fs::read_to_string(dir.join(NOTE))
        .ok()
        .map(|why| why.trim().to_string())
        .filter(|why| !why.is_empty())
}

/// The state directory of `cluster`, where the note lives.
pub fn note_dir(cluster: &Cluster) -> PathBuf {
    state_dir(&cluster.name)
}

/// What `status` says of Prometheus when the last `apply` went on without it.
pub fn status_reason(why: &str) -> String {
    format!("not running: the last apply found no Prometheus ({why})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_absence_is_read_back_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cluster");
        assert_eq!(recorded(&state), None);
        record(&state, None).unwrap(); // clearing what is not there is fine
        record(&state, Some("no prometheus\n")).unwrap();
        assert_eq!(recorded(&state), Some("no prometheus".into()));
        record(&state, None).unwrap();
        assert_eq!(recorded(&state), None);
    }
}
