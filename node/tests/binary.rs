//! The `erlmcp-node` binary itself: `stdio`, `healthcheck`, and `serve` draining on SIGTERM.

mod harness;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use harness::{Client, call, initialize};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_erlmcp-node");

/// `erlmcp-node stdio` with `flags`, its stdin and stdout piped, logging errors only.
fn stdio(flags: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .arg("stdio")
        .args(flags)
        .env("ERLMCP_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn erlmcp-node stdio")
}

#[test]
fn stdio_serves_one_session_and_exits_when_stdin_closes() {
    let mut child = stdio(&[]);
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        initialize(1, "2025-11-25").to_string(),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string(),
        "{broken".to_string(),
        json!({"jsonrpc":"2.0","id":2,"method":"no/such"}).to_string(),
        call(3, "echo", json!({"text":"from stdio"})).to_string(),
        call(4, "sleep_ms", json!({"ms": 20})).to_string(),
    ];
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut replies: Vec<Value> = Vec::new();
    while replies.len() < 5 {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "stdout closed early: {replies:?}"
        );
        replies.push(serde_json::from_str(&line).expect("stdout carries only JSON-RPC"));
    }
    assert_eq!(replies[0]["result"]["protocolVersion"], "2025-11-25");
    assert_eq!(replies[1]["error"]["code"], -32700);
    assert_eq!(replies[2]["error"]["code"], -32601);
    assert_eq!(replies[3]["result"]["content"][0]["text"], "from stdio");
    assert_eq!(replies[4]["id"], 4);
    drop(stdin);
    assert!(wait(&mut child).success());
}

#[test]
fn stdio_answers_a_2025_03_26_batch_with_one_array_line() {
    let mut child = stdio(&["--max-batch", "3"]);
    let mut stdin = child.stdin.take().unwrap();
    let ping = |id: u64| json!({"jsonrpc":"2.0","id":id,"method":"ping"});
    let lines = [
        initialize(1, "2025-03-26"),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        json!([ping(2), {"jsonrpc":"2.0","method":"notifications/x"}, ping(3)]),
        json!([ping(4), ping(5), ping(6), ping(7)]),
    ];
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    let replies: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).expect("stdout carries only JSON-RPC"))
        .collect();
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert_eq!(
        replies[1],
        json!([
            {"jsonrpc":"2.0","id":2,"result":{}},
            {"jsonrpc":"2.0","id":3,"result":{}},
        ])
    );
    assert_eq!(replies[2]["error"]["code"], -32600, "past --max-batch");
    assert!(wait(&mut child).success());
}

#[test]
fn stdio_cancels_a_request_whose_cancel_arrives_in_the_same_read() {
    let mut child = stdio(&[]);
    let mut stdin = child.stdin.take().unwrap();
    let lines = [
        initialize(1, "2025-11-25"),
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        call(5, "sleep_ms", json!({"ms": 60_000})),
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}}),
        json!({"jsonrpc":"2.0","id":6,"method":"ping"}),
    ];
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    stdin.write_all(text.as_bytes()).unwrap();
    drop(stdin);
    // Cancelled, the sleep holds nothing open: the process exits well before its 60 s.
    assert!(wait(&mut child).success());
    let replies: Vec<Value> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
        .collect();
    let ids: Vec<_> = replies.iter().map(|r| r["id"].clone()).collect();
    assert_eq!(
        ids,
        [json!(1), json!(6)],
        "a cancelled request gets no reply"
    );
}

#[test]
fn stdio_answers_an_oversized_line_with_an_error_and_exits() {
    let mut child = stdio(&["--max-line-bytes", "64"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&[b'x'; 200]).unwrap(); // no newline: it must not wait for one
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let error: Value = serde_json::from_str(&line).expect("a JSON-RPC error");
    assert_eq!(error["error"]["code"], -32600);
    assert!(wait(&mut child).success());
}

#[tokio::test]
async fn healthcheck_exits_0_for_a_live_node_and_1_otherwise() {
    let node = harness::TestNode::start(|_| {}).await;
    let port = node.api.port().to_string();
    let live = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("healthcheck")
            .env("ERLMCP_API_PORT", port)
            .status()
            .unwrap()
    });
    assert!(live.await.unwrap().success());
    // A port nobody listens on: bind one, learn it, free it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .arg("healthcheck")
            .env("ERLMCP_API_PORT", free.to_string())
            .status()
            .unwrap()
    });
    assert_eq!(dead.await.unwrap().code(), Some(1));
}

#[tokio::test]
async fn serve_drains_on_sigterm_and_exits_0() {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--bind",
            "127.0.0.1",
            "--api-port",
            "0",
            "--listener-port",
            "0",
        ])
        .args(["--node-name", "sigterm-test", "--drain-timeout", "5s"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn erlmcp-node serve");
    // The JSON "serving" log line names the ports that port 0 resolved to.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let serving = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "exited before serving"
        );
        let log: Value = serde_json::from_str(&line).expect("logs are JSON lines");
        if log["fields"]["message"] == "serving" {
            break log;
        }
    };
    assert_eq!(serving["fields"]["node"], "sigterm-test");
    let port: u16 = serving["fields"]["listener"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut client = Client::initialized(([127, 0, 0, 1], port).into()).await;
    client.send(&call(1, "sleep_ms", json!({"ms": 300}))).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let done = client
        .recv()
        .await
        .expect("the in-flight request finishes during the drain");
    assert_eq!(done["id"], 1);
    let status = tokio::task::spawn_blocking(move || wait(&mut child))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    let _ = stderr.lines().count();
}

