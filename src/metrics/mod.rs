//! Snapshot → metric families: the per-backend families of iptables_exporter and the
//! exporter's own families. Pure functions; nothing here does I/O or keeps state between
//! collections, so a rule that disappeared cannot leave a stale series behind.

pub mod names;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::output::exposition::{Exposition, ExpositionBuilder, MetricType};
use crate::ruleset::{Chain, Counters, Ruleset};
use crate::source::{SourceError, Target};

/// Which series to write: the user's cardinality controls.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Write `*_rule_{bytes,packets}_total`.
    pub rule_series: bool,
    /// Write `*_comment_{bytes,packets}_total`.
    pub comment_series: bool,
    /// Tables whose rule and comment series are written.
    pub tables: NameFilter,
    /// Chains whose rule and comment series are written.
    pub chains: NameFilter,
    /// Write `*_scrape_duration_milliseconds` (iptables_exporter's name).
    pub legacy_duration: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            rule_series: true,
            comment_series: true,
            tables: NameFilter::default(),
            chains: NameFilter::default(),
            legacy_duration: true,
        }
    }
}

/// An include and an exclude pattern; a name passes when it matches the include pattern
/// (or there is none) and does not match the exclude pattern. Patterns match whole names.
#[derive(Debug, Clone, Default)]
pub struct NameFilter {
    /// Anchored include pattern.
    pub include: Option<Regex>,
    /// Anchored exclude pattern.
    pub exclude: Option<Regex>,
}

impl NameFilter {
    /// Compiles a pattern that must match a whole name, as Prometheus anchors regexes.
    pub fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{pattern})$"))
    }

    /// True when series of `name` are written.
    pub fn allows(&self, name: &str) -> bool {
        self.include.as_ref().is_none_or(|r| r.is_match(name))
            && !self.exclude.as_ref().is_some_and(|r| r.is_match(name))
    }
}

/// The outcome of one collection of one source.
#[derive(Debug, Clone)]
pub struct SourceReport {
    /// Which backend.
    pub target: Target,
    /// The snapshot, or why there is none.
    pub outcome: Result<std::sync::Arc<Ruleset>, SourceError>,
    /// How long the collection took (command and parsing).
    pub duration: Duration,
    /// When it ended.
    pub finished_at: SystemTime,
}

/// Renders the families of one backend from its last collection. A failed collection
/// writes only its duration and `*_scrape_success 0`: numbers of an older snapshot are
/// never presented as current.
pub fn render_source(report: &SourceReport, config: &MetricsConfig) -> Exposition {
    let prefix = report.target.metric_prefix();
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    let mut out = ExpositionBuilder::default();
    if let Ok(ruleset) = &report.outcome {
        render_ruleset(&mut out, prefix, ruleset, config);
    }
    if config.legacy_duration {
        let (suffix, help) = names::backend::SCRAPE_DURATION_MS;
        out.family(&name(suffix), help, MetricType::Gauge)
            .sample(&[], report.duration.as_millis() as u64);
    }
    let (suffix, help) = names::backend::SCRAPE_SUCCESS;
    out.family(&name(suffix), help, MetricType::Gauge)
        .sample(&[], u64::from(report.outcome.is_ok()));
    out.finish()
}

