//! The nftables source against the real kernel: rulesets loaded with `nft -f` into a test
//! namespace (Debian's examples and our own), real packets through counting rules, and
//! every exported value compared with what `nft -j list ruleset` reports for the same
//! state.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

use crate::common::{EXPORTER, Exposition};
use crate::harness::{
    Ip, Netns, output_with_input, output_within, require_command, require_kernel, which,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "nft";

/// Debian's example rulesets (package nftables).
const EXAMPLES: &str = "/usr/share/doc/nftables/examples";

/// Whether the test can run; panics under `CI=true` when it cannot.
fn can_run() -> bool {
    require_kernel()
        && ["nft", "iptables-restore", "ping"]
            .into_iter()
            .all(require_command)
}

fn load(ns: &Netns, ruleset: &str) {
    let out = ns.output("nft", &["-f", "-"], ruleset);
    assert!(
        out.status.success(),
        "nft -f failed: {}\n{ruleset}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `dump -t nftables` in the namespace, checked by promtool when present.
fn dump(ns: &Netns, flags: &[&str]) -> Exposition {
    let mut args = vec!["-t", "nftables"];
    args.extend_from_slice(flags);
    let exposition = ns.dump_ok(&args);
    if which("promtool").is_some() {
        let out = output_with_input(
            Command::new("promtool").args(["check", "metrics"]),
            &exposition.text,
        );
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            exposition.text
        );
    }
    exposition
}

/// A series: metric name and labels.
type Series = (String, BTreeMap<String, String>);

/// The nftables families the differential test compares.
const COMPARED: [&str; 10] = [
    "nftables_rule_bytes_total",
    "nftables_rule_packets_total",
    "nftables_chain_rules",
    "nftables_chain_info",
    "nftables_object_bytes_total",
    "nftables_object_packets_total",
    "nftables_quota_used_bytes",
    "nftables_quota_limit_bytes",
    "nftables_set_elements",
    "nftables_chain_info",
];

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    (name.to_owned(), labels)
}

fn text(object: &Value, key: &str) -> String {
    match &object[key] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("{key} is {other} in {object}"),
    }
}

