//! Snapshot → metric families: the per-backend families of iptables_exporter and the
//! exporter's own families. Pure functions; nothing here does I/O or keeps state between
//! collections, so a rule that disappeared cannot leave a stale series behind.

pub mod names;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use regex::Regex;

use crate::buffer::TextBuffer;
use crate::output::exposition::{
    Exposition, ExpositionBuilder, FamilyWriter, GroupLabels, LabelValue, MetricType, Storage,
};
use crate::ruleset::{Chain, Counters, Label, Ruleset};
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
}

impl Collected {
    /// The report of a snapshot.
    pub fn new(ruleset: Ruleset) -> Self {
        Collected {
            rules: ruleset.rule_count(),
            unparsed: ruleset.unparsed().len(),
            invalid_utf8_lines: 0,
            ruleset: Arc::new(ruleset),
        }
    }

    /// Replaces the snapshot by the chains of it that `keep` selects; the counts stay
    /// those of the whole snapshot. A snapshot all of whose chains are kept (accounting
    /// over `all` chains) stays as it is rather than being copied.
    pub fn keep_only(&mut self, keep: impl Fn(Chain<'_>) -> bool) {
        if !self.ruleset.chains().all(&keep) {
            self.ruleset = Arc::new(self.ruleset.subset(keep));
        }
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

fn render_ruleset(
    out: &mut ExpositionBuilder,
    prefix: &str,
    ruleset: &Ruleset,
    config: &MetricsConfig,
) {
    let family = |(suffix, help): (&str, &str), metric_type| {
        out.writer(&format!("{prefix}_{suffix}"), help, metric_type)
    };
    let counters = |bytes, packets| {
        CounterPair::new(
            family(bytes, MetricType::Counter),
            family(packets, MetricType::Counter),
        )
    };
    let mut chain_families = ChainFamilies {
        pair: counters(names::backend::CHAIN_BYTES, names::backend::CHAIN_PACKETS),
        rules_total: family(names::backend::RULES, MetricType::Untyped),
        chains_total: family(names::backend::CHAINS, MetricType::Untyped),
    };
    let details = || Details {
        rule_pair: config
            .rule_series
            .then(|| counters(names::backend::RULE_BYTES, names::backend::RULE_PACKETS)),
        comment_pair: config.comment_series.then(|| {
            counters(
                names::backend::COMMENT_BYTES,
                names::backend::COMMENT_PACKETS,
            )
        }),
    };

    // Sized at once: growing it by doubling faulted in a megabyte of pages over and over.
    let mut detailed = Vec::with_capacity(ruleset.tables().map(|t| t.chains().len()).sum());
    detailed.extend(
        ruleset
            .chains()
            .filter(|c| config.tables.allows(c.table_name()) && config.chains.allows(c.name())),
    );
    // The per-rule and per-comment families are nearly all of a large exposition: their
    // first and second parts are written on two threads, then joined. The first thread
    // also writes the per-chain families, so it takes fewer rules.
    let (first, second) = split_by_rules(&detailed, ChainFamilies::work(ruleset));
    let (mut details_first, mut details_second) = (details(), details());
    details_first.expect(first);
    details_second.expect(second);
    let whole = [
        details_first.expected_lens(),
        details_second.expected_lens(),
    ];
    let whole = [0, 1].map(|p| [0, 1].map(|f| whole[0][p][f] + whole[1][p][f]));
    details_first.reserve(whole);
    details_second.reserve(whole);
    let second_written = std::thread::scope(|scope| {
        let spawned = if second.is_empty() {
            None
        } else {
            std::thread::Builder::new()
                .name("render".into())
                .spawn_scoped(scope, move || {
                    details_second.write(second);
                    details_second
                })
                .ok()
        };
        details_first.write(first);
        chain_families.write(ruleset);
        spawned.and_then(|handle| handle.join().ok())
    });
    match second_written {
        Some(details_second) => details_first.append(details_second),
        // A thread that could not start is no reason to lose series: write them here,
        // after the first part.
        None => details_first.write(second),
    }

    chain_families.pair.push_to(out);
    if let Some(pair) = details_first.rule_pair {
        pair.push_to(out);
    }
    if let Some(pair) = details_first.comment_pair {
        pair.push_to(out);
    }
    out.push(chain_families.rules_total);
    out.push(chain_families.chains_total);
}

/// The families every chain has a line in, whatever the cardinality controls say.
struct ChainFamilies {
    pair: CounterPair,
    rules_total: FamilyWriter,
    chains_total: FamilyWriter,
}

impl ChainFamilies {
    /// What writing them costs, in rules of the per-rule families: a chain writes three
    /// short lines where a rule with a comment writes four long ones (measured at 100k
    /// rules: the chain families of 40k chains took as long as 20k rules' series).
    fn work(ruleset: &Ruleset) -> usize {
        ruleset.tables().map(|t| t.chains().len()).sum::<usize>() / 2
    }

    /// Writes every chain's lines and every table's chain count.
    fn write(&mut self, ruleset: &Ruleset) {
        // One line per chain in each: with kube-proxy's chain per endpoint, megabytes.
        let mut chain_lines = Expected::default();
        for chain in ruleset.chains() {
            let labels = [("table", chain.table_name())];
            let policy = chain.policy().as_str().len();
            self.pair
                .expect(&[labels[0], ("chain", chain.name())], "policy", 1, policy);
            chain_lines.group(&labels, "chain", 1, chain.name().len());
        }
        self.pair.reserve(self.pair.expected_lens());
        let rules_total = &mut self.rules_total;
        let whole = chain_lines.range(rules_total).into_inner().1;
        rules_total.reserve(chain_lines.range(rules_total), whole);
        let mut group = GroupLabels::default();
        for chain in ruleset.chains() {
            let labels = [("table", chain.table_name()), ("chain", chain.name())];
            group.set(&labels);
            self.pair.start_group(&group, "policy");
            self.pair.sample(chain.policy().as_str(), chain.counters());
            rules_total.labelled_sample(&group, chain.rule_count() as u64);
        }
        for table in ruleset.tables() {
            self.chains_total
                .sample(&[("table", table.name())], table.chains().len() as u64);
        }
    }
}

/// Below this many rules, one thread writes every series: starting a second one would cost
/// more than it saves. (From 20k down to 5k, session 6: the render of 5k rules went from
/// 3.8–5.7 to 2.9–4.1 ms, the server's render of 10k rules from 24–36 to 19–21 ms, fastest
/// runs, alternately.)
const PARALLEL_RULES: usize = 5_000;

/// The chains in two parts of about equal work, where the first part's thread has
/// `head_start` rules' worth of other work; all in the first part when there are too few
/// rules to share.
fn split_by_rules<'c, 'a>(
    chains: &'c [Chain<'a>],
    head_start: usize,
) -> (&'c [Chain<'a>], &'c [Chain<'a>]) {
    let total: usize = chains.iter().map(Chain::rule_count).sum();
    if total < PARALLEL_RULES {
        return (chains, &[]);
    }
    let mut seen = head_start;
    let middle = chains
        .iter()
        .position(|c| {
            seen += c.rule_count();
            seen * 2 >= total + head_start
        })
        .map_or(chains.len(), |i| i + 1);
    chains.split_at(middle)
}

