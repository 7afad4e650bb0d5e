//! JSON-RPC 2.0 as MCP uses it: request ids, incoming messages (request, notification,
//! response, batch), outgoing responses and notifications, error codes. The dispatcher, the
//! methods and the transports all speak these types; an outgoing message is serialized once,
//! straight into the transport's output buffer, and nobody re-reads what was written.
//!
//! Ids and params stay borrowed [`RawValue`] text from the input line: a request's id is
//! copied byte for byte into its response, never parsed into a value and re-encoded.

use std::borrow::Cow;
use std::io::Write;

use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;

/// JSON-RPC error codes this server uses.
pub mod code {
    /// Malformed JSON.
    pub const PARSE_ERROR: i32 = -32700;
    /// Not a valid JSON-RPC request (or not allowed in this phase).
    pub const INVALID_REQUEST: i32 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i32 = -32601;
    /// Bad parameters (including unknown tools).
    pub const INVALID_PARAMS: i32 = -32602;
    /// The server failed.
    pub const INTERNAL_ERROR: i32 = -32603;
    /// Implementation-defined: the node is at capacity.
    pub const AT_CAPACITY: i32 = -32000;
    /// A resource does not exist.
    pub const RESOURCE_NOT_FOUND: i32 = -32002;
}

/// A request id: a JSON string or number, kept as its JSON text.
#[derive(Debug, Clone)]
pub struct Id<'a>(Cow<'a, RawValue>);

/// Ids compare as their JSON text: JSON-RPC matches a response to its request by the id the
/// client wrote, and this server echoes that text byte for byte.
impl PartialEq for Id<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json()
    }
}

impl Eq for Id<'_> {}

impl<'a> Id<'a> {
    /// The id a request carries, if it is one JSON-RPC allows here: a string or a number (MCP
    /// forbids `null`; objects and arrays are no ids at all).
    pub fn new(raw: &'a RawValue) -> Option<Self> {
        matches!(
            raw.get().as_bytes().first(),
            Some(b'"' | b'-' | b'0'..=b'9')
        )
        .then_some(Id(Cow::Borrowed(raw)))
    }

    /// The id, no longer borrowing the input (for requests that outlive their line).
    pub fn into_owned(self) -> Id<'static> {
        Id(Cow::Owned(self.0.into_owned()))
    }

    /// The id's JSON text (`7`, `"abc"`).
    pub fn json(&self) -> &str {
        self.0.get()
    }
}

/// A JSON-RPC error object: a code and a one-sentence message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorObject {
    /// Error code (see [`code`]).
    pub code: i32,
    /// One-sentence message.
    pub message: Cow<'static, str>,
}

impl ErrorObject {
    /// A new error.
    pub fn new(code: i32, message: impl Into<Cow<'static, str>>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
        }
    }

    /// Invalid parameters, naming what is wrong.
    pub fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        ErrorObject::new(code::INVALID_PARAMS, message)
    }

    /// Not a valid request.
    pub fn invalid_request(message: impl Into<Cow<'static, str>>) -> Self {
        ErrorObject::new(code::INVALID_REQUEST, message)
    }
}

/// One serialized JSON value (a result or params), valid JSON by construction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonText(Cow<'static, [u8]>);

impl JsonText {
    /// Serializes `value`.
    pub fn of(value: &impl Serialize) -> Result<Self, ErrorObject> {
        serde_json::to_vec(value)
            .map(|bytes| JsonText(Cow::Owned(bytes)))
            .map_err(|e| {
                ErrorObject::new(
                    code::INTERNAL_ERROR,
                    format!("cannot serialize the result: {e}"),
                )
            })
    }

    /// A value serialized once for the life of the process (a static list).
    pub fn cached(bytes: &'static JsonText) -> Self {
        JsonText(Cow::Borrowed(&bytes.0))
    }

    /// The JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A response: the request's id (`None` writes `null`: the id was unreadable) and a result or
/// an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response<'a> {
    /// The request's id.
    pub id: Option<Id<'a>>,
    /// The result, or the error.
    pub body: Result<JsonText, ErrorObject>,
}

