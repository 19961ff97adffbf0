//! The command line as the user types it. Each flag's doc comment is its `--help` text;
//! combinations are checked once, in [`crate::config`].
//!
//! Each mode takes the flags it uses after its name, from groups of flags that several modes
//! share (`#[command(flatten)]`), so that `MODE --help` lists exactly those. The flags of
//! the default mode, serve, are also the program's own, accepted before any mode name as
//! iptables_exporter's users type them; [`parse`] reads them as the mode's.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use crate::audit::settings::AuditOutput;
use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Prometheus exporter for iptables, ip6tables and their legacy backends: per-rule,
/// per-chain and per-comment counters, served from memory.
#[derive(Debug, Parser)]
// The last of a repeated flag wins, as in Go's flag package: a DaemonSet's arguments
// may repeat one (the audit command takes azure-iptables-monitor's arguments unchanged).
#[command(
    name = "netfilter_exporter",
    version,
    about,
    long_about = None,
    args_override_self = true,
    after_help = "Without a command, the flags are serve's. A flag before a command is read \
        as if typed right after the command's name; 'netfilter_exporter COMMAND --help' lists \
        the flags each command takes."
)]
pub struct Cli {
    /// Write the exposition to this file, atomically, after every collection instead of
    /// serving it: the same as the textfile command (`dump --textfile PATH` writes once).
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,

    /// The flags of serve, the mode without a command.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// What to do; without a command the exporter serves metrics over HTTP.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The modes, each with its flags.
#[derive(Debug, Subcommand)]
// One value, made once at start: boxing serve's flags would save nothing worth the noise.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Serve metrics over HTTP (the default).
    Serve(ServeArgs),
    /// Collect once and print the exposition (text format) to standard output. Exits with
    /// status 1 when a selected source failed.
    Dump(DumpArgs),
    /// Write the exposition to a file for node_exporter's textfile collector, atomically,
    /// after every collection (or once with --once).
    Textfile(TextfileArgs),
    /// Act as the Munin plugin traffic_accounting (settings from munin-node's environment;
    /// linking the binary as traffic_accounting does the same without this command).
    Munin(MuninArgs),
    /// Check every table's rules against allowlists of regular expressions, as
    /// azure-iptables-monitor does (docs/audit.md). Also takes that tool's own flag
    /// spellings (-input=DIR, -checkMap=true, -v 3, …).
    Audit(AuditArgs),
    /// Show which rules the traffic hits right now: a full-screen view of the packet and
    /// byte rates of the rules (or comments, chains, accounting tags, nftables objects) of
    /// this host, or of a running exporter's /metrics with --url, refreshed every --delay
    /// seconds. --once prints them as a table instead.
    Top(TopArgs),
}

impl Command {
    /// The mode's logging flags.
    pub fn log(&self) -> &LogArgs {
        match self {
            Command::Serve(args) => &args.log,
            Command::Dump(args) => &args.log,
            Command::Textfile(args) => &args.log,
            Command::Munin(args) => &args.log,
            Command::Audit(args) => &args.log,
            Command::Top(args) => &args.log,
        }
    }
}

/// The flags of serve.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Where to listen.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// The HTTP server.
    #[command(flatten)]
    pub web: WebArgs,
    /// Which sources, how often.
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Which series.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Traffic accounting.
    #[command(flatten)]
    pub accounting: AccountingArgs,
    /// The audit inside serve.
    #[command(flatten)]
    pub audit: ServeAuditArgs,
    /// Where the audit tells Kubernetes.
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The flags of dump.
#[derive(Debug, Clone, Args)]
pub struct DumpArgs {
    /// Write the exposition to this file, atomically, instead of standard output: the
    /// same as `textfile --once PATH`.
    #[arg(long, value_name = "PATH")]
    pub textfile: Option<PathBuf>,
    /// Which sources.
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Which series.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Traffic accounting.
    #[command(flatten)]
    pub accounting: AccountingArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The flags of textfile.
#[derive(Debug, Clone, Args)]
pub struct TextfileArgs {
    /// The file to write, e.g. /var/lib/node_exporter/textfile/netfilter.prom.
    pub path: PathBuf,
    /// Collect and write once, then exit (status 1 when a source failed).
    #[arg(long)]
    pub once: bool,
    /// Which sources, how often.
    #[command(flatten)]
    pub collect: CollectArgs,
    /// Which series.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Traffic accounting.
    #[command(flatten)]
    pub accounting: AccountingArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The flags of top.
#[derive(Debug, Clone, Args)]
pub struct TopArgs {
    /// Seconds between readings.
    #[arg(short = 'd', long, value_name = "SECONDS", default_value_t = 1.0)]
    pub delay: f64,

    /// Print a plain table on standard output instead of the full-screen view: read twice,
    /// --delay seconds apart (unlike `textfile --once`, which reads once), then print a
    /// header line and one line per row, highest packet rate first. Exits with status 1
    /// when a source failed.
    #[arg(long)]
    pub once: bool,

    /// Most rows --once prints [default: 20].
    #[arg(long, value_name = "N")]
    pub rows: Option<usize>,

    /// What a row is at start: rule (a series as /metrics keys it), comment, chain (its
    /// rules and policy), tag (accounting tags), object (nftables named counters and
    /// quotas). The g key changes it.
    #[arg(long, value_enum, value_name = "GROUP", default_value = "rule")]
    pub group: crate::top::Group,

    /// Read the series of a running exporter at this URL (its /metrics, http:// or
    /// https://) instead of this host's firewall: needs no privileges.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// TLS and basic authentication of --url, in Prometheus' http_config format (as
    /// promtool's --http.config.file): tls_config (ca_file, cert_file, key_file,
    /// server_name) and basic_auth (username, password or password_file); relative paths
    /// are relative to the file's directory.
    #[arg(long = "http.config.file", value_name = "PATH")]
    pub http_config_file: Option<PathBuf>,

    /// Which sources, and how they are read.
    #[command(flatten)]
    pub sources: SourceArgs,

    /// Share of one core the readings of a source may use on average (0.05 = 5%): a
    /// reading that costs more CPU time stretches the pause before the next one. Off
    /// unless given.
    #[arg(long, value_name = "SHARE", help_heading = "Collection")]
    pub collect_cpu_budget: Option<f64>,

    /// Which chains hold accounting tags.
    #[command(flatten)]
    pub accounting: AccountingArgs,

