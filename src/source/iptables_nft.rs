//! The iptables and ip6tables sources on the nf_tables backend, read over netlink instead
//! of by running `iptables-save` for every collection: the kernel's dump that
//! `iptables-save` makes restarts its walk for every chunk, and costs seconds of CPU on a
//! large node, while a per-chain netlink read of the same rules costs a fraction.
//!
//! Netlink gives counters, policies and each rule's expressions, not the rule's text that
//! the `rule` label and the comments come from. Texts are cached, keyed by what a rule is
//! ([`RuleKey`]: its expressions without counter values, and its user data), so that
//! kube-proxy's restores, which re-create identical rules under new handles, still find
//! theirs. A rule without a cached text has it decoded from its expressions (`decode.rs`),
//! once the host's own listing of a chain has shown that the decoder prints each of its
//! extensions as the host's iptables does; what the decoder declines is learnt from
//! `iptables -S` of its chain, or `iptables-save` of its table, paired by position with the
//! netlink read at one ruleset generation, so a label is never paired with another rule's
//! counters. See docs/iptables-nft.md.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::ruleset::{
    BaseChain, Chain, Counters, Family, Hook, Matches, Policy, Rule, Ruleset, Table,
};
use futures_util::future::BoxFuture;

use crate::source::nftables::{self, ReadConfig, RuleKey, Snapshot, Tables};
use crate::source::{
    self, CommandOutput, Limits, Presence, Reading, Source, SourceError, SourceId, ipset,
    iptables_save,
};
use checked::{Decoding, check, learn_trusted, parse_decoded, trust_all, unchecked_chains};
pub use decode::Extension;

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

    fn presence(&self, timeout: Duration) -> Presence {
        source::iptables_presence(self.id.family().unwrap_or(Family::Ipv4), timeout)
    }

    fn read(&self, limits: Limits) -> BoxFuture<'static, Result<Reading, SourceError>> {
        let reader = Reader {
            id: self.id,
            texts: Arc::clone(&self.texts),
            limits,
            deadline: Instant::now() + limits.timeout,
        };
        Box::pin(reader.read())
    }
}

/// The text of a rule as `iptables-save` prints it, with what the parser read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Text {
    text: String,
    stripped: Option<String>,
    comments: Vec<String>,
    matches: Matches,
    /// Its line was not valid UTF-8 (read with U+FFFD in place of the invalid bytes).
    invalid_utf8: bool,
}

impl Text {
    /// The text of `rule`, printed in a dump that did or did not hold invalid UTF-8.
    fn of(rule: &Rule, dump_invalid_utf8: bool) -> Self {
        Text {
            text: rule.text.clone(),
            stripped: rule.stripped.clone(),
            comments: rule.comments.clone(),
            matches: rule.matches.clone(),
            invalid_utf8: dump_invalid_utf8 && rule.text.contains('\u{FFFD}'),
        }
    }
}

/// A listing or a save of rules, parsed, to learn their texts from.
struct Printed {
    ruleset: Ruleset,
    /// Some of its lines were not valid UTF-8.
    invalid_utf8: bool,
}

impl Printed {
    fn parse(family: Family, output: &CommandOutput) -> Self {
        Printed {
            ruleset: iptables_save::parse(family, &output.stdout),
            invalid_utf8: output.invalid_utf8_lines > 0,
        }
    }
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
    /// Whether the decoder's texts of an extension were found equal to the host's own
    /// listing (`true`) or not; an extension not there is not checked yet.
    trusted: HashMap<Extension, bool>,
    /// What kept the text of a rule from being decoded, for the rules it did.
    undecoded: HashMap<RuleKey, Extension>,
    backend: Backend,
    /// Runs of `iptables-save` since the start.
    save_runs: u64,
}

impl Default for RuleTexts {
    fn default() -> Self {
        RuleTexts {
            by_key: HashMap::new(),
            trusted: HashMap::new(),
            undecoded: HashMap::new(),
            backend: Backend::Unknown,
            save_runs: 0,
        }
    }
}

