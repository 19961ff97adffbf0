//! The audit's validated settings: what [`crate::config`] makes of the audit's flags, and
//! what the audit runs on.

use std::path::PathBuf;
use std::time::Duration;

use super::kube::KubeSettings;
use crate::serve::TelemetryPath;
use crate::serve::connections::Limits;
use crate::serve::listen::ListenAddress;
use crate::source::SourceId;

/// Formats of the audit's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditOutput {
    /// One `family table line` per unexpected line, then one line per failed family.
    Text,
    /// One JSON object.
    Json,
}

/// One family the audit checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFamily {
    /// The source whose rules are checked: iptables (IPv4), ip6tables (IPv6), or nftables
    /// (the native tables).
    pub source: SourceId,
    /// Its allowlist directory.
    pub allowlist: PathBuf,
    /// A saved dump of the source to check instead of its live rules.
    pub rules_file: Option<PathBuf>,
}

/// Validated audit settings.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// The families to check, IPv4 first.
    pub families: Vec<AuditFamily>,
    /// Time between checks.
    pub interval: Duration,
    /// Check once, print and exit.
    pub once: bool,
    /// Format of what --once prints.
    pub output: AuditOutput,
    /// Exit once a check is clean.
    pub terminate_on_success: bool,
    /// Create Kubernetes events (needs [`AuditConfig::kubernetes`]).
    pub events: bool,
    /// Where the running audit tells Kubernetes, when it has a node name.
    pub kubernetes: Option<KubeSettings>,
    /// The pinned BPF map to read on every check (`--check-map`), if any.
    pub map_path: Option<PathBuf>,
    /// Addresses to serve the audit's metrics on; none serves nothing.
    pub listen: Vec<ListenAddress>,
    /// Path of the metrics endpoint.
    pub telemetry_path: TelemetryPath,
    /// Bounds on connections and requests when serving.
    pub limits: Limits,
    /// The `--web.config.file` of the server, read when it starts.
    pub web_config_file: Option<PathBuf>,
    /// `--web.user`, when given.
    pub web_user: Option<String>,
}
