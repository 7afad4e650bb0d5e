//! `erlmcp-node healthcheck`: asks the node's own `/health` (or, with `--url`, any plain-HTTP
//! URL on an IP address, such as Prometheus's `/-/ready`) and exits 0 or 1. The images'
//! HEALTHCHECK runs it, since a `scratch` image has no curl or wget.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// `http://<ip>:<port><path>` split into the address and the path (`/` when none); the only
/// URLs a health check needs, so no DNS and no TLS.
pub fn parse_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let addr: SocketAddr = authority
        .parse()
        .map_err(|_| format!("{url}: the host must be an IP address with a port"))?;
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("{url}: the path has whitespace"));
    }
    Ok((addr, path.to_string()))
}

/// True when `GET /health` on `addr` answers 200 within `timeout`.
pub fn check(addr: SocketAddr, timeout: Duration) -> bool {
    check_path(addr, "/health", timeout)
}

/// True when `GET path` on `addr` answers 200 within `timeout`.
pub fn check_path(addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_http_ip_port_and_path() {
        let (addr, path) = parse_url("http://127.0.0.1:9090/-/ready").unwrap();
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 9090)));
        assert_eq!(path, "/-/ready");
        assert_eq!(parse_url("http://[::1]:80").unwrap().1, "/");
        assert!(parse_url("https://127.0.0.1:1/").is_err());
        assert!(parse_url("http://localhost:9090/").is_err());
        assert!(parse_url("http://127.0.0.1:1/a b").is_err());
    }
}
