//! The audit's I/O: one check of every family (the allowlists read again, the rules dumped
//! or read from a saved file), and the running audit's cycle around it, which logs what
//! changed, reads the BPF map and tells Kubernetes what [`super::policy`] says. The same
//! cycle runs in the `audit` command and inside `serve`.

use std::time::{Duration, SystemTime};

use super::kube::{self, Client, Event};
use super::policy::{self, Policy};
use super::settings::{AuditConfig, AuditFamily, AuditInput};
use super::{Allowlist, AuditError, Check, FamilyCheck, Scope, TableFindings, Tracker, bpf};
use crate::collect::CollectConfig;
use crate::error_chain::Chain;
use crate::exposition::{Exposition, ExpositionBuilder};
use crate::ruleset::Family;
use crate::source::nftables::{self, ReadConfig, Tables};
use crate::source::{self, SourceError, iptables_save};

/// Checks every family of `audit` once: each allowlist read again, each ruleset dumped
/// (or read from its saved file) and parsed, and the BPF map read when asked to.
pub async fn check_once(audit: &AuditConfig, collect: &CollectConfig) -> Check {
    let mut families = Vec::new();
    for family in &audit.families {
        let outcome = check_family(family, collect).await;
        families.push(FamilyCheck {
            family: family.family,
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
    collect: &CollectConfig,
) -> Result<Vec<TableFindings>, AuditError> {
    let allowlist = Allowlist::load(&family.allowlist)?;
    let dump = match &family.input {
        AuditInput::Nftables => return check_nftables(allowlist, collect).await,
        AuditInput::Live(target) => {
            // No counters: the lines checked are the rules' text only.
            let output = source::run(
                target.reader(),
                &[],
                collect.timeout,
                collect.max_output_bytes,
            )
            .await?;
            output.stdout
        }
        AuditInput::File(path) => read_rules_file(path, collect.max_output_bytes)?,
    };
    // Parsing 100k rules takes CPU time: off the I/O threads that also serve the metrics.
    // A panic there is a bug, shown as a failed check of this family, not the end of the
    // loop.
    let kind = match family.family {
        Scope::Iptables(kind) => kind,
        Scope::Nftables => Family::Ipv4,
    };
    tokio::task::spawn_blocking(move || {
        super::check_dump(&iptables_save::parse(kind, &dump), &allowlist)
    })
    .await
    .unwrap_or_else(|e| {
        Err(AuditError::Internal {
            reason: e.to_string(),
        })
    })
}

/// Checks the native nftables tables: those iptables-save prints are the iptables
/// families' to check.
async fn check_nftables(
    allowlist: Allowlist,
    collect: &CollectConfig,
) -> Result<Vec<TableFindings>, AuditError> {
    let config = ReadConfig {
        timeout: collect.timeout,
        tables: Tables::Native {
            leave_to_iptables: vec![Family::Ipv4, Family::Ipv6],
        },
        set_elements_limit: 0,
    };
    tokio::task::spawn_blocking(move || {
        let snapshot = nftables::read(&config).map_err(SourceError::from)?;
        Ok(super::check_nftables(&snapshot.ruleset, &allowlist))
    })
    .await
    .unwrap_or_else(|e| {
        Err(AuditError::Internal {
            reason: e.to_string(),
        })
    })
}

/// A saved dump, bounded as a dump command's output is, read lossily as a dump is (a
/// comment may hold any bytes). Only `--once` reads one, so blocking here is fine.
fn read_rules_file(path: &std::path::Path, limit: usize) -> Result<String, AuditError> {
    use std::io::Read;
    let error = |reason: String| AuditError::RulesFile {
        path: path.display().to_string(),
        reason,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(limit as u64 + 1).read_to_end(&mut bytes))
        .map_err(|e| error(e.to_string()))?;
    if bytes.len() > limit {
        return Err(error(format!(
            "larger than {limit} bytes (--collect-max-output-bytes)"
        )));
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
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
        let check = check_once(&self.config, &self.collect).await;
        let changes = self.tracker.update(&check);
        for (family, table, rule) in &changes.appeared {
            tracing::warn!(%family, table, rule, "unexpected rule appeared");
        }
        for (family, table, rule) in &changes.gone {
            tracing::info!(%family, table, rule, "unexpected rule gone");
        }
        for family in &check.families {
            if let Err(e) = &family.outcome {
                tracing::error!(family = %family.family, error = %Chain(e), "audit check failed");
            }
        }
        let rise = check.map.as_ref().and_then(|map| {
            if let Err(e) = map {
                tracing::warn!(error = %e, "cannot read the BPF map");
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
