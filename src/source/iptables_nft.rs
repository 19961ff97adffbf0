//! The iptables and ip6tables sources on the nf_tables backend, read over netlink instead
//! of by running `iptables-save` for every collection: the kernel's dump that
//! `iptables-save` makes restarts its walk for every chunk, and costs seconds of CPU on a
//! large node, while a per-chain netlink read of the same rules costs a fraction.
//!
//! Netlink gives counters, policies and each rule's expressions, not the rule's text that
//! the `rule` label and the comments come from. Those are cached, keyed by what a rule is
//! ([`RuleKey`]: its expressions without counter values, and its user data), and filled by
//! running `iptables-save --counters` when a read meets a rule without a cached text: its
//! rules are paired with the netlink read's by position in each chain, when the ruleset's
//! generation is the same before the netlink read and after `iptables-save`, so a label is
//! never paired with another rule's counters. kube-proxy re-creates identical rules under
//! new handles when it restores; a key of the rule's content still finds their text. The
//! collection whose read missed publishes `iptables-save`'s own result, as the iptables-save
//! path does; the next one reads netlink only. See docs/iptables-nft.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::ruleset::{
    BaseChain, Chain, Counters, Family, Hook, Matches, Policy, Rule, Ruleset, Table,
};
use futures_util::future::BoxFuture;

use crate::source::nftables::{self, ReadConfig, RuleKey, Snapshot, Tables};
use crate::source::{
    self, CommandOutput, Limits, Presence, Reading, Source, SourceError, SourceId, iptables_save,
};

/// The iptables or ip6tables source read over netlink, keeping the rule texts it learnt
/// between reads.
#[derive(Debug)]
pub struct Netlink {
    id: SourceId,
    texts: Arc<Mutex<RuleTexts>>,
}

impl Netlink {
    /// `id` (iptables or ip6tables), with no rule text learnt yet.
    pub fn new(id: SourceId) -> Self {
        Netlink {
            id,
            texts: Arc::default(),
        }
    }
}

impl Source for Netlink {
    fn id(&self) -> SourceId {
        self.id
    }

    fn presence(&self, timeout: std::time::Duration) -> Presence {
        source::iptables_presence(self.id.family().unwrap_or(Family::Ipv4), timeout)
    }

    fn read(&self, limits: Limits) -> BoxFuture<'static, Result<Reading, SourceError>> {
        let id = self.id;
        let texts = Arc::clone(&self.texts);
        let save = source::run(
            self.id.reader(),
            &["--counters"],
            limits.timeout,
            limits.max_output_bytes,
        );
        Box::pin(async move { read(id, texts, limits.timeout, save).await })
    }
}

/// The text of a rule as `iptables-save` prints it, with what the parser read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Text {
    text: String,
    stripped: Option<String>,
    comments: Vec<String>,
    matches: Matches,
}

/// Which backend the system's `iptables-save` reads, as its header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Not known yet: `iptables-save` has not printed a header.
    Unknown,
    /// nf_tables: netlink reads the same tables.
    NfTables,
    /// The legacy backend: netlink does not see its tables.
    Legacy,
}

/// The rule texts of one source, kept from collection to collection.
#[derive(Debug)]
struct RuleTexts {
    by_key: HashMap<RuleKey, Arc<Text>>,
    backend: Backend,
    /// Runs of `iptables-save` since the start.
    save_runs: u64,
}

impl Default for RuleTexts {
    fn default() -> Self {
        RuleTexts {
            by_key: HashMap::new(),
            backend: Backend::Unknown,
            save_runs: 0,
        }
    }
}

/// How a collection got its rule texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextStats {
    /// Rules of the netlink read that had no cached text; 0 when the collection read
    /// netlink only.
    pub uncached_rules: usize,
    /// Runs of `iptables-save` by this source since the exporter started.
    pub save_runs: u64,
}

