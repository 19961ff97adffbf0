//! Runs the sources and publishes what they found: one loop per source, each waiting the
//! collection interval after its previous run ended, so a slow backend (nf_tables takes
//! seconds for 100k rules) neither piles up runs nor delays the others. Every finished run
//! re-publishes the exposition from the last report of each source; readers (HTTP,
//! textfile) only ever see complete publications.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;

use crate::accounting::{self, AccountingConfig};
use crate::metrics::{self, Collected, MetricsConfig, SourceReport};
use crate::output::exposition::{Exposition, ExpositionBuilder, Format, Storage};
use crate::ruleset;
use crate::source::{self, SourceError, Target};

/// Which backends to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every backend whose dump command exists and reports at least one table; the others
    /// are left out silently, and come in as soon as they have tables.
    Auto,
    /// Exactly these; a missing command is a failed collection.
    Explicit(Vec<Target>),
}

impl Selection {
    fn targets(&self) -> Vec<Target> {
        match self {
            Selection::Auto => Target::ALL.to_vec(),
            Selection::Explicit(targets) => targets.clone(),
        }
    }
}

/// How collections run.
#[derive(Debug, Clone)]
pub struct CollectConfig {
    /// The backends to read.
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
}

/// One complete exposition with the reports it was rendered from.
#[derive(Debug, Default)]
pub struct Publication {
    /// The rendered exposition.
    pub exposition: Exposition,
    /// The last report of each source, in target order.
    pub reports: Vec<SourceReport>,
    gzip: [OnceLock<Option<Vec<Bytes>>>; 2],
}

impl Publication {
    /// The exposition in `format` as gzip chunks, put together on first use and kept;
    /// `None` if compression failed. Families kept compressed cost no compression here,
    /// and the two formats share them.
    pub fn gzip(&self, format: Format) -> Option<Vec<Bytes>> {
        let slot = match format {
            Format::Text => &self.gzip[0],
            Format::OpenMetrics => &self.gzip[1],
        };
        slot.get_or_init(|| self.exposition.gzip(format)).clone()
    }

    /// The sources whose last collection failed, with their errors.
    pub fn failures(&self) -> impl Iterator<Item = (Target, &SourceError)> {
        self.reports
            .iter()
            .filter_map(|r| r.outcome.as_ref().err().map(|e| (r.target, e)))
    }
}

struct SourceState {
    report: SourceReport,
    fragment: Exposition,
}

/// Owns the sources' last reports and publishes expositions.
pub struct Collector {
    config: CollectConfig,
    sources: Mutex<BTreeMap<Target, SourceState>>,
    logged: LogOnce,
    publications: watch::Sender<Arc<Publication>>,
}

impl Collector {
    /// A collector that has not collected yet; its first publication holds only the
    /// exporter's own families.
    pub fn new(config: CollectConfig) -> Arc<Self> {
        let (publications, _) = watch::channel(Arc::new(Publication::default()));
        let collector = Arc::new(Collector {
            config,
            sources: Mutex::new(BTreeMap::new()),
            logged: LogOnce::default(),
            publications,
        });
        collector.publish();
        collector
    }

