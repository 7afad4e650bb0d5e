//! Hand-written SVG line charts: nice ticks, phase bands, a threshold line, dashed and marked
//! series so overlapping lines stay visible, and a log "nines" axis for percentile spectra.
//!
//! Plain SVG with no script and no external fonts, so the report works offline and prints. Every
//! chart has the same size and plot area, so time axes given the same x range line up.

use std::fmt::Write as _;

/// The viewBox width; the page scales it to the window (the SVG has no fixed pixel size).
pub const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 340.0;
/// The plot area's left edge (room for the y tick labels and the y axis label).
pub const LEFT: f64 = 72.0;
const RIGHT: f64 = 20.0;
/// The plot area's top edge: title, then two legend rows.
pub const TOP: f64 = 66.0;
const BOTTOM: f64 = 44.0;
const LEGEND_ROWS: usize = 2;
/// Okabe–Ito colours (colour-blind friendly) without black and yellow: black is the frame's and
/// the threshold's, yellow is unreadable on white.
pub const PALETTE: [&str; 6] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
];
/// Baseline series take these, so a baseline never shares a colour with a measured series.
pub const BASELINE_PALETTE: [&str; 2] = ["#882255", "#44AA99"];
/// Dash patterns by series index: the first line is solid and wider, later ones dashed on top of
/// it, so two series with the same values both show.
const DASHES: [&str; 6] = ["", "9 5", "3 4", "12 4 3 4", "5 3", "2 6"];
/// The SLO threshold's colour and dash.
const THRESHOLD: (&str, &str) = ("#000000", "10 3 2 3");
/// Markers per series at most, spread along it.
const MARKERS: usize = 12;

/// One named line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
    /// Drawn in the baseline colours (the bare echo server's run of the same profile).
    pub baseline: bool,
}

impl Series {
    /// A measured series.
    pub fn measured(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            baseline: false,
        }
    }

    /// A baseline series.
    pub fn baseline(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            baseline: true,
        }
    }
}

/// A shaded stretch of the x axis: a phase of the run (ramp, hold, drain).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Label drawn at the band's top.
    pub label: &'static str,
    /// Start, in x units.
    pub start: f64,
    /// End, in x units.
    pub end: f64,
    /// Fill colour (light, under the lines).
    pub fill: &'static str,
}

/// A horizontal line at a bound (the SLO's latency).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// Legend and line label.
    pub label: String,
    /// Its y value.
    pub value: f64,
}

/// How the x axis maps values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Linear, with nice ticks (time in seconds).
    Linear,
    /// Points' x are [`nines`] of quantiles, ticked 0 %, 90 %, 99 %, 99.9 % … equally spaced.
    Nines,
}

/// A line chart and everything drawn on it.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Title (also the SVG's accessible name).
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// The x mapping.
    pub x_axis: XAxis,
    /// A fixed x range (shared by the time charts so they line up); `None`: the data's.
    pub x_range: Option<(f64, f64)>,
    /// Phase bands, drawn under everything.
    pub bands: Vec<Band>,
    /// A bound drawn as a horizontal line.
    pub threshold: Option<Threshold>,
    /// The lines.
    pub series: Vec<Series>,
}

impl LineChart {
    /// A linear chart with no bands, threshold or series yet.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_axis: XAxis::Linear,
            x_range: None,
            bands: Vec::new(),
            threshold: None,
            series: Vec::new(),
        }
    }
}

/// The "nines" of quantile `q`: `-log10(1 - q)`, so 0 → 0, 0.9 → 1, 0.99 → 2, 0.999 → 3; capped
/// at 1 in `samples` (quantile 1, the maximum, sits at `log10(samples)`), as no run resolves finer.
pub fn nines(q: f64, samples: u64) -> f64 {
    let cap = (samples.max(1) as f64).log10();
    if q >= 1.0 {
        return cap;
    }
    (-(1.0 - q.max(0.0)).log10()).min(cap)
}

