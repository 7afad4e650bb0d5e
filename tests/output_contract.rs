//! The output contract, subcommand by subcommand, without Docker: `--format json` prints one
//! parsable document with a `schema_version` and nothing else on stdout; every outcome has its
//! own exit code; `init`, `completions` and `man` work. Runtime commands run against the native
//! runtime with a temporary `ERLMCP_STATE_DIR`, where nothing is running.

use std::path::Path;
use std::process::{Command, Output};

use erlmcp_gen::output::{Outcome, SCHEMA_VERSION};

/// Runs the binary in the crate's directory, state in `state` (never the user's).
fn run(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_erlmcp-gen"))
        .args(args)
        .env("ERLMCP_STATE_DIR", state)
        .env_remove("CLICOLOR_FORCE")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// Stdout is exactly one JSON document of `command`'s, with the schema version.
fn document(output: &Output, command: &str) -> serde_json::Value {
    let text = String::from_utf8_lossy(&output.stdout);
    // from_slice refuses trailing characters other than whitespace: one document, nothing else.
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{command}: stdout is not one JSON document ({e}):\n{text}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    assert_eq!(json["schema_version"], SCHEMA_VERSION, "{text}");
    assert_eq!(json["command"], command, "{text}");
    assert_no_empty_or_null(&json, command);
    json
}

/// Absent rather than `null` or `""`, all the way down.
fn assert_no_empty_or_null(value: &serde_json::Value, at: &str) {
    match value {
        serde_json::Value::Object(fields) => {
            for (key, field) in fields {
                assert!(
                    !field.is_null() && field.as_str() != Some(""),
                    "{at}.{key} is {field}"
                );
                assert_no_empty_or_null(field, &format!("{at}.{key}"));
            }
        }
        serde_json::Value::Array(items) => items
            .iter()
            .for_each(|item| assert_no_empty_or_null(item, at)),
        _ => {}
    }
}

fn code(outcome: Outcome) -> Option<i32> {
    Some(i32::from(outcome.code()))
}

const INVALID: &str = "[cluster]\nname = \"x\"\n\n[nodes]\ncount = 0\n";

#[test]
fn every_subcommand_prints_one_json_document_and_nothing_else() {
    let state = tempfile::tempdir().unwrap();
    let out = state.path().join("generated");
    let out = out.to_str().unwrap();
    let native = ["--runtime", "native", "--format", "json"];
    for (command, args) in [
        ("validate", vec!["validate", "clusters/local.toml"]),
        ("render", vec!["render", "clusters/local.toml", "-o", out]),
        (
            "render",
            vec!["render", "clusters/local.toml", "-o", out, "--check"],
        ),
        (
            "plan",
            [&["plan", "clusters/local.toml"][..], &native].concat(),
        ),
        (
            "status",
            [&["status", "clusters/local.toml"][..], &native].concat(),
        ),
        (
            "down",
            [&["down", "clusters/local.toml"][..], &native].concat(),
        ),
    ] {
        let mut args = args;
        if !args.contains(&"--format") {
            args.extend(["--format", "json"]);
        }
        let output = run(state.path(), &args);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        document(&output, command);
    }
}

#[test]
fn the_old_json_flag_still_works() {
    let state = tempfile::tempdir().unwrap();
    let output = run(
        state.path(),
        &[
            "plan",
            "clusters/local.toml",
            "--runtime",
            "native",
            "--json",
        ],
    );
    document(&output, "plan");
}

#[test]
fn documents_use_named_fields_and_units_in_names() {
    let state = tempfile::tempdir().unwrap();
    let output = run(
        state.path(),
        &[
            "validate",
            "clusters/local.toml",
            "--host",
            "--format",
            "json",
        ],
    );
    let json = document(&output, "validate");
    let facts = &json["host"]["facts"];
    // Named fields, not `[20000, 20000]`; bytes as a number, not `"24684092KiB"`; no `{"Ok": …}`.
    if facts.get("nofile").is_some() {
        assert!(facts["nofile"]["soft"].is_u64() && facts["nofile"]["hard"].is_u64());
    }
    if facts.get("memory_bytes").is_some() {
        assert!(facts["memory_bytes"].is_u64(), "{facts}");
    }
    assert!(facts["docker"]["socket"].is_string(), "{facts}");
    assert!(facts["docker"].get("Ok").is_none() && facts["docker"].get("Err").is_none());
    let status = run(
        state.path(),
        &[
            "status",
            "clusters/local.toml",
            "--runtime",
            "native",
            "--format",
            "json",
        ],
    );
    let json = document(&status, "status");
    assert!(json["prometheus"].get("Ok").is_none() && json["prometheus"].get("Err").is_none());
}

#[test]
fn plan_changes_exit_zero_unless_a_detailed_exit_code_is_asked_for() {
    let state = tempfile::tempdir().unwrap();
    let plan = |extra: &[&str]| {
        let args = [
            &["plan", "clusters/local.toml", "--runtime", "native", "-q"][..],
            extra,
        ]
        .concat();
        run(state.path(), &args)
    };
    // Nothing runs in a fresh state directory: every resource is a create.
    assert_eq!(plan(&[]).status.code(), code(Outcome::Success));
    let detailed = plan(&["--detailed-exitcode", "--format", "json"]);
    assert_eq!(detailed.status.code(), code(Outcome::ChangesPending));
    assert_eq!(document(&detailed, "plan")["has_changes"], true);
}

#[test]
fn each_outcome_has_its_own_exit_code() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path();
    let invalid = dir.join("invalid.toml");
    std::fs::write(&invalid, INVALID).unwrap();
    let invalid = invalid.to_str().unwrap();
    // Valid, but no node of this machine holds five million connections.
    let too_big = dir.join("too-big.toml");
    std::fs::write(
        &too_big,
        "[cluster]\nname = \"big\"\n\n[runtime]\nkind = \"native\"\n\n[nodes]\ncount = 2\n\n\
         [defaults]\nconnections = 5000000\nnofile = 5001024\n\n\
         [[node]]\nname = \"node1\"\nrole = \"coordinator\"\n",
    )
    .unwrap();
    let too_big = too_big.to_str().unwrap();
    let stale = dir.join("stale");
    std::fs::create_dir(&stale).unwrap();
    let stale = stale.to_str().unwrap();
    let missing = dir.join("missing.toml");
    let missing = missing.to_str().unwrap();
    for (args, outcome) in [
        (vec!["validate", "clusters/local.toml"], Outcome::Success),
        (vec!["validate", invalid], Outcome::InvalidFile),
        (vec!["render", invalid, "-o", stale], Outcome::InvalidFile),
        (
            vec!["plan", invalid, "--runtime", "native"],
            Outcome::InvalidFile,
        ),
        (vec!["validate", missing], Outcome::Failed),
        (vec!["validate", too_big, "--host"], Outcome::HostCannotRun),
        (
            vec!["render", "clusters/local.toml", "-o", stale, "--check"],
            Outcome::Stale,
        ),
        (vec!["validate", "--no-such-flag", "x"], Outcome::Usage),
        (vec!["frobnicate"], Outcome::Usage),
        (vec!["--help"], Outcome::Success),
    ] {
        let output = run(dir, &args);
        assert_eq!(output.status.code(), code(outcome), "{args:?}: {output:?}");
    }
}

