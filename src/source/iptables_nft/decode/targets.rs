//! x_tables targets, printed from their structures (`linux/netfilter/xt_*.h`, host byte
//! order unless a field says otherwise) as `iptables-save` prints them: the name, then the
//! options. Only the revisions iptables writes are known; a field iptables could not have
//! written (a mode, flag or event it has no name for) declines the rule rather than guess
//! what `iptables-save` makes of it.

use std::fmt::Write as _;

use super::Text;
use super::info::{INVALID_SET, Info, address, bit_names, known_options, set_dimensions, set_name};
use crate::ruleset::Family;

/// Prints target `name` at revision `rev`, from its name on; `None` for a target or
/// revision not known here, or a structure of the wrong size.
pub(super) fn print(
    name: &str,
    rev: u32,
    family: Family,
    info: &[u8],
    out: &mut Text,
) -> Option<()> {
    // arptables and ebtables print some of the same targets their own way.
    if !matches!(family, Family::Ipv4 | Family::Ipv6) {
        return None;
    }
    let info = Info(info);
    match (name, rev) {
        ("REJECT", 0) => reject(&info, family, out)?,
        ("SET", 3) => set(&info, out)?,
        ("MARK", 2) => {
            let _ = write!(
                out,
                "MARK --set-xmark {:#x}/{:#x}",
                info.u32(0)?,
                info.u32(4)?
            );
        }
        ("DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT", _) => {
            let range = NatRange::read(&info, rev, family)?;
            let (option, ports_only) = match name {
                "DNAT" => ("--to-destination", false),
                "SNAT" => ("--to-source", false),
                _ => ("--to-ports", true),
            };
            if ports_only && range.flags & MAP_IPS != 0 {
                return None;
            }
            out.push_str(name);
            range.print(out, family, option, ports_only);
        }
        ("LOG", 0) => log(&info, out)?,
        ("CONNMARK", 2) => connmark(&info, out)?,
        ("CT", 2) => ct(&info, out)?,
        ("TCPMSS", 0) => match info.u16(0)? {
            u16::MAX => out.push_str("TCPMSS --clamp-mss-to-pmtu"),
            mss => {
                let _ = write!(out, "TCPMSS --set-mss {mss}");
            }
        },
        ("CHECKSUM", 0) => {
            out.push_str("CHECKSUM");
            known_options(out, info.u8(0)?.into(), &[(1, " --checksum-fill")])?;
        }
        ("NFQUEUE", 3) => nfqueue(&info, out)?,
        ("TPROXY", 1) => {
            let (mask, value) = (info.u32(0)?, info.u32(4)?);
            let _ = write!(
                out,
                "TPROXY --on-port {} --on-ip {} --tproxy-mark {value:#x}/{mask:#x}",
                info.be_u16(24)?,
                address(family, info.bytes(8, 16)?)?
            );
        }
        ("TEE", 1) => {
            let _ = write!(
                out,
                "TEE --gateway {}",
                address(family, info.bytes(0, 16)?)?
            );
            let oif = out.lossy(info.string(16, 16)?);
            if !oif.is_empty() {
                let _ = write!(out, " --oif {oif}");
            }
        }
        ("CLASSIFY", 0) => {
            let class = info.u32(0)?;
            let _ = write!(
                out,
                "CLASSIFY --set-class {:04x}:{:04x}",
                class >> 16,
                class & 0xffff
            );
        }
        ("DSCP", 0) => {
            let _ = write!(out, "DSCP --set-dscp {:#04x}", info.u8(0)?);
        }
        ("TOS", 1) => {
            let _ = write!(
                out,
                "TOS --set-tos {:#04x}/{:#04x}",
                info.u8(0)?,
                info.u8(1)?
            );
        }
        ("TTL", 0) if family == Family::Ipv4 => {
            hop_limit(&info, out, "TTL", ["--ttl-set", "--ttl-inc", "--ttl-dec"])?
        }
        ("HL", 0) if family == Family::Ipv6 => {
            hop_limit(&info, out, "HL", ["--hl-set", "--hl-inc", "--hl-dec"])?
        }
        ("AUDIT", 0) => {
            let kind = ["accept", "drop", "reject"].get(usize::from(info.u8(0)?))?;
            let _ = write!(out, "AUDIT --type {kind}");
        }
        ("HMARK", 0) => hmark(&info, family, out)?,
        _ => return None,
    }
    Some(())
}

