//! The exporter against real netfilter: each test loads rules into its own network
//! namespace, sends a known number of packets of a known size through them, and asserts the
//! exact counters the exporter reports (dump, textfile and HTTP), plus its behaviour when a
//! dump command is broken, missing or hangs.

use std::time::{Duration, Instant};

use crate::common::{Exposition, FakePath, Process};
use crate::harness::{
    Ip, Netns, cannot_run, output_within, require_command, require_kernel, run_capture, which,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "netns";

/// Pings per test.
const PINGS: u64 = 7;
/// Payload bytes per ping.
const PAYLOAD: u64 = 100;

/// A filter table whose INPUT counts echo requests (jumping to a user chain that accepts
/// them) and echo replies (falling through to the policy), both under one comment, and a
/// rule-less raw table whose policies count every packet.
fn ruleset(ip: Ip) -> String {
    let icmp = match ip {
        Ip::V4 => "-p icmp --icmp-type",
        Ip::V6 => "-p ipv6-icmp --icmpv6-type",
    };
    format!(
        "*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:PINGS - [0:0]
-A INPUT {icmp} echo-request -m comment --comment \"icmp\" -j PINGS
-A INPUT {icmp} echo-reply -m comment --comment \"icmp\"
-A PINGS -m comment --comment \"ping in\" -j ACCEPT
COMMIT
"
    )
}

/// What else went through the namespace's loopback besides the pings.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// Nothing: every counter is exact.
    PingsOnly,
    /// HTTP scrapes too, which the INPUT and raw policies also count; the rules match ICMP
    /// only and stay exact.
    WithHttp,
}

/// Asserts the counters that [`ruleset`] must show after [`PINGS`] pings of [`PAYLOAD`]
/// bytes, in the families prefixed `prefix`.
fn assert_counters(metrics: &Exposition, prefix: &str, ip: Ip, traffic: Traffic) {
    let name = |suffix: &str| format!("{prefix}_{suffix}");
    let n = PINGS as f64;
    let per_packet = ip.echo_bytes(PAYLOAD) as f64;
    let input = [("table", "filter"), ("chain", "INPUT")];
    let pings = [("table", "filter"), ("chain", "PINGS")];

    // Rules: one series per rule text, without the comment match.
    let requests: Vec<_> = metrics
        .find(&name("rule_packets_total"), &input)
        .into_iter()
        .filter(|s| s.labels["rule"].contains("-j PINGS"))
        .collect();
    assert_eq!(requests.len(), 1, "{}", metrics.text);
    let request_rule = requests[0].labels["rule"].as_str();
    assert!(!request_rule.contains("comment"), "{request_rule}");
    assert!(!request_rule.starts_with("-A"), "{request_rule}");
    assert_eq!(requests[0].value, n);
    let request = [
        ("table", "filter"),
        ("chain", "INPUT"),
        ("rule", request_rule),
    ];
    assert_eq!(
        metrics.value(&name("rule_bytes_total"), &request),
        n * per_packet
    );
    assert_eq!(
        metrics.sum(&name("rule_packets_total"), &input),
        2.0 * n,
        "requests and replies"
    );
    assert_eq!(
        metrics.value(
            &name("rule_packets_total"),
            &[
                ("table", "filter"),
                ("chain", "PINGS"),
                ("rule", "-j ACCEPT")
            ]
        ),
        n
    );

    // Chain policies: replies fall through INPUT; raw sees requests and replies.
    let policy = |table: &str, chain: &str, policy: &str, suffix: &str| {
        metrics.value(
            &name(suffix),
            &[("table", table), ("chain", chain), ("policy", policy)],
        )
    };
    if traffic == Traffic::PingsOnly {
        assert_eq!(
            policy("filter", "INPUT", "ACCEPT", "chain_packets_total"),
            n
        );
        assert_eq!(
            policy("filter", "INPUT", "ACCEPT", "chain_bytes_total"),
            n * per_packet
        );
        assert_eq!(
            policy("raw", "PREROUTING", "ACCEPT", "chain_packets_total"),
            2.0 * n
        );
        assert_eq!(
            policy("raw", "PREROUTING", "ACCEPT", "chain_bytes_total"),
            2.0 * n * per_packet
        );
    }
    assert_eq!(
        policy("filter", "FORWARD", "DROP", "chain_packets_total"),
        0.0
    );
    assert_eq!(policy("filter", "PINGS", "-", "chain_packets_total"), 0.0);

    // Comments: both INPUT rules carry "icmp" and are summed.
    let comment = |chain: &str, comment: &str, suffix: &str| {
        metrics.value(
            &name(suffix),
            &[("table", "filter"), ("chain", chain), ("comment", comment)],
        )
    };
    assert_eq!(comment("INPUT", "icmp", "comment_packets_total"), 2.0 * n);
    assert_eq!(
        comment("INPUT", "icmp", "comment_bytes_total"),
        2.0 * n * per_packet
    );
    assert_eq!(comment("PINGS", "ping in", "comment_packets_total"), n);

    // Counts.
    assert_eq!(metrics.value(&name("rules_total"), &input), 2.0);
    assert_eq!(metrics.value(&name("rules_total"), &pings), 1.0);
    assert_eq!(
        metrics.value(
            &name("rules_total"),
            &[("table", "raw"), ("chain", "OUTPUT")]
        ),
        0.0
    );
    assert_eq!(
        metrics.value(&name("chains_total"), &[("table", "filter")]),
        4.0
    );
    assert_eq!(
        metrics.value(&name("chains_total"), &[("table", "raw")]),
        2.0
    );
    assert_eq!(metrics.value(&name("scrape_success"), &[]), 1.0);
}

