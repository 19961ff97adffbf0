//! The audit against real iptables and ip6tables: Docker- and kube-proxy-like rulesets
//! loaded into a namespace, allowlists that allow most of them, and the exact lines left
//! unexpected, after a rule is added and after it is removed; the exit codes of `--once`,
//! the lines cross-checked with what `iptables -S` itself prints, and the long-running
//! check logging each unexpected rule once when it appears and once when it goes.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::common::{EXPORTER, Exposition, FakePath, Process, free_port, peak_rss_kib};
use crate::harness::{Bpffs, Netns, output_within, require_command, require_kernel, wait_until};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "audit";

const GLOBAL4: &str = "^-P [A-Z]+ ACCEPT$\n^-N (DOCKER|KUBE-)\n";
const FILTER4: &str = "^-A FORWARD -j DOCKER-
^-A FORWARD (-i|-o) (docker0|br-[0-9a-f]+) 
^-A DOCKER

-m comment --comment \"kubernetes [a-z -]+\" -j KUBE-
^-A KUBE-
";
const NAT4: &str = "-m addrtype --dst-type LOCAL -j DOCKER$
^-A POSTROUTING -s 172\\.1[78]\\.0\\.0/16 ! -o [a-z0-9-]+ -j MASQUERADE$
^-A DOCKER 
^-A KUBE-
-j KUBE-(SERVICES|POSTROUTING)$
";
const GLOBAL6: &str = "^-P [A-Z]+ ACCEPT$\n";
const FILTER6: &str = "^-A INPUT -i lo -j ACCEPT$
RELATED,ESTABLISHED -j ACCEPT$
^-N (icmp6|services)$
^-A icmp6 
^-A INPUT -p ipv6-icmp -j icmp6$
^-A services .*--dport (443|22) 
";

/// The lines the allowlists leave unexpected in the loaded rulesets.
const UNEXPECTED: [&str; 9] = [
    "ipv4 filter -A INPUT -j KUBE-FIREWALL",
    "ipv4 filter -A OUTPUT -j KUBE-FIREWALL",
    "ipv4 nat -A POSTROUTING -s 172.17.0.2/32 -d 172.17.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE",
    "ipv6 filter -P INPUT DROP",
    "ipv6 filter -P FORWARD DROP",
    "ipv6 filter -A INPUT -m conntrack --ctstate INVALID -j DROP",
    "ipv6 filter -A INPUT -m rt --rt-type 0 -j DROP",
    "ipv6 filter -A INPUT -j services",
    "ipv6 filter -A services -p udp -m multiport --dports 53,123 -j ACCEPT",
];

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).expect("fixture")
}

/// A namespace holding Docker's and kube-proxy's IPv4 rules and a host's IPv6 firewall.
fn loaded_namespace() -> Netns {
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &fixture("docker.input"));
    // Both rulesets share tables: the second is added to the first, not in its place.
    let kube = ns.output(
        "iptables-restore",
        &["--noflush"],
        &fixture("kube-proxy.input"),
    );
    assert!(kube.status.success(), "{kube:?}");
    ns.restore("ip6tables-restore", &fixture("ipv6.input"));
    ns
}

/// Allowlist directories for IPv4 and IPv6 (tables without a file have no patterns).
struct Allowlists {
    dir: tempfile::TempDir,
}

impl Allowlists {
    fn new() -> Allowlists {
        let dir = tempfile::tempdir().expect("tempdir");
        for (sub, name, text) in [
            ("v4", "global", GLOBAL4),
            ("v4", "filter", FILTER4),
            ("v4", "nat", NAT4),
            ("v6", "global", GLOBAL6),
            ("v6", "filter", FILTER6),
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
            std::fs::write(dir.path().join(sub).join(name), text).expect("write pattern file");
        }
        Allowlists { dir }
    }

    fn v4(&self) -> String {
        self.dir.path().join("v4").display().to_string()
    }

    fn v6(&self) -> String {
        self.dir.path().join("v6").display().to_string()
    }
}

/// `audit --once` with the original's spellings of the flags, plus `extra`.
fn once(ns: &Netns, lists: &Allowlists, extra: &[&str]) -> Output {
    let input = format!("-input={}", lists.v4());
    let input6 = format!("-input6={}", lists.v6());
    let mut command = ns.exporter(&["audit", &input, &input6, "-ipv6=true", "--once"]);
    command.args(extra);
    output_within(command, Duration::from_secs(60))
}

