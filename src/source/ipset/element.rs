//! A member's element written as `ipset list` writes it (libipset's `ipset_print_elem`):
//! the parts the set's type names, in that order, joined by commas. Pure.
//!
//! The kernel sends a member as attributes whose meaning depends on the type: a `hash:net`
//! member is `IPSET_ATTR_IP` and `IPSET_ATTR_CIDR`, a `hash:ip,port,net` member adds a port
//! and its protocol, then `IPSET_ATTR_IP2` and `IPSET_ATTR_CIDR2`. Each word of the type
//! name after the colon (`ip`, `net`, `port`, `mac`, `iface`, `mark`, `set`) is one part,
//! which is all it takes to write every type the kernel has.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::source::netlink::Malformed;
use crate::source::netlink::consts::ipproto::{IPPROTO_ICMP, IPPROTO_ICMPV6};

/// One part of an element, in the order the type name gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `ip` or `net`: an address with its prefix length when the kernel sends one and it is
    /// shorter than the address. The first such part is `IPSET_ATTR_IP`, the second
    /// `IPSET_ATTR_IP2`.
    Address,
    /// `port`: `proto:port` when the kernel sends the protocol, the port alone otherwise
    /// (`bitmap:port`).
    Port,
    /// `mac`: six bytes, upper-case hex.
    Mac,
    /// `iface`: an interface name, `physdev:` before a bridge port.
    Iface,
    /// `mark`: `0x` and eight hex digits.
    Mark,
    /// `set`: the name of a `list:set` member.
    Set,
}

/// How the elements of a set type are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    parts: Vec<Part>,
}

impl Layout {
    /// The layout of `type_name` (`hash:ip,port`); `None` for a type whose words this
    /// reader does not know.
    pub(super) fn of(type_name: &str) -> Option<Layout> {
        let (_, words) = type_name.split_once(':')?;
        let parts = words
            .split(',')
            .map(|word| match word {
                "ip" | "net" => Some(Part::Address),
                "port" => Some(Part::Port),
                "mac" => Some(Part::Mac),
                "iface" => Some(Part::Iface),
                "mark" => Some(Part::Mark),
                "set" => Some(Part::Set),
                _ => None,
            })
            .collect::<Option<Vec<Part>>>()?;
        Some(Layout { parts })
    }
}

/// An address of a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Address {
    /// `IPSET_ATTR_IPADDR_IPV4`.
    V4(Ipv4Addr),
    /// `IPSET_ATTR_IPADDR_IPV6`.
    V6(Ipv6Addr),
}

/// What the kernel sent of one member, as far as its element goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Fields {
    /// `IPSET_ATTR_IP` and `IPSET_ATTR_IP2`.
    pub addresses: [Option<Address>; 2],
    /// `IPSET_ATTR_CIDR` and `IPSET_ATTR_CIDR2`.
    pub prefixes: [Option<u8>; 2],
    /// `IPSET_ATTR_PORT`.
    pub port: Option<u16>,
    /// `IPSET_ATTR_PROTO`.
    pub proto: Option<u8>,
    /// `IPSET_ATTR_ETHER`.
    pub ether: Option<[u8; 6]>,
    /// `IPSET_ATTR_IFACE`.
    pub iface: Option<String>,
    /// `IPSET_FLAG_PHYSDEV` in the member's `IPSET_ATTR_CADT_FLAGS`.
    pub physdev: bool,
    /// `IPSET_ATTR_MARK`.
    pub mark: Option<u32>,
    /// `IPSET_ATTR_NAME`.
    pub name: Option<String>,
}

