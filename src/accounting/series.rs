//! Series keyed by a label set, shared by the label-comment and rule-parameter grammars.
//!
//! Prometheus requires every series of a family to have a distinct label set, and users
//! expect one family to carry one set of label names. This collector enforces both, sums
//! the same rule reported by two sources of one family, and reports everything else.

use std::collections::HashMap;

use super::{Located, Problem};
use crate::ruleset::{Counters, Family};

/// One series: its labels (sorted by name) and summed counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Series {
    /// Label pairs, sorted by name.
    pub(super) labels: Vec<(String, String)>,
    /// Counters of the rule (summed over sources of one family).
    pub(super) counters: Counters,
}

/// The series of one family of metrics, and the problems met while building them.
#[derive(Debug, Default)]
pub(super) struct SeriesSet {
    /// Series in order of first appearance.
    pub(super) series: Vec<Series>,
    /// Rules left out.
    pub(super) problems: Vec<Problem>,
    /// For each label set: its series, and the family and source that created it.
    index: HashMap<Vec<(String, String)>, (usize, Family, usize)>,
}

impl SeriesSet {
    /// Adds a rule's series; `labels` must be sorted by name. A rule whose label names
    /// differ from those of the first series, or whose label set is already taken in the
    /// same source or by the other family, is reported and left out.
    pub(super) fn add(&mut self, located: &Located<'_>, labels: Vec<(String, String)>) {
        if let Some(first) = self.series.first() {
            let names = |l: &[(String, String)]| l.iter().map(|(n, _)| n.clone()).collect();
            let expected: Vec<String> = names(&first.labels);
            let got: Vec<String> = names(&labels);
            if expected != got {
                self.problems.push(located.problem(format!(
                    "label names {got:?} differ from {expected:?} of the first rule of the family; rule left out"
                )));
                return;
            }
        }
        match self.index.get(&labels) {
            None => {
                self.index.insert(
                    labels.clone(),
                    (self.series.len(), located.family, located.index),
                );
                self.series.push(Series {
                    labels,
                    counters: located.rule.counters,
                });
            }
            // The same rule seen through a second source of the family: summed.
            Some(&(i, family, index)) if family == located.family && index != located.index => {
                self.series[i].counters += located.rule.counters;
            }
            Some(_) => {
                self.problems.push(located.problem(format!(
                    "label set {} is already taken by an earlier rule; rule left out",
                    display(&labels)
                )));
            }
        }
    }
}

/// `{a="b",c="d"}` for messages.
fn display(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(","))
}
