//! The targets Docker, libvirt, ufw, firewalld, kube-proxy, Calico and Cilium load,
//! decoded against `iptables-save` over each option: flags, value edges, prefixes with
//! quotes, backslashes and blanks, both families where the target has both.

use netfilter_exporter::ruleset::Family;

use crate::iptables_decode::{
    assert_decoded_as_saved, assert_decoded_as_saved_with, can_run, rules_over, table,
};

/// Loads `rules` of chain `X` of `table_name` for `family` and asserts that every rule
/// decodes as saved, none declined.
fn assert_all_decoded(name: &str, family: Family, table_name: &str, rules: &[String]) {
    let declined = assert_decoded_as_saved(name, family, &table(table_name, rules));
    assert!(declined.is_empty(), "{name}: declined {declined:?}");
}

/// Both families, the same rules.
fn assert_all_decoded_46(name: &str, table_name: &str, rules: &[String]) {
    assert_all_decoded(name, Family::Ipv4, table_name, rules);
    assert_all_decoded(&format!("{name} (IPv6)"), Family::Ipv6, table_name, rules);
}

#[test]
fn log_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "-j LOG",
        &[
            "",
            " --log-prefix plain",
            " --log-prefix \"two words \"",
            " --log-prefix \"q\\\"uote\"",
            " --log-prefix \"back\\\\slash\"",
            " --log-prefix \"it's\"",
            " --log-prefix \"[UFW BLOCK] \"",
            " --log-prefix \"DROP: \"",
            " --log-prefix \"a.b/c:d=e\"",
            " --log-prefix \"é\"",
            " --log-prefix _-0123456789abcdefghijklmnopq",
            " --log-prefix \"29 characters long, at most..\"",
            " --log-level 0",
            " --log-level emerg",
            " --log-level 3",
            " --log-level warning",
            " --log-level 4",
            " --log-level info",
            " --log-level 7",
            " --log-tcp-sequence",
            " --log-tcp-options",
            " --log-ip-options",
            " --log-uid",
            " --log-macdecode",
            " --log-macdecode --log-uid --log-ip-options --log-tcp-options --log-tcp-sequence",
            " --log-prefix \"x \" --log-level 6 --log-uid",
        ],
        "",
    );
    let mut filter = rules.clone();
    filter.push("-A INPUT -p tcp -m tcp --dport 22 -j LOG --log-prefix \"ssh \"".to_owned());
    assert_all_decoded_46("LOG", "filter", &filter);
    assert_all_decoded("LOG in nat", Family::Ipv4, "nat", &rules);
}

#[test]
fn connmark_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "-j CONNMARK",
        &[
            " --save-mark",
            " --restore-mark",
            " --save-mark --mask 0xff",
            " --restore-mark --mask 0xffff0000",
            " --save-mark --nfmask 0xff --ctmask 0xf0",
            " --restore-mark --nfmask 0x0 --ctmask 0x1",
            " --set-mark 1",
            " --set-mark 0x4000/0x4000",
            " --set-xmark 0x1/0x2",
            " --set-xmark 0xffffffff/0xffffffff",
            " --set-xmark 0x0/0x0",
            " --and-mark 0xff",
            " --or-mark 0x8000",
            " --xor-mark 0x3",
            " --save-mark --left-shift-mark 8",
            " --restore-mark --right-shift-mark 31",
            " --save-mark --nfmask 0xff00 --ctmask 0xff --right-shift-mark 8",
            " --set-xmark 0x1/0x1 --left-shift-mark 1",
        ],
        "",
    );
    assert_all_decoded_46("CONNMARK", "mangle", &rules);
    assert_all_decoded("CONNMARK in nat", Family::Ipv4, "nat", &rules);
}

