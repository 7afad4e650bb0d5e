//! MCP over TCP against an in-process node: every method, every error path, and hostile framing
//! (malformed, oversized, slow-drip, idle).

mod harness;

use harness::{Client, TestNode, call, initialize};
use serde_json::json;

#[tokio::test]
async fn negotiates_the_clients_version_or_offers_the_latest() {
    let node = TestNode::start(|_| {}).await;
    for (asked, answered) in [
        ("2025-06-18", "2025-06-18"),
        ("2025-11-25", "2025-11-25"),
        ("2025-03-26", "2025-03-26"),
        ("1999-01-01", "2025-11-25"),
    ] {
        let mut client = Client::connect(node.tcp).await;
        let reply = client.request(&initialize(1, asked)).await;
        assert_eq!(reply["result"]["protocolVersion"], answered, "{reply}");
        assert_eq!(reply["result"]["serverInfo"]["name"], "erlmcp-node");
        assert!(reply["result"]["capabilities"]["tools"].is_object());
    }
}

#[tokio::test]
async fn every_method_answers() {
    let node = TestNode::start(|_| {}).await;
    let mut c = Client::initialized(node.tcp).await;

    let pong = c
        .request(&json!({"jsonrpc":"2.0","id":"p","method":"ping"}))
        .await;
    assert_eq!(pong, json!({"jsonrpc":"2.0","id":"p","result":{}}));

    let tools = c
        .request(&json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}))
        .await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["inputSchema"]["type"], "object", "{t}");
            t["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        names,
        ["echo", "add", "sleep_ms", "cluster_status", "node_info"]
    );

    let echo = c.request(&call(3, "echo", json!({"text":"héllo"}))).await;
    assert_eq!(echo["result"]["content"][0]["text"], "héllo");
    let add = c.request(&call(4, "add", json!({"a":2,"b":40.5}))).await;
    assert_eq!(add["result"]["content"][0]["text"], "42.5");
    let info = c.request(&call(5, "node_info", json!({}))).await;
    assert_eq!(info["result"]["structuredContent"]["name"], "node1");
    assert_eq!(info["result"]["structuredContent"]["sessions"], 1);
    let status = c.request(&call(6, "cluster_status", json!({}))).await;
    assert_eq!(
        status["result"]["structuredContent"]["members"][0]["state"],
        "alive"
    );

    let resources = c
        .request(&json!({"jsonrpc":"2.0","id":7,"method":"resources/list"}))
        .await;
    assert_eq!(
        resources["result"]["resources"].as_array().unwrap().len(),
        2
    );
    for uri in ["erlmcp://node/info", "erlmcp://cluster/members"] {
        let read = c
            .request(
                &json!({"jsonrpc":"2.0","id":8,"method":"resources/read","params":{"uri":uri}}),
            )
            .await;
        let text = read["result"]["contents"][0]["text"].as_str().unwrap();
        assert!(
            serde_json::from_str::<serde_json::Value>(text).is_ok(),
            "{read}"
        );
    }
    let templates = c
        .request(&json!({"jsonrpc":"2.0","id":9,"method":"resources/templates/list"}))
        .await;
    assert_eq!(templates["result"]["resourceTemplates"], json!([]));

    let prompts = c
        .request(&json!({"jsonrpc":"2.0","id":10,"method":"prompts/list"}))
        .await;
    let prompt = prompts["result"]["prompts"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let got = c
        .request(&json!({"jsonrpc":"2.0","id":11,"method":"prompts/get","params":{"name":prompt,"arguments":{"focus":"latency"}}}))
        .await;
    assert!(
        got["result"]["messages"][0]["content"]["text"]
            .as_str()
            .unwrap()
            .contains("latency")
    );

    let level = c
        .request(&json!({"jsonrpc":"2.0","id":12,"method":"logging/setLevel","params":{"level":"warning"}}))
        .await;
    assert_eq!(level["result"], json!({}));
}

