//! The per-second CSV files: `connections.csv`, `latency.csv`, `resource-usage.csv`.

use crate::stress::resources::NodeSample;
use crate::stress::stats::Timeline;
use std::fmt::Write as _;

/// Header of `connections.csv`.
pub const CONNECTIONS_HEADER: &str = "second,target,open,opened,closed,failed";
/// Header of `latency.csv`.
pub const LATENCY_HEADER: &str = "second,sent,ok,failed,p50_ms,p95_ms,p99_ms,p999_ms,max_ms";
/// Header of `resource-usage.csv`.
pub const RESOURCES_HEADER: &str = "second,node,cpu_percent,memory_bytes,memory_limit_bytes,open_fds,sessions,rx_bytes_per_second,tx_bytes_per_second,source";

fn opt<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

fn ms(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v:.3}"))
}

/// Node names are ours or the TOML's; quote one only if it needs it.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `connections.csv`: one line per second per target.
pub fn connections_csv(timeline: &Timeline) -> String {
    let mut out = format!("{CONNECTIONS_HEADER}\n");
    for row in timeline.rows() {
        for t in &row.targets {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{}",
                row.second,
                field(&t.node),
                t.open,
                t.opened,
                t.closed,
                t.failed
            );
        }
    }
    out
}

/// `latency.csv`: one line per second; percentiles are empty in a second without successes.
pub fn latency_csv(timeline: &Timeline) -> String {
    let mut out = format!("{LATENCY_HEADER}\n");
    for row in timeline.rows() {
        let l = &row.latency;
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            row.second,
            row.sent,
            row.ok,
            row.failed,
            ms(l.quantile_ms(0.50)),
            ms(l.quantile_ms(0.95)),
            ms(l.quantile_ms(0.99)),
            ms(l.quantile_ms(0.999)),
            ms(l.max_ms())
        );
    }
    out
}

/// `resource-usage.csv`: one line per node per sample; unknown values are empty.
pub fn resources_csv(samples: &[(u64, NodeSample)]) -> String {
    let mut out = format!("{RESOURCES_HEADER}\n");
    for (second, s) in samples {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            second,
            field(&s.node),
            s.cpu_percent.map_or(String::new(), |v| format!("{v:.1}")),
            opt(s.memory_bytes),
            opt(s.memory_limit_bytes),
            opt(s.open_fds),
            opt(s.sessions),
            s.rx_bytes_per_second
                .map_or(String::new(), |v| format!("{v:.0}")),
            s.tx_bytes_per_second
                .map_or(String::new(), |v| format!("{v:.0}")),
            field(&s.source)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stress::stats::{SecondRow, TargetSecond};
    use std::time::Duration;

    #[test]
    fn rows_render_under_their_headers() {
        let mut row = SecondRow {
            second: 2,
            targets: vec![TargetSecond {
                node: "n,1".into(),
                open: 5,
                peak_open: 5,
                opened: 5,
                closed: 0,
                failed: 1,
            }],
            sent: 3,
            ok: 2,
            failed: 1,
            ..SecondRow::default()
        };
        row.latency.record(Duration::from_millis(4));
        row.latency.record(Duration::from_millis(4));
        let mut timeline = Timeline::default();
        timeline.add(0, &row);
        timeline.add(
            0,
            &SecondRow {
                second: 3,
                ..SecondRow::default()
            },
        );
        assert_eq!(
            connections_csv(&timeline),
            format!("{CONNECTIONS_HEADER}\n2,\"n,1\",5,5,0,1\n")
        );
        assert_eq!(
            latency_csv(&timeline),
            format!("{LATENCY_HEADER}\n2,3,2,1,4.001,4.001,4.001,4.001,4.001\n3,0,0,0,,,,,\n")
        );
        let sample = NodeSample {
            node: "a".into(),
            open_fds: Some(9),
            source: "proc".into(),
            ..NodeSample::default()
        };
        let busy = NodeSample {
            node: "b".into(),
            rx_bytes_per_second: Some(1234.4),
            tx_bytes_per_second: Some(99.6),
            source: "metrics".into(),
            ..NodeSample::default()
        };
        assert_eq!(
            resources_csv(&[(2, busy)]),
            format!("{RESOURCES_HEADER}\n2,b,,,,,,1234,100,metrics\n")
        );
        assert_eq!(
            resources_csv(&[(1, sample)]),
            format!("{RESOURCES_HEADER}\n1,a,,,,9,,,,proc\n")
        );
    }
}
