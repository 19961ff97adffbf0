//! Series with rates → the rows top shows: grouped (a rule's series, a comment's, a chain's,
//! a tag's, an object's), filtered by a regular expression and sorted. A group's rate is
//! the sum of its members' rates, so a member that appears or vanishes never looks like a
//! counter reset of the group.

use std::cmp::Ordering;
use std::sync::Arc;

use regex::Regex;

use super::rates::Rate;
use super::series::{Key, KeyMap, Kind, Series};
use crate::ruleset::Counters;

/// What one row stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Group {
    /// A rule's series, as /metrics keys it; a chain whose rules' series the exporter left
    /// out stands for them.
    #[default]
    Rule,
    /// The rules of a chain that share a comment.
    Comment,
    /// A chain: its rules and its policy.
    Chain,
    /// An accounting tag.
    Tag,
    /// A named nftables counter or quota.
    Object,
}

impl Group {
    /// The group after this one, for the key that cycles through them.
    pub fn next(self) -> Group {
        match self {
            Group::Rule => Group::Comment,
            Group::Comment => Group::Chain,
            Group::Chain => Group::Tag,
            Group::Tag => Group::Object,
            Group::Object => Group::Rule,
        }
    }

    /// Its name, as `--group` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Rule => "rule",
            Group::Comment => "comment",
            Group::Chain => "chain",
            Group::Tag => "tag",
            Group::Object => "object",
        }
    }
}

/// What the rows are sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Column {
    /// Packets per second, highest first.
    #[default]
    PacketRate,
    /// Bytes per second, highest first.
    ByteRate,
    /// Packets counted, most first.
    Packets,
    /// Bytes counted, most first.
    Bytes,
    /// Source, table, chain and name, in alphabetical order.
    Name,
}

impl Column {
    /// The column after this one, for the key that cycles through them.
    pub fn next(self) -> Column {
        match self {
            Column::PacketRate => Column::ByteRate,
            Column::ByteRate => Column::Packets,
            Column::Packets => Column::Bytes,
            Column::Bytes => Column::Name,
            Column::Name => Column::PacketRate,
        }
    }
}

/// One row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// What it stands for: a series' key, or a chain's (kind [`Kind::Chain`], no name).
    pub key: Key,
    /// The sum of its members' rates; `None` while none has one yet.
    pub rate: Option<Rate>,
    /// The sum of its members' counters.
    pub counters: Counters,
}

/// The rows of `group` over `series`, in order of first appearance.
pub fn rows<'a>(
    series: impl Iterator<Item = (&'a Series, Option<Rate>)>,
    group: Group,
) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut index: KeyMap<Key, usize> = KeyMap::default();
    for (series, rate) in series {
        let Some(key) = row_key(series, group) else {
            continue;
        };
        match index.get(&key) {
            Some(&at) => {
                let row = &mut rows[at];
                row.counters += series.counters;
                row.rate = match (row.rate, rate) {
                    (Some(mut sum), Some(rate)) => {
                        sum += rate;
                        Some(sum)
                    }
                    (sum, rate) => sum.or(rate),
                };
            }
            None => {
                index.insert(key.clone(), rows.len());
                rows.push(Row {
                    key,
                    rate,
                    counters: series.counters,
                });
            }
        }
    }
    rows
}

/// The row `series` belongs to under `group`, if any.
fn row_key(series: &Series, group: Group) -> Option<Key> {
    let kind = series.key.kind;
    let belongs = match group {
        Group::Rule => kind == Kind::Rule || series.stands_for_rules,
        Group::Comment => kind == Kind::Comment,
        Group::Chain => {
            return matches!(kind, Kind::Rule | Kind::Chain).then(|| Key {
                kind: Kind::Chain,
                name: Arc::from(""),
                ..series.key.clone()
            });
        }
        Group::Tag => kind == Kind::Tag,
        Group::Object => kind == Kind::Object,
    };
    belongs.then(|| series.key.clone())
}

/// Sorts `rows` by `column`; ties, and rows without a rate, in the order of their keys.
pub fn sort(rows: &mut [Row], column: Column) {
    let rate = |row: &Row, of: fn(&Rate) -> f64| row.rate.as_ref().map_or(-1.0, of);
    rows.sort_by(|a, b| {
        let by_column = match column {
            Column::PacketRate => rate(b, |r| r.packets).total_cmp(&rate(a, |r| r.packets)),
            Column::ByteRate => rate(b, |r| r.bytes).total_cmp(&rate(a, |r| r.bytes)),
            Column::Packets => b.counters.packets.cmp(&a.counters.packets),
            Column::Bytes => b.counters.bytes.cmp(&a.counters.bytes),
            Column::Name => Ordering::Equal,
        };
        by_column.then_with(|| by_name(&a.key, &b.key))
    });
}

fn by_name(a: &Key, b: &Key) -> Ordering {
    (a.source, &a.table, &a.chain, &a.name, a.kind)
        .cmp(&(b.source, &b.table, &b.chain, &b.name, b.kind))
}

