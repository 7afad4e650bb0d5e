//! The wire messages of one session: MCP over newline-delimited JSON-RPC, or the bare echo baseline.

use serde_json::Value;

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

/// One `format!`, one allocation: this runs once per request.
fn echo(id: u64, end: &str) -> String {
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"tools/call\",\"params\":{{\"name\":\"echo\",\"arguments\":{{\"text\":\"erlmcp-stress {id}\"}}}}}}{end}"
    )
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

/// Interprets one received line.
pub fn parse_reply(line: &str) -> Reply {
    let Ok(value) = serde_json::from_str::<Value>(line) else {
        return Reply::Malformed;
    };
    let Some(object) = value.as_object() else {
        return Reply::Malformed;
    };
    let id = object.get("id").and_then(Value::as_u64);
    let is_error = object.contains_key("error");
    // A request echoed back by the baseline server has "method" and "id": it answers that id.
    let is_answer = object.contains_key("result") || object.contains_key("method");
    match (id, is_error) {
        (None, true) => Reply::Refusal,
        (Some(id), true) => Reply::Error(id),
        (Some(id), false) if is_answer => Reply::Ok(id),
        (None, false) if object.contains_key("method") => Reply::Unsolicited,
        _ => Reply::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for (line, expected) in cases {
            assert_eq!(parse_reply(line), expected, "{line}");
        }
    }

    #[test]
    fn echoed_request_answers_its_own_id() {
        let line = echo_request_line(42);
        assert!(line.ends_with('\n'));
        assert_eq!(parse_reply(line.trim_end()), Reply::Ok(42));
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
