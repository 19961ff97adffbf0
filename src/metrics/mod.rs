//! Snapshot → metric families: the per-backend families of iptables_exporter and the
//! exporter's own families. Pure functions; nothing here does I/O or keeps state between
//! collections, so a rule that disappeared cannot leave a stale series behind.

pub mod ipset;
pub mod names;
mod nftables;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::exposition::{Exposition, ExpositionBuilder, FamilyWriter, Labels, MetricType, Storage};
use crate::ruleset::{Chain, Counters, Ruleset, Table};
use crate::source::iptables_nft::TextStats;
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
    /// What the collection found, or why it found nothing.
    pub outcome: Result<Collected, SourceError>,
    /// How long the collection took (command and parsing).
    pub duration: Duration,
    /// When it ended.
    pub finished_at: SystemTime,
}

/// What a successful collection found: the snapshot, and the figures the exporter's own
/// families report about it.
#[derive(Debug, Clone)]
pub struct Collected {
    /// The snapshot. The collector keeps of it, once the source's families are rendered,
    /// only what views of several sources still read ([`Collected::keep_only`]).
    pub ruleset: Arc<Ruleset>,
    /// Rules in the whole snapshot.
    pub rules: usize,
    /// Lines of the dump the parser did not understand.
    pub unparsed: usize,
    /// Lines of the dump that were not valid UTF-8 (read with U+FFFD in their place).
    pub invalid_utf8_lines: usize,
    /// For an iptables source read over netlink, how it got its rule texts.
    pub text_stats: Option<TextStats>,
}

impl Collected {
    /// The report of a snapshot.
    pub fn new(ruleset: Ruleset) -> Self {
        Collected {
            rules: ruleset.rule_count(),
            unparsed: ruleset.unparsed.len(),
            invalid_utf8_lines: 0,
            text_stats: None,
            ruleset: Arc::new(ruleset),
        }
    }

    /// Keeps of the snapshot only the chains `keep` selects; the counts stay those of the
    /// whole snapshot.
    pub fn keep_only(&mut self, keep: impl FnMut(&Table, &Chain) -> bool) {
        Arc::make_mut(&mut self.ruleset).retain_chains(keep);
    }
}

