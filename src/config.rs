//! Validated settings: the raw flags of [`crate::cli`] checked once, at startup, with
//! messages that name the flag at fault.

use std::path::PathBuf;
use std::time::Duration;

use crate::accounting::{AccountingConfig, ChainSet};
use crate::audit::kube::KubeSettings;
use crate::audit::settings::{AuditConfig, AuditFamily, AuditOutput};
use crate::cli::{
    AccountingArgs, AuditCheckArgs, CollectArgs, Command, KubernetesArgs, MetricsArgs, ServeArgs,
    SourceArgs, TopArgs, WebArgs,
};
use crate::collect::{CollectConfig, Selection};
use crate::exposition::Storage;
use crate::metrics::{MetricsConfig, NameFilter};
use crate::serve::TelemetryPath;
use crate::serve::connections::Limits;
use crate::serve::listen::ListenAddress;
use crate::source::SourceId;

/// The port iptables_exporter listened on, kept so that existing scrape configs work.
pub const DEFAULT_PORT: u16 = 9455;

/// What the program was asked to do.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Serve over HTTP.
    Serve(ServeConfig),
    /// Collect once, print to stdout.
    Dump,
    /// Write a textfile after every collection, or once.
    Textfile {
        /// Target file.
        path: PathBuf,
        /// Write once and exit.
        once: bool,
    },
    /// Answer one Munin plugin command as `traffic_accounting`.
    Munin {
        /// The plugin command.
        action: crate::munin::Action,
    },
    /// Check the rules against allowlists.
    Audit(AuditConfig),
    /// Show the rates of the rules in a terminal.
    Top(crate::top::Settings),
}

/// HTTP settings.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Addresses to listen on.
    pub listen: Vec<ListenAddress>,
    /// Path of the metrics endpoint.
    pub telemetry_path: TelemetryPath,
    /// The `--web.config.file`, read when the server starts.
    pub web_config_file: Option<PathBuf>,
    /// Listen on the sockets systemd passed instead of binding `listen`.
    pub systemd_socket: bool,
    /// `--web.user`, when given.
    pub web_user: Option<String>,
    /// Bounds on connections and requests; the connection cap is lowered at start when
    /// the open-file limit leaves less room.
    pub limits: Limits,
    /// The audit run inside the exporter (`--audit.input`), if any.
    pub audit: Option<AuditConfig>,
}

/// Every validated setting.
#[derive(Debug, Clone)]
pub struct Config {
    /// The mode.
    pub mode: Mode,
    /// Collection settings.
    pub collect: CollectConfig,
}

