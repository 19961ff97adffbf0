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

use crate::ruleset::Family;
use crate::ruleset::ipset::Set;

pub use command::{CommandOutput, DEFAULT_MAX_OUTPUT_BYTES, SourceError, run};

/// One of the iptables backends the exporter can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
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

impl Target {
    /// Every target, in the order their families appear in the exposition.
    pub const ALL: [Target; 6] = [
        Target::Iptables,
        Target::Ip6tables,
        Target::IptablesLegacy,
        Target::Ip6tablesLegacy,
        Target::Nftables,
        Target::Ipset,
    ];

    /// The name used on the command line and in the `source` label.
    pub fn name(self) -> &'static str {
        match self {
            Target::Iptables => "iptables",
            Target::Ip6tables => "ip6tables",
            Target::IptablesLegacy => "iptables-legacy",
            Target::Ip6tablesLegacy => "ip6tables-legacy",
            Target::Nftables => "nftables",
            Target::Ipset => "ipset",
        }
    }

    /// What reads this source: the command that dumps an iptables backend's rules, or
    /// the kernel interface. Errors name it.
    pub fn reader(self) -> &'static str {
        match self {
            Target::Iptables => "iptables-save",
            Target::Ip6tables => "ip6tables-save",
            Target::IptablesLegacy => "iptables-legacy-save",
            Target::Ip6tablesLegacy => "ip6tables-legacy-save",
            Target::Nftables => "nf_tables netlink",
            Target::Ipset => "ip_set netlink",
        }
    }

    /// The metric name prefix of this backend's families (as iptables_exporter named them).
    pub fn metric_prefix(self) -> &'static str {
        match self {
            Target::Iptables => "iptables",
            Target::Ip6tables => "ip6tables",
            Target::IptablesLegacy => "iptables_legacy",
            Target::Ip6tablesLegacy => "ip6tables_legacy",
            Target::Nftables => "nftables",
            Target::Ipset => "ipset",
        }
    }

    /// The address family of an iptables backend's rules; `None` for nftables, whose
    /// tables each have their own.
    pub fn family(self) -> Option<Family> {
        match self {
            Target::Iptables | Target::IptablesLegacy => Some(Family::Ipv4),
            Target::Ip6tables | Target::Ip6tablesLegacy => Some(Family::Ipv6),
            Target::Nftables | Target::Ipset => None,
        }
    }
}

/// What one read of a source gave.
#[derive(Debug)]
pub enum Reading {
    /// The output of an iptables backend's save command, to parse.
    Text(CommandOutput),
    /// A snapshot read over netlink.
    Snapshot(nftables::Snapshot),
    /// An iptables source on nf_tables, read over netlink with cached rule texts.
    Iptables(iptables_nft::Collection),
    /// The ipset sets.
    Sets(Vec<Set>),
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
pub trait Source: Send + Sync {
    /// Which source this is: its name, label and metric prefix.
    fn target(&self) -> Target;

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
        iptables(Target::Iptables, settings),
        iptables(Target::Ip6tables, settings),
        Arc::new(iptables_save::Saved::new(Target::IptablesLegacy)),
        Arc::new(iptables_save::Saved::new(Target::Ip6tablesLegacy)),
        Arc::new(nftables::Native::new(settings)),
        Arc::new(ipset::Sets::new(settings.ipset.clone())),
    ]
}

/// The iptables or ip6tables source: over netlink with cached rule texts, or through its
/// save command.
fn iptables(target: Target, settings: &Settings) -> Arc<dyn Source> {
    if settings.iptables_netlink {
        Arc::new(iptables_nft::Netlink::new(target))
    } else {
        Arc::new(iptables_save::Saved::new(target))
    }
}

/// Runs blocking `read` on a thread that may block; a panic there is an internal error of
/// `target`.
async fn blocking<T: Send + 'static>(
    target: Target,
    read: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, SourceError> {
    match tokio::task::spawn_blocking(read).await {
        Ok(result) => result,
        Err(e) => Err(SourceError::Internal {
            command: target.reader().to_owned(),
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

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scrape target name that is none of the known backends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scrape target {0:?} (expected iptables, ip6tables, iptables-legacy, ip6tables-legacy, nftables or ipset)"
)]
pub struct UnknownTarget(pub String);

impl FromStr for Target {
    type Err = UnknownTarget;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Target::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| UnknownTarget(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_parses_from_its_name() {
        for target in Target::ALL {
            assert_eq!(target.name().parse::<Target>(), Ok(target));
        }
        assert_eq!(
            "nft".parse::<Target>(),
            Err(UnknownTarget("nft".to_owned()))
        );
    }

    #[test]
    fn prefixes_and_families() {
        assert_eq!(Target::Ip6tablesLegacy.metric_prefix(), "ip6tables_legacy");
        assert_eq!(Target::Ip6tablesLegacy.reader(), "ip6tables-legacy-save");
        assert_eq!(Target::IptablesLegacy.family(), Some(Family::Ipv4));
        assert_eq!(Target::Ip6tables.family(), Some(Family::Ipv6));
        assert_eq!(Target::Nftables.family(), None);
    }
}
