//! The HTTP client a node talks to other nodes' API ports with: heartbeats and proxied `/mcp`
//! requests. One pooled client per node, so steady heartbeats reuse their connections.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, header};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::{Deserialize, Serialize};

use crate::cluster_secret::{MAC_HEADER, MembershipAuth, SENT_HEADER, unix_ms_now};
use crate::membership::{DatedRecord, MemberRecord};

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
    /// The receiver's own record first, then the live members it knows, freshest first, each
    /// dated (at most [`crate::membership::MAX_REPLY_MEMBERS`] in all).
    pub members: Vec<DatedRecord>,
}

/// A pooled HTTP/1.1 client to other nodes.
pub struct Peers {
    client: Client<HttpConnector, Body>,
    /// Send time of the last heartbeat: each is later than the one before, so receivers can
    /// refuse a send time they have seen (a replay) even if the wall clock stands still.
    last_sent_ms: AtomicU64,
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
        Peers {
            client,
            last_sent_ms: AtomicU64::new(0),
        }
    }

    /// A send time later than every one before it (the wall clock, unless it stood still).
    fn next_sent_ms(&self) -> u64 {
        let now = unix_ms_now();
        let previous = self
            .last_sent_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .expect("the update always succeeds");
        now.max(previous + 1)
    }

    /// POSTs `record` to the node at `address` (`host:port`) and returns its reply; the whole
    /// exchange is bounded by `timeout`. With a secret, the heartbeat carries its send time and
    /// MAC, and a reply without a valid MAC over our MAC and its body is an error.
    pub async fn heartbeat(
        &self,
        address: &str,
        record: &MemberRecord,
        auth: &MembershipAuth,
        timeout: Duration,
    ) -> anyhow::Result<HeartbeatReply> {
        let body = serde_json::to_vec(record)?;
        let mut request = Request::post(format!("http://{address}{HEARTBEAT_PATH}"))
            .header(header::CONTENT_TYPE, "application/json");
        let mut request_mac = None;
        if let MembershipAuth::Secret(secret) = auth {
            let sent_ms = self.next_sent_ms();
            let mac = secret.sign_request(sent_ms, &body);
            request = request
                .header(SENT_HEADER, sent_ms)
                .header(MAC_HEADER, mac.as_str());
            request_mac = Some((secret, mac));
        }
        let request = request.body(Body::from(body))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let reply_mac = response.headers().get(MAC_HEADER).cloned();
            let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_REPLY_BYTES)
                .await
                .map_err(|e| anyhow::anyhow!("reading the reply: {e}"))?;
            anyhow::ensure!(status.is_success(), "answered {status}");
            if let Some((secret, mac)) = &request_mac {
                let authentic = reply_mac
                    .as_ref()
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|reply_mac| secret.verify_reply(mac, &body, reply_mac));
                anyhow::ensure!(
                    authentic,
                    "the reply is not authenticated by the cluster secret"
                );
            }
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