/// Keeps the rows where `filter` matches the line `source table chain name`.
pub fn retain_matching(rows: &mut Vec<Row>, filter: &Regex) {
    let mut line = String::new();
    rows.retain(|row| {
        line.clear();
        let key = &row.key;
        for (i, field) in [key.source, &key.table, &key.chain, &key.name]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(field);
        }
        filter.is_match(&line)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(kind: Kind, chain: &str, name: &str, packets: u64) -> Series {
        Series {
            key: Key {
                kind,
                source: "iptables",
                table: Arc::from("filter"),
                chain: Arc::from(chain),
                name: Arc::from(name),
            },
            counters: Counters {
                packets,
                bytes: packets * 100,
            },
            stands_for_rules: false,
        }
    }

    fn rate(packets: f64) -> Option<Rate> {
        Some(Rate {
            packets,
            bytes: packets * 100.0,
        })
    }

    fn names(rows: &[Row]) -> Vec<String> {
        rows.iter()
            .map(|r| format!("{} {}", r.key.chain, r.key.name))
            .collect()
    }

    fn sample() -> Vec<(Series, Option<Rate>)> {
        vec![
            (series(Kind::Chain, "INPUT", "", 5), rate(1.0)),
            (
                series(Kind::Rule, "INPUT", "-p icmp -j ACCEPT", 50),
                rate(10.0),
            ),
            (
                series(Kind::Rule, "INPUT", "-p tcp -j ACCEPT", 20),
                rate(30.0),
            ),
            (series(Kind::Comment, "INPUT", "ping", 50), rate(10.0)),
            (series(Kind::Rule, "USER", "-j RETURN", 7), None),
            (series(Kind::Chain, "USER", "", 0), rate(0.0)),
        ]
    }

    fn grouped(group: Group) -> Vec<Row> {
        let sample = sample();
        rows(sample.iter().map(|(s, r)| (s, *r)), group)
    }

    #[test]
    fn rules_comments_and_chains() {
        assert_eq!(
            names(&grouped(Group::Rule)),
            [
                "INPUT -p icmp -j ACCEPT",
                "INPUT -p tcp -j ACCEPT",
                "USER -j RETURN"
            ]
        );
        assert_eq!(names(&grouped(Group::Comment)), ["INPUT ping"]);
        let chains = grouped(Group::Chain);
        assert_eq!(names(&chains), ["INPUT ", "USER "]);
        // The policy and the rules, summed; a member without a rate yet adds none.
        assert_eq!(chains[0].rate, rate(41.0));
        assert_eq!(chains[0].counters.packets, 75);
        assert_eq!((chains[1].rate, chains[1].counters.packets), (rate(0.0), 7));
        assert!(grouped(Group::Tag).is_empty());
    }

    #[test]
    fn a_chain_stands_for_rules_the_exporter_left_out() {
        let mut stand_in = series(Kind::Chain, "KUBE-SEP-X", "", 3);
        stand_in.stands_for_rules = true;
        let all = [
            (series(Kind::Rule, "INPUT", "-j DROP", 1), rate(1.0)),
            (stand_in, rate(2.0)),
        ];
        let rules = rows(all.iter().map(|(s, r)| (s, *r)), Group::Rule);
        assert_eq!(names(&rules), ["INPUT -j DROP", "KUBE-SEP-X "]);
        assert_eq!(rules[1].key.kind, Kind::Chain);
    }

    #[test]
    fn the_same_key_from_two_origins_is_one_row() {
        let tag = |packets| {
            let mut s = series(Kind::Tag, "", "web in", packets);
            s.key.source = crate::top::series::ACCOUNTING;
            s
        };
        let all = [(tag(3), rate(1.0)), (tag(4), rate(2.0))];
        let tags = rows(all.iter().map(|(s, r)| (s, *r)), Group::Tag);
        assert_eq!(tags.len(), 1);
        assert_eq!((tags[0].rate, tags[0].counters.packets), (rate(3.0), 7));
    }

    #[test]
    fn sorted_by_rate_highest_first_then_by_name() {
        let mut rules = grouped(Group::Rule);
        sort(&mut rules, Column::PacketRate);
        assert_eq!(
            names(&rules),
            [
                "INPUT -p tcp -j ACCEPT",
                "INPUT -p icmp -j ACCEPT",
                "USER -j RETURN"
            ]
        );
        sort(&mut rules, Column::Packets);
        assert_eq!(names(&rules)[0], "INPUT -p icmp -j ACCEPT");
        sort(&mut rules, Column::Name);
        assert_eq!(
            names(&rules),
            [
                "INPUT -p icmp -j ACCEPT",
                "INPUT -p tcp -j ACCEPT",
                "USER -j RETURN"
            ]
        );
        let mut column = Column::PacketRate;
        for _ in 0..5 {
            column = column.next();
        }
        assert_eq!(column, Column::PacketRate);
    }

    #[test]
    fn a_filter_matches_across_the_columns() {
        let mut rules = grouped(Group::Rule);
        retain_matching(&mut rules, &Regex::new("INPUT.*icmp").expect("regex"));
        assert_eq!(names(&rules), ["INPUT -p icmp -j ACCEPT"]);
        let mut rules = grouped(Group::Rule);
        retain_matching(
            &mut rules,
            &Regex::new("^iptables filter USER").expect("regex"),
        );
        assert_eq!(names(&rules), ["USER -j RETURN"]);
    }
}
