//! Random rules drawn from the grammar the decoder supports, loaded into a namespace and
//! decoded: each text must be `iptables-save`'s own and none declined. Where the extension
//! tests go over each option alone, this combines them (several matches in one rule, their
//! order, inversions next to each other), as rules in the field do.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use netfilter_exporter::ruleset::Family;

use crate::iptables_decode::{assert_decoded_as_saved, can_run, table};

fn maybe<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 2 => s.prop_map(Some)].boxed()
}

fn not() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just(""), 1 => Just("! ")]
}

fn address(family: Family, letter: char) -> BoxedStrategy<String> {
    match family {
        Family::Ipv6 => (not(), any::<[u8; 16]>(), 1u8..=128)
            .prop_map(move |(n, bytes, plen)| {
                let address = std::net::Ipv6Addr::from(bytes);
                format!("{n}-{letter} {address}/{plen}")
            })
            .boxed(),
        _ => (not(), any::<[u8; 4]>(), 1u8..=32)
            .prop_map(move |(n, [a, b, c, d], plen)| format!("{n}-{letter} {a}.{b}.{c}.{d}/{plen}"))
            .boxed(),
    }
}

fn iface(letter: char) -> impl Strategy<Value = String> {
    (not(), "[a-z]{1,6}[0-9]{0,2}", any::<bool>()).prop_map(move |(n, name, plus)| {
        format!("{n}-{letter} {name}{}", if plus { "+" } else { "" })
    })
}

fn ports(option: &'static str) -> impl Strategy<Value = String> {
    (not(), any::<u16>(), any::<u16>(), any::<bool>()).prop_map(move |(n, a, b, range)| {
        if range {
            format!("{n}--{option} {}:{}", a.min(b), a.max(b))
        } else {
            format!("{n}--{option} {a}")
        }
    })
}

fn tcp_flags() -> impl Strategy<Value = String> {
    const FLAGS: [&str; 6] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG"];
    let set = || {
        proptest::sample::subsequence(FLAGS.to_vec(), 0..=6).prop_map(|f| {
            if f.is_empty() {
                "NONE".to_owned()
            } else {
                f.join(",")
            }
        })
    };
    (not(), set(), set()).prop_map(|(n, mask, cmp)| format!("{n}--tcp-flags {mask} {cmp}"))
}

/// `-p` and the match of its protocol.
fn protocol(family: Family) -> BoxedStrategy<String> {
    let (icmp, option) = match family {
        Family::Ipv6 => ("-p ipv6-icmp -m icmp6", "--icmpv6-type"),
        _ => ("-p icmp -m icmp", "--icmp-type"),
    };
    prop_oneof![
        Just(String::new()),
        Just("! -p tcp".to_owned()),
        (
            maybe(ports("sport")),
            maybe(ports("dport")),
            maybe(tcp_flags())
        )
            .prop_map(|(s, d, f)| {
                let options: Vec<String> = [s, d, f].into_iter().flatten().collect();
                format!("-p tcp -m tcp {}", options.join(" "))
            }),
        (maybe(ports("sport")), maybe(ports("dport"))).prop_map(|(s, d)| {
            let options: Vec<String> = [s, d].into_iter().flatten().collect();
            format!("-p udp -m udp {}", options.join(" "))
        }),
        (not(), 0u8..=200, maybe(0u8..=15)).prop_map(move |(n, t, code)| match code {
            Some(code) => format!("{icmp} {n}{option} {t}/{code}"),
            None => format!("{icmp} {n}{option} {t}"),
        }),
    ]
    .boxed()
}

/// A comment with the characters that need quoting and escaping.
fn comment() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _:/.\"'\\\\é-]{1,40}".prop_map(|c| {
        let escaped = c.replace('\\', "\\\\").replace('"', "\\\"");
        format!("-m comment --comment \"{escaped}\"")
    })
}

