//! Readers of the kernel's state: they run `iptables-save` and friends, or speak netlink,
//! or report a typed error saying exactly what went wrong, and turn what they read into the
//! model of [`crate::ruleset`].
//!
//! Each source is one [`Source`] in one [`registry`]: what it is, whether this host has
//! anything for it, and one read. Everything around a read (timing, success, isolation, the
//! CPU budget, logging) is done once for all of them, in [`crate::collect`].

mod command;
pub mod ipset;
pub mod iptables_nft;
pub mod iptables_save;
pub mod netlink;
pub mod nftables;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::ruleset::{Chain, Family, Ruleset, Table};

use command::decode_lossily;
pub use command::{CommandOutput, DEFAULT_MAX_OUTPUT_BYTES, SourceError, run};

/// Which source: each source the exporter can read, by the name the command line, the
/// `source` label and the metric prefixes give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SourceId {
    /// `iptables-save`: IPv4, whichever backend the system's `iptables` uses (nf_tables on
    /// current distributions).
    Iptables,
    /// `ip6tables-save`: IPv6, the system's default backend.
    Ip6tables,
    /// `iptables-legacy-save`: IPv4 rules of the legacy `ip_tables` backend.
    IptablesLegacy,
    /// `ip6tables-legacy-save`: IPv6 rules of the legacy `ip6_tables` backend.
    Ip6tablesLegacy,
    /// Every nf_tables table that is not iptables-nft's, of every family, read over
    /// netlink ([`nftables`]).
    Nftables,
    /// Every ipset set of the network namespace, read over netlink ([`ipset`]).
    Ipset,
}

impl SourceId {
    /// Every source, in the order their families appear in the exposition.
    pub const ALL: [SourceId; 6] = [
        SourceId::Iptables,
        SourceId::Ip6tables,
        SourceId::IptablesLegacy,
        SourceId::Ip6tablesLegacy,
        SourceId::Nftables,
        SourceId::Ipset,
    ];

    /// The name used on the command line and in the `source` label.
    pub fn name(self) -> &'static str {
        self.about().name
    }

    /// What reads this source: the command that dumps an iptables backend's rules, or
    /// the kernel interface. Errors name it.
    pub fn reader(self) -> &'static str {
        self.about().reader
    }

    /// The metric name prefix of this source's families (as iptables_exporter named them).
    pub fn metric_prefix(self) -> &'static str {
        self.about().metric_prefix
    }

    /// The address family of an iptables source's rules; `None` for nftables, whose
    /// tables each have their own, and ipset.
    pub fn family(self) -> Option<Family> {
        self.about().family
    }

    /// What the program knows of each source by its name: one line per source.
    fn about(self) -> About {
        let about = |name, reader, metric_prefix, family| About {
            name,
            reader,
            metric_prefix,
            family,
        };
        match self {
            SourceId::Iptables => {
                about("iptables", "iptables-save", "iptables", Some(Family::Ipv4))
            }
            SourceId::Ip6tables => about(
                "ip6tables",
                "ip6tables-save",
                "ip6tables",
                Some(Family::Ipv6),
            ),
            SourceId::IptablesLegacy => about(
                "iptables-legacy",
                "iptables-legacy-save",
                "iptables_legacy",
                Some(Family::Ipv4),
            ),
            SourceId::Ip6tablesLegacy => about(
                "ip6tables-legacy",
                "ip6tables-legacy-save",
                "ip6tables_legacy",
                Some(Family::Ipv6),
            ),
            SourceId::Nftables => about("nftables", "nf_tables netlink", "nftables", None),
            SourceId::Ipset => about("ipset", "ip_set netlink", "ipset", None),
        }
    }
}

/// A source's names and family ([`SourceId::about`]).
struct About {
    name: &'static str,
    reader: &'static str,
    metric_prefix: &'static str,
    family: Option<Family>,
}

/// What one read of a source gave: its part of the snapshot, and what the read noticed on
/// the way, for the exporter's own families and the log.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The snapshot. The collector keeps of it, once the source's families are rendered,
    /// only what views of several sources still read ([`Reading::keep_only`]).
    pub ruleset: Arc<Ruleset>,
    /// Rules in the whole snapshot.
    pub rules: usize,
    /// Lines of the dump the parser did not understand.
    pub unparsed: usize,
    /// Lines of the dump that were not valid UTF-8 (read with U+FFFD in their place).
    pub invalid_utf8_lines: usize,
    /// What a dump command wrote to standard error on success (warnings).
    pub stderr: String,
    /// For an iptables source read over netlink, how it got its rule texts.
    pub text_stats: Option<iptables_nft::TextStats>,
    /// Reads of a netlink dump it took, the ruleset having changed during the others.
    pub attempts: u32,
}

impl Reading {
    /// A read that gave `ruleset` and noticed nothing else.
    pub fn new(ruleset: Ruleset) -> Self {
        Reading {
            rules: ruleset.rule_count(),
            unparsed: ruleset.unparsed.len(),
            invalid_utf8_lines: 0,
            stderr: String::new(),
            text_stats: None,
            attempts: 1,
            ruleset: Arc::new(ruleset),
        }
    }

    /// Keeps of the snapshot only the chains `keep` selects; the counts stay those of the
    /// whole snapshot.
    pub fn keep_only(&mut self, keep: impl FnMut(&Table, &Chain) -> bool) {
        Arc::make_mut(&mut self.ruleset).retain_chains(keep);
    }
}

/// How long a read may take and how much a dump command may print.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deadline of the read.
    pub timeout: Duration,
    /// Most bytes a dump command may print on standard output.
    pub max_output_bytes: usize,
}

