//! Membership, failure detection, placement and the coordinator's `/mcp` proxy, with in-process
//! nodes on 127.0.0.1 heartbeating every 100 ms (dead after 600 ms). Assertions wait for a state
//! with a bounded `eventually`; none asserts how long anything took.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use erlmcp_node::cluster_secret::{
    ClusterSecret, DEFAULT_REPLAY_WINDOW, MAC_HEADER, MembershipAuth, SENT_HEADER, unix_ms_now,
};
use erlmcp_node::config::Role;
use serde_json::Value;
use support::{Client, TestNode, eventually, http};

const ACCEPT: (&str, &str) = ("Accept", "application/json, text/event-stream");
const JSON: (&str, &str) = ("Content-Type", "application/json");
const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}"#;

/// A node named `name` that joins through `seeds`, with test-sized heartbeat timing.
fn member(name: &str, role: Role, seeds: &[SocketAddr]) -> TestNode {
    let name = name.to_string();
    let seeds = seeds.iter().map(SocketAddr::to_string).collect();
    TestNode::start(move |config| {
        config.node_name = name;
        config.role = role;
        config.seeds = seeds;
        config.heartbeat_interval = Duration::from_millis(100);
        config.dead_after = Duration::from_millis(600);
    })
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let (status, _, body) = http(addr, "GET", path, &[], "");
    let json = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    (status, json)
}

/// `(name, state)` of every member in `GET /cluster`, by name.
fn states(node: &TestNode) -> Vec<(String, String)> {
    let (status, cluster) = get_json(node.api, "/cluster");
    assert_eq!(status, 200);
    assert_eq!(cluster["node"], node.node.config.node_name.as_str());
    cluster["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let field = |f: &str| m[f].as_str().unwrap().to_string();
            (field("name"), field("state"))
        })
        .collect()
}

fn expect(members: &[(&str, &str)]) -> Vec<(String, String)> {
    members
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_string()))
        .collect()
}

/// The member `GET /cluster/placement` names, or None when it answers 503.
fn placed(node: &TestNode) -> Option<String> {
    let (status, body) = get_json(node.api, "/cluster/placement");
    match status {
        200 => Some(body["name"].as_str().unwrap().to_string()),
        503 => {
            assert!(body["error"].is_string(), "{body}");
            None
        }
        other => panic!("placement answered {other}: {body}"),
    }
}

/// An open, initialized MCP-over-TCP session (it counts as load until dropped).
fn tcp_session(node: &TestNode) -> Client {
    let mut client = Client::connect(node.tcp);
    client.initialize();
    client
}

fn session_id(headers: &str) -> String {
    headers
        .lines()
        .find_map(|l| l.strip_prefix("mcp-session-id: "))
        .expect("an Mcp-Session-Id header")
        .trim()
        .to_string()
}

