//! The x_tables matches of Docker, libvirt, ufw, firewalld, kube-proxy, Calico and Cilium
//! decoded against `iptables-save`: each match over its options, inversions and value
//! edges, in the revision the host's iptables writes.

use netfilter_exporter::ruleset::Family;

use crate::harness::require_command;
use crate::iptables_decode::{
    assert_decoded_as_saved, assert_decoded_as_saved_with, can_run, rules_over, table,
};

/// Asserts that every rule of `rules` (chain `X` of `table_name`) decodes as saved.
fn decodes_as_saved(name: &str, family: Family, table_name: &str, rules: &[String]) {
    let declined = assert_decoded_as_saved(name, family, &table(table_name, rules));
    assert!(declined.is_empty(), "{name}: declined {declined:?}");
}

#[test]
fn multiport_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let options = [
        "-p tcp -m multiport --dports 80,443",
        "-p tcp -m multiport --sports 1:1024",
        "-p udp -m multiport --ports 0,65535",
        "-p tcp -m multiport ! --dports 22",
        "-p tcp -m multiport ! --sports 0:65535",
        "-p tcp -m multiport --dports 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
        "-p tcp -m multiport --dports 1:2,3:4,5:6,7:8,9:10,11:12,13:14,15",
        "-p tcp -m multiport --ports 22,80:90,443",
        "-p tcp -m multiport --dports ssh,http",
        "-p sctp -m multiport --dports 5000:6000",
        "-p udplite -m multiport --sports 7",
        "-p dccp -m multiport --dports 1,2",
        "-p tcp -m multiport --dports 80 -m multiport --sports 1024:65535",
    ];
    let rules = rules_over("", &options, " -j ACCEPT");
    decodes_as_saved("multiport", Family::Ipv4, "filter", &rules);
    let rules = rules_over("", &options[..4], " -j ACCEPT");
    decodes_as_saved("multiport6", Family::Ipv6, "filter", &rules);
}

#[test]
fn physdev_pkttype_and_mac_decode_as_saved() {
    if !can_run() {
        return;
    }
    let options = [
        "-m physdev --physdev-in eth0",
        "-m physdev ! --physdev-in eth+",
        "-m physdev --physdev-out veth1",
        "-m physdev ! --physdev-out br-x",
        "-m physdev --physdev-is-in",
        "-m physdev ! --physdev-is-in",
        "-m physdev --physdev-is-out",
        "-m physdev ! --physdev-is-out",
        "-m physdev --physdev-is-bridged",
        "-m physdev ! --physdev-is-bridged",
        "-m physdev --physdev-in 123456789012345",
        "-m physdev --physdev-in a --physdev-out b --physdev-is-bridged",
        "-m physdev ! --physdev-is-in ! --physdev-in x ! --physdev-is-out ! --physdev-out y",
        "-m pkttype --pkt-type unicast",
        "-m pkttype --pkt-type broadcast",
        "-m pkttype --pkt-type multicast",
        "-m pkttype --pkt-type otherhost",
        "-m pkttype ! --pkt-type host",
        "-m pkttype --pkt-type bcast",
        "-m pkttype ! --pkt-type mcast",
        "-m mac --mac-source 00:11:22:33:44:55",
        "-m mac ! --mac-source AA:BB:CC:DD:EE:0F",
        "-m mac --mac-source ff:ff:ff:ff:ff:ff",
    ];
    let rules = rules_over("", &options, " -j ACCEPT");
    decodes_as_saved("physdev", Family::Ipv4, "filter", &rules);
    decodes_as_saved("physdev6", Family::Ipv6, "filter", &rules);
}

#[test]
fn owner_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let options = [
        "-m owner --uid-owner 0",
        "-m owner --uid-owner root",
        "-m owner ! --uid-owner 65534",
        "-m owner --uid-owner 1000-2000",
        "-m owner --uid-owner 4294967294",
        "-m owner --uid-owner 0-4294967294",
        "-m owner --gid-owner 0",
        "-m owner ! --gid-owner 10-20",
        "-m owner --socket-exists",
        "-m owner ! --socket-exists",
        "-m owner --gid-owner 100 --suppl-groups",
        "-m owner --socket-exists --uid-owner 1 ! --gid-owner 2 --suppl-groups",
    ];
    let rules = rules_over("", &options, " -j ACCEPT");
    decodes_as_saved("owner", Family::Ipv4, "filter", &rules);
    decodes_as_saved("owner6", Family::Ipv6, "filter", &rules);
}

