//! Runs the sources and publishes what they found: one loop per source, each waiting the
//! collection interval after its previous run ended, so a slow source (nf_tables takes
//! seconds for 100k rules) neither piles up runs nor delays the others. Every finished run
//! re-publishes the exposition from the last report of each source; readers (HTTP,
//! textfile) only ever see complete publications.
//!
//! Parsing and rendering run on threads for blocking work, outside any lock a scrape
//! takes, so that a collection of 100k rules never stalls the server. A panic anywhere in a
//! collection or its publication is a bug, and is shown as one: that source's collection
//! is failed (its success metrics 0, never its last numbers as if current), and its loop
//! goes on.
//!
//! Split by job: `schedule` runs the loops and keeps each source's pace (the CPU budget's
//! stretched pause), `process` reads a source and turns what it read into its state,
//! `publish` renders the states into publications and sends them in order, `log_once` keeps
//! a persisting problem from being logged after every collection.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accounting::{self, AccountingConfig};
use crate::error_chain::Chain;
use crate::exposition::{Exposition, Storage};
use crate::metrics::{MetricsConfig, SourceReport};
use crate::ruleset::{Family, Ruleset};
use crate::source::{self, Presence, Reading, Source, SourceError, SourceId, ipset};

mod log_once;
mod process;
mod publish;
mod schedule;

use log_once::LogOnce;
pub use schedule::Pace;

/// Which sources to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every source whose tables the kernel has; the others are left out, and come in as
    /// soon as they have tables. A missing dump command fails a source that has tables, and
    /// leaves out one that has none; a source whose presence the host does not tell is left
    /// out too, and named by `netfilter_exporter_source_unknown`.
    Auto,
    /// Exactly these; a missing command is a failed collection.
    Explicit(Vec<SourceId>),
}

impl Selection {
    /// The sources whose collection loops run: every one for [`Selection::Auto`].
    pub fn sources(&self) -> Vec<SourceId> {
        match self {
            Selection::Auto => SourceId::ALL.to_vec(),
            Selection::Explicit(ids) => ids.clone(),
        }
    }

    /// The families whose iptables-nft tables an iptables source reads, and the nftables
    /// source therefore leaves out.
    pub fn read_by_iptables(&self) -> Vec<Family> {
        let ids = self.sources();
        [
            (SourceId::Iptables, Family::Ipv4),
            (SourceId::Ip6tables, Family::Ipv6),
        ]
        .into_iter()
        .filter(|(id, _)| ids.contains(id))
        .map(|(_, family)| family)
        .collect()
    }
}

/// How collections run.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// The sources to read.
    pub selection: Selection,
    /// Pause between the end of one collection of a source and the start of the next.
    pub interval: Duration,
    /// Deadline of one dump command.
    pub timeout: Duration,
    /// Most bytes a dump command may print on standard output before it is killed and its
    /// collection fails.
    pub max_output_bytes: usize,
    /// Series selection.
    pub metrics: MetricsConfig,
    /// The accounting view.
    pub accounting: AccountingConfig,
    /// How each source's families are kept between collections.
    pub storage: Storage,
    /// [`crate::source::nftables::ReadConfig::set_elements_limit`] of the nftables source.
    pub set_elements_limit: u64,
    /// Read the iptables and ip6tables sources over netlink when they use nf_tables
    /// ([`source::iptables_nft`]); `false` runs `iptables-save` for every collection.
    pub iptables_netlink: bool,
    /// Share of one core a source's collections may use ([`crate::budget::Budget`]); 0: no budget.
    pub cpu_budget: f64,
    /// What the ipset source reads.
    pub ipset: ipset::Settings,
}

/// The sources `config` selects, set up as it says.
pub fn selected_sources(config: &CollectConfig) -> BTreeMap<SourceId, Arc<dyn Source>> {
    let settings = source::Settings {
        iptables_netlink: config.iptables_netlink,
        leave_to_iptables: config.selection.read_by_iptables(),
        set_elements_limit: config.set_elements_limit,
        ipset: config.ipset.clone(),
    };
    let selected = config.selection.sources();
    source::registry(&settings)
        .into_iter()
        .filter(|s| selected.contains(&s.id()))
        .map(|s| (s.id(), s))
        .collect()
}

/// What reading a source gave.
#[derive(Debug)]
pub enum Dump {
    /// What the source read.
    Read(Reading),
    /// Automatic selection only: the source has nothing to read here, or the host does not
    /// say whether it has ([`Presence`]); its dump command was not run.
    Skipped(Presence),
}

/// One complete exposition with the reports it was rendered from.
#[derive(Debug, Default)]
pub struct Publication {
    /// The rendered exposition.
    pub exposition: Exposition,
    /// The last report of each source, in source order.
    pub reports: Vec<SourceReport>,
    /// How many collections of each source had ended when this was rendered, with a
    /// report or (automatic selection) finding the source absent: a reader can tell when
    /// every source has been collected again.
    pub rounds: BTreeMap<SourceId, u64>,
}

impl Publication {
    /// A publication of `exposition` alone, for a mode that renders its own families
    /// (the audit).
    pub fn new(exposition: Exposition) -> Self {
        Publication {
            exposition,
            ..Publication::default()
        }
    }

    /// The sources whose last collection failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (SourceId, &SourceError)> {
        self.reports
            .iter()
            .filter_map(|r| r.outcome.as_ref().err().map(|e| (r.source, e)))
    }
}

struct SourceState {
    report: SourceReport,
    fragment: Exposition,
}

