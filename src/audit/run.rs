//! The audit's I/O: one check of every family (the allowlists read again, the rules dumped
//! or read from a saved file), and the running audit's cycle around it, which logs what
//! changed, reads the BPF map and tells Kubernetes what [`super::policy`] says. The same
//! cycle runs in the `audit` command and inside `serve`.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::kube::{self, Client, Event};
use super::policy::{self, Policy};
use super::settings::{AuditConfig, AuditFamily, AuditOutput};
use super::{Allowlist, AuditError, Check, FamilyCheck, TableFindings, Tracker, Verdict, bpf};
use crate::collect::{CollectConfig, Collector, Publication};
use crate::error_chain::Chain;
use crate::exposition::{Exposition, ExpositionBuilder};
use crate::logging::LogFormat;
use crate::ruleset::Family;
use crate::serve::run::{self as serving, Http, RunError};
use crate::serve::web_config::WebConfigFile;
use crate::source::nftables;
use crate::source::{self, Limits, Source, SourceId, iptables_nft, iptables_save};

/// `audit --once`: checks, prints the findings, and says by its status what they were:
/// 0 clean, 1 unexpected rules, 2 a family could not be checked (or printing failed).
pub async fn once(audit: &AuditConfig, collect: &CollectConfig) -> ExitCode {
    let check = check_once(audit, &Sources::new(audit, collect), collect).await;
    // The report may go to a file: what failed is also said where a person looks.
    for (source, e) in check.failures() {
        let family = super::family_label(source);
        eprintln!("netfilter_exporter: {family}: {}", Chain(e));
    }
    let text = match audit.output {
        AuditOutput::Text => check.to_text(),
        AuditOutput::Json => format!("{:#}\n", check.to_json()),
    };
    // Status 2, not the 1 of a failed mode: 1 means unexpected rules here.
    if let Err(e) = std::io::stdout().lock().write_all(text.as_bytes()) {
        eprintln!("netfilter_exporter: cannot write to standard output: {e}");
        return ExitCode::from(2);
    }
    match check.verdict() {
        Verdict::Clean => ExitCode::SUCCESS,
        Verdict::Unexpected => ExitCode::from(1),
        Verdict::Failed => ExitCode::from(2),
    }
}

/// Checks every interval until SIGTERM or SIGINT (or, with --terminate-on-success, until
/// a check is clean and the node labelled so), serving the metrics of the last check when
/// asked to; SIGHUP re-reads the web config.
pub async fn until_stopped(
    audit: &AuditConfig,
    collect: &CollectConfig,
    web: Option<Arc<WebConfigFile>>,
    log_format: LogFormat,
) -> Result<(), RunError> {
    crate::serve::reload_on_hangup(web.clone());
    let (publish, publications) = watch::channel(Arc::new(Publication::default()));
    let checks = async {
        let mut shutdown = std::pin::pin!(crate::serve::shutdown_signal());
        let mut auditor = Auditor::new(audit.clone(), collect.clone());
        loop {
            let cycle = auditor.cycle().await;
            publish.send_replace(Arc::new(Publication::new(cycle.exposition)));
            if cycle.terminate {
                tracing::info!("every rule is allowed; exiting (--terminate-on-success)");
                return;
            }
            tokio::select! {
                biased;
                () = &mut shutdown => return,
                () = tokio::time::sleep(auditor.interval()) => {}
            }
        }
    };
    if audit.listen.is_empty() {
        checks.await;
        return Ok(());
    }
    tokio::select! {
        () = checks => Ok(()),
        served = async {
            let http = Http {
                listeners: serving::bind(&audit.listen, &audit.telemetry_path).await?,
                telemetry_path: audit.telemetry_path.clone(),
                limits: audit.limits,
                web,
                web_user: audit.web_user.clone(),
                log_format,
            };
            serving::serve_until_stopped(http, publications).await
        } => served,
    }
}

