//! `resources/list`, `resources/read` and `resources/templates/list`: `erlmcp://node/info` and
//! `erlmcp://cluster/members`, both JSON.

use rmcp::model::{
    CacheScope, ListResourceTemplatesResult, ListResourcesResult, ReadResourceRequestParams,
    ReadResourceResult, Resource, ResourceContents,
};

use super::{MethodResult, Request, to_result};
use crate::jsonrpc::{ErrorObject, code};

const NODE_INFO: &str = "erlmcp://node/info";
const MEMBERS: &str = "erlmcp://cluster/members";

fn resource(uri: &str, name: &str, description: &str) -> Resource {
    serde_json::from_value(serde_json::json!({
        "uri": uri, "name": name, "description": description, "mimeType": "application/json"
    }))
    .expect("static resources parse")
}

/// `resources/list`.
pub fn list(_request: &Request) -> MethodResult {
    let resources = ListResourcesResult::with_all_items(vec![
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
    ]);
    to_result(
        &resources
            .with_ttl_ms(super::STATIC_TTL_MS)
            .with_cache_scope(CacheScope::Public),
    )
}

/// `resources/read`.
pub fn read(request: &Request) -> MethodResult {
    let params: ReadResourceRequestParams = request.params()?;
    let value = match params.uri.as_str() {
        NODE_INFO => super::tools::node_info(request),
        MEMBERS => serde_json::to_value(request.node.members()).expect("members serialize"),
        other => {
            return Err(ErrorObject::new(
                code::RESOURCE_NOT_FOUND,
                format!("resource not found: {other}"),
            ));
        }
    };
    let contents = ResourceContents::text(value.to_string(), params.uri.clone())
        .with_mime_type("application/json");
    // Live figures (load, uptime): stale at once, and private to the asker.
    to_result(
        &ReadResourceResult::new(vec![contents])
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private),
    )
}

/// `resources/templates/list`: there are none.
pub fn templates(_request: &Request) -> MethodResult {
    to_result(
        &ListResourceTemplatesResult::with_all_items(Vec::new())
            .with_ttl_ms(super::STATIC_TTL_MS)
            .with_cache_scope(CacheScope::Public),
    )
}
