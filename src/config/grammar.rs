//! The grammar of every text field of the cluster file: what a name, an image reference, a tag
//! or a sysctl may look like, each with the rule as a sentence for the message that rejects it.
//!
//! Cluster files arrive as pull requests and their values reach YAML, shell and Dockerfiles;
//! the grammars are narrow on purpose (the renderer escapes as well, see `render::escape`).

use std::sync::LazyLock;

use regex::Regex;

/// A grammar: a check and the rule it enforces, in words.
#[derive(Debug, Clone, Copy)]
pub struct Grammar {
    /// What a value of this grammar is (`a DNS label`).
    pub name: &'static str,
    /// The rule, for the message.
    pub rule: &'static str,
    check: fn(&str) -> bool,
}

impl Grammar {
    /// True when `text` follows the grammar.
    pub fn accepts(&self, text: &str) -> bool {
        (self.check)(text)
    }
}

/// Longest DNS label (RFC 1123).
pub const DNS_LABEL_MAX: usize = 63;
/// Longest cluster name: `<name>-prometheus-data`, the longest name derived from it, is still a
/// DNS label.
pub const CLUSTER_NAME_MAX: usize = DNS_LABEL_MAX - "-prometheus-data".len();
/// Longest version: the node image's tag is `<version>-<16 hex digits of content hash>`, and a
/// tag has at most 128 characters.
pub const VERSION_MAX: usize = 64;
/// Longest image reference (the distribution spec's limit on a repository name is 255).
pub const IMAGE_REFERENCE_MAX: usize = 255;
/// Longest sysctl name.
pub const SYSCTL_NAME_MAX: usize = 128;
/// Longest sysctl value.
pub const SYSCTL_VALUE_MAX: usize = 256;

fn is_dns_label(text: &str) -> bool {
    let bytes = text.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= DNS_LABEL_MAX
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// RFC 1123 label: what Docker accepts as a hostname and Kubernetes as a name.
pub const DNS_LABEL: Grammar = Grammar {
    name: "a DNS label",
    rule: "lowercase letters, digits and `-`, starting and ending with a letter or digit, at most 63 characters (RFC 1123)",
    check: is_dns_label,
};

/// A cluster name: a DNS label short enough for every name derived from it.
pub const CLUSTER_NAME: Grammar = Grammar {
    name: "a cluster name",
    rule: "a DNS label of at most 47 characters (lowercase letters, digits and `-`, starting and ending with a letter or digit), so that `<name>-prometheus-data` is one too",
    check: |text| is_dns_label(text) && text.len() <= CLUSTER_NAME_MAX,
};

/// A node name prefix: node names are `<prefix><number>`, each a DNS label that starts with a
/// letter (a name of digits alone reads as a number in YAML and in some tools).
pub const NODE_PREFIX: Grammar = Grammar {
    name: "a node name prefix",
    rule: "a lowercase letter, then lowercase letters, digits and `-`; `<prefix><number>` must be a DNS label of at most 63 characters",
    check: |text| {
        text.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
            && is_dns_label(&format!("{text}1"))
    },
};

// The OCI distribution reference grammar (distribution/reference's `reference.go`), anchored.
const PATH_COMPONENT: &str = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
const DOMAIN: &str = r"(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?";
const TAG: &str = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST: &str = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}";

fn name_pattern() -> String {
    format!("(?:{DOMAIN}/)?{PATH_COMPONENT}(?:/{PATH_COMPONENT})*")
}

static IMAGE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{}$", name_pattern())).expect("valid regex"));
static IMAGE_REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^{}(?::{TAG})?(?:@{DIGEST})?$", name_pattern())).expect("valid regex")
});

