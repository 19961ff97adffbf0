//! The Munin plugin mode: the binary stands in for the `traffic_accounting` plugin when it is
//! linked under that name (or run as `netfilter_exporter munin`).
//!
//! This is the I/O half of the plugin: it reads the settings munin-node passes in the
//! environment, tells the graphs apart by the name the binary was invoked under, runs the dump
//! commands and hands the accounting view to the pure renderer in [`crate::output::munin`].

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::accounting::{AccountingConfig, ChainSet, tag_view};
use crate::output::munin::{self as render, Layout, PLUGIN_NAME, Unit};
use crate::ruleset::{Family, Ruleset};
use crate::source::SourceId;
use crate::source::{self, Source, iptables_save};

/// The markers munin-node-configure looks for in a plugin's file, one per line. It greps the
/// file itself, so they must be in the binary: `#[used]` keeps the bytes in the executable.
#[used]
static MAGIC_MARKERS: [u8; 51] = *b"\n#%# family=auto\n#%# capabilities=autoconf suggest\n";

/// How long a dump command may run: less than munin-node's default plugin timeout (10 s),
/// so that a hung iptables-save is reported by the plugin instead of killed silently.
const DUMP_TIMEOUT: Duration = Duration::from_secs(8);

/// The plugin protocol's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Action {
    /// No argument: print the current values.
    #[value(skip)]
    Fetch,
    /// Print the graph definitions.
    Config,
    /// Print `yes` when the plugin can run here, else `no (reason)`.
    Autoconf,
    /// Print the `<ipv4|ipv6>_<tag>` suffixes for wildcard symlinks.
    Suggest,
}

/// An argument that is not a plugin command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown plugin command {0:?} (expected config, autoconf, suggest or nothing)")]
pub struct UnknownAction(pub String);

impl Action {
    /// The command munin-node passes as first argument; none means fetch.
    pub fn from_argument(argument: Option<&OsStr>) -> Result<Self, UnknownAction> {
        let Some(argument) = argument else {
            return Ok(Action::Fetch);
        };
        argument
            .to_str()
            .and_then(|s| <Action as clap::ValueEnum>::from_str(s, false).ok())
            .ok_or_else(|| UnknownAction(argument.to_string_lossy().into_owned()))
    }
}

/// What the invocation name asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    /// `traffic_accounting` (or the wildcard base `traffic_accounting_`): every tag, as
    /// multigraph.
    Bare,
    /// `traffic_accounting_<family>_<tag>`: the graph of one tag.
    Wildcard {
        /// The family in the name.
        family: Family,
        /// The tag in the name.
        tag: String,
    },
}

/// A `traffic_accounting_…` name whose family or tag cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "cannot tell the family and tag from the name {0:?} (expected traffic_accounting_<ipv4|ipv6>_<tag>)"
)]
pub struct BadName(pub String);

/// The plugin name in `argv0` (a path; only its file name counts): `None` when it is not
/// `traffic_accounting` or `traffic_accounting_…`, so the binary is not running as a plugin.
pub fn plugin_name(argv0: &OsStr) -> Option<Result<Name, BadName>> {
    let file_name = Path::new(argv0).file_name()?.to_str()?;
    let rest = file_name.strip_prefix(PLUGIN_NAME)?;
    if rest.is_empty() || rest == "_" {
        return Some(Ok(Name::Bare));
    }
    let rest = rest.strip_prefix('_')?;
    let bad = || BadName(file_name.to_owned());
    let parsed = rest
        .split_once('_')
        .ok_or_else(bad)
        .and_then(|(family, tag)| {
            let family = match family {
                "ipv4" => Family::Ipv4,
                "ipv6" => Family::Ipv6,
                _ => return Err(bad()),
            };
            if tag.is_empty() {
                return Err(bad());
            }
            Ok(Name::Wildcard {
                family,
                tag: tag.to_owned(),
            })
        });
    Some(parsed)
}

