//! A worker run as a Swarm job (`erlmcp-gen stress-worker --shard-from-env`): a service has no
//! stdin, so the shard spec comes in an environment variable and the `go` line becomes the
//! spec's wall-clock start time. Whatever happens it exits 0 and reports a failure as a
//! [`WorkerEvent::Failed`] line: Docker 20.10 retries a job task that exits non-zero even under
//! restart condition `none`, and a retried shard would load the cluster twice.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::AsyncWriteExt as _;
use tokio::sync::{mpsc, watch};

use super::machine::{process_cpu_seconds, process_peak_memory_bytes};
use super::worker::{ShardSpec, WorkerEvent, run_shard};

/// The environment variable that carries a job worker's shard spec (the stdin protocol's JSON).
pub const SHARD_ENV: &str = "ERLMCP_STRESS_SHARD";

/// How late after the shared start a job worker may still begin. A later one (Swarm scheduled it
/// late, or retried it after the run) would skew the merged timeline, so it reports instead.
pub const LATE_START_LIMIT: Duration = Duration::from_secs(2);

/// The shard spec in `value` (the content of [`SHARD_ENV`]), checked for what a job needs.
pub fn parse_env_shard(value: Option<&str>) -> Result<ShardSpec, String> {
    let value = value.ok_or_else(|| format!("{SHARD_ENV} is not set"))?;
    let spec: ShardSpec =
        serde_json::from_str(value).map_err(|e| format!("{SHARD_ENV} is not a shard spec: {e}"))?;
    if spec.start_at_unix_ms.is_none() {
        return Err(format!(
            "{SHARD_ENV} names no start time (`start_at_unix_ms`); a job worker has no `go` line"
        ));
    }
    Ok(spec)
}

/// How long to wait before starting at `start_at_unix_ms`, given the time `now_unix_ms`: an
/// error when it is more than [`LATE_START_LIMIT`] past.
pub fn wait_before_start(start_at_unix_ms: u64, now_unix_ms: u64) -> Result<Duration, String> {
    match start_at_unix_ms.checked_sub(now_unix_ms) {
        Some(ahead) => Ok(Duration::from_millis(ahead)),
        None => {
            let late = Duration::from_millis(now_unix_ms - start_at_unix_ms);
            if late > LATE_START_LIMIT {
                Err(format!(
                    "started {:.1} s after the run's shared start (at most {} s allowed); not \
                     running the shard",
                    late.as_secs_f64(),
                    LATE_START_LIMIT.as_secs()
                ))
            } else {
                Ok(Duration::ZERO)
            }
        }
    }
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Replaces each named target's IP with the first IPv4 address its name resolves to (on the
/// overlay network, where the parent cannot look it up).
async fn resolve_targets(spec: &mut ShardSpec) -> Result<(), String> {
    for target in &mut spec.targets {
        let Some(host) = target.host.clone() else {
            continue;
        };
        let found: Vec<std::net::SocketAddr> =
            tokio::net::lookup_host((host.as_str(), target.tcp_addr.port()))
                .await
                .map_err(|e| format!("resolving {host}: {e}"))?
                .collect();
        let addr = found
            .iter()
            .find(|a| a.is_ipv4())
            .or(found.first())
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        target.tcp_addr.set_ip(addr.ip());
        if let Some(http) = &mut target.http_addr {
            http.set_ip(addr.ip());
        }
    }
    Ok(())
}

async fn emit(event: &WorkerEvent) {
    let mut line = serde_json::to_string(event).expect("worker events serialize");
    line.push('\n');
    let mut stdout = tokio::io::stdout();
    // Nobody to tell if stdout is gone.
    let _ = stdout.write_all(line.as_bytes()).await;
    let _ = stdout.flush().await;
}

/// Runs the shard in [`SHARD_ENV`]; its events, or its failure, as JSON lines on stdout.
async fn run_job(value: Option<String>) -> Result<(), String> {
    let mut spec = parse_env_shard(value.as_deref())?;
    resolve_targets(&mut spec).await?;
    let start_at = spec.start_at_unix_ms.unwrap_or_default();
    let wait = wait_before_start(start_at, now_unix_ms())?;
    // Removing the job service stops its container with SIGINT (the job's stop signal).
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    tokio::time::sleep(wait).await;
    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let shard = tokio::spawn(run_shard(spec, stop_rx, events_tx));
    while let Some(event) = events_rx.recv().await {
        emit(&event).await;
    }
    shard
        .await
        .map_err(|e| format!("the shard ended abnormally: {e}"))?;
    emit(&WorkerEvent::Done {
        cpu_seconds: process_cpu_seconds("self").ok(),
        peak_memory_bytes: process_peak_memory_bytes("self").ok(),
    })
    .await;
    Ok(())
}

/// `erlmcp-gen stress-worker --shard-from-env`: never fails, see the module doc.
pub fn job_main() {
    let value = std::env::var(SHARD_ENV).ok();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let event = WorkerEvent::Failed {
                error: format!("no async runtime: {e}"),
            };
            println!("{}", serde_json::to_string(&event).unwrap_or_default());
            return;
        }
    };
    runtime.block_on(async {
        if let Err(error) = run_job(value).await {
            emit(&WorkerEvent::Failed { error }).await;
        }
    });
    runtime.shutdown_background();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::TargetKind;
    use crate::stress::worker::ShardTarget;

    fn spec() -> ShardSpec {
        ShardSpec {
            worker: 1,
            transport: Default::default(),
            targets: vec![ShardTarget {
                node: "node1".into(),
                tcp_addr: "0.0.0.0:7000".parse().unwrap(),
                http_addr: Some("0.0.0.0:8080".parse().unwrap()),
                kind: TargetKind::Mcp,
                sessions: 10,
                host: Some("tasks.erlmcp-node1".into()),
            }],
            sources: Vec::new(),
            ramp_ms: 1000,
            hold_ms: 5000,
            rate: 10.0,
            connect_timeout_ms: 500,
            request_timeout_ms: 500,
            max_attempts_per_slot: 5,
            own_process: true,
            start_at_unix_ms: Some(1_000_000),
        }
    }

    #[test]
    fn the_env_shard_is_the_stdin_protocols_json_with_a_start_time() {
        let json = serde_json::to_string(&spec()).unwrap();
        assert!(json.contains("\"host\":\"tasks.erlmcp-node1\""), "{json}");
        assert_eq!(parse_env_shard(Some(&json)).unwrap(), spec());
    }

    #[test]
    fn an_env_shard_that_is_missing_unreadable_or_without_start_time_is_an_error() {
        assert!(parse_env_shard(None).unwrap_err().contains("is not set"));
        assert!(
            parse_env_shard(Some("{"))
                .unwrap_err()
                .contains("is not a shard spec")
        );
        let mut no_start = spec();
        no_start.start_at_unix_ms = None;
        let json = serde_json::to_string(&no_start).unwrap();
        assert!(
            parse_env_shard(Some(&json))
                .unwrap_err()
                .contains("no start time")
        );
    }

    #[test]
    fn a_job_waits_for_the_start_and_refuses_to_run_well_after_it() {
        assert_eq!(
            wait_before_start(10_000, 7_500),
            Ok(Duration::from_millis(2_500))
        );
        assert_eq!(wait_before_start(10_000, 11_000), Ok(Duration::ZERO));
        // A retried task or one scheduled long after the others.
        assert!(
            wait_before_start(10_000, 10_000 + 60_000)
                .unwrap_err()
                .contains("after the run's shared start")
        );
    }
}