fn number(object: &Value, key: &str) -> f64 {
    object[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {object}"))
}

/// What the exporter must write for the state `nft -j list ruleset` describes.
fn expected(ns: &Netns) -> BTreeMap<Series, f64> {
    let json: Value = serde_json::from_str(&ns.run("nft", &["-j", "list", "ruleset"]))
        .expect("nft -j writes JSON");
    let mut out = BTreeMap::new();
    let mut rules_per_chain: BTreeMap<(String, String, String), f64> = BTreeMap::new();
    for item in json["nftables"].as_array().expect("an nftables array") {
        if let Some(chain) = item.get("chain") {
            let at = (
                text(chain, "family"),
                text(chain, "table"),
                text(chain, "name"),
            );
            rules_per_chain.entry(at.clone()).or_default();
            if chain.get("hook").is_some() {
                let labels = [
                    ("family", at.0.as_str()),
                    ("table", &at.1),
                    ("chain", &at.2),
                    ("type", &text(chain, "type")),
                    ("hook", &text(chain, "hook")),
                    ("priority", &text(chain, "prio")),
                    ("policy", &text(chain, "policy")),
                ];
                out.insert(series("nftables_chain_info", &labels), 1.0);
            }
        }
        if let Some(rule) = item.get("rule") {
            let at = (
                text(rule, "family"),
                text(rule, "table"),
                text(rule, "chain"),
            );
            *rules_per_chain.entry(at.clone()).or_default() += 1.0;
            let counters: Vec<&Value> = rule["expr"]
                .as_array()
                .expect("expressions")
                .iter()
                .filter_map(|e| e.get("counter").filter(|c| c.is_object()))
                .collect();
            if counters.is_empty() {
                continue;
            }
            let comment = rule
                .get("comment")
                .map_or(String::new(), |_| text(rule, "comment"));
            let handle = text(rule, "handle");
            let labels = [
                ("family", at.0.as_str()),
                ("table", &at.1),
                ("chain", &at.2),
                ("handle", &handle),
                ("comment", &comment),
            ];
            for (name, key) in [
                ("nftables_rule_bytes_total", "bytes"),
                ("nftables_rule_packets_total", "packets"),
            ] {
                let sum = counters.iter().map(|c| number(c, key)).sum();
                out.insert(series(name, &labels), sum);
            }
        }
        for (kind, families) in [
            (
                "counter",
                &[
                    ("nftables_object_bytes_total", "bytes"),
                    ("nftables_object_packets_total", "packets"),
                ][..],
            ),
            (
                "quota",
                &[
                    ("nftables_quota_limit_bytes", "bytes"),
                    ("nftables_quota_used_bytes", "used"),
                ][..],
            ),
        ] {
            if let Some(object) = item.get(kind) {
                let labels = [
                    ("family", text(object, "family")),
                    ("table", text(object, "table")),
                    ("name", text(object, "name")),
                ];
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                for (name, key) in families {
                    out.insert(series(name, &labels), number(object, key));
                }
            }
        }
        for kind in ["set", "map"] {
            if let Some(set) = item.get(kind) {
                let elements = set
                    .get("elem")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                let (family, table, name) =
                    (text(set, "family"), text(set, "table"), text(set, "name"));
                let labels = [
                    ("family", family.as_str()),
                    ("table", &table),
                    ("set", &name),
                ];
                out.insert(series("nftables_set_elements", &labels), elements as f64);
            }
        }
    }
    for ((family, table, chain), rules) in rules_per_chain {
        let labels = [
            ("family", family.as_str()),
            ("table", &table),
            ("chain", &chain),
        ];
        out.insert(series("nftables_chain_rules", &labels), rules);
    }
    out
}

/// The compared families of an exposition.
fn exported(exposition: &Exposition) -> BTreeMap<Series, f64> {
    exposition
        .samples
        .iter()
        .filter(|s| COMPARED.contains(&s.name.as_str()))
        .map(|s| ((s.name.clone(), s.labels.clone()), s.value))
        .collect()
}

/// Every value the exporter writes equals what `nft -j` reports, and nothing else is
/// written.
fn assert_same_as_nft(ns: &Netns, what: &str) -> Exposition {
    let exposition = dump(ns, &[]);
    let (want, have) = (expected(ns), exported(&exposition));
    for (series, value) in &want {
        assert_eq!(
            have.get(series),
            Some(value),
            "{what}: {series:?}\n{}",
            exposition.text
        );
    }
    for series in have.keys() {
        assert!(want.contains_key(series), "{what}: extra series {series:?}");
    }
    assert!(
        !want.is_empty() || what.contains("empty"),
        "{what}: nothing compared"
    );
    exposition
}

/// Interfaces Debian's examples name, made as veth pairs in the namespace.
fn add_example_interfaces(ns: &Netns) {
    for (a, b) in [("eth0", "eth1"), ("eth2", "eth3"), ("bond0", "bond1")] {
        ns.run("ip", &["link", "add", a, "type", "veth", "peer", "name", b]);
    }
}

/// The examples that cannot load in a namespace, with the error nft gives: a secmark
/// object needs an SELinux context the test machine does not define, the load-balancing
/// example's netdev `fwd` needs a kernel feature not built here, and sets_and_maps
/// deletes a table it expects to exist.
const UNLOADABLE: [(&str, &str); 3] = [
    (
        "secmark.nft",
        "Could not process rule: No such file or directory",
    ),
    (
        "load_balancing.nft",
        "Could not process rule: Operation not supported",
    ),
    (
        "sets_and_maps.nft",
        "No such file or directory; did you mean table",
    ),
];

#[test]
fn every_debian_example_is_exported_as_nft_reports_it() {
    if !can_run() {
        return;
    }
    let mut examples: Vec<_> = std::fs::read_dir(EXAMPLES)
        .unwrap_or_else(|e| panic!("{EXAMPLES}: {e} (install Debian's nftables package)"))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "nft"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 15,
        "too few examples in {EXAMPLES}: {examples:?}"
    );
    let mut loaded = 0;
    for path in &examples {
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
        let ns = Netns::new(NETNS_LABEL);
        add_example_interfaces(&ns);
        // all-in-one.nft includes the others by relative path.
        let mut command = ns.command("nft");
        command
            .args(["-f", path.to_str().expect("UTF-8 path")])
            .current_dir(EXAMPLES);
        let out = output_with_input(&mut command, "");
        let stderr = String::from_utf8_lossy(&out.stderr);
        match UNLOADABLE.iter().find(|(n, _)| *n == name) {
            Some((_, error)) => {
                assert!(!out.status.success(), "{name} loads now: test it");
                assert!(stderr.contains(error), "{name}: {stderr}");
            }
            None => {
                assert!(out.status.success(), "{name}: {stderr}");
                assert_same_as_nft(&ns, name);
                loaded += 1;
            }
        }
    }
    assert_eq!(loaded, examples.len() - UNLOADABLE.len());
}