#[test]
fn members_find_each_other_through_the_seed_and_a_stopped_one_turns_dead_then_returns() {
    let coordinator = member("coordinator", Role::Coordinator, &[]);
    let w1 = member("w1", Role::Worker, &[coordinator.api]);
    let mut w2 = member("w2", Role::Worker, &[coordinator.api]);
    let all_alive = expect(&[("coordinator", "alive"), ("w1", "alive"), ("w2", "alive")]);
    for node in [&coordinator, &w1, &w2] {
        assert!(
            eventually(|| states(node) == all_alive),
            "{:?}",
            states(node)
        );
    }

    // Load the coordinator and w1, so that placement prefers the idle w2 while it lives.
    let _on_coordinator = tcp_session(&coordinator);
    let mut on_w1 = tcp_session(&w1);
    assert!(eventually(|| placed(&coordinator).as_deref() == Some("w2")));

    w2.shutdown();
    let w2_dead = expect(&[("coordinator", "alive"), ("w1", "alive"), ("w2", "dead")]);
    for node in [&coordinator, &w1] {
        assert!(eventually(|| states(node) == w2_dead), "{:?}", states(node));
        let choice = placed(node);
        assert!(
            choice.is_some() && choice.as_deref() != Some("w2"),
            "{choice:?}"
        );
    }
    // The session on w1 never noticed.
    let echo = on_w1.request(
        5,
        "tools/call",
        serde_json::json!({"name": "echo", "arguments": {"text": "still here"}}),
    );
    assert_eq!(echo["result"]["content"][0]["text"], "still here");

    // A new w2 (new ports, higher incarnation) is alive again everywhere.
    let w2 = member("w2", Role::Worker, &[coordinator.api]);
    for node in [&coordinator, &w1, &w2] {
        assert!(
            eventually(|| states(node) == all_alive),
            "{:?}",
            states(node)
        );
    }
    let (_, cluster) = get_json(w1.api, "/cluster");
    let listed = cluster["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "w2")
        .unwrap()
        .clone();
    assert_eq!(listed["api"], w2.api.to_string());
    assert_eq!(listed["listener"], w2.tcp.to_string());
    assert_eq!(listed["role"], "worker");
    assert_eq!(listed["capacity"], 100);
    assert!(listed["last_heard_ms_ago"].is_u64());
}

#[test]
fn twenty_members_list_each_other_through_a_bounded_fanout_and_all_see_a_stopped_one_dead() {
    // Twenty debug-build nodes share the test machine: a slower beat than `member`'s keeps a
    // busy machine's late replies from reading as deaths.
    let start = |name: String, role, seeds: Vec<String>| {
        TestNode::start(move |config| {
            config.node_name = name;
            config.role = role;
            config.seeds = seeds;
            config.heartbeat_interval = Duration::from_millis(300);
            config.dead_after = Duration::from_millis(2000);
        })
    };
    let seed = start("m00".into(), Role::Coordinator, vec![]);
    let mut workers: Vec<TestNode> = (1..20)
        .map(|i| start(format!("m{i:02}"), Role::Worker, vec![seed.api.to_string()]))
        .collect();
    let alive = |node: &TestNode| states(node).iter().filter(|(_, s)| s == "alive").count();
    for node in std::iter::once(&seed).chain(&workers) {
        assert!(eventually(|| alive(node) == 20), "{:?}", states(node));
    }
    let mut gone = workers.pop().unwrap();
    let gone_dead = ("m19".to_string(), "dead".to_string());
    gone.shutdown();
    for node in std::iter::once(&seed).chain(&workers) {
        assert!(
            eventually(|| states(node).contains(&gone_dead) && alive(node) == 19),
            "{:?}",
            states(node)
        );
    }
}

#[test]
fn workers_keep_each_other_and_placement_when_the_coordinator_is_gone() {
    let mut coordinator = member("coordinator", Role::Coordinator, &[]);
    let w1 = member("w1", Role::Worker, &[coordinator.api]);
    let w2 = member("w2", Role::Worker, &[coordinator.api]);
    let all_alive = expect(&[("coordinator", "alive"), ("w1", "alive"), ("w2", "alive")]);
    for node in [&w1, &w2] {
        assert!(
            eventually(|| states(node) == all_alive),
            "{:?}",
            states(node)
        );
    }

    coordinator.shutdown();
    let coordinator_dead = expect(&[("coordinator", "dead"), ("w1", "alive"), ("w2", "alive")]);
    for node in [&w1, &w2] {
        assert!(
            eventually(|| states(node) == coordinator_dead),
            "{:?}",
            states(node)
        );
        assert_eq!(placed(node).as_deref(), Some("w1"));
    }
}

#[test]
fn placement_follows_load_and_answers_503_when_nobody_has_room() {
    let small = |name: &str, role, seeds: &[SocketAddr]| {
        let name = name.to_string();
        let seeds: Vec<String> = seeds.iter().map(SocketAddr::to_string).collect();
        TestNode::start(move |config| {
            config.node_name = name;
            config.role = role;
            config.seeds = seeds;
            config.max_connections = 2;
            config.heartbeat_interval = Duration::from_millis(100);
            config.dead_after = Duration::from_millis(600);
        })
    };
    let a = small("a", Role::Coordinator, &[]);
    let b = small("b", Role::Worker, &[a.api]);
    let both_alive = expect(&[("a", "alive"), ("b", "alive")]);
    for node in [&a, &b] {
        assert!(
            eventually(|| states(node) == both_alive),
            "{:?}",
            states(node)
        );
    }
    // Equal loads: the first name.
    assert_eq!(placed(&a).as_deref(), Some("a"));

    let _a1 = tcp_session(&a);
    for node in [&a, &b] {
        assert!(eventually(|| placed(node).as_deref() == Some("b")));
    }
    let _b1 = tcp_session(&b);
    let _b2 = tcp_session(&b); // b is full: a (1 of 2) is the only one with room
    for node in [&a, &b] {
        assert!(eventually(|| placed(node).as_deref() == Some("a")));
    }
    let _a2 = tcp_session(&a);
    for node in [&a, &b] {
        assert!(eventually(|| placed(node).is_none()));
    }

    let (_, _, scraped) = http(a.api, "GET", "/metrics", &[], "");
    for line in [
        "erlmcp_cluster_members{state=\"alive\"} 2",
        "erlmcp_cluster_members{state=\"dead\"} 0",
        "erlmcp_cluster_member_load{node=\"a\"} 2",
        "erlmcp_cluster_member_load{node=\"b\"} 2",
    ] {
        assert!(scraped.contains(line), "missing {line} in\n{scraped}");
    }
}

#[test]
fn cluster_status_and_the_members_resource_list_every_member() {
    let coordinator = member("coordinator", Role::Coordinator, &[]);
    let w1 = member("w1", Role::Worker, &[coordinator.api]);
    let both = expect(&[("coordinator", "alive"), ("w1", "alive")]);
    assert!(eventually(|| states(&w1) == both));
    let mut client = tcp_session(&w1);
    let status = client.request(
        2,
        "tools/call",
        serde_json::json!({"name": "cluster_status", "arguments": {}}),
    );
    let members = &status["result"]["structuredContent"]["members"];
    assert_eq!(members[0]["name"], "coordinator");
    assert_eq!(members[0]["role"], "coordinator");
    assert_eq!(members[1]["name"], "w1");
    assert_eq!(members[1]["load"], 1);
    let read = client.request(
        3,
        "resources/read",
        serde_json::json!({"uri": "erlmcp://cluster/members"}),
    );
    let text = read["result"]["contents"][0]["text"].as_str().unwrap();
    let listed: Value = serde_json::from_str(text).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
}

#[test]
fn the_coordinator_proxies_a_new_http_session_to_the_least_loaded_node() {
    let coordinator = member("coordinator", Role::Coordinator, &[]);
    let w1 = member("w1", Role::Worker, &[coordinator.api]);
    let _busy = tcp_session(&coordinator);
    assert!(eventually(|| placed(&coordinator).as_deref() == Some("w1")));

    let (status, headers, body) = http(coordinator.api, "POST", "/mcp", &[ACCEPT, JSON], INIT);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"serverInfo\""), "{body}");
    let id = session_id(&headers);
    assert!(id.starts_with("w1~"), "{id}");
    assert_eq!(w1.node.sessions_open(), 1);
    assert_eq!(coordinator.node.sessions_open(), 1); // only the TCP session

    let with_session = [
        ACCEPT,
        JSON,
        ("Mcp-Session-Id", id.as_str()),
        ("MCP-Protocol-Version", "2025-06-18"),
    ];
    let (status, _, _) = http(
        coordinator.api,
        "POST",
        "/mcp",
        &with_session,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert_eq!(status, 202);
    let info = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"node_info","arguments":{}}}"#;
    let (status, _, body) = http(coordinator.api, "POST", "/mcp", &with_session, info);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""name":"w1""#), "{body}");

    // A long call streams its progress through the proxy as SSE.
    let sleep = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"sleep_ms","arguments":{"ms":300},"_meta":{"progressToken":"p"}}}"#;
    let (status, headers, body) = http(coordinator.api, "POST", "/mcp", &with_session, sleep);
    assert_eq!(status, 200, "{body}");
    assert!(
        headers.contains("content-type: text/event-stream"),
        "{headers}"
    );
    assert!(body.contains("notifications/progress"), "{body}");
    assert!(body.contains(r#""id":3"#), "{body}");

    // The GET stream opens through the proxy too (its headers are enough: it is long-lived).
    let mut stream = std::net::TcpStream::connect(coordinator.api).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let request = format!(
        "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\n\r\n",
        coordinator.api.port()
    );
    std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
    let mut head = [0u8; 256];
    let read = std::io::Read::read(&mut stream, &mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..read]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("text/event-stream"), "{head}");
    drop(stream);

    let (status, _, _) = http(
        coordinator.api,
        "DELETE",
        "/mcp",
        &[("Mcp-Session-Id", id.as_str())],
        "",
    );
    assert_eq!(status, 200);
    assert!(eventually(|| w1.node.sessions_open() == 0));
    let (status, _, _) = http(coordinator.api, "POST", "/mcp", &with_session, info);
    assert_eq!(status, 404);

    // An id owned by a node nobody heard of: 404, so the client starts over.
    let (status, _, body) = http(
        coordinator.api,
        "POST",
        "/mcp",
        &[ACCEPT, JSON, ("Mcp-Session-Id", "ghost~abc")],
        info,
    );
    assert_eq!(status, 404, "{body}");
}

