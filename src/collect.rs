//! Runs the sources and publishes what they found: one loop per source, each waiting the
//! collection interval after its previous run ended, so a slow backend (nf_tables takes
//! seconds for 100k rules) neither piles up runs nor delays the others. Every finished run
//! re-publishes the exposition from the last report of each source; readers (HTTP,
//! textfile) only ever see complete publications.
//!
//! Parsing and rendering run on threads for blocking work, outside any lock a scrape
//! takes, so that a collection of 100k rules never stalls the server. A panic anywhere in a
//! collection or its publication is a bug, and is shown as one: that source's collection
//! is failed (its success metrics 0, never its last numbers as if current), and its loop
//! goes on.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use crate::accounting::{self, AccountingConfig, Origin};
use crate::budget::{self, Budget};
use crate::error_chain::Chain;
use crate::exposition::{Exposition, ExpositionBuilder, Storage};
use crate::metrics::{self, Collected, MetricsConfig, SourceReport};
use crate::ruleset::{Family, Ruleset};
use crate::source::iptables_nft::{self, RuleTexts};
use crate::source::nftables::{self, ReadConfig, Tables};
use crate::source::{self, CommandOutput, Presence, SourceError, Target, iptables_save};

/// Which backends to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every source whose tables the kernel has; the others are left out, and come in as
    /// soon as they have tables. A missing dump command fails a source that has tables, and
    /// leaves out one that has none; a source whose presence the host does not tell is left
    /// out too, and named by `netfilter_exporter_source_unknown`.
    Auto,
    /// Exactly these; a missing command is a failed collection.
    Explicit(Vec<Target>),
}

impl Selection {
    /// The backends whose collection loops run: every one for [`Selection::Auto`].
    pub fn targets(&self) -> Vec<Target> {
        match self {
            Selection::Auto => Target::ALL.to_vec(),
            Selection::Explicit(targets) => targets.clone(),
        }
    }

    /// The families whose iptables-nft tables an iptables source reads, and the nftables
    /// source therefore leaves out.
    pub fn read_by_iptables(&self) -> Vec<Family> {
        let targets = self.targets();
        [
            (Target::Iptables, Family::Ipv4),
            (Target::Ip6tables, Family::Ipv6),
        ]
        .into_iter()
        .filter(|(target, _)| targets.contains(target))
        .map(|(_, family)| family)
        .collect()
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
    /// [`ReadConfig::set_elements_limit`] of the nftables source.
    pub set_elements_limit: u64,
    /// Read the iptables and ip6tables sources over netlink when they use nf_tables
    /// ([`iptables_nft`]); `false` runs `iptables-save` for every collection.
    pub iptables_netlink: bool,
    /// Share of one core a source's collections may use ([`Budget`]); 0: no budget.
    pub cpu_budget: f64,
}

/// What reading a source gave.
#[derive(Debug)]
pub enum Dump {
    /// The output of an iptables backend's save command, to parse.
    Text(CommandOutput),
    /// A snapshot read over netlink.
    Snapshot(nftables::Snapshot),
    /// An iptables source on nf_tables, read over netlink with cached rule texts.
    Iptables(iptables_nft::Collection),
    /// Automatic selection only: the source has nothing to read here, or the host does not
    /// say whether it has ([`source::Presence`]); its dump command was not run.
    Skipped(Presence),
}

/// One complete exposition with the reports it was rendered from.
#[derive(Debug, Default)]
pub struct Publication {
    /// The rendered exposition.
    pub exposition: Exposition,
    /// The last report of each source, in target order.
    pub reports: Vec<SourceReport>,
    /// How many collections of each source had ended when this was rendered, with a
    /// report or (automatic selection) finding the source absent: a reader can tell when
    /// every source has been collected again.
    pub rounds: BTreeMap<Target, u64>,
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

/// What the collector knows of its sources.
#[derive(Default)]
struct Sources {
    /// Each source's last state, shared with publications being rendered.
    states: BTreeMap<Target, Arc<SourceState>>,
    /// How many collections of each source have ended.
    rounds: BTreeMap<Target, u64>,
    /// The cost of each source's last collection and the pause it leads to.
    cadence: BTreeMap<Target, Cadence>,
    /// Automatic selection: the sources left out because the host does not say whether
    /// they have tables.
    unknown: BTreeSet<Target>,
}

/// What the CPU budget made of a source's last collection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cadence {
    /// CPU time the collection cost.
    pub cost: Duration,
    /// The pause before the next one.
    pub pause: Duration,
    /// The pause last said in the log.
    logged: Duration,
}

/// Renders the accounting view over the last report of every source. Nothing but
/// [`accounting::render`] in the program; a field so that a test can put a failing one in
/// its place.
type AccountingRender =
    fn(&[(Origin, &Ruleset)], &AccountingConfig) -> (Exposition, Vec<accounting::Problem>);

/// Owns the sources' last reports and publishes expositions.
pub struct Collector {
    config: CollectConfig,
    render_accounting: AccountingRender,
    /// Held only to read or replace an entry, never while rendering.
    sources: Mutex<Sources>,
    /// Held from reading the sources' states until the publication is sent, so that
    /// publications are sent in the order of the states they show.
    publishing: tokio::sync::Mutex<()>,
    logged: LogOnce,
    publications: watch::Sender<Arc<Publication>>,
    /// The rule texts of the iptables and ip6tables sources' netlink reads.
    rule_texts: [Arc<Mutex<RuleTexts>>; 2],
    /// The families of the audit when it runs inside the exporter, from its last check.
    audit: Mutex<Option<Arc<Exposition>>>,
}

impl Collector {
    /// A collector that has not collected yet; its first publication holds only the
    /// exporter's own families.
    pub fn new(config: CollectConfig) -> Arc<Self> {
        Self::with_accounting_render(config, accounting::render)
    }