/// Objects of every kind and tables of every family, with comments that are hard to
/// quote.
const OWN: &str = r#"
table inet firewall {
    counter web { packets 5 bytes 500 }
    counter other { }
    quota q1 { over 100 mbytes used 10 mbytes }
    set blocked { type ipv4_addr; flags interval; elements = { 10.0.0.0/8, 192.168.0.0/16, 1.2.3.4 } }
    set empty { type ipv4_addr; }
    set pairs { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/24 . 22-25, 1.2.3.4 . 80 } }
    map ports { type inet_service : verdict; elements = { 22 : accept, 80 : drop } }
    map marks { type ipv4_addr : mark; elements = { 1.1.1.1 : 1 } }
    chain input {
        type filter hook input priority 0; policy accept;
        icmp type echo-request counter comment "ping 'quoted' and \back\slash"
        icmpv6 type echo-request counter counter comment "twice counted, ünïcödé ✓"
        tcp dport { 22, 80 } counter name web
        meta l4proto udp accept comment "no counter"
    }
    chain accounting {
        counter comment "=web= Web traffic"
        counter comment "01234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
    }
}
table ip6 six {
    chain c {
        type filter hook output priority 10; policy accept;
        counter
    }
}
table bridge br {
    chain f {
        type filter hook forward priority -200; policy drop;
        counter
    }
}
table arp a {
    chain in {
        type filter hook input priority 0;
        counter
    }
}
table netdev ingress {
    chain in {
        type filter hook ingress device lo priority 0;
        counter
    }
}
"#;

#[test]
fn own_ruleset_real_packets_and_every_object_kind() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    // nft 1.0 wants a newline, not a semicolon, before a chain's closing brace.
    load(
        &ns,
        &OWN.replace("; counter }", "; counter\n}")
            .replace(" } }\n", " }\n}\n"),
    );
    ns.ping(Ip::V4, 3, 56);
    ns.ping(Ip::V6, 2, 100);
    let exposition = assert_same_as_nft(&ns, "own ruleset");
    let rule = |comment: &str, family: &str| {
        exposition.value(
            family,
            &[
                ("table", "firewall"),
                ("chain", "input"),
                ("comment", comment),
            ],
        )
    };
    // The echo requests only: the replies go out through no counting rule of `input`.
    let v4 = Ip::V4.echo_bytes(56);
    assert_eq!(
        rule(
            r"ping 'quoted' and \back\slash",
            "nftables_rule_packets_total"
        ),
        3.0
    );
    assert_eq!(
        rule(
            r"ping 'quoted' and \back\slash",
            "nftables_rule_bytes_total"
        ),
        3.0 * v4 as f64
    );
    // Two counter expressions in one rule are summed.
    let v6 = Ip::V6.echo_bytes(100);
    assert_eq!(
        rule("twice counted, ünïcödé ✓", "nftables_rule_packets_total"),
        4.0
    );
    assert_eq!(
        rule("twice counted, ünïcödé ✓", "nftables_rule_bytes_total"),
        4.0 * v6 as f64
    );
    assert!(
        exposition
            .find("nftables_rule_packets_total", &[("comment", "no counter")])
            .is_empty(),
        "a rule without a counter expression has no counter series"
    );
    let long = exposition.find("nftables_rule_packets_total", &[("chain", "accounting")]);
    assert!(
        long.iter().any(|s| s.labels["comment"].len() == 128),
        "the longest comment nft takes"
    );
    let elements = |set| exposition.value("nftables_set_elements", &[("set", set)]);
    assert_eq!(
        (
            elements("blocked"),
            elements("pairs"),
            elements("ports"),
            elements("empty")
        ),
        (3.0, 2.0, 2.0, 0.0)
    );
    for family in ["inet", "ip6", "bridge", "arp", "netdev"] {
        assert!(
            !exposition
                .find("nftables_chain_info", &[("family", family)])
                .is_empty(),
            "{family}"
        );
    }
    let generation = exposition.value("nftables_ruleset_generation", &[]);
    load(&ns, "add table inet another\n");
    let after = dump(&ns, &[]).value("nftables_ruleset_generation", &[]);
    assert!(
        after > generation,
        "the generation moves with a change: {generation} → {after}"
    );
}

