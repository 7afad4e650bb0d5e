//! The output contract every subcommand keeps: with `--format json`, one JSON document on stdout
//! (typed here, with a `schema_version`); results on stdout, diagnostics and progress on stderr;
//! and one table of exit codes.
//!
//! JSON rules, enforced by [`to_json`] for every document: numbers are numbers with the unit in
//! the field name (`memory_bytes`), pairs are named fields (`{"soft": …, "hard": …}`), no Rust
//! enum shapes (`{"Ok": …}`), floats rounded to 3 decimals, and a value that is not known is
//! absent rather than `null` or `""`.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::diagnostic::LocatedDiagnostic;
use crate::engine::status::ClusterStatus;
use crate::host::socket_probe::SocketCost;
use crate::host::system_limits::SystemLimits;
use crate::host::{BindsFirst, HostCheck, HostFacts, Verdict};
use crate::plan::{Change, Plan};
use crate::report::summary::SloVerdict;

/// Bumped when a field of any document changes meaning or goes away (adding one does not).
pub const SCHEMA_VERSION: u32 = 1;

/// How a subcommand prints its result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    /// For people; may be colored.
    #[default]
    Text,
    /// One JSON document on stdout, nothing else there.
    Json,
}

/// How a run ended, as a process exit code: distinct outcomes get distinct codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done, or nothing to do.
    Success,
    /// The command itself failed (engine unreachable, I/O, a node never healthy, a lost worker).
    Failed,
    /// `plan --detailed-exitcode` only: the runtime differs from the file.
    ChangesPending,
    /// The cluster file is invalid (every command that reads it).
    InvalidFile,
    /// `validate --host`: this machine cannot run the cluster as written.
    HostCannotRun,
    /// `render --check`: the output directory is stale.
    Stale,
    /// Bad flags or arguments.
    Usage,
    /// `stress`: the run completed and breached the SLO.
    SloBreached,
}

impl Outcome {
    /// Every outcome, in the order of the table.
    pub const ALL: [Outcome; 8] = [
        Outcome::Success,
        Outcome::Failed,
        Outcome::ChangesPending,
        Outcome::InvalidFile,
        Outcome::HostCannotRun,
        Outcome::Stale,
        Outcome::Usage,
        Outcome::SloBreached,
    ];

    /// The process exit code.
    pub const fn code(self) -> u8 {
        match self {
            Outcome::Success => 0,
            Outcome::Failed => 1,
            // As terraform's `-detailed-exitcode`, so scripts written for it read it the same.
            Outcome::ChangesPending => 2,
            Outcome::InvalidFile => 3,
            Outcome::HostCannotRun => 4,
            Outcome::Stale => 5,
            // sysexits.h's EX_USAGE: clap's own 2 would collide with "changes pending".
            Outcome::Usage => 64,
            // As k6 for a breached threshold.
            Outcome::SloBreached => 99,
        }
    }

    /// One line on what the code means.
    pub const fn meaning(self) -> &'static str {
        match self {
            Outcome::Success => "success (valid, applied, nothing to do, SLO met)",
            Outcome::Failed => "the command failed (engine, I/O, health timeout, lost worker)",
            Outcome::ChangesPending => "plan --detailed-exitcode: apply would change something",
            Outcome::InvalidFile => "the cluster file is invalid",
            Outcome::HostCannotRun => "validate --host: this machine cannot run the cluster",
            Outcome::Stale => "render --check: the output directory is stale",
            Outcome::Usage => "bad flags or arguments",
            Outcome::SloBreached => "stress: the run completed and breached the SLO",
        }
    }

    /// The outcome of a finished stress run: an interrupted or broken run is a failure, not a
    /// verdict on the cluster.
    pub fn of_stress(verdict: &SloVerdict, interrupted: bool) -> Outcome {
        if verdict.passed {
            Outcome::Success
        } else if interrupted {
            Outcome::Failed
        } else if verdict.p99_ok == Some(false) || !verdict.error_rate_ok {
            Outcome::SloBreached
        } else {
            Outcome::Failed
        }
    }
}

/// The exit code table, as `--help` prints it.
pub fn exit_code_table() -> String {
    let mut table = String::from("Exit codes:\n");
    for outcome in Outcome::ALL {
        let _ = writeln!(table, "  {:>3}  {}", outcome.code(), outcome.meaning());
    }
    table
}

/// A cluster file that did not validate: the error every command that loads one returns, so
/// the binary can exit with [`Outcome::InvalidFile`].
#[derive(Debug, thiserror::Error)]
#[error("{path} is invalid; `erlmcp-gen validate {path}` lists why")]
pub struct InvalidFile {
    /// The file as named on the command line.
    pub path: String,
}

