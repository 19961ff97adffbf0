//! ipset messages → pieces of the model. Pure functions of one message's attributes.

use super::element::{self, Address, Fields, Layout};
use crate::ruleset::Family;
use crate::ruleset::ipset::{Member, Set};
use crate::source::netlink::consts::ipset::{
    IPSET_ATTR_ADT, IPSET_ATTR_BYTES, IPSET_ATTR_CADT_FLAGS, IPSET_ATTR_CIDR, IPSET_ATTR_CIDR2,
    IPSET_ATTR_DATA, IPSET_ATTR_ELEMENTS, IPSET_ATTR_ETHER, IPSET_ATTR_FAMILY, IPSET_ATTR_IFACE,
    IPSET_ATTR_IP, IPSET_ATTR_IP2, IPSET_ATTR_IPADDR_IPV4, IPSET_ATTR_IPADDR_IPV6, IPSET_ATTR_MARK,
    IPSET_ATTR_MAXELEM, IPSET_ATTR_MEMSIZE, IPSET_ATTR_NAME, IPSET_ATTR_PACKETS, IPSET_ATTR_PORT,
    IPSET_ATTR_PROTO, IPSET_ATTR_PROTOCOL, IPSET_ATTR_PROTOCOL_MIN, IPSET_ATTR_REFERENCES,
    IPSET_ATTR_SETNAME, IPSET_ATTR_SIZE, IPSET_ATTR_TYPENAME, IPSET_FLAG_PHYSDEV,
    IPSET_FLAG_WITH_COUNTERS, IPSET_PROTOCOL, IPSET_PROTOCOL_MIN,
};
use crate::source::netlink::consts::nfproto;
use crate::source::netlink::{Attr, Attrs, Malformed};

/// The protocol versions the kernel speaks, from its `IPSET_CMD_PROTOCOL` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Protocol {
    /// `IPSET_ATTR_PROTOCOL`.
    pub newest: u8,
    /// `IPSET_ATTR_PROTOCOL_MIN`; kernels that send none speak only the newest.
    pub oldest: u8,
}

/// Decodes an `IPSET_CMD_PROTOCOL` reply.
pub(super) fn protocol(attrs: Attrs<'_>) -> Result<Protocol, Malformed> {
    let (mut newest, mut oldest) = (None, None);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            IPSET_ATTR_PROTOCOL => newest = Some(u8_of(&attr)?),
            IPSET_ATTR_PROTOCOL_MIN => oldest = Some(u8_of(&attr)?),
            _ => {}
        }
    }
    let newest = newest.ok_or(Malformed("ipset protocol reply without a version"))?;
    Ok(Protocol {
        newest,
        oldest: oldest.unwrap_or(newest),
    })
}

/// The version to speak with a kernel that speaks `kernel`: the newest both sides know, as
/// the `ipset` program chooses it; `None` when they share none.
pub(super) fn negotiate(kernel: Protocol) -> Option<u8> {
    (kernel.oldest <= IPSET_PROTOCOL && kernel.newest >= IPSET_PROTOCOL_MIN)
        .then(|| kernel.newest.min(IPSET_PROTOCOL))
}

/// One message of an `IPSET_CMD_LIST` answer. The kernel lists a set in one or more
/// messages that each carry its name; the first also carries its header, and unless only
/// headers were asked for, each carries some of its members. A message without a header
/// is one set's, that of the message before it.
#[derive(Debug, Clone)]
pub(super) struct ListMsg<'a> {
    /// The set's header, in the first message of the set.
    pub header: Option<Header>,
    /// Its members in this message: the `IPSET_ATTR_DATA` of each, to decode with
    /// [`member`].
    pub members: Option<Attrs<'a>>,
}

/// What a set's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    /// The set, without members ([`Set::members_left_out`] `None`).
    pub set: Set,
    /// Whether it was created with `counters`.
    pub counters: bool,
}

/// Decodes an `IPSET_CMD_LIST` message.
pub(super) fn list(attrs: Attrs<'_>) -> Result<ListMsg<'_>, Malformed> {
    let (mut name, mut type_name, mut family, mut data, mut members) =
        (None, None, None, None, None);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            IPSET_ATTR_SETNAME => name = Some(attr.string()),
            IPSET_ATTR_TYPENAME => type_name = Some(attr.string()),
            IPSET_ATTR_FAMILY => family = Some(u8_of(&attr)?),
            IPSET_ATTR_DATA => data = Some(attr.nested()),
            IPSET_ATTR_ADT => members = Some(attr.nested()),
            _ => {}
        }
    }
    let header = match type_name {
        None => None,
        Some(type_name) => {
            let name = name.ok_or(Malformed("ipset set header without a set name"))?;
            let data = data.ok_or(Malformed("ipset set header without its data"))?;
            Some(header(name, type_name, family, data)?)
        }
    };
    Ok(ListMsg { header, members })
}

