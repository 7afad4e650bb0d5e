//! Memory and throughput of `erlmcp-node` at many sessions, against a bare tokio echo server
//! (`erlmcp-node baseline`) measured the same way in the same run.
//!
//! ```text
//! cargo build --release -p erlmcp-node
//! cargo run --release -p erlmcp-node --example bench_sessions -- --sessions 19000 --seconds 10
//! cargo run --release -p erlmcp-node --example bench_sessions -- --transport http --sessions 16000
//! cargo run --release -p erlmcp-node --example bench_sessions -- --transport stateless --sessions 16000
//! ```
//!
//! `--transport http` holds idle, initialized Streamable HTTP sessions instead, one keep-alive
//! HTTP/1.1 connection each (`initialize`, then `notifications/initialized` with its
//! `Mcp-Session-Id`), and reports the node's RSS per session; `--transport stateless` holds
//! keep-alive connections that each carried one request of the stateless 2026-07-28 revision
//! (no session), the per-connection cost. Both measure memory only, not throughput.
//!
//! Each server is a child process on 127.0.0.1; this process holds the client sockets (each
//! process has its own open-file cap, so 19,000 sessions fit on either side). For each server:
//! RSS before, open and initialize the sessions, RSS after (the per-session figure), then every
//! session runs `tools/call echo` in a closed loop for the given time (the baseline echoes the
//! very same line back). Loads only 127.0.0.1 and stops by itself.

use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;

const ECHO: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hello from the load generator\"}}}\n";
const INITIALIZE: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":{\"name\":\"bench\",\"version\":\"0\"}}}\n";
const INITIALIZED: &[u8] = b"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";

struct Options {
    sessions: usize,
    seconds: u64,
    bin: PathBuf,
    transport: Transport,
}

/// What the sessions speak.
#[derive(Clone, Copy, PartialEq)]
enum Transport {
    /// MCP over TCP, against the baseline echo server, with a closed-loop load.
    Tcp,
    /// Initialized Streamable HTTP sessions, one keep-alive connection each, idle.
    Http,
    /// Keep-alive connections that each carried one stateless (2026-07-28) request, idle.
    Stateless,
}

fn options() -> Options {
    let mut sessions = 19_000;
    let mut seconds = 10;
    let mut transport = Transport::Tcp;
    // Examples build in target/<profile>/examples/; the binary is one level up.
    let mut bin = std::env::current_exe()
        .ok()
        .and_then(|p| Some(p.parent()?.parent()?.join("erlmcp-node")))
        .unwrap_or_else(|| PathBuf::from("erlmcp-node"));
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--sessions" => sessions = value.parse().expect("--sessions N"),
            "--seconds" => seconds = value.parse().expect("--seconds N"),
            "--bin" => bin = value.into(),
            "--transport" => {
                transport = match value.as_str() {
                    "tcp" => Transport::Tcp,
                    "http" => Transport::Http,
                    "stateless" => Transport::Stateless,
                    other => panic!("--transport {other}: use tcp, http or stateless"),
                }
            }
            other => {
                panic!("unknown flag {other} (use --sessions, --seconds, --bin, --transport)")
            }
        }
    }
    assert!(seconds <= 120, "--seconds is bounded at 120");
    Options {
        sessions,
        seconds,
        bin,
        transport,
    }
}

/// What one server measured.
struct Figures {
    rss_before_kib: u64,
    rss_sessions_kib: u64,
    rss_after_load_kib: u64,
    requests: usize,
    seconds: f64,
    p50_us: u32,
    p99_us: u32,
}

