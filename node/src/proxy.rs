//! The `/mcp` proxy that lets an unchanged Streamable HTTP client reach the least-loaded node
//! through the coordinator. The coordinator forwards a new session's `initialize` to the placed
//! node and hands the client that node's session id as `<node>~<id>`; any node forwards requests
//! carrying such an id (POST, the GET stream, DELETE) to the named node, bodies streaming.
//!
//! Redirects would be simpler but do not work: MCP clients follow them only within one origin.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;

use crate::config::Role;
use crate::http::{SESSION_HEADER, rpc_error};
use crate::jsonrpc::code;
use crate::state::Node;

/// Marks a request one node forwarded to another, so it is never forwarded again.
pub const FORWARDED_BY: &str = "x-erlmcp-forwarded-by";

/// Separates the owning node's name from its session id (ids are hex, names never need it).
const SEPARATOR: char = '~';

/// Splits `<node>~<id>` into the owning node's name and the id that node knows the session by.
pub fn split_session_id(id: &str) -> Option<(&str, &str)> {
    id.rsplit_once(SEPARATOR)
        .filter(|(owner, inner)| !owner.is_empty() && !inner.is_empty())
}

/// The id a client sees for session `id` on node `owner`.
pub fn join_session_id(owner: &str, id: &str) -> String {
    format!("{owner}{SEPARATOR}{id}")
}

/// Headers that describe one connection, not the message: never copied across the proxy.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
            | "proxy-authenticate"
    )
}

/// Headers that carry the client's credentials: a member must not receive what the client
/// meant for the coordinator, unless the operator says so (`--proxy-forward-credentials`).
fn is_credential(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization" | "cookie" | "proxy-authorization"
    )
}