fn reject(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    // The numbers iptables has no name for (echo-reply, and IPv6's not-neighbor) are
    // printed as a null string.
    const IPV4: [Option<&str>; 9] = [
        Some("icmp-net-unreachable"),
        Some("icmp-host-unreachable"),
        Some("icmp-proto-unreachable"),
        Some("icmp-port-unreachable"),
        None,
        Some("icmp-net-prohibited"),
        Some("icmp-host-prohibited"),
        Some("tcp-reset"),
        Some("icmp-admin-prohibited"),
    ];
    const IPV6: [Option<&str>; 9] = [
        Some("icmp6-no-route"),
        Some("icmp6-adm-prohibited"),
        None,
        Some("icmp6-addr-unreachable"),
        Some("icmp6-port-unreachable"),
        None,
        Some("tcp-reset"),
        Some("icmp6-policy-fail"),
        Some("icmp6-reject-route"),
    ];
    let names = if family == Family::Ipv6 { IPV6 } else { IPV4 };
    let with = (*names.get(info.u32(0)? as usize)?)?;
    let _ = write!(out, "REJECT --reject-with {with}");
    Some(())
}

/// `LOG`: the level in digits, printed unless it is the default (warning).
fn log(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (level, log_flags) = (info.u8(0)?, info.u8(1)?);
    let prefix = out.lossy(info.string(2, 30)?);
    out.push_str("LOG");
    if !prefix.is_empty() {
        out.push_str(" --log-prefix");
        out.quoted(&prefix);
    }
    if level != 4 {
        let _ = write!(out, " --log-level {level}");
    }
    known_options(
        out,
        log_flags.into(),
        &[
            (0x01, " --log-tcp-sequence"),
            (0x02, " --log-tcp-options"),
            (0x04, " --log-ip-options"),
            (0x08, " --log-uid"),
            (0x20, " --log-macdecode"),
        ],
    )
}

/// `CONNMARK` revision 2: every mode in its general form (`--set-mark 1` saves as
/// `--set-xmark 0x1/0xffffffff`), both masks of a save or restore.
fn connmark(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (ctmark, ctmask, nfmask) = (info.u32(0)?, info.u32(4)?, info.u32(8)?);
    let (shift_dir, shift_bits, mode) = (info.u8(12)?, info.u8(13)?, info.u8(14)?);
    let _ = match mode {
        0 => write!(out, "CONNMARK --set-xmark {ctmark:#x}/{ctmask:#x}"),
        1 => write!(
            out,
            "CONNMARK --save-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
        ),
        2 => write!(
            out,
            "CONNMARK --restore-mark --nfmask {nfmask:#x} --ctmask {ctmask:#x}"
        ),
        _ => return None,
    };
    if shift_bits != 0 {
        let shift = ["left-shift-mark", "right-shift-mark"].get(usize::from(shift_dir))?;
        let _ = write!(out, " --{shift} {shift_bits}");
    }
    Some(())
}

/// `CT` revision 2, which also carries `-j NOTRACK` (its flag `NOTRACK_ALIAS`, printed
/// without options).
fn ct(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const NOTRACK: u16 = 1 << 0;
    const ALIAS: u16 = 1 << 1;
    const ZONE_ORIG: u16 = 1 << 2;
    const ZONE_REPLY: u16 = 1 << 3;
    const ZONE_MARK: u16 = 1 << 4;
    const CT_EVENTS: [&str; 10] = [
        "new",
        "related",
        "destroy",
        "reply",
        "assured",
        "protoinfo",
        "helper",
        "mark",
        "natseqinfo",
        "secmark",
    ];
    let (ct_flags, zone) = (info.u16(0)?, info.u16(2)?);
    let (ct_events, exp_events) = (info.u32(4)?, info.u32(8)?);
    let helper = out.lossy(info.string(12, 16)?);
    let timeout = info.bytes(28, 32)?;
    if ct_flags & ALIAS != 0 {
        out.push_str("NOTRACK");
        return Some(());
    }
    // `--timeout` names a cttimeout object, which only nfct makes: its text is left to
    // the listing, never having been compared with iptables-save's.
    if timeout[0] != 0 {
        return None;
    }
    out.push_str("CT");
    if ct_flags & NOTRACK != 0 {
        out.push_str(" --notrack");
    }
    if !helper.is_empty() {
        let _ = write!(out, " --helper {helper}");
    }
    if ct_events != 0 {
        out.push_str(" --ctevents ");
        bit_names(out, ct_events, &CT_EVENTS)?;
    }
    if exp_events != 0 {
        out.push_str(" --expevents ");
        bit_names(out, exp_events, &["new"])?;
    }
    if ct_flags & ZONE_MARK != 0 || zone != 0 {
        out.push_str(" --zone");
        match ct_flags & (ZONE_ORIG | ZONE_REPLY) {
            ZONE_ORIG => out.push_str("-orig"),
            ZONE_REPLY => out.push_str("-reply"),
            _ => {}
        }
        if ct_flags & ZONE_MARK != 0 {
            out.push_str(" mark");
        } else {
            let _ = write!(out, " {zone}");
        }
    }
    Some(())
}

