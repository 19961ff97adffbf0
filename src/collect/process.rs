//! A source's read and what becomes of it: the read itself, then the parse, the logging of
//! what is new, and the source's families, kept as its state.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Collector, Dump, Selection, SourceState};
use crate::accounting::Origin;
use crate::error_chain::Chain;
use crate::metrics::{self, Collected, SourceReport};
use crate::ruleset::{Family, Ruleset};
use crate::source::iptables_nft;
use crate::source::{CommandOutput, Limits, Presence, Reading, SourceError, Target, iptables_save};

impl Collector {
    /// The read of `target` through its source; with the automatic selection, a source
    /// that [`Source::asks_first`] is asked whether this host has anything for it first.
    pub(super) fn dump(
        &self,
        target: Target,
    ) -> impl Future<Output = Result<Dump, SourceError>> + Send + 'static {
        let limits = Limits {
            timeout: self.config.timeout,
            max_output_bytes: self.config.max_output_bytes,
        };
        let source = self.registry.get(&target).map(Arc::clone);
        let auto = self.config.selection == Selection::Auto;
        async move {
            let Some(source) = source else {
                return Err(SourceError::Internal {
                    command: target.reader().to_owned(),
                    reason: "the source is not in the registry".to_owned(),
                });
            };
            if auto && source.asks_first() {
                let presence = source.presence(limits.timeout);
                if presence != Presence::Present {
                    return Ok(Dump::Skipped(presence));
                }
            }
            source.read(limits).await.map(Dump::Read)
        }
    }

    /// Turns the dump command's `result` into `target`'s new state: parses, logs what is
    /// new, renders the source's families. Runs on a thread for blocking work.
    pub(super) fn process(
        &self,
        target: Target,
        result: Result<Dump, SourceError>,
        started: Instant,
    ) {
        let auto = self.config.selection == Selection::Auto;
        if let Err(e) = &result {
            tracing::debug!(source = %target, error = %Chain(&e), "dump command failed");
        }
        self.lock_sources().unknown.remove(&target);
        let outcome = match result {
            Ok(Dump::Read(Reading::Snapshot(snapshot))) => {
                if snapshot.attempts > 1 {
                    tracing::debug!(source = %target, attempts = snapshot.attempts, "the ruleset changed during a read; read again");
                }
                Ok(Collected::new(snapshot.ruleset))
            }
            Ok(Dump::Read(Reading::Iptables(iptables_nft::Collection::Netlink(
                ruleset,
                stats,
            )))) => Ok(Collected {
                text_stats: Some(stats),
                ..Collected::new(ruleset)
            }),
            Ok(Dump::Read(Reading::Iptables(iptables_nft::Collection::Saved {
                output,
                parsed,
                stats,
            }))) => Ok(Collected {
                text_stats: stats,
                ..self.parse_output(target, output, parsed)
            }),
            Ok(Dump::Read(Reading::Text(output))) => Ok(self.parse_output(target, output, None)),
            Ok(Dump::Read(Reading::Sets(sets))) => Ok(Collected::new(Ruleset {
                ipsets: sets,
                ..Ruleset::default()
            })),
            Ok(Dump::Skipped(presence)) => return self.skip(target, presence),
            // A missing dump command leaves the source out only when it would have had
            // nothing to read: with tables in the kernel, the failure is the user's to see.
            Err(e @ SourceError::NotFound { .. }) if auto => {
                let presence = self
                    .registry
                    .get(&target)
                    .map(|s| s.presence(self.config.timeout));
                match presence.unwrap_or(Presence::Absent) {
                    Presence::Present => Err(e),
                    presence => return self.skip(target, presence),
                }
            }
            Err(e) => Err(e),
        };
        // A source that keeps failing says so once, again when its error changes, and
        // once more when it recovers; a failing command's stderr can be long.
        let failure = outcome.as_ref().err().map(|e| Chain(e).to_string());
        let was_failing = self.logged.is_set((Some(target), "failure"));
        match self.logged.once((Some(target), "failure"), failure) {
            Some(error) => tracing::warn!(source = %target, %error, "collection failed"),
            None if was_failing && outcome.is_ok() => {
                tracing::info!(source = %target, "collection succeeded again");
            }
            None => {}
        }
        if auto && outcome.as_ref().is_ok_and(|c| c.ruleset.is_empty()) {
            self.remove(target);
            return;
        }
        if let Ok(collected) = &outcome {
            self.log_new_unparsed(target, &collected.ruleset);
        }
        let mut report = SourceReport {
            target,
            outcome,
            duration: started.elapsed(),
            finished_at: SystemTime::now(),
        };
        let fragment = metrics::render_source(&report, &self.config.metrics, self.config.storage);
        // Publications render the accounting view over every source's snapshot; the rest
        // of a snapshot (tens of MB at 100k rules) is not kept until the next collection.
        if let Ok(collected) = &mut report.outcome {
            let accounting = &self.config.accounting;
            let origin = origin(target);
            collected.keep_only(|table, chain| accounting.reads(origin, table, chain));
        }
        self.replace(target, SourceState { report, fragment });
    }

    /// Parses the output of `target`'s save command (unless `parsed` is its parse
    /// already), logging what it wrote to stderr and its invalid UTF-8.
    pub(super) fn parse_output(
        &self,
        target: Target,
        output: CommandOutput,
        parsed: Option<Ruleset>,
    ) -> Collected {
        // Some iptables versions warn on every run: say it once, again if it changes.
        let stderr = (!output.stderr.is_empty()).then(|| output.stderr.clone());
        if let Some(stderr) = self.logged.once((Some(target), "stderr"), stderr) {
            tracing::warn!(source = %target, stderr = %stderr, "dump command wrote to stderr");
        }
        self.log_invalid_utf8(target, output.invalid_utf8_lines);
        let family = target.family().unwrap_or(Family::Ipv4);
        Collected {
            invalid_utf8_lines: output.invalid_utf8_lines,
            ..Collected::new(parsed.unwrap_or_else(|| iptables_save::parse(family, &output.stdout)))
        }
    }

    /// Makes `target`'s state a failed collection with `error` that took `duration`.
    pub(super) fn fail(&self, target: Target, error: SourceError, duration: Duration) {
        let report = SourceReport {
            target,
            outcome: Err(error),
            duration,
            finished_at: SystemTime::now(),
        };
        // Two lines of fixed text: what the failed collection shows instead.
        let fragment = metrics::render_source(&report, &self.config.metrics, self.config.storage);
        self.replace(target, SourceState { report, fragment });
    }

    /// Logs each bad line once, not on every collection that still finds it, and at most
    /// [`UNPARSED_LOGGED`] of them per collection: a dump of garbage must not flood the log.
    pub(super) fn log_new_unparsed(&self, target: Target, ruleset: &Ruleset) {
        let lines = ruleset.unparsed.iter().map(|u| u.to_string());
        let fresh = self.logged.new_messages((Some(target), "unparsed"), lines);
        let (shown, more) = first_of(fresh, UNPARSED_LOGGED);
        for line in shown {
            tracing::warn!(source = %target, "unparsed {line}");
        }
        if more > 0 {
            tracing::warn!(source = %target, "and {more} more unparsed lines");
        }
    }

    /// Logs that a dump held invalid UTF-8 when that appears or its count changes, not
    /// on every collection that still finds the same rule.
    pub(super) fn log_invalid_utf8(&self, target: Target, lines: usize) {
        let message = (lines > 0).then(|| {
            format!("{lines} lines of the dump are not valid UTF-8; read with U+FFFD in place of the invalid bytes")
        });
        if let Some(message) = self.logged.once((Some(target), "invalid UTF-8"), message) {
            tracing::warn!(source = %target, "{message}");
        }
    }

    /// Leaves `target` out of the publications (automatic selection) for what its
    /// `presence` says, noting the sources whose presence the host does not tell.
    pub(super) fn skip(&self, target: Target, presence: Presence) {
        self.remove(target);
        let unknown = match presence {
            Presence::Unknown(why) => Some(why),
            Presence::Present | Presence::Absent => None,
        };
        let known = unknown.is_none();
        if let Some(why) = self.logged.once((Some(target), "unknown"), unknown) {
            tracing::warn!(source = %target, reason = %why, "cannot tell whether the source has tables; it is not read (netfilter_exporter_source_unknown)");
        }
        let mut sources = self.lock_sources();
        if known {
            sources.unknown.remove(&target);
        } else {
            sources.unknown.insert(target);
        }
    }
}

/// The kind of source `target` is, for the accounting view.
pub(super) fn origin(target: Target) -> Origin {
    match target {
        Target::Nftables => Origin::Nftables,
        _ => Origin::Iptables,
    }
}

/// Most new unparsed lines logged after one collection; the metric counts them all.
pub(super) const UNPARSED_LOGGED: usize = 20;

/// The first `n` of `messages`, and how many more there were.
pub(super) fn first_of(mut messages: Vec<String>, n: usize) -> (Vec<String>, usize) {
    let more = messages.len().saturating_sub(n);
    messages.truncate(n);
    (messages, more)
}