/// The document as printed: pretty JSON with rounded floats and no null or empty-string fields,
/// ending in a newline.
pub fn to_json<T: Serialize>(command: &'static str, body: &T) -> serde_json::Result<String> {
    Ok(serde_json::to_string_pretty(&document(command, body)?)? + "\n")
}

/// The same document on one line (`status --watch`: one document per refresh, JSON Lines).
pub fn to_json_line<T: Serialize>(command: &'static str, body: &T) -> serde_json::Result<String> {
    Ok(serde_json::to_string(&document(command, body)?)? + "\n")
}

fn document<T: Serialize>(command: &'static str, body: &T) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(body)?;
    normalize(&mut value);
    let mut document = serde_json::Map::new();
    document.insert("schema_version".into(), SCHEMA_VERSION.into());
    document.insert("command".into(), command.into());
    match value {
        Value::Object(fields) => document.extend(fields),
        other => {
            document.insert("result".into(), other);
        }
    }
    Ok(Value::Object(document))
}

/// Rounds floats to 3 decimals and drops fields that hold nothing, all the way down.
fn normalize(value: &mut Value) {
    match value {
        Value::Number(number) if number.is_f64() => {
            if let Some(rounded) = number
                .as_f64()
                .map(|f| (f * 1000.0).round() / 1000.0)
                .and_then(serde_json::Number::from_f64)
            {
                *number = rounded;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(normalize),
        Value::Object(fields) => {
            fields.retain(|_, v| !matches!(v, Value::Null) && v.as_str() != Some(""));
            fields.values_mut().for_each(normalize);
        }
        _ => {}
    }
}

/// `validate`.
#[derive(Debug, Serialize)]
pub struct ValidateOutput<'a> {
    /// The file as named.
    pub file: &'a str,
    /// No error (warnings allowed).
    pub valid: bool,
    /// Findings of severity error.
    pub errors: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Every finding, none cut.
    pub diagnostics: Vec<LocatedDiagnostic<'a>>,
    /// With `--host`.
    pub host: Option<HostOutput>,
}

/// `validate --host`: this machine judged against the cluster.
#[derive(Debug, Serialize)]
pub struct HostOutput {
    /// What was read.
    pub facts: HostFactsOutput,
    /// Each fact's verdict.
    pub checks: Vec<HostCheckOutput>,
    /// No check failed.
    pub fits: bool,
    /// Sessions the cluster holds at once (`[stress] connections`).
    pub sessions: u64,
    /// The limit with the smallest session ceiling.
    pub binds_first: Option<BindsFirst>,
}

impl HostOutput {
    /// From what `host` read and judged.
    pub fn new(facts: &HostFacts, checks: &[HostCheck], sessions: u64) -> Self {
        HostOutput {
            facts: HostFactsOutput::from(facts),
            checks: checks.iter().map(HostCheckOutput::from).collect(),
            fits: !checks.iter().any(|c| c.verdict == Verdict::Fail),
            sessions,
            binds_first: crate::host::binds_first(checks),
        }
    }
}

/// A soft and a hard limit.
#[derive(Debug, Serialize)]
pub struct Limits {
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// A port range, both ends included.
#[derive(Debug, Serialize)]
pub struct PortRange {
    /// Lowest port.
    pub first: u32,
    /// Highest port.
    pub last: u32,
}

/// The Docker engine as found: a version, or why none answered.
#[derive(Debug, Serialize)]
pub struct DockerFact {
    /// The engine's version.
    pub version: Option<String>,
    /// Why the engine did not answer.
    pub error: Option<String>,
    /// The socket that was asked.
    pub socket: String,
}

/// [`HostFacts`] in the JSON contract's shape.
#[derive(Debug, Serialize)]
pub struct HostFactsOutput {
    /// The engine.
    pub docker: DockerFact,
    /// This process's open-file limits.
    pub nofile: Option<Limits>,
    /// dockerd's hard open-file limit.
    pub dockerd_nofile_hard: Option<u64>,
    /// `net.ipv4.ip_local_port_range`.
    pub ephemeral_ports: Option<PortRange>,
    /// `net.core.somaxconn`.
    pub somaxconn: Option<u64>,
    /// Online CPUs.
    pub cpus: usize,
    /// Total memory.
    pub memory_bytes: Option<u64>,
    /// Machine-wide limits (this machine only).
    pub system: Option<SystemLimits>,
    /// `--probe`: what one loopback connection pair costs the kernel.
    pub socket_cost: Option<SocketCost>,
    /// `--probe`: why it could not measure.
    pub socket_probe_error: Option<String>,
    /// `--probe`: what one held session costs the load generator.
    pub generator_cost: Option<crate::stress::held_memory::HeldSessionCost>,
    /// `--probe`: why the generator's cost could not be measured.
    pub generator_probe_error: Option<String>,
    /// The nodes' memory as the last stress run of this cluster in `results/` measured it.
    pub recorded_run: Option<crate::host::memory_budget::RecordedRun>,
}

impl From<&HostFacts> for HostFactsOutput {
    fn from(facts: &HostFacts) -> Self {
        HostFactsOutput {
            docker: DockerFact {
                version: facts.docker.as_ref().ok().cloned(),
                error: facts.docker.as_ref().err().cloned(),
                socket: facts.docker_socket.clone(),
            },
            nofile: facts.nofile.map(|(soft, hard)| Limits { soft, hard }),
            dockerd_nofile_hard: facts.dockerd_nofile_hard,
            ephemeral_ports: facts
                .ephemeral_ports
                .map(|(first, last)| PortRange { first, last }),
            somaxconn: facts.somaxconn,
            cpus: facts.cpus,
            memory_bytes: facts.memory.map(|m| m.0),
            system: facts.system.clone(),
            socket_cost: facts.socket_cost.as_ref().and_then(|c| c.clone().ok()),
            socket_probe_error: facts.socket_cost.as_ref().and_then(|c| c.clone().err()),
            generator_cost: facts.generator_cost.as_ref().and_then(|c| c.clone().ok()),
            generator_probe_error: facts.generator_cost.as_ref().and_then(|c| c.clone().err()),
            recorded_run: facts.recorded_run.clone(),
        }
    }
}

/// One host check.
#[derive(Debug, Serialize)]
pub struct HostCheckOutput {
    /// What was checked.
    pub name: &'static str,
    /// `ok`, `warn` or `fail`.
    pub verdict: Verdict,
    /// What this machine has, in words.
    pub have: String,
    /// What the cluster needs, in words.
    pub need: String,
    /// What to do about it; absent when fine.
    pub fix: String,
    /// The most sessions this limit lets the machine hold, when it bounds them.
    pub ceiling_sessions: Option<u64>,
}

impl From<&HostCheck> for HostCheckOutput {
    fn from(check: &HostCheck) -> Self {
        HostCheckOutput {
            name: check.name,
            verdict: check.verdict,
            have: check.have.clone(),
            need: check.need.clone(),
            fix: check.fix.clone(),
            ceiling_sessions: check.ceiling,
        }
    }
}

/// `render`.
#[derive(Debug, Serialize)]
pub struct RenderOutput {
    /// The cluster file.
    pub file: String,
    /// The output directory.
    pub out_dir: String,
    /// `--check`: nothing written, only compared.
    pub check: bool,
    /// With `--check`: the directory matches the file.
    pub up_to_date: Option<bool>,
    /// Every rendered file.
    pub files: Vec<RenderedFileOutput>,
}

/// One rendered file.
#[derive(Debug, Serialize)]
pub struct RenderedFileOutput {
    /// Its path.
    pub path: String,
    /// `written`, `unchanged` (`--check`, up to date) or `stale` (`--check`).
    pub status: &'static str,
    /// With `--check`, for a stale file: the unified diff from what is there to what would be.
    pub diff: Option<String>,
}

/// `plan` (and the plan inside `apply`).
#[derive(Debug, Serialize)]
pub struct PlanOutput {
    /// Cluster name.
    pub cluster: String,
    /// Runtime.
    pub runtime: String,
    /// Any step changes something.
    pub has_changes: bool,
    /// The steps, in apply's order.
    pub steps: Vec<StepOutput>,
}

/// One resource's step.
#[derive(Debug, Serialize)]
pub struct StepOutput {
    /// `image`, `network`, `volume`, `coordinator`, `worker`, `prometheus`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// `create`, `recreate`, `remove` or `unchanged`.
    pub action: &'static str,
    /// Why, for a recreate.
    pub reason: Option<String>,
    /// The configuration hash it will have (absent for removals).
    pub config_hash: Option<String>,
}

impl From<&Plan> for PlanOutput {
    fn from(plan: &Plan) -> Self {
        PlanOutput {
            cluster: plan.cluster.clone(),
            runtime: plan.runtime.clone(),
            has_changes: plan.has_changes(),
            steps: plan
                .steps
                .iter()
                .map(|step| {
                    let (action, reason) = match &step.change {
                        Change::Create => ("create", None),
                        Change::Recreate { reason } => ("recreate", Some(reason.clone())),
                        Change::Remove => ("remove", None),
                        Change::Unchanged => ("unchanged", None),
                    };
                    StepOutput {
                        kind: step.kind.to_string(),
                        name: step.name.clone(),
                        action,
                        reason,
                        config_hash: step.config_hash.clone(),
                    }
                })
                .collect(),
        }
    }
}

/// `apply`.
#[derive(Debug, Serialize)]
pub struct ApplyOutput {
    /// The plan it carried out.
    pub plan: PlanOutput,
    /// Something was changed (false: nothing to do, nothing touched).
    pub applied: bool,
}

/// `status` (one document per refresh with `--watch`, one per line).
#[derive(Debug, Serialize)]
pub struct StatusOutput {
    /// Cluster name.
    pub cluster: String,
    /// Runtime.
    pub runtime: String,
    /// Per node.
    pub nodes: Vec<NodeStatusOutput>,
    /// Prometheus's view of its targets.
    pub prometheus: PrometheusOutput,
}

/// One node's status.
#[derive(Debug, Serialize)]
pub struct NodeStatusOutput {
    /// Node name.
    pub node: String,
    /// Container name or process id.
    pub name: String,
    /// Runtime state (`running`, `exited`, `missing`).
    pub state: String,
    /// Health (`healthy`, `unhealthy`, `starting`, `none`).
    pub health: String,
    /// Seconds since start.
    pub uptime_seconds: Option<u64>,
    /// Open MCP connections, from its `/metrics`.
    pub connections: Option<u64>,
    /// Resident memory, from its `/metrics`.
    pub rss_bytes: Option<u64>,
    /// The swarm node its task runs on (Swarm only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Why it is not running, when the runtime says (Swarm: a rejected or failed task's error,
    /// such as an image its engine could not pull).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Prometheus's targets, or why it could not be asked.
#[derive(Debug, Serialize)]
pub struct PrometheusOutput {
    /// Whether Prometheus answered, i.e. the nodes' metrics are being collected.
    pub collecting_metrics: bool,
    /// Per scrape target.
    pub targets: Option<Vec<TargetOutput>>,
    /// Why Prometheus did not answer.
    pub error: Option<String>,
}

/// One scrape target.
#[derive(Debug, Serialize)]
pub struct TargetOutput {
    /// Node.
    pub node: String,
    /// `up`, `down` or `unknown`.
    pub health: String,
    /// The last scrape's error.
    pub last_error: String,
}

impl From<&ClusterStatus> for StatusOutput {
    fn from(status: &ClusterStatus) -> Self {
        StatusOutput {
            cluster: status.cluster.clone(),
            runtime: status.runtime.clone(),
            nodes: status
                .nodes
                .iter()
                .map(|n| NodeStatusOutput {
                    node: n.node.clone(),
                    name: n.name.clone(),
                    state: n.state.clone(),
                    health: n.health.clone(),
                    uptime_seconds: n.uptime_seconds,
                    // Gauges arrive as floats from the exposition format; both count whole things.
                    connections: n.connections.map(|c| c.max(0.0).round() as u64),
                    rss_bytes: n.rss_bytes.map(|b| b.max(0.0).round() as u64),
                    host: n.host.clone(),
                    error: n.error.clone(),
                })
                .collect(),
            prometheus: match &status.prometheus {
                Ok(targets) => PrometheusOutput {
                    collecting_metrics: true,
                    targets: Some(
                        targets
                            .iter()
                            .map(|t| TargetOutput {
                                node: t.node.clone(),
                                health: t.health.clone(),
                                last_error: t.last_error.clone(),
                            })
                            .collect(),
                    ),
                    error: None,
                },
                Err(error) => PrometheusOutput {
                    collecting_metrics: false,
                    targets: None,
                    error: Some(error.clone()),
                },
            },
        }
    }
}

/// `init`.
#[derive(Debug, Serialize)]
pub struct InitOutput<'a, S: Serialize> {
    /// Where the file went (`-`: stdout, then the file's text is in `text`).
    pub path: String,
    /// The sizes chosen and the facts behind them.
    pub sizing: &'a S,
    /// The file's text, when written to stdout.
    pub text: Option<String>,
}

/// One runtime's run of `stress --compare`.
#[derive(Debug, Serialize)]
pub struct CompareRunOutput {
    /// Runtime.
    pub runtime: String,
    /// Its output directory.
    pub out_dir: String,
    /// `success`, `slo_breached` or `failed`.
    pub outcome: &'static str,
}

/// `stress --compare`.
#[derive(Debug, Serialize)]
pub struct CompareOutput<'a, R: Serialize> {
    /// The parent output directory.
    pub out_dir: String,
    /// Each runtime's run.
    pub runs: Vec<CompareRunOutput>,
    /// The second runtime's overhead against the first, per figure.
    pub overhead: &'a R,
}

/// `logs` without `--follow` (with it: one [`LogLineOutput`] per line, JSON Lines).
#[derive(Debug, Serialize)]
pub struct LogsOutput<'a> {
    /// Every line, in time order.
    pub lines: Vec<LogLineOutput<'a>>,
}