    /// Append the log to this file. Without it, nothing is logged while the full screen is
    /// up; --once logs to standard error.
    #[arg(long = "log.file", value_name = "PATH", help_heading = "Logging")]
    pub log_file: Option<PathBuf>,

    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The flags of munin: its settings come from munin-node's environment.
#[derive(Debug, Clone, Args)]
pub struct MuninArgs {
    /// The plugin command; without one, print the current values.
    pub action: Option<crate::munin::Action>,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

/// The flags of the audit command.
#[derive(Debug, Clone, Args)]
pub struct AuditArgs {
    /// What to check, and how often.
    #[command(flatten)]
    pub check: AuditCheckArgs,
    /// Serve the audit's metrics over HTTP at this address (host:port, :port for every
    /// address) while checking every --interval; repeat for several. Without it nothing is
    /// served.
    #[arg(
        long = "web.listen-address",
        value_name = "ADDRESS",
        help_heading = WEB_HEADING
    )]
    pub web_listen_address: Vec<String>,
    /// The HTTP server of --web.listen-address.
    #[command(flatten)]
    pub web: WebArgs,
    /// Bounds on each dump command.
    #[command(flatten)]
    pub limits: CollectLimitArgs,
    /// Where the running audit tells Kubernetes.
    #[command(flatten)]
    pub kubernetes: KubernetesArgs,
    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,
}

const WEB_HEADING: &str = "Web server";

/// Where serve listens.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = WEB_HEADING)]
pub struct ListenArgs {
    /// Address to listen on for HTTP: `host:port` (every address the host resolves to),
    /// `ip:port`, `[v6]:port`, or `:port` for every IPv6 and IPv4 address; repeat for
    /// several. [default: :9455]
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub web_listen_address: Vec<String>,

    /// Address to listen on (iptables_exporter's flag; combined with --listen-port).
    #[arg(short = 'l', long = "listen-address", value_name = "IP")]
    pub listen_address: Option<IpAddr>,

    /// Port to listen on (iptables_exporter's flag; combined with --listen-address).
    #[arg(short = 'p', long = "listen-port", value_name = "PORT")]
    pub listen_port: Option<u16>,

    /// Take the listening sockets from systemd socket activation (LISTEN_FDS) instead of
    /// binding --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub web_systemd_socket: bool,
}

/// The HTTP server, of serve and of the running audit.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = WEB_HEADING)]
pub struct WebArgs {
    /// Path under which metrics are served: a literal URL path (no `{`, `}`, or segment
    /// starting with `:` or `*`), neither / nor /-/healthy.
    #[arg(
        long = "web.telemetry-path",
        value_name = "PATH",
        default_value = "/metrics"
    )]
    pub web_telemetry_path: String,

    /// Web config file in the Prometheus exporter-toolkit format: TLS, basic
    /// authentication, response headers. Re-read when it changes.
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// User the HTTP server process runs as when the exporter starts as root (a name or a
    /// numeric uid; default nobody). Started as another user with capabilities, the
    /// server keeps that user and drops the capabilities.
    #[arg(long = "web.user", value_name = "USER")]
    pub web_user: Option<String>,

    /// Connections open at once, at most; at the cap, the connection idle the longest is
    /// closed to make room. Lowered at start when the open-file limit leaves less room.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 1024)]
    pub web_max_connections: usize,

    /// Requests the server works on at once, at most; more are answered 503. A response
    /// sent from memory stops counting once handed over; one decompressed as it is sent
    /// counts until sent, unless a request finds every slot taken and its client is the one
    /// that has not read for the longest.
    #[arg(long = "web.max-requests", value_name = "N", default_value_t = 40)]
    pub web_max_requests: usize,

    /// Seconds a client has to send a complete request header (from its connect, or from
    /// the first byte of a later request on a kept-alive connection).
    #[arg(
        long = "web.read-header-timeout",
        value_name = "SECONDS",
        default_value_t = 10.0
    )]
    pub web_read_header_timeout: f64,

    /// Seconds a kept-alive connection may wait for its next request.
    #[arg(
        long = "web.idle-timeout",
        value_name = "SECONDS",
        default_value_t = 90.0
    )]
    pub web_idle_timeout: f64,

    /// Seconds a response may wait for the client to take any more of it; a client that
    /// stops reading is then disconnected.
    #[arg(
        long = "web.write-timeout",
        value_name = "SECONDS",
        default_value_t = 30.0
    )]
    pub web_write_timeout: f64,
}

/// Which sources are read, and how often.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Collection")]
pub struct CollectArgs {
    /// Which sources, and how they are read.
    #[command(flatten)]
    pub sources: SourceArgs,

    /// Seconds between the end of one collection of a source and the start of the next.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub collect_interval: f64,

    /// Share of one core a source's collections may use on average (0.05 = 5%): a
    /// collection that costs more CPU time stretches the pause before the next one
    /// (netfilter_exporter_collection_interval_seconds). 0 turns the budget off.
    #[arg(long, value_name = "SHARE", default_value_t = crate::budget::DEFAULT_SHARE)]
    pub collect_cpu_budget: f64,
}

/// Which sources are read and how, whatever the pace: the collections' and top's.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Collection")]
pub struct SourceArgs {
    /// Source to read: iptables, ip6tables, iptables-legacy, ip6tables-legacy, nftables or
    /// ipset. Repeat the flag or separate names with commas. Default: every source whose
    /// tables the kernel has (a missing save command is then a failure that names it),
    /// nftables when the kernel has nf_tables tables that are not iptables-nft's, and ipset
    /// when the kernel has the ip_set module and at least one set; a source
    /// the host does not say about (the legacy table list is readable by root only) is left
    /// out, logged, and shown by netfilter_exporter_source_unknown.
    #[arg(
        short = 't',
        long = "scrape-targets",
        value_name = "TARGET",
        value_delimiter = ','
    )]
    pub scrape_targets: Vec<String>,

    /// Bounds on each dump command.
    #[command(flatten)]
    pub limits: CollectLimitArgs,

    /// Most elements of one nftables set counted by reading them, for a kernel that does
    /// not send a set's element count itself (Linux before 6.x); a larger set is exported
    /// without its count. 0: never read set elements.
    #[arg(long = "nftables.set-elements-limit", value_name = "ELEMENTS", default_value_t = crate::source::nftables::DEFAULT_SET_ELEMENTS_LIMIT)]
    pub nftables_set_elements_limit: u64,

    /// Always run iptables-save / ip6tables-save for the iptables and ip6tables sources,
    /// instead of reading their nf_tables tables over netlink with cached rule texts.
    #[arg(long = "no-iptables-netlink")]
    pub no_iptables_netlink: bool,

    /// List the members of the ipset sets created with `counters`, with their packets and
    /// bytes (ipset_member_packets_total, ipset_member_bytes_total).
    #[arg(long = "ipset.member-counters")]
    pub ipset_member_counters: bool,

    /// Most members listed per ipset set with --ipset.member-counters; the others are
    /// counted in ipset_members_left_out. 0 lists none.
    #[arg(
        long = "ipset.member-limit",
        value_name = "MEMBERS",
        default_value_t = crate::source::ipset::DEFAULT_MEMBER_LIMIT
    )]
    pub ipset_member_limit: u64,
}

