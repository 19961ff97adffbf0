//! Reading this host's sources for top: each source through its [`Source`], as the
//! collector reads it (the automatic selection asks the same questions), its reading
//! rendered by the exporter's own views and read back ([`super::interpret`]), so that a
//! row here is the series /metrics would have.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::accounting::{self, AccountingConfig};
use crate::budget::{self, Budget};
use crate::collect::{CollectConfig, Dump, Selection};
use crate::error_chain::Chain;
use crate::exposition::{Exposition, Format, Storage};
use crate::metrics::{self, MetricsConfig, SourceReport};
use crate::source::{self, Limits, Presence, Source, SourceError};

use super::interpret::{Families, interpret};
use super::model::{Health, Outcome, Update};
use super::series::Snapshot;

/// The selected sources of this host and how they are read.
pub struct Local {
    sources: Vec<Arc<dyn Source>>,
    auto: bool,
    limits: Limits,
    accounting: AccountingConfig,
    families: Families,
    budget: Budget,
}

impl Local {
    /// The sources `config` selects, set up as it says.
    pub fn new(config: &CollectConfig) -> Local {
        Local {
            sources: crate::collect::selected_sources(config)
                .into_values()
                .collect(),
            auto: config.selection == Selection::Auto,
            limits: Limits {
                timeout: config.timeout,
                max_output_bytes: config.max_output_bytes,
            },
            families: Families::new(&config.accounting.prefix),
            accounting: config.accounting.clone(),
            budget: Budget {
                interval: config.interval,
                share: config.cpu_budget,
            },
        }
    }

    /// Every source read once, concurrently.
    pub async fn read_all(self: &Arc<Self>) -> Vec<Update> {
        let reads: Vec<_> = self
            .sources
            .iter()
            .map(|source| {
                let (local, source) = (Arc::clone(self), Arc::clone(source));
                tokio::spawn(async move { local.read(&source).await.0 })
            })
            .collect();
        let mut updates = Vec::new();
        for (read, source) in reads.into_iter().zip(&self.sources) {
            updates.push(read.await.unwrap_or_else(|e| failed(source.as_ref(), &e)));
        }
        updates
    }

    /// Reads each source on a loop of its own, sending what it read to `updates`, until
    /// nobody receives them: a slow or failing source holds up none of the others. The
    /// pause after a reading is `--delay`, or longer when the reading cost more CPU time
    /// than `--collect-cpu-budget` allows.
    pub fn spawn(self: Arc<Self>, updates: tokio::sync::mpsc::UnboundedSender<Update>) {
        for source in self.sources.clone() {
            let (local, updates) = (Arc::clone(&self), updates.clone());
            tokio::spawn(async move {
                loop {
                    let (reader, read) = (Arc::clone(&local), Arc::clone(&source));
                    let (update, cost) = tokio::spawn(async move { reader.read(&read).await })
                        .await
                        .unwrap_or_else(|e| (failed(source.as_ref(), &e), Duration::ZERO));
                    if updates.send(update).is_err() {
                        return;
                    }
                    tokio::time::sleep(local.budget.pause(cost)).await;
                }
            });
        }
    }

    /// Reads `source` once: the update, and the CPU time the reading cost.
    async fn read(&self, source: &Arc<dyn Source>) -> (Update, Duration) {
        let before = budget::cpu_time();
        let started = Instant::now();
        let origin = source.id().name().to_owned();
        let outcome = match self.dump(source).await {
            Err(e) => Outcome::Failed(Chain(&e).to_string()),
            Ok(Dump::Skipped(presence)) => Outcome::LeftOut(match presence {
                Presence::Unknown(why) => Some(why),
                Presence::Present | Presence::Absent => None,
            }),
            Ok(Dump::Read(reading)) => {
                let report = SourceReport {
                    source: source.id(),
                    outcome: Ok(reading),
                    duration: started.elapsed(),
                    finished_at: SystemTime::now(),
                    series: None,
                };
                let accounting = self.accounting.clone();
                let rendered =
                    tokio::task::spawn_blocking(move || rendered(&report, &accounting)).await;
                match rendered {
                    Ok((text, problems)) => read_back(&text, problems, &self.families),
                    Err(e) => Outcome::Failed(format!("rendering its series failed: {e}")),
                }
            }
        };
        let cost = match (before, budget::cpu_time()) {
            (Some(before), Some(after)) => after.saturating_sub(before),
            _ => Duration::ZERO,
        };
        let outcome = match outcome {
            Outcome::Read {
                snapshot,
                mut health,
            } => {
                health.cpu = Some(cost.as_secs_f64());
                Outcome::Read { snapshot, health }
            }
            other => other,
        };
        (Update { origin, outcome }, cost)
    }

    /// What the collector would make of reading `source`: a reading, or, with the
    /// automatic selection, a source with nothing here.
    async fn dump(&self, source: &Arc<dyn Source>) -> Result<Dump, SourceError> {
        let (id, timeout) = (source.id(), self.limits.timeout);
        let presence = || {
            let source = Arc::clone(source);
            source::blocking(id, move || Ok(source.presence(timeout)))
        };
        if self.auto && source.asks_first() {
            let presence = presence().await?;
            if presence != Presence::Present {
                return Ok(Dump::Skipped(presence));
            }
        }
        match source.read(self.limits).await {
            // A missing command leaves a source out only when it would have had nothing
            // to read.
            Err(e @ SourceError::NotFound { .. }) if self.auto => match presence().await? {
                Presence::Present => Err(e),
                presence => Ok(Dump::Skipped(presence)),
            },
            Ok(reading) if self.auto && reading.ruleset.is_empty() => {
                Ok(Dump::Skipped(Presence::Absent))
            }
            read => read.map(Dump::Read),
        }
    }
}

