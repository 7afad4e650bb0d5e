//! `tools/list` and `tools/call`: `echo` (the load-test workhorse), `add`, `sleep_ms`,
//! `cluster_status` and `node_info`.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

use rmcp::model::{
    CacheScope, CallToolResult, ContentBlock, JsonObject, ListToolsResult, ProgressToken, Tool,
};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use super::{MethodReply, MethodResult, Request, to_result};
use crate::jsonrpc::{ErrorObject, JsonText};
use crate::long_task::{LongTask, MAX_SLEEP_MS, progress_token_within_limit};

fn schema(value: serde_json::Value) -> Arc<JsonObject> {
    Arc::new(value.as_object().expect("schemas are objects").clone())
}

/// The tools, with their input schemas.
pub fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "echo",
            "Returns its text unchanged.",
            schema(
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
        ),
        Tool::new(
            "add",
            "Adds two numbers.",
            schema(
                json!({"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
            ),
        ),
        Tool::new(
            "sleep_ms",
            "Sleeps for ms milliseconds (at most 60000), reporting progress; cancellable.",
            schema(
                json!({"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0, "maximum": MAX_SLEEP_MS}}, "required": ["ms"]}),
            ),
        ),
        Tool::new(
            "cluster_status",
            "This node's view of the cluster: members, their state and load.",
            schema(json!({"type": "object", "properties": {}})),
        ),
        Tool::new(
            "node_info",
            "This node: name, role, version, uptime, sessions and capacity.",
            schema(json!({"type": "object", "properties": {}})),
        ),
    ]
}

/// `tools/list`, serialized once.
pub fn list(_request: &Request) -> MethodResult {
    static LISTED: OnceLock<JsonText> = OnceLock::new();
    let listed = LISTED.get_or_init(|| {
        let result = ListToolsResult::with_all_items(tools())
            .with_ttl_ms(super::STATIC_TTL_MS)
            .with_cache_scope(CacheScope::Public);
        JsonText::of(&result).expect("tools serialize")
    });
    Ok(MethodReply::Result(JsonText::cached(listed)))
}

/// `tools/call`'s params, borrowed from the request: the arguments stay JSON text until the
/// named tool reads them into its own type.
#[derive(Deserialize)]
struct ToolCall<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
    #[serde(borrow, rename = "_meta", default)]
    meta: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EchoArguments<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

#[derive(Deserialize)]
struct AddArguments {
    a: f64,
    b: f64,
}

#[derive(Deserialize)]
struct SleepArguments {
    ms: u64,
}

#[derive(Deserialize)]
struct ProgressMeta {
    #[serde(rename = "progressToken", default)]
    progress_token: Option<ProgressToken>,
}

/// Why a known tool cannot run with the arguments it was given. Per SEP-1303 (spec
/// 2025-11-25) this is a tool execution error, a result with `isError: true` the model can
/// read and correct, not a JSON-RPC protocol error.
struct InvalidArguments(String);

fn arguments<'a, T: Deserialize<'a>>(
    tool: &str,
    expected: &str,
    raw: Option<&'a RawValue>,
) -> Result<T, InvalidArguments> {
    serde_json::from_str(raw.map_or("{}", RawValue::get)).map_err(|e| {
        InvalidArguments(format!(
            "invalid arguments for {tool}: {e}; expected {expected}"
        ))
    })
}

fn text_result(text: String) -> MethodResult {
    to_result(&CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// `tools/call`.
pub fn call(request: &Request) -> MethodResult {
    let params: ToolCall = request.params()?;
    match run_tool(request, &params) {
        Ok(reply) => reply,
        Err(InvalidArguments(text)) => {
            to_result(&CallToolResult::error(vec![ContentBlock::text(text)]))
        }
    }
}

fn run_tool(request: &Request, params: &ToolCall) -> Result<MethodResult, InvalidArguments> {
    let name = params.name.as_ref();
    let raw = params.arguments;
    Ok(match name {
        "echo" => {
            let args: EchoArguments = arguments(name, "{\"text\": string}", raw)?;
            text_result(args.text.into_owned())
        }
        "add" => {
            let args: AddArguments = arguments(name, "{\"a\": number, \"b\": number}", raw)?;
            text_result(format!("{}", args.a + args.b))
        }
        "sleep_ms" => {
            let expected = "{\"ms\": integer from 0 to 60000}";
            let args: SleepArguments = arguments(name, expected, raw)?;
            if args.ms > MAX_SLEEP_MS {
                return Err(InvalidArguments(format!(
                    "invalid arguments for sleep_ms: ms = {} is more than {MAX_SLEEP_MS}; expected {expected}",
                    args.ms
                )));
            }
            let progress_token = params
                .meta
                .and_then(|m| serde_json::from_str::<ProgressMeta>(m.get()).ok())
                .and_then(|m| m.progress_token)
                .and_then(progress_token_within_limit);
            Ok(MethodReply::Long(LongTask {
                id: request.id.clone().into_owned(),
                ms: args.ms,
                progress_token,
            }))
        }
        "cluster_status" => {
            let members = request.node.members();
            let value = json!({"node": request.node.config.node_name, "members": members});
            structured(value)
        }
        "node_info" => structured(node_info(request)),
        other => Err(ErrorObject::invalid_params(format!(
            "unknown tool: {other}"
        ))),
    })
}

fn structured(value: serde_json::Value) -> MethodResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
    result.structured_content = Some(value);
    to_result(&result)
}

/// What `node_info` and `erlmcp://node/info` report.
pub fn node_info(request: &Request) -> serde_json::Value {
    let node = request.node;
    json!({
        "name": node.config.node_name,
        "cluster": node.config.cluster,
        "role": node.config.role,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": node.started.elapsed().as_secs(),
        "sessions": node.sessions_open(),
        "max_connections": node.config.max_connections,
        "draining": node.is_draining(),
    })
}
