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

use crate::ruleset::{Chain, Counters, Family, Rule, Ruleset};

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
}

/// Settings of the accounting view. The defaults are those of the Munin plugin (chains
/// `ACCT4`/`ACCT6`) with both comment grammars on and the rule-parameter mode off.
#[derive(Debug, Clone)]
pub struct AccountingConfig {
    /// Accounting chains of the IPv4 rulesets.
    pub ipv4_chains: ChainSet,
    /// Accounting chains of the IPv6 rulesets.
    pub ipv6_chains: ChainSet,
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
/// Default of [`AccountingConfig::rule_params_prefix`].
pub const DEFAULT_RULE_PARAMS_PREFIX: &str = "netfilter_accounting_rule";

impl Default for AccountingConfig {
    fn default() -> Self {
        Self {
            ipv4_chains: ChainSet::Named(vec!["ACCT4".to_owned()]),
            ipv6_chains: ChainSet::Named(vec!["ACCT6".to_owned()]),
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
    /// The accounting chains of `family`.
    pub fn chains(&self, family: Family) -> &ChainSet {
        const NONE: &ChainSet = &ChainSet::Named(Vec::new());
        match family {
            Family::Ipv4 => &self.ipv4_chains,
            Family::Ipv6 => &self.ipv6_chains,
            Family::Inet | Family::Arp | Family::Bridge | Family::Netdev => NONE,
        }
    }

    /// True when a view of accounting reads the chain called `name` of a `family`
    /// ruleset: what the collector keeps of a snapshot between collections.
    pub fn reads(&self, family: Family, name: &str) -> bool {
        self.chains(family).contains(name) || self.rule_params_chain.as_deref() == Some(name)
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
    /// Index of the ruleset in the caller's slice: series of one backend never sum with
    /// themselves, those of two backends of one family do.
    source: usize,
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

/// Every rule of the chains `select` picks, ipv4 rulesets first (stable otherwise), in
/// kernel order.
fn rules<'a>(
    rulesets: &'a [(Family, &'a Ruleset)],
    select: impl Fn(Family, &str) -> bool + Copy + 'a,
) -> impl Iterator<Item = Located<'a>> + 'a {
    let mut order: Vec<usize> = (0..rulesets.len()).collect();
    order.sort_by_key(|&i| rulesets[i].0);
    order.into_iter().flat_map(move |source| {
        let (family, ruleset) = rulesets[source];
        ruleset
            .chains()
            .filter(move |(_, chain)| select(family, &chain.name))
            .flat_map(move |(table, chain)| {
                chain.rules.iter().map(move |rule| Located {
                    family,
                    source,
                    table: &table.name,
                    chain,
                    rule,
                })
            })
    })
}

#[cfg(test)]
mod tests;
