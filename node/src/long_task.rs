//! Requests that outlive their dispatch: `sleep_ms` sleeps in steps, sends progress notifications
//! when the client gave a progress token, and stops silently when the client cancels it or is
//! gone (its transport dropped the receiving end). Their messages go through a bounded queue: a
//! progress notification that finds it full is dropped (the next one says more), so a client
//! that does not read costs at most the queue. When the node gives up on it at the end of a
//! drain, the request answers with a shutting-down error.

use std::collections::HashMap;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken};
use tokio::sync::{mpsc, oneshot, watch};

use crate::jsonrpc::{ErrorObject, Id, JsonText, Message, Notification, Response, code};
use crate::state::Node;

/// The longest `sleep_ms` a client may ask for.
pub const MAX_SLEEP_MS: u64 = 60_000;

/// The longest progress token (its JSON text) a request gets progress for. Every progress
/// notification repeats the token and the outbound queue counts messages, so this keeps a queue
/// of `outbound_queue` notifications small whatever a client sends (a token may otherwise be as
/// long as a whole message). A longer one gets no progress, which the spec allows (a receiver
/// may choose not to send any); MCP clients use short ids.
pub const MAX_PROGRESS_TOKEN_BYTES: usize = 1024;

/// `token` if progress may be reported for it (see [`MAX_PROGRESS_TOKEN_BYTES`]).
pub fn progress_token_within_limit(token: ProgressToken) -> Option<ProgressToken> {
    let length = serde_json::to_string(&token).map_or(usize::MAX, |json| json.len());
    (length <= MAX_PROGRESS_TOKEN_BYTES).then_some(token)
}

/// How often a sleeping request reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Cancellation handles of running long requests, by request id (JSON text).
pub type Cancels = HashMap<String, oneshot::Sender<()>>;

/// A long-running request, ready to run on a transport.
#[derive(Debug)]
pub struct LongTask {
    /// The request id.
    pub id: Id<'static>,
    /// How long to sleep.
    pub ms: u64,
    /// The client's progress token, if it wants progress.
    pub progress_token: Option<ProgressToken>,
}

impl LongTask {
    /// The id as the key of [`Cancels`].
    pub fn key(&self) -> String {
        self.id.json().to_string()
    }

    /// Runs on `node`: counted in its in-flight gauge (the drain waits for it) and abandoned
    /// when the drain gives up.
    pub async fn run_on(
        self,
        node: Node,
        out: mpsc::Sender<Message>,
        cancel: oneshot::Receiver<()>,
    ) {
        node.metrics.in_flight.inc();
        let abandon = node.abandon.subscribe();
        let dropped = self.run(out, cancel, abandon, &node.config.node_name).await;
        node.metrics.progress_dropped.inc_by(dropped);
        node.metrics.in_flight.dec();
    }

    /// Runs to completion (sending progress and then the response into `out`), until `cancel`
    /// fires or `out`'s receiver is dropped (sending nothing more: the spec says a cancelled
    /// request gets no reply), or until `abandon` turns true (sending a shutting-down error
    /// naming `node_name`). Returns how many progress notifications found the queue full.
    pub async fn run(
        self,
        out: mpsc::Sender<Message>,
        mut cancel: oneshot::Receiver<()>,
        mut abandon: watch::Receiver<bool>,
        node_name: &str,
    ) -> u64 {
        let total = Duration::from_millis(self.ms);
        let started = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
        let mut dropped = 0;
        loop {
            let elapsed = started.elapsed();
            if elapsed >= total {
                break;
            }
            let remaining = total - elapsed;
            tokio::select! {
                _ = &mut cancel => return dropped,
                _ = out.closed() => return dropped, // the client is gone
                _ = abandoned(&mut abandon) => {
                    let message = format!(
                        "node {node_name} is shutting down; the request was abandoned, retry it on another node"
                    );
                    let error = ErrorObject::new(code::AT_CAPACITY, message);
                    let _ = out.send(Message::Response(Response::error(Some(self.id), error))).await;
                    return dropped;
                }
                _ = tokio::time::sleep(remaining) => break,
                _ = ticker.tick() => {
                    if let Some(token) = &self.progress_token {
                        let done = started.elapsed().min(total).as_millis() as f64;
                        let params = ProgressNotificationParam::new(token.clone(), done)
                            .with_total(self.ms as f64)
                            .with_message(format!("slept {done} of {} ms", self.ms));
                        let progress = Notification::new("notifications/progress", &params)
                            .expect("progress params serialize");
                        match out.try_send(Message::Notification(progress)) {
                            Ok(()) => {}
                            Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                            Err(mpsc::error::TrySendError::Closed(_)) => return dropped,
                        }
                    }
                }
            }
        }
        let result =
            CallToolResult::success(vec![ContentBlock::text(format!("slept {} ms", self.ms))]);
        let result = JsonText::of(&result).expect("results serialize");
        // Waits for room; the transport's write timeout bounds the wait (it drops the receiver).
        let _ = out
            .send(Message::Response(Response::result(self.id, result)))
            .await;
        dropped
    }
}

