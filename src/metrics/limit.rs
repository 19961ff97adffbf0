//! `--max-series`: which series of a source's publication are kept when there are more than
//! the limit. Prometheus's own guard, `sample_limit`, fails the whole scrape; this one drops
//! the finest series first, whole chains at a time, so that a node over the limit still shows
//! its chains and its health.
//!
//! The droppable series are those of [`Step`]: per-rule, then per-comment, then the series of
//! user-defined (non-base) chains. Within a step, chains go in order of their rule count,
//! largest first, ties broken by table and chain name, so that the same ruleset always keeps
//! the same series. The last chain a step drops from may keep its first series.

use std::collections::HashMap;

use crate::ruleset::{Chain, Table};

/// The steps in which series are dropped, first to last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Step {
    /// `*_rule_{bytes,packets}_total`, `nftables_rule_*`, `ipset_member_*`.
    Rule,
    /// `*_comment_{bytes,packets}_total`.
    Comment,
    /// User-defined chains' `*_chain_{bytes,packets}_total` and `*_rules_total`; nftables
    /// non-base chains' `nftables_chain_rules`.
    Chain,
}

/// A chain's series of one step (an ipset set's member series count as a chain's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unit<'a> {
    pub(super) step: Step,
    pub(super) table: &'a str,
    pub(super) chain: &'a str,
    /// Rules in the chain (members in the set): larger chains are dropped first.
    pub(super) rules: usize,
    /// Series it writes.
    pub(super) series: usize,
    /// Series that go together (a bytes and packets pair): it is cut by whole groups.
    pub(super) grain: usize,
}

impl<'a> Unit<'a> {
    /// The series of `step` that `chain` of `table` writes.
    pub(super) fn of(
        step: Step,
        table: &'a Table,
        chain: &'a Chain,
        series: usize,
        grain: usize,
    ) -> Self {
        Unit {
            step,
            table: &table.name,
            chain: &chain.name,
            rules: chain.rules.len(),
            series,
            grain,
        }
    }
}

/// What a source's publication keeps of its droppable series.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    /// Series kept of the units that lose some; the others keep all of theirs.
    cut: HashMap<(Step, &'a str, &'a str), usize>,
    /// Droppable series kept.
    pub(super) kept: usize,
    /// Droppable series dropped.
    pub(super) dropped: usize,
}

impl Plan<'_> {
    /// The series `unit` keeps when it would write `series`.
    pub(super) fn keep(&self, step: Step, table: &str, chain: &str, series: usize) -> usize {
        self.cut
            .get(&(step, table, chain))
            .map_or(series, |&kept| kept.min(series))
    }
}

/// Which series of `units` to keep so that at most `max` are written; 0 keeps all.
pub(super) fn plan(mut units: Vec<Unit<'_>>, max: usize) -> Plan<'_> {
    let total: usize = units.iter().map(|u| u.series).sum();
    if max == 0 || total <= max {
        return Plan {
            kept: total,
            ..Plan::default()
        };
    }
    units.sort_by(|a, b| {
        (a.step, std::cmp::Reverse(a.rules), a.table, a.chain).cmp(&(
            b.step,
            std::cmp::Reverse(b.rules),
            b.table,
            b.chain,
        ))
    });
    let mut excess = total - max;
    let mut plan = Plan::default();
    for unit in units {
        if excess == 0 {
            break;
        }
        let grain = unit.grain.max(1);
        // Whole groups, enough to cover what is still over the limit.
        let drop = excess
            .div_ceil(grain)
            .saturating_mul(grain)
            .min(unit.series);
        plan.cut
            .insert((unit.step, unit.table, unit.chain), unit.series - drop);
        plan.dropped += drop;
        excess = excess.saturating_sub(drop);
    }
    plan.kept = total - plan.dropped;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(step: Step, chain: &'static str, rules: usize, series: usize) -> Unit<'static> {
        Unit {
            step,
            table: "filter",
            chain,
            rules,
            series,
            grain: 2,
        }
    }

    #[test]
    fn under_the_limit_everything_is_kept() {
        let units = vec![unit(Step::Rule, "A", 3, 6), unit(Step::Rule, "B", 1, 2)];
        let plan = plan(units, 8);
        assert_eq!((plan.kept, plan.dropped), (8, 0));
        assert_eq!(plan.keep(Step::Rule, "filter", "A", 6), 6);
        let unlimited = super::plan(vec![unit(Step::Rule, "A", 3, 6)], 0);
        assert_eq!((unlimited.kept, unlimited.dropped), (6, 0));
    }

    #[test]
    fn the_largest_chain_of_the_first_step_goes_first_and_the_last_is_cut_partway() {
        let units = vec![
            unit(Step::Chain, "A", 3, 2),
            unit(Step::Rule, "SMALL", 1, 2),
            unit(Step::Rule, "BIG", 5, 10),
            unit(Step::Comment, "BIG", 5, 4),
        ];
        // 18 series, at most 7: BIG's rules (10) go whole, then SMALL's pair is one over.
        let plan = plan(units, 7);
        assert_eq!(plan.keep(Step::Rule, "filter", "BIG", 10), 0);
        assert_eq!(plan.keep(Step::Rule, "filter", "SMALL", 2), 0);
        assert_eq!(plan.keep(Step::Comment, "filter", "BIG", 4), 4);
        assert_eq!((plan.kept, plan.dropped), (6, 12));
        // At most 9: BIG's rules lose 9 series, rounded to whole pairs: 10.
        let plan = super::plan(
            vec![
                unit(Step::Rule, "BIG", 5, 10),
                unit(Step::Comment, "BIG", 5, 8),
            ],
            9,
        );
        assert_eq!(plan.keep(Step::Rule, "filter", "BIG", 10), 0);
        assert_eq!((plan.kept, plan.dropped), (8, 10));
        // At most 14: BIG's rules lose 4 series and keep their first 6.
        let plan = super::plan(
            vec![
                unit(Step::Rule, "BIG", 5, 10),
                unit(Step::Comment, "BIG", 5, 8),
            ],
            14,
        );
        assert_eq!(plan.keep(Step::Rule, "filter", "BIG", 10), 6);
        assert_eq!((plan.kept, plan.dropped), (14, 4));
    }

    #[test]
    fn ties_go_by_table_then_chain_name_whatever_the_input_order() {
        let forward = vec![unit(Step::Rule, "B", 2, 4), unit(Step::Rule, "A", 2, 4)];
        let backward = vec![unit(Step::Rule, "A", 2, 4), unit(Step::Rule, "B", 2, 4)];
        for units in [forward, backward] {
            let plan = plan(units, 4);
            assert_eq!(plan.keep(Step::Rule, "filter", "A", 4), 0);
            assert_eq!(plan.keep(Step::Rule, "filter", "B", 4), 4);
        }
    }
}
