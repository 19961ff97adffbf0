//! x_tables matches, printed from their structures (`linux/netfilter/xt_*.h`, host byte
//! order) as `iptables-save` prints them: the name, then the options.

use std::fmt::Write as _;

use super::Text;
use super::info::{
    Info, address, bang, bit_names, options, set_dimensions, set_name, span, transport,
};
use crate::ruleset::Family;

/// Prints match `name` at revision `rev`, from its name on; `None` for a match or
/// revision not known here, or a structure of the wrong size.
pub(super) fn print(
    name: &str,
    rev: u32,
    family: Family,
    info: &[u8],
    out: &mut Text,
) -> Option<()> {
    let info = Info(info);
    match (name, rev) {
        ("comment", 0) => {
            out.push_str("comment --comment");
            let comment = out.lossy(info.bytes(0, 256)?);
            out.quoted(&comment);
        }
        ("tcp", 0) => {
            info.len_at_least(12)?;
            out.push_str("tcp");
            let inv = info.u8(11)?;
            let (option, mask, compared) = (info.u8(8)?, info.u8(9)?, info.u8(10)?);
            transport(
                out,
                (info.u16(0)?, info.u16(2)?, inv & 0x01 != 0),
                (info.u16(4)?, info.u16(6)?, inv & 0x02 != 0),
                (option != 0 || inv & 0x08 != 0).then_some((option, inv & 0x08 != 0)),
                (mask != 0 || inv & 0x04 != 0).then_some((mask, compared, inv & 0x04 != 0)),
            );
        }
        ("udp", 0) => {
            info.len_at_least(9)?;
            out.push_str("udp");
            let inv = info.u8(8)?;
            let sport = (info.u16(0)?, info.u16(2)?, inv & 0x01 != 0);
            transport(
                out,
                sport,
                (info.u16(4)?, info.u16(6)?, inv & 0x02 != 0),
                None,
                None,
            );
        }
        ("icmp", 0) | ("icmp6", 0) => {
            let (kind, low, high, inv) = (info.u8(0)?, info.u8(1)?, info.u8(2)?, info.u8(3)?);
            out.push_str(name);
            if inv & 0x01 != 0 {
                out.push_str(" !");
            }
            if name == "icmp" && (kind, low, high) == (0xff, 0, 0xff) {
                out.push_str(" --icmp-type any");
            } else {
                let option = if name == "icmp" {
                    "--icmp-type"
                } else {
                    "--icmpv6-type"
                };
                let _ = write!(out, " {option} {kind}");
                if (low, high) != (0, 0xff) {
                    let _ = write!(out, "/{low}");
                }
            }
        }
        ("statistic", 0) => statistic(&info, out)?,
        ("recent", 0 | 1) => recent(&info, rev, family, out)?,
        ("addrtype", 1) => addrtype(&info, out)?,
        ("conntrack", 3) => conntrack(&info, family, out)?,
        ("multiport", 1) => multiport(&info, out)?,
        ("physdev", 0) => physdev(&info, out)?,
        ("pkttype", 0) => {
            const TYPES: [&str; 4] = ["unicast", "broadcast", "multicast", "otherhost"];
            // A C `int`: a type without a name is printed signed.
            let kind = info.u32(0)? as i32;
            let _ = write!(out, "pkttype{} --pkt-type ", bang(info.u32(4)? != 0));
            match usize::try_from(kind).ok().and_then(|k| TYPES.get(k)) {
                Some(name) => out.push_str(name),
                None => {
                    let _ = write!(out, "{kind}");
                }
            }
        }
        ("owner", 1) => owner(&info, out)?,
        ("iprange", 1) => iprange(&info, family, out)?,
        ("mac", 0) => {
            let mac = info.bytes(0, 6)?;
            let _ = write!(out, "mac{} --mac-source ", bang(info.u32(8)? != 0));
            for (i, byte) in mac.iter().enumerate() {
                let sep = if i == 0 { "" } else { ":" };
                let _ = write!(out, "{sep}{byte:02x}");
            }
        }
        // The same structure: a range of 16-bit values and an inversion.
        ("length", 0) | ("tcpmss", 0) => {
            let option = if name == "length" { "length" } else { "mss" };
            let _ = write!(out, "{name}{} --{option}", bang(info.u8(4)? != 0));
            span(out, info.u16(0)?.into(), info.u16(2)?.into());
        }
        ("hashlimit", 3) => hashlimit(&info, family, out)?,
        ("connmark", 1) => {
            let _ = write!(out, "connmark{} --mark", bang(info.u8(8)? != 0));
            value_mask(out, info.u32(0)?, info.u32(4)?);
        }
        ("helper", 0) => {
            let _ = write!(out, "helper{} --helper", bang(info.u32(0)? != 0));
            let helper = out.lossy(info.string(4, 30)?);
            out.quoted(&helper);
        }
        ("dscp", 0) => {
            let (dscp, invert) = (info.u8(0)?, info.u8(1)? != 0);
            let _ = write!(out, "dscp{} --dscp {dscp:#04x}", bang(invert));
        }
        ("tos", 1) => {
            let (mask, value, invert) = (info.u8(0)?, info.u8(1)?, info.u8(2)? != 0);
            let _ = write!(out, "tos{} --tos {value:#04x}/{mask:#04x}", bang(invert));
        }
        // `ttl` of IPv4 and `hl` of IPv6: one structure, one comparison.
        ("ttl", 0) | ("hl", 0) => {
            let (op, invert) = match info.u8(0)? {
                0 => ("eq", false),
                1 => ("eq", true),
                2 => ("lt", false),
                3 => ("gt", false),
                _ => return None,
            };
            let _ = write!(out, "{name}{} --{name}-{op} {}", bang(invert), info.u8(1)?);
        }
        ("policy", 0) => policy(&info, family, out)?,
        ("rpfilter", 0) => {
            out.push_str("rpfilter");
            let names = [
                (1, " --loose"),
                (2, " --validmark"),
                (4, " --accept-local"),
                (8, " --invert"),
            ];
            options(out, info.u8(0)?.into(), &names);
        }
        ("socket", 3) => {
            out.push_str("socket");
            let names = [
                (1, " --transparent"),
                (2, " --nowildcard"),
                (4, " --restore-skmark"),
            ];
            options(out, info.u8(0)?.into(), &names);
        }
        ("cgroup", 2) => cgroup(&info, out)?,
        ("esp", 0) => {
            out.push_str("esp");
            spis(out, "--espspi", &info, 8)?;
        }
        ("ah", 0) => {
            out.push_str("ah");
            match family {
                Family::Ipv4 => spis(out, "--ahspi", &info, 8)?,
                Family::Ipv6 => {
                    let (hdrlen, reserved, inv) = (info.u32(8)?, info.u8(12)?, info.u8(13)?);
                    spis(out, "--ahspi", &info, 13)?;
                    if hdrlen != 0 || inv & 0x02 != 0 {
                        let _ = write!(out, "{} --ahlen {hdrlen}", bang(inv & 0x02 != 0));
                    }
                    if reserved != 0 {
                        out.push_str(" --ahres");
                    }
                }
                _ => return None,
            }
        }
        ("cpu", 0) => {
            let (cpu, invert) = (info.u32(0)?, info.u32(4)? != 0);
            let _ = write!(out, "cpu{} --cpu {cpu}", bang(invert));
        }
        // What is left of the quota is kernel state behind a pointer: the quota printed is
        // the one set.
        ("quota", 0) => {
            let (invert, quota) = (info.u32(0)? & 1 != 0, info.u64(8)?);
            let _ = write!(out, "quota{} --quota {quota}", bang(invert));
        }
        ("connlimit", 1) => connlimit(&info, family, out)?,
        ("time", 0) => time(&info, out)?,
        ("string", 1) => string(&info, out)?,
        ("sctp", 0) => sctp(&info, out)?,
        ("dccp", 0) => dccp(&info, out)?,
        ("devgroup", 0) => {
            let given = info.u32(0)?;
            out.push_str("devgroup");
            for (bit, invert, option, at) in [(1, 2, "--src-group", 4), (4, 8, "--dst-group", 12)] {
                if given & bit != 0 {
                    let _ = write!(out, "{} {option}", bang(given & invert != 0));
                    let (group, mask) = (info.u32(at)?, info.u32(at + 4)?);
                    match device_group_name(group) {
                        Some(name) if mask == u32::MAX => {
                            let _ = write!(out, " {name}");
                        }
                        _ => value_mask(out, group, mask),
                    }
                }
            }
        }
        ("set", 4) => set(&info, out)?,
        ("rt", 0) if family == Family::Ipv6 => routing_header(&info, out)?,
        _ => return None,
    }
    Some(())
}