/// Reads the iptables source `id`: a netlink read, and `save` (a run of
/// `iptables-save --counters`) when a rule's text is not cached or the backend is not yet
/// known to be nf_tables. `texts` is the source's cache.
async fn read(
    id: SourceId,
    texts: Arc<Mutex<RuleTexts>>,
    timeout: std::time::Duration,
    save: impl Future<Output = Result<CommandOutput, SourceError>>,
) -> Result<Reading, SourceError> {
    let family = id.family().unwrap_or(Family::Ipv4);
    let backend = lock(&texts).backend;
    if backend == Backend::Legacy {
        return saved(id, save.await?).await;
    }
    let config = ReadConfig {
        timeout,
        tables: Tables::IptablesNft(family),
        set_elements_limit: 0,
    };
    let read = tokio::task::spawn_blocking(move || nftables::read(&config)).await;
    let mut snapshot = match read {
        Ok(Ok(snapshot)) => snapshot,
        // No nf_tables at all: this iptables can only be legacy.
        Ok(Err(nftables::ReadError::Unavailable(_))) => {
            lock(&texts).backend = Backend::Legacy;
            return saved(id, save.await?).await;
        }
        // Whatever keeps netlink from giving a snapshot (a ruleset that changed during
        // every read, an error), iptables-save still can.
        Ok(Err(e)) => {
            tracing::debug!(error = %crate::error_chain::Chain(&e), "netlink read failed; running iptables-save");
            return saved(id, save.await?).await;
        }
        Err(e) => {
            tracing::debug!(error = %crate::error_chain::Chain(&e), "netlink read failed; running iptables-save");
            return saved(id, save.await?).await;
        }
    };
    if backend == Backend::NfTables {
        // Building 100k rules takes CPU time: off the I/O threads.
        let cache = Arc::clone(&texts);
        let building = tokio::task::spawn_blocking(move || {
            let texts = lock(&cache);
            let built = build(&snapshot, &texts).map(|ruleset| (ruleset, texts.save_runs));
            (snapshot, built)
        });
        let (read, built) = building.await.map_err(|e| SourceError::Internal {
            command: "netlink".to_owned(),
            reason: e.to_string(),
        })?;
        snapshot = read;
        if let Some((ruleset, save_runs)) = built {
            let stats = TextStats {
                uncached_rules: 0,
                save_runs,
            };
            return Ok(Reading {
                text_stats: Some(stats),
                ..Reading::new(ruleset)
            });
        }
    }
    let output = save.await?;
    let generation = snapshot.ruleset.generation;
    let after = tokio::task::spawn_blocking(move || nftables::generation(timeout).ok())
        .await
        .ok()
        .flatten();
    let learning = tokio::task::spawn_blocking(move || {
        let mut texts = lock(&texts);
        texts.save_runs += 1;
        texts.backend = backend_of(&output.stdout).unwrap_or(texts.backend);
        let uncached = snapshot
            .keys
            .iter()
            .filter(|k| !texts.by_key.contains_key(*k))
            .count();
        let same_state = after.is_some() && after == generation;
        let parsed = (texts.backend == Backend::NfTables && same_state)
            .then(|| crate::source::iptables_save::parse(family, &output.stdout));
        if let Some(parsed) = &parsed {
            learn(&mut texts, parsed, &snapshot);
        }
        let stats = TextStats {
            uncached_rules: uncached,
            save_runs: texts.save_runs,
        };
        Reading {
            text_stats: Some(stats),
            ..iptables_save::reading(family, output, parsed)
        }
    });
    learning.await.map_err(|e| SourceError::Internal {
        command: "iptables-save".to_owned(),
        reason: e.to_string(),
    })
}

/// What `iptables-save` printed, parsed off the I/O threads.
async fn saved(id: SourceId, output: CommandOutput) -> Result<Reading, SourceError> {
    let family = id.family().unwrap_or(Family::Ipv4);
    source::blocking(id, move || Ok(iptables_save::reading(family, output, None))).await
}

fn lock(texts: &Mutex<RuleTexts>) -> std::sync::MutexGuard<'_, RuleTexts> {
    // A panic while the cache was updated leaves whole entries; it is still usable.
    texts.lock().unwrap_or_else(|e| e.into_inner())
}

/// The backend an `iptables-save` dump says it read, from its `# Generated by` line.
fn backend_of(dump: &str) -> Option<Backend> {
    let header = dump.lines().find(|l| l.starts_with("# Generated by"))?;
    if header.contains("(nf_tables)") {
        Some(Backend::NfTables)
    } else if header.contains("(legacy)") {
        Some(Backend::Legacy)
    } else {
        None
    }
}

