//! The wire messages of one session: MCP over newline-delimited JSON-RPC, or the bare echo baseline.

use serde::de::IgnoredAny;
use std::io::Write as _;

/// The JSON-RPC id of the `initialize` request; echo requests count up from the next id.
pub const INITIALIZE_ID: u64 = 1;

/// The MCP revision the `initialize` request asks for.
pub const PROTOCOL_VERSION: &str = "2025-06-18";

/// The `initialize` request (one JSON object, no newline: a Streamable HTTP POST body).
pub fn initialize_request() -> String {
    initialize("")
}

/// The `initialize` request line (with its trailing newline).
pub fn initialize_line() -> String {
    initialize("\n")
}

fn initialize(end: &str) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{INITIALIZE_ID},\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"{PROTOCOL_VERSION}\",\"capabilities\":{{}},\"clientInfo\":{{\"name\":\"erlmcp-stress\",\"version\":\"{}\"}}}}}}{end}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The `notifications/initialized` notification, with its line's newline; one literal for both.
const INITIALIZED_LINE: &str = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";

/// The `notifications/initialized` notification (no newline).
pub fn initialized_notification() -> &'static str {
    INITIALIZED_LINE.trim_end()
}

/// The `notifications/initialized` line sent after a successful `initialize`.
pub fn initialized_line() -> &'static str {
    INITIALIZED_LINE
}

/// The `tools/call echo` request for `id` (no newline).
pub fn echo_request(id: u64) -> String {
    echo(id, "")
}

/// The `tools/call echo` request line for `id`.
///
/// The baseline echo server sends the same line back, so its answer carries the same id.
pub fn echo_request_line(id: u64) -> String {
    echo(id, "\n")
}

fn echo(id: u64, end: &str) -> String {
    let mut line = Vec::with_capacity(128);
    write_echo(&mut line, id, end);
    String::from_utf8(line).expect("the request is ASCII")
}

/// Replaces `buf` with the `tools/call echo` request line for `id`; this runs once per
/// request, so the caller keeps one buffer per session instead of allocating a line each time.
pub fn write_echo_request_line(buf: &mut Vec<u8>, id: u64) {
    buf.clear();
    write_echo(buf, id, "\n");
}

fn write_echo(buf: &mut Vec<u8>, id: u64, end: &str) {
    // Writing into a Vec cannot fail.
    let _ = write!(
        buf,
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"erlmcp-stress {id}\"}}}}}}{end}"
    );
}

/// What one line received from the server means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A successful answer (a `result`, or for the baseline the echoed line) to request `id`.
    Ok(u64),
    /// A JSON-RPC error answering request `id`.
    Error(u64),
    /// A JSON-RPC error that answers no request (id null or absent): the node refuses the session.
    Refusal,
    /// A notification or server request that answers nothing; ignored.
    Unsolicited,
    /// Not JSON-RPC at all.
    Malformed,
}

/// Interprets one received line, without building a `serde_json::Value`: only the presence of
/// `result`, `error` and `method` and the value of `id` matter, so the rest is skipped unread.
pub fn parse_reply(line: &[u8]) -> Reply {
    // Skipped strings are not checked for UTF-8 by the parser; a line must be text all the same.
    if std::str::from_utf8(line).is_err() {
        return Reply::Malformed;
    }
    let Ok(shape) = serde_json::from_slice::<ReplyShape>(line) else {
        return Reply::Malformed;
    };
    let is_answer = shape.result || shape.method;
    match (shape.id, shape.error) {
        (None, true) => Reply::Refusal,
        (Some(id), true) => Reply::Error(id),
        (Some(id), false) if is_answer => Reply::Ok(id),
        // A request echoed back by the baseline server has "method" and "id": it answers that id.
        (None, false) if shape.method => Reply::Unsolicited,
        _ => Reply::Malformed,
    }
}

/// Which of the keys that classify a reply a JSON object has, and its `id` when that is a u64.
#[derive(Debug, Default)]
struct ReplyShape {
    id: Option<u64>,
    result: bool,
    error: bool,
    method: bool,
}

enum Key {
    Id,
    Result,
    Error,
    Method,
    Other,
}

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl serde::de::Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object key")
            }
            fn visit_str<E>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "id" => Key::Id,
                    "result" => Key::Result,
                    "error" => Key::Error,
                    "method" => Key::Method,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// An `id` value: a u64, or anything else (null, a string, a negative number) as `None`.