/// The settings of the original plugin, from the environment munin-node passes
/// (`env.chain4` in the plugin configuration becomes `chain4`, and so on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The IPv4 accounting chain (`chain4`, default ACCT4); `None` when set empty, which
    /// leaves IPv4 out.
    pub chain4: Option<String>,
    /// The IPv6 accounting chain (`chain6`, default ACCT6); `None` when set empty.
    pub chain6: Option<String>,
    /// Whether `chain4` was set rather than defaulted: a missing chain that was asked for
    /// makes autoconf say no, a missing default one only when no chain is found at all.
    pub chain4_explicit: bool,
    /// Whether `chain6` was set rather than defaulted.
    pub chain6_explicit: bool,
    /// The IPv4 dump command: `<iptables>-save`, default `iptables-save` from `PATH`.
    pub save4: String,
    /// The IPv6 dump command: `<ip6tables>-save`, default `ip6tables-save` from `PATH`.
    pub save6: String,
    /// Multigraph: the node announces it (`MUNIN_CAP_MULTIGRAPH=1`) and `multigraph` is not
    /// `no`.
    pub multigraph: bool,
    /// What to count (`what`, default bytes).
    pub unit: Unit,
}

/// An environment setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid env.{name} {value:?}: expected {expected}")]
pub struct BadSetting {
    /// The variable.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// What would be accepted.
    pub expected: &'static str,
}

impl Settings {
    /// Reads the settings through `var` (the process environment in the binary).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, BadSetting> {
        let chain = |name: &str, default: &str| match var(name) {
            None => Some(default.to_owned()),
            Some(value) if value.trim().is_empty() => None,
            Some(value) => Some(value.trim().to_owned()),
        };
        let save = |name: &str, default: &str| match var(name) {
            Some(binary) if !binary.trim().is_empty() => format!("{}-save", binary.trim()),
            _ => default.to_owned(),
        };
        let multigraph = match var("multigraph").as_deref().map(str::trim) {
            None | Some("yes") => true,
            Some("no") => false,
            Some(other) => {
                return Err(BadSetting {
                    name: "multigraph",
                    value: other.to_owned(),
                    expected: "yes or no",
                });
            }
        };
        let unit = match var("what") {
            None => Unit::Bytes,
            Some(value) => value.trim().parse().map_err(|_| BadSetting {
                name: "what",
                value,
                expected: "bits, bytes or packets",
            })?,
        };
        Ok(Settings {
            chain4: chain("chain4", "ACCT4"),
            chain6: chain("chain6", "ACCT6"),
            chain4_explicit: var("chain4").is_some(),
            chain6_explicit: var("chain6").is_some(),
            save4: save("iptables", "iptables-save"),
            save6: save("ip6tables", "ip6tables-save"),
            multigraph: multigraph && var("MUNIN_CAP_MULTIGRAPH").as_deref() == Some("1"),
            unit,
        })
    }

    /// The accounting chain of `family` and the command that dumps it; the plugin reads
    /// iptables and ip6tables only.
    fn dump_of(&self, family: Family) -> Option<(&str, &str)> {
        match family {
            Family::Ipv4 => Some((self.chain4.as_deref()?, &self.save4)),
            Family::Ipv6 => Some((self.chain6.as_deref()?, &self.save6)),
            Family::Inet | Family::Arp | Family::Bridge | Family::Netdev => None,
        }
    }

    /// Whether the accounting chain of `family` was set rather than defaulted.
    fn chain_explicit(&self, family: Family) -> bool {
        match family {
            Family::Ipv4 => self.chain4_explicit,
            Family::Ipv6 => self.chain6_explicit,
            Family::Inet | Family::Arp | Family::Bridge | Family::Netdev => false,
        }
    }
}

/// What the plugin prints: `stdout` for munin-node, `messages` for its log (stderr), and
/// whether the run succeeded (a dump command failed, or the name cannot be served).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The protocol answer.
    pub stdout: String,
    /// One line each, for standard error.
    pub messages: Vec<String>,
    /// False when the exit status must say the plugin failed.
    pub success: bool,
}