#[test]
fn a_host_that_cannot_run_the_cluster_says_so_in_json_too() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("big.toml");
    std::fs::write(
        &file,
        "[cluster]\nname = \"big\"\n\n[runtime]\nkind = \"native\"\n\n[nodes]\ncount = 2\n\n\
         [defaults]\nconnections = 5000000\nnofile = 5001024\n\n\
         [[node]]\nname = \"node1\"\nrole = \"coordinator\"\n",
    )
    .unwrap();
    let output = run(
        state.path(),
        &[
            "validate",
            file.to_str().unwrap(),
            "--host",
            "--format",
            "json",
        ],
    );
    assert_eq!(output.status.code(), code(Outcome::HostCannotRun));
    let json = document(&output, "validate");
    assert_eq!(
        (&json["valid"], &json["host"]["fits"]),
        (&true.into(), &false.into())
    );
}

#[test]
fn the_exit_code_table_is_in_help() {
    let state = tempfile::tempdir().unwrap();
    let help = run(state.path(), &["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    for outcome in Outcome::ALL {
        let line = format!("{:>3}  {}", outcome.code(), outcome.meaning());
        assert!(text.contains(&line), "{line} not in:\n{text}");
    }
}

#[test]
fn every_subcommand_takes_format() {
    let state = tempfile::tempdir().unwrap();
    for command in [
        "validate", "render", "plan", "apply", "status", "down", "stress", "init", "logs",
    ] {
        let help = run(state.path(), &[command, "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(text.contains("--format <FORMAT>"), "{command}:\n{text}");
        assert!(
            !text.contains("--json"),
            "{command} shows the old flag:\n{text}"
        );
    }
}

#[test]
fn init_writes_a_file_that_validates_and_keeps_an_existing_one() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("first.toml");
    let file = file.to_str().unwrap();
    let written = run(
        state.path(),
        &[
            "init",
            "--connections",
            "3000",
            "--runtime",
            "native",
            "-o",
            file,
        ],
    );
    assert!(written.status.success(), "{written:?}");
    let validated = run(state.path(), &["validate", file, "--format", "json"]);
    assert_eq!(validated.status.code(), Some(0), "{validated:?}");
    let json = document(&validated, "validate");
    assert_eq!(json["valid"], true);
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains("connections = 3000") && text.contains("kind = \"native\""));
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() >= 5,
        "{text}"
    );

    let again = run(state.path(), &["init", "-o", file]);
    assert_eq!(again.status.code(), code(Outcome::Failed));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), text);

    let json = run(state.path(), &["init", "-o", "-", "--format", "json"]);
    let json = document(&json, "init");
    assert!(json["text"].as_str().unwrap().contains("[cluster]"));
    assert!(json["sizing"]["nodes"].as_u64().unwrap() >= 2);
}

