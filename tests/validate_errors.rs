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
    let found = validate::file("bad.toml", text).findings;
    erlmcp_gen::diagnostic::render_all(&found, "bad.toml", text, false)
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
    bad_duration: with("[slo]\np99 = \"30\"\n");
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
    kubernetes_namespace_not_a_label: with("[kubernetes]\nnamespace = \"Erlmcp_NS\"\n");
    kubernetes_image_not_a_reference: with("[kubernetes]\nimage = \"registry.example/erlmcp-node:0.1\\nprivileged: true\"\n");
    kubernetes_unknown_service_type: with("[kubernetes]\nservice_type = \"ExternalName\"\n");
    kubernetes_prometheus_not_a_bool: with("[kubernetes]\nprometheus = \"yes\"\n");
    kubernetes_uneven_workers: BASE.replace("count = 2", "count = 3") + "\n[[node]]\nname = \"node3\"\nconnections = 10\n\n[kubernetes]\n";
    kubernetes_name_too_long: BASE.replace("name = \"t\"", &format!("name = \"{}\"", "k".repeat(45))) + "\n[kubernetes]\n";
    host_sysctl_in_container: with("[tuning.container]\n\"fs.file-max\" = 1000\n");
    override_without_name: with("[[node]]\nconnections = 10\n");
    // Issue 11: a grammar per field, named in the message.
    name_with_space: BASE.replace("name = \"t\"", "name = \"my cluster\"");
    name_with_compose_interpolation: BASE.replace("name = \"t\"", "name = \"${HOME}\"");
    name_too_long_is_shown_cut: BASE.replace("name = \"t\"", &format!("name = \"{}\"", "a".repeat(300)));
    version_injecting_yaml: BASE.replace("name = \"t\"", "name = \"t\"\nversion = \"1\\nprivileged: true\"");
    profile_injecting_shell: with("[runtime]\ncolima_profile = \"$(touch /tmp/x)\"\n");
    repository_with_tag: with("[image]\nrepository = \"erlmcp-node:1\"\n");
    builder_injecting_dockerfile: with("[image]\nbuilder = \"rust:1\\nRUN touch /x\"\n");
    prometheus_image_not_a_reference: with("[prometheus]\nimage = \"Prom Prometheus\"\n");
    network_with_path: with("[network]\nname = \"../x\"\n");
    prefix_not_a_label: BASE.replace("count = 2", "count = 2\nprefix = \"Node_\"");
    prefix_too_long_for_the_count: format!(
        "[cluster]\nname = \"t\"\n\n[nodes]\ncount = 100\nprefix = \"{p}\"\n\n[defaults]\nconnections = 10\nnofile = 2048\n\n[[node]]\nname = \"{p}1\"\nrole = \"coordinator\"\n",
        p = "n".repeat(61)
    );
    sysctl_value_breaking_quotes: with("[tuning.host]\n\"net.core.somaxconn\" = \"1'; touch /x; '\"\n");
    sysctl_name_not_kernel: with("[tuning.host]\n\"net.core somaxconn\" = 1\n");
    unknown_log_driver: with("[logging]\ndriver = \"syslog\"\n");
    secret_file_with_a_line_break: BASE.replace("name = \"t\"", "name = \"t\"\nsecret_file = \"s\\n\\u001b[31mx\"");
    // Issue 11: values that parse but cannot work.
    idle_timeout_zero: with("[defaults]\nidle_timeout = \"0s\"\n");
    keep_alive_timeout_zero: with("[defaults]\nkeep_alive_timeout = \"0s\"\n");
    scrape_interval_zero: with("[prometheus]\nscrape_interval = \"0s\"\n");
    cpu_limit_infinite: with("[defaults]\ncpu_limit = inf\n");
    cpu_limit_nan: with("[defaults]\ncpu_limit = nan\n");
    memory_limit_zero: with("[defaults]\nmemory_limit = \"0MiB\"\n");
    node_override_out_of_range: BASE.replace("role = \"coordinator\"", "role = \"coordinator\"\ncpu_limit = -1.0");
    count_far_too_large_is_one_error: BASE.replace("count = 2", "count = 100000");
    negative_count: BASE.replace("count = 2", "count = -1");
    publish_beyond_loopback_warns: with("[runtime]\npublish_address = \"0.0.0.0\"\n");
    // Issue 11: every finding at once, typos with a suggestion.
    typo_suggests_the_key: with("[defaults]\ncpu_limt = 2.0\n");
    unknown_table_suggests_the_table: with("[promethues]\nport = 9091\n");
    duplicate_key_points_at_both: BASE.replace("count = 2", "count = 2\ncount = 3");
    duplicate_table_points_at_both: with("[nodes]\nprefix = \"n\"\n");
    five_independent_mistakes: format!(
        "{BASE}\n[runtime]\npublish_address = \"0.0.0.0\"\n\n[defaults]\ncpu_limt = 2.0\nidle_timeout = \"0s\"\nmemory_limit = \"0MiB\"\n\n[network]\nname = \"my net\"\n"
    );    // Issue 12 §2: the `[swarm]` table.
    swarm_constraint_not_a_constraint: with("[swarm.placement]\nconstraints = [\"node.role==manager\", \"node.role=manager; rm -rf /\"]\n");
    swarm_spread_not_a_label: with("[swarm.placement]\nspread = \"node.role\"\n");
    swarm_unknown_failure_action: with("[swarm.update]\nfailure_action = \"retry\"\n");
    swarm_start_first_on_host_ports: with("[swarm.update]\norder = \"start-first\"\n");
    swarm_unknown_update_key: with("[swarm.update]\nparalelism = 2\n");
    swarm_constraints_not_strings: with("[swarm.placement]\nconstraints = [1]\n");
    swarm_parallelism_zero: with("[swarm.update]\nparallelism = 0\n");
    // Issue 12: the registry the swarm pulls from.
    swarm_registry_without_a_host: with("[swarm]\nregistry = \"team/erlmcp\"\n");
    swarm_registry_with_a_tag: with("[swarm]\nregistry = \"registry.example.com:5000/team:1\"\n");
    swarm_registry_name_too_long: with(&format!("[image]\nrepository = \"{}\"\n\n[swarm]\nregistry = \"r.io/{}\"\n", "a".repeat(130), "b".repeat(120)));
}