/// The audit inside `serve`: checks every interval for as long as the exporter runs, its
/// families put into the collector's publications.
pub fn spawn_in_collector(audit: AuditConfig, collect: CollectConfig, collector: Arc<Collector>) {
    tokio::spawn(async move {
        let mut auditor = Auditor::new(audit, collect);
        loop {
            let cycle = auditor.cycle().await;
            collector.publish_audit(cycle.exposition).await;
            tokio::time::sleep(auditor.interval()).await;
        }
    });
}

/// Each audited family with the source it reads, kept from check to check: an iptables
/// source on nf_tables learns its rule texts once, as the collector's does.
#[derive(Debug)]
pub struct Sources(Vec<(AuditFamily, Arc<dyn Source>)>);

impl Sources {
    /// The sources of `audit`'s families, read as `collect` says.
    pub fn new(audit: &AuditConfig, collect: &CollectConfig) -> Self {
        Sources(
            audit
                .families
                .iter()
                .map(|family| (family.clone(), source_of(family, collect)))
                .collect(),
        )
    }
}

/// Checks every family once: each allowlist read again, each source read, and the BPF map
/// read when asked to.
pub async fn check_once(audit: &AuditConfig, sources: &Sources, collect: &CollectConfig) -> Check {
    let mut families = Vec::new();
    for (family, source) in &sources.0 {
        let outcome = check_family(family, source.as_ref(), collect).await;
        families.push(FamilyCheck {
            source: family.source,
            outcome,
        });
    }
    // Read each check, so that a map pinned again is found; blocking, but one small
    // system call per key.
    let map = audit.map_path.as_deref().map(bpf::read);
    Check {
        families,
        map,
        finished_at: SystemTime::now(),
    }
}

async fn check_family(
    family: &AuditFamily,
    source: &dyn Source,
    collect: &CollectConfig,
) -> Result<Vec<TableFindings>, AuditError> {
    let allowlist = Allowlist::load(&family.allowlist)?;
    let limits = Limits {
        timeout: collect.timeout,
        max_output_bytes: collect.max_output_bytes,
    };
    let reading = source.read(limits).await?;
    let nftables = family.source == SourceId::Nftables;
    // Checking 100k rules takes CPU time: off the I/O threads that also serve the metrics.
    // A panic there is a bug, shown as a failed check of this family, not the end of the
    // loop.
    tokio::task::spawn_blocking(move || {
        if nftables {
            Ok(super::check_nftables(&reading.ruleset, &allowlist))
        } else {
            super::check_dump(&reading.ruleset, &allowlist)
        }
    })
    .await
    .unwrap_or_else(|e| {
        Err(AuditError::Internal {
            reason: e.to_string(),
        })
    })
}

/// The source the audit reads `family`'s rules from: its saved file; for nftables the
/// native tables (those iptables-save prints are the iptables families' to check); the
/// iptables source as the collector reads it.
fn source_of(family: &AuditFamily, collect: &CollectConfig) -> Arc<dyn Source> {
    match (&family.rules_file, family.source) {
        (Some(path), source) => Arc::new(iptables_save::Saved::from_file(source, path)),
        (None, SourceId::Nftables) => Arc::new(nftables::Native::new(&source::Settings {
            leave_to_iptables: vec![Family::Ipv4, Family::Ipv6],
            ..source::Settings::default()
        })),
        (None, source) if collect.iptables_netlink => Arc::new(iptables_nft::Netlink::new(source)),
        (None, source) => Arc::new(iptables_save::Saved::new(source)),
    }
}

/// What one cycle of the running audit produced.
#[derive(Debug)]
pub struct Cycle {
    /// The check.
    pub check: Check,
    /// The audit's metric families after it.
    pub exposition: Exposition,
    /// `--terminate-on-success` and the node is clean (and labelled so).
    pub terminate: bool,
}

