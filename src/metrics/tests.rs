//! Unit tests of the parent module: summing of duplicate series, the cardinality controls,
//! failed sources and the absence of stale series.

use super::*;
use crate::exposition::Format;
use crate::ruleset::{Family, Ruleset};

fn parse(text: impl AsRef<str>) -> Ruleset {
    crate::source::iptables_save::parse(Family::Ipv4, text.as_ref())
}

const DUMP: &str = "\
*filter
:INPUT ACCEPT [100:10000]
:FORWARD DROP [1:60]
:OUTPUT ACCEPT [0:0]
:acct - [0:0]
[1:10] -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
[2:20] -A INPUT -p tcp -m tcp --dport 80 -j ACCEPT
[3:30] -A INPUT -p tcp -m tcp --dport 443 -m comment --comment web -j ACCEPT
[4:40] -A INPUT -p tcp -m tcp --dport 443 -m comment --comment \"web too\" -j ACCEPT
[5:50] -A INPUT -p tcp -m tcp --dport 8443 -m comment --comment web -j ACCEPT
[6:60] -A INPUT -m comment --comment a -m comment --comment b -j acct
[7:70] -A acct -m comment --comment \"say \\\"x\\\"\" -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [9:540]
[8:80] -A PREROUTING -m comment --comment web -j RETURN
COMMIT
";

fn report(outcome: Result<Ruleset, SourceError>) -> SourceReport {
    SourceReport {
        source: SourceId::Iptables,
        outcome: outcome.map(Reading::new),
        duration: Duration::from_millis(1500),
        finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        series: None,
    }
}

fn render(text: &str, config: &MetricsConfig) -> String {
    let exposition = render_source(&report(Ok(parse(text))), config, Storage::Plain);
    String::from_utf8(exposition.to_vec(Format::Text)).expect("UTF-8")
}

/// The value of the one sample whose line starts with `series` (name and labels).
fn value(rendered: &str, series: &str) -> Option<u64> {
    let mut found = rendered
        .lines()
        .filter_map(|l| l.strip_prefix(series)?.strip_prefix(' '));
    let v = found.next()?.parse().expect("integer sample");
    assert_eq!(found.next(), None, "{series} appears twice");
    Some(v)
}

fn rule(table: &str, chain: &str, rule: &str) -> String {
    format!("iptables_rule_packets_total{{table=\"{table}\",chain=\"{chain}\",rule=\"{rule}\"}}")
}

fn rule_bytes(table: &str, chain: &str, rule: &str) -> String {
    format!("iptables_rule_bytes_total{{table=\"{table}\",chain=\"{chain}\",rule=\"{rule}\"}}")
}

fn comment(table: &str, chain: &str, comment: &str) -> String {
    format!(
        "iptables_comment_packets_total{{table=\"{table}\",chain=\"{chain}\",comment=\"{comment}\"}}"
    )
}

fn chain_packets(table: &str, chain: &str, policy: &str) -> String {
    format!(
        "iptables_chain_packets_total{{table=\"{table}\",chain=\"{chain}\",policy=\"{policy}\"}}"
    )
}

fn count_lines(rendered: &str, prefix: &str) -> usize {
    rendered.lines().filter(|l| l.starts_with(prefix)).count()
}

#[test]
fn identical_rules_are_summed() {
    let out = render(DUMP, &MetricsConfig::default());
    let http = "-p tcp -m tcp --dport 80 -j ACCEPT";
    assert_eq!(value(&out, &rule("filter", "INPUT", http)), Some(3));
    assert_eq!(value(&out, &rule_bytes("filter", "INPUT", http)), Some(30));
}

#[test]
fn rules_differing_only_by_comment_are_summed() {
    let out = render(DUMP, &MetricsConfig::default());
    let https = "-p tcp -m tcp --dport 443 -j ACCEPT";
    assert_eq!(value(&out, &rule("filter", "INPUT", https)), Some(7));
    assert_eq!(value(&out, &rule_bytes("filter", "INPUT", https)), Some(70));
}

