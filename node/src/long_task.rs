//! Requests that outlive their dispatch: `sleep_ms` sleeps in steps, sends progress notifications
//! when the client gave a progress token, and stops silently when the client cancels it.

use std::collections::HashMap;
use std::time::Duration;

use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken};
use tokio::sync::{mpsc, oneshot};

use crate::jsonrpc::{Id, JsonText, Message, Notification, Response};

/// The longest `sleep_ms` a client may ask for.
pub const MAX_SLEEP_MS: u64 = 60_000;

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

    /// Runs to completion (sending progress and then the response into `out`) or until
    /// `cancel` fires (sending nothing more: the spec says a cancelled request gets no reply).
    pub async fn run(self, out: mpsc::UnboundedSender<Message>, mut cancel: oneshot::Receiver<()>) {
        let total = Duration::from_millis(self.ms);
        let started = tokio::time::Instant::now();
        let mut ticker = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            let elapsed = started.elapsed();
            if elapsed >= total {
                break;
            }
            let remaining = total - elapsed;
            tokio::select! {
                _ = &mut cancel => return,
                _ = tokio::time::sleep(remaining) => break,
                _ = ticker.tick() => {
                    if let Some(token) = &self.progress_token {
                        let done = started.elapsed().min(total).as_millis() as f64;
                        let params = ProgressNotificationParam::new(token.clone(), done)
                            .with_total(self.ms as f64)
                            .with_message(format!("slept {done} of {} ms", self.ms));
                        let progress = Notification::new("notifications/progress", &params)
                            .expect("progress params serialize");
                        if out.send(Message::Notification(progress)).is_err() {
                            return; // the client is gone
                        }
                    }
                }
            }
        }
        let result =
            CallToolResult::success(vec![ContentBlock::text(format!("slept {} ms", self.ms))]);
        let result = JsonText::of(&result).expect("results serialize");
        let _ = out.send(Message::Response(Response::result(self.id, result)));
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

    #[tokio::test(start_paused = true)]
    async fn sleeps_reports_progress_and_answers() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (_keep, cancel) = oneshot::channel();
        task(350, true).run(tx, cancel).await;
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

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_sleep_sends_no_reply() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel) = oneshot::channel();
        let running = tokio::spawn(task(10_000, false).run(tx, cancel));
        tokio::time::sleep(Duration::from_millis(250)).await;
        cancel_tx.send(()).unwrap();
        running.await.unwrap();
        assert!(rx.try_recv().is_err());
    }
}
