//! A source's read and what becomes of it: the read itself, then the parse, the logging of
//! what is new, and the source's families, kept as its state.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Collector, Dump, Selection, SourceState};
use crate::error_chain::Chain;
use crate::metrics::{self, SeriesCount, SourceReport};
use crate::ruleset::Ruleset;
use crate::source::{self, Limits, Presence, Reading, SourceError, SourceId};

impl Collector {
    /// The read of `id` through its source; with the automatic selection, a source
    /// that [`Source::asks_first`] is asked whether this host has anything for it first.
    pub(super) fn dump(
        &self,
        id: SourceId,
    ) -> impl Future<Output = Result<Dump, SourceError>> + Send + 'static {
        let limits = Limits {
            timeout: self.config.timeout,
            max_output_bytes: self.config.max_output_bytes,
        };
        let source = self.registry.get(&id).map(Arc::clone);
        let auto = self.config.selection == Selection::Auto;
        async move {
            let Some(source) = source else {
                return Err(SourceError::Internal {
                    command: id.reader().to_owned(),
                    reason: "the source is not in the registry".to_owned(),
                });
            };
            if auto && source.asks_first() {
                let asked = Arc::clone(&source);
                let presence =
                    source::blocking(id, move || Ok(asked.presence(limits.timeout))).await?;
                if presence != Presence::Present {
                    return Ok(Dump::Skipped(presence));
                }
            }
            source.read(limits).await.map(Dump::Read)
        }
    }

    /// Turns the dump command's `result` into `id`'s new state: parses, logs what is
    /// new, renders the source's families. Runs on a thread for blocking work.
    pub(super) fn process(
        &self,
        id: SourceId,
        result: Result<Dump, SourceError>,
        started: Instant,
    ) {
        let auto = self.config.selection == Selection::Auto;
        if let Err(e) = &result {
            tracing::debug!(source = %id, error = %Chain(&e), "dump command failed");
        }
        self.lock_sources().unknown.remove(&id);
        let outcome = match result {
            Ok(Dump::Read(reading)) => Ok(reading),
            Ok(Dump::Skipped(presence)) => return self.skip(id, presence),
            // A missing dump command leaves the source out only when it would have had
            // nothing to read: with tables in the kernel, the failure is the user's to see.
            Err(e @ SourceError::NotFound { .. }) if auto => {
                let presence = self
                    .registry
                    .get(&id)
                    .map(|s| s.presence(self.config.timeout));
                match presence.unwrap_or(Presence::Absent) {
                    Presence::Present => Err(e),
                    presence => return self.skip(id, presence),
                }
            }
            Err(e) => Err(e),
        };
        // A source that keeps failing says so once, again when its error changes, and
        // once more when it recovers; a failing command's stderr can be long.
        let failure = outcome.as_ref().err().map(|e| Chain(e).to_string());
        let was_failing = self.logged.is_set((Some(id), "failure"));
        match self.logged.once((Some(id), "failure"), failure) {
            Some(error) => tracing::warn!(source = %id, %error, "collection failed"),
            None if was_failing && outcome.is_ok() => {
                tracing::info!(source = %id, "collection succeeded again");
            }
            None => {}
        }
        if auto && outcome.as_ref().is_ok_and(|r| r.ruleset.is_empty()) {
            self.remove(id);
            return;
        }
        if let Ok(reading) = &outcome {
            self.log_reading(id, reading);
        }
        let mut report = SourceReport {
            source: id,
            outcome,
            duration: started.elapsed(),
            finished_at: SystemTime::now(),
            series: None,
        };
        report.series = metrics::series(&report, &self.config.metrics);
        self.log_series(id, report.series);
        let fragment = metrics::render_source(&report, &self.config.metrics, self.config.storage);
        // Publications render the accounting view over every source's snapshot; the rest
        // of a snapshot (tens of MB at 100k rules) is not kept until the next collection.
        if let Ok(reading) = &mut report.outcome {
            let accounting = &self.config.accounting;
            reading.keep_only(|table, chain| accounting.reads(id, table, chain));
        }
        self.replace(id, SourceState { report, fragment });
    }

    /// Logs what a read of `id` noticed: a ruleset that changed while read, warnings
    /// of the dump command, invalid UTF-8, lines the parser did not understand.
    fn log_reading(&self, id: SourceId, reading: &Reading) {
        if reading.attempts > 1 {
            tracing::debug!(source = %id, attempts = reading.attempts, "the ruleset changed during a read; read again");
        }
        // Some iptables versions warn on every run: say it once, again if it changes.
        let stderr = (!reading.stderr.is_empty()).then(|| reading.stderr.clone());
        if let Some(stderr) = self.logged.once((Some(id), "stderr"), stderr) {
            tracing::warn!(source = %id, stderr = %stderr, "dump command wrote to stderr");
        }
        self.log_invalid_utf8(id, reading.invalid_utf8_lines);
        self.log_new_unparsed(id, &reading.ruleset);
    }

    /// Logs once that `id`'s publication drops series to stay under `--max-series`, and
    /// once when it no longer does.
    fn log_series(&self, id: SourceId, series: Option<SeriesCount>) {
        // No count in the message: it is said when dropping starts, not for every new count.
        let dropping = series.filter(|s| s.dropped > 0).map(|_| {
            format!(
                "series over --max-series {} are dropped, finest first (netfilter_exporter_series_dropped)",
                self.config.metrics.max_series
            )
        });
        let was_dropping = self.logged.is_set((Some(id), "series"));
        let stopped = was_dropping && dropping.is_none();
        // A limit the operator set working as set: worth a line, not a warning.
        if let Some(message) = self.logged.once((Some(id), "series"), dropping) {
            tracing::info!(source = %id, "{message}");
        }
        if stopped {
            tracing::info!(source = %id, "no series dropped any more (--max-series)");
        }
    }

    /// Makes `id`'s state a failed collection with `error` that took `duration`.
    pub(super) fn fail(&self, id: SourceId, error: SourceError, duration: Duration) {
        let report = SourceReport {
            source: id,
            outcome: Err(error),
            duration,
            finished_at: SystemTime::now(),
            series: None,
        };
        // Two lines of fixed text: what the failed collection shows instead.
        let fragment = metrics::render_source(&report, &self.config.metrics, self.config.storage);
        self.replace(id, SourceState { report, fragment });
    }

    /// Logs each bad line once, not on every collection that still finds it, and at most
    /// [`UNPARSED_LOGGED`] of them per collection: a dump of garbage must not flood the log.
    pub(super) fn log_new_unparsed(&self, id: SourceId, ruleset: &Ruleset) {
        let lines = ruleset.unparsed.iter().map(|u| u.to_string());
        let fresh = self.logged.new_messages((Some(id), "unparsed"), lines);
        let (shown, more) = first_of(fresh, UNPARSED_LOGGED);
        for line in shown {
            tracing::warn!(source = %id, "unparsed {line}");
        }
        if more > 0 {
            tracing::warn!(source = %id, "and {more} more unparsed lines");
        }
    }

    /// Logs that a dump held invalid UTF-8 when that appears or its count changes, not
    /// on every collection that still finds the same rule.
    pub(super) fn log_invalid_utf8(&self, id: SourceId, lines: usize) {
        let message = (lines > 0).then(|| {
            format!("{lines} lines of the dump are not valid UTF-8; read with U+FFFD in place of the invalid bytes")
        });
        if let Some(message) = self.logged.once((Some(id), "invalid UTF-8"), message) {
            tracing::warn!(source = %id, "{message}");
        }
    }

    /// Leaves `id` out of the publications (automatic selection) for what its
    /// `presence` says, noting the sources whose presence the host does not tell.
    pub(super) fn skip(&self, id: SourceId, presence: Presence) {
        self.remove(id);
        let unknown = match presence {
            Presence::Unknown(why) => Some(why),
            Presence::Present | Presence::Absent => None,
        };
        let known = unknown.is_none();
        if let Some(why) = self.logged.once((Some(id), "unknown"), unknown) {
            tracing::warn!(source = %id, reason = %why, "cannot tell whether the source has tables; it is not read (netfilter_exporter_source_unknown)");
        }
        let mut sources = self.lock_sources();
        if known {
            sources.unknown.remove(&id);
        } else {
            sources.unknown.insert(id);
        }
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