/// Bounds on each dump command (iptables-save …), of a collection or of an audit check.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Collection")]
pub struct CollectLimitArgs {
    /// Seconds a dump command (iptables-save …) may run before it is killed and the
    /// collection (or the audit's check) counts as failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub collect_timeout: f64,

    /// Bytes a dump command may print on standard output (or an audit --rules-file hold)
    /// before it is killed and the collection (or the audit's check) counts as failed.
    #[arg(long, value_name = "BYTES", default_value_t = crate::source::DEFAULT_MAX_OUTPUT_BYTES)]
    pub collect_max_output_bytes: usize,
}

/// Which series are written.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// Leave out the per-rule series (*_rule_bytes_total, *_rule_packets_total).
    #[arg(long)]
    pub no_rule_metrics: bool,

    /// Leave out the per-comment series (*_comment_bytes_total, *_comment_packets_total).
    #[arg(long)]
    pub no_comment_metrics: bool,

    /// Write rule and comment series only for tables whose whole name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub table_include: Option<String>,

    /// Write no rule and comment series for tables whose whole name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub table_exclude: Option<String>,

    /// Write rule and comment series only for chains whose whole name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub chain_include: Option<String>,

    /// Write no rule and comment series for chains whose whole name matches this regex.
    #[arg(long, value_name = "REGEX")]
    pub chain_exclude: Option<String>,

    /// Leave out iptables_exporter's *_scrape_duration_milliseconds (not in base units;
    /// netfilter_exporter_collection_duration_seconds carries the same figure).
    #[arg(long)]
    pub no_legacy_duration_metric: bool,

    /// Most series a source may drop to (0: no limit). Above it, whole chains' per-rule
    /// series go first (largest chains first), then per-comment series, then user-defined
    /// chains' series; built-in chains, health and accounting series are always kept.
    /// netfilter_exporter_series and netfilter_exporter_series_dropped say what was kept.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_series: usize,
}

/// Log output, on standard error.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct LogArgs {
    /// More log output: -v debug, -vv trace.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less log output: -q warn, -qq error, -qqq nothing.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub quiet: u8,

    /// Log level (overrides -v and -q).
    #[arg(long = "log.level", value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,

    /// Log line format, on standard error.
    #[arg(
        long = "log.format",
        value_enum,
        value_name = "FORMAT",
        default_value = "logfmt"
    )]
    pub log_format: LogFormat,
}

// ---- Traffic accounting (docs/accounting.md) ----
/// The accounting chains and their comment grammars.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Traffic accounting")]
pub struct AccountingArgs {
    /// Accounting chains of the IPv4 rulesets, looked up in every table: comma-separated
    /// names, or `all` for every chain.
    #[arg(
        long = "accounting.ipv4-chains",
        value_name = "CHAINS",
        value_delimiter = ',',
        default_value = "ACCT4"
    )]
    pub accounting_ipv4_chains: Vec<String>,

    /// Accounting chains of the IPv6 rulesets, looked up in every table: comma-separated
    /// names, or `all` for every chain.
    #[arg(
        long = "accounting.ipv6-chains",
        value_name = "CHAINS",
        value_delimiter = ',',
        default_value = "ACCT6"
    )]
    pub accounting_ipv6_chains: Vec<String>,

    /// nftables accounting chains, as TABLE/CHAIN (the table of any family), or `all`.
    /// Repeat the flag or separate with commas.
    #[arg(
        long = "accounting.nftables-chain",
        value_name = "TABLE/CHAIN",
        value_delimiter = ',',
        default_value = crate::accounting::DEFAULT_NFTABLES_CHAIN
    )]
    pub accounting_nftables_chains: Vec<String>,

    /// Comment grammars read in the accounting chains: `tags` (`=tag= description`, Munin
    /// traffic_accounting), `labels` (`nft(key=value;...)`, nfprom), both, or `none`.
    #[arg(
        long = "accounting.comments",
        value_name = "GRAMMARS",
        value_delimiter = ',',
        default_value = "tags,labels"
    )]
    pub accounting_comments: Vec<String>,

    /// Chain (in every table, both families) whose rules without an accounting comment get
    /// labels derived from their parameters (address, direction, l2proto, l3proto, port),
    /// as the iptables version of nfprom did. Off when not given.
    #[arg(long = "accounting.rule-params-chain", value_name = "CHAIN")]
    pub accounting_rule_params_chain: Option<String>,

    /// Metric prefix of the tag series: PREFIX_bytes_total, _packets_total, _info and
    /// _rejected_rules (nfprom's -namespace is --accounting.labels-prefix).
    #[arg(
        long = "accounting.prefix",
        value_name = "PREFIX",
        default_value = crate::accounting::DEFAULT_PREFIX
    )]
    pub accounting_prefix: String,

    /// Metric prefix of the nft(key=value;...) label-comment series (`nfprom` gives
    /// nfprom's names).
    #[arg(
        long = "accounting.labels-prefix",
        value_name = "PREFIX",
        default_value = crate::accounting::DEFAULT_LABELS_PREFIX
    )]
    pub accounting_labels_prefix: String,

    /// Metric prefix of the rule-parameter series (`nfprom` gives nfprom's names).
    #[arg(
        long = "accounting.rule-params-prefix",
        value_name = "PREFIX",
        default_value = crate::accounting::DEFAULT_RULE_PARAMS_PREFIX
    )]
    pub accounting_rule_params_prefix: String,
}
// ---- end of traffic accounting ----

/// The audit inside serve (docs/audit.md): the audit command's settings under `--audit.`;
/// --terminate-on-success has no place in a server and is left out.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Audit inside serve")]
pub struct ServeAuditArgs {
    /// Run the audit inside the exporter, with this directory of IPv4 allowlists (as
    /// `audit --input`): its metrics join the exposition. Off when not given.
    #[arg(long = "audit.input", value_name = "DIR")]
    pub audit_input: Option<PathBuf>,

    /// As `audit --input6` [default: /etc/config6/].
    #[arg(long = "audit.input6", value_name = "DIR")]
    pub audit_input6: Option<PathBuf>,

    /// As `audit --interval` [default: 300].
    #[arg(long = "audit.interval", value_name = "SECONDS")]
    pub audit_interval: Option<u64>,

    /// As `audit --ipv6`.
    #[arg(long = "audit.ipv6")]
    pub audit_ipv6: bool,

    /// As `audit --nftables`.
    #[arg(long = "audit.nftables")]
    pub audit_nftables: bool,

    /// As `audit --events`.
    #[arg(long = "audit.events")]
    pub audit_events: bool,

    /// As `audit --check-map`.
    #[arg(long = "audit.check-map")]
    pub audit_check_map: bool,

