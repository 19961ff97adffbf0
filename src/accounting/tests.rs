//! Whole-view tests over literal rulesets.

use super::*;
use crate::exposition::Format;
fn parse(text: impl AsRef<str>) -> Ruleset {
    crate::source::iptables_save::parse(Family::Ipv4, text.as_ref())
}

fn parse6(text: impl AsRef<str>) -> Ruleset {
    crate::source::iptables_save::parse(Family::Ipv6, text.as_ref())
}

/// Rules 1–5 of the Munin article's example, with made-up counters.
const MUNIN4: &str = r#"*filter
:INPUT ACCEPT [0:0]
:ACCT4 - [0:0]
-A INPUT -j ACCT4
[1:60] -A ACCT4 ! -s 10.2.3.0/24 -p tcp -m tcp --dport 22 -m comment --comment "=unauthssh= Unauthorized SSH traffic received"
[2:120] -A ACCT4 -d 192.168.24.1/32 -p tcp -m tcp --dport 80 -m comment --comment "=web4_down= Combined web traffic to/from local 80/443"
[3:300] -A ACCT4 -s 192.168.24.1/32 -p tcp -m tcp --sport 80 -m comment --comment "=web4_up= dummy"
[4:400] -A ACCT4 -d 192.168.24.1/32 -p tcp -m tcp --dport 443 -m comment --comment "=web4_down= dummy"
[5:500] -A ACCT4 -s 192.168.24.1/32 -p tcp -m tcp --sport 443 -m comment --comment "=web4_up= dummy"
[7:700] -A ACCT4 -p udp
COMMIT
"#;

/// Rules 6–9 (IPv6).
const MUNIN6: &str = r#"*filter
:ACCT6 - [0:0]
[6:600] -A ACCT6 -d 2001:db8:f00d::1/128 -p tcp -m tcp --dport 80 -m comment --comment "=web6_down= Web traffic to/from local port 80"
[7:700] -A ACCT6 -s 2001:db8:f00d::1/128 -p tcp -m tcp --sport 80 -m comment --comment "=web6_up= dummy"
[8:800] -A ACCT6 -d 2001:db8:f00d::1/128 -p tcp -m tcp --dport 443 -m comment --comment "=web6ssl_down= Web traffic to/from local port 443"
[9:900] -A ACCT6 -s 2001:db8:f00d::1/128 -p tcp -m tcp --sport 443 -m comment --comment =web6ssl_up=
COMMIT
"#;

fn c(packets: u64, bytes: u64) -> Counters {
    Counters { packets, bytes }
}

fn text(rulesets: &[(SourceId, &Ruleset)], config: &AccountingConfig) -> String {
    String::from_utf8(render(rulesets, config).0.to_vec(Format::Text)).expect("utf-8")
}

fn chain(name: &str, rules: &str) -> Ruleset {
    parse(format!("*filter\n:{name} - [0:0]\n{rules}COMMIT\n"))
}

#[test]
fn munin_example_sums_and_pairs() {
    let (v4, v6) = (parse(MUNIN4), parse6(MUNIN6));
    let view = tag_view(
        &[(SourceId::Iptables, &v6), (SourceId::Iptables, &v4)],
        &AccountingConfig::default(),
    );
    assert_eq!(view.problems, []);
    let summary: Vec<(Family, &str, &str, Traffic)> = view
        .entities
        .iter()
        .map(|e| (e.family, e.tag.as_str(), e.description.as_str(), e.traffic))
        .collect();
    assert_eq!(
        summary,
        [
            (
                Family::Ipv4,
                "unauthssh",
                "Unauthorized SSH traffic received",
                Traffic::Single(c(1, 60))
            ),
            (
                Family::Ipv4,
                "web4",
                "Combined web traffic to/from local 80/443",
                Traffic::Paired {
                    up: Some(c(8, 800)),
                    down: Some(c(6, 520))
                }
            ),
            (
                Family::Ipv6,
                "web6",
                "Web traffic to/from local port 80",
                Traffic::Paired {
                    up: Some(c(7, 700)),
                    down: Some(c(6, 600))
                }
            ),
            (
                Family::Ipv6,
                "web6ssl",
                "Web traffic to/from local port 443",
                Traffic::Paired {
                    up: Some(c(9, 900)),
                    down: Some(c(8, 800))
                }
            ),
        ]
    );
}

