//! Which nf_tables tables are iptables-nft's: those `iptables-save` prints in full, so
//! that the iptables sources export them and the nftables source must not count them a
//! second time.
//!
//! `iptables-save` (nf_tables backend) prints a table of family ip or ip6 with one of
//! the xtables names when each of its base chains is a built-in chain of that table with
//! the type, hook and priority iptables-nft gives it. For any other base chain it warns
//! that the table is incompatible, and then (1.8.9) still prints the table's built-in
//! chains as it imagines them, empty; the iptables-save parser leaves a table so marked
//! out. So exactly the tables that pass that test are left to the iptables sources,
//! whatever expressions their rules hold; every other table, also a native `table ip
//! filter` or `table ip nat` of an nft user, is the nftables source's.

use crate::ruleset::{ChainType, Family, Hook, Table};

/// True when `iptables-save` prints `table` in full.
pub fn is_iptables_nft(table: &Table) -> bool {
    if !matches!(table.family, Family::Ipv4 | Family::Ipv6) {
        return false;
    }
    let Some(builtins) = builtin_chains(&table.name) else {
        return false;
    };
    table.chains.iter().all(|chain| {
        let Some(base) = &chain.base else {
            return true;
        };
        builtins.iter().any(|&(name, chain_type, hook, priority)| {
            chain.name == name
                && base.chain_type == Some(chain_type)
                && base.hook == Some(hook)
                && base.priority == Some(priority)
        })
    })
}

/// A built-in chain: name, type, hook, priority.
pub(crate) type Builtin = (&'static str, ChainType, Hook, i32);

/// The built-in chains of an xtables table, as iptables-nft creates them (the
/// priorities are the kernel's `NF_IP_PRI_*`, the same for IPv6).
pub(crate) fn builtin_chains(table: &str) -> Option<&'static [Builtin]> {
    use ChainType::{Filter, Nat, Route};
    use Hook::{Forward, Input, Output, Postrouting, Prerouting};
    Some(match table {
        "raw" => &[
            ("PREROUTING", Filter, Prerouting, -300),
            ("OUTPUT", Filter, Output, -300),
        ],
        "mangle" => &[
            ("PREROUTING", Filter, Prerouting, -150),
            ("INPUT", Filter, Input, -150),
            ("FORWARD", Filter, Forward, -150),
            ("OUTPUT", Route, Output, -150),
            ("POSTROUTING", Filter, Postrouting, -150),
        ],
        "filter" => &[
            ("INPUT", Filter, Input, 0),
            ("FORWARD", Filter, Forward, 0),
            ("OUTPUT", Filter, Output, 0),
        ],
        "nat" => &[
            ("PREROUTING", Nat, Prerouting, -100),
            ("INPUT", Nat, Input, 100),
            ("OUTPUT", Nat, Output, -100),
            ("POSTROUTING", Nat, Postrouting, 100),
        ],
        "security" => &[
            ("INPUT", Filter, Input, 50),
            ("FORWARD", Filter, Forward, 50),
            ("OUTPUT", Filter, Output, 50),
        ],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ruleset::{BaseChain, Chain, Policy};

    /// A chain's name, and its type, hook and priority when it is a base chain.
    type Spec<'a> = (&'a str, Option<(ChainType, Hook, i32)>);

    fn table(family: Family, name: &str, chains: &[Spec<'_>]) -> Table {
        let mut table = Table::new(family, name);
        table.chains = chains
            .iter()
            .map(|&(name, base)| Chain {
                name: name.to_owned(),
                base: base.map(|(chain_type, hook, priority)| BaseChain {
                    hook: Some(hook),
                    policy: Policy::Accept,
                    counters: Default::default(),
                    chain_type: Some(chain_type),
                    priority: Some(priority),
                }),
                rules: Vec::new(),
            })
            .collect();
        table
    }

    #[test]
    fn iptables_nft_tables_are_recognised() {
        let nat = table(
            Family::Ipv4,
            "nat",
            &[
                ("PREROUTING", Some((ChainType::Nat, Hook::Prerouting, -100))),
                ("KUBE-SERVICES", None),
            ],
        );
        assert!(is_iptables_nft(&nat));
        let mangle = table(
            Family::Ipv6,
            "mangle",
            &[("OUTPUT", Some((ChainType::Route, Hook::Output, -150)))],
        );
        assert!(is_iptables_nft(&mangle));
        assert!(is_iptables_nft(&table(Family::Ipv4, "filter", &[])));
    }

    #[test]
    fn native_tables_are_not() {
        let lowercase = table(
            Family::Ipv4,
            "filter",
            &[("input", Some((ChainType::Filter, Hook::Input, 0)))],
        );
        assert!(
            !is_iptables_nft(&lowercase),
            "a chain name iptables does not know"
        );
        let priority = table(
            Family::Ipv4,
            "filter",
            &[("INPUT", Some((ChainType::Filter, Hook::Input, 10)))],
        );
        assert!(!is_iptables_nft(&priority), "another priority");
        let hook = table(
            Family::Ipv4,
            "filter",
            &[("INPUT", Some((ChainType::Filter, Hook::Output, 0)))],
        );
        assert!(!is_iptables_nft(&hook), "another hook");
        assert!(
            !is_iptables_nft(&table(Family::Inet, "filter", &[])),
            "inet"
        );
        assert!(
            !is_iptables_nft(&table(Family::Ipv4, "firewall", &[])),
            "not an xtables name"
        );
    }
}