/// A read of `source` that panicked: a bug, shown as the source's failure.
fn failed(source: &dyn Source, error: &tokio::task::JoinError) -> Update {
    Update {
        origin: source.id().name().to_owned(),
        outcome: Outcome::Failed(format!("reading it failed: {error}")),
    }
}

/// `report`'s exposition as /metrics would have it: the source's families, its accounting
/// tags and the exporter's families about it; and the accounting comments not understood.
/// Each part is dropped once its text is taken, so that a large ruleset's text is held
/// once.
fn rendered(report: &SourceReport, accounting: &AccountingConfig) -> (String, usize) {
    let mut text = Vec::new();
    let mut take = |exposition: Exposition| {
        for chunk in exposition.chunks(Format::Text) {
            text.extend_from_slice(&chunk);
        }
    };
    take(metrics::render_source(
        report,
        &MetricsConfig::default(),
        Storage::Plain,
    ));
    let problems = match &report.outcome {
        Ok(reading) => {
            let (tags, problems) =
                accounting::render(&[(report.source, &reading.ruleset)], accounting);
            take(tags);
            problems.len()
        }
        Err(_) => 0,
    };
    take(metrics::render_exporter(&[report]));
    // The encoder writes UTF-8; anything else would be read with U+FFFD, not refused.
    let text = String::from_utf8(text)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    (text, problems)
}

/// The one update of a source from its exposition `text`: its series and its accounting
/// tags together, as one origin read at one time.
fn read_back(text: &str, problems: usize, families: &Families) -> Outcome {
    let now = unix_time(SystemTime::now());
    let interpreted = interpret(text, families, now);
    let mut at = now;
    let mut series = Vec::new();
    let mut health = Health::default();
    for update in interpreted.updates {
        match update.outcome {
            Outcome::Read {
                snapshot,
                health: found,
            } => {
                if update.origin != super::series::ACCOUNTING {
                    at = snapshot.at;
                    health = found;
                }
                series.extend(snapshot.series);
            }
            other => return other,
        }
    }
    if problems > 0 {
        health
            .notes
            .push(format!("accounting comments not understood: {problems}"));
    }
    Outcome::Read {
        snapshot: Snapshot { at, series },
        health,
    }
}

/// `time` in seconds since the Unix epoch.
pub(super) fn unix_time(time: SystemTime) -> f64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Reading;
    use crate::top::series::Kind;

    const DUMP: &str = "*filter
:INPUT ACCEPT [3:300]
:ACCT4 - [0:0]
[10:840] -A INPUT -p icmp -m comment --comment ping -j ACCEPT
[1:84] -A INPUT -p icmp -m comment --comment ping -j ACCEPT
[2:200] -A ACCT4 -s 10.0.0.1/32 -m comment --comment \"=web_up= uplink\"
COMMIT
";

    #[test]
    fn a_reading_becomes_the_series_of_its_exposition() {
        let ruleset = source::iptables_save::parse(crate::ruleset::Family::Ipv4, DUMP);
        let report = SourceReport {
            source: source::SourceId::Iptables,
            outcome: Ok(Reading::new(ruleset)),
            duration: Duration::from_millis(20),
            finished_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            series: None,
        };
        let (text, problems) = rendered(&report, &AccountingConfig::default());
        assert_eq!(problems, 0);
        let Outcome::Read { snapshot, health } =
            read_back(&text, problems, &Families::new(accounting::DEFAULT_PREFIX))
        else {
            panic!("not read:\n{text}");
        };
        assert_eq!(snapshot.at, 1_700_000_000.0);
        assert_eq!(health.duration, Some(0.02));
        let series: Vec<String> = snapshot
            .series
            .iter()
            .map(|s| {
                let k = &s.key;
                format!(
                    "{:?} {} {} {} {} {}",
                    k.kind, k.source, k.table, k.chain, k.name, s.counters.packets
                )
            })
            .collect();
        // The two rules of one text are one series, as /metrics sums them.
        assert!(
            series.contains(&"Rule iptables filter INPUT -p icmp -j ACCEPT 11".to_owned()),
            "{series:#?}"
        );
        assert!(
            series.contains(&"Comment iptables filter INPUT ping 11".to_owned()),
            "{series:#?}"
        );
        assert!(
            series.contains(&"Chain iptables filter INPUT  3".to_owned()),
            "{series:#?}"
        );
        assert!(
            series.contains(&"Tag accounting ipv4  web out 2".to_owned()),
            "{series:#?}"
        );
        assert!(!snapshot.series.iter().any(|s| s.stands_for_rules));
        assert_eq!(
            snapshot
                .series
                .iter()
                .filter(|s| s.key.kind == Kind::Rule)
                .count(),
            2
        );
    }
}
