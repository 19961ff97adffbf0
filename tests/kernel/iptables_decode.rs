//! The rule texts decoded from nf_tables expressions against `iptables-save` on the same
//! kernel state, rule by rule: rules generated over each extension's options (flags,
//! inversions, value edges), every fixture and generated rulesets, loaded with
//! `iptables-restore` into a test namespace. A rule the decoder declines is listed by the
//! exporter; a rule it decodes must read exactly as `iptables-save` prints it.

use std::collections::BTreeMap;

use std::time::Duration;

use netfilter_exporter::ruleset::Family;
use netfilter_exporter::source::iptables_nft::{DecodedRule, decode_rules};

use crate::generator;
use crate::harness::{Netns, nf_tables_fixtures, require_command, require_kernel};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "ipdec";

pub(crate) fn can_run() -> bool {
    require_kernel()
        && ["iptables-restore", "ip6tables-restore"]
            .into_iter()
            .all(require_command)
}

/// The rule lines of an `iptables-save` dump by table and chain, in order.
fn saved_rules(dump: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut rules: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    let mut table = String::new();
    for line in dump.lines() {
        if let Some(name) = line.strip_prefix('*') {
            table = name.to_owned();
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split(' ').next().unwrap_or_default().to_owned();
            rules
                .entry((table.clone(), chain))
                .or_default()
                .push(line.to_owned());
        }
    }
    rules
}

/// Loads `rules` with `restore` into a fresh namespace and compares every decoded text with
/// `iptables-save`'s line; returns the extensions the decoder declined, with a rule each.
pub(crate) fn assert_decoded_as_saved(
    name: &str,
    family: Family,
    rules: &str,
) -> BTreeMap<String, String> {
    assert_decoded_as_saved_with(name, family, rules, &[])
}

/// [`assert_decoded_as_saved`], after running each of `setup` (a program and its
/// arguments) in the namespace: what the rules need to load, such as an ipset.
pub(crate) fn assert_decoded_as_saved_with(
    name: &str,
    family: Family,
    rules: &str,
    setup: &[&[&str]],
) -> BTreeMap<String, String> {
    let (restore, save) = match family {
        Family::Ipv6 => ("ip6tables-restore", "ip6tables-save"),
        _ => ("iptables-restore", "iptables-save"),
    };
    let ns = Netns::new(NETNS_LABEL);
    for command in setup {
        if let [program, args @ ..] = command {
            ns.run(program, args);
        }
    }
    ns.restore(restore, rules);
    let saved = saved_rules(&ns.run(save, &[]));
    let decoded: Vec<DecodedRule> = ns
        .on_thread(move || decode_rules(family, Duration::from_secs(60)))
        .expect("netlink read");
    let mut by_chain: BTreeMap<(String, String), Vec<DecodedRule>> = BTreeMap::new();
    for rule in decoded {
        by_chain
            .entry((rule.table.clone(), rule.chain.clone()))
            .or_default()
            .push(rule);
    }
    let mut declined = BTreeMap::new();
    let mut compared = 0;
    for (chain, lines) in &saved {
        let decoded = by_chain.get(chain).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(decoded.len(), lines.len(), "{name}: rules of {chain:?}");
        for (line, rule) in lines.iter().zip(decoded) {
            match &rule.text {
                Ok(text) => {
                    assert_eq!(text, line, "{name}: decoded text of a rule of {chain:?}");
                    compared += 1;
                }
                Err(extension) => {
                    declined
                        .entry(extension.to_string())
                        .or_insert_with(|| line.clone());
                }
            }
        }
    }
    assert!(
        compared > 0,
        "{name}: nothing decoded; declined {declined:?}"
    );
    declined
}

