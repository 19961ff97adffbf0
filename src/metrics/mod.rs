//! Snapshot → metric families: each source's view (the iptables sources' families as
//! iptables_exporter names them, nftables, ipset) and the
//! exporter's own families. Pure functions; nothing here does I/O or keeps state between
//! collections, so a rule that disappeared cannot leave a stale series behind.

pub mod ipset;
mod iptables;
mod limit;
pub mod names;
mod nftables;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::exposition::{Exposition, ExpositionBuilder, FamilyWriter, Labels, MetricType, Storage};
use crate::ruleset::Counters;
use crate::source::iptables_nft::TextStats;
use crate::source::{Reading, SourceError, SourceId};

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
    /// Most droppable series of a source's publication ([`series`]); 0: no limit.
    pub max_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            rule_series: true,
            comment_series: true,
            tables: NameFilter::default(),
            chains: NameFilter::default(),
            legacy_duration: true,
            max_series: 0,
        }
    }
}

impl MetricsConfig {
    /// True when the rule and comment series of `chain` in `table` are written.
    pub fn selects(&self, table: &str, chain: &str) -> bool {
        self.tables.allows(table) && self.chains.allows(chain)
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
    /// Which source.
    pub source: SourceId,
    /// What the collection found, or why it found nothing.
    pub outcome: Result<Reading, SourceError>,
    /// How long the collection took (command and parsing).
    pub duration: Duration,
    /// When it ended.
    pub finished_at: SystemTime,
    /// Its droppable series kept and dropped under `--max-series` ([`series`]).
    pub series: Option<SeriesCount>,
}

/// Renders the families of one source from its last collection, kept as `storage` says:
/// each source has its view, one line here. A failed collection writes no numbers of an
/// older snapshot as if current.
pub fn render_source(
    report: &SourceReport,
    config: &MetricsConfig,
    storage: Storage,
) -> Exposition {
    let mut out = ExpositionBuilder::new(storage);
    let plan = plan(report, config);
    match report.source {
        SourceId::Iptables
        | SourceId::Ip6tables
        | SourceId::IptablesLegacy
        | SourceId::Ip6tablesLegacy => iptables::render(&mut out, report, config, &plan),
        SourceId::Nftables => nftables::render(&mut out, report, config, &plan),
        SourceId::Ipset => ipset::render(&mut out, report, &plan),
    }
    out.finish()
}

/// Series of a source's publication under `--max-series`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeriesCount {
    /// Droppable series kept.
    pub kept: usize,
    /// Droppable series dropped.
    pub dropped: usize,
}

/// The droppable series [`render_source`] keeps and drops of `report` under
/// `--max-series`; `None` without a limit or a snapshot.
pub fn series(report: &SourceReport, config: &MetricsConfig) -> Option<SeriesCount> {
    if config.max_series == 0 || report.outcome.is_err() {
        return None;
    }
    let plan = plan(report, config);
    Some(SeriesCount {
        kept: plan.kept,
        dropped: plan.dropped,
    })
}

/// What `report`'s publication keeps under `--max-series`: each source's view says which
/// of its series may be dropped.
fn plan<'a>(report: &'a SourceReport, config: &MetricsConfig) -> limit::Plan<'a> {
    let reading = match &report.outcome {
        Ok(reading) if config.max_series > 0 => reading,
        _ => return limit::Plan::default(),
    };
    let ruleset = &reading.ruleset;
    let units = match report.source {
        SourceId::Iptables
        | SourceId::Ip6tables
        | SourceId::IptablesLegacy
        | SourceId::Ip6tablesLegacy => iptables::units(ruleset, config),
        SourceId::Nftables => nftables::units(ruleset, config),
        SourceId::Ipset => ipset::units(&ruleset.ipsets),
    };
    limit::plan(units, config.max_series)
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

/// Renders the pace of each source: the CPU time its last collection cost and the
/// pause before its next one.
pub fn render_pace(
    pace: impl Iterator<Item = (SourceId, Duration, Duration)> + Clone,
) -> Exposition {
    let mut out = ExpositionBuilder::default();
    let (name, help) = names::exporter::COLLECTION_CPU;
    let mut cpu = out.family(name, help, MetricType::Gauge);
    for (id, cost, _) in pace.clone() {
        cpu.sample(&[("source", id.name())], cost.as_secs_f64());
    }
    drop(cpu);
    let (name, help) = names::exporter::COLLECTION_INTERVAL;
    let mut interval = out.family(name, help, MetricType::Gauge);
    for (id, _, pause) in pace {
        interval.sample(&[("source", id.name())], pause.as_secs_f64());
    }
    drop(interval);
    out.finish()
}

/// The family that names the sources the automatic selection left out because the host
/// does not say whether they have tables.
pub fn render_unknown(ids: impl Iterator<Item = SourceId>) -> Exposition {
    let mut out = ExpositionBuilder::default();
    let (name, help) = names::exporter::SOURCE_UNKNOWN;
    let mut family = out.family(name, help, MetricType::Gauge);
    for id in ids {
        family.sample(&[("source", id.name())], 1u64);
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
                f.sample(&[("source", report.source.name())], v);
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
    fn text_stats(r: &SourceReport) -> Option<&TextStats> {
        r.outcome.as_ref().ok()?.text_stats.as_ref()
    }
    per_source(&mut out, names::exporter::UNCACHED_RULES, &|r| {
        text_stats(r).map(|s| s.uncached_rules() as f64)
    });
    let (name, help) = names::exporter::RULE_TEXTS;
    let mut texts = out.family(name, help, MetricType::Gauge);
    for report in reports {
        if let Some(stats) = text_stats(report) {
            let source = report.source.name();
            for (how, rules) in [
                ("decoded", stats.decoded),
                ("cached", stats.cached),
                ("listed", stats.listed),
                ("iptables_save", stats.saved),
            ] {
                texts.sample(&[("source", source), ("how", how)], rules as u64);
            }
        }
    }
    drop(texts);
    let (name, help) = names::exporter::UNDECODED_RULES;
    let mut undecoded = out.family(name, help, MetricType::Gauge);
    for report in reports {
        if let Some(stats) = text_stats(report) {
            let source = report.source.name();
            for (extension, rules) in &stats.undecoded {
                let labels = [("source", source), ("extension", extension.as_str())];
                undecoded.sample(&labels, *rules as u64);
            }
        }
    }
    drop(undecoded);
    per_source(&mut out, names::exporter::SERIES, &|r| {
        r.series.map(|s| s.kept as f64)
    });
    per_source(&mut out, names::exporter::SERIES_DROPPED, &|r| {
        r.series.map(|s| s.dropped as f64)
    });
    let (name, help) = names::exporter::SAVE_RUNS;
    let mut runs = out.family(name, help, MetricType::Counter);
    for report in reports {
        if let Some(stats) = text_stats(report) {
            runs.sample(&[("source", report.source.name())], stats.save_runs);
        }
    }
    drop(runs);
    out.finish()
}

#[cfg(test)]
mod tests;
