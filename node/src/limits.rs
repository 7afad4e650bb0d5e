//! `erlmcp-node limits`: the limits a node would meet where it runs, read from inside (its own
//! `RLIMIT_NOFILE`, its network namespace's port range and listen backlog cap, the kernel's
//! open-file ceilings, CPUs), printed as one JSON line. `erlmcp-gen validate --host` runs it in
//! a short-lived container to learn a remote engine's (a Colima VM's) limits, which no API of
//! the engine reports.

use serde::Serialize;

/// What a process sees of its limits. `None` where a value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// `RLIMIT_NOFILE` (soft, hard).
    pub nofile: Option<(u64, u64)>,
    /// `net.ipv4.ip_local_port_range` of this network namespace.
    pub ephemeral_ports: Option<(u32, u32)>,
    /// `net.core.somaxconn` of this network namespace.
    pub somaxconn: Option<u64>,
    /// `fs.file-max`: open files the whole kernel allows.
    pub file_max: Option<u64>,
    /// `fs.nr_open`: the most any process's `RLIMIT_NOFILE` may be raised to.
    pub nr_open: Option<u64>,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// The machine's architecture (`uname -m`'s spelling, e.g. `x86_64`, `aarch64`).
    pub arch: &'static str,
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// Parses `ip_local_port_range`'s two numbers.
fn port_range(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split_whitespace().map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??))
}

/// Reads this process's limits.
pub fn read_limits() -> Limits {
    use nix::sys::resource::{Resource, getrlimit};
    Limits {
        nofile: getrlimit(Resource::RLIMIT_NOFILE).ok(),
        ephemeral_ports: read("/proc/sys/net/ipv4/ip_local_port_range")
            .as_deref()
            .and_then(port_range),
        somaxconn: read("/proc/sys/net/core/somaxconn").and_then(|s| s.parse().ok()),
        file_max: read("/proc/sys/fs/file-max").and_then(|s| s.parse().ok()),
        nr_open: read("/proc/sys/fs/nr_open").and_then(|s| s.parse().ok()),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        arch: std::env::consts::ARCH,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_range_is_two_numbers_separated_by_whitespace() {
        assert_eq!(port_range("32768\t60999"), Some((32768, 60999)));
        assert_eq!(port_range("32768"), None);
        assert_eq!(port_range("a b"), None);
    }

    #[test]
    fn this_process_reads_its_own_open_file_limit() {
        let limits = read_limits();
        let (soft, hard) = limits.nofile.expect("RLIMIT_NOFILE");
        assert!(soft <= hard);
        assert!(limits.cpus >= 1);
    }
}
