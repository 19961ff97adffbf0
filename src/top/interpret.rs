//! An exposition → what top shows of it: each source's series, timed by when the exporter
//! says it collected that source (a scrape between two collections brings nothing new), the
//! accounting tags, each source's health, and what the exporter left out. The families are
//! found by the names the exporter writes ([`crate::metrics::names`]), so top reads its own
//! expositions and iptables_exporter's alike.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

use super::model::{Health, Outcome, Update};
use super::series::{ACCOUNTING, Key, KeyMap, Kind, Series, Snapshot};
use super::text::{Sample, TextError, samples};
use crate::metrics::names;
use crate::source::SourceId;

/// The families top reads, by metric name.
#[derive(Debug)]
pub struct Families {
    by_name: KeyMap<String, Family>,
}

#[derive(Debug, Clone, Copy)]
enum Family {
    /// The bytes or packets of a series.
    Counter {
        kind: Kind,
        source: SourceId,
        field: Field,
    },
    /// A quota's bytes used, a series with bytes only.
    QuotaUsed,
    /// An iptables chain's rule count: a chain with rules but no rule series had them left
    /// out by the exporter.
    Rules(SourceId),
    /// One of the exporter's families about a source.
    Health(Figure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Bytes,
    Packets,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Figure {
    Success,
    Duration,
    Timestamp,
    Cpu,
    Dropped,
    Unknown,
}

impl Families {
    /// The families of every source, and the accounting tags under `accounting_prefix`
    /// (`--accounting.prefix`).
    pub fn new(accounting_prefix: &str) -> Families {
        use Field::{Bytes, Packets};
        let counter = |name: String, kind, source, field| {
            let family = Family::Counter {
                kind,
                source,
                field,
            };
            (name, family)
        };
        let mut by_name = KeyMap::default();
        for source in SourceId::ALL.into_iter().filter(|s| s.family().is_some()) {
            let prefix = source.metric_prefix();
            let name = |(suffix, _): (&str, &str)| format!("{prefix}_{suffix}");
            use names::iptables as n;
            by_name.extend([
                counter(name(n::RULE_BYTES), Kind::Rule, source, Bytes),
                counter(name(n::RULE_PACKETS), Kind::Rule, source, Packets),
                counter(name(n::COMMENT_BYTES), Kind::Comment, source, Bytes),
                counter(name(n::COMMENT_PACKETS), Kind::Comment, source, Packets),
                counter(name(n::CHAIN_BYTES), Kind::Chain, source, Bytes),
                counter(name(n::CHAIN_PACKETS), Kind::Chain, source, Packets),
                (name(n::RULES), Family::Rules(source)),
            ]);
        }
        use names::nftables as n;
        let nftables = SourceId::Nftables;
        // Tags sum the sources of a family; the source here only fills the field.
        let tags = |suffix| format!("{accounting_prefix}_{suffix}");
        by_name.extend([
            counter(n::RULE_BYTES.0.to_owned(), Kind::Rule, nftables, Bytes),
            counter(n::RULE_PACKETS.0.to_owned(), Kind::Rule, nftables, Packets),
            counter(n::COUNTER_BYTES.0.to_owned(), Kind::Object, nftables, Bytes),
            counter(
                n::COUNTER_PACKETS.0.to_owned(),
                Kind::Object,
                nftables,
                Packets,
            ),
            counter(tags("bytes_total"), Kind::Tag, nftables, Bytes),
            counter(tags("packets_total"), Kind::Tag, nftables, Packets),
            (n::QUOTA_USED.0.to_owned(), Family::QuotaUsed),
        ]);
        use names::exporter as e;
        for (family, figure) in [
            (e::COLLECTION_SUCCESS, Figure::Success),
            (e::COLLECTION_DURATION, Figure::Duration),
            (e::COLLECTION_TIMESTAMP, Figure::Timestamp),
            (e::COLLECTION_CPU, Figure::Cpu),
            (e::SERIES_DROPPED, Figure::Dropped),
            (e::SOURCE_UNKNOWN, Figure::Unknown),
        ] {
            by_name.insert(family.0.to_owned(), Family::Health(figure));
        }
        Families { by_name }
    }
}

/// What an exposition said.
#[derive(Debug, Default)]
pub struct Interpreted {
    /// One update per source the exposition has (in the order of [`SourceId::ALL`]), then
    /// one of the accounting tags when it has any.
    pub updates: Vec<Update>,
    /// The sample lines that could not be read.
    pub unreadable: Vec<TextError>,
}

/// What `text`, an exposition, says of each source. A source's series are timed by its
/// `netfilter_exporter_collection_timestamp_seconds`, or `now` (Unix time) without one.
pub fn interpret(text: &str, families: &Families, now: f64) -> Interpreted {
    let mut found = Found::default();
    let mut unreadable = Vec::new();
    for sample in samples(text) {
        match sample {
            Ok(sample) => found.take(&sample, families),
            Err(e) => unreadable.push(e),
        }
    }
    Interpreted {
        updates: found.updates(now),
        unreadable,
    }
}

/// The series and figures of an exposition, by source.
#[derive(Default)]
struct Found {
    series: BTreeMap<Origin, Collected>,
    figures: BTreeMap<(SourceId, Figure), f64>,
    /// Chains (source, table, chain) the exposition says have rules.
    with_rules: BTreeSet<(SourceId, Arc<str>, Arc<str>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Origin {
    Source(SourceId),
    Accounting,
}

/// One origin's series, each key once.
#[derive(Default)]
struct Collected {
    series: Vec<Series>,
    index: KeyMap<Key, usize>,
}

impl Found {
    fn take(&mut self, sample: &Sample<'_>, families: &Families) {
        let Some(&family) = families.by_name.get(sample.name) else {
            return;
        };
        let label = |name| Arc::<str>::from(sample.label(name));
        // One word, so that the columns of `--once` stay apart.
        let nftables_table = || {
            Arc::<str>::from(format!(
                "{}/{}",
                sample.label("family"),
                sample.label("table")
            ))
        };
        let (origin, key, field) = match family {
            Family::Counter {
                kind,
                source,
                field,
            } => {
                let (table, chain, name) = match (kind, source) {
                    (Kind::Rule, SourceId::Nftables) => (
                        nftables_table(),
                        label("chain"),
                        Arc::from(nftables_rule_name(
                            sample.label("handle"),
                            sample.label("comment"),
                        )),
                    ),
                    (Kind::Rule, _) => (label("table"), label("chain"), label("rule")),
                    (Kind::Comment, _) => (label("table"), label("chain"), label("comment")),
                    (Kind::Chain, _) => (label("table"), label("chain"), Arc::from("")),
                    (Kind::Tag, _) => (
                        label("family"),
                        Arc::from(""),
                        Arc::from(tag_name(sample.label("tag"), sample.label("direction"))),
                    ),
                    (Kind::Object, _) => (nftables_table(), Arc::from("counter"), label("name")),
                };
                let (origin, source) = match kind {
                    Kind::Tag => (Origin::Accounting, ACCOUNTING),
                    _ => (Origin::Source(source), source.name()),
                };
                let key = Key {
                    kind,
                    source,
                    table,
                    chain,
                    name,
                };
                (origin, key, field)
            }
            Family::QuotaUsed => {
                let key = Key {
                    kind: Kind::Object,
                    source: SourceId::Nftables.name(),
                    table: nftables_table(),
                    chain: Arc::from("quota"),
                    name: label("name"),
                };
                (Origin::Source(SourceId::Nftables), key, Field::Bytes)
            }
            Family::Rules(source) => {
                if sample.counter().is_some_and(|rules| rules > 0) {
                    self.with_rules
                        .insert((source, label("table"), label("chain")));
                }
                return;
            }
            Family::Health(figure) => {
                let source = SourceId::from_str(sample.label("source"));
                if let (Ok(source), Some(value)) = (source, sample.number()) {
                    self.figures.insert((source, figure), value);
                }
                return;
            }
        };
        let Some(value) = sample.counter() else {
            return;
        };
        let collected = self.series.entry(origin).or_default();
        let at = match collected.index.get(&key) {
            Some(&at) => at,
            None => {
                collected.index.insert(key.clone(), collected.series.len());
                collected.series.push(Series {
                    key,
                    counters: Default::default(),
                    stands_for_rules: false,
                });
                collected.series.len() - 1
            }
        };
        let counters = &mut collected.series[at].counters;
        match field {
            Field::Bytes => counters.bytes = value,
            Field::Packets => counters.packets = value,
        }
    }

    fn updates(mut self, now: f64) -> Vec<Update> {
        let figure = |source, figure| self.figures.get(&(source, figure)).copied();
        let mut updates = Vec::new();
        let mut latest: Option<f64> = None;
        for source in SourceId::ALL {
            let collected = self.series.remove(&Origin::Source(source));
            let outcome = if figure(source, Figure::Unknown).is_some_and(|v| v > 0.0) {
                Outcome::LeftOut(Some(
                    "the exporter cannot tell whether the host has it".to_owned(),
                ))
            } else if figure(source, Figure::Success) == Some(0.0) {
                Outcome::Failed("the exporter's last collection of it failed".to_owned())
            } else if collected.is_some() || figure(source, Figure::Success).is_some() {
                let mut series = collected.map(|c| c.series).unwrap_or_default();
                let mut notes = Vec::new();
                let stand_ins = self.mark_stand_ins(source, &mut series);
                if let Some(dropped) = figure(source, Figure::Dropped).filter(|&d| d > 0.0) {
                    notes.push(format!(
                        "series dropped by the exporter (--max-series): {dropped}"
                    ));
                }
                if stand_ins > 0 {
                    notes.push(format!(
                        "chains without rule series, each shown in place of its rules: {stand_ins}"
                    ));
                }
                let at = figure(source, Figure::Timestamp).unwrap_or(now);
                latest = Some(latest.map_or(at, |l| l.max(at)));
                Outcome::Read {
                    snapshot: Snapshot { at, series },
                    health: Health {
                        duration: figure(source, Figure::Duration),
                        cpu: figure(source, Figure::Cpu),
                        notes,
                    },
                }
            } else {
                continue;
            };
            updates.push(Update {
                origin: source.name().to_owned(),
                outcome,
            });
        }
        if let Some(tags) = self.series.remove(&Origin::Accounting) {
            // Rendered with every publication: as new as the newest collection.
            updates.push(Update {
                origin: ACCOUNTING.to_owned(),
                outcome: Outcome::Read {
                    snapshot: Snapshot {
                        at: latest.unwrap_or(now),
                        series: tags.series,
                    },
                    health: Health::default(),
                },
            });
        }
        updates
    }

    /// Marks the chain series of `source` whose chain has rules but no rule series, and
    /// says how many there are.
    fn mark_stand_ins(&self, source: SourceId, series: &mut [Series]) -> usize {
        let covered: BTreeSet<(&str, &str)> = series
            .iter()
            .filter(|s| s.key.kind == Kind::Rule)
            .map(|s| (&*s.key.table, &*s.key.chain))
            .collect();
        let stand_ins: Vec<usize> = series
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                s.key.kind == Kind::Chain
                    && !covered.contains(&(&*s.key.table, &*s.key.chain))
                    && self.with_rules.contains(&(
                        source,
                        Arc::clone(&s.key.table),
                        Arc::clone(&s.key.chain),
                    ))
            })
            .map(|(i, _)| i)
            .collect();
        for &i in &stand_ins {
            series[i].stands_for_rules = true;
        }
        stand_ins.len()
    }
}

/// The name of an nftables rule's row, as `nft -a list ruleset` ends a rule: the comment
/// and the handle, the labels that key its series.
fn nftables_rule_name(handle: &str, comment: &str) -> String {
    if comment.is_empty() {
        format!("# handle {handle}")
    } else {
        format!("comment {comment:?} # handle {handle}")
    }
}

/// The name of a tag's row: the tag, and the direction of a paired tag.
fn tag_name(tag: &str, direction: &str) -> String {
    if direction.is_empty() {
        tag.to_owned()
    } else {
        format!("{tag} {direction}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::model::Outcome;

    const EXPOSITION: &str = r#"# HELP iptables_chain_bytes_total x
# TYPE iptables_chain_bytes_total counter
iptables_chain_bytes_total{table="filter",chain="INPUT",policy="ACCEPT"} 900
iptables_chain_bytes_total{table="filter",chain="KUBE-SEP-A",policy="-"} 0
iptables_chain_packets_total{table="filter",chain="INPUT",policy="ACCEPT"} 9
iptables_chain_packets_total{table="filter",chain="KUBE-SEP-A",policy="-"} 0
iptables_rule_bytes_total{table="filter",chain="INPUT",rule="-p icmp -j ACCEPT"} 8400
iptables_rule_packets_total{table="filter",chain="INPUT",rule="-p icmp -j ACCEPT"} 100
iptables_comment_bytes_total{table="filter",chain="INPUT",comment="ping"} 8400
iptables_comment_packets_total{table="filter",chain="INPUT",comment="ping"} 100
iptables_rules_total{table="filter",chain="INPUT"} 1
iptables_rules_total{table="filter",chain="KUBE-SEP-A"} 2
iptables_scrape_success 1
nftables_rule_bytes_total{family="inet",table="fw",chain="in",handle="4",comment=""} 10
nftables_rule_packets_total{family="inet",table="fw",chain="in",handle="4",comment=""} 1
nftables_rule_bytes_total{family="inet",table="fw",chain="in",handle="5",comment="web"} 20
nftables_rule_packets_total{family="inet",table="fw",chain="in",handle="5",comment="web"} 2
nftables_object_bytes_total{family="inet",table="fw",name="c1"} 30
nftables_object_packets_total{family="inet",table="fw",name="c1"} 3
nftables_quota_used_bytes{family="inet",table="fw",name="q1"} 4000
nftables_quota_limit_bytes{family="inet",table="fw",name="q1"} 5000
netfilter_accounting_bytes_total{family="ipv4",tag="web",direction="in"} 70
netfilter_accounting_packets_total{family="ipv4",tag="web",direction="in"} 7
netfilter_exporter_collection_success{source="iptables"} 1
netfilter_exporter_collection_success{source="ip6tables"} 0
netfilter_exporter_collection_success{source="nftables"} 1
netfilter_exporter_collection_duration_seconds{source="iptables"} 0.25
netfilter_exporter_collection_timestamp_seconds{source="iptables"} 1700000000.5
netfilter_exporter_collection_timestamp_seconds{source="nftables"} 1700000002
netfilter_exporter_collection_cpu_seconds{source="iptables"} 0.125
netfilter_exporter_series_dropped{source="iptables"} 4
netfilter_exporter_source_unknown{source="iptables-legacy"} 1
"#;

    fn read(update: &Update) -> (&Snapshot, &Health) {
        match &update.outcome {
            Outcome::Read { snapshot, health } => (snapshot, health),
            other => panic!("{}: not read: {other:?}", update.origin),
        }
    }

    fn rows(snapshot: &Snapshot) -> Vec<String> {
        snapshot
            .series
            .iter()
            .map(|s| {
                let k = &s.key;
                let stand_in = if s.stands_for_rules {
                    " (stands for rules)"
                } else {
                    ""
                };
                format!(
                    "{:?} {}|{}|{}|{} {}/{}{stand_in}",
                    k.kind,
                    k.source,
                    k.table,
                    k.chain,
                    k.name,
                    s.counters.packets,
                    s.counters.bytes
                )
            })
            .collect()
    }

    #[test]
    fn each_source_its_series_time_and_health() {
        let interpreted = interpret(EXPOSITION, &Families::new("netfilter_accounting"), 42.0);
        assert!(interpreted.unreadable.is_empty());
        let origins: Vec<&str> = interpreted
            .updates
            .iter()
            .map(|u| u.origin.as_str())
            .collect();
        assert_eq!(
            origins,
            [
                "iptables",
                "ip6tables",
                "iptables-legacy",
                "nftables",
                "accounting"
            ]
        );
        let updates = &interpreted.updates;
        let (iptables, health) = read(&updates[0]);
        assert_eq!(iptables.at, 1_700_000_000.5);
        assert_eq!(
            rows(iptables),
            [
                "Chain iptables|filter|INPUT| 9/900",
                "Chain iptables|filter|KUBE-SEP-A| 0/0 (stands for rules)",
                "Rule iptables|filter|INPUT|-p icmp -j ACCEPT 100/8400",
                "Comment iptables|filter|INPUT|ping 100/8400",
            ]
        );
        assert_eq!((health.duration, health.cpu), (Some(0.25), Some(0.125)));
        assert_eq!(
            health.notes,
            [
                "series dropped by the exporter (--max-series): 4",
                "chains without rule series, each shown in place of its rules: 1",
            ]
        );
        assert!(matches!(updates[1].outcome, Outcome::Failed(_)));
        assert!(matches!(updates[2].outcome, Outcome::LeftOut(Some(_))));
        let (nftables, _) = read(&updates[3]);
        assert_eq!(nftables.at, 1_700_000_002.0);
        assert_eq!(
            rows(nftables),
            [
                "Rule nftables|inet/fw|in|# handle 4 1/10",
                "Rule nftables|inet/fw|in|comment \"web\" # handle 5 2/20",
                "Object nftables|inet/fw|counter|c1 3/30",
                "Object nftables|inet/fw|quota|q1 0/4000",
            ]
        );
        let (tags, _) = read(&updates[4]);
        assert_eq!(tags.at, 1_700_000_002.0, "the newest collection's");
        assert_eq!(rows(tags), ["Tag accounting|ipv4||web in 7/70"]);
    }

    #[test]
    fn without_the_exporters_own_families_the_series_are_read_now() {
        // iptables_exporter's exposition: the same names, no netfilter_exporter_* families.
        let text =
            "iptables_rule_packets_total{table=\"filter\",chain=\"INPUT\",rule=\"-j ACCEPT\"} 5\n";
        let interpreted = interpret(text, &Families::new("netfilter_accounting"), 42.0);
        let (snapshot, _) = read(&interpreted.updates[0]);
        assert_eq!(snapshot.at, 42.0);
        assert_eq!(rows(snapshot), ["Rule iptables|filter|INPUT|-j ACCEPT 5/0"]);
    }

    #[test]
    fn tags_under_another_prefix_and_unreadable_lines() {
        let text = "acct_bytes_total{family=\"ipv6\",tag=\"dns\"} 9\nnetfilter_accounting_bytes_total{family=\"ipv4\",tag=\"x\"} 1\nbroken{\n";
        let interpreted = interpret(text, &Families::new("acct"), 1.0);
        assert_eq!(interpreted.unreadable.len(), 1);
        let (tags, _) = read(&interpreted.updates[0]);
        assert_eq!(rows(tags), ["Tag accounting|ipv6||dns 0/9"]);
    }
}
