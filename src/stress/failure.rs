//! Failure classes: every failed session attempt and every failed request lands in exactly one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io;

/// Why a session attempt or a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// Nothing listens on the target address (TCP RST to the SYN).
    ConnectRefused,
    /// The TCP connect or the MCP handshake did not finish within `connect_timeout`.
    ConnectTimeout,
    /// Any other connect error (e.g. no free ephemeral port, unreachable network).
    ConnectError,
    /// The node answered the new session with a JSON-RPC error and closed it: it is full.
    RejectedAtCapacity,
    /// The connection was reset or closed by the peer while the session was open.
    Reset,
    /// The peer sent something that is not the expected JSON-RPC answer.
    ProtocolError,
    /// No answer arrived within `request_timeout` of the request's intended send time.
    RequestTimeout,
    /// A request fell due while the worker had no open session to carry it.
    NoOpenSession,
}

impl FailureClass {
    /// All classes, in report order.
    pub const ALL: [FailureClass; 8] = [
        FailureClass::ConnectRefused,
        FailureClass::ConnectTimeout,
        FailureClass::ConnectError,
        FailureClass::RejectedAtCapacity,
        FailureClass::Reset,
        FailureClass::ProtocolError,
        FailureClass::RequestTimeout,
        FailureClass::NoOpenSession,
    ];

    /// The snake_case name used in CSV, JSON and text output.
    pub fn name(self) -> &'static str {
        match self {
            FailureClass::ConnectRefused => "connect_refused",
            FailureClass::ConnectTimeout => "connect_timeout",
            FailureClass::ConnectError => "connect_error",
            FailureClass::RejectedAtCapacity => "rejected_at_capacity",
            FailureClass::Reset => "reset",
            FailureClass::ProtocolError => "protocol_error",
            FailureClass::RequestTimeout => "request_timeout",
            FailureClass::NoOpenSession => "no_open_session",
        }
    }

    /// Classifies an error returned by `connect`.
    pub fn from_connect_error(error: &io::Error) -> FailureClass {
        match error.kind() {
            io::ErrorKind::ConnectionRefused => FailureClass::ConnectRefused,
            io::ErrorKind::TimedOut => FailureClass::ConnectTimeout,
            _ => FailureClass::ConnectError,
        }
    }

    /// Classifies an I/O error on an established connection.
    pub fn from_stream_error(error: &io::Error) -> FailureClass {
        match error.kind() {
            io::ErrorKind::InvalidData => FailureClass::ProtocolError,
            io::ErrorKind::TimedOut => FailureClass::RequestTimeout,
            _ => FailureClass::Reset,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts per failure class; classes never seen are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureCounts(pub BTreeMap<FailureClass, u64>);

impl FailureCounts {
    /// Counts `n` failures of `class`.
    pub fn add(&mut self, class: FailureClass, n: u64) {
        if n > 0 {
            *self.0.entry(class).or_default() += n;
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &FailureCounts) {
        for (class, n) in &other.0 {
            self.add(*class, *n);
        }
    }

    /// The sum over all classes.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// The count for one class (0 when never seen).
    pub fn get(&self, class: FailureClass) -> u64 {
        self.0.get(&class).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_map_to_classes() {
        let cases = [
            (
                io::ErrorKind::ConnectionRefused,
                FailureClass::ConnectRefused,
            ),
            (io::ErrorKind::TimedOut, FailureClass::ConnectTimeout),
            (io::ErrorKind::AddrNotAvailable, FailureClass::ConnectError),
        ];
        for (kind, class) in cases {
            assert_eq!(
                FailureClass::from_connect_error(&io::Error::from(kind)),
                class,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn stream_errors_map_to_classes() {
        let cases = [
            (io::ErrorKind::ConnectionReset, FailureClass::Reset),
            (io::ErrorKind::UnexpectedEof, FailureClass::Reset),
            (io::ErrorKind::InvalidData, FailureClass::ProtocolError),
        ];
        for (kind, class) in cases {
            assert_eq!(
                FailureClass::from_stream_error(&io::Error::from(kind)),
                class,
                "{kind:?}"
            );
        }
    }

    #[test]
    fn counts_merge_and_total() {
        let mut a = FailureCounts::default();
        a.add(FailureClass::Reset, 2);
        a.add(FailureClass::NoOpenSession, 0);
        let mut b = FailureCounts::default();
        b.add(FailureClass::Reset, 1);
        b.add(FailureClass::RequestTimeout, 4);
        a.merge(&b);
        assert_eq!(a.get(FailureClass::Reset), 3);
        assert_eq!(a.total(), 7);
        assert!(!a.0.contains_key(&FailureClass::NoOpenSession));
    }

    #[test]
    fn names_are_the_serialized_form() {
        for class in FailureClass::ALL {
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.name()));
        }
    }
}