/// How a read got its rule texts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextStats {
    /// Rules whose text was cached.
    pub cached: usize,
    /// Rules whose text was decoded from their expressions.
    pub decoded: usize,
    /// Rules whose text came from listing their chain (`iptables -S CHAIN`).
    pub listed: usize,
    /// Rules whose text came from `iptables-save`, of their table or of every table.
    pub saved: usize,
    /// Runs of `iptables-save` by this source since the exporter started.
    pub save_runs: u64,
    /// Rules of the read whose text the decoder does not make, by what stopped it (an
    /// extension, a revision or an expression, or an extension whose texts differ from the
    /// host's listing); their texts were listed.
    pub undecoded: Vec<(String, usize)>,
}

impl TextStats {
    /// Rules that needed more than netlink: 0 when the read was netlink alone.
    pub fn uncached_rules(&self) -> usize {
        self.listed + self.saved
    }
}

/// Reads of the netlink dump when the ruleset changes between a read and the listings
/// that complete it; then iptables-save's own dump is published.
const ATTEMPTS: u32 = 3;

/// Most chains of one table listed one by one in a read; beyond, one `iptables-save` of the
/// table costs less than the listings' processes.
const MAX_LISTINGS: usize = 64;

/// One read of an iptables source.
struct Reader {
    id: SourceId,
    texts: Arc<Mutex<RuleTexts>>,
    limits: Limits,
    deadline: Instant,
}

/// What the texts a read missed were learnt from, table by table.
#[derive(Debug, PartialEq, Eq)]
enum Missing {
    /// These chains, each listed with `iptables -S`.
    Chains(Vec<String>),
    /// The whole table, with `iptables-save -t`.
    Table,
}

impl Reader {
    /// A netlink read, completed with the texts the cache does not have: listed per chain,
    /// or saved per table, at the read's generation; read again when the ruleset changed
    /// meanwhile. iptables-save's own dump when the backend is legacy, netlink fails, or the
    /// ruleset keeps changing.
    async fn read(self) -> Result<Reading, SourceError> {
        if self.backend().await == Backend::Legacy {
            return self.whole_save(None).await;
        }
        let mut stats = TextStats::default();
        for _ in 0..ATTEMPTS {
            let (snapshot, decoded) = match self.netlink().await {
                Ok(Ok(read)) => read,
                Ok(Err(nftables::ReadError::Unavailable(_))) => {
                    // No nf_tables at all: this iptables can only be legacy.
                    lock(&self.texts).backend = Backend::Legacy;
                    return self.whole_save(None).await;
                }
                // Whatever keeps netlink from giving a snapshot (a ruleset that changed
                // during every read, an error), iptables-save still can.
                Ok(Err(e)) => {
                    tracing::debug!(source = %self.id, error = %crate::error_chain::Chain(&e), "netlink read failed; running iptables-save");
                    return self.whole_save(None).await;
                }
                Err(e) => {
                    tracing::debug!(source = %self.id, error = %crate::error_chain::Chain(&e), "netlink read failed; running iptables-save");
                    return self.whole_save(None).await;
                }
            };
            let snapshot = Arc::new(snapshot);
            if self.learn_decoded(&snapshot, decoded, &mut stats).await?
                && self.complete(&snapshot, &mut stats).await?
            {
                let snapshot = Arc::try_unwrap(snapshot).unwrap_or_else(|s| (*s).clone());
                return self.built(snapshot, stats).await;
            }
        }
        self.whole_save(None).await
    }

    /// The backend of the host's iptables, asked once: `iptables -V` says `(nf_tables)` or
    /// `(legacy)` (older versions, without either, are legacy). Without the command, the
    /// netlink read goes on: a rule that needs a listing then fails the read.
    async fn backend(&self) -> Backend {
        let known = lock(&self.texts).backend;
        if known != Backend::Unknown {
            return known;
        }
        let version = self.run(self.command(), &["-V"]).await;
        let backend = match version {
            Ok(out) if out.stdout.contains("(nf_tables)") => Backend::NfTables,
            Ok(_) => Backend::Legacy,
            Err(_) => return Backend::Unknown,
        };
        lock(&self.texts).backend = backend;
        backend
    }