/// `rt`: the IPv6 routing header's type, segments left, length and, for type 0, its
/// addresses.
fn routing_header(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const ADDRESSES: usize = 20;
    let (kind, left_min, left_max, len) = (info.u32(0)?, info.u32(4)?, info.u32(8)?, info.u32(12)?);
    let (flags, inv) = (info.u8(16)?, info.u8(17)?);
    let count = usize::from(info.u8(ADDRESSES + 16 * 16)?);
    if count > 16 {
        return None;
    }
    out.push_str("rt");
    if flags & 0x01 != 0 {
        let _ = write!(out, "{} --rt-type {kind}", bang(inv & 0x01 != 0));
    }
    if !(left_min == 0 && left_max == u32::MAX && inv & 0x02 == 0) {
        let _ = write!(out, "{} --rt-segsleft {left_min}", bang(inv & 0x02 != 0));
        if left_max != left_min {
            let _ = write!(out, ":{left_max}");
        }
    }
    if flags & 0x04 != 0 {
        let _ = write!(out, "{} --rt-len {len}", bang(inv & 0x04 != 0));
    }
    if flags & 0x08 != 0 {
        out.push_str(" --rt-0-res");
    }
    if flags & 0x10 != 0 {
        out.push_str(" --rt-0-addrs");
    }
    for i in 0..count {
        let address = address(Family::Ipv6, info.bytes(ADDRESSES + 16 * i, 16)?)?;
        let _ = write!(out, "{}{address}", if i == 0 { " " } else { "," });
    }
    if flags & 0x20 != 0 {
        out.push_str(" --rt-0-not-strict");
    }
    Some(())
}

/// `set` revision 4: the set by name (asked of ipset by the index the rule holds), its
/// dimensions, flags and counter comparisons.
fn set(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const INVERT: u8 = 1;
    const SKIP_COUNTERS: u32 = 1 << 3;
    const SKIP_SUBCOUNTERS: u32 = 1 << 4;
    const RETURN_NOMATCH: u32 = 1 << 7;
    info.len_at_least(44)?;
    let (name, match_flags) = (set_name(info, 0, out)?, info.u8(3)?);
    out.push_str("set");
    if match_flags & INVERT != 0 {
        out.push_str(" !");
    }
    let _ = write!(out, " --match-set {name}");
    set_dimensions(info, 0, out)?;
    let flags = info.u32(40)?;
    if flags & RETURN_NOMATCH != 0 {
        out.push_str(" --return-nomatch");
    }
    if flags & SKIP_COUNTERS != 0 {
        out.push_str(" ! --update-counters");
    }
    if flags & SKIP_SUBCOUNTERS != 0 {
        out.push_str(" ! --update-subcounters");
    }
    for (option, at) in [("packets", 8), ("bytes", 24)] {
        let value = info.u64(at)?;
        match info.u8(at + 8)? {
            0 => {}
            1 => {
                let _ = write!(out, " --{option}-eq {value}");
            }
            2 => {
                let _ = write!(out, " ! --{option}-eq {value}");
            }
            3 => {
                let _ = write!(out, " --{option}-lt {value}");
            }
            4 => {
                let _ = write!(out, " --{option}-gt {value}");
            }
            _ => return None,
        }
    }
    Some(())
}

/// ` 0x10`, ` 0x10/0xf0`: a value, and the mask it is compared under unless full.
fn value_mask(out: &mut Text, value: u32, mask: u32) {
    let _ = write!(out, " {value:#x}");
    if mask != u32::MAX {
        let _ = write!(out, "/{mask:#x}");
    }
}

/// `statistic`: `--probability` as a fraction of 2^31 with eleven decimals.
fn statistic(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (mode, flags) = (info.u16(0)?, info.u16(2)?);
    let invert = if flags & 1 != 0 { " !" } else { "" };
    match mode {
        0 => {
            let probability = f64::from(info.u32(4)?) / f64::from(0x8000_0000u32);
            let _ = write!(
                out,
                "statistic --mode random{invert} --probability {}",
                c_fixed(probability, 11)
            );
        }
        1 => {
            let (every, packet) = (info.u32(4)?, info.u32(8)?);
            let _ = write!(
                out,
                "statistic --mode nth{invert} --every {} --packet {packet}",
                u64::from(every) + 1
            );
        }
        _ => return None,
    }
    Some(())
}