/// The running audit: what it remembers from one check to the next.
#[derive(Debug)]
pub struct Auditor {
    config: AuditConfig,
    collect: CollectConfig,
    sources: Sources,
    tracker: Tracker,
    blocks: bpf::BlockWatch,
    policy: Policy,
    kube: Option<Client>,
}

impl Auditor {
    /// An audit that has not checked yet; it tells Kubernetes when `config` has its
    /// settings.
    pub fn new(config: AuditConfig, collect: CollectConfig) -> Auditor {
        let kube = config.kubernetes.clone().map(Client::new);
        match &kube {
            Some(client) => tracing::info!(
                node = %client.settings().node,
                api_server = %format!("{}:{}", client.settings().host, client.settings().port),
                "labelling the node's CiliumNode"
            ),
            None => tracing::info!("no node name (NODE_NAME): Kubernetes is not told"),
        }
        Auditor {
            policy: Policy::new(config.events),
            sources: Sources::new(&config, &collect),
            config,
            collect,
            tracker: Tracker::default(),
            blocks: bpf::BlockWatch::default(),
            kube,
        }
    }

    /// Time between checks.
    pub fn interval(&self) -> Duration {
        self.config.interval
    }

    /// Checks once, logs what changed, and tells Kubernetes what the policy says.
    pub async fn cycle(&mut self) -> Cycle {
        let check = check_once(&self.config, &self.sources, &self.collect).await;
        let changes = self.tracker.update(&check);
        for (source, table, rule) in &changes.appeared {
            let family = super::family_label(*source);
            tracing::warn!(family, table, rule, "unexpected rule appeared");
        }
        for (source, table, rule) in &changes.gone {
            let family = super::family_label(*source);
            tracing::info!(family, table, rule, "unexpected rule gone");
        }
        for checked in &check.families {
            if let Err(e) = &checked.outcome {
                let family = super::family_label(checked.source);
                tracing::error!(family, error = %Chain(e), "audit check failed");
            }
        }
        let rise = check.map.as_ref().and_then(|map| {
            if let Err(e) = map {
                tracing::warn!(error = %Chain(e), "cannot read the BPF map");
            }
            let rise = self.blocks.observe(map);
            if let Some(rise) = rise {
                tracing::warn!(
                    rise,
                    "attempts to add iptables rules were blocked since the last check"
                );
            }
            rise
        });
        let plan = self.policy.plan(&check, &changes, rise);
        if let Some(kube) = &mut self.kube {
            tell(kube, &mut self.policy, &plan).await;
        }
        let terminate = self.config.terminate_on_success
            && self.policy.may_terminate(&check, self.kube.is_some());
        let mut out = ExpositionBuilder::default();
        out.extend(&check.render());
        if let Some(kube) = &self.kube {
            out.extend(&kube.render());
        }
        Cycle {
            check,
            exposition: out.finish(),
            terminate,
        }
    }
}

/// Makes the requests of `plan`; a failure is logged and counted by the client, and the
/// policy tries again after the next check.
async fn tell(kube: &mut Client, policy: &mut Policy, plan: &policy::Plan) {
    if let Some(value) = plan.label {
        let result = kube.patch_label(value).await;
        if result.is_ok() {
            tracing::info!(label = kube::LABEL, value, "CiliumNode labelled");
        }
        policy.label_set(value, result.is_ok());
    }
    let events = [
        plan.unexpected_event.map(|n| Event {
            reason: policy::UNEXPECTED_RULES,
            message: format!(
                "{n} iptables rules that no allowlist pattern matches appeared on the node (the audit's log lists them)"
            ),
        }),
        plan.blocked_event.map(|n| Event {
            reason: policy::BLOCKED_RULE,
            message: format!(
                "{n} attempts to add iptables rules to the node were blocked since the last check"
            ),
        }),
    ];
    for event in events.into_iter().flatten() {
        if kube.create_event(&event).await.is_ok() {
            tracing::info!(reason = event.reason, "event created");
            policy.event_created(event.reason);
        }
    }
}