    /// `iptables` or `ip6tables`.
    fn command(&self) -> &'static str {
        match self.id {
            SourceId::Ip6tables => "ip6tables",
            _ => "iptables",
        }
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Runs `command args…` within what is left of the read's deadline; a command that
    /// overruns it is said to have missed the read's whole timeout, as the user set it.
    async fn run(&self, command: &str, args: &[&str]) -> Result<CommandOutput, SourceError> {
        let limit = self.limits.max_output_bytes;
        match source::run(command, args, self.remaining(), limit).await {
            Err(SourceError::TimedOut { command, .. }) => Err(SourceError::TimedOut {
                command,
                timeout: self.limits.timeout,
            }),
            result => result,
        }
    }

    /// The netlink read of the source's tables, on a thread that may block, with the texts
    /// of the rules the cache does not know decoded from their expressions.
    async fn netlink(
        &self,
    ) -> Result<
        Result<(Snapshot, Vec<(usize, Decoding)>), nftables::ReadError>,
        tokio::task::JoinError,
    > {
        let config = ReadConfig {
            timeout: self.remaining(),
            tables: Tables::IptablesNft(self.family()),
            set_elements_limit: 0,
        };
        let (texts, family) = (Arc::clone(&self.texts), self.family());
        tokio::task::spawn_blocking(move || {
            let texts = lock(&texts);
            let (mut decoded, mut attempt) = (Vec::new(), 0);
            let mut sets = ipset::SetNames::new(config.timeout);
            let mut extensions: HashSet<Arc<[Extension]>> = HashSet::new();
            let snapshot = nftables::read_with(&config, &mut |seen| {
                if seen.attempt != attempt {
                    decoded.clear();
                    attempt = seen.attempt;
                }
                if !texts.by_key.contains_key(seen.key) {
                    let mut rule =
                        decode::rule(family, seen.chain, seen.attrs, &mut |i| sets.name(i));
                    // Most rules share their few sets of extensions: kept once each.
                    if let Ok(decoded) = &mut rule {
                        match extensions.get(&decoded.extensions) {
                            Some(known) => decoded.extensions = Arc::clone(known),
                            None => {
                                extensions.insert(Arc::clone(&decoded.extensions));
                            }
                        }
                    }
                    decoded.push((seen.index, rule));
                }
            })?;
            if snapshot.attempts != attempt {
                decoded.clear();
            }
            Ok((snapshot, decoded))
        })
        .await
    }

    fn family(&self) -> Family {
        self.id.family().unwrap_or(Family::Ipv4)
    }

    /// Adds to the cache the decoded texts of `snapshot` whose extensions are trusted,
    /// after checking the extensions met for the first time against the host's listing of
    /// one chain that holds each. `false` when the ruleset moved on first: read again.
    async fn learn_decoded(
        &self,
        snapshot: &Arc<Snapshot>,
        decoded: Vec<(usize, Decoding)>,
        stats: &mut TextStats,
    ) -> Result<bool, SourceError> {
        if decoded.is_empty() {
            return Ok(true);
        }
        // Parsing, checking and learning go over every decoded rule: on threads that may
        // block, not on the runtime's.
        let (family, read, cache) = (self.family(), Arc::clone(snapshot), Arc::clone(&self.texts));
        let (texts, checks) = source::blocking(self.id, move || {
            let texts = parse_decoded(family, &read, decoded);
            let checks = unchecked_chains(&read, &texts, &lock(&cache));
            Ok((Arc::new(texts), checks))
        })
        .await?;
        for (table, chain) in checks {
            let listed = match self.list(&table, &chain).await {
                Ok(listed) => listed,
                Err(SourceError::NotFound { .. }) => {
                    // Without iptables there is no other printing to differ from.
                    tracing::debug!(source = %self.id, "no iptables to check decoded texts against; trusting the decoder");
                    let (texts, cache) = (Arc::clone(&texts), Arc::clone(&self.texts));
                    source::blocking(self.id, move || {
                        trust_all(&mut lock(&cache), &texts);
                        Ok(())
                    })
                    .await?;
                    break;
                }
                Err(_) if self.generation().await != snapshot.ruleset.generation => {
                    return Ok(false);
                }
                // Unchecked, the rules are listed or saved as if not decoded.
                Err(e) => {
                    tracing::debug!(source = %self.id, table, chain, error = %crate::error_chain::Chain(&e), "listing a chain to check decoded texts failed");
                    break;
                }
            };
            if self.generation().await != snapshot.ruleset.generation {
                return Ok(false);
            }
            let (id, read, texts, cache) = (
                self.id,
                Arc::clone(snapshot),
                Arc::clone(&texts),
                Arc::clone(&self.texts),
            );
            let (decoded, listed) = source::blocking(self.id, move || {
                let mut cache = lock(&cache);
                Ok(check(
                    id, &mut cache, &read, &texts, &listed, &table, &chain,
                ))
            })
            .await?;
            stats.decoded += decoded;
            stats.listed += listed;
        }
        let (read, cache) = (Arc::clone(snapshot), Arc::clone(&self.texts));
        stats.decoded += source::blocking(self.id, move || {
            Ok(learn_trusted(&mut lock(&cache), &read, &texts))
        })
        .await?;
        Ok(true)
    }