/// Starts `serve` on ephemeral loopback ports (through `sh -c "ulimit -n N; exec …"` when
/// `nofile` is given) and returns the child, its stderr and its "serving" log line.
fn serve(
    extra: &[&str],
    nofile: Option<u32>,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStderr>,
    Value,
) {
    let mut args = vec![
        "serve",
        "--bind",
        "127.0.0.1",
        "--api-port",
        "0",
        "--listener-port",
        "0",
    ];
    args.extend_from_slice(extra);
    let mut command = match nofile {
        Some(limit) => {
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(BIN)
                .args(&args);
            sh
        }
        None => {
            let mut bin = Command::new(BIN);
            bin.args(&args);
            bin
        }
    };
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn erlmcp-node serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut logs = Vec::new();
    let serving = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "exited before serving: {logs:?}"
        );
        let log: Value = serde_json::from_str(&line).expect("logs are JSON lines");
        if log["fields"]["message"] == "serving" {
            break log;
        }
        logs.push(log);
    };
    let mut serving = serving;
    serving["earlier"] = Value::Array(logs);
    (child, stderr, serving)
}

fn port(serving: &Value, which: &str) -> u16 {
    serving["fields"][which].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn sigterm_past_the_drain_timeout_answers_in_flight_requests_before_exiting() {
    let (mut child, stderr, serving) = serve(&["--drain-timeout", "300ms"], None);
    let mut client = Client::initialized(([127, 0, 0, 1], port(&serving, "listener")).into()).await;
    for id in 1..=3 {
        client
            .send(&call(id, "sleep_ms", json!({"ms": 30_000})))
            .await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut ids = Vec::new();
    for _ in 1..=3 {
        let reply = client.recv().await.expect("an answer before the exit");
        assert_eq!(reply["error"]["code"], -32000, "{reply}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("shutting down")
        );
        ids.push(reply["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3]);
    let status = tokio::task::spawn_blocking(move || wait(&mut child))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    drop(stderr);
}

#[tokio::test]
async fn max_connections_is_clamped_to_the_open_file_limit() {
    let (mut child, stderr, serving) = serve(&["--max-connections", "25000"], Some(1000));
    // 1000 descriptors less 16 probe slots and 64 reserved, shared by TCP sessions and HTTP
    // connections; Streamable HTTP sessions hold no descriptor and keep the whole cap.
    assert_eq!(
        serving["fields"]["connection_descriptors"], 920,
        "{serving}"
    );
    assert_eq!(serving["fields"]["max_connections"], 25000, "{serving}");
    let warned = serving["earlier"]
        .as_array()
        .unwrap()
        .iter()
        .any(|log| log["fields"]["clamped_to"] == 920);
    assert!(warned, "{serving}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || wait(&mut child)).await;
    drop(stderr);
}

#[tokio::test]
async fn every_session_may_keep_its_own_http_connection_by_default() {
    // Each Streamable HTTP client keeps one keep-alive connection; with a fixed default of 256
    // connection slots a node sized for thousands of sessions turned the 257th client away.
    const CLIENTS: usize = 300;
    let (mut child, stderr, serving) = serve(&["--max-connections", "400"], Some(2000));
    let api = port(&serving, "api");
    let body = initialize(1, "2025-11-25").to_string();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{api}\r\nAccept: application/json, text/event-stream\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut held = Vec::with_capacity(CLIENTS);
    for client in 0..CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", api))
            .await
            .unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(harness::WAIT, stream.read_exact(&mut head))
            .await
            .unwrap_or_else(|_| panic!("client {client}: no answer"))
            .unwrap_or_else(|e| panic!("client {client}: closed without an answer: {e}"));
        let status = String::from_utf8_lossy(&head);
        assert_eq!(&status[9..12], "200", "client {client}: {status}");
        held.push(stream); // keep-alive: the connection stays open and holds its slot
    }
    drop(held);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = tokio::task::spawn_blocking(move || wait(&mut child)).await;
    drop(stderr);
}

/// Waits for the child, killing it if it outlives the tests' bound.
fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + harness::WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the child did not exit within {:?}", harness::WAIT);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn limits_prints_the_open_file_limit_it_runs_under_as_one_json_line() {
    let output = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 1234 && exec \"$0\" limits")
        .arg(BIN)
        .output()
        .expect("run erlmcp-node limits");
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    let limits: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(limits["nofile"][0], 1234, "{limits}");
    assert!(limits["ephemeral_ports"][1].as_u64() > limits["ephemeral_ports"][0].as_u64());
    assert!(limits["file_max"].as_u64().unwrap() > 0, "{limits}");
    assert_eq!(limits["arch"], std::env::consts::ARCH);
}