/// A full image reference: name, optional tag, optional digest.
pub const IMAGE_REFERENCE_GRAMMAR: Grammar = Grammar {
    name: "an OCI image reference",
    rule: "`[registry[:port]/]path[:tag][@digest]`: lowercase path components of letters and digits joined by `.`, `_`, `__` or `-`, separated by `/`; a tag of letters, digits, `_`, `.` and `-` (at most 128, not starting with `.` or `-`); at most 255 characters",
    check: |text| text.len() <= IMAGE_REFERENCE_MAX && IMAGE_REFERENCE.is_match(text),
};

/// An image name without tag or digest (the cluster version is the tag).
pub const IMAGE_NAME_GRAMMAR: Grammar = Grammar {
    name: "an OCI image name",
    rule: "`[registry[:port]/]path` with no tag or digest (the cluster version is the tag): lowercase path components of letters and digits joined by `.`, `_`, `__` or `-`, separated by `/`; at most 255 characters",
    check: |text| text.len() <= IMAGE_REFERENCE_MAX && IMAGE_NAME.is_match(text),
};

/// Longest `[swarm] registry`: room is left for the image names pushed under it.
pub const SWARM_REGISTRY_MAX: usize = 128;

static REGISTRY_REPOSITORY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!("^({DOMAIN})((?:/{PATH_COMPONENT})*)$")).expect("valid regex")
});

/// True when `text` is a registry host followed by an optional path. The first component must
/// name the host the way Docker tells a host from a path (a `.`, a `:port`, `localhost` or an
/// IPv6 address): `team/x` would silently mean Docker Hub's `docker.io/team/x`.
fn is_registry_repository(text: &str) -> bool {
    text.len() <= SWARM_REGISTRY_MAX
        && REGISTRY_REPOSITORY.captures(text).is_some_and(|parts| {
            let host = &parts[1];
            host.contains(['.', ':', '[']) || host == "localhost"
        })
}

/// `[swarm] registry`: the registry, and the path in it, the swarm's images are pushed under.
pub const SWARM_REGISTRY: Grammar = Grammar {
    name: "a registry repository",
    rule: "`host[:port][/path]` with no tag or digest (each image goes under it by its own name and tag): a registry host with a `.`, a `:port` or `localhost` (`registry.example.com:5000/team`, `127.0.0.1:5000`), then lowercase path components of letters and digits joined by `.`, `_`, `__` or `-`, separated by `/`; at most 128 characters",
    check: is_registry_repository,
};

/// The cluster version: the first part of the node image's tag.
pub const VERSION: Grammar = Grammar {
    name: "a version",
    rule: "an image tag of at most 64 characters: letters, digits, `_`, `.` and `-`, not starting with `.` or `-` (the image is tagged `<version>-<content hash>`)",
    check: |text| {
        let bytes = text.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= VERSION_MAX
            && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    },
};

/// Longest `[cluster] secret_file` path.
pub const SECRET_FILE_MAX: usize = 4096;

/// `[cluster] secret_file`: a path, read by `apply` and never rendered; bounded and printable so
/// a hostile one cannot smuggle line breaks or escape sequences into messages.
pub const SECRET_FILE: Grammar = Grammar {
    name: "a file path",
    rule: "a non-empty path of at most 4096 characters with no control characters",
    check: |text| {
        !text.is_empty() && text.len() <= SECRET_FILE_MAX && !text.chars().any(char::is_control)
    },
};

/// A kernel parameter name as under `/proc/sys`, dotted.
pub const SYSCTL_NAME: Grammar = Grammar {
    name: "a sysctl name",
    rule: "dot-separated words of lowercase letters, digits, `_` and `-` (each starting with a letter, digit or `_`), at least two words, at most 128 characters, like `net.core.somaxconn`",
    check: |text| {
        text.len() <= SYSCTL_NAME_MAX
            && text.contains('.')
            && text.split('.').all(|word| {
                let bytes = word.as_bytes();
                !bytes.is_empty()
                    && bytes[0] != b'-'
                    && bytes.iter().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-')
                    })
            })
    },
};

