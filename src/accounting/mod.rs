//! Snapshot → accounting series: one series per thing an operator cares about, not per rule.
//!
//! Operators keep counting-only chains (`ACCT4`, `ACCT6`, nfprom's `prometheus` or
//! `accounting`) and say what each rule counts in one of three ways, each served by a
//! submodule:
//!
//! - `tags`: Munin `traffic_accounting` comments `=tag= description`, summed per tag and
//!   paired by `_up`/`_down` ([`tag_view`], also used by the Munin mode);
//! - `labels`: nfprom comments `nft(key=value;…)`, whose keys become label names;
//! - `params`: labels derived from the rule's own match parameters (the older nfprom).
//!
//! Everything here is a pure function of snapshots; [`render`] turns the views into metric
//! families. A comment or rule that cannot be used is reported as a [`Problem`], never
//! silently dropped, and never hides the rest.

mod labels;
mod params;
mod render;
mod series;
mod tags;

use crate::ruleset::{Chain, Counters, Family, Rule, Ruleset, Table};
use crate::source::SourceId;

pub use render::render;
pub use tags::tag_view;

/// Which chains of a family are accounting chains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainSet {
    /// Every chain of every table.
    All,
    /// The chains with these names, looked up in every table of the ruleset.
    Named(Vec<String>),
}

impl ChainSet {
    /// True when the chain called `name` belongs to the set.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            ChainSet::All => true,
            ChainSet::Named(names) => names.iter().any(|n| n == name),
        }
    }

    /// True when the set holds `TABLE/CHAIN` (the nftables accounting chains, named with
    /// their table).
    pub fn contains_qualified(&self, table: &str, chain: &str) -> bool {
        match self {
            ChainSet::All => true,
            ChainSet::Named(names) => names
                .iter()
                .any(|n| n.split_once('/') == Some((table, chain))),
        }
    }
}

/// Settings of the accounting view. The defaults are those of the Munin plugin (chains
/// `ACCT4`/`ACCT6`) with both comment grammars on and the rule-parameter mode off.
#[derive(Debug, Clone)]
pub struct AccountingConfig {
    /// Accounting chains of the IPv4 rulesets.
    pub ipv4_chains: ChainSet,
    /// Accounting chains of the IPv6 rulesets.
    pub ipv6_chains: ChainSet,
    /// Accounting chains of the nftables ruleset, as `TABLE/CHAIN`.
    pub nftables_chains: ChainSet,
    /// Whether `=tag= description` comments are read.
    pub tag_comments: bool,
    /// Whether `nft(key=value;…)` comments are read.
    pub label_comments: bool,
    /// The chain (in every table, both families) whose rules without a comment of an
    /// active grammar get labels derived from their parameters; `None` turns the mode off.
    pub rule_params_chain: Option<String>,
    /// Prefix of the tag families: `<prefix>_bytes_total`, `_packets_total`, `_info` and
    /// `_rejected_rules`.
    pub prefix: String,
    /// Prefix of the label-comment families (`<prefix>_bytes_total`, `_packets_total`).
    pub labels_prefix: String,
    /// Prefix of the rule-parameter families (`<prefix>_bytes_total`, `_packets_total`).
    pub rule_params_prefix: String,
}

/// Default of [`AccountingConfig::prefix`].
pub const DEFAULT_PREFIX: &str = "netfilter_accounting";
/// Default of [`AccountingConfig::labels_prefix`].
pub const DEFAULT_LABELS_PREFIX: &str = "netfilter_accounting_labeled";
/// Default of [`AccountingConfig::nftables_chains`]: nfprom's table and chain.
pub const DEFAULT_NFTABLES_CHAIN: &str = "firewall/accounting";
/// Default of [`AccountingConfig::rule_params_prefix`].
pub const DEFAULT_RULE_PARAMS_PREFIX: &str = "netfilter_accounting_rule";

impl Default for AccountingConfig {
    fn default() -> Self {
        Self {
            ipv4_chains: ChainSet::Named(vec!["ACCT4".to_owned()]),
            ipv6_chains: ChainSet::Named(vec!["ACCT6".to_owned()]),
            nftables_chains: ChainSet::Named(vec![DEFAULT_NFTABLES_CHAIN.to_owned()]),
            tag_comments: true,
            label_comments: true,
            rule_params_chain: None,
            prefix: DEFAULT_PREFIX.to_owned(),
            labels_prefix: DEFAULT_LABELS_PREFIX.to_owned(),
            rule_params_prefix: DEFAULT_RULE_PARAMS_PREFIX.to_owned(),
        }
    }
}