#[test]
fn init_refuses_a_name_that_would_not_validate() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("bad.toml");
    let output = run(
        state.path(),
        &[
            "init",
            "--name",
            "x\"\n[evil]\nkey = \"",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(output.status.code(), code(Outcome::Failed));
    assert!(!file.exists());
}

#[test]
fn completions_and_the_man_page_are_generated() {
    let state = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let output = run(state.path(), &["completions", shell]);
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&output.stdout);
        assert!(
            script.contains("erlmcp-gen") && script.contains("validate"),
            "{shell}"
        );
    }
    let man = run(state.path(), &["man"]);
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(page.starts_with(".ie") || page.contains(".TH"), "{page}");
    assert!(page.contains("erlmcp\\-gen"), "{page}");
}

#[test]
fn completions_and_the_man_page_in_json_carry_the_text_they_print() {
    let state = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let text = run(state.path(), &["completions", shell]);
        let json = run(state.path(), &["completions", shell, "--format", "json"]);
        assert!(json.status.success(), "{shell}");
        let doc = document(&json, "completions");
        assert_eq!(doc["shell"], shell);
        assert_eq!(
            doc["script"].as_str().unwrap().as_bytes(),
            text.stdout,
            "{shell}"
        );
    }
    let text = run(state.path(), &["man"]);
    let json = run(state.path(), &["man", "--format", "json"]);
    assert!(json.status.success());
    let doc = document(&json, "man");
    assert_eq!(doc["section"], 1);
    assert_eq!(doc["roff"].as_str().unwrap().as_bytes(), text.stdout);
    let bad = run(state.path(), &["man", "--format", "yaml"]);
    assert_eq!(bad.status.code(), code(Outcome::Usage));
    assert!(bad.stdout.is_empty());
}

#[test]
fn durations_read_the_same_on_the_command_line_as_in_the_file() {
    let state = tempfile::tempdir().unwrap();
    for (duration, ok) in [
        ("1m30s", true),
        ("1.5s", true),
        ("5min", true),
        ("90", false),
    ] {
        let output = run(
            state.path(),
            &[
                "status",
                "clusters/local.toml",
                "--runtime",
                "native",
                "--watch-for",
                duration,
                "--format",
                "json",
            ],
        );
        assert_eq!(output.status.success(), ok, "{duration}: {output:?}");
        if !ok {
            assert_eq!(output.status.code(), code(Outcome::Usage));
            assert!(String::from_utf8_lossy(&output.stderr).contains("like `30s`, `1.5s`"));
        }
    }
}