/// The per-rule and per-comment families of some chains, as far as they are switched on.
struct Details {
    rule_pair: Option<CounterPair>,
    comment_pair: Option<CounterPair>,
}

impl Details {
    /// Counts what the series of `chains` will take, towards [`Details::reserve`].
    fn expect(&mut self, chains: &[Chain<'_>]) {
        for chain in chains {
            let labels = [("table", chain.table_name()), ("chain", chain.name())];
            let sizes = chain.label_sizes();
            if let Some(pair) = &mut self.rule_pair {
                pair.expect(&labels, "rule", chain.rule_count(), sizes.rule_bytes);
            }
            if let Some(pair) = &mut self.comment_pair {
                pair.expect(&labels, "comment", sizes.comments, sizes.comment_bytes);
            }
        }
    }

    /// What [`Details::expect`] counted: bytes and packets family of the rule and of the
    /// comment series (zero when switched off).
    fn expected_lens(&self) -> [[usize; 2]; 2] {
        [&self.rule_pair, &self.comment_pair].map(|p| {
            p.as_ref()
                .map(CounterPair::expected_lens)
                .unwrap_or_default()
        })
    }

    /// Sizes the families for what [`Details::expect`] counted, as parts of families as
    /// long as `whole` says (in the order of [`Details::expected_lens`]).
    fn reserve(&mut self, whole: [[usize; 2]; 2]) {
        for (pair, whole) in [&mut self.rule_pair, &mut self.comment_pair]
            .into_iter()
            .zip(whole)
        {
            if let Some(pair) = pair {
                pair.reserve(whole);
            }
        }
    }

    /// Writes the series of `chains`, in order.
    fn write(&mut self, chains: &[Chain<'_>]) {
        let (mut rule_sums, mut comment_sums) = (Sums::default(), Sums::default());
        let mut group = GroupLabels::default();
        for chain in chains {
            group.set(&[("table", chain.table_name()), ("chain", chain.name())]);
            if let Some(pair) = &mut self.rule_pair {
                pair.start_group(&group, "rule");
                rule_sums.group(chain.rules().map(|r| (r.label(), r.counters())));
                pair.samples(&rule_sums);
            }
            if let Some(pair) = &mut self.comment_pair {
                pair.start_group(&group, "comment");
                comment_sums.group(
                    chain
                        .rules()
                        .flat_map(|r| r.comments().map(move |c| (c, r.counters()))),
                );
                pair.samples(&comment_sums);
            }
        }
    }

    /// Appends the series another part wrote for the chains after these.
    fn append(&mut self, other: Details) {
        for (mine, theirs) in [
            (&mut self.rule_pair, other.rule_pair),
            (&mut self.comment_pair, other.comment_pair),
        ] {
            if let (Some(mine), Some(theirs)) = (mine, theirs) {
                mine.bytes.append(theirs.bytes);
                mine.packets.append(theirs.packets);
            }
        }
    }
}

/// What the sample lines of a family (or of a part of one) will take, counted before they
/// are written so that the family's buffer is allocated once, at its size: a buffer that
/// doubles is copied and faulted in again at each step.
#[derive(Debug, Clone, Copy, Default)]
struct Expected {
    /// Bytes of the lines with values of 20 digits, but for the family name.
    len: usize,
    samples: usize,
}

impl Expected {
    /// Counts `samples` lines of a group ([`FamilyWriter::start_twin_group`]) whose last label
    /// values add up to `values_len` bytes (escapes aside, which are rare).
    fn group(&mut self, labels: &[(&str, &str)], last: &str, samples: usize, values_len: usize) {
        // `{` + `l="v",` per label + `last="` + `"} ` + up to 20 digits + newline.
        let labels_len: usize = labels.iter().map(|(l, v)| l.len() + v.len() + 4).sum();
        let line = 1 + labels_len + last.len() + 2 + 3 + 20 + 1;
        self.len += samples * line + values_len;
        self.samples += samples;
    }

    /// The fewest and the most bytes the counted lines take in `family` (values of one
    /// digit or of twenty).
    fn range(&self, family: &FamilyWriter) -> std::ops::RangeInclusive<usize> {
        let most = self.len + self.samples * family.name_len();
        most.saturating_sub(19 * self.samples)..=most
    }
}

/// The bytes and packets families of one kind of series, written in one pass over the
/// snapshot (each family's samples must be contiguous in the exposition, so they are
/// written to two buffers rather than by two passes).
struct CounterPair {
    bytes: FamilyWriter,
    packets: FamilyWriter,
    /// What the samples of either family take, but for the family name.
    expected: Expected,
}

impl CounterPair {
    fn new(bytes: FamilyWriter, packets: FamilyWriter) -> Self {
        CounterPair {
            bytes,
            packets,
            expected: Expected::default(),
        }
    }

    /// Counts a group of samples towards [`CounterPair::reserve`], as [`Expected::group`].
    fn expect(&mut self, labels: &[(&str, &str)], last: &str, samples: usize, values_len: usize) {
        self.expected.group(labels, last, samples, values_len);
    }

    /// The most that [`CounterPair::expect`] counted, for the bytes and the packets family.
    fn expected_lens(&self) -> [usize; 2] {
        [&self.bytes, &self.packets].map(|family| self.expected.range(family).into_inner().1)
    }

    /// Sizes both families for what [`CounterPair::expect`] counted, as parts of families
    /// at most `whole` bytes long.
    fn reserve(&mut self, whole: [usize; 2]) {
        let expected = self.expected;
        for (family, whole) in [&mut self.bytes, &mut self.packets].into_iter().zip(whole) {
            family.reserve(expected.range(family), whole);
        }
    }

    fn start_group(&mut self, labels: &GroupLabels, last: &str) {
        self.bytes.start_twin_group(&mut self.packets, labels, last);
    }

    fn sample(&mut self, last: impl LabelValue, counters: Counters) {
        self.bytes
            .twin_sample(&mut self.packets, last, [counters.bytes, counters.packets]);
    }

    fn samples<K: LabelValue + Copy>(&mut self, sums: &Sums<K>) {
        for &(key, counters) in &sums.sums {
            self.sample(key, counters);
        }
    }

    fn push_to(self, out: &mut ExpositionBuilder) {
        out.push(self.bytes);
        out.push(self.packets);
    }
}

/// Chains up to this many keys are grouped by linear search rather than through a map.
const SHORT_CHAIN: usize = 8;

/// Sums the counters of a chain's rules by label value, in order of first appearance: two
/// rules with the same label value would otherwise be two series with the same labels,
/// which Prometheus rejects. Its buffers are reused from chain to chain.
struct Sums<K> {
    sums: Vec<(K, Counters)>,
    index: HashMap<K, usize, foldhash::fast::RandomState>,
}

impl<K> Default for Sums<K> {
    fn default() -> Self {
        Sums {
            sums: Vec::new(),
            index: HashMap::default(),
        }
    }
}

impl<K: Copy + Eq + std::hash::Hash> Sums<K> {
    fn group(&mut self, keyed: impl Iterator<Item = (K, Counters)> + Clone) {
        self.sums.clear();
        // Most chains of a large ruleset are short (kube-proxy's per-endpoint chains hold
        // two rules): a linear search beats hashing for them.
        if keyed.clone().nth(SHORT_CHAIN).is_none() {
            for (key, counters) in keyed {
                match self.sums.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, sum)) => *sum += counters,
                    None => self.sums.push((key, counters)),
                }
            }
            return;
        }
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

impl LabelValue for Label<'_> {
    fn write_escaped(&self, out: &mut TextBuffer) {
        self.parts().write_escaped(out);
    }
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
    out.finish()
}

#[cfg(test)]
mod tests;
