//! x_tables matches, printed from their structures (`linux/netfilter/xt_*.h`, host byte
//! order) as `iptables-save` prints them: the name, then the options.

use std::fmt::Write as _;

use super::{Text, tcp_flags_text};
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
            ports(out, "--sport", info.u16(0)?, info.u16(2)?, inv & 0x01 != 0);
            ports(out, "--dport", info.u16(4)?, info.u16(6)?, inv & 0x02 != 0);
            let (option, mask, compared) = (info.u8(8)?, info.u8(9)?, info.u8(10)?);
            if option != 0 || inv & 0x08 != 0 {
                out.push_str(if inv & 0x08 != 0 { " !" } else { "" });
                let _ = write!(out, " --tcp-option {option}");
            }
            if mask != 0 || inv & 0x04 != 0 {
                out.push_str(if inv & 0x04 != 0 { " !" } else { "" });
                let _ = write!(
                    out,
                    " --tcp-flags {} {}",
                    tcp_flags_text(mask),
                    tcp_flags_text(compared)
                );
            }
        }
        ("udp", 0) => {
            info.len_at_least(9)?;
            out.push_str("udp");
            let inv = info.u8(8)?;
            ports(out, "--sport", info.u16(0)?, info.u16(2)?, inv & 0x01 != 0);
            ports(out, "--dport", info.u16(4)?, info.u16(6)?, inv & 0x02 != 0);
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
        _ => return None,
    }
    Some(())
}

/// ` --sport 80`, ` ! --dport 1000:2000`; nothing for every port.
fn ports(out: &mut Text, option: &str, low: u16, high: u16, invert: bool) {
    if low == 0 && high == u16::MAX {
        return;
    }
    out.push_str(if invert { " ! " } else { " " });
    out.push_str(option);
    if low == high {
        let _ = write!(out, " {low}");
    } else {
        let _ = write!(out, " {low}:{high}");
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
                let _ = write!(out, " --mask {}", ipv4(mask)?);
            }
            Family::Ipv6 => {
                let _ = write!(out, " --mask {}", ipv6(mask)?);
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
        let names = TYPES
            .iter()
            .enumerate()
            .filter(|&(bit, _)| types & (1 << bit) != 0);
        for (i, (_, name)) in names.enumerate() {
            if i > 0 {
                out.push_str(",");
            }
            out.push_str(name);
        }
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

/// `10.0.0.0/8`, `10.0.0.1` (a full mask is not printed), `10.0.0.0/255.0.255.0`.
fn address_and_mask(out: &mut Text, family: Family, addr: &[u8], mask: &[u8]) -> Option<()> {
    let (size, full) = match family {
        Family::Ipv4 => (4, 32),
        Family::Ipv6 => (16, 128),
        _ => return None,
    };
    let (addr, mask) = (addr.get(..size)?, mask.get(..size)?);
    let text = |bytes: &[u8]| if size == 4 { ipv4(bytes) } else { ipv6(bytes) };
    let _ = write!(out, "{}", text(addr)?);
    match super::prefix_len(mask) {
        Some(prefix) if prefix == full => {}
        Some(prefix) => {
            let _ = write!(out, "/{prefix}");
        }
        None => {
            let _ = write!(out, "/{}", text(mask)?);
        }
    }
    Some(())
}

fn ipv4(bytes: &[u8]) -> Option<String> {
    let bytes: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    Some(std::net::Ipv4Addr::from(bytes).to_string())
}

fn ipv6(bytes: &[u8]) -> Option<String> {
    let bytes: [u8; 16] = bytes.get(..16)?.try_into().ok()?;
    Some(std::net::Ipv6Addr::from(bytes).to_string())
}

/// An extension's structure, read field by field at its offsets; out of range is `None`.
pub(super) struct Info<'a>(pub(super) &'a [u8]);

impl Info<'_> {
    pub(super) fn len_at_least(&self, len: usize) -> Option<()> {
        (self.0.len() >= len).then_some(())
    }

    pub(super) fn bytes(&self, at: usize, len: usize) -> Option<&[u8]> {
        self.0.get(at..at + len)
    }

    pub(super) fn u8(&self, at: usize) -> Option<u8> {
        self.0.get(at).copied()
    }

    pub(super) fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_ne_bytes(self.bytes(at, 2)?.try_into().ok()?))
    }

    pub(super) fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_ne_bytes(self.bytes(at, 4)?.try_into().ok()?))
    }

    /// A field in network byte order.
    pub(super) fn be_u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_be_bytes(self.bytes(at, 2)?.try_into().ok()?))
    }
}