#[test]
fn ct_and_notrack_decode_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-j NOTRACK",
            "-j CT --notrack",
            "-j CT",
            "-p tcp -m tcp --dport 21 -j CT --helper ftp",
            "-p udp -m udp --dport 69 -j CT --helper tftp",
            "-j CT --ctevents new",
            "-j CT --ctevents new,related,destroy,reply,assured,protoinfo,helper,mark,natseqinfo,secmark",
            "-j CT --ctevents secmark,new",
            "-j CT --expevents new",
            "-j CT --zone 1",
            "-j CT --zone 65535",
            "-j CT --zone 0",
            "-j CT --zone mark",
            "-j CT --zone-orig 5",
            "-j CT --zone-reply 5",
            "-j CT --zone-orig 0",
            "-j CT --zone-orig mark",
            "-j CT --zone-reply mark",
            "-j CT --notrack --zone 3",
            "-p tcp -j CT --helper ftp --ctevents new,mark --expevents new --zone-orig 7",
        ],
        "",
    );
    assert_all_decoded_46("CT", "raw", &rules);
    // IRC's helper tracks IPv4 only.
    let irc = rules_over("-p tcp -j CT --helper irc", &[""], "");
    assert_all_decoded("CT irc", Family::Ipv4, "raw", &irc);
}

#[test]
fn tcpmss_and_checksum_decode_as_saved() {
    if !can_run() {
        return;
    }
    let mut rules = rules_over(
        "-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS",
        &[
            " --clamp-mss-to-pmtu",
            " --set-mss 1400",
            " --set-mss 0",
            " --set-mss 65495",
        ],
        "",
    );
    rules.extend(rules_over(
        "",
        &["-p udp -m udp --dport 68 -j CHECKSUM --checksum-fill"],
        "",
    ));
    assert_all_decoded_46("TCPMSS and CHECKSUM", "mangle", &rules);
}

#[test]
fn nfqueue_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "-j NFQUEUE",
        &[
            "",
            " --queue-num 0",
            " --queue-num 5",
            " --queue-num 65535",
            " --queue-balance 2:5",
            " --queue-balance 0:1",
            " --queue-balance 100:65535",
            " --queue-num 3 --queue-bypass",
            " --queue-bypass",
            " --queue-balance 2:5 --queue-cpu-fanout",
            " --queue-balance 2:5 --queue-bypass --queue-cpu-fanout",
        ],
        "",
    );
    assert_all_decoded_46("NFQUEUE", "filter", &rules);
}

#[test]
fn tproxy_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let options = [
        " --on-port 80",
        " --on-port 0",
        " --on-port 65535 --tproxy-mark 0x1",
        " --on-port 8080 --tproxy-mark 0x200/0xf00",
        " --on-port 8080 --tproxy-mark 0xffffffff/0xffffffff",
    ];
    let mut rules = rules_over("-p tcp -j TPROXY", &options, "");
    rules.extend(rules_over(
        "-p udp -j TPROXY",
        &options,
        " --on-ip 10.0.0.1",
    ));
    rules.push(
        "-A PREROUTING -p tcp -m tcp --dport 80 -j TPROXY --on-port 15001 --on-ip 127.0.0.1 --tproxy-mark 0x200/0xf00"
            .to_owned(),
    );
    assert_all_decoded("TPROXY", Family::Ipv4, "mangle", &rules);
    let mut rules6 = rules_over("-p tcp -j TPROXY", &options, "");
    rules6.extend(rules_over(
        "-p udp -j TPROXY",
        &options,
        " --on-ip 2001:db8::1",
    ));
    rules6.extend(rules_over(
        "-p tcp -j TPROXY --on-port 1 --on-ip",
        &[" ::1", " ::1.2.3.4", " ::ffff:10.0.0.1", " fe80::1:0:0:1"],
        "",
    ));
    assert_all_decoded("TPROXY (IPv6)", Family::Ipv6, "mangle", &rules6);
}

