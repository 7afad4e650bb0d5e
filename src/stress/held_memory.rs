//! What one held session costs the load generator, measured (`validate --host --probe`): opens
//! real MCP sessions over TCP the way a worker holds them ([`ShardSlots`]: a slot task, the
//! session, its request channel) against an in-process listener, and reads this process's
//! private resident memory (`RssAnon`) before and after.
//!
//! Both ends live in this process, so the far end is kept trivially cheap: one blocking thread
//! that answers each `initialize` from a single reused buffer and keeps only the socket (its
//! `TcpStream`, a descriptor, subtracted per session). The kernel's side of each connection is
//! not resident memory of any process; the socket probe measures it.

use super::TargetKind;
use super::worker::{ShardSlots, ShardSpec, ShardTarget};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Sessions measured: enough that their memory (megabytes) dwarfs the kilobyte granularity of
/// `RssAnon`, few enough to open in well under a second and stay far below the open-file cap.
pub const SESSIONS: usize = 3_000;

/// Sessions held before the first reading, so that first-use costs (the runtime's task and
/// timer tables, the allocator's arenas) are in both readings and only the sessions' own
/// memory is in the difference.
const WARM_UP: usize = 200;

/// Fewer sessions than this open and the probe reports no figure.
const MIN_SESSIONS: usize = 500;

/// The whole probe gives up past this.
const DEADLINE: Duration = Duration::from_secs(8);

/// An answer to `initialize` of the size and shape erlmcp-node's is: the session keeps the
/// longest line it has read in its line buffer, so the answer's length is part of its memory.
const INITIALIZE_ANSWER: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"result":{"capabilities":{"logging":{},"prompts":{"listChanged":false},"#,
    r#""resources":{"listChanged":false,"subscribe":false},"tools":{"listChanged":false}},"#,
    r#""instructions":"erlmcp cluster node node1: tools echo, add, sleep_ms, cluster_status, node_info","#,
    r#""protocolVersion":"2025-06-18","serverInfo":{"name":"erlmcp-node","title":"erlmcp cluster node","#,
    r#""version":"0.1.0"}}}"#,
    "\n"
);

/// What one held session costs the generator, as measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct HeldSessionCost {
    /// Sessions held between the two readings.
    pub sessions: u64,
    /// Private resident memory per held session, bytes.
    pub bytes_per_session: u64,
    /// This process's private resident memory before the probe opened anything, bytes: the
    /// same binary, so it stands in for a worker process's fixed memory.
    pub process_base_bytes: u64,
    /// How long the probe took, milliseconds.
    pub elapsed_ms: u64,
}

/// `RssAnon` of a `/proc/<pid>/status` text, bytes: private memory, without the binary's and
/// libraries' pages that every worker process shares.
pub fn rss_anon_from_status(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn own_rss_anon() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    rss_anon_from_status(&status).ok_or_else(|| "no RssAnon in /proc/self/status".into())
}

/// Bytes per session between two readings, less what the far end keeps per session.
pub fn per_session(before: u64, after: u64, sessions: u64) -> u64 {
    let far_end = std::mem::size_of::<TcpStream>() as u64;
    (after.saturating_sub(before) / sessions.max(1)).saturating_sub(far_end)
}