#[test]
fn two_sources_of_a_family_are_summed() {
    let v4 = parse(MUNIN4);
    let view = tag_view(
        &[(SourceId::Iptables, &v4), (SourceId::Iptables, &v4)],
        &AccountingConfig::default(),
    );
    assert_eq!(view.entities[0].traffic, Traffic::Single(c(2, 120)));
}

#[test]
fn renders_tag_families() {
    let (v4, v6) = (parse(MUNIN4), parse6(MUNIN6));
    let out = text(
        &[(SourceId::Iptables, &v4), (SourceId::Iptables, &v6)],
        &AccountingConfig::default(),
    );
    for line in [
        "netfilter_accounting_bytes_total{family=\"ipv4\",tag=\"unauthssh\"} 60\n",
        "netfilter_accounting_bytes_total{family=\"ipv4\",tag=\"web4\",direction=\"out\"} 800\n",
        "netfilter_accounting_packets_total{family=\"ipv4\",tag=\"web4\",direction=\"in\"} 6\n",
        "netfilter_accounting_info{family=\"ipv6\",tag=\"web6ssl\",description=\"Web traffic to/from local port 443\"} 1\n",
        "netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"ACCT4\"} 0\n",
    ] {
        assert!(out.contains(line), "{line} missing from\n{out}");
    }
}

#[test]
fn bad_tag_comments_are_reported_and_nothing_else_lost() {
    let v4 = chain(
        "ACCT4",
        concat!(
            "[1:10] -A ACCT4 -m comment --comment \"=web Web traffic\"\n",
            "[2:20] -A ACCT4 -m comment --comment \"=ok= say \\\"hi\\\" \\\\ é\"\n",
            "[3:30] -A ACCT4 -m comment --comment \"=web= plain\"\n",
            "[4:40] -A ACCT4 -m comment --comment =web_up=\n",
            "[5:50] -A ACCT4 -m comment --comment \"just a comment\"\n",
            "[6:60] -A ACCT4 -m comment --comment =web=\n",
        ),
    );
    let rulesets = [(SourceId::Iptables, &v4)];
    let config = AccountingConfig::default();
    let view = tag_view(&rulesets, &config);
    let messages: Vec<&str> = view.problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].contains("rule 1") && messages[0].contains("no closing ="));
    assert!(messages[1].contains("rule 4") && messages[1].contains("conflicts"));
    assert_eq!(view.entities.len(), 2);
    assert_eq!(view.entities[0].description, "say \"hi\" \\ é");
    assert_eq!(view.entities[1].traffic, Traffic::Single(c(9, 90)));
    let out = text(&rulesets, &config);
    assert!(
        out.contains("description=\"say \\\"hi\\\" \\\\ é\"}"),
        "{out}"
    );
    assert!(
        out.contains("netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"ACCT4\"} 2\n")
    );
}

/// nfprom's example chain, with one rule of each mistake appended.
const NFPROM: &str = concat!(
    "[1:100] -A ACCT4 -d 203.0.113.140/32 -p tcp -m tcp --dport 22 -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=in)\"\n",
    "[2:200] -A ACCT4 -s 203.0.113.140/32 -p tcp -m tcp --sport 22 -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=out)\"\n",
    "[3:300] -A ACCT4 -d 203.0.113.140/32 -p tcp -m tcp --dport 80 -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service=HTTP;dir=in)\"\n",
    "[4:400] -A ACCT4 -p tcp -m comment --comment \"nft(l2proto=ipv4;service=X;dir=in)\"\n",
    "[5:500] -A ACCT4 -p tcp -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service=SSH;dir=in)\"\n",
    "[6:600] -A ACCT4 -p tcp -m comment --comment \"nft(l2proto=ipv4;l3-proto=tcp;service=Y;dir=in)\"\n",
    "[7:700] -A ACCT4 -p tcp -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service=\\\"q\\\\é\\\";dir=in)\"\n",
);