/// Loads [`ruleset`] with `restore`, pings, dumps `target` and checks every counter.
fn counters_case(restore: &str, target: &str, prefix: &str, ip: Ip) {
    let ns = Netns::new(NETNS_LABEL);
    ns.restore(restore, &ruleset(ip));
    ns.ping(ip, PINGS as u32, PAYLOAD as u32);
    let metrics = ns.dump_ok(&["-t", target]);
    assert_counters(&metrics, prefix, ip, Traffic::PingsOnly);
    assert_eq!(
        metrics.value(
            "netfilter_exporter_collection_success",
            &[("source", target)]
        ),
        1.0
    );
    assert_eq!(
        metrics.value("netfilter_exporter_rules", &[("source", target)]),
        3.0
    );
}

#[test]
fn ipv4_nf_tables_counters_are_exact() {
    if !require_kernel() {
        return;
    }
    counters_case("iptables-restore", "iptables", "iptables", Ip::V4);
}

#[test]
fn ipv6_nf_tables_counters_are_exact() {
    if !require_kernel() {
        return;
    }
    counters_case("ip6tables-restore", "ip6tables", "ip6tables", Ip::V6);
}

#[test]
fn ipv4_legacy_counters_are_exact() {
    if !require_kernel() {
        return;
    }
    {
        let probe = Netns::new(NETNS_LABEL);
        if !probe.succeeds("iptables-legacy", &["-w", "-L", "-n"])
            && !cannot_run("iptables-legacy does not work in a namespace")
        {
            return;
        }
    }
    counters_case(
        "iptables-legacy-restore",
        "iptables-legacy",
        "iptables_legacy",
        Ip::V4,
    );
}

