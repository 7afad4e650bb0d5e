//! One MCP session over stdin/stdout, for desktop clients that spawn the server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{self, Reply};
use crate::framing::LineBuffer;
use crate::jsonrpc::{ErrorObject, Message, Response};
use crate::long_task::Cancels;
use crate::session::Session;
use crate::state::Node;

/// Serves until stdin closes; every reply (including long requests') goes through one writer.
pub async fn serve(node: Node) -> anyhow::Result<()> {
    let _slot = node.try_open_session("stdio");
    let (outbox, mut inbox) = mpsc::unbounded_channel::<Message>();
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
    let mut framing = LineBuffer::default();
    let mut session = Session::default();
    let mut cancels = Cancels::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = stdin.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        // Each reply is acted on as its line is dispatched, in order: replies borrow the
        // framing buffer, and a cancel must find the request an earlier line started.
        let fed =
            framing.feed(
                &buffer[..n],
                node.config.max_line_bytes,
                |line| match dispatch::dispatch(line, &mut session, &node) {
                    Reply::None => {}
                    Reply::Response(response) => {
                        let _ = outbox.send(Message::Response(response.into_owned()));
                    }
                    Reply::Batch(batch) => {
                        if !batch.responses.is_empty() {
                            let responses = batch.responses.into_iter().map(Response::into_owned);
                            let _ = outbox.send(Message::Batch(responses.collect()));
                        }
                        batch.cancels.iter().for_each(|id| cancel(&mut cancels, id));
                    }
                    Reply::Cancel(id) => cancel(&mut cancels, &id),
                    Reply::Long(task) => {
                        let (cancel, cancelled) = oneshot::channel();
                        cancels.insert(task.key(), cancel);
                        tokio::spawn(task.run(outbox.clone(), cancelled));
                    }
                },
            );
        if fed.is_err() {
            let message = format!(
                "line longer than {} bytes; closing",
                node.config.max_line_bytes
            );
            let error = Response::error(None, ErrorObject::invalid_request(message));
            let _ = outbox.send(Message::Response(error));
            break;
        }
    }
    drop(outbox);
    let _ = writer.await;
    Ok(())
}

fn cancel(cancels: &mut Cancels, id: &str) {
    if let Some(cancel) = cancels.remove(id) {
        let _ = cancel.send(());
    }
}