/// The element of a member with `fields` in a set of `layout`.
pub(super) fn text(layout: &Layout, fields: &Fields) -> Result<String, Malformed> {
    let mut out = String::new();
    let mut addresses = 0;
    for (i, part) in layout.parts.iter().enumerate() {
        // libipset leaves out a last `mac` the kernel did not send (a `bitmap:ip,mac`
        // member whose MAC address is not learnt yet), and its comma.
        if *part == Part::Mac && fields.ether.is_none() && i + 1 == layout.parts.len() && i > 0 {
            break;
        }
        if i > 0 {
            out.push(',');
        }
        match part {
            Part::Address => {
                let slot = addresses.min(1);
                addresses += 1;
                let address =
                    fields.addresses[slot].ok_or(Malformed("ipset member without its address"))?;
                write_address(&mut out, address, fields.prefixes[slot]);
            }
            Part::Port => {
                let port = fields
                    .port
                    .ok_or(Malformed("ipset member without its port"))?;
                write_port(&mut out, fields.proto, port);
            }
            Part::Mac => {
                let ether = fields
                    .ether
                    .ok_or(Malformed("ipset member without its MAC address"))?;
                for (j, byte) in ether.iter().enumerate() {
                    let sep = if j == 0 { "" } else { ":" };
                    let _ = write!(out, "{sep}{byte:02X}");
                }
            }
            Part::Iface => {
                let iface = fields
                    .iface
                    .as_deref()
                    .ok_or(Malformed("ipset member without its interface"))?;
                if fields.physdev {
                    out.push_str("physdev:");
                }
                out.push_str(iface);
            }
            Part::Mark => {
                let mark = fields
                    .mark
                    .ok_or(Malformed("ipset member without its mark"))?;
                let _ = write!(out, "0x{mark:08x}");
            }
            Part::Set => out.push_str(
                fields
                    .name
                    .as_deref()
                    .ok_or(Malformed("ipset member without its set name"))?,
            ),
        }
    }
    Ok(out)
}

/// An address as libipset writes it (`inet_ntop`), `/prefix` after it unless the prefix
/// covers the whole address.
fn write_address(out: &mut String, address: Address, prefix: Option<u8>) {
    let full = match address {
        Address::V4(v4) => {
            let _ = write!(out, "{v4}");
            32
        }
        Address::V6(v6) => {
            write_ipv6(out, v6);
            128
        }
    };
    if let Some(prefix) = prefix.filter(|&p| p != full) {
        let _ = write!(out, "/{prefix}");
    }
}

/// An IPv6 address as glibc's `inet_ntop` writes it. Rust writes the same text (RFC 5952)
/// but for the IPv4-compatible addresses (`::a.b.c.d`, six zero groups then a non-zero
/// one), which glibc writes with a dotted quad.
fn write_ipv6(out: &mut String, address: Ipv6Addr) {
    let groups = address.segments();
    if groups[..6] == [0; 6] && groups[6] != 0 {
        let [.., a, b, c, d] = address.octets();
        let _ = write!(out, "::{}", Ipv4Addr::new(a, b, c, d));
    } else {
        let _ = write!(out, "{address}");
    }
}

/// A port as libipset's `ipset_print_proto_port` writes it: `tcp:80`; for ICMP and ICMPv6
/// the type and code, by name when they have one (`icmp:echo-request`, `icmp:3/9`).
fn write_port(out: &mut String, proto: Option<u8>, port: u16) {
    let Some(proto) = proto else {
        let _ = write!(out, "{port}");
        return;
    };
    match protocol_name(proto) {
        Some(name) => out.push_str(name),
        None => {
            let _ = write!(out, "{proto}");
        }
    }
    out.push(':');
    let [kind, code] = port.to_be_bytes();
    let names: &[(u8, u8, &str)] = match proto {
        IPPROTO_ICMP => ICMP_NAMES,
        IPPROTO_ICMPV6 => ICMPV6_NAMES,
        _ => {
            let _ = write!(out, "{port}");
            return;
        }
    };
    match names.iter().find(|(t, c, _)| (*t, *c) == (kind, code)) {
        Some((_, _, name)) => out.push_str(name),
        None => {
            let _ = write!(out, "{kind}/{code}");
        }
    }
}

