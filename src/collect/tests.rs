use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use super::process::first_of;
use super::{
    CollectConfig, Collector, Dump, LogOnce, Publication, Selection, SourceError, off_thread,
};
use crate::accounting::{self, AccountingConfig, Problem};
use crate::exposition::{Exposition, Format, Storage};
use crate::metrics::MetricsConfig;
use crate::ruleset::{Family, Ruleset};
use crate::source::{Reading, SourceId, iptables_save};

fn config() -> CollectConfig {
    CollectConfig {
        selection: Selection::Explicit(vec![SourceId::Iptables]),
        interval: Duration::from_secs(5),
        timeout: Duration::from_secs(5),
        max_output_bytes: 1 << 20,
        metrics: MetricsConfig::default(),
        accounting: AccountingConfig::default(),
        storage: Storage::Plain,
        set_elements_limit: 0,
        iptables_netlink: false,
        cpu_budget: 0.0,
        ipset: Default::default(),
    }
}

/// A run of iptables-save whose accounting chain counts one rule tagged `tag`.
fn dump(tag: &str) -> impl Future<Output = Result<Dump, SourceError>> + use<> {
    let stdout = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:ACCT4 - [0:0]\n[5:500] -A INPUT -j ACCT4\n\
         [3:300] -A ACCT4 -m comment --comment \"={tag}= web\"\nCOMMIT\n"
    );
    let ruleset = iptables_save::parse(Family::Ipv4, &stdout);
    std::future::ready(Ok(Dump::Read(Reading::new(ruleset))))
}

/// The accounting view with a bug: it panics on the tag `boom`.
fn render_with_a_bug(
    rulesets: &[(SourceId, &Ruleset)],
    config: &AccountingConfig,
) -> (Exposition, Vec<Problem>) {
    let (families, problems) = accounting::render(rulesets, config);
    let text = families.to_vec(Format::Text);
    assert!(
        memchr::memmem::find(&text, b"tag=\"boom\"").is_none(),
        "a bug in the accounting view"
    );
    (families, problems)
}

