//! Traffic accounting against the real kernel: rules loaded into a server namespace, real
//! packets sent from a client namespace over a veth pair, and the exporter's `dump` inside
//! the server namespace compared with the per-rule counters `iptables -L -v -x -n` shows.

use std::collections::BTreeMap;
use std::process::Command;

use crate::harness::{
    NetnsPair, accounting_example4, accounting_example6, accounting_table, output_with_input,
    require_command, require_kernel, which,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "acct";

/// Whether the test can run; panics under `CI=true` when it cannot.
fn can_run() -> bool {
    require_kernel()
        && ["iptables-restore", "ip6tables-restore", "nc"]
            .into_iter()
            .all(require_command)
}

/// `netfilter_exporter dump` in the server namespace, checked by promtool when present.
fn dump(pair: &NetnsPair, flags: &[&str]) -> String {
    // iptables_exporter's millisecond gauge is kept for compatibility but fails promtool's lint.
    let mut args = vec!["-t", "iptables,ip6tables", "--no-legacy-duration-metric"];
    args.extend_from_slice(flags);
    let text = pair.server.dump_ok(&args).text;
    if which("promtool").is_some() {
        let out = output_with_input(Command::new("promtool").args(["check", "metrics"]), &text);
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    text
}

/// The value of the sample written exactly as `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .expect("integer sample")
}

/// The TCP connection attempts of the Munin example: refused (RST) since nothing listens.
fn knock(pair: &NetnsPair, address: &str, ports: &[&str], times: usize) {
    for _ in 0..times {
        for port in ports {
            // The refused connection fails nc; that is the point.
            pair.client.output("nc", &["-z", "-w1", address, port], "");
        }
    }
}

/// Rules of ours after the article's in ACCT4 (see [`accounting_example4`]): a SYN-only tag
/// whose description needs escaping, a UDP tag with no description of its own, and a comment
/// whose tag never closes, which the exporter must reject.
const MUNIN4_EXTRA: &str = r#"-A ACCT4 -p tcp --syn --dport 22 -m comment --comment "=sshsyn= \"SYN\" \\ to port 22 é"
-A ACCT4 -p udp --dport 9999 -m comment --comment "=udp9999="
-A ACCT4 -p udp --dport 9999 -m comment --comment "=broken no closing delimiter"
"#;

/// Sums `iptables -L` counters per tag (pairs keyed `tag/out`, `tag/in`).
fn per_tag(rules: &[(u64, u64, String)]) -> BTreeMap<String, (u64, u64)> {
    let mut sums = BTreeMap::new();
    for (packets, bytes, comment) in rules {
        let Some((tag, _)) = comment.strip_prefix('=').and_then(|c| c.split_once('=')) else {
            continue;
        };
        let key = if let Some(base) = tag.strip_suffix("_up") {
            format!("{base}/out")
        } else if let Some(base) = tag.strip_suffix("_down") {
            format!("{base}/in")
        } else {
            tag.to_owned()
        };
        let sum: &mut (u64, u64) = sums.entry(key).or_default();
        sum.0 += packets;
        sum.1 += bytes;
    }
    sums
}

#[test]
fn munin_example_counts_real_traffic() {
    if !can_run() {
        return;
    }
    let pair = NetnsPair::new(NETNS_LABEL);
    pair.server
        .restore("iptables-restore", &accounting_example4(MUNIN4_EXTRA));
    pair.server
        .restore("ip6tables-restore", &accounting_example6());
    knock(&pair, "192.168.24.1", &["22", "80", "443"], 3);
    knock(&pair, "2001:db8:f00d::1", &["80", "443", "443"], 2);
    for _ in 0..5 {
        pair.client
            .output("nc", &["-u", "-w0", "192.168.24.1", "9999"], "hello");
    }

    let text = dump(&pair, &[]);
    let mut expected = per_tag(&pair.server.rule_counters("iptables", "ACCT4"));
    let v6 = per_tag(&pair.server.rule_counters("ip6tables", "ACCT6"));
    let mut checked = 0;
    for (family, sums) in [("ipv4", &mut expected), ("ipv6", &mut v6.clone())] {
        for (key, (packets, bytes)) in sums.iter() {
            let labels = match key.split_once('/') {
                Some((tag, dir)) => {
                    format!("family=\"{family}\",tag=\"{tag}\",direction=\"{dir}\"")
                }
                None => format!("family=\"{family}\",tag=\"{key}\""),
            };
            assert_eq!(
                sample(
                    &text,
                    &format!("netfilter_accounting_packets_total{{{labels}}}")
                ),
                *packets,
                "{labels}"
            );
            assert_eq!(
                sample(
                    &text,
                    &format!("netfilter_accounting_bytes_total{{{labels}}}")
                ),
                *bytes,
                "{labels}"
            );
            assert!(*packets > 0, "no traffic matched {family} {key}");
            checked += 1;
        }
    }
    // unauthssh, web4 out/in, sshsyn, udp9999, web6 out/in, web6ssl out/in.
    assert_eq!(checked, 9);
    // Counts known without the kernel: one SYN per refused connection, one datagram per send.
    let v4 = "family=\"ipv4\"";
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_packets_total{{{v4},tag=\"sshsyn\"}}")
        ),
        3
    );
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_packets_total{{{v4},tag=\"unauthssh\"}}")
        ),
        3
    );
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_packets_total{{{v4},tag=\"udp9999\"}}")
        ),
        5
    );
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_bytes_total{{{v4},tag=\"udp9999\"}}")
        ),
        5 * (20 + 8 + 5)
    );
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_packets_total{family=\"ipv6\",tag=\"web6ssl\",direction=\"in\"}"
        ),
        4
    );
    assert!(text.contains(
        "netfilter_accounting_info{family=\"ipv4\",tag=\"web4\",description=\"Combined web traffic to/from local 80/443\"} 1\n"
    ));
    assert!(text.contains(
        "netfilter_accounting_info{family=\"ipv4\",tag=\"sshsyn\",description=\"\\\"SYN\\\" \\\\ to port 22 é\"} 1\n"
    ), "{text}");
    assert!(text.contains(
        "netfilter_accounting_info{family=\"ipv4\",tag=\"udp9999\",description=\"udp9999\"} 1\n"
    ));
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"ACCT4\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_rejected_rules{family=\"ipv6\",chain=\"ACCT6\"}"
        ),
        0
    );
}

