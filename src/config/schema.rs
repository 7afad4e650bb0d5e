//! The shape of the cluster file, checked before serde sees it: every unknown key (with the key
//! it was probably meant to be), every value of the wrong type (in the file's terms: "a number of
//! nodes", not `u32`) and every missing required key, all in one pass. Offending keys are taken
//! out so that the rest of the file still resolves and its semantic checks still run.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::grammar::shown;
use super::problems;
use super::units::{ByteSize, HumanDuration};
use crate::diagnostic::Diagnostic;

/// What a key holds.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string.
    Text,
    /// A whole number from 0 to `max`.
    Whole(u64),
    /// A number, whole or not.
    Number,
    /// `true` or `false`.
    Bool,
    /// A duration string (`30s`).
    Duration,
    /// A size string (`512MiB`).
    Size,
    /// A table of sysctl name → number or string (checked when resolving).
    Sysctls,
    /// An array of strings.
    TextList,
    /// A nested table with keys of its own (`[swarm.update]`).
    Subtable(&'static Table),
}

/// One key of a table: its name, what it holds, what it means in the file's terms.
#[derive(Debug)]
struct Key {
    name: &'static str,
    kind: Kind,
    what: &'static str,
    required: bool,
}

const fn key(name: &'static str, kind: Kind, what: &'static str) -> Key {
    Key {
        name,
        kind,
        what,
        required: false,
    }
}

const fn required(name: &'static str, kind: Kind, what: &'static str) -> Key {
    Key {
        name,
        kind,
        what,
        required: true,
    }
}

const U32: u64 = u32::MAX as u64;

/// A table of the file.
#[derive(Debug)]
struct Table {
    name: &'static str,
    keys: &'static [Key],
    required: bool,
    /// `[[node]]`: an array of tables.
    array: bool,
}

const NODE_SETTINGS: &[Key] = &[
    key("name", Kind::Text, "a node name"),
    key("role", Kind::Text, "a role (`coordinator` or `worker`)"),
    key("api_port", Kind::Whole(U32), "a port number"),
    key("listener_port", Kind::Whole(U32), "a port number"),
    key("connections", Kind::Whole(U32), "a number of connections"),
    key("cpu_limit", Kind::Number, "a number of CPU cores"),
    key("memory_limit", Kind::Size, "a memory size"),
    key("cpu_reservation", Kind::Number, "a number of CPU cores"),
    key("memory_reservation", Kind::Size, "a memory size"),
    key("nofile", Kind::Whole(u64::MAX), "a number of open files"),
    key("idle_timeout", Kind::Duration, "a duration"),
    key("keep_alive_timeout", Kind::Duration, "a duration"),
];

