//! The ipset source against the real kernel: sets of several types made with `ipset` in a
//! test namespace, read by the library's reader from inside that namespace and compared
//! value for value with `ipset list -o xml`; real packets through `-m set --match-set` rules
//! moving member counters; and what a 100k-member set costs a read in memory.
//!
//! The reader runs on a thread that enters the namespace (`setns` on /run/netns/NAME): a
//! thread's network namespace is its own, and netlink sockets belong to the namespace of
//! the thread that opens them. The memory test needs a process of its own, whose peak
//! resident size is the read's alone: it runs this test binary again, inside the
//! namespace, for its ignored test [`read_child`] only.

use std::collections::BTreeMap;
use std::time::Duration;

use netfilter_exporter::exposition::{ExpositionBuilder, Format};
use netfilter_exporter::metrics;
use netfilter_exporter::ruleset::Family;
use netfilter_exporter::ruleset::ipset::{Member, Set};
use netfilter_exporter::source::ipset::{self, Settings};

use crate::common::{Exposition, peak_rss_kib};
use crate::harness::{
    Ip, Netns, output_with_input, output_within, require_command, require_kernel, which,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "ipset";

/// The environment variable that makes [`read_child`] read and report (see
/// [`child_read`]).
const CHILD: &str = "NFE_IPSET_READ_CHILD";

/// Whether the test can run; panics under `CI=true` when it cannot.
fn can_run() -> bool {
    require_kernel()
        && ["ipset", "iptables", "ip6tables", "ping"]
            .into_iter()
            .all(require_command)
}

/// Every member counter, at most `member_limit` per set.
fn counting(member_limit: u64) -> Settings {
    Settings {
        member_counters: true,
        member_limit,
    }
}

/// The reader's sets, read from inside `ns`.
fn read_in(ns: &Netns, settings: &Settings) -> Result<Vec<Set>, ipset::ReadError> {
    let settings = settings.clone();
    ns.on_thread(move || ipset::read(&settings, Duration::from_secs(60)))
}

fn read_ok(ns: &Netns, settings: &Settings) -> Vec<Set> {
    read_in(ns, settings).unwrap_or_else(|e| panic!("read: {}", chain(&e)))
}

/// An error with its causes.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs `script` with `ipset restore` inside `ns`.
fn restore(ns: &Netns, script: &str) {
    let out = ns.output("ipset", &["restore"], script);
    assert!(
        out.status.success(),
        "ipset restore: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The text between the first `<tag>` and the `</tag>` after it.
fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))?;
    Some(&xml[start..start + end])
}

fn number(xml: &str, name: &str) -> u64 {
    tag(xml, name)
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        .parse()
        .unwrap_or_else(|e| panic!("<{name}> in {xml}: {e}"))
}

/// The sets `ipset list -o xml` describes inside `ns`, as the reader must report them with
/// every member counter: header fields, and members with their packets and bytes for sets
/// created with `counters`.
fn ipset_xml(ns: &Netns) -> Vec<Set> {
    let xml = ns.run("ipset", &["list", "-o", "xml"]);
    xml.split("<ipset name=\"")
        .skip(1)
        .map(|set| {
            let (name, rest) = set.split_once('"').expect("a quoted name");
            let header = tag(rest, "header").expect("a header");
            let counters = header.contains("<counters/>");
            let type_name = tag(rest, "type").expect("a type");
            let family = match tag(header, "family") {
                Some("inet") => Some(Family::Ipv4),
                Some("inet6") => Some(Family::Ipv6),
                Some(other) => panic!("family {other}"),
                // ipset prints no family for the bitmap:ip types, which are IPv4 only (the
                // kernel says NFPROTO_IPV4).
                None if type_name.starts_with("bitmap:ip") => Some(Family::Ipv4),
                None => None,
            };
            let members: Vec<Member> = rest
                .split("<member>")
                .skip(1)
                .filter(|_| counters)
                .map(|member| Member {
                    element: tag(member, "elem").expect("an element").to_owned(),
                    packets: number(member, "packets"),
                    bytes: number(member, "bytes"),
                })
                .collect();
            Set {
                name: name.to_owned(),
                type_name: type_name.to_owned(),
                family,
                entries: number(header, "numentries"),
                max_entries: tag(header, "maxelem")
                    .or_else(|| tag(header, "size"))
                    .map(|n| n.parse().expect("a number")),
                memory_bytes: number(header, "memsize"),
                references: number(header, "references"),
                members,
                members_left_out: counters.then_some(0),
            }
        })
        .collect()
}

