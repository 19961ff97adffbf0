use super::*;
use crate::source::netlink::{push, push_str};

fn nested(kind: u16, build: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut inner = Vec::new();
    build(&mut inner);
    let mut out = Vec::new();
    push(&mut out, kind | 0x8000, &inner);
    out
}

fn counter_expr(packets: u64, bytes: u64) -> Vec<u8> {
    nested(list::ELEM, |e| {
        push_str(e, expr::NAME, "counter");
        e.extend(nested(expr::DATA, |d| {
            push(d, counter::BYTES, &bytes.to_be_bytes());
            push(d, counter::PACKETS, &packets.to_be_bytes());
        }));
    })
}

#[test]
fn a_rule_sums_its_counters_and_reads_its_comment() {
    let mut buf = Vec::new();
    push_str(&mut buf, rule::TABLE, "firewall");
    push_str(&mut buf, rule::CHAIN, "accounting");
    push(&mut buf, rule::HANDLE, &42u64.to_be_bytes());
    buf.extend(nested(rule::EXPRESSIONS, |list| {
        list.extend(counter_expr(2, 100));
        list.extend(nested(list::ELEM, |e| push_str(e, expr::NAME, "immediate")));
        list.extend(counter_expr(3, 50));
    }));
    // A TLV nft does not use, then the comment.
    push(&mut buf, rule::USERDATA, b"\x05\x01x\x00\x04hi\"\x00");
    let decoded = rule(Attrs::new(&buf)).expect("well-formed");
    assert_eq!(
        (decoded.table.as_str(), decoded.chain.as_str()),
        ("firewall", "accounting")
    );
    assert_eq!(decoded.rule.handle, Some(42));
    assert_eq!(
        decoded.rule.counters,
        Counters {
            packets: 5,
            bytes: 150
        }
    );
    assert_eq!(decoded.rule.comments, ["hi\""]);
    assert!(decoded.rule.counted);
}

#[test]
fn a_rule_without_counter_or_comment() {
    let mut buf = Vec::new();
    push_str(&mut buf, rule::TABLE, "t");
    push_str(&mut buf, rule::CHAIN, "c");
    push(&mut buf, rule::HANDLE, &1u64.to_be_bytes());
    let decoded = rule(Attrs::new(&buf)).expect("well-formed");
    assert!(!decoded.rule.counted);
    assert!(decoded.rule.comments.is_empty());
}

#[test]
fn user_data_that_is_cut_short_is_no_comment() {
    assert_eq!(comment_of(b"\x00\x09abc"), None);
    assert_eq!(comment_of(b"\x00"), None);
    assert_eq!(
        comment_of(b"\x00\x04caf\xe9"),
        Some("caf\u{fffd}".to_owned())
    );
}

#[test]
fn a_base_chain_and_a_user_chain() {
    let mut buf = Vec::new();
    push_str(&mut buf, chain::TABLE, "filter");
    push_str(&mut buf, chain::NAME, "input");
    push_str(&mut buf, chain::TYPE, "filter");
    push(&mut buf, chain::POLICY, &0u32.to_be_bytes());
    buf.extend(nested(chain::HOOK, |h| {
        push(h, hook::HOOKNUM, &1u32.to_be_bytes());
        push(h, hook::PRIORITY, &(-150i32 as u32).to_be_bytes());
    }));
    let base = chain(Family::Inet, Attrs::new(&buf))
        .expect("well-formed")
        .base
        .expect("well-formed");
    assert_eq!(base.hook, Some(Hook::Input));
    assert_eq!(base.policy, Policy::Drop);
    assert_eq!(base.priority, Some(-150));
    assert_eq!(base.chain_type, Some(ChainType::Filter));

    let mut buf = Vec::new();
    push_str(&mut buf, chain::TABLE, "filter");
    push_str(&mut buf, chain::NAME, "mine");
    assert_eq!(
        chain(Family::Ipv4, Attrs::new(&buf))
            .expect("well-formed")
            .base,
        None
    );
}

#[test]
fn netdev_and_arp_hooks_have_their_own_numbers() {
    assert_eq!(hook_of(Family::Netdev, 1), Some(Hook::Egress));
    assert_eq!(hook_of(Family::Arp, 1), Some(Hook::Output));
    assert_eq!(hook_of(Family::Ipv6, 4), Some(Hook::Postrouting));
    assert_eq!(hook_of(Family::Arp, 7), None);
}

