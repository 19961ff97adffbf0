//! nf_tables messages → pieces of the model. Pure functions of one message's attributes.

use crate::ruleset::{
    BaseChain, ChainType, Counters, Family, Hook, Matches, NamedCounter, Policy, Quota, Rule, Set,
};
use crate::source::netlink::consts::{
    chain, counter, expr, generation, hook, hooks, list, nfproto, obj, quota, rule, set, set_elem,
    set_flags, table, table_flags, udata, verdict,
};
use crate::source::netlink::{Attrs, Malformed};

/// The model's family of an `NFPROTO_*` value; `None` for a family nf_tables does not
/// hold tables of.
pub(super) fn family(nfproto: u8) -> Option<Family> {
    Some(match nfproto {
        nfproto::IPV4 => Family::Ipv4,
        nfproto::IPV6 => Family::Ipv6,
        nfproto::INET => Family::Inet,
        nfproto::ARP => Family::Arp,
        nfproto::BRIDGE => Family::Bridge,
        nfproto::NETDEV => Family::Netdev,
        _ => return None,
    })
}

/// The `NFPROTO_*` value of a family, for requests.
pub(super) fn nfproto(family: Family) -> u8 {
    match family {
        Family::Ipv4 => nfproto::IPV4,
        Family::Ipv6 => nfproto::IPV6,
        Family::Inet => nfproto::INET,
        Family::Arp => nfproto::ARP,
        Family::Bridge => nfproto::BRIDGE,
        Family::Netdev => nfproto::NETDEV,
    }
}

/// A table as a table message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TableMsg {
    /// Its name.
    pub name: String,
    /// True for a dormant table (`flags dormant`), whose chains see no packet.
    pub dormant: bool,
}

/// Decodes a table message.
pub(super) fn table(attrs: Attrs<'_>) -> Result<TableMsg, Malformed> {
    let (mut name, mut flags) = (None, 0);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            table::NAME => name = Some(attr.string()),
            table::FLAGS => flags = attr.be_u32()?,
            _ => {}
        }
    }
    Ok(TableMsg {
        name: name.ok_or(Malformed("table without a name"))?,
        dormant: flags & table_flags::DORMANT != 0,
    })
}

/// A chain as a chain message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ChainMsg {
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub name: String,
    /// What makes it a base chain, when it is one.
    pub base: Option<BaseChain>,
}

/// Decodes a chain message of a table of `family`.
pub(super) fn chain(family: Family, attrs: Attrs<'_>) -> Result<ChainMsg, Malformed> {
    let (mut table, mut name, mut chain_type) = (None, None, None);
    let (mut hooked, mut hooknum, mut priority) = (false, None, None);
    let (mut policy, mut counters) = (Policy::Accept, Counters::default());
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            chain::TABLE => table = Some(attr.string()),
            chain::NAME => name = Some(attr.string()),
            chain::TYPE => chain_type = chain_type_of(&attr.string()),
            chain::POLICY => {
                policy = match attr.be_u32()? {
                    verdict::NF_DROP => Policy::Drop,
                    verdict::NF_ACCEPT => Policy::Accept,
                    verdict::NF_QUEUE => Policy::Queue,
                    _ => return Err(Malformed("chain policy")),
                }
            }
            chain::COUNTERS => counters = counters_of(attr.nested())?,
            chain::HOOK => {
                hooked = true;
                for attr in attr.nested() {
                    let attr = attr?;
                    match attr.kind {
                        hook::HOOKNUM => hooknum = Some(attr.be_u32()?),
                        hook::PRIORITY => priority = Some(attr.be_u32()? as i32),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let base = hooked.then(|| BaseChain {
        hook: hooknum.and_then(|n| hook_of(family, n)),
        policy,
        counters,
        chain_type,
        priority,
    });
    Ok(ChainMsg {
        table: table.ok_or(Malformed("chain without a table"))?,
        name: name.ok_or(Malformed("chain without a name"))?,
        base,
    })
}

fn chain_type_of(name: &str) -> Option<ChainType> {
    match name {
        "filter" => Some(ChainType::Filter),
        "nat" => Some(ChainType::Nat),
        "route" => Some(ChainType::Route),
        _ => None,
    }
}

/// The hook of hook number `n` in `family` (`enum nf_inet_hooks`, `NF_ARP_*`,
/// `NF_NETDEV_*`).
fn hook_of(family: Family, n: u32) -> Option<Hook> {
    use hooks::*;
    Some(match (family, n) {
        (Family::Netdev, NF_NETDEV_INGRESS) => Hook::Ingress,
        (Family::Netdev, NF_NETDEV_EGRESS) => Hook::Egress,
        (Family::Arp, NF_ARP_IN) => Hook::Input,
        (Family::Arp, NF_ARP_OUT) => Hook::Output,
        (Family::Arp, NF_ARP_FORWARD) => Hook::Forward,
        (Family::Netdev | Family::Arp, _) => return None,
        (_, NF_INET_PRE_ROUTING) => Hook::Prerouting,
        (_, NF_INET_LOCAL_IN) => Hook::Input,
        (_, NF_INET_FORWARD) => Hook::Forward,
        (_, NF_INET_LOCAL_OUT) => Hook::Output,
        (_, NF_INET_POST_ROUTING) => Hook::Postrouting,
        (_, NF_INET_INGRESS) => Hook::Ingress,
        _ => return None,
    })
}

fn counters_of(attrs: Attrs<'_>) -> Result<Counters, Malformed> {
    let mut counters = Counters::default();
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            counter::BYTES => counters.bytes = attr.be_u64()?,
            counter::PACKETS => counters.packets = attr.be_u64()?,
            _ => {}
        }
    }
    Ok(counters)
}

/// A rule as a rule message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RuleMsg {
    /// The table's name.
    pub table: String,
    /// The chain's name.
    pub chain: String,
    /// The rule, at position 0 (its place is the reader's to give).
    pub rule: Rule,
}

