//! What top counts: the series of one reading of an origin, keyed as /metrics keys them.
//! Both this host's sources and an exporter's are read as an exposition
//! ([`super::interpret`]), so a row means the same wherever it was read.

use std::sync::Arc;

use crate::ruleset::Counters;

/// What a series counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A rule: an iptables `*_rule_*` series (the rules of one text in one chain summed),
    /// an `nftables_rule_*` series (a rule with a counter).
    Rule,
    /// The rules of a chain that carry one comment: `*_comment_*`.
    Comment,
    /// A chain's policy: `*_chain_*`.
    Chain,
    /// An accounting tag: `netfilter_accounting_*`, summed over the sources of a family.
    Tag,
    /// A named nftables counter or quota.
    Object,
}

/// A series' identity: the labels /metrics gives it, in the columns top shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// What it counts.
    pub kind: Kind,
    /// The source's name, as the `source` label has it; [`ACCOUNTING`] for a tag.
    pub source: &'static str,
    /// An iptables table's name; `family/table` for nftables; the family of a tag.
    pub table: Arc<str>,
    /// The chain; `counter` or `quota` for an object; empty for a tag.
    pub chain: Arc<str>,
    /// The rule's text, the comment, the tag (with its direction), the object's name;
    /// empty for a chain.
    pub name: Arc<str>,
}

/// A map keyed by series, with a hash quicker than std's: each reading hashes every
/// series' key a few times over.
pub type KeyMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// The source of the tag series: they sum every source of a family.
pub const ACCOUNTING: &str = "accounting";

/// One series of a reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    /// Which series.
    pub key: Key,
    /// Its counters as read.
    pub counters: Counters,
    /// A chain's policy series standing for the chain's rules, whose series the exporter
    /// left out (`--max-series`, `--no-rule-metrics`, `--chain-exclude`): rows of rules
    /// show the chain in their place.
    pub stands_for_rules: bool,
}

/// One reading of one origin: a source of this host, or a source of an exporter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// When the counters were read: the end of the collection, in Unix time.
    pub at: f64,
    /// Every series, each key once.
    pub series: Vec<Series>,
}
