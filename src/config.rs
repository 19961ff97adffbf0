//! Validated settings: the raw flags of [`crate::cli`] checked once, at startup, with
//! messages that name the flag at fault.

use std::path::PathBuf;
use std::time::Duration;

use crate::accounting::{AccountingConfig, ChainSet};
use crate::audit::Scope;
use crate::audit::kube::KubeSettings;
use crate::cli::{AuditArgs, AuditOutput, Cli, Command};
use crate::collect::{CollectConfig, Selection};
use crate::metrics::{MetricsConfig, NameFilter};
use crate::output::exposition::Storage;
use crate::ruleset::Family;
use crate::serve::TelemetryPath;
use crate::serve::connections::Limits;
use crate::serve::listen::ListenAddress;
use crate::source::Target;

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
}

/// Where the audit reads one family's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditInput {
    /// The live rules, from this backend's save command.
    Live(Target),
    /// A saved `iptables-save` file.
    File(PathBuf),
    /// The native nftables tables, read over netlink.
    Nftables,
}

/// One family the audit checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFamily {
    /// IPv4, IPv6, or the native nftables tables.
    pub family: Scope,
    /// Its allowlist directory.
    pub allowlist: PathBuf,
    /// Where its rules come from.
    pub input: AuditInput,
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
    /// Validates the raw flags.
    pub fn from_cli(cli: &Cli) -> Result<Self, ConfigError> {
        let interval = seconds("--collect-interval", cli.collect_interval)?;
        let timeout = seconds("--collect-timeout", cli.collect_timeout)?;
        let cpu_budget = cli.collect_cpu_budget;
        if !(0.0..=1024.0).contains(&cpu_budget) {
            return Err(invalid(
                "--collect-cpu-budget",
                format!(
                    "{cpu_budget} is not a share of a core between 0 (off) and the machine's cores"
                ),
            ));
        }
        if cli.collect_max_output_bytes == 0 {
            return Err(invalid(
                "--collect-max-output-bytes",
                "0 bytes leave no room for any dump",
            ));
        }
        let selection = if cli.scrape_targets.is_empty() {
            Selection::Auto
        } else {
            let mut targets = Vec::new();
            for name in &cli.scrape_targets {
                let target: Target = name
                    .trim()
                    .parse()
                    .map_err(|e| invalid("--scrape-targets", e))?;
                if !targets.contains(&target) {
                    targets.push(target);
                }
            }
            Selection::Explicit(targets)
        };
        let metrics = MetricsConfig {
            rule_series: !cli.no_rule_metrics,
            comment_series: !cli.no_comment_metrics,
            tables: NameFilter {
                include: pattern("--table-include", &cli.table_include)?,
                exclude: pattern("--table-exclude", &cli.table_exclude)?,
            },
            chains: NameFilter {
                include: pattern("--chain-include", &cli.chain_include)?,
                exclude: pattern("--chain-exclude", &cli.chain_exclude)?,
            },
            legacy_duration: !cli.no_legacy_duration_metric,
        };
        let mode = match (&cli.command, &cli.textfile) {
            (None, Some(path)) => Mode::Textfile {
                path: path.clone(),
                once: false,
            },
            (Some(Command::Dump), Some(path)) => Mode::Textfile {
                path: path.clone(),
                once: true,
            },
            (
                Some(
                    Command::Serve
                    | Command::Textfile { .. }
                    | Command::Munin { .. }
                    | Command::Audit(_),
                ),
                Some(_),
            ) => {
                return Err(invalid(
                    "--textfile",
                    "goes alone (write after every collection) or with dump (write once)",
                ));
            }
            (None | Some(Command::Serve), None) => Mode::Serve(serve_config(cli)?),
            (Some(Command::Dump), None) => Mode::Dump,
            (Some(Command::Textfile { path, once }), None) => Mode::Textfile {
                path: path.clone(),
                once: *once,
            },
            (Some(Command::Munin { action }), None) => Mode::Munin {
                action: action.unwrap_or(crate::munin::Action::Fetch),
            },
            (Some(Command::Audit(audit)), None) => {
                Mode::Audit(audit_config(cli, audit, &AUDIT_FLAGS)?)
            }
        };
        if cli.audit_input.is_some() && !matches!(mode, Mode::Serve(_)) {
            return Err(invalid(
                "--audit.input",
                "runs the audit inside serve; the audit command takes --input",
            ));
        }
        // The one-shot modes keep no text while they hold the exposition: the peak of a
        // large dump is then the snapshot and a compressed exposition instead of the
        // snapshot and the whole text, for the time compressing takes (docs/performance.md).
        let storage = match mode {
            Mode::Serve(_) | Mode::Textfile { once: false, .. } => Storage::LONG_RUNNING,
            Mode::Dump
            | Mode::Textfile { once: true, .. }
            | Mode::Munin { .. }
            | Mode::Audit(_) => Storage::Compressed { keep_plain: 0 },
        };
        Ok(Config {
            mode,
            collect: CollectConfig {
                selection,
                interval,
                timeout,
                max_output_bytes: cli.collect_max_output_bytes,
                metrics,
                accounting: accounting_config(cli)?,
                storage,
                set_elements_limit: cli.nftables_set_elements_limit,
                iptables_netlink: !cli.no_iptables_netlink,
                cpu_budget,
            },
        })
    }
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
fn serve_audit_config(cli: &Cli) -> Result<Option<AuditConfig>, ConfigError> {
    let Some(input) = &cli.audit_input else {
        let stray = [
            ("--audit.input6", cli.audit_input6.is_some()),
            ("--audit.interval", cli.audit_interval.is_some()),
            ("--audit.ipv6", cli.audit_ipv6),
            ("--audit.nftables", cli.audit_nftables),
            ("--audit.events", cli.audit_events),
            ("--audit.check-map", cli.audit_check_map),
            ("--audit.map-path", cli.audit_map_path.is_some()),
        ];
        return match stray.iter().find(|(_, given)| *given) {
            Some((flag, _)) => Err(invalid(
                flag,
                "sets the audit inside serve, which runs only with --audit.input",
            )),
            None => Ok(None),
        };
    };
    let args = AuditArgs {
        input: input.clone(),
        input6: cli
            .audit_input6
            .clone()
            .unwrap_or_else(|| crate::cli::DEFAULT_AUDIT_INPUT6.into()),
        interval: cli.audit_interval.unwrap_or(300),
        ipv6: cli.audit_ipv6,
        nftables: cli.audit_nftables,
        events: cli.audit_events,
        terminate_on_success: false,
        check_map: cli.audit_check_map,
        map_path: cli
            .audit_map_path
            .clone()
            .unwrap_or_else(|| crate::cli::DEFAULT_AUDIT_MAP_PATH.into()),
        once: false,
        output: AuditOutput::Text,
        rules_file: None,
        rules_file6: None,
        web_listen_address: Vec::new(),
    };
    audit_config(cli, &args, &SERVE_AUDIT_FLAGS).map(Some)
}

