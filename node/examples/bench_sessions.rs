//! Memory and throughput of `erlmcp-node` at many sessions, against a bare tokio echo server
//! (`erlmcp-node baseline`) measured the same way in the same run.
//!
//! ```text
//! cargo build --release -p erlmcp-node
//! cargo run --release -p erlmcp-node --example bench_sessions -- --sessions 19000 --seconds 10
//! ```
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
}

fn options() -> Options {
    let mut sessions = 19_000;
    let mut seconds = 10;
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
            other => panic!("unknown flag {other} (use --sessions, --seconds, --bin)"),
        }
    }
    assert!(seconds <= 120, "--seconds is bounded at 120");
    Options {
        sessions,
        seconds,
        bin,
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