impl Figures {
    fn per_session_kib(&self, sessions: usize) -> f64 {
        (self.rss_sessions_kib.saturating_sub(self.rss_before_kib)) as f64 / sessions as f64
    }
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

fn main() {
    let options = options();
    assert!(
        options.bin.exists(),
        "{} not found: run `cargo build --release -p erlmcp-node` first, or pass --bin",
        options.bin.display()
    );
    let limit = open_file_limit();
    assert!(
        limit >= options.sessions as u64 + 64,
        "the open-file limit ({limit}) is below --sessions + 64"
    );
    println!("machine: {}", machine());
    println!("binary: {}", options.bin.display());
    if options.transport != Transport::Tcp {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(http::measure(&options));
        return;
    }
    println!(
        "sessions: {}, load: {} s of closed-loop tools/call echo per server\n",
        options.sessions, options.seconds
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let baseline = runtime.block_on(measure(&options, Server::Baseline));
    let node = runtime.block_on(measure(&options, Server::Node));

    let n = options.sessions;
    println!("| server | RSS per idle session | requests/s | p50 | p99 | RSS after load |");
    println!("|---|---|---|---|---|---|");
    for (name, f) in [
        ("bare tokio echo (baseline)", &baseline),
        ("erlmcp-node (MCP over TCP)", &node),
    ] {
        println!(
            "| {name} | {:.2} KiB | {:.0} | {:.2} ms | {:.2} ms | {} MiB |",
            f.per_session_kib(n),
            f.rate(),
            f.p50_us as f64 / 1000.0,
            f.p99_us as f64 / 1000.0,
            f.rss_after_load_kib / 1024
        );
    }
    println!(
        "\nthroughput ratio node/baseline: {:.2} (goal >= 0.8); node RSS per session: {:.2} KiB (budget 4 KiB)",
        node.rate() / baseline.rate(),
        node.per_session_kib(n)
    );
}

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Baseline,
    Node,
}

async fn measure(options: &Options, server: Server) -> Figures {
    let port = free_port();
    let mut command = Command::new(&options.bin);
    match server {
        Server::Baseline => {
            command.args([
                "baseline",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ]);
        }
        Server::Node => {
            let max = (options.sessions + 100).to_string();
            command.args([
                "serve",
                "--bind",
                "127.0.0.1",
                "--listener-port",
                &port.to_string(),
            ]);
            command.args([
                "--api-port",
                &free_port().to_string(),
                "--max-connections",
                &max,
            ]);
            command.args([
                "--idle-timeout",
                "1h",
                "--log-level",
                "warn",
                "--node-name",
                "bench",
            ]);
        }
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    wait_for_listener(addr).await;
    let pid = child.id();

    // One session first, so the runtime and allocator are warm before the baseline RSS.
    drop(open_session(addr, server, 0).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_before_kib = rss_kib(pid);

    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(256)); // connects in flight at once
    let mut opening = Vec::with_capacity(options.sessions);
    for n in 0..options.sessions {
        let gate = gate.clone();
        opening.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("gate");
            open_session(addr, server, n).await
        }));
    }
    let mut streams = Vec::with_capacity(options.sessions);
    for task in opening {
        streams.push(task.await.expect("open"));
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // let the server settle
    let rss_sessions_kib = rss_kib(pid);
    eprintln!(
        "{}: opened {} sessions in {:.1} s",
        name(server),
        streams.len(),
        started.elapsed().as_secs_f64()
    );

    let stop = Arc::new(AtomicBool::new(false));
    let load_started = Instant::now();
    let deadline = load_started + Duration::from_secs(options.seconds);
    let mut load = Vec::with_capacity(streams.len());
    for stream in streams {
        let stop = stop.clone();
        load.push(tokio::spawn(echo_loop(stream, deadline, stop)));
    }
    let mut latencies = Vec::new();
    let mut streams = Vec::new();
    for task in load {
        let (stream, mut samples) = task.await.expect("load");
        latencies.append(&mut samples);
        streams.push(stream);
    }
    let seconds = load_started.elapsed().as_secs_f64();
    let rss_after_load_kib = rss_kib(pid);
    drop(streams);
    stop_child(&mut child);

    latencies.sort_unstable();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Figures {
        rss_before_kib,
        rss_sessions_kib,
        rss_after_load_kib,
        requests: latencies.len(),
        seconds,
        p50_us: at(0.50),
        p99_us: at(0.99),
    }
}

fn name(server: Server) -> &'static str {
    match server {
        Server::Baseline => "baseline",
        Server::Node => "erlmcp-node",
    }
}

/// Source addresses the sessions are spread over: one 127.0.0.1 has about 28,000 ephemeral
/// ports, which other load on the machine (and TIME_WAIT from the last run) can use up.
const SOURCES: u8 = 8;

