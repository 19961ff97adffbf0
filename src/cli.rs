//! The command line as the user types it. Each flag's doc comment is its `--help` text;
//! combinations are checked once, in [`crate::config`].

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Prometheus exporter for iptables, ip6tables and their legacy backends: per-rule,
/// per-chain and per-comment counters, served from memory.
#[derive(Debug, Parser)]
// The last of a repeated flag wins, as in Go's flag package: a DaemonSet's arguments
// may repeat one (the audit command takes azure-iptables-monitor's arguments unchanged).
#[command(name = "netfilter_exporter", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// What to do; without a command the exporter serves metrics over HTTP.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Seconds between the end of one collection of a backend and the start of the next.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, global = true)]
    pub collect_interval: f64,

    /// Share of one core a source's collections may use on average (0.05 = 5%): a
    /// collection that costs more CPU time stretches the pause before the next one
    /// (netfilter_exporter_collection_interval_seconds). 0 turns the budget off.
    #[arg(long, value_name = "SHARE", default_value_t = crate::budget::DEFAULT_SHARE, global = true)]
    pub collect_cpu_budget: f64,

    /// Seconds a dump command (iptables-save …) may run before it is killed and the
    /// collection counts as failed.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, global = true)]
    pub collect_timeout: f64,

    /// Bytes a dump command may print on standard output before it is killed and the
    /// collection counts as failed.
    #[arg(long, value_name = "BYTES", default_value_t = crate::source::DEFAULT_MAX_OUTPUT_BYTES, global = true)]
    pub collect_max_output_bytes: usize,

    /// Most elements of one nftables set counted by reading them, for a kernel that does
    /// not send a set's element count itself (Linux before 6.x); a larger set is exported
    /// without its count. 0: never read set elements.
    #[arg(long = "nftables.set-elements-limit", value_name = "ELEMENTS", default_value_t = crate::source::nftables::DEFAULT_SET_ELEMENTS_LIMIT, global = true)]
    pub nftables_set_elements_limit: u64,

    /// Always run iptables-save / ip6tables-save for the iptables and ip6tables sources,
    /// instead of reading their nf_tables tables over netlink with cached rule texts.
    #[arg(long = "no-iptables-netlink", global = true)]
    pub no_iptables_netlink: bool,

    /// Source to read: iptables, ip6tables, iptables-legacy, ip6tables-legacy or nftables.
    /// Repeat the flag or separate names with commas. Default: every backend whose save
    /// command exists and that reports at least one table, and nftables when the kernel
    /// has nf_tables tables that are not iptables-nft's.
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

    /// Take the listening sockets from systemd socket activation (LISTEN_FDS) instead of
    /// binding --web.listen-address.
    #[arg(long = "web.systemd-socket")]
    pub web_systemd_socket: bool,

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

    /// nftables accounting chains, as TABLE/CHAIN (the table of any family), or `all`.
    /// Repeat the flag or separate with commas.
    #[arg(
        long = "accounting.nftables-chain",
        value_name = "TABLE/CHAIN",
        value_delimiter = ',',
        default_value = crate::accounting::DEFAULT_NFTABLES_CHAIN,
        global = true
    )]
    pub accounting_nftables_chains: Vec<String>,

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

    // ---- The audit inside serve (docs/audit.md); --terminate-on-success has no place
    // in a server and is left out ----
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

    // ---- Kubernetes, for the audit (docs/audit.md) ----
    /// The node the audit runs on: the running audit labels the CiliumNode of this name
    /// and creates its events on the Node. Without it Kubernetes is not told.
    #[arg(
        long = "kubernetes.node-name",
        env = "NODE_NAME",
        value_name = "NAME",
        global = true
    )]
    pub kubernetes_node_name: Option<String>,

    /// The API server, as https://HOST:PORT. Default: KUBERNETES_SERVICE_HOST and
    /// KUBERNETES_SERVICE_PORT, as a pod has them. For running outside a cluster, and for
    /// tests.
    #[arg(long = "kubernetes.api-server", value_name = "URL", global = true)]
    pub kubernetes_api_server: Option<String>,

    /// The service account token, read again for every request (it rotates). Another
    /// file only outside a cluster, and for tests.
    #[arg(
        long = "kubernetes.token-file",
        value_name = "PATH",
        default_value = crate::audit::kube::DEFAULT_TOKEN_FILE,
        global = true
    )]
    pub kubernetes_token_file: PathBuf,

    /// The PEM file of the CA the API server's certificate must chain to. Another file
    /// only outside a cluster, and for tests.
    #[arg(
        long = "kubernetes.ca-file",
        value_name = "PATH",
        default_value = crate::audit::kube::DEFAULT_CA_FILE,
        global = true
    )]
    pub kubernetes_ca_file: PathBuf,

    /// Seconds one Kubernetes request may take, connecting included.
    #[arg(
        long = "kubernetes.timeout",
        value_name = "SECONDS",
        default_value_t = 10.0,
        global = true
    )]
    pub kubernetes_timeout: f64,
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
    /// Check every table's rules against allowlists of regular expressions, as
    /// azure-iptables-monitor does (docs/audit.md). Also takes that tool's own flag
    /// spellings (-input=DIR, -checkMap=true, -v 3, …).
    Audit(AuditArgs),
}

