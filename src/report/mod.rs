//! The files a stress run writes: CSVs, summary (JSON and text) and the HTML report.
//!
//! # Layout
//! - `compare`: overhead per metric between two runs (`--compare native,docker`).
//! - `csv`: `connections.csv`, `latency.csv`, `resource-usage.csv`.
//! - `summary`: the [`summary::StressSummary`] model, `summary.json` and `summary.txt`.
//! - `svg`: hand-written line charts as inline SVG: phase bands, thresholds, a nines axis.
//! - `html`: the self-contained `report.html`.

pub mod compare;
pub mod csv;
pub mod html;
pub mod summary;
pub mod svg;

use crate::stress::resources::NodeSample;
use crate::stress::stats::Timeline;
use anyhow::Context;
use std::path::Path;
use summary::StressSummary;

/// Writes `summary.json` and `summary.txt`.
pub fn write_summary_files(dir: &Path, summary: &StressSummary) -> anyhow::Result<()> {
    write(
        dir,
        "summary.json",
        &(serde_json::to_string_pretty(summary)? + "\n"),
    )?;
    write(dir, "summary.txt", &summary.to_text())
}

/// Writes every output file of a run into `dir`.
pub fn write_all(
    dir: &Path,
    summary: &StressSummary,
    timeline: &Timeline,
    samples: &[(u64, NodeSample)],
    baseline: Option<&Timeline>,
) -> anyhow::Result<()> {
    write(dir, "connections.csv", &csv::connections_csv(timeline))?;
    write(dir, "latency.csv", &csv::latency_csv(timeline))?;
    write(dir, "resource-usage.csv", &csv::resources_csv(samples))?;
    write_summary_files(dir, summary)?;
    write(
        dir,
        "report.html",
        &html::report_html(summary, timeline, samples, baseline),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> anyhow::Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
