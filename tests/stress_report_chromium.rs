//! `report.html` renders in headless Chromium (Debian's `chromium`): every SVG chart is in the
//! parsed page with drawn data, and a screenshot of the page is produced.
//! Without a `chromium` binary on PATH the test says it was skipped and passes.

mod support;

use erlmcp_gen::stress::{StressOptions, StressTarget, TargetKind, run};
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
    let dir = std::env::temp_dir().join(format!("erlmcp-stress-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut options = StressOptions::new(10, Duration::from_millis(1500), 100.0, dir.clone());
    options.ramp = Duration::from_millis(300);
    let target = StressTarget {
        node: "node1".into(),
        tcp_addr: server.addr,
        api_addr: None,
        pid: Some(std::process::id()),
        capacity: 100,
        kind: TargetKind::Mcp,
    };
    run(vec![target], &options).unwrap();

    let url = format!("file://{}", dir.join("report.html").display());
    let headless = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
    ];
    let dom = Command::new(browser)
        .args(headless)
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let charts: Vec<&str> = dom
        .split("<svg")
        .skip(1)
        .map(|c| c.split("</svg>").next().unwrap_or(""))
        .collect();
    assert_eq!(charts.len(), 6, "six charts in the rendered page");
    for chart in &charts {
        assert!(
            chart.contains("<polyline") || chart.contains("class=\"bar\""),
            "chart without data: {chart:.200}"
        );
    }

    let png = dir.join("report.png");
    let shot = Command::new(browser)
        .args(headless)
        .arg("--window-size=800,2400")
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.status.success(),
        "{}",
        String::from_utf8_lossy(&shot.stderr)
    );
    assert!(
        std::fs::metadata(&png).unwrap().len() > 10_000,
        "a page with charts is not a blank PNG"
    );
}