#[test]
fn a_line_the_parser_does_not_understand_loses_nothing_else() {
    if !require_kernel() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    ns.ping(Ip::V4, PINGS as u32, PAYLOAD as u32);
    let real = which("iptables-save").expect("iptables-save is installed");
    let fake = FakePath::save_command(&format!(
        "set -e\nout=$({} \"$@\")\nprintf '%s\\n' \"$out\" | sed '/^\\*filter$/a this line is garbage'",
        real.display()
    ));
    let mut command = ns.exporter(&["dump", "-t", "iptables"]);
    command.env("PATH", fake.before_path());
    let output = output_within(command, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    let metrics = Exposition::parse(&stdout);
    assert_eq!(
        metrics.value(
            "netfilter_exporter_unparsed_lines",
            &[("source", "iptables")]
        ),
        1.0
    );
    assert_counters(&metrics, "iptables", Ip::V4, Traffic::PingsOnly);
}

#[test]
fn a_comment_that_is_not_utf8_loses_nothing_else() {
    use std::os::unix::ffi::OsStrExt;

    if !require_kernel() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    // The byte \xe9 alone (Latin-1 é) is not UTF-8; iptables stores and prints it as it is.
    let mut add = ns.command("iptables");
    add.args(["-A", "INPUT", "-m", "comment", "--comment"])
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .args(["-j", "ACCEPT"]);
    run_capture(&mut add).expect("add the rule");
    ns.ping(Ip::V4, PINGS as u32, PAYLOAD as u32);
    let metrics = ns.dump_ok(&["-t", "iptables"]);
    assert_eq!(
        metrics.value(
            "iptables_comment_packets_total",
            &[
                ("table", "filter"),
                ("chain", "INPUT"),
                ("comment", "caf\u{FFFD}")
            ]
        ),
        PINGS as f64,
        "the echo replies fall through to the new rule"
    );
    assert_eq!(
        metrics.value(
            "netfilter_exporter_invalid_utf8_lines",
            &[("source", "iptables")]
        ),
        1.0
    );
    assert_eq!(
        metrics.value(
            "netfilter_exporter_collection_success",
            &[("source", "iptables")]
        ),
        1.0
    );
    // The rules before it are still exported exactly.
    assert_eq!(
        metrics.value(
            "iptables_comment_packets_total",
            &[("table", "filter"), ("chain", "INPUT"), ("comment", "icmp")]
        ),
        2.0 * PINGS as f64
    );
}

#[test]
fn a_missing_dump_command_fails_only_its_source() {
    if !require_kernel() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    // A PATH of one empty directory: no command at all.
    let empty = tempfile::tempdir().expect("temporary directory");

    // Every rule's text decoded from netlink: no command is needed.
    let mut decoded = ns.exporter(&["dump", "-t", "iptables"]);
    decoded.env("PATH", empty.path());
    let output = output_within(decoded, Duration::from_secs(60));
    assert!(output.status.success(), "{output:?}");
    let metrics = Exposition::parse(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(
        metrics.value(
            "iptables_comment_packets_total",
            &[
                ("table", "filter"),
                ("chain", "PINGS"),
                ("comment", "ping in")
            ]
        ),
        0.0
    );

    // A rule whose text is not decoded (u32) needs iptables, which is missing.
    ns.run(
        "iptables",
        &["-A", "PINGS", "-m", "u32", "--u32", "0&0xFFFF=0x100"],
    );

    let mut explicit = ns.exporter(&["dump", "-t", "iptables"]);
    explicit.env("PATH", empty.path());
    let output = output_within(explicit, Duration::from_secs(60));
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("iptables") && stderr.contains("not found"),
        "{stderr}"
    );
    let metrics = Exposition::parse(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(metrics.value("iptables_scrape_success", &[]), 0.0);
    assert_eq!(
        metrics.value(
            "netfilter_exporter_collection_success",
            &[("source", "iptables")]
        ),
        0.0
    );
    assert!(metrics.find("iptables_rule_packets_total", &[]).is_empty());

    // Selected automatically, the source whose tables the kernel has fails all the same,
    // naming the missing command; the others have nothing to read and are left out.
    let mut auto = ns.exporter(&["dump"]);
    auto.env("PATH", empty.path());
    let output = output_within(auto, Duration::from_secs(60));
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("iptables: not found"), "{stderr}");
    let metrics = Exposition::parse(&String::from_utf8_lossy(&output.stdout));
    let sources: Vec<&str> = metrics
        .find("netfilter_exporter_collection_success", &[])
        .iter()
        .filter_map(|s| s.labels.get("source").map(String::as_str))
        .collect();
    assert_eq!(sources, ["iptables"], "{}", metrics.text);
    assert_eq!(metrics.value("iptables_scrape_success", &[]), 0.0);

    // Without tables there is nothing to miss.
    let bare = Netns::new(NETNS_LABEL);
    let mut auto = bare.exporter(&["dump"]);
    auto.env("PATH", empty.path());
    let output = output_within(auto, Duration::from_secs(60));
    assert!(output.status.success(), "{output:?}");
    let metrics = Exposition::parse(&String::from_utf8_lossy(&output.stdout));
    assert!(
        metrics
            .samples
            .iter()
            .all(|s| s.name.starts_with("netfilter_exporter_build_info")),
        "only the build info remains:\n{}",
        metrics.text
    );
}

#[test]
fn a_hanging_dump_command_times_out() {
    if !require_kernel() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    let fake = FakePath::save_command("exec sleep 600");
    let mut command = ns.exporter(&["dump", "-t", "iptables", "--collect-timeout", "1"]);
    command.env("PATH", fake.before_path());
    let output = output_within(command, Duration::from_secs(60));
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("iptables-save") && stderr.contains("no answer within 1s"),
        "{stderr}"
    );
    let metrics = Exposition::parse(&String::from_utf8_lossy(&output.stdout));
    assert_eq!(metrics.value("iptables_scrape_success", &[]), 0.0);
}