#[test]
fn accounting_reads_nftables_comments_as_nfprom_does() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    load(
        &ns,
        "table inet firewall {\n chain input {\n  type filter hook input priority 0;\n  jump accounting\n }\n\
         chain accounting {\n  icmp type echo-request counter comment \"nft(proto=icmp;dir=in)\"\n  \
         icmpv6 type echo-request counter comment \"nft(proto=icmpv6;dir=in)\"\n  \
         icmp type echo-request counter comment \"=ping= pings\"\n }\n}\n",
    );
    ns.ping(Ip::V4, 2, 56);
    ns.ping(Ip::V6, 1, 56);
    let exposition = dump(&ns, &["--accounting.labels-prefix", "nfprom"]);
    let v4 = Ip::V4.echo_bytes(56) as f64;
    assert_eq!(
        exposition.value("nfprom_packets_total", &[("proto", "icmp"), ("dir", "in")]),
        2.0
    );
    assert_eq!(
        exposition.value("nfprom_bytes_total", &[("proto", "icmp")]),
        2.0 * v4
    );
    assert_eq!(
        exposition.value("nfprom_packets_total", &[("proto", "icmpv6")]),
        1.0
    );
    let tag = [("family", "inet"), ("tag", "ping")];
    assert_eq!(
        exposition.value("netfilter_accounting_packets_total", &tag),
        2.0
    );
    // Another chain is not read unless named.
    let other = dump(&ns, &["--accounting.nftables-chain", "firewall/input"]);
    assert!(
        other
            .find("netfilter_accounting_packets_total", &[])
            .is_empty()
    );
}

#[test]
fn iptables_nft_tables_are_exported_once_by_the_iptables_source() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp --icmp-type echo-request -m comment --comment xt -j ACCEPT\nCOMMIT\n");
    // A native table named like an xtables table that iptables-save cannot show.
    load(
        &ns,
        "table ip raw {\n chain prerouting {\n  type filter hook prerouting priority -300;\n  icmp type echo-request counter comment \"native\"\n }\n}\n",
    );
    ns.ping(Ip::V4, 2, 56);
    let both = ns.dump_ok(&["-t", "iptables,nftables"]);
    assert_eq!(
        both.value(
            "iptables_rule_packets_total",
            &[("table", "filter"), ("chain", "INPUT")]
        ),
        2.0
    );
    assert!(
        both.find("nftables_chain_rules", &[("table", "filter")])
            .is_empty(),
        "filter counted twice"
    );
    assert_eq!(
        both.value(
            "nftables_rule_packets_total",
            &[("table", "raw"), ("comment", "native")]
        ),
        2.0
    );
    // By default (every source) the same.
    let auto = ns.dump_ok(&[]);
    assert!(
        auto.find("nftables_chain_rules", &[("table", "filter")])
            .is_empty()
    );
    assert_eq!(
        auto.find("nftables_chain_rules", &[("table", "raw")]).len(),
        1
    );
    // Without the iptables source, nothing is lost: nftables exports its table too.
    let alone = dump(&ns, &[]);
    assert_eq!(
        alone.value(
            "nftables_rule_packets_total",
            &[("table", "filter"), ("chain", "INPUT")]
        ),
        2.0
    );
}

/// A table whose every chain holds one rule commented with the version of the ruleset.
fn version(n: usize) -> String {
    let mut out = String::from("flush ruleset\ntable inet churn {\n");
    for c in 0..40 {
        out.push_str(&format!(" chain c{c} {{\n  counter comment \"v{n}\"\n"));
        for r in 0..(n % 7) {
            out.push_str(&format!("  meta mark {r} counter comment \"v{n}\"\n"));
        }
        out.push_str(" }\n");
    }
    out.push_str("}\n");
    out
}