/// Adds to `texts` the text of every rule of `parsed` (an `iptables-save` dump) paired by
/// position with the rules of `snapshot` (a netlink read of the same generation), chain by
/// chain; a chain whose rule counts differ is left out. Then keeps only the keys of
/// `snapshot`, so that the cache holds what the ruleset holds.
fn learn(texts: &mut RuleTexts, parsed: &Ruleset, snapshot: &Snapshot) {
    let mut keys = snapshot.keys.iter();
    let mut seen: HashMap<RuleKey, Arc<Text>> = HashMap::with_capacity(snapshot.keys.len());
    // Looked up by name: tens of thousands of chains, searched one by one, would cost
    // time quadratic in their number.
    let printed_chains: HashMap<(&str, &str), &Chain> = parsed
        .chains()
        .map(|(table, chain)| ((table.name.as_str(), chain.name.as_str()), chain))
        .collect();
    for (table, chain) in snapshot.ruleset.chains() {
        let chain_keys: Vec<&RuleKey> = keys.by_ref().take(chain.rules.len()).collect();
        let printed = printed_chains
            .get(&(table.name.as_str(), chain.name.as_str()))
            .filter(|printed| printed.rules.len() == chain_keys.len());
        for (i, &key) in chain_keys.iter().enumerate() {
            let text = match printed {
                Some(printed) => {
                    let rule = &printed.rules[i];
                    Arc::new(Text {
                        text: rule.text.clone(),
                        stripped: rule.stripped.clone(),
                        comments: rule.comments.clone(),
                        matches: rule.matches.clone(),
                    })
                }
                None => match texts.by_key.get(key) {
                    Some(known) => Arc::clone(known),
                    None => continue,
                },
            };
            seen.insert(*key, text);
        }
    }
    texts.by_key = seen;
}

/// The ruleset `iptables-save` would print for `snapshot`, with every text from `texts`;
/// `None` when a rule's text is not there.
fn build(snapshot: &Snapshot, texts: &RuleTexts) -> Option<Ruleset> {
    let mut keys = snapshot.keys.iter();
    let mut tables = Vec::with_capacity(snapshot.ruleset.tables.len());
    for read in &snapshot.ruleset.tables {
        let mut table = Table::new(read.family, read.name.clone());
        let builtins = nftables::builtin_chains(&read.name).unwrap_or_default();
        // iptables-save prints every built-in chain of a table, the kernel's or not, first.
        for &(name, ..) in builtins {
            let chain = read.chain(name);
            table.chains.push(Chain {
                name: name.to_owned(),
                base: Some(BaseChain {
                    hook: Hook::of_builtin_chain(name),
                    policy: chain
                        .and_then(|c| c.base.as_ref())
                        .map_or(Policy::Accept, |b| b.policy),
                    counters: chain.map_or_else(Counters::default, Chain::counters),
                    chain_type: None,
                    priority: None,
                }),
                rules: Vec::new(),
            });
        }
        for chain in &read.chains {
            let rules: Option<Vec<Rule>> = chain
                .rules
                .iter()
                .map(|rule| {
                    let text = texts.by_key.get(keys.next()?)?;
                    Some(Rule {
                        position: rule.position,
                        handle: rule.handle,
                        counters: rule.counters,
                        counted: true,
                        text: text.text.clone(),
                        stripped: text.stripped.clone(),
                        comments: text.comments.clone(),
                        matches: text.matches.clone(),
                    })
                })
                .collect();
            let rules = rules?;
            // Only the built-in chains, pushed first, can be there already.
            let builtin = table.chains[..builtins.len()]
                .iter_mut()
                .find(|c| c.name == chain.name);
            match builtin {
                Some(builtin) => builtin.rules = rules,
                None => table.chains.push(Chain {
                    name: chain.name.clone(),
                    base: None,
                    rules,
                }),
            }
        }
        tables.push(table);
    }
    Some(Ruleset {
        tables,
        unparsed: Vec::new(),
        generation: snapshot.ruleset.generation,
        ipsets: Vec::new(),
    })
}

#[cfg(test)]
mod tests;