/// A namespace with the IPv4 [`ruleset`] loaded and [`PINGS`] pings counted; `None` where
/// kernel tests cannot run (outside CI).
fn pinged_ipv4() -> Option<Netns> {
    if !require_kernel() {
        return None;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    ns.ping(Ip::V4, PINGS as u32, PAYLOAD as u32);
    Some(ns)
}

/// The name of the textfile the textfile tests write.
const TEXTFILE: &str = "netfilter.prom";

/// Asserts that `dir` holds the textfile and nothing else: no temporary file left behind.
fn assert_only_textfile(dir: &std::path::Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .expect("list directory")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from(TEXTFILE)]);
}

#[test]
fn textfile_once_writes_the_dump_atomically() {
    use std::os::unix::fs::MetadataExt;

    let Some(ns) = pinged_ipv4() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(TEXTFILE);
    std::fs::write(&path, "old content\n").expect("write old file");
    let old_inode = std::fs::metadata(&path).expect("old file").ino();

    let mut command = ns.exporter(&["textfile", "--once", "-t", "iptables"]);
    command.arg(&path);
    let output = output_within(command, Duration::from_secs(60));
    assert!(output.status.success(), "{output:?}");

    // Replaced by a rename, not rewritten in place, and no temporary file left behind.
    assert_ne!(std::fs::metadata(&path).expect("new file").ino(), old_inode);
    assert_only_textfile(dir.path());

    let written = Exposition::parse(&std::fs::read_to_string(&path).expect("read textfile"));
    let dumped = ns.dump_ok(&["-t", "iptables"]);
    assert_counters(&written, "iptables", Ip::V4, Traffic::PingsOnly);
    // Same families and series as dump; only the timings differ between two runs.
    let timing = |name: &str| name.contains("duration") || name.contains("timestamp");
    let series = |e: &Exposition| -> Vec<_> {
        e.samples
            .iter()
            .filter(|s| !timing(&s.name))
            .cloned()
            .collect()
    };
    assert_eq!(series(&written), series(&dumped));
    assert_eq!(written.types(), dumped.types());
}