#[test]
fn series_keep_the_order_of_first_appearance() {
    let out = render(DUMP, &MetricsConfig::default());
    let rules: Vec<_> = out
        .lines()
        .filter(|l| l.starts_with("iptables_rule_packets_total{table=\"filter\",chain=\"INPUT\""))
        .collect();
    assert_eq!(rules.len(), 4);
    assert!(rules[0].contains("--dport 80 "));
    assert!(rules[1].contains("--dport 443 "));
    assert!(rules[2].contains("--dport 8443 "));
    assert!(rules[3].contains("-j acct"));
}

#[test]
fn comment_sums_over_rules_of_a_chain_only() {
    let out = render(DUMP, &MetricsConfig::default());
    assert_eq!(value(&out, &comment("filter", "INPUT", "web")), Some(8));
    assert_eq!(value(&out, &comment("filter", "INPUT", "web too")), Some(4));
    assert_eq!(value(&out, &comment("nat", "PREROUTING", "web")), Some(8));
    assert_eq!(
        value(
            &out,
            "iptables_comment_bytes_total{table=\"filter\",chain=\"INPUT\",comment=\"web\"}"
        ),
        Some(80)
    );
}

#[test]
fn rule_with_two_comments_counts_in_both() {
    let out = render(DUMP, &MetricsConfig::default());
    assert_eq!(value(&out, &comment("filter", "INPUT", "a")), Some(6));
    assert_eq!(value(&out, &comment("filter", "INPUT", "b")), Some(6));
    assert_eq!(value(&out, &rule("filter", "INPUT", "-j acct")), Some(6));
}

