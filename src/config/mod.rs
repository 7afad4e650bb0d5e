//! The cluster file: what the user wrote ([`raw`]), the resolved model ([`model`]), and the
//! step between them ([`resolve`]).

pub mod model;
pub mod problems;
pub mod raw;
pub mod resolve;
pub mod units;

use std::path::Path;

pub use model::Cluster;
pub use resolve::SpanIndex;

use crate::diagnostic::Diagnostic;

/// A cluster file read from disk: its text and, when it parsed and resolved, the cluster.
#[derive(Debug)]
pub struct Loaded {
    /// The path as the user gave it.
    pub path: String,
    /// The file's text (diagnostics point into it).
    pub text: String,
    /// The resolved cluster and where its values came from, or what stopped resolution.
    pub result: Result<(Cluster, SpanIndex), Vec<Diagnostic>>,
}

/// Parses and resolves cluster-file text. `path` only labels the result.
pub fn parse(path: &str, text: &str) -> Result<(Cluster, SpanIndex), Vec<Diagnostic>> {
    let raw: raw::RawClusterFile = toml::from_str(text)
        .map_err(|error| vec![problems::syntax(error.message()).at(error.span())])?;
    resolve::resolve(&raw, path)
}

/// Reads and parses a cluster file.
pub fn load(path: &Path) -> anyhow::Result<Loaded> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read cluster file {}: {e}", path.display()))?;
    let shown = path.to_string_lossy().replace('\\', "/");
    let result = parse(&shown, &text);
    Ok(Loaded {
        path: shown,
        text,
        result,
    })
}