#[test]
fn heartbeats_from_a_browser_origin_are_refused() {
    let node = member("coordinator", Role::Coordinator, &[]);
    let record = r#"{"name":"evil","role":"worker","api":"evil.example:80","listener":"evil.example:81","capacity":1000,"load":0,"incarnation":1}"#;
    let (status, _, _) = http(
        node.api,
        "POST",
        "/cluster/heartbeat",
        &[JSON, ("Origin", "http://evil.example")],
        record,
    );
    assert_eq!(status, 403);
    assert_eq!(states(&node), expect(&[("coordinator", "alive")]));
}

#[test]
fn dead_after_must_exceed_the_heartbeat_interval() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_erlmcp-node"))
        .args(["--heartbeat-interval", "2s", "--dead-after", "1s"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--dead-after (1s) must exceed --heartbeat-interval (2s)"),
        "{stderr}"
    );
}

#[test]
fn a_burst_of_new_sessions_through_the_coordinator_spreads_over_the_workers() {
    let coordinator = member("coordinator", Role::Coordinator, &[]);
    let w1 = member("w1", Role::Worker, &[coordinator.api]);
    let w2 = member("w2", Role::Worker, &[coordinator.api]);
    let _busy = [tcp_session(&coordinator), tcp_session(&coordinator)];
    let all_alive = expect(&[("coordinator", "alive"), ("w1", "alive"), ("w2", "alive")]);
    assert!(eventually(|| states(&coordinator) == all_alive));
    let owners: Vec<String> = (0..4)
        .map(|_| {
            let (status, headers, body) =
                http(coordinator.api, "POST", "/mcp", &[ACCEPT, JSON], INIT);
            assert_eq!(status, 200, "{body}");
            session_id(&headers).split('~').next().unwrap().to_string()
        })
        .collect();
    // Faster than heartbeats report loads: the coordinator counts what it placed itself.
    assert!(owners.iter().any(|o| o == "w1"), "{owners:?}");
    assert!(owners.iter().any(|o| o == "w2"), "{owners:?}");
    assert_eq!(w1.node.sessions_open() + w2.node.sessions_open(), 4);
}