/// `NFQUEUE` revision 3: a balance as its first and last queue, one queue by number.
fn nfqueue(info: &Info<'_>, out: &mut Text) -> Option<()> {
    let (first, total, queue_flags) = (info.u16(0)?, info.u16(2)?, info.u16(4)?);
    if total > 1 {
        let last = u32::from(first) + u32::from(total) - 1;
        let _ = write!(out, "NFQUEUE --queue-balance {first}:{last}");
    } else {
        let _ = write!(out, "NFQUEUE --queue-num {first}");
    }
    known_options(
        out,
        queue_flags.into(),
        &[(1, " --queue-bypass"), (2, " --queue-cpu-fanout")],
    )
}

/// `TTL` and `HL`: a mode (set, increment, decrement) and a value.
fn hop_limit(info: &Info<'_>, out: &mut Text, name: &str, modes: [&str; 3]) -> Option<()> {
    let mode = modes.get(usize::from(info.u8(0)?))?;
    let _ = write!(out, "{name} {mode} {}", info.u8(1)?);
    Some(())
}

/// `HMARK`: the address masks as prefixes, then the fields each flag says are set, ports
/// and SPI in network byte order.
fn hmark(info: &Info<'_>, family: Family, out: &mut Text) -> Option<()> {
    const SRC_MASK: u32 = 1 << 0;
    const DST_MASK: u32 = 1 << 1;
    const SPI: u32 = 1 << 2;
    const SPI_MASK: u32 = 1 << 3;
    const SPORT: u32 = 1 << 4;
    const DPORT: u32 = 1 << 5;
    const SPORT_MASK: u32 = 1 << 6;
    const DPORT_MASK: u32 = 1 << 7;
    const PROTO_MASK: u32 = 1 << 8;
    const RND: u32 = 1 << 9;
    const MODULUS: u32 = 1 << 10;
    const OFFSET: u32 = 1 << 11;
    const CT: u32 = 1 << 12;
    let size = match family {
        Family::Ipv6 => 16,
        _ => 4,
    };
    let be_u32 = |at| Some(u32::from_be_bytes(info.bytes(at, 4)?.try_into().ok()?));
    let hmark_flags = info.u32(40)?;
    out.push_str("HMARK");
    for (flag, option, at) in [
        (SRC_MASK, "--hmark-src-prefix", 0),
        (DST_MASK, "--hmark-dst-prefix", 16),
    ] {
        if hmark_flags & flag != 0 {
            // A mask with holes iptables could not have written, printed as -1.
            let prefix = super::prefix_len(info.bytes(at, size)?)?;
            let _ = write!(out, " {option} {prefix}");
        }
    }
    let fields = [
        (SPORT_MASK, "--hmark-sport-mask", info.be_u16(32)?.into(), 4),
        (DPORT_MASK, "--hmark-dport-mask", info.be_u16(34)?.into(), 4),
        (SPI_MASK, "--hmark-spi-mask", be_u32(32)?, 8),
        (SPORT, "--hmark-sport", info.be_u16(36)?.into(), 4),
        (DPORT, "--hmark-dport", info.be_u16(38)?.into(), 4),
        (SPI, "--hmark-spi", be_u32(36)?, 8),
        (PROTO_MASK, "--hmark-proto-mask", info.u16(44)?.into(), 2),
        (RND, "--hmark-rnd", info.u32(48)?, 8),
    ];
    for (flag, option, value, digits) in fields {
        if hmark_flags & flag != 0 {
            let _ = write!(out, " {option} {value:#0width$x}", width = digits + 2);
        }
    }
    for (flag, option, at) in [(MODULUS, "--hmark-mod", 52), (OFFSET, "--hmark-offset", 56)] {
        if hmark_flags & flag != 0 {
            let _ = write!(out, " {option} {}", info.u32(at)?);
        }
    }
    if hmark_flags & CT != 0 {
        out.push_str(" --hmark-tuple ct");
    }
    Some(())
}

