//! `stress --find-max`, the pure part: the rates to step through, the verdict on each step, and
//! the table written as find-max.txt / find-max.csv. Running the steps is `rate_search`'s job.

use super::Slo;
use std::fmt::Write as _;
use std::str::FromStr;
use std::time::Duration;

/// Most steps one search takes, whatever `--start`, `--step` and `--max` say.
pub const MAX_STEPS: usize = 24;

/// Hold of each step unless `--duration` names one: long enough for a p99, short enough that
/// [`MAX_STEPS`] steps (each a baseline and a cluster phase) stay within minutes.
pub const DEFAULT_STEP_HOLD: Duration = Duration::from_secs(10);

/// How far the achieved rate may fall below the offered one before a step counts as behind.
pub const BEHIND_TOLERANCE: f64 = 0.05;

/// `--step` unless given: double the rate each step.
pub const DEFAULT_STEP: RateStep = RateStep::Times(2.0);

/// `--max` unless given: this many times `--start`.
pub const DEFAULT_MAX_OVER_START: f64 = 16.0;

/// How the offered rate grows from one step to the next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RateStep {
    /// Add this many req/s (`--step 5000`).
    Plus(f64),
    /// Multiply by this factor (`--step x1.5`).
    Times(f64),
}

/// Why a find-max plan cannot be stepped through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FindMaxError {
    /// `--step` is neither a rate nor `x` and a factor.
    #[error("--step {0:?}: expected a rate to add (5000) or x and a factor above 1 (x1.5)")]
    BadStep(String),
    /// A step that would not grow the rate.
    #[error("--step must grow the rate: add more than 0 req/s or multiply by more than 1")]
    StepDoesNotGrow,
    /// A start rate of zero, negative or not a number.
    #[error("--start must be a rate above 0 req/s, not {0}")]
    BadStart(f64),
    /// A maximum below the start.
    #[error("--max {max} is below --start {start}")]
    MaxBelowStart {
        /// `--start`.
        start: f64,
        /// `--max`.
        max: f64,
    },
}

impl FromStr for RateStep {
    type Err = FindMaxError;

    fn from_str(s: &str) -> Result<Self, FindMaxError> {
        let bad = || FindMaxError::BadStep(s.to_string());
        let step = match s.trim().strip_prefix(['x', 'X']) {
            Some(factor) => RateStep::Times(factor.parse().map_err(|_| bad())?),
            None => RateStep::Plus(s.trim().parse().map_err(|_| bad())?),
        };
        match step {
            RateStep::Plus(r) if r > 0.0 && r.is_finite() => Ok(step),
            RateStep::Times(f) if f > 1.0 && f.is_finite() => Ok(step),
            _ => Err(FindMaxError::StepDoesNotGrow),
        }
    }
}

impl std::fmt::Display for RateStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RateStep::Plus(r) => write!(f, "+{r} req/s"),
            RateStep::Times(x) => write!(f, "x{x}"),
        }
    }
}

/// The rates a search offers, in order: from `start` by `step` while at most `max`, and at
/// most [`MAX_STEPS`] of them.
#[derive(Debug, Clone, PartialEq)]
pub struct FindMaxPlan {
    /// The offered rate of each step, req/s.
    pub rates: Vec<f64>,
    /// Rates up to `max` that [`MAX_STEPS`] left out.
    pub truncated: bool,
    /// Go on past the cluster's first step that did not hold, until the baseline falls behind.
    pub until_baseline_behind: bool,
}

impl FindMaxPlan {
    /// Resolves the flags (defaults applied here and nowhere else) into the rates to offer.
    pub fn new(start: f64, step: Option<RateStep>, max: Option<f64>) -> Result<Self, FindMaxError> {
        if !(start > 0.0 && start.is_finite()) {
            return Err(FindMaxError::BadStart(start));
        }
        let step = step.unwrap_or(DEFAULT_STEP);
        let max = max.unwrap_or(start * DEFAULT_MAX_OVER_START);
        if max < start {
            return Err(FindMaxError::MaxBelowStart { start, max });
        }
        let mut rates = Vec::new();
        let mut rate = start;
        // A hair of slack so that `--start 0.1 --step 0.1 --max 0.3` reaches 0.3.
        while rate <= max * (1.0 + 1e-9) {
            if rates.len() == MAX_STEPS {
                return Ok(Self {
                    rates,
                    truncated: true,
                    until_baseline_behind: false,
                });
            }
            rates.push(rate);
            rate = match step {
                RateStep::Plus(r) => rate + r,
                RateStep::Times(f) => rate * f,
            };
        }
        Ok(Self {
            rates,
            truncated: false,
            until_baseline_behind: false,
        })
    }
}

