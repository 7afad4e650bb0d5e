//! The HTTP client a node talks to other nodes' API ports with: heartbeats and proxied `/mcp`
//! requests. One pooled client per node, so steady heartbeats reuse their connections.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, header};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};

use crate::membership::MemberRecord;

/// Connecting to a peer takes at most this long (a dead host must not stall a proxied request).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// A heartbeat reply larger than this is refused (a member list is a few hundred bytes a member).
const MAX_REPLY_BYTES: usize = 1 << 20;

/// The path heartbeats are POSTed to.
pub const HEARTBEAT_PATH: &str = "/cluster/heartbeat";

/// What `POST /cluster/heartbeat` answers: the receiver's name and what it knows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeartbeatReply {
    /// The receiver's name; its own record is in `members`.
    pub node: String,
    /// The receiver's own record first, then every member it heard from directly.
    pub members: Vec<MemberRecord>,
}

/// A pooled HTTP/1.1 client to other nodes.
pub struct Peers {
    client: Client<HttpConnector, Body>,
}

impl Peers {
    /// A client with bounded connects and a bounded idle pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Peers { client }
    }

    /// POSTs `record` to the node at `address` (`host:port`) and returns its reply; the whole
    /// exchange is bounded by `timeout`.
    pub async fn heartbeat(
        &self,
        address: &str,
        record: &MemberRecord,
        timeout: Duration,
    ) -> anyhow::Result<HeartbeatReply> {
        let request = Request::post(format!("http://{address}{HEARTBEAT_PATH}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(serde_json::to_vec(record)?))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_REPLY_BYTES)
                .await
                .map_err(|e| anyhow::anyhow!("reading the reply: {e}"))?;
            anyhow::ensure!(status.is_success(), "answered {status}");
            Ok(serde_json::from_slice(&body)?)
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| anyhow::anyhow!("no reply within {timeout:?}"))?
    }

    /// Sends `request` as is; the response body streams (SSE passes through).
    pub async fn send(
        &self,
        request: Request<Body>,
    ) -> Result<Response<Incoming>, hyper_util::client::legacy::Error> {
        self.client.request(request).await
    }
}

impl Default for Peers {
    fn default() -> Self {
        Peers::new()
    }
}