/// Runs one plugin command under `name`: reads the families the name needs and answers.
/// A missing accounting chain is reported but is not a failure (its graphs are left out);
/// a dump command that cannot run is a failure. `autoconf` always succeeds, answering `no`
/// with the first reason.
pub async fn run(name: &Name, action: Action, settings: &Settings) -> Outcome {
    // Referenced so that no linker can drop the markers as unused data.
    std::hint::black_box(&MAGIC_MARKERS);
    let mut outcome = Outcome {
        success: true,
        ..Outcome::default()
    };
    let families: Vec<Family> = match name {
        Name::Bare => [Family::Ipv4, Family::Ipv6]
            .into_iter()
            .filter(|f| settings.dump_of(*f).is_some())
            .collect(),
        Name::Wildcard { family, .. } => vec![*family],
    };
    // The first reason the plugin cannot graph what it was asked for: autoconf's `no`. A
    // default chain that is missing is one only when no family's chain is found at all
    // (a host that accounts IPv4 only has no ACCT6).
    let mut obstacle = None;
    let mut default_missing = None;
    if families.is_empty() {
        obstacle = Some("env.chain4 and env.chain6 are both empty".to_owned());
    }
    let mut rulesets = Vec::new();
    for family in families {
        match read(family, settings).await {
            Ok(ruleset) => rulesets.push((family, ruleset)),
            Err(Unreadable { reason, failed }) => {
                outcome.success &= !failed;
                outcome.messages.push(reason.clone());
                if failed || settings.chain_explicit(family) {
                    obstacle.get_or_insert(reason);
                } else {
                    default_missing.get_or_insert(reason);
                }
            }
        }
    }
    if rulesets.is_empty() {
        obstacle = obstacle.or(default_missing);
    }
    let config = AccountingConfig {
        ipv4_chains: ChainSet::Named(settings.chain4.iter().cloned().collect()),
        ipv6_chains: ChainSet::Named(settings.chain6.iter().cloned().collect()),
        ..AccountingConfig::default()
    };
    let borrowed: Vec<(SourceId, &Ruleset)> = rulesets
        .iter()
        .map(|(_, r)| (SourceId::Iptables, &**r))
        .collect();
    let view = tag_view(&borrowed, &config);
    outcome.messages.extend(
        view.problems
            .iter()
            .map(|p| format!("{} chain {}: {}", p.family, p.chain, p.message)),
    );
    let layout = match (name, settings.multigraph) {
        (Name::Wildcard { family, tag }, _) => Layout::Single {
            family: *family,
            tag: tag.clone(),
        },
        (Name::Bare, true) => Layout::Multigraph,
        (Name::Bare, false) if matches!(action, Action::Fetch | Action::Config) => {
            outcome.messages.push(
                "multigraph is off (env.multigraph no, or the node does not announce it with \
                 MUNIN_CAP_MULTIGRAPH=1): link the plugin as \
                 traffic_accounting_<ipv4|ipv6>_<tag> (see suggest)"
                    .to_owned(),
            );
            outcome.success = false;
            return outcome;
        }
        (Name::Bare, false) => Layout::Multigraph,
    };
    match action {
        Action::Autoconf => {
            outcome.stdout = match obstacle {
                None => "yes\n".to_owned(),
                Some(reason) => format!("no ({reason})\n"),
            };
            outcome.success = true;
        }
        Action::Suggest => outcome.stdout = render::suggest(&view),
        Action::Config | Action::Fetch => {
            let graphs = render::graphs(&view, settings.unit, &layout);
            if let Layout::Single { family, tag } = &layout
                && graphs.is_empty()
                && rulesets.iter().any(|(f, _)| f == family)
            {
                let chain = settings.dump_of(*family).map_or("", |(chain, _)| chain);
                outcome
                    .messages
                    .push(format!("no rule tagged ={tag}= in {family} chain {chain}"));
            }
            outcome.stdout = match action {
                Action::Config => render::config(&graphs),
                _ => render::fetch(&graphs),
            };
        }
    }
    outcome
}