    /// A receiver of every publication, starting with the current one.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Publication>> {
        self.publications.subscribe()
    }

    /// Collects every selected source once, concurrently, and publishes the result.
    pub async fn collect_once(self: &Arc<Self>) -> Arc<Publication> {
        let runs = self.config.selection.targets().into_iter().map(|target| {
            let collector = Arc::clone(self);
            tokio::spawn(async move { collector.collect_source(target).await })
        });
        for run in runs.collect::<Vec<_>>() {
            // A panic inside a collection would be a bug; it must not take the others down.
            if let Err(e) = run.await {
                tracing::error!(error = %e, "collection task failed");
            }
        }
        self.publish()
    }

    /// Starts one background loop per selected source; they run until the runtime stops.
    pub fn spawn_loops(self: &Arc<Self>) {
        for target in self.config.selection.targets() {
            let collector = Arc::clone(self);
            tokio::spawn(async move {
                loop {
                    collector.collect_source(target).await;
                    collector.publish();
                    tokio::time::sleep(collector.config.interval).await;
                }
            });
        }
    }

    async fn collect_source(&self, target: Target) {
        let started = Instant::now();
        let command = target.save_command();
        let result = source::run(
            command,
            &["--counters"],
            self.config.timeout,
            self.config.max_output_bytes,
        )
        .await;
        let auto = self.config.selection == Selection::Auto;
        if let Err(e) = &result {
            tracing::debug!(source = %target, error = %e, "dump command failed");
        }
        if auto && matches!(result, Err(SourceError::NotFound { .. })) {
            self.remove(target);
            return;
        }
        let outcome = match result {
            Ok(output) => {
                // Some iptables versions warn on every run: say it once, again if it changes.
                let stderr = (!output.stderr.is_empty()).then(|| output.stderr.clone());
                if let Some(stderr) = self.logged.once((Some(target), "stderr"), stderr) {
                    tracing::warn!(source = %target, stderr = %stderr, "dump command wrote to stderr");
                }
                let invalid_utf8_lines = output.invalid_utf8_lines;
                self.log_invalid_utf8(target, invalid_utf8_lines);
                // Parsing 100k rules takes milliseconds of CPU: keep it off the I/O threads.
                off_thread(command, move || ruleset::parse(output.stdout))
                    .await
                    .map(|ruleset| Collected {
                        invalid_utf8_lines,
                        ..Collected::new(ruleset)
                    })
            }
            Err(e) => {
                tracing::warn!(source = %target, error = %e, "collection failed");
                Err(e)
            }
        };
        if auto && outcome.as_ref().is_ok_and(|c| c.ruleset.is_empty()) {
            self.remove(target);
            return;
        }
        if let Ok(collected) = &outcome {
            self.log_new_unparsed(target, &collected.ruleset);
        }
        let report = SourceReport {
            target,
            outcome,
            duration: started.elapsed(),
            finished_at: SystemTime::now(),
        };
        let metrics_config = self.config.metrics.clone();
        let accounting = self.config.accounting.clone();
        let storage = self.config.storage;
        let rendered = off_thread(command, move || {
            let fragment = metrics::render_source(&report, &metrics_config, storage);
            // Publications render the accounting view over every source's snapshot; the
            // rest of a snapshot (tens of MB at 100k rules) is not kept until the next
            // collection.
            let mut report = report;
            if let Ok(collected) = &mut report.outcome {
                let family = target.family();
                collected.keep_only(|chain| accounting.reads(family, chain.name()));
            }
            SourceState { report, fragment }
        })
        .await;
        let state = rendered.unwrap_or_else(|error| {
            let report = SourceReport {
                target,
                outcome: Err(error),
                duration: started.elapsed(),
                finished_at: SystemTime::now(),
            };
            // Two lines of fixed text: what the failed collection shows instead.
            let fragment = metrics::render_source(&report, &self.config.metrics, storage);
            SourceState { report, fragment }
        });
        self.lock_sources().insert(target, state);
    }

    /// Logs each bad line once, not on every collection that still finds it, and at most
    /// [`UNPARSED_LOGGED`] of them per collection: a dump of garbage must not flood the log.
    fn log_new_unparsed(&self, target: Target, ruleset: &ruleset::Ruleset) {
        let lines = ruleset.unparsed().iter().map(|u| u.to_string());
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
    fn log_invalid_utf8(&self, target: Target, lines: usize) {
        let message = (lines > 0).then(|| {
            format!("{lines} lines of the dump are not valid UTF-8; read with U+FFFD in place of the invalid bytes")
        });
        if let Some(message) = self.logged.once((Some(target), "invalid UTF-8"), message) {
            tracing::warn!(source = %target, "{message}");
        }
    }

    fn remove(&self, target: Target) {
        self.lock_sources().remove(&target);
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, BTreeMap<Target, SourceState>> {
        // A poisoned lock only means another task panicked mid-update of a map of whole
        // values; the map itself is still consistent.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renders a publication from the last report of every source and sends it.
    fn publish(&self) -> Arc<Publication> {
        let publication = {
            let sources = self.lock_sources();
            let reports: Vec<&SourceReport> = sources.values().map(|s| &s.report).collect();
            let mut builder = ExpositionBuilder::default();
            builder.extend(&metrics::render_exporter(&reports));
            for state in sources.values() {
                builder.extend(&state.fragment);
            }
            let (accounting, problems) = accounting::render(&reports, &self.config.accounting);
            builder.extend(&accounting);
            let messages = problems
                .iter()
                .map(|p| format!("{} chain {}: {}", p.family, p.chain, p.message));
            for message in self.logged.new_messages((None, "accounting"), messages) {
                tracing::warn!("accounting rule left out: {message}");
            }
            Arc::new(Publication {
                exposition: builder.finish(),
                reports: reports.into_iter().cloned().collect(),
                gzip: Default::default(),
            })
        };
        self.publications.send_replace(Arc::clone(&publication));
        publication
    }
}

/// Most new unparsed lines logged after one collection; the metric counts them all.
const UNPARSED_LOGGED: usize = 20;

/// The first `n` of `messages`, and how many more there were.
fn first_of(mut messages: Vec<String>, n: usize) -> (Vec<String>, usize) {
    let more = messages.len().saturating_sub(n);
    messages.truncate(n);
    (messages, more)
}

/// Runs `work` (parsing or rendering a dump of `command`) on a thread for blocking work.
/// A panic there is a bug: it is logged and becomes a failed collection, so that the
/// source's success metric shows it instead of the last numbers staying up as current.
async fn off_thread<T: Send + 'static>(
    command: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SourceError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        tracing::error!(command, error = %e, "processing a dump failed");
        SourceError::Internal {
            command: command.to_owned(),
            reason: e.to_string(),
        }
    })
}