/// What one step measured: the offered rate, and what the cluster and the baseline achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct StepMeasurement {
    /// Offered rate, req/s.
    pub offered: f64,
    /// The cluster's successful answers per second of hold.
    pub cluster_rps: f64,
    /// The baseline's, when a baseline ran.
    pub baseline_rps: Option<f64>,
    /// The cluster's p99, ms (`None`: nothing answered).
    pub cluster_p99_ms: Option<f64>,
    /// The baseline's p99, ms.
    pub baseline_p99_ms: Option<f64>,
    /// The cluster's failed requests over sent.
    pub cluster_error_rate: f64,
    /// The step was cut short (Ctrl-C or a lost worker): it proves nothing.
    pub incomplete: bool,
}

impl StepMeasurement {
    /// Cluster over baseline throughput, when the baseline answered anything.
    pub fn ratio(&self) -> Option<f64> {
        self.baseline_rps
            .filter(|b| *b > 0.0)
            .map(|b| self.cluster_rps / b)
    }

    /// Whether the baseline achieved less than the offered rate (beyond the tolerance).
    pub fn baseline_behind(&self) -> bool {
        self.baseline_rps
            .is_some_and(|b| is_behind(self.offered, b))
    }
}

fn is_behind(offered: f64, achieved: f64) -> bool {
    achieved < offered * (1.0 - BEHIND_TOLERANCE)
}

/// How one step went for the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepVerdict {
    /// Within the SLO and within 5 % of the offered rate.
    Held,
    /// p99 above the SLO, or too many failed requests.
    SloBreached,
    /// Achieved more than 5 % below the offered rate.
    FellBehind,
    /// The step was cut short.
    Incomplete,
}

impl StepVerdict {
    /// The word in find-max.txt / .csv.
    pub fn name(self) -> &'static str {
        match self {
            StepVerdict::Held => "held",
            StepVerdict::SloBreached => "slo_breached",
            StepVerdict::FellBehind => "fell_behind",
            StepVerdict::Incomplete => "incomplete",
        }
    }
}

/// Judges one step against the SLO and the offered rate; the SLO is checked first.
pub fn judge(step: &StepMeasurement, slo: &Slo) -> StepVerdict {
    if step.incomplete {
        return StepVerdict::Incomplete;
    }
    // Nothing answered at all is no p99 within the SLO.
    let p99_ok = step.cluster_p99_ms.is_some_and(|p| p <= slo.p99_ms);
    if !p99_ok || step.cluster_error_rate > slo.max_error_rate {
        return StepVerdict::SloBreached;
    }
    if is_behind(step.offered, step.cluster_rps) {
        return StepVerdict::FellBehind;
    }
    StepVerdict::Held
}

/// The steps taken, each with its verdict; the search stops after the first that did not hold
/// (or, going on until the baseline falls behind, after the first at which it did).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindMaxResult {
    /// Every step run, in order.
    pub steps: Vec<(StepMeasurement, StepVerdict)>,
    /// The plan had more rates than [`MAX_STEPS`].
    pub truncated: bool,
    /// The search goes on past the cluster's breaks until the baseline falls behind.
    pub until_baseline_behind: bool,
}

impl FindMaxResult {
    /// Adds a measured step; returns whether the search goes on.
    pub fn push(&mut self, step: StepMeasurement, slo: &Slo) -> bool {
        let verdict = judge(&step, slo);
        // An incomplete step proves nothing either way, so no later rate is worth offering; a
        // step without a baseline cannot say where the baseline falls behind.
        let goes_on = match verdict {
            StepVerdict::Held => !(self.until_baseline_behind && step.baseline_behind()),
            StepVerdict::Incomplete => false,
            StepVerdict::SloBreached | StepVerdict::FellBehind => {
                self.until_baseline_behind && step.baseline_rps.is_some() && !step.baseline_behind()
            }
        };
        self.steps.push((step, verdict));
        goes_on
    }