/// Table `name` (filter, nat, mangle or raw) with its built-in chains, chain `X`, and
/// `rules`.
pub(crate) fn table(name: &str, rules: &[String]) -> String {
    let builtins: &[&str] = match name {
        "filter" => &["INPUT", "FORWARD", "OUTPUT"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        other => panic!("no table {other}"),
    };
    let mut out = format!("*{name}\n");
    for chain in builtins {
        out.push_str(&format!(":{chain} ACCEPT [0:0]\n"));
    }
    out.push_str(":X - [0:0]\n");
    for rule in rules {
        out.push_str(rule);
        out.push('\n');
    }
    out.push_str("COMMIT\n");
    out
}

fn filter(rules: &[String]) -> String {
    table("filter", rules)
}

fn nat(rules: &[String]) -> String {
    table("nat", rules)
}

/// A rule of chain `X` for each of `options`, between `prefix` and `suffix`.
pub(crate) fn rules_over(prefix: &str, options: &[&str], suffix: &str) -> Vec<String> {
    options
        .iter()
        .map(|o| {
            format!("-A X {prefix}{o}{suffix}")
                .replace("  ", " ")
                .trim_end()
                .to_owned()
        })
        .collect()
}

#[test]
fn addresses_interfaces_protocols_and_verdicts_decode_as_saved() {
    if !can_run() {
        return;
    }
    let mut rules = rules_over(
        "",
        &[
            "-s 10.0.0.1",
            "-s 10.0.0.0/8",
            "! -s 10.0.0.0/12",
            "-d 192.168.1.0/24",
            "! -d 1.2.3.4/32",
            "-s 10.0.0.0/255.0.255.0",
            "-s 0.0.0.0/0",
            "-i eth0",
            "! -i eth+",
            "-o lo",
            "-i +",
            "-p tcp",
            "! -p udp",
            "-p icmp",
            "-p sctp",
            "-p 47",
            "-p esp",
            "-p ah",
            "-p udplite",
            "-s 10.1.0.0/16 -d 10.2.0.0/16 -i veth1 -p tcp",
        ],
        " -j ACCEPT",
    );
    rules.extend(rules_over(
        "",
        &["-j DROP", "-j RETURN", "-j X", "-g X", ""],
        "",
    ));
    rules.push("-A FORWARD -i eth0 -o eth1 -j ACCEPT".to_owned());
    let declined = assert_decoded_as_saved("basics", Family::Ipv4, &filter(&rules));
    assert!(declined.is_empty(), "declined: {declined:?}");

    let rules6 = rules_over(
        "",
        &[
            "-s 2001:db8::/32",
            "-s ::1.2.3.4",
            "-m rt --rt-type 0",
            "-m rt ! --rt-type 2 --rt-segsleft 1:3 ! --rt-len 8",
            "-m rt --rt-type 0 --rt-0-res --rt-0-addrs 2001:db8::1,::1.2.3.4 --rt-0-not-strict",
            "-m rt ! --rt-segsleft 0",
            "-d ::ffff:10.0.0.1/128",
            "! -d fe80::1/128",
            "-s ::/0",
            "-d 2001:db8::/ffff:ffff::ffff",
            "-p ipv6-icmp",
            "-p tcp",
            "-p ipv6-icmp -m icmp6 --icmpv6-type 128",
            "-p ipv6-icmp -m icmp6 ! --icmpv6-type 1/3",
            "-p ipv6-icmp -m icmp6 --icmpv6-type neighbour-solicitation",
        ],
        " -j ACCEPT",
    );
    let declined = assert_decoded_as_saved("basics6", Family::Ipv6, &filter(&rules6));
    assert!(declined.is_empty(), "declined: {declined:?}");
}

#[test]
fn tcp_and_udp_decode_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-p tcp -m tcp --dport 80",
            "-p tcp -m tcp ! --dport 22",
            "-p tcp -m tcp --sport 1000:2000",
            "-p tcp -m tcp ! --sport 1000:2000",
            "-p tcp -m tcp --dport 0:1023",
            "-p tcp -m tcp --dport 1024:65535",
            "-p tcp -m tcp --sport 1 --dport 2",
            "-p tcp -m tcp --syn",
            "-p tcp -m tcp ! --syn",
            "-p tcp -m tcp --tcp-flags ALL NONE",
            "-p tcp -m tcp --tcp-flags SYN,ACK ACK",
            "-p tcp -m tcp",
            "-p tcp -m tcp --tcp-option 2",
            "-p tcp -m tcp ! --tcp-option 2",
            "-p udp -m udp --dport 53",
            "-p udp -m udp ! --sport 5:6",
            "-p udp -m udp",
            "-p tcp -m tcp --dport 80 --tcp-flags FIN,SYN SYN",
        ],
        " -j ACCEPT",
    );
    let declined = assert_decoded_as_saved("tcp and udp", Family::Ipv4, &filter(&rules));
    assert!(declined.is_empty(), "declined: {declined:?}");
}

