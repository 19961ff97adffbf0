//! Readers of the kernel's state: they run `iptables-save` and friends, or report a typed
//! error saying exactly what went wrong, and turn what they read into the model of
//! [`crate::ruleset`].

mod command;
pub mod ipset;
pub mod iptables_nft;
pub mod iptables_save;
pub mod netlink;
pub mod nftables;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::ruleset::Family;

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
}

impl Target {
    /// Every target, in the order their families appear in the exposition.
    pub const ALL: [Target; 5] = [
        Target::Iptables,
        Target::Ip6tables,
        Target::IptablesLegacy,
        Target::Ip6tablesLegacy,
        Target::Nftables,
    ];

    /// The name used on the command line and in the `source` label.
    pub fn name(self) -> &'static str {
        match self {
            Target::Iptables => "iptables",
            Target::Ip6tables => "ip6tables",
            Target::IptablesLegacy => "iptables-legacy",
            Target::Ip6tablesLegacy => "ip6tables-legacy",
            Target::Nftables => "nftables",
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
        }
    }

    /// The address family of an iptables backend's rules; `None` for nftables, whose
    /// tables each have their own.
    pub fn family(self) -> Option<Family> {
        match self {
            Target::Iptables | Target::IptablesLegacy => Some(Family::Ipv4),
            Target::Ip6tables | Target::Ip6tablesLegacy => Some(Family::Ipv6),
            Target::Nftables => None,
        }
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

impl Target {
    /// Whether the kernel holds tables this source reads, asked without its dump command:
    /// the legacy backends from the table list in `/proc/net`, the iptables sources from
    /// the iptables-nft tables over netlink (and the legacy list, which a legacy
    /// `iptables-save` prints). Blocking.
    pub fn presence(self, timeout: Duration) -> Presence {
        match self {
            Target::IptablesLegacy => legacy_presence(Family::Ipv4),
            Target::Ip6tablesLegacy => legacy_presence(Family::Ipv6),
            Target::Iptables | Target::Ip6tables => {
                let family = self.family().unwrap_or(Family::Ipv4);
                match (
                    iptables_nft_presence(family, timeout),
                    legacy_presence(family),
                ) {
                    (Presence::Present, _) | (_, Presence::Present) => Presence::Present,
                    (Presence::Unknown(why), _) | (_, Presence::Unknown(why)) => {
                        Presence::Unknown(why)
                    }
                    (Presence::Absent, Presence::Absent) => Presence::Absent,
                }
            }
            Target::Nftables => Presence::Present,
        }
    }
}

/// Whether legacy tables of `family` exist in this network namespace: the kernel lists
/// their names in `/proc/net/ip_tables_names`, which is there once the module is loaded
/// and readable by root only.
fn legacy_presence(family: Family) -> Presence {
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
fn iptables_nft_presence(family: Family, timeout: Duration) -> Presence {
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

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A scrape target name that is none of the known backends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scrape target {0:?} (expected iptables, ip6tables, iptables-legacy, ip6tables-legacy or nftables)"
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