/// Where the audit's default allowlists live: the original's defaults, where its
/// DaemonSet mounts the ConfigMaps.
pub const DEFAULT_AUDIT_INPUT: &str = "/etc/config/";
/// The IPv6 allowlists' default directory.
pub const DEFAULT_AUDIT_INPUT6: &str = "/etc/config6/";
/// The original's default pinned BPF map.
pub const DEFAULT_AUDIT_MAP_PATH: &str =
    "/azure-block-iptables-bpf-map/iptables_block_event_counter";

/// The flags of the audit command.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
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

    /// Serve the audit's metrics over HTTP at this address (host:port) while checking
    /// every --interval; repeat for several. Without it nothing is served.
    #[arg(long = "web.listen-address", value_name = "ADDRESS")]
    pub web_listen_address: Vec<String>,
}

/// Formats of the audit's findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditOutput {
    /// One `family table line` per unexpected line, then one line per failed family.
    Text,
    /// One JSON object.
    Json,
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
pub fn normalise_args(args: Vec<OsString>) -> Vec<OsString> {
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
/// the value of one (flags before the command may take values, such as `-t iptables`).
fn subcommand_index(args: &[OsString]) -> Option<usize> {
    let command = <Cli as clap::CommandFactory>::command();
    let takes_value = |token: &str| {
        command.get_arguments().any(|arg| {
            arg.get_action().takes_values()
                && (arg
                    .get_long()
                    .is_some_and(|l| token.strip_prefix("--") == Some(l))
                    || arg.get_short().is_some_and(|s| {
                        token.strip_prefix('-') == Some(s.encode_utf8(&mut [0; 4]))
                    }))
        })
    };
    let mut i = 1;
    while i < args.len() {
        let token = args[i].to_str()?;
        if token == "--" {
            return None;
        }
        if !token.starts_with('-') || token == "-" {
            return Some(i);
        }
        if takes_value(token) {
            i += 1;
        }
        i += 1;
    }
    None
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
        assert_eq!((audit.input, audit.interval), (PathBuf::from("/b"), 6));
    }

    #[test]
    fn the_original_defaults() {
        let cli = Cli::try_parse_from(["netfilter_exporter", "audit"]).expect("parses");
        let Some(Command::Audit(audit)) = cli.command else {
            panic!("not audit: {:?}", cli.command);
        };
        assert_eq!(audit.input, PathBuf::from("/etc/config/"));
        assert_eq!(audit.input6, PathBuf::from("/etc/config6/"));
        assert_eq!(audit.interval, 300);
        assert_eq!(
            audit.map_path,
            PathBuf::from("/azure-block-iptables-bpf-map/iptables_block_event_counter")
        );
        assert!(!(audit.ipv6 || audit.events || audit.check_map || audit.terminate_on_success));
    }
}