/// The ipset families of `sets`, checked by promtool when present.
fn render(sets: &[Set]) -> Exposition {
    let mut out = ExpositionBuilder::default();
    metrics::ipset::render_sets(&mut out, sets);
    let text = String::from_utf8(out.finish().to_vec(Format::Text)).expect("UTF-8");
    if which("promtool").is_some() {
        let out = output_with_input(
            std::process::Command::new("promtool").args(["check", "metrics"]),
            &text,
        );
        assert!(
            out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
    }
    Exposition::parse(&text)
}

/// Sets of every type this kernel has (it lacks `hash:ip,mac`, `hash:mac`, `hash:ip,mark`,
/// `hash:net,net` and `hash:net,port,net`, whose parts `element.rs` tests) and both
/// families; a member with a timeout of its own, a permanent one in a set with timeouts, a
/// `nomatch` net, comments, ICMP and GRE members, a bridge port, a bitmap member whose MAC
/// address is not learnt.
const SETS: &str = "\
create ctr hash:ip counters timeout 600
add ctr 192.0.2.1 timeout 500 packets 5 bytes 300
add ctr 192.0.2.2 packets 1 bytes 1500
add ctr 192.0.2.3 timeout 0
create nets hash:net counters comment
add nets 198.51.100.0/24 comment \"a net\"
add nets 203.0.113.7
add nets 10.0.0.0/8 nomatch
create ports hash:ip,port counters
add ports 192.0.2.1,tcp:443 packets 7 bytes 420
add ports 192.0.2.1,udp:53
add ports 192.0.2.1,icmp:echo-request
add ports 192.0.2.9,gre:0
create plain hash:ip,port
add plain 192.0.2.1,sctp:9
create six hash:ip family inet6 counters
add six 2001:db8::1 packets 2 bytes 208
add six ::ffff:192.0.2.1
add six ::192.0.2.1
create sixnets hash:net family inet6 counters
add sixnets 2001:db8:1::/48
create bp bitmap:port range 0-1024 counters
add bp 22 packets 1 bytes 60
add bp 80
create lst list:set counters
add lst nets
add lst ports
create masked hash:ip netmask 24 counters
add masked 192.0.2.77
create ifaces hash:net,iface counters
add ifaces 10.0.0.0/8,eth0
add ifaces 10.1.0.0/16,physdev:br0
create ipportip hash:ip,port,ip counters
add ipportip 192.0.2.1,sctp:9,192.0.2.2
create ipportnet hash:ip,port,net counters
add ipportnet 192.0.2.1,tcp:22,10.0.0.0/8
create netport hash:net,port family inet6 counters
add netport 2001:db8::/32,udp:53
create bip bitmap:ip range 192.0.2.0/24 netmask 28 counters
add bip 192.0.2.16
create bipmac bitmap:ip,mac range 192.0.2.0/24 counters
add bipmac 192.0.2.1,02:00:00:00:00:01
add bipmac 192.0.2.2
";

#[test]
fn every_set_as_ipset_lists_it() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    assert_eq!(read_ok(&ns, &counting(100)), [], "no set yet");
    restore(&ns, SETS);
    let expected = ipset_xml(&ns);
    assert_eq!(expected.len(), 15, "{expected:#?}");
    let read = read_ok(&ns, &counting(100));
    assert_eq!(read, expected);
    let exposition = render(&read);
    assert!(exposition.duplicate_series().is_empty());
    assert_eq!(
        exposition.value(
            "ipset_member_bytes_total",
            &[("set", "ports"), ("member", "192.0.2.1,tcp:443")]
        ),
        420.0
    );
    assert_eq!(
        exposition.value(
            "ipset_entries",
            &[("set", "six"), ("type", "hash:ip"), ("family", "ipv6")]
        ),
        3.0
    );

    let headers = read_ok(&ns, &Settings::default());
    let without_members: Vec<Set> = expected
        .iter()
        .map(|set| Set {
            members: Vec::new(),
            members_left_out: None,
            ..set.clone()
        })
        .collect();
    assert_eq!(headers, without_members, "headers only by default");
    render(&headers);
}

/// A set's listing abandoned at the limit leaves the reader's socket in the middle of a
/// dump; the sets after it are read all the same.
#[test]
fn members_beyond_the_limit_are_counted_as_left_out() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    restore(&ns, SETS);
    let expected = ipset_xml(&ns);
    for limit in [0, 1, 2] {
        let read = read_ok(&ns, &counting(limit));
        assert_eq!(read.len(), expected.len());
        for (set, listed) in read.iter().zip(&expected) {
            let Some(all) = listed.members_left_out.map(|_| &listed.members) else {
                assert_eq!((set.members.len(), set.members_left_out), (0, None));
                continue;
            };
            let kept = all.len().min(limit as usize);
            assert_eq!(set.members, all[..kept], "{} at limit {limit}", set.name);
            assert_eq!(
                set.members_left_out,
                Some((all.len() - kept) as u64),
                "{} at limit {limit}",
                set.name
            );
        }
    }
}

