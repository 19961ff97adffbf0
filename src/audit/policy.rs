//! When the running audit tells Kubernetes something, as a pure state machine: the label
//! at start and whenever the wanted value changes (again on the next check when setting
//! it failed), never `false` from a check that could not list every table; an event
//! when unexpected lines appear and when the BPF map's blocked count rises (kept for the
//! next check when it could not be created); and whether `--terminate-on-success` may
//! end the audit. The requests themselves are [`super::kube`]'s.

use super::{Changes, Check, Verdict};

/// The event reasons, as the original names them.
pub const UNEXPECTED_RULES: &str = "UnexpectedIPTablesRules";
/// The reason of the event for blocked attempts.
pub const BLOCKED_RULE: &str = "BlockedIPTablesRule";

/// What to do after one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Set the label to this value.
    pub label: Option<bool>,
    /// Create an `UnexpectedIPTablesRules` event about this many new unexpected lines.
    pub unexpected_event: Option<usize>,
    /// Create a `BlockedIPTablesRule` event about this many blocked attempts.
    pub blocked_event: Option<u64>,
}

/// What the audit has told Kubernetes so far.
#[derive(Debug, Default)]
pub struct Policy {
    events: bool,
    /// The label's value as last set successfully; `None` before the first success.
    applied: Option<bool>,
    /// New unexpected lines whose event is still to be created.
    unexpected_pending: usize,
    /// Blocked attempts whose event is still to be created.
    blocked_pending: u64,
}

impl Policy {
    /// A policy for an audit that creates events when `events` is set.
    pub fn new(events: bool) -> Policy {
        Policy {
            events,
            ..Policy::default()
        }
    }

    /// The label a check asks for: `true` when it found unexpected lines (even if another
    /// family failed: those lines are there), `false` only when it listed everything and
    /// found none, nothing when it failed without finding any.
    pub fn wanted_label(check: &Check) -> Option<bool> {
        if check.unexpected().next().is_some() {
            Some(true)
        } else if check.verdict() == Verdict::Clean {
            Some(false)
        } else {
            None
        }
    }

    /// What to do after `check`, whose `changes` against the last check are given, and
    /// during which the blocked count rose by `blocked_rise`.
    pub fn plan(&mut self, check: &Check, changes: &Changes, blocked_rise: Option<u64>) -> Plan {
        let label = Self::wanted_label(check).filter(|&wanted| self.applied != Some(wanted));
        if self.events {
            self.unexpected_pending += changes.appeared.len();
            // Lines that all went before their event could be created need none.
            if check.verdict() == Verdict::Clean {
                self.unexpected_pending = 0;
            }
            self.blocked_pending = self
                .blocked_pending
                .saturating_add(blocked_rise.unwrap_or(0));
        }
        Plan {
            label,
            unexpected_event: (self.unexpected_pending > 0).then_some(self.unexpected_pending),
            blocked_event: (self.blocked_pending > 0).then_some(self.blocked_pending),
        }
    }

    /// Takes in whether setting the label to `value` worked.
    pub fn label_set(&mut self, value: bool, ok: bool) {
        if ok {
            self.applied = Some(value);
        }
    }

    /// Takes in that the event of the plan with this `reason` was created.
    pub fn event_created(&mut self, reason: &str) {
        match reason {
            UNEXPECTED_RULES => self.unexpected_pending = 0,
            BLOCKED_RULE => self.blocked_pending = 0,
            _ => {}
        }
    }

