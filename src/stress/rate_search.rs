//! Runs `stress --find-max`: one short run (baseline, then cluster) per offered rate of a
//! [`FindMaxPlan`], until a step does not hold, and writes find-max.txt / find-max.csv.

use super::find_max::{FindMaxPlan, FindMaxResult, StepMeasurement};
use super::resources::ResourceSampler;
use super::run::{StressSummary, run_async};
use super::{StressOptions, StressTarget};
use anyhow::Context as _;

/// The directory of step `index` (0-based) at `rate` under the search's output directory.
pub fn step_dir_name(index: usize, rate: f64) -> String {
    format!("step-{:02}-{:.0}rps", index + 1, rate)
}

/// What a step's run measured, as the search judges it.
pub fn measure(offered: f64, summary: &StressSummary) -> StepMeasurement {
    StepMeasurement {
        offered,
        cluster_rps: summary.requests.throughput_rps,
        baseline_rps: summary.baseline.as_ref().map(|b| b.throughput_rps),
        cluster_p99_ms: summary.latency_ms.p99,
        baseline_p99_ms: summary.baseline.as_ref().and_then(|b| b.latency_ms.p99),
        cluster_error_rate: summary.requests.error_rate,
        incomplete: summary.interrupted || summary.generator.workers_lost > 0,
    }
}

/// Steps through `plan` against `targets` (baseline echo targets run first at each step, as in
/// [`run_async`]), each step with `options` at its rate in its own directory under
/// `options.out_dir`; `sampler` makes each step's resource sampler.
pub async fn find_max_async(
    targets: Vec<StressTarget>,
    options: &StressOptions,
    plan: &FindMaxPlan,
    mut sampler: impl FnMut(&[StressTarget]) -> Box<dyn ResourceSampler>,
) -> anyhow::Result<FindMaxResult> {
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("creating {}", options.out_dir.display()))?;
    let mut result = FindMaxResult {
        truncated: plan.truncated,
        until_baseline_behind: plan.until_baseline_behind,
        ..FindMaxResult::default()
    };
    for (index, &rate) in plan.rates.iter().enumerate() {
        let mut step = options.clone();
        step.rate = rate;
        step.out_dir = options.out_dir.join(step_dir_name(index, rate));
        let cluster: Vec<StressTarget> = targets
            .iter()
            .filter(|t| t.kind == super::TargetKind::Mcp)
            .cloned()
            .collect();
        let summary = run_async(targets.clone(), &step, sampler(&cluster)).await?;
        let goes_on = result.push(measure(rate, &summary), &options.slo);
        // Written after every step, so an interrupted search keeps what it measured.
        write(options, &result)?;
        if !goes_on {
            break;
        }
    }
    Ok(result)
}

fn write(options: &StressOptions, result: &FindMaxResult) -> anyhow::Result<()> {
    for (name, text) in [
        ("find-max.txt", result.to_text(&options.slo)),
        ("find-max.csv", result.to_csv()),
    ] {
        let path = options.out_dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