#[test]
fn iprange_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-m iprange --src-range 1.2.3.4-1.2.3.5",
            "-m iprange ! --src-range 10.0.0.0-10.255.255.255",
            "-m iprange --dst-range 0.0.0.0-255.255.255.255",
            "-m iprange --src-range 1.1.1.1-1.1.1.1 ! --dst-range 2.2.2.2-2.2.2.3",
        ],
        " -j ACCEPT",
    );
    decodes_as_saved("iprange", Family::Ipv4, "filter", &rules);
    let rules = rules_over(
        "",
        &[
            "-m iprange --src-range ::1-::2",
            "-m iprange ! --dst-range 2001:db8::-2001:db8::ffff",
            "-m iprange --src-range ::1.2.3.4-::1.2.3.5",
            "-m iprange --src-range ::ffff:1.2.3.4-::ffff:1.2.3.5",
            "-m iprange --dst-range ::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "-m iprange --src-range 1::-1::1:0",
            "-m iprange --src-range 1:0:0:1::-1:0:0:1::1 --dst-range fe80::1:0:0:1-fe80::1:0:0:2",
        ],
        " -j ACCEPT",
    );
    decodes_as_saved("iprange6", Family::Ipv6, "filter", &rules);
}

/// iptables writes IPv6 addresses with `inet_ntop`: `::1.2.3.4` after six zero groups.
#[test]
fn ipv6_addresses_in_matches_decode_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-m conntrack --ctorigsrc ::1.2.3.4 --ctorigdst ::1:0/112",
            "-m conntrack ! --ctreplsrc ::ffff:1.2.3.4 --ctrepldst 2001:db8::/32",
            "-m recent --set --name b --mask ::255.255.0.0",
            "-m recent --set --name c --mask ffff::",
            "-m policy --dir in --pol ipsec --mode tunnel --tunnel-src ::1.2.3.4",
            "-m iprange --src-range ::0.0.0.2-::1:0",
        ],
        " -j ACCEPT",
    );
    decodes_as_saved("ipv6 addresses", Family::Ipv6, "filter", &rules);
}

