//! `validate --host` on this machine judges the machine-wide limits of a million sessions
//! (fs.file-max, fs.nr_open, conntrack, ephemeral ports per source address, tcp_mem, kernel
//! memory per session) and names the one that binds first; `--probe` measures a loopback
//! connection's kernel cost and a held session's generator memory, which the memory check adds
//! up with the nodes'. Linux only (/proc); no Docker, no fixed ports.

use std::process::{Command, Output};

fn validate(args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .arg("validate")
        .args(args)
        .env("ERLMCP_STATE_DIR", state.path())
        .env_remove("CLICOLOR_FORCE")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

fn check<'a>(document: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    document["host"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name:?} in {}", document["host"]["checks"]))
}

#[test]
fn the_machine_wide_checks_appear_with_ceilings_and_the_one_that_binds_first() {
    if !std::path::Path::new("/proc/sys/fs/file-max").exists() {
        eprintln!(
            "SKIPPED: machine-wide limits because /proc/sys/fs/file-max is absent (not Linux)"
        );
        return;
    }
    let output = validate(&["clusters/bench-1m.toml", "--host", "--format", "json"]);
    let document = json(&output);
    let host = &document["host"];
    assert_eq!(host["sessions"], 1_000_000);
    let file_max = check(&document, "open files, machine-wide (fs.file-max)");
    assert!(file_max["ceiling_sessions"].is_u64(), "{file_max}");
    assert!(host["facts"]["system"]["file_max"].is_u64(), "{host}");
    check(&document, "open-file limit ceiling (fs.nr_open)");
    let conntrack = check(&document, "connection tracking (nf_conntrack_max)");
    if std::path::Path::new("/proc/sys/net/netfilter/nf_conntrack_max").exists() {
        let loopback = &host["facts"]["system"]["conntrack"]["loopback"]["state"];
        assert!(loopback.is_string(), "{host}");
        if conntrack["verdict"] == "fail" {
            assert!(conntrack["fix"].as_str().unwrap().contains("--notrack"));
        }
    }
    let ports = check(&document, "ephemeral ports per source address");
    assert!(
        ports["need"]
            .as_str()
            .unwrap()
            .starts_with("2,000 per source address")
    );
    // Without --probe the kernel's cost per session is not guessed.
    let memory = check(&document, "kernel memory per session (slab)");
    assert_eq!(memory["have"], "not measured");
    let all = check(
        &document,
        "memory of all sessions together (kernel + generator + nodes)",
    );
    assert_eq!(all["have"], "not measured");
    assert!(all["fix"].as_str().unwrap().contains("--probe"), "{all}");
    check(&document, "TCP buffer memory (tcp_mem)");
    let first = &host["binds_first"];
    let smallest = host["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["ceiling_sessions"].as_u64())
        .min()
        .unwrap();
    assert_eq!(first["sessions"], smallest, "{host}");

    let text = validate(&["clusters/bench-1m.toml", "--host"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert!(stdout.contains("\nBinds first: "), "{stdout}");
}

#[test]
fn the_probe_measures_what_a_loopback_connection_costs_the_kernel() {
    if !std::path::Path::new("/proc/net/sockstat").exists() {
        eprintln!("SKIPPED: the socket probe because /proc/net/sockstat is absent (not Linux)");
        return;
    }
    let output = validate(&[
        "clusters/bench-1m.toml",
        "--host",
        "--probe",
        "--format",
        "json",
    ]);
    let document = json(&output);
    let cost = &document["host"]["facts"]["socket_cost"];
    assert!(
        cost.is_object(),
        "{}",
        document["host"]["facts"]["socket_probe_error"]
    );
    assert_eq!(cost["rounds"], 3);
    assert!(cost["pairs"].as_u64().unwrap() >= 100, "{cost}");
    assert!(cost["slab_bytes_per_pair"].is_u64(), "{cost}");
    // Bounded: three rounds of at most 2,000 pairs, under the probe's 10 s deadline.
    assert!(cost["elapsed_ms"].as_u64().unwrap() < 10_000, "{cost}");
    let memory = check(&document, "kernel memory per session (slab)");
    assert!(
        memory["have"].as_str().unwrap().starts_with("measured "),
        "{memory}"
    );
    // The generator's part: real sessions held in-process, their private memory read.
    let generator = &document["host"]["facts"]["generator_cost"];
    assert!(
        generator.is_object(),
        "{}",
        document["host"]["facts"]["generator_probe_error"]
    );
    assert!(
        generator["sessions"].as_u64().unwrap() >= 500,
        "{generator}"
    );
    // At least its 1 KiB read buffer and its slot task.
    assert!(
        generator["bytes_per_session"].as_u64().unwrap() >= 1024,
        "{generator}"
    );
    let all = check(
        &document,
        "memory of all sessions together (kernel + generator + nodes)",
    );
    assert!(all["ceiling_sessions"].is_u64(), "{all}");
    assert!(
        all["need"]
            .as_str()
            .unwrap()
            .contains("for 1,000,000 sessions: kernel "),
        "{all}"
    );
    // No stress run is recorded in the repository, so the nodes' part is their limits, and says so.
    assert!(
        all["need"]
            .as_str()
            .unwrap()
            .contains("an upper bound, not a measurement"),
        "{all}"
    );
    if document["host"]["facts"]["system"]["conntrack"].is_object() {
        let how = &document["host"]["facts"]["system"]["conntrack"]["loopback"]["how"];
        assert!(how.as_str().unwrap().starts_with("measured"), "{how}");
    }
}

#[test]
fn probe_needs_host() {
    let output = validate(&["clusters/bench-1m.toml", "--probe"]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--host"));
}

#[test]
fn a_docker_cluster_is_judged_against_the_neighbour_table_and_a_native_one_is_not() {
    if !std::path::Path::new("/proc/sys/net/ipv4/neigh/default/gc_thresh3").exists() {
        eprintln!("SKIPPED: the neighbour-table check because /proc has no IPv4 neighbour table");
        return;
    }
    let name = "neighbour table (ARP), containers on one bridge";
    let native = json(&validate(&[
        "clusters/bench-1m.toml",
        "--host",
        "--format",
        "json",
    ]));
    let listed = native["host"]["checks"].as_array().unwrap();
    assert!(listed.iter().all(|c| c["name"] != name), "{listed:?}");

    // The same 63 nodes on the Docker runtime: 63 workers of 16,000 sessions on one bridge.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench-1m-docker.toml");
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clusters/bench-1m.toml"),
    )
    .unwrap()
    .replace("kind = \"native\"", "kind = \"docker\"");
    std::fs::write(&file, text).unwrap();
    let docker = json(&validate(&[
        file.to_str().unwrap(),
        "--host",
        "--format",
        "json",
    ]));
    let Some(table) = docker["host"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
    else {
        // A Docker host that is not this machine (DOCKER_HOST elsewhere) has no /proc here.
        assert!(docker["host"]["facts"]["system"].is_null(), "{docker}");
        eprintln!("SKIPPED: the neighbour-table check because the engine is not this machine");
        return;
    };
    assert!(
        table["need"]
            .as_str()
            .unwrap()
            .starts_with("11,970 entries"),
        "{table}"
    );
}
