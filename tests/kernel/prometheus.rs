//! The real Prometheus server scrapes the exporter inside a network namespace and its query
//! API returns the exact packet count of a rule that real pings went through. Prometheus
//! asks for OpenMetrics first, so this also proves that our OpenMetrics output parses.
//!
//! With `deploy/prometheus/prometheus.yml` and its alerting and recording rules, scraping the
//! exporter and the audit, every query of the Grafana dashboard
//! `deploy/grafana/netfilter_exporter.json` and every recording rule must return data.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{EXPORTER, Process};
use crate::deploy::prometheus_rules;
use crate::harness::{Ip, Netns, accounting_table, require_command, require_kernel};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "prom";

const PINGS: u32 = 9;
const EXPORTER_ADDRESS: &str = "127.0.0.1:9455";
const PROMETHEUS_ADDRESS: &str = "127.0.0.1:9090";

#[test]
fn prometheus_scrapes_exact_rule_counters() {
    if !require_kernel() || !require_command("prometheus") {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore(
        "iptables-restore",
        "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p icmp --icmp-type echo-request -m comment --comment \"prometheus test\" -j ACCEPT
COMMIT
",
    );
    ns.ping(Ip::V4, PINGS, 56);

    let dir = tempfile::tempdir().expect("temporary directory");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: netfilter\n    static_configs:\n      - targets: ['{EXPORTER_ADDRESS}']\n"
        ),
    )
    .expect("write prometheus.yml");

    let exporter = ns.spawn(
        ns.exporter(&[
            "--web.listen-address",
            EXPORTER_ADDRESS,
            "--collect-interval",
            "0.5",
            "-t",
            "iptables",
        ]),
        &dir.path().join("exporter.log"),
    );
    let mut prometheus = start_prometheus(&ns, dir.path(), &config);

    let query = "iptables_rule_packets_total{table=\"filter\",chain=\"INPUT\",job=\"netfilter\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        prometheus.assert_running();
        let answer = query_answer(&ns, query);
        if let Some(value) = answer.as_deref().and_then(single_value) {
            break value;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus returned no sample within 60 s; last answer: {answer:?}\n\
             exporter log:\n{}\nPrometheus log:\n{}",
            exporter.log(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(found, PINGS.to_string(), "{query}");
    drop(prometheus);
    drop(exporter);
}

/// Starts Prometheus inside `ns` with the configuration file `config`, its data and log in
/// `dir`, answering on [`PROMETHEUS_ADDRESS`].
fn start_prometheus(ns: &Netns, dir: &Path, config: &Path) -> Process {
    let mut command = ns.command("prometheus");
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={PROMETHEUS_ADDRESS}"));
    ns.spawn(command, &dir.join("prometheus.log"))
}

/// The answer of Prometheus' instant query API to `query`, or None when it cannot be
/// reached.
fn query_answer(ns: &Netns, query: &str) -> Option<String> {
    ns.try_curl(&[
        "--get",
        "--data-urlencode",
        &format!("query={query}"),
        &format!("http://{PROMETHEUS_ADDRESS}/api/v1/query"),
    ])
}

/// The value of the only sample of a successful instant query, or None while there is none.
fn single_value(answer: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_str(answer).ok()?;
    if json["status"] != "success" {
        return None;
    }
    match json["data"]["result"].as_array()?.as_slice() {
        [one] => Some(one["value"][1].as_str()?.to_owned()),
        [] => None,
        many => panic!("expected one series, got {many:?}"),
    }
}

/// Where the Grafana dashboard is.
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/deploy/grafana/netfilter_exporter.json"
);

/// The dashboard's own variables with the values the test gives them, and Grafana's built-in
/// ones.
const DASHBOARD_VARIABLES: &[(&str, &str)] = &[
    ("backend", "iptables"),
    ("job", "netfilter"),
    ("instance", ".*"),
    ("audit_job", "netfilter_audit"),
];
const GRAFANA_VARIABLES: &[(&str, &str)] = &[("__rate_interval", "1m"), ("__interval", "15s")];

