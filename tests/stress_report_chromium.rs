//! `report.html` renders in headless Chromium (Debian's `chromium`): every SVG chart is in the
//! parsed page with drawn data and the run's header, and screenshots show every series of every
//! chart: each series' stroke colour has pixels of its own inside the chart's plot area, so no
//! line hides another (a cluster line under its baseline, `ok/s` under `sent/s`).
//! Without a `chromium` binary on PATH the test says it was skipped and passes (fails under CI).

mod support;

use erlmcp_gen::report::summary::ClusterFileFacts;
use erlmcp_gen::stress::{StressOptions, StressTarget, TargetKind, run};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{MockConfig, MockServer};

fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser"].into_iter().find(|name| {
        Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

const HEADLESS: [&str; 7] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    // Colours as written, so a series' stroke is found by its value.
    "--force-color-profile=srgb",
];

fn screenshot(browser: &str, page: &Path, png: &Path, size: &str) {
    let shot = Command::new(browser)
        .args(HEADLESS)
        .arg(format!("--window-size={size}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
}

/// A decoded screenshot, RGB.
struct Image {
    width: usize,
    height: usize,
    rgb: Vec<[u8; 3]>,
}

fn decode(path: &Path) -> Image {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buffer).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let channels = info.color_type.samples();
    let rgb = buffer[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width as usize,
        height: info.height as usize,
        rgb,
    }
}

fn hex(colour: &str) -> [u8; 3] {
    let v = u32::from_str_radix(colour.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

/// The number attribute `name` of the first element with `marker` in `svg`.
fn attribute(svg: &str, marker: &str, name: &str) -> f64 {
    let element = &svg[svg.find(marker).unwrap()..];
    let element = &element[..element.find('>').unwrap()];
    let start = element.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
    element[start..start + element[start..].find('"').unwrap()]
        .parse()
        .unwrap()
}

/// `(name, stroke colour)` of every series polyline.
fn series(svg: &str) -> Vec<(String, String)> {
    svg.split("<polyline class=\"series\" data-series=\"")
        .skip(1)
        .map(|rest| {
            let name = rest[..rest.find('"').unwrap()].to_string();
            let stroke = rest.find("stroke=\"").unwrap() + 8;
            (name, rest[stroke..stroke + 7].to_string())
        })
        .collect()
}

/// Pixels within a small distance of `colour` inside `area` (x, y, width, height in pixels).
fn pixels_of(image: &Image, colour: [u8; 3], area: (f64, f64, f64, f64)) -> usize {
    let (x, y, w, h) = area;
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let x1 = ((x + w).ceil() as usize + 1).min(image.width);
    let y1 = ((y + h).ceil() as usize + 2).min(image.height);
    (y0..y1)
        .flat_map(|py| (x0..x1).map(move |px| (px, py)))
        .filter(|(px, py)| {
            let p = image.rgb[py * image.width + px];
            p.iter()
                .zip(colour)
                .map(|(a, b)| (i32::from(*a) - i32::from(b)).abs())
                .sum::<i32>()
                <= 24
        })
        .count()
}

#[test]
fn report_html_renders_its_charts_in_headless_chromium() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").is_err(),
            "CI installs chromium (scripts/test.sh)"
        );
        eprintln!("SKIPPED: no chromium on PATH (apt-get install chromium)");
        return;
    };
    let server = MockServer::start(MockConfig::mcp(100));
    let echo = MockServer::start(MockConfig::baseline());
    let dir = std::env::temp_dir().join(format!("erlmcp-stress-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = StressOptions::new(10, Duration::from_millis(2500), 100.0, dir.clone());
    options.ramp = Duration::from_millis(1000);
    options.cluster_file = Some(ClusterFileFacts {
        path: "clusters/chromium.toml".into(),
        sha256: "ab".repeat(32),
        slo_p99: "100ms".into(),
    });
    // Resources are sampled from the cluster's node (this process), not from the baseline.
    let target = |node: &str, addr, kind| StressTarget {
        node: node.into(),
        tcp_addr: addr,
        api_addr: None,
        pid: (kind == TargetKind::Mcp).then(std::process::id),
        capacity: 100,
        kind,
    };
    run(
        vec![
            target("node1", server.addr, TargetKind::Mcp),
            target("baseline", echo.addr, TargetKind::BaselineEcho),
        ],
        &options,
    )
    .unwrap();
    let report = dir.join("report.html");

    let dom = Command::new(browser)
        .args(HEADLESS)
        .arg("--dump-dom")
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(&format!("erlmcp-gen {}", env!("CARGO_PKG_VERSION"))));
    assert!(dom.contains(&"ab".repeat(32)), "the cluster file's hash");
    assert!(
        dom.contains("p99 ≤ 100ms, error rate ≤ 1 %"),
        "the SLO in the file's units"
    );
    let charts: Vec<&str> = dom
        .split("<svg")
        .skip(1)
        .map(|c| c.split("</svg>").next().unwrap_or(""))
        .collect();
    assert_eq!(charts.len(), 6, "six charts in the rendered page");
    for chart in &charts {
        assert!(
            chart.contains("<polyline"),
            "chart without data: {chart:.200}"
        );
    }
    for (chart, phases) in charts.iter().zip([true, true, true, false, true, true]) {
        assert_eq!(chart.contains(">ramp</text>"), phases, "{chart:.100}");
        assert_eq!(chart.contains(">drain</text>"), phases, "{chart:.100}");
    }
    for chart in [charts[2], charts[3]] {
        // A line where it is near the data, named as above the range where it would flatten it.
        assert!(
            chart.contains("class=\"threshold\"")
                || chart.contains("SLO p99 ≤ 100ms (above this range)"),
            "the SLO on the latency charts: {chart:.300}"
        );
    }
    assert!(
        charts[3].contains(">99%</text>"),
        "the spectrum's nines axis"
    );

    // The whole page, for a person to look at (kept in the run's directory).
    screenshot(browser, &report, &dir.join("report.png"), "1600,2600");
    assert!(std::fs::metadata(dir.join("report.png")).unwrap().len() > 10_000);

    // Each chart alone at its viewBox width, so a pixel is a viewBox unit (scaled if not).
    let html = std::fs::read_to_string(&report).unwrap();
    let svgs: Vec<&str> = html
        .split("<svg")
        .skip(1)
        .map(|c| &c[..c.find("</svg>").unwrap() + 6])
        .collect();
    let mut checked = 0;
    for (index, svg) in svgs.iter().enumerate() {
        let page = dir.join(format!("chart-{index}.html"));
        std::fs::write(
            &page,
            format!(
                "<!DOCTYPE html><html><body style=\"margin:0;background:#fff\">\
                 <div style=\"width:960px\"><svg style=\"display:block;width:100%;height:auto\"{svg}</div></body></html>"
            ),
        )
        .unwrap();
        let png = dir.join(format!("chart-{index}.png"));
        screenshot(browser, &page, &png, "960,400");
        let image = decode(&png);
        let scale = image.width as f64 / 960.0;
        let area = (
            attribute(svg, "class=\"plot-area\"", "x") * scale,
            attribute(svg, "class=\"plot-area\"", "y") * scale,
            attribute(svg, "class=\"plot-area\"", "width") * scale,
            attribute(svg, "class=\"plot-area\"", "height") * scale,
        );
        let drawn = series(svg);
        assert!(!drawn.is_empty(), "chart {index} has series");
        let colours: Vec<&String> = drawn.iter().map(|(_, c)| c).collect();
        for (name, colour) in &drawn {
            assert_eq!(
                colours.iter().filter(|c| **c == colour).count(),
                1,
                "chart {index}: {name}'s colour {colour} is its own"
            );
            let seen = pixels_of(&image, hex(colour), area);
            assert!(
                seen >= 20,
                "chart {index}: series {name} ({colour}) has {seen} visible pixels in the plot area; see {}",
                png.display()
            );
            checked += 1;
        }
    }
    // sessions 2, throughput 4, latency 5, spectrum 2, CPU 1, memory 1.
    assert_eq!(checked, 15, "every series of every chart was looked for");
}