#[test]
fn label_comments_keep_one_key_set() {
    let v4 = chain("ACCT4", NFPROM);
    let rulesets = [(SourceId::Iptables, &v4)];
    let config = AccountingConfig::default();
    let (series, problems) = labels::label_view(&rulesets, &config);
    assert_eq!(series.len(), 4);
    let reported: Vec<bool> = (4..=6)
        .map(|n| {
            problems
                .iter()
                .any(|p| p.message.contains(&format!("rule {n}:")))
        })
        .collect();
    assert_eq!(reported, [true, true, true], "{problems:?}");
    assert_eq!(problems.len(), 3);
    let out = text(&rulesets, &config);
    assert!(out.contains(
        "netfilter_accounting_labeled_bytes_total{dir=\"in\",l2proto=\"ipv4\",l3proto=\"tcp\",service=\"SSH\"} 100\n"
    ));
    assert!(out.contains("service=\"\\\"q\\\\é\\\"\"} 700\n"), "{out}");
    assert!(
        out.contains("netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"ACCT4\"} 3\n")
    );
    // A tag-only config sees none of it.
    let tags_only = AccountingConfig {
        label_comments: false,
        ..AccountingConfig::default()
    };
    assert!(!text(&rulesets, &tags_only).contains("labeled"));
}

#[test]
fn rule_parameters_label_uncommented_rules() {
    let v4 = chain(
        "prometheus",
        concat!(
            "[1:100] -A prometheus -d 203.0.113.140/32 -p tcp -m tcp --dport 22 -j RETURN\n",
            "[2:200] -A prometheus -s 203.0.113.140/32 -p tcp -m tcp --sport 22 -j RETURN\n",
            "[3:300] -A prometheus -m comment --comment =tagged= -j RETURN\n",
            "[4:400] -A prometheus -d 203.0.113.140/32 -p tcp -m tcp --dport 22 -j RETURN\n",
            "[9:900] -A prometheus -j RETURN\n",
        ),
    );
    let config = AccountingConfig {
        ipv4_chains: ChainSet::Named(vec!["prometheus".to_owned()]),
        rule_params_chain: Some("prometheus".to_owned()),
        prefix: "nfprom_tags".to_owned(),
        rule_params_prefix: "nfprom".to_owned(),
        ..AccountingConfig::default()
    };
    let out = text(&[(SourceId::Iptables, &v4)], &config);
    for line in [
        "nfprom_bytes_total{address=\"203.0.113.140/32\",direction=\"in\",l2proto=\"ipv4\",l3proto=\"tcp\",port=\"22\"} 100\n",
        "nfprom_packets_total{address=\"203.0.113.140/32\",direction=\"out\",l2proto=\"ipv4\",l3proto=\"tcp\",port=\"22\"} 2\n",
        "nfprom_bytes_total{address=\"0.0.0.0/0\",direction=\"all\",l2proto=\"ipv4\",l3proto=\"all\",port=\"\"} 900\n",
        "nfprom_tags_bytes_total{family=\"ipv4\",tag=\"tagged\"} 300\n",
        "nfprom_tags_rejected_rules{family=\"ipv4\",chain=\"prometheus\"} 1\n",
    ] {
        assert!(out.contains(line), "{line} missing from\n{out}");
    }
    assert_eq!(out.matches("nfprom_bytes_total{").count(), 3, "{out}");
}

#[test]
fn all_chains_and_named_sets() {
    assert!(ChainSet::All.contains("anything"));
    assert!(!ChainSet::Named(vec!["A".to_owned()]).contains("B"));
    let v4 = chain("X", "[1:1] -A X -m comment --comment =x=\n");
    let config = AccountingConfig {
        ipv4_chains: ChainSet::All,
        ..AccountingConfig::default()
    };
    assert_eq!(
        tag_view(&[(SourceId::Iptables, &v4)], &config)
            .entities
            .len(),
        1
    );
    assert!(
        tag_view(&[(SourceId::Iptables, &v4)], &AccountingConfig::default())
            .entities
            .is_empty()
    );
}