const MAP_IPS: u32 = 1 << 0;
const PROTO_SPECIFIED: u32 = 1 << 1;
const PROTO_RANDOM: u32 = 1 << 2;
const PERSISTENT: u32 = 1 << 3;
const PROTO_RANDOM_FULLY: u32 = 1 << 4;
const PROTO_OFFSET: u32 = 1 << 5;

/// The address and port range of a NAT target, whichever structure it came in:
/// `nf_nat_ipv4_multi_range_compat` (IPv4, revision 0), `nf_nat_range` (revision 1, and
/// revision 0 of IPv6), `nf_nat_range2` (revision 2).
struct NatRange {
    flags: u32,
    min_addr: String,
    max_addr: String,
    /// Ports, network byte order in every structure.
    min_port: u16,
    max_port: u16,
    base_port: u16,
}

impl NatRange {
    fn read(info: &Info<'_>, rev: u32, family: Family) -> Option<Self> {
        let (flags, min_at, max_at, ports_at) = match (rev, family) {
            (0, Family::Ipv4) => {
                // One range, whatever `rangesize` says: iptables never writes more.
                if info.u32(0)? != 1 {
                    return None;
                }
                (info.u32(4)?, 8, 12, 16)
            }
            (0..=2, _) => (info.u32(0)?, 4, 20, 36),
            _ => return None,
        };
        let size = if family == Family::Ipv4 { 4 } else { 16 };
        Some(NatRange {
            flags,
            min_addr: address(family, info.bytes(min_at, size)?)?,
            max_addr: address(family, info.bytes(max_at, size)?)?,
            min_port: info.be_u16(ports_at)?,
            max_port: info.be_u16(ports_at + 2)?,
            base_port: if rev == 2 { info.be_u16(40)? } else { 0 },
        })
    }

    /// ` --to-destination 10.0.0.1:80-90`, ` --to-destination [2001:db8::1]:80`,
    /// ` --to-ports 8080`, then the flags.
    fn print(&self, out: &mut Text, family: Family, option: &str, ports_only: bool) {
        let mut range = String::new();
        let brackets = family == Family::Ipv6 && self.flags & PROTO_SPECIFIED != 0;
        if self.flags & MAP_IPS != 0 {
            if brackets {
                range.push('[');
            }
            range.push_str(&self.min_addr);
            if self.min_addr != self.max_addr {
                range.push('-');
                range.push_str(&self.max_addr);
            }
            if brackets {
                range.push(']');
            }
        }
        if self.flags & PROTO_SPECIFIED != 0 {
            if !ports_only {
                range.push(':');
            }
            let _ = write!(range, "{}", self.min_port);
            if self.max_port != self.min_port {
                let _ = write!(range, "-{}", self.max_port);
            }
            if self.flags & PROTO_OFFSET != 0 {
                let _ = write!(range, "/{}", self.base_port);
            }
        }
        if !range.is_empty() {
            let _ = write!(out, " {option} {range}");
        }
        for (flag, text) in [
            (PROTO_RANDOM, " --random"),
            (PROTO_RANDOM_FULLY, " --random-fully"),
            (PERSISTENT, " --persistent"),
        ] {
            if self.flags & flag != 0 {
                out.push_str(text);
            }
        }
    }
}