#[test]
fn ipv6_nat_decodes_as_saved() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-p tcp -j DNAT --to-destination [2001:db8::1]:80",
            "-j DNAT --to-destination 2001:db8::1",
            "-j DNAT --to-destination ::1.2.3.4",
            "-j DNAT --to-destination ::ffff:1.2.3.4",
            "-j DNAT --to-destination 2001:db8::1-2001:db8::9",
            "-p tcp -j DNAT --to-destination [2001:db8::1-2001:db8::9]:80-90",
            "-p tcp -j DNAT --to-destination [2001:db8::1]:80-90/100",
            "-p tcp -j DNAT --to-destination :80",
            "-p udp -j DNAT --to-destination [fd00::1]:53 --random --persistent",
            "-j SNAT --to-source 2001:db8::1 --persistent",
            "-p tcp -j SNAT --to-source [::ffff:1.2.3.4]:1000-2000 --random-fully",
            "-p tcp -j SNAT --to-source :1000",
            "-j MASQUERADE",
            "-j MASQUERADE --random-fully",
            "-p udp -j MASQUERADE --to-ports 10-20 --random",
            "-p tcp -j REDIRECT --to-ports 8080",
            "-p tcp -j REDIRECT --to-ports 8080-8090 --random",
            "-p tcp -j REDIRECT",
        ],
        "",
    );
    assert_all_decoded("IPv6 NAT", Family::Ipv6, "nat", &rules);
}

#[test]
fn reject_decodes_as_saved_with_every_type() {
    if !can_run() {
        return;
    }
    let rules = rules_over(
        "",
        &[
            "-j REJECT",
            "-j REJECT --reject-with icmp-net-unreachable",
            "-j REJECT --reject-with net-unreach",
            "-j REJECT --reject-with icmp-host-unreachable",
            "-j REJECT --reject-with icmp-proto-unreachable",
            "-j REJECT --reject-with icmp-port-unreachable",
            "-j REJECT --reject-with icmp-net-prohibited",
            "-j REJECT --reject-with icmp-host-prohibited",
            "-j REJECT --reject-with icmp-admin-prohibited",
            "-p tcp -j REJECT --reject-with tcp-reset",
            "-p tcp -j REJECT --reject-with tcp-rst",
        ],
        "",
    );
    assert_all_decoded("REJECT", Family::Ipv4, "filter", &rules);
    let rules6 = rules_over(
        "",
        &[
            "-j REJECT",
            "-j REJECT --reject-with icmp6-no-route",
            "-j REJECT --reject-with no-route",
            "-j REJECT --reject-with icmp6-adm-prohibited",
            "-j REJECT --reject-with icmp6-addr-unreachable",
            "-j REJECT --reject-with icmp6-port-unreachable",
            "-j REJECT --reject-with icmp6-policy-fail",
            "-j REJECT --reject-with icmp6-reject-route",
            "-p tcp -j REJECT --reject-with tcp-reset",
        ],
        "",
    );
    assert_all_decoded("REJECT (IPv6)", Family::Ipv6, "filter", &rules6);
}

#[test]
fn packet_rewriting_targets_decode_as_saved() {
    if !can_run() {
        return;
    }
    let both = rules_over(
        "",
        &[
            "-j CLASSIFY --set-class 1:2",
            "-j CLASSIFY --set-class 0:0",
            "-j CLASSIFY --set-class ffff:ffff",
            "-j CLASSIFY --set-class 10:abcd",
            "-j DSCP --set-dscp 0",
            "-j DSCP --set-dscp 10",
            "-j DSCP --set-dscp 0x3f",
            "-j DSCP --set-dscp-class EF",
            "-j DSCP --set-dscp-class af41",
            "-j TOS --set-tos 0x10",
            "-j TOS --set-tos 0x00/0xff",
            "-j TOS --set-tos 0xff/0x0f",
            "-j TOS --set-tos Minimize-Delay",
            "-j TOS --and-tos 0x3",
            "-j TOS --or-tos 0x10",
            "-j TOS --xor-tos 0x1",
            "-j MARK --set-mark 0x1",
            "-j MARK --set-xmark 0x4000/0x4000",
        ],
        "",
    );
    assert_all_decoded_46("rewriting", "mangle", &both);
    let ttl = rules_over(
        "-j TTL",
        &[
            " --ttl-set 0",
            " --ttl-set 64",
            " --ttl-set 255",
            " --ttl-inc 1",
            " --ttl-dec 255",
        ],
        "",
    );
    assert_all_decoded("TTL", Family::Ipv4, "mangle", &ttl);
    let hl = rules_over(
        "-j HL",
        &[" --hl-set 0", " --hl-set 255", " --hl-inc 1", " --hl-dec 2"],
        "",
    );
    assert_all_decoded("HL", Family::Ipv6, "mangle", &hl);
}

