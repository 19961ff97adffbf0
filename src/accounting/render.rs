//! Accounting views → metric families.
//!
//! Each grammar writes its own pair of counter families, so that every family keeps one
//! set of label names: tags (`family`, `tag`, `direction` on pairs), label comments (the
//! comments' keys) and rule parameters (`address`, `direction`, `l2proto`, `l3proto`,
//! `port`). Descriptions go to an `_info` gauge, never onto counters, and every problem is
//! counted per chain in `<prefix>_rejected_rules` and returned for the caller to log.

use std::collections::BTreeMap;

use super::series::Series;
use super::{AccountingConfig, ChainSet, Problem, Traffic, labels, params, tag_view};
use crate::exposition::{Exposition, ExpositionBuilder, MetricType};
use crate::ruleset::{Counters, Family, Ruleset};
use crate::source::SourceId;

/// Renders the accounting families over the snapshots of every source that was collected,
/// each with the family of its source. Two sources of one family reporting the same
/// chain are summed (the nf_tables and legacy tables are distinct kernel tables, so both
/// count real packets). Also returns every problem found, so that the caller can report
/// them.
pub fn render(
    rulesets: &[(SourceId, &Ruleset)],
    config: &AccountingConfig,
) -> (Exposition, Vec<Problem>) {
    let tags = tag_view(rulesets, config);
    let (labeled, label_problems) = labels::label_view(rulesets, config);
    let (derived, param_problems) = params::param_view(rulesets, config);
    let problems: Vec<Problem> = tags
        .problems
        .iter()
        .chain(&label_problems)
        .chain(&param_problems)
        .cloned()
        .collect();

    let mut out = ExpositionBuilder::default();
    let name = |prefix: &str, suffix: &str| format!("{prefix}_{suffix}");
    for (suffix, help, value) in COUNTERS {
        let family_name = name(&config.prefix, suffix);
        let mut family = out.family(&family_name, help.tags, MetricType::Counter);
        for entity in &tags.entities {
            let base = [("family", entity.family.as_str()), ("tag", &entity.tag)];
            match entity.traffic {
                Traffic::Single(counters) => family.sample(&base, value(counters)),
                Traffic::Paired { up, down } => {
                    for (direction, counters) in [("out", up), ("in", down)] {
                        if let Some(counters) = counters {
                            let labels = [base[0], base[1], ("direction", direction)];
                            family.sample(&labels, value(counters));
                        }
                    }
                }
            }
        }
    }
    let info_name = name(&config.prefix, "info");
    let mut info = out.family(
        &info_name,
        "Description of an accounting tag (the first non-empty one met, else the tag); always 1.",
        MetricType::Gauge,
    );
    for entity in &tags.entities {
        let labels = [
            ("family", entity.family.as_str()),
            ("tag", entity.tag.as_str()),
            ("description", entity.description.as_str()),
        ];
        info.sample(&labels, 1u64);
    }
    drop(info);
    write_series(&mut out, &config.labels_prefix, &labeled, |h| h.labels);
    write_series(&mut out, &config.rule_params_prefix, &derived, |h| {
        h.rule_params
    });

    let rejected_name = name(&config.prefix, "rejected_rules");
    let mut rejected = out.family(
        &rejected_name,
        "Rules of an accounting chain left out of the accounting series because of a logged problem (bad comment, conflicting tag, label set).",
        MetricType::Gauge,
    );
    for ((family, chain), count) in rejected_counts(rulesets, config, &problems) {
        rejected.sample(&[("family", family.as_str()), ("chain", chain)], count);
    }
    drop(rejected);
    (out.finish(), problems)
}

/// Help texts of one counter suffix, per grammar.
struct Help {
    tags: &'static str,
    labels: &'static str,
    rule_params: &'static str,
}

/// A counter suffix, its help texts and how to read its value from [`Counters`].
type CounterFamily = (&'static str, Help, fn(Counters) -> u64);

/// The two counter suffixes.
const COUNTERS: [CounterFamily; 2] = [
    (
        "bytes_total",
        Help {
            tags: "Bytes counted by the rules of an accounting tag (summed; direction out = tag_up, in = tag_down).",
            labels: "Bytes counted by an accounting rule labelled with an nft(key=value;...) comment.",
            rule_params: "Bytes counted by an accounting rule, labelled from its match parameters.",
        },
        |c| c.bytes,
    ),
    (
        "packets_total",
        Help {
            tags: "Packets counted by the rules of an accounting tag (summed; direction out = tag_up, in = tag_down).",
            labels: "Packets counted by an accounting rule labelled with an nft(key=value;...) comment.",
            rule_params: "Packets counted by an accounting rule, labelled from its match parameters.",
        },
        |c| c.packets,
    ),
];

/// Writes the bytes and packets families of labelled series under `prefix`.
fn write_series(
    out: &mut ExpositionBuilder,
    prefix: &str,
    series: &[Series],
    help: fn(&Help) -> &'static str,
) {
    for (suffix, h, value) in &COUNTERS {
        let family_name = format!("{prefix}_{suffix}");
        let mut family = out.family(&family_name, help(h), MetricType::Counter);
        for s in series {
            let labels: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            family.sample(&labels, value(s.counters));
        }
    }
}

/// Problems per chain: every named accounting chain and the rule-parameter chain that
/// exist get a series (0 when clean); with `all`, only chains that had a problem.
fn rejected_counts<'a>(
    rulesets: &'a [(SourceId, &'a Ruleset)],
    config: &'a AccountingConfig,
    problems: &'a [Problem],
) -> BTreeMap<(Family, &'a str), u64> {
    let mut counts: BTreeMap<(Family, &str), u64> = BTreeMap::new();
    let named = |source: SourceId, family: Family| match (source, family) {
        (SourceId::Nftables, _) => &config.nftables_chains,
        (_, Family::Ipv4) => &config.ipv4_chains,
        (_, Family::Ipv6) => &config.ipv6_chains,
        _ => &config.nftables_chains,
    };
    for &(source, ruleset) in rulesets {
        for (table, chain) in ruleset.chains() {
            let listed = matches!(named(source, table.family), ChainSet::Named(_))
                && config.accounts(source, table, chain);
            if listed || config.derives(source, chain) {
                counts.entry((table.family, &chain.name)).or_default();
            }
        }
    }
    for problem in problems {
        *counts.entry((problem.family, &problem.chain)).or_default() += 1;
    }
    counts
}