#[test]
fn comment_label_is_unescaped_then_escaped_for_the_exposition() {
    let out = render(DUMP, &MetricsConfig::default());
    assert_eq!(
        value(&out, &comment("filter", "acct", r#"say \"x\""#)),
        Some(7)
    );
    assert_eq!(value(&out, &rule("filter", "acct", "-j RETURN")), Some(7));
}

#[test]
fn chain_totals_and_counts() {
    let out = render(DUMP, &MetricsConfig::default());
    assert_eq!(
        value(&out, &chain_packets("filter", "INPUT", "ACCEPT")),
        Some(100)
    );
    assert_eq!(
        value(&out, &chain_packets("filter", "FORWARD", "DROP")),
        Some(1)
    );
    assert_eq!(value(&out, &chain_packets("filter", "acct", "-")), Some(0));
    assert_eq!(
        value(
            &out,
            "iptables_chain_bytes_total{table=\"nat\",chain=\"PREROUTING\",policy=\"ACCEPT\"}"
        ),
        Some(540)
    );
    assert_eq!(
        value(
            &out,
            "iptables_rules_total{table=\"filter\",chain=\"INPUT\"}"
        ),
        Some(6)
    );
    assert_eq!(
        value(
            &out,
            "iptables_rules_total{table=\"filter\",chain=\"OUTPUT\"}"
        ),
        Some(0)
    );
    assert_eq!(
        value(&out, "iptables_chains_total{table=\"filter\"}"),
        Some(4)
    );
    assert_eq!(value(&out, "iptables_chains_total{table=\"nat\"}"), Some(1));
    assert_eq!(
        value(&out, "iptables_scrape_duration_milliseconds"),
        Some(1500)
    );
    assert_eq!(value(&out, "iptables_scrape_success"), Some(1));
}

#[test]
fn legacy_duration_can_be_switched_off() {
    let config = MetricsConfig {
        legacy_duration: false,
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert!(!out.contains("scrape_duration_milliseconds"));
    assert_eq!(value(&out, "iptables_scrape_success"), Some(1));
}

fn filter(include: Option<&str>, exclude: Option<&str>) -> NameFilter {
    NameFilter {
        include: include.map(|p| NameFilter::anchored(p).expect("pattern")),
        exclude: exclude.map(|p| NameFilter::anchored(p).expect("pattern")),
    }
}

#[test]
fn name_filter_matches_whole_names() {
    let f = filter(Some("IN.*|acct"), Some("INPUT_.*"));
    assert!(f.allows("INPUT"));
    assert!(f.allows("acct"));
    assert!(!f.allows("acct2"), "include is anchored at the end");
    assert!(!f.allows("xacct"), "include is anchored at the start");
    assert!(!f.allows("INPUT_direct"), "excluded");
    assert!(NameFilter::default().allows("anything"));
    assert!(NameFilter::anchored("(").is_err());
}

#[test]
fn table_filter_limits_rule_and_comment_series_only() {
    let config = MetricsConfig {
        tables: filter(Some("nat"), None),
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert_eq!(
        count_lines(&out, "iptables_rule_packets_total{table=\"filter\""),
        0
    );
    assert_eq!(
        count_lines(&out, "iptables_comment_packets_total{table=\"filter\""),
        0
    );
    assert_eq!(
        value(&out, &rule("nat", "PREROUTING", "-j RETURN")),
        Some(8)
    );
    assert_eq!(value(&out, &comment("nat", "PREROUTING", "web")), Some(8));
    assert_eq!(
        value(&out, &chain_packets("filter", "INPUT", "ACCEPT")),
        Some(100)
    );
    assert_eq!(
        value(
            &out,
            "iptables_rules_total{table=\"filter\",chain=\"INPUT\"}"
        ),
        Some(6)
    );
}

#[test]
fn table_exclude_filter() {
    let config = MetricsConfig {
        tables: filter(None, Some("filter")),
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert_eq!(
        count_lines(&out, "iptables_rule_packets_total{table=\"filter\""),
        0
    );
    assert_eq!(
        count_lines(&out, "iptables_rule_packets_total{table=\"nat\""),
        1
    );
}

#[test]
fn chain_filter_include_and_exclude() {
    let config = MetricsConfig {
        chains: filter(Some("INPUT|acct"), Some("INPUT")),
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert_eq!(count_lines(&out, "iptables_rule_packets_total{"), 1);
    assert_eq!(value(&out, &rule("filter", "acct", "-j RETURN")), Some(7));
    assert_eq!(count_lines(&out, "iptables_comment_packets_total{"), 1);
    assert_eq!(count_lines(&out, "iptables_chain_packets_total{"), 5);
}

#[test]
fn rule_series_off_keeps_comments_and_chain_totals() {
    let config = MetricsConfig {
        rule_series: false,
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert!(!out.contains("iptables_rule_"));
    assert_eq!(value(&out, &comment("filter", "INPUT", "web")), Some(8));
    assert_eq!(
        value(&out, &chain_packets("filter", "INPUT", "ACCEPT")),
        Some(100)
    );
    assert_eq!(count_lines(&out, "iptables_rules_total{"), 5);
}

#[test]
fn comment_series_off_keeps_rules_and_chain_totals() {
    let config = MetricsConfig {
        comment_series: false,
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert!(!out.contains("iptables_comment_"));
    assert_eq!(value(&out, &rule("filter", "acct", "-j RETURN")), Some(7));
    assert_eq!(
        value(&out, &chain_packets("filter", "INPUT", "ACCEPT")),
        Some(100)
    );
}

#[test]
fn both_detail_series_off_keeps_chain_totals() {
    let config = MetricsConfig {
        rule_series: false,
        comment_series: false,
        ..MetricsConfig::default()
    };
    let out = render(DUMP, &config);
    assert!(!out.contains("iptables_rule_"));
    assert!(!out.contains("iptables_comment_"));
    assert_eq!(count_lines(&out, "iptables_chain_packets_total{"), 5);
    assert_eq!(count_lines(&out, "iptables_chain_bytes_total{"), 5);
    assert_eq!(count_lines(&out, "iptables_chains_total{"), 2);
}

#[test]
fn failed_source_renders_only_success_and_duration() {
    let failed = report(Err(SourceError::Failed {
        command: "iptables-save".to_owned(),
        status: "exit status: 1".to_owned(),
        stderr: "Permission denied".to_owned(),
    }));
    let out = String::from_utf8(
        render_source(&failed, &MetricsConfig::default(), Storage::Plain).to_vec(Format::Text),
    )
    .expect("UTF-8");
    let samples: Vec<_> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        [
            "iptables_scrape_duration_milliseconds 1500",
            "iptables_scrape_success 0"
        ]
    );
}

#[test]
fn rule_that_disappears_has_no_series_in_the_next_rendering() {
    let config = MetricsConfig::default();
    let before = render(DUMP, &config);
    let gone = "-p tcp -m tcp --dport 8443 -j ACCEPT";
    assert_eq!(value(&before, &rule("filter", "INPUT", gone)), Some(5));
    let after_dump = DUMP.replace(
        "[5:50] -A INPUT -p tcp -m tcp --dport 8443 -m comment --comment web -j ACCEPT\n",
        "",
    );
    assert_ne!(after_dump, DUMP);
    let after = render(&after_dump, &config);
    assert_eq!(value(&after, &rule("filter", "INPUT", gone)), None);
    assert!(!after.contains("8443"));
    assert_eq!(value(&after, &comment("filter", "INPUT", "web")), Some(3));
}

#[test]
fn chain_that_disappears_has_no_series_in_the_next_rendering() {
    let config = MetricsConfig::default();
    let after_dump = DUMP.replace(":acct - [0:0]\n", "").replace(
        "[7:70] -A acct -m comment --comment \"say \\\"x\\\"\" -j RETURN\n",
        "",
    );
    let after = render(&after_dump, &config);
    assert!(parse(&after_dump).unparsed.is_empty());
    assert!(!after.contains("chain=\"acct\""));
    assert_eq!(
        value(&after, "iptables_chains_total{table=\"filter\"}"),
        Some(3)
    );
}

#[test]
fn empty_ruleset_renders_only_scrape_metrics() {
    let out = render("", &MetricsConfig::default());
    let samples: Vec<_> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        samples,
        [
            "iptables_scrape_duration_milliseconds 1500",
            "iptables_scrape_success 1"
        ]
    );
}

#[test]
fn source_prefix_names_every_family() {
    let report = SourceReport {
        source: SourceId::Ip6tablesLegacy,
        ..report(Ok(parse(DUMP)))
    };
    let out = String::from_utf8(
        render_source(&report, &MetricsConfig::default(), Storage::Plain).to_vec(Format::Text),
    )
    .expect("UTF-8");
    for line in out.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("ip6tables_legacy_"), "{line}");
    }
}

#[test]
fn exporter_families_per_source() {
    let ok = report(Ok(parse(DUMP)));
    let failed = SourceReport {
        source: SourceId::Ip6tables,
        ..report(Err(SourceError::NotFound {
            command: "ip6tables-save".to_owned(),
        }))
    };
    let out =
        String::from_utf8(render_exporter(&[&ok, &failed]).to_vec(Format::Text)).expect("UTF-8");
    assert!(out.contains("netfilter_exporter_collection_success{source=\"iptables\"} 1\n"));
    assert!(out.contains("netfilter_exporter_collection_success{source=\"ip6tables\"} 0\n"));
    assert!(
        out.contains("netfilter_exporter_collection_duration_seconds{source=\"iptables\"} 1.5\n")
    );
    assert!(out.contains(
        "netfilter_exporter_collection_timestamp_seconds{source=\"iptables\"} 1700000000\n"
    ));
    assert!(out.contains("netfilter_exporter_rules{source=\"iptables\"} 8\n"));
    assert!(!out.contains("netfilter_exporter_rules{source=\"ip6tables\"}"));
    assert!(out.contains("netfilter_exporter_unparsed_lines{source=\"iptables\"} 0\n"));
}

/// A ruleset large enough to be rendered in two parts: `chains` chains of `per_chain`
/// rules, rule `i` (over all chains) counting `i` packets and carrying comment `c<i>`.
fn large_dump(chains: usize, per_chain: usize) -> String {
    let mut dump = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    for c in 0..chains {
        dump.push_str(&format!(":C{c} - [0:0]\n"));
    }
    for c in 0..chains {
        for r in 0..per_chain {
            let i = c * per_chain + r;
            dump.push_str(&format!(
                "[{i}:{}] -A C{c} -s 10.{}.{}.{}/32 -m comment --comment c{i} -j RETURN\n",
                i * 100,
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
    }
    dump.push_str("COMMIT\n");
    dump
}

#[test]
fn a_large_ruleset_keeps_every_series_once_and_in_order() {
    // Large enough that the rule families are cut into many pieces, whose text the
    // compressed storage must give back.
    let (chains, per_chain) = (7, 9_000);
    let report = report(Ok(parse(large_dump(chains, per_chain))));
    let config = MetricsConfig::default();
    let plain = render_source(&report, &config, Storage::Plain).to_vec(Format::Text);
    let text = String::from_utf8(plain.clone()).expect("UTF-8");
    for family in [
        "rule_packets",
        "comment_packets",
        "rule_bytes",
        "comment_bytes",
    ] {
        let prefix = format!("iptables_{family}_total{{");
        let values: Vec<u64> = text
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("value")
            })
            .collect();
        let scale = if family.ends_with("bytes") { 100 } else { 1 };
        let expected: Vec<u64> = (0..(chains * per_chain) as u64)
            .map(|i| i * scale)
            .collect();
        assert!(
            values == expected,
            "{family}: series missing, repeated or out of order"
        );
        assert_eq!(
            text.matches(&format!("# TYPE iptables_{family}_total "))
                .count(),
            1
        );
    }
    // The server's storage gives back the same text, whether it keeps it or not.
    for (keep_plain, kept) in [(0, false), (usize::MAX, true)] {
        let storage = Storage::Compressed { keep_plain };
        let exposition = render_source(&report, &config, storage);
        assert_eq!(exposition.is_plain(), kept, "keep_plain {keep_plain}");
        assert!(
            exposition.to_vec(Format::Text) == plain,
            "keep_plain {keep_plain}"
        );
    }
}

#[test]
fn a_report_kept_in_part_still_counts_the_whole_snapshot() {
    let mut ok = report(Ok(parse(format!("{DUMP}*mangle\nbad line\nCOMMIT\n"))));
    if let Ok(collected) = &mut ok.outcome {
        collected.keep_only(|_, chain| chain.name == "acct");
        assert_eq!(collected.ruleset.rule_count(), 1);
    }
    let out = String::from_utf8(render_exporter(&[&ok]).to_vec(Format::Text)).expect("UTF-8");
    assert!(
        out.contains("netfilter_exporter_rules{source=\"iptables\"} 8\n"),
        "{out}"
    );
    assert!(
        out.contains("netfilter_exporter_unparsed_lines{source=\"iptables\"} 1\n"),
        "{out}"
    );
}

#[test]
fn rules_whose_labels_differ_only_by_where_their_comment_was_are_one_series() {
    for filler in [0, 12] {
        let mut dump = "*filter\n:INPUT ACCEPT [0:0]\n".to_owned();
        for i in 0..filler {
            dump += &format!("[1:1] -A INPUT -s 10.0.0.{i}/32 -j DROP\n");
        }
        dump += "\
[1:10] -A INPUT -p tcp -m comment --comment a -j ACCEPT
[2:20] -A INPUT -p tcp -j ACCEPT
[4:40] -A INPUT -m comment --comment \"b c\" -p tcp -j ACCEPT
[8:80] -A INPUT -p tcp -j ACCEPT -m comment --comment c
COMMIT
";
        let out = render(&dump, &MetricsConfig::default());
        let series = rule("filter", "INPUT", "-p tcp -j ACCEPT");
        assert_eq!(value(&out, &series), Some(15), "{filler}: {out}");
        let series = rule_bytes("filter", "INPUT", "-p tcp -j ACCEPT");
        assert_eq!(value(&out, &series), Some(150), "{filler}");
    }
}

/// The kube-proxy fixture: thousands of rules in many user-defined chains.
const KUBE_PROXY: &str = include_str!("../../tests/fixtures/kube-proxy.rules");

/// The droppable series of an exposition by step (per-rule, per-comment, user-defined
/// chains'), each as (table, chain) per series.
fn droppable(rendered: &str, ruleset: &Ruleset) -> [Vec<(String, String)>; 3] {
    let user_chain = |table: &str, chain: &str| {
        ruleset
            .table(table)
            .and_then(|t| t.chain(chain))
            .is_some_and(|c| c.base.is_none())
    };
    let mut steps: [Vec<(String, String)>; 3] = Default::default();
    for line in rendered.lines().filter(|l| !l.starts_with('#')) {
        let name = &line[..line.find(['{', ' ']).expect("a sample")];
        let label = |key: &str| {
            let start = line.find(&format!("{key}=\"")).expect("label") + key.len() + 2;
            line[start..].split('"').next().expect("value").to_owned()
        };
        let step = match name {
            "iptables_rule_bytes_total" | "iptables_rule_packets_total" => 0,
            "iptables_comment_bytes_total" | "iptables_comment_packets_total" => 1,
            "iptables_chain_bytes_total"
            | "iptables_chain_packets_total"
            | "iptables_rules_total"
                if user_chain(&label("table"), &label("chain")) =>
            {
                2
            }
            _ => continue,
        };
        steps[step].push((label("table"), label("chain")));
    }
    steps
}

#[test]
fn max_series_keeps_at_most_n_finest_first_the_largest_chains_first() {
    let ruleset = parse(KUBE_PROXY);
    let unlimited = render(KUBE_PROXY, &MetricsConfig::default());
    let all = droppable(&unlimited, &ruleset);
    let total: usize = all.iter().map(Vec::len).sum();
    assert!(total > 200, "a fixture with many series: {total}");
    let rules_in = |(table, chain): &(String, String)| {
        ruleset
            .table(table)
            .and_then(|t| t.chain(chain))
            .map_or(0, |c| c.rules.len())
    };
    for max in [1, 7, total / 3, total / 2, total - 1, total, total + 5] {
        let config = MetricsConfig {
            max_series: max,
            ..MetricsConfig::default()
        };
        let rendered = render(KUBE_PROXY, &config);
        assert_eq!(
            rendered,
            render(KUBE_PROXY, &config),
            "the same input, the same series"
        );
        let kept = droppable(&rendered, &ruleset);
        let kept_total: usize = kept.iter().map(Vec::len).sum();
        assert!(
            kept_total <= max,
            "{kept_total} series kept with --max-series {max}"
        );
        let counted = series(&report(Ok(parse(KUBE_PROXY))), &config).expect("a limit");
        assert_eq!(
            (counted.kept, counted.dropped),
            (kept_total, total - kept_total)
        );
        // Whole groups at a time: never more than one pair (or one chain's three series)
        // below the limit.
        assert!(
            max.min(total) - kept_total < 3,
            "{kept_total} kept of {max}"
        );
        for step in 1..3 {
            if kept[step].len() < all[step].len() {
                assert!(
                    kept[step - 1].is_empty(),
                    "step {step} dropped before step {}",
                    step - 1
                );
            }
        }
        // Within a step, a chain loses series only when every larger chain lost all of its.
        for step in 0..3 {
            let lost: Vec<&(String, String)> = all[step]
                .iter()
                .filter(|at| {
                    kept[step].iter().filter(|k| k == at).count()
                        < all[step].iter().filter(|a| a == at).count()
                })
                .collect();
            let Some(smallest) = lost.iter().map(|at| rules_in(at)).min() else {
                continue;
            };
            for at in &kept[step] {
                assert!(
                    rules_in(at) <= smallest,
                    "{at:?} ({} rules) kept while a chain of {smallest} rules lost series",
                    rules_in(at)
                );
            }
        }
    }
    let none = series(&report(Ok(parse(KUBE_PROXY))), &MetricsConfig::default());
    assert_eq!(none, None, "no limit, no count");
}