/// A member record for `name` at `api`, as the JSON a heartbeat carries.
fn record_json(name: &str, api: &str) -> String {
    serde_json::json!({
        "name": name, "role": "worker", "api": api, "listener": "127.0.0.1:9",
        "capacity": 1000, "load": 0, "incarnation": 1
    })
    .to_string()
}

/// POSTs `body` as a heartbeat signed with `secret` at `sent_ms`; returns the status.
fn signed_heartbeat(node: &TestNode, secret: &ClusterSecret, sent_ms: u64, body: &str) -> u16 {
    let mac = secret.sign_request(sent_ms, body.as_bytes());
    let sent = sent_ms.to_string();
    let headers = [
        JSON,
        (SENT_HEADER, sent.as_str()),
        (MAC_HEADER, mac.as_str()),
    ];
    http(node.api, "POST", "/cluster/heartbeat", &headers, body).0
}

#[test]
fn forged_stale_and_replayed_heartbeats_get_401_and_register_nothing() {
    let node = member("coordinator", Role::Coordinator, &[]);
    let alone = expect(&[("coordinator", "alive")]);
    let body = record_json("intruder", "127.0.0.1:27500");
    let now = unix_ms_now();

    let unsigned = http(node.api, "POST", "/cluster/heartbeat", &[JSON], &body);
    assert_eq!(unsigned.0, 401, "{}", unsigned.2);
    let wrong_secret = ClusterSecret::from_bytes(&[b'w'; 32]).unwrap();
    assert_eq!(signed_heartbeat(&node, &wrong_secret, now, &body), 401);
    let secret = ClusterSecret::for_tests();
    let tampered_mac = secret.sign_request(now, body.as_bytes());
    let tampered = body.replace("27500", "27501");
    let sent = now.to_string();
    let headers = [
        JSON,
        (SENT_HEADER, sent.as_str()),
        (MAC_HEADER, &tampered_mac),
    ];
    assert_eq!(
        http(node.api, "POST", "/cluster/heartbeat", &headers, &tampered).0,
        401
    );
    let stale = now - DEFAULT_REPLAY_WINDOW.as_millis() as u64 - 1_000;
    assert_eq!(signed_heartbeat(&node, &secret, stale, &body), 401);
    let future = now + DEFAULT_REPLAY_WINDOW.as_millis() as u64 + 60_000;
    assert_eq!(signed_heartbeat(&node, &secret, future, &body), 401);
    assert_eq!(states(&node), alone);

    // The genuine article registers; the same message again is a replay and changes nothing.
    let genuine = record_json("w9", "127.0.0.1:9");
    assert_eq!(signed_heartbeat(&node, &secret, now, &genuine), 200);
    assert_eq!(signed_heartbeat(&node, &secret, now, &genuine), 401);
    assert_eq!(signed_heartbeat(&node, &secret, now - 1, &genuine), 401);
    assert_eq!(
        states(&node),
        expect(&[("coordinator", "alive"), ("w9", "alive")])
    );
}