impl<'a> Response<'a> {
    /// A success.
    pub fn result(id: Id<'a>, result: JsonText) -> Self {
        Response {
            id: Some(id),
            body: Ok(result),
        }
    }

    /// A failure; `id` None when the request's id could not be read.
    pub fn error(id: Option<Id<'a>>, error: ErrorObject) -> Self {
        Response {
            id,
            body: Err(error),
        }
    }

    /// Whether this answers with an error.
    pub fn is_error(&self) -> bool {
        self.body.is_err()
    }

    /// The response, no longer borrowing the input.
    pub fn into_owned(self) -> Response<'static> {
        Response {
            id: self.id.map(Id::into_owned),
            body: self.body,
        }
    }

    /// Appends the response's JSON (no newline) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(self.id.as_ref().map_or("null", Id::json).as_bytes());
        match &self.body {
            Ok(result) => {
                out.extend_from_slice(b",\"result\":");
                out.extend_from_slice(result.as_bytes());
            }
            Err(error) => {
                write!(out, ",\"error\":{{\"code\":{},\"message\":", error.code)
                    .expect("writing to a Vec cannot fail");
                serde_json::to_writer(&mut *out, error.message.as_ref()).expect("a str serializes");
                out.push(b'}');
            }
        }
        out.push(b'}');
    }

    /// The response's JSON (no newline), for transports that frame it themselves.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

/// An outgoing notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The method, e.g. `notifications/progress`.
    pub method: &'static str,
    /// The params.
    pub params: JsonText,
}

impl Notification {
    /// A notification with params serialized from `params`.
    pub fn new(method: &'static str, params: &impl Serialize) -> Result<Self, ErrorObject> {
        Ok(Notification {
            method,
            params: JsonText::of(params)?,
        })
    }

    /// Appends the notification's JSON (no newline) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"method\":");
        serde_json::to_writer(&mut *out, self.method).expect("a str serializes");
        out.extend_from_slice(b",\"params\":");
        out.extend_from_slice(self.params.as_bytes());
        out.push(b'}');
    }
}

/// One outgoing message that no longer borrows its request: what a request that outlives its
/// dispatch sends later (progress, then its response), or what a transport queues for a writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A notification (progress).
    Notification(Notification),
    /// A response.
    Response(Response<'static>),
    /// A batch's responses, written as one array.
    Batch(Vec<Response<'static>>),
}

impl Message {
    /// Whether this is a response (which ends its request) rather than a notification.
    pub fn is_response(&self) -> bool {
        matches!(self, Message::Response(_))
    }

    /// Appends the message's JSON (no newline) to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Message::Notification(n) => n.write(out),
            Message::Response(r) => r.write(out),
            Message::Batch(responses) => write_batch(responses, out),
        }
    }

    /// The message's JSON (no newline).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }
}

/// Appends a batch's responses as one JSON array (no newline). JSON-RPC sends nothing for a
/// batch without responses, so callers skip an empty one.
pub fn write_batch(responses: &[Response<'_>], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, response) in responses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        response.write(out);
    }
    out.push(b']');
}

/// An incoming request: it has an id and wants exactly one response.
#[derive(Debug)]
pub struct Call<'a> {
    /// The id its response carries.
    pub id: Id<'a>,
    /// The method.
    pub method: Cow<'a, str>,
    /// The params' JSON text, if any.
    pub params: Option<&'a RawValue>,
}

