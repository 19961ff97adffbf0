//! The real Prometheus server scrapes the exporter inside a network namespace and its query
//! API returns the exact packet count of a rule that real pings went through. Prometheus
//! asks for OpenMetrics first, so this also proves that our OpenMetrics output parses.

mod common;

use std::time::{Duration, Instant};

use common::{Ip, Netns, require_command, require_kernel};

/// Prefix of this binary's namespaces; no other test binary uses it, so that each clears only
/// its own leftovers (see [`require_kernel`]).
const NETNS_PREFIX: &str = "nfe-prom";

const PINGS: u32 = 9;
const EXPORTER_ADDRESS: &str = "127.0.0.1:9455";
const PROMETHEUS_ADDRESS: &str = "127.0.0.1:9090";

#[test]
fn prometheus_scrapes_exact_rule_counters() {
    if !require_kernel(NETNS_PREFIX) || !require_command("prometheus") {
        return;
    }
    let ns = Netns::new(NETNS_PREFIX);
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
    let mut prometheus_command = ns.command("prometheus");
    prometheus_command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={PROMETHEUS_ADDRESS}"));
    let mut prometheus = ns.spawn(prometheus_command, &dir.path().join("prometheus.log"));

    let query = "iptables_rule_packets_total{table=\"filter\",chain=\"INPUT\",job=\"netfilter\"}";
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        prometheus.assert_running();
        let answer = ns.try_curl(&[
            "--get",
            "--data-urlencode",
            &format!("query={query}"),
            &format!("http://{PROMETHEUS_ADDRESS}/api/v1/query"),
        ]);
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