    /// The highest offered rate the cluster held (every earlier step held too).
    pub fn highest_held(&self) -> Option<f64> {
        self.steps
            .iter()
            .take_while(|(_, v)| *v == StepVerdict::Held)
            .map(|(s, _)| s.offered)
            .last()
    }

    /// The first step at which the baseline fell behind the offered rate: the generator's (or
    /// the machine's) own limit, where cluster/baseline stops meaning "cluster overhead".
    pub fn baseline_falls_behind(&self) -> Option<&StepMeasurement> {
        self.steps
            .iter()
            .map(|(s, _)| s)
            .find(|s| s.baseline_behind())
    }

    /// find-max.csv: a header and one row per step.
    pub fn to_csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        out.push('\n');
        let opt = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.3}"));
        for (s, verdict) in &self.steps {
            let _ = writeln!(
                out,
                "{:.1},{:.1},{},{},{},{},{:.6},{}",
                s.offered,
                s.cluster_rps,
                s.baseline_rps.map_or(String::new(), |v| format!("{v:.1}")),
                opt(s.ratio()),
                opt(s.cluster_p99_ms),
                opt(s.baseline_p99_ms),
                s.cluster_error_rate,
                verdict.name()
            );
        }
        out
    }

    /// find-max.txt: the table and the two answers.
    pub fn to_text(&self, slo: &Slo) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "find-max: a step holds when p99 <= {} ms, error rate <= {} % and the cluster achieves within {} % of the offered rate",
            slo.p99_ms,
            slo.max_error_rate * 100.0,
            BEHIND_TOLERANCE * 100.0
        );
        let _ = writeln!(
            out,
            "{:>10} {:>10} {:>10} {:>7} {:>12} {:>12} {:>8}  verdict",
            "offered", "cluster", "baseline", "ratio", "cluster p99", "base p99", "errors"
        );
        let ms = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v:.3} ms"));
        for (s, verdict) in &self.steps {
            let _ = writeln!(
                out,
                "{:>10.1} {:>10.1} {:>10} {:>7} {:>12} {:>12} {:>7.3}%  {}",
                s.offered,
                s.cluster_rps,
                s.baseline_rps
                    .map_or("n/a".to_string(), |v| format!("{v:.1}")),
                s.ratio().map_or("n/a".to_string(), |v| format!("{v:.3}")),
                ms(s.cluster_p99_ms),
                ms(s.baseline_p99_ms),
                s.cluster_error_rate * 100.0,
                verdict.name()
            );
        }
        match self.highest_held() {
            Some(rate) => {
                let _ = writeln!(out, "highest rate held: {rate:.1} req/s");
            }
            None => {
                let _ = writeln!(out, "highest rate held: none (the first step did not hold)");
            }
        }
        match self.baseline_falls_behind() {
            Some(s) => {
                let _ = writeln!(
                    out,
                    "baseline falls behind at {:.1} req/s (achieved {:.1}); cluster/baseline there: {}",
                    s.offered,
                    s.baseline_rps.unwrap_or(0.0),
                    s.ratio().map_or("n/a".to_string(), |v| format!("{v:.3}"))
                );
            }
            None => {
                let _ = writeln!(out, "baseline falls behind: not within the steps run");
            }
        }
        if self.truncated {
            let _ = writeln!(
                out,
                "(the plan had more than {MAX_STEPS} steps; the rest were not run)"
            );
        }
        out
    }
}

/// The header of find-max.csv.
pub const CSV_HEADER: &str = "offered_rps,cluster_rps,baseline_rps,ratio,cluster_p99_ms,baseline_p99_ms,cluster_error_rate,verdict";

#[cfg(test)]
mod tests {
    use super::*;

    const SLO: Slo = Slo {
        p99_ms: 10.0,
        max_error_rate: 0.01,
    };

    fn step(offered: f64, cluster: f64, baseline: f64, p99: f64, errors: f64) -> StepMeasurement {
        StepMeasurement {
            offered,
            cluster_rps: cluster,
            baseline_rps: Some(baseline),
            cluster_p99_ms: Some(p99),
            baseline_p99_ms: Some(1.0),
            cluster_error_rate: errors,
            incomplete: false,
        }
    }

