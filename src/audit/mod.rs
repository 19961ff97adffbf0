//! The audit: which lines of the firewall nobody expected. It serves the users of
//! azure-iptables-monitor, who list every table with `iptables -S`, match each line against
//! allowlists of regular expressions, and flag a node that has a line no pattern allows.
//!
//! Everything here is pure but [`Allowlist::load`], [`bpf::read`], the Kubernetes client
//! of [`kube`] and the cycle of [`run`]: the lines are derived from a [`Ruleset`] snapshot
//! (the same model the exporter reads), the check is a function of a snapshot and an
//! allowlist, the metrics are rendered fresh from one check, and what Kubernetes is told
//! when is [`policy`]'s.

pub mod allowlist;
pub mod bpf;
pub mod kube;
pub mod policy;
pub mod run;
pub mod settings;

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

pub use allowlist::{Allowlist, AllowlistError};

use crate::error_chain::Chain;
use crate::exposition::{Exposition, ExpositionBuilder, MetricType};
use crate::metrics::names;
use crate::ruleset::{Family, Ruleset, Table};
use crate::source::{SourceError, SourceId};

/// The tables the original lists, each with a pattern file of its name; their metrics
/// are written for every check, 0 when the table does not exist.
pub const TABLES: [&str; 5] = ["filter", "nat", "mangle", "raw", "security"];

/// The lines of `table` as `iptables -t TABLE -S` prints them: `-P CHAIN POLICY` for
/// every base chain, then `-N CHAIN` for every user-defined chain, then `-A CHAIN rule`
/// for the rules of each chain, chains in table order.
pub fn lines(table: &Table) -> Vec<String> {
    let policies = table.chains.iter().filter_map(|chain| {
        let base = chain.base.as_ref()?;
        Some(format!("-P {} {}", chain.name, base.policy))
    });
    let user_chains = table
        .chains
        .iter()
        .filter(|chain| chain.base.is_none())
        .map(|chain| format!("-N {}", chain.name));
    let rules = table.chains.iter().flat_map(|chain| {
        chain
            .rules
            .iter()
            .map(move |rule| format!("-A {} {}", chain.name, rule.text))
    });
    policies.chain(user_chains).chain(rules).collect()
}

/// The `family` label of what the audit checks of `source`: `ipv4` or `ipv6` for the
/// tables of an iptables source, `nftables` for the native nftables tables (of every
/// family, those iptables-save does not print).
pub fn family_label(source: SourceId) -> &'static str {
    source.family().map_or("nftables", Family::as_str)
}

/// The lines of the native nftables tables: `FAMILY TABLE CHAIN` for every chain, and
/// `FAMILY TABLE` for a table without chains, families as nft names them.
pub fn nftables_lines(table: &Table) -> Vec<String> {
    let name = format!("{} {}", table.family.nft_name(), table.name);
    if table.chains.is_empty() {
        return vec![name];
    }
    table
        .chains
        .iter()
        .map(|chain| format!("{name} {}", chain.name))
        .collect()
}

/// Checks the native nftables tables of `ruleset`: one finding per table, named
/// `FAMILY TABLE`, its lines matched against the `nftables` and `global` patterns.
pub fn check_nftables(ruleset: &Ruleset, allowlist: &Allowlist) -> Vec<TableFindings> {
    ruleset
        .tables
        .iter()
        .map(|table| TableFindings {
            table: format!("{} {}", table.family.nft_name(), table.name),
            unexpected: nftables_lines(table)
                .into_iter()
                .filter(|line| !allowlist.allows_nftables(line))
                .collect(),
        })
        .collect()
}

/// The unexpected lines of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableFindings {
    /// The table's name.
    pub table: String,
    /// Its lines that no pattern allows, in `iptables -S` order.
    pub unexpected: Vec<String>,
}

