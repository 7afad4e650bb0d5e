//! The self-contained `report.html`: summary table and SVG charts, no script, no network.

use super::summary::{READ_DELAY_MEANING, SEND_DELAY_MEANING, StressSummary};
use super::svg::{Band, LineChart, Series, Threshold, XAxis, line_chart, nines};
use crate::stress::resources::NodeSample;
use crate::stress::stats::Timeline;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The page uses the window's width: the charts share a grid of equal columns (one on a narrow
/// window, two from 1,300 px), each chart scaled from its viewBox, so every time axis has the same
/// length on screen.
const STYLE: &str = "body{font-family:sans-serif;margin:1em 2vw;color:#111}\
header p{margin:.2em 0;color:#333}\
table{border-collapse:collapse;margin:1em 0;max-width:100%}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;vertical-align:top}\
.pass{color:#060;font-weight:bold}.fail{color:#a00;font-weight:bold}\
.charts{display:grid;grid-template-columns:1fr;gap:1em}\
@media (min-width:1300px){.charts{grid-template-columns:1fr 1fr}}\
svg.chart{display:block;width:100%;height:auto}\
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
    baseline: Option<&Timeline>,
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
    header(&mut out, summary);
    summary_table(&mut out, summary);
    out.push_str("<div class=\"charts\">\n");
    for chart in charts(summary, timeline, samples, baseline) {
        out.push_str(&chart);
        out.push('\n');
    }
    out.push_str("</div>\n</body></html>\n");
    out
}

/// When, with what and on which file the run was made.
fn header(out: &mut String, s: &StressSummary) {
    let started = jiff::Timestamp::from_second(s.started_unix as i64).map_or_else(
        |_| format!("{} (Unix time)", s.started_unix),
        |t| t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let version = if s.tool_version.is_empty() {
        "unknown"
    } else {
        &s.tool_version
    };
    let file = s.cluster_file.as_ref().map_or_else(
        || "no cluster file (targets given directly)".to_string(),
        |f| {
            format!(
                "<code>{}</code>, SHA-256 <code>{}</code>",
                escape(&f.path),
                escape(&f.sha256)
            )
        },
    );
    let _ = writeln!(
        out,
        "<header><p>Run started {started}, erlmcp-gen {}</p><p>Cluster file: {file}</p></header>",
        escape(version)
    );
}

/// The SLO in the cluster file's own units: p99 as the file writes it, the error rate in percent.
fn slo_text(s: &StressSummary) -> String {
    let p99 = s.cluster_file.as_ref().map_or_else(
        || format!("{}ms", s.verdict.slo.p99_ms),
        |f| f.slo_p99.clone(),
    );
    format!(
        "p99 ≤ {}, error rate ≤ {} %",
        escape(&p99),
        s.verdict.slo.max_error_rate * 100.0
    )
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
                "{} workers; CPU {:.2} s in all ({} µs per request), {} s in the hold ({} µs per request, {} of the machine)",
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
                    .map_or("n/a".into(), |v| format!("{v:.1}")),
                s.generator
                    .hold_machine_share
                    .map_or("n/a".into(), |v| format!("{:.1} %", v * 100.0))
            ),
        ),
    ];
    // Beside the generator's cost: where the generator itself held requests up.
    if let Some(d) = &s.generator.send_delay_ms {
        rows.push((
            "Send delay",
            format!("{} ({SEND_DELAY_MEANING})", d.delay_text()),
        ));
    }
    if let Some(d) = &s.generator.read_delay_ms {
        rows.push((
            "Read delay",
            format!("{} ({READ_DELAY_MEANING})", d.delay_text()),
        ));
    }
    rows.push(("SLO", format!("{}: {verdict}", slo_text(s))));
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
        if let Some(d) = &b.send_delay_ms {
            rows.push(("Baseline send delay", d.delay_text()));
        }
        if let Some(d) = &b.read_delay_ms {
            rows.push(("Baseline read delay", d.delay_text()));
        }
    }
    out.push_str("<table>\n");
    for (name, value) in rows {
        let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>\n");
}

/// Phase band fills: the ramp and the drain shaded, the hold left white.
const RAMP_FILL: &str = "#e3ecf7";
const HOLD_FILL: &str = "#ffffff";
const DRAIN_FILL: &str = "#eeeeee";

/// The run's phases on its time axis, from the plan and the hold as it happened.
pub fn phase_bands(s: &StressSummary, end: f64) -> Vec<Band> {
    let hold_end = s.ramp_seconds + s.hold_seconds;
    vec![
        Band {
            label: "ramp",
            start: 0.0,
            end: s.ramp_seconds,
            fill: RAMP_FILL,
        },
        Band {
            label: "hold",
            start: s.ramp_seconds,
            end: hold_end,
            fill: HOLD_FILL,
        },
        Band {
            label: "drain",
            start: hold_end,
            end,
            fill: DRAIN_FILL,
        },
    ]
}

