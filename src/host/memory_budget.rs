//! The machine's memory against everything the held sessions cost it at once: the kernel's
//! sockets (measured by [`super::socket_probe`]), the load generator's sessions (measured by
//! [`crate::stress::held_memory`]) and the nodes' (the last stress run of this cluster file
//! recorded in `results/`, or else the nodes' `memory_limit` summed, as a bound), against
//! `MemAvailable`. Each part alone may fit while all three together do not.

use std::path::Path;

use serde::Serialize;

use super::socket_probe::SocketCost;
use super::system_limits::{Demand, SystemLimits, grouped};
use super::{HostCheck, Verdict};
use crate::config::units::ByteSize;
use crate::stress::DEFAULT_SESSIONS_PER_WORKER;
use crate::stress::held_memory::HeldSessionCost;

/// The check's name, as printed and in the JSON output.
pub const CHECK_NAME: &str = "memory of all sessions together (kernel + generator + nodes)";

/// The warn line, as a fraction of the memory usable (`MemAvailable` less `vm.min_free_kbytes`):
/// MemAvailable counts the page cache and reclaimable slab as free, and the kernel starts
/// reclaiming them (kswapd, then allocation stalls) well before it reaches zero. The one run that
/// crossed it here (2026-12-02, `clusters/bench-1m.toml`) went into reclaim at about 900,000
/// sessions, when these three parts summed to about 15.5 GiB, 69 % of the 22.4 GiB available
/// that day; two thirds keeps below that.
const WARN_NUMERATOR: u64 = 2;
const WARN_DENOMINATOR: u64 = 3;

/// Summaries read at most from `results/`, newest first (names end in a UTC time).
const MAX_SUMMARIES: usize = 200;

/// What an earlier stress run of this cluster measured of the nodes' memory.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordedRun {
    /// The `summary.json` it came from.
    pub summary: String,
    /// When that run started, seconds since the Unix epoch.
    pub started_unix: u64,
    /// Sessions held at its peak.
    pub sessions: u64,
    /// Every node's peak resident memory, summed, bytes.
    pub nodes_peak_bytes: u64,
    /// The generator's peak memory (parent and workers), bytes, when recorded.
    pub generator_peak_bytes: Option<u64>,
    /// Whether that run loaded the same bytes as the cluster file judged now.
    pub same_file: bool,
}

impl RecordedRun {
    /// The nodes' bytes per session at that run's peak.
    pub fn node_bytes_per_session(&self) -> u64 {
        self.nodes_peak_bytes / self.sessions.max(1)
    }

    fn date(&self) -> String {
        jiff::Timestamp::from_second(self.started_unix as i64).map_or_else(
            |_| format!("Unix time {}", self.started_unix),
            |t| t.strftime("%Y-%m-%d").to_string(),
        )
    }
}

/// The nodes' memory of one `summary.json`, when it measured them at a peak with sessions.
pub fn recorded_run(
    summary: &serde_json::Value,
    path: &str,
    sha256: Option<&str>,
) -> Option<RecordedRun> {
    let memory = &summary["memory"];
    let sessions = memory["sessions"].as_u64().filter(|s| *s > 0)?;
    Some(RecordedRun {
        summary: path.to_string(),
        started_unix: summary["started_unix"].as_u64()?,
        sessions,
        nodes_peak_bytes: memory["nodes_peak_bytes"].as_u64()?,
        generator_peak_bytes: memory["generator_peak_bytes"].as_u64(),
        same_file: sha256.is_some_and(|sha| summary["cluster_file"]["sha256"] == sha),
    })
}

/// The newest run of cluster `name` under `results` (`stress`'s default `results/<name>-<time>/`)
/// that measured the nodes: of the same file (`sha256`) when there is one, else of any version.
pub fn last_recorded_run(results: &Path, name: &str, sha256: Option<&str>) -> Option<RecordedRun> {
    let prefix = format!("{name}-");
    let mut dirs: Vec<_> = std::fs::read_dir(results)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|f| f.to_str()).is_some_and(|f| {
                f.strip_prefix(&prefix)
                    .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()))
            })
        })
        .collect();
    dirs.sort();
    let runs: Vec<RecordedRun> = dirs
        .iter()
        .rev()
        .take(MAX_SUMMARIES)
        .filter_map(|dir| {
            let path = dir.join("summary.json");
            let text = std::fs::read_to_string(&path).ok()?;
            let summary: serde_json::Value = serde_json::from_str(&text).ok()?;
            (summary["cluster"] == name && summary["interrupted"] != true)
                .then(|| recorded_run(&summary, &path.display().to_string(), sha256))?
        })
        .collect();
    let newest = |same: bool| {
        runs.iter()
            .filter(|r| r.same_file || !same)
            .max_by_key(|r| r.started_unix)
            .cloned()
    };
    newest(true).or_else(|| newest(false))
}