/// `x` with `digits` decimals, rounded half to even on the exact binary value as C's
/// `printf` rounds it.
fn c_fixed(x: f64, digits: usize) -> String {
    // Rust's formatting of floats with a precision rounds the exact value half to even,
    // as glibc does.
    format!("{x:.digits$}")
}

fn recent(info: &Info<'_>, rev: u32, family: Family, out: &mut Text) -> Option<()> {
    let (seconds, hits, check_set, invert) = (info.u32(0)?, info.u32(4)?, info.u8(8)?, info.u8(9)?);
    let name = out.lossy(info.bytes(10, 200)?);
    let side = info.u8(210)?;
    out.push_str("recent");
    if invert != 0 {
        out.push_str(" !");
    }
    for (bit, option) in [
        (2, " --set"),
        (1, " --rcheck"),
        (4, " --update"),
        (8, " --remove"),
    ] {
        if check_set & bit != 0 {
            out.push_str(option);
        }
    }
    if seconds != 0 {
        let _ = write!(out, " --seconds {seconds}");
    }
    if check_set & 0x20 != 0 {
        out.push_str(" --reap");
    }
    if hits != 0 {
        let _ = write!(out, " --hitcount {hits}");
    }
    if check_set & 0x10 != 0 {
        out.push_str(" --rttl");
    }
    // The name is printed as it is, unquoted.
    let _ = write!(out, " --name {name}");
    if rev == 1 {
        let mask = info.bytes(212, 16)?;
        match family {
            Family::Ipv4 => {
                let _ = write!(out, " --mask {}", address(family, mask)?);
            }
            Family::Ipv6 => {
                let _ = write!(out, " --mask {}", address(family, mask)?);
            }
            _ => return None,
        }
    }
    match side {
        0 => out.push_str(" --rsource"),
        1 => out.push_str(" --rdest"),
        _ => {}
    }
    Some(())
}

fn addrtype(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const TYPES: [&str; 12] = [
        "UNSPEC",
        "UNICAST",
        "LOCAL",
        "BROADCAST",
        "ANYCAST",
        "MULTICAST",
        "BLACKHOLE",
        "UNREACHABLE",
        "PROHIBIT",
        "THROW",
        "NAT",
        "XRESOLVE",
    ];
    let (source, dest, flags) = (info.u16(0)?, info.u16(2)?, info.u32(4)?);
    out.push_str("addrtype");
    for (types, invert, option) in [(source, 1, " --src-type "), (dest, 2, " --dst-type ")] {
        if types == 0 {
            continue;
        }
        if flags & invert != 0 {
            out.push_str(" !");
        }
        out.push_str(option);
        bit_names(out, types.into(), &TYPES)?;
    }
    if flags & 4 != 0 {
        out.push_str(" --limit-iface-in");
    }
    if flags & 8 != 0 {
        out.push_str(" --limit-iface-out");
    }
    Some(())
}

/// `conntrack` revision 3, which also carries `-m state` (its flag `STATE_ALIAS`).
fn conntrack(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    const STATE: u16 = 1;
    const ALIAS: u16 = 1 << 13;
    info.len_at_least(162)?;
    let (flags, inv) = (info.u16(146)?, info.u16(148)?);
    let not = |bit: u16| if inv & bit != 0 { " !" } else { "" };
    if flags & ALIAS != 0 {
        // `-m state --state`: nothing else is set with the alias.
        if flags != STATE | ALIAS {
            return None;
        }
        out.push_str("state");
        let _ = write!(out, "{} --state", not(STATE));
        states(out, info.u16(150)?);
        return Some(());
    }
    out.push_str("conntrack");
    if flags & STATE != 0 {
        let _ = write!(out, "{} --ctstate", not(STATE));
        states(out, info.u16(150)?);
    }
    if flags & (1 << 1) != 0 {
        let _ = write!(out, "{} --ctproto {}", not(1 << 1), info.u16(136)?);
    }
    let addresses = [
        (1 << 2, "--ctorigsrc", 0),
        (1 << 3, "--ctorigdst", 32),
        (1 << 4, "--ctreplsrc", 64),
        (1 << 5, "--ctrepldst", 96),
    ];
    for (bit, option, at) in addresses {
        if flags & bit != 0 {
            let _ = write!(out, "{} {option} ", not(bit));
            address_and_mask(out, family, info.bytes(at, 16)?, info.bytes(at + 16, 16)?)?;
        }
    }
    let ports = [
        (1 << 8, "--ctorigsrcport", 138, 154),
        (1 << 9, "--ctorigdstport", 140, 156),
        (1 << 10, "--ctreplsrcport", 142, 158),
        (1 << 11, "--ctrepldstport", 144, 160),
    ];
    for (bit, option, low, high) in ports {
        if flags & bit != 0 {
            let (low, high) = (info.u16(low)?, info.u16(high)?);
            let _ = write!(out, "{} {option} {low}", not(bit));
            if high != 0 && high != low {
                let _ = write!(out, ":{high}");
            }
        }
    }
    if flags & (1 << 6) != 0 {
        let _ = write!(out, "{} --ctstatus", not(1 << 6));
        let status = info.u16(152)?;
        let names = [
            (1, "EXPECTED"),
            (2, "SEEN_REPLY"),
            (4, "ASSURED"),
            (8, "CONFIRMED"),
        ];
        let mut sep = " ";
        for (bit, name) in names {
            if status & bit != 0 {
                let _ = write!(out, "{sep}{name}");
                sep = ",";
            }
        }
        if status == 0 {
            out.push_str(" NONE");
        }
    }
    if flags & (1 << 7) != 0 {
        let (min, max) = (info.u32(128)?, info.u32(132)?);
        let _ = write!(out, "{} --ctexpire {min}", not(1 << 7));
        if max != min {
            let _ = write!(out, ":{max}");
        }
    }
    if flags & (1 << 12) != 0 {
        out.push_str(if inv & (1 << 12) != 0 {
            " --ctdir REPLY"
        } else {
            " --ctdir ORIGINAL"
        });
    }
    Some(())
}

/// Connection states by name, each after a comma but the first after a blank.
fn states(out: &mut Text, mask: u16) {
    let names = [
        (1 << 0, "INVALID"),
        (1 << 3, "NEW"),
        (1 << 2, "RELATED"),
        (1 << 1, "ESTABLISHED"),
        (1 << 8, "UNTRACKED"),
        (1 << 6, "SNAT"),
        (1 << 7, "DNAT"),
    ];
    let mut sep = " ";
    for (bit, name) in names {
        if mask & bit != 0 {
            let _ = write!(out, "{sep}{name}");
            sep = ",";
        }
    }
}

