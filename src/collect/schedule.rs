//! When each source is collected: one loop per source, each pausing the collection
//! interval after its previous run, or longer when the run cost more CPU time than the budget
//! allows ([`Budget`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::{AccountingRender, Collector, Dump, Publication};
use crate::accounting;
use crate::budget::{self, Budget};
use crate::source::{SourceError, SourceId};

/// What the CPU budget made of a source's last collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace {
    /// CPU time the collection cost.
    pub cost: Duration,
    /// The pause before the next one.
    pub pause: Duration,
    /// The pause last said in the log.
    pub(super) logged: Duration,
}

impl Collector {
    /// Starts one background loop per selected source; they run until the runtime stops.
    /// Each waits `--collect-interval` after a collection, or longer when the collection
    /// cost more CPU time than the budget allows ([`Budget`]).
    pub fn spawn_loops(self: &Arc<Self>) {
        for id in self.config.selection.sources() {
            let collector = Arc::clone(self);
            tokio::spawn(async move {
                loop {
                    let dump = collector.dump(id);
                    collector.round(id, dump, accounting::render).await;
                    let pause = collector.lock_sources().pace.get(&id).map(|c| c.pause);
                    tokio::time::sleep(pause.unwrap_or(collector.config.interval)).await;
                }
            });
        }
    }

    /// One turn of a source's loop: collects `id` from `dump`, notes its CPU cost and
    /// the pause that follows, and publishes. A panic anywhere in it is a failed
    /// collection of `id`, never the end of the loop.
    pub(super) async fn round(
        self: &Arc<Self>,
        id: SourceId,
        dump: impl Future<Output = Result<Dump, SourceError>> + Send + 'static,
        render_accounting: AccountingRender,
    ) -> Arc<Publication> {
        let before = budget::cpu_time();
        let collection = self.start(id, dump);
        self.finish(collection).await;
        if let (Some(before), Some(after)) = (before, budget::cpu_time()) {
            self.note_cost(id, after.saturating_sub(before));
        }
        self.publish(&[id], render_accounting).await
    }

    /// Records that `id`'s last collection cost `cost` of CPU time, and says in the
    /// log when the pause this leads to moved away from the last one said (by a tenth or
    /// more), or came back to the configured interval.
    pub(super) fn note_cost(&self, id: SourceId, cost: Duration) {
        let budget = Budget {
            interval: self.config.interval,
            share: self.config.cpu_budget,
        };
        let pause = budget.pause(cost);
        let mut sources = self.lock_sources();
        let logged = sources.pace.get(&id).map_or(budget.interval, |c| c.logged);
        let moved =
            pause.abs_diff(logged) > logged / 10 || (pause == budget.interval && logged != pause);
        let logged = if moved {
            if pause == budget.interval {
                tracing::info!(source = %id, interval = ?pause, "collections back at the configured interval");
            } else {
                tracing::info!(
                    source = %id,
                    cost = ?cost,
                    interval = ?pause,
                    budget = budget.share,
                    "collections cost more CPU time than --collect-cpu-budget allows at --collect-interval; the pause is stretched"
                );
            }
            pause
        } else {
            logged
        };
        sources.pace.insert(
            id,
            Pace {
                cost,
                pause,
                logged,
            },
        );
    }
}