fn lines(publication: &Publication) -> Vec<String> {
    String::from_utf8(publication.exposition.to_vec(Format::Text))
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn has(publication: &Publication, line: &str) -> bool {
    lines(publication).iter().any(|l| l == line)
}

#[tokio::test]
async fn a_panic_while_rendering_fails_the_collection_and_the_loop_goes_on() {
    let collector = Collector::new(config());
    let failed = collector
        .round(SourceId::Iptables, dump("boom"), render_with_a_bug)
        .await;
    assert!(
        has(&failed, "iptables_scrape_success 0"),
        "{:?}",
        lines(&failed)
    );
    assert!(has(
        &failed,
        "netfilter_exporter_collection_success{source=\"iptables\"} 0"
    ));
    assert!(
        !lines(&failed)
            .iter()
            .any(|l| l.contains("netfilter_accounting")),
        "{:?}",
        lines(&failed)
    );
    let failures: Vec<_> = failed.failures().collect();
    assert!(
        matches!(
            failures[..],
            [(SourceId::Iptables, SourceError::Internal { .. })]
        ),
        "{failures:?}"
    );
    assert!(Arc::ptr_eq(&collector.subscribe().borrow(), &failed));
    assert_eq!(failed.rounds.get(&SourceId::Iptables), Some(&1));

    // The next turn of the loop collects and publishes as usual.
    let next = collector
        .round(SourceId::Iptables, dump("web"), accounting::render)
        .await;
    assert!(
        has(&next, "iptables_scrape_success 1"),
        "{:?}",
        lines(&next)
    );
    assert!(has(
        &next,
        "netfilter_accounting_packets_total{family=\"ipv4\",tag=\"web\"} 3"
    ));
    assert_eq!(next.failures().count(), 0);
    assert_eq!(next.rounds.get(&SourceId::Iptables), Some(&2));
    assert!(Arc::ptr_eq(&collector.subscribe().borrow(), &next));
}

#[tokio::test]
async fn the_audits_families_join_every_publication_after_it_published() {
    let collector = Collector::new(config());
    let families = |value: u64| {
        let mut out = crate::exposition::ExpositionBuilder::default();
        out.family(
            "netfilter_audit_check_success",
            "help",
            crate::exposition::MetricType::Gauge,
        )
        .sample(&[], value);
        out.finish()
    };
    collector.publish_audit(families(0)).await;
    assert!(has(
        &collector.subscribe().borrow(),
        "netfilter_audit_check_success 0"
    ));
    // A collection publishes again, with the audit's last families.
    let next = collector
        .round(SourceId::Iptables, dump("web"), accounting::render)
        .await;
    assert!(
        has(&next, "netfilter_audit_check_success 0"),
        "{:?}",
        lines(&next)
    );
    assert!(has(&next, "iptables_scrape_success 1"));
    collector.publish_audit(families(1)).await;
    let last = collector.subscribe().borrow().clone();
    assert!(
        has(&last, "netfilter_audit_check_success 1"),
        "{:?}",
        lines(&last)
    );
    assert!(!has(&last, "netfilter_audit_check_success 0"));
    assert!(has(&last, "iptables_scrape_success 1"));
}

#[tokio::test]
async fn a_panic_in_a_collection_task_is_a_failed_collection() {
    let collector = Collector::new(config());
    let panicking = std::future::poll_fn(|_| -> Poll<Result<Dump, SourceError>> {
        panic!("a bug in a collection")
    });
    let failed = collector
        .round(SourceId::Iptables, panicking, accounting::render)
        .await;
    assert!(
        has(&failed, "iptables_scrape_success 0"),
        "{:?}",
        lines(&failed)
    );
    let failures: Vec<_> = failed.failures().collect();
    match failures[..] {
        [(SourceId::Iptables, SourceError::Internal { reason, .. })] => {
            assert!(reason.contains("a bug in a collection"), "{reason}")
        }
        _ => panic!("not a failed collection: {failures:?}"),
    }
    let next = collector
        .round(SourceId::Iptables, dump("web"), accounting::render)
        .await;
    assert!(
        has(&next, "iptables_scrape_success 1"),
        "{:?}",
        lines(&next)
    );
}

#[tokio::test]
async fn a_panic_while_processing_a_dump_is_a_failed_collection() {
    let result = off_thread("iptables-save", || -> usize { panic!("bad offsets") }).await;
    match result {
        Err(SourceError::Internal { command, reason }) => {
            assert_eq!(command, "iptables-save");
            assert!(reason.contains("bad offsets"), "{reason}");
        }
        other => panic!("not a failed collection: {other:?}"),
    }
    assert_eq!(off_thread("iptables-save", || 7).await.ok(), Some(7));
}

#[test]
fn a_persisting_message_is_new_once_and_again_after_it_went_away() {
    let log = LogOnce::default();
    let round = |msgs: &[&str]| log.new_messages((None, "s"), msgs.iter().map(|m| m.to_string()));
    assert_eq!(round(&["a", "b"]), ["a", "b"]);
    assert_eq!(round(&["a", "b"]), Vec::<String>::new());
    assert_eq!(round(&["b"]), Vec::<String>::new());
    assert_eq!(round(&["a", "b"]), ["a"]);
    assert!(log.new_messages((None, "other"), ["a".to_owned()].into_iter()) == ["a"]);
    assert_eq!(round(&["c", "a", "c", "b", "d"]), ["c", "d"]);
}

#[test]
fn a_repeated_message_is_logged_once_until_it_changes() {
    let log = LogOnce::default();
    let once = |m: Option<&str>| log.once((None, "stderr"), m.map(str::to_owned));
    assert_eq!(once(Some("warning")).as_deref(), Some("warning"));
    assert_eq!(once(Some("warning")), None);
    assert_eq!(once(Some("other")).as_deref(), Some("other"));
    assert_eq!(once(None), None);
    assert_eq!(once(Some("other")).as_deref(), Some("other"));
}

#[test]
fn at_most_the_first_messages_are_logged_with_the_count_of_the_rest() {
    let messages = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(first_of(messages(3), 20), (messages(3), 0));
    assert_eq!(first_of(messages(20), 20), (messages(20), 0));
    let (shown, more) = first_of(messages(25_000), 20);
    assert_eq!((shown, more), (messages(20), 24_980));
}