/// `multiport` revision 1: ports and `first:last` ranges, a range taking two slots.
fn multiport(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const SLOTS: usize = 15;
    let option = match info.u8(0)? {
        0 => "--sports",
        1 => "--dports",
        2 => "--ports",
        _ => return None,
    };
    let count = usize::from(info.u8(1)?);
    if count == 0 || count > SLOTS {
        return None;
    }
    let port = |slot: usize| info.u16(2 + 2 * slot);
    let _ = write!(out, "multiport{} {option} ", bang(info.u8(47)? != 0));
    let mut slot = 0;
    while slot < count {
        if slot > 0 {
            out.push_str(",");
        }
        let _ = write!(out, "{}", port(slot)?);
        if info.u8(32 + slot)? != 0 {
            // The end of a range is the next slot, which the count must hold.
            slot += 1;
            if slot == count {
                return None;
            }
            let _ = write!(out, ":{}", port(slot)?);
        }
        slot += 1;
    }
    Some(())
}

/// `physdev`: the bridge ports, by name, and whether the packet is bridged.
fn physdev(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (invert, given) = (info.u8(64)?, info.u8(65)?);
    out.push_str("physdev");
    // The bit, the option and where the interface name is, for the options with one.
    let options = [
        (0x08, "--physdev-is-in", None),
        (0x01, "--physdev-in", Some(0)),
        (0x10, "--physdev-is-out", None),
        (0x02, "--physdev-out", Some(32)),
        (0x04, "--physdev-is-bridged", None),
    ];
    for (bit, option, name) in options {
        if given & bit == 0 {
            continue;
        }
        let _ = write!(out, "{} {option}", bang(invert & bit != 0));
        if let Some(at) = name {
            // As it is, unquoted.
            let name = out.lossy(info.string(at, 16)?);
            let _ = write!(out, " {name}");
        }
    }
    Some(())
}

/// `owner` revision 1: user and group ids (or id ranges) by number.
fn owner(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (given, invert) = (info.u8(16)?, info.u8(17)?);
    out.push_str("owner");
    // The bit, the option and where its first and last id are, for the options with ids.
    let options = [
        (0x04, "--socket-exists", None),
        (0x01, "--uid-owner", Some(0)),
        (0x02, "--gid-owner", Some(8)),
        (0x08, "--suppl-groups", None),
    ];
    for (bit, option, ids) in options {
        if given & bit == 0 {
            continue;
        }
        let _ = write!(out, "{} {option}", bang(invert & bit != 0));
        if let Some(at) = ids {
            let (first, last) = (info.u32(at)?, info.u32(at + 4)?);
            let _ = write!(out, " {first}");
            if last != first {
                let _ = write!(out, "-{last}");
            }
        }
    }
    Some(())
}

/// `iprange` revision 1: both ends of each range, even when they are one address.
fn iprange(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    let given = info.u8(64)?;
    out.push_str("iprange");
    for (bit, invert, option, at) in [
        (0x01, 0x10, "--src-range", 0),
        (0x02, 0x20, "--dst-range", 32),
    ] {
        if given & bit == 0 {
            continue;
        }
        let first = address(family, info.bytes(at, 16)?)?;
        let last = address(family, info.bytes(at + 16, 16)?)?;
        let _ = write!(out, "{} {option} {first}-{last}", bang(given & invert != 0));
    }
    Some(())
}

/// `hashlimit` revision 3, with the defaults iptables fills in (the burst, the expiry)
/// printed as it prints them.
fn hashlimit(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    const INVERT: u32 = 1 << 4;
    const BYTES: u32 = 1 << 5;
    const RATE_MATCH: u32 = 1 << 6;
    const GC_INTERVAL: u32 = 1000;
    // The structure's tail, from offset 304, is a kernel pointer and is never read.
    let name = out.lossy(info.string(0, 255)?);
    let (avg, burst, mode) = (info.u64(256)?, info.u64(264)?, info.u32(272)?);
    let (size, max, gc_interval) = (info.u32(276)?, info.u32(280)?, info.u32(284)?);
    let (expire, interval) = (info.u32(288)?, info.u32(292)?);
    let (srcmask, dstmask) = (info.u8(296)?, info.u8(297)?);
    let full = match family {
        Family::Ipv4 => 32,
        Family::Ipv6 => 128,
        _ => return None,
    };
    out.push_str(if mode & INVERT != 0 {
        "hashlimit --hashlimit-above"
    } else {
        "hashlimit --hashlimit-upto"
    });
    // The expiry iptables sets when none is given, in milliseconds.
    let default_expire = if mode & BYTES != 0 {
        hashlimit_bytes(out, avg, burst)?
    } else {
        let expire = hashlimit_rate(out, avg);
        let _ = write!(out, " --hashlimit-burst {burst}");
        expire
    };
    // Hashed by: source address, source port, destination address, destination port.
    let keys = [
        (0x04, "srcip"),
        (0x08, "srcport"),
        (0x01, "dstip"),
        (0x02, "dstport"),
    ];
    let mut sep = " --hashlimit-mode ";
    for (bit, key) in keys {
        if mode & bit != 0 {
            let _ = write!(out, "{sep}{key}");
            sep = ",";
        }
    }
    let _ = write!(out, " --hashlimit-name {name}");
    if size != 0 {
        let _ = write!(out, " --hashlimit-htable-size {size}");
    }
    if max != 0 {
        let _ = write!(out, " --hashlimit-htable-max {max}");
    }
    if gc_interval != GC_INTERVAL {
        let _ = write!(out, " --hashlimit-htable-gcinterval {gc_interval}");
    }
    if expire != default_expire {
        let _ = write!(out, " --hashlimit-htable-expire {expire}");
    }
    if srcmask != full {
        let _ = write!(out, " --hashlimit-srcmask {srcmask}");
    }
    if dstmask != full {
        let _ = write!(out, " --hashlimit-dstmask {dstmask}");
    }
    if mode & RATE_MATCH != 0 {
        out.push_str(" --hashlimit-rate-match");
        if interval != 1 {
            let _ = write!(out, " --hashlimit-rate-interval {interval}");
        }
    }
    Some(())
}