    fn with_accounting_render(
        config: CollectConfig,
        render_accounting: AccountingRender,
    ) -> Arc<Self> {
        let (publications, _) = watch::channel(Arc::new(Publication::default()));
        let collector = Arc::new(Collector {
            config,
            render_accounting,
            sources: Mutex::new(Sources::default()),
            publishing: tokio::sync::Mutex::new(()),
            logged: LogOnce::default(),
            publications,
            rule_texts: Default::default(),
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
                true,
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
        let targets = self.config.selection.targets();
        let running: Vec<Running> = targets
            .iter()
            .map(|&target| self.start(target, self.dump(target)))
            .collect();
        for collection in running {
            self.finish(collection).await;
        }
        self.publish(&targets).await
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
        self.publish(&[]).await;
    }

    /// Starts one background loop per selected source; they run until the runtime stops.
    /// Each waits `--collect-interval` after a collection, or longer when the collection
    /// cost more CPU time than the budget allows ([`Budget`]).
    pub fn spawn_loops(self: &Arc<Self>) {
        for target in self.config.selection.targets() {
            let collector = Arc::clone(self);
            tokio::spawn(async move {
                loop {
                    collector.round(target, collector.dump(target)).await;
                    let pause = collector
                        .lock_sources()
                        .cadence
                        .get(&target)
                        .map(|c| c.pause);
                    tokio::time::sleep(pause.unwrap_or(collector.config.interval)).await;
                }
            });
        }
    }

    /// One turn of a source's loop: collects `target` from `dump`, notes its CPU cost and
    /// the pause that follows, and publishes. A panic anywhere in it is a failed
    /// collection of `target`, never the end of the loop.
    async fn round(
        self: &Arc<Self>,
        target: Target,
        dump: impl Future<Output = Result<Dump, SourceError>> + Send + 'static,
    ) -> Arc<Publication> {
        let before = budget::cpu_time();
        let collection = self.start(target, dump);
        self.finish(collection).await;
        if let (Some(before), Some(after)) = (before, budget::cpu_time()) {
            self.note_cost(target, after.saturating_sub(before));
        }
        self.publish(&[target]).await
    }

    /// Records that `target`'s last collection cost `cost` of CPU time, and says in the
    /// log when the pause this leads to moved away from the last one said (by a tenth or
    /// more), or came back to the configured interval.
    fn note_cost(&self, target: Target, cost: Duration) {
        let budget = Budget {
            interval: self.config.interval,
            share: self.config.cpu_budget,
        };
        let pause = budget.pause(cost);
        let mut sources = self.lock_sources();
        let logged = sources
            .cadence
            .get(&target)
            .map_or(budget.interval, |c| c.logged);
        let moved =
            pause.abs_diff(logged) > logged / 10 || (pause == budget.interval && logged != pause);
        let logged = if moved {
            if pause == budget.interval {
                tracing::info!(source = %target, interval = ?pause, "collections back at the configured interval");
            } else {
                tracing::info!(
                    source = %target,
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
        sources.cadence.insert(
            target,
            Cadence {
                cost,
                pause,
                logged,
            },
        );
    }

    /// The read of `target`: its dump command, or netlink on a thread that may block.
    fn dump(
        &self,
        target: Target,
    ) -> impl Future<Output = Result<Dump, SourceError>> + Send + 'static {
        let (timeout, limit) = (self.config.timeout, self.config.max_output_bytes);
        let netlink = ReadConfig {
            timeout,
            tables: Tables::Native {
                leave_to_iptables: self.config.selection.read_by_iptables(),
            },
            set_elements_limit: self.config.set_elements_limit,
        };
        let texts = match target {
            Target::Iptables if self.config.iptables_netlink => Some(&self.rule_texts[0]),
            Target::Ip6tables if self.config.iptables_netlink => Some(&self.rule_texts[1]),
            _ => None,
        }
        .cloned();
        let auto = self.config.selection == Selection::Auto;
        async move {
            // Cheap enough to ask before every run, and a legacy dump command that is not
            // allowed to read the table list would fail on every one.
            if auto && matches!(target, Target::IptablesLegacy | Target::Ip6tablesLegacy) {
                let presence = target.presence(timeout);
                if presence != Presence::Present {
                    return Ok(Dump::Skipped(presence));
                }
            }
            let save = source::run(target.reader(), &["--counters"], timeout, limit);
            if let (Some(texts), Some(family)) = (texts, target.family()) {
                let collection = iptables_nft::collect(family, texts, timeout, save).await;
                return collection.map(Dump::Iptables);
            }
            if target != Target::Nftables {
                return save.await.map(Dump::Text);
            }
            let read = tokio::task::spawn_blocking(move || nftables::read(&netlink));
            match read.await {
                Ok(snapshot) => snapshot.map(Dump::Snapshot).map_err(SourceError::from),
                Err(e) => Err(SourceError::Internal {
                    command: target.reader().to_owned(),
                    reason: e.to_string(),
                }),
            }
        }
    }

    /// Starts collecting `target` from `dump` in a task of its own, so that a panic
    /// ends that task only.
    fn start(
        self: &Arc<Self>,
        target: Target,
        dump: impl Future<Output = Result<Dump, SourceError>> + Send + 'static,
    ) -> Running {
        let started = Instant::now();
        let collector = Arc::clone(self);
        let task = tokio::spawn(async move {
            let result = dump.await;
            let command = target.reader();
            // Parsing and rendering take CPU time in proportion to the ruleset: off the I/O
            // threads.
            let processing = Arc::clone(&collector);
            let processed =
                off_thread(command, move || processing.process(target, result, started)).await;
            if let Err(error) = processed {
                collector.fail(target, error, started.elapsed());
            }
        });
        Running {
            target,
            started,
            task,
        }
    }

    /// Waits for a collection; one that panicked outside [`Collector::process`] leaves a
    /// failed report all the same.
    async fn finish(&self, collection: Running) {
        if let Err(e) = collection.task.await {
            let command = collection.target.reader();
            tracing::error!(source = %collection.target, error = %Chain(&e), "collection failed");
            let error = SourceError::Internal {
                command: command.to_owned(),
                reason: e.to_string(),
            };
            self.fail(collection.target, error, collection.started.elapsed());
        }
        *self
            .lock_sources()
            .rounds
            .entry(collection.target)
            .or_default() += 1;
    }

    /// Turns the dump command's `result` into `target`'s new state: parses, logs what is
    /// new, renders the source's families. Runs on a thread for blocking work.
    fn process(&self, target: Target, result: Result<Dump, SourceError>, started: Instant) {
        let auto = self.config.selection == Selection::Auto;
        if let Err(e) = &result {
            tracing::debug!(source = %target, error = %Chain(&e), "dump command failed");
        }
        self.lock_sources().unknown.remove(&target);
        let outcome = match result {
            Ok(Dump::Snapshot(snapshot)) => {
                if snapshot.attempts > 1 {
                    tracing::debug!(source = %target, attempts = snapshot.attempts, "the ruleset changed during a read; read again");
                }
                Ok(Collected::new(snapshot.ruleset))
            }
            Ok(Dump::Iptables(iptables_nft::Collection::Netlink(ruleset, stats))) => {
                Ok(Collected {
                    text_stats: Some(stats),
                    ..Collected::new(ruleset)
                })
            }
            Ok(Dump::Iptables(iptables_nft::Collection::Saved {
                output,
                parsed,
                stats,
            })) => Ok(Collected {
                text_stats: stats,
                ..self.parse_output(target, output, parsed)
            }),
            Ok(Dump::Text(output)) => Ok(self.parse_output(target, output, None)),
            Ok(Dump::Skipped(presence)) => return self.skip(target, presence),
            // A missing dump command leaves the source out only when it would have had
            // nothing to read: with tables in the kernel, the failure is the user's to see.
            Err(e @ SourceError::NotFound { .. }) if auto => {
                match target.presence(self.config.timeout) {
                    Presence::Present => Err(e),
                    presence => return self.skip(target, presence),
                }
            }
            Err(e) => Err(e),
        };
        // A source that keeps failing says so once, again when its error changes, and
        // once more when it recovers; a failing command's stderr can be long.
        let failure = outcome.as_ref().err().map(ToString::to_string);
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
    fn parse_output(
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
    fn fail(&self, target: Target, error: SourceError, duration: Duration) {
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
    fn log_new_unparsed(&self, target: Target, ruleset: &Ruleset) {
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
    fn log_invalid_utf8(&self, target: Target, lines: usize) {
        let message = (lines > 0).then(|| {
            format!("{lines} lines of the dump are not valid UTF-8; read with U+FFFD in place of the invalid bytes")
        });
        if let Some(message) = self.logged.once((Some(target), "invalid UTF-8"), message) {
            tracing::warn!(source = %target, "{message}");
        }
    }

    /// Leaves `target` out of the publications (automatic selection) for what its
    /// `presence` says, noting the sources whose presence the host does not tell.
    fn skip(&self, target: Target, presence: Presence) {
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

    fn remove(&self, target: Target) {
        let previous = self.lock_sources().states.remove(&target);
        // Freed once the lock is released.
        drop(previous);
    }

    fn replace(&self, target: Target, state: SourceState) {
        let previous = self.lock_sources().states.insert(target, Arc::new(state));
        drop(previous);
    }

    fn lock_sources(&self) -> std::sync::MutexGuard<'_, Sources> {
        // A poisoned lock only means another task panicked mid-update of a map of whole
        // values; the map itself is still consistent.
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Renders a publication from the last state of every source, off the I/O threads,
    /// and sends it. A panic while rendering is a failed collection of `triggers` (the
    /// sources whose collection this publication follows): their states become failed
    /// reports, and the publication is rendered again without the accounting view, the
    /// one part that reads the rules of every source.
    async fn publish(self: &Arc<Self>, triggers: &[Target]) -> Arc<Publication> {
        let _in_order = self.publishing.lock().await;
        let publication = match self.render_off_thread(true).await {
            Ok(publication) => publication,
            // The runtime is shutting down and never ran the rendering: no bug, and nobody
            // reads a new publication any more.
            Err(e) if e.is_cancelled() => return Arc::clone(&self.publications.borrow()),
            Err(e) => {
                tracing::error!(error = %Chain(&e), "rendering the exposition failed, a bug to report");
                for &target in triggers {
                    let error = SourceError::Internal {
                        command: target.reader().to_owned(),
                        reason: e.to_string(),
                    };
                    let duration = self
                        .lock_sources()
                        .states
                        .get(&target)
                        .map(|s| s.report.duration);
                    self.fail(target, error, duration.unwrap_or_default());
                }
                self.render_off_thread(false).await.unwrap_or_else(|e| {
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

    async fn render_off_thread(
        self: &Arc<Self>,
        accounting: bool,
    ) -> Result<Publication, JoinError> {
        let (states, rounds, cadence, unknown) = {
            let sources = self.lock_sources();
            let states: Vec<_> = sources.states.values().cloned().collect();
            (
                states,
                sources.rounds.clone(),
                sources.cadence.clone(),
                sources.unknown.clone(),
            )
        };
        let audit = self.audit.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let collector = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            collector.render(
                &states,
                rounds,
                &cadence,
                &unknown,
                audit.as_deref(),
                accounting,
            )
        })
        .await
    }

    /// The publication of `states` after `rounds`, with each source's `cadence`, the
    /// sources whose presence is `unknown`, the
    /// `audit`'s families when it runs, and the accounting view when `accounting` is set.
    fn render(
        &self,
        states: &[Arc<SourceState>],
        rounds: BTreeMap<Target, u64>,
        cadence: &BTreeMap<Target, Cadence>,
        unknown: &BTreeSet<Target>,
        audit: Option<&Exposition>,
        accounting: bool,
    ) -> Publication {
        let reports: Vec<&SourceReport> = states.iter().map(|s| &s.report).collect();
        let mut builder = ExpositionBuilder::default();
        builder.extend(&metrics::render_exporter(&reports));
        if !unknown.is_empty() {
            builder.extend(&metrics::render_unknown(unknown.iter().copied()));
        }
        if !cadence.is_empty() {
            let cadence = cadence.iter().map(|(t, c)| (*t, c.cost, c.pause));
            builder.extend(&metrics::render_cadence(cadence));
        }
        for state in states {
            builder.extend(&state.fragment);
        }
        if let Some(audit) = audit {
            builder.extend(audit);
        }
        if accounting {
            let rulesets: Vec<(Origin, &Ruleset)> = reports
                .iter()
                .filter_map(|r| {
                    let collected = r.outcome.as_ref().ok()?;
                    Some((origin(r.target), collected.ruleset.as_ref()))
                })
                .collect();
            let (families, problems) = (self.render_accounting)(&rulesets, &self.config.accounting);
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

/// The kind of source `target` is, for the accounting view.
fn origin(target: Target) -> Origin {
    match target {
        Target::Nftables => Origin::Nftables,
        _ => Origin::Iptables,
    }
}

/// A collection of one source under way in a task of its own.
struct Running {
    target: Target,
    started: Instant,
    task: JoinHandle<()>,
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
        tracing::error!(command, error = %Chain(&e), "processing a dump failed");
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

    /// Whether the last call for `scope` had a message.
    fn is_set(&self, scope: Scope) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(&scope)
            .is_some_and(|messages| !messages.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::Poll;
    use std::time::Duration;

    use super::{
        CollectConfig, Collector, Dump, LogOnce, Publication, Selection, SourceError, first_of,
        off_thread,
    };
    use crate::accounting::Origin;
    use crate::accounting::{self, AccountingConfig, Problem};
    use crate::exposition::{Exposition, Format, Storage};
    use crate::metrics::MetricsConfig;
    use crate::ruleset::Ruleset;
    use crate::source::{CommandOutput, Target};

    fn config() -> CollectConfig {
        CollectConfig {
            selection: Selection::Explicit(vec![Target::Iptables]),
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(5),
            max_output_bytes: 1 << 20,
            metrics: MetricsConfig::default(),
            accounting: AccountingConfig::default(),
            storage: Storage::Plain,
            set_elements_limit: 0,
            iptables_netlink: false,
            cpu_budget: 0.0,
        }
    }

    /// A run of iptables-save whose accounting chain counts one rule tagged `tag`.
    fn dump(tag: &str) -> impl Future<Output = Result<Dump, SourceError>> + use<> {
        let stdout = format!(
            "*filter\n:INPUT ACCEPT [0:0]\n:ACCT4 - [0:0]\n[5:500] -A INPUT -j ACCT4\n\
             [3:300] -A ACCT4 -m comment --comment \"={tag}= web\"\nCOMMIT\n"
        );
        std::future::ready(Ok(Dump::Text(CommandOutput {
            stdout,
            stderr: String::new(),
            invalid_utf8_lines: 0,
        })))
    }

    /// The accounting view with a bug: it panics on the tag `boom`.
    fn render_with_a_bug(
        rulesets: &[(Origin, &Ruleset)],
        config: &AccountingConfig,
    ) -> (Exposition, Vec<Problem>) {
        let (families, problems) = accounting::render(rulesets, config);
        let text = families.to_vec(Format::Text);
        assert!(
            memchr::memmem::find(&text, b"tag=\"boom\"").is_none(),
            "a bug in the accounting view"
        );
        (families, problems)
    }

    fn lines(publication: &Publication) -> Vec<String> {
        String::from_utf8(publication.exposition.to_vec(Format::Text))
            .expect("UTF-8")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn has(publication: &Publication, line: &str) -> bool {
        lines(publication).iter().any(|l| l == line)
    }

    #[tokio::test]
    async fn a_panic_while_rendering_fails_the_collection_and_the_loop_goes_on() {
        let collector = Collector::with_accounting_render(config(), render_with_a_bug);
        let failed = collector.round(Target::Iptables, dump("boom")).await;
        assert!(
            has(&failed, "iptables_scrape_success 0"),
            "{:?}",
            lines(&failed)
        );
        assert!(has(
            &failed,
            "netfilter_exporter_collection_success{source=\"iptables\"} 0"
        ));
        assert!(
            !lines(&failed)
                .iter()
                .any(|l| l.contains("netfilter_accounting")),
            "{:?}",
            lines(&failed)
        );
        let failures: Vec<_> = failed.failures().collect();
        assert!(
            matches!(
                failures[..],
                [(Target::Iptables, SourceError::Internal { .. })]
            ),
            "{failures:?}"
        );
        assert!(Arc::ptr_eq(&collector.subscribe().borrow(), &failed));
        assert_eq!(failed.rounds.get(&Target::Iptables), Some(&1));

        // The next turn of the loop collects and publishes as usual.
        let next = collector.round(Target::Iptables, dump("web")).await;
        assert!(
            has(&next, "iptables_scrape_success 1"),
            "{:?}",
            lines(&next)
        );
        assert!(has(
            &next,
            "netfilter_accounting_packets_total{family=\"ipv4\",tag=\"web\"} 3"
        ));
        assert_eq!(next.failures().count(), 0);
        assert_eq!(next.rounds.get(&Target::Iptables), Some(&2));
        assert!(Arc::ptr_eq(&collector.subscribe().borrow(), &next));
    }

    #[tokio::test]
    async fn the_audits_families_join_every_publication_after_it_published() {
        let collector = Collector::new(config());
        let families = |value: u64| {
            let mut out = crate::exposition::ExpositionBuilder::default();
            out.family(
                "netfilter_audit_check_success",
                "help",
                crate::exposition::MetricType::Gauge,
            )
            .sample(&[], value);
            out.finish()
        };
        collector.publish_audit(families(0)).await;
        assert!(has(
            &collector.subscribe().borrow(),
            "netfilter_audit_check_success 0"
        ));
        // A collection publishes again, with the audit's last families.
        let next = collector.round(Target::Iptables, dump("web")).await;
        assert!(
            has(&next, "netfilter_audit_check_success 0"),
            "{:?}",
            lines(&next)
        );
        assert!(has(&next, "iptables_scrape_success 1"));
        collector.publish_audit(families(1)).await;
        let last = collector.subscribe().borrow().clone();
        assert!(
            has(&last, "netfilter_audit_check_success 1"),
            "{:?}",
            lines(&last)
        );
        assert!(!has(&last, "netfilter_audit_check_success 0"));
        assert!(has(&last, "iptables_scrape_success 1"));
    }

    #[tokio::test]
    async fn a_panic_in_a_collection_task_is_a_failed_collection() {
        let collector = Collector::new(config());
        let panicking = std::future::poll_fn(|_| -> Poll<Result<Dump, SourceError>> {
            panic!("a bug in a collection")
        });
        let failed = collector.round(Target::Iptables, panicking).await;
        assert!(
            has(&failed, "iptables_scrape_success 0"),
            "{:?}",
            lines(&failed)
        );
        let failures: Vec<_> = failed.failures().collect();
        match failures[..] {
            [(Target::Iptables, SourceError::Internal { reason, .. })] => {
                assert!(reason.contains("a bug in a collection"), "{reason}")
            }
            _ => panic!("not a failed collection: {failures:?}"),
        }
        let next = collector.round(Target::Iptables, dump("web")).await;
        assert!(
            has(&next, "iptables_scrape_success 1"),
            "{:?}",
            lines(&next)
        );
    }

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