/// The answer to a long request a session has no room for: it already runs `max_in_flight`.
pub fn refusal(id: Id<'static>, max_in_flight: usize) -> Response<'static> {
    let message = format!(
        "too many requests in flight on this session (at most {max_in_flight}); wait for one to finish"
    );
    Response::error(Some(id), ErrorObject::new(code::AT_CAPACITY, message))
}

/// Resolves once `abandon` turns true; never when its sender is gone without turning it.
async fn abandoned(abandon: &mut watch::Receiver<bool>) {
    let gone = abandon.wait_for(|stop| *stop).await.is_err();
    if gone {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(ms: u64, token: bool) -> LongTask {
        LongTask {
            id: Id::new(&serde_json::from_str::<Box<serde_json::value::RawValue>>("7").unwrap())
                .unwrap()
                .into_owned(),
            ms,
            progress_token: token.then(|| serde_json::from_str("\"tok\"").unwrap()),
        }
    }

    fn no_abandon() -> watch::Receiver<bool> {
        watch::Sender::new(false).subscribe()
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_reports_progress_and_answers() {
        let (tx, mut rx) = mpsc::channel(16);
        let (_keep, cancel) = oneshot::channel();
        task(350, true).run(tx, cancel, no_abandon(), "n").await;
        let mut messages = Vec::new();
        while let Ok(m) = rx.try_recv() {
            messages.push(String::from_utf8(m.to_vec()).unwrap());
        }
        let progress = messages
            .iter()
            .filter(|m| m.contains("notifications/progress"))
            .count();
        assert_eq!(progress, 3, "{messages:?}");
        assert!(messages.last().unwrap().contains("\"id\":7"));
        assert!(messages.last().unwrap().contains("slept 350 ms"));
    }

    #[test]
    fn long_progress_tokens_get_no_progress() {
        let token = |json: String| serde_json::from_str::<ProgressToken>(&json).unwrap();
        let longest = format!("\"{}\"", "t".repeat(MAX_PROGRESS_TOKEN_BYTES - 2));
        assert!(progress_token_within_limit(token(longest.clone())).is_some());
        let longer = format!("\"{}\"", "t".repeat(MAX_PROGRESS_TOKEN_BYTES - 1));
        assert!(progress_token_within_limit(token(longer)).is_none());
        assert!(progress_token_within_limit(token("42".into())).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_sleep_sends_no_reply() {
        let (tx, mut rx) = mpsc::channel(16);
        let (cancel_tx, cancel) = oneshot::channel();
        let running = tokio::spawn(task(10_000, false).run(tx, cancel, no_abandon(), "n"));
        tokio::time::sleep(Duration::from_millis(250)).await;
        cancel_tx.send(()).unwrap();
        running.await.unwrap();
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_whose_client_is_gone_stops() {
        let (tx, rx) = mpsc::channel(16);
        let (_keep, cancel) = oneshot::channel();
        let running = tokio::spawn(task(60_000, false).run(tx, cancel, no_abandon(), "n"));
        tokio::time::sleep(Duration::from_millis(250)).await;
        drop(rx);
        // Well before the 60 s sleep would end.
        tokio::time::timeout(Duration::from_secs(1), running)
            .await
            .expect("stops when its client is gone")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn progress_to_a_client_that_does_not_read_is_dropped_not_queued() {
        let (tx, mut rx) = mpsc::channel(4);
        let (_keep, cancel) = oneshot::channel();
        let running = tokio::spawn(task(2_000, true).run(tx, cancel, no_abandon(), "n"));
        tokio::time::sleep(Duration::from_millis(2_050)).await;
        // 19 or 20 progress ticks (the last one races the end), 4 fit; the final response waits
        // for room.
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(String::from_utf8(rx.recv().await.unwrap().to_vec()).unwrap());
        }
        let dropped = running.await.unwrap();
        assert!((15..=16).contains(&dropped), "{dropped}: {got:?}");
        assert!(got.last().unwrap().contains("slept 2000 ms"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_request_answers_that_the_node_is_shutting_down() {
        let (tx, mut rx) = mpsc::channel(16);
        let (_keep, cancel) = oneshot::channel();
        let abandon = watch::Sender::new(false);
        let running = tokio::spawn(task(60_000, false).run(tx, cancel, abandon.subscribe(), "n1"));
        tokio::time::sleep(Duration::from_millis(250)).await;
        abandon.send_replace(true);
        running.await.unwrap();
        let reply: serde_json::Value =
            serde_json::from_slice(&rx.recv().await.unwrap().to_vec()).unwrap();
        assert_eq!(reply["id"], 7);
        assert_eq!(reply["error"]["code"], -32000);
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("shutting down")
        );
    }
}