#[test]
fn a_member_address_with_a_path_query_or_userinfo_is_refused() {
    let node = member("coordinator", Role::Coordinator, &[]);
    let secret = ClusterSecret::for_tests();
    for api in [
        "127.0.0.1:27500/admin?x=",
        "127.0.0.1:27500?x",
        "user@127.0.0.1:27500",
        "127.0.0.1 :27500",
    ] {
        let body = record_json("evil", api);
        assert_eq!(
            signed_heartbeat(&node, &secret, unix_ms_now(), &body),
            400,
            "{api}"
        );
    }
    let bad_name = record_json("a~b", "127.0.0.1:9");
    assert_eq!(
        signed_heartbeat(&node, &secret, unix_ms_now(), &bad_name),
        400
    );
    assert_eq!(states(&node), expect(&[("coordinator", "alive")]));
}

#[test]
fn members_with_different_secrets_never_join_and_replies_are_not_trusted() {
    let coordinator = member("coordinator", Role::Coordinator, &[]);
    let other = ClusterSecret::from_bytes(&[b'o'; 40]).unwrap();
    let seeds = vec![coordinator.api.to_string()];
    let outsider = TestNode::start(move |config| {
        config.node_name = "outsider".into();
        config.role = Role::Worker;
        config.seeds = seeds;
        config.membership = MembershipAuth::Secret(other);
        config.heartbeat_interval = Duration::from_millis(100);
        config.dead_after = Duration::from_millis(600);
    });
    // Five rounds at least: the outsider's heartbeats are refused, and the coordinator's
    // replies to it (401) teach it nothing.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(states(&coordinator), expect(&[("coordinator", "alive")]));
    assert_eq!(states(&outsider), expect(&[("outsider", "alive")]));
}