const TABLES: &[Table] = &[
    Table {
        name: "cluster",
        keys: &[
            required("name", Kind::Text, "a cluster name"),
            key("version", Kind::Text, "a version"),
            key("secret_file", Kind::Text, "a file path"),
        ],
        required: true,
        array: false,
    },
    Table {
        name: "runtime",
        keys: &[
            key(
                "kind",
                Kind::Text,
                "a runtime (`colima`, `docker`, `native` or `swarm`)",
            ),
            key("colima_profile", Kind::Text, "a Colima profile name"),
            key("publish_address", Kind::Text, "an IP address"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "vm",
        keys: &[
            required("cpus", Kind::Whole(U32), "a number of CPUs"),
            required("memory", Kind::Size, "a memory size"),
            required("disk", Kind::Size, "a disk size"),
            key("vm_type", Kind::Text, "a VM type (`qemu` or `vz`)"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "image",
        keys: &[
            key("repository", Kind::Text, "an image name"),
            key("builder", Kind::Text, "an image reference"),
            key(
                "build",
                Kind::Text,
                "a build mode (`auto`, `source` or `prebuilt`)",
            ),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "network",
        keys: &[key("name", Kind::Text, "a network name")],
        required: false,
        array: false,
    },
    Table {
        name: "nodes",
        keys: &[
            required("count", Kind::Whole(U32), "a number of nodes"),
            key("prefix", Kind::Text, "a node name prefix"),
            key("api_port", Kind::Whole(U32), "a port number"),
            key("listener_port", Kind::Whole(U32), "a port number"),
        ],
        required: true,
        array: false,
    },
    Table {
        name: "defaults",
        keys: NODE_SETTINGS,
        required: false,
        array: false,
    },
    Table {
        name: "node",
        keys: NODE_SETTINGS,
        required: false,
        array: true,
    },
    Table {
        name: "prometheus",
        keys: &[
            key("enabled", Kind::Bool, "`true` or `false`"),
            key("image", Kind::Text, "an image reference"),
            key("port", Kind::Whole(U32), "a port number"),
            key("scrape_interval", Kind::Duration, "a duration"),
            key("node_scrape_interval", Kind::Duration, "a duration"),
            key("retention", Kind::Duration, "a duration"),
            key("cpu_limit", Kind::Number, "a number of CPU cores"),
            key("memory_limit", Kind::Size, "a memory size"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "logging",
        keys: &[
            key(
                "driver",
                Kind::Text,
                "a log driver (`json-file` or `local`)",
            ),
            key("max_size", Kind::Size, "a size"),
            key("max_files", Kind::Whole(U32), "a number of files"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "tuning",
        keys: &[
            key("host", Kind::Sysctls, "a table of sysctls"),
            key("container", Kind::Sysctls, "a table of sysctls"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "slo",
        keys: &[
            key("p99", Kind::Duration, "a duration"),
            key("error_rate_percent", Kind::Number, "a percentage"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "stress",
        keys: &[
            key("connections", Kind::Whole(U32), "a number of sessions"),
            key("duration", Kind::Duration, "a duration"),
            key("ramp", Kind::Duration, "a duration"),
            key("rate", Kind::Number, "a number of requests per second"),
            key("transport", Kind::Text, "a transport (`tcp` or `http`)"),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "kubernetes",
        keys: &[
            key("namespace", Kind::Text, "a namespace name"),
            key("image", Kind::Text, "an image reference"),
            key("prometheus", Kind::Bool, "`true` or `false`"),
            key(
                "service_type",
                Kind::Text,
                "a Service type (`ClusterIP`, `LoadBalancer` or `NodePort`)",
            ),
        ],
        required: false,
        array: false,
    },
    Table {
        name: "swarm",
        keys: &[
            key("update", Kind::Subtable(&SWARM_UPDATE), "a table"),
            key("placement", Kind::Subtable(&SWARM_PLACEMENT), "a table"),
            key(
                "publish_mode",
                Kind::Text,
                "a publish mode (`host` or `ingress`)",
            ),
            key(
                "registry",
                Kind::Text,
                "a registry repository (`registry.example.com:5000/team`)",
            ),
        ],
        required: false,
        array: false,
    },
];

const SWARM_UPDATE: Table = Table {
    name: "swarm.update",
    keys: &[
        key("parallelism", Kind::Whole(U32), "a number of tasks"),
        key(
            "order",
            Kind::Text,
            "an update order (`stop-first` or `start-first`)",
        ),
        key(
            "failure_action",
            Kind::Text,
            "a failure action (`rollback`, `pause` or `continue`)",
        ),
        key("monitor", Kind::Duration, "a duration"),
    ],
    required: false,
    array: false,
};

const SWARM_PLACEMENT: Table = Table {
    name: "swarm.placement",
    keys: &[
        key(
            "constraints",
            Kind::TextList,
            "a list of constraint strings",
        ),
        key("spread", Kind::Text, "a node label (`node.labels.zone`)"),
    ],
    required: false,
    array: false,
};

/// The outcome of the shape check.
#[derive(Debug, Default)]
pub struct ShapeCheck {
    /// Every problem found.
    pub problems: Vec<Diagnostic>,
    /// A required key or table is missing or unusable: the file cannot resolve.
    pub fatal: bool,
}

/// The known name closest to `written`, when it is close enough to be a likely typo.
pub fn closest<'a>(written: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|name| (strsim::damerau_levenshtein(written, name), name))
        .filter(|(distance, name)| *distance <= (name.len() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, name)| name)
}

/// What the user wrote, in words: `the string "two"`, `the number -1`, `a table`.
fn found(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string \"{}\"", shown(s)),
        DeValue::Integer(i) => format!("the whole number {}", shown(i.as_str())),
        DeValue::Float(f) => format!("the number {}", shown(f.as_str())),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::Datetime(_) => "a date".into(),
        DeValue::Array(items) => match items
            .iter()
            .find(|item| !matches!(item.get_ref(), DeValue::String(_)))
        {
            Some(item) => format!("an array holding {}", found(item.get_ref())),
            None => "an array".into(),
        },
        DeValue::Table(_) => "a table".into(),
    }
}

/// Why `value` does not fit `kind`, when it does not.
fn misfit(kind: Kind, value: &DeValue<'_>) -> Option<Misfit> {
    match (kind, value) {
        (Kind::Text, DeValue::String(_))
        | (Kind::Bool, DeValue::Boolean(_))
        | (Kind::Number, DeValue::Integer(_) | DeValue::Float(_))
        | (Kind::Sysctls | Kind::Subtable(_), DeValue::Table(_)) => None,
        (Kind::TextList, DeValue::Array(items))
            if items
                .iter()
                .all(|i| matches!(i.get_ref(), DeValue::String(_))) =>
        {
            None
        }
        (Kind::Whole(max), DeValue::Integer(i)) => {
            match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if n >= 0 && n <= i128::from(max) => None,
                Ok(n) if n < 0 => Some(Misfit::Range("0 or more".into())),
                _ => Some(Misfit::Range(format!("at most {max}"))),
            }
        }
        (Kind::Duration, DeValue::String(s)) => s.parse::<HumanDuration>().err().map(Misfit::Unit),
        (Kind::Size, DeValue::String(s)) => s.parse::<ByteSize>().err().map(Misfit::Unit),
        _ => Some(Misfit::Type),
    }
}

enum Misfit {
    Type,
    Range(String),
    Unit(String),
}

/// Checks `root` against the schema, removing every key it reports.
pub fn check(root: &mut Spanned<DeTable<'_>>) -> ShapeCheck {
    let mut out = ShapeCheck::default();
    let root_table = root.get_mut();
    let present: Vec<String> = root_table.keys().map(|k| k.get_ref().to_string()).collect();
    for name in &present {
        let Some(table) = TABLES.iter().find(|t| t.name == name) else {
            let (key_span, _) = entry_spans(root_table, name);
            out.problems.push(
                problems::unknown_key(
                    name,
                    None,
                    closest(name, TABLES.iter().map(|t| t.name)),
                    &TABLES.iter().map(|t| t.name).collect::<Vec<_>>(),
                )
                .at(Some(key_span)),
            );
            remove(root_table, name);
            continue;
        };
        let value = root_table
            .iter_mut()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(_, v)| v)
            .expect("present");
        let span = value.span();
        match (table.array, value.get_mut()) {
            (false, DeValue::Table(inner)) => check_table(table, inner, span, &mut out),
            (true, DeValue::Array(items)) => {
                for item in items.iter_mut() {
                    let span = item.span();
                    match item.get_mut() {
                        DeValue::Table(inner) => check_table(table, inner, span, &mut out),
                        other => {
                            out.problems.push(
                                problems::wrong_type(
                                    &format!("[[{name}]]"),
                                    "a table of node settings",
                                    &found(other),
                                )
                                .at(Some(span)),
                            );
                            out.fatal = true;
                        }
                    }
                }
            }
            (_, other) => {
                let what = if table.array {
                    "`[[node]]` tables"
                } else {
                    "a table"
                };
                out.problems
                    .push(problems::wrong_type(name, what, &found(other)).at(Some(span.clone())));
                if table.required {
                    out.fatal = true;
                }
                remove(root_table, name);
            }
        }
    }
    for table in TABLES.iter().filter(|t| t.required) {
        if !present.iter().any(|p| p == table.name) {
            out.problems.push(problems::missing_table(table.name));
            out.fatal = true;
        }
    }
    out
}

fn check_table(
    table: &Table,
    inner: &mut DeTable<'_>,
    table_span: Range<usize>,
    out: &mut ShapeCheck,
) {
    let present: Vec<String> = inner.keys().map(|k| k.get_ref().to_string()).collect();
    let known: Vec<&str> = table.keys.iter().map(|k| k.name).collect();
    for name in &present {
        let (key_span, value_span) = entry_spans(inner, name);
        let Some(key) = table.keys.iter().find(|k| k.name == name) else {
            out.problems.push(
                problems::unknown_key(
                    name,
                    Some(table.name),
                    closest(name, known.iter().copied()),
                    &known,
                )
                .at(Some(key_span)),
            );
            remove(inner, name);
            continue;
        };
        let value = inner
            .iter()
            .find(|(k, _)| k.get_ref() == name)
            .map(|(_, v)| v.get_ref())
            .expect("present");
        let dotted = format!("{}.{name}", table.name);
        let problem = match misfit(key.kind, value) {
            None => {
                if let Kind::Subtable(subtable) = key.kind {
                    let (span, value) = inner
                        .iter_mut()
                        .find(|(k, _)| k.get_ref() == name)
                        .map(|(_, v)| (v.span(), v.get_mut()))
                        .expect("present");
                    if let DeValue::Table(nested) = value {
                        check_table(subtable, nested, span, out);
                    }
                }
                continue;
            }
            Some(Misfit::Type) => problems::wrong_type(&dotted, key.what, &found(value)),
            Some(Misfit::Range(range)) => {
                problems::out_of_range(&dotted, &shown(&value_text(value)), &range)
            }
            Some(Misfit::Unit(message)) => problems::syntax(&message),
        };
        out.problems.push(problem.at(Some(value_span)));
        if key.required {
            out.fatal = true;
        }
        remove(inner, name);
    }
    for key in table.keys.iter().filter(|k| k.required) {
        if !present.iter().any(|p| p == key.name) {
            out.problems
                .push(problems::missing_key(table.name, key.name).at(Some(table_span.clone())));
            out.fatal = true;
        }
    }
}

fn value_text(value: &DeValue<'_>) -> String {
    match value {
        DeValue::Integer(i) => i.as_str().to_string(),
        DeValue::Float(f) => f.as_str().to_string(),
        DeValue::String(s) => s.to_string(),
        other => other.type_str().to_string(),
    }
}

/// The spans of an entry's key and value.
fn entry_spans(table: &DeTable<'_>, name: &str) -> (Range<usize>, Range<usize>) {
    table
        .iter()
        .find(|(k, _)| k.get_ref() == name)
        .map(|(k, v)| (k.span(), v.span()))
        .expect("the entry exists")
}

fn remove(table: &mut DeTable<'_>, name: &str) {
    let key = table.keys().find(|k| k.get_ref() == name).cloned();
    if let Some(key) = key {
        table.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys serde's `deny_unknown_fields` lists for a table of `RawClusterFile`.
    fn serde_keys(table: &str, array: bool) -> Vec<String> {
        let header = if array {
            format!("[[{table}]]")
        } else {
            format!("[{table}]")
        };
        let text = match table {
            "cluster" => "[cluster]\nname = \"x\"\nzz_not_a_key = 1\n[nodes]\ncount = 1\n".to_string(),
            "nodes" => "[cluster]\nname = \"x\"\n[nodes]\ncount = 1\nzz_not_a_key = 1\n".to_string(),
            "vm" => "[cluster]\nname = \"x\"\n[nodes]\ncount = 1\n[vm]\ncpus = 1\nmemory = \"1GiB\"\ndisk = \"1GiB\"\nzz_not_a_key = 1\n".to_string(),
            _ => format!("[cluster]\nname = \"x\"\n[nodes]\ncount = 1\n{header}\nzz_not_a_key = 1\n"),
        };
        let error = toml::from_str::<super::super::raw::RawClusterFile>(&text).unwrap_err();
        let message = error.message().to_string();
        let expected = message
            .split("expected")
            .nth(1)
            .unwrap_or_else(|| panic!("{table}: {message}"));
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_schema_knows_exactly_the_keys_serde_knows() {
        let mut tables: Vec<String> = TABLES.iter().map(|t| t.name.to_string()).collect();
        let mut serde_tables = serde_keys("zz_not_a_table", false);
        tables.sort();
        serde_tables.sort();
        assert_eq!(tables, serde_tables, "add the table to config/schema.rs");
        for table in TABLES {
            let mut schema: Vec<String> = table.keys.iter().map(|k| k.name.to_string()).collect();
            let mut serde = serde_keys(table.name, table.array);
            schema.sort();
            serde.sort();
            assert_eq!(
                schema, serde,
                "[{}]: add the key to config/schema.rs",
                table.name
            );
        }
    }

    #[test]
    fn closest_suggests_only_near_names() {
        let known = ["cpu_limit", "memory_limit", "connections"];
        assert_eq!(closest("cpu_limt", known), Some("cpu_limit"));
        assert_eq!(closest("conections", known), Some("connections"));
        assert_eq!(closest("colour", known), None);
    }
}