/// What the nodes' part is taken from.
#[derive(Clone, Copy)]
enum NodePart<'a> {
    Recorded(&'a RecordedRun),
    /// No run recorded: the nodes' `memory_limit`, summed, bounds it.
    LimitBound(u64),
}

/// Everything the held sessions cost this machine's memory, against `MemAvailable`.
pub fn judge(
    limits: &SystemLimits,
    kernel: Option<&SocketCost>,
    generator: Option<&HeldSessionCost>,
    recorded: Option<&RecordedRun>,
    demand: Demand,
) -> HostCheck {
    let sessions = demand.sessions;
    let nodes = match recorded {
        Some(run) => NodePart::Recorded(run),
        None => NodePart::LimitBound(demand.node_memory_limits),
    };
    let nodes_text = match nodes {
        NodePart::Recorded(run) => format!(
            "nodes {} B a session (measured by the stress run of {} at {} sessions{}: {})",
            grouped(run.node_bytes_per_session()),
            run.date(),
            grouped(run.sessions),
            if run.same_file {
                ""
            } else {
                ", an earlier version of this file"
            },
            run.summary
        ),
        NodePart::LimitBound(total) => format!(
            "nodes at most {} (their `memory_limit`, summed: an upper bound, not a measurement; \
             no stress run of this cluster is recorded in results/)",
            ByteSize(total).approx()
        ),
    };
    let (Some(kernel), Some(generator)) = (kernel, generator) else {
        return HostCheck {
            name: CHECK_NAME,
            have: "not measured".into(),
            need: format!(
                "{} sessions × (the kernel's slab per loopback pair + the generator's bytes per held \
                 session) + {nodes_text}",
                grouped(sessions)
            ),
            verdict: Verdict::Warn,
            fix: "`validate --host --probe` measures the kernel's and the generator's parts (about a \
                  second of loopback connections and sessions)"
                .into(),
            ceiling: None,
        };
    };
    let Some(available) = limits.mem_available else {
        return HostCheck {
            name: CHECK_NAME,
            have: "MemAvailable unknown (/proc/meminfo)".into(),
            need: String::new(),
            verdict: Verdict::Warn,
            fix: "could not read /proc/meminfo".into(),
            ceiling: None,
        };
    };
    let workers = sessions
        .div_ceil(u64::from(DEFAULT_SESSIONS_PER_WORKER))
        .max(1);
    let generator_fixed = workers * generator.process_base_bytes;
    let (node_per_session, node_fixed) = match nodes {
        NodePart::Recorded(run) => (run.node_bytes_per_session(), 0),
        NodePart::LimitBound(total) => (0, total),
    };
    let per_session = kernel.slab_bytes_per_pair + generator.bytes_per_session + node_per_session;
    let fixed = generator_fixed + node_fixed;
    let parts = [
        ("the kernel's", sessions * kernel.slab_bytes_per_pair),
        (
            "the generator's",
            sessions * generator.bytes_per_session + generator_fixed,
        ),
        ("the nodes'", sessions * node_per_session + node_fixed),
    ];
    let need = parts.iter().map(|(_, bytes)| bytes).sum::<u64>();
    let (largest, largest_bytes) = parts
        .iter()
        .max_by_key(|(_, bytes)| *bytes)
        .copied()
        .unwrap_or_default();
    let reserve = limits.min_free_bytes.unwrap_or(0);
    let usable = available.saturating_sub(reserve);
    let warn_line = usable / WARN_DENOMINATOR * WARN_NUMERATOR;
    let ceiling = warn_line.saturating_sub(fixed) / per_session.max(1);
    let verdict = if need > usable {
        Verdict::Fail
    } else if need > warn_line {
        Verdict::Warn
    } else {
        Verdict::Ok
    };
    let approx = |bytes: u64| ByteSize(bytes).approx();
    HostCheck {
        name: CHECK_NAME,
        have: format!(
            "{} available (MemAvailable), {} of it usable above vm.min_free_kbytes; reclaim risk \
             above two thirds of that, {}",
            approx(available),
            approx(usable),
            approx(warn_line)
        ),
        need: format!(
            "{} for {} sessions: kernel {} (measured {} B of slab a loopback pair), generator {} \
             (measured {} B a held session, {} sessions in-process; plus {} workers × {} fixed), {}",
            approx(need),
            grouped(sessions),
            approx(parts[0].1),
            grouped(kernel.slab_bytes_per_pair),
            approx(parts[1].1),
            grouped(generator.bytes_per_session),
            grouped(generator.sessions),
            workers,
            approx(generator.process_base_bytes),
            nodes_text
        ),
        verdict,
        fix: match verdict {
            Verdict::Ok => String::new(),
            _ => format!(
                "fewer sessions (about {} fit below the reclaim line here: `[stress] connections = {}`), \
                 or {} more available memory (a larger machine, or less else running on this one); \
                 the largest part is {largest} ({}): {}",
                grouped(ceiling),
                ceiling,
                approx(need.saturating_sub(warn_line)),
                approx(largest_bytes),
                match nodes {
                    NodePart::LimitBound(_) if largest == "the nodes'" => {
                        "that is only their `memory_limit`: a stress run of this file records what they \
                         use (then `validate` takes that instead)"
                    }
                    _ => knob(largest),
                }
            ),
        },
        ceiling: Some(ceiling),
    }
}