    /// The ruleset's generation now; `None` when it cannot be read.
    async fn generation(&self) -> Option<u32> {
        let timeout = self.remaining();
        tokio::task::spawn_blocking(move || nftables::generation(timeout).ok())
            .await
            .ok()
            .flatten()
    }

    /// Learns the texts `snapshot` misses, each at the snapshot's generation: the chains
    /// holding them listed one by one, or their table saved when it is cheaper. `false`
    /// when the ruleset moved on first (what was learnt until then is kept): read again.
    async fn complete(
        &self,
        snapshot: &Arc<Snapshot>,
        stats: &mut TextStats,
    ) -> Result<bool, SourceError> {
        let generation = snapshot.ruleset.generation;
        // A lookup per rule: on a thread that may block, not on the runtime's.
        let (read, texts) = (Arc::clone(snapshot), Arc::clone(&self.texts));
        let plan = source::blocking(self.id, move || Ok(missing(&read, &lock(&texts)))).await?;
        for (table, wanted) in plan {
            let mut save = matches!(wanted, Missing::Table);
            if let Missing::Chains(chains) = wanted {
                for chain in &chains {
                    match self.list(&table, chain).await {
                        Ok(listed) if self.generation().await == generation => {
                            stats.listed += learn_from(&mut lock(&self.texts), &listed, snapshot);
                        }
                        Ok(_) => return Ok(false),
                        Err(e @ SourceError::NotFound { .. }) => return Err(e),
                        // The chain changed or went away since the read.
                        Err(_) if self.generation().await != generation => return Ok(false),
                        Err(e) => {
                            tracing::debug!(source = %self.id, table, chain, error = %crate::error_chain::Chain(&e), "listing the chain failed; saving the table");
                            save = true;
                            break;
                        }
                    }
                }
            }
            if save {
                let saved = self.save_table(&table).await?;
                if self.generation().await != generation {
                    return Ok(false);
                }
                stats.saved += learn_from(&mut lock(&self.texts), &saved, snapshot);
            }
        }
        Ok(true)
    }

    /// The rules of `chain` of `table` as `iptables -S` lists them, parsed.
    async fn list(&self, table: &str, chain: &str) -> Result<Printed, SourceError> {
        let args = ["-t", table, "-S", chain];
        let mut out = self.run(self.command(), &args).await?;
        // The listing in the form of a dump, for the dump's parser.
        let mut dump = format!("*{table}\n:{chain} - [0:0]\n");
        for line in out.stdout.lines().filter(|l| l.starts_with("-A ")) {
            dump.push_str(line);
            dump.push('\n');
        }
        dump.push_str("COMMIT\n");
        out.stdout = dump;
        let family = self.id.family().unwrap_or(Family::Ipv4);
        source::blocking(self.id, move || Ok(Printed::parse(family, &out))).await
    }

    /// `table` as `iptables-save -t` prints it, parsed.
    async fn save_table(&self, table: &str) -> Result<Printed, SourceError> {
        let args = ["-t", table];
        let out = self.run(self.id.reader(), &args).await?;
        lock(&self.texts).save_runs += 1;
        let family = self.id.family().unwrap_or(Family::Ipv4);
        source::blocking(self.id, move || Ok(Printed::parse(family, &out))).await
    }

