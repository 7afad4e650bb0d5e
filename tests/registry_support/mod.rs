//! Shared by the registry tests: a distribution registry (Debian's `docker-registry`) of the
//! test's own, on an address it picks, storing under a temporary directory, and a plain HTTP/1.0
//! client for its API. Test files that use it also use `cluster_support`.

#![allow(dead_code)] // each test file uses a different part

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cluster_support::eventually;

pub const REGISTRY: &str = "/usr/bin/docker-registry";

/// A `docker-registry serve` of our own, storing under a temporary directory; killed (and
/// waited for) when dropped.
pub struct Registry {
    child: Child,
    /// Where it listens.
    pub ip: IpAddr,
    pub port: u16,
    dir: tempfile::TempDir,
}

/// A free TCP port: bound and released; the registry takes it a moment later.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Registry {
    /// On 127.0.0.1, which Docker trusts over plain HTTP by itself.
    pub fn start_on_loopback() -> Self {
        Self::start_on(IpAddr::from([127, 0, 0, 1]), free_port())
    }

    /// On `ip:port`.
    pub fn start_on(ip: IpAddr, port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        std::fs::create_dir(&storage).unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {}\n",
                storage.display(),
                SocketAddr::new(ip, port)
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(REGISTRY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let registry = Registry {
            child,
            ip,
            port,
            dir,
        };
        let up = eventually(Duration::from_secs(20), || {
            registry.get("/v2/", &[]).is_some_and(|r| r.status == 200)
        });
        assert!(up, "the registry did not answer: {}", registry.log());
        registry
    }

    /// `ip:port`, as a registry reference starts.
    pub fn address(&self) -> String {
        SocketAddr::new(self.ip, self.port).to_string()
    }

    /// Fails the test with the command's output and the registry's log unless `output` succeeded.
    pub fn assert_success(&self, output: &std::process::Output) {
        assert!(
            output.status.success(),
            "{}\n--- registry\n{}",
            crate::cluster_support::text(output),
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// A plain HTTP/1.0 GET (the registry closes the connection after its answer).
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Option<HttpResponse> {
        let mut stream = TcpStream::connect((self.ip, self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = format!("GET {path} HTTP/1.0\r\nHost: {}\r\n", self.address());
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).ok()?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).ok()?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, body) = text.split_once("\r\n\r\n")?;
        let mut lines = head.lines();
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        Some(HttpResponse {
            status,
            headers,
            body: body.to_string(),
        })
    }

    pub fn json(&self, path: &str) -> serde_json::Value {
        let response = self.get(path, &[]).expect("the registry answers");
        serde_json::from_str(&response.body).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// The digest the registry serves for `repo:tag` (what an engine pulling it gets).
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> String {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.index.v1+json";
        let response = self
            .get(
                &format!("/v2/{repo}/manifests/{tag}"),
                &[("Accept", accept)],
            )
            .expect("the registry answers");
        assert_eq!(response.status, 200, "{repo}:{tag}: {}", response.body);
        response.headers["docker-content-digest"].clone()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// True when `docker-registry` is installed; a loud SKIP when not, a failure under CI.
pub fn registry_available() -> bool {
    if Path::new(REGISTRY).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "{REGISTRY} is required under CI (apt-get install docker-registry; scripts/test.sh does)"
    );
    eprintln!(
        "SKIPPED: {REGISTRY} is missing (apt-get install docker-registry); the swarm registry test did not run"
    );
    false
}
