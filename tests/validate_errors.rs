//! One bad cluster file per class of problem, each asserting the whole rendered message
//! (position, caret and hint) through a snapshot.

use erlmcp_gen::{config, validate};

const BASE: &str = r#"[cluster]
name = "t"

[nodes]
count = 2

[[node]]
name = "node1"
role = "coordinator"
"#;

/// Every diagnostic for `text`, rendered as `validate` prints them.
fn diagnose(text: &str) -> String {
    let found = match config::parse("bad.toml", text) {
        Ok((cluster, spans)) => validate::check(&cluster, &spans),
        Err(problems) => problems,
    };
    found
        .iter()
        .map(|d| d.render("bad.toml", text))
        .collect::<Vec<_>>()
        .join("\n")
}

macro_rules! bad_files {
    ($($name:ident: $text:expr;)*) => {$(
        #[test]
        fn $name() {
            let text: String = $text;
            let rendered = diagnose(&text);
            assert!(!rendered.is_empty(), "expected a diagnostic for:\n{text}");
            insta::assert_snapshot!(stringify!($name), rendered, &text);
        }
    )*};
}

fn with(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

bad_files! {
    syntax_error: "[cluster\nname = \"t\"\n".to_string();
    wrong_type: BASE.replace("count = 2", "count = \"two\"");
    unknown_key: BASE.replace("name = \"t\"", "name = \"t\"\nnmae = \"typo\"");
    missing_table: "[cluster]\nname = \"t\"\n".to_string();
    bad_duration: with("[slo]\np99 = \"30 millis\"\n");
    bad_size: with("[defaults]\nmemory_limit = \"4GB\"\n");
    unknown_runtime: with("[runtime]\nkind = \"podman\"\n");
    port_clash_with_prometheus: with("[prometheus]\nport = 8081\n");
    port_clash_between_nodes: with("[[node]]\nname = \"node2\"\nlistener_port = 9100\n");
    port_out_of_range: BASE.replace("count = 2", "count = 2\napi_port = 65535");
    duplicate_node: with("[[node]]\nname = \"node2\"\n\n[[node]]\nname = \"node2\"\n");
    unknown_node: with("[[node]]\nname = \"node9\"\n");
    no_coordinator: BASE.replace("role = \"coordinator\"", "role = \"worker\"");
    two_coordinators: with("[[node]]\nname = \"node2\"\nrole = \"coordinator\"\n");
    capacity_below_target: with("[stress]\nconnections = 5000\n");
    nofile_below_connections: with("[defaults]\nconnections = 1000\nnofile = 1500\n");
    reservation_above_vm: with("[runtime]\nkind = \"colima\"\n\n[vm]\ncpus = 2\nmemory = \"1GiB\"\ndisk = \"10GiB\"\n\n[defaults]\ncpu_limit = 2.0\ncpu_reservation = 1.5\n");
    reservation_above_limit: with("[defaults]\nmemory_limit = \"256MiB\"\nmemory_reservation = \"512MiB\"\n");
    colima_without_vm: with("[runtime]\nkind = \"colima\"\n");
    slo_out_of_range: with("[slo]\nerror_rate_percent = 150.0\n");
    per_node_key_in_defaults: with("[defaults]\nrole = \"worker\"\n");
    host_sysctl_in_container: with("[tuning.container]\n\"fs.file-max\" = 1000\n");
    override_without_name: with("[[node]]\nconnections = 10\n");
}

#[test]
fn limits_that_overcommit_the_vm_are_a_warning_not_an_error() {
    let text = with(
        "[runtime]\nkind = \"colima\"\n\n[vm]\ncpus = 2\nmemory = \"4GiB\"\ndisk = \"10GiB\"\n\n[defaults]\ncpu_limit = 1.5\n",
    );
    let (cluster, spans) = config::parse("bad.toml", &text).unwrap();
    let found = validate::check(&cluster, &spans);
    assert!(!validate::has_errors(&found));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, "overcommit");
}

#[test]
fn a_port_clash_points_at_the_second_user_with_caret_and_hint() {
    assert_eq!(
        diagnose(&with("[prometheus]\nport = 8081\n")),
        "error[port-clash]: host port 8081 is published twice
  --> bad.toml:12:8
   |
12 | port = 8081
   |        ^^^^ Prometheus here, and node2's API port already uses it
   |
   = hint: give every published port its own number (node ports count up from `[nodes] api_port` and `listener_port`)
"
    );
}

#[test]
fn the_shipped_cluster_files_are_valid() {
    for file in ["colima.toml", "local.toml"] {
        let text =
            std::fs::read_to_string(format!("{}/clusters/{file}", env!("CARGO_MANIFEST_DIR")))
                .unwrap();
        let (cluster, spans) = config::parse(file, &text).unwrap();
        assert!(
            !validate::has_errors(&validate::check(&cluster, &spans)),
            "{file}"
        );
    }
}