/// One message read from a client.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A request.
    Request(Call<'a>),
    /// A notification: no reply, ever.
    Notification {
        /// The method.
        method: Cow<'a, str>,
        /// The params' JSON text, if any.
        params: Option<&'a RawValue>,
    },
    /// A response to a server-to-client request (this server sends none, so nothing matches).
    Response,
    /// A batch: its elements (at most the limit given to [`Incoming::parse`]), each still to be
    /// parsed with [`Incoming::parse_value`].
    Batch(Vec<&'a RawValue>),
    /// Not a valid message; answer with this error.
    Invalid(Response<'a>),
    /// Not a valid message, but without a readable id: JSON-RPC says not to reply.
    Ignored,
}

/// `id` as written: present (even `null`) or absent, which serde's `Option` cannot tell apart.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

fn first_byte(bytes: &[u8]) -> Option<u8> {
    bytes
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// A batch's elements up to a limit; past it, only their number (nothing more is kept).
struct BoundedBatch(usize);

/// What [`BoundedBatch`] read.
enum BatchElements<'a> {
    Within(Vec<&'a RawValue>),
    TooMany(usize),
}

impl<'de> Visitor<'de> for BoundedBatch {
    type Value = BatchElements<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element::<&RawValue>()? {
            if elements.len() == self.0 {
                let mut count = elements.len() + 1;
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    count += 1;
                }
                return Ok(BatchElements::TooMany(count));
            }
            elements.push(element);
        }
        Ok(BatchElements::Within(elements))
    }
}

fn parse_batch(bytes: &[u8], max_batch: usize) -> serde_json::Result<BatchElements<'_>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let elements = deserializer.deserialize_seq(BoundedBatch(max_batch))?;
    deserializer.end()?;
    Ok(elements)
}