#[test]
fn without_a_secret_membership_is_off_and_a_node_with_seeds_refuses_to_start() {
    let node = TestNode::start(|config| config.membership = MembershipAuth::Disabled);
    let secret = ClusterSecret::for_tests();
    let body = record_json("w1", "127.0.0.1:9");
    assert_eq!(signed_heartbeat(&node, &secret, unix_ms_now(), &body), 401);
    assert_eq!(states(&node), expect(&[("node1", "alive")]));

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_erlmcp-node"))
        .args(["--seeds", "127.0.0.1:1"])
        .env_remove("ERLMCP_CLUSTER_SECRET_FILE")
        .env_remove("ERLMCP_INSECURE_OPEN_MEMBERSHIP")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--seeds needs --cluster-secret-file"),
        "{stderr}"
    );
}

#[test]
fn the_secret_file_is_read_by_the_binary_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "tiny\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_erlmcp-node"))
        .arg("--cluster-secret-file")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs at least 32"), "{stderr}");
    assert!(!stderr.contains("tiny"), "{stderr}");
}

/// A stand-in member's API that answers every request with 200 and a session id, and keeps
/// each request's head (lowercase) for the test to read. Serves at most `limit` connections.
struct Recorder {
    addr: SocketAddr,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Recorder {
    fn start(limit: usize) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = heads.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(limit) {
                let Ok(stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream);
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_lowercase();
                    if let Some(n) = lower.strip_prefix("content-length:") {
                        length = n.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&lower);
                }
                let mut body = vec![0; length];
                let _ = std::io::Read::read_exact(&mut reader, &mut body);
                kept.lock().unwrap().push(head);
                let reply = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nmcp-session-id: inner\r\n\
                     connection: close\r\ncontent-length: {}\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        Recorder { addr, heads }
    }

    /// Heads of the `/mcp` requests (the node also heartbeats its member, the recorder).
    fn heads(&self) -> Vec<String> {
        let heads = self.heads.lock().unwrap();
        heads
            .iter()
            .filter(|h| h.contains(" /mcp "))
            .cloned()
            .collect()
    }
}

const CREDENTIALS: [(&str, &str); 3] = [
    ("Authorization", "Bearer client-token"),
    ("Cookie", "sid=client-cookie"),
    ("Proxy-Authorization", "Basic Y2xpZW50"),
];

fn ping_through(node: &TestNode, session: &str) -> (u16, String, String) {
    let mut headers = vec![ACCEPT, JSON, ("Mcp-Session-Id", session)];
    headers.extend(CREDENTIALS);
    headers.push(("Connection", "close, x-hop"));
    headers.push(("X-Hop", "per-connection"));
    http(
        node.api,
        "POST",
        "/mcp",
        &headers,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
    )
}

#[test]
fn the_proxy_forwards_to_authenticated_members_only_and_never_the_clients_credentials() {
    let node = member("coordinator", Role::Coordinator, &[]);
    let recorder = Recorder::start(64);
    let target = recorder.addr.to_string();

    // Unauthenticated, the recorder is no member: its session ids are not forwarded.
    let unsigned = record_json("rec", &target);
    assert_eq!(
        http(node.api, "POST", "/cluster/heartbeat", &[JSON], &unsigned).0,
        401
    );
    assert_eq!(ping_through(&node, "rec~abc").0, 404);
    assert_eq!(ping_through(&node, "ghost~abc").0, 404);
    assert!(recorder.heads().is_empty(), "{:?}", recorder.heads());

    // Authenticated, it is one, and gets the request without credentials or hop-by-hop headers.
    let secret = ClusterSecret::for_tests();
    assert_eq!(
        signed_heartbeat(&node, &secret, unix_ms_now(), &unsigned),
        200
    );
    let (status, headers, _) = ping_through(&node, "rec~abc");
    assert_eq!(status, 200);
    assert!(headers.contains("mcp-session-id: rec~inner"), "{headers}");
    let heads = recorder.heads();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = &heads[0];
    assert!(head.contains("mcp-session-id: abc"), "{head}");
    assert!(
        head.contains("x-erlmcp-forwarded-by: coordinator"),
        "{head}"
    );
    for leaked in ["authorization", "cookie", "client-token", "x-hop"] {
        assert!(
            !head.contains(leaked),
            "{leaked} reached the member: {head}"
        );
    }
}

