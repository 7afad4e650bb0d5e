//! The cluster secret and the heartbeat MACs it makes.
//!
//! Every heartbeat carries an HMAC-SHA256 under the secret over its send time and body, and
//! every reply one over the request's MAC and the reply body, so the secret never travels, a
//! forged or altered message is refused, and a reply cannot be replayed to another request.
//! Replay of a request is stopped by its send time: it must lie within the replay window
//! (`--heartbeat-max-skew`, default [`DEFAULT_REPLAY_WINDOW`]) of the receiver's clock and be later than the last one accepted from the same member (the member
//! table keeps that; see [`crate::membership`]).
//!
//! The secret is read from a file (`--cluster-secret-file`), never from an environment value:
//! the same file is a Docker or compose secret at `/run/secrets/erlmcp_cluster_secret`, a
//! Kubernetes Secret mounted as a file, or a 0600 file beside a native node.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Header carrying a heartbeat's (or a reply's) MAC, lowercase hex.
pub const MAC_HEADER: &str = "x-erlmcp-mac";
/// Header carrying a heartbeat's send time, ms since the Unix epoch.
pub const SENT_HEADER: &str = "x-erlmcp-sent-ms";

/// By default a heartbeat whose send time is further than this from the receiver's clock is
/// refused (stale, or a clock too far off). Generous for NTP-synced hosts, short next to the
/// 10-minute forget time, which is what makes a replay after forgetting useless.
pub const DEFAULT_REPLAY_WINDOW: Duration = Duration::from_secs(30);

/// Secrets shorter than this (after trimming whitespace) are refused: 32 bytes is what
/// `head -c32 /dev/urandom | base64` or `openssl rand -hex 32` gives at least.
pub const MIN_SECRET_BYTES: usize = 32;
/// A secret file longer than this is refused unread (the file is one line).
pub const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Domain separation: a request MAC can never pass as a reply MAC or the other way round.
const REQUEST_CONTEXT: &[u8] = b"erlmcp heartbeat v1\n";
const REPLY_CONTEXT: &[u8] = b"erlmcp heartbeat reply v1\n";

/// The per-cluster secret. Its `Debug` never shows the bytes, so configs can be logged.
#[derive(Clone)]
pub struct ClusterSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSecret(redacted)")
    }
}

impl ClusterSecret {
    /// The secret in `text` with surrounding whitespace (a trailing newline) trimmed.
    pub fn from_bytes(text: &[u8]) -> Result<Self, String> {
        let key = text.trim_ascii();
        if key.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "the cluster secret has {} bytes; it needs at least {MIN_SECRET_BYTES} \
                 (e.g. `head -c32 /dev/urandom | base64`)",
                key.len()
            ));
        }
        Ok(ClusterSecret { key: key.to_vec() })
    }

    /// Reads the secret file at `path` (one line, at most [`MAX_SECRET_FILE_BYTES`]).
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let size = std::fs::metadata(path)
            .map_err(|e| format!("cluster secret file {shown}: {e}"))?
            .len();
        if size > MAX_SECRET_FILE_BYTES {
            return Err(format!(
                "cluster secret file {shown} has {size} bytes; at most {MAX_SECRET_FILE_BYTES}"
            ));
        }
        let text = std::fs::read(path).map_err(|e| format!("cluster secret file {shown}: {e}"))?;
        Self::from_bytes(&text).map_err(|e| format!("cluster secret file {shown}: {e}"))
    }

    /// A fixed secret for tests.
    pub fn for_tests() -> Self {
        Self::from_bytes(b"erlmcp test secret: never use it outside tests").expect("long enough")
    }

    fn mac(&self, context: &[u8], header: &[u8], body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(context);
        mac.update(header);
        mac.update(b"\n");
        mac.update(body);
        mac
    }

    /// The MAC header value of a heartbeat sent at `sent_ms` with `body`.
    pub fn sign_request(&self, sent_ms: u64, body: &[u8]) -> String {
        let tag = self.mac(REQUEST_CONTEXT, sent_ms.to_string().as_bytes(), body);
        hex::encode(tag.finalize().into_bytes())
    }

    /// True when `mac_hex` is the MAC of a heartbeat sent at `sent_ms` with `body`
    /// (compared in constant time).
    pub fn verify_request(&self, sent_ms: u64, body: &[u8], mac_hex: &str) -> bool {
        let Ok(tag) = hex::decode(mac_hex) else {
            return false;
        };
        self.mac(REQUEST_CONTEXT, sent_ms.to_string().as_bytes(), body)
            .verify_slice(&tag)
            .is_ok()
    }

    /// The MAC header value of the reply `body` to the heartbeat whose MAC was `request_mac`.
    pub fn sign_reply(&self, request_mac: &str, body: &[u8]) -> String {
        let tag = self.mac(REPLY_CONTEXT, request_mac.as_bytes(), body);
        hex::encode(tag.finalize().into_bytes())
    }

    /// True when `mac_hex` is the MAC of reply `body` to the heartbeat whose MAC was
    /// `request_mac` (compared in constant time).
    pub fn verify_reply(&self, request_mac: &str, body: &[u8], mac_hex: &str) -> bool {
        let Ok(tag) = hex::decode(mac_hex) else {
            return false;
        };
        self.mac(REPLY_CONTEXT, request_mac.as_bytes(), body)
            .verify_slice(&tag)
            .is_ok()
    }
}