#[test]
fn five_independent_mistakes_are_all_reported_in_one_run() {
    let text = format!(
        "{BASE}\n[runtime]\npublish_address = \"0.0.0.0\"\n\n[defaults]\ncpu_limt = 2.0\nidle_timeout = \"0s\"\nmemory_limit = \"0MiB\"\n\n[network]\nname = \"my net\"\n"
    );
    let found = validate::file("bad.toml", &text).findings;
    let codes: Vec<&str> = found.iter().map(|d| d.code).collect();
    assert_eq!(
        codes,
        ["exposed", "unknown-key", "range", "range", "grammar"],
        "{found:#?}"
    );
}

#[test]
fn a_ten_megabyte_name_gives_a_short_message() {
    let text = BASE.replace(
        "name = \"t\"",
        &format!("name = \"{}\"", "a".repeat(10 << 20)),
    );
    let found = validate::file("bad.toml", &text).findings;
    assert_eq!(found.len(), 1, "{:?}", found[0].message);
    let printed = erlmcp_gen::diagnostic::render_all(&found, "bad.toml", &text, false);
    assert!(printed.len() < 2000, "{} bytes printed", printed.len());
}

#[test]
fn a_hundred_thousand_nodes_is_one_error_not_one_per_node() {
    let found = validate::file("bad.toml", &BASE.replace("count = 2", "count = 100000")).findings;
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn past_fifty_findings_the_rest_are_counted() {
    let keys: String = (0..60).map(|i| format!("unknown{i} = 1\n")).collect();
    let text = BASE.replace("count = 2", &format!("count = 2\n{keys}"));
    let found = validate::file("bad.toml", &text).findings;
    assert_eq!(found.len(), 60);
    let printed = erlmcp_gen::diagnostic::render_all(&found, "bad.toml", &text, false);
    assert_eq!(printed.matches("error[unknown-key]").count(), 50);
    assert!(
        printed.ends_with("… and 10 more (use `--format json` for all)\n"),
        "{printed}"
    );
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

#[test]
fn a_full_swarm_table_is_valid() {
    let text = with(
        "[runtime]\nkind = \"swarm\"\n\n[swarm]\npublish_mode = \"ingress\"\nregistry = \"127.0.0.1:5000/team\"\n\n[swarm.update]\nparallelism = 2\norder = \"start-first\"\nfailure_action = \"pause\"\nmonitor = \"30s\"\n\n[swarm.placement]\nconstraints = [\"node.role==manager\", \"node.labels.zone!=b\"]\nspread = \"node.labels.zone\"\n",
    );
    assert_eq!(diagnose(&text), "");
    let (cluster, _) = config::parse("bad.toml", &text).unwrap();
    assert_eq!(cluster.runtime.kind, config::model::RuntimeKind::Swarm);
    assert_eq!(cluster.swarm.update.parallelism, 2);
    assert_eq!(
        cluster.swarm.registry.as_deref(),
        Some("127.0.0.1:5000/team")
    );
    assert_eq!(
        cluster.swarm.placement.constraints,
        ["node.role==manager", "node.labels.zone!=b"]
    );
    assert_eq!(
        cluster.swarm.placement.spread.as_deref(),
        Some("node.labels.zone")
    );
}
