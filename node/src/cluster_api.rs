//! The cluster routes of the API port: `GET /cluster` (this node's member list),
//! `GET /cluster/placement` (where a new session should go) and `POST /cluster/heartbeat`
//! (another node saying it is alive, authenticated by the cluster secret).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::cluster_secret::{MAC_HEADER, MembershipAuth, SENT_HEADER, is_fresh, unix_ms_now};
use crate::config::NodeConfig;
use crate::membership::{Member, MemberRecord, Replayed};
use crate::peer::{HEARTBEAT_PATH, HeartbeatReply};
use crate::state::Node;

/// The cluster routes, to merge into the API router.
pub fn routes() -> Router<Node> {
    Router::new()
        .route("/cluster", get(members))
        .route("/cluster/placement", get(placement))
        .route(
            HEARTBEAT_PATH,
            post(heartbeat).layer(DefaultBodyLimit::max(MAX_HEARTBEAT_BYTES)),
        )
}

/// A heartbeat body larger than this gets 413 unread: a record is a few hundred bytes.
pub const MAX_HEARTBEAT_BYTES: usize = 16 * 1024;

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

/// Records the sender as heard from directly and answers with what this node knows (dated
/// word of its live members), so the sender learns members and how fresh they are. A draining
/// node answers 503: peers must not count it alive.
/// With a secret, a heartbeat without a valid MAC, stale, or replayed gets 401 and changes
/// nothing, and the reply carries a MAC bound to the request's.
async fn heartbeat(State(node): State<Node>, headers: HeaderMap, body: Bytes) -> Response {
    // The member table decides where the coordinator proxies sessions: no browser may write it.
    if let Err(refused) = crate::http::check_origin_and_host(&node, &headers) {
        return *refused;
    }
    if node.is_draining() {
        return refusal(StatusCode::SERVICE_UNAVAILABLE, "draining");
    }
    let sent_ms = match authenticate(&node.config, &headers, &body) {
        Ok(sent_ms) => sent_ms,
        Err(why) => {
            tracing::debug!(why, "heartbeat refused");
            return refusal(StatusCode::UNAUTHORIZED, why);
        }
    };
    let record: MemberRecord = match serde_json::from_slice(&body) {
        Ok(record) => record,
        Err(e) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                &format!("not a member record: {e}"),
            );
        }
    };
    if let Err(why) = record.check() {
        return refusal(StatusCode::BAD_REQUEST, &why);
    }
    let own = node.as_record();
    let now = tokio::time::Instant::now();
    let mut table = node.member_table.lock().expect("member table lock");
    let heard = match sent_ms {
        Some(sent_ms) => table.heard_heartbeat(record, sent_ms, now),
        None => Ok(table.heard_directly(record, now)),
    };
    if heard == Err(Replayed) {
        return refusal(StatusCode::UNAUTHORIZED, "replayed heartbeat");
    }
    let members = table.reply_records(own, now, node.config.dead_after);
    drop(table);
    let reply = HeartbeatReply {
        node: node.config.node_name.clone(),
        members,
    };
    let body = serde_json::to_vec(&reply).expect("records serialize");
    let mac = match &node.config.membership {
        MembershipAuth::Secret(secret) => {
            let request_mac = headers
                .get(MAC_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            Some(secret.sign_reply(request_mac, &body))
        }
        _ => None,
    };
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(mac) = mac {
        let mac = HeaderValue::from_str(&mac).expect("hex is a header value");
        response.headers_mut().insert(MAC_HEADER, mac);
    }
    response
}

fn refusal(status: StatusCode, why: &str) -> Response {
    (status, Json(json!({ "error": why }))).into_response()
}

/// The heartbeat's send time when its MAC is valid and it is fresh; None with open membership;
/// why not otherwise. Replay against the member's last send time is checked by the table.
fn authenticate(
    config: &NodeConfig,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Option<u64>, &'static str> {
    let secret = match &config.membership {
        MembershipAuth::Secret(secret) => secret,
        MembershipAuth::InsecureOpen => return Ok(None),
        MembershipAuth::Disabled => {
            return Err("membership is disabled on this node (no cluster secret)");
        }
    };
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(sent), Some(mac)) = (text(SENT_HEADER), text(MAC_HEADER)) else {
        return Err("heartbeat without a cluster-secret MAC");
    };
    let sent_ms: u64 = sent
        .parse()
        .map_err(|_| "heartbeat send time is not a number")?;
    if !secret.verify_request(sent_ms, body, mac) {
        return Err("heartbeat MAC does not match the cluster secret");
    }
    if !is_fresh(sent_ms, unix_ms_now(), config.replay_window) {
        return Err("heartbeat send time is outside the replay window");
    }
    Ok(Some(sent_ms))
}