/// What lowers the largest part.
fn knob(largest: &str) -> &'static str {
    match largest {
        "the kernel's" => {
            "socket memory is the kernel's and no `memory_limit` bounds it; both ends of every \
             loopback session are on this machine, so running the generator on another machine \
             (a Swarm's jobs, docs/SCALING.md) leaves this one about half"
        }
        "the generator's" => {
            "run the generator's workers on another machine (a Swarm's jobs, docs/SCALING.md), \
             or hold fewer sessions per machine"
        }
        _ => "spread the nodes over more machines (docs/SCALING.md), or fewer sessions per node",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::system_limits::tests::{cost, demand, limits};
    use crate::host::system_limits::{self, Conntrack, LoopbackTracking};

    /// The 1,000,000-session stage of 2026-12-02: 63 nodes at `memory_limit = "128MiB"`, the
    /// conntrack table raised by hand to 2,400,000.
    fn stage_1m() -> (SystemLimits, Demand) {
        let mut limits = limits();
        limits.conntrack = Some(Conntrack {
            max: 2_400_000,
            count: 258,
            loopback: LoopbackTracking::Tracked("measured: 1.00".into()),
            time_wait_seconds: Some(120),
        });
        let demand = Demand {
            node_memory_limits: 63 * (128 << 20),
            ..demand(1_000_000)
        };
        (limits, demand)
    }

    /// The generator as that stage measured it (6,852 B a session), with a worker's 3 MiB.
    fn generator(bytes_per_session: u64) -> HeldSessionCost {
        HeldSessionCost {
            sessions: 3_000,
            bytes_per_session,
            process_base_bytes: 3 << 20,
            elapsed_ms: 600,
        }
    }

    /// The nodes as that stage measured them: 2,040 B a session at its peak of 962,005.
    fn recorded(same_file: bool) -> RecordedRun {
        RecordedRun {
            summary: "results/erlmcp-bench-1m-20261202-151200/summary.json".into(),
            started_unix: 1_796_224_320,
            sessions: 962_005,
            nodes_peak_bytes: 962_005 * 2_040,
            generator_peak_bytes: Some(962_005 * 6_852),
            same_file,
        }
    }

    #[test]
    fn the_million_session_stage_passed_every_old_check_and_fails_the_sum_s_warn_line() {
        let (limits, demand) = stage_1m();
        let kernel = cost(9_552, 0);
        let old = system_limits::judge(&limits, Some(&kernel), Some((32768, 60999)), demand);
        for check in &old {
            assert_eq!(check.verdict, Verdict::Ok, "{check:?}");
        }
        let run = recorded(true);
        let check = judge(
            &limits,
            Some(&kernel),
            Some(&generator(6_852)),
            Some(&run),
            demand,
        );
        // 1,000,000 × 18,444 B + 63 workers × 3 MiB = 17.4 GiB: inside the 22.3 GiB usable,
        // past two thirds of it (14.9 GiB), where that stage went into reclaim.
        assert_eq!(check.verdict, Verdict::Warn, "{check:?}");
        let usable = 23_491_380 * 1024 - 67_584 * 1024;
        let fixed = 63 * (3 << 20);
        assert_eq!(check.ceiling, Some((usable / 3 * 2 - fixed) / 18_444));
        assert!(check.ceiling.unwrap() < 900_000, "{check:?}");
        assert!(
            check
                .need
                .starts_with("17.4GiB for 1,000,000 sessions: kernel 8.9GiB"),
            "{}",
            check.need
        );
        assert!(
            check
                .need
                .contains("generator 6.6GiB (measured 6,852 B a held session"),
            "{}",
            check.need
        );
        assert!(check.need.contains("nodes 2,040 B a session (measured by the stress run of 2026-12-02 at 962,005 sessions: results/"), "{}", check.need);
        assert!(
            check
                .have
                .starts_with("22.4GiB available (MemAvailable), 22.3GiB of it usable"),
            "{}",
            check.have
        );
        assert!(
            check
                .fix
                .contains("the largest part is the kernel's (8.9GiB)"),
            "{}",
            check.fix
        );
        assert!(
            check.fix.contains("`[stress] connections = "),
            "{}",
            check.fix
        );
        // And it binds first: every other ceiling is higher.
        let mut all = old;
        all.push(check.clone());
        assert_eq!(crate::host::binds_first(&all).unwrap().limit, CHECK_NAME);
    }

    #[test]
    fn without_a_recorded_run_the_nodes_limits_bound_their_part_and_say_so() {
        let (limits, demand) = stage_1m();
        let check = judge(
            &limits,
            Some(&cost(9_552, 0)),
            Some(&generator(6_852)),
            None,
            demand,
        );
        // 16,404 B a session + 7.9 GiB of node limits: past everything available.
        assert_eq!(check.verdict, Verdict::Fail, "{check:?}");
        assert!(check.need.contains("nodes at most 7.9GiB (their `memory_limit`, summed: an upper bound, not a measurement"), "{}", check.need);
        let fixed = 63 * (3 << 20) + 63 * (128 << 20);
        let usable = 23_491_380 * 1024 - 67_584 * 1024;
        assert_eq!(check.ceiling, Some((usable / 3 * 2 - fixed) / 16_404));
        // Where the nodes' limits are the largest part, the fix says they are only a bound.
        let generous = Demand {
            node_memory_limits: 63 * (320 << 20),
            ..demand
        };
        let kernel = cost(9_552, 0);
        let check = judge(
            &limits,
            Some(&kernel),
            Some(&generator(6_852)),
            None,
            generous,
        );
        assert!(
            check.fix.contains("the largest part is the nodes'"),
            "{}",
            check.fix
        );
        assert!(
            check.fix.contains("a stress run of this file records"),
            "{}",
            check.fix
        );
    }

    #[test]
    fn a_quarter_million_sessions_fit_and_an_unprobed_machine_is_not_guessed() {
        let (limits, _) = stage_1m();
        let quarter = Demand {
            node_memory_limits: 16 * (128 << 20),
            ..demand(250_000)
        };
        let run = recorded(true);
        let check = judge(
            &limits,
            Some(&cost(9_552, 0)),
            Some(&generator(6_852)),
            Some(&run),
            quarter,
        );
        assert_eq!(
            (check.verdict, check.fix.as_str()),
            (Verdict::Ok, ""),
            "{check:?}"
        );
        let unprobed = judge(&limits, None, None, Some(&run), quarter);
        assert_eq!((unprobed.verdict, unprobed.ceiling), (Verdict::Warn, None));
        assert_eq!(unprobed.have, "not measured");
        assert!(unprobed.fix.contains("--probe"));
    }

    fn summary(cluster: &str, started: u64, sha: &str, interrupted: bool) -> String {
        serde_json::json!({
            "cluster": cluster,
            "started_unix": started,
            "interrupted": interrupted,
            "cluster_file": {"path": "clusters/x.toml", "sha256": sha, "slo_p99": "50ms"},
            "memory": {"sessions": 1000, "nodes_peak_bytes": 2_000_000u64, "generator_peak_bytes": 7_000_000u64},
        })
        .to_string()
    }

    #[test]
    fn the_newest_run_of_the_same_file_is_taken_before_a_newer_run_of_another_version() {
        let results = tempfile::tempdir().unwrap();
        // (directory, cluster, started, file sha, interrupted)
        let runs = [
            ("bench-20261201-100000", "bench", 100, "aaa", false),
            ("bench-20261202-100000", "bench", 200, "bbb", false),
            ("bench-20261203-100000", "bench", 300, "aaa", true),
            ("bench-big-20261204-100000", "bench-big", 400, "aaa", false),
        ];
        for (dir, cluster, started, sha, interrupted) in runs {
            let dir = results.path().join(dir);
            std::fs::create_dir(&dir).unwrap();
            std::fs::write(
                dir.join("summary.json"),
                summary(cluster, started, sha, interrupted),
            )
            .unwrap();
        }
        let run = last_recorded_run(results.path(), "bench", Some("aaa")).unwrap();
        assert_eq!((run.started_unix, run.same_file), (100, true));
        assert_eq!(run.node_bytes_per_session(), 2_000);
        assert_eq!(run.generator_peak_bytes, Some(7_000_000));
        let other = last_recorded_run(results.path(), "bench", Some("ccc")).unwrap();
        assert_eq!((other.started_unix, other.same_file), (200, false));
        assert_eq!(last_recorded_run(results.path(), "nothing", None), None);
        // A summary from before the memory figures, or with no sessions, records nothing.
        let old =
            serde_json::json!({"cluster": "bench", "started_unix": 1, "memory": {"sessions": 0}});
        assert_eq!(recorded_run(&old, "x", None), None);
    }
}