#[test]
fn length_tcpmss_dscp_tos_and_ttl_decode_as_saved() {
    if !can_run() {
        return;
    }
    let common = [
        "-m length --length 10",
        "-m length --length 0:65535",
        "-m length ! --length 100:200",
        "-m length --length 65535",
        "-m length --length :100",
        "-m length --length 1500:",
        "-p tcp -m tcpmss --mss 1400",
        "-p tcp -m tcpmss --mss 1000:1500",
        "-p tcp -m tcpmss ! --mss 536",
        "-p tcp -m tcpmss --mss 0:65535",
        "-m dscp --dscp 0",
        "-m dscp --dscp 0x3f",
        "-m dscp ! --dscp 10",
        "-m dscp --dscp-class EF",
        "-m dscp ! --dscp-class AF41",
        "-m tos --tos 0x10",
        "-m tos --tos Minimize-Delay",
        "-m tos ! --tos 0x08/0x0f",
        "-m tos --tos 0/0",
        "-m tos --tos 0xff/0xff",
    ];
    let mut rules = rules_over("", &common, " -j ACCEPT");
    rules.extend(rules_over(
        "",
        &[
            "-m ttl --ttl-eq 0",
            "-m ttl ! --ttl-eq 64",
            "-m ttl --ttl-lt 255",
            "-m ttl --ttl-gt 1",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("length", Family::Ipv4, "filter", &rules);
    let mut rules = rules_over("", &common, " -j ACCEPT");
    rules.extend(rules_over(
        "",
        &[
            "-m hl --hl-eq 0",
            "-m hl ! --hl-eq 64",
            "-m hl --hl-lt 255",
            "-m hl --hl-gt 1",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("length6", Family::Ipv6, "filter", &rules);
}

#[test]
fn hashlimit_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let options = [
        "--hashlimit-upto 5/sec --hashlimit-name a",
        "--hashlimit-above 10/min --hashlimit-burst 20 --hashlimit-mode srcip,dstport --hashlimit-name b",
        "--hashlimit-upto 1/hour --hashlimit-name c",
        "--hashlimit-upto 24/day --hashlimit-name c",
        "--hashlimit-upto 1000000/sec --hashlimit-name c",
        "--hashlimit-upto 3/min --hashlimit-name c",
        "--hashlimit-upto 7/sec --hashlimit-name c",
        "--hashlimit-upto 59/min --hashlimit-name c",
        "--hashlimit-upto 25/hour --hashlimit-name c",
        "--hashlimit-upto 100/day --hashlimit-name c",
        "! --hashlimit-upto 5/sec --hashlimit-name c",
        "! --hashlimit-above 5/sec --hashlimit-name c",
        "--hashlimit-upto 100kb/s --hashlimit-name d",
        "--hashlimit-upto 1mb/s --hashlimit-burst 2mb --hashlimit-name e",
        "--hashlimit-upto 512b/s --hashlimit-name e",
        "--hashlimit-above 1000b/s --hashlimit-burst 5000b --hashlimit-name e",
        "--hashlimit-upto 3000kb/s --hashlimit-burst 4mb --hashlimit-name e",
        "--hashlimit-upto 1b/s --hashlimit-name e",
        "--hashlimit-upto 5/sec --hashlimit-mode srcip,srcport,dstip,dstport --hashlimit-name f \
         --hashlimit-htable-size 1024 --hashlimit-htable-max 2048 \
         --hashlimit-htable-gcinterval 500 --hashlimit-htable-expire 3000 \
         --hashlimit-srcmask 24 --hashlimit-dstmask 16",
        "--hashlimit-upto 5/sec --hashlimit-mode dstip --hashlimit-name f --hashlimit-srcmask 32 --hashlimit-dstmask 0",
        "--hashlimit-upto 5/sec --hashlimit-name g --hashlimit-rate-match --hashlimit-rate-interval 5",
        "--hashlimit-upto 5/sec --hashlimit-name h --hashlimit-rate-match",
        "--hashlimit-upto 100kb/s --hashlimit-name h --hashlimit-rate-match",
        "--hashlimit-upto 5/min --hashlimit-name i --hashlimit-htable-expire 60000",
        "--hashlimit-upto 5/sec --hashlimit-name i --hashlimit-htable-expire 1000",
        "--hashlimit-upto 5/sec --hashlimit-name i --hashlimit-htable-gcinterval 1000",
        "--hashlimit-upto 5/sec --hashlimit-burst 1000000 --hashlimit-name a.b-c_d",
        "--hashlimit-upto 5/sec --hashlimit-burst 1 --hashlimit-name x",
    ];
    let rules = rules_over("-m hashlimit ", &options, " -j ACCEPT");
    decodes_as_saved("hashlimit", Family::Ipv4, "filter", &rules);
    let mut rules = rules_over("-m hashlimit ", &options[..3], " -j ACCEPT");
    rules.extend(rules_over(
        "-m hashlimit ",
        &[
            "--hashlimit-upto 5/sec --hashlimit-mode srcip --hashlimit-name j --hashlimit-srcmask 64",
            "--hashlimit-upto 5/sec --hashlimit-name j --hashlimit-srcmask 128 --hashlimit-dstmask 127",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("hashlimit6", Family::Ipv6, "filter", &rules);
}

#[test]
fn connmark_helper_rpfilter_and_socket_decode_as_saved() {
    if !can_run() {
        return;
    }
    let options = [
        "-m connmark --mark 1",
        "-m connmark ! --mark 0x10/0xf0",
        "-m connmark --mark 0xffffffff",
        "-m connmark --mark 0/0",
        "-m connmark --mark 0x0",
        "-m helper --helper ftp",
        "-m helper ! --helper sip",
        "-m helper --helper ftp-2121",
        "-m helper --helper \"a b\"",
        "-m helper --helper \"\"",
        "-m socket",
        "-m socket --transparent",
        "-m socket --nowildcard",
        "-m socket --restore-skmark",
        "-m socket --transparent --nowildcard --restore-skmark",
    ];
    let mut rules = rules_over("", &options, " -j ACCEPT");
    rules.extend(rules_over(
        "",
        &[
            "-m rpfilter",
            "-m rpfilter --loose",
            "-m rpfilter --validmark",
            "-m rpfilter --accept-local",
            "-m rpfilter --invert",
            "-m rpfilter --loose --validmark --accept-local --invert",
        ],
        " -j DROP",
    ));
    let rules: Vec<String> = rules
        .into_iter()
        .map(|r| r.replacen("-A X", "-A PREROUTING", 1))
        .collect();
    decodes_as_saved("connmark", Family::Ipv4, "raw", &rules);
    decodes_as_saved("connmark6", Family::Ipv6, "raw", &rules);
}

#[test]
fn policy_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let common = [
        "--dir in --pol none",
        "--dir out --pol none",
        "--dir out --pol ipsec",
        "--dir in --pol ipsec --strict --reqid 1 --spi 0x100 --proto esp --mode transport",
        "--dir in --pol ipsec ! --reqid 0 ! --spi 4294967295 ! --proto ah ! --mode tunnel",
        "--dir in --pol ipsec --proto ipcomp",
        "--dir in --pol ipsec --proto 50",
        "--dir out --pol ipsec --strict --reqid 1 --next --spi 2 --next --proto esp --next --mode transport",
    ];
    let mut rules = rules_over("-m policy ", &common, " -j ACCEPT");
    rules.extend(rules_over(
        "-m policy ",
        &[
            "--dir in --pol ipsec --mode tunnel --tunnel-src 10.0.0.0/8 --tunnel-dst 10.0.0.1",
            "--dir in --pol ipsec --mode tunnel ! --tunnel-src 1.2.3.4/16 ! --tunnel-dst 0.0.0.0/0",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("policy", Family::Ipv4, "filter", &rules);
    let mut rules = rules_over("-m policy ", &common, " -j ACCEPT");
    rules.extend(rules_over(
        "-m policy ",
        &[
            "--dir in --pol ipsec --mode tunnel --tunnel-src 2001:db8::/32 --tunnel-dst ::1",
            "--dir in --pol ipsec --mode tunnel ! --tunnel-src ::1.2.3.4/96",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("policy6", Family::Ipv6, "filter", &rules);
}

#[test]
fn cgroup_esp_ah_cpu_quota_and_connlimit_decode_as_saved() {
    if !can_run() {
        return;
    }
    let common = [
        "-m cgroup --path /",
        "-m cgroup ! --path /",
        "-m cgroup --cgroup 1",
        "-m cgroup ! --cgroup 4294967295",
        "-p esp -m esp --espspi 1",
        "-p esp -m esp --espspi 100:200",
        "-p esp -m esp",
        "-m cpu --cpu 0",
        "-m cpu ! --cpu 3",
        "-m quota --quota 0",
        "-m quota ! --quota 18446744073709551615",
        "-m connlimit --connlimit-above 2",
        "-m connlimit --connlimit-upto 0 --connlimit-daddr",
        "-m connlimit --connlimit-above 4294967295 --connlimit-mask 0",
    ];
    let mut rules = rules_over("", &common, " -j ACCEPT");
    rules.extend(rules_over(
        "",
        &[
            "-p ah -m ah --ahspi 1",
            "-p ah -m ah ! --ahspi 5:6",
            "-p ah -m ah",
            "-m connlimit --connlimit-above 2 --connlimit-mask 24",
            "-m connlimit --connlimit-above 2 --connlimit-mask 32",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("cgroup", Family::Ipv4, "filter", &rules);
    let mut rules = rules_over("", &common, " -j ACCEPT");
    rules.extend(rules_over(
        "",
        &[
            "-m ah --ahspi 1",
            "-m ah ! --ahspi 5:6 --ahlen 3 --ahres",
            "-m ah ! --ahlen 0",
            "-m ah",
            "-m connlimit --connlimit-above 2 --connlimit-mask 64",
            "-m connlimit --connlimit-above 2 --connlimit-mask 127",
        ],
        " -j ACCEPT",
    ));
    decodes_as_saved("cgroup6", Family::Ipv6, "filter", &rules);
}

#[test]
fn time_and_string_decode_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-m time --timestart 10:00",
            "-m time --timestart 00:00 --timestop 23:59:59",
            "-m time --timestart 23:00 --timestop 01:00:59 --contiguous",
            "-m time --monthdays 1,15,31",
            "-m time ! --monthdays 2",
            "-m time --weekdays Mon,Sun",
            "-m time ! --weekdays Sat",
            "-m time --weekdays 1,2,3,4,5,6,7",
            "-m time --datestart 2000-02-29T12:34:56",
            "-m time --datestart 1970-01-01T00:00:01 --datestop 2038-01-19T03:14:07",
            "-m time --datestop 2024-12-31",
            "-m time --kerneltz --timestart 08:00 --timestop 17:00",
            "-m string --string foo --algo bm",
            "-m string ! --string \"a b\" --algo kmp",
            "-m string --string \"q\\\"uote\" --algo bm --from 10 --to 100",
            "-m string --string \"back\\\\slash!\" --algo bm --icase",
            "-m string --string \"end\\\\\" --algo bm",
            "-m string --hex-string \"|00 01 ff|\" --algo bm",
            "-m string --hex-string \"|41|b|43|\" --algo bm --to 0",
            "-m string --string \"it's\" --algo bm --from 65535",
            "-m string --string \"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456\" --algo bm",
        ],
        " -j ACCEPT",
    );
    decodes_as_saved("time", Family::Ipv4, "filter", &rules);
    decodes_as_saved("time6", Family::Ipv6, "filter", &rules);
}

#[test]
fn sctp_dccp_and_devgroup_decode_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-p sctp -m sctp --dport 1",
            "-p sctp -m sctp ! --sport 1000:2000",
            "-p sctp -m sctp --sport 0:65535 ! --dport 0",
            "-p sctp -m sctp --chunk-types any DATA,INIT",
            "-p sctp -m sctp ! --chunk-types all INIT_ACK,SACK,HEARTBEAT,HEARTBEAT_ACK,ABORT",
            "-p sctp -m sctp --chunk-types only SHUTDOWN,SHUTDOWN_ACK,ERROR,COOKIE_ECHO,COOKIE_ACK,ECN_ECNE,ECN_CWR,SHUTDOWN_COMPLETE",
            "-p sctp -m sctp --chunk-types any I_DATA,RE_CONFIG,PAD,ASCONF,ASCONF_ACK,FORWARD_TSN,I_FORWARD_TSN",
            "-p sctp -m sctp --chunk-types any ALL",
            "-p sctp -m sctp --chunk-types only NONE",
            "-p sctp -m sctp --chunk-types any DATA:Be",
            "-p sctp -m sctp --chunk-types all DATA:IUBE,ABORT:t,SHUTDOWN_COMPLETE:T",
            "-p sctp -m sctp --dport 5 --chunk-types any DATA:iubE,INIT",
            "-p sctp -m sctp --chunk-types any I_DATA:I",
            "-p dccp -m dccp --dport 1",
            "-p dccp -m dccp ! --sport 1:2 ! --dport 3",
            "-p dccp -m dccp --dccp-types REQUEST,RESPONSE,DATA,ACK,DATAACK",
            "-p dccp -m dccp ! --dccp-types CLOSEREQ,CLOSE,RESET,SYNC,SYNCACK,INVALID",
            "-p dccp -m dccp --dccp-option 1",
            "-p dccp -m dccp ! --dccp-option 255",
            "-m devgroup --src-group 1",
            "-m devgroup --src-group 0",
            "-m devgroup ! --dst-group 0x10/0xf0",
            "-m devgroup --src-group 0/0xffffffff ! --dst-group 4294967295",
            "-m devgroup --src-group 0/0xff",
        ],
        " -j ACCEPT",
    );
    decodes_as_saved("sctp", Family::Ipv4, "filter", &rules);
    decodes_as_saved("sctp6", Family::Ipv6, "filter", &rules);
}

/// Loads `rules` (chain `X` of `filter`), after `setup`, with a rule that decodes, and
/// asserts that exactly the extensions `expected` are declined.
fn declined_as(name: &str, family: Family, rules: &[&str], setup: &[&[&str]], expected: &[&str]) {
    let mut rules = rules_over("", rules, " -j ACCEPT");
    rules.push("-A X -j ACCEPT".to_owned());
    let dump = table("filter", &rules);
    let declined = assert_decoded_as_saved_with(name, family, &dump, setup);
    let declined: Vec<&str> = declined.keys().map(String::as_str).collect();
    assert_eq!(declined, expected, "{name}: declined");
}

/// What iptables prints differently across versions is listed rather than decoded.
#[test]
fn ambiguous_texts_are_declined() {
    if !can_run() {
        return;
    }
    // Every SPI inverted: printed since iptables 1.8.10 only.
    declined_as(
        "every spi",
        Family::Ipv4,
        &["-p esp -m esp ! --espspi 0:4294967295"],
        &[],
        &["esp rev 0"],
    );
    declined_as(
        "every spi6",
        Family::Ipv6,
        &["-m ah ! --ahspi 0:4294967295"],
        &[],
        &["ah rev 0"],
    );
}

/// The kernel holds the index of a set, not its name: `set` is listed.
/// `set` holds the set's index; its name is asked of the kernel's ipset, as iptables-save
/// asks it.
#[test]
fn set_decodes_as_saved() {
    if !can_run() || !require_command("ipset") {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-m set --match-set s src",
            "-m set ! --match-set s src,dst --return-nomatch",
            "-m set --match-set pairs dst,src ! --update-counters ! --update-subcounters",
            "-m set --match-set s src --packets-eq 5 ! --bytes-eq 7",
            "-m set --match-set pairs src,src --packets-lt 2 --bytes-gt 18446744073709551615",
            "-m comment --comment x -m set --match-set s dst",
        ],
        " -j ACCEPT",
    );
    let setup: &[&[&str]] = &[
        &["ipset", "create", "s", "hash:ip", "counters"],
        &["ipset", "create", "pairs", "hash:ip,port", "counters"],
    ];
    let declined =
        assert_decoded_as_saved_with("set", Family::Ipv4, &table("filter", &rules), setup);
    assert!(declined.is_empty(), "declined: {declined:?}");
}
