use super::*;
use crate::source::netlink::consts::{chain, obj, rule, set, table, table_flags};
use crate::source::netlink::{push, push_str};

fn table_msg(name: &str, flags: u32) -> Vec<u8> {
    let mut buf = Vec::new();
    push_str(&mut buf, table::NAME, name);
    push(&mut buf, table::FLAGS, &flags.to_be_bytes());
    buf
}

fn chain_msg(table: &str, name: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    push_str(&mut buf, chain::TABLE, table);
    push_str(&mut buf, chain::NAME, name);
    buf
}

fn set_msg(table: &str, name: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    push_str(&mut buf, set::TABLE, table);
    push_str(&mut buf, set::NAME, name);
    buf
}

fn counter_msg(table: &str, name: &str) -> Vec<u8> {
    let mut buf = Vec::new();
    push_str(&mut buf, obj::TABLE, table);
    push_str(&mut buf, obj::NAME, name);
    push(&mut buf, obj::TYPE, &obj::TYPE_COUNTER.to_be_bytes());
    push(&mut buf, obj::DATA | 0x8000, &[]);
    buf
}

fn rule_msg(handle: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    push_str(&mut buf, rule::TABLE, "t");
    push_str(&mut buf, rule::CHAIN, "c");
    push(&mut buf, rule::HANDLE, &handle.to_be_bytes());
    buf
}

fn interrupted(result: Result<(), NetlinkError>) -> bool {
    matches!(result, Err(NetlinkError::Interrupted))
}

/// The table dump of a read that walked the table list while a transaction replaced
/// `inet t`: the old table, then the new one, under one generation.
#[test]
fn a_table_listed_twice_means_the_ruleset_changed() {
    let mut build = Build::default();
    build
        .table(Family::Inet, Attrs::new(&table_msg("t", 0)))
        .expect("the old table");
    assert!(interrupted(
        build.table(Family::Inet, Attrs::new(&table_msg("t", 0)))
    ));
}

#[test]
fn one_name_in_two_families_is_two_tables() {
    let mut build = Build::default();
    for family in [Family::Ipv4, Family::Ipv6, Family::Inet] {
        build
            .table(family, Attrs::new(&table_msg("filter", 0)))
            .expect("another family");
    }
    assert_eq!(build.tables.len(), 3);
}

/// The chain dump of a read during the same transaction: `input` and `other` of the old
/// table, then those of the new one, all filed under the one table of that name.
#[test]
fn a_chain_listed_twice_in_one_table_means_the_ruleset_changed() {
    let mut build = Build::default();
    build
        .table(Family::Inet, Attrs::new(&table_msg("t", 0)))
        .expect("a table");
    build
        .table(Family::Inet, Attrs::new(&table_msg("u", 0)))
        .expect("another table");
    for (table, name) in [("t", "input"), ("t", "other"), ("u", "input")] {
        build
            .chain(Family::Inet, Attrs::new(&chain_msg(table, name)))
            .expect("a chain of its own name in its table");
    }
    assert!(interrupted(
        build.chain(Family::Inet, Attrs::new(&chain_msg("t", "input")))
    ));
}

#[test]
fn a_chain_of_a_table_not_listed_means_the_ruleset_changed() {
    let mut build = Build::default();
    build
        .chain(Family::Inet, Attrs::new(&chain_msg("t", "c")))
        .expect("not an error");
    assert!(build.changed);
}

#[test]
fn a_set_or_counter_listed_twice_means_the_ruleset_changed() {
    let mut build = Build::default();
    build
        .table(Family::Inet, Attrs::new(&table_msg("t", 0)))
        .expect("a table");
    build.leave(|_, _| false);
    build
        .set(Family::Inet, Attrs::new(&set_msg("t", "s")))
        .expect("a set");
    build
        .object(Family::Inet, Attrs::new(&counter_msg("t", "s")))
        .expect("a counter may be named like a set");
    assert!(interrupted(
        build.set(Family::Inet, Attrs::new(&set_msg("t", "s")))
    ));
    assert!(interrupted(
        build.object(Family::Inet, Attrs::new(&counter_msg("t", "s")))
    ));
    // Of a table the read left out: not read, not a change.
    build
        .set(Family::Ipv6, Attrs::new(&set_msg("t", "s")))
        .expect("ignored");
}

/// A rule dump that walked a chain while `nft replace rule` committed: the old rule and
/// its replacement, which keeps the handle.
#[test]
fn a_rule_handle_listed_twice_in_one_chain_means_the_ruleset_changed() {
    let (mut rules, mut handles) = (Vec::new(), HashSet::new());
    for handle in [4, 2] {
        push_rule(&mut rules, &mut handles, Attrs::new(&rule_msg(handle)))
            .expect("distinct handles");
    }
    assert_eq!(
        rules
            .iter()
            .map(|r| (r.position, r.handle))
            .collect::<Vec<_>>(),
        [(1, Some(4)), (2, Some(2))]
    );
    assert!(interrupted(push_rule(
        &mut rules,
        &mut handles,
        Attrs::new(&rule_msg(4))
    )));
}

#[test]
fn dormant_tables_are_left_out_of_native_reads_only() {
    let mut build = Build::default();
    for (name, flags) in [("on", 0), ("off", table_flags::DORMANT)] {
        build
            .table(Family::Ipv4, Attrs::new(&table_msg(name, flags)))
            .expect("a table");
    }
    let native = Tables::Native {
        leave_to_iptables: Vec::new(),
    };
    build.leave(|t, dormant| left_out(&native, t, dormant));
    let names: Vec<&str> = build.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["on"]);

    // iptables-save prints a dormant filter table in full; so does the iptables read.
    let mut build = Build::default();
    build
        .table(
            Family::Ipv4,
            Attrs::new(&table_msg("filter", table_flags::DORMANT)),
        )
        .expect("a table");
    build.leave(|t, dormant| left_out(&Tables::IptablesNft(Family::Ipv4), t, dormant));
    assert_eq!(build.tables.len(), 1);
}
