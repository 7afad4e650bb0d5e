//! The node's own process figures for `/metrics` (CPU, memory, descriptors, threads), each
//! read in constant time however many connections the node holds.
//!
//! The prometheus crate's process collector counts open descriptors by listing
//! `/proc/self/fd`: time per descriptor on every scrape, and a /proc inode and dentry cached per
//! descriptor (about 0.9 KB each, so a gigabyte of kernel memory for a million sessions'
//! worth of node sockets). Since Linux 6.2 the size of that directory is the count.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, IntGauge, Opts};

/// How many descriptors this process has open: the size of `/proc/self/fd` (Linux 6.2 and
/// later), else a listing of it.
pub fn open_fds() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(meta) if meta.len() > 0 => Some(meta.len()),
        Ok(_) => std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64),
        Err(_) => None,
    }
}

/// A `kB` field of `/proc/self/status`, in bytes (or a plain count for `Threads:`).
fn status_field(status: &str, name: &str, scale: i64) -> Option<i64> {
    let line = status.lines().find(|l| l.starts_with(name))?;
    let value: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(value * scale)
}

/// The standard `process_*` metrics of this process.
pub struct ProcessMetrics {
    cpu_seconds: Counter,
    open_fds: IntGauge,
    max_fds: IntGauge,
    resident_memory: IntGauge,
    virtual_memory: IntGauge,
    threads: IntGauge,
    /// CPU seconds already added to the counter.
    cpu_counted: Mutex<f64>,
    descs: Vec<Desc>,
}

impl ProcessMetrics {
    /// The collector, its metrics named as Prometheus clients name them.
    pub fn new() -> prometheus::Result<Self> {
        let cpu_seconds = Counter::with_opts(Opts::new(
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
        ))?;
        let gauge = |name: &str, help: &str| IntGauge::with_opts(Opts::new(name, help));
        let open_fds = gauge("process_open_fds", "Number of open file descriptors.")?;
        let max_fds = gauge(
            "process_max_fds",
            "Maximum number of open file descriptors.",
        )?;
        let resident_memory = gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
        )?;
        let virtual_memory = gauge(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
        )?;
        let threads = gauge("process_threads", "Number of OS threads in the process.")?;
        let descs = [
            cpu_seconds.desc(),
            open_fds.desc(),
            max_fds.desc(),
            resident_memory.desc(),
            virtual_memory.desc(),
            threads.desc(),
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        Ok(Self {
            cpu_seconds,
            open_fds,
            max_fds,
            resident_memory,
            virtual_memory,
            threads,
            cpu_counted: Mutex::new(0.0),
            descs,
        })
    }

    fn refresh(&self) {
        use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage};
        if let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) {
            let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            let total = seconds(usage.user_time()) + seconds(usage.system_time());
            let mut counted = self.cpu_counted.lock().unwrap_or_else(|e| e.into_inner());
            if total > *counted {
                self.cpu_seconds.inc_by(total - *counted);
                *counted = total;
            }
        }
        if let Some(open) = open_fds() {
            self.open_fds.set(open as i64);
        }
        if let Ok((soft, _hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            self.max_fds.set(i64::try_from(soft).unwrap_or(i64::MAX));
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(rss) = status_field(&status, "VmRSS:", 1024) {
            self.resident_memory.set(rss);
        }
        if let Some(size) = status_field(&status, "VmSize:", 1024) {
            self.virtual_memory.set(size);
        }
        if let Some(threads) = status_field(&status, "Threads:", 1) {
            self.threads.set(threads);
        }
    }
}

impl Collector for ProcessMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        [
            self.cpu_seconds.collect(),
            self.open_fds.collect(),
            self.max_fds.collect(),
            self.resident_memory.collect(),
            self.virtual_memory.collect(),
            self.threads.collect(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_descriptors_are_counted_without_listing_them_and_agree_with_a_listing() {
        let files: Vec<std::fs::File> = (0..32)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        let counted = open_fds().unwrap();
        let listed = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
        // Other test threads open descriptors too; the listing itself holds one.
        assert!(counted >= 32, "{counted}");
        assert!(counted.abs_diff(listed) <= 8, "{counted} against {listed}");
        drop(files);
    }

    #[test]
    fn every_figure_is_collected() {
        let metrics = ProcessMetrics::new().unwrap();
        let families = metrics.collect();
        let names: Vec<&str> = families.iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "process_cpu_seconds_total",
                "process_open_fds",
                "process_max_fds",
                "process_resident_memory_bytes",
                "process_virtual_memory_bytes",
                "process_threads"
            ]
        );
        let value = |i: usize| families[i].get_metric()[0].get_gauge().get_value();
        assert!(value(1) > 0.0 && value(2) >= value(1) && value(3) > 0.0 && value(5) >= 1.0);
    }

    #[test]
    fn status_fields_are_read_in_bytes() {
        let status = "Name:\tx\nVmSize:\t  2048 kB\nVmRSS:\t   100 kB\nThreads:\t3\n";
        assert_eq!(status_field(status, "VmRSS:", 1024), Some(102_400));
        assert_eq!(status_field(status, "Threads:", 1), Some(3));
        assert_eq!(status_field(status, "VmSwap:", 1024), None);
    }
}
