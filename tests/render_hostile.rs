//! Defense in depth: hostile strings put straight into a resolved cluster (validation bypassed)
//! render inert. YAML parses back with the template's keys and the values round-trip; the setup
//! script passes `bash -n`, and running it creates nothing; the provisioning script Colima runs
//! as root keeps every value one quoted word.

mod inert;

use std::path::Path;
use std::process::Command;

use erlmcp_gen::render;
use inert::{Strings, assert_inert, base_cluster, provision_yaml_scalar, with_strings};
use proptest::prelude::*;

/// Strings that broke out of an artifact before escaping per language (issue 11), `MARKER`
/// standing for a file that must never be created.
const HOSTILE: &[&str] = &[
    "x\nprivileged: true\ncap_add: [ALL]",
    "$(touch MARKER)",
    "`touch MARKER`",
    "'; touch MARKER; '",
    "\"; touch MARKER; \"",
    "'\n  - mode: system\n    script: touch MARKER\n",
    "${HOME}",
    "$$HOME",
    "a: b # c",
    "- [x] {y} &z *w !t %u @v |l >f",
    "yes",
    "~",
    "0.1",
    "",
    "x\\",
    "rust:1\nRUN touch MARKER",
    "x\r\ny\u{85}z\u{2028}w",
    "é\tü\u{1F600}",
    "\u{7}\u{1b}[31m",
];

fn with_marker(text: &str, marker: &Path) -> String {
    text.replace("MARKER", &marker.display().to_string())
}

#[test]
fn every_hostile_string_in_every_field_renders_inert() {
    let base = base_cluster();
    for hostile in HOSTILE {
        assert_inert(&base, &Strings::all(hostile));
    }
}

/// Runs `script` with `args` in `dir`, HOME pointing into it and no Colima on the PATH.
fn run_script(script: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("bash")
        .arg(script)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.join("home"))
        .output()
        .unwrap()
}

#[test]
fn the_setup_script_parses_and_running_it_expands_nothing() {
    let base = base_cluster();
    for hostile in HOSTILE {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let text = with_marker(hostile, &marker);
        let cluster = with_strings(&base, &Strings::all(&text));
        let files = render::render(&cluster).unwrap();
        let out = dir.path().join("out");
        render::write(&files, &out).unwrap();
        let script = out.join("colima-setup.sh");
        let syntax = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(
            syntax.status.success(),
            "bash -n failed for {hostile:?}: {}",
            String::from_utf8_lossy(&syntax.stderr)
        );
        std::fs::create_dir(dir.path().join("home")).unwrap();
        for args in [&["help"][..], &["tune"], &["status"]] {
            let run = run_script(&script, dir.path(), args);
            assert!(run.status.success(), "{args:?} failed for {hostile:?}");
            // `tune` without Colima prints the commands a person would run; each sysctl is one
            // single-quoted word there too.
            if args == ["tune"] {
                let printed = String::from_utf8_lossy(&run.stdout);
                for (key, value) in &cluster.tuning.host {
                    let quoted = erlmcp_gen::render::escape::sh(&format!("{key}={value}"));
                    assert!(
                        printed.contains(&format!("sudo sysctl -w {quoted}")),
                        "{printed:?} lacks {quoted:?}"
                    );
                }
            }
        }
        assert!(!marker.exists(), "{hostile:?} ran a command");
        let home: Vec<_> = std::fs::read_dir(dir.path().join("home"))
            .unwrap()
            .collect();
        assert!(home.is_empty(), "running the script wrote into HOME");
    }
}

#[test]
fn the_provisioning_script_keeps_each_value_one_quoted_word() {
    let base = base_cluster();
    for hostile in HOSTILE {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("marker");
        let text = with_marker(hostile, &marker);
        let cluster = with_strings(&base, &Strings::all(&text));
        let files = render::render(&cluster).unwrap();
        let script = &files
            .iter()
            .find(|f| f.name == "colima-setup.sh")
            .unwrap()
            .contents;
        // Layer 1: the YAML scalar `write_config` puts after `script:` in colima.yaml.
        let scalar = provision_yaml_scalar(script);
        let entry: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&format!("script: {scalar}")).unwrap();
        let mapping = entry.as_mapping().unwrap();
        assert_eq!(mapping.len(), 1, "the scalar added keys for {hostile:?}");
        let provision = entry["script"].as_str().unwrap().to_string();
        // Layer 2: the shell script Colima runs as root; `sysctl -w` swapped for printf shows
        // exactly the words it would get.
        let probe = provision.replace("sysctl -w ", "printf '%s\\n' ");
        let run = Command::new("sh")
            .args(["-c", &probe])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let words: Vec<String> = cluster
            .tuning
            .host
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        assert_eq!(String::from_utf8_lossy(&run.stdout), words.concat());
        assert!(!marker.exists(), "{hostile:?} ran a command as root");
    }
}

#[test]
fn the_dockerfile_builder_is_an_arg_never_a_line() {
    let base = base_cluster();
    let mut cluster = base.clone();
    cluster.image.builder = "rust:1\nRUN touch /pwned".into();
    let files = render::render(&cluster).unwrap();
    let dockerfile = &files
        .iter()
        .find(|f| f.name == "Dockerfile")
        .unwrap()
        .contents;
    assert!(
        // The template's own `RUN touch src/…` is no injection; the injected line never appears.
        !dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("RUN touch /pwned")),
        "{dockerfile}"
    );
    assert!(dockerfile.contains("ARG BUILDER_IMAGE=\"rust:1\\u000aRUN touch /pwned\""));
    assert!(dockerfile.contains("FROM ${BUILDER_IMAGE} AS build"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any string in any field, validation bypassed: every artifact stays inert.
    #[test]
    fn arbitrary_strings_render_inert(
        name in any::<String>(),
        version in "\\PC*",
        profile in any::<String>(),
        node in any::<String>(),
        sysctl in "[ -~\n]*",
        value in any::<String>(),
        image in "[ -~\n'\"$]*",
    ) {
        let strings = Strings {
            name: name.clone(),
            version,
            profile,
            vm_type: name.clone(),
            repository: image.clone(),
            builder: image.clone(),
            network: name,
            node,
            prometheus_image: image.clone(),
            driver: image,
            sysctl_key: sysctl,
            sysctl_value: value.clone(),
            source: value,
        };
        assert_inert(&base_cluster(), &strings);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The shell filters, through a real shell: `printf %s WORD` prints the string back, and
    /// nothing in it runs. (A NUL cannot be in a shell word or an argument, so none is made.)
    #[test]
    fn shell_words_read_back_as_the_string(text in "[^\u{0}]*") {
        use erlmcp_gen::render::escape::{bash, sh};
        for (shell, word) in [("bash", bash(&text)), ("sh", sh(&text))] {
            let output = Command::new(shell)
                .args(["-c", &format!("printf %s {word}")])
                .env_clear()
                .output()
                .unwrap();
            prop_assert!(output.status.success(), "{shell} failed on {word}");
            prop_assert_eq!(String::from_utf8_lossy(&output.stdout), text.as_str(), "{}", shell);
        }
    }
}