/// Echo requests to 127.0.0.1 and ::1 through OUTPUT rules matching sets by destination:
/// each matching member counts each packet once, with its IP length.
#[test]
fn real_packets_move_member_counters() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    restore(
        &ns,
        "\
create hosts hash:ip counters
add hosts 127.0.0.1
add hosts 127.0.0.2
create nets hash:net counters
add nets 127.0.0.0/8
create six hash:ip family inet6 counters
add six ::1
",
    );
    for (iptables, set) in [
        ("iptables", "hosts"),
        ("iptables", "nets"),
        ("ip6tables", "six"),
    ] {
        let (proto, kind) = match iptables {
            "iptables" => ("icmp", "--icmp-type"),
            _ => ("ipv6-icmp", "--icmpv6-type"),
        };
        ns.run(
            iptables,
            &[
                "-A",
                "OUTPUT",
                "-p",
                proto,
                kind,
                "echo-request",
                "-m",
                "set",
                "--match-set",
                set,
                "dst",
            ],
        );
    }
    ns.ping(Ip::V4, 3, 56);
    ns.ping(Ip::V6, 2, 100);
    let read = read_ok(&ns, &counting(100));
    let counters: BTreeMap<(&str, &str), (u64, u64)> = read
        .iter()
        .flat_map(|set| {
            set.members.iter().map(|m| {
                (
                    (set.name.as_str(), m.element.as_str()),
                    (m.packets, m.bytes),
                )
            })
        })
        .collect();
    let v4 = Ip::V4.echo_bytes(56);
    let v6 = Ip::V6.echo_bytes(100);
    assert_eq!(
        counters,
        BTreeMap::from([
            (("hosts", "127.0.0.1"), (3, 3 * v4)),
            (("hosts", "127.0.0.2"), (0, 0)),
            (("nets", "127.0.0.0/8"), (3, 3 * v4)),
            (("six", "::1"), (2, 2 * v6)),
        ])
    );
    assert!(read.iter().all(|set| set.references == 1), "{read:#?}");
    assert_eq!(read, ipset_xml(&ns));
}

/// Members of the 100k-member set.
const BIG: u64 = 100_000;

/// What [`read_child`] reported.
#[derive(Debug)]
struct ChildRead {
    sets: usize,
    members: usize,
    left_out: u64,
    peak_kib: u64,
    micros: u64,
}

/// Runs this test binary's [`read_child`] inside `ns` with `settings` (`headers` or
/// `counting:LIMIT`) and parses its report.
fn child_read(ns: &Netns, settings: &str) -> ChildRead {
    // libtest names a test by its path without the crate's name, which module_path! holds.
    let (_, module) = module_path!()
        .split_once("::")
        .expect("a module of a test binary");
    let mut command = ns.command(std::env::current_exe().expect("this test binary"));
    command
        .arg(format!("{module}::read_child"))
        .args(["--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD, settings);
    let out = output_within(command, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("ipset-read ").map(|(_, report)| report))
        .unwrap_or_else(|| panic!("no report in {stdout}"));
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line}"))
    };
    ChildRead {
        sets: field("sets") as usize,
        members: field("members") as usize,
        left_out: field("left_out"),
        peak_kib: field("peak_kib"),
        micros: field("micros"),
    }
}

/// Not a test on its own: the process [`child_read`] starts, which reads the sets of the
/// namespace it runs in and prints what it read and its peak resident size.
#[test]
#[ignore = "run by a_big_set_costs_a_read_no_memory, inside its namespace"]
fn read_child() {
    let Ok(settings) = std::env::var(CHILD) else {
        return;
    };
    let settings = match settings.strip_prefix("counting:") {
        Some(limit) => counting(limit.parse().expect("a limit")),
        None => Settings::default(),
    };
    let start = std::time::Instant::now();
    let sets = ipset::read(&settings, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("read: {}", chain(&e)));
    let took = start.elapsed();
    let members: usize = sets.iter().map(|s| s.members.len()).sum();
    let left_out: u64 = sets.iter().filter_map(|s| s.members_left_out).sum();
    println!(
        "ipset-read sets={} members={members} left_out={left_out} peak_kib={} micros={}",
        sets.len(),
        peak_rss_kib(std::process::id()),
        took.as_micros()
    );
}

