//! Generates a native nftables ruleset of a chosen size for `nft -f`: one `inet` table
//! shaped like a firewall of many services (a dispatch chain jumping to one chain per
//! service, three counting rules each, comments on most rules), named counters and quotas,
//! and one named set of a chosen number of elements: one chain per four rules, near the
//! DESIGN's native 100k-rule case (one per three). Deterministic.

use std::fmt::Write;

/// The ruleset with about `rules` rules and a set `blocked` of `set_elements` addresses.
pub(crate) fn nftables_ruleset(rules: usize, set_elements: usize) -> String {
    // Per service: a jump in `input` and three rules in its chain.
    let services = rules.div_ceil(4).max(1);
    let mut out = String::with_capacity(rules * 120 + set_elements * 16);
    out.push_str("table inet bench {\n");
    for i in 0..16 {
        let _ = writeln!(
            out,
            "  counter c{i} {{ packets {} bytes {} }}",
            i * 7,
            i * 700
        );
        let _ = writeln!(
            out,
            "  quota q{i} {{ over {} mbytes used {} kbytes }}",
            100 + i,
            i
        );
    }
    out.push_str("  set blocked {\n    type ipv4_addr\n");
    if set_elements > 0 {
        out.push_str("    elements = { ");
        for e in 0..set_elements {
            let sep = if e == 0 { "" } else { ", " };
            let _ = write!(
                out,
                "{sep}10.{}.{}.{}",
                e >> 16 & 255,
                e >> 8 & 255,
                e & 255
            );
        }
        out.push_str(" }\n");
    }
    out.push_str("  }\n");
    out.push_str("  chain input {\n    type filter hook input priority 0; policy accept;\n");
    out.push_str("    ip saddr @blocked counter drop comment \"blocked\"\n");
    for s in 0..services {
        let _ = writeln!(out, "    tcp dport {} jump svc{s}", 1024 + s % 60000);
    }
    out.push_str("  }\n");
    for s in 0..services {
        let _ = writeln!(out, "  chain svc{s} {{");
        let _ = writeln!(
            out,
            "    ip saddr 10.{}.{}.0/24 counter accept comment \"svc{s} internal\"",
            s >> 8 & 255,
            s & 255
        );
        let _ = writeln!(
            out,
            "    ct state established counter accept comment \"svc{s} established\""
        );
        let _ = writeln!(
            out,
            "    counter drop comment \"=svc{s}= service {s} refused\""
        );
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
