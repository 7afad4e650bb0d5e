//! Runs a node: binds the API port and the MCP listener, heartbeats the cluster, serves until
//! shutdown, then drains: stop accepting MCP connections and heartbeating, `/ready` 503 (the API
//! port keeps answering), wait for in-flight requests up to the drain timeout, then answer the
//! ones left with a shutting-down error and close.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::NodeConfig;
use crate::state::{Node, NodeState};

/// A node whose listeners are bound (ports resolved) but not yet serving.
pub struct Server {
    /// The shared state.
    pub node: Node,
    api: TcpListener,
    listener: TcpListener,
}

impl Server {
    /// Binds both listeners; port 0 picks free ports (tests read them back).
    pub fn bind(config: NodeConfig) -> anyhow::Result<Self> {
        let api = crate::tcp::bind(
            SocketAddr::new(config.bind, config.api_port),
            config.backlog,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "binding the API port {}:{}: {e}",
                config.bind,
                config.api_port
            )
        })?;
        let listener = crate::tcp::bind(
            SocketAddr::new(config.bind, config.listener_port),
            config.backlog,
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "binding the MCP listener {}:{}: {e}",
                config.bind,
                config.listener_port
            )
        })?;
        let node = NodeState::new(config);
        *node.bound_ports.lock().expect("ports lock") =
            (api.local_addr()?.port(), listener.local_addr()?.port());
        Ok(Server {
            node,
            api,
            listener,
        })
    }

    /// The API address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api.local_addr().expect("bound")
    }

    /// The MCP-over-TCP address.
    pub fn listener_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound")
    }

    /// Serves until `shutdown` completes, then drains and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Server {
            node,
            api,
            listener,
        } = self;
        // MCP accepts and heartbeats stop when the drain starts; the API port answers until the
        // drain is over, so `/ready` says 503 instead of refusing the connection.
        let (stop, stopped) = watch::channel(false);
        let (stop_api, api_stopped) = watch::channel(false);
        let tcp = tokio::spawn(crate::tcp::serve(listener, node.clone(), stopped.clone()));
        let sweeper = tokio::spawn(expire_http_sessions(node.clone(), stopped.clone()));
        let heartbeat = tokio::spawn(crate::heartbeat::run(node.clone(), stopped.clone()));
        let http = tokio::spawn(crate::api_listener::serve(api, node.clone(), api_stopped));
        // Copied out first: a guard held across the macro's arguments would deadlock the second lock.
        let (api_port, listener_port) = *node.bound_ports.lock().expect("ports lock");
        tracing::info!(
            node = %node.config.node_name,
            role = ?node.config.role,
            api = %api_port,
            listener = %listener_port,
            max_connections = node.config.max_connections,
            connection_descriptors = node.config.connection_descriptors,
            seeds = ?node.config.seeds,
            "serving"
        );
        shutdown.await;
        tracing::info!("draining: no new sessions; waiting for in-flight requests");
        node.start_draining();
        let _ = stop.send(true);
        let _ = tcp.await;
        let _ = sweeper.await;
        let _ = heartbeat.await;
        let deadline = Instant::now() + node.config.drain_timeout;
        wait_until(deadline, || node.metrics.in_flight.get() == 0).await;
        let left = node.metrics.in_flight.get();
        if left > 0 {
            tracing::warn!(
                left,
                "drain timeout: answering the requests still in flight with a shutting-down error"
            );
            node.abandon.send_replace(true);
            // Those errors must reach their clients before the process exits.
            wait_until(Instant::now() + FLUSH_GRACE, || {
                node.metrics.in_flight.get() == 0 && node.sessions_busy.load(Ordering::Acquire) == 0
            })
            .await;
        }
        let _ = stop_api.send(true);
        // Open requests finish, idle connections close; a client that does not read is cut off.
        let _ = tokio::time::timeout(FLUSH_GRACE, http).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How long the end of a drain waits for replies to be written and connections to close.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// Polls `done` until it holds or `deadline` passes.
async fn wait_until(deadline: Instant, done: impl Fn() -> bool) {
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends idle Streamable HTTP sessions until shutdown; checks a few times per idle timeout.
async fn expire_http_sessions(node: Node, mut shutdown: watch::Receiver<bool>) {
    let every =
        (node.config.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let ended = node.expire_http_sessions();
        if ended > 0 {
            tracing::info!(ended, "ended idle HTTP sessions");
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn termination() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// Binds and serves `config` until `shutdown` completes, then drains: the one-call entry point
/// for embedders that do not need the bound ports back (tests use [`Server::bind`]).
pub async fn run(config: NodeConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    Server::bind(config)?.run(shutdown).await
}