/// The peak resident size of a read of a namespace holding a set of [`BIG`] members,
/// against that of an empty namespace: within 10 MB without member counters, and with them
/// bounded by the member limit (figures in docs/ipset.md).
#[test]
fn a_big_set_costs_a_read_no_memory() {
    if !can_run() {
        return;
    }
    let empty = Netns::new(NETNS_LABEL);
    let big = Netns::new(NETNS_LABEL);
    let mut script = format!("create big hash:ip counters maxelem {}\n", 2 * BIG);
    for i in 0..BIG {
        let [_, a, b, c] = (0x0a00_0000u32 + i as u32).to_be_bytes();
        script.push_str(&format!("add big 10.{a}.{b}.{c}\n"));
    }
    restore(&big, &script);
    let baseline = child_read(&empty, "headers");
    assert_eq!(baseline.sets, 0);
    let headers = child_read(&big, "headers");
    assert_eq!((headers.sets, headers.members), (1, 0));
    let limited = child_read(&big, "counting:10000");
    assert_eq!(
        (limited.members, limited.left_out),
        (10_000, BIG - 10_000),
        "{limited:?}"
    );
    let all = child_read(&big, &format!("counting:{}", 2 * BIG));
    assert_eq!((all.members, all.left_out), (BIG as usize, 0), "{all:?}");
    for (what, read) in [
        ("empty namespace", &baseline),
        ("headers only", &headers),
        ("member limit 10000", &limited),
        ("every member", &all),
    ] {
        println!(
            "{what}: peak resident {} KiB, read {} µs",
            read.peak_kib, read.micros
        );
    }
    const TEN_MB_KIB: u64 = 10 * 1024;
    assert!(
        headers.peak_kib <= baseline.peak_kib + TEN_MB_KIB,
        "{headers:?} against {baseline:?}"
    );
    assert!(
        limited.peak_kib <= baseline.peak_kib + TEN_MB_KIB,
        "{limited:?} against {baseline:?}"
    );
    // Bounded by the limit, not by the set: a tenth of the members costs well under half
    // of what all of them do.
    assert!(
        2 * limited.peak_kib.saturating_sub(baseline.peak_kib)
            < all.peak_kib.saturating_sub(baseline.peak_kib),
        "{limited:?} against {all:?} and {baseline:?}"
    );
}

/// The exporter itself, in its automatic selection, `-t ipset` and with member counters:
/// the ipset source is one of the registry's, read and published like any other.
#[test]
fn the_exporter_reads_the_sets_among_its_sources() {
    if !can_run() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    // Without a set the source has nothing to read and is left out.
    let empty = ns.dump_ok(&[]);
    assert!(
        empty
            .find(
                "netfilter_exporter_collection_success",
                &[("source", "ipset")]
            )
            .is_empty(),
        "{}",
        empty.text
    );
    restore(
        &ns,
        "create blocked hash:ip family inet counters\nadd blocked 192.0.2.1 packets 7 bytes 700\n\
         add blocked 192.0.2.2\ncreate ports bitmap:port range 1-1024\nadd ports 22\n",
    );
    for args in [&[][..], &["-t", "ipset"][..]] {
        let metrics = ns.dump_ok(args);
        assert_eq!(
            metrics.value(
                "netfilter_exporter_collection_success",
                &[("source", "ipset")]
            ),
            1.0,
            "{args:?}"
        );
        assert_eq!(
            metrics.value(
                "ipset_entries",
                &[("set", "blocked"), ("type", "hash:ip"), ("family", "ipv4")]
            ),
            2.0,
            "{args:?}:\n{}",
            metrics.text
        );
        assert_eq!(
            metrics.value("ipset_entries", &[("set", "ports")]),
            1.0,
            "{args:?}"
        );
        assert!(
            metrics.find("ipset_member_packets_total", &[]).is_empty(),
            "{args:?}: members without --ipset.member-counters"
        );
    }
    let counted = ns.dump_ok(&["-t", "ipset", "--ipset.member-counters"]);
    assert_eq!(
        counted.value(
            "ipset_member_packets_total",
            &[("set", "blocked"), ("member", "192.0.2.1")]
        ),
        7.0,
        "{}",
        counted.text
    );
    let limited = ns.dump_ok(&[
        "-t",
        "ipset",
        "--ipset.member-counters",
        "--ipset.member-limit",
        "1",
    ]);
    assert_eq!(
        limited.value("ipset_members_left_out", &[("set", "blocked")]),
        1.0,
        "{}",
        limited.text
    );
}
