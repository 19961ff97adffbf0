//! The benchmarks' ruleset generator (`benches/generate`) keeps its promises: exactly the
//! rules asked for, kube-proxy's shape and chains per rule at every size, the same bytes
//! every time, and text that iptables-save itself prints back unchanged.

use std::collections::BTreeMap;

use netfilter_exporter::ruleset::{Family, Ruleset};
use netfilter_exporter::source::iptables_save;

use crate::generator::{BASE_RULES, kube_proxy_dump};
use crate::harness::{Netns, require_command, require_kernel};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "gen";

/// Chains per rule of the kube-proxy state the generator models
/// (`gen_iptables_save.py --preset 100k`: 25,585 chains, 74,399 rules).
const KUBE_PROXY_CHAINS_PER_RULE: f64 = 25_585.0 / 74_399.0;

/// The built-in chains of the tables the dump holds.
const BUILTINS: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];

#[test]
fn exactly_the_rules_asked_for_from_the_base_up() {
    let sizes = (0..BASE_RULES + 40).chain([99, 1_000, 1_001, 4_321, 10_000, 100_000]);
    for rules in sizes {
        let dump = kube_proxy_dump(rules);
        let parsed = parse(&dump);
        assert!(parsed.unparsed.is_empty(), "{rules}: {:?}", parsed.unparsed);
        assert_eq!(parsed.rule_count(), rules.max(BASE_RULES), "{rules}");
        let rule_lines = dump.lines().filter(|l| l.contains(" -A ")).count();
        assert_eq!(rule_lines, rules.max(BASE_RULES), "{rules}");
    }
}

#[test]
fn about_one_chain_per_three_rules_as_kube_proxy_makes() {
    for rules in [1_000, 10_000, 100_000] {
        let parsed = parse(&kube_proxy_dump(rules));
        let ratio = parsed.chains().count() as f64 / parsed.rule_count() as f64;
        assert!(
            (ratio / KUBE_PROXY_CHAINS_PER_RULE - 1.0).abs() < 0.1,
            "{rules} rules: {ratio:.3} chains per rule, kube-proxy {KUBE_PROXY_CHAINS_PER_RULE:.3}"
        );
    }
}

fn parse(dump: &str) -> Ruleset {
    iptables_save::parse(Family::Ipv4, dump)
}

#[test]
fn the_same_size_gives_the_same_bytes() {
    assert_eq!(kube_proxy_dump(5_000), kube_proxy_dump(5_000));
}

#[test]
fn kube_proxy_chains_jump_only_to_declared_chains() {
    let parsed = parse(&kube_proxy_dump(10_000));
    let tables: Vec<&str> = parsed.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(tables, ["mangle", "filter", "nat"]);
    let mut kinds = BTreeMap::<(&str, &str), usize>::new();
    for table in &parsed.tables {
        let user: Vec<&str> = table
            .chains
            .iter()
            .map(|c| c.name.as_str())
            .filter(|name| !BUILTINS.contains(name))
            .collect();
        assert!(user.is_sorted(), "{}: user chains not sorted", table.name);
        for chain in &table.chains {
            let kind = chain.name.get(..9).filter(|p| p.ends_with('-'));
            if let Some(kind) = kind {
                *kinds.entry((table.name.as_str(), kind)).or_default() += 1;
            }
            for rule in &chain.rules {
                let Some(target) = rule.matches.target() else {
                    panic!("{}: rule without a target: {}", chain.name, rule.text);
                };
                if target.starts_with("KUBE-") {
                    assert!(
                        table.chain(target).is_some(),
                        "{} jumps to {target}, not declared in {}",
                        chain.name,
                        table.name
                    );
                }
            }
        }
    }
    for kind in ["KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-SVL-"] {
        assert!(
            kinds.get(&("nat", kind)).is_some_and(|&n| n > 0),
            "{kind}: {kinds:?}"
        );
    }
    let comments = parsed
        .chains()
        .flat_map(|(_, chain)| &chain.rules)
        .filter(|r| !r.comments.is_empty())
        .count();
    assert!(
        comments * 10 > parsed.rule_count() * 9,
        "{comments} commented rules"
    );
}

/// Loaded with `iptables-restore --counters`, the dump is what `iptables-save --counters`
/// prints, but for its `#` lines (timestamps) and the tables' order, which iptables-legacy
/// takes from the kernel.
#[test]
fn iptables_save_prints_it_back_unchanged() {
    if !require_kernel()
        || !require_command("iptables-restore")
        || !require_command("iptables-save")
    {
        return;
    }
    let dump = kube_proxy_dump(10_000);
    let ns = Netns::new(NETNS_LABEL);
    let output = ns.output("iptables-restore", &["--counters"], &dump);
    assert!(
        output.status.success(),
        "iptables-restore failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let saved = ns.run("iptables-save", &["--counters"]);
    assert!(
        tables(&saved) == tables(&dump),
        "iptables-save printed it otherwise"
    );
}

/// The tables of a dump by name, each its text without the `#` lines.
fn tables(dump: &str) -> BTreeMap<String, String> {
    let mut tables = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in dump.lines().filter(|l| !l.starts_with('#')) {
        if let Some(name) = line.strip_prefix('*') {
            current = Some((name.to_owned(), String::new()));
        } else if let Some((name, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
            if line == "COMMIT" {
                tables.insert(name.clone(), std::mem::take(text));
            }
        }
    }
    tables
}

#[test]
fn a_series_limit_on_generated_rulesets_keeps_at_most_n_the_same_ones_every_time() {
    use netfilter_exporter::exposition::{Format, Storage};
    use netfilter_exporter::metrics::{self, MetricsConfig, SourceReport};
    use netfilter_exporter::source::{Reading, SourceId};

    for rules in [1_000, 10_000] {
        let report = SourceReport {
            source: SourceId::Iptables,
            outcome: Ok(Reading::new(parse(&kube_proxy_dump(rules)))),
            duration: std::time::Duration::ZERO,
            finished_at: std::time::SystemTime::UNIX_EPOCH,
            series: None,
        };
        let render = |config: &MetricsConfig| {
            metrics::render_source(&report, config, Storage::Plain).to_vec(Format::Text)
        };
        let samples = |text: &[u8]| {
            text.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
                .count()
        };
        let unlimited = samples(&render(&MetricsConfig::default()));
        for max_series in [10, 1_000, rules] {
            let config = MetricsConfig {
                max_series,
                ..MetricsConfig::default()
            };
            let counted = metrics::series(&report, &config).expect("a limit");
            assert!(counted.kept <= max_series, "{rules}: {counted:?}");
            let limited = render(&config);
            assert_eq!(
                samples(&limited),
                unlimited - counted.dropped,
                "{rules} rules, --max-series {max_series}: the dropped count is exact"
            );
            assert_eq!(limited, render(&config), "the same series every time");
        }
    }
}