/// Decodes a rule message: its handle, the sum of its `counter` expressions, its comment.
/// The kernel sends every rule with its handle; one without would leave the rule's series
/// without the label that tells it from its neighbours, so it is malformed.
pub(super) fn rule(attrs: Attrs<'_>) -> Result<RuleMsg, Malformed> {
    let (mut table, mut chain, mut handle) = (None, None, None);
    let (mut counters, mut counted, mut comments) = (Counters::default(), false, Vec::new());
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            rule::TABLE => table = Some(attr.string()),
            rule::CHAIN => chain = Some(attr.string()),
            rule::HANDLE => handle = Some(attr.be_u64()?),
            rule::USERDATA => comments.extend(comment_of(attr.payload)),
            rule::EXPRESSIONS => {
                for element in attr.nested() {
                    let element = element?;
                    if element.kind != list::ELEM {
                        continue;
                    }
                    let (mut name, mut data) = (None, None);
                    for attr in element.nested() {
                        let attr = attr?;
                        match attr.kind {
                            expr::NAME => name = Some(attr.payload),
                            expr::DATA => data = Some(attr),
                            _ => {}
                        }
                    }
                    if name == Some(b"counter\0") {
                        counted = true;
                        if let Some(data) = data {
                            counters += counters_of(data.nested())?;
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(RuleMsg {
        table: table.ok_or(Malformed("rule without a table"))?,
        chain: chain.ok_or(Malformed("rule without a chain"))?,
        rule: Rule {
            position: 0,
            handle: Some(handle.ok_or(Malformed("rule without a handle"))?),
            counters,
            counted,
            text: String::new(),
            stripped: None,
            comments,
            matches: Matches::default(),
        },
    })
}

/// The key of a rule message ([`super::RuleKey`]): a SHA-256 digest of its expressions,
/// each `counter` by its name only, and of its user data. A digest, not the bytes, so that
/// a cache of 100k keys stays small; SHA-256 so that two rules cannot share a key by
/// accident, which would give one the other's label.
pub(super) fn rule_key(attrs: Attrs<'_>) -> Result<super::RuleKey, Malformed> {
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            rule::EXPRESSIONS => {
                for element in attr.nested() {
                    let element = element?;
                    let is_counter = element.nested().any(|a| {
                        a.is_ok_and(|a| a.kind == expr::NAME && a.payload == b"counter\0")
                    });
                    // Each piece with its length, so that two sequences cannot run together.
                    let piece: &[u8] = if is_counter {
                        b"counter"
                    } else {
                        element.payload
                    };
                    digest.update(&(piece.len() as u64).to_le_bytes());
                    digest.update(piece);
                }
            }
            rule::USERDATA => {
                digest.update(b"userdata");
                digest.update(&(attr.payload.len() as u64).to_le_bytes());
                digest.update(attr.payload);
            }
            _ => {}
        }
    }
    let mut key = [0; 32];
    key.copy_from_slice(digest.finish().as_ref());
    Ok(key)
}

/// The comment in a rule's user data, if it has one. A malformed TLV ends the search: the
/// user data is the writer's format, not the kernel's, and must not fail the rule.
fn comment_of(mut data: &[u8]) -> Option<String> {
    while let [kind, len, rest @ ..] = data {
        let value = rest.get(..usize::from(*len))?;
        if *kind == udata::RULE_COMMENT {
            let text = value.split(|&b| b == 0).next().unwrap_or_default();
            return Some(String::from_utf8_lossy(text).into_owned());
        }
        data = &rest[usize::from(*len)..];
    }
    None
}

/// A set as a set message describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SetMsg {
    /// The table's name.
    pub table: String,
    /// The set, with the kernel's element count when it sent one.
    pub set: Set,
    /// True for a set nft made for one rule (`{ 22, 80 }`), which is not exported.
    pub anonymous: bool,
}

/// Decodes a set message.
pub(super) fn set(attrs: Attrs<'_>) -> Result<SetMsg, Malformed> {
    let (mut table, mut name, mut flags, mut count) = (None, None, 0, None);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            set::TABLE => table = Some(attr.string()),
            set::NAME => name = Some(attr.string()),
            set::FLAGS => flags = attr.be_u32()?,
            set::COUNT => count = Some(u64::from(attr.be_u32()?)),
            _ => {}
        }
    }
    Ok(SetMsg {
        table: table.ok_or(Malformed("set without a table"))?,
        set: Set {
            name: name.ok_or(Malformed("set without a name"))?,
            is_map: flags & (set_flags::MAP | set_flags::OBJECT) != 0,
            elements: count,
        },
        anonymous: flags & set_flags::ANONYMOUS != 0,
    })
}