#[test]
fn tee_audit_and_hmark_decode_as_saved() {
    if !can_run() {
        return;
    }
    let both = rules_over(
        "",
        &[
            "-j AUDIT --type accept",
            "-j AUDIT --type drop",
            "-j AUDIT --type reject",
            "-j HMARK --hmark-tuple src --hmark-rnd 0x5 --hmark-mod 10",
            "-j HMARK --hmark-tuple src,dst --hmark-rnd 0xfeedcafe --hmark-mod 1 --hmark-offset 100",
            "-j HMARK --hmark-tuple sport,dport,proto --hmark-rnd 1 --hmark-mod 4294967295",
            "-j HMARK --hmark-tuple spi --hmark-rnd 1 --hmark-mod 2",
            "-j HMARK --hmark-tuple ct --hmark-rnd 1 --hmark-mod 2",
            "-j HMARK --hmark-src-prefix 16 --hmark-dst-prefix 24 --hmark-rnd 1 --hmark-mod 2",
            "-j HMARK --hmark-sport-mask 0xff00 --hmark-dport-mask 0x00ff --hmark-rnd 1 --hmark-mod 2",
            "-j HMARK --hmark-spi-mask 0x1234abcd --hmark-proto-mask 0x11 --hmark-rnd 1 --hmark-mod 2",
            "-j HMARK --hmark-tuple src --hmark-sport 0x10 --hmark-dport 5 --hmark-rnd 1 --hmark-mod 2",
            "-j HMARK --hmark-tuple dst --hmark-spi 0x10 --hmark-rnd 1 --hmark-mod 2",
        ],
        "",
    );
    assert_all_decoded_46("AUDIT and HMARK", "mangle", &both);
    let tee = rules_over(
        "-j TEE --gateway",
        &[
            " 10.0.0.1",
            " 10.0.0.1 --oif eth0",
            " 255.255.255.255 --oif veth-a_b.1",
        ],
        "",
    );
    assert_all_decoded("TEE", Family::Ipv4, "mangle", &tee);
    let tee6 = rules_over(
        "-j TEE --gateway",
        &[" 2001:db8::1", " ::1.2.3.4 --oif eth0", " fe80::1"],
        "",
    );
    assert_all_decoded("TEE (IPv6)", Family::Ipv6, "mangle", &tee6);
}

/// `SET` names its sets by index; their names are asked of the kernel's ipset, as
/// iptables-save asks them.
#[test]
fn set_decodes_as_saved() {
    if !can_run() || !crate::harness::require_command("ipset") {
        return;
    }
    let rules = rules_over(
        "-j SET",
        &[
            " --add-set foo src",
            " --del-set foo src,dst",
            " --add-set foo dst --exist --timeout 5",
            " --add-set foo src --del-set bar dst,dst",
            " --map-set map src --map-mark --map-prio --map-queue",
        ],
        "",
    );
    let setup: &[&[&str]] = &[
        &["ipset", "create", "foo", "hash:ip", "timeout", "10"],
        &["ipset", "create", "bar", "hash:ip,port"],
        &["ipset", "create", "map", "hash:ip", "skbinfo"],
    ];
    let declined =
        assert_decoded_as_saved_with("SET", Family::Ipv4, &table("mangle", &rules), setup);
    assert!(declined.is_empty(), "declined: {declined:?}");
}