#[test]
fn matches_of_the_kube_proxy_ruleset_decode_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-m comment --comment plain",
            "-m comment --comment \"a b\"",
            "-m comment --comment \"q\\\"uote\"",
            "-m comment --comment \"back\\\\slash\"",
            "-m comment --comment \"it's\"",
            "-m comment --comment \"ns/svc:http\"",
            "-m statistic --mode random --probability 0.50000000000",
            "-m statistic --mode random --probability 0.33333333349",
            "-m statistic --mode random ! --probability 0.10000000009",
            "-m statistic --mode nth --every 3 --packet 1",
            "-m statistic --mode random --probability 0.00024414062",
            "-m recent --set --name foo --mask 255.255.255.255 --rsource",
            "-m recent --rcheck --seconds 10800 --reap --name KUBE --mask 255.255.255.0 --rdest",
            "-m recent ! --update --seconds 60 --hitcount 4 --rttl --name x --mask 255.255.255.255 --rsource",
            "-m addrtype --dst-type LOCAL",
            "-m addrtype ! --src-type LOCAL,BROADCAST --limit-iface-in",
            "-m conntrack --ctstate RELATED,ESTABLISHED",
            "-m conntrack ! --ctstate INVALID",
            "-m state --state NEW",
            "-m conntrack --ctstatus ASSURED,CONFIRMED",
            "-m conntrack --ctstate DNAT --ctorigdst 10.0.0.0/8",
            "-m conntrack --ctproto 6 --ctorigdstport 80:90 --ctdir REPLY",
            "-m conntrack --ctexpire 10:20",
            "-m mark --mark 0x4000/0x4000",
            "-m mark ! --mark 0x1",
            "-m comment --comment x -m mark --mark 0x2/0x3",
            "-p icmp -m icmp --icmp-type 8",
            "-p icmp -m icmp ! --icmp-type 3/1",
            "-p icmp -m icmp --icmp-type any",
            "-p icmp -m icmp --icmp-type 3/0",
            "-m limit --limit 5/min --limit-burst 10",
            "-m limit --limit 3/sec",
            "-m limit --limit 7/hour",
            "-m limit --limit 2/day",
            "-m limit --limit 1000/sec --limit-burst 1",
            "-m limit --limit 61/min",
            "-m limit --limit 10000/sec",
            "-m limit --limit 1/day --limit-burst 5",
            "-m limit --limit 13/hour",
            "-f",
            "! -f",
            "-p tcp -f",
        ],
        " -j ACCEPT",
    );
    let declined = assert_decoded_as_saved("matches", Family::Ipv4, &filter(&rules));
    assert!(declined.is_empty(), "declined: {declined:?}");
}

#[test]
fn targets_of_the_kube_proxy_ruleset_decode_as_saved() {
    if !can_run() {
        return;
    }
    let mut filter_rules = rules_over(
        "",
        &[
            "-j REJECT --reject-with icmp-port-unreachable",
            "-p tcp -j REJECT --reject-with tcp-reset",
            "-j REJECT --reject-with icmp-host-prohibited",
            "-j REJECT --reject-with icmp-admin-prohibited",
            "-j MARK --set-xmark 0x4000/0x4000",
            "-j MARK --or-mark 0x8000",
            "-j MARK --set-mark 0x1",
            "-j NFLOG",
            "-j NFLOG --nflog-threshold 1",
            "-j NFLOG --nflog-threshold 2",
            "-j NFLOG --nflog-size 0",
            "-j NFLOG --nflog-prefix abc --nflog-group 65535",
            "-j NFLOG --nflog-prefix \"a\\\"b c\"",
            "-m limit --limit 3/min -j NFLOG --nflog-prefix \"x y\" --nflog-group 2 --nflog-size 100 --nflog-threshold 3",
        ],
        "",
    );
    filter_rules.push(
        "-A INPUT -m comment --comment \"kube\" -j REJECT --reject-with icmp-net-unreachable"
            .to_owned(),
    );
    let declined = assert_decoded_as_saved("filter targets", Family::Ipv4, &filter(&filter_rules));
    assert!(declined.is_empty(), "declined: {declined:?}");
    let nat_rules = rules_over(
        "",
        &[
            "-p tcp -m tcp -j DNAT --to-destination 10.2.3.4:8080",
            "-j DNAT --to-destination 10.2.3.4",
            "-p tcp -j DNAT --to-destination 10.2.3.4-10.2.3.9:80-90",
            "-p udp -j DNAT --to-destination 10.0.0.1:53 --random --persistent",
            "-j SNAT --to-source 1.2.3.4",
            "-p tcp -j SNAT --to-source 1.2.3.4:1000-2000 --random-fully",
            "-j MASQUERADE",
            "-j MASQUERADE --random-fully",
            "-p tcp -j MASQUERADE --to-ports 1000-2000 --random",
            "-p tcp -j REDIRECT --to-ports 8080",
        ],
        "",
    );
    let declined = assert_decoded_as_saved("nat targets", Family::Ipv4, &nat(&nat_rules));
    assert!(declined.is_empty(), "declined: {declined:?}");
    let raw_rules = rules_over("", &["-j TRACE", "-p tcp -j TRACE"], "");
    let declined = assert_decoded_as_saved("raw targets", Family::Ipv4, &table("raw", &raw_rules));
    assert!(declined.is_empty(), "declined: {declined:?}");
}

#[test]
fn every_fixture_and_generated_ruleset_decodes_as_saved() {
    if !can_run() {
        return;
    }
    for (name, ipv6, rules) in nf_tables_fixtures() {
        let family = if ipv6 { Family::Ipv6 } else { Family::Ipv4 };
        let declined = assert_decoded_as_saved(&name, family, &rules);
        assert!(declined.is_empty(), "{name}: declined {declined:?}");
    }
    let declined = assert_decoded_as_saved(
        "generated",
        Family::Ipv4,
        &generator::kube_proxy_dump(10_000),
    );
    assert!(
        declined.is_empty(),
        "generated kube-proxy ruleset: declined {declined:?}"
    );
}