    /// Whether `--terminate-on-success` may end the audit after `check`: it is clean and,
    /// when Kubernetes is told (`labelled`), the label says so.
    pub fn may_terminate(&self, check: &Check, labelled: bool) -> bool {
        check.verdict() == Verdict::Clean && (!labelled || self.applied == Some(false))
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::audit::{AuditError, FamilyCheck, TableFindings};
    use crate::source::{SourceError, SourceId};

    fn check(v4: Result<&[&str], ()>, v6: Option<Result<&[&str], ()>>) -> Check {
        let family = |source, outcome: Result<&[&str], ()>| FamilyCheck {
            source,
            outcome: outcome
                .map(|lines| {
                    vec![TableFindings {
                        table: "filter".to_owned(),
                        unexpected: lines.iter().map(|l| (*l).to_owned()).collect(),
                    }]
                })
                .map_err(|()| {
                    AuditError::Source(SourceError::NotFound {
                        command: "iptables-save".to_owned(),
                    })
                }),
        };
        let mut families = vec![family(SourceId::Iptables, v4)];
        families.extend(v6.map(|v6| family(SourceId::Ip6tables, v6)));
        Check {
            families,
            map: None,
            finished_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn appeared(n: usize) -> Changes {
        Changes {
            appeared: (0..n)
                .map(|i| (SourceId::Iptables, "filter".to_owned(), format!("-A X {i}")))
                .collect(),
            gone: Vec::new(),
        }
    }

    const CLEAN: Result<&[&str], ()> = Ok(&[]);
    const DIRTY: Result<&[&str], ()> = Ok(&["-A INPUT -j DROP"]);
    const FAILED: Result<&[&str], ()> = Err(());

    #[test]
    fn the_label_is_set_at_start_on_change_and_again_after_a_failure() {
        let mut policy = Policy::new(false);
        let none = Changes::default();
        assert_eq!(
            policy.plan(&check(CLEAN, None), &none, None).label,
            Some(false)
        );
        policy.label_set(false, false);
        assert_eq!(
            policy.plan(&check(CLEAN, None), &none, None).label,
            Some(false),
            "retried after a failure"
        );
        policy.label_set(false, true);
        assert_eq!(policy.plan(&check(CLEAN, None), &none, None).label, None);
        assert_eq!(
            policy.plan(&check(DIRTY, None), &none, None).label,
            Some(true)
        );
        policy.label_set(true, true);
        assert_eq!(policy.plan(&check(DIRTY, None), &none, None).label, None);
    }

    #[test]
    fn a_failed_check_never_labels_the_node_clean() {
        let mut policy = Policy::new(false);
        let none = Changes::default();
        policy.label_set(true, true);
        assert_eq!(policy.plan(&check(FAILED, None), &none, None).label, None);
        assert_eq!(
            policy.plan(&check(CLEAN, Some(FAILED)), &none, None).label,
            None
        );
        // Lines found in one family are there whatever the other's failure.
        let mut fresh = Policy::new(false);
        assert_eq!(
            fresh.plan(&check(DIRTY, Some(FAILED)), &none, None).label,
            Some(true)
        );
        assert!(!fresh.may_terminate(&check(CLEAN, Some(FAILED)), false));
    }

    #[test]
    fn events_when_lines_appear_and_blocks_rise_kept_until_created() {
        let mut policy = Policy::new(true);
        let plan = policy.plan(&check(DIRTY, None), &appeared(2), Some(3));
        assert_eq!(
            (plan.unexpected_event, plan.blocked_event),
            (Some(2), Some(3))
        );
        // Neither could be created: both again, with what came since.
        let plan = policy.plan(&check(DIRTY, None), &appeared(1), Some(1));
        assert_eq!(
            (plan.unexpected_event, plan.blocked_event),
            (Some(3), Some(4))
        );
        policy.event_created(UNEXPECTED_RULES);
        policy.event_created(BLOCKED_RULE);
        let plan = policy.plan(&check(DIRTY, None), &Changes::default(), None);
        assert_eq!((plan.unexpected_event, plan.blocked_event), (None, None));
        // Lines that went before their event was created need none.
        policy.plan(&check(DIRTY, None), &appeared(1), None);
        let plan = policy.plan(&check(CLEAN, None), &Changes::default(), None);
        assert_eq!(plan.unexpected_event, None);
        // Without --events, never.
        let mut quiet = Policy::new(false);
        let plan = quiet.plan(&check(DIRTY, None), &appeared(2), Some(3));
        assert_eq!((plan.unexpected_event, plan.blocked_event), (None, None));
    }

    #[test]
    fn terminate_on_success_waits_for_the_label() {
        let mut policy = Policy::new(false);
        let clean = check(CLEAN, None);
        assert!(policy.may_terminate(&clean, false), "no Kubernetes");
        assert!(!policy.may_terminate(&clean, true), "label not set yet");
        policy.label_set(false, false);
        assert!(!policy.may_terminate(&clean, true), "setting it failed");
        policy.label_set(false, true);
        assert!(policy.may_terminate(&clean, true));
        assert!(!policy.may_terminate(&check(DIRTY, None), true));
        assert!(!policy.may_terminate(&check(FAILED, None), false));
    }
}