/// A sysctl value: numbers and words separated by single spaces, nothing a shell or YAML reads.
pub const SYSCTL_VALUE: Grammar = Grammar {
    name: "a sysctl value",
    rule: "letters, digits and `.`, `_`, `-`, `:`, `,`, `/`, `+`, in words separated by single spaces, at most 256 characters, like `4096 87380 16777216`; no quotes, no shell or YAML characters",
    check: |text| {
        text.len() <= SYSCTL_VALUE_MAX
            && !text.is_empty()
            && text.split(' ').all(|word| {
                !word.is_empty()
                    && word.bytes().all(|b| {
                        b.is_ascii_alphanumeric()
                            || matches!(b, b'.' | b'_' | b'-' | b':' | b',' | b'/' | b'+')
                    })
            })
    },
};

/// Longest placement constraint or spread descriptor.
pub const PLACEMENT_MAX: usize = 128;

/// A label key or value in a placement expression: letters, digits and `.`, `_`, `-`.
fn is_placement_word(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The node attributes Swarm places by: fixed ones, or a node or engine label.
fn is_placement_attribute(text: &str) -> bool {
    const FIXED: &[&str] = &[
        "node.id",
        "node.hostname",
        "node.role",
        "node.platform.os",
        "node.platform.arch",
    ];
    FIXED.contains(&text)
        || ["node.labels.", "engine.labels."].iter().any(|prefix| {
            text.strip_prefix(prefix)
                .is_some_and(|label| is_placement_word(label) && !label.starts_with('.'))
        })
}

/// A Swarm placement constraint: `<attribute>==<value>` or `<attribute>!=<value>`.
pub const SWARM_CONSTRAINT: Grammar = Grammar {
    name: "a placement constraint",
    rule: "`<attribute>==<value>` or `<attribute>!=<value>`, the attribute one of node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<label>, engine.labels.<label>, the value letters, digits and `.`, `_`, `-`, at most 128 characters, like `node.role==manager`",
    check: |text| {
        if text.len() > PLACEMENT_MAX {
            return false;
        }
        let Some((attribute, value)) = text.split_once("==").or_else(|| text.split_once("!="))
        else {
            return false;
        };
        is_placement_attribute(attribute.trim()) && is_placement_word(value.trim())
    },
};

/// A Swarm spread descriptor: the node or engine label tasks are spread over.
pub const SWARM_SPREAD: Grammar = Grammar {
    name: "a spread descriptor",
    rule: "`node.labels.<label>` or `engine.labels.<label>` (or node.id, node.hostname), the label letters, digits and `.`, `_`, `-`, at most 128 characters, like `node.labels.zone`",
    check: |text| {
        text.len() <= PLACEMENT_MAX
            && is_placement_attribute(text)
            && !matches!(
                text,
                "node.role" | "node.platform.os" | "node.platform.arch"
            )
    },
};

/// A value for a message: at most 40 characters, control characters escaped, so a hostile
/// value (megabytes long, or with terminal escapes) cannot flood or repaint the terminal.
pub fn shown(text: &str) -> String {
    const MAX: usize = 40;
    let escaped: String = text
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if text.chars().count() > MAX {
        format!("{escaped}…")
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! grammar_cases {
        ($grammar:expr, accepts: [$($good:expr),*], rejects: [$($bad:expr),*]) => {{
            $(assert!($grammar.accepts($good), "{} should accept {:?}", $grammar.name, $good);)*
            $(assert!(!$grammar.accepts($bad), "{} should reject {:?}", $grammar.name, $bad);)*
        }};
    }

    #[test]
    fn dns_labels() {
        let long = "a".repeat(64);
        grammar_cases!(DNS_LABEL,
            accepts: ["erlmcp", "erlmcp-local", "a", "1x", &"a".repeat(63)],
            rejects: ["", "-a", "a-", "A", "a b", "a/b", "../x", "${HOME}", "a_b", "a.b", &long]);
    }

    #[test]
    fn cluster_names_leave_room_for_derived_names() {
        grammar_cases!(CLUSTER_NAME,
            accepts: ["erlmcp", &"a".repeat(47)],
            rejects: [&"a".repeat(48), "Erlmcp", "x\nprivileged: true"]);
    }

    #[test]
    fn node_prefixes() {
        grammar_cases!(NODE_PREFIX,
            accepts: ["node", "n", "worker-"],
            rejects: ["", "1", "-n", "Node", "n_", &"n".repeat(63)]);
    }

    #[test]
    fn image_references_follow_the_distribution_grammar() {
        let digest = format!("alpine@sha256:{}", "a".repeat(64));
        grammar_cases!(IMAGE_REFERENCE_GRAMMAR,
            accepts: ["erlmcp-node", "docker.io/library/rust:1-bookworm", "docker.io/prom/prometheus:v2.53.0",
                      "localhost:5000/a/b_c__d:tag", &digest, "[::1]:5000/x"],
            rejects: ["", "Rust", "rust:", "rust:-x", "a//b", "a b", "rust:1\nRUN x", "$(x)", "a:b:c"]);
        grammar_cases!(IMAGE_NAME_GRAMMAR,
            accepts: ["erlmcp-node", "registry.example:5000/team/erlmcp-node"],
            rejects: ["erlmcp-node:1", "erlmcp-node@sha256:00", "x\ny"]);
    }

    #[test]
    fn a_swarm_registry_names_its_host() {
        grammar_cases!(SWARM_REGISTRY,
            accepts: ["registry.example.com:5000/team", "127.0.0.1:5000", "localhost/x", "localhost:5000",
                      "[::1]:5000/a/b", "ghcr.io/org/sub_team", &format!("r.io/{}", "a".repeat(123))],
            rejects: ["", "team", "team/erlmcp", "registry.example.com/erlmcp-node:1", "r.io/x@sha256:00",
                      "r.io/Team", "r.io//x", "r.io/x/", "https://r.io", "r.io/x\nRUN y", "r.io/$(x)",
                      &format!("r.io/{}", "a".repeat(124))]);
    }

    #[test]
    fn versions_are_tags() {
        grammar_cases!(VERSION,
            accepts: ["0.1.0", "v1", "_x", &"1".repeat(64)],
            rejects: ["", ".1", "-1", "1 0", "1\nprivileged: true", &"1".repeat(65)]);
    }

    #[test]
    fn sysctls() {
        grammar_cases!(SYSCTL_NAME,
            accepts: ["net.core.somaxconn", "fs.file-max", "net.ipv4.conf.eth0.rp_filter"],
            rejects: ["somaxconn", "net..x", "net.-w", "Net.core", "net.core x", "net.core;x"]);
        grammar_cases!(SYSCTL_VALUE,
            accepts: ["1", "4096 87380 16777216", "-1", "cubic", "/tmp/x"],
            rejects: ["", " 1", "1  2", "1'", "$(x)", "a\nb", "`x`", "a;b", "|x"]);
    }

    #[test]
    fn shown_values_are_short_and_escaped() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"x".repeat(1000)), format!("{}…", "x".repeat(40)));
    }

    #[test]
    fn placement_takes_swarm_attributes_and_plain_values_only() {
        for good in [
            "node.role==manager",
            "node.role != worker",
            "node.labels.zone==eu-1",
            "engine.labels.disk==ssd",
            "node.hostname==host_1.local",
        ] {
            assert!(SWARM_CONSTRAINT.accepts(good), "{good}");
        }
        for bad in [
            "node.role",
            "node.colour==red",
            "node.labels.==x",
            "node.role==manager;rm -rf /",
            "node.role==\"x\"",
            "node.labels.zone==a==b",
            "node.role==",
        ] {
            assert!(!SWARM_CONSTRAINT.accepts(bad), "{bad}");
        }
        assert!(SWARM_SPREAD.accepts("node.labels.zone"));
        assert!(!SWARM_SPREAD.accepts("node.role"));
        assert!(!SWARM_SPREAD.accepts("node.labels.zone\n"));
    }
}