/// The label of a whole number of nines: 0 → `0%`, 1 → `90%`, 3 → `99.9%`.
pub fn nines_label(nines: u32) -> String {
    match nines {
        0 => "0%".into(),
        1 => "90%".into(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace("99.%", "99%"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
fn tick_step(span: f64, count: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / count;
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// The ticks from `start` to `end` at `step` (multiples of `step`, ends included when on one).
fn ticks(start: f64, end: f64, step: f64) -> Vec<f64> {
    let first = (start / step - 1e-9).ceil() as i64;
    let last = (end / step + 1e-9).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// Labels for ticks `step` apart, all in one style: the same unit suffix (k, M) and the same
/// number of decimals, the fewest that tell the ticks apart (`0.5, 1.0, 1.5`, never `1.00` next
/// to `10`).
pub fn tick_labels(ticks: &[f64], step: f64) -> Vec<String> {
    let largest = ticks.iter().fold(0.0_f64, |m, t| m.max(t.abs()));
    let (divisor, suffix) = if largest >= 1e6 {
        (1e6, "M")
    } else if largest >= 1e4 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let scaled_step = step / divisor;
    // The fewest decimals that write the step exactly (0.5 → 1, 0.25 → 2, 2.5 → 1, 20 → 0).
    let decimals = (0..6)
        .find(|d| {
            let shifted = scaled_step * 10f64.powi(*d as i32);
            (shifted - shifted.round()).abs() < 1e-6 * shifted.max(1.0)
        })
        .unwrap_or(6);
    ticks
        .iter()
        .map(|t| {
            let v = t / divisor;
            // No "-0" for a tick that rounds to zero.
            let v = if v.abs() < scaled_step * 1e-6 { 0.0 } else { v };
            format!("{v:.decimals$}{suffix}")
        })
        .collect()
}

/// The data range of the y axis: from 0 to a little above the highest point (and the threshold,
/// unless it is so far above the data that the data would flatten; then it is noted instead).
fn y_range(points: &[(f64, f64)], threshold: Option<&Threshold>) -> (f64, bool) {
    let data_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let threshold_fits = threshold.is_some_and(|t| data_max <= 0.0 || t.value <= data_max * 4.0);
    let top = match threshold {
        Some(t) if threshold_fits => data_max.max(t.value),
        _ => data_max,
    };
    (if top > 0.0 { top * 1.1 } else { 1.0 }, threshold_fits)
}

/// The plot area, in viewBox units.
struct Plot {
    x0: f64,
    x1: f64,
    y1: f64,
}

impl Plot {
    const W: f64 = WIDTH - LEFT - RIGHT;
    const H: f64 = HEIGHT - TOP - BOTTOM;

    fn sx(&self, v: f64) -> f64 {
        LEFT + (v - self.x0) / (self.x1 - self.x0) * Self::W
    }

    fn sy(&self, v: f64) -> f64 {
        TOP + Self::H - v / self.y1 * Self::H
    }
}

/// One line chart as an SVG element; says "no data measured" when no series has a point.
pub fn line_chart(chart: &LineChart) -> String {
    let mut out = String::new();
    let title = escape(&chart.title);
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         preserveAspectRatio=\"xMinYMin meet\" role=\"img\" aria-label=\"{title}\" font-family=\"sans-serif\" font-size=\"12\">\
         <title>{title}</title><rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{title}</text>"
    );
    let finite: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if finite.is_empty() {
        let _ = write!(
            out,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">no data measured</text></svg>",
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return out;
    }
    let (x0, mut x1) = chart.x_range.unwrap_or_else(|| {
        let lo = finite.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
        let hi = finite.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
        match chart.x_axis {
            XAxis::Linear => (lo, hi),
            XAxis::Nines => (0.0, hi.ceil().max(1.0)),
        }
    });
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let (y1, threshold_fits) = y_range(&finite, chart.threshold.as_ref());
    let plot = Plot { x0, x1, y1 };
    bands(&mut out, &plot, &chart.bands);
    axes(&mut out, &plot, chart);
    let mut legend = Legend::default();
    let mut measured = 0;
    let mut baselines = 0;
    for s in &chart.series {
        let (colour, dash_index) = if s.baseline {
            baselines += 1;
            (
                BASELINE_PALETTE[(baselines - 1) % BASELINE_PALETTE.len()],
                // Baselines are dashed even when alone: the cluster's solid line is under them.
                1 + (baselines - 1 + measured) % (DASHES.len() - 1),
            )
        } else {
            measured += 1;
            (
                PALETTE[(measured - 1) % PALETTE.len()],
                (measured - 1) % DASHES.len(),
            )
        };
        let index = measured + baselines - 1;
        let style = Style {
            colour,
            dash: DASHES[dash_index],
            width: if dash_index == 0 { 2.6 } else { 2.0 },
            marker: index,
        };
        series(&mut out, &plot, s, &style, index, chart.series.len());
        legend.entry(&mut out, &s.name, &style);
    }
    if let Some(t) = &chart.threshold {
        let style = Style {
            colour: THRESHOLD.0,
            dash: THRESHOLD.1,
            width: 1.4,
            marker: usize::MAX,
        };
        if threshold_fits {
            let y = plot.sy(t.value);
            let _ = write!(
                out,
                "<line class=\"threshold\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{}\" stroke-width=\"{}\" stroke-dasharray=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"11\">{}</text>",
                LEFT + Plot::W,
                style.colour,
                style.width,
                style.dash,
                LEFT + Plot::W - 4.0,
                y - 4.0,
                escape(&t.label)
            );
            legend.entry(&mut out, &t.label, &style);
        } else {
            legend.entry(&mut out, &format!("{} (above this range)", t.label), &style);
        }
    }
    if legend.hidden > 0 {
        // Drawn all the same; each line's own <title> names it on hover.
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"20\" text-anchor=\"end\" fill=\"#444\">+{} more series (names on hover)</text>",
            WIDTH - RIGHT,
            legend.hidden
        );
    }
    out.push_str("</svg>");
    out
}

/// How one series is drawn.
struct Style {
    colour: &'static str,
    dash: &'static str,
    width: f64,
    /// Marker shape index (`usize::MAX`: none).
    marker: usize,
}

fn bands(out: &mut String, plot: &Plot, bands: &[Band]) {
    for band in bands {
        let start = band.start.clamp(plot.x0, plot.x1);
        let end = band.end.clamp(plot.x0, plot.x1);
        if end <= start {
            continue;
        }
        let (a, b) = (plot.sx(start), plot.sx(end));
        let _ = write!(
            out,
            "<rect class=\"band\" x=\"{a:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"><title>{}</title></rect>\
             <text class=\"band-label\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"11\" fill=\"#444\">{}</text>",
            b - a,
            Plot::H,
            band.fill,
            band.label,
            (a + b) / 2.0,
            TOP + Plot::H - 6.0,
            band.label
        );
    }
}

/// Grid, ticks, labels and the frame.
fn axes(out: &mut String, plot: &Plot, chart: &LineChart) {
    let bottom = TOP + Plot::H;
    let y_step = tick_step(plot.y1, 5.0);
    let y_ticks = ticks(0.0, plot.y1, y_step);
    for (tick, label) in y_ticks.iter().zip(tick_labels(&y_ticks, y_step)) {
        let py = plot.sy(*tick);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#e4e4e4\"/>\
             <text class=\"y-tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT + Plot::W,
            LEFT - 6.0,
            py + 4.0
        );
    }
    let x_ticks: Vec<(f64, String)> = match chart.x_axis {
        XAxis::Linear => {
            let step = tick_step(plot.x1 - plot.x0, 10.0);
            let values = ticks(plot.x0, plot.x1, step);
            let labels = tick_labels(&values, step);
            values.into_iter().zip(labels).collect()
        }
        XAxis::Nines => (0..=plot.x1.floor() as u32)
            .map(|n| (f64::from(n), nines_label(n)))
            .collect(),
    };
    for (tick, label) in x_ticks {
        let px = plot.sx(tick);
        let _ = write!(
            out,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#e4e4e4\"/>\
             <line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{bottom}\" y2=\"{:.1}\" stroke=\"#888\"/>\
             <text class=\"x-tick\" x=\"{px:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{label}</text>",
            bottom,
            bottom + 4.0,
            bottom + 17.0
        );
    }
    let _ = write!(
        out,
        "<rect class=\"plot-area\" x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\
         <text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        Plot::W,
        Plot::H,
        LEFT + Plot::W / 2.0,
        HEIGHT - 6.0,
        escape(&chart.x_label),
        TOP + Plot::H / 2.0,
        escape(&chart.y_label)
    );
}

fn series(out: &mut String, plot: &Plot, s: &Series, style: &Style, index: usize, count: usize) {
    let points: Vec<(f64, f64)> = s
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|(x, y)| (plot.sx(*x), plot.sy(*y)))
        .collect();
    if points.is_empty() {
        return;
    }
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect();
    let dash = if style.dash.is_empty() {
        String::new()
    } else {
        format!(" stroke-dasharray=\"{}\"", style.dash)
    };
    let _ = write!(
        out,
        "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"{}\"{dash} \
         stroke-linejoin=\"round\" points=\"{}\"><title>{}</title></polyline>",
        escape(&s.name),
        style.colour,
        style.width,
        path.join(" "),
        escape(&s.name)
    );
    // Markers at evenly spaced points, each series shifted so coinciding lines show each one's.
    let every = points.len().div_ceil(MARKERS).max(1);
    let offset = index * every / count.max(1);
    for (x, y) in points.iter().skip(offset % every).step_by(every) {
        marker(out, *x, *y, style);
    }
}

/// A marker of the series' shape; later series get smaller ones, so markers on the same point
/// nest (each earlier one shows as a ring around the next) instead of hiding each other.
fn marker(out: &mut String, x: f64, y: f64, style: &Style) {
    let c = style.colour;
    let r = 5.0 * (1.0 - 0.16 * style.marker.min(4) as f64);
    let _ = match style.marker % 4 {
        0 => write!(
            out,
            "<circle class=\"marker\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r:.1}\" fill=\"{c}\"/>"
        ),
        1 => write!(
            out,
            "<rect class=\"marker\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#fff\" stroke=\"{c}\" stroke-width=\"1.6\"/>",
            x - r * 0.8,
            y - r * 0.8,
            r * 1.6,
            r * 1.6
        ),
        2 => write!(
            out,
            "<path class=\"marker\" d=\"M{x:.1},{:.1}l{:.1},{:.1}h{:.1}z\" fill=\"{c}\"/>",
            y - r,
            r,
            r * 1.8,
            -2.0 * r
        ),
        _ => write!(
            out,
            "<path class=\"marker\" d=\"M{x:.1},{:.1}l{r:.1},{r:.1}l{:.1},{r:.1}l{:.1},{:.1}z\" fill=\"#fff\" stroke=\"{c}\" stroke-width=\"1.6\"/>",
            y - r,
            -r,
            -r,
            -r
        ),
    };
}

/// Legend entries in rows above the plot area, each a short stretch of the line as drawn.
#[derive(Default)]
struct Legend {
    x: f64,
    row: usize,
    hidden: usize,
}

impl Legend {
    fn entry(&mut self, out: &mut String, name: &str, style: &Style) {
        // Width estimated from the label (no font metrics without a script); 7 px a character.
        let width = 40.0 + 7.0 * name.chars().count() as f64;
        if self.x > 0.0 && LEFT + self.x + width > WIDTH - RIGHT {
            self.row += 1;
            self.x = 0.0;
        }
        if self.row >= LEGEND_ROWS {
            self.hidden += 1;
            return;
        }
        let x = LEFT + self.x;
        let y = 38.0 + self.row as f64 * 16.0;
        let dash = if style.dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{}\"", style.dash)
        };
        let _ = write!(
            out,
            "<g class=\"legend\"><line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"{}\"{dash}/>",
            x + 26.0,
            y - 4.0,
            y - 4.0,
            style.colour,
            style.width
        );
        if style.marker != usize::MAX {
            marker(out, x + 13.0, y - 4.0, style);
        }
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\">{}</text></g>",
            x + 32.0,
            escape(name)
        );
        self.x += width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_nice() {
        let cases = [
            (100.0, 5.0, 20.0),
            (7.0, 5.0, 2.0),
            (100_000.0, 5.0, 20_000.0),
            (0.3, 5.0, 0.1),
        ];
        for (span, count, step) in cases {
            assert!(
                (tick_step(span, count) - step).abs() < 1e-9,
                "{span}/{count}"
            );
        }
    }

    #[test]
    fn tick_labels_share_one_style_per_axis() {
        let cases: [(f64, f64, &[&str]); 8] = [
            (10.0, 5.0, &["0", "5", "10"]),
            (2.0, 0.5, &["0.0", "0.5", "1.0", "1.5", "2.0"]),
            (0.3, 0.1, &["0.0", "0.1", "0.2", "0.3"]),
            (0.06, 0.02, &["0.00", "0.02", "0.04", "0.06"]),
            (40.0, 20.0, &["0", "20", "40"]),
            (20_000.0, 5_000.0, &["0k", "5k", "10k", "15k", "20k"]),
            (30_000.0, 2_500.0, &["0.0k", "2.5k", "5.0k"]),
            (2e6, 1e6, &["0M", "1M", "2M"]),
        ];
        for (end, step, want) in cases {
            let values = ticks(0.0, end, step);
            let labels = tick_labels(&values, step);
            assert_eq!(&labels[..want.len()], want, "0..{end} by {step}");
        }
    }

    #[test]
    fn ticks_cover_the_range_on_multiples_of_the_step() {
        assert_eq!(ticks(0.0, 1.0, 0.25), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        assert_eq!(ticks(3.0, 11.0, 5.0), vec![5.0, 10.0]);
    }

    #[test]
    fn nines_map_quantiles_to_equal_steps() {
        let cases = [
            (0.0, 1_000_000, 0.0),
            (0.9, 1_000_000, 1.0),
            (0.99, 1_000_000, 2.0),
            (0.999, 1_000_000, 3.0),
            (0.9999, 1_000_000, 4.0),
            (1.0, 1_000, 3.0),
            (0.99999, 1_000, 3.0),
        ];
        for (q, samples, want) in cases {
            assert!((nines(q, samples) - want).abs() < 1e-9, "{q} of {samples}");
        }
        let labels: Vec<String> = (0..5).map(nines_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%"]);
    }

    fn two_series() -> LineChart {
        let mut chart = LineChart::new("T", "seconds", "n");
        chart.series = vec![
            Series::measured("a<b", vec![(0.0, 1.0), (1.0, 3.0)]),
            Series::baseline("baseline", vec![(0.0, 2.0), (1.0, 0.0)]),
        ];
        chart
    }

    #[test]
    fn each_series_is_a_distinct_line_with_its_legend_entry() {
        let svg = line_chart(&two_series());
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<g class=\"legend\">").count(), 2);
        assert!(svg.contains("a&lt;b") && !svg.contains("a<b"));
        // The first line is solid, the baseline dashed in its own colour: both show where they cross.
        assert!(svg.contains(&format!(
            "stroke=\"{}\" stroke-width=\"2.6\" stroke-linejoin",
            PALETTE[0]
        )));
        assert!(svg.contains(&format!(
            "stroke=\"{}\" stroke-width=\"2\" stroke-dasharray",
            BASELINE_PALETTE[0]
        )));
        assert!(svg.contains("class=\"marker\""));
        let root = &svg[..svg.find('>').unwrap()];
        assert!(
            root.contains("viewBox") && !root.contains("width="),
            "sized by its viewBox only"
        );
    }

    #[test]
    fn phase_bands_cover_their_stretch_of_the_fixed_x_range() {
        let mut chart = two_series();
        chart.x_range = Some((0.0, 10.0));
        chart.bands = vec![
            Band {
                label: "ramp",
                start: 0.0,
                end: 2.0,
                fill: "#eef",
            },
            Band {
                label: "hold",
                start: 2.0,
                end: 8.0,
                fill: "#fff",
            },
            Band {
                label: "drain",
                start: 8.0,
                end: 12.0,
                fill: "#eee",
            },
        ];
        let svg = line_chart(&chart);
        let plot_w = WIDTH - LEFT - RIGHT;
        let expect = |start: f64, width: f64| {
            format!(
                "class=\"band\" x=\"{:.1}\" y=\"{TOP}\" width=\"{:.1}\"",
                LEFT + start * plot_w,
                width * plot_w
            )
        };
        assert!(svg.contains(&expect(0.0, 0.2)), "{svg}");
        assert!(svg.contains(&expect(0.2, 0.6)), "{svg}");
        // Drain is cut at the range's end.
        assert!(svg.contains(&expect(0.8, 0.2)), "{svg}");
        for label in ["ramp", "hold", "drain"] {
            assert!(svg.contains(&format!(">{label}</text>")));
        }
    }

    #[test]
    fn the_threshold_is_a_line_when_near_the_data_and_named_when_far_above() {
        let mut chart = two_series();
        chart.threshold = Some(Threshold {
            label: "SLO p99 ≤ 5ms".into(),
            value: 5.0,
        });
        let near = line_chart(&chart);
        assert!(near.contains("class=\"threshold\""));
        assert!(near.contains(">SLO p99 ≤ 5ms</text>"));
        chart.threshold = Some(Threshold {
            label: "SLO p99 ≤ 500ms".into(),
            value: 500.0,
        });
        let far = line_chart(&chart);
        assert!(!far.contains("class=\"threshold\""));
        assert!(far.contains("SLO p99 ≤ 500ms (above this range)"));
    }

    #[test]
    fn a_nines_axis_is_labelled_in_percentiles() {
        let mut chart = LineChart::new("T", "percentile", "ms");
        chart.x_axis = XAxis::Nines;
        chart.series = vec![Series::measured(
            "cluster",
            vec![(0.0, 1.0), (1.0, 2.0), (2.0, 4.0), (3.0, 9.0)],
        )];
        let svg = line_chart(&chart);
        for label in ["0%", "90%", "99%", "99.9%"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
        assert!(!svg.contains(">99.99%</text>"));
    }

    #[test]
    fn series_past_two_legend_rows_are_drawn_and_counted() {
        let mut chart = LineChart::new("T", "s", "n");
        chart.series = (0..20)
            .map(|i| {
                Series::measured(
                    format!("node-with-a-long-name-{i}"),
                    vec![(0.0, 1.0), (1.0, 2.0)],
                )
            })
            .collect();
        let svg = line_chart(&chart);
        assert_eq!(svg.matches("<polyline").count(), 20);
        let shown = svg.matches("<g class=\"legend\">").count();
        assert!(shown < 20);
        assert!(
            svg.contains(&format!("+{} more series", 20 - shown)),
            "{svg}"
        );
    }

    #[test]
    fn empty_charts_say_so() {
        assert!(line_chart(&LineChart::new("T", "s", "n")).contains("no data measured"));
    }
}
