//! Publications: every source's last state rendered, off the I/O threads, into one
//! exposition with the accounting view and the audit's families, and sent in order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::task::JoinError;

use super::schedule::Pace;
use super::{AccountingRender, Collector, Publication, SourceState};
use crate::error_chain::Chain;
use crate::exposition::{Exposition, ExpositionBuilder};
use crate::metrics::{self, SourceReport};
use crate::ruleset::Ruleset;
use crate::source::{SourceError, SourceId};

impl Collector {
    /// Renders a publication from the last state of every source, off the I/O threads,
    /// and sends it. A panic while rendering is a failed collection of `triggers` (the
    /// sources whose collection this publication follows): their states become failed
    /// reports, and the publication is rendered again without the accounting view, the
    /// one part that reads the rules of every source.
    pub(super) async fn publish(
        self: &Arc<Self>,
        triggers: &[SourceId],
        render_accounting: AccountingRender,
    ) -> Arc<Publication> {
        let _in_order = self.publishing.lock().await;
        let publication = match self.render_off_thread(Some(render_accounting)).await {
            Ok(publication) => publication,
            // The runtime is shutting down and never ran the rendering: no bug, and nobody
            // reads a new publication any more.
            Err(e) if e.is_cancelled() => return Arc::clone(&self.publications.borrow()),
            Err(e) => {
                tracing::error!(error = %Chain(&e), "rendering the exposition failed, a bug to report");
                for &id in triggers {
                    let error = SourceError::Internal {
                        command: id.reader().to_owned(),
                        reason: e.to_string(),
                    };
                    let duration = self
                        .lock_sources()
                        .states
                        .get(&id)
                        .map(|s| s.report.duration);
                    self.fail(id, error, duration.unwrap_or_default());
                }
                self.render_off_thread(None).await.unwrap_or_else(|e| {
                    // Nothing at all rather than numbers that are no longer current.
                    tracing::error!(error = %Chain(&e), "rendering the exposition failed again");
                    Publication::default()
                })
            }
        };
        let publication = Arc::new(publication);
        self.publications.send_replace(Arc::clone(&publication));
        publication
    }

    pub(super) async fn render_off_thread(
        self: &Arc<Self>,
        accounting: Option<AccountingRender>,
    ) -> Result<Publication, JoinError> {
        let (states, rounds, pace, unknown) = {
            let sources = self.lock_sources();
            let states: Vec<_> = sources.states.values().cloned().collect();
            (
                states,
                sources.rounds.clone(),
                sources.pace.clone(),
                sources.unknown.clone(),
            )
        };
        let audit = self.audit.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let collector = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            collector.render(
                &states,
                rounds,
                &pace,
                &unknown,
                audit.as_deref(),
                accounting,
            )
        })
        .await
    }

    /// The publication of `states` after `rounds`, with each source's `pace`, the
    /// sources whose presence is `unknown`, the
    /// `audit`'s families when it runs, and the accounting view when given its renderer.
    pub(super) fn render(
        &self,
        states: &[Arc<SourceState>],
        rounds: BTreeMap<SourceId, u64>,
        pace: &BTreeMap<SourceId, Pace>,
        unknown: &BTreeSet<SourceId>,
        audit: Option<&Exposition>,
        accounting: Option<AccountingRender>,
    ) -> Publication {
        let reports: Vec<&SourceReport> = states.iter().map(|s| &s.report).collect();
        let mut builder = ExpositionBuilder::default();
        builder.extend(&metrics::render_exporter(&reports));
        if !unknown.is_empty() {
            builder.extend(&metrics::render_unknown(unknown.iter().copied()));
        }
        if !pace.is_empty() {
            let pace = pace.iter().map(|(t, c)| (*t, c.cost, c.pause));
            builder.extend(&metrics::render_pace(pace));
        }
        for state in states {
            builder.extend(&state.fragment);
        }
        if let Some(audit) = audit {
            builder.extend(audit);
        }
        if let Some(render_accounting) = accounting {
            let rulesets: Vec<(SourceId, &Ruleset)> = reports
                .iter()
                .filter_map(|r| {
                    let collected = r.outcome.as_ref().ok()?;
                    Some((r.source, collected.ruleset.as_ref()))
                })
                .collect();
            let (families, problems) = render_accounting(&rulesets, &self.config.accounting);
            builder.extend(&families);
            let messages = problems
                .iter()
                .map(|p| format!("{} chain {}: {}", p.family, p.chain, p.message));
            for message in self.logged.new_messages((None, "accounting"), messages) {
                tracing::warn!("accounting rule left out: {message}");
            }
        }
        Publication {
            exposition: builder.finish(),
            reports: reports.into_iter().cloned().collect(),
            rounds,
        }
    }
}