impl<'a> Incoming<'a> {
    /// Parses one line (or HTTP body); a batch longer than `max_batch` elements is invalid as
    /// a whole (what one line may make the node answer stays bounded).
    pub fn parse(bytes: &'a [u8], max_batch: usize) -> Self {
        match first_byte(bytes) {
            Some(b'{') => match serde_json::from_slice::<Envelope>(bytes) {
                Ok(envelope) => Self::from_envelope(envelope),
                Err(e) if e.is_syntax() || e.is_eof() => Self::parse_error(),
                Err(_) => Self::not_an_object(),
            },
            Some(b'[') => match parse_batch(bytes, max_batch) {
                Ok(BatchElements::Within(elements)) if elements.is_empty() => {
                    Incoming::Invalid(Response::error(
                        None,
                        ErrorObject::invalid_request("invalid request: an empty batch"),
                    ))
                }
                Ok(BatchElements::Within(elements)) => Incoming::Batch(elements),
                Ok(BatchElements::TooMany(count)) => Incoming::Invalid(Response::error(
                    None,
                    ErrorObject::invalid_request(format!(
                        "invalid request: a batch of {count} messages; at most {max_batch} per batch"
                    )),
                )),
                Err(_) => Self::parse_error(),
            },
            // Anything else is either valid JSON that is no request (`42`) or no JSON at all.
            _ => match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Ok(_) => Self::not_an_object(),
                Err(_) => Self::parse_error(),
            },
        }
    }

    /// Parses one element of a batch (already known to be valid JSON); a nested batch is
    /// invalid, as JSON-RPC has no such thing.
    pub fn parse_value(raw: &'a RawValue) -> Self {
        if raw.get().starts_with('{') {
            match serde_json::from_str::<Envelope>(raw.get()) {
                Ok(envelope) => Self::from_envelope(envelope),
                Err(_) => Self::not_an_object(),
            }
        } else {
            Self::not_an_object()
        }
    }

    fn parse_error() -> Self {
        Incoming::Invalid(Response::error(
            None,
            ErrorObject::new(code::PARSE_ERROR, "parse error: malformed JSON"),
        ))
    }

    fn not_an_object() -> Self {
        Incoming::Invalid(Response::error(
            None,
            ErrorObject::invalid_request("invalid request: expected a JSON-RPC object"),
        ))
    }

    fn from_envelope(envelope: Envelope<'a>) -> Self {
        let id = envelope.id.map(|raw| Id::new(raw).ok_or(()));
        // A message without an id gets no reply; a readable id gets its error, another `null`.
        let invalid = |id: Option<Result<Id<'a>, ()>>, message: &'static str| match id {
            Some(id) => Incoming::Invalid(Response::error(
                id.ok(),
                ErrorObject::invalid_request(message),
            )),
            None => Incoming::Ignored,
        };
        if envelope.jsonrpc.as_deref() != Some("2.0") {
            return invalid(id, "invalid request: jsonrpc must be \"2.0\"");
        }
        match (envelope.method, id) {
            (Some(method), None) => Incoming::Notification {
                method,
                params: envelope.params,
            },
            (Some(method), Some(Ok(id))) => Incoming::Request(Call {
                id,
                method,
                params: envelope.params,
            }),
            (Some(_), Some(Err(()))) => Incoming::Invalid(Response::error(
                None,
                ErrorObject::invalid_request("invalid request: id must be a string or a number"),
            )),
            (None, Some(_)) if envelope.result.is_some() || envelope.error.is_some() => {
                Incoming::Response
            }
            (None, id) => invalid(id, "invalid request: no method"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(response: &Response) -> serde_json::Value {
        serde_json::from_slice(&response.to_vec()).unwrap()
    }

    fn invalid(line: &str) -> serde_json::Value {
        match Incoming::parse(line.as_bytes(), 4) {
            Incoming::Invalid(response) => written(&response),
            other => panic!("{line} parsed as {other:?}"),
        }
    }

    #[test]
    fn responses_carry_the_id_text_unchanged() {
        let raw: &RawValue = serde_json::from_str("\"a\\u0062\"").unwrap();
        let ok = Response::result(Id::new(raw).unwrap(), JsonText::of(&[1, 2]).unwrap());
        assert_eq!(
            ok.to_vec(),
            br#"{"jsonrpc":"2.0","id":"a\u0062","result":[1,2]}"#
        );
        let error = Response::error(None, ErrorObject::invalid_params("a \"quoted\"\nline"));
        assert_eq!(
            written(&error),
            serde_json::json!({"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"a \"quoted\"\nline"}})
        );
    }

    #[test]
    fn messages_are_told_apart_by_their_members() {
        assert!(matches!(
            Incoming::parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, 4),
            Incoming::Request(Call { method, .. }) if method == "ping"
        ));
        assert!(matches!(
            Incoming::parse(
                br#" {"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                4
            ),
            Incoming::Notification { .. }
        ));
        assert!(matches!(
            Incoming::parse(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 4),
            Incoming::Response
        ));
        assert!(matches!(
            Incoming::parse(br#"[1, {"jsonrpc":"2.0","method":"x"}]"#, 4),
            Incoming::Batch(elements) if elements.len() == 2
        ));
        assert!(matches!(
            Incoming::parse(br#"{"jsonrpc":"1.0","method":"x"}"#, 4),
            Incoming::Ignored
        ));
    }

    #[test]
    fn invalid_messages_get_the_right_error() {
        assert_eq!(invalid("{oops")["error"]["code"], code::PARSE_ERROR);
        assert_eq!(invalid("[1,")["error"]["code"], code::PARSE_ERROR);
        assert_eq!(invalid("")["error"]["code"], code::PARSE_ERROR);
        assert_eq!(invalid("42")["error"]["code"], code::INVALID_REQUEST);
        assert_eq!(invalid("[]")["error"]["code"], code::INVALID_REQUEST);
        let too_long = invalid("[1, 2, 3, {}, [5]]");
        assert_eq!(too_long["error"]["code"], code::INVALID_REQUEST);
        assert!(
            too_long["error"]["message"]
                .as_str()
                .unwrap()
                .contains("a batch of 5 messages"),
            "{too_long}"
        );
        assert_eq!(
            invalid("[1, 2, 3, 4, 5")["error"]["code"],
            code::PARSE_ERROR
        );
        assert!(matches!(Incoming::parse(b"[1, 2, 3, 4]", 4), Incoming::Batch(e) if e.len() == 4));
        assert_eq!(invalid(r#"{"id":1}"#)["id"], 1);
        let null_id = invalid(r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#);
        assert_eq!(null_id["error"]["code"], code::INVALID_REQUEST);
        assert!(null_id["id"].is_null());
        let object_id = invalid(r#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#);
        assert!(object_id["id"].is_null());
    }
}
