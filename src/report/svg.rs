//! Hand-written SVG charts: line charts over time and a bar chart, with axes, ticks and legend.
//!
//! Plain SVG with no script and no external fonts, so the report works offline and prints.

use std::fmt::Write as _;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
/// Colour-blind-friendly palette (Okabe–Ito).
const PALETTE: [&str; 8] = [
    "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442",
];

/// One named line of a line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label.
    pub name: String,
    /// `(x, y)` points in x order.
    pub points: Vec<(f64, f64)>,
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

fn format_tick(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{:.1}G", value / 1e9)
    } else if magnitude >= 1e6 {
        format!("{:.1}M", value / 1e6)
    } else if magnitude >= 1e4 {
        format!("{:.0}k", value / 1e3)
    } else if magnitude >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn open_svg(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{t}\" font-family=\"sans-serif\" font-size=\"11\">\
         <title>{t}</title><rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{t}</text>",
        t = escape(title)
    );
}

fn no_data(out: &mut String, message: &str) {
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">{}</text></svg>",
        WIDTH / 2.0,
        HEIGHT / 2.0,
        escape(message)
    );
}

/// Axes, grid lines and tick labels for the given ranges; returns the data→pixel mappings.
fn axes(
    out: &mut String,
    x_ticks: bool,
    x: (f64, f64),
    y: (f64, f64),
    x_label: &str,
    y_label: &str,
) -> (impl Fn(f64) -> f64 + use<>, impl Fn(f64) -> f64 + use<>) {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let (x0, x1) = x;
    let (y0, y1) = y;
    let sx = move |v: f64| LEFT + (v - x0) / (x1 - x0) * plot_w;
    let sy = move |v: f64| TOP + plot_h - (v - y0) / (y1 - y0) * plot_h;
    let y_step = tick_step(y1 - y0, 5.0);
    let mut tick = (y0 / y_step).ceil() * y_step;
    while tick <= y1 + y_step * 1e-9 {
        let py = sy(tick);
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{py:.1}\" y2=\"{py:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            WIDTH - RIGHT,
            LEFT - 6.0,
            py + 4.0,
            format_tick(tick)
        );
        tick += y_step;
    }
    let x_step = tick_step(x1 - x0, 8.0);
    let mut tick = (x0 / x_step).ceil() * x_step;
    while x_ticks && tick <= x1 + x_step * 1e-9 {
        let px = sx(tick);
        let _ = write!(
            out,
            "<line x1=\"{px:.1}\" x2=\"{px:.1}\" y1=\"{}\" y2=\"{}\" stroke=\"#999\"/>\
             <text x=\"{px:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 16.0,
            format_tick(tick)
        );
        tick += x_step;
    }
    let _ = write!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(14 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
        escape(x_label),
        TOP + plot_h / 2.0,
        escape(y_label)
    );
    (sx, sy)
}

/// A line chart of `series` over a shared x axis; says "no data" when there is none.
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let mut out = String::new();
    open_svg(&mut out, title);
    let points: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    if points.is_empty() {
        no_data(&mut out, "no data measured");
        return out;
    }
    let x0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let mut x1 = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let y1 = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let (sx, sy) = axes(&mut out, true, (x0, x1), (0.0, y1), x_label, y_label);
    for (index, s) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
            .collect();
        if !path.is_empty() {
            let _ = write!(
                out,
                "<polyline class=\"series\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\" points=\"{}\"/>",
                path.join(" ")
            );
        }
        let legend_x = LEFT + 10.0 + (index as f64 % 4.0) * 160.0;
        let legend_y = TOP + 14.0 + (index / 4) as f64 * 14.0;
        let _ = write!(
            out,
            "<rect x=\"{legend_x}\" y=\"{}\" width=\"12\" height=\"4\" fill=\"{colour}\"/>\
             <text x=\"{}\" y=\"{legend_y}\">{}</text>",
            legend_y - 5.0,
            legend_x + 16.0,
            escape(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

/// A bar chart of labelled counts (e.g. a latency distribution); says "no data" when empty.
pub fn bar_chart(title: &str, x_label: &str, y_label: &str, bars: &[(String, f64)]) -> String {
    let mut out = String::new();
    open_svg(&mut out, title);
    if bars.is_empty() {
        no_data(&mut out, "no data measured");
        return out;
    }
    let y_max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let y1 = if y_max > 0.0 { y_max * 1.1 } else { 1.0 };
    let (_, sy) = axes(
        &mut out,
        false,
        (0.0, bars.len() as f64),
        (0.0, y1),
        x_label,
        y_label,
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let slot = plot_w / bars.len() as f64;
    let label_every = (bars.len() / 12).max(1);
    for (index, (label, value)) in bars.iter().enumerate() {
        let x = LEFT + index as f64 * slot;
        let y = sy(*value);
        let _ = write!(
            out,
            "<rect class=\"bar\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
            x + slot * 0.1,
            slot * 0.8,
            (sy(0.0) - y).max(0.0),
            PALETTE[0],
            escape(label),
            value
        );
        if index % label_every == 0 {
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"9\" fill=\"#333\">{}</text>",
                x + slot / 2.0,
                HEIGHT - BOTTOM + 14.0,
                escape(label)
            );
        }
    }
    out.push_str("</svg>");
    out
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
    fn line_chart_draws_one_polyline_per_series() {
        let series = vec![
            Series {
                name: "a<b".into(),
                points: vec![(0.0, 1.0), (1.0, 3.0)],
            },
            Series {
                name: "c".into(),
                points: vec![(0.0, 2.0), (1.0, 0.0)],
            },
        ];
        let svg = line_chart("T", "s", "n", &series);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
    }

    #[test]
    fn empty_charts_say_so() {
        assert!(line_chart("T", "s", "n", &[]).contains("no data measured"));
        assert!(bar_chart("T", "s", "n", &[]).contains("no data measured"));
    }

    #[test]
    fn bar_chart_draws_each_bar() {
        let bars = vec![("1".to_string(), 3.0), ("2".to_string(), 5.0)];
        assert_eq!(
            bar_chart("T", "ms", "n", &bars)
                .matches("class=\"bar\"")
                .count(),
            2
        );
    }
}