    /// As `audit --map-path`
    /// [default: /azure-block-iptables-bpf-map/iptables_block_event_counter].
    #[arg(long = "audit.map-path", value_name = "PATH")]
    pub audit_map_path: Option<PathBuf>,
}

/// Kubernetes, for the running audit (docs/audit.md).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Kubernetes")]
pub struct KubernetesArgs {
    /// The node the audit runs on: the running audit labels the CiliumNode of this name
    /// and creates its events on the Node. Without it Kubernetes is not told.
    #[arg(long = "kubernetes.node-name", env = "NODE_NAME", value_name = "NAME")]
    pub kubernetes_node_name: Option<String>,

    /// The API server, as https://HOST:PORT. Default: KUBERNETES_SERVICE_HOST and
    /// KUBERNETES_SERVICE_PORT, as a pod has them. For running outside a cluster, and for
    /// tests.
    #[arg(long = "kubernetes.api-server", value_name = "URL")]
    pub kubernetes_api_server: Option<String>,

    /// The service account token, read again for every request (it rotates). Another
    /// file only outside a cluster, and for tests.
    #[arg(
        long = "kubernetes.token-file",
        value_name = "PATH",
        default_value = crate::audit::kube::DEFAULT_TOKEN_FILE
    )]
    pub kubernetes_token_file: PathBuf,

    /// The PEM file of the CA the API server's certificate must chain to. Another file
    /// only outside a cluster, and for tests.
    #[arg(
        long = "kubernetes.ca-file",
        value_name = "PATH",
        default_value = crate::audit::kube::DEFAULT_CA_FILE
    )]
    pub kubernetes_ca_file: PathBuf,

    /// Seconds one Kubernetes request may take, connecting included.
    #[arg(
        long = "kubernetes.timeout",
        value_name = "SECONDS",
        default_value_t = 10.0
    )]
    pub kubernetes_timeout: f64,
}

/// A group's values when none of its flags is given (clap's defaults), for the modes that
/// do not take the group but whose settings include it.
fn defaults<T: Args + FromArgMatches>() -> T {
    let command = T::augment_args(clap::Command::new("defaults"));
    T::from_arg_matches(&command.get_matches_from(["defaults"]))
        .expect("every flag of the group has a default")
}

impl Default for WebArgs {
    fn default() -> Self {
        defaults()
    }
}

impl Default for CollectArgs {
    fn default() -> Self {
        defaults()
    }
}

impl Default for SourceArgs {
    fn default() -> Self {
        defaults()
    }
}

impl Default for MetricsArgs {
    fn default() -> Self {
        defaults()
    }
}

impl Default for AccountingArgs {
    fn default() -> Self {
        defaults()
    }
}

/// Where the audit's default allowlists live: the original's defaults, where its
/// DaemonSet mounts the ConfigMaps.
pub const DEFAULT_AUDIT_INPUT: &str = "/etc/config/";
/// The IPv6 allowlists' default directory.
pub const DEFAULT_AUDIT_INPUT6: &str = "/etc/config6/";
/// The original's default pinned BPF map.
pub const DEFAULT_AUDIT_MAP_PATH: &str =
    "/azure-block-iptables-bpf-map/iptables_block_event_counter";

/// What the audit checks, and how: the audit command's own flags, which serve takes as
/// `--audit.*`.
#[derive(Debug, Clone, Args)]
pub struct AuditCheckArgs {
    /// Directory of the IPv4 allowlists: files filter, nat, mangle, raw, security, global.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_AUDIT_INPUT)]
    pub input: PathBuf,

    /// Directory of the IPv6 allowlists (read with --ipv6).
    #[arg(long, value_name = "DIR", default_value = DEFAULT_AUDIT_INPUT6)]
    pub input6: PathBuf,

    /// Seconds between checks.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub interval: u64,

    /// Check the IPv6 rules (ip6tables) too, against the allowlists of --input6.
    #[arg(long)]
    pub ipv6: bool,

    /// Check the native nftables tables too (those iptables-save does not print): each
    /// chain as `FAMILY TABLE CHAIN` against the patterns of the file `nftables` of
    /// --input (and of `global`).
    #[arg(long)]
    pub nftables: bool,

    /// Create a Warning event on the Node when unexpected rules appear
    /// (UnexpectedIPTablesRules) and when the BPF map's blocked count rises
    /// (BlockedIPTablesRule). Needs the node name (NODE_NAME).
    #[arg(long)]
    pub events: bool,

    /// Exit with status 0 as soon as a check finds every table listed and every rule
    /// allowed, and (with a node name) the CiliumNode's label was set to false.
    #[arg(long)]
    pub terminate_on_success: bool,

    /// Read the pinned BPF map of --map-path on every check: its counters become metrics,
    /// and a rise of the blocked count is logged (and an event with --events).
    #[arg(long)]
    pub check_map: bool,

    /// The pinned BPF map to watch with --check-map.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_AUDIT_MAP_PATH)]
    pub map_path: PathBuf,

    /// Check once, print the findings and exit: 0 clean, 1 unexpected rules, 2 a
    /// table or allowlist could not be read.
    #[arg(long)]
    pub once: bool,

    /// Format of the findings printed by --once.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    pub output: AuditOutput,

    /// Check this saved iptables-save file against --input instead of the live IPv4
    /// rules; implies --once.
    #[arg(long, value_name = "FILE")]
    pub rules_file: Option<PathBuf>,

    /// Check this saved ip6tables-save file against --input6 instead of the live IPv6
    /// rules; implies --once.
    #[arg(long, value_name = "FILE")]
    pub rules_file6: Option<PathBuf>,
}