/// The elements of a set-element message, intervals counted once (the element that ends
/// an interval is not counted).
pub(super) fn set_elements(attrs: Attrs<'_>) -> Result<u64, Malformed> {
    let mut elements = 0;
    for attr in attrs {
        let attr = attr?;
        if attr.kind != set_elem::LIST_ELEMENTS {
            continue;
        }
        for element in attr.nested() {
            let element = element?;
            let mut ends_interval = false;
            for attr in element.nested() {
                let attr = attr?;
                if attr.kind == set_elem::FLAGS {
                    ends_interval = attr.be_u32()? & set_elem::F_INTERVAL_END != 0;
                }
            }
            elements += u64::from(!ends_interval);
        }
    }
    Ok(elements)
}

/// A stateful object the exporter reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Object {
    /// A named counter.
    Counter(NamedCounter),
    /// A quota.
    Quota(Quota),
}

/// Decodes an object message: its table, and the object when it is a counter or quota.
pub(super) fn object(attrs: Attrs<'_>) -> Result<(String, Option<Object>), Malformed> {
    let (mut table, mut name, mut kind, mut data) = (None, None, None, None);
    for attr in attrs {
        let attr = attr?;
        match attr.kind {
            obj::TABLE => table = Some(attr.string()),
            obj::NAME => name = Some(attr.string()),
            obj::TYPE => kind = Some(attr.be_u32()?),
            obj::DATA => data = Some(attr),
            _ => {}
        }
    }
    let table = table.ok_or(Malformed("object without a table"))?;
    let name = name.ok_or(Malformed("object without a name"))?;
    let Some(data) = data else {
        return Ok((table, None));
    };
    let object = match kind {
        Some(obj::TYPE_COUNTER) => Some(Object::Counter(NamedCounter {
            name,
            counters: counters_of(data.nested())?,
        })),
        Some(obj::TYPE_QUOTA) => {
            let (mut used_bytes, mut limit_bytes) = (0, 0);
            for attr in data.nested() {
                let attr = attr?;
                match attr.kind {
                    quota::BYTES => limit_bytes = attr.be_u64()?,
                    quota::CONSUMED => used_bytes = attr.be_u64()?,
                    _ => {}
                }
            }
            Some(Object::Quota(Quota {
                name,
                used_bytes,
                limit_bytes,
            }))
        }
        _ => None,
    };
    Ok((table, object))
}

/// The generation id of an `NFT_MSG_NEWGEN` message.
pub(super) fn generation(attrs: Attrs<'_>) -> Result<u32, Malformed> {
    for attr in attrs {
        let attr = attr?;
        if attr.kind == generation::ID {
            return attr.be_u32();
        }
    }
    Err(Malformed("generation message without an id"))
}

#[cfg(test)]
mod tests;
