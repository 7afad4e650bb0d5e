//! Resource samples of a Docker cluster for `stress`: memory, its limit and CPU from the engine's
//! stats API, sessions and open descriptors from each node's `/metrics`.

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::StatsOptionsBuilder;
use futures_util::StreamExt as _;

use crate::stress::StressTarget;
use crate::stress::resources::{NativeSampler, NodeSample, ResourceSampler};

/// Samples containers through the engine and nodes through their `/metrics`.
pub struct DockerSampler {
    /// Built on the sampling thread at the first sample: a runtime must not be dropped inside
    /// another one, and the sampler may be dropped on the caller's.
    runtime: Option<tokio::runtime::Runtime>,
    docker: Docker,
    /// (node name, container name).
    containers: Vec<(String, String)>,
    /// Container CPU time and system time of the previous sample, for the CPU percentage.
    previous: HashMap<String, (u64, u64)>,
    metrics: NativeSampler,
}

impl DockerSampler {
    /// A sampler for `targets`, whose containers are named `<cluster>-<node>`.
    pub fn new(docker: Docker, cluster: &str, targets: &[StressTarget]) -> anyhow::Result<Self> {
        let containers = targets
            .iter()
            .filter(|t| t.kind == crate::stress::TargetKind::Mcp)
            .map(|t| (t.node.clone(), format!("{cluster}-{}", t.node)))
            .collect();
        Ok(DockerSampler {
            runtime: None,
            docker,
            containers,
            previous: HashMap::new(),
            metrics: NativeSampler::new(targets),
        })
    }
}

impl ResourceSampler for DockerSampler {
    fn sample(&mut self) -> Vec<NodeSample> {
        let from_metrics: HashMap<String, NodeSample> = self
            .metrics
            .sample()
            .into_iter()
            .map(|s| (s.node.clone(), s))
            .collect();
        let mut samples = Vec::new();
        // The stress run samples on a thread of its own, so this sampler blocks on its own runtime.
        if self.runtime.is_none() {
            self.runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok();
        }
        let Some(runtime) = &self.runtime else {
            return samples;
        };
        for (node, container) in &self.containers {
            // one_shot: no second pre-sample inside the engine (it would take a second per call).
            let options = StatsOptionsBuilder::default()
                .stream(false)
                .one_shot(true)
                .build();
            let stats = runtime.block_on(async {
                let mut stream = self.docker.stats(container, Some(options));
                stream.next().await
            });
            let mut sample = NodeSample {
                node: node.clone(),
                cpu_percent: None,
                memory_bytes: None,
                memory_limit_bytes: None,
                open_fds: None,
                sessions: None,
                rx_bytes_per_second: None,
                tx_bytes_per_second: None,
                source: "docker-stats+metrics".into(),
            };
            if let Some(Ok(stats)) = stats {
                let memory = stats.memory_stats.unwrap_or_default();
                sample.memory_bytes = memory.usage;
                sample.memory_limit_bytes = memory.limit;
                let cpu = stats.cpu_stats.unwrap_or_default();
                let total = cpu.cpu_usage.and_then(|u| u.total_usage);
                if let (Some(total), Some(system)) = (total, cpu.system_cpu_usage) {
                    let cpus = f64::from(cpu.online_cpus.unwrap_or(1));
                    if let Some((last_total, last_system)) =
                        self.previous.insert(container.clone(), (total, system))
                        && system > last_system
                    {
                        // Share of all CPUs, scaled to "percent of one core" like the native sampler.
                        let share =
                            total.saturating_sub(last_total) as f64 / (system - last_system) as f64;
                        sample.cpu_percent = Some(share * cpus * 100.0);
                    }
                }
            }
            if let Some(from) = from_metrics.get(node) {
                sample.open_fds = from.open_fds;
                sample.sessions = from.sessions;
                // The node's own socket counters, not the container's interface (which also
                // carries Prometheus's scrapes and the cluster's heartbeats).
                sample.rx_bytes_per_second = from.rx_bytes_per_second;
                sample.tx_bytes_per_second = from.tx_bytes_per_second;
                sample.memory_bytes = sample.memory_bytes.or(from.memory_bytes);
                sample.cpu_percent = sample.cpu_percent.or(from.cpu_percent);
            }
            samples.push(sample);
        }
        samples
    }
}