/// One source of the snapshot.
pub trait Source: Send + Sync + std::fmt::Debug {
    /// Which source this is: its name, label and metric prefix.
    fn id(&self) -> SourceId;

    /// Whether this host has anything for the source, asked without reading it. Blocking.
    fn presence(&self, timeout: Duration) -> Presence;

    /// Whether the automatic selection asks [`Source::presence`] before every read rather
    /// than after a read that found the reader missing: when asking is cheap and a read
    /// would fail every time (a table list only root may read) or do harm (load a module).
    fn asks_first(&self) -> bool {
        false
    }

    /// Reads the source once.
    fn read(&self, limits: Limits) -> BoxFuture<'static, Result<Reading, SourceError>>;
}

/// What the sources are set up with.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Read the iptables and ip6tables sources over netlink when they use nf_tables.
    pub iptables_netlink: bool,
    /// The families whose iptables-nft tables an iptables source reads, which the nftables
    /// source leaves out.
    pub leave_to_iptables: Vec<Family>,
    /// [`nftables::ReadConfig::set_elements_limit`].
    pub set_elements_limit: u64,
    /// What the ipset source reads.
    pub ipset: ipset::Settings,
}

/// Every source there is, set up by `settings`, in the order of the exposition.
pub fn registry(settings: &Settings) -> Vec<Arc<dyn Source>> {
    vec![
        iptables(SourceId::Iptables, settings),
        iptables(SourceId::Ip6tables, settings),
        Arc::new(iptables_save::Saved::new(SourceId::IptablesLegacy)),
        Arc::new(iptables_save::Saved::new(SourceId::Ip6tablesLegacy)),
        Arc::new(nftables::Native::new(settings)),
        Arc::new(ipset::Sets::new(settings.ipset.clone())),
    ]
}

/// The iptables or ip6tables source: over netlink with cached rule texts, or through its
/// save command.
fn iptables(id: SourceId, settings: &Settings) -> Arc<dyn Source> {
    if settings.iptables_netlink {
        Arc::new(iptables_nft::Netlink::new(id))
    } else {
        Arc::new(iptables_save::Saved::new(id))
    }
}

/// Runs blocking `read` on a thread that may block; a panic there is an internal error of
/// `id`.
pub(crate) async fn blocking<T: Send + 'static>(
    id: SourceId,
    read: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(result) => result,
        Err(e) => Err(SourceError::Internal {
            command: id.reader().to_owned(),
            reason: e.to_string(),
        }),
    }
}

/// Whether a source has anything to read on this host, for the automatic selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// It has tables.
    Present,
    /// It has none.
    Absent,
    /// The host does not say (a file only root may read), with why.
    Unknown(String),
}

/// Whether legacy tables of `family` exist in this network namespace: the kernel lists
/// their names in `/proc/net/ip_tables_names`, which is there once the module is loaded
/// and readable by root only.
pub(crate) fn legacy_presence(family: Family) -> Presence {
    let path = match family {
        Family::Ipv6 => "/proc/net/ip6_tables_names",
        _ => "/proc/net/ip_tables_names",
    };
    match std::fs::read(path) {
        Ok(names) if names.iter().any(|b| !b.is_ascii_whitespace()) => Presence::Present,
        Ok(_) => Presence::Absent,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Presence::Absent,
        Err(e) => Presence::Unknown(format!("cannot read {path}: {e}")),
    }
}

/// Whether the kernel has iptables-nft tables of `family`.
pub(crate) fn iptables_nft_presence(family: Family, timeout: Duration) -> Presence {
    let config = nftables::ReadConfig {
        timeout,
        tables: nftables::Tables::IptablesNft(family),
        set_elements_limit: 0,
    };
    match nftables::read(&config) {
        Ok(snapshot) if snapshot.ruleset.tables.is_empty() => Presence::Absent,
        Ok(_) => Presence::Present,
        Err(nftables::ReadError::Unavailable(_)) => Presence::Absent,
        Err(e) => Presence::Unknown(format!("cannot list the nf_tables tables: {e}")),
    }
}

/// Whether the kernel holds tables the iptables source of `family` reads: iptables-nft
/// tables over netlink, or legacy ones, which a legacy `iptables-save` prints. Blocking.
pub(crate) fn iptables_presence(family: Family, timeout: Duration) -> Presence {
    match (
        iptables_nft_presence(family, timeout),
        legacy_presence(family),
    ) {
        (Presence::Present, _) | (_, Presence::Present) => Presence::Present,
        (Presence::Unknown(why), _) | (_, Presence::Unknown(why)) => Presence::Unknown(why),
        (Presence::Absent, Presence::Absent) => Presence::Absent,
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scrape target name that is none of the known sources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scrape target {0:?} (expected iptables, ip6tables, iptables-legacy, ip6tables-legacy, nftables or ipset)"
)]
pub struct UnknownSource(pub String);

impl FromStr for SourceId {
    type Err = UnknownSource;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SourceId::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownSource(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_parses_from_its_name() {
        for id in SourceId::ALL {
            assert_eq!(id.name().parse::<SourceId>(), Ok(id));
        }
        assert_eq!(
            "nft".parse::<SourceId>(),
            Err(UnknownSource("nft".to_owned()))
        );
    }

    #[test]
    fn prefixes_and_families() {
        assert_eq!(
            SourceId::Ip6tablesLegacy.metric_prefix(),
            "ip6tables_legacy"
        );
        assert_eq!(SourceId::Ip6tablesLegacy.reader(), "ip6tables-legacy-save");
        assert_eq!(SourceId::IptablesLegacy.family(), Some(Family::Ipv4));
        assert_eq!(SourceId::Ip6tables.family(), Some(Family::Ipv6));
        assert_eq!(SourceId::Nftables.family(), None);
    }
}