/// Every panel of the dashboard (those inside rows too) but the rows, as title and the
/// queries of its targets, with the variables replaced; panics when a panel has no query or
/// a query uses a variable the test does not know.
fn dashboard_queries() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(DASHBOARD).expect("read the dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let defined: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list")
        .iter()
        .filter_map(|variable| variable["name"].as_str())
        .collect();
    for (name, _) in DASHBOARD_VARIABLES {
        assert!(
            defined.contains(name),
            "the dashboard has no variable {name}"
        );
    }
    let substitute = |expr: &str| -> String {
        let mut expr = expr.to_owned();
        for (name, value) in GRAFANA_VARIABLES.iter().chain(DASHBOARD_VARIABLES) {
            expr = expr
                .replace(&format!("${{{name}}}"), value)
                .replace(&format!("${name}"), value);
        }
        assert!(!expr.contains('$'), "unknown variable in {expr}");
        expr
    };
    let mut panels: Vec<&serde_json::Value> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    let queries: Vec<(String, Vec<String>)> = panels
        .into_iter()
        .filter(|panel| panel["type"] != "row")
        .map(|panel| {
            let title = panel["title"].as_str().expect("a panel title").to_owned();
            // The data source chosen on import, not one of the author's.
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
            let exprs: Vec<String> = panel["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|target| target["expr"].as_str())
                .filter(|expr| !expr.trim().is_empty())
                .map(substitute)
                .collect();
            assert!(!exprs.is_empty(), "panel {title:?} has no query");
            (title, exprs)
        })
        .collect();
    assert!(queries.len() >= 10, "{queries:?}");
    queries
}

/// The result of a successful query, or None while Prometheus cannot be reached; panics on
/// a query that Prometheus refuses.
fn query_result(ns: &Netns, query: &str) -> Option<Vec<serde_json::Value>> {
    let answer = query_answer(ns, query)?;
    let json: serde_json::Value = serde_json::from_str(&answer).ok()?;
    assert_eq!(json["status"], "success", "{query}: {answer}");
    Some(json["data"]["result"].as_array()?.clone())
}