impl AccountingConfig {
    /// True when `chain` of `table`, read by `source`, is an accounting chain whose
    /// comments the tag and label views read: the accounting chains of the iptables
    /// sources are named by family, those of nftables by table.
    pub fn accounts(&self, source: SourceId, table: &Table, chain: &Chain) -> bool {
        match (source, table.family) {
            (SourceId::Nftables, _) => self
                .nftables_chains
                .contains_qualified(&table.name, &chain.name),
            (_, Family::Ipv4) => self.ipv4_chains.contains(&chain.name),
            (_, Family::Ipv6) => self.ipv6_chains.contains(&chain.name),
            _ => false,
        }
    }

    /// True when the rule-parameter view reads `chain` (iptables rules only: its labels
    /// come from iptables match parameters).
    pub fn derives(&self, source: SourceId, chain: &Chain) -> bool {
        source != SourceId::Nftables && self.rule_params_chain.as_deref() == Some(&chain.name)
    }

    /// True when a view of accounting reads `chain`: what the collector keeps of a
    /// snapshot between collections.
    pub fn reads(&self, source: SourceId, table: &Table, chain: &Chain) -> bool {
        self.accounts(source, table, chain) || self.derives(source, chain)
    }

    /// True when a comment belongs to an active comment grammar (valid or not): such a
    /// rule is that grammar's business and never gets labels from its parameters.
    fn claims(&self, comment: &str) -> bool {
        (self.tag_comments && tags::is_tag_shaped(comment))
            || (self.label_comments && labels::is_label_shaped(comment))
    }
}

/// One `=tag=` entity of one family: rules sharing a tag summed; `tag_up`/`tag_down` merged under `tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagEntity {
    /// The family whose rulesets hold the rules.
    pub family: Family,
    /// The tag, without the `_up`/`_down` suffix for pairs.
    pub tag: String,
    /// First non-empty description met for the tag (either half of a pair); the tag when
    /// every rule of the entity leaves it empty.
    pub description: String,
    /// The summed counters.
    pub traffic: Traffic,
}

/// The counters of a tag entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Traffic {
    /// A tag without a direction suffix.
    Single(Counters),
    /// up = outgoing (tag_up), down = incoming (tag_down); None when that half has no rule.
    Paired {
        /// Outgoing traffic (`tag_up`).
        up: Option<Counters>,
        /// Incoming traffic (`tag_down`).
        down: Option<Counters>,
    },
}

/// A comment or rule the view could not use, reported instead of silently dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The family of the ruleset.
    pub family: Family,
    /// The chain holding the rule.
    pub chain: String,
    /// What is wrong, naming the table, the rule's position and its comment.
    pub message: String,
}

/// The tagged view of the accounting chains.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagView {
    /// Entities ordered by family (ipv4 first) then by first appearance of the tag.
    pub entities: Vec<TagEntity>,
    /// Everything that could not be used.
    pub problems: Vec<Problem>,
}

/// One rule of a selected chain, with where it lives (for problem messages).
struct Located<'a> {
    family: Family,
    /// Index of the ruleset in the caller's slice: series of one source never sum with
    /// themselves, those of two sources of one family do.
    index: usize,
    table: &'a str,
    chain: &'a Chain,
    rule: &'a Rule,
}

impl Located<'_> {
    fn problem(&self, message: impl std::fmt::Display) -> Problem {
        Problem {
            family: self.family,
            chain: self.chain.name.clone(),
            message: format!(
                "table {} chain {} rule {}: {message}",
                self.table, self.chain.name, self.rule.position
            ),
        }
    }
}

/// Every rule of the chains `select` picks, by family (ipv4 first; stable otherwise), in
/// kernel order.
fn rules<'a>(
    rulesets: &'a [(SourceId, &'a Ruleset)],
    select: impl Fn(SourceId, &Table, &Chain) -> bool,
) -> impl Iterator<Item = Located<'a>> + 'a {
    let mut located: Vec<Located<'a>> = Vec::new();
    for (index, &(source, ruleset)) in rulesets.iter().enumerate() {
        for (table, chain) in ruleset.chains() {
            if select(source, table, chain) {
                located.extend(chain.rules.iter().map(|rule| Located {
                    family: table.family,
                    index,
                    table: &table.name,
                    chain,
                    rule,
                }));
            }
        }
    }
    located.sort_by_key(|l| l.family);
    located.into_iter()
}

#[cfg(test)]
mod tests;