/// How a node admits members.
#[derive(Debug, Clone)]
pub enum MembershipAuth {
    /// Heartbeats and replies carry HMACs under this secret; anything else is refused.
    Secret(ClusterSecret),
    /// Nothing is authenticated: anyone who reaches the API port can join and have sessions
    /// proxied to an address of their choosing. Only by `--insecure-open-membership`.
    InsecureOpen,
    /// No secret and no opt-in: the node serves alone, sends no heartbeats and refuses all.
    Disabled,
}

impl MembershipAuth {
    /// True unless membership is disabled.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, MembershipAuth::Disabled)
    }
}

/// Now, in ms since the Unix epoch (heartbeat send times compare across hosts, so wall clock).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// True when `sent_ms` lies within `window` of `now_ms`, either side.
pub fn is_fresh(sent_ms: u64, now_ms: u64, window: Duration) -> bool {
    u128::from(sent_ms.abs_diff(now_ms)) <= window.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_mac_verifies_only_for_its_own_time_body_and_secret() {
        let secret = ClusterSecret::for_tests();
        let mac = secret.sign_request(1000, b"{}");
        assert!(secret.verify_request(1000, b"{}", &mac));
        assert!(!secret.verify_request(1001, b"{}", &mac));
        assert!(!secret.verify_request(1000, b"{ }", &mac));
        assert!(!secret.verify_request(1000, b"{}", "not hex"));
        assert!(!secret.verify_request(1000, b"{}", &mac[..10]));
        let other = ClusterSecret::from_bytes(&[b'x'; 40]).unwrap();
        assert!(!other.verify_request(1000, b"{}", &mac));
    }

    #[test]
    fn a_reply_mac_is_bound_to_its_request_and_never_passes_as_a_request_mac() {
        let secret = ClusterSecret::for_tests();
        let request = secret.sign_request(1000, b"{}");
        let reply = secret.sign_reply(&request, b"[]");
        assert!(secret.verify_reply(&request, b"[]", &reply));
        let other_request = secret.sign_request(1001, b"{}");
        assert!(!secret.verify_reply(&other_request, b"[]", &reply));
        assert!(!secret.verify_request(1000, b"{}", &secret.sign_reply("1000", b"{}")));
    }

    #[test]
    fn short_secrets_are_refused_and_whitespace_is_trimmed() {
        assert!(ClusterSecret::from_bytes(b"short\n").is_err());
        assert!(ClusterSecret::from_bytes(&[b' '; 64]).is_err());
        let a = ClusterSecret::from_bytes(b"0123456789abcdef0123456789abcdef\n").unwrap();
        let b = ClusterSecret::from_bytes(b"  0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(a.sign_request(1, b""), b.sign_request(1, b""));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let secret = ClusterSecret::from_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let shown = format!("{secret:?} {:?}", MembershipAuth::Secret(secret.clone()));
        assert!(!shown.contains("0123"), "{shown}");
    }

    #[test]
    fn files_are_read_trimmed_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(&good, "0123456789abcdef0123456789abcdef\n").unwrap();
        assert!(ClusterSecret::from_file(&good).is_ok());
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_SECRET_FILE_BYTES as usize + 1]).unwrap();
        assert!(
            ClusterSecret::from_file(&big)
                .unwrap_err()
                .contains("at most")
        );
        let missing = ClusterSecret::from_file(&dir.path().join("missing")).unwrap_err();
        assert!(missing.contains("missing"), "{missing}");
    }

    #[test]
    fn freshness_is_symmetric_around_now() {
        let now = 1_000_000;
        let w = DEFAULT_REPLAY_WINDOW;
        let window = w.as_millis() as u64;
        assert!(is_fresh(now - window, now, w));
        assert!(is_fresh(now + window, now, w));
        assert!(!is_fresh(now - window - 1, now, w));
        assert!(!is_fresh(now + window + 1, now, w));
    }
}