#[test]
fn sets_maps_and_anonymous_sets() {
    let set_msg = |flags: u32, count: Option<u32>| {
        let mut buf = Vec::new();
        push_str(&mut buf, set::TABLE, "t");
        push_str(&mut buf, set::NAME, "s");
        push(&mut buf, set::FLAGS, &flags.to_be_bytes());
        if let Some(count) = count {
            push(&mut buf, set::COUNT, &count.to_be_bytes());
        }
        set(Attrs::new(&buf)).expect("well-formed")
    };
    let plain = set_msg(0, Some(3));
    assert_eq!(
        (plain.set.is_map, plain.set.elements, plain.anonymous),
        (false, Some(3), false)
    );
    assert!(set_msg(set_flags::MAP, None).set.is_map);
    assert!(set_msg(set_flags::OBJECT, None).set.is_map);
    assert!(set_msg(set_flags::ANONYMOUS | 0x2, None).anonymous);
    assert_eq!(set_msg(0, None).set.elements, None);
}

#[test]
fn interval_ends_are_not_elements() {
    let element = |flags: Option<u32>| {
        nested(list::ELEM, |e| {
            if let Some(flags) = flags {
                push(e, set_elem::FLAGS, &flags.to_be_bytes());
            }
        })
    };
    let mut buf = Vec::new();
    push_str(&mut buf, set_elem::LIST_TABLE, "t");
    buf.extend(nested(set_elem::LIST_ELEMENTS, |l| {
        l.extend(element(None));
        l.extend(element(Some(set_elem::F_INTERVAL_END)));
        l.extend(element(Some(0)));
    }));
    assert_eq!(set_elements(Attrs::new(&buf)), Ok(2));
}

#[test]
fn counters_quotas_and_other_objects() {
    let object_msg = |kind: u32, data: Vec<u8>| {
        let mut buf = Vec::new();
        push_str(&mut buf, obj::TABLE, "t");
        push_str(&mut buf, obj::NAME, "o");
        push(&mut buf, obj::TYPE, &kind.to_be_bytes());
        buf.extend(data);
        object(Attrs::new(&buf)).expect("well-formed").1
    };
    let counter_data = nested(obj::DATA, |d| {
        push(d, counter::BYTES, &9u64.to_be_bytes());
        push(d, counter::PACKETS, &1u64.to_be_bytes());
    });
    assert_eq!(
        object_msg(obj::TYPE_COUNTER, counter_data),
        Some(Object::Counter(NamedCounter {
            name: "o".to_owned(),
            counters: Counters {
                packets: 1,
                bytes: 9
            }
        }))
    );
    let quota_data = nested(obj::DATA, |d| {
        push(d, quota::BYTES, &1000u64.to_be_bytes());
        push(d, quota::CONSUMED, &10u64.to_be_bytes());
    });
    assert_eq!(
        object_msg(obj::TYPE_QUOTA, quota_data),
        Some(Object::Quota(Quota {
            name: "o".to_owned(),
            used_bytes: 10,
            limit_bytes: 1000
        }))
    );
    assert_eq!(
        object_msg(4, nested(obj::DATA, |_| {})),
        None,
        "a limit object"
    );
}

#[test]
fn messages_missing_their_names_are_malformed() {
    assert!(table(Attrs::new(&[])).is_err());
    assert!(rule(Attrs::new(&[])).is_err());
    assert!(set(Attrs::new(&[])).is_err());
    let mut buf = Vec::new();
    push(&mut buf, rule::HANDLE, &[1, 2]);
    assert!(
        rule(Attrs::new(&buf)).is_err(),
        "a handle of the wrong size"
    );
}

#[test]
fn a_table_and_its_dormant_flag() {
    let table_msg = |flags: Option<u32>| {
        let mut buf = Vec::new();
        push_str(&mut buf, table::NAME, "t");
        if let Some(flags) = flags {
            push(&mut buf, table::FLAGS, &flags.to_be_bytes());
        }
        table(Attrs::new(&buf)).expect("well-formed")
    };
    assert_eq!(
        table_msg(None),
        TableMsg {
            name: "t".to_owned(),
            dormant: false
        }
    );
    assert!(!table_msg(Some(0)).dormant);
    assert!(table_msg(Some(table_flags::DORMANT)).dormant);
    // NFT_TABLE_F_OWNER alone.
    assert!(!table_msg(Some(0x2)).dormant);
}

/// Found by fuzzing: rules without a handle in one chain were all exported with
/// `handle=""`, one series several times.
#[test]
fn a_rule_without_a_handle_is_malformed() {
    let mut buf = Vec::new();
    push_str(&mut buf, rule::TABLE, "t");
    push_str(&mut buf, rule::CHAIN, "c");
    buf.extend(nested(rule::EXPRESSIONS, |list| {
        list.extend(counter_expr(1, 2))
    }));
    assert_eq!(
        rule(Attrs::new(&buf)),
        Err(Malformed("rule without a handle"))
    );
}