/// Connects from 127.0.0.(2 + n % SOURCES) and, for the node, completes the MCP handshake.
async fn open_session(addr: SocketAddr, server: Server, n: usize) -> TcpStream {
    let source = SocketAddr::from((
        Ipv4Addr::new(127, 0, 0, 2 + (n % SOURCES as usize) as u8),
        0,
    ));
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(source).expect("bind a loopback source address");
    let mut stream = match socket.connect(addr).await {
        Ok(stream) => stream,
        Err(error) => {
            eprintln!("connect from {source} to {addr} failed: {error}");
            std::process::exit(2);
        }
    };
    stream.set_nodelay(true).expect("nodelay");
    let mut buffer = Vec::with_capacity(512);
    match server {
        Server::Node => {
            stream.write_all(INITIALIZE).await.expect("initialize");
            read_line(&mut stream, &mut buffer).await;
            stream.write_all(INITIALIZED).await.expect("initialized");
        }
        Server::Baseline => {
            stream.write_all(ECHO).await.expect("echo");
            read_line(&mut stream, &mut buffer).await;
        }
    }
    stream
}

/// Request, wait for the reply, repeat, until the deadline; returns the latencies in µs.
async fn echo_loop(
    mut stream: TcpStream,
    deadline: Instant,
    stop: Arc<AtomicBool>,
) -> (TcpStream, Vec<u32>) {
    let mut samples = Vec::new();
    let mut buffer = Vec::with_capacity(256);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        if stream.write_all(ECHO).await.is_err() || !read_line(&mut stream, &mut buffer).await {
            stop.store(true, Ordering::Relaxed);
            eprintln!("a session failed during the load");
            break;
        }
        samples.push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    (stream, samples)
}

/// Reads one reply line; false on EOF or error.
async fn read_line(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> bool {
    buffer.clear();
    let mut chunk = [0u8; 512];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return false,
            Ok(Ok(n)) => {
                buffer.extend_from_slice(&chunk[..n]);
                if buffer.ends_with(b"\n") {
                    return true;
                }
            }
        }
    }
}

async fn wait_for_listener(addr: SocketAddr) {
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {addr} after 10 s");
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn stop_child(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..200 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            let line = t
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_string();
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(0)
}

fn machine() -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    format!(
        "{cores} cores ({model}), {:.1} GiB memory, Linux {}",
        mem_kib as f64 / 1024.0 / 1024.0,
        read("/proc/sys/kernel/osrelease").trim()
    )
}

/// The Streamable HTTP modes: idle sessions (or stateless connections) held against one node,
/// its RSS before and after.
mod http {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// The node under measurement, so a failing run stops it too.
    static NODE_PID: AtomicU32 = AtomicU32::new(0);

