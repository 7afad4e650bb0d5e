//! `erlmcp-node SUBCOMMAND --help` lists that subcommand's own flags, not every serve flag.

use std::process::Command;

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_erlmcp-node"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn each_subcommand_lists_only_its_own_flags() {
    for (args, shown, hidden) in [
        (
            &["healthcheck"][..],
            &["--api-port"][..],
            &["--max-connections", "--seeds", "--role", "--bind"][..],
        ),
        (
            &["baseline"],
            &["--bind", "--port", "--backlog"],
            &["--max-connections", "--seeds", "--api-port", "--dead-after"],
        ),
        // serve and stdio keep every serve flag.
        (&["stdio"], &["--max-line-bytes", "--node-name"], &[]),
        (&["serve"], &["--max-connections", "--seeds"], &[]),
    ] {
        let text = help(args);
        for flag in shown {
            assert!(text.contains(flag), "{args:?} lacks {flag}:\n{text}");
        }
        for flag in hidden {
            assert!(!text.contains(flag), "{args:?} lists {flag}:\n{text}");
        }
    }
}

#[test]
fn hidden_serve_flags_are_still_accepted() {
    // A healthcheck of a port nothing listens on fails (1) rather than refusing the flag (2).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = Command::new(env!("CARGO_BIN_EXE_erlmcp-node"))
        .args([
            "healthcheck",
            "--api-port",
            &port.to_string(),
            "--role",
            "worker",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}