/// A packet rate, ` 5/sec`, from the interval between packets in microseconds: per day,
/// or per the next shorter unit while that unit is not shorter than the interval and
/// divides by it with a remainder no larger than the quotient. Returns the expiry
/// iptables gives entries by default for it, the unit in milliseconds.
fn hashlimit_rate(out: &mut Text, interval: u64) -> u32 {
    const UNITS: [(&str, u64); 4] = [
        ("day", 86_400_000_000),
        ("hour", 3_600_000_000),
        ("min", 60_000_000),
        ("sec", 1_000_000),
    ];
    if interval == 0 {
        out.push_str(" inf");
        return 0;
    }
    let next = UNITS[1..]
        .iter()
        .position(|&(_, unit)| interval > unit || unit / interval < unit % interval)
        .map_or(UNITS.len(), |i| i + 1);
    let (name, unit) = UNITS[next - 1];
    let _ = write!(out, " {}/{name}", unit / interval);
    // At most a day of milliseconds: fits.
    (unit / 1000) as u32
}

/// A byte rate, ` 512kb/s`, from its cost (the fraction of 2^32 a byte takes), and its
/// burst as ` --hashlimit-burst 1mb`; returns the expiry iptables gives entries by
/// default for it. `None` where iptables would divide by zero (which the units it tries
/// rule out).
fn hashlimit_bytes(out: &mut Text, cost: u64, burst: u64) -> Option<u32> {
    const UNITS: [(&str, u64); 3] = [("m", 1 << 20), ("k", 1 << 10), ("", 1)];
    const SHIFT: u32 = 4;
    let max = u64::from(u32::MAX);
    // As iptables computes it, in 64 bits, wrapping.
    let bytes = max.checked_div(cost).unwrap_or(max).wrapping_sub(1) << SHIFT;
    let cost_of = |bytes: u64| {
        let per = (bytes >> SHIFT) as u32;
        u32::MAX.checked_div(per.wrapping_add(1)).map(u64::from)
    };
    let mut unit = UNITS.len() - 1;
    for (i, &(_, size)) in UNITS[..unit].iter().enumerate() {
        if bytes >= size && cost_of(bytes & !(size - 1))? == cost {
            unit = i;
            break;
        }
    }
    let (name, size) = UNITS[unit];
    let _ = write!(out, " {}{name}b/s", bytes / size);
    if burst == 0 {
        return Some(15_000);
    }
    let total = bytes.wrapping_mul(burst);
    let (name, size) = *UNITS
        .iter()
        .find(|&&(_, size)| total >= size)
        .unwrap_or(&UNITS[UNITS.len() - 1]);
    let _ = write!(out, " --hashlimit-burst {}{name}b", total / size);
    Some(60_000)
}

/// `policy`: the direction and policy, then each element (at most four) and `--next`
/// between them.
fn policy(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    const ELEMENT: usize = 76;
    const ELEMENTS: usize = 4;
    let (given, len) = (info.u16(304)?, usize::from(info.u16(306)?));
    if len > ELEMENTS {
        return None;
    }
    out.push_str(if given & 1 != 0 {
        "policy --dir in"
    } else {
        "policy --dir out"
    });
    out.push_str(if given & 4 != 0 {
        " --pol none"
    } else {
        " --pol ipsec"
    });
    if given & 8 != 0 {
        out.push_str(" --strict");
    }
    for element in 0..len {
        let at = element * ELEMENT;
        let (matched, inverted) = (info.u8(at + 74)?, info.u8(at + 75)?);
        // The fields of the bitfields, in declaration order.
        let (saddr, daddr, proto, mode, spi, reqid) = (0, 1, 2, 3, 4, 5);
        let option = |out: &mut Text, field: u32, option: &str| {
            let _ = write!(out, "{} --{option}", bang(bitfield(inverted, field)));
        };
        if bitfield(matched, reqid) {
            option(out, reqid, "reqid");
            let _ = write!(out, " {}", info.u32(at + 68)?);
        }
        if bitfield(matched, spi) {
            option(out, spi, "spi");
            let _ = write!(out, " {:#x}", info.u32(at + 64)?);
        }
        if bitfield(matched, proto) {
            option(out, proto, "proto");
            let number = info.u8(at + 72)?;
            match &super::system_protocols()[usize::from(number)] {
                Some(name) => {
                    let _ = write!(out, " {name}");
                }
                None => {
                    let _ = write!(out, " {number}");
                }
            }
        }
        if bitfield(matched, mode) {
            option(out, mode, "mode");
            out.push_str(match info.u8(at + 73)? {
                0 => " transport",
                1 => " tunnel",
                _ => return None,
            });
        }
        for (field, name, addr) in [(daddr, "tunnel-dst", 32), (saddr, "tunnel-src", 0)] {
            if bitfield(matched, field) {
                option(out, field, name);
                out.push_str(" ");
                let (addr, mask) = (info.bytes(at + addr, 16)?, info.bytes(at + addr + 16, 16)?);
                address_and_mask(out, family, addr, mask)?;
            }
        }
        if element + 1 < len {
            out.push_str(" --next");
        }
    }
    Some(())
}

/// Field `n` (in declaration order) of a C bitfield of one-bit fields held in one byte:
/// compilers allocate them from the low bit on little-endian targets, from the high bit on
/// big-endian ones.
fn bitfield(byte: u8, n: u32) -> bool {
    let bit = if cfg!(target_endian = "little") {
        n
    } else {
        7 - n
    };
    byte & (1 << bit) != 0
}

/// `cgroup` revision 2: a path or a class id, which share their place in the structure.
fn cgroup(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (has_path, has_classid) = (info.u8(0)? != 0, info.u8(1)? != 0);
    let (invert_path, invert_classid) = (info.u8(2)? != 0, info.u8(3)? != 0);
    out.push_str("cgroup");
    if has_path {
        let _ = write!(out, "{} --path", bang(invert_path));
        let path = out.lossy(info.string(4, 512)?);
        out.quoted(&path);
    }
    if has_classid {
        let _ = write!(out, "{} --cgroup {}", bang(invert_classid), info.u32(4)?);
    }
    Some(())
}

/// The SPI range of `esp` and `ah`, its inversion in the flags at `flags`; nothing for
/// every SPI. `None` for every SPI inverted, which iptables prints since 1.8.10 and not
/// before.
fn spis(out: &mut Text, option: &str, info: &Info<'_>, flags: usize) -> Option<()> {
    let (first, last, invert) = (info.u32(0)?, info.u32(4)?, info.u8(flags)? & 1 != 0);
    if first == 0 && last == u32::MAX {
        return (!invert).then_some(());
    }
    let _ = write!(out, "{} {option}", bang(invert));
    span(out, first.into(), last.into());
    Some(())
}

