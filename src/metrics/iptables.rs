//! Snapshot → the families of an iptables source, as iptables_exporter names them, under
//! the source's metric prefix: per chain its policy counters and rule count, per rule and
//! per comment the summed counters, per table the chain count, and the collection's
//! success and duration.

use super::limit::{Plan, Step, Unit};
use super::{CounterPair, MetricsConfig, SourceReport, Sums, names};
use crate::exposition::{ExpositionBuilder, Labels, MetricType};
use crate::ruleset::{Chain, Ruleset};

/// Writes the families of `report`. A failed collection writes only its duration and
/// `*_scrape_success 0`.
pub(super) fn render(
    out: &mut ExpositionBuilder,
    report: &SourceReport,
    config: &MetricsConfig,
    plan: &Plan<'_>,
) {
    let prefix = report.source.metric_prefix();
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    if let Ok(reading) = &report.outcome {
        render_ruleset(out, prefix, &reading.ruleset, config, plan);
    }
    if config.legacy_duration {
        let (suffix, help) = names::iptables::SCRAPE_DURATION_MS;
        out.family(&name(suffix), help, MetricType::Gauge)
            .sample(&[], report.duration.as_millis() as u64);
    }
    let (suffix, help) = names::iptables::SCRAPE_SUCCESS;
    out.family(&name(suffix), help, MetricType::Gauge)
        .sample(&[], u64::from(report.outcome.is_ok()));
}

/// The series `render_ruleset` may drop under `--max-series`, chain by chain.
pub(super) fn units<'a>(ruleset: &'a Ruleset, config: &MetricsConfig) -> Vec<Unit<'a>> {
    let mut units = Vec::new();
    let mut sums = Sums::default();
    for (table, chain) in ruleset.chains() {
        let unit = |step, series, grain| Unit::of(step, table, chain, series, grain);
        if chain.base.is_none() {
            // The policy pair and the rule count, dropped together.
            units.push(unit(Step::Chain, 3, 3));
        }
        if !config.selects(&table.name, &chain.name) {
            continue;
        }
        if config.rule_series {
            rule_sums(&mut sums, chain);
            units.push(unit(Step::Rule, 2 * sums.sums.len(), 2));
        }
        if config.comment_series {
            comment_sums(&mut sums, chain);
            units.push(unit(Step::Comment, 2 * sums.sums.len(), 2));
        }
    }
    units
}

/// The counters of `chain`'s rules summed by their `rule` label.
fn rule_sums<'a>(sums: &mut Sums<'a>, chain: &'a Chain) {
    sums.group(chain.rules.iter().map(|r| (r.label(), r.counters)));
}

/// The counters of `chain`'s rules summed by comment.
fn comment_sums<'a>(sums: &mut Sums<'a>, chain: &'a Chain) {
    sums.group(chain.rules.iter().flat_map(|r| {
        let counters = r.counters;
        r.comments.iter().map(move |c| (c.as_str(), counters))
    }));
}

/// Writes the iptables_exporter families of a snapshot, in its order: per chain, the
/// policy counters and the rule count; per rule and per comment of the chains the
/// cardinality controls select, the summed counters; per table, the chain count. What
/// `plan` drops is left out.
fn render_ruleset(
    out: &mut ExpositionBuilder,
    prefix: &str,
    ruleset: &Ruleset,
    config: &MetricsConfig,
    plan: &Plan<'_>,
) {
    let family = |(suffix, help): (&str, &str), metric_type| {
        out.writer(&format!("{prefix}_{suffix}"), help, metric_type)
    };
    let pair = |bytes, packets| CounterPair {
        bytes: family(bytes, MetricType::Counter),
        packets: family(packets, MetricType::Counter),
        labels: Labels::default(),
    };
    let mut chain_pair = pair(names::iptables::CHAIN_BYTES, names::iptables::CHAIN_PACKETS);
    let mut rule_pair = config
        .rule_series
        .then(|| pair(names::iptables::RULE_BYTES, names::iptables::RULE_PACKETS));
    let mut comment_pair = config.comment_series.then(|| {
        pair(
            names::iptables::COMMENT_BYTES,
            names::iptables::COMMENT_PACKETS,
        )
    });
    let mut rules_total = family(names::iptables::RULES, MetricType::Untyped);
    let mut chains_total = family(names::iptables::CHAINS, MetricType::Untyped);
    let mut sums = Sums::default();
    for (table, chain) in ruleset.chains() {
        let (table_name, chain_name) = (table.name.as_str(), chain.name.as_str());
        let kept = |step, series| plan.keep(step, table_name, chain_name, series);
        if chain.base.is_some() || kept(Step::Chain, 3) > 0 {
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
        }
        if !config.selects(table_name, chain_name) {
            continue;
        }
        if let Some(pair) = &mut rule_pair {
            rule_sums(&mut sums, chain);
            sums.sums
                .truncate(kept(Step::Rule, 2 * sums.sums.len()) / 2);
            pair.samples(table_name, chain_name, "rule", &sums);
        }
        if let Some(pair) = &mut comment_pair {
            comment_sums(&mut sums, chain);
            sums.sums
                .truncate(kept(Step::Comment, 2 * sums.sums.len()) / 2);
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
