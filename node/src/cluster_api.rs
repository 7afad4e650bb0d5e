//! The cluster routes of the API port: `GET /cluster` (this node's member list),
//! `GET /cluster/placement` (where a new session should go) and `POST /cluster/heartbeat`
//! (another node saying it is alive).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::membership::{Member, MemberRecord};
use crate::peer::{HEARTBEAT_PATH, HeartbeatReply};
use crate::state::Node;

/// The cluster routes, to merge into the API router.
pub fn routes() -> Router<Node> {
    Router::new()
        .route("/cluster", get(members))
        .route("/cluster/placement", get(placement))
        .route(HEARTBEAT_PATH, post(heartbeat))
}

/// `GET /cluster`: this node's name, then its member list (field order kept for readers).
#[derive(Serialize)]
struct ClusterView<'a> {
    node: &'a str,
    members: Vec<Member>,
}

async fn members(State(node): State<Node>) -> Response {
    Json(ClusterView {
        node: &node.config.node_name,
        members: node.members(),
    })
    .into_response()
}

/// The member a new session should go to, from this node's view; None when none has room.
/// A draining node does not offer itself.
pub fn place(node: &Node) -> Option<Member> {
    let members = node.members();
    let offered = members
        .iter()
        .filter(|m| !(m.name == node.config.node_name && node.is_draining()));
    crate::placement::choose(offered).cloned()
}

async fn placement(State(node): State<Node>) -> Response {
    match place(&node) {
        Some(member) => Json(member).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "no live member has room for a new session"})),
        )
            .into_response(),
    }
}

/// Records the sender as heard from directly and answers with what this node knows, so the
/// sender learns every member. A draining node answers 503: peers must not count it alive.
async fn heartbeat(
    State(node): State<Node>,
    headers: HeaderMap,
    Json(record): Json<MemberRecord>,
) -> Response {
    // The member table decides where the coordinator proxies sessions: no browser may write it.
    if let Err(refused) = crate::http::check_origin_and_host(&node, &headers) {
        return *refused;
    }
    if node.is_draining() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "draining"})),
        )
            .into_response();
    }
    let mut members = vec![node.as_record()];
    let now = tokio::time::Instant::now();
    let mut table = node.member_table.lock().expect("member table lock");
    table.heard_directly(record, now);
    members.extend(table.alive_records(now, node.config.dead_after));
    drop(table);
    Json(HeartbeatReply {
        node: node.config.node_name.clone(),
        members,
    })
    .into_response()
}