/// Validates the flags of the audit command.
fn audit_config(
    cli: &Cli,
    audit: &AuditArgs,
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
    let family = |family, allowlist: &PathBuf, file: &Option<PathBuf>, target| AuditFamily {
        family: Scope::Iptables(family),
        allowlist: allowlist.clone(),
        input: file
            .clone()
            .map_or(AuditInput::Live(target), AuditInput::File),
    };
    let mut families = Vec::new();
    if !offline || audit.rules_file.is_some() {
        families.push(family(
            Family::Ipv4,
            &audit.input,
            &audit.rules_file,
            Target::Iptables,
        ));
    }
    if (!offline && audit.ipv6) || audit.rules_file6.is_some() {
        families.push(family(
            Family::Ipv6,
            &audit.input6,
            &audit.rules_file6,
            Target::Ip6tables,
        ));
    }
    if audit.nftables && !offline {
        families.push(AuditFamily {
            family: Scope::Nftables,
            allowlist: audit.input.clone(),
            input: AuditInput::Nftables,
        });
    }
    let mut listen = Vec::new();
    for address in &audit.web_listen_address {
        listen.push(listen_address(address)?);
    }
    let once = audit.once || offline;
    if once && !listen.is_empty() {
        return Err(invalid(
            "--web.listen-address",
            "serves the metrics of the running audit; --once and the rules files print them instead",
        ));
    }
    // --once prints; only the running audit tells Kubernetes.
    let kubernetes = if once {
        None
    } else {
        kubernetes_settings(cli, |name| std::env::var(name).ok())?
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
        telemetry_path: telemetry_path(cli)?,
        limits: limits(cli)?,
    })
}