/// `SET` revision 3: the sets to add to, delete from and map from, each by name.
fn set(info: &Info<'_>, out: &mut Text) -> Option<()> {
    const EXIST: u32 = 1 << 0;
    const MAPS: [(u32, &str); 3] = [
        (1 << 8, " --map-mark"),
        (1 << 9, " --map-prio"),
        (1 << 10, " --map-queue"),
    ];
    info.len_at_least(20)?;
    let (flags, timeout) = (info.u32(12)?, info.u32(16)?);
    out.push_str("SET");
    let option = |out: &mut Text, at: usize, option: &str| -> Option<()> {
        if info.u16(at)? == INVALID_SET {
            return Some(());
        }
        let name = set_name(info, at, out)?;
        let _ = write!(out, " {option} {name}");
        set_dimensions(info, at, out)
    };
    option(out, 0, "--add-set")?;
    if flags & EXIST != 0 {
        out.push_str(" --exist");
    }
    if timeout != u32::MAX {
        let _ = write!(out, " --timeout {timeout}");
    }
    option(out, 4, "--del-set")?;
    option(out, 8, "--map-set")?;
    for (flag, text) in MAPS {
        if flags & flag != 0 {
            out.push_str(text);
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(name: &str, rev: u32, family: Family, info: &[u8]) -> Option<String> {
        let mut out = Text::default();
        print(name, rev, family, info, &mut out).map(|()| out.line)
    }

    const KNOWN: &[(&str, u32, Family)] = &[
        ("REJECT", 0, Family::Ipv4),
        ("REJECT", 0, Family::Ipv6),
        ("MARK", 2, Family::Ipv4),
        ("DNAT", 0, Family::Ipv4),
        ("DNAT", 2, Family::Ipv6),
        ("SNAT", 1, Family::Ipv6),
        ("MASQUERADE", 0, Family::Ipv6),
        ("LOG", 0, Family::Ipv4),
        ("CONNMARK", 2, Family::Ipv4),
        ("CT", 2, Family::Ipv4),
        ("TCPMSS", 0, Family::Ipv4),
        ("CHECKSUM", 0, Family::Ipv4),
        ("NFQUEUE", 3, Family::Ipv4),
        ("TPROXY", 1, Family::Ipv6),
        ("TEE", 1, Family::Ipv6),
        ("CLASSIFY", 0, Family::Ipv4),
        ("TOS", 1, Family::Ipv4),
        ("TTL", 0, Family::Ipv4),
        ("HL", 0, Family::Ipv6),
        ("HMARK", 0, Family::Ipv4),
        ("HMARK", 0, Family::Ipv6),
        ("DSCP", 0, Family::Ipv4),
        ("AUDIT", 0, Family::Ipv4),
        ("TPROXY", 1, Family::Ipv4),
        ("TEE", 1, Family::Ipv4),
        ("SET", 3, Family::Ipv4),
        ("SNAT", 0, Family::Ipv4),
        ("MASQUERADE", 0, Family::Ipv4),
        ("REDIRECT", 0, Family::Ipv4),
    ];

    #[test]
    fn a_short_structure_is_declined_without_a_panic() {
        for &(name, rev, family) in KNOWN {
            assert_eq!(printed(name, rev, family, &[]), None, "{name} rev {rev}");
            // Every length up to beyond the largest structure: no read out of bounds,
            // whatever is printed.
            for len in 0..80 {
                let _ = printed(name, rev, family, &vec![0xff; len]);
                let _ = printed(name, rev, family, &vec![0; len]);
            }
        }
    }

    /// A structure of `len` zero bytes with `bytes` at `at`.
    fn info(len: usize, at: usize, bytes: &[u8]) -> Vec<u8> {
        let mut info = vec![0u8; len];
        info[at..at + bytes.len()].copy_from_slice(bytes);
        info
    }

    #[test]
    fn values_iptables_cannot_write_are_declined() {
        let declined = [
            // A conntrack event without a name, an expectation event without a name, a
            // timeout policy, a helper without its NUL.
            ("CT", Family::Ipv4, info(72, 4, &(1u32 << 10).to_ne_bytes())),
            ("CT", Family::Ipv4, info(72, 8, &(1u32 << 1).to_ne_bytes())),
            ("CT", Family::Ipv4, info(72, 28, b"x")),
            ("CT", Family::Ipv4, info(72, 12, &[b'a'; 16])),
            // A fourth CONNMARK mode, a third shift direction.
            ("CONNMARK", Family::Ipv4, info(16, 14, &[3])),
            ("CONNMARK", Family::Ipv4, info(16, 12, &[2, 1])),
            // LOG's unsupported NFLOG flag, a prefix without its NUL.
            ("LOG", Family::Ipv4, info(32, 0, &[4, 0x10])),
            ("LOG", Family::Ipv4, info(32, 2, &[b'a'; 30])),
            ("TTL", Family::Ipv4, vec![3, 1]),
            ("TTL", Family::Ipv6, vec![0, 1]),
            ("HL", Family::Ipv4, vec![0, 1]),
            ("AUDIT", Family::Ipv4, vec![3]),
            ("NFQUEUE", Family::Ipv4, info(8, 4, &4u16.to_ne_bytes())),
            ("REJECT", Family::Ipv6, 2u32.to_ne_bytes().to_vec()),
            ("REJECT", Family::Ipv4, 4u32.to_ne_bytes().to_vec()),
            ("MARK", Family::Arp, vec![0; 8]),
        ];
        for (name, family, info) in declined {
            let rev = KNOWN.iter().find(|k| k.0 == name).map_or(0, |k| k.1);
            assert_eq!(printed(name, rev, family, &info), None, "{name} {info:?}");
        }
    }
}