/// The name `getprotobynumber` gives a protocol with Debian's `/etc/protocols` (netbase),
/// for the protocols a member of a `port` type carries in practice. libipset writes the
/// number of a protocol its host has no name for; so does this reader for the others, so
/// that the text never depends on the host.
fn protocol_name(proto: u8) -> Option<&'static str> {
    Some(match proto {
        1 => "icmp",
        2 => "igmp",
        4 => "ipencap",
        6 => "tcp",
        17 => "udp",
        41 => "ipv6",
        47 => "gre",
        50 => "esp",
        51 => "ah",
        58 => "ipv6-icmp",
        89 => "ospf",
        94 => "ipip",
        103 => "pim",
        112 => "vrrp",
        115 => "l2tp",
        132 => "sctp",
        136 => "udplite",
        _ => return None,
    })
}

/// ICMP types and codes by the first name libipset's `icmp.c` gives them.
const ICMP_NAMES: &[(u8, u8, &str)] = &[
    (0, 0, "echo-reply"),
    (3, 0, "network-unreachable"),
    (3, 1, "host-unreachable"),
    (3, 2, "protocol-unreachable"),
    (3, 3, "port-unreachable"),
    (3, 4, "fragmentation-needed"),
    (3, 5, "source-route-failed"),
    (3, 6, "network-unknown"),
    (3, 7, "host-unknown"),
    (3, 9, "network-prohibited"),
    (3, 10, "host-prohibited"),
    (3, 11, "TOS-network-unreachable"),
    (3, 12, "TOS-host-unreachable"),
    (3, 13, "communication-prohibited"),
    (3, 14, "host-precedence-violation"),
    (3, 15, "precedence-cutoff"),
    (4, 0, "source-quench"),
    (5, 0, "network-redirect"),
    (5, 1, "host-redirect"),
    (5, 2, "TOS-network-redirect"),
    (5, 3, "TOS-host-redirect"),
    (8, 0, "echo-request"),
    (9, 0, "router-advertisement"),
    (10, 0, "router-solicitation"),
    (11, 0, "ttl-zero-during-transit"),
    (11, 1, "ttl-zero-during-reassembly"),
    (12, 0, "ip-header-bad"),
    (12, 1, "required-option-missing"),
    (13, 0, "timestamp-request"),
    (14, 0, "timestamp-reply"),
    (17, 0, "address-mask-request"),
    (18, 0, "address-mask-reply"),
];