/// Renders the families of one backend from its last collection, kept as `storage` says.
/// A failed collection writes only its duration and `*_scrape_success 0`: numbers of an
/// older snapshot are never presented as current.
pub fn render_source(
    report: &SourceReport,
    config: &MetricsConfig,
    storage: Storage,
) -> Exposition {
    let prefix = report.target.metric_prefix();
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    let mut out = ExpositionBuilder::new(storage);
    // The newer sources have no iptables_exporter names to keep: their success and duration
    // are the exporter's per-source families only.
    match (report.target, &report.outcome) {
        (Target::Nftables, Ok(collected)) => {
            nftables::render(&mut out, &collected.ruleset, config);
            return out.finish();
        }
        (Target::Ipset, Ok(collected)) => {
            ipset::render(&mut out, &collected.ruleset.ipsets);
            return out.finish();
        }
        (Target::Nftables | Target::Ipset, Err(_)) => return out.finish(),
        _ => {}
    }
    if let Ok(collected) = &report.outcome {
        render_ruleset(&mut out, prefix, &collected.ruleset, config);
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

/// Writes the iptables_exporter families of a snapshot, in its order: per chain, the
/// policy counters and the rule count; per rule and per comment of the chains the
/// cardinality controls select, the summed counters; per table, the chain count.
fn render_ruleset(
    out: &mut ExpositionBuilder,
    prefix: &str,
    ruleset: &Ruleset,
    config: &MetricsConfig,
) {
    let family = |(suffix, help): (&str, &str), metric_type| {
        out.writer(&format!("{prefix}_{suffix}"), help, metric_type)
    };
    let pair = |bytes, packets| CounterPair {
        bytes: family(bytes, MetricType::Counter),
        packets: family(packets, MetricType::Counter),
        labels: Labels::default(),
    };
    let mut chain_pair = pair(names::backend::CHAIN_BYTES, names::backend::CHAIN_PACKETS);
    let mut rule_pair = config
        .rule_series
        .then(|| pair(names::backend::RULE_BYTES, names::backend::RULE_PACKETS));
    let mut comment_pair = config.comment_series.then(|| {
        pair(
            names::backend::COMMENT_BYTES,
            names::backend::COMMENT_PACKETS,
        )
    });
    let mut rules_total = family(names::backend::RULES, MetricType::Untyped);
    let mut chains_total = family(names::backend::CHAINS, MetricType::Untyped);
    let mut sums = Sums::default();
    for (table, chain) in ruleset.chains() {
        let (table_name, chain_name) = (table.name.as_str(), chain.name.as_str());
        chain_pair.sample(
            &[
                ("table", table_name),
                ("chain", chain_name),
                ("policy", chain.policy_label()),
            ],
            chain.counters(),
        );
        rules_total.sample(
            &[("table", table_name), ("chain", chain_name)],
            chain.rules.len() as u64,
        );
        if !(config.tables.allows(table_name) && config.chains.allows(chain_name)) {
            continue;
        }
        if let Some(pair) = &mut rule_pair {
            sums.group(chain.rules.iter().map(|r| (r.label(), r.counters)));
            pair.samples(table_name, chain_name, "rule", &sums);
        }
        if let Some(pair) = &mut comment_pair {
            sums.group(chain.rules.iter().flat_map(|r| {
                let counters = r.counters;
                r.comments.iter().map(move |c| (c.as_str(), counters))
            }));
            pair.samples(table_name, chain_name, "comment", &sums);
        }
    }
    for table in &ruleset.tables {
        chains_total.sample(&[("table", &table.name)], table.chains.len() as u64);
    }
    for pair in std::iter::once(chain_pair)
        .chain(rule_pair)
        .chain(comment_pair)
    {
        out.push(pair.bytes);
        out.push(pair.packets);
    }
    out.push(rules_total);
    out.push(chains_total);
}

/// The bytes and packets families of one kind of series, written in one pass over the
/// snapshot (each family's samples must be contiguous in the exposition, so they are
/// written to two families rather than by two passes).
struct CounterPair {
    bytes: FamilyWriter,
    packets: FamilyWriter,
    /// Scratch: the labels of the current sample, escaped once for both families.
    labels: Labels,
}

impl CounterPair {
    fn sample(&mut self, labels: &[(&str, &str)], counters: Counters) {
        self.labels.set(labels);
        self.bytes.labelled_sample(&self.labels, counters.bytes);
        self.packets.labelled_sample(&self.labels, counters.packets);
    }

    /// One sample per key of `sums`, labelled by table, chain and `key_label`.
    fn samples(&mut self, table: &str, chain: &str, key_label: &str, sums: &Sums<'_>) {
        for &(key, counters) in &sums.sums {
            self.sample(
                &[("table", table), ("chain", chain), (key_label, key)],
                counters,
            );
        }
    }
}

/// Sums the counters of a chain's rules by label value, in order of first appearance: two
/// rules with the same label value would otherwise be two series with the same labels,
/// which Prometheus rejects. Its buffers are reused from chain to chain.
#[derive(Default)]
struct Sums<'a> {
    sums: Vec<(&'a str, Counters)>,
    index: HashMap<&'a str, usize>,
}

impl<'a> Sums<'a> {
    fn group(&mut self, keyed: impl Iterator<Item = (&'a str, Counters)>) {
        self.sums.clear();
        self.index.clear();
        for (key, counters) in keyed {
            match self.index.entry(key) {
                Entry::Occupied(slot) => self.sums[*slot.get()].1 += counters,
                Entry::Vacant(slot) => {
                    slot.insert(self.sums.len());
                    self.sums.push((key, counters));
                }
            }
        }
    }
}

/// Renders the cadence of each source: the CPU time its last collection cost and the
/// pause before its next one.
pub fn render_cadence(
    cadence: impl Iterator<Item = (Target, Duration, Duration)> + Clone,
) -> Exposition {
    let mut out = ExpositionBuilder::default();
    let (name, help) = names::exporter::COLLECTION_CPU;
    let mut cpu = out.family(name, help, MetricType::Gauge);
    for (target, cost, _) in cadence.clone() {
        cpu.sample(&[("source", target.name())], cost.as_secs_f64());
    }
    drop(cpu);
    let (name, help) = names::exporter::COLLECTION_INTERVAL;
    let mut interval = out.family(name, help, MetricType::Gauge);
    for (target, _, pause) in cadence {
        interval.sample(&[("source", target.name())], pause.as_secs_f64());
    }
    drop(interval);
    out.finish()
}

/// The family that names the sources the automatic selection left out because the host
/// does not say whether they have tables.
pub fn render_unknown(targets: impl Iterator<Item = Target>) -> Exposition {
    let mut out = ExpositionBuilder::default();
    let (name, help) = names::exporter::SOURCE_UNKNOWN;
    let mut family = out.family(name, help, MetricType::Gauge);
    for target in targets {
        family.sample(&[("source", target.name())], 1u64);
    }
    drop(family);
    out.finish()
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
        r.outcome.as_ref().ok().map(|c| c.unparsed as f64)
    });
    per_source(&mut out, names::exporter::INVALID_UTF8_LINES, &|r| {
        r.outcome.as_ref().ok().map(|c| c.invalid_utf8_lines as f64)
    });
    per_source(&mut out, names::exporter::RULES, &|r| {
        r.outcome.as_ref().ok().map(|c| c.rules as f64)
    });
    let text_stats = |r: &SourceReport| r.outcome.as_ref().ok()?.text_stats;
    per_source(&mut out, names::exporter::UNCACHED_RULES, &|r| {
        text_stats(r).map(|s| s.uncached_rules as f64)
    });
    let (name, help) = names::exporter::SAVE_RUNS;
    let mut runs = out.family(name, help, MetricType::Counter);
    for report in reports {
        if let Some(stats) = text_stats(report) {
            runs.sample(&[("source", report.target.name())], stats.save_runs);
        }
    }
    drop(runs);
    out.finish()
}

#[cfg(test)]
mod tests;