fn render_ruleset(
    out: &mut ExpositionBuilder,
    prefix: &str,
    ruleset: &Ruleset,
    config: &MetricsConfig,
) {
    let name = |(suffix, help): (&str, &'static str)| (format!("{prefix}_{suffix}"), help);
    let chains = || {
        ruleset
            .tables
            .iter()
            .flat_map(|t| t.chains.iter().map(move |c| (t, c)))
    };

    for (family, pick) in [
        (names::backend::CHAIN_BYTES, bytes as fn(&Counters) -> u64),
        (names::backend::CHAIN_PACKETS, packets),
    ] {
        let (name, help) = name(family);
        let mut f = out.family(&name, help, MetricType::Counter);
        for (table, chain) in chains() {
            f.sample(
                &[
                    ("table", &table.name),
                    ("chain", &chain.name),
                    ("policy", chain.policy.as_str()),
                ],
                pick(&chain.counters),
            );
        }
    }

    let detailed =
        || chains().filter(|(t, c)| config.tables.allows(&t.name) && config.chains.allows(&c.name));
    if config.rule_series {
        let grouped: Vec<_> = detailed()
            .map(|(t, c)| {
                (
                    t,
                    c,
                    group(c, |r| std::iter::once(r.text_without_comments())),
                )
            })
            .collect();
        for (family, pick) in [
            (names::backend::RULE_BYTES, bytes as fn(&Counters) -> u64),
            (names::backend::RULE_PACKETS, packets),
        ] {
            let (name, help) = name(family);
            let mut f = out.family(&name, help, MetricType::Counter);
            for (table, chain, rules) in &grouped {
                for (rule, counters) in rules {
                    f.sample(
                        &[
                            ("table", &table.name),
                            ("chain", &chain.name),
                            ("rule", rule),
                        ],
                        pick(counters),
                    );
                }
            }
        }
    }
    if config.comment_series {
        let grouped: Vec<_> = detailed()
            .map(|(t, c)| (t, c, group(c, |r| r.comments.iter().map(String::as_str))))
            .collect();
        for (family, pick) in [
            (names::backend::COMMENT_BYTES, bytes as fn(&Counters) -> u64),
            (names::backend::COMMENT_PACKETS, packets),
        ] {
            let (name, help) = name(family);
            let mut f = out.family(&name, help, MetricType::Counter);
            for (table, chain, comments) in &grouped {
                for (comment, counters) in comments {
                    f.sample(
                        &[
                            ("table", &table.name),
                            ("chain", &chain.name),
                            ("comment", comment),
                        ],
                        pick(counters),
                    );
                }
            }
        }
    }

    let (rules_name, rules_help) = name(names::backend::RULES);
    let mut f = out.family(&rules_name, rules_help, MetricType::Untyped);
    for (table, chain) in chains() {
        f.sample(
            &[("table", &table.name), ("chain", &chain.name)],
            chain.rules.len() as u64,
        );
    }
    drop(f);
    let (chains_name, chains_help) = name(names::backend::CHAINS);
    let mut f = out.family(&chains_name, chains_help, MetricType::Untyped);
    for table in &ruleset.tables {
        f.sample(&[("table", &table.name)], table.chains.len() as u64);
    }
}

fn bytes(c: &Counters) -> u64 {
    c.bytes
}

fn packets(c: &Counters) -> u64 {
    c.packets
}

/// Chains up to this many rules are grouped by linear search rather than through a map.
const SHORT_CHAIN: usize = 8;

/// Sums the counters of a chain's rules by key, in order of first appearance: two rules
/// with the same label value would otherwise be two series with the same labels, which
/// Prometheus rejects.
fn group<'c, K>(
    chain: &'c Chain,
    keys: impl Fn(&'c crate::ruleset::Rule) -> K,
) -> Vec<(&'c str, Counters)>
where
    K: Iterator<Item = &'c str>,
{
    let mut sums: Vec<(&str, Counters)> = Vec::with_capacity(chain.rules.len());
    // Most chains of a large ruleset are short (kube-proxy's per-endpoint chains hold two
    // rules): a linear search beats building and hashing into a map for them.
    if chain.rules.len() <= SHORT_CHAIN {
        for rule in &chain.rules {
            for key in keys(rule) {
                match sums.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, sum)) => *sum += rule.counters,
                    None => sums.push((key, rule.counters)),
                }
            }
        }
        return sums;
    }
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(chain.rules.len());
    for rule in &chain.rules {
        for key in keys(rule) {
            match index.entry(key) {
                Entry::Occupied(slot) => sums[*slot.get()].1 += rule.counters,
                Entry::Vacant(slot) => {
                    slot.insert(sums.len());
                    sums.push((key, rule.counters));
                }
            }
        }
    }
    sums
}

/// Renders the exporter's own families over every source's last collection.
pub fn render_exporter(reports: &[&SourceReport]) -> Exposition {
    let mut out = ExpositionBuilder::default();
    let (name, help) = names::exporter::BUILD_INFO;
    out.family(name, help, MetricType::Gauge)
        .sample(&[("version", env!("CARGO_PKG_VERSION"))], 1u64);
    let per_source = |out: &mut ExpositionBuilder,
                      (name, help): (&str, &str),
                      value: &dyn Fn(&SourceReport) -> Option<f64>| {
        let mut f = out.family(name, help, MetricType::Gauge);
        for report in reports {
            if let Some(v) = value(report) {
                f.sample(&[("source", report.target.name())], v);
            }
        }
    };
    per_source(&mut out, names::exporter::COLLECTION_SUCCESS, &|r| {
        Some(if r.outcome.is_ok() { 1.0 } else { 0.0 })
    });
    per_source(&mut out, names::exporter::COLLECTION_DURATION, &|r| {
        Some(r.duration.as_secs_f64())
    });
    per_source(&mut out, names::exporter::COLLECTION_TIMESTAMP, &|r| {
        r.finished_at
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs_f64())
    });
    per_source(&mut out, names::exporter::UNPARSED_LINES, &|r| {
        r.outcome.as_ref().ok().map(|s| s.unparsed.len() as f64)
    });
    per_source(&mut out, names::exporter::RULES, &|r| {
        r.outcome.as_ref().ok().map(|s| s.rule_count() as f64)
    });
    out.finish()
}

#[cfg(test)]
mod tests;