/// ICMPv6 types and codes by the first name libipset's `icmpv6.c` gives them.
const ICMPV6_NAMES: &[(u8, u8, &str)] = &[
    (1, 0, "no-route"),
    (1, 1, "communication-prohibited"),
    (1, 3, "address-unreachable"),
    (1, 4, "port-unreachable"),
    (2, 0, "packet-too-big"),
    (3, 0, "ttl-zero-during-transit"),
    (3, 1, "ttl-zero-during-reassembly"),
    (4, 0, "bad-header"),
    (4, 1, "unknown-header-type"),
    (4, 2, "unknown-option"),
    (128, 0, "echo-request"),
    (129, 0, "echo-reply"),
    (133, 0, "router-solicitation"),
    (134, 0, "router-advertisement"),
    (135, 0, "neighbour-solicitation"),
    (136, 0, "neighbour-advertisement"),
    (137, 0, "redirect"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Option<Address> {
        Some(Address::V4(s.parse().expect("an IPv4 address")))
    }

    fn v6(s: &str) -> Option<Address> {
        Some(Address::V6(s.parse().expect("an IPv6 address")))
    }

    fn element(type_name: &str, fields: Fields) -> String {
        let layout = Layout::of(type_name).expect("a known type");
        text(&layout, &fields).expect("every part")
    }

    #[test]
    fn addresses_with_and_without_a_prefix() {
        let host = Fields {
            addresses: [v4("10.2.0.1"), None],
            prefixes: [Some(32), None],
            ..Fields::default()
        };
        assert_eq!(element("hash:net", host), "10.2.0.1");
        let net = Fields {
            addresses: [v4("10.1.0.0"), v4("192.0.2.0")],
            prefixes: [Some(16), Some(24)],
            ..Fields::default()
        };
        assert_eq!(element("hash:net,net", net), "10.1.0.0/16,192.0.2.0/24");
        let six = Fields {
            addresses: [v6("2001:db8::"), None],
            prefixes: [Some(64), None],
            ..Fields::default()
        };
        assert_eq!(element("hash:net", six), "2001:db8::/64");
    }

    /// What `ipset list` printed for `::1.2.3.4`, `::ffff:1.2.3.4` and `::1`.
    #[test]
    fn ipv6_as_glibc_writes_it() {
        for (address, written) in [
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::1", "::1"),
            ("::", "::"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ] {
            let fields = Fields {
                addresses: [v6(address), None],
                ..Fields::default()
            };
            assert_eq!(element("hash:ip", fields), written, "{address}");
        }
    }

    #[test]
    fn ports_with_their_protocol() {
        let member = |proto, port| Fields {
            addresses: [v4("10.0.0.1"), None],
            proto,
            port: Some(port),
            ..Fields::default()
        };
        assert_eq!(
            element("hash:ip,port", member(Some(6), 80)),
            "10.0.0.1,tcp:80"
        );
        assert_eq!(
            element("hash:ip,port", member(Some(47), 0)),
            "10.0.0.1,gre:0"
        );
        assert_eq!(
            element("hash:ip,port", member(Some(253), 0)),
            "10.0.0.1,253:0"
        );
        assert_eq!(
            element("hash:ip,port", member(Some(1), 8 << 8)),
            "10.0.0.1,icmp:echo-request"
        );
        assert_eq!(
            element("hash:ip,port", member(Some(1), 3 << 8 | 8)),
            "10.0.0.1,icmp:3/8"
        );
        assert_eq!(
            element("hash:ip,port", member(Some(58), 135 << 8)),
            "10.0.0.1,ipv6-icmp:neighbour-solicitation"
        );
        let bitmap = Fields {
            port: Some(22),
            ..Fields::default()
        };
        assert_eq!(element("bitmap:port", bitmap), "22");
    }

    #[test]
    fn macs_interfaces_marks_and_sets() {
        let ether = Some([0x02, 0, 0, 0xab, 0xcd, 0x0e]);
        let ip_mac = Fields {
            addresses: [v4("10.0.0.1"), None],
            ether,
            ..Fields::default()
        };
        assert_eq!(element("hash:ip,mac", ip_mac), "10.0.0.1,02:00:00:AB:CD:0E");
        let unlearnt = Fields {
            addresses: [v4("10.0.0.1"), None],
            ..Fields::default()
        };
        assert_eq!(element("bitmap:ip,mac", unlearnt), "10.0.0.1");
        let iface = Fields {
            addresses: [v4("10.0.0.0"), None],
            prefixes: [Some(8), None],
            iface: Some("br0".into()),
            physdev: true,
            ..Fields::default()
        };
        assert_eq!(element("hash:net,iface", iface), "10.0.0.0/8,physdev:br0");
        let mark = Fields {
            addresses: [v4("10.0.0.1"), None],
            mark: Some(0x1f),
            ..Fields::default()
        };
        assert_eq!(element("hash:ip,mark", mark), "10.0.0.1,0x0000001f");
        let set = Fields {
            name: Some("blocked".into()),
            ..Fields::default()
        };
        assert_eq!(element("list:set", set), "blocked");
    }

    #[test]
    fn unknown_types_and_missing_parts() {
        assert_eq!(Layout::of("hash:ip,colour"), None);
        assert_eq!(Layout::of("hash"), None);
        let layout = Layout::of("hash:ip,port").expect("a known type");
        let no_port = Fields {
            addresses: [v4("10.0.0.1"), None],
            ..Fields::default()
        };
        assert!(text(&layout, &no_port).is_err());
    }
}