/// `connlimit` revision 1: the mask as the count of its bits below the highest bit it
/// clears, which for the prefixes iptables writes is the prefix length.
fn connlimit(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    let words = match family {
        Family::Ipv4 => 1,
        Family::Ipv6 => 4,
        _ => return None,
    };
    let (limit, given) = (info.u32(16)?, info.u32(20)?);
    let mut cleared = 0;
    for word in 0..words {
        let mask = u32::from_be_bytes(info.bytes(4 * word, 4)?.try_into().ok()?);
        cleared += u32::BITS - (!mask).leading_zeros();
    }
    let prefix = 32 * words as u32 - cleared;
    let above = if given & 1 != 0 { "upto" } else { "above" };
    let side = if given & 2 != 0 { "daddr" } else { "saddr" };
    let _ = write!(
        out,
        "connlimit --connlimit-{above} {limit} --connlimit-mask {prefix} --connlimit-{side}"
    );
    Some(())
}

/// `time`: what differs from every time, every day; dates in UTC.
fn time(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const ALL_MONTHDAYS: u32 = 0xffff_fffe;
    const ALL_WEEKDAYS: u8 = 0xfe;
    const LAST_SECOND: u32 = 24 * 60 * 60 - 1;
    const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let (date_start, date_stop) = (info.u32(0)?, info.u32(4)?);
    let (day_start, day_stop) = (info.u32(8)?, info.u32(12)?);
    let (monthdays, weekdays, given) = (info.u32(16)?, info.u8(20)?, info.u8(21)?);
    out.push_str("time");
    if day_start != 0 || day_stop != LAST_SECOND {
        for (option, seconds) in [("--timestart", day_start), ("--timestop", day_stop)] {
            let (hours, minutes) = (seconds / 3600, seconds / 60 % 60);
            let _ = write!(out, " {option} {hours:02}:{minutes:02}:{:02}", seconds % 60);
        }
    }
    if monthdays != ALL_MONTHDAYS {
        out.push_str(" --monthdays");
        let days = (1..=31).filter(|day| monthdays & (1 << day) != 0);
        list(out, days);
    }
    if weekdays != ALL_WEEKDAYS {
        out.push_str(" --weekdays");
        let days = (1..=7)
            .filter(|day| weekdays & (1 << day) != 0)
            .map(|day| WEEKDAYS[day - 1]);
        list(out, days);
    }
    for (option, date) in [("--datestart", date_start), ("--datestop", date_stop)] {
        // Neither unset nor the C `long` iptables takes for no end is printed.
        if date == 0 || i128::from(date) == i128::from(std::ffi::c_long::MAX) {
            continue;
        }
        let (days, seconds) = (date / 86_400, date % 86_400);
        let (year, month, day) = civil_date(days);
        let _ = write!(
            out,
            " {option} {year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds / 60 % 60,
            seconds % 60
        );
    }
    options(
        out,
        given.into(),
        &[(1, " --kerneltz"), (2, " --contiguous")],
    );
    Some(())
}

/// ` a,b,c`: the items after a blank, between commas.
fn list<T: std::fmt::Display>(out: &mut Text, items: impl Iterator<Item = T>) {
    out.push_str(" ");
    for (i, item) in items.enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(out, "{sep}{item}");
    }
}

/// The proleptic Gregorian year, month and day of the day `days` after 1970-01-01.
fn civil_date(days: u32) -> (u32, u32, u32) {
    // Counted from 0000-03-01, in 400-year eras of 146097 days, so that a leap day is the
    // last day of its year.
    let days = days + 719_468;
    let era = days / 146_097;
    let day_of_era = days % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = era * 400 + year_of_era + u32::from(month <= 2);
    (year, month, day)
}

/// `string` revision 1: the pattern in quotes, in hexadecimal between `|` when a byte of
/// it is not printable ASCII or it ends in a backslash.
fn string(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const PATTERN: usize = 128;
    let len = usize::from(info.u8(148)?);
    if len == 0 || len > PATTERN {
        return None;
    }
    let pattern = info.bytes(20, len)?;
    let (from, to, given) = (info.u16(0)?, info.u16(2)?, info.u8(149)?);
    let algo = out.lossy(info.string(4, 16)?);
    let invert = bang(given & 1 != 0);
    let printable = |b: &u8| (0x20..0x7f).contains(b);
    if pattern.iter().all(printable) && pattern.last() != Some(&b'\\') {
        let _ = write!(out, "string{invert} --string \"");
        for &b in pattern {
            if b == b'"' || b == b'\\' {
                out.push_str("\\");
            }
            let _ = write!(out, "{}", char::from(b));
        }
        out.push_str("\"");
    } else {
        let _ = write!(out, "string{invert} --hex-string \"|");
        for b in pattern {
            let _ = write!(out, "{b:02x}");
        }
        out.push_str("|\"");
    }
    let _ = write!(out, " --algo {algo}");
    if from != 0 {
        let _ = write!(out, " --from {from}");
    }
    if to != u16::MAX {
        let _ = write!(out, " --to {to}");
    }
    if given & 2 != 0 {
        out.push_str(" --icase");
    }
    Some(())
}

/// The source and destination port ranges of `sctp` and `dccp`, which share their
/// layout and flag bits.
fn port_ranges(out: &mut Text, info: &Info<'_>, given: u32, inverted: u32) -> Option<()> {
    for (bit, option, at) in [(1, "--sport", 4), (2, "--dport", 0)] {
        if given & bit != 0 {
            let _ = write!(out, "{} {option}", bang(inverted & bit != 0));
            span(out, info.u16(at)?.into(), info.u16(at + 2)?.into());
        }
    }
    Some(())
}

