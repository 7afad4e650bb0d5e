//! One MCP session over stdin/stdout, for desktop clients that spawn the server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{self, Reply, code};
use crate::framing::{FrameError, LineBuffer};
use crate::long_task::Cancels;
use crate::session::Session;
use crate::state::Node;

/// Serves until stdin closes; every reply (including long requests') goes through one writer.
pub async fn serve(node: Node) -> anyhow::Result<()> {
    let _slot = node.try_open_session("stdio");
    // Bounded: when stdout is not read, replies wait here and reading stdin waits for them.
    let (outbox, mut inbox) = mpsc::channel::<Vec<u8>>(node.config.outbound_queue.max(1));
    let writer = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(mut message) = inbox.recv().await {
            message.push(b'\n');
            if stdout.write_all(&message).await.is_err() || stdout.flush().await.is_err() {
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
        let mut replies = Vec::new();
        let fed = framing.feed(&buffer[..n], |line| {
            replies.push(dispatch::dispatch(line, &mut session, &node));
        });
        for reply in replies {
            match reply {
                Reply::None => {}
                Reply::Message(message) => {
                    let _ = outbox.send(message).await;
                }
                Reply::Cancel(id) => {
                    if let Some(cancel) = cancels.remove(&id) {
                        let _ = cancel.send(());
                    }
                }
                Reply::Long(task) => {
                    let (cancel, cancelled) = oneshot::channel();
                    cancels.insert(task.key(), cancel);
                    tokio::spawn(task.run_on(node.clone(), outbox.clone(), cancelled));
                }
            }
        }
        if let Err(error) = fed {
            let message = match error {
                FrameError::LineTooLong => {
                    format!(
                        "line longer than {} bytes; closing",
                        node.config.max_line_bytes
                    )
                }
                FrameError::BudgetExhausted => {
                    "too much partially received input; closing".to_string()
                }
            };
            let _ = outbox
                .send(dispatch::error_response(
                    None,
                    code::INVALID_REQUEST,
                    &message,
                ))
                .await;
            break;
        }
    }
    drop(outbox);
    let _ = writer.await;
    Ok(())
}