/// nfprom's example chain on the example server's address; `comment` makes the rule's
/// comment from its service and direction, or leaves it out.
fn nfprom_chain(comment: impl Fn(&str, &str) -> String) -> String {
    let mut rules = String::new();
    for (service, port) in [("SSH", 22), ("SMTP", 25), ("HTTP", 80), ("HTTPS", 443)] {
        rules += &format!(
            "-A prometheus -d 192.168.24.1/32 -p tcp --dport {port}{} -j RETURN\n",
            comment(service, "in")
        );
        rules += &format!(
            "-A prometheus -s 192.168.24.1/32 -p tcp --sport {port}{} -j RETURN\n",
            comment(service, "out")
        );
    }
    rules += "-A prometheus -j RETURN\n";
    accounting_table("prometheus", &rules)
}

#[test]
fn nfprom_label_comments_count_real_traffic() {
    if !can_run() {
        return;
    }
    let pair = NetnsPair::new(NETNS_LABEL);
    let rules = nfprom_chain(|service, dir| {
        format!(
            " -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service={service};dir={dir})\""
        )
    });
    pair.server.restore("iptables-restore", &rules);
    knock(&pair, "192.168.24.1", &["22", "25", "80", "443", "443"], 2);
    let text = dump(
        &pair,
        &[
            "--accounting.ipv4-chains",
            "prometheus",
            "--accounting.labels-prefix",
            "nfprom",
        ],
    );
    let rules = pair.server.rule_counters("iptables", "prometheus");
    let mut checked = 0;
    for (packets, bytes, comment) in &rules {
        let Some(inner) = comment
            .strip_prefix("nft(")
            .and_then(|c| c.strip_suffix(')'))
        else {
            continue;
        };
        let mut pairs: Vec<(&str, &str)> =
            inner.split(';').filter_map(|p| p.split_once('=')).collect();
        pairs.sort();
        let labels: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let labels = labels.join(",");
        assert_eq!(
            sample(&text, &format!("nfprom_packets_total{{{labels}}}")),
            *packets
        );
        assert_eq!(
            sample(&text, &format!("nfprom_bytes_total{{{labels}}}")),
            *bytes
        );
        assert!(*packets > 0, "{labels}");
        checked += 1;
    }
    assert_eq!(checked, 8);
    // One SYN per refused connection to 443, two rounds of two.
    assert_eq!(
        sample(
            &text,
            "nfprom_packets_total{dir=\"in\",l2proto=\"ipv4\",l3proto=\"tcp\",service=\"HTTPS\"}"
        ),
        4
    );
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"prometheus\"}"
        ),
        0
    );
}

#[test]
fn rule_parameters_label_real_traffic() {
    if !can_run() {
        return;
    }
    let pair = NetnsPair::new(NETNS_LABEL);
    pair.server
        .restore("iptables-restore", &nfprom_chain(|_, _| String::new()));
    knock(&pair, "192.168.24.1", &["22", "25", "80", "443"], 2);
    let text = dump(
        &pair,
        &[
            "--accounting.rule-params-chain",
            "prometheus",
            "--accounting.rule-params-prefix",
            "nfprom",
        ],
    );
    let rules = pair.server.rule_counters("iptables", "prometheus");
    assert_eq!(rules.len(), 9);
    for (i, port) in ["22", "25", "80", "443"].into_iter().enumerate() {
        for (j, direction) in ["in", "out"].into_iter().enumerate() {
            let (packets, bytes, _) = &rules[2 * i + j];
            let labels = format!(
                "address=\"192.168.24.1/32\",direction=\"{direction}\",l2proto=\"ipv4\",l3proto=\"tcp\",port=\"{port}\""
            );
            assert_eq!(
                sample(&text, &format!("nfprom_packets_total{{{labels}}}")),
                *packets
            );
            assert_eq!(
                sample(&text, &format!("nfprom_bytes_total{{{labels}}}")),
                *bytes
            );
            // One SYN in and one RST out per attempt.
            assert_eq!(*packets, 2, "{labels}");
        }
    }
    let (packets, bytes, _) = &rules[8];
    let all = "address=\"0.0.0.0/0\",direction=\"all\",l2proto=\"ipv4\",l3proto=\"all\",port=\"\"";
    assert_eq!(
        sample(&text, &format!("nfprom_packets_total{{{all}}}")),
        *packets
    );
    assert_eq!(
        sample(&text, &format!("nfprom_bytes_total{{{all}}}")),
        *bytes
    );
}
