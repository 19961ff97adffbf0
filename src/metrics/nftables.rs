//! Snapshot → the nftables source's families: rules by handle and comment, chains, the
//! generation, named counters, quotas and sets.

use super::limit::{Plan, Step, Unit};
use super::{CounterPair, MetricsConfig, SourceReport, names};
use crate::exposition::{ExpositionBuilder, Labels, MetricType};
use crate::ruleset::Ruleset;

/// The series `render` may drop under `--max-series`, chain by chain.
pub(super) fn units<'a>(ruleset: &'a Ruleset, config: &MetricsConfig) -> Vec<Unit<'a>> {
    let mut units = Vec::new();
    for (table, chain) in ruleset.chains() {
        let unit = |step, series, grain| Unit::of(step, table, chain, series, grain);
        if chain.base.is_none() {
            units.push(unit(Step::Chain, 1, 1));
        }
        if config.rule_series && config.selects(&table.name, &chain.name) {
            let counted = chain.rules.iter().filter(|r| r.counted).count();
            units.push(unit(Step::Rule, 2 * counted, 2));
        }
    }
    units
}

/// Writes the nftables families of `report`'s snapshot; the cardinality controls select
/// the tables and chains whose rule series are written. The source is newer than
/// iptables_exporter: its success and duration are the exporter's per-source families only.
pub(super) fn render(
    out: &mut ExpositionBuilder,
    report: &SourceReport,
    config: &MetricsConfig,
    plan: &Plan<'_>,
) {
    let Ok(reading) = &report.outcome else {
        return;
    };
    let ruleset: &Ruleset = &reading.ruleset;
    let counter = |(name, help): (&str, &str)| out.writer(name, help, MetricType::Counter);
    let gauge = |(name, help): (&str, &str)| out.writer(name, help, MetricType::Gauge);
    let pair = |bytes, packets| CounterPair {
        bytes: counter(bytes),
        packets: counter(packets),
        labels: Labels::default(),
    };
    let mut rules = config
        .rule_series
        .then(|| pair(names::nftables::RULE_BYTES, names::nftables::RULE_PACKETS));
    let mut chain_rules = gauge(names::nftables::CHAIN_RULES);
    let mut chain_info = gauge(names::nftables::CHAIN_INFO);
    let mut counters = pair(
        names::nftables::COUNTER_BYTES,
        names::nftables::COUNTER_PACKETS,
    );
    let mut quota_used = gauge(names::nftables::QUOTA_USED);
    let mut quota_limit = gauge(names::nftables::QUOTA_LIMIT);
    let mut sets = gauge(names::nftables::SET_ELEMENTS);
    let mut handle = itoa::Buffer::new();
    let mut priority = itoa::Buffer::new();
    for (table, chain) in ruleset.chains() {
        let family = table.family.nft_name();
        let at = [
            ("family", family),
            ("table", &table.name),
            ("chain", &chain.name),
        ];
        let kept = |step, series| plan.keep(step, &table.name, &chain.name, series);
        if chain.base.is_some() || kept(Step::Chain, 1) > 0 {
            chain_rules.sample(&at, chain.rules.len() as u64);
        }
        if let Some(base) = &chain.base {
            chain_info.sample(
                &[
                    at[0],
                    at[1],
                    at[2],
                    ("type", base.chain_type.map_or("", |t| t.as_str())),
                    ("hook", base.hook.map_or("", |h| h.as_str())),
                    ("priority", base.priority.map_or("", |p| priority.format(p))),
                    ("policy", nft_policy(base.policy)),
                ],
                1u64,
            );
        }
        let Some(pair) = &mut rules else { continue };
        if !config.selects(&table.name, &chain.name) {
            continue;
        }
        let counted = chain.rules.iter().filter(|r| r.counted);
        let keep = kept(Step::Rule, 2 * counted.clone().count()) / 2;
        for rule in counted.take(keep) {
            let handle = rule.handle.map_or("", |h| handle.format(h));
            let comment = rule.comments.first().map_or("", String::as_str);
            pair.sample(
                &[
                    at[0],
                    at[1],
                    at[2],
                    ("handle", handle),
                    ("comment", comment),
                ],
                rule.counters,
            );
        }
    }
    for table in &ruleset.tables {
        let at = |name| {
            [
                ("family", table.family.nft_name()),
                ("table", &table.name),
                ("name", name),
            ]
        };
        for named in &table.objects.counters {
            counters.sample(&at(&named.name), named.counters);
        }
        for quota in &table.objects.quotas {
            quota_used.sample(&at(&quota.name), quota.used_bytes);
            quota_limit.sample(&at(&quota.name), quota.limit_bytes);
        }
        for set in &table.objects.sets {
            if let Some(elements) = set.elements {
                let labels = [
                    ("family", table.family.nft_name()),
                    ("table", &table.name),
                    ("set", &set.name),
                ];
                sets.sample(&labels, elements);
            }
        }
    }
    for pair in rules.into_iter().chain([counters]) {
        out.push(pair.bytes);
        out.push(pair.packets);
    }
    for family in [chain_rules, chain_info, quota_used, quota_limit, sets] {
        out.push(family);
    }
    if let Some(generation) = ruleset.generation {
        let (name, help) = names::nftables::GENERATION;
        out.family(name, help, MetricType::Gauge)
            .sample(&[], u64::from(generation));
    }
}

/// A policy as `nft` writes it.
fn nft_policy(policy: crate::ruleset::Policy) -> &'static str {
    use crate::ruleset::Policy;
    match policy {
        Policy::Accept => "accept",
        Policy::Drop => "drop",
        Policy::Queue => "queue",
        Policy::Return => "return",
    }
}
