//! `resources/list`, `resources/read` and `resources/templates/list`: `erlmcp://node/info` and
//! `erlmcp://cluster/members`, both JSON.

use rmcp::model::{
    ListResourceTemplatesResult, ListResourcesResult, ReadResourceRequestParams,
    ReadResourceResult, Resource, ResourceContents,
};

use crate::dispatch::{MethodError, MethodReply, Request, code, to_result};

const NODE_INFO: &str = "erlmcp://node/info";
const MEMBERS: &str = "erlmcp://cluster/members";

fn resource(uri: &str, name: &str, description: &str) -> Resource {
    serde_json::from_value(serde_json::json!({
        "uri": uri, "name": name, "description": description, "mimeType": "application/json"
    }))
    .expect("static resources parse")
}

/// `resources/list`.
pub fn list(_request: &Request) -> Result<MethodReply, MethodError> {
    to_result(&ListResourcesResult::with_all_items(vec![
        resource(
            NODE_INFO,
            "node info",
            "This node: name, role, version, uptime, sessions, capacity",
        ),
        resource(
            MEMBERS,
            "cluster members",
            "Every member this node knows, with state and load",
        ),
    ]))
}

/// `resources/read`.
pub fn read(request: &Request) -> Result<MethodReply, MethodError> {
    let params: ReadResourceRequestParams = request.params()?;
    let value = match params.uri.as_str() {
        NODE_INFO => super::tools::node_info(request),
        MEMBERS => serde_json::to_value(request.node.members()).expect("members serialize"),
        other => {
            return Err(MethodError::new(
                code::RESOURCE_NOT_FOUND,
                format!("resource not found: {other}"),
            ));
        }
    };
    let contents = ResourceContents::text(value.to_string(), params.uri.clone())
        .with_mime_type("application/json");
    to_result(&ReadResourceResult::new(vec![contents]))
}

/// `resources/templates/list`: there are none.
pub fn templates(_request: &Request) -> Result<MethodReply, MethodError> {
    to_result(&ListResourceTemplatesResult::with_all_items(Vec::new()))
}