/// One log line.
#[derive(Debug, Serialize)]
pub struct LogLineOutput<'a> {
    /// Node name, or `prometheus`.
    pub node: &'a str,
    /// When it was written (RFC 3339), when known.
    pub time: Option<String>,
    /// The line.
    pub text: &'a str,
}

impl<'a> From<&'a crate::logs::LogLine> for LogLineOutput<'a> {
    fn from(line: &'a crate::logs::LogLine) -> Self {
        LogLineOutput {
            node: &line.source,
            time: line.at.map(|at| at.to_string()),
            text: &line.text,
        }
    }
}

/// `down`.
#[derive(Debug, Serialize)]
pub struct DownOutput {
    /// Cluster name.
    pub cluster: String,
    /// Runtime.
    pub runtime: String,
    /// Volumes were removed too.
    pub volumes_removed: bool,
}

/// `completions SHELL`: the script a shell sources, as the text it prints would be.
#[derive(Debug, Serialize)]
pub struct CompletionsOutput {
    /// `bash`, `zsh` or `fish`.
    pub shell: &'static str,
    /// The completion script.
    pub script: String,
}

/// `man`: the man page's roff source, as the text it prints would be.
#[derive(Debug, Serialize)]
pub struct ManOutput {
    /// Section of the manual the page belongs in.
    pub section: u8,
    /// The page (roff).
    pub roff: String,
}

