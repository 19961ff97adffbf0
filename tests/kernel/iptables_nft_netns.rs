//! The iptables sources read over netlink with cached rule texts, against the iptables-save
//! path on the same kernel state: every fixture and generated ruleset loaded with
//! `iptables-restore --counters` into a test namespace, the series of both paths compared
//! label for label and value for value; and a churn test in which restores replace chains
//! while collections run.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{Exposition, Process, spawn_logged};
use crate::generator;
use crate::harness::{
    Netns, accounting_table, nf_tables_fixtures, output_with_input, require_command, require_kernel,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "ipnl";

fn can_run() -> bool {
    require_kernel()
        && ["iptables-restore", "ip6tables-restore"]
            .into_iter()
            .all(require_command)
}

/// The series of the backend families of an exposition (the exporter's own families,
/// which say how the collection went, and the millisecond duration left out).
fn series(exposition: &Exposition) -> BTreeMap<(String, BTreeMap<String, String>), f64> {
    exposition
        .samples
        .iter()
        .filter(|s| {
            !s.name.starts_with("netfilter_exporter_")
                && !s.name.ends_with("_scrape_duration_milliseconds")
        })
        .map(|s| ((s.name.clone(), s.labels.clone()), s.value))
        .collect()
}

/// The textfile loop in `ns` reading `target`, every 0.2 s.
fn textfile(ns: &Netns, target: &str, path: &Path) -> Process {
    let mut command = ns.exporter(&["textfile", "-t", target, "--collect-interval", "0.2"]);
    command.arg(path);
    spawn_logged(command, &path.with_extension("log"))
}

/// The next exposition the loop writes in which `target` was read over netlink alone
/// (its rule texts all cached).
fn netlink_exposition(process: &mut Process, path: &Path, target: &str) -> Exposition {
    let uncached = format!("netfilter_exporter_uncached_rules{{source=\"{target}\"}} 0\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.contains(&uncached)
        {
            return Exposition::parse(&text);
        }
        process.assert_running();
        assert!(
            Instant::now() < deadline,
            "no netlink-only collection:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Loads `rules` into a fresh namespace and checks that both paths export the same series.
fn assert_paths_agree(name: &str, restore: &str, target: &str, rules: &str) {
    let ns = Netns::new(NETNS_LABEL);
    ns.restore(restore, rules);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("out.prom");
    let mut process = textfile(&ns, target, &path);
    let netlink = netlink_exposition(&mut process, &path, target);
    process.terminate(Duration::from_secs(10));
    let saved = ns.dump_ok(&["-t", target, "--no-iptables-netlink"]);
    let (netlink, saved) = (series(&netlink), series(&saved));
    assert!(saved.len() > 5, "{name}: too few series: {saved:?}");
    for (key, value) in &saved {
        assert_eq!(netlink.get(key), Some(value), "{name}: {key:?}");
    }
    assert_eq!(
        netlink.len(),
        saved.len(),
        "{name}: extra series over netlink"
    );
}

#[test]
fn every_fixture_is_exported_the_same_over_netlink() {
    if !can_run() {
        return;
    }
    for (name, ipv6, rules) in nf_tables_fixtures() {
        let (restore, target) = if ipv6 {
            ("ip6tables-restore", "ip6tables")
        } else {
            ("iptables-restore", "iptables")
        };
        assert_paths_agree(&name, restore, target, &rules);
    }
}

#[test]
fn generated_rulesets_are_exported_the_same_over_netlink() {
    if !can_run() {
        return;
    }
    for rules in [1_000, 10_000] {
        let dump = generator::kube_proxy_dump(rules);
        assert_paths_agree(
            &format!("generated {rules}"),
            "iptables-restore",
            "iptables",
            &dump,
        );
    }
}

/// A kube-proxy-like table: chain `SVC` jumping to one chain per endpoint, each rule's
/// counters equal to its id (packets) and a hundred times it (bytes), in an order that
/// `version` shuffles (the same rules re-created in another order under new handles, as
/// kube-proxy's restores do), and with a few rules only every fourth version has.
fn churned(version: usize) -> String {
    let mut out = String::from(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:SVC - [0:0]\n",
    );
    let endpoints = 30;
    for e in 0..endpoints {
        out.push_str(&format!(":SEP-{e} - [0:0]\n"));
    }
    out.push_str("[1:100] -A INPUT -j SVC\n");
    let mut order: Vec<usize> = (0..endpoints).collect();
    order.rotate_left(version % endpoints);
    if version % 2 == 1 {
        order.reverse();
    }
    for &e in &order {
        let id = 10 + e;
        out.push_str(&format!(
            "[{id}:{}] -A SVC -s 10.0.{e}.0/24 -m comment --comment \"svc r{id}\" -j SEP-{e}\n",
            id * 100
        ));
    }
    for e in 0..endpoints {
        let id = 100 + e;
        out.push_str(&format!("[{id}:{}] -A SEP-{e} -p tcp -m tcp --dport {} -m comment --comment \"sep r{id}\" -j ACCEPT\n", id * 100, 1000 + e));
        // Every fourth version adds rules: new rule texts, decoded from netlink.
        if version.is_multiple_of(4) && e.is_multiple_of(5) {
            let id = 1000 + e;
            out.push_str(&format!("[{id}:{}] -A SEP-{e} -p udp -m udp --dport {id} -m comment --comment \"new r{id}\" -j ACCEPT\n", id * 100));
        }
    }
    // A rule the decoder does not know (u32), in a chain of each version's own: its text
    // comes from listing its chain, which may vanish before the listing.
    out.push_str(&format!(
        ":U{version} - [0:0]\n[7:700] -A U{version} -m u32 --u32 \"0x0&0xffff=0x100\" -m comment --comment \"u32 r7\"\n"
    ));
    out.push_str("COMMIT\n");
    out
}

#[test]
fn restores_in_a_loop_never_pair_a_label_with_another_rules_counters() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    // With its counters, as every later version: the first collection may read this one.
    let first = ns.output("iptables-restore", &["--counters"], &churned(0));
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("out.prom");
    let mut process = textfile(&ns, "iptables", &path);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, name) = (stop.clone(), ns.name().to_owned());
        std::thread::spawn(move || {
            let mut version = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &name, "iptables-restore", "-c"]);
                let out = output_with_input(&mut command, &churned(version));
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                version += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            version
        })
    };
    let (mut checked, mut over_netlink) = (0, 0);
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && (checked < 40 || over_netlink < 5) {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        if text == last {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        last = text.clone();
        let exposition = Exposition::parse(&text);
        for sample in exposition.find("iptables_comment_packets_total", &[]) {
            let comment = &sample.labels["comment"];
            let id: f64 = comment
                .rsplit_once(" r")
                .expect("an id")
                .1
                .parse()
                .expect("a number");
            assert_eq!(
                sample.value, id,
                "comment {comment:?} with another rule's counters"
            );
        }
        for sample in exposition.find("iptables_rule_bytes_total", &[("chain", "SVC")]) {
            let rule = &sample.labels["rule"];
            let e: f64 = rule
                .split(['.', ' '])
                .nth(3)
                .expect("10.0.E.0")
                .parse()
                .expect("E");
            assert_eq!(
                sample.value,
                (10.0 + e) * 100.0,
                "rule {rule:?} with another rule's counters"
            );
        }
        // Decoded, listed or cached: never iptables-save, not even at the start.
        let source = [("source", "iptables")];
        assert_eq!(
            exposition.value("netfilter_exporter_iptables_save_runs_total", &source),
            0.0,
            "{text}"
        );
        assert_eq!(
            exposition.value(
                "netfilter_exporter_undecoded_rules",
                &[("source", "iptables"), ("extension", "u32 rev 0")]
            ),
            1.0,
            "{text}"
        );
        checked += 1;
        if text.contains("netfilter_exporter_uncached_rules{source=\"iptables\"} 0\n") {
            over_netlink += 1;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let versions = churn.join().expect("churn thread");
    process.terminate(Duration::from_secs(10));
    assert!(versions > 10, "the ruleset hardly changed");
    assert!(checked >= 20, "only {checked} expositions");
    assert!(
        over_netlink > 0,
        "no collection read netlink alone while the ruleset churned"
    );
}

#[test]
fn a_table_restored_in_a_loop_is_never_published_twice() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    // iptables-restore replaces each table it names: one transaction deletes the table and
    // creates it again.
    let rules = accounting_table(
        "ACCT",
        "-A ACCT -p tcp --dport 22 -m comment --comment ssh\n\
         -A ACCT -p tcp --dport 80 -m comment --comment web\n",
    );
    ns.restore("iptables-restore", &rules);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("out.prom");
    let mut command = ns.exporter(&[
        "textfile",
        "-t",
        "iptables",
        "--collect-interval",
        "0.01",
        "--collect-cpu-budget",
        "0",
    ]);
    command.arg(&path);
    let mut process = spawn_logged(command, &path.with_extension("log"));
    netlink_exposition(&mut process, &path, "iptables");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let (stop, name, rules) = (stop.clone(), ns.name().to_owned(), rules.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut loads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", &name, "iptables-restore"]);
                let out = output_with_input(&mut command, &rules);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                loads += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            loads
        })
    };
    let (mut checked, mut over_netlink, mut doubled) = (0, 0, Vec::new());
    let mut last = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while checked < 600 && Instant::now() < deadline {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.is_empty() || text == last {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        }
        let exposition = Exposition::parse(&text);
        checked += 1;
        if text.contains("netfilter_exporter_uncached_rules{source=\"iptables\"} 0\n") {
            over_netlink += 1;
        }
        let twice = exposition.duplicate_series();
        if !twice.is_empty() {
            doubled.push(twice);
        }
        last = text;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let loads = churn.join().expect("churn thread");
    process.terminate(Duration::from_secs(10));
    println!(
        "{checked} expositions ({over_netlink} over netlink alone), {} with a series twice, {loads} restores",
        doubled.len()
    );
    assert!(loads > 20, "the table was hardly restored: {loads} times");
    assert!(checked > 50, "only {checked} expositions");
    assert!(over_netlink > 0, "no collection read netlink alone");
    assert!(doubled.is_empty(), "series published twice: {doubled:?}");
}