#[test]
fn textfile_rewrites_the_file_after_every_collection_until_stopped() {
    let Some(ns) = pinged_ipv4() else {
        return;
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join(TEXTFILE);
    let log_dir = tempfile::tempdir().expect("temporary directory");
    let mut command = ns.exporter(&["textfile", "-t", "iptables", "--collect-interval", "0.2"]);
    command.arg(&path);
    let mut process = ns.spawn(command, &log_dir.path().join("exporter.log"));

    // Read whenever it is there: a reader never sees a half-written file.
    let read_until = |process: &mut Process, done: &dyn Fn(&Exposition) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            process.assert_running();
            if let Ok(text) = std::fs::read_to_string(&path) {
                assert!(text.ends_with('\n'), "torn file:\n{text}");
                let written = Exposition::parse(&text);
                if done(&written) {
                    return written;
                }
            }
            assert!(Instant::now() < deadline, "{}", process.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let pings = |m: &Exposition| {
        m.find(
            "iptables_comment_packets_total",
            &[("chain", "INPUT"), ("comment", "icmp")],
        )
        .first()
        .map(|s| s.value)
    };
    let first = read_until(&mut process, &|m| pings(m).is_some());
    assert_counters(&first, "iptables", Ip::V4, Traffic::PingsOnly);

    ns.ping(Ip::V4, PINGS as u32, PAYLOAD as u32);
    let second = read_until(&mut process, &|m| {
        pings(m).is_some_and(|n| n > PINGS as f64)
    });
    assert_eq!(pings(&second), Some(2.0 * PINGS as f64), "{}", second.text);

    let status = process.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        process.log()
    );
    assert_only_textfile(dir.path());
}

/// The exporter serving HTTP inside a namespace, on the namespace's own 127.0.0.1.
struct Server {
    process: Process,
    base: String,
    _log_dir: tempfile::TempDir,
}

impl Server {
    fn start(ns: &Netns, extra: &[&str]) -> Server {
        let address = "127.0.0.1:9455";
        let log_dir = tempfile::tempdir().expect("temporary directory");
        let mut args = vec!["--web.listen-address", address, "--collect-interval", "0.2"];
        args.extend_from_slice(extra);
        let process = ns.spawn(ns.exporter(&args), &log_dir.path().join("exporter.log"));
        let base = format!("http://{address}");
        ns.wait_for_http(&format!("{base}/"), Duration::from_secs(30));
        Server {
            process,
            base,
            _log_dir: log_dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Fetches `url` until `done` holds for the parsed text exposition, for up to 30 s.
fn fetch_until(ns: &Netns, url: &str, done: impl Fn(&Exposition) -> bool) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = Exposition::parse(&ns.curl(&[url]));
        if done(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "condition not met within 30 s; last:\n{}",
            metrics.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Splits `curl -i` output into lower-cased header lines and the body.
fn split_response(response: &str) -> (String, &str) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("headers end with a blank line");
    (head.to_ascii_lowercase(), body)
}

#[test]
fn a_deleted_rule_disappears_at_the_next_collection() {
    if !require_kernel() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    ns.ping(Ip::V4, PINGS as u32, PAYLOAD as u32);
    let server = Server::start(&ns, &["-t", "iptables"]);
    let url = server.url("/metrics");
    let reply_rule = |m: &Exposition| {
        m.find("iptables_rule_packets_total", &[("chain", "INPUT")])
            .iter()
            .any(|s| s.labels["rule"].contains("--icmp-type 0"))
    };
    let before = fetch_until(&ns, &url, reply_rule);
    assert_eq!(
        before.value(
            "iptables_rules_total",
            &[("table", "filter"), ("chain", "INPUT")]
        ),
        2.0
    );

    ns.run(
        "iptables",
        &[
            "-D",
            "INPUT",
            "-p",
            "icmp",
            "--icmp-type",
            "echo-reply",
            "-m",
            "comment",
            "--comment",
            "icmp",
        ],
    );
    let after = fetch_until(&ns, &url, |m| {
        !reply_rule(m) && !m.find("iptables_rules_total", &[]).is_empty()
    });
    assert_eq!(
        after.value(
            "iptables_rules_total",
            &[("table", "filter"), ("chain", "INPUT")]
        ),
        1.0
    );
    assert_eq!(
        after.value(
            "iptables_comment_packets_total",
            &[("chain", "INPUT"), ("comment", "icmp")]
        ),
        PINGS as f64
    );
    drop(server);
}

#[test]
fn http_serves_exact_counters_in_every_format() {
    if !require_kernel() {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    ns.ping(Ip::V4, PINGS as u32, PAYLOAD as u32);
    let mut server = Server::start(&ns, &["-t", "iptables", "--web.telemetry-path", "/custom"]);
    let url = server.url("/custom");

    // Text format, exact counters.
    let text = fetch_until(&ns, &url, |m| {
        !m.find("iptables_scrape_success", &[]).is_empty()
    });
    assert_counters(&text, "iptables", Ip::V4, Traffic::WithHttp);
    assert_eq!(
        text.types().get("iptables_rule_packets_total"),
        Some(&"counter")
    );

    // OpenMetrics when asked for.
    let response = ns.curl(&[
        "-i",
        "-H",
        "Accept: application/openmetrics-text; version=1.0.0",
        &url,
    ]);
    let (head, body) = split_response(&response);
    assert!(
        head.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("\n# EOF\n"), "{body}");
    let openmetrics = Exposition::parse(body);
    assert_eq!(
        openmetrics.types().get("iptables_rule_packets"),
        Some(&"counter"),
        "{body}"
    );
    assert!(
        !openmetrics
            .types()
            .contains_key("iptables_rule_packets_total")
    );
    assert_counters(&openmetrics, "iptables", Ip::V4, Traffic::WithHttp);

    // gzip when asked for; curl decompresses.
    let response = ns.curl(&["-i", "--compressed", &url]);
    let (head, body) = split_response(&response);
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert!(
        head.contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert_counters(
        &Exposition::parse(body),
        "iptables",
        Ip::V4,
        Traffic::WithHttp,
    );

    // Landing page links the custom path; the default path is not served.
    let landing = ns.curl(&[&server.url("/")]);
    assert!(landing.contains("href=\"/custom\""), "{landing}");
    let status = ns.curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &server.url("/metrics"),
    ]);
    assert_eq!(status, "404");

    // SIGTERM: a prompt, clean exit.
    server.process.assert_running();
    let status = server
        .process
        .terminate(Duration::from_secs(10))
        .expect("the exporter exits within 10 s of SIGTERM");
    assert!(status.success(), "{status}: {}", server.process.log());
}

/// A native `table ip nat` with a chain iptables-nft would not make: iptables-save calls it
/// incompatible and prints four empty built-in chains of its own. Neither iptables path
/// exports them; the nftables source exports the table as it is.
#[test]
fn a_native_table_with_an_xtables_name_is_the_nftables_source_s() {
    if !(require_kernel() && require_command("nft")) {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", &ruleset(Ip::V4));
    ns.run(
        "nft",
        &["add table ip nat; add chain ip nat postrouting { type nat hook postrouting priority 100; }"],
    );
    for path in [&[][..], &["--no-iptables-netlink"][..]] {
        let metrics = ns.dump_ok(path);
        assert!(
            metrics
                .find("iptables_chains_total", &[("table", "nat")])
                .is_empty(),
            "{path:?}:\n{}",
            metrics.text
        );
        assert!(
            !metrics
                .find("iptables_chains_total", &[("table", "filter")])
                .is_empty(),
            "{path:?}:\n{}",
            metrics.text
        );
        assert_eq!(
            metrics.value(
                "nftables_chain_rules",
                &[("family", "ip"), ("table", "nat"), ("chain", "postrouting")]
            ),
            0.0,
            "{path:?}"
        );
        assert_eq!(
            metrics
                .find("nftables_chain_rules", &[("table", "nat")])
                .len(),
            1,
            "{path:?}:\n{}",
            metrics.text
        );
    }
}
