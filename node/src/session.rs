//! One MCP session's state: a few bytes, because a node holds tens of thousands of them.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Protocol revisions this server speaks, oldest first. The last one has no `initialize`
/// handshake: each request carries its version in `_meta` (stateless).
pub const SUPPORTED_VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

/// The newest revision with an `initialize` handshake: the answer to an unknown requested one.
pub const LATEST_WITH_INITIALIZE: &str = "2025-11-25";

/// The stateless revision.
pub const STATELESS_VERSION: &str = "2026-07-28";

/// The one revision with JSON-RPC batches: 2025-03-26 added them and 2025-06-18 removed them.
pub const BATCH_VERSION: &str = "2025-03-26";

/// Where a session is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Nothing yet.
    #[default]
    New,
    /// `initialize` answered; waiting for `notifications/initialized`.
    Initializing,
    /// Ready for requests.
    Ready,
}

/// Log levels of `logging/setLevel`, least severe first.
pub const LOG_LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// One session.
#[derive(Debug, Clone, Copy, Default)]
pub struct Session {
    /// Lifecycle phase.
    pub phase: Phase,
    /// Index into [`SUPPORTED_VERSIONS`] of the negotiated revision.
    pub version: u8,
    /// Index into [`LOG_LEVELS`] of the client's chosen level.
    pub log_level: u8,
}

impl Session {
    /// The negotiated protocol revision.
    pub fn version(&self) -> &'static str {
        SUPPORTED_VERSIONS[self.version as usize]
    }
}

/// Index of a supported revision.
pub fn version_index(version: &str) -> Option<u8> {
    SUPPORTED_VERSIONS
        .iter()
        .position(|v| *v == version)
        .map(|i| i as u8)
}

/// The revision to answer an `initialize` with: the client's when supported (and not the
/// stateless one, which has no handshake), else the newest with a handshake.
pub fn negotiate(requested: &str) -> &'static str {
    match SUPPORTED_VERSIONS.iter().find(|v| **v == requested) {
        Some(v) if *v != STATELESS_VERSION => v,
        _ => LATEST_WITH_INITIALIZE,
    }
}

/// Just the `_meta` protocol version of a stateless (2026-07-28) request.
#[derive(Deserialize)]
struct MetaOnly<'a> {
    #[serde(borrow, rename = "_meta", default)]
    meta: Option<MetaVersion<'a>>,
}

#[derive(Deserialize)]
struct MetaVersion<'a> {
    #[serde(borrow, rename = "io.modelcontextprotocol/protocolVersion", default)]
    version: Option<Cow<'a, str>>,
}

/// Whether a message's params say it is a stateless (2026-07-28) request: `_meta` names
/// the revision.
pub fn is_stateless(params: Option<&RawValue>) -> bool {
    params
        .and_then(|p| serde_json::from_str::<MetaOnly>(p.get()).ok())
        .and_then(|m| m.meta?.version)
        .is_some_and(|v| v == STATELESS_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_three_bytes() {
        assert_eq!(std::mem::size_of::<Session>(), 3);
    }

    #[test]
    fn negotiation_follows_the_spec() {
        assert_eq!(negotiate("2025-06-18"), "2025-06-18");
        assert_eq!(negotiate("2025-11-25"), "2025-11-25");
        assert_eq!(negotiate("1999-01-01"), LATEST_WITH_INITIALIZE);
        assert_eq!(negotiate("2026-07-28"), LATEST_WITH_INITIALIZE);
    }
}