/// A flag value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag's value is out of range or malformed.
    #[error("invalid value for {flag}: {reason}")]
    Invalid {
        /// The flag, as typed.
        flag: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(flag: &'static str, reason: impl ToString) -> ConfigError {
    ConfigError::Invalid {
        flag,
        reason: reason.to_string(),
    }
}

impl Config {
    /// Validates the raw flags of the mode.
    pub fn from_args(command: &Command) -> Result<Self, ConfigError> {
        let mode = match command {
            Command::Serve(serve) => Mode::Serve(serve_config(serve)?),
            Command::Dump(dump) => match &dump.textfile {
                Some(path) => Mode::Textfile {
                    path: path.clone(),
                    once: true,
                },
                None => Mode::Dump,
            },
            Command::Textfile(textfile) => Mode::Textfile {
                path: textfile.path.clone(),
                once: textfile.once,
            },
            Command::Munin(munin) => Mode::Munin {
                action: munin.action.unwrap_or(crate::munin::Action::Fetch),
            },
            Command::Audit(audit) => Mode::Audit(audit_config(
                &audit.check,
                &audit.web_listen_address,
                &audit.web,
                &audit.kubernetes,
                &AUDIT_FLAGS,
            )?),
            Command::Top(top) => Mode::Top(top_settings(top)?),
        };
        // The modes that take no collection flags collect with the defaults: munin reads
        // its settings from munin-node's environment, and the audit takes only the bounds
        // on its dump commands. Top reads every series, so it takes no series selection.
        let (sources, pace, metrics, accounting) = match command {
            Command::Serve(args) => (
                &args.collect.sources,
                Pace::of(&args.collect),
                &args.metrics,
                &args.accounting,
            ),
            Command::Dump(args) => (
                &args.collect.sources,
                Pace::of(&args.collect),
                &args.metrics,
                &args.accounting,
            ),
            Command::Textfile(args) => (
                &args.collect.sources,
                Pace::of(&args.collect),
                &args.metrics,
                &args.accounting,
            ),
            Command::Munin(_) => (
                &SourceArgs::default(),
                Pace::of(&CollectArgs::default()),
                &MetricsArgs::default(),
                &AccountingArgs::default(),
            ),
            Command::Audit(args) => (
                &SourceArgs {
                    limits: args.limits.clone(),
                    ..SourceArgs::default()
                },
                Pace::of(&CollectArgs::default()),
                &MetricsArgs::default(),
                &AccountingArgs::default(),
            ),
            Command::Top(args) => (
                &args.sources,
                // The budget is for a service that runs unattended; someone watching top
                // asked for its pace.
                Pace {
                    interval_flag: "--delay",
                    interval: args.delay,
                    cpu_budget: args.collect_cpu_budget.unwrap_or(0.0),
                },
                &MetricsArgs::default(),
                &args.accounting,
            ),
        };
        // The one-shot modes keep no text while they hold the exposition: the peak of a
        // large dump is then the snapshot and a compressed exposition instead of the
        // snapshot and the whole text, for the time compressing takes (docs/performance.md).
        let storage = match mode {
            Mode::Serve(_) | Mode::Textfile { once: false, .. } => Storage::LONG_RUNNING,
            Mode::Dump
            | Mode::Textfile { once: true, .. }
            | Mode::Munin { .. }
            | Mode::Audit(_)
            | Mode::Top(_) => Storage::Compressed { keep_plain: 0 },
        };
        Ok(Config {
            mode,
            collect: collect_config(sources, pace, metrics, accounting, storage)?,
        })
    }
}

/// How often the sources are read: the interval with the flag that sets it, and the CPU
/// budget.
struct Pace {
    interval_flag: &'static str,
    interval: f64,
    cpu_budget: f64,
}

impl Pace {
    /// The pace of the collecting modes.
    fn of(collect: &CollectArgs) -> Pace {
        Pace {
            interval_flag: "--collect-interval",
            interval: collect.collect_interval,
            cpu_budget: collect.collect_cpu_budget,
        }
    }
}

/// Validates the flags of collection.
fn collect_config(
    collect: &SourceArgs,
    pace: Pace,
    metrics: &MetricsArgs,
    accounting: &AccountingArgs,
    storage: Storage,
) -> Result<CollectConfig, ConfigError> {
    let interval = seconds(pace.interval_flag, pace.interval)?;
    let timeout = seconds("--collect-timeout", collect.limits.collect_timeout)?;
    let cpu_budget = pace.cpu_budget;
    if !(0.0..=1024.0).contains(&cpu_budget) {
        return Err(invalid(
            "--collect-cpu-budget",
            format!(
                "{cpu_budget} is not a share of a core between 0 (off) and the machine's cores"
            ),
        ));
    }
    let max_output_bytes = collect.limits.collect_max_output_bytes;
    if max_output_bytes == 0 {
        return Err(invalid(
            "--collect-max-output-bytes",
            "0 bytes leave no room for any dump",
        ));
    }
    let selection = if collect.scrape_targets.is_empty() {
        Selection::Auto
    } else {
        let mut sources = Vec::new();
        for name in &collect.scrape_targets {
            let source: SourceId = name
                .trim()
                .parse()
                .map_err(|e| invalid("--scrape-targets", e))?;
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
        Selection::Explicit(sources)
    };
    let metrics = MetricsConfig {
        rule_series: !metrics.no_rule_metrics,
        comment_series: !metrics.no_comment_metrics,
        tables: NameFilter {
            include: pattern("--table-include", &metrics.table_include)?,
            exclude: pattern("--table-exclude", &metrics.table_exclude)?,
        },
        chains: NameFilter {
            include: pattern("--chain-include", &metrics.chain_include)?,
            exclude: pattern("--chain-exclude", &metrics.chain_exclude)?,
        },
        legacy_duration: !metrics.no_legacy_duration_metric,
        max_series: metrics.max_series,
    };
    Ok(CollectConfig {
        selection,
        interval,
        timeout,
        max_output_bytes,
        metrics,
        accounting: accounting_config(accounting)?,
        storage,
        set_elements_limit: collect.nftables_set_elements_limit,
        iptables_netlink: !collect.no_iptables_netlink,
        cpu_budget,
        ipset: crate::source::ipset::Settings {
            member_counters: collect.ipset_member_counters,
            member_limit: collect.ipset_member_limit,
        },
    })
}

/// Validates the flags of top that are its own.
fn top_settings(top: &TopArgs) -> Result<crate::top::Settings, ConfigError> {
    let once = match (top.once, top.rows) {
        (true, rows) => Some(rows.unwrap_or(crate::top::DEFAULT_ROWS)),
        (false, Some(_)) => {
            return Err(invalid(
                "--rows",
                "bounds the table of --once; the full screen shows what fits",
            ));
        }
        (false, None) => None,
    };
    if once == Some(0) {
        return Err(invalid("--rows", "0 rows would print nothing"));
    }
    let exporter = match &top.url {
        Some(url) => {
            let local = [
                ("--scrape-targets", !top.sources.scrape_targets.is_empty()),
                ("--collect-cpu-budget", top.collect_cpu_budget.is_some()),
                ("--no-iptables-netlink", top.sources.no_iptables_netlink),
            ];
            if let Some((flag, _)) = local.iter().find(|(_, given)| *given) {
                return Err(invalid(
                    flag,
                    "sets how this host's sources are read; with --url the exporter reads them",
                ));
            }
            Some(crate::top::Exporter {
                url: crate::top::fetch::Url::parse(url).map_err(|e| invalid("--url", e))?,
                http_config_file: top.http_config_file.clone(),
            })
        }
        None if top.http_config_file.is_some() => {
            return Err(invalid(
                "--http.config.file",
                "sets how --url is fetched, which is not given",
            ));
        }
        None => None,
    };
    Ok(crate::top::Settings {
        once,
        group: top.group,
        exporter,
        log_file: top.log_file.clone(),
    })
}

/// The names of the audit's flags in the `audit` command and inside `serve`.
struct AuditFlags {
    interval: &'static str,
    events: &'static str,
}

const AUDIT_FLAGS: AuditFlags = AuditFlags {
    interval: "--interval",
    events: "--events",
};

const SERVE_AUDIT_FLAGS: AuditFlags = AuditFlags {
    interval: "--audit.interval",
    events: "--audit.events",
};

/// The audit run inside `serve`, from its `--audit.*` flags: the same settings as the
/// `audit` command's, with the same defaults.
fn serve_audit_config(serve: &ServeArgs) -> Result<Option<AuditConfig>, ConfigError> {
    let flags = &serve.audit;
    let Some(input) = &flags.audit_input else {
        let stray = [
            ("--audit.input6", flags.audit_input6.is_some()),
            ("--audit.interval", flags.audit_interval.is_some()),
            ("--audit.ipv6", flags.audit_ipv6),
            ("--audit.nftables", flags.audit_nftables),
            ("--audit.events", flags.audit_events),
            ("--audit.check-map", flags.audit_check_map),
            ("--audit.map-path", flags.audit_map_path.is_some()),
        ];
        return match stray.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(invalid(
                flag,
                "sets the audit inside serve, which runs only with --audit.input",
            )),
            None => Ok(None),
        };
    };
    let check = AuditCheckArgs {
        input: input.clone(),
        input6: flags
            .audit_input6
            .clone()
            .unwrap_or_else(|| crate::cli::DEFAULT_AUDIT_INPUT6.into()),
        interval: flags.audit_interval.unwrap_or(300),
        ipv6: flags.audit_ipv6,
        nftables: flags.audit_nftables,
        events: flags.audit_events,
        terminate_on_success: false,
        check_map: flags.audit_check_map,
        map_path: flags
            .audit_map_path
            .clone()
            .unwrap_or_else(|| crate::cli::DEFAULT_AUDIT_MAP_PATH.into()),
        once: false,
        output: AuditOutput::Text,
        rules_file: None,
        rules_file6: None,
    };
    // Its metrics join serve's exposition: it serves nothing of its own.
    audit_config(
        &check,
        &[],
        &WebArgs::default(),
        &serve.kubernetes,
        &SERVE_AUDIT_FLAGS,
    )
    .map(Some)
}

/// Validates the flags of the audit command: what to check, and the server of `listen`
/// (none: nothing served).
fn audit_config(
    audit: &AuditCheckArgs,
    listen: &[String],
    web: &WebArgs,
    kubernetes: &KubernetesArgs,
    flags: &AuditFlags,
) -> Result<AuditConfig, ConfigError> {
    if audit.interval == 0 || audit.interval > 86_400 {
        return Err(invalid(
            flags.interval,
            format!(
                "{} is not a number of seconds between 1 and 86400",
                audit.interval
            ),
        ));
    }
    let offline = audit.rules_file.is_some() || audit.rules_file6.is_some();
    if offline && audit.ipv6 && audit.rules_file6.is_none() {
        return Err(invalid(
            "--rules-file6",
            "--ipv6 with --rules-file checks saved rules only: give the IPv6 file too",
        ));
    }
    let family = |source, allowlist: &PathBuf, rules_file: &Option<PathBuf>| AuditFamily {
        source,
        allowlist: allowlist.clone(),
        rules_file: rules_file.clone(),
    };
    let mut families = Vec::new();
    if !offline || audit.rules_file.is_some() {
        families.push(family(SourceId::Iptables, &audit.input, &audit.rules_file));
    }
    if (!offline && audit.ipv6) || audit.rules_file6.is_some() {
        families.push(family(
            SourceId::Ip6tables,
            &audit.input6,
            &audit.rules_file6,
        ));
    }
    if audit.nftables && !offline {
        families.push(family(SourceId::Nftables, &audit.input, &None));
    }
    let listen = listen
        .iter()
        .map(|address| listen_address(address))
        .collect::<Result<Vec<_>, _>>()?;
    let once = audit.once || offline;
    if once && !listen.is_empty() {
        return Err(invalid(
            "--web.listen-address",
            "serves the metrics of the running audit; --once and the rules files print them instead",
        ));
    }
    if listen.is_empty() {
        let stray = [
            ("--web.config.file", web.web_config_file.is_some()),
            ("--web.user", web.web_user.is_some()),
        ];
        if let Some((flag, _)) = stray.iter().find(|(_, given)| *given) {
            return Err(invalid(
                flag,
                "sets the audit's server, which runs only with --web.listen-address",
            ));
        }
    }
    // --once prints; only the running audit tells Kubernetes.
    let kubernetes = if once {
        None
    } else {
        kubernetes_settings(kubernetes, |name| std::env::var(name).ok())?
    };
    if audit.events && kubernetes.is_none() && !once {
        return Err(invalid(
            flags.events,
            "creates Kubernetes events, which need the node name (NODE_NAME or --kubernetes.node-name)",
        ));
    }
    Ok(AuditConfig {
        families,
        interval: Duration::from_secs(audit.interval),
        once,
        output: audit.output,
        terminate_on_success: audit.terminate_on_success,
        events: audit.events,
        kubernetes,
        map_path: audit.check_map.then(|| audit.map_path.clone()),
        listen,
        telemetry_path: telemetry_path(web)?,
        limits: limits(web)?,
        web_config_file: web.web_config_file.clone(),
        web_user: web.web_user.clone(),
    })
}

// ---- Traffic accounting ----
/// Validates the `--accounting.*` flags.
fn accounting_config(cli: &AccountingArgs) -> Result<AccountingConfig, ConfigError> {
    let chains = |flag: &'static str, names: &[String]| -> Result<ChainSet, ConfigError> {
        let names: Vec<String> = names.iter().map(|n| n.trim().to_owned()).collect();
        if names.iter().any(|n| n == "all") {
            return Ok(ChainSet::All);
        }
        if names.is_empty() || names.iter().any(String::is_empty) {
            return Err(invalid(flag, "a chain name is empty"));
        }
        Ok(ChainSet::Named(names))
    };
    let (mut tag_comments, mut label_comments) = (false, false);
    for grammar in &cli.accounting_comments {
        match grammar.trim() {
            "tags" => tag_comments = true,
            "labels" => label_comments = true,
            "none" => {}
            other => {
                return Err(invalid(
                    "--accounting.comments",
                    format!("{other:?} is none of tags, labels, none"),
                ));
            }
        }
    }
    let prefixes = [
        ("--accounting.prefix", &cli.accounting_prefix),
        ("--accounting.labels-prefix", &cli.accounting_labels_prefix),
        (
            "--accounting.rule-params-prefix",
            &cli.accounting_rule_params_prefix,
        ),
    ];
    for (i, (flag, prefix)) in prefixes.iter().enumerate() {
        if !is_metric_name(prefix) {
            return Err(invalid(
                flag,
                format!("{prefix:?} is not a valid metric name"),
            ));
        }
        if prefixes[..i].iter().any(|(_, p)| p == prefix) {
            return Err(invalid(
                flag,
                format!("{prefix:?} is already the prefix of another accounting grammar"),
            ));
        }
    }
    Ok(AccountingConfig {
        ipv4_chains: chains("--accounting.ipv4-chains", &cli.accounting_ipv4_chains)?,
        ipv6_chains: chains("--accounting.ipv6-chains", &cli.accounting_ipv6_chains)?,
        nftables_chains: match chains(
            "--accounting.nftables-chain",
            &cli.accounting_nftables_chains,
        )? {
            ChainSet::Named(names) => {
                if let Some(bad) = names.iter().find(|n| {
                    !n.split_once('/')
                        .is_some_and(|(t, c)| !t.is_empty() && !c.is_empty())
                }) {
                    return Err(invalid(
                        "--accounting.nftables-chain",
                        format!("{bad:?} is not TABLE/CHAIN"),
                    ));
                }
                ChainSet::Named(names)
            }
            ChainSet::All => ChainSet::All,
        },
        tag_comments,
        label_comments,
        rule_params_chain: cli.accounting_rule_params_chain.clone(),
        prefix: cli.accounting_prefix.clone(),
        labels_prefix: cli.accounting_labels_prefix.clone(),
        rule_params_prefix: cli.accounting_rule_params_prefix.clone(),
    })
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`, the Prometheus metric name syntax.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}
// ---- end of traffic accounting ----

fn pattern(
    flag: &'static str,
    value: &Option<String>,
) -> Result<Option<regex::Regex>, ConfigError> {
    value
        .as_deref()
        .map(NameFilter::anchored)
        .transpose()
        .map_err(|e| invalid(flag, e))
}

fn seconds(flag: &'static str, value: f64) -> Result<Duration, ConfigError> {
    if !(value.is_finite() && value > 0.0 && value <= 86_400.0) {
        return Err(invalid(
            flag,
            format!("{value} is not a number of seconds above 0 and at most 86400"),
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

fn serve_config(serve: &ServeArgs) -> Result<ServeConfig, ConfigError> {
    let flags = &serve.listen;
    let mut listen = Vec::new();
    for address in &flags.web_listen_address {
        listen.push(listen_address(address)?);
    }
    if flags.listen_address.is_some() || flags.listen_port.is_some() {
        let port = flags.listen_port.unwrap_or(DEFAULT_PORT);
        listen.push(match flags.listen_address {
            Some(ip) => ListenAddress::Socket(std::net::SocketAddr::new(ip, port)),
            None => ListenAddress::Any(port),
        });
    }
    if listen.is_empty() {
        listen.push(ListenAddress::Any(DEFAULT_PORT));
    }
    if flags.web_systemd_socket
        && (!flags.web_listen_address.is_empty()
            || flags.listen_address.is_some()
            || flags.listen_port.is_some())
    {
        return Err(invalid(
            "--web.systemd-socket",
            "listens on the sockets systemd passes; --web.listen-address cannot go with it",
        ));
    }
    Ok(ServeConfig {
        listen,
        telemetry_path: telemetry_path(&serve.web)?,
        web_config_file: serve.web.web_config_file.clone(),
        systemd_socket: flags.web_systemd_socket,
        web_user: serve.web.web_user.clone(),
        limits: limits(&serve.web)?,
        audit: serve_audit_config(serve)?,
    })
}

/// Where the running audit tells Kubernetes: `None` without a node name. `env` reads
/// the environment (the API server's address as a pod has it).
fn kubernetes_settings(
    cli: &KubernetesArgs,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<KubeSettings>, ConfigError> {
    const FLAG: &str = "--kubernetes.api-server";
    let Some(node) = cli
        .kubernetes_node_name
        .as_deref()
        .filter(|n| !n.is_empty())
    else {
        return Ok(None);
    };
    if !is_dns_subdomain(node) {
        return Err(invalid(
            "--kubernetes.node-name",
            format!("{node:?} is not a Kubernetes node name (lower-case DNS subdomain)"),
        ));
    }
    let (host, port) = match &cli.kubernetes_api_server {
        Some(url) => {
            let uri: hyper::Uri = url
                .parse()
                .map_err(|e| invalid(FLAG, format!("{url:?}: {e}")))?;
            if uri.scheme_str() != Some("https") || !matches!(uri.path(), "" | "/") {
                return Err(invalid(FLAG, format!("{url:?} is not https://HOST[:PORT]")));
            }
            let host = uri.host().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            (host.to_owned(), uri.port_u16().unwrap_or(443))
        }
        None => {
            let host = env("KUBERNETES_SERVICE_HOST").filter(|h| !h.is_empty());
            let host = host.ok_or_else(|| {
                invalid(
                    FLAG,
                    "not given, and KUBERNETES_SERVICE_HOST is not set (not in a pod?)",
                )
            })?;
            let port = match env("KUBERNETES_SERVICE_PORT") {
                Some(port) => port.parse().map_err(|_| {
                    invalid(
                        FLAG,
                        format!("KUBERNETES_SERVICE_PORT {port:?} is not a port"),
                    )
                })?,
                None => 443,
            };
            (host, port)
        }
    };
    if host.is_empty() {
        return Err(invalid(FLAG, "no host"));
    }
    Ok(Some(KubeSettings {
        node: node.to_owned(),
        host,
        port,
        token_file: cli.kubernetes_token_file.clone(),
        ca_file: cli.kubernetes_ca_file.clone(),
        timeout: seconds("--kubernetes.timeout", cli.kubernetes_timeout)?,
    }))
}

/// RFC 1123 subdomain, as Kubernetes names nodes: at most 253 characters of `a-z`,
/// `0-9`, `-` and `.`, starting and ending with a letter or digit.
fn is_dns_subdomain(name: &str) -> bool {
    let edge = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 253
        && bytes.first().copied().is_some_and(edge)
        && bytes.last().copied().is_some_and(edge)
        && bytes.iter().all(|&b| edge(b) || b == b'-' || b == b'.')
}

fn listen_address(address: &str) -> Result<ListenAddress, ConfigError> {
    ListenAddress::parse(address).map_err(|e| invalid("--web.listen-address", e))
}

/// The bounds on serving (`--web.max-connections`, …), for every mode that serves.
fn limits(cli: &WebArgs) -> Result<Limits, ConfigError> {
    let count = |flag: &'static str, value: usize| {
        if value == 0 {
            Err(invalid(flag, "0 would serve nothing"))
        } else {
            Ok(value)
        }
    };
    Ok(Limits {
        max_connections: count("--web.max-connections", cli.web_max_connections)?,
        max_requests: count("--web.max-requests", cli.web_max_requests)?,
        read_header_timeout: seconds("--web.read-header-timeout", cli.web_read_header_timeout)?,
        idle_timeout: seconds("--web.idle-timeout", cli.web_idle_timeout)?,
        write_timeout: seconds("--web.write-timeout", cli.web_write_timeout)?,
    })
}

fn telemetry_path(cli: &WebArgs) -> Result<TelemetryPath, ConfigError> {
    let path = &cli.web_telemetry_path;
    TelemetryPath::new(path.clone())
        .map_err(|e| invalid("--web.telemetry-path", format!("{path:?} {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mode and its flags, as the program parses them.
    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        crate::cli::parse(
            std::iter::once("netfilter_exporter")
                .chain(args.iter().copied())
                .map(Into::into)
                .collect(),
        )
    }

    /// The settings, or the message of the parse or validation error.
    fn config(args: &[&str]) -> Result<Config, String> {
        let command = parse(args).map_err(|e| e.to_string())?;
        Config::from_args(&command).map_err(|e| e.to_string())
    }

    fn listen(args: &[&str]) -> Vec<ListenAddress> {
        match config(args).expect("valid").mode {
            Mode::Serve(serve) => serve.listen,
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn defaults_match_iptables_exporter() {
        let config = config(&[]).expect("valid");
        assert_eq!(config.collect.interval, Duration::from_secs(5));
        assert_eq!(config.collect.selection, Selection::Auto);
        assert_eq!(config.collect.max_output_bytes, 1 << 30);
        assert_eq!(listen(&[]), vec![ListenAddress::Any(9455)]);
    }

    #[test]
    fn old_listen_flags_combine() {
        let socket = |s: &str| ListenAddress::Socket(s.parse().expect("addr"));
        assert_eq!(listen(&["-l", "127.0.0.1"]), vec![socket("127.0.0.1:9455")]);
        assert_eq!(listen(&["-p", "9999"]), vec![ListenAddress::Any(9999)]);
        assert_eq!(listen(&["-l", "::1", "-p", "1"]), vec![socket("[::1]:1")]);
    }

    #[test]
    fn a_go_style_port_only_address_listens_on_every_address() {
        assert_eq!(
            listen(&["--web.listen-address", ":9830"]),
            vec![ListenAddress::Any(9830)]
        );
        assert_eq!(
            listen(&["--web.listen-address", "localhost:9830"]),
            vec![ListenAddress::Host("localhost".to_owned(), 9830)]
        );
        assert!(config(&["--web.listen-address", ":x"]).is_err());
        assert!(config(&["--web.listen-address", "localhost"]).is_err());
    }

    #[test]
    fn nftables_accounting_chains_are_table_slash_chain() {
        let chains = |args: &[&str]| config(args).map(|c| c.collect.accounting.nftables_chains);
        assert_eq!(
            chains(&[]).expect("valid"),
            ChainSet::Named(vec!["firewall/accounting".to_owned()])
        );
        assert_eq!(
            chains(&["--accounting.nftables-chain", "all"]).expect("valid"),
            ChainSet::All
        );
        for bad in ["accounting", "/x", "x/", ""] {
            assert!(
                chains(&["--accounting.nftables-chain", bad]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn several_listen_addresses() {
        assert_eq!(
            listen(&[
                "--web.listen-address",
                "127.0.0.1:1",
                "--web.listen-address",
                "[::1]:2"
            ]),
            vec![
                ListenAddress::Socket("127.0.0.1:1".parse().expect("addr")),
                ListenAddress::Socket("[::1]:2".parse().expect("addr"))
            ]
        );
    }

    #[test]
    fn scrape_targets_repeat_or_comma_separate() {
        let config =
            config(&["-t", "ip6tables,iptables", "-t", "iptables-legacy", "dump"]).expect("valid");
        assert_eq!(
            config.collect.selection,
            Selection::Explicit(vec![
                SourceId::Ip6tables,
                SourceId::Iptables,
                SourceId::IptablesLegacy
            ])
        );
    }

    #[test]
    fn bad_values_name_their_flag() {
        for (args, flag) in [
            (&["-t", "nft"][..], "--scrape-targets"),
            (&["--collect-interval", "0"][..], "--collect-interval"),
            (&["--collect-timeout=-1"][..], "--collect-timeout"),
            (
                &["--collect-max-output-bytes", "0"][..],
                "--collect-max-output-bytes",
            ),
            (
                &["--web.listen-address", "localhost"][..],
                "--web.listen-address",
            ),
            (
                &["--web.telemetry-path", "metrics"][..],
                "--web.telemetry-path",
            ),
            (&["--web.telemetry-path", "/"][..], "--web.telemetry-path"),
            (
                &["--web.telemetry-path", "/-/healthy"][..],
                "--web.telemetry-path",
            ),
            (
                &["--web.telemetry-path", "/{x}"][..],
                "--web.telemetry-path",
            ),
            (
                &["--web.telemetry-path", "/a/:b"][..],
                "--web.telemetry-path",
            ),
            (&["--chain-include", "("][..], "--chain-include"),
            (&["--web.max-connections", "0"][..], "--web.max-connections"),
            (&["--web.max-requests", "0"][..], "--web.max-requests"),
            (
                &["--web.read-header-timeout", "0"][..],
                "--web.read-header-timeout",
            ),
            (&["--web.idle-timeout=-1"][..], "--web.idle-timeout"),
            (&["--table-exclude", "["][..], "--table-exclude"),
        ] {
            let err = config(args).expect_err("invalid").to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn a_literal_telemetry_path_is_kept() {
        match config(&["--web.telemetry-path", "/a/b:c%20d"])
            .expect("valid")
            .mode
        {
            Mode::Serve(serve) => assert_eq!(serve.telemetry_path.as_str(), "/a/b:c%20d"),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn the_textfile_flag_is_the_textfile_command() {
        let mode = |args: &[&str]| config(args).map(|c| c.mode);
        for (args, once) in [
            (&["--textfile", "/x.prom"][..], false),
            (&["textfile", "/x.prom"][..], false),
            (&["dump", "--textfile", "/x.prom"][..], true),
            (&["--textfile=/x.prom", "dump"][..], true),
            (&["textfile", "--once", "/x.prom"][..], true),
        ] {
            match mode(args) {
                Ok(Mode::Textfile { path, once: o }) => {
                    assert_eq!((path.to_str(), o), (Some("/x.prom"), once), "{args:?}")
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
        // Only dump takes --textfile after its name.
        for args in [
            &["serve", "--textfile", "/x.prom"][..],
            &["textfile", "/y.prom", "--textfile", "/x.prom"][..],
            &["munin", "--textfile", "/x.prom"][..],
        ] {
            let err = mode(args).expect_err("refused");
            assert!(
                err.contains("unexpected argument '--textfile'"),
                "{args:?}: {err}"
            );
        }
        for (args, mode_name) in [
            (&["--textfile", "/x.prom", "serve"][..], "serve"),
            (
                &["--textfile", "/x.prom", "textfile", "/y.prom"][..],
                "textfile",
            ),
            (&["--textfile", "/x.prom", "munin"][..], "munin"),
            (&["--textfile", "/x.prom", "audit"][..], "audit"),
        ] {
            let err = mode(args).expect_err("refused");
            assert!(
                err.contains(&format!("'--textfile' was given before {mode_name}")),
                "{args:?}: {err}"
            );
        }
    }

    fn audit(args: &[&str]) -> Result<AuditConfig, String> {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        config(&all).map(|c| match c.mode {
            Mode::Audit(audit) => audit,
            other => panic!("not audit: {other:?}"),
        })
    }

    #[test]
    fn audit_families_live_and_offline() {
        let live = |source, dir: &str| AuditFamily {
            source,
            allowlist: PathBuf::from(dir),
            rules_file: None,
        };
        let v4 = live(SourceId::Iptables, "/etc/config/");
        let v6 = live(SourceId::Ip6tables, "/etc/config6/");
        let defaults = audit(&[]).expect("valid");
        assert_eq!(defaults.families, std::slice::from_ref(&v4));
        assert_eq!(
            (defaults.interval, defaults.once),
            (Duration::from_secs(300), false)
        );
        assert!(defaults.listen.is_empty());
        assert_eq!(audit(&["--ipv6"]).expect("valid").families, [v4, v6]);
        let offline = audit(&["--rules-file6", "/r6", "--input6", "/a6"]).expect("valid");
        assert!(offline.once);
        assert_eq!(
            offline.families,
            [AuditFamily {
                source: SourceId::Ip6tables,
                allowlist: PathBuf::from("/a6"),
                rules_file: Some(PathBuf::from("/r6")),
            }]
        );
        for (args, flag) in [
            (&["--interval", "0"][..], "--interval"),
            (&["--rules-file", "/r", "--ipv6"][..], "--rules-file6"),
            (&["--web.listen-address", "x"][..], "--web.listen-address"),
            (
                &["--once", "--web.listen-address", "127.0.0.1:1"][..],
                "--web.listen-address",
            ),
        ] {
            let err = audit(args).expect_err("invalid").to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn the_audits_server_takes_the_web_flags() {
        let served = audit(&[
            "--web.listen-address",
            "127.0.0.1:1",
            "--web.config.file",
            "/web.yml",
            "--web.user",
            "audit",
            "--web.telemetry-path",
            "/m",
            "--web.max-requests",
            "3",
        ])
        .expect("valid");
        assert_eq!(served.web_config_file, Some(PathBuf::from("/web.yml")));
        assert_eq!(served.web_user.as_deref(), Some("audit"));
        assert_eq!(served.telemetry_path.as_str(), "/m");
        assert_eq!(served.limits.max_requests, 3);
        // Before the mode, as after it.
        let before = config(&[
            "--web.config.file",
            "/web.yml",
            "audit",
            "--web.listen-address",
            "127.0.0.1:1",
        ])
        .expect("valid");
        match before.mode {
            Mode::Audit(audit) => {
                assert_eq!(audit.web_config_file, Some(PathBuf::from("/web.yml")))
            }
            other => panic!("not audit: {other:?}"),
        }
        for (args, flag) in [
            (&["--web.config.file", "/web.yml"][..], "--web.config.file"),
            (&["--web.user", "nobody"][..], "--web.user"),
            (
                &["--once", "--web.config.file", "/web.yml"][..],
                "--web.config.file",
            ),
        ] {
            let err = audit(args).expect_err("invalid");
            assert!(
                err.contains(flag) && err.contains("runs only with --web.listen-address"),
                "{args:?}: {err}"
            );
        }
        // The audit inside serve serves nothing of its own: serve's web config is serve's.
        match config(&["--audit.input", "/a", "--web.config.file", "/web.yml"])
            .expect("valid")
            .mode
        {
            Mode::Serve(serve) => {
                assert_eq!(serve.web_config_file, Some(PathBuf::from("/web.yml")));
                let audit = serve.audit.expect("audit on");
                assert!(audit.listen.is_empty() && audit.web_config_file.is_none());
            }
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn the_audit_inside_serve_takes_the_audit_commands_settings() {
        let serve = |args: &[&str]| {
            config(args).map(|c| match c.mode {
                Mode::Serve(serve) => serve.audit,
                other => panic!("not serve: {other:?}"),
            })
        };
        assert!(serve(&[]).expect("valid").is_none());
        let audit = serve(&[
            "--audit.input",
            "/a",
            "--audit.ipv6",
            "--audit.interval",
            "60",
        ])
        .expect("valid")
        .expect("audit on");
        assert_eq!(
            audit
                .families
                .iter()
                .map(|f| f.allowlist.clone())
                .collect::<Vec<_>>(),
            [PathBuf::from("/a"), PathBuf::from("/etc/config6/")]
        );
        assert_eq!(audit.interval, Duration::from_secs(60));
        assert!(!(audit.once || audit.terminate_on_success));
        for (args, flag) in [
            (&["--audit.ipv6"][..], "--audit.ipv6"),
            (
                &["--audit.input", "/a", "--audit.interval", "0"][..],
                "--audit.interval",
            ),
            (
                &["--audit.input", "/a", "--audit.events"][..],
                "--audit.events",
            ),
            (&["--audit.input", "/a", "dump"][..], "--audit.input"),
        ] {
            let err = config(args).expect_err("invalid").to_string();
            assert!(err.contains(flag), "{args:?}: {err}");
        }
    }

    #[test]
    fn kubernetes_from_the_pod_or_the_flags() {
        let kubernetes = |args: &[&str]| match parse(args).expect("flags parse") {
            Command::Audit(audit) => audit.kubernetes,
            other => panic!("not audit: {other:?}"),
        };
        let cli = |args: &[&str]| {
            kubernetes(&[&["audit", "--kubernetes.node-name", "node-1"], args].concat())
        };
        let pod = |name: &str| match name {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".to_owned()),
            "KUBERNETES_SERVICE_PORT" => Some("6443".to_owned()),
            _ => None,
        };
        let settings = kubernetes_settings(&cli(&[]), pod)
            .expect("valid")
            .expect("on");
        assert_eq!(
            (
                settings.node.as_str(),
                settings.host.as_str(),
                settings.port
            ),
            ("node-1", "fd00::1", 6443)
        );
        assert_eq!(
            settings.token_file,
            PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token")
        );
        let flagged = kubernetes_settings(
            &cli(&["--kubernetes.api-server", "https://[::1]:8443"]),
            |_| None,
        )
        .expect("valid")
        .expect("on");
        assert_eq!((flagged.host.as_str(), flagged.port), ("::1", 8443));
        for args in [
            &[][..],
            &["--kubernetes.api-server", "http://127.0.0.1:1"][..],
            &["--kubernetes.api-server", "https://h/path"][..],
        ] {
            let err = kubernetes_settings(&cli(args), |_| None).expect_err("invalid");
            assert!(err.to_string().contains("--kubernetes.api-server"), "{err}");
        }
        let bad = kubernetes(&["audit", "--kubernetes.node-name", "Node_1"]);
        let err = kubernetes_settings(&bad, pod).expect_err("invalid");
        assert!(err.to_string().contains("--kubernetes.node-name"), "{err}");
        let none = kubernetes(&["audit", "--kubernetes.node-name="]);
        assert!(kubernetes_settings(&none, pod).expect("valid").is_none());
    }

    fn top(args: &[&str]) -> Result<(crate::top::Settings, CollectConfig), String> {
        let mut all = vec!["top"];
        all.extend_from_slice(args);
        config(&all).map(|c| match c.mode {
            Mode::Top(settings) => (settings, c.collect),
            other => panic!("not top: {other:?}"),
        })
    }

    #[test]
    fn top_reads_every_delay_without_a_budget_unless_given_one() {
        let (settings, collect) = top(&[]).expect("valid");
        assert_eq!(collect.interval, Duration::from_secs(1));
        assert_eq!(collect.cpu_budget, 0.0);
        assert_eq!(
            (settings.once, settings.group),
            (None, crate::top::Group::Rule)
        );
        assert!(settings.exporter.is_none());
        let (settings, collect) = top(&[
            "-d",
            "0.5",
            "--collect-cpu-budget",
            "0.1",
            "--once",
            "--group",
            "chain",
        ])
        .expect("valid");
        assert_eq!(collect.interval, Duration::from_millis(500));
        assert_eq!(collect.cpu_budget, 0.1);
        assert_eq!(settings.once, Some(crate::top::DEFAULT_ROWS));
        assert_eq!(settings.group, crate::top::Group::Chain);
        let (settings, _) = top(&["--once", "--rows", "3"]).expect("valid");
        assert_eq!(settings.once, Some(3));
        // Before the mode, as after it.
        let (_, collect) = config(&["-t", "nftables", "top"])
            .map(|c| ((), c.collect))
            .expect("valid");
        assert_eq!(
            collect.selection,
            Selection::Explicit(vec![SourceId::Nftables])
        );
    }

    #[test]
    fn top_reads_an_exporter_with_its_http_config() {
        let (settings, _) = top(&[
            "--url",
            "https://127.0.0.1:9455/metrics",
            "--http.config.file",
            "/etc/http.yml",
        ])
        .expect("valid");
        let exporter = settings.exporter.expect("an exporter");
        assert_eq!(exporter.url.to_string(), "https://127.0.0.1:9455/metrics");
        assert_eq!(
            exporter.http_config_file,
            Some(PathBuf::from("/etc/http.yml"))
        );
    }

    #[test]
    fn top_refuses_what_does_not_go_together_naming_the_flag() {
        for (args, flag) in [
            (&["--rows", "5"][..], "--rows"),
            (&["--once", "--rows", "0"][..], "--rows"),
            (&["--delay", "0"][..], "--delay"),
            (&["--http.config.file", "/h.yml"][..], "--http.config.file"),
            (&["--url", "localhost:9455"][..], "--url"),
            (
                &["--url", "http://h/", "-t", "iptables"][..],
                "--scrape-targets",
            ),
            (
                &["--url", "http://h/", "--collect-cpu-budget", "1"][..],
                "--collect-cpu-budget",
            ),
            (&["--collect-cpu-budget=-1"][..], "--collect-cpu-budget"),
        ] {
            let err = top(args).expect_err("refused");
            assert!(err.contains(flag), "{args:?}: {err}");
        }
        let err = config(&["--collect-interval", "5", "top"]).expect_err("refused");
        assert!(
            err.contains("'--collect-interval' was given before top"),
            "{err}"
        );
    }

    #[test]
    fn cardinality_flags() {
        let config = config(&["--no-rule-metrics", "--chain-exclude", "KUBE-.*"]).expect("valid");
        assert!(!config.collect.metrics.rule_series);
        assert!(config.collect.metrics.comment_series);
        assert!(!config.collect.metrics.chains.allows("KUBE-SEP-X"));
        assert!(config.collect.metrics.chains.allows("INPUT"));
    }
}