/// The header names a `Connection` header lists: hop-by-hop too, by the sender's word.
fn named_in_connection(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

/// The request headers the proxy passes on to a member: not hop-by-hop (fixed or named in
/// `Connection`), not credentials unless `forward_credentials`, and not the ones it sets itself.
pub fn forwardable_headers(headers: &HeaderMap, forward_credentials: bool) -> HeaderMap {
    let per_connection = named_in_connection(headers);
    // Origin was checked here; the owner checks Host against its own address.
    let replaced = [
        header::HOST,
        header::ORIGIN,
        header::CONTENT_LENGTH,
        HeaderName::from_static(SESSION_HEADER),
        HeaderName::from_static(FORWARDED_BY),
    ];
    let mut kept = HeaderMap::new();
    for (name, value) in headers {
        let dropped = is_hop_by_hop(name)
            || per_connection.contains(name)
            || replaced.contains(name)
            || (!forward_credentials && is_credential(name));
        if !dropped {
            kept.append(name.clone(), value.clone());
        }
    }
    kept
}

/// A request for a session another node owns goes to that node. Returns None when the session
/// is this node's (a `<self>~<id>` header is then rewritten to the bare id) or has no owner
/// prefix.
pub async fn forward_to_owner(
    node: &Node,
    method: Method,
    headers: &mut HeaderMap,
    body: Bytes,
) -> Option<Response> {
    let id = headers.get(SESSION_HEADER)?.to_str().ok()?;
    let (owner, inner) = split_session_id(id)?;
    let (owner, inner) = (owner.to_string(), inner.to_string());
    if owner == node.config.node_name {
        headers.insert(SESSION_HEADER, HeaderValue::from_str(&inner).ok()?);
        return None;
    }
    let api = node
        .member_table
        .lock()
        .expect("member table lock")
        .api_of(&owner);
    let Some(api) = api.filter(|_| !headers.contains_key(FORWARDED_BY)) else {
        return Some(session_gone(&owner));
    };
    match forward(node, &owner, &api, method, headers, Some(&inner), body).await {
        Ok(response) => Some(response),
        Err(error) => {
            tracing::warn!(%owner, %api, error = %format!("{error:#}"), "proxied session unreachable");
            Some(session_gone(&owner))
        }
    }
}

/// 404 makes a Streamable HTTP client start a new session, which placement puts on a live node.
fn session_gone(owner: &str) -> Response {
    let message = format!("unknown or expired Mcp-Session-Id: its node {owner} is unreachable");
    rpc_error(StatusCode::NOT_FOUND, code::INVALID_REQUEST, &message)
}

/// On the coordinator, forwards a new session's `initialize` to the placed member when that is
/// another node. None means this node takes the session: it is not the coordinator, the request
/// was forwarded already, placement chose this node or nobody, or the placed node could not
/// take it (unreachable, or full since its last heartbeat).
pub async fn place_initialize(node: &Node, headers: &HeaderMap, body: &Bytes) -> Option<Response> {
    if node.config.role != Role::Coordinator || headers.contains_key(FORWARDED_BY) {
        return None;
    }
    let target = crate::cluster_api::place(node)?;
    if target.name == node.config.node_name {
        return None;
    }
    let forwarded = forward(
        node,
        &target.name,
        &target.api,
        Method::POST,
        headers,
        None,
        body.clone(),
    )
    .await;
    match forwarded {
        Ok(response) if response.status() != StatusCode::SERVICE_UNAVAILABLE => {
            if response.headers().contains_key(SESSION_HEADER) {
                node.member_table
                    .lock()
                    .expect("member table lock")
                    .count_placed_session(&target.name);
            }
            Some(response)
        }
        Ok(_) => {
            tracing::info!(member = %target.name, "placed member is full: serving the session here");
            None
        }
        Err(error) => {
            tracing::warn!(member = %target.name, error = %format!("{error:#}"), "placed member unreachable: serving the session here");
            None
        }
    }
}

/// Sends the request to `owner`'s `/mcp` at `api` and returns its response, streaming, with the
/// session id it hands out prefixed by `owner`.
async fn forward(
    node: &Node,
    owner: &str,
    api: &str,
    method: Method,
    headers: &HeaderMap,
    session_id: Option<&str>,
    body: Bytes,
) -> anyhow::Result<Response> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{api}/mcp"));
    for (name, value) in &forwardable_headers(headers, node.config.proxy_forward_credentials) {
        request = request.header(name, value);
    }
    request = request
        .header(header::HOST, api)
        .header(FORWARDED_BY, node.config.node_name.as_str());
    if let Some(id) = session_id {
        request = request.header(SESSION_HEADER, id);
    }
    let response = node.peers.send(request.body(Body::from(body))?).await?;
    let (mut parts, body) = response.into_parts();
    let per_connection = named_in_connection(&parts.headers);
    let hop_by_hop: Vec<HeaderName> = parts
        .headers
        .keys()
        .filter(|name| is_hop_by_hop(name) || per_connection.contains(name))
        .cloned()
        .collect();
    for name in hop_by_hop {
        parts.headers.remove(name);
    }
    if let Some(id) = parts.headers.get(SESSION_HEADER) {
        let prefixed = join_session_id(owner, id.to_str()?);
        parts
            .headers
            .insert(SESSION_HEADER, HeaderValue::from_str(&prefixed)?);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_carry_their_owner() {
        let id = join_session_id("worker-1", "9f3a");
        assert_eq!(id, "worker-1~9f3a");
        assert_eq!(split_session_id(&id), Some(("worker-1", "9f3a")));
        assert_eq!(split_session_id("9f3a"), None);
        assert_eq!(split_session_id("~9f3a"), None);
        assert_eq!(split_session_id("worker-1~"), None);
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn names(map: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = map.keys().map(HeaderName::as_str).collect();
        names.sort();
        names
    }

    #[test]
    fn credentials_and_hop_by_hop_headers_stay_behind() {
        let incoming = headers(&[
            ("authorization", "Bearer secret"),
            ("cookie", "sid=1"),
            ("proxy-authorization", "Basic eA=="),
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("x-private", "hop"),
            ("host", "coordinator:8080"),
            ("origin", "http://localhost"),
            ("content-length", "2"),
            ("mcp-session-id", "w1~abc"),
            ("x-erlmcp-forwarded-by", "spoofed"),
            ("accept", "application/json"),
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
        assert_eq!(
            names(&forwardable_headers(&incoming, false)),
            ["accept", "content-type", "mcp-protocol-version"]
        );
        assert_eq!(
            names(&forwardable_headers(&incoming, true)),
            [
                "accept",
                "authorization",
                "content-type",
                "cookie",
                "mcp-protocol-version",
                "proxy-authorization"
            ]
        );
    }
}