/// What a group of log messages is about: a source (or none for views of all sources)
/// and a topic.
type Scope = (Option<Target>, &'static str);

/// Remembers what the previous round logged per scope, so that a problem that persists is
/// logged when it appears, not after every collection.
#[derive(Default)]
struct LogOnce(Mutex<BTreeMap<Scope, HashSet<String>>>);

impl LogOnce {
    /// The messages of `current` that the previous call for `scope` did not have, in the
    /// order of `current`, without repeats.
    fn new_messages(&self, scope: Scope, current: impl Iterator<Item = String>) -> Vec<String> {
        let mut seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let previous = seen.remove(&scope).unwrap_or_default();
        let mut now = HashSet::new();
        let mut fresh = Vec::new();
        for message in current {
            if !previous.contains(&message) && !now.contains(&message) {
                fresh.push(message.clone());
            }
            now.insert(message);
        }
        seen.insert(scope, now);
        fresh
    }

    /// `message` if the previous call for `scope` had another one or none: a message that
    /// repeats is logged once, until it changes or goes away.
    fn once(&self, scope: Scope, message: Option<String>) -> Option<String> {
        self.new_messages(scope, message.into_iter()).pop()
    }
}

#[cfg(test)]
mod tests {
    use super::{LogOnce, SourceError, first_of, off_thread};

    #[tokio::test]
    async fn a_panic_while_processing_a_dump_is_a_failed_collection() {
        let result = off_thread("iptables-save", || -> usize { panic!("bad offsets") }).await;
        match result {
            Err(SourceError::Internal { command, reason }) => {
                assert_eq!(command, "iptables-save");
                assert!(reason.contains("bad offsets"), "{reason}");
            }
            other => panic!("not a failed collection: {other:?}"),
        }
        assert_eq!(off_thread("iptables-save", || 7).await.ok(), Some(7));
    }

    #[test]
    fn a_persisting_message_is_new_once_and_again_after_it_went_away() {
        let log = LogOnce::default();
        let round =
            |msgs: &[&str]| log.new_messages((None, "s"), msgs.iter().map(|m| m.to_string()));
        assert_eq!(round(&["a", "b"]), ["a", "b"]);
        assert_eq!(round(&["a", "b"]), Vec::<String>::new());
        assert_eq!(round(&["b"]), Vec::<String>::new());
        assert_eq!(round(&["a", "b"]), ["a"]);
        assert!(log.new_messages((None, "other"), ["a".to_owned()].into_iter()) == ["a"]);
        assert_eq!(round(&["c", "a", "c", "b", "d"]), ["c", "d"]);
    }

    #[test]
    fn a_repeated_message_is_logged_once_until_it_changes() {
        let log = LogOnce::default();
        let once = |m: Option<&str>| log.once((None, "stderr"), m.map(str::to_owned));
        assert_eq!(once(Some("warning")).as_deref(), Some("warning"));
        assert_eq!(once(Some("warning")), None);
        assert_eq!(once(Some("other")).as_deref(), Some("other"));
        assert_eq!(once(None), None);
        assert_eq!(once(Some("other")).as_deref(), Some("other"));
    }

    #[test]
    fn at_most_the_first_messages_are_logged_with_the_count_of_the_rest() {
        let messages = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(first_of(messages(3), 20), (messages(3), 0));
        assert_eq!(first_of(messages(20), 20), (messages(20), 0));
        let (shown, more) = first_of(messages(25_000), 20);
        assert_eq!((shown, more), (messages(20), 24_980));
    }
}
