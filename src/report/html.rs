//! The self-contained `report.html`: summary table and SVG charts, no script, no network.

use super::summary::StressSummary;
use super::svg::{Series, bar_chart, line_chart};
use crate::stress::resources::NodeSample;
use crate::stress::stats::Timeline;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:sans-serif;max-width:760px;margin:1em auto;color:#111}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}\
.pass{color:#060;font-weight:bold}.fail{color:#a00;font-weight:bold}svg.chart{display:block;margin:1em 0;max-width:100%;height:auto}\
@media print{svg.chart{page-break-inside:avoid}}";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn ms(v: Option<f64>) -> String {
    v.map_or("n/a".to_string(), |v| format!("{v:.3} ms"))
}

/// Renders the whole report.
pub fn report_html(
    summary: &StressSummary,
    timeline: &Timeline,
    samples: &[(u64, NodeSample)],
) -> String {
    let mut out = String::new();
    let title = format!(
        "erlmcp-gen stress: {} ({})",
        summary.cluster, summary.runtime
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    summary_table(&mut out, summary);
    for chart in charts(timeline, samples) {
        out.push_str(&chart);
        out.push('\n');
    }
    out.push_str("</body></html>\n");
    out
}

fn summary_table(out: &mut String, s: &StressSummary) {
    let verdict = if s.verdict.passed {
        "<span class=\"pass\">PASS</span>"
    } else {
        "<span class=\"fail\">FAIL</span>"
    };
    let mut rows: Vec<(&str, String)> = vec![
        (
            "Command",
            format!("<code>{}</code>", escape(&s.command_line)),
        ),
        ("Transport", escape(s.transport_text())),
        (
            "Machine",
            escape(&format!(
                "{} cores, {} MiB, kernel {}",
                s.machine.cores,
                s.machine.memory_bytes.map_or(0, |b| b / (1024 * 1024)),
                s.machine.kernel.as_deref().unwrap_or("?")
            )),
        ),
        (
            "Plan",
            format!(
                "{} sessions, ramp {:.0} s, hold {:.0} s, {} req/s{}",
                s.connections,
                s.ramp_seconds,
                s.duration_seconds,
                s.rate,
                if s.interrupted { " (interrupted)" } else { "" }
            ),
        ),
        (
            "Sessions",
            format!(
                "peak {} of {}, fewest during hold {}, opened {}, failed {}",
                s.sessions.peak_open,
                s.sessions.target,
                s.sessions
                    .min_open_during_hold
                    .map_or("n/a".into(), |v| v.to_string()),
                s.sessions.opened,
                s.sessions.failed
            ),
        ),
        (
            "Requests",
            format!(
                "sent {}, ok {}, failed {} ({:.4} %)",
                s.requests.sent,
                s.requests.ok,
                s.requests.failed,
                s.requests.error_rate * 100.0
            ),
        ),
        (
            "Throughput",
            format!(
                "{:.1} req/s over {:.1} s",
                s.requests.throughput_rps, s.hold_seconds
            ),
        ),
        (
            "Latency",
            format!(
                "p50 {}, p95 {}, p99 {}, p99.9 {}, max {}",
                ms(s.latency_ms.p50),
                ms(s.latency_ms.p95),
                ms(s.latency_ms.p99),
                ms(s.latency_ms.p999),
                ms(s.latency_ms.max)
            ),
        ),
        (
            "Generator",
            format!(
                "{} workers; CPU {:.2} s in all ({} µs per request), {} s in the hold ({} µs per request)",
                s.generator.workers,
                s.generator.cpu_seconds,
                s.generator
                    .cpu_us_per_request
                    .map_or("n/a".into(), |v| format!("{v:.1}")),
                s.generator
                    .hold_cpu_seconds
                    .map_or("n/a".into(), |v| format!("{v:.2}")),
                s.generator
                    .hold_cpu_us_per_request
                    .map_or("n/a".into(), |v| format!("{v:.1}"))
            ),
        ),
        (
            "SLO",
            format!(
                "p99 ≤ {} ms, error rate ≤ {}: {verdict}",
                s.verdict.slo.p99_ms, s.verdict.slo.max_error_rate
            ),
        ),
    ];
    let failures: Vec<String> = s
        .sessions
        .failures
        .0
        .iter()
        .map(|(c, n)| format!("session {c}: {n}"))
        .chain(
            s.requests
                .failures
                .0
                .iter()
                .map(|(c, n)| format!("request {c}: {n}")),
        )
        .collect();
    rows.push((
        "Failures",
        if failures.is_empty() {
            "none".into()
        } else {
            failures.join(", ")
        },
    ));
    for n in &s.resources {
        rows.push((
            "Node resources",
            escape(&format!(
                "{}: CPU mean {} / max {} % of a core, peak memory {} MiB, peak fds {}, sessions {}, network rx {} / tx {} (mean)",
                n.node,
                n.mean_cpu_percent.map_or("n/a".into(), |v| format!("{v:.1}")),
                n.max_cpu_percent.map_or("n/a".into(), |v| format!("{v:.1}")),
                n.peak_memory_bytes.map_or("n/a".into(), |v| (v / (1024 * 1024)).to_string()),
                n.peak_open_fds.map_or("n/a".into(), |v| v.to_string()),
                n.peak_sessions.map_or("n/a".into(), |v| v.to_string()),
                crate::report::summary::bytes_per_second(n.mean_rx_bytes_per_second),
                crate::report::summary::bytes_per_second(n.mean_tx_bytes_per_second),
            )),
        ));
    }
    if let Some(b) = &s.baseline {
        rows.push((
            "Baseline echo",
            format!(
                "{:.1} req/s, p50 {}, p99 {}; cluster/baseline {}",
                b.throughput_rps,
                ms(b.latency_ms.p50),
                ms(b.latency_ms.p99),
                b.throughput_ratio
                    .map_or("n/a".into(), |v| format!("{v:.3}"))
            ),
        ));
    }
    out.push_str("<table>\n");
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>\n");
}

/// The six charts, in report order.
pub fn charts(timeline: &Timeline, samples: &[(u64, NodeSample)]) -> Vec<String> {
    let rows = timeline.rows();
    let at = |f: &dyn Fn(&crate::stress::stats::SecondRow) -> Option<f64>| -> Vec<(f64, f64)> {
        rows.iter()
            .filter_map(|r| f(r).map(|y| (r.second as f64, y)))
            .collect()
    };
    let mut nodes: Vec<String> = rows
        .iter()
        .flat_map(|r| r.targets.iter().map(|t| t.node.clone()))
        .collect();
    nodes.sort();
    nodes.dedup();
    let mut sessions = vec![Series {
        name: "all".into(),
        points: at(&|r| Some(r.open_sessions() as f64)),
    }];
    if nodes.len() > 1 {
        for node in &nodes {
            sessions.push(Series {
                name: node.clone(),
                points: at(&|r| {
                    r.targets
                        .iter()
                        .find(|t| &t.node == node)
                        .map(|t| t.open as f64)
                }),
            });
        }
    }
    let throughput = vec![
        Series {
            name: "ok/s".into(),
            points: at(&|r| Some(r.ok as f64)),
        },
        Series {
            name: "failed/s".into(),
            points: at(&|r| Some(r.failed as f64)),
        },
        Series {
            name: "sent/s".into(),
            points: at(&|r| Some(r.sent as f64)),
        },
    ];
    let percentiles = [("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999)]
        .iter()
        .map(|(name, q)| Series {
            name: (*name).into(),
            points: at(&|r| r.latency.quantile_ms(*q)),
        })
        .collect::<Vec<_>>();
    let distribution: Vec<(String, f64)> = timeline
        .total()
        .latency
        .log_buckets_ms()
        .into_iter()
        .map(|(upper, count)| (format!("≤{}", trim_ms(upper)), count as f64))
        .collect();
    let mut cpu: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    let mut memory: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (second, sample) in samples {
        if let Some(v) = sample.cpu_percent {
            cpu.entry(sample.node.clone())
                .or_default()
                .push((*second as f64, v));
        }
        if let Some(v) = sample.memory_bytes {
            memory
                .entry(sample.node.clone())
                .or_default()
                .push((*second as f64, v as f64 / (1024.0 * 1024.0)));
        }
    }
    let to_series = |map: BTreeMap<String, Vec<(f64, f64)>>| {
        map.into_iter()
            .map(|(name, points)| Series { name, points })
            .collect::<Vec<_>>()
    };
    vec![
        line_chart("Open sessions", "seconds", "sessions", &sessions),
        line_chart("Throughput", "seconds", "requests per second", &throughput),
        line_chart(
            "Latency percentiles per second",
            "seconds",
            "ms",
            &percentiles,
        ),
        bar_chart(
            "Latency distribution (whole run)",
            "latency bucket (ms)",
            "requests",
            &distribution,
        ),
        line_chart("CPU per node", "seconds", "% of one core", &to_series(cpu)),
        line_chart(
            "Memory per node",
            "seconds",
            "MiB resident",
            &to_series(memory),
        ),
    ]
}

fn trim_ms(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}