#[test]
fn a_changing_ruleset_is_never_published_mixed() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    load(&ns, &version(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, name) = (stop.clone(), ns.name().to_owned());
        std::thread::spawn(move || {
            let mut n = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &name, "nft", "-f", "-"]);
                let out = output_with_input(&mut command, &version(n));
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                n += 1;
            }
            n
        })
    };
    let mut versions_seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let out = ns.dump(&["-t", "nftables"]);
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            // Bounded retries may run out while the ruleset changes without pause: then
            // the collection fails, it never mixes.
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("changed"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let exposition = Exposition::parse(&text);
        let versions: std::collections::BTreeSet<&str> = exposition
            .find("nftables_rule_packets_total", &[])
            .iter()
            .map(|s| s.labels["comment"].as_str())
            .collect();
        assert_eq!(versions.len(), 1, "a mix of rulesets: {versions:?}");
        let v: usize = versions.iter().next().expect("one")[1..]
            .parse()
            .expect("a version");
        let chains = exposition.find("nftables_chain_rules", &[]);
        assert_eq!(chains.len(), 40);
        assert!(
            chains.iter().all(|s| s.value == (1 + v % 7) as f64),
            "rule counts of version {v}"
        );
        versions_seen.insert(v);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let loads = churn.join().expect("the churn thread");
    assert!(loads > 5, "the ruleset did not change while collecting");
    assert!(
        versions_seen.len() > 1,
        "collections saw only {versions_seen:?}"
    );
}

#[test]
fn without_cap_net_admin_the_collection_fails_with_a_clear_error() {
    if !can_run() || !require_command("setpriv") {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    load(&ns, "table inet t {\n chain c {\n  counter\n }\n}\n");
    let mut command = ns.command("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]);
    command.arg(EXPORTER).args(["dump", "-t", "nftables"]);
    let out = output_within(command, std::time::Duration::from_secs(30));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("netfilter_exporter_collection_success{source=\"nftables\"} 0"),
        "{text}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nf_tables netlink"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A table that `replaced` deletes and re-creates in one transaction, as `nft -f` of a
/// file beginning with `delete table` does.
const REPLACED: &str = "table inet replaced {
 counter web {
 }
 set blocked {
  type ipv4_addr
  elements = { 10.0.0.1, 10.0.0.2 }
 }
 chain input {
  type filter hook input priority 0; policy accept;
  icmp type echo-request counter comment \"ping\"
  ip saddr @blocked counter drop
  jump accounting
 }
 chain accounting {
  tcp dport 22 counter comment \"ssh\"
  tcp dport 80 counter name web
 }
 chain output {
  type filter hook output priority 0; policy accept;
  counter
 }
}
";

#[test]
fn a_table_replaced_in_a_loop_is_never_published_twice() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    load(&ns, REPLACED);
    let replace = format!("delete table inet replaced\n{REPLACED}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, name) = (stop.clone(), ns.name().to_owned());
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            let mut loads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && std::time::Instant::now() < deadline
            {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &name, "nft", "-f", "-"]);
                let out = output_with_input(&mut command, &replace);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                loads += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            loads
        })
    };
    let (mut published, mut failed, mut doubled) = (0, 0, Vec::new());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while published + failed < 600 && std::time::Instant::now() < deadline {
        let out = ns.dump(&["-t", "nftables"]);
        if !out.status.success() {
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("changed"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            failed += 1;
            continue;
        }
        let exposition = Exposition::parse(&String::from_utf8_lossy(&out.stdout));
        published += 1;
        let twice = exposition.duplicate_series();
        if !twice.is_empty() {
            doubled.push(twice);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let loads = churn.join().expect("the churn thread");
    println!(
        "{published} collections published, {failed} failed, {} with a series twice, {loads} replacements",
        doubled.len()
    );
    assert!(loads > 20, "the table was hardly replaced: {loads} times");
    assert!(published > 50, "only {published} collections published");
    assert!(doubled.is_empty(), "series published twice: {doubled:?}");
}

#[test]
fn a_dormant_table_is_left_out() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    let twin = |name: &str, flags: &str| {
        format!(
            "table ip {name} {{\n {flags}\n chain input {{\n  type filter hook input priority 0;\n  \
             icmp type echo-request counter comment \"ping\"\n }}\n counter named {{\n }}\n}}\n"
        )
    };
    load(&ns, &twin("awake", ""));
    load(&ns, &twin("asleep", "flags dormant"));
    ns.ping(Ip::V4, 2, 56);
    // The kernel runs no packet through a dormant table: its counters stand still.
    let listed = ns.run("nft", &["list", "table", "ip", "asleep"]);
    assert!(
        listed.contains("flags dormant") && listed.contains("counter packets 0 bytes 0"),
        "{listed}"
    );
    let exposition = dump(&ns, &[]);
    assert_eq!(
        exposition.value("nftables_rule_packets_total", &[("table", "awake")]),
        2.0
    );
    assert!(
        !exposition.text.contains("table=\"asleep\""),
        "a dormant table exported:\n{}",
        exposition.text
    );
    assert_eq!(exposition.find("nftables_chain_info", &[]).len(), 1);
}