/// Parses the command line, as [`std::env::args_os`] gives it, into the mode to run with
/// its flags; a clap error (usage, `--help`, `--version`) otherwise.
///
/// Every serve flag is also a flag of the program itself, so that serve's flags work before
/// any mode name, as iptables_exporter's users type them (`-p 9455 -t iptables`,
/// `--collect-interval 5 dump`). clap alone would then accept any of them before any mode
/// and leave it unused. So the command line is parsed as typed first, which has clap check
/// each flag where it stands and tell which top-level flags were given
/// ([`ValueSource::CommandLine`]); one that the chosen mode does not take is an error naming
/// flag and mode. The others are moved right after the mode's name and the line parsed
/// again: a flag before the mode means what it means after it, and one given on both sides
/// is one repeated after it (the last value wins, as `args_override_self` has it; lists
/// add up). Moving the words, rather than merging two parsed structs field by field, keeps
/// that rule in one place, for every flag a group gains later. clap's `global = true` would
/// instead list every flag in every mode's help and merge the audit's own
/// `--web.listen-address` with serve's.
pub fn parse(args: Vec<OsString>) -> Result<Command, clap::Error> {
    let args = normalise_args(args);
    let mut command = Cli::command();
    let matches = command.try_get_matches_from_mut(&args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let given: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .cloned()
        .collect();
    let Some(mode) = cli.command else {
        return Ok(match cli.textfile {
            None => Command::Serve(cli.serve),
            // --textfile without a mode is the textfile mode, which takes fewer flags.
            Some(path) => {
                let rest = given.iter().filter(|arg| arg.get_id() != "textfile");
                check_before(&mut command, "textfile", rest, |flag| {
                    format!(
                        "'{flag}' was given with --textfile, whose textfile mode does not take it"
                    )
                })?;
                let ServeArgs {
                    collect,
                    metrics,
                    accounting,
                    log,
                    ..
                } = cli.serve;
                Command::Textfile(TextfileArgs {
                    path,
                    once: false,
                    collect,
                    metrics,
                    accounting,
                    log,
                })
            }
        });
    };
    if given.is_empty() {
        return Ok(mode);
    }
    let name = matches.subcommand_name().unwrap_or_default().to_owned();
    check_before(&mut command, &name, given.iter(), |flag| {
        format!("'{flag}' was given before {name}, which does not take it")
    })?;
    let at = subcommand_index(&args)
        .filter(|&at| args[at] == *name)
        .ok_or_else(|| {
            command.error(
                ErrorKind::InvalidSubcommand,
                format!("cannot tell where the flags of {name} start"),
            )
        })?;
    let mut moved = vec![args[0].clone(), args[at].clone()];
    moved.extend_from_slice(&args[1..at]);
    moved.extend_from_slice(&args[at + 1..]);
    let matches = command.try_get_matches_from_mut(moved)?;
    Cli::from_arg_matches(&matches)?
        .command
        .ok_or_else(|| command.error(ErrorKind::MissingSubcommand, "the mode was lost"))
}

/// Refuses the first of the top-level flags `given` that the mode `name` does not take:
/// `refusal` says so, and the modes that take it are listed after.
fn check_before<'a>(
    command: &mut clap::Command,
    name: &str,
    mut given: impl Iterator<Item = &'a clap::Arg>,
    refusal: impl Fn(&str) -> String,
) -> Result<(), clap::Error> {
    // Built, so that the modes' usage lines carry the program's name.
    command.build();
    let takes = |mode: &clap::Command, arg: &clap::Arg| {
        mode.get_arguments().any(|a| a.get_id() == arg.get_id())
    };
    let Some(mode) = command.find_subcommand(name) else {
        return Err(command.error(ErrorKind::InvalidSubcommand, name));
    };
    let Some(arg) = given.find(|arg| !takes(mode, arg)) else {
        return Ok(());
    };
    let others: Vec<&str> = command
        .get_subcommands()
        .filter(|other| takes(other, arg))
        .map(clap::Command::get_name)
        .collect();
    let others = match others.as_slice() {
        [] => "no mode takes it".to_owned(),
        [one] => format!("{one} takes it"),
        [init @ .., last] => format!("{} and {last} take it", init.join(", ")),
    };
    let message = format!(
        "{} ({others}); 'netfilter_exporter {name} --help' lists the flags of {name}",
        refusal(&spelling(arg))
    );
    match command.find_subcommand_mut(name) {
        Some(mode) => Err(mode.error(ErrorKind::ArgumentConflict, message)),
        None => Err(command.error(ErrorKind::ArgumentConflict, message)),
    }
}

/// A flag as the help shows it: `-p/--listen-port`, `--collect-interval`.
fn spelling(arg: &clap::Arg) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(short), Some(long)) => format!("-{short}/--{long}"),
        (None, Some(long)) => format!("--{long}"),
        (Some(short), None) => format!("-{short}"),
        (None, None) => arg.get_id().to_string(),
    }
}

/// The original's flags that take a value, with the names they have here.
const GO_VALUE_FLAGS: [(&str, &str); 4] = [
    ("input", "--input"),
    ("input6", "--input6"),
    ("interval", "--interval"),
    ("mapPath", "--map-path"),
];

/// The original's boolean flags, with the names they have here.
const GO_BOOL_FLAGS: [(&str, &str); 4] = [
    ("events", "--events"),
    ("ipv6", "--ipv6"),
    ("checkMap", "--check-map"),
    ("terminateOnSuccess", "--terminate-on-success"),
];

/// Rewrites the arguments of the `audit` command from the spellings of azure-iptables-monitor
/// (Go's flag package: `-name`, `-name=value`, `--name value`, booleans as `-flag` or
/// `-flag=false`, camelCase names, klog's `-v 3`) into this program's, so that an existing
/// DaemonSet's arguments work unchanged. Arguments of every other command, and everything
/// after `--`, are left alone.
fn normalise_args(args: Vec<OsString>) -> Vec<OsString> {
    let Some(at) = subcommand_index(&args) else {
        return args;
    };
    if args[at] != "audit" {
        return args;
    }
    let mut out: Vec<OsString> = args[..=at].to_vec();
    let mut rest = args[at + 1..].iter();
    while let Some(arg) = rest.next() {
        let Some(text) = arg.to_str() else {
            out.push(arg.clone());
            continue;
        };
        if text == "--" {
            out.push(arg.clone());
            out.extend(rest.cloned());
            break;
        }
        let Some(flag) = text.strip_prefix("--").or_else(|| text.strip_prefix('-')) else {
            out.push(arg.clone());
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (flag, None),
        };
        if let Some((_, ours)) = GO_VALUE_FLAGS.iter().find(|(go, _)| *go == name) {
            out.push(OsString::from(*ours));
            match value {
                Some(value) => out.push(value.into()),
                None => out.extend(rest.next().cloned()),
            }
        } else if let Some((_, ours)) = GO_BOOL_FLAGS.iter().find(|(go, _)| *go == name) {
            match value.map(go_bool) {
                None | Some(Some(true)) => out.push(OsString::from(*ours)),
                Some(Some(false)) => {}
                // Left for clap to refuse, naming the flag.
                Some(None) => out.push(format!("{ours}={}", value.unwrap_or_default()).into()),
            }
        } else if name == "v" {
            let level = match value {
                Some(value) => Some(value.to_owned()),
                None => rest
                    .clone()
                    .next()
                    .and_then(|next| next.to_str())
                    .filter(|next| !next.is_empty() && next.bytes().all(|b| b.is_ascii_digit()))
                    .map(str::to_owned)
                    .inspect(|_| {
                        rest.next();
                    }),
            };
            match level.as_deref().map(str::parse::<u32>) {
                None => out.push(arg.clone()),
                Some(Ok(level)) => out.extend(klog_verbosity(level).map(OsString::from)),
                Some(Err(_)) => out.push(arg.clone()),
            }
        } else {
            out.push(arg.clone());
        }
    }
    out
}

