//! The cluster file: what the user wrote ([`raw`]), the resolved model ([`model`]), and the
//! step between them ([`resolve`]).

pub mod grammar;
pub mod model;
pub mod problems;
pub mod raw;
pub mod resolve;
pub mod schema;
pub mod units;

use std::ops::Range;
use std::path::Path;

pub use model::Cluster;
pub use resolve::SpanIndex;

use crate::diagnostic::Diagnostic;

/// A cluster file read from disk, not yet parsed.
#[derive(Debug)]
pub struct Loaded {
    /// The path as the user gave it.
    pub path: String,
    /// The file's text (diagnostics point into it).
    pub text: String,
}

/// Largest cluster file read: far above any real cluster file (a few KiB), and it keeps a
/// hostile one from making `validate` hold or print megabytes.
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Most syntax errors reported from one file before giving up on it.
const MAX_SYNTAX_ERRORS: usize = 20;

/// What reading cluster-file text found: the cluster as far as it resolved (absent when the file
/// does not parse or lacks a required key) and every problem on the way.
#[derive(Debug)]
pub struct Parsed {
    /// The resolved cluster; values with problems replaced by their defaults.
    pub cluster: Option<(Cluster, SpanIndex)>,
    /// Every syntax, shape and resolution problem, in the order found.
    pub problems: Vec<Diagnostic>,
}

/// Parses and resolves cluster-file text, collecting every problem rather than stopping at the
/// first: TOML syntax errors (these do stop before anything else), then unknown keys, wrong
/// types and missing keys all together, then resolution problems. `path` only labels the result.
pub fn parse_all(path: &str, text: &str) -> Parsed {
    let (mut root, errors) = toml::de::DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        let problems = errors
            .iter()
            .take(MAX_SYNTAX_ERRORS)
            .map(|error| match error.span() {
                Some(span) if error.message().starts_with("duplicate key") => {
                    let first = first_definition(text, span.clone());
                    problems::duplicate_key(&text[span.clone()])
                        .at(Some(span))
                        .also_at(first, "first defined here")
                }
                span => problems::syntax(error.message()).at(span),
            })
            .collect();
        return Parsed {
            cluster: None,
            problems,
        };
    }
    let shape = schema::check(&mut root);
    let mut problems = shape.problems;
    if shape.fatal {
        return Parsed {
            cluster: None,
            problems,
        };
    }
    let raw: raw::RawClusterFile =
        match serde::Deserialize::deserialize(toml::de::Deserializer::from(root)) {
            Ok(raw) => raw,
            Err(error) => {
                // The schema missed something serde did not: still a finding with a place.
                problems.push(problems::syntax(error.message()).at(error.span()));
                return Parsed {
                    cluster: None,
                    problems,
                };
            }
        };
    let (cluster, spans, resolved) = resolve::resolve_all(&raw, path);
    problems.extend(resolved);
    Parsed {
        cluster: Some((cluster, spans)),
        problems,
    }
}

/// Where the key (or table header) that `duplicate` repeats was first defined: the same
/// `[header]` line earlier in the file, or the same `key =` line earlier in the same table.
fn first_definition(text: &str, duplicate: Range<usize>) -> Option<Range<usize>> {
    let line_start = text[..duplicate.start].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let key = text.get(duplicate.clone())?.trim_matches('"');
    let mut offset = 0;
    let mut found = None;
    for candidate in text[..line_start].split_inclusive('\n') {
        let trimmed = candidate.trim();
        let hit = if line.starts_with('[') {
            trimmed == line
        } else {
            // A new table header ends the table the duplicate is in.
            if trimmed.starts_with('[') {
                found = None;
            }
            trimmed
                .strip_prefix(key)
                .or_else(|| trimmed.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        };
        if hit {
            let column = candidate.find(|c: char| !c.is_whitespace()).unwrap_or(0);
            let start = offset + column + usize::from(line.starts_with('['));
            found = Some(start..start + key.len());
        }
        offset += candidate.len();
    }
    found
}

/// A cluster file committed under `clusters/`, parsed (unit tests read the real files).
#[cfg(test)]
pub(crate) fn committed_cluster(file: &str) -> Cluster {
    let path = format!("clusters/{file}");
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    parse(&path, &text)
        .unwrap_or_else(|_| panic!("{path} does not parse"))
        .0
}

/// Parses and resolves cluster-file text: the cluster when the file has no problem, else every
/// problem [`parse_all`] found. `path` only labels the result.
pub fn parse(path: &str, text: &str) -> Result<(Cluster, SpanIndex), Vec<Diagnostic>> {
    let parsed = parse_all(path, text);
    match parsed.cluster {
        Some(cluster) if parsed.problems.is_empty() => Ok(cluster),
        _ => Err(parsed.problems),
    }
}

/// Reads a cluster file of at most [`MAX_FILE_BYTES`].
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let size = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("cannot read cluster file {}: {e}", path.display()))?
        .len();
    if size > MAX_FILE_BYTES {
        anyhow::bail!(
            "cluster file {} is {size} bytes; a cluster file may have at most {MAX_FILE_BYTES}",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read cluster file {}: {e}", path.display()))?;
    let shown = path.to_string_lossy().replace('\\', "/");
    Ok(Loaded { path: shown, text })
}
