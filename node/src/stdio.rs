//! One MCP session over stdin/stdout, for desktop clients that spawn the server. Like a TCP
//! session it runs at most `max_in_flight` long requests at once, and its table of their cancel
//! handles holds only running ones.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::dispatch::{self, Reply};
use crate::framing::{FrameError, LineBuffer};
use crate::jsonrpc::{ErrorObject, Message, Response};
use crate::long_task::{self, Cancels, LongTask};
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
    serve_on(node, tokio::io::stdin(), tokio::io::stdout()).await?;
    Ok(())
}

/// Serves one session reading `input` and writing `output` until `input` ends (what [`serve`]
/// does with stdin and stdout; tests pass in-memory pipes).
pub async fn serve_on<R, W>(node: Node, mut input: R, mut output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let _slot = node.try_open_session("stdio");
    // Bounded: when stdout is not read, replies wait here and reading stdin waits for them.
    let (outbox, mut inbox) = mpsc::channel::<Message>(node.config.outbound_queue.max(1));
    let writer = tokio::spawn(async move {
        while let Some(message) = inbox.recv().await {
            let mut line = message.to_vec();
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });
    let mut framing = LineBuffer::new(node.config.max_line_bytes, &node.input_budget);
    let mut session = Session::default();
    let mut cancels = Cancels::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buffer).await?;
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
                    // Finished requests dropped their end: only running ones count and stay.
                    cancels.retain(|_, cancel| !cancel.is_closed());
                    if cancels.len() >= node.config.max_in_flight_per_session {
                        node.metrics.in_flight_refused.inc();
                        let refusal =
                            long_task::refusal(task.id, node.config.max_in_flight_per_session);
                        let _ = outbox.send(Message::Response(refusal)).await;
                        continue;
                    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};
    use tokio::io::{AsyncBufReadExt, BufReader, DuplexStream, Lines};

    use super::*;
    use crate::config::NodeConfig;
    use crate::state::NodeState;

    /// The client's ends of a stdio session served with `max_in_flight`.
    struct Client {
        stdin: DuplexStream,
        stdout: Lines<BufReader<DuplexStream>>,
    }

    impl Client {
        async fn start(max_in_flight: usize) -> (Client, Node) {
            let mut config = NodeConfig::for_tests();
            config.max_in_flight_per_session = max_in_flight;
            let node = NodeState::new(config);
            let (stdin, server_in) = tokio::io::duplex(64 * 1024);
            let (server_out, stdout) = tokio::io::duplex(64 * 1024);
            tokio::spawn(serve_on(node.clone(), server_in, server_out));
            let mut client = Client {
                stdin,
                stdout: BufReader::new(stdout).lines(),
            };
            let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}});
            client.send(&[init]).await;
            assert_eq!(client.reply().await["id"], 0);
            client
                .send(&[json!({"jsonrpc":"2.0","method":"notifications/initialized"})])
                .await;
            (client, node)
        }

        async fn send(&mut self, messages: &[Value]) {
            let mut bytes = Vec::new();
            for message in messages {
                bytes.extend_from_slice(message.to_string().as_bytes());
                bytes.push(b'\n');
            }
            self.stdin.write_all(&bytes).await.unwrap();
        }

        async fn reply(&mut self) -> Value {
            let line = tokio::time::timeout(Duration::from_secs(120), self.stdout.next_line())
                .await
                .expect("a reply within the test's wait")
                .unwrap()
                .expect("stdout open");
            serde_json::from_str(&line).unwrap()
        }
    }

    fn sleep(id: u64, ms: u64) -> Value {
        json!({"jsonrpc":"2.0","id":id,"method":"tools/call",
            "params":{"name":"sleep_ms","arguments":{"ms":ms}}})
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_request_past_the_in_flight_cap_is_refused() {
        let (mut client, node) = Client::start(2).await;
        client
            .send(&[sleep(1, 60_000), sleep(2, 60_000), sleep(3, 60_000)])
            .await;
        let refusal = client.reply().await;
        assert_eq!(refusal["id"], 3, "{refusal}");
        assert_eq!(refusal["error"]["code"], -32000, "{refusal}");
        assert_eq!(node.metrics.in_flight_refused.get(), 1);
        // The two admitted ones still answer.
        let mut answered = [
            client.reply().await["id"].clone(),
            client.reply().await["id"].clone(),
        ];
        answered.sort_by_key(|id| id.as_u64());
        assert_eq!(answered, [json!(1), json!(2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn finished_requests_leave_the_table() {
        let (mut client, node) = Client::start(2).await;
        // Ten times the cap, one after another: each finishes before the next starts, so none
        // is refused unless finished ones stayed counted.
        for id in 1..=20 {
            client.send(&[sleep(id, 10)]).await;
            let reply = client.reply().await;
            assert_eq!(reply["id"], id, "{reply}");
            assert!(reply.get("result").is_some(), "{reply}");
        }
        assert_eq!(node.metrics.in_flight_refused.get(), 0);
    }
}