/// What Go's `strconv.ParseBool` accepts.
fn go_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A klog verbosity level as this program's -v count: levels 1 to 3 are debug, 4 and
/// more trace (klog's own scale puts request-level detail at 4 and above).
fn klog_verbosity(level: u32) -> Option<&'static str> {
    match level {
        0 => None,
        1..=3 => Some("-v"),
        _ => Some("-vv"),
    }
}

/// Where the command's name is in `args`: the first argument that is neither a flag nor
/// the value of one (flags before the command may take values, such as `-t iptables`), read
/// as clap reads it: `--flag=value` and `-tVALUE` hold their value, `--flag VALUE`, `-t VALUE`
/// and a cluster ending in a flag that takes one (`-vt VALUE`) are followed by it.
fn subcommand_index(args: &[OsString]) -> Option<usize> {
    let command = Cli::command();
    let long_takes_value = |long: &str| {
        command
            .get_arguments()
            .any(|arg| arg.get_long() == Some(long) && arg.get_action().takes_values())
    };
    let short_takes_value = |short: char| {
        command
            .get_arguments()
            .any(|arg| arg.get_short() == Some(short) && arg.get_action().takes_values())
    };
    let mut i = 1;
    while i < args.len() {
        let token = args[i].to_string_lossy();
        if token == "--" {
            return None;
        }
        let value_follows = if let Some(long) = token.strip_prefix("--") {
            !long.contains('=') && long_takes_value(long)
        } else if let Some(shorts) = token.strip_prefix('-').filter(|s| !s.is_empty()) {
            // The first short flag that takes a value takes the rest of the word.
            shorts
                .char_indices()
                .find(|&(_, c)| short_takes_value(c))
                .is_some_and(|(at, c)| at + c.len_utf8() == shorts.len())
        } else {
            return Some(i);
        };
        i += 1 + usize::from(value_follows);
    }
    None
}

impl LogArgs {
    /// The level these flags ask for: --log.level, else -v and -q counted from info.
    pub fn level(&self) -> tracing_subscriber::filter::LevelFilter {
        use tracing_subscriber::filter::LevelFilter;
        match self.log_level {
            Some(LogLevel::Trace) => LevelFilter::TRACE,
            Some(LogLevel::Debug) => LevelFilter::DEBUG,
            Some(LogLevel::Info) => LevelFilter::INFO,
            Some(LogLevel::Warn) => LevelFilter::WARN,
            Some(LogLevel::Error) => LevelFilter::ERROR,
            None => match i16::from(self.verbose) - i16::from(self.quiet) {
                v if v >= 2 => LevelFilter::TRACE,
                1 => LevelFilter::DEBUG,
                0 => LevelFilter::INFO,
                -1 => LevelFilter::WARN,
                -2 => LevelFilter::ERROR,
                _ => LevelFilter::OFF,
            },
        }
    }
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Very detailed.
    Trace,
    /// Detailed.
    Debug,
    /// Normal.
    Info,
    /// Only problems.
    Warn,
    /// Only failures.
    Error,
}