#[test]
fn every_dashboard_query_returns_data_from_the_deployed_scrape_config() {
    if !require_kernel() || !require_command("prometheus") || !require_command("nft") {
        return;
    }
    let panels = dashboard_queries();
    let ns = Netns::new(NETNS_LABEL);
    // Accounting tags in ACCT4 (a pair and a single tag), a rule with a comment in INPUT.
    let rules = accounting_table(
        "ACCT4",
        "-A INPUT -p icmp --icmp-type echo-request -m comment --comment \"pings\" -j ACCEPT
-A ACCT4 -p icmp --icmp-type echo-request -m comment --comment \"=ping_down= Echo requests\"
-A ACCT4 -p icmp --icmp-type echo-reply -m comment --comment \"=ping_up= dummy\"
-A ACCT4 -p tcp -m comment --comment \"=tcp=\"
",
    );
    ns.restore("iptables-restore", &rules);
    // A native table with what the nftables panels show: rule counters, a named counter, a
    // quota and a set.
    let native = "table inet native {
    counter pings { }
    quota budget { over 100 mbytes }
    set local { type ipv4_addr; elements = { 127.0.0.1 } }
    chain input {
        type filter hook input priority 10; policy accept;
        ip saddr @local icmp type echo-request counter name pings
        icmp type echo-request counter comment \"echo requests\"
        quota name budget
    }
}
";
    let out = ns.output("nft", &["-f", "-"], native);
    assert!(
        out.status.success(),
        "nft -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns.ping(Ip::V4, PINGS, 56);

    // The deployed configuration, scraping and evaluating every second.
    let dir = tempfile::tempdir().expect("temporary directory");
    let deployed = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");
    let config =
        std::fs::read_to_string(format!("{deployed}/prometheus.yml")).expect("read prometheus.yml");
    let fast = config
        .replace(
            "scrape_interval: 15s",
            "scrape_interval: 1s\n  scrape_timeout: 1s",
        )
        .replace("evaluation_interval: 15s", "evaluation_interval: 1s");
    assert_ne!(fast, config);
    std::fs::write(dir.path().join("prometheus.yml"), fast).expect("write prometheus.yml");
    let parsed: serde_norway::Value = serde_norway::from_str(&config).expect("YAML");
    for file in parsed["rule_files"].as_sequence().expect("rule_files") {
        let file = file.as_str().expect("a rule file");
        std::fs::copy(format!("{deployed}/{file}"), dir.path().join(file))
            .unwrap_or_else(|e| panic!("copy {file}: {e}"));
    }
    let recorded: Vec<String> = prometheus_rules("prometheus/recording.yml")
        .iter()
        .map(|rule| rule["record"].as_str().expect("record").to_owned())
        .collect();

    // The exporter and the audit on the ports the configuration scrapes; the audit has no
    // allowlist, so every rule is unexpected.
    let allowlists = dir.path().join("allowlists");
    std::fs::create_dir(&allowlists).expect("create the allowlist directory");
    // A series limit, as the DaemonSet sets one, so that the exporter says what it keeps.
    let exporter = ns.spawn(
        ns.exporter(&[
            "--collect-interval",
            "0.5",
            "-t",
            "iptables,nftables",
            "--max-series",
            "1000",
        ]),
        &dir.path().join("exporter.log"),
    );
    let mut audit = ns.command(EXPORTER);
    audit.arg("audit").arg("--input").arg(&allowlists).args([
        "--interval",
        "1",
        "--web.listen-address",
        "127.0.0.1:9456",
    ]);
    let audit = ns.spawn(audit, &dir.path().join("audit.log"));
    let mut prometheus = start_prometheus(&ns, dir.path(), &dir.path().join("prometheus.yml"));

    // Rates need two samples within the window; wait until every query has a result.
    let alert = "ALERTS{alertname=\"NetfilterAuditUnexpectedRules\",table=\"filter\"}";
    let mut waiting: Vec<(String, String)> = panels
        .iter()
        .flat_map(|(title, exprs)| exprs.iter().map(move |expr| (title.clone(), expr.clone())))
        .chain([("the audit's alert".to_owned(), alert.to_owned())])
        .chain(
            recorded
                .iter()
                .map(|name| (format!("recording rule {name}"), name.clone())),
        )
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    while !waiting.is_empty() {
        prometheus.assert_running();
        waiting.retain(|(_, expr)| query_result(&ns, expr).is_none_or(|result| result.is_empty()));
        assert!(
            Instant::now() < deadline || waiting.is_empty(),
            "no data within 90 s for {waiting:#?}\nexporter log:\n{}\naudit log:\n{}\n\
             Prometheus log:\n{}",
            exporter.log(),
            audit.log(),
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    // The tags are the ruleset's, with its description; nothing of the exporter is down or
    // failing.
    let tags = query_result(&ns, "netfilter_accounting_info").expect("an answer");
    let mut described: Vec<(String, String)> = tags
        .iter()
        .map(|series| {
            let label = |name: &str| series["metric"][name].as_str().unwrap_or("").to_owned();
            (label("tag"), label("description"))
        })
        .collect();
    described.sort();
    assert_eq!(
        described,
        [("ping", "Echo requests"), ("tcp", "tcp")].map(|(t, d)| (t.to_owned(), d.to_owned()))
    );
    let quiet =
        "ALERTS{alertname=~\"NetfilterExporter.*|NetfilterSource.*|NetfilterCollection.*\"}";
    assert_eq!(query_result(&ns, quiet), Some(Vec::new()), "{quiet}");

    // The recording rules on the real metrics: the one audited node has unexpected rules,
    // no source fails, nothing is dropped.
    for (query, expected) in [
        (
            "job:netfilter_audit_unexpected_rules:count_nonzero{job=\"netfilter_audit\"}",
            "1",
        ),
        (
            "sum(job_source:netfilter_exporter_collection_success:count_zero)",
            "0",
        ),
        ("sum(job_source:netfilter_exporter_series_dropped:sum)", "0"),
    ] {
        let answer = query_answer(&ns, query);
        assert_eq!(
            answer.as_deref().and_then(single_value).as_deref(),
            Some(expected),
            "{query}: {answer:?}"
        );
    }
    drop(prometheus);
    drop(audit);
    drop(exporter);
}