/// `sctp`: the ports, then the chunk types by name, each with its flags.
fn sctp(info: &Info<'_>, out: &mut Text) -> Option<()> {
    /// The chunk types iptables names; the first fifteen are also where it finds the
    /// letters of a chunk's flags, by chunk type.
    const CHUNKS: [(u8, &str); 22] = [
        (0, "DATA"),
        (1, "INIT"),
        (2, "INIT_ACK"),
        (3, "SACK"),
        (4, "HEARTBEAT"),
        (5, "HEARTBEAT_ACK"),
        (6, "ABORT"),
        (7, "SHUTDOWN"),
        (8, "SHUTDOWN_ACK"),
        (9, "ERROR"),
        (10, "COOKIE_ECHO"),
        (11, "COOKIE_ACK"),
        (12, "ECN_ECNE"),
        (13, "ECN_CWR"),
        (14, "SHUTDOWN_COMPLETE"),
        (64, "I_DATA"),
        (130, "RE_CONFIG"),
        (132, "PAD"),
        (193, "ASCONF"),
        (128, "ASCONF_ACK"),
        (192, "FORWARD_TSN"),
        (194, "I_FORWARD_TSN"),
    ];
    const WORDS: usize = 64;
    const FLAG_SLOTS: u32 = 4;
    let (given, inverted) = (info.u32(284)?, info.u32(288)?);
    out.push_str("sctp");
    port_ranges(out, info, given, inverted)?;
    if given & 4 == 0 {
        return Some(());
    }
    let _ = write!(out, "{} --chunk-types", bang(inverted & 4 != 0));
    out.push_str(match info.u32(264)? {
        1 => " any",
        2 => " all",
        4 => " only",
        _ => return None,
    });
    let map: Vec<u32> = (0..WORDS)
        .map(|word| info.u32(8 + 4 * word))
        .collect::<Option<_>>()?;
    if map.iter().all(|&word| word == 0) {
        out.push_str(" NONE");
        return Some(());
    }
    if map.iter().all(|&word| word == u32::MAX) {
        out.push_str(" ALL");
        return Some(());
    }
    let slots = info.u32(280)?;
    if slots > FLAG_SLOTS {
        return None;
    }
    let mut sep = " ";
    for chunk in 0..=u8::MAX {
        if map[usize::from(chunk / 32)] & (1 << (chunk % 32)) == 0 {
            continue;
        }
        out.push_str(sep);
        sep = ",";
        // A type without a name is printed as nothing.
        if let Some((_, name)) = CHUNKS.iter().find(|&&(kind, _)| kind == chunk) {
            out.push_str(name);
        }
        for slot in 0..slots as usize {
            let at = 268 + 3 * slot;
            let (kind, set, mask) = (info.u8(at)?, info.u8(at + 1)?, info.u8(at + 2)?);
            if kind != chunk || mask == 0 {
                continue;
            }
            // iptables looks the letters up by chunk type in its table of names, which
            // holds them only for the first fifteen types.
            if chunk > 14 {
                return None;
            }
            out.push_str(":");
            for bit in (0..8).rev().filter(|bit| mask & (1 << bit) != 0) {
                let letter = sctp_flag_letter(chunk, bit);
                let letter = if set & (1 << bit) != 0 {
                    letter
                } else {
                    letter.to_ascii_lowercase()
                };
                let _ = write!(out, "{letter}");
            }
        }
    }
    Some(())
}

/// The letter of flag `bit` of chunk type `chunk` (below 15), `-` for a flag without one.
fn sctp_flag_letter(chunk: u8, bit: u8) -> char {
    match (chunk, bit) {
        // DATA: the immediate, unordered, beginning and ending flags.
        (0, 3) => 'I',
        (0, 2) => 'U',
        (0, 1) => 'B',
        (0, 0) => 'E',
        // ABORT and SHUTDOWN_COMPLETE: the T bit.
        (6 | 14, 0) => 'T',
        _ => '-',
    }
}

/// `dccp`: the ports, the packet types by name, the option.
fn dccp(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const TYPES: [&str; 11] = [
        "REQUEST", "RESPONSE", "DATA", "ACK", "DATAACK", "CLOSEREQ", "CLOSE", "RESET", "SYNC",
        "SYNCACK", "INVALID",
    ];
    let (given, inverted) = (u32::from(info.u16(8)?), u32::from(info.u16(10)?));
    out.push_str("dccp");
    port_ranges(out, info, given, inverted)?;
    if given & 4 != 0 {
        let _ = write!(out, "{} --dccp-types ", bang(inverted & 4 != 0));
        let types = info.u16(12)?;
        let mut sep = "";
        for (bit, name) in TYPES.iter().enumerate() {
            if types & (1 << bit) != 0 {
                let _ = write!(out, "{sep}{name}");
                sep = ",";
            }
        }
        // iptables stops at INVALID, and reads past its names for a type above it
        // without INVALID.
        if types >> TYPES.len() != 0 && types & (1 << (TYPES.len() - 1)) == 0 {
            return None;
        }
    }
    if given & 8 != 0 {
        let option = info.u8(14)?;
        let _ = write!(out, "{} --dccp-option {option}", bang(inverted & 8 != 0));
    }
    Some(())
}

/// The name `/etc/iproute2/group` gives device group `group`, as iptables reads the file:
/// the first line naming it, ids from 0 to 255 in decimal or `0x` hexadecimal.
fn device_group_name(group: u32) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<Box<[Option<String>; 256]>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut names: Box<[Option<String>; 256]> = Box::new(std::array::from_fn(|_| None));
        let text = std::fs::read("/etc/iproute2/group").unwrap_or_default();
        for line in text.split(|&b| b == b'\n') {
            if let Some((id, name)) = device_group_line(line) {
                names[usize::from(id)].get_or_insert_with(|| name.to_owned());
            }
        }
        names
    });
    names.get(usize::try_from(group).ok()?)?.as_deref()
}

/// The id and name of a line of `/etc/iproute2/group`, parsed as iptables parses it
/// (`strtoul`, then a C `int`); `None` for a comment, a blank line or a line it skips.
fn device_group_line(line: &[u8]) -> Option<(u8, &str)> {
    let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let start = line.iter().position(|b| !space(b))?;
    let line = &line[start..];
    if line.first() == Some(&b'#') {
        return None;
    }
    let (radix, negative, digits) = match line {
        [b'0', b'x', rest @ ..] => (16, false, rest),
        [b'-', rest @ ..] => (10, true, rest),
        [b'+', rest @ ..] => (10, false, rest),
        rest => (10, false, rest),
    };
    let len = digits
        .iter()
        .take_while(|&&b| char::from(b).is_digit(radix))
        .count();
    // `strtoul` fails without digits, and is out of range past 64 bits.
    let value = u64::from_str_radix(std::str::from_utf8(&digits[..len]).ok()?, radix).ok()?;
    let value = if negative {
        value.wrapping_neg()
    } else {
        value
    };
    // Its low 32 bits, as the `int` iptables stores it in.
    let id = u8::try_from(value as u32 as i32).ok()?;
    let rest = &digits[len..];
    if !rest.first().is_some_and(space) {
        return None;
    }
    let start = rest.iter().position(|b| !space(b))?;
    let rest = &rest[start..];
    if rest.first() == Some(&b'#') {
        return None;
    }
    let end = rest.iter().position(space).unwrap_or(rest.len());
    Some((id, std::str::from_utf8(&rest[..end]).ok()?))
}