/// What the collector knows of its sources.
#[derive(Default)]
struct Sources {
    /// Each source's last state, shared with publications being rendered.
    states: BTreeMap<SourceId, Arc<SourceState>>,
    /// How many collections of each source have ended.
    rounds: BTreeMap<SourceId, u64>,
    /// The cost of each source's last collection and the pause it leads to.
    pace: BTreeMap<SourceId, Pace>,
    /// Automatic selection: the sources left out because the host does not say whether
    /// they have tables.
    unknown: BTreeSet<SourceId>,
}

/// Renders the accounting view over the last report of every source: [`accounting::render`]
/// in the program, passed down from the entry points so that a test can pass a failing one.
type AccountingRender =
    fn(&[(SourceId, &Ruleset)], &AccountingConfig) -> (Exposition, Vec<accounting::Problem>);

/// Owns the sources' last reports and publishes expositions.
pub struct Collector {
    config: CollectConfig,
    /// Held only to read or replace an entry, never while rendering.
    sources: Mutex<Sources>,
    /// Held from reading the sources' states until the publication is sent, so that
    /// publications are sent in the order of the states they show.
    publishing: tokio::sync::Mutex<()>,
    logged: LogOnce,
    publications: watch::Sender<Arc<Publication>>,
    /// The selected sources ([`crate::source::registry`]), each keeping what it learns
    /// between reads.
    registry: BTreeMap<SourceId, Arc<dyn Source>>,
    /// The families of the audit when it runs inside the exporter, from its last check.
    audit: Mutex<Option<Arc<Exposition>>>,
}

impl Collector {
    /// A collector that has not collected yet; its first publication holds only the
    /// exporter's own families.
    pub fn new(config: CollectConfig) -> Arc<Self> {
        let (publications, _) = watch::channel(Arc::new(Publication::default()));
        let registry = selected_sources(&config);
        let collector = Arc::new(Collector {
            config,
            sources: Mutex::new(Sources::default()),
            publishing: tokio::sync::Mutex::new(()),
            logged: LogOnce::default(),
            publications,
            registry,
            audit: Mutex::new(None),
        });
        // Without sources this is a few fixed lines, cheap enough for any thread.
        let first = std::panic::catch_unwind(AssertUnwindSafe(|| {
            collector.render(
                &[],
                BTreeMap::new(),
                &BTreeMap::new(),
                &BTreeSet::new(),
                None,
                Some(accounting::render),
            )
        }));
        collector
            .publications
            .send_replace(Arc::new(first.unwrap_or_default()));
        collector
    }

    /// A receiver of every publication, starting with the current one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Publication>> {
        self.publications.subscribe()
    }

    /// Collects every selected source once, concurrently, and publishes the result.
    pub async fn collect_once(self: &Arc<Self>) -> Arc<Publication> {
        let ids = self.config.selection.sources();
        let running: Vec<Running> = ids
            .iter()
            .map(|&id| self.start(id, self.dump(id)))
            .collect();
        for collection in running {
            self.finish(collection).await;
        }
        self.publish(&ids, accounting::render).await
    }

    /// Makes `families` (the audit's, after a check) part of every publication from now
    /// on, after the sources' families, and publishes.
    pub async fn publish_audit(self: &Arc<Self>, families: Exposition) {
        let previous = self
            .audit
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Arc::new(families));
        drop(previous);
        self.publish(&[], accounting::render).await;
    }

    /// Starts collecting `id` from `dump` in a task of its own, so that a panic
    /// ends that task only.
    fn start(
        self: &Arc<Self>,
        id: SourceId,
        dump: impl Future<Output = Result<Dump, SourceError>> + Send + 'static,
    ) -> Running {
        let started = Instant::now();
        let collector = Arc::clone(self);
        let task = tokio::spawn(async move {
            let result = dump.await;
            let command = id.reader();
            // Parsing and rendering take CPU time in proportion to the ruleset: off the I/O
            // threads.
            let processing = Arc::clone(&collector);
            let processed =
                off_thread(command, move || processing.process(id, result, started)).await;
            if let Err(error) = processed {
                collector.fail(id, error, started.elapsed());
            }
        });
        Running { id, started, task }
    }

    /// Waits for a collection; one that panicked outside [`Collector::process`] leaves a
    /// failed report all the same.
    async fn finish(&self, collection: Running) {
        if let Err(e) = collection.task.await {
            let command = collection.id.reader();
            tracing::error!(source = %collection.id, error = %Chain(&e), "collection failed");
            let error = SourceError::Internal {
                command: command.to_owned(),
                reason: e.to_string(),
            };
            self.fail(collection.id, error, collection.started.elapsed());
        }
        *self.lock_sources().rounds.entry(collection.id).or_default() += 1;
    }

    fn remove(&self, id: SourceId) {
        let previous = self.lock_sources().states.remove(&id);
        // Freed once the lock is released.
        drop(previous);
    }

    fn replace(&self, id: SourceId, state: SourceState) {
        let previous = self.lock_sources().states.insert(id, Arc::new(state));
        drop(previous);
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        // A poisoned lock only means another task panicked mid-update of a map of whole
        // values; the map itself is still consistent.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A collection of one source under way in a task of its own.
struct Running {
    id: SourceId,
    started: Instant,
    task: JoinHandle<()>,
}

/// Runs `work` (parsing or rendering a dump of `command`) on a thread for blocking work.
/// A panic there is a bug: it is logged and becomes a failed collection, so that the
/// source's success metric shows it instead of the last numbers staying up as current.
async fn off_thread<T: Send + 'static>(
    command: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(command, error = %Chain(&e), "processing a dump failed");
        SourceError::Internal {
            command: command.to_owned(),
            reason: e.to_string(),
        }
    })
}

#[cfg(test)]
mod tests;