/// `stress` on one runtime.
#[derive(Debug, Serialize)]
pub struct StressOutput<'a, S: Serialize> {
    /// Where every file went.
    pub out_dir: String,
    /// The HTML report.
    pub report: String,
    /// `success`, `slo_breached` or `failed`.
    pub outcome: &'static str,
    /// The run's summary (as `summary.json`).
    pub summary: &'a S,
}

impl Outcome {
    /// The outcome's name in JSON documents.
    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failed => "failed",
            Outcome::ChangesPending => "changes_pending",
            Outcome::InvalidFile => "invalid_file",
            Outcome::HostCannotRun => "host_cannot_run",
            Outcome::Stale => "stale",
            Outcome::Usage => "usage",
            Outcome::SloBreached => "slo_breached",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_distinct() {
        let mut codes: Vec<u8> = Outcome::ALL.iter().map(|o| o.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Outcome::ALL.len());
    }

    #[test]
    fn documents_round_floats_and_drop_empty_fields() {
        #[derive(Serialize)]
        struct Body {
            ratio: f64,
            gone: Option<u32>,
            empty: String,
            pair: Limits,
        }
        let text = to_json(
            "test",
            &Body {
                ratio: 0.659_999_999_999_999_9,
                gone: None,
                empty: String::new(),
                pair: Limits { soft: 1, hard: 2 },
            },
        )
        .unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "schema_version": SCHEMA_VERSION,
                "command": "test",
                "ratio": 0.66,
                "pair": {"soft": 1, "hard": 2},
            })
        );
    }

    #[test]
    fn a_breached_slo_is_not_a_failed_run() {
        let verdict = |p99_ok, error_rate_ok, passed| SloVerdict {
            slo: crate::stress::Slo {
                p99_ms: 30.0,
                max_error_rate: 0.001,
            },
            p99_ok,
            error_rate_ok,
            passed,
        };
        for (v, interrupted, outcome) in [
            (verdict(Some(true), true, true), false, Outcome::Success),
            (
                verdict(Some(false), true, false),
                false,
                Outcome::SloBreached,
            ),
            (
                verdict(Some(true), false, false),
                false,
                Outcome::SloBreached,
            ),
            (verdict(Some(false), true, false), true, Outcome::Failed),
            // Passing figures but a lost worker: the run, not the cluster, failed.
            (verdict(Some(true), true, false), false, Outcome::Failed),
            (verdict(None, true, false), false, Outcome::Failed),
        ] {
            assert_eq!(Outcome::of_stress(&v, interrupted), outcome, "{v:?}");
        }
    }
}