    /// The ruleset of `snapshot` with every text from the cache, which keeps only the
    /// snapshot's rules; iptables-save's own dump when a text is still missing (a chain
    /// whose listing did not pair with the kernel's rules).
    async fn built(self, snapshot: Snapshot, mut stats: TextStats) -> Result<Reading, SourceError> {
        let texts = Arc::clone(&self.texts);
        let learnt = stats.uncached_rules() + stats.decoded > 0;
        let building = source::blocking(self.id, move || {
            let mut texts = lock(&texts);
            let built = build(&snapshot, &texts);
            // The cache holds what the ruleset holds, trimmed when it grew.
            if built.is_some() && learnt {
                let present: HashSet<&RuleKey> = snapshot.keys.iter().collect();
                texts.by_key.retain(|key, _| present.contains(key));
                texts.undecoded.retain(|key, _| present.contains(key));
            }
            let invalid_utf8 = snapshot
                .keys
                .iter()
                .filter(|key| texts.by_key.get(*key).is_some_and(|t| t.invalid_utf8))
                .count();
            let mut undecoded: HashMap<String, usize> = HashMap::new();
            if !texts.undecoded.is_empty() {
                for key in &snapshot.keys {
                    if let Some(extension) = texts.undecoded.get(key) {
                        *undecoded.entry(extension.to_string()).or_default() += 1;
                    }
                }
            }
            Ok((built, snapshot, texts.save_runs, invalid_utf8, undecoded))
        });
        let (built, snapshot, save_runs, invalid_utf8_lines, undecoded) = building.await?;
        match built {
            Some(ruleset) => {
                stats.save_runs = save_runs;
                stats.undecoded = undecoded.into_iter().collect();
                stats.undecoded.sort();
                stats.cached = ruleset
                    .rule_count()
                    .saturating_sub(stats.uncached_rules() + stats.decoded);
                Ok(Reading {
                    text_stats: Some(stats),
                    invalid_utf8_lines,
                    ..Reading::new(ruleset)
                })
            }
            None => {
                tracing::debug!(source = %self.id, "a rule's text is still unknown after the listings; running iptables-save");
                self.whole_save(Some(snapshot)).await
            }
        }
    }

    /// Runs `iptables-save --counters` and publishes its dump; with `snapshot` read at the
    /// same generation on nf_tables, its texts are learnt for the next reads.
    async fn whole_save(self, snapshot: Option<Snapshot>) -> Result<Reading, SourceError> {
        let family = self.id.family().unwrap_or(Family::Ipv4);
        let output = self.run(self.id.reader(), &["--counters"]).await?;
        let after = match &snapshot {
            Some(_) => self.generation().await,
            None => None,
        };
        let texts = Arc::clone(&self.texts);
        source::blocking(self.id, move || {
            let mut texts = lock(&texts);
            texts.save_runs += 1;
            // `iptables -V` is asked first; the dump's header tells only when it could not.
            if texts.backend == Backend::Unknown {
                texts.backend = backend_of(&output.stdout).unwrap_or(Backend::Unknown);
            }
            let parsed = iptables_save::parse(family, &output.stdout);
            let same_state = |s: &Snapshot| after.is_some() && after == s.ruleset.generation;
            if let Some(snapshot) = snapshot.filter(same_state)
                && texts.backend == Backend::NfTables
            {
                learn(
                    &mut texts,
                    &parsed,
                    &snapshot,
                    output.invalid_utf8_lines > 0,
                );
            }
            let stats = TextStats {
                saved: parsed.rule_count(),
                save_runs: texts.save_runs,
                ..TextStats::default()
            };
            Ok(Reading {
                text_stats: Some(stats),
                ..iptables_save::reading(family, output, Some(parsed))
            })
        })
        .await
    }
}

/// A rule of the iptables-nft tables of a family, with its text decoded from its
/// expressions or what kept the decoder from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRule {
    /// Its table.
    pub table: String,
    /// Its chain.
    pub chain: String,
    /// Its line as `iptables-save` prints it (without counters), or what stopped the
    /// decoder.
    pub text: Result<String, Extension>,
}