#[tokio::test]
async fn error_paths_answer_and_the_session_lives_on() {
    let node = TestNode::start(|_| {}).await;
    let mut c = Client::connect(node.tcp).await;
    // Before initialize only ping works.
    let early = c
        .request(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
        .await;
    assert_eq!(early["error"]["code"], -32600);
    let pong = c
        .request(&json!({"jsonrpc":"2.0","id":2,"method":"ping"}))
        .await;
    assert_eq!(pong["result"], json!({}));
    c.request(&initialize(3, "2025-11-25")).await;
    c.send(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .await;

    let cases = [
        (json!({"jsonrpc":"2.0","id":4,"method":"no/such"}), -32601),
        (call(5, "no_such_tool", json!({})), -32602),
        (
            json!({"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"erlmcp://nope"}}),
            -32002,
        ),
        (
            json!({"jsonrpc":"2.0","id":10,"method":"prompts/get","params":{"name":"nope"}}),
            -32602,
        ),
        (
            json!({"jsonrpc":"2.0","id":11,"method":"logging/setLevel","params":{"level":"loud"}}),
            -32602,
        ),
        (json!({"jsonrpc":"1.0","id":12,"method":"ping"}), -32600),
    ];
    for (request, code) in cases {
        let reply = c.request(&request).await;
        assert_eq!(reply["error"]["code"], code, "{request} -> {reply}");
        assert_eq!(reply["id"], request["id"]);
    }
    // A known tool with bad arguments is a tool execution error (SEP-1303): a result with
    // `isError` and a text saying what is wrong, which the model can read and correct.
    let bad_arguments = [
        (call(6, "echo", json!({"text": 5})), "expected a string"),
        (call(7, "add", json!({"a": 1})), "missing field `b`"),
        (
            call(8, "sleep_ms", json!({"ms": 60_001})),
            "more than 60000",
        ),
        (call(13, "echo", json!(5)), "expected {\"text\": string}"),
    ];
    for (request, says) in bad_arguments {
        let reply = c.request(&request).await;
        assert_eq!(reply["id"], request["id"]);
        assert_eq!(reply["result"]["isError"], true, "{request} -> {reply}");
        let text = reply["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains(says), "{text}");
    }
    // Malformed JSON and batches: an error with a null id, and the connection stays up.
    c.send_raw(b"{\"jsonrpc\": oops\n").await;
    let parse = c.recv().await.unwrap();
    assert_eq!(parse["error"]["code"], -32700);
    assert!(parse["id"].is_null());
    c.send_raw(b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]\n")
        .await;
    assert_eq!(c.recv().await.unwrap()["error"]["code"], -32600);
    // Notifications (known or not) get no reply: the next line answered is the ping.
    c.send(&json!({"jsonrpc":"2.0","method":"notifications/whatever"}))
        .await;
    let after = c
        .request(&json!({"jsonrpc":"2.0","id":"last","method":"ping"}))
        .await;
    assert_eq!(after["id"], "last");
}

#[tokio::test]
async fn sleep_ms_reports_progress_and_can_be_cancelled() {
    let node = TestNode::start(|_| {}).await;
    let mut c = Client::initialized(node.tcp).await;
    let mut request = call(1, "sleep_ms", json!({"ms": 250}));
    request["params"]["_meta"] = json!({"progressToken": "tok"});
    c.send(&request).await;
    let mut progress = 0;
    let done = loop {
        let message = c.recv().await.unwrap();
        if message["method"] == "notifications/progress" {
            assert_eq!(message["params"]["progressToken"], "tok");
            progress += 1;
        } else {
            break message;
        }
    };
    assert!(progress >= 1, "at least one progress notification");
    assert_eq!(done["id"], 1);
    assert!(done["result"].is_object(), "{done}");

    // A cancelled request gets no reply; the session keeps answering.
    c.send(&call(2, "sleep_ms", json!({"ms": 60_000}))).await;
    c.send(&json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":2}}))
        .await;
    let pong = c
        .request(&json!({"jsonrpc":"2.0","id":3,"method":"ping"}))
        .await;
    assert_eq!(pong["id"], 3);
}

#[tokio::test]
async fn a_cancel_in_the_same_read_as_its_request_cancels_it() {
    // One request in flight per session: if the cancel missed request 5 (still running), the
    // next long request would be refused.
    let node = TestNode::start(|c| c.max_in_flight_per_session = 1).await;
    let mut c = Client::initialized(node.tcp).await;
    let cancel =
        json!({"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":5}});
    let together = format!("{}\n{cancel}\n", call(5, "sleep_ms", json!({"ms": 60_000})));
    c.send_raw(together.as_bytes()).await;
    let next = c.request(&call(7, "sleep_ms", json!({"ms": 10}))).await;
    assert_eq!(next["id"], 7);
    assert!(
        next["result"].is_object(),
        "request 5 was not cancelled: {next}"
    );
}

#[tokio::test]
async fn an_oversized_line_gets_an_error_and_a_close() {
    let node = TestNode::start(|c| c.max_line_bytes = 1024).await;
    let mut c = Client::initialized(node.tcp).await;
    // No newline ever comes: the server must not buffer it all.
    c.send_raw(&vec![b'x'; 4096]).await;
    let error = c.recv().await.expect("an error before the close");
    assert_eq!(error["error"]["code"], -32600);
    assert!(error["error"]["message"].as_str().unwrap().contains("1024"));
    assert!(c.closed().await);
}

#[tokio::test]
async fn slow_drip_input_is_reassembled() {
    let node = TestNode::start(|_| {}).await;
    let mut c = Client::initialized(node.tcp).await;
    let line = format!("{}\n", call(9, "echo", json!({"text":"drip"})));
    for byte in line.as_bytes() {
        c.send_raw(&[*byte]).await;
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    assert_eq!(
        c.recv().await.unwrap()["result"]["content"][0]["text"],
        "drip"
    );
}

#[tokio::test]
async fn a_silent_client_is_closed_after_the_idle_timeout() {
    let node = TestNode::start(|c| c.idle_timeout = std::time::Duration::from_millis(200)).await;
    let mut c = Client::initialized(node.tcp).await;
    assert!(c.closed().await, "closed within the test's wait");
    // The slot is given back.
    for _ in 0..100 {
        if node.node.sessions_open() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(node.node.sessions_open(), 0);
}

#[tokio::test]
async fn stateless_requests_work_without_a_handshake() {
    let node = TestNode::start(|_| {}).await;
    let mut c = Client::connect(node.tcp).await;
    let discover = c
        .request(&json!({"jsonrpc":"2.0","id":1,"method":"server/discover"}))
        .await;
    let versions = discover["result"]["supportedVersions"].to_string();
    assert!(versions.contains("2026-07-28"), "{discover}");
    let mut echo = call(2, "echo", json!({"text":"no session"}));
    echo["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28"});
    assert_eq!(
        c.request(&echo).await["result"]["content"][0]["text"],
        "no session"
    );
}

#[tokio::test]
async fn metrics_count_sessions_and_requests() {
    let node = TestNode::start(|_| {}).await;
    let mut c = Client::initialized(node.tcp).await;
    c.request(&call(2, "echo", json!({"text":"x"}))).await;
    let metrics = node.metrics().await;
    for expected in [
        "erlmcp_connections_active{transport=\"tcp\"} 1",
        "erlmcp_connections_total{transport=\"tcp\"} 1",
        "erlmcp_requests_total{method=\"tools/call\",outcome=\"ok\"} 1",
        "erlmcp_request_duration_seconds_bucket",
        "erlmcp_latency_p99_ms",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
    ] {
        assert!(
            metrics.contains(expected),
            "missing {expected} in\n{metrics}"
        );
    }
}
