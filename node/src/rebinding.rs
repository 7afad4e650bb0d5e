//! DNS-rebinding protection: which `Host` and `Origin` values the API port answers.
//!
//! A rebinding attack makes a browser send requests for the attacker's DNS name to this node,
//! so the `Host` header carries that name. The check therefore parses each authority exactly
//! (no prefix tests: `127.0.0.1.evil.example` is a name, not a loopback address) and compares
//! it against a closed set:
//! - loopback addresses (`127.0.0.0/8`, `::1`) and `localhost`, always;
//! - the names in `--allowed-hosts` (`ERLMCP_ALLOWED_HOSTS`), always;
//! - when the node binds a non-loopback address (a container binds `0.0.0.0`): its own name, its
//!   advertise host, and any IP literal (the address a port is published on, the container's
//!   own address; an IP literal is no rebinding, which needs a DNS name).
//!
//! An `Origin` must be `http(s)://host[:port]` with a host from the same set (IP literals only
//! when loopback) or the request's own `Host`.

use std::net::{IpAddr, Ipv6Addr};

use crate::config::NodeConfig;

/// The host part of an authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host<'a> {
    /// An IP literal (`127.0.0.1`, `[::1]`).
    Ip(IpAddr),
    /// A DNS name, as written (compare case-insensitively).
    Name(&'a str),
}

impl Host<'_> {
    fn same(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Ip(a), Host::Ip(b)) => a == b,
            (Host::Name(a), Host::Name(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    /// Whether this host is `name` (a configured entry, itself an IP literal or a name).
    fn is(&self, name: &str) -> bool {
        match name.parse::<IpAddr>() {
            Ok(ip) => *self == Host::Ip(ip),
            Err(_) => self.same(&Host::Name(name)),
        }
    }
}

/// `host[:port]`, as in a `Host` header. Userinfo, paths and anything but a DNS name, an IPv4
/// literal or a bracketed IPv6 literal make it unreadable (`None`).
pub fn parse_authority(text: &str) -> Option<(Host<'_>, Option<u16>)> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let ip: Ipv6Addr = inside.parse().ok()?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(after.strip_prefix(':')?)?),
        };
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((host, port)) => (host, Some(parse_port(port)?)),
            None => (text, None),
        };
        let host = match host.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => Host::Ip(IpAddr::V4(ip)),
            Err(_) if is_dns_name(host) => Host::Name(host),
            Err(_) => return None,
        };
        (host, port)
    };
    Some((host, port))
}