/// Matches that may follow, in any order.
fn matches(family: Family) -> impl Strategy<Value = Vec<String>> {
    // The kernel refuses BROADCAST for IPv6, which has none.
    let address_types = match family {
        Family::Ipv6 => vec!["UNICAST", "LOCAL", "MULTICAST"],
        _ => vec!["UNICAST", "LOCAL", "BROADCAST", "MULTICAST"],
    };
    let one = prop_oneof![
        comment(),
        (not(), any::<u32>(), maybe(any::<u32>())).prop_map(|(n, v, m)| match m {
            Some(m) => format!("-m mark {n}--mark {v:#x}/{m:#x}"),
            None => format!("-m mark {n}--mark {v:#x}"),
        }),
        (
            not(),
            proptest::sample::subsequence(
                vec![
                    "INVALID",
                    "NEW",
                    "RELATED",
                    "ESTABLISHED",
                    "UNTRACKED",
                    "SNAT",
                    "DNAT"
                ],
                1..=7
            )
        )
            .prop_map(|(n, s)| format!("-m conntrack {n}--ctstate {}", s.join(","))),
        (not(), 0u32..=1_000_000).prop_map(|(n, p)| format!(
            "-m statistic --mode random {n}--probability {}",
            f64::from(p) / 1_000_000.0
        )),
        (not(), 1u32..=100, 0u32..=99).prop_map(|(n, every, packet)| format!(
            "-m statistic --mode nth {n}--every {every} --packet {}",
            packet % every
        )),
        (
            1u32..=10_000,
            proptest::sample::select(vec!["sec", "min", "hour", "day"]),
            1u32..=100
        )
            .prop_map(|(rate, unit, burst)| format!(
                "-m limit --limit {rate}/{unit} --limit-burst {burst}"
            )),
        (not(), proptest::sample::subsequence(address_types, 1..=3))
            .prop_map(|(n, t)| format!("-m addrtype {n}--dst-type {}", t.join(","))),
    ];
    proptest::collection::vec(one, 0..3)
}

fn target(family: Family) -> impl Strategy<Value = String> {
    let rejects = match family {
        Family::Ipv6 => vec![
            "icmp6-port-unreachable",
            "icmp6-adm-prohibited",
            "icmp6-no-route",
        ],
        _ => vec![
            "icmp-port-unreachable",
            "icmp-host-prohibited",
            "icmp-admin-prohibited",
        ],
    };
    prop_oneof![
        Just(String::new()),
        Just("-j ACCEPT".to_owned()),
        Just("-j DROP".to_owned()),
        Just("-j RETURN".to_owned()),
        Just("-j Y".to_owned()),
        Just("-g Y".to_owned()),
        proptest::sample::select(rejects).prop_map(|w| format!("-j REJECT --reject-with {w}")),
        (any::<u32>(), any::<u32>())
            .prop_map(|(v, m)| format!("-j MARK --set-xmark {v:#x}/{m:#x}")),
        "[a-z :]{1,20}".prop_map(|p| format!("-j LOG --log-prefix \"{p}\"")),
        (any::<u16>(), "[a-z]{0,10}").prop_map(|(g, p)| if p.is_empty() {
            format!("-j NFLOG --nflog-group {g}")
        } else {
            format!("-j NFLOG --nflog-prefix {p} --nflog-group {g}")
        }),
    ]
}

fn rule(family: Family) -> impl Strategy<Value = String> {
    let basics = (
        maybe(address(family, 's')),
        maybe(address(family, 'd')),
        maybe(iface('i')),
        maybe(iface('o')),
    );
    (basics, protocol(family), matches(family), target(family)).prop_map(
        |((src, dst, iif, oif), proto, matches, target)| {
            let mut parts = vec!["-A X".to_owned()];
            parts.extend([src, dst, iif, oif].into_iter().flatten());
            parts.push(proto);
            parts.extend(matches);
            parts.push(target);
            parts.retain(|p| !p.is_empty());
            parts.join(" ")
        },
    )
}

#[test]
fn random_rules_of_the_supported_grammar_decode_as_saved() {
    if !can_run() {
        return;
    }
    for family in [Family::Ipv4, Family::Ipv6] {
        let mut runner = TestRunner::new(Config {
            cases: 16,
            failure_persistence: None,
            ..Config::default()
        });
        let rules = proptest::collection::vec(rule(family), 1..40);
        let outcome = runner.run(&rules, |rules| {
            let dump = table("filter", &rules).replace(":X - [0:0]\n", ":X - [0:0]\n:Y - [0:0]\n");
            let outcome =
                std::panic::catch_unwind(|| assert_decoded_as_saved("random rules", family, &dump));
            match outcome {
                Ok(declined) if declined.is_empty() => Ok(()),
                Ok(declined) => Err(TestCaseError::fail(format!("declined {declined:?}"))),
                Err(panic) => Err(TestCaseError::fail(
                    panic.downcast_ref::<String>().cloned().unwrap_or_default(),
                )),
            }
        });
        outcome.unwrap_or_else(|e| panic!("{family:?}: {e}"));
    }
}
