//! Figures of this process from `/proc/self/stat`: what the `process_*` metrics report
//! and what the CPU budget of collections measures.

/// The fields of `/proc/<pid>/stat` the exporter uses, in clock ticks and pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// User and system CPU time of the process (`utime` + `stime`).
    pub cpu_ticks: u64,
    /// User and system CPU time of the child processes it waited for (`cutime` +
    /// `cstime`).
    pub children_cpu_ticks: u64,
    /// When the process started, after boot (`starttime`).
    pub start_ticks: u64,
    /// Resident set (`rss`), in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/<pid>/stat`. The command name between parentheses may hold anything,
/// parentheses and spaces included: the fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<Stat> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // Fields of proc(5), numbered from 1; the state, field 3, is the first after `)`.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        cpu_ticks: field(14)? + field(15)?,
        children_cpu_ticks: field(16)? + field(17)?,
        start_ticks: field(22)?,
        rss_pages: field(24)?,
    })
}

/// This process's [`Stat`], or `None` where `/proc` cannot be read.
pub fn self_stat() -> Option<Stat> {
    parse_stat(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Seconds in `ticks` clock ticks.
pub fn seconds(ticks: u64) -> f64 {
    ticks as f64 / rustix::param::clock_ticks_per_second().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 3000 0 0 0 150 50 7 3 20 0 \
                    9 0 123456 200000000 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 \
                    0 0 0 0 0\n";
        let parsed = parse_stat(stat).expect("a stat line");
        assert_eq!(
            parsed,
            Stat {
                cpu_ticks: 200,
                children_cpu_ticks: 10,
                start_ticks: 123_456,
                rss_pages: 2048
            }
        );
        assert_eq!(parse_stat("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_has_a_stat() {
        assert!(self_stat().is_some_and(|s| s.rss_pages > 0));
    }
}