#[test]
fn credentials_cross_the_proxy_only_when_the_operator_opts_in() {
    let node = TestNode::start(|config| {
        config.node_name = "coordinator".into();
        config.proxy_forward_credentials = true;
    });
    let recorder = Recorder::start(64);
    let secret = ClusterSecret::for_tests();
    let record = record_json("rec", &recorder.addr.to_string());
    assert_eq!(
        signed_heartbeat(&node, &secret, unix_ms_now(), &record),
        200
    );
    assert_eq!(ping_through(&node, "rec~abc").0, 200);
    let head = &recorder.heads()[0];
    assert!(
        head.contains("authorization: bearer client-token"),
        "{head}"
    );
    assert!(head.contains("cookie: sid=client-cookie"), "{head}");
    assert!(!head.contains("x-hop"), "{head}");
}

/// A stand-in seed that answers every heartbeat 200 with a reply naming itself `fake` at
/// 127.0.0.1:9, signed with `secret` over the request's MAC when given, else unsigned.
fn fake_seed(secret: Option<ClusterSecret>) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(200) {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream);
            let (mut length, mut request_mac) = (0usize, String::new());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                let lower = line.to_lowercase();
                if let Some(n) = lower.strip_prefix("content-length:") {
                    length = n.trim().parse().unwrap_or(0);
                }
                if let Some(mac) = lower.strip_prefix(&format!("{MAC_HEADER}:")) {
                    request_mac = mac.trim().to_string();
                }
            }
            let mut body = vec![0; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let reply = format!(
                r#"{{"node":"fake","members":[{}]}}"#,
                record_json("fake", "127.0.0.1:9")
            );
            let mac = secret
                .as_ref()
                .map(|s| {
                    format!(
                        "{MAC_HEADER}: {}\r\n",
                        s.sign_reply(&request_mac, reply.as_bytes())
                    )
                })
                .unwrap_or_default();
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{mac}connection: close\r\n\
                 content-length: {}\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    addr
}

#[test]
fn a_node_learns_nothing_from_a_reply_without_a_valid_mac() {
    for (secret, listed) in [
        (None, false),
        (Some(ClusterSecret::from_bytes(&[b'x'; 32]).unwrap()), false),
        (Some(ClusterSecret::for_tests()), true), // the control: a genuine reply is believed
    ] {
        let seed = fake_seed(secret);
        let node = member("w1", Role::Worker, &[seed]);
        let with_fake = expect(&[("fake", "alive"), ("w1", "alive")]);
        if listed {
            assert!(
                eventually(|| states(&node) == with_fake),
                "{:?}",
                states(&node)
            );
        } else {
            // Several rounds at 100 ms: every reply arrived, none was believed.
            std::thread::sleep(Duration::from_millis(600));
            assert_eq!(states(&node), expect(&[("w1", "alive")]));
        }
    }
}

#[test]
fn the_replay_window_is_the_operators_to_set_and_stays_below_the_forget_time() {
    let node = TestNode::start(|config| config.replay_window = Duration::from_secs(1));
    let secret = ClusterSecret::for_tests();
    let body = record_json("w1", "127.0.0.1:9");
    let now = unix_ms_now();
    assert_eq!(signed_heartbeat(&node, &secret, now - 5_000, &body), 401);
    assert_eq!(signed_heartbeat(&node, &secret, now, &body), 200);

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_erlmcp-node"))
        .args(["--heartbeat-max-skew", "20m", "--forget-dead-after", "10m"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("must be above zero and below --forget-dead-after"),
        "{stderr}"
    );
}