/// Why a family's accounting chain could not be read, and whether that is a failure (the
/// dump did not run) or only an absence (no chain configured or found).
struct Unreadable {
    reason: String,
    failed: bool,
}

async fn read(family: Family, settings: &Settings) -> Result<Arc<Ruleset>, Unreadable> {
    let Some((chain, command)) = settings.dump_of(family) else {
        return Err(Unreadable {
            reason: format!("no {family} chain configured (env.chain4/env.chain6 is empty)"),
            failed: false,
        });
    };
    let id = match family {
        Family::Ipv6 => source::SourceId::Ip6tables,
        _ => source::SourceId::Iptables,
    };
    let limits = source::Limits {
        timeout: DUMP_TIMEOUT,
        max_output_bytes: source::DEFAULT_MAX_OUTPUT_BYTES,
    };
    let ruleset = iptables_save::Saved::with_command(id, command)
        .read(limits)
        .await
        .map_err(|e| Unreadable {
            reason: crate::error_chain::Chain(&e).to_string(),
            failed: true,
        })?
        .ruleset;
    if !ruleset.tables.iter().any(|t| t.chain(chain).is_some()) {
        return Err(Unreadable {
            reason: format!("chain {chain} not found"),
            failed: false,
        });
    }
    Ok(ruleset)
}