/// The unexpected lines `--once` printed, and its exit code.
fn findings(output: &Output) -> (BTreeSet<String>, Option<i32>) {
    let stdout = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    (
        stdout.lines().map(str::to_owned).collect(),
        output.status.code(),
    )
}

fn expected(extra: &[&str]) -> BTreeSet<String> {
    UNEXPECTED
        .iter()
        .chain(extra)
        .map(|l| (*l).to_owned())
        .collect()
}

#[test]
fn unexpected_lines_follow_the_live_rules() {
    if !(require_kernel() && require_command("ip6tables-restore")) {
        return;
    }
    let ns = loaded_namespace();
    let lists = Allowlists::new();
    assert_eq!(findings(&once(&ns, &lists, &[])), (expected(&[]), Some(1)));

    ns.run(
        "iptables",
        &[
            "-t",
            "mangle",
            "-A",
            "PREROUTING",
            "-p",
            "udp",
            "--dport",
            "53",
            "-j",
            "MARK",
            "--set-mark",
            "1",
        ],
    );
    ns.run(
        "ip6tables",
        &["-I", "INPUT", "1", "-s", "2001:db8::1/128", "-j", "DROP"],
    );
    let added = [
        "ipv4 mangle -A PREROUTING -p udp -m udp --dport 53 -j MARK --set-xmark 0x1/0xffffffff",
        "ipv6 filter -A INPUT -s 2001:db8::1/128 -j DROP",
    ];
    assert_eq!(
        findings(&once(&ns, &lists, &[])),
        (expected(&added), Some(1))
    );

    ns.run("iptables", &["-t", "mangle", "-F", "PREROUTING"]);
    ns.run("ip6tables", &["-D", "INPUT", "1"]);
    assert_eq!(findings(&once(&ns, &lists, &[])), (expected(&[]), Some(1)));

    // The same lines as JSON, per family and table.
    let json = once(&ns, &lists, &["--output", "json"]);
    assert_eq!(json.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(value["verdict"], "unexpected");
    assert_eq!(value["families"][1]["family"], "ipv6");
    assert_eq!(value["families"][1]["tables"][0]["table"], "filter");
    assert_eq!(
        value["families"][1]["tables"][0]["unexpected"]
            .as_array()
            .map(Vec::len),
        Some(6)
    );
}

/// The lines the audit derives from the dump are the lines `iptables -S` prints: the
/// allowlists applied to real `iptables -t TABLE -S` output give the same findings.
#[test]
fn lines_are_what_iptables_s_prints() {
    if !(require_kernel() && require_command("ip6tables-restore")) {
        return;
    }
    let ns = loaded_namespace();
    let lists = Allowlists::new();
    let (ours, _) = findings(&once(&ns, &lists, &[]));
    let patterns = |text: &str| -> Vec<regex::Regex> {
        text.lines()
            .filter(|l| !l.is_empty())
            .map(|l| regex::Regex::new(l).expect("pattern"))
            .collect()
    };
    let mut theirs = BTreeSet::new();
    for (family, iptables, global, tables) in [
        (
            "ipv4",
            "iptables",
            GLOBAL4,
            &[("filter", FILTER4), ("nat", NAT4), ("mangle", "")][..],
        ),
        ("ipv6", "ip6tables", GLOBAL6, &[("filter", FILTER6)][..]),
    ] {
        for (table, own) in tables {
            let allowed: Vec<_> = patterns(global).into_iter().chain(patterns(own)).collect();
            for line in ns.run(iptables, &["-t", table, "-S"]).lines() {
                if !allowed.iter().any(|re| re.is_match(line)) {
                    theirs.insert(format!("{family} {table} {line}"));
                }
            }
        }
    }
    assert_eq!(ours, theirs);
}

#[test]
fn exit_codes_of_once() {
    if !(require_kernel() && require_command("ip6tables-restore")) {
        return;
    }
    let ns = loaded_namespace();
    let lists = Allowlists::new();

    // Everything allowed: clean.
    let all = tempfile::tempdir().expect("tempdir");
    std::fs::write(all.path().join("global"), ".\n").expect("write");
    let all = all.path().display().to_string();
    let clean = once(&ns, &lists, &["-input", &all, "-input6", &all]);
    assert_eq!(findings(&clean), (BTreeSet::new(), Some(0)));

    // An invalid pattern is an error naming its file and line.
    let bad = tempfile::tempdir().expect("tempdir");
    std::fs::write(bad.path().join("nat"), "^-A POSTROUTING\n\n(\n").expect("write");
    let bad_dir = bad.path().display().to_string();
    let invalid = once(&ns, &lists, &["-input", &bad_dir]);
    assert_eq!(invalid.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&invalid.stdout);
    assert!(
        stdout.contains(&format!("{bad_dir}/nat:3: invalid pattern")),
        "{stdout}"
    );
    // Also on standard error, in full, for a report sent to a file.
    let stderr = String::from_utf8_lossy(&invalid.stderr);
    assert!(
        stderr.contains(&format!("ipv4: {bad_dir}/nat:3: invalid pattern: "))
            && stderr.lines().count() > 1,
        "{stderr}"
    );

    // A ruleset that cannot be listed fails the check, though IPv4 is clean: a rule
    // whose text is not decoded from netlink (u32) needs ip6tables, which fails.
    ns.run("ip6tables", &["-N", "UNDECODED"]);
    ns.run(
        "ip6tables",
        &["-A", "UNDECODED", "-m", "u32", "--u32", "0&0xFFFF=0x100"],
    );
    let broken = FakePath::new()
        .script(
            "ip6tables-save",
            "echo 'cannot talk to the kernel' >&2; exit 4",
        )
        .script("ip6tables", "echo 'cannot talk to the kernel' >&2; exit 4");
    let mut command = ns.exporter(&[
        "audit", "--once", "--ipv6", "--input", &all, "--input6", &all,
    ]);
    command.env("PATH", broken.before_path());
    let failed = output_within(command, Duration::from_secs(60));
    assert_eq!(failed.status.code(), Some(2), "{failed:?}");
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(
        stdout.contains("ipv6 error: cannot list the tables: ip6tables-save")
            && stdout.contains("cannot talk to the kernel"),
        "{stdout}"
    );
    ns.run("ip6tables", &["-F", "UNDECODED"]);
    ns.run("ip6tables", &["-X", "UNDECODED"]);

    // Saved files, offline: the same findings as the live rules.
    let saved4 = ns.run("iptables-save", &[]);
    let saved6 = ns.run("ip6tables-save", &[]);
    let files = tempfile::tempdir().expect("tempdir");
    let (f4, f6) = (files.path().join("v4.rules"), files.path().join("v6.rules"));
    std::fs::write(&f4, saved4).expect("write");
    std::fs::write(&f6, saved6).expect("write");
    let mut offline = std::process::Command::new(EXPORTER);
    offline.args(["audit", "--input", &lists.v4(), "--input6", &lists.v6()]);
    offline
        .arg("--rules-file")
        .arg(&f4)
        .arg("--rules-file6")
        .arg(&f6);
    assert_eq!(
        findings(&output_within(offline, Duration::from_secs(60))),
        (expected(&[]), Some(1))
    );
}

/// Log lines (JSON) of the running audit with `message`, as (rule, count).
fn logged(log: &str, message: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|v| v["fields"]["message"] == message)
        .map(|v| {
            format!(
                "{} {} {}",
                v["fields"]["family"].as_str().unwrap_or(""),
                v["fields"]["table"].as_str().unwrap_or(""),
                v["fields"]["rule"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn the_running_audit_logs_each_change_once_and_serves_metrics() {
    if !(require_kernel() && require_command("ip6tables-restore") && require_command("curl")) {
        return;
    }
    let ns = loaded_namespace();
    let lists = Allowlists::new();
    let logs = tempfile::tempdir().expect("tempdir");
    let input = format!("-input={}", lists.v4());
    let input6 = format!("-input6={}", lists.v6());
    let command = ns.exporter(&[
        "--log.format",
        "json",
        "audit",
        &input,
        &input6,
        "-ipv6",
        "-interval=1",
        "--web.listen-address",
        "127.0.0.1:9466",
    ]);
    let mut audit = ns.spawn(command, &logs.path().join("audit.log"));
    let appeared = |p: &Process| logged(&p.log(), "unexpected rule appeared");
    assert!(
        wait_until(Duration::from_secs(30), || appeared(&audit).len()
            == UNEXPECTED.len()),
        "{}",
        audit.log()
    );
    let first: BTreeSet<String> = appeared(&audit).into_iter().collect();
    assert_eq!(first, expected(&[]));
    // A SIGHUP (a closed terminal) does not end the running audit.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &audit.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(hup.success());

    ns.run(
        "iptables",
        &[
            "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
        ],
    );
    let added = "ipv4 filter -A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT";
    assert!(
        wait_until(Duration::from_secs(30), || appeared(&audit)
            .iter()
            .any(|l| l == added)),
        "{}",
        audit.log()
    );
    let metrics = ns.curl(&["http://127.0.0.1:9466/metrics"]);
    assert!(
        metrics.contains("netfilter_audit_unexpected_rules{family=\"ipv4\",table=\"filter\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netfilter_audit_unexpected_rules{family=\"ipv6\",table=\"filter\"} 6\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("netfilter_audit_check_success 1\n"),
        "{metrics}"
    );

    ns.run(
        "iptables",
        &[
            "-D", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
        ],
    );
    let gone = |p: &Process| logged(&p.log(), "unexpected rule gone");
    assert!(
        wait_until(Duration::from_secs(30), || gone(&audit).len() == 1),
        "{}",
        audit.log()
    );
    assert_eq!(gone(&audit), [added]);
    // Further checks find nothing new to say.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        appeared(&audit).len(),
        UNEXPECTED.len() + 1,
        "{}",
        audit.log()
    );
    assert_eq!(gone(&audit).len(), 1, "{}", audit.log());
    audit.assert_running();
    assert!(
        audit
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

/// The running audit's server takes `--web.config.file` as serve's does: with basic
/// authentication, a scrape without the password is refused with 401 and one with it
/// answered; `--web.config.file` goes before the mode too.
#[test]
fn the_audits_server_takes_the_web_config_file() {
    if !(require_kernel() && require_command("curl")) {
        return;
    }
    let ns = loaded_namespace();
    let lists = Allowlists::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let web_config = dir.path().join("web.yml");
    let hash = bcrypt::hash("audit secret", 4).expect("hash");
    std::fs::write(
        &web_config,
        format!("basic_auth_users:\n  prometheus: {hash}\n"),
    )
    .expect("write the web config");
    let web_config = format!("--web.config.file={}", web_config.display());
    let input = format!("-input={}", lists.v4());
    let command = ns.exporter(&[
        &web_config,
        "audit",
        &input,
        "-interval=1",
        "--web.listen-address",
        "127.0.0.1:9468",
    ]);
    let mut audit = ns.spawn(command, &dir.path().join("audit.log"));
    let url = "http://127.0.0.1:9468/metrics";
    let code = |extra: &[&str]| {
        let args = [&["-o", "/dev/null", "-w", "%{http_code}"], extra, &[url]].concat();
        ns.try_curl(&args)
    };
    assert!(
        wait_until(Duration::from_secs(30), || code(&[]).as_deref()
            == Some("401")),
        "{:?}: {}",
        code(&[]),
        audit.log()
    );
    assert_eq!(
        code(&["-u", "prometheus:wrong"]).as_deref(),
        Some("401"),
        "{}",
        audit.log()
    );
    let metrics = |p: &str| ns.try_curl(&["-u", p, url]).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || metrics(
            "prometheus:audit secret"
        )
        .contains("netfilter_audit_check_success 1\n")),
        "{}\n{}",
        metrics("prometheus:audit secret"),
        audit.log()
    );
    audit.assert_running();
    assert!(
        audit
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn terminate_on_success_exits_once_clean() {
    if !require_kernel() {
        return;
    }
    let ns = loaded_namespace();
    let all = tempfile::tempdir().expect("tempdir");
    let input = format!("-input={}", all.path().display());
    // No pattern at all yet: the check finds every line unexpected and goes on.
    let command = ns.exporter(&["audit", &input, "-interval=1", "-terminateOnSuccess"]);
    let logs = tempfile::tempdir().expect("tempdir");
    let mut audit = ns.spawn(command, &logs.path().join("audit.log"));
    std::thread::sleep(Duration::from_millis(1500));
    audit.assert_running();
    std::fs::write(all.path().join("global"), ".\n").expect("write");
    let status = audit.wait(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        audit.log()
    );
}

#[test]
fn the_pinned_bpf_map_is_read_every_check() {
    if !(require_kernel() && require_command("bpftool") && require_command("curl")) {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    let bpffs = Bpffs::mount();
    let map = bpffs.array_map("iptables_block_event_counter");
    bpffs.set(&map, 0, 5);
    bpffs.set(&map, 1, 11);
    let all = tempfile::tempdir().expect("tempdir");
    std::fs::write(all.path().join("global"), ".\n").expect("write");
    let input = format!("-input={}", all.path().display());
    let map_path = format!("-mapPath={}", map.display());

    // --once: the values in JSON, and a missing map does not fail the check.
    let mut command = ns.exporter(&[
        "audit",
        "--once",
        "--output",
        "json",
        &input,
        "-checkMap=true",
        &map_path,
    ]);
    let output = output_within(command, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        value["bpf_map"],
        serde_json::json!({"blocked": 5, "allowed": 11})
    );
    command = ns.exporter(&[
        "audit",
        "--once",
        "--output",
        "json",
        &input,
        "-checkMap",
        "-mapPath=/nonexistent/map",
    ]);
    let output = output_within(command, Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(
        value["bpf_map"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("/nonexistent/map")),
        "{value}"
    );

    // Running: the blocks before the start are the baseline, a rise is logged once.
    let logs = tempfile::tempdir().expect("tempdir");
    let command = ns.exporter(&[
        "--log.format",
        "json",
        "audit",
        &input,
        "-checkMap",
        &map_path,
        "-interval=1",
        "--web.listen-address",
        "127.0.0.1:9467",
    ]);
    let mut audit = ns.spawn(command, &logs.path().join("audit.log"));
    let metric = |value: u64| format!("netfilter_audit_bpf_blocked_attempts_total {value}\n");
    let served = |text: &str| {
        ns.try_curl(&["http://127.0.0.1:9467/metrics"])
            .is_some_and(|m| m.contains(text))
    };
    assert!(
        wait_until(Duration::from_secs(30), || served(&metric(5))),
        "{}",
        audit.log()
    );
    let rises = |p: &Process| -> Vec<u64> {
        p.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|v| v["fields"]["rise"].as_u64())
            .collect()
    };
    assert!(rises(&audit).is_empty(), "{}", audit.log());
    bpffs.set(&map, 0, 8);
    assert!(
        wait_until(Duration::from_secs(30), || served(&metric(8))),
        "{}",
        audit.log()
    );
    assert!(
        wait_until(Duration::from_secs(5), || !rises(&audit).is_empty()),
        "{}",
        audit.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(rises(&audit), [3], "{}", audit.log());
    assert!(served("netfilter_audit_bpf_allowed_attempts_total 11\n"));
    audit.assert_running();
}

#[test]
fn serve_runs_the_audit_and_serves_its_metrics_with_the_exporters() {
    if !(require_kernel() && require_command("ip6tables-restore") && require_command("curl")) {
        return;
    }
    let ns = loaded_namespace();
    let lists = Allowlists::new();
    let logs = tempfile::tempdir().expect("tempdir");
    let (v4, v6) = (lists.v4(), lists.v6());
    let mut command = ns.exporter(&[
        "--log.format",
        "json",
        "--web.listen-address",
        "127.0.0.1:9467",
        "--audit.input",
        &v4,
        "--audit.input6",
        &v6,
        "--audit.ipv6",
        "--audit.interval",
        "1",
    ]);
    // Without a node name Kubernetes is not told (the client has its own tests).
    command.env_remove("NODE_NAME");
    let mut serve = ns.spawn(command, &logs.path().join("serve.log"));
    ns.wait_for_http("http://127.0.0.1:9467/metrics", Duration::from_secs(30));
    let scrape = || Exposition::parse(&ns.curl(&["http://127.0.0.1:9467/metrics"]));
    let unexpected = |metrics: &Exposition, family: &str, table: &str| {
        metrics
            .find(
                "netfilter_audit_unexpected_rules",
                &[("family", family), ("table", table)],
            )
            .first()
            .map(|s| s.value)
    };
    let mut metrics = scrape();
    assert!(
        wait_until(Duration::from_secs(30), || {
            metrics = scrape();
            unexpected(&metrics, "ipv4", "filter").is_some()
        }),
        "{}",
        serve.log()
    );
    assert_eq!(unexpected(&metrics, "ipv4", "filter"), Some(2.0));
    assert_eq!(unexpected(&metrics, "ipv4", "nat"), Some(1.0));
    assert_eq!(unexpected(&metrics, "ipv6", "filter"), Some(6.0));
    assert_eq!(metrics.value("netfilter_audit_check_success", &[]), 1.0);
    // The exporter's own families are in the same exposition.
    assert_eq!(metrics.value("iptables_scrape_success", &[]), 1.0);

    // A rule added is counted at a later check, the exporter serving all along.
    ns.run(
        "iptables",
        &[
            "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "ACCEPT",
        ],
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            unexpected(&scrape(), "ipv4", "filter") == Some(3.0)
        }),
        "{}",
        serve.log()
    );
    let appeared = logged(&serve.log(), "unexpected rule appeared");
    assert!(
        appeared
            .iter()
            .any(|l| l == "ipv4 filter -A INPUT -p tcp -m tcp --dport 8080 -j ACCEPT"),
        "{appeared:?}"
    );
    serve.assert_running();
    assert!(
        serve
            .terminate(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn native_nftables_chains_are_checked_against_the_nftables_file() {
    if !(require_kernel() && require_command("nft")) {
        return;
    }
    let ns = loaded_namespace();
    let load = |ruleset: &str| {
        let out = ns.output("nft", &["-f", "-"], ruleset);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    load(
        "table inet firewall {\n chain input {\n  type filter hook input priority 0;\n }\n chain allowed {\n }\n}\n",
    );
    let lists = Allowlists::new();
    std::fs::write(
        Path::new(&lists.v4()).join("nftables"),
        "^inet firewall input$\n",
    )
    .expect("write");
    // Only with --nftables: the original's check stays what it was.
    let (without, _) = findings(&once(&ns, &lists, &[]));
    assert_eq!(without, expected(&[]));
    let (lines, code) = findings(&once(&ns, &lists, &["--nftables"]));
    assert_eq!(
        lines,
        expected(&["nftables inet firewall inet firewall allowed"])
    );
    assert_eq!(code, Some(1));
    // A chain added where the original would never look is found; a table too.
    load("add chain inet firewall sneaky\nadd table ip6 empty\n");
    let (lines, _) = findings(&once(&ns, &lists, &["--nftables"]));
    assert_eq!(
        lines,
        expected(&[
            "nftables inet firewall inet firewall allowed",
            "nftables inet firewall inet firewall sneaky",
            "nftables ip6 empty ip6 empty",
        ])
    );
    // iptables-nft's own tables are the iptables families' business, not listed twice.
    assert!(
        !lines.iter().any(|l| l.starts_with("nftables ip filter")),
        "{lines:?}"
    );
    // Its findings have a family of their own.
    let json = once(&ns, &lists, &["--nftables", "--output", "json"]);
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    let scopes: Vec<&str> = value["families"]
        .as_array()
        .expect("families")
        .iter()
        .filter_map(|f| f["family"].as_str())
        .collect();
    assert_eq!(scopes, ["ipv4", "ipv6", "nftables"]);
}

/// Patterns that are small as text and, with Unicode classes, huge once compiled: read as
/// Go reads them (ASCII `\w`), the allowlist costs little memory in the running audit, and
/// a pattern or an allowlist that still compiles too large is refused naming file and line.
#[test]
fn hostile_allowlists_are_compiled_within_bounds() {
    if !require_kernel() {
        return;
    }
    let ns = loaded_namespace();
    let lists = tempfile::tempdir().expect("tempdir");
    std::fs::write(lists.path().join("filter"), "\\w{50}\n".repeat(2_000)).expect("write");
    let rules = tempfile::NamedTempFile::new().expect("rules file");
    std::fs::write(rules.path(), fixture("docker.input")).expect("write");
    let logs = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let input = format!("--input={}", lists.path().display());
    let address = format!("127.0.0.1:{port}");
    let command = ns.exporter(&[
        "--log.format",
        "json",
        "audit",
        &input,
        "--interval",
        "3600",
        "--web.listen-address",
        &address,
    ]);
    let mut audit = ns.spawn(command, &logs.path().join("audit.log"));
    let checked = |p: &Process| !logged(&p.log(), "unexpected rule appeared").is_empty();
    assert!(
        wait_until(Duration::from_secs(60), || checked(&audit)),
        "{}",
        audit.log()
    );
    let peak = peak_rss_kib(audit.id());
    assert!(peak < 200 * 1024, "peak RSS {peak} KiB");
    audit.assert_running();

    let refused = |text: &str| {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("nat"), text).expect("write");
        let mut command = std::process::Command::new(EXPORTER);
        command
            .args(["audit", "--once", "--input"])
            .arg(dir.path())
            .arg("--rules-file")
            .arg(rules.path());
        let output = output_within(command, Duration::from_secs(60));
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        (dir.path().display().to_string(), stdout)
    };
    let (dir, stdout) = refused("^-A POSTROUTING\n\\pL{100}\n");
    assert!(
        stdout.contains(&format!("{dir}/nat:2: pattern compiles to more than")),
        "{stdout}"
    );
    let (dir, stdout) = refused(&"\\pL{20}\n".repeat(100));
    assert!(
        stdout.contains(&format!("{dir}/nat:"))
            && stdout.contains("the allowlist's patterns compile to more than"),
        "{stdout}"
    );
}
