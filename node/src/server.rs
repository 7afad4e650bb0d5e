//! Runs a node: binds the API port and the MCP listener, heartbeats the cluster, serves until
//! shutdown, then drains (stop accepting and heartbeating, `/ready` false, wait for in-flight
//! requests within a bound).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

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
        let (stop, stopped) = watch::channel(false);
        let tcp = tokio::spawn(crate::tcp::serve(listener, node.clone(), stopped.clone()));
        let sweeper = tokio::spawn(expire_http_sessions(node.clone(), stopped.clone()));
        let heartbeat = tokio::spawn(crate::heartbeat::run(node.clone(), stopped.clone()));
        let mut http_stopped = stopped.clone();
        let router = crate::http::router(node.clone());
        let api = crate::counted_io::CountedListener::new(
            api,
            node.metrics.network_receive_bytes.clone(),
            node.metrics.network_transmit_bytes.clone(),
        );
        let http = tokio::spawn(async move {
            let _ = axum::serve(api, router)
                .with_graceful_shutdown(async move {
                    let _ = http_stopped.wait_for(|stop| *stop).await;
                })
                .await;
        });
        // Copied out first: a guard held across the macro's arguments would deadlock the second lock.
        let (api_port, listener_port) = *node.bound_ports.lock().expect("ports lock");
        tracing::info!(
            node = %node.config.node_name,
            role = ?node.config.role,
            api = %api_port,
            listener = %listener_port,
            max_connections = node.config.max_connections,
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
        while node.metrics.in_flight.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = node.metrics.in_flight.get();
        if left > 0 {
            tracing::warn!(
                left,
                "drain timeout: stopping with requests still in flight"
            );
        }
        // Open streams would hold the HTTP server forever: it gets what is left of the bound.
        let _ =
            tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), http).await;
        tracing::info!("stopped");
        Ok(())
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