pub use crate::logging::LogFormat;

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(args: &[&str]) -> Vec<String> {
        let args = std::iter::once("netfilter_exporter")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect();
        normalise_args(args)
            .into_iter()
            .skip(1)
            .map(|a| a.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn go_spellings_of_the_audit_flags_become_ours() {
        assert_eq!(
            normalised(&[
                "audit",
                "-input=/etc/config/",
                "-input6",
                "/etc/c6",
                "--interval=60",
                "-checkMap=true",
                "-mapPath=/sys/fs/bpf/m",
                "-terminateOnSuccess",
                "-events=false",
                "-ipv6=1",
                "-v",
                "3",
            ]),
            [
                "audit",
                "--input",
                "/etc/config/",
                "--input6",
                "/etc/c6",
                "--interval",
                "60",
                "--check-map",
                "--map-path",
                "/sys/fs/bpf/m",
                "--terminate-on-success",
                "--ipv6",
                "-v",
            ]
        );
    }

    #[test]
    fn klog_levels_and_our_own_verbosity() {
        assert_eq!(normalised(&["audit", "-v", "0"]), ["audit"]);
        assert_eq!(normalised(&["audit", "-v=2"]), ["audit", "-v"]);
        assert_eq!(normalised(&["audit", "-v", "5"]), ["audit", "-vv"]);
        assert_eq!(
            normalised(&["audit", "-v", "--once"]),
            ["audit", "-v", "--once"]
        );
        assert_eq!(normalised(&["audit", "-vv"]), ["audit", "-vv"]);
    }

    #[test]
    fn only_the_audit_command_is_rewritten() {
        for args in [
            &["dump", "-events=true"][..],
            &["-t", "audit", "dump", "-checkMap"][..],
            &["--", "audit", "-checkMap"][..],
            &["audit", "--", "-checkMap"][..],
        ] {
            assert_eq!(normalised(args), args, "{args:?}");
        }
        assert_eq!(
            normalised(&["--collect-timeout", "5", "-q", "audit", "-events"]),
            ["--collect-timeout", "5", "-q", "audit", "--events"]
        );
        // A cluster ending in a flag that takes a value is followed by that value.
        assert_eq!(
            normalised(&["-vt", "iptables", "audit", "-checkMap"]),
            ["-vt", "iptables", "audit", "--check-map"]
        );
    }

    #[test]
    fn a_bad_boolean_is_left_for_clap_to_refuse() {
        assert_eq!(
            normalised(&["audit", "-events=maybe"]),
            ["audit", "--events=maybe"]
        );
        let err = Cli::try_parse_from(normalise_args(
            ["netfilter_exporter", "audit", "-events=maybe"]
                .map(OsString::from)
                .to_vec(),
        ))
        .expect_err("refused");
        assert!(err.to_string().contains("--events"), "{err}");
    }

    #[test]
    fn the_last_of_a_repeated_flag_wins_as_in_go() {
        let cli = Cli::try_parse_from(normalise_args(
            [
                "netfilter_exporter",
                "audit",
                "-input=/a",
                "-input",
                "/b",
                "-interval=5",
                "--interval=6",
            ]
            .map(OsString::from)
            .to_vec(),
        ))
        .expect("parses");
        let Some(Command::Audit(audit)) = cli.command else {
            panic!("not audit: {:?}", cli.command);
        };
        assert_eq!(
            (audit.check.input, audit.check.interval),
            (PathBuf::from("/b"), 6)
        );
    }

    #[test]
    fn the_original_defaults() {
        let cli = Cli::try_parse_from(["netfilter_exporter", "audit"]).expect("parses");
        let Some(Command::Audit(audit)) = cli.command else {
            panic!("not audit: {:?}", cli.command);
        };
        assert_eq!(audit.check.input, PathBuf::from("/etc/config/"));
        assert_eq!(audit.check.input6, PathBuf::from("/etc/config6/"));
        assert_eq!(audit.check.interval, 300);
        assert_eq!(
            audit.check.map_path,
            PathBuf::from("/azure-block-iptables-bpf-map/iptables_block_event_counter")
        );
        let check = audit.check;
        assert!(!(check.ipv6 || check.events || check.check_map || check.terminate_on_success));
    }
}

/// Where each flag is taken: after each mode's name, and before it.
#[cfg(test)]
mod position_tests {
    use std::collections::BTreeSet;

    use super::*;

    fn parsed(args: &[&str]) -> Result<Command, clap::Error> {
        parse(
            std::iter::once("netfilter_exporter")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect(),
        )
    }

    fn serve(args: &[&str]) -> ServeArgs {
        match parsed(args) {
            Ok(Command::Serve(serve)) => serve,
            other => panic!("{args:?}: not serve: {other:?}"),
        }
    }

    fn dump(args: &[&str]) -> DumpArgs {
        match parsed(args) {
            Ok(Command::Dump(dump)) => dump,
            other => panic!("{args:?}: not dump: {other:?}"),
        }
    }

    fn audit(args: &[&str]) -> AuditArgs {
        match parsed(args) {
            Ok(Command::Audit(audit)) => audit,
            other => panic!("{args:?}: not audit: {other:?}"),
        }
    }

    #[test]
    fn serve_takes_its_flags_after_its_name() {
        let args = serve(&[
            "serve",
            "--web.listen-address",
            "127.0.0.1:9455",
            "--web.config.file",
            "/etc/web.yml",
            "-p",
            "1",
            "--web.telemetry-path",
            "/m",
            "--web.systemd-socket",
            "--audit.input",
            "/a",
            "--audit.ipv6",
            "-t",
            "iptables",
            "--collect-interval",
            "2",
            "--no-rule-metrics",
            "--accounting.ipv4-chains",
            "A",
            "--kubernetes.node-name",
            "n",
            "-vv",
        ]);
        assert_eq!(args.listen.web_listen_address, ["127.0.0.1:9455"]);
        assert_eq!(args.listen.listen_port, Some(1));
        assert!(args.listen.web_systemd_socket);
        assert_eq!(
            args.web.web_config_file,
            Some(PathBuf::from("/etc/web.yml"))
        );
        assert_eq!(args.web.web_telemetry_path, "/m");
        assert_eq!(args.audit.audit_input, Some(PathBuf::from("/a")));
        assert!(args.audit.audit_ipv6);
        assert_eq!(args.collect.sources.scrape_targets, ["iptables"]);
        assert_eq!(args.collect.collect_interval, 2.0);
        assert!(args.metrics.no_rule_metrics);
        assert_eq!(args.accounting.accounting_ipv4_chains, ["A"]);
        assert_eq!(args.kubernetes.kubernetes_node_name.as_deref(), Some("n"));
        assert_eq!(args.log.verbose, 2);
    }

    #[test]
    fn iptables_exporter_users_type_serve_flags_before_any_mode() {
        let args = serve(&["-p", "9455", "-t", "iptables"]);
        assert_eq!(args.listen.listen_port, Some(9455));
        assert_eq!(args.collect.sources.scrape_targets, ["iptables"]);
        let args = serve(&["-l", "127.0.0.1", "--web.telemetry-path=/m", "serve"]);
        assert_eq!(args.listen.listen_address, Some([127, 0, 0, 1].into()));
        assert_eq!(args.web.web_telemetry_path, "/m");
        let args = dump(&["--collect-interval", "5", "-vt", "iptables", "dump"]);
        assert_eq!(args.collect.collect_interval, 5.0);
        assert_eq!(args.collect.sources.scrape_targets, ["iptables"]);
        assert_eq!(args.log.verbose, 1);
        let args = dump(&["--textfile=/x.prom", "--collect-timeout", "3", "dump"]);
        assert_eq!(args.textfile, Some(PathBuf::from("/x.prom")));
        assert_eq!(args.collect.sources.limits.collect_timeout, 3.0);
        // The audit's own server, as after its name.
        let args = audit(&[
            "--web.listen-address",
            "127.0.0.1:1",
            "-q",
            "audit",
            "-ipv6",
        ]);
        assert_eq!(args.web_listen_address, ["127.0.0.1:1"]);
        assert!(args.check.ipv6);
        assert_eq!(args.log.quiet, 1);
        match parsed(&[
            "--textfile",
            "/x.prom",
            "-t",
            "nftables",
            "--collect-interval=2",
        ]) {
            Ok(Command::Textfile(textfile)) => {
                assert_eq!(textfile.path, PathBuf::from("/x.prom"));
                assert!(!textfile.once);
                assert_eq!(textfile.collect.sources.scrape_targets, ["nftables"]);
                assert_eq!(textfile.collect.collect_interval, 2.0);
            }
            other => panic!("not textfile: {other:?}"),
        }
        match parsed(&["--log.level", "debug", "munin", "config"]) {
            Ok(Command::Munin(munin)) => {
                assert_eq!(munin.action, Some(crate::munin::Action::Config));
                assert_eq!(munin.log.log_level, Some(LogLevel::Debug));
            }
            other => panic!("not munin: {other:?}"),
        }
    }

    /// Given on both sides, a flag is one repeated after the mode: the last value wins,
    /// lists and counts add up.
    #[test]
    fn a_flag_before_and_after_the_mode_is_a_repeated_flag() {
        let args = dump(&["--collect-interval", "1", "dump", "--collect-interval", "2"]);
        assert_eq!(args.collect.collect_interval, 2.0);
        let args = dump(&["-t", "iptables", "-v", "dump", "-t", "ip6tables", "-v"]);
        assert_eq!(
            args.collect.sources.scrape_targets,
            ["iptables", "ip6tables"]
        );
        assert_eq!(args.log.verbose, 2);
        let args = audit(&[
            "--web.listen-address",
            "127.0.0.1:1",
            "audit",
            "--web.listen-address=127.0.0.1:2",
        ]);
        assert_eq!(args.web_listen_address, ["127.0.0.1:1", "127.0.0.1:2"]);
        let args = serve(&["-p", "1", "serve", "-p", "2"]);
        assert_eq!(args.listen.listen_port, Some(2));
    }

    #[test]
    fn a_flag_before_a_mode_that_does_not_take_it_is_an_error_naming_both() {
        for (args, flag, mode) in [
            (
                &["--collect-interval", "10", "munin"][..],
                "--collect-interval",
                "munin",
            ),
            (
                &["--web.listen-address", "X", "dump"][..],
                "--web.listen-address",
                "dump",
            ),
            (&["-p", "9455", "audit"][..], "-p/--listen-port", "audit"),
            (
                &["-t", "iptables", "audit", "--once"][..],
                "-t/--scrape-targets",
                "audit",
            ),
            (
                &["--no-rule-metrics", "audit"][..],
                "--no-rule-metrics",
                "audit",
            ),
            (
                &["--audit.input", "/a", "dump"][..],
                "--audit.input",
                "dump",
            ),
            (
                &["--kubernetes.node-name", "n", "textfile", "/x"][..],
                "--kubernetes.node-name",
                "textfile",
            ),
            (
                &["--web.config.file", "/f", "textfile", "/x"][..],
                "--web.config.file",
                "textfile",
            ),
            (&["--textfile", "/x", "serve"][..], "--textfile", "serve"),
        ] {
            let err = parsed(args).expect_err("refused").to_string();
            assert!(
                err.contains(&format!(
                    "'{flag}' was given before {mode}, which does not take it"
                )),
                "{args:?}: {err}"
            );
            assert!(
                err.contains(&format!("Usage: netfilter_exporter {mode} ")),
                "{args:?}: {err}"
            );
        }
        // --textfile without a mode is the textfile mode.
        let err = parsed(&["--textfile", "/x", "-p", "1"])
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("'-p/--listen-port' was given with --textfile, whose textfile mode does not take it (serve takes it)"),
            "{err}"
        );
        // After the mode's name, clap itself refuses it.
        let err = parsed(&["munin", "--collect-interval", "10"]).expect_err("refused");
        assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
    }

    /// The flags listed in a help text: its `  -x, --name` and `      --name` lines.
    fn listed(help: &str) -> BTreeSet<String> {
        let header = regex::Regex::new(r"(?m)^(?:  -., |      )--([a-z0-9-]+(?:\.[a-z0-9-]+)*)")
            .expect("regex");
        header
            .captures_iter(help)
            .map(|c| format!("--{}", &c[1]))
            .collect()
    }

    /// The long flags of one group.
    fn group<T: Args>() -> BTreeSet<String> {
        T::augment_args(clap::Command::new("group"))
            .get_arguments()
            .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
            .collect()
    }

    #[test]
    fn each_modes_help_lists_exactly_its_flags() {
        let collection = || {
            vec![
                group::<CollectArgs>(),
                group::<MetricsArgs>(),
                group::<AccountingArgs>(),
            ]
        };
        let flags = |names: &[&str]| -> BTreeSet<String> {
            names.iter().map(|name| (*name).to_owned()).collect()
        };
        let log = group::<LogArgs>;
        let expected: [(&str, Vec<BTreeSet<String>>); 6] = [
            (
                "serve",
                [
                    collection(),
                    vec![
                        group::<ListenArgs>(),
                        group::<WebArgs>(),
                        group::<ServeAuditArgs>(),
                        group::<KubernetesArgs>(),
                        log(),
                    ],
                ]
                .concat(),
            ),
            (
                "dump",
                [collection(), vec![log(), flags(&["--textfile"])]].concat(),
            ),
            (
                "textfile",
                [collection(), vec![log(), flags(&["--once"])]].concat(),
            ),
            ("munin", vec![log()]),
            (
                "audit",
                vec![
                    group::<AuditCheckArgs>(),
                    flags(&["--web.listen-address"]),
                    group::<WebArgs>(),
                    group::<CollectLimitArgs>(),
                    group::<KubernetesArgs>(),
                    log(),
                ],
            ),
            (
                "top",
                vec![
                    group::<SourceArgs>(),
                    group::<AccountingArgs>(),
                    log(),
                    flags(&[
                        "--delay",
                        "--once",
                        "--rows",
                        "--group",
                        "--url",
                        "--http.config.file",
                        "--collect-cpu-budget",
                        "--log.file",
                    ]),
                ],
            ),
        ];
        let mut command = Cli::command();
        command.build();
        for (name, groups) in expected {
            let mut flags: BTreeSet<String> = groups.into_iter().flatten().collect();
            flags.insert("--help".into());
            let help = command
                .find_subcommand_mut(name)
                .expect("a mode")
                .render_long_help()
                .to_string();
            assert_eq!(listed(&help), flags, "{name}:\n{help}");
        }
        // Spelled out, the flags of the issue.
        let help = |name: &str| {
            let mut command = Cli::command();
            command.build();
            let help = command
                .find_subcommand_mut(name)
                .expect("a mode")
                .render_long_help()
                .to_string();
            listed(&help)
        };
        for flag in [
            "--web.listen-address",
            "--web.config.file",
            "--listen-port",
            "--web.telemetry-path",
            "--web.systemd-socket",
            "--audit.input",
        ] {
            assert!(help("serve").contains(flag), "{flag}");
        }
        for flag in ["--web.listen-address", "--web.config.file", "--audit.input"] {
            assert!(!help("dump").contains(flag), "{flag}");
        }
        assert!(help("dump").contains("--collect-interval"));
        assert!(!help("munin").contains("--collect-interval"));
        assert!(help("audit").contains("--web.config.file"));
        assert!(!help("top").contains("--collect-interval"));
        assert!(!help("audit").contains("--web.systemd-socket"));
        // Without a mode: serve's flags, and --textfile.
        let top = listed(&Cli::command().render_long_help().to_string());
        let mut serve = help("serve");
        serve.extend(["--textfile".to_owned(), "--version".to_owned()]);
        assert_eq!(top, serve);
    }

    /// Moving a flag from before the mode to after it keeps its meaning: where a mode has a
    /// flag of the same id as a top-level one, it is the same flag.
    #[test]
    fn a_flag_is_the_same_flag_before_and_after_any_mode() {
        let command = Cli::command();
        for mode in command.get_subcommands() {
            for arg in mode.get_arguments() {
                if let Some(top) = command.get_arguments().find(|t| t.get_id() == arg.get_id()) {
                    assert_eq!(
                        (
                            top.get_long(),
                            top.get_short(),
                            top.get_action().takes_values()
                        ),
                        (
                            arg.get_long(),
                            arg.get_short(),
                            arg.get_action().takes_values()
                        ),
                        "{} in {}",
                        arg.get_id(),
                        mode.get_name()
                    );
                }
            }
        }
    }

    #[test]
    fn the_mode_is_found_after_flags_that_hold_their_values() {
        let index = |args: &[&str]| {
            let args: Vec<OsString> = std::iter::once("netfilter_exporter")
                .chain(args.iter().copied())
                .map(OsString::from)
                .collect();
            subcommand_index(&args)
        };
        assert_eq!(index(&["-vt", "dump", "audit"]), Some(3));
        assert_eq!(index(&["-tdump", "audit"]), Some(2));
        assert_eq!(index(&["-t=dump", "audit"]), Some(2));
        assert_eq!(index(&["--scrape-targets=dump", "audit"]), Some(2));
        assert_eq!(index(&["--scrape-targets", "dump", "audit"]), Some(3));
        assert_eq!(index(&["--no-rule-metrics", "-vq", "audit"]), Some(3));
        assert_eq!(index(&["-v", "--", "audit"]), None);
    }
}