    #[test]
    fn steps_parse_from_the_flag() {
        // (flag, parsed)
        let cases: [(&str, Result<RateStep, FindMaxError>); 6] = [
            ("5000", Ok(RateStep::Plus(5000.0))),
            ("x1.5", Ok(RateStep::Times(1.5))),
            ("X2", Ok(RateStep::Times(2.0))),
            ("x1", Err(FindMaxError::StepDoesNotGrow)),
            ("0", Err(FindMaxError::StepDoesNotGrow)),
            ("fast", Err(FindMaxError::BadStep("fast".into()))),
        ];
        for (flag, parsed) in cases {
            assert_eq!(flag.parse::<RateStep>(), parsed, "{flag}");
        }
    }

    /// (start, step, max, rates, truncated)
    type PlanCase = (f64, Option<RateStep>, Option<f64>, &'static [f64], bool);

    #[test]
    fn plans_step_from_start_to_max() {
        let cases: [PlanCase; 5] = [
            (
                1000.0,
                Some(RateStep::Plus(1000.0)),
                Some(3000.0),
                &[1000.0, 2000.0, 3000.0],
                false,
            ),
            (
                1000.0,
                Some(RateStep::Times(2.0)),
                Some(5000.0),
                &[1000.0, 2000.0, 4000.0],
                false,
            ),
            (
                1000.0,
                None,
                None,
                &[1000.0, 2000.0, 4000.0, 8000.0, 16000.0],
                false,
            ),
            (
                0.1,
                Some(RateStep::Plus(0.1)),
                Some(0.3),
                &[0.1, 0.2, 0.30000000000000004],
                false,
            ),
            (5.0, Some(RateStep::Plus(5.0)), Some(5.0), &[5.0], false),
        ];
        for (start, step, max, rates, truncated) in cases {
            let plan = FindMaxPlan::new(start, step, max).unwrap();
            assert_eq!(
                (plan.rates.as_slice(), plan.truncated),
                (rates, truncated),
                "{start} {step:?} {max:?}"
            );
        }
    }

    #[test]
    fn plans_are_bounded_and_checked() {
        let plan = FindMaxPlan::new(1.0, Some(RateStep::Plus(1.0)), Some(1e9)).unwrap();
        assert_eq!((plan.rates.len(), plan.truncated), (MAX_STEPS, true));
        // (start, max, error)
        let cases = [
            (0.0, None, FindMaxError::BadStart(0.0)),
            (
                100.0,
                Some(50.0),
                FindMaxError::MaxBelowStart {
                    start: 100.0,
                    max: 50.0,
                },
            ),
        ];
        for (start, max, error) in cases {
            assert_eq!(FindMaxPlan::new(start, None, max), Err(error));
        }
    }

    #[test]
    fn each_step_is_judged_slo_first_then_rate() {
        let mut incomplete = step(1000.0, 1000.0, 1000.0, 1.0, 0.0);
        incomplete.incomplete = true;
        let mut unanswered = step(1000.0, 0.0, 1000.0, 1.0, 1.0);
        unanswered.cluster_p99_ms = None;
        // (step, verdict)
        let cases = [
            (step(1000.0, 1000.0, 1000.0, 5.0, 0.0), StepVerdict::Held),
            (step(1000.0, 951.0, 1000.0, 5.0, 0.0), StepVerdict::Held),
            (
                step(1000.0, 949.0, 1000.0, 5.0, 0.0),
                StepVerdict::FellBehind,
            ),
            (
                step(1000.0, 1000.0, 1000.0, 10.5, 0.0),
                StepVerdict::SloBreached,
            ),
            (
                step(1000.0, 1000.0, 1000.0, 5.0, 0.02),
                StepVerdict::SloBreached,
            ),
            (
                step(1000.0, 500.0, 1000.0, 50.0, 0.0),
                StepVerdict::SloBreached,
            ),
            (unanswered, StepVerdict::SloBreached),
            (incomplete, StepVerdict::Incomplete),
        ];
        for (s, verdict) in cases {
            assert_eq!(judge(&s, &SLO), verdict, "{s:?}");
        }
    }

    #[test]
    fn the_search_stops_at_the_first_step_that_does_not_hold() {
        let mut result = FindMaxResult::default();
        assert!(result.push(step(1000.0, 1000.0, 1000.0, 1.0, 0.0), &SLO));
        assert!(result.push(step(2000.0, 1990.0, 1890.0, 2.0, 0.0), &SLO));
        assert!(!result.push(step(4000.0, 3000.0, 3500.0, 2.0, 0.0), &SLO));
        assert_eq!(result.highest_held(), Some(2000.0));
        let behind = result.baseline_falls_behind().unwrap();
        assert_eq!(behind.offered, 2000.0);
        assert!((behind.ratio().unwrap() - 1990.0 / 1890.0).abs() < 1e-12);
    }

    #[test]
    fn until_baseline_behind_goes_past_the_cluster_s_break_to_the_baseline_s() {
        let mut result = FindMaxResult {
            until_baseline_behind: true,
            ..FindMaxResult::default()
        };
        // (step: offered, cluster, baseline, p99, errors; whether the search goes on)
        let steps = [
            (step(1000.0, 1000.0, 1000.0, 1.0, 0.0), true),
            // The cluster breaks its SLO, then falls behind; the baseline keeps up.
            (step(2000.0, 2000.0, 2000.0, 50.0, 0.0), true),
            (step(4000.0, 3000.0, 4000.0, 50.0, 0.0), true),
            // The baseline falls behind: the rate the search was looking for.
            (step(8000.0, 5000.0, 6000.0, 50.0, 0.0), false),
        ];
        for (s, goes_on) in steps {
            assert_eq!(result.push(s.clone(), &SLO), goes_on, "{s:?}");
        }
        assert_eq!(result.highest_held(), Some(1000.0));
        let behind = result.baseline_falls_behind().unwrap();
        assert_eq!(behind.offered, 8000.0);
        assert!((behind.ratio().unwrap() - 5000.0 / 6000.0).abs() < 1e-12);

        // A step cut short, or one without a baseline, ends that search too.
        let mut incomplete = step(2000.0, 2000.0, 2000.0, 50.0, 0.0);
        incomplete.incomplete = true;
        let mut no_baseline = step(2000.0, 2000.0, 2000.0, 50.0, 0.0);
        no_baseline.baseline_rps = None;
        for s in [incomplete, no_baseline] {
            let mut result = FindMaxResult {
                until_baseline_behind: true,
                ..FindMaxResult::default()
            };
            assert!(!result.push(s.clone(), &SLO), "{s:?}");
        }
        // While the cluster holds, a baseline that falls behind ends the search as well.
        let mut result = FindMaxResult {
            until_baseline_behind: true,
            ..FindMaxResult::default()
        };
        assert!(!result.push(step(1000.0, 1000.0, 900.0, 1.0, 0.0), &SLO));
    }

    #[test]
    fn no_step_held_and_baseline_never_behind_say_so() {
        let mut result = FindMaxResult::default();
        assert!(!result.push(step(1000.0, 1000.0, 1000.0, 50.0, 0.0), &SLO));
        assert_eq!(result.highest_held(), None);
        assert!(result.baseline_falls_behind().is_none());
        let text = result.to_text(&SLO);
        assert!(text.contains("highest rate held: none"), "{text}");
        assert!(text.contains("not within the steps run"), "{text}");
    }

    #[test]
    fn csv_has_the_header_and_one_row_per_step() {
        let mut result = FindMaxResult::default();
        result.push(step(1000.0, 1000.0, 1000.0, 1.0, 0.0), &SLO);
        let mut without_baseline = step(2000.0, 1000.0, 0.0, 20.0, 0.0);
        without_baseline.baseline_rps = None;
        without_baseline.baseline_p99_ms = None;
        result.push(without_baseline, &SLO);
        assert_eq!(
            result.to_csv(),
            format!(
                "{CSV_HEADER}\n\
                 1000.0,1000.0,1000.0,1.000,1.000,1.000,0.000000,held\n\
                 2000.0,1000.0,,,20.000,,0.000000,slo_breached\n"
            )
        );
    }
}
