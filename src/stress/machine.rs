//! Facts about the machine and processes, read from /proc: cores, memory, kernel, CPU time.

use serde::{Deserialize, Serialize};
use std::fs;
use std::io;

/// The machine a run happened on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineFacts {
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// CPU model name from /proc/cpuinfo, if present.
    pub cpu_model: Option<String>,
    /// Total memory in bytes (MemTotal).
    pub memory_bytes: Option<u64>,
    /// Kernel release (/proc/sys/kernel/osrelease).
    pub kernel: Option<String>,
    /// Hard limit on open files per process.
    pub open_files_hard_limit: Option<u64>,
}

impl MachineFacts {
    /// Reads the facts of this machine.
    pub fn read() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let limits = fs::read_to_string("/proc/self/limits").unwrap_or_default();
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string()),
            memory_bytes: meminfo_kib(&meminfo, "MemTotal").map(|kib| kib * 1024),
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .map(|s| s.trim().to_string()),
            open_files_hard_limit: limits
                .lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|v| v.parse().ok()),
        }
    }
}

/// A `Key: N kB` value from /proc/meminfo text.
pub fn meminfo_kib(meminfo: &str, key: &str) -> Option<u64> {
    meminfo
        .lines()
        .find(|l| l.split(':').next() == Some(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Clock ticks per second of /proc CPU times, from the auxiliary vector (AT_CLKTCK).
pub fn clock_ticks_per_second() -> u64 {
    const AT_CLKTCK: u64 = 17;
    let auxv = fs::read("/proc/self/auxv").unwrap_or_default();
    auxv.chunks_exact(16)
        .map(|pair| {
            let key = u64::from_ne_bytes(pair[..8].try_into().expect("8 bytes"));
            let value = u64::from_ne_bytes(pair[8..].try_into().expect("8 bytes"));
            (key, value)
        })
        .find(|(key, _)| *key == AT_CLKTCK)
        .map_or(100, |(_, value)| value)
}

/// User + system CPU ticks from the text of `/proc/<pid>/stat`.
pub fn cpu_ticks_from_stat(stat: &str) -> Option<u64> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the stat line, i.e. 11 and 12 after the name.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
pub fn process_cpu_seconds(pid: &str) -> io::Result<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let ticks = cpu_ticks_from_stat(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad stat"))?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// Peak resident memory (`VmHWM`) of process `pid` ("self" for this one), bytes.
pub fn process_peak_memory_bytes(pid: &str) -> io::Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    meminfo_kib(&status, "VmHWM")
        .map(|kib| kib * 1024)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no VmHWM"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_name() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 1000 10";
        assert_eq!(cpu_ticks_from_stat(stat), Some(10));
    }

    #[test]
    fn meminfo_values() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\n";
        assert_eq!(meminfo_kib(text, "MemTotal"), Some(24_000_000));
        assert_eq!(meminfo_kib(text, "MemFree"), Some(100));
        assert_eq!(meminfo_kib(text, "Swap"), None);
    }

    #[test]
    fn this_machine_has_facts() {
        let facts = MachineFacts::read();
        assert!(facts.cores >= 1);
        assert!(facts.memory_bytes.unwrap_or(0) > 0);
        assert!(process_cpu_seconds("self").is_ok());
        assert!(process_peak_memory_bytes("self").unwrap() > 0);
        assert!(clock_ticks_per_second() > 0);
    }
}
