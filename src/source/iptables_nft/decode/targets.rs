//! x_tables targets, printed from their structures as `iptables-save` prints them: the
//! name, then the options.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::Text;
use super::matches::Info;
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
    let info = Info(info);
    match (name, rev, family) {
        ("REJECT", 0, Family::Ipv4) => {
            const WITH: [Option<&str>; 9] = [
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
            let with = (*WITH.get(info.u32(0)? as usize)?)?;
            let _ = write!(out, "REJECT --reject-with {with}");
        }
        ("REJECT", 0, Family::Ipv6) => {
            const WITH: [Option<&str>; 9] = [
                Some("icmp6-no-route"),
                Some("icmp6-adm-prohibited"),
                Some("icmp6-not-neighbor"),
                Some("icmp6-addr-unreachable"),
                Some("icmp6-port-unreachable"),
                None,
                Some("tcp-reset"),
                Some("icmp6-policy-fail"),
                Some("icmp6-reject-route"),
            ];
            let with = (*WITH.get(info.u32(0)? as usize)?)?;
            let _ = write!(out, "REJECT --reject-with {with}");
        }
        ("MARK", 2, _) => {
            let _ = write!(
                out,
                "MARK --set-xmark {:#x}/{:#x}",
                info.u32(0)?,
                info.u32(4)?
            );
        }
        ("DNAT" | "SNAT" | "MASQUERADE" | "REDIRECT", ..) => {
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
        _ => return None,
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
    min_addr: Vec<u8>,
    max_addr: Vec<u8>,
    /// Ports, network byte order in every structure.
    min_port: u16,
    max_port: u16,
    base_port: u16,
}

impl NatRange {
    fn read(info: &Info<'_>, rev: u32, family: Family) -> Option<Self> {
        let size = match family {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
            _ => return None,
        };
        match (rev, family) {
            (0, Family::Ipv4) => {
                // One range, whatever `rangesize` says: iptables never writes more.
                if info.u32(0)? != 1 {
                    return None;
                }
                Some(NatRange {
                    flags: info.u32(4)?,
                    min_addr: info.bytes(8, 4)?.to_vec(),
                    max_addr: info.bytes(12, 4)?.to_vec(),
                    min_port: info.be_u16(16)?,
                    max_port: info.be_u16(18)?,
                    base_port: 0,
                })
            }
            (0..=2, _) => Some(NatRange {
                flags: info.u32(0)?,
                min_addr: info.bytes(4, size)?.to_vec(),
                max_addr: info.bytes(20, size)?.to_vec(),
                min_port: info.be_u16(36)?,
                max_port: info.be_u16(38)?,
                base_port: if rev == 2 { info.be_u16(40)? } else { 0 },
            }),
            _ => None,
        }
    }

    /// ` --to-destination 10.0.0.1:80-90`, ` --to-ports 8080`, then the flags.
    fn print(&self, out: &mut Text, family: Family, option: &str, ports_only: bool) {
        let mut range = String::new();
        let brackets = family == Family::Ipv6 && self.flags & PROTO_SPECIFIED != 0;
        if self.flags & MAP_IPS != 0 {
            if brackets {
                range.push('[');
            }
            range.push_str(&address(&self.min_addr));
            if self.min_addr != self.max_addr {
                range.push('-');
                range.push_str(&address(&self.max_addr));
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

fn address(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => Ipv4Addr::from(<[u8; 4]>::try_from(bytes).unwrap_or_default()).to_string(),
        _ => Ipv6Addr::from(<[u8; 16]>::try_from(bytes).unwrap_or_default()).to_string(),
    }
}