/// Checks every table of `ruleset`: the [`TABLES`] first, in that order (empty when
/// absent), then any other table in dump order, which only `global` patterns can allow.
pub fn check_ruleset(ruleset: &Ruleset, allowlist: &Allowlist) -> Vec<TableFindings> {
    let known = TABLES.iter().map(|&name| (name, ruleset.table(name)));
    let others = ruleset
        .tables
        .iter()
        .filter(|table| !TABLES.contains(&table.name.as_str()))
        .map(|table| (table.name.as_str(), Some(table)));
    known
        .chain(others)
        .map(|(name, table)| TableFindings {
            table: name.to_owned(),
            unexpected: table.map_or_else(Vec::new, |table| {
                lines(table)
                    .into_iter()
                    .filter(|line| !allowlist.allows(name, line))
                    .collect()
            }),
        })
        .collect()
}

/// Why one family could not be checked. A failed family is never reported clean.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// Its allowlist cannot be used.
    #[error(transparent)]
    Allowlist(#[from] AllowlistError),
    /// Its tables cannot be listed.
    #[error("cannot list the tables")]
    Source(#[from] SourceError),
    /// Checking failed inside the program (a panic): a bug to report, shown as a failed
    /// check rather than ending the audit.
    #[error("checking failed, a bug to report: {reason}")]
    Internal {
        /// What went wrong.
        reason: String,
    },
    /// The dump held lines the parser did not understand, which may be rules: the
    /// tables were not listed completely.
    #[error("{count} lines of the dump were not understood, the first: {first}")]
    Unparsed {
        /// How many.
        count: usize,
        /// The first of them, with its line number.
        first: String,
    },
}

/// Checks a parsed dump of one family, which must have been understood completely.
pub fn check_dump(
    ruleset: &Ruleset,
    allowlist: &Allowlist,
) -> Result<Vec<TableFindings>, AuditError> {
    if let Some(first) = ruleset.unparsed.first() {
        return Err(AuditError::Unparsed {
            count: ruleset.unparsed.len(),
            first: first.to_string(),
        });
    }
    Ok(check_ruleset(ruleset, allowlist))
}

/// The outcome of checking one family.
#[derive(Debug, Clone)]
pub struct FamilyCheck {
    /// The source checked: its `family` label ([`family_label`]).
    pub source: SourceId,
    /// The findings per table, or why there are none.
    pub outcome: Result<Vec<TableFindings>, AuditError>,
}

/// One check of every audited family.
#[derive(Debug, Clone)]
pub struct Check {
    /// The families in the order they were checked (IPv4 first).
    pub families: Vec<FamilyCheck>,
    /// The pinned BPF map, when the check read it (`--check-map`).
    pub map: Option<Result<bpf::MapValues, bpf::BpfError>>,
    /// When the check ended.
    pub finished_at: SystemTime,
}

/// What a check says of the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every family was checked and every line is allowed.
    Clean,
    /// Every family was checked and some lines are unexpected.
    Unexpected,
    /// A family could not be checked.
    Failed,
}

impl Check {
    /// The verdict: a failed family makes the whole check failed, whatever else it found.
    pub fn verdict(&self) -> Verdict {
        if self.families.iter().any(|f| f.outcome.is_err()) {
            Verdict::Failed
        } else if self.unexpected().next().is_some() {
            Verdict::Unexpected
        } else {
            Verdict::Clean
        }
    }

    /// Every unexpected line as (family, table, line), in check order.
    pub fn unexpected(&self) -> impl Iterator<Item = (SourceId, &str, &str)> {
        self.families.iter().flat_map(|family| {
            family.outcome.iter().flatten().flat_map(move |table| {
                table
                    .unexpected
                    .iter()
                    .map(move |line| (family.source, table.table.as_str(), line.as_str()))
            })
        })
    }

    /// The families that could not be checked, with why.
    pub fn failures(&self) -> impl Iterator<Item = (SourceId, &AuditError)> {
        self.families
            .iter()
            .filter_map(|family| Some((family.source, family.outcome.as_ref().err()?)))
    }

