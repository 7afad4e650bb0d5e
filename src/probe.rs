//! Tiny HTTP GET over TCP for the endpoints this tool reads (`/health`, `/metrics`, Prometheus's
//! API): plain HTTP/1.0 on loopback or a cluster network, bounded by a timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response body read; `/metrics` of a node is a few KiB.
const MAX_RESPONSE: usize = 4 << 20;

/// An HTTP response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body as text.
    pub body: String,
}

/// GETs `path` from `addr` within `timeout`.
pub async fn get(addr: SocketAddr, path: &str, timeout: Duration) -> anyhow::Result<Response> {
    tokio::time::timeout(timeout, get_unbounded(addr, path))
        .await
        .map_err(|_| anyhow::anyhow!("GET http://{addr}{path}: no answer within {timeout:?}"))?
}

async fn get_unbounded(addr: SocketAddr, path: &str) -> anyhow::Result<Response> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| anyhow::anyhow!("GET http://{addr}{path}: {e}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE as u64)
        .read_to_end(&mut raw)
        .await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("GET http://{addr}{path}: malformed response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("GET http://{addr}{path}: malformed status line"))?;
    Ok(Response {
        status,
        body: body.to_string(),
    })
}

/// The value of a Prometheus text-format sample, summed over every series of `name` whose labels
/// contain each of `label_filters` (`transport="tcp"`).
pub fn metric_sum(metrics: &str, name: &str, label_filters: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in metrics.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(labelled) => match labelled.split_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        if !label_filters.iter().all(|f| labels.contains(f)) {
            continue;
        }
        if let Some(v) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = "# HELP x\nerlmcp_connections_active{transport=\"tcp\"} 12\n\
        erlmcp_connections_active{transport=\"http\"} 3\nerlmcp_connections_active_total 99\n\
        process_resident_memory_bytes 4.5e6\n";

    #[test]
    fn sums_matching_series_only() {
        assert_eq!(
            metric_sum(METRICS, "erlmcp_connections_active", &[]),
            Some(15.0)
        );
        assert_eq!(
            metric_sum(METRICS, "erlmcp_connections_active", &["transport=\"tcp\""]),
            Some(12.0)
        );
        assert_eq!(
            metric_sum(METRICS, "process_resident_memory_bytes", &[]),
            Some(4.5e6)
        );
        assert_eq!(metric_sum(METRICS, "missing", &[]), None);
    }

    #[tokio::test]
    async fn gets_status_and_body_from_a_real_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let response = get(addr, "/health", Duration::from_secs(5)).await.unwrap();
        assert_eq!((response.status, response.body.as_str()), (200, "ok"));
    }

    #[tokio::test]
    async fn a_closed_port_is_an_error_naming_the_url() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let error = get(addr, "/health", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains(&format!("http://{addr}/health")),
            "{error}"
        );
    }
}