// ---- Traffic accounting ----
/// Validates the `--accounting.*` flags.
fn accounting_config(cli: &Cli) -> Result<AccountingConfig, ConfigError> {
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

fn serve_config(cli: &Cli) -> Result<ServeConfig, ConfigError> {
    let mut listen = Vec::new();
    for address in &cli.web_listen_address {
        listen.push(listen_address(address)?);
    }
    if cli.listen_address.is_some() || cli.listen_port.is_some() {
        let port = cli.listen_port.unwrap_or(DEFAULT_PORT);
        listen.push(match cli.listen_address {
            Some(ip) => ListenAddress::Socket(std::net::SocketAddr::new(ip, port)),
            None => ListenAddress::Any(port),
        });
    }
    if listen.is_empty() {
        listen.push(ListenAddress::Any(DEFAULT_PORT));
    }
    if cli.web_systemd_socket
        && (!cli.web_listen_address.is_empty()
            || cli.listen_address.is_some()
            || cli.listen_port.is_some())
    {
        return Err(invalid(
            "--web.systemd-socket",
            "listens on the sockets systemd passes; --web.listen-address cannot go with it",
        ));
    }
    Ok(ServeConfig {
        listen,
        telemetry_path: telemetry_path(cli)?,
        web_config_file: cli.web_config_file.clone(),
        systemd_socket: cli.web_systemd_socket,
        web_user: cli.web_user.clone(),
        limits: limits(cli)?,
        audit: serve_audit_config(cli)?,
    })
}

/// Where the running audit tells Kubernetes: `None` without a node name. `env` reads
/// the environment (the API server's address as a pod has it).
fn kubernetes_settings(
    cli: &Cli,
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
fn limits(cli: &Cli) -> Result<Limits, ConfigError> {
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

fn telemetry_path(cli: &Cli) -> Result<TelemetryPath, ConfigError> {
    let path = &cli.web_telemetry_path;
    TelemetryPath::new(path.clone())
        .map_err(|e| invalid("--web.telemetry-path", format!("{path:?} {e}")))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let cli =
            Cli::try_parse_from(std::iter::once("netfilter_exporter").chain(args.iter().copied()))
                .expect("flags parse");
        Config::from_cli(&cli)
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
                Target::Ip6tables,
                Target::Iptables,
                Target::IptablesLegacy
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
        for args in [
            &["serve", "--textfile", "/x.prom"][..],
            &["textfile", "/y.prom", "--textfile", "/x.prom"][..],
            &["munin", "--textfile", "/x.prom"][..],
        ] {
            let err = mode(args).expect_err("refused").to_string();
            assert!(err.contains("--textfile"), "{args:?}: {err}");
        }
    }

    fn audit(args: &[&str]) -> Result<AuditConfig, ConfigError> {
        let mut all = vec!["audit"];
        all.extend_from_slice(args);
        config(&all).map(|c| match c.mode {
            Mode::Audit(audit) => audit,
            other => panic!("not audit: {other:?}"),
        })
    }

    #[test]
    fn audit_families_live_and_offline() {
        let live = |family, dir: &str, target| AuditFamily {
            family,
            allowlist: PathBuf::from(dir),
            input: AuditInput::Live(target),
        };
        let v4 = live(
            Scope::Iptables(Family::Ipv4),
            "/etc/config/",
            Target::Iptables,
        );
        let v6 = live(
            Scope::Iptables(Family::Ipv6),
            "/etc/config6/",
            Target::Ip6tables,
        );
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
                family: Scope::Iptables(Family::Ipv6),
                allowlist: PathBuf::from("/a6"),
                input: AuditInput::File(PathBuf::from("/r6")),
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
        let cli = |args: &[&str]| {
            Cli::try_parse_from(
                [
                    "netfilter_exporter",
                    "audit",
                    "--kubernetes.node-name",
                    "node-1",
                ]
                .iter()
                .chain(args),
            )
            .expect("flags parse")
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
        let bad = Cli::try_parse_from([
            "netfilter_exporter",
            "audit",
            "--kubernetes.node-name",
            "Node_1",
        ])
        .expect("flags parse");
        let err = kubernetes_settings(&bad, pod).expect_err("invalid");
        assert!(err.to_string().contains("--kubernetes.node-name"), "{err}");
        let none = Cli::try_parse_from(["netfilter_exporter", "audit", "--kubernetes.node-name="])
            .expect("flags parse");
        assert!(kubernetes_settings(&none, pod).expect("valid").is_none());
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
