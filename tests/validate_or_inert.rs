//! The two guarantees of issue 11 for every string field of the cluster file: an arbitrary
//! string either makes `validate` reject the file, or the rendered artifacts are inert (YAML
//! keys unchanged and values round-trip, no shell code outside single quotes, no new Dockerfile
//! line).

mod inert;

use erlmcp_gen::config::Cluster;
use erlmcp_gen::validate;
use proptest::prelude::*;

/// A valid file with one marker per string field; each case replaces one marker.
const TEMPLATE: &str = r#"[cluster]
name = @name@
version = @version@

[runtime]
kind = @kind@
colima_profile = @colima_profile@
publish_address = @publish_address@

[vm]
cpus = 4
memory = "8GiB"
disk = "20GiB"
vm_type = @vm_type@

[image]
repository = @repository@
builder = @builder@
build = @build@

[network]
name = @network@

[nodes]
count = 2
prefix = @prefix@

[defaults]
connections = 100
memory_limit = @memory_limit@
nofile = 2048
idle_timeout = @idle_timeout@
keep_alive_timeout = @keep_alive_timeout@

[[node]]
name = @node_name@
role = @role@

[prometheus]
image = @prometheus_image@
scrape_interval = @scrape_interval@

[logging]
driver = @driver@

[tuning.host]
@host_key@ = @host_value@

[tuning.container]
@container_key@ = @container_value@

[slo]
p99 = @p99@

[stress]
connections = 100
transport = @transport@

[kubernetes]
namespace = @namespace@
image = @k8s_image@
service_type = @service_type@
"#;

/// Every marker and the ordinary value it stands for.
const FIELDS: &[(&str, &str)] = &[
    ("name", "erlmcp"),
    ("version", "0.1.0"),
    ("kind", "colima"),
    ("colima_profile", "erlmcp"),
    ("publish_address", "127.0.0.1"),
    ("vm_type", "vz"),
    ("repository", "erlmcp-node"),
    ("builder", "docker.io/library/rust:1-bookworm"),
    ("build", "auto"),
    ("network", "erlmcp-net"),
    ("prefix", "node"),
    ("memory_limit", "256MiB"),
    ("idle_timeout", "5m"),
    ("keep_alive_timeout", "5m"),
    ("node_name", "node1"),
    ("role", "coordinator"),
    ("prometheus_image", "docker.io/prom/prometheus:v2.53.0"),
    ("scrape_interval", "10s"),
    ("driver", "json-file"),
    ("host_key", "net.core.somaxconn"),
    ("host_value", "1024 65535"),
    ("container_key", "net.ipv4.tcp_fin_timeout"),
    ("container_value", "15"),
    ("p99", "30ms"),
    ("transport", "tcp"),
    ("namespace", "erlmcp"),
    ("k8s_image", "registry.example:5000/erlmcp-node:0.1.0"),
    ("service_type", "ClusterIP"),
];

/// A TOML string literal (also a quoted key) holding exactly `text`.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The template with `field` set to `value` and every other field ordinary.
fn file_with(field: &str, value: &str) -> String {
    let mut text = TEMPLATE.to_string();
    for (name, ordinary) in FIELDS {
        let written = if *name == field { value } else { ordinary };
        text = text.replace(&format!("@{name}@"), &toml_string(written));
    }
    text
}

fn ordinary_cluster() -> Cluster {
    let validated = validate::file("ordinary.toml", &file_with("", ""));
    validated
        .valid_cluster()
        .unwrap_or_else(|| panic!("{:#?}", validated.findings))
        .clone()
}

/// Validate rejects `value` in `field`, or what renders from it is inert.
fn rejected_or_inert(field: &str, value: &str, ordinary: &Cluster) -> bool {
    let validated = validate::file("case.toml", &file_with(field, value));
    let Some(cluster) = validated.valid_cluster() else {
        return false;
    };
    let mut reference = ordinary.clone();
    // Sysctl names and node names are keys in the YAML: the reference keeps the case's own,
    // so the shapes compare by position.
    reference.tuning = cluster.tuning.clone();
    inert::assert_structure(cluster, &reference, &format!("{field} = {value:?}"));
    inert::assert_values(cluster);
    true
}

#[test]
fn the_ordinary_file_is_valid_and_inert() {
    let ordinary = ordinary_cluster();
    assert!(rejected_or_inert("", "", &ordinary));
}

#[test]
fn hostile_values_from_issue_11_are_all_rejected() {
    let ordinary = ordinary_cluster();
    let hostile = [
        "x\nprivileged: true",
        "$(touch /tmp/erlmcp-marker)",
        "'; touch /tmp/erlmcp-marker; '",
        "${HOME}",
        "a b\n",
        "rust:1\nRUN touch /x",
    ];
    for (field, _) in FIELDS {
        for value in hostile {
            assert!(
                !rejected_or_inert(field, value, &ordinary),
                "{field} = {value:?} was accepted"
            );
        }
    }
}

/// Strings near the grammars (so that some are accepted) and arbitrary ones.
fn candidate() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z][a-z0-9-]{0,10}[a-z0-9]",
        "[a-z]{1,6}\\.[a-z_]{1,8}(\\.[a-z0-9_-]{1,6})?",
        "[0-9]{1,5}( [0-9]{1,5}){0,2}",
        "[a-z0-9][a-z0-9.:/_ -]{0,15}",
        "[a-z0-9][a-z0-9.\\-_:/@ $'\"`\n#{}\\[\\]&*!|>%]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_string_in_any_field_is_rejected_or_renders_inert(
        field in proptest::sample::select(FIELDS.iter().map(|(name, _)| *name).collect::<Vec<_>>()),
        value in candidate(),
    ) {
        rejected_or_inert(field, &value, &ordinary_cluster());
    }
}
