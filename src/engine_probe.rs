//! The short-lived container `validate --host` runs on a remote engine (a Colima VM, another
//! host) to read what no engine API reports: the open-file limit a node container gets, its
//! network namespace's port range and listen backlog cap, the kernel's open-file ceilings. It
//! runs the node image's own `erlmcp-node limits` with the node's `nofile` ulimit, no network,
//! no capabilities and a read-only root, and is removed afterwards whatever happens.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::deploy_spec::{NODE_BINARY_IN_IMAGE, NODE_USER};

/// What `erlmcp-node limits` printed inside the probe container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct EngineLimits {
    /// `RLIMIT_NOFILE` (soft, hard) the container got.
    pub nofile: Option<(u64, u64)>,
    /// A fresh network namespace's `ip_local_port_range` (before the node's own sysctls).
    pub ephemeral_ports: Option<(u32, u32)>,
    /// A fresh network namespace's `somaxconn` (before the node's own sysctls).
    pub somaxconn: Option<u64>,
    /// The engine machine's `fs.file-max`.
    pub file_max: Option<u64>,
    /// The engine machine's `fs.nr_open`.
    pub nr_open: Option<u64>,
    /// CPUs the container may use.
    pub cpus: usize,
    /// The engine machine's architecture.
    pub arch: String,
}

/// Why the probe read nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeError {
    /// In the user's terms.
    pub message: String,
    /// The engine would not start a container with the node's `nofile`: nodes will not start
    /// either.
    pub nofile_refused: bool,
}

impl From<String> for ProbeError {
    fn from(message: String) -> Self {
        ProbeError {
            message,
            nofile_refused: false,
        }
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// How long the whole probe may take: it starts one process that prints one line.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `erlmcp-node limits` in a container of `image` on the engine at `socket`, with the
/// open-file limit `nofile` (soft = hard, as nodes get it). An error says why in the user's
/// terms: the image is not there yet, the engine refused the limit, the probe did not answer.
pub fn probe(socket: &Path, image: &str, nofile: u64) -> Result<EngineLimits, ProbeError> {
    let (status, _) = request(socket, "GET", &format!("/images/{image}/json"), None)?;
    if status == 404 {
        return Err(format!(
            "the node image {image} is not on the engine yet (`erlmcp-gen apply` builds it; then `validate --host` probes the engine)"
        )
        .into());
    }
    let name = format!(
        "erlmcp-probe-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let body = serde_json::json!({
        "Image": image,
        "Entrypoint": [NODE_BINARY_IN_IMAGE],
        "Cmd": ["limits"],
        "User": NODE_USER,
        // A TTY gives the output raw, without the engine's stream multiplexing.
        "Tty": true,
        "Labels": { "erlmcp.probe": "limits" },
        "HostConfig": {
            "NetworkMode": "none",
            "CapDrop": ["ALL"],
            "ReadonlyRootfs": true,
            "SecurityOpt": ["no-new-privileges"],
            "Memory": 64u64 << 20,
            "PidsLimit": 16,
            "Ulimits": [{ "Name": "nofile", "Soft": nofile, "Hard": nofile }],
        },
    });
    let (status, created) = request(
        socket,
        "POST",
        &format!("/containers/create?name={name}"),
        Some(&body.to_string()),
    )?;
    if status != 201 {
        return Err(format!(
            "the engine refused the probe container: {}",
            engine_message(&created)
        )
        .into());
    }
    let outcome = run(socket, &name, nofile);
    let _ = request(
        socket,
        "DELETE",
        &format!("/containers/{name}?force=1"),
        None,
    );
    outcome
}

/// Starts the created probe, waits for it and parses its one line.
fn run(socket: &Path, name: &str, nofile: u64) -> Result<EngineLimits, ProbeError> {
    let (status, started) = request(socket, "POST", &format!("/containers/{name}/start"), None)?;
    if status != 204 && status != 304 {
        return Err(ProbeError {
            message: format!(
                "the engine could not start a container with nofile {nofile}: {}",
                engine_message(&started)
            ),
            nofile_refused: true,
        });
    }
    let (_, waited) = request(socket, "POST", &format!("/containers/{name}/wait"), None)?;
    let exit = serde_json::from_str::<serde_json::Value>(&waited)
        .ok()
        .and_then(|w| w["StatusCode"].as_i64());
    let (_, output) = request(
        socket,
        "GET",
        &format!("/containers/{name}/logs?stdout=1&stderr=1"),
        None,
    )?;
    if exit != Some(0) {
        return Err(format!("the probe exited with {exit:?}: {}", output.trim()).into());
    }
    Ok(parse_limits(&output)?)
}

/// The probe's JSON line out of its output.
fn parse_limits(output: &str) -> Result<EngineLimits, String> {
    let line = output
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('{'))
        .ok_or_else(|| format!("the probe printed no limits: {:?}", output.trim()))?;
    serde_json::from_str(line).map_err(|e| format!("the probe's answer did not parse: {e}"))
}

/// The `message` of an engine error body, or the body itself.
fn engine_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().to_string())
}

/// One request to the engine's API over its Unix socket: (status, body). HTTP/1.0, so the
/// body ends when the engine closes the connection (no chunking to undo).
fn request(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut stream = UnixStream::connect(socket)
        .map_err(|e| format!("cannot connect to {}: {e}", socket.display()))?;
    stream
        .set_read_timeout(Some(PROBE_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(PROBE_TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .map_err(|e| format!("the engine did not take the request: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(4 << 20)
        .read_to_end(&mut response)
        .map_err(|e| format!("the engine did not answer {method} {path}: {e}"))?;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("unexpected answer to {method} {path}: {head:?}"))?;
    Ok((status, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limits_line_is_found_after_whatever_the_container_printed_first() {
        let output = "warning: something\r\n{\"nofile\":[1000,1000],\"ephemeral_ports\":[32768,60999],\"somaxconn\":4096,\"file_max\":9223372036854775807,\"nr_open\":1048576,\"cpus\":2,\"arch\":\"aarch64\"}\r\n";
        let limits = parse_limits(output).unwrap();
        assert_eq!(limits.nofile, Some((1000, 1000)));
        assert_eq!(limits.somaxconn, Some(4096));
        assert_eq!(limits.arch, "aarch64");
        assert!(parse_limits("exec format error").is_err());
    }

    #[test]
    fn an_engine_error_is_shown_by_its_message() {
        assert_eq!(
            engine_message(r#"{"message":"No such image: x"}"#),
            "No such image: x"
        );
        assert_eq!(engine_message("plain text\n"), "plain text");
    }
}