/// Runs as the Munin plugin named `name` with the command in `argument`.
pub fn plugin_main(name: Result<Name, BadName>, argument: Option<&std::ffi::OsStr>) -> ExitCode {
    let (name, action) = match (name, Action::from_argument(argument)) {
        (Ok(name), Ok(action)) => (name, action),
        (Err(e), _) => return usage_error(&e),
        (_, Err(e)) => return usage_error(&e),
    };
    match crate::logging::runtime() {
        Ok(runtime) => runtime.block_on(answer(&name, action)),
        Err(e) => {
            eprintln!("{PLUGIN_NAME}: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage_error(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("{PLUGIN_NAME}: {error}");
    ExitCode::from(2)
}

/// Answers one plugin command with the settings munin-node put in the environment.
pub async fn answer(name: &Name, action: Action) -> ExitCode {
    let settings = match Settings::from_env(|var| std::env::var(var).ok()) {
        Ok(settings) => settings,
        Err(e) => return usage_error(&e),
    };
    let outcome = run(name, action, &settings).await;
    for message in &outcome.messages {
        eprintln!("{PLUGIN_NAME}: {message}");
    }
    if let Err(e) = std::io::stdout()
        .lock()
        .write_all(outcome.stdout.as_bytes())
    {
        eprintln!("{PLUGIN_NAME}: cannot write to standard output: {e}");
        return ExitCode::FAILURE;
    }
    if outcome.success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(argv0: &str) -> Option<Result<Name, BadName>> {
        plugin_name(OsStr::new(argv0))
    }

    #[test]
    fn names_select_the_plugin_and_its_graph() {
        assert_eq!(name("/usr/bin/netfilter_exporter"), None);
        assert_eq!(name("traffic_accountingx"), None);
        assert_eq!(
            name("/etc/munin/plugins/traffic_accounting"),
            Some(Ok(Name::Bare))
        );
        assert_eq!(name("traffic_accounting_"), Some(Ok(Name::Bare)));
        assert_eq!(
            name("/etc/munin/plugins/traffic_accounting_ipv6_web6_ssl"),
            Some(Ok(Name::Wildcard {
                family: Family::Ipv6,
                tag: "web6_ssl".to_owned()
            }))
        );
        for bad in [
            "traffic_accounting_ipv5_x",
            "traffic_accounting_ipv4",
            "traffic_accounting_ipv4_",
        ] {
            assert_eq!(name(bad), Some(Err(BadName(bad.to_owned()))), "{bad}");
        }
    }

    #[test]
    fn actions() {
        assert_eq!(Action::from_argument(None), Ok(Action::Fetch));
        for (arg, action) in [
            ("config", Action::Config),
            ("autoconf", Action::Autoconf),
            ("suggest", Action::Suggest),
        ] {
            assert_eq!(Action::from_argument(Some(OsStr::new(arg))), Ok(action));
        }
        for arg in ["fetch", "snmpconf", "CONFIG"] {
            assert_eq!(
                Action::from_argument(Some(OsStr::new(arg))),
                Err(UnknownAction(arg.to_owned()))
            );
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, BadSetting> {
        Settings::from_env(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_are_the_original_plugins() {
        assert_eq!(
            settings(&[("MUNIN_CAP_MULTIGRAPH", "1")]),
            Ok(Settings {
                chain4: Some("ACCT4".to_owned()),
                chain6: Some("ACCT6".to_owned()),
                chain4_explicit: false,
                chain6_explicit: false,
                save4: "iptables-save".to_owned(),
                save6: "ip6tables-save".to_owned(),
                multigraph: true,
                unit: Unit::Bytes,
            })
        );
        // Without the node's capability there is no multigraph, whatever env.multigraph says.
        assert!(
            !settings(&[("multigraph", "yes")])
                .expect("valid")
                .multigraph
        );
    }

    #[test]
    fn settings_from_plugin_conf() {
        let s = settings(&[
            ("MUNIN_CAP_MULTIGRAPH", "1"),
            ("multigraph", "no"),
            ("what", "packets"),
            ("chain4", "MYACCT"),
            ("chain6", ""),
            ("iptables", "/sbin/iptables"),
            ("ip6tables", "/usr/sbin/ip6tables-legacy"),
        ])
        .expect("valid");
        assert!(!s.multigraph);
        assert_eq!(s.unit, Unit::Packets);
        assert_eq!(s.chain4.as_deref(), Some("MYACCT"));
        assert_eq!(s.chain6, None);
        assert_eq!(s.save4, "/sbin/iptables-save");
        assert_eq!(s.save6, "/usr/sbin/ip6tables-legacy-save");
        for (var, value) in [("what", "octets"), ("multigraph", "maybe")] {
            let err = settings(&[(var, value)]).expect_err("invalid");
            assert!(err.to_string().contains(&format!("env.{var}")), "{err}");
        }
    }

    #[test]
    fn markers_are_lines_for_munin_node_configure() {
        let text = std::str::from_utf8(&MAGIC_MARKERS).expect("text");
        assert!(text.lines().any(|l| l == "#%# family=auto"));
        assert!(
            text.lines()
                .any(|l| l == "#%# capabilities=autoconf suggest")
        );
    }

    #[tokio::test]
    async fn missing_binary_is_a_clear_failure() {
        let settings = Settings {
            save4: "/nonexistent/iptables-save".to_owned(),
            ..settings(&[("chain6", "")]).expect("valid")
        };
        let fetch = run(&Name::Bare, Action::Fetch, &settings).await;
        assert!(!fetch.success);
        assert_eq!(fetch.stdout, "");
        assert!(
            fetch
                .messages
                .iter()
                .any(|m| m.contains("/nonexistent/iptables-save: not found")),
            "{:?}",
            fetch.messages
        );
        let autoconf = run(&Name::Bare, Action::Autoconf, &settings).await;
        assert!(autoconf.success);
        assert_eq!(
            autoconf.stdout,
            "no (/nonexistent/iptables-save: not found)\n"
        );
    }

    #[tokio::test]
    async fn no_chain_at_all_is_an_autoconf_no() {
        let settings = settings(&[("chain4", ""), ("chain6", "")]).expect("valid");
        let autoconf = run(&Name::Bare, Action::Autoconf, &settings).await;
        assert_eq!(
            autoconf.stdout,
            "no (env.chain4 and env.chain6 are both empty)\n"
        );
    }
}