fn per_second(
    timeline: &Timeline,
    f: &dyn Fn(&crate::stress::stats::SecondRow) -> Option<f64>,
) -> Vec<(f64, f64)> {
    timeline
        .rows()
        .iter()
        .filter_map(|r| f(r).map(|y| (r.second as f64, y)))
        .collect()
}

/// The percentile spectrum of a run's whole histogram, x in nines.
fn spectrum(timeline: &Timeline) -> Vec<(f64, f64)> {
    let latency = &timeline.total().latency;
    latency
        .percentile_spectrum_ms()
        .into_iter()
        .map(|(q, ms)| (nines(q, latency.count()), ms))
        .collect()
}

/// The six charts, in report order; the time charts share one x range and the phase bands.
pub fn charts(
    summary: &StressSummary,
    timeline: &Timeline,
    samples: &[(u64, NodeSample)],
    baseline: Option<&Timeline>,
) -> Vec<String> {
    let rows = timeline.rows();
    let baseline_rows = baseline.map(Timeline::rows).unwrap_or_default();
    let last_second = rows
        .iter()
        .chain(baseline_rows.iter())
        .map(|r| r.second)
        .chain(samples.iter().map(|(second, _)| *second))
        .max()
        .unwrap_or(0) as f64;
    let end = last_second
        .max(summary.ramp_seconds + summary.hold_seconds)
        .max(1.0);
    let bands = phase_bands(summary, end);
    let time_chart = |title: &str, y_label: &str, series: Vec<Series>| {
        let mut chart = LineChart::new(title, "seconds since start", y_label);
        chart.x_range = Some((0.0, end));
        chart.bands = bands.clone();
        chart.series = series;
        chart
    };
    let slo = Threshold {
        label: format!(
            "SLO p99 ≤ {}",
            summary.cluster_file.as_ref().map_or_else(
                || format!("{}ms", summary.verdict.slo.p99_ms),
                |f| f.slo_p99.clone()
            )
        ),
        value: summary.verdict.slo.p99_ms,
    };

    let mut nodes: Vec<String> = rows
        .iter()
        .flat_map(|r| r.targets.iter().map(|t| t.node.clone()))
        .collect();
    nodes.sort();
    nodes.dedup();
    let mut sessions = vec![Series::measured(
        "all",
        per_second(timeline, &|r| Some(r.open_sessions() as f64)),
    )];
    if nodes.len() > 1 {
        for node in &nodes {
            sessions.push(Series::measured(
                node.clone(),
                per_second(timeline, &|r| {
                    r.targets
                        .iter()
                        .find(|t| &t.node == node)
                        .map(|t| t.open as f64)
                }),
            ));
        }
    }
    let mut throughput = vec![
        Series::measured("ok/s", per_second(timeline, &|r| Some(r.ok as f64))),
        Series::measured("failed/s", per_second(timeline, &|r| Some(r.failed as f64))),
        Series::measured("sent/s", per_second(timeline, &|r| Some(r.sent as f64))),
    ];
    let mut percentiles: Vec<Series> = [
        ("p50", 0.50),
        ("p95", 0.95),
        ("p99", 0.99),
        ("p99.9", 0.999),
    ]
    .iter()
    .map(|(name, q)| Series::measured(*name, per_second(timeline, &|r| r.latency.quantile_ms(*q))))
    .collect();
    let mut distribution = vec![Series::measured("cluster", spectrum(timeline))];
    if let Some(b) = baseline {
        sessions.push(Series::baseline(
            "baseline",
            per_second(b, &|r| Some(r.open_sessions() as f64)),
        ));
        throughput.push(Series::baseline(
            "baseline ok/s",
            per_second(b, &|r| Some(r.ok as f64)),
        ));
        percentiles.push(Series::baseline(
            "baseline p99",
            per_second(b, &|r| r.latency.quantile_ms(0.99)),
        ));
        distribution.push(Series::baseline("baseline", spectrum(b)));
    }
    let mut latency = time_chart("Latency percentiles per second", "ms", percentiles);
    latency.threshold = Some(slo.clone());
    let mut spectrum_chart = LineChart::new(
        "Latency by percentile (whole run)",
        "percentile (log scale of nines)",
        "ms",
    );
    spectrum_chart.x_axis = XAxis::Nines;
    spectrum_chart.threshold = Some(slo);
    spectrum_chart.series = distribution;

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
            .map(|(name, points)| Series::measured(name, points))
            .collect::<Vec<_>>()
    };
    [
        time_chart("Open sessions", "sessions", sessions),
        time_chart("Throughput", "requests per second", throughput),
        latency,
        spectrum_chart,
        time_chart("CPU per node", "% of one core", to_series(cpu)),
        time_chart("Memory per node", "MiB resident", to_series(memory)),
    ]
    .iter()
    .map(line_chart)
    .collect()
}