/// A set's header from its name, type, `NFPROTO_*` family and `IPSET_ATTR_DATA`.
fn header(
    name: String,
    type_name: String,
    family: Option<u8>,
    data: Attrs<'_>,
) -> Result<Header, Malformed> {
    let (mut entries, mut maxelem, mut size, mut memory, mut references) =
        (None, None, None, None, None);
    let mut flags = 0;
    for attr in data {
        let attr = attr?;
        match attr.kind {
            IPSET_ATTR_ELEMENTS => entries = Some(attr.be_u32()?),
            IPSET_ATTR_MAXELEM => maxelem = Some(attr.be_u32()?),
            IPSET_ATTR_SIZE => size = Some(attr.be_u32()?),
            IPSET_ATTR_MEMSIZE => memory = Some(attr.be_u32()?),
            IPSET_ATTR_REFERENCES => references = Some(attr.be_u32()?),
            IPSET_ATTR_CADT_FLAGS => flags = attr.be_u32()?,
            _ => {}
        }
    }
    let family = match family {
        Some(nfproto::IPV4) => Some(Family::Ipv4),
        Some(nfproto::IPV6) => Some(Family::Ipv6),
        _ => None,
    };
    let set = Set {
        name,
        type_name,
        family,
        entries: entries
            .ok_or(Malformed("ipset set header without its number of entries"))?
            .into(),
        max_entries: maxelem.or(size).map(u64::from),
        memory_bytes: memory
            .ok_or(Malformed("ipset set header without its memory size"))?
            .into(),
        references: references
            .ok_or(Malformed("ipset set header without its references"))?
            .into(),
        members: Vec::new(),
        members_left_out: None,
    };
    Ok(Header {
        set,
        counters: flags & IPSET_FLAG_WITH_COUNTERS != 0,
    })
}

/// Decodes one member (the `IPSET_ATTR_DATA` of an `IPSET_ATTR_ADT`) of a set whose
/// elements are written as `layout` says.
pub(super) fn member(layout: &Layout, data: Attr<'_>) -> Result<Member, Malformed> {
    if data.kind != IPSET_ATTR_DATA {
        return Err(Malformed("ipset member list holding something else"));
    }
    let mut fields = Fields::default();
    let (mut packets, mut bytes) = (0, 0);
    for attr in data.nested() {
        let attr = attr?;
        match attr.kind {
            IPSET_ATTR_IP => fields.addresses[0] = Some(address(attr.nested())?),
            IPSET_ATTR_IP2 => fields.addresses[1] = Some(address(attr.nested())?),
            IPSET_ATTR_CIDR => fields.prefixes[0] = Some(u8_of(&attr)?),
            IPSET_ATTR_CIDR2 => fields.prefixes[1] = Some(u8_of(&attr)?),
            IPSET_ATTR_PORT => fields.port = Some(be_u16(&attr)?),
            IPSET_ATTR_PROTO => fields.proto = Some(u8_of(&attr)?),
            IPSET_ATTR_ETHER => {
                let ether = attr.payload.try_into();
                fields.ether = Some(ether.map_err(|_| Malformed("ipset MAC address size"))?);
            }
            IPSET_ATTR_IFACE => fields.iface = Some(attr.string()),
            IPSET_ATTR_NAME => fields.name = Some(attr.string()),
            IPSET_ATTR_MARK => fields.mark = Some(attr.be_u32()?),
            IPSET_ATTR_CADT_FLAGS => fields.physdev = attr.be_u32()? & IPSET_FLAG_PHYSDEV != 0,
            IPSET_ATTR_PACKETS => packets = attr.be_u64()?,
            IPSET_ATTR_BYTES => bytes = attr.be_u64()?,
            _ => {}
        }
    }
    Ok(Member {
        element: element::text(layout, &fields)?,
        packets,
        bytes,
    })
}

/// An `IPSET_ATTR_IP` or `IPSET_ATTR_IP2`.
fn address(attrs: Attrs<'_>) -> Result<Address, Malformed> {
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            IPSET_ATTR_IPADDR_IPV4 => {
                let bytes: [u8; 4] = attr
                    .payload
                    .try_into()
                    .map_err(|_| Malformed("IPv4 address size"))?;
                return Ok(Address::V4(bytes.into()));
            }
            IPSET_ATTR_IPADDR_IPV6 => {
                let bytes: [u8; 16] = attr
                    .payload
                    .try_into()
                    .map_err(|_| Malformed("IPv6 address size"))?;
                return Ok(Address::V6(bytes.into()));
            }
            _ => {}
        }
    }
    Err(Malformed("ipset address without an address"))
}

fn u8_of(attr: &Attr<'_>) -> Result<u8, Malformed> {
    match attr.payload {
        [byte] => Ok(*byte),
        _ => Err(Malformed("u8 size")),
    }
}

fn be_u16(attr: &Attr<'_>) -> Result<u16, Malformed> {
    let bytes = attr.payload.try_into().map_err(|_| Malformed("u16 size"))?;
    Ok(u16::from_be_bytes(bytes))
}

#[cfg(test)]
mod tests;
