//! Comparing two runs of one profile (e.g. native vs docker): the overhead per metric.

use super::summary::StressSummary;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Which direction of a metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Throughput-like.
    Higher,
    /// Latency- or cost-like.
    Lower,
}

/// One metric in both runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricComparison {
    /// Metric name.
    pub metric: String,
    /// Its unit.
    pub unit: String,
    /// Which direction is better.
    pub better: Better,
    /// Value in the reference run (e.g. native).
    pub reference: Option<f64>,
    /// Value in the other run (e.g. docker).
    pub other: Option<f64>,
    /// How much worse the other run is, in percent of the reference (negative: better).
    pub overhead_percent: Option<f64>,
}

fn metric(
    name: &str,
    unit: &str,
    better: Better,
    reference: Option<f64>,
    other: Option<f64>,
) -> MetricComparison {
    let overhead_percent = match (reference, other) {
        (Some(r), Some(o)) if r != 0.0 => Some(match better {
            Better::Lower => (o - r) / r * 100.0,
            Better::Higher => (r - o) / r * 100.0,
        }),
        _ => None,
    };
    MetricComparison {
        metric: name.into(),
        unit: unit.into(),
        better,
        reference,
        other,
        overhead_percent,
    }
}

fn sum<T: Into<f64> + Copy>(values: impl Iterator<Item = Option<T>>) -> Option<f64> {
    let values: Vec<f64> = values.flatten().map(Into::into).collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// The overhead of `other` relative to `reference`, metric by metric.
pub fn compare_runs(reference: &StressSummary, other: &StressSummary) -> Vec<MetricComparison> {
    let cpu = |s: &StressSummary| sum(s.resources.iter().map(|n| n.mean_cpu_percent));
    let memory = |s: &StressSummary| {
        sum(s
            .resources
            .iter()
            .map(|n| n.peak_memory_bytes.map(|b| b as f64 / 1048576.0)))
    };
    vec![
        metric(
            "throughput",
            "req/s",
            Better::Higher,
            Some(reference.requests.throughput_rps),
            Some(other.requests.throughput_rps),
        ),
        metric(
            "latency p50",
            "ms",
            Better::Lower,
            reference.latency_ms.p50,
            other.latency_ms.p50,
        ),
        metric(
            "latency p99",
            "ms",
            Better::Lower,
            reference.latency_ms.p99,
            other.latency_ms.p99,
        ),
        metric(
            "latency p99.9",
            "ms",
            Better::Lower,
            reference.latency_ms.p999,
            other.latency_ms.p999,
        ),
        metric(
            "error rate",
            "fraction",
            Better::Lower,
            Some(reference.requests.error_rate),
            Some(other.requests.error_rate),
        ),
        metric(
            "node CPU (sum of means)",
            "% of a core",
            Better::Lower,
            cpu(reference),
            cpu(other),
        ),
        metric(
            "node memory (sum of peaks)",
            "MiB",
            Better::Lower,
            memory(reference),
            memory(other),
        ),
        metric(
            "generator CPU per request",
            "µs",
            Better::Lower,
            reference.generator.cpu_us_per_request,
            other.generator.cpu_us_per_request,
        ),
    ]
}

/// A plain-text table of a comparison, `reference_name` vs `other_name`.
pub fn comparison_text(
    reference_name: &str,
    other_name: &str,
    rows: &[MetricComparison],
) -> String {
    let value = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3}"));
    let labels: Vec<String> = rows
        .iter()
        .map(|row| format!("{} ({})", row.metric, row.unit))
        .collect();
    // The widest label sets the first column, so every number stays under its heading.
    let width = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let mut out = format!(
        "{:<width$} {:>14} {:>14} {:>10}\n",
        "metric", reference_name, other_name, "overhead"
    );
    for (row, label) in rows.iter().zip(&labels) {
        let _ = writeln!(
            out,
            "{:<width$} {:>14} {:>14} {:>10}",
            label,
            value(row.reference),
            value(row.other),
            row.overhead_percent
                .map_or("n/a".to_string(), |v| format!("{v:+.1} %"))
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overhead_is_positive_when_the_other_run_is_worse() {
        // (better, reference, other, overhead %)
        let cases = [
            (Better::Lower, Some(2.0), Some(3.0), Some(50.0)),
            (Better::Lower, Some(2.0), Some(1.0), Some(-50.0)),
            (Better::Higher, Some(1000.0), Some(900.0), Some(10.0)),
            (Better::Higher, Some(0.0), Some(900.0), None),
            (Better::Lower, None, Some(1.0), None),
        ];
        for (better, reference, other, expected) in cases {
            let row = metric("m", "u", better, reference, other);
            assert_eq!(
                row.overhead_percent, expected,
                "{better:?} {reference:?} {other:?}"
            );
        }
    }

    #[test]
    fn text_table_has_a_line_per_metric() {
        let rows = vec![metric(
            "latency p99",
            "ms",
            Better::Lower,
            Some(1.0),
            Some(1.085),
        )];
        let text = comparison_text("native", "docker", &rows);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("+8.5 %"));
    }

    #[test]
    fn a_long_metric_name_does_not_push_its_numbers_out_of_their_columns() {
        let rows = vec![
            metric("throughput", "req/s", Better::Higher, Some(5.0), Some(5.0)),
            metric(
                "node CPU (sum of means)",
                "% of a core",
                Better::Lower,
                Some(23.0),
                Some(35.7),
            ),
        ];
        let text = comparison_text("native", "docker", &rows);
        let ends: Vec<usize> = text.lines().map(|l| l.chars().count()).collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{text}");
    }
}