/// The far end: accepts, answers one `initialize` per connection and keeps the socket, until
/// `stop`; then resets every connection so no end lingers in TIME_WAIT.
fn far_end(listener: TcpListener, capacity: usize, stop: Arc<AtomicBool>, deadline: Instant) {
    let mut held: Vec<TcpStream> = Vec::with_capacity(capacity);
    let mut line = [0u8; 512];
    let _ = listener.set_nonblocking(true);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
                // The request is one short line; read until its newline, then answer.
                let mut seen_newline = false;
                while !seen_newline {
                    match stream.read(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen_newline = line[..n].contains(&b'\n'),
                    }
                }
                if seen_newline && stream.write_all(INITIALIZE_ANSWER.as_bytes()).is_ok() {
                    held.push(stream);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    for stream in held {
        crate::host::socket_probe::close_at_once(stream);
    }
}

/// Waits until `expected` sessions are registered or `deadline`; returns how many are.
async fn wait_registered(shard: &ShardSlots, expected: usize, deadline: Instant) -> usize {
    loop {
        let now = shard.registered();
        if now >= expected || Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Opens [`WARM_UP`] sessions, reads, opens up to [`SESSIONS`] more (fewer when the soft
/// open-file limit is low: each in-process session is two descriptors), reads again.
pub fn measure(soft_nofile: Option<u64>) -> Result<HeldSessionCost, String> {
    let started = Instant::now();
    let deadline = started + DEADLINE;
    let room = soft_nofile.map_or(u64::MAX, |soft| soft.saturating_sub(256) / 2) as usize;
    let sessions = SESSIONS.min(room.saturating_sub(WARM_UP));
    if sessions < MIN_SESSIONS {
        return Err(format!(
            "the soft open-file limit ({}) leaves room for too few sessions to measure",
            soft_nofile.unwrap_or(0)
        ));
    }
    let process_base_bytes = own_rss_anon()?;
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let far = {
        let stop = stop.clone();
        std::thread::spawn(move || far_end(listener, WARM_UP + sessions, stop, deadline))
    };
    // The generator's side runs as a worker runs: one current-thread runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let readings = runtime.block_on(async {
        let mut shard = ShardSlots::new(probe_spec(addr, WARM_UP + sessions));
        shard.open(WARM_UP, Duration::from_millis(50));
        let warm = wait_registered(&shard, WARM_UP, deadline).await;
        // Let the allocator and the runtime settle before reading.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let before = own_rss_anon();
        shard.open(sessions, Duration::from_millis(400));
        let held = wait_registered(&shard, warm + sessions, deadline).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        let after = own_rss_anon();
        stop.store(true, Ordering::Relaxed);
        (warm, held, before, after, shard)
    });
    let (warm, held, before, after, shard) = readings;
    // The far end resets every connection first, so the sessions end without a TIME_WAIT.
    let _ = far.join();
    runtime.block_on(shard.close());
    let opened = held.saturating_sub(warm);
    if warm < WARM_UP || opened < MIN_SESSIONS {
        return Err(format!(
            "opened only {warm} + {opened} of {WARM_UP} + {sessions} sessions in {DEADLINE:?}"
        ));
    }
    Ok(HeldSessionCost {
        sessions: opened as u64,
        bytes_per_session: per_session(before?, after?, opened as u64),
        process_base_bytes,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// One MCP target over TCP, no source address, no requests: sessions open and are held.
fn probe_spec(addr: SocketAddr, sessions: usize) -> ShardSpec {
    ShardSpec {
        worker: 0,
        transport: super::Transport::Tcp,
        targets: vec![ShardTarget {
            node: "probe".into(),
            tcp_addr: addr,
            http_addr: None,
            kind: TargetKind::Mcp,
            sessions: sessions as u64,
            host: None,
        }],
        sources: Vec::new(),
        ramp_ms: 0,
        hold_ms: 0,
        rate: 0.0,
        connect_timeout_ms: 2_000,
        request_timeout_ms: 1_000,
        max_attempts_per_slot: 1,
        own_process: false,
        start_at_unix_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_private_resident_memory_from_proc_status() {
        let status = "Name:\terlmcp-gen\nVmRSS:\t   30000 kB\nRssAnon:\t   12288 kB\nRssFile:\t   17712 kB\n";
        assert_eq!(rss_anon_from_status(status), Some(12288 * 1024));
        assert_eq!(rss_anon_from_status("VmRSS:\t1 kB\n"), None);
    }

    #[test]
    fn the_far_ends_socket_is_not_counted_and_a_shrink_counts_as_nothing() {
        let far_end = std::mem::size_of::<TcpStream>() as u64;
        assert_eq!(per_session(1_000_000, 21_000_000, 3_000), 6_666 - far_end);
        assert_eq!(per_session(2_000_000, 1_000_000, 3_000), 0);
    }

    #[test]
    fn the_answer_is_one_line_the_session_reads_as_initializes_reply() {
        let line = INITIALIZE_ANSWER.trim_end_matches('\n');
        assert!(!line.contains('\n'));
        assert_eq!(
            super::super::protocol::parse_reply(line.as_bytes()),
            super::super::protocol::Reply::Ok(super::super::protocol::INITIALIZE_ID)
        );
    }
}