/// `10.0.0.0/8`, `10.0.0.1` (a full mask is not printed); `None` for a mask that is not a
/// prefix, which iptables before 1.8.10 prints from a buffer the address shares, so that
/// what it prints depends on how it was compiled.
fn address_and_mask(out: &mut Text, family: Family, addr: &[u8], mask: &[u8]) -> Option<()> {
    let (size, full) = match family {
        Family::Ipv4 => (4, 32),
        Family::Ipv6 => (16, 128),
        _ => return None,
    };
    let prefix = super::prefix_len(mask.get(..size)?)?;
    let _ = write!(out, "{}", address(family, addr)?);
    if prefix != full {
        let _ = write!(out, "/{prefix}");
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every match and revision decoded here.
    const DECODED: [(&str, u32); 39] = [
        ("comment", 0),
        ("set", 4),
        ("rt", 0),
        ("tcp", 0),
        ("udp", 0),
        ("icmp", 0),
        ("icmp6", 0),
        ("statistic", 0),
        ("recent", 0),
        ("recent", 1),
        ("addrtype", 1),
        ("conntrack", 3),
        ("multiport", 1),
        ("physdev", 0),
        ("pkttype", 0),
        ("owner", 1),
        ("iprange", 1),
        ("mac", 0),
        ("length", 0),
        ("tcpmss", 0),
        ("hashlimit", 3),
        ("connmark", 1),
        ("helper", 0),
        ("dscp", 0),
        ("tos", 1),
        ("ttl", 0),
        ("hl", 0),
        ("policy", 0),
        ("rpfilter", 0),
        ("socket", 3),
        ("cgroup", 2),
        ("esp", 0),
        ("ah", 0),
        ("cpu", 0),
        ("quota", 0),
        ("connlimit", 1),
        ("time", 0),
        ("string", 1),
        ("sctp", 0),
    ];

    fn printed(name: &str, rev: u32, family: Family, info: &[u8]) -> Option<String> {
        let mut out = Text::default();
        print(name, rev, family, info, &mut out).map(|()| out.line)
    }

    /// Structures cut short anywhere, and filled with any byte, decode or decline without
    /// panicking; an empty one declines, except where the match has no structure to read.
    #[test]
    fn short_and_odd_structures_never_panic() {
        let families = [Family::Ipv4, Family::Ipv6, Family::Inet];
        let extra = [("dccp", 0), ("devgroup", 0)];
        for (name, rev) in DECODED.into_iter().chain(extra) {
            for family in families {
                assert_eq!(printed(name, rev, family, &[]), None, "{name} rev {rev}");
                for fill in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    for len in 0..600 {
                        let mut info = vec![fill; len];
                        // Some structures hold a string: end one anywhere.
                        if len > 0 {
                            info[len / 2] = 0;
                        }
                        let _ = printed(name, rev, family, &info);
                    }
                }
            }
        }
    }

    #[test]
    fn unknown_revisions_are_declined() {
        for (name, rev) in DECODED {
            let info = [0u8; 600];
            assert_eq!(
                printed(name, rev + 7, Family::Ipv4, &info),
                None,
                "{name} rev {}",
                rev + 7
            );
        }
    }

    #[test]
    fn dates_are_proleptic_gregorian() {
        let cases = [
            (0, (1970, 1, 1)),
            (59, (1970, 3, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (24_855, (2038, 1, 19)),
            (49_710, (2106, 2, 7)),
            (u32::MAX / 86_400, (2106, 2, 7)),
        ];
        for (days, date) in cases {
            assert_eq!(civil_date(days), date, "day {days}");
        }
    }

    #[test]
    fn device_group_lines_read_as_iptables_reads_them() {
        type Parsed = Option<(u8, &'static str)>;
        let cases: [(&[u8], Parsed); 14] = [
            (b"0\tdefault", Some((0, "default"))),
            (b"  12   twelve  # comment", Some((12, "twelve"))),
            (b"0x1f hex", Some((31, "hex"))),
            (b"0X1f upper", None),
            (b"+7 plus", Some((7, "plus"))),
            (b"-0 zero", Some((0, "zero"))),
            (b"-1 negative", None),
            (b"256 big", None),
            (b"# 1 comment", None),
            (b"1 # comment", None),
            (b"1", None),
            (b"1x name", None),
            (b"", None),
            (b"99999999999999999999999 huge", None),
        ];
        for (line, parsed) in cases {
            assert_eq!(
                device_group_line(line),
                parsed,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn what_iptables_cannot_print_is_declined() {
        // multiport: a range's end past the count.
        let mut multiport = [0u8; 48];
        multiport[1] = 1;
        multiport[32] = 1;
        assert_eq!(printed("multiport", 1, Family::Ipv4, &multiport), None);
        // string: an empty pattern.
        assert_eq!(printed("string", 1, Family::Ipv4, &[0u8; 160]), None);
        // policy: a tunnel mask that is not a prefix.
        let mut policy = [0u8; 308];
        policy[16..20].copy_from_slice(&[255, 0, 255, 0]);
        policy[73] = 1;
        policy[74] = if cfg!(target_endian = "little") {
            0b1001
        } else {
            0b1001_0000
        };
        policy[306..308].copy_from_slice(&1u16.to_ne_bytes());
        assert_eq!(printed("policy", 0, Family::Ipv4, &policy), None);
        policy[16..20].copy_from_slice(&[255, 255, 0, 0]);
        assert_eq!(
            printed("policy", 0, Family::Ipv4, &policy).as_deref(),
            Some("policy --dir out --pol ipsec --mode tunnel --tunnel-src 0.0.0.0/16")
        );
        // The kernel pointer at the end of hashlimit is never read.
        let mut hashlimit = [0u8; 298];
        hashlimit[0] = b'a';
        hashlimit[256..264].copy_from_slice(&1_000_000u64.to_ne_bytes());
        assert_eq!(
            printed("hashlimit", 3, Family::Ipv4, &hashlimit).as_deref(),
            Some(
                "hashlimit --hashlimit-upto 1/sec --hashlimit-burst 0 --hashlimit-name a \
                 --hashlimit-htable-gcinterval 0 --hashlimit-htable-expire 0 \
                 --hashlimit-srcmask 0 --hashlimit-dstmask 0"
            )
        );
    }
}