    /// The findings as text: one `family table line` per unexpected line, then one
    /// `family error: …` per failed family, on one line (a regex error draws its position
    /// over several, which would read as findings).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for (source, table, line) in self.unexpected() {
            let family = family_label(source);
            out.push_str(&format!("{family} {table} {line}\n"));
        }
        for (source, e) in self.failures() {
            let family = family_label(source);
            let error = Chain(e)
                .to_string()
                .replace('\\', "\\\\")
                .replace('\n', "\\n");
            out.push_str(&format!("{family} error: {error}\n"));
        }
        out
    }

    /// The findings as one JSON object: the verdict, and per family either its tables
    /// with their unexpected lines or its error.
    pub fn to_json(&self) -> serde_json::Value {
        let families: Vec<serde_json::Value> = self
            .families
            .iter()
            .map(|family| match &family.outcome {
                Ok(tables) => serde_json::json!({
                    "family": family_label(family.source),
                    "tables": tables.iter().map(|t| serde_json::json!({
                        "table": t.table,
                        "unexpected": t.unexpected,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({
                    "family": family_label(family.source),
                    "error": Chain(e).to_string(),
                }),
            })
            .collect();
        let verdict = match self.verdict() {
            Verdict::Clean => "clean",
            Verdict::Unexpected => "unexpected",
            Verdict::Failed => "failed",
        };
        let mut out = serde_json::json!({ "verdict": verdict, "families": families });
        if let Some(map) = &self.map {
            out["bpf_map"] = match map {
                Ok(values) => serde_json::json!({
                    "blocked": values.blocked,
                    "allowed": values.allowed,
                }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            };
        }
        out
    }

    /// The audit's metric families.
    pub fn render(&self) -> Exposition {
        let mut out = ExpositionBuilder::default();
        let (name, help) = names::audit::UNEXPECTED_RULES;
        {
            let mut f = out.family(name, help, MetricType::Gauge);
            for family in &self.families {
                for table in family.outcome.iter().flatten() {
                    let labels = [
                        ("family", family_label(family.source)),
                        ("table", &table.table),
                    ];
                    f.sample(&labels, table.unexpected.len() as u64);
                }
            }
        }
        let (name, help) = names::audit::CHECK_SUCCESS;
        let success = u64::from(self.verdict() != Verdict::Failed);
        out.family(name, help, MetricType::Gauge)
            .sample(&[], success);
        let (name, help) = names::audit::LAST_CHECK_TIMESTAMP;
        if let Ok(at) = self.finished_at.duration_since(SystemTime::UNIX_EPOCH) {
            out.family(name, help, MetricType::Gauge)
                .sample(&[], at.as_secs_f64());
        }
        if let Some(map) = &self.map {
            let (name, help) = names::audit::BPF_MAP_READ_SUCCESS;
            out.family(name, help, MetricType::Gauge)
                .sample(&[], u64::from(map.is_ok()));
            if let Ok(values) = map {
                let (name, help) = names::audit::BPF_BLOCKED;
                out.family(name, help, MetricType::Counter)
                    .sample(&[], values.blocked);
                if let Some(allowed) = values.allowed {
                    let (name, help) = names::audit::BPF_ALLOWED;
                    out.family(name, help, MetricType::Counter)
                        .sample(&[], allowed);
                }
            }
        }
        out.finish()
    }
}

/// What changed between two checks: the lines to log once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Unexpected lines that the previous check did not find, as (family, table, line).
    pub appeared: Vec<(SourceId, String, String)>,
    /// Unexpected lines of the previous check that are no longer there.
    pub gone: Vec<(SourceId, String, String)>,
}

/// Remembers the unexpected lines of the last check, so that each is logged once when it
/// appears and once when it goes rather than on every check.
#[derive(Debug, Default)]
pub struct Tracker {
    known: BTreeMap<SourceId, BTreeSet<(String, String)>>,
}

impl Tracker {
    /// Takes in a check and says what changed. A family that failed keeps what it had:
    /// its lines are unknown, not gone.
    pub fn update(&mut self, check: &Check) -> Changes {
        let mut changes = Changes::default();
        for family in &check.families {
            let Ok(tables) = &family.outcome else {
                continue;
            };
            let now: BTreeSet<(String, String)> = tables
                .iter()
                .flat_map(|t| t.unexpected.iter().map(|l| (t.table.clone(), l.clone())))
                .collect();
            let before = self.known.remove(&family.source).unwrap_or_default();
            let tag =
                |(table, line): &(String, String)| (family.source, table.clone(), line.clone());
            changes.appeared.extend(now.difference(&before).map(tag));
            changes.gone.extend(before.difference(&now).map(tag));
            self.known.insert(family.source, now);
        }
        changes
    }
}

#[cfg(test)]
mod tests;
