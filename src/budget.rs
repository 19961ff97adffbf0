//! The CPU budget of collections: a source whose collections cost more CPU time than the
//! budget allows at `--collect-interval` waits longer between them, so that a node with
//! 100k rules read by `iptables-save` does not keep a core busy for the exporter.

use std::time::Duration;

/// Default of `--collect-cpu-budget`: 5% of one core.
pub const DEFAULT_SHARE: f64 = 0.05;

/// The pauses between collections of one source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// The configured pause, and the shortest.
    pub interval: Duration,
    /// Share of one core collections may use on average; 0 turns the budget off.
    pub share: f64,
}

impl Budget {
    /// The pause after a collection that cost `cost` of CPU time: the configured interval,
    /// or the pause that makes `cost / (cost + pause)` the budget's share when that is
    /// longer.
    pub fn pause(&self, cost: Duration) -> Duration {
        if self.share <= 0.0 {
            return self.interval;
        }
        let cost = cost.as_secs_f64();
        let needed = cost / self.share - cost;
        Duration::try_from_secs_f64(needed)
            .map_or(self.interval, |needed| needed.max(self.interval))
    }
}

/// CPU time (user and system) used so far by this process and by the child processes it
/// has waited for, from `/proc/self/stat`; `None` where that cannot be read. The whole
/// process's, so that work running beside a collection counts towards it: the budget errs
/// on the side of waiting longer.
pub fn cpu_time() -> Option<Duration> {
    let stat = crate::procfs::self_stat()?;
    let seconds = crate::procfs::seconds(stat.cpu_ticks + stat.children_cpu_ticks);
    Some(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_cheap_collection_keeps_the_interval() {
        let budget = Budget {
            interval: 5 * SECOND,
            share: 0.05,
        };
        assert_eq!(budget.pause(Duration::from_millis(20)), 5 * SECOND);
    }

    #[test]
    fn a_costly_collection_stretches_the_pause_to_the_budget() {
        let budget = Budget {
            interval: 5 * SECOND,
            share: 0.05,
        };
        // 12 s of CPU, as iptables-save takes on 100k rules: 5% means 228 s of pause.
        let pause = budget.pause(12 * SECOND);
        assert_eq!(pause.as_secs(), 228);
        let share = 12.0 / (12.0 + pause.as_secs_f64());
        assert!((share - 0.05).abs() < 1e-9, "{share}");
    }

    #[test]
    fn a_zero_budget_is_off() {
        let budget = Budget {
            interval: SECOND,
            share: 0.0,
        };
        assert_eq!(budget.pause(100 * SECOND), SECOND);
    }

    #[test]
    fn the_process_has_used_some_cpu_time() {
        let before = cpu_time().expect("/proc/self/stat");
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        assert!(x > 0);
        assert!(cpu_time().expect("/proc/self/stat") >= before);
    }
}
