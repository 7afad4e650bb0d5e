//! Shared by the swarm tests: this engine as a single-node swarm manager for the test's
//! length (initialised through the engine API, advertising 127.0.0.1, and left again when the
//! test made it), under the shared Docker lock `/tmp/erlmcp-docker.lock`.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{LocalNodeState, SwarmInitRequest};
use bollard::query_parameters::{
    InspectServiceOptions, LeaveSwarmOptionsBuilder, ListConfigsOptionsBuilder,
    ListNetworksOptionsBuilder, ListSecretsOptionsBuilder, ListServicesOptionsBuilder,
    ListVolumesOptionsBuilder,
};

pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

pub async fn engine() -> Docker {
    Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

/// Holds the shared Docker lock, and leaves the swarm at the end when the test made it.
pub struct SwarmGuard {
    _lock: Option<DockerLock>,
    initialised: bool,
}

/// `/tmp/erlmcp-docker.lock`, held by a `flock` child until dropped (closing its stdin ends it).
pub struct DockerLock(std::process::Child);

impl DockerLock {
    pub fn take() -> Self {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("flock")
            .args([
                "/tmp/erlmcp-docker.lock",
                "sh",
                "-c",
                "echo locked; exec cat",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("flock (util-linux) takes the Docker lock");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        DockerLock(child)
    }
}

impl Drop for DockerLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

impl SwarmGuard {
    pub fn take() -> Self {
        let lock = std::env::var_os("ERLMCP_DOCKER_LOCK_HELD")
            .is_none()
            .then(DockerLock::take);
        let initialised = block_on(async {
            let docker = engine().await;
            let info = docker.info().await.unwrap();
            let state = info.swarm.and_then(|s| s.local_node_state);
            if state == Some(LocalNodeState::ACTIVE) {
                return false;
            }
            docker
                .init_swarm(SwarmInitRequest {
                    listen_addr: Some("127.0.0.1:2377".into()),
                    advertise_addr: Some("127.0.0.1".into()),
                    ..Default::default()
                })
                .await
                .expect("making this engine a single-node swarm");
            true
        });
        SwarmGuard {
            _lock: lock,
            initialised,
        }
    }
}

impl Drop for SwarmGuard {
    fn drop(&mut self) {
        if self.initialised {
            block_on(async {
                let options = LeaveSwarmOptionsBuilder::default().force(true).build();
                let _ = engine().await.leave_swarm(Some(options)).await;
            });
        }
    }
}

/// The label filter that finds what `apply` made for `cluster`.
pub fn cluster_filter(cluster: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![format!("erlmcp.cluster={cluster}")],
    )])
}

/// How many services, networks, secrets, configs and volumes carry `cluster`'s label.
pub fn labelled(cluster: &str) -> [usize; 5] {
    block_on(async {
        let docker = engine().await;
        let filters = cluster_filter(cluster);
        let services = docker
            .list_services(Some(
                ListServicesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        let networks = docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        let secrets = docker
            .list_secrets(Some(
                ListSecretsOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        let configs = docker
            .list_configs(Some(
                ListConfigsOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap();
        let volumes = docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .volumes
            .unwrap_or_default();
        [
            services.len(),
            networks.len(),
            secrets.len(),
            configs.len(),
            volumes.len(),
        ]
    })
}

/// A service's ID and its version (Swarm bumps the version on every update).
pub fn service_version(service: &str) -> (String, u64) {
    block_on(async {
        let found = engine()
            .await
            .inspect_service(service, None::<InspectServiceOptions>)
            .await
            .unwrap();
        (
            found.id.unwrap(),
            found.version.and_then(|v| v.index).unwrap(),
        )
    })
}

/// The live service's spec: the engine's view of what `apply` asked for.
pub fn service_spec(service: &str) -> bollard::models::ServiceSpec {
    block_on(async {
        engine()
            .await
            .inspect_service(service, None::<InspectServiceOptions>)
            .await
            .unwrap()
            .spec
            .unwrap()
    })
}
