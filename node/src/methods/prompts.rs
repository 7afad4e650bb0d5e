//! `prompts/list` and `prompts/get`: one prompt that asks for a report on the cluster's health.

use rmcp::model::{
    CacheScope, GetPromptRequestParams, GetPromptResult, ListPromptsResult, Prompt, PromptArgument,
    PromptMessage, Role,
};

use super::{MethodResult, Request, to_result};
use crate::jsonrpc::ErrorObject;

const NAME: &str = "cluster_health_report";

fn prompt() -> Prompt {
    let focus: PromptArgument = serde_json::from_value(serde_json::json!({
        "name": "focus", "description": "What to look at first (latency, capacity, failures)", "required": false
    }))
    .expect("static argument parses");
    Prompt::new(
        NAME,
        Some("Write a health report of this erlmcp cluster"),
        Some(vec![focus]),
    )
}

/// `prompts/list`.
pub fn list(_request: &Request) -> MethodResult {
    to_result(
        &ListPromptsResult::with_all_items(vec![prompt()])
            .with_ttl_ms(super::STATIC_TTL_MS)
            .with_cache_scope(CacheScope::Public),
    )
}

/// `prompts/get`.
pub fn get(request: &Request) -> MethodResult {
    let params: GetPromptRequestParams = request.params()?;
    if params.name != NAME {
        return Err(ErrorObject::invalid_params(format!(
            "unknown prompt: {}",
            params.name
        )));
    }
    let focus = params
        .arguments
        .as_ref()
        .and_then(|a| a.get("focus"))
        .and_then(|f| f.as_str())
        .unwrap_or("overall health");
    let members = serde_json::to_string(&request.node.members()).expect("members serialize");
    let text = format!(
        "Here are the members of the erlmcp cluster as node {} sees them:\n{members}\n\
         Write a short health report focused on {focus}: which nodes are alive, how loaded they are, and what to do next.",
        request.node.config.node_name
    );
    to_result(&GetPromptResult::new(vec![PromptMessage::new_text(
        Role::User,
        text,
    )]))
}