    /// Reports a failure, stops the node and exits.
    fn fail(message: &str) -> ! {
        eprintln!("{message}");
        let pid = NODE_PID.load(Ordering::Relaxed);
        if pid != 0 {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        std::process::exit(2);
    }

    const STATELESS_ECHO: &str = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hello from the load generator\"},\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}}";

    /// A connection held open (the session lives on the node under its id).
    pub struct Held {
        _stream: TcpStream,
    }

    pub async fn measure(options: &Options) {
        let n = options.sessions;
        let (kind, unit) = match options.transport {
            Transport::Http => ("initialized Streamable HTTP sessions", "session"),
            _ => (
                "keep-alive connections after one stateless 2026-07-28 request",
                "connection",
            ),
        };
        println!("sessions: {n} {kind}, idle, one keep-alive HTTP/1.1 connection each\n");
        let port = free_port();
        let room = (n + 100).to_string();
        let mut child = Command::new(&options.bin)
            .args([
                "serve",
                "--bind",
                "127.0.0.1",
                "--api-port",
                &port.to_string(),
            ])
            .args(["--listener-port", &free_port().to_string()])
            .args(["--max-connections", &room, "--max-http-connections", &room])
            // Idle keep-alive connections and sessions must outlive the measurement.
            .args(["--idle-timeout", "1h", "--read-timeout", "10m"])
            .args(["--log-level", "warn", "--node-name", "bench"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn");
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        wait_for_listener(addr).await;
        let pid = child.id();
        NODE_PID.store(pid, Ordering::Relaxed);
        let stateless = options.transport == Transport::Stateless;

        // One first, so the runtime and allocator are warm before the baseline RSS.
        drop(open(addr, stateless, 0).await);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = rss_kib(pid);

        let started = Instant::now();
        let gate = Arc::new(Semaphore::new(256)); // connects in flight at once
        let mut opening = Vec::with_capacity(n);
        for i in 0..n {
            let gate = gate.clone();
            opening.push(tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("gate");
                open(addr, stateless, i).await
            }));
        }
        let mut held = Vec::with_capacity(n);
        for task in opening {
            held.push(task.await.expect("open"));
        }
        eprintln!(
            "erlmcp-node: opened {} in {:.1} s",
            held.len(),
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(1)).await; // let the server settle
        let after = rss_kib(pid);
        drop(held);
        stop_child(&mut child);

        let per = after.saturating_sub(before) as f64 / n as f64;
        println!("| server | RSS before | RSS with {n} held | RSS per idle {unit} |");
        println!("|---|---|---|---|");
        println!(
            "| erlmcp-node ({}) | {:.1} MiB | {:.1} MiB | {per:.2} KiB |",
            if stateless {
                "stateless HTTP"
            } else {
                "Streamable HTTP"
            },
            before as f64 / 1024.0,
            after as f64 / 1024.0
        );
        println!("\nnode RSS per idle {unit}: {per:.2} KiB (budget 8 KiB)");
    }

    /// Connects from a spread source address and makes the connection idle and initialized:
    /// `initialize` and `notifications/initialized` for a session, one echo when stateless.
    async fn open(addr: SocketAddr, stateless: bool, n: usize) -> Held {
        let source = SocketAddr::from((
            Ipv4Addr::new(127, 0, 0, 2 + (n % SOURCES as usize) as u8),
            0,
        ));
        let socket = TcpSocket::new_v4().expect("socket");
        socket.bind(source).expect("bind a loopback source address");
        let mut stream = match socket.connect(addr).await {
            Ok(stream) => stream,
            Err(error) => fail(&format!("connect from {source} to {addr} failed: {error}")),
        };
        stream.set_nodelay(true).expect("nodelay");
        if stateless {
            let head = post(
                &mut stream,
                addr,
                STATELESS_ECHO,
                &[("MCP-Protocol-Version", "2026-07-28")],
            )
            .await;
            expect_status(&head, "200", "a stateless echo");
            return Held { _stream: stream };
        }
        let initialize = std::str::from_utf8(INITIALIZE).expect("utf-8").trim_end();
        let head = post(&mut stream, addr, initialize, &[]).await;
        expect_status(&head, "200", "initialize");
        let id = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("mcp-session-id")
                    .then(|| value.trim().to_string())
            })
            .unwrap_or_else(|| {
                fail(&format!(
                    "initialize answered without Mcp-Session-Id:\n{head}"
                ))
            });
        let initialized = std::str::from_utf8(INITIALIZED).expect("utf-8").trim_end();
        let headers = [
            ("Mcp-Session-Id", id.as_str()),
            ("MCP-Protocol-Version", "2025-06-18"),
        ];
        let head = post(&mut stream, addr, initialized, &headers).await;
        expect_status(&head, "202", "notifications/initialized");
        Held { _stream: stream }
    }

    fn expect_status(head: &str, status: &str, what: &str) {
        let line = head.lines().next().unwrap_or_default();
        if line.split_whitespace().nth(1) != Some(status) {
            fail(&format!("{what} answered {line:?}, not {status}"));
        }
    }

    /// One POST /mcp on the keep-alive connection; returns the answer's head (its body is read
    /// and dropped).
    async fn post(
        stream: &mut TcpStream,
        addr: SocketAddr,
        body: &str,
        headers: &[(&str, &str)],
    ) -> String {
        let mut request = format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .await
            .expect("write a request");
        let mut raw = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    return head;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                    fail("the node closed or stalled a connection mid-answer")
                }
                Ok(Ok(got)) => raw.extend_from_slice(&chunk[..got]),
            }
        }
    }
}