/// Every rule of the iptables-nft tables of `family`, decoded, in the order
/// `iptables-save` prints them within each chain: how the decoder is checked against
/// `iptables-save`. Blocking.
pub fn decode_rules(
    family: Family,
    timeout: Duration,
) -> Result<Vec<DecodedRule>, nftables::ReadError> {
    let config = ReadConfig {
        timeout,
        tables: Tables::IptablesNft(family),
        set_elements_limit: 0,
    };
    let (mut decoded, mut attempt) = (Vec::new(), 0);
    let mut sets = ipset::SetNames::new(timeout);
    let snapshot = nftables::read_with(&config, &mut |seen| {
        if seen.attempt != attempt {
            decoded.clear();
            attempt = seen.attempt;
        }
        let rule = decode::rule(family, seen.chain, seen.attrs, &mut |i| sets.name(i));
        decoded.push(rule.map(|d| d.line));
    })?;
    if snapshot.attempts != attempt {
        decoded.clear();
    }
    let mut decoded = decoded.into_iter();
    let mut rules = Vec::with_capacity(snapshot.keys.len());
    for (table, chain) in snapshot.ruleset.chains() {
        for text in decoded.by_ref().take(chain.rules.len()) {
            rules.push(DecodedRule {
                table: table.name.clone(),
                chain: chain.name.clone(),
                text,
            });
        }
    }
    Ok(rules)
}

/// Per table, what to learn the texts `snapshot` misses from: the chains holding a rule
/// without a cached text, or the whole table when they are many or hold most of its rules.
fn missing(snapshot: &Snapshot, texts: &RuleTexts) -> Vec<(String, Missing)> {
    let mut keys = snapshot.keys.iter();
    let mut missing: Vec<(String, Missing)> = Vec::new();
    for table in &snapshot.ruleset.tables {
        let (mut chains, mut listed_rules) = (Vec::new(), 0);
        for chain in &table.chains {
            let chain_keys = keys.by_ref().take(chain.rules.len());
            if chain_keys.fold(false, |any, key| any | !texts.by_key.contains_key(key)) {
                chains.push(chain.name.clone());
                listed_rules += chain.rules.len();
            }
        }
        let table_rules: usize = table.chains.iter().map(|c| c.rules.len()).sum();
        if chains.is_empty() {
            continue;
        }
        // A save prints the whole table in one process: cheaper than listings of most of it.
        let wanted = if chains.len() > MAX_LISTINGS || 2 * listed_rules > table_rules {
            Missing::Table
        } else {
            Missing::Chains(chains)
        };
        missing.push((table.name.clone(), wanted));
    }
    missing
}

/// Adds to `texts` the texts of the chains of `printed` (a listing or a save made at the
/// generation of `snapshot`) that are not cached, paired by position with the chain's rules
/// in `snapshot`; a chain whose rule counts differ is left out. Returns how many it added.
fn learn_from(texts: &mut RuleTexts, printed: &Printed, snapshot: &Snapshot) -> usize {
    let invalid_utf8 = printed.invalid_utf8;
    let printed: HashMap<(&str, &str), &Chain> = printed
        .ruleset
        .chains()
        .map(|(t, c)| ((t.name.as_str(), c.name.as_str()), c))
        .collect();
    let (mut added, mut offset) = (0, 0);
    for (table, chain) in snapshot.ruleset.chains() {
        let Some(chain_keys) = snapshot.keys.get(offset..offset + chain.rules.len()) else {
            break;
        };
        offset += chain.rules.len();
        let Some(printed) = printed.get(&(table.name.as_str(), chain.name.as_str())) else {
            continue;
        };
        if printed.rules.len() != chain.rules.len() {
            continue;
        }
        for (rule, key) in printed.rules.iter().zip(chain_keys) {
            if let Entry::Vacant(slot) = texts.by_key.entry(*key) {
                slot.insert(Arc::new(Text::of(rule, invalid_utf8)));
                added += 1;
            }
        }
    }
    added
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
fn learn(texts: &mut RuleTexts, parsed: &Ruleset, snapshot: &Snapshot, invalid_utf8: bool) {
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
                Some(printed) => Arc::new(Text::of(&printed.rules[i], invalid_utf8)),
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

mod checked;
mod decode;
#[cfg(test)]
mod tests;
