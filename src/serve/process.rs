//! The exporter's own process metrics (`process_cpu_seconds_total`, …), read from
//! `/proc/self` on every scrape as client libraries do, and rendered apart from the
//! collection's exposition: the few lines are appended to it per scrape (and compressed on
//! their own for gzip), so that the exposition stays compressed once per collection.

use serde::{Deserialize, Serialize};

use crate::exposition::{Exposition, ExpositionBuilder, MetricType, Storage};
use crate::metrics::names::process as names;
use crate::procfs;

/// What one process reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu_seconds: f64,
    /// Resident set size.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft open-file limit; `None` when unlimited.
    pub max_fds: Option<u64>,
    /// Start time, in seconds since the epoch.
    pub start_time_seconds: f64,
}

/// Why the process' figures could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A file of `/proc` could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file of `/proc` does not have the kernel's format.
    #[error("cannot parse {0}")]
    Parse(&'static str),
}

/// The calling process' figures.
pub fn read_self() -> Result<ProcessStats, ProcessError> {
    let read = |path: &'static str| {
        std::fs::read_to_string(path).map_err(|source| ProcessError::Read { path, source })
    };
    let stat = read("/proc/self/stat")?;
    let boot_time = boot_time(&read("/proc/stat")?).ok_or(ProcessError::Parse("/proc/stat"))?;
    let page = rustix::param::page_size() as u64;
    let stat = procfs::parse_stat(&stat).ok_or(ProcessError::Parse("/proc/self/stat"))?;
    let open_fds = super::fds::open_now().ok_or(ProcessError::Read {
        path: "/proc/self/fd",
        source: std::io::Error::other("unreadable"),
    })?;
    Ok(ProcessStats {
        cpu_seconds: procfs::seconds(stat.cpu_ticks),
        resident_bytes: stat.rss_pages * page,
        open_fds,
        max_fds: rustix::process::getrlimit(rustix::process::Resource::Nofile).current,
        start_time_seconds: boot_time as f64 + procfs::seconds(stat.start_ticks),
    })
}

/// `btime` of `/proc/stat`: the boot time in seconds since the epoch.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|t| t.trim().parse().ok())
}

/// The families of `processes` (label value, figures), in that order.
pub fn render(processes: &[(&str, ProcessStats)]) -> Exposition {
    let mut builder = ExpositionBuilder::new(Storage::Plain);
    type Value = fn(&ProcessStats) -> Option<f64>;
    let families: [((&str, &str), MetricType, Value); 5] = [
        (names::CPU_SECONDS, MetricType::Counter, |s| {
            Some(s.cpu_seconds)
        }),
        (names::RESIDENT_MEMORY, MetricType::Gauge, |s| {
            Some(s.resident_bytes as f64)
        }),
        (names::OPEN_FDS, MetricType::Gauge, |s| {
            Some(s.open_fds as f64)
        }),
        (names::MAX_FDS, MetricType::Gauge, |s| {
            s.max_fds.map(|m| m as f64)
        }),
        (names::START_TIME, MetricType::Gauge, |s| {
            Some(s.start_time_seconds)
        }),
    ];
    for ((name, help), metric_type, value) in families {
        let mut family = builder.family(name, help, metric_type);
        for (process, stats) in processes {
            if let Some(value) = value(stats) {
                family.sample(&[("process", process)], value);
            }
        }
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_time_is_read_from_proc_stat() {
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\nprocesses 5\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn this_process_reads_plausibly() {
        let stats = read_self().expect("reads /proc/self");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after the epoch")
            .as_secs_f64();
        assert!(stats.start_time_seconds <= now + 1.0 && stats.start_time_seconds > now - 3600.0);
        assert!(
            stats.open_fds >= 3 && stats.resident_bytes > 1 << 20,
            "{stats:?}"
        );
    }

    #[test]
    fn every_family_has_a_sample_per_process() {
        let stats = ProcessStats {
            cpu_seconds: 1.5,
            resident_bytes: 10,
            open_fds: 7,
            max_fds: None,
            start_time_seconds: 1.7e9,
        };
        let text = String::from_utf8(
            render(&[("collector", stats), ("server", stats)])
                .to_vec(crate::exposition::Format::Text),
        )
        .expect("utf-8");
        assert!(
            text.contains("process_cpu_seconds_total{process=\"server\"} 1.5\n"),
            "{text}"
        );
        assert!(
            text.contains("process_open_fds{process=\"collector\"} 7\n"),
            "{text}"
        );
        assert!(
            !text.contains("process_max_fds"),
            "unlimited is left out: {text}"
        );
    }
}
