//! `tools/list` and `tools/call`: `echo` (the load-test workhorse), `add`, `sleep_ms`,
//! `cluster_status` and `node_info`.

use std::sync::{Arc, OnceLock};

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResult, ContentBlock, JsonObject, ListToolsResult,
    Tool,
};
use serde_json::json;

use crate::dispatch::{MethodError, MethodReply, Request, to_result};
use crate::long_task::{LongTask, MAX_SLEEP_MS};

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
pub fn list(_request: &Request) -> Result<MethodReply, MethodError> {
    static LISTED: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = LISTED.get_or_init(|| {
        let result = ListToolsResult::with_all_items(tools())
            .with_ttl_ms(super::STATIC_TTL_MS)
            .with_cache_scope(CacheScope::Public);
        serde_json::to_vec(&result).expect("tools serialize")
    });
    Ok(MethodReply::Result(bytes.clone()))
}

fn argument<'a>(arguments: &'a Option<JsonObject>, name: &str) -> Option<&'a serde_json::Value> {
    arguments.as_ref().and_then(|a| a.get(name))
}

fn text_result(text: String) -> Result<MethodReply, MethodError> {
    to_result(&CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// `tools/call`.
pub fn call(request: &Request) -> Result<MethodReply, MethodError> {
    let params: CallToolRequestParams = request.params()?;
    match params.name.as_ref() {
        "echo" => match argument(&params.arguments, "text") {
            Some(serde_json::Value::String(text)) => text_result(text.clone()),
            _ => Err(MethodError::invalid_params(
                "echo needs a string argument `text`",
            )),
        },
        "add" => {
            let a = argument(&params.arguments, "a").and_then(serde_json::Value::as_f64);
            let b = argument(&params.arguments, "b").and_then(serde_json::Value::as_f64);
            match (a, b) {
                (Some(a), Some(b)) => text_result(format!("{}", a + b)),
                _ => Err(MethodError::invalid_params("add needs numbers `a` and `b`")),
            }
        }
        "sleep_ms" => {
            let ms = argument(&params.arguments, "ms")
                .and_then(serde_json::Value::as_u64)
                .filter(|ms| *ms <= MAX_SLEEP_MS)
                .ok_or_else(|| {
                    MethodError::invalid_params("sleep_ms needs an integer `ms` from 0 to 60000")
                })?;
            let progress_token = params
                .meta
                .as_ref()
                .and_then(|m| serde_json::to_value(m).ok())
                .and_then(|m| m.get("progressToken").cloned())
                .and_then(|t| serde_json::from_value(t).ok());
            Ok(MethodReply::Long(LongTask {
                id: request.id.to_owned(),
                ms,
                progress_token,
            }))
        }
        "cluster_status" => {
            let members = request.node.members();
            let value = json!({"node": request.node.config.node_name, "members": members});
            let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            result.structured_content = Some(value);
            to_result(&result)
        }
        "node_info" => {
            let value = node_info(request);
            let mut result = CallToolResult::success(vec![ContentBlock::text(value.to_string())]);
            result.structured_content = Some(value);
            to_result(&result)
        }
        other => Err(MethodError::invalid_params(format!(
            "unknown tool: {other}"
        ))),
    }
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