/// Another iptables version printing one extension differently, stood for by a wrapper
/// first in `PATH` that runs the real `iptables` and prints `statistic`'s probability with
/// five decimals: the exporter finds the difference when it checks the decoder against the
/// host's listing, says so once, and takes those rules' texts from the listings, the
/// host's own, while the other rules keep their decoded texts.
#[test]
fn an_extension_printed_differently_by_the_host_is_listed_instead() {
    if !can_run() {
        return;
    }
    let real = crate::harness::which("iptables").expect("iptables");
    let wrapper = crate::common::FakePath::new().script(
        "iptables",
        &format!(
            "{} \"$@\" | sed -E 's/(--probability [0-9]+\\.[0-9]{{5}})[0-9]+/\\1/'",
            real.display()
        ),
    );
    let ns = Netns::new(NETNS_LABEL);
    ns.restore(
        "iptables-restore",
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         :SVC-A - [0:0]\n:SVC-B - [0:0]\n:SEP - [0:0]\n\
         -A PREROUTING -j SVC-A\n\
         -A SVC-A -m comment --comment \"a/1\" -m statistic --mode random --probability 0.33333333349 -j SEP\n\
         -A SVC-A -m comment --comment \"a/2\" -j SEP\n\
         -A SVC-B -m comment --comment \"b/1\" -m statistic --mode random --probability 0.50000000000 -j SEP\n\
         -A SVC-B -m comment --comment \"b/2\" -j SEP\n\
         -A SEP -p tcp -m tcp -j DNAT --to-destination 10.0.0.1:80\n\
         COMMIT\n",
    );
    let mut command = ns.exporter(&["dump", "-t", "iptables"]);
    command.env("PATH", wrapper.before_path());
    command.env("RUST_LOG", "warn");
    let output = crate::harness::output_within(command, Duration::from_secs(60));
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("differs from the host").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("statistic rev 0"), "{stderr}");
    let exposition = Exposition::parse(&String::from_utf8_lossy(&output.stdout));
    let rules: Vec<&str> = exposition
        .find("iptables_rule_packets_total", &[("table", "nat")])
        .iter()
        .map(|s| s.labels["rule"].as_str())
        .collect();
    assert!(
        rules.contains(&"-m statistic --mode random --probability 0.33333 -j SEP")
            && rules.contains(&"-m statistic --mode random --probability 0.50000 -j SEP"),
        "{rules:?}"
    );
    let source = |how: &str| {
        exposition.value(
            "netfilter_exporter_rule_texts",
            &[("source", "iptables"), ("how", how)],
        )
    };
    assert_eq!(
        exposition.value(
            "netfilter_exporter_undecoded_rules",
            &[("source", "iptables"), ("extension", "statistic rev 0")]
        ),
        2.0
    );
    assert_eq!(source("decoded"), 4.0, "{}", exposition.text);
    assert_eq!(source("listed"), 2.0, "{}", exposition.text);
    assert_eq!(
        exposition.value(
            "netfilter_exporter_iptables_save_runs_total",
            &[("source", "iptables")]
        ),
        0.0
    );
}