fn parse_port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Letters, digits, `-` and `.` in non-empty labels: what DNS names look like. (A name that is
/// all digits and dots but no IPv4 address, like `127.1`, stays a name and matches nothing.)
fn is_dns_name(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// `scheme://host[:port]`, as in an `Origin` header: only `http` and `https`, nothing after the
/// authority (`null` and anything else are unreadable).
pub fn parse_origin(text: &str) -> Option<(Host<'_>, Option<u16>)> {
    let (scheme, authority) = text.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    parse_authority(authority)
}

/// Whether `host` names this node without being a possible rebinding: loopback, `localhost`,
/// the configured names, and (off loopback) the node's own names.
fn is_own_name(config: &NodeConfig, host: &Host) -> bool {
    let loopback = match host {
        Host::Ip(ip) => ip.is_loopback(),
        Host::Name(name) => name.eq_ignore_ascii_case("localhost"),
    };
    loopback
        || config.allowed_hosts.iter().any(|name| host.is(name))
        || (!config.bind.is_loopback()
            && (host.is(&config.node_name) || host.is(&config.advertise_host)))
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` missing, unreadable or not this node's.
    Host,
    /// `Origin` unreadable or foreign.
    Origin,
}

/// Checks a request's `Host` (required) and `Origin` (when present).
pub fn check(config: &NodeConfig, host: Option<&str>, origin: Option<&str>) -> Result<(), Refusal> {
    let (host, _) = host.and_then(parse_authority).ok_or(Refusal::Host)?;
    // An IP literal is no rebinding; on a loopback bind only the loopback ones reach the node.
    let any_ip = matches!(host, Host::Ip(_)) && !config.bind.is_loopback();
    let host_allowed = any_ip || is_own_name(config, &host);
    if !host_allowed {
        return Err(Refusal::Host);
    }
    if let Some(origin) = origin {
        let (origin_host, _) = parse_origin(origin).ok_or(Refusal::Origin)?;
        if !(is_own_name(config, &origin_host) || origin_host.same(&host)) {
            return Err(Refusal::Origin);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(bind: [u8; 4], allowed: &[&str]) -> NodeConfig {
        let mut config = NodeConfig::for_tests();
        config.bind = IpAddr::from(bind);
        config.node_name = "node1".into();
        config.advertise_host = "node1".into();
        config.allowed_hosts = allowed.iter().map(|s| s.to_string()).collect();
        config
    }

    #[test]
    fn authorities_parse_exactly() {
        let v4 = |a, b, c, d| Host::Ip(IpAddr::from([a, b, c, d]));
        assert_eq!(
            parse_authority("127.0.0.1:80"),
            Some((v4(127, 0, 0, 1), Some(80)))
        );
        assert_eq!(
            parse_authority("[::1]:8080"),
            Some((Host::Ip(Ipv6Addr::LOCALHOST.into()), Some(8080)))
        );
        assert_eq!(
            parse_authority("[::1]"),
            Some((Host::Ip(Ipv6Addr::LOCALHOST.into()), None))
        );
        assert_eq!(
            parse_authority("LocalHost"),
            Some((Host::Name("LocalHost"), None))
        );
        assert_eq!(
            parse_authority("127.0.0.1.evil.example"),
            Some((Host::Name("127.0.0.1.evil.example"), None))
        );
        for unreadable in [
            "",
            ":80",
            "user@localhost",
            "localhost:",
            "localhost:99999",
            "localhost:8a",
            "::1",
            "[::1",
            "[::1]x",
            "[127.0.0.1]",
            "local host",
            "localhost/x",
            "a..b",
            "localhost:80:80",
            "localhost?x",
        ] {
            assert_eq!(parse_authority(unreadable), None, "{unreadable}");
        }
        assert_eq!(
            parse_origin("https://[::1]:3000"),
            Some((Host::Ip(Ipv6Addr::LOCALHOST.into()), Some(3000)))
        );
        for unreadable in [
            "null",
            "file://x",
            "http://localhost/",
            "http://u@localhost",
            "localhost",
        ] {
            assert_eq!(parse_origin(unreadable), None, "{unreadable}");
        }
    }

    /// (bind, allowed hosts, Host, Origin, verdict).
    type Case = (
        [u8; 4],
        &'static [&'static str],
        Option<&'static str>,
        Option<&'static str>,
        Result<(), Refusal>,
    );

    #[test]
    fn hosts_and_origins_table() {
        let ok = Ok(());
        let host = Err(Refusal::Host);
        let origin = Err(Refusal::Origin);
        let lo = [127, 0, 0, 1];
        let any = [0, 0, 0, 0];
        let cases: &[Case] = &[
            (lo, &[], Some("127.0.0.1:8080"), None, ok),
            (lo, &[], Some("127.9.9.9"), None, ok),
            (lo, &[], Some("[::1]:8080"), None, ok),
            (lo, &[], Some("LOCALHOST:8080"), None, ok),
            (lo, &[], None, None, host),
            (lo, &[], Some("127.0.0.1.evil.example"), None, host),
            (lo, &[], Some("localhost.evil.example:8080"), None, host),
            (lo, &[], Some("evil.example"), None, host),
            (lo, &[], Some("user@127.0.0.1"), None, host),
            (lo, &[], Some("node1:8080"), None, host),
            (lo, &[], Some("10.0.0.1"), None, host),
            (
                lo,
                &["mcp.example", "10.0.0.1"],
                Some("MCP.example:443"),
                None,
                ok,
            ),
            (lo, &["mcp.example", "10.0.0.1"], Some("10.0.0.1"), None, ok),
            (
                lo,
                &[],
                Some("localhost"),
                Some("http://localhost:3000"),
                ok,
            ),
            (lo, &[], Some("localhost"), Some("http://[::1]:3000"), ok),
            (
                lo,
                &[],
                Some("localhost"),
                Some("http://127.0.0.1.evil.example"),
                origin,
            ),
            (
                lo,
                &[],
                Some("localhost"),
                Some("http://localhost.evil.example"),
                origin,
            ),
            (lo, &[], Some("localhost"), Some("null"), origin),
            (
                lo,
                &[],
                Some("localhost"),
                Some("https://evil.example"),
                origin,
            ),
            (any, &[], Some("node1:8080"), None, ok),
            (any, &[], Some("172.18.0.3:8080"), None, ok),
            (any, &[], Some("[fd00::3]:8080"), None, ok),
            (any, &[], Some("node2:8080"), None, host),
            (any, &[], Some("evil.example"), None, host),
            (any, &[], Some("node1:8080"), Some("http://node1:8080"), ok),
            (
                any,
                &[],
                Some("172.18.0.3:8080"),
                Some("http://172.18.0.3:3000"),
                ok,
            ),
            (
                any,
                &[],
                Some("node1:8080"),
                Some("http://172.18.0.9"),
                origin,
            ),
            (
                any,
                &[],
                Some("node1:8080"),
                Some("http://evil.example"),
                origin,
            ),
        ];
        for (bind, allowed, h, o, verdict) in cases {
            assert_eq!(
                check(&config(*bind, allowed), *h, *o),
                *verdict,
                "bind {bind:?} allowed {allowed:?} Host {h:?} Origin {o:?}"
            );
        }
    }
}
