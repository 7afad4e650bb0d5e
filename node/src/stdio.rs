//! One MCP session over stdin/stdout, for desktop clients that spawn the server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{self, Reply};
use crate::framing::{FrameError, LineBuffer};
use crate::jsonrpc::{ErrorObject, Message, Response};
use crate::long_task::{Cancels, LongTask};
use crate::session::Session;
use crate::state::Node;

/// What one line asks of the session, owned: replies borrow the framing buffer, and sending
/// one may wait for room in the bounded outbox.
enum Step {
    /// Write this message.
    Send(Message),
    /// Run this long request.
    Start(LongTask),
    /// Cancel the running request with this id (JSON text).
    Cancel(String),
}

/// Serves until stdin closes; every reply (including long requests') goes through one writer.
pub async fn serve(node: Node) -> anyhow::Result<()> {
    let _slot = node.try_open_session("stdio");
    // Bounded: when stdout is not read, replies wait here and reading stdin waits for them.
    let (outbox, mut inbox) = mpsc::channel::<Message>(node.config.outbound_queue.max(1));
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(message) = inbox.recv().await {
            let mut line = message.to_vec();
            line.push(b'\n');
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    let mut stdin = tokio::io::stdin();
    let mut framing = LineBuffer::new(node.config.max_line_bytes, &node.input_budget);
    let mut session = Session::default();
    let mut cancels = Cancels::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = stdin.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        // One read's steps, in line order (at most one per line of the 64 KiB read), so a
        // cancel finds the request an earlier line of the same read started.
        let mut steps = Vec::new();
        let fed = framing.feed(&buffer[..n], |line| {
            match dispatch::dispatch(line, &mut session, &node) {
                Reply::None => {}
                Reply::Response(response) => {
                    steps.push(Step::Send(Message::Response(response.into_owned())));
                }
                Reply::Batch(batch) => {
                    if !batch.responses.is_empty() {
                        let responses = batch.responses.into_iter().map(Response::into_owned);
                        steps.push(Step::Send(Message::Batch(responses.collect())));
                    }
                    steps.extend(batch.cancels.into_iter().map(Step::Cancel));
                }
                Reply::Cancel(id) => steps.push(Step::Cancel(id)),
                Reply::Long(task) => steps.push(Step::Start(task)),
            }
        });
        for step in steps {
            match step {
                Step::Send(message) => {
                    let _ = outbox.send(message).await;
                }
                Step::Cancel(id) => {
                    if let Some(cancel) = cancels.remove(&id) {
                        let _ = cancel.send(());
                    }
                }
                Step::Start(task) => {
                    let (cancel, cancelled) = oneshot::channel();
                    cancels.insert(task.key(), cancel);
                    tokio::spawn(task.run_on(node.clone(), outbox.clone(), cancelled));
                }
            }
        }
        if let Err(error) = fed {
            let message = match error {
                FrameError::LineTooLong => format!(
                    "line longer than {} bytes; closing",
                    node.config.max_line_bytes
                ),
                FrameError::BudgetExhausted => {
                    "too much partially received input; closing".to_string()
                }
            };
            let error = Response::error(None, ErrorObject::invalid_request(message));
            let _ = outbox.send(Message::Response(error)).await;
            break;
        }
    }
    drop(outbox);
    let _ = writer.await;
    Ok(())
}
