//! Counters of two readings → rates. A series new in the later reading has no rate yet, one
//! gone from it has none at all, and a counter that went down (`iptables -Z`, a rule
//! replaced under the same key) started again from zero in between, as Prometheus'
//! `rate()` takes it: never a negative or wrapped-around rate.

use super::series::{Key, KeyMap, Snapshot};
use crate::ruleset::Counters;

/// Packets and bytes per second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rate {
    /// Packets per second.
    pub packets: f64,
    /// Bytes per second.
    pub bytes: f64,
}

impl std::ops::AddAssign for Rate {
    fn add_assign(&mut self, other: Rate) {
        self.packets += other.packets;
        self.bytes += other.bytes;
    }
}

/// The rate of each series of `current` since `previous`, in `current`'s order: `None` for
/// a series `previous` does not have, and for every series when no time passed between them.
pub fn rates(previous: &Snapshot, current: &Snapshot) -> Vec<Option<Rate>> {
    let seconds = current.at - previous.at;
    if seconds.is_nan() || seconds <= 0.0 {
        return vec![None; current.series.len()];
    }
    let before: KeyMap<&Key, Counters> = previous
        .series
        .iter()
        .map(|s| (&s.key, s.counters))
        .collect();
    current
        .series
        .iter()
        .map(|s| {
            let before = before.get(&s.key)?;
            let now = s.counters;
            let reset = now.packets < before.packets || now.bytes < before.bytes;
            let increase = if reset {
                now
            } else {
                Counters {
                    packets: now.packets - before.packets,
                    bytes: now.bytes - before.bytes,
                }
            };
            Some(Rate {
                packets: increase.packets as f64 / seconds,
                bytes: increase.bytes as f64 / seconds,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::top::series::{Kind, Series};

    fn series(name: &str, packets: u64, bytes: u64) -> Series {
        Series {
            key: Key {
                kind: Kind::Rule,
                source: "iptables",
                table: Arc::from("filter"),
                chain: Arc::from("INPUT"),
                name: Arc::from(name),
            },
            counters: Counters { packets, bytes },
            stands_for_rules: false,
        }
    }

    fn snapshot(at: f64, series: Vec<Series>) -> Snapshot {
        Snapshot { at, series }
    }

    fn rate(packets: f64, bytes: f64) -> Option<Rate> {
        Some(Rate { packets, bytes })
    }

    #[test]
    fn the_increase_over_the_time_between_the_readings() {
        let before = snapshot(100.0, vec![series("a", 10, 1000), series("b", 0, 0)]);
        let after = snapshot(102.0, vec![series("b", 0, 0), series("a", 30, 5000)]);
        assert_eq!(rates(&before, &after), [rate(0.0, 0.0), rate(10.0, 2000.0)]);
    }

    #[test]
    fn a_new_series_has_no_rate_yet_and_a_vanished_one_none_at_all() {
        let before = snapshot(0.0, vec![series("gone", 5, 500), series("kept", 1, 100)]);
        let after = snapshot(1.0, vec![series("kept", 2, 200), series("new", 7, 700)]);
        // One rate per series of the later reading: nothing for the one gone, so never a
        // negative rate for it.
        assert_eq!(rates(&before, &after), [rate(1.0, 100.0), None]);
    }

    #[test]
    fn a_counter_that_went_down_was_reset_not_a_huge_rate() {
        let before = snapshot(0.0, vec![series("zeroed", 1_000_000, 90_000_000)]);
        let after = snapshot(2.0, vec![series("zeroed", 4, 400)]);
        assert_eq!(rates(&before, &after), [rate(2.0, 200.0)]);
        // Bytes alone going down is a reset too: the pair is one counter.
        let before = snapshot(0.0, vec![series("x", 10, 5000)]);
        let after = snapshot(1.0, vec![series("x", 12, 100)]);
        assert_eq!(rates(&before, &after), [rate(12.0, 100.0)]);
    }

    #[test]
    fn no_time_between_readings_gives_no_rate() {
        let before = snapshot(5.0, vec![series("a", 1, 1)]);
        let after = snapshot(5.0, vec![series("a", 2, 2)]);
        assert_eq!(rates(&before, &after), [None]);
        let earlier = snapshot(4.0, vec![series("a", 3, 3)]);
        assert_eq!(rates(&before, &earlier), [None]);
    }
}