struct Id(Option<u64>);

impl<'de> serde::Deserialize<'de> for Id {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl<'de> serde::de::Visitor<'de> for IdVisitor {
            type Value = Id;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_u64<E>(self, v: u64) -> Result<Id, E> {
                Ok(Id(Some(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Id, E> {
                Ok(Id(u64::try_from(v).ok()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_unit<E>(self) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_none<E>(self) -> Result<Id, E> {
                Ok(Id(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Id, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Id(None))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Id, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Id(None))
            }
        }
        d.deserialize_any(IdVisitor)
    }
}

impl<'de> serde::Deserialize<'de> for ReplyShape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ShapeVisitor;
        impl<'de> serde::de::Visitor<'de> for ShapeVisitor {
            type Value = ReplyShape;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON-RPC object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ReplyShape, A::Error> {
                let mut shape = ReplyShape::default();
                // A repeated key counts as its last value, as a parsed `Value` would have it.
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Id => shape.id = map.next_value::<Id>()?.0,
                        Key::Result => {
                            map.next_value::<IgnoredAny>()?;
                            shape.result = true;
                        }
                        Key::Error => {
                            map.next_value::<IgnoredAny>()?;
                            shape.error = true;
                        }
                        Key::Method => {
                            map.next_value::<IgnoredAny>()?;
                            shape.method = true;
                        }
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(shape)
            }
        }
        d.deserialize_map(ShapeVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn replies_are_classified() {
        let cases = [
            (
                r#"{"jsonrpc":"2.0","id":7,"result":{"content":[],"isError":false}}"#,
                Reply::Ok(7),
            ),
            (
                r#"{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"x"}}"#,
                Reply::Error(7),
            ),
            (
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"full"}}"#,
                Reply::Refusal,
            ),
            (
                r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"full"}}"#,
                Reply::Refusal,
            ),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#,
                Reply::Unsolicited,
            ),
            ("not json", Reply::Malformed),
            ("[1,2]", Reply::Malformed),
            // Without building a Value, these must still read as a Value would.
            (r#"{"id":7,"error":null}"#, Reply::Error(7)),
            (r#"{"id":-3,"result":1}"#, Reply::Malformed),
            (r#"{"id":"7","result":1}"#, Reply::Malformed),
            (r#"{"id":{"a":[1]},"error":{}}"#, Reply::Refusal),
            (r#"{"id":1.5,"method":"x"}"#, Reply::Unsolicited),
            (
                r#"{"id":1,"id":8,"result":{"x":[{"y":"\"}"}]}}"#,
                Reply::Ok(8),
            ),
            (r#"{"r\u0065sult":1,"id":4}"#, Reply::Ok(4)),
            (r#"{"id":7,"result":1} trailing"#, Reply::Malformed),
            (r#"{"id":7,"result":1"#, Reply::Malformed),
            ("", Reply::Malformed),
        ];
        assert_eq!(
            parse_reply(b"{\"id\":1,\"result\":\"\xff\"}"),
            Reply::Malformed
        );
        for (line, expected) in cases {
            assert_eq!(parse_reply(line.as_bytes()), expected, "{line}");
        }
    }

    #[test]
    fn echoed_request_answers_its_own_id() {
        let line = echo_request_line(42);
        assert!(line.ends_with('\n'));
        assert_eq!(parse_reply(line.trim_end().as_bytes()), Reply::Ok(42));
        let mut reused = b"left over from the last request".to_vec();
        write_echo_request_line(&mut reused, 42);
        assert_eq!(reused, line.as_bytes());
    }

    #[test]
    fn lines_are_their_messages_plus_a_newline() {
        assert_eq!(initialize_line(), initialize_request() + "\n");
        assert_eq!(
            initialized_line(),
            format!("{}\n", initialized_notification())
        );
        assert_eq!(echo_request_line(9), echo_request(9) + "\n");
        let init: Value = serde_json::from_str(&initialize_request()).unwrap();
        assert_eq!(init["params"]["protocolVersion"], PROTOCOL_VERSION);
    }

    #[test]
    fn handshake_lines_are_valid_json() {
        for line in [initialize_line(), initialized_line().to_string()] {
            let value: Value = serde_json::from_str(line.trim_end()).unwrap();
            assert_eq!(value["jsonrpc"], "2.0");
        }
    }
}
