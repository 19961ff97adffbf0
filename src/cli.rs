//! The command line as the user types it. Each flag's doc comment is its `--help` text;
//! combinations are checked once, in [`crate::config`].

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Prometheus exporter for iptables, ip6tables and their legacy backends: per-rule,
/// per-chain and per-comment counters, served from memory.
#[derive(Debug, Parser)]
#[command(name = "netfilter_exporter", version, about, long_about = None)]
pub struct Cli {
    /// What to do; without a command the exporter serves metrics over HTTP.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Seconds between the end of one collection of a backend and the start of the next.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, global = true)]
    pub collect_interval: f64,

    /// Seconds a dump command (iptables-save …) may run before it is killed and the
    /// collection counts as failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, global = true)]
    pub collect_timeout: f64,

    /// Bytes a dump command may print on standard output before it is killed and the
    /// collection counts as failed.
    #[arg(long, value_name = "BYTES", default_value_t = crate::source::DEFAULT_MAX_OUTPUT_BYTES, global = true)]
    pub collect_max_output_bytes: usize,

    /// Backend to read: iptables, ip6tables, iptables-legacy or ip6tables-legacy. Repeat
    /// the flag or separate names with commas. Default: every backend whose save command
    /// exists and that reports at least one table.
    #[arg(
        short = 't',
        long = "scrape-targets",
        value_name = "TARGET",
        value_delimiter = ',',
        global = true
    )]
    pub scrape_targets: Vec<String>,

    /// Address to listen on for HTTP, as host:port; repeat for several.
    /// [default: 0.0.0.0:9455]
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub web_listen_address: Vec<String>,

    /// Address to listen on (iptables_exporter's flag; combined with --listen-port).
    #[arg(short = 'l', long = "listen-address", value_name = "IP")]
    pub listen_address: Option<IpAddr>,

    /// Port to listen on (iptables_exporter's flag; combined with --listen-address).
    #[arg(short = 'p', long = "listen-port", value_name = "PORT")]
    pub listen_port: Option<u16>,

    /// Write the exposition to this file, atomically, instead of serving it: after every
    /// collection, or once with `dump` (`dump --textfile PATH`). The same as the textfile
    /// command.
    #[arg(long, value_name = "PATH", global = true)]
    pub textfile: Option<PathBuf>,

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

    /// Connections open at once, at most; at the cap, the connection idle the longest is
    /// closed to make room. Lowered at start when the open-file limit leaves less room.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = 1024)]
    pub web_max_connections: usize,

    /// Requests in progress at once, at most; more are answered 503.
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

    /// Leave out the per-rule series (*_rule_bytes_total, *_rule_packets_total).
    #[arg(long, global = true)]
    pub no_rule_metrics: bool,

    /// Leave out the per-comment series (*_comment_bytes_total, *_comment_packets_total).
    #[arg(long, global = true)]
    pub no_comment_metrics: bool,

    /// Write rule and comment series only for tables whose whole name matches this regex.
    #[arg(long, value_name = "REGEX", global = true)]
    pub table_include: Option<String>,

    /// Write no rule and comment series for tables whose whole name matches this regex.
    #[arg(long, value_name = "REGEX", global = true)]
    pub table_exclude: Option<String>,

    /// Write rule and comment series only for chains whose whole name matches this regex.
    #[arg(long, value_name = "REGEX", global = true)]
    pub chain_include: Option<String>,

    /// Write no rule and comment series for chains whose whole name matches this regex.
    #[arg(long, value_name = "REGEX", global = true)]
    pub chain_exclude: Option<String>,

    /// Leave out iptables_exporter's *_scrape_duration_milliseconds (not in base units;
    /// netfilter_exporter_collection_duration_seconds carries the same figure).
    #[arg(long, global = true)]
    pub no_legacy_duration_metric: bool,

    /// More log output: -v debug, -vv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less log output: -q warn, -qq error, -qqq nothing.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub quiet: u8,

    /// Log level (overrides -v and -q).
    #[arg(long = "log.level", value_enum, value_name = "LEVEL", global = true)]
    pub log_level: Option<LogLevel>,

    /// Log line format, on standard error.
    #[arg(
        long = "log.format",
        value_enum,
        value_name = "FORMAT",
        default_value = "logfmt",
        global = true
    )]
    pub log_format: LogFormat,

    // ---- Traffic accounting (docs/accounting.md) ----
    /// Accounting chains of the IPv4 rulesets, looked up in every table: comma-separated
    /// names, or `all` for every chain.
    #[arg(
        long = "accounting.ipv4-chains",
        value_name = "CHAINS",
        value_delimiter = ',',
        default_value = "ACCT4",
        global = true
    )]
    pub accounting_ipv4_chains: Vec<String>,

    /// Accounting chains of the IPv6 rulesets, looked up in every table: comma-separated
    /// names, or `all` for every chain.
    #[arg(
        long = "accounting.ipv6-chains",
        value_name = "CHAINS",
        value_delimiter = ',',
        default_value = "ACCT6",
        global = true
    )]
    pub accounting_ipv6_chains: Vec<String>,

    /// Comment grammars read in the accounting chains: `tags` (`=tag= description`, Munin
    /// traffic_accounting), `labels` (`nft(key=value;...)`, nfprom), both, or `none`.
    #[arg(
        long = "accounting.comments",
        value_name = "GRAMMARS",
        value_delimiter = ',',
        default_value = "tags,labels",
        global = true
    )]
    pub accounting_comments: Vec<String>,

    /// Chain (in every table, both families) whose rules without an accounting comment get
    /// labels derived from their parameters (address, direction, l2proto, l3proto, port),
    /// as the iptables version of nfprom did. Off when not given.
    #[arg(
        long = "accounting.rule-params-chain",
        value_name = "CHAIN",
        global = true
    )]
    pub accounting_rule_params_chain: Option<String>,

    /// Metric prefix of the tag series: PREFIX_bytes_total, _packets_total, _info and
    /// _rejected_rules (nfprom's -namespace).
    #[arg(
        long = "accounting.prefix",
        value_name = "PREFIX",
        default_value = crate::accounting::DEFAULT_PREFIX,
        global = true
    )]
    pub accounting_prefix: String,

    /// Metric prefix of the nft(key=value;...) label-comment series (`nfprom` gives
    /// nfprom's names).
    #[arg(
        long = "accounting.labels-prefix",
        value_name = "PREFIX",
        default_value = crate::accounting::DEFAULT_LABELS_PREFIX,
        global = true
    )]
    pub accounting_labels_prefix: String,

    /// Metric prefix of the rule-parameter series (`nfprom` gives nfprom's names).
    #[arg(
        long = "accounting.rule-params-prefix",
        value_name = "PREFIX",
        default_value = crate::accounting::DEFAULT_RULE_PARAMS_PREFIX,
        global = true
    )]
    pub accounting_rule_params_prefix: String,
    // ---- end of traffic accounting ----
}

/// The modes besides serving.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve metrics over HTTP (the default).
    Serve,
    /// Collect once and print the exposition (text format) to standard output. Exits with
    /// status 1 when a selected backend failed.
    Dump,
    /// Write the exposition to a file for node_exporter's textfile collector, atomically,
    /// after every collection (or once with --once).
    Textfile {
        /// The file to write, e.g. /var/lib/node_exporter/textfile/netfilter.prom.
        path: PathBuf,
        /// Collect and write once, then exit (status 1 when a backend failed).
        #[arg(long)]
        once: bool,
    },
    /// Act as the Munin plugin traffic_accounting (settings from munin-node's environment;
    /// linking the binary as traffic_accounting does the same without this command).
    Munin {
        /// The plugin command; without one, print the current values.
        action: Option<crate::munin::Action>,
    },
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

/// Log line formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// key=value pairs.
    Logfmt,
    /// One JSON object per line.
    Json,
}
