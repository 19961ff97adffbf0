//! Traffic accounting against the real kernel: rules loaded into a server namespace, real
//! packets sent from a client namespace over a veth pair, and the exporter's `dump` inside
//! the server namespace compared with the per-rule counters `iptables -L -v -x -n` shows.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const EXPORTER: &str = env!("CARGO_BIN_EXE_netfilter_exporter");

/// Runs `program args` and returns its output, whatever the status.
fn output(program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(pipe);
    child.wait_with_output().expect("wait")
}

/// Runs a command that must succeed; returns its standard output.
fn run(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    let out = output(program, args, stdin);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Whether the test can run; panics under `CI=true` when it cannot.
fn can_run() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let missing: Vec<&str> = ["ip", "iptables-restore", "ip6tables-restore", "nc"]
        .into_iter()
        .filter(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .map_or(true, |s| !s.success())
        })
        .collect();
    let root = run("id", &["-u"], None).trim() == "0";
    let reason = if !root {
        "not root".to_owned()
    } else if !missing.is_empty() {
        format!("missing {missing:?}")
    } else {
        return true;
    };
    assert!(
        !ci,
        "CI=true but the accounting kernel test cannot run: {reason}"
    );
    println!("skipped: {reason}");
    false
}

/// A server and a client namespace joined by a veth pair; both deleted on drop.
struct Pair {
    server: String,
    client: String,
}

impl Pair {
    fn new() -> Pair {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let pair = Pair {
            server: format!("nfe-acct-s{id}"),
            client: format!("nfe-acct-c{id}"),
        };
        run("ip", &["netns", "add", &pair.server], None);
        run("ip", &["netns", "add", &pair.client], None);
        let (s, c) = (pair.server.as_str(), pair.client.as_str());
        run(
            "ip",
            &[
                "-n", s, "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", c,
            ],
            None,
        );
        for (ns, dev, v4, v6) in [
            (s, "vs", "192.168.24.1/24", "2001:db8:f00d::1/64"),
            (c, "vc", "192.168.24.2/24", "2001:db8:f00d::2/64"),
        ] {
            run("ip", &["-n", ns, "addr", "add", v4, "dev", dev], None);
            run(
                "ip",
                &["-n", ns, "addr", "add", v6, "dev", dev, "nodad"],
                None,
            );
            run("ip", &["-n", ns, "link", "set", dev, "up"], None);
            run("ip", &["-n", ns, "link", "set", "lo", "up"], None);
        }
        pair
    }

    fn server(&self, program: &str, args: &[&str], stdin: Option<&str>) -> String {
        let mut all = vec!["netns", "exec", &self.server, program];
        all.extend_from_slice(args);
        run("ip", &all, stdin)
    }

    /// Runs a command in the client namespace; its failure (a refused connection) is fine.
    fn client(&self, args: &[&str], stdin: Option<&str>) {
        let mut all = vec!["netns", "exec", &self.client];
        all.extend_from_slice(args);
        output("ip", &all, stdin);
    }

    /// `netfilter_exporter dump` in the server namespace, checked by promtool when present.
    fn dump(&self, flags: &[&str]) -> String {
        // iptables_exporter's millisecond gauge is kept for compatibility but fails promtool's lint.
        let mut args = vec![
            "dump",
            "-t",
            "iptables,ip6tables",
            "--no-legacy-duration-metric",
        ];
        args.extend_from_slice(flags);
        let text = self.server(EXPORTER, &args, None);
        let promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        if let Ok(mut child) = promtool {
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("promtool");
            assert!(
                out.status.success(),
                "promtool check metrics: {}{}\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        text
    }

    /// (packets, bytes, comment) of each rule of `chain`, from `iptables -L -v -x -n`.
    fn counters(&self, iptables: &str, chain: &str) -> Vec<(u64, u64, String)> {
        let listing = self.server(iptables, &["-L", chain, "-v", "-x", "-n"], None);
        listing
            .lines()
            .skip(2)
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let mut fields = line.split_whitespace();
                let mut number = || -> u64 {
                    fields
                        .next()
                        .and_then(|f| f.parse().ok())
                        .unwrap_or_else(|| panic!("bad line {line:?}"))
                };
                let (packets, bytes) = (number(), number());
                let comment = line
                    .split_once("/* ")
                    .and_then(|(_, rest)| rest.rsplit_once(" */"))
                    .map_or_else(String::new, |(c, _)| c.to_owned());
                (packets, bytes, comment)
            })
            .collect()
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for ns in [&self.server, &self.client] {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}

/// The value of the sample written exactly as `series` (name and labels) in `text`.
fn sample(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {series} in\n{text}"))
        .parse()
        .expect("integer sample")
}

/// The TCP connection attempts of the Munin example: refused (RST) since nothing listens.
fn knock(pair: &Pair, address: &str, ports: &[&str], times: usize) {
    for _ in 0..times {
        for port in ports {
            pair.client(&["nc", "-z", "-w1", address, port], None);
        }
    }
}

const MUNIN4: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ACCT4 - [0:0]
-A INPUT -j ACCT4
-A OUTPUT -j ACCT4
-A ACCT4 ! -s 10.2.3.0/24 -p tcp --dport 22 -m comment --comment "=unauthssh= Unauthorized SSH traffic received"
-A ACCT4 -d 192.168.24.1 -p tcp --dport 80 -m comment --comment "=web4_down= Combined web traffic to/from local 80/443"
-A ACCT4 -s 192.168.24.1 -p tcp --sport 80 -m comment --comment "=web4_up= dummy"
-A ACCT4 -d 192.168.24.1 -p tcp --dport 443 -m comment --comment "=web4_down= dummy"
-A ACCT4 -s 192.168.24.1 -p tcp --sport 443 -m comment --comment "=web4_up= dummy"
-A ACCT4 -p tcp --syn --dport 22 -m comment --comment "=sshsyn= \"SYN\" \\ to port 22 é"
-A ACCT4 -p udp --dport 9999 -m comment --comment "=udp9999="
-A ACCT4 -p udp --dport 9999 -m comment --comment "=broken no closing delimiter"
COMMIT
"#;

const MUNIN6: &str = r#"*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:ACCT6 - [0:0]
-A INPUT -j ACCT6
-A OUTPUT -j ACCT6
-A ACCT6 -d 2001:db8:f00d::1 -p tcp --dport 80 -m comment --comment "=web6_down= Web traffic to/from local port 80"
-A ACCT6 -s 2001:db8:f00d::1 -p tcp --sport 80 -m comment --comment "=web6_up= dummy"
-A ACCT6 -d 2001:db8:f00d::1 -p tcp --dport 443 -m comment --comment "=web6ssl_down= Web traffic to/from local port 443"
-A ACCT6 -s 2001:db8:f00d::1 -p tcp --sport 443 -m comment --comment "=web6ssl_up= dummy"
COMMIT
"#;

/// Sums `iptables -L` counters per tag (pairs keyed `tag/out`, `tag/in`).
fn per_tag(rules: &[(u64, u64, String)]) -> BTreeMap<String, (u64, u64)> {
    let mut sums = BTreeMap::new();
    for (packets, bytes, comment) in rules {
        let Some((tag, _)) = comment.strip_prefix('=').and_then(|c| c.split_once('=')) else {
            continue;
        };
        let key = if let Some(base) = tag.strip_suffix("_up") {
            format!("{base}/out")
        } else if let Some(base) = tag.strip_suffix("_down") {
            format!("{base}/in")
        } else {
            tag.to_owned()
        };
        let sum: &mut (u64, u64) = sums.entry(key).or_default();
        sum.0 += packets;
        sum.1 += bytes;
    }
    sums
}

#[test]
fn munin_example_counts_real_traffic() {
    if !can_run() {
        return;
    }
    let pair = Pair::new();
    pair.server("iptables-restore", &[], Some(MUNIN4));
    pair.server("ip6tables-restore", &[], Some(MUNIN6));
    knock(&pair, "192.168.24.1", &["22", "80", "443"], 3);
    knock(&pair, "2001:db8:f00d::1", &["80", "443", "443"], 2);
    for _ in 0..5 {
        pair.client(&["nc", "-u", "-w0", "192.168.24.1", "9999"], Some("hello"));
    }

    let text = pair.dump(&[]);
    let mut expected = per_tag(&pair.counters("iptables", "ACCT4"));
    let v6 = per_tag(&pair.counters("ip6tables", "ACCT6"));
    let mut checked = 0;
    for (family, sums) in [("ipv4", &mut expected), ("ipv6", &mut v6.clone())] {
        for (key, (packets, bytes)) in sums.iter() {
            let labels = match key.split_once('/') {
                Some((tag, dir)) => {
                    format!("family=\"{family}\",tag=\"{tag}\",direction=\"{dir}\"")
                }
                None => format!("family=\"{family}\",tag=\"{key}\""),
            };
            assert_eq!(
                sample(
                    &text,
                    &format!("netfilter_accounting_packets_total{{{labels}}}")
                ),
                *packets,
                "{labels}"
            );
            assert_eq!(
                sample(
                    &text,
                    &format!("netfilter_accounting_bytes_total{{{labels}}}")
                ),
                *bytes,
                "{labels}"
            );
            assert!(*packets > 0, "no traffic matched {family} {key}");
            checked += 1;
        }
    }
    // unauthssh, web4 out/in, sshsyn, udp9999, web6 out/in, web6ssl out/in.
    assert_eq!(checked, 9);
    // Counts known without the kernel: one SYN per refused connection, one datagram per send.
    let v4 = "family=\"ipv4\"";
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_packets_total{{{v4},tag=\"sshsyn\"}}")
        ),
        3
    );
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_packets_total{{{v4},tag=\"unauthssh\"}}")
        ),
        3
    );
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_packets_total{{{v4},tag=\"udp9999\"}}")
        ),
        5
    );
    assert_eq!(
        sample(
            &text,
            &format!("netfilter_accounting_bytes_total{{{v4},tag=\"udp9999\"}}")
        ),
        5 * (20 + 8 + 5)
    );
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_packets_total{family=\"ipv6\",tag=\"web6ssl\",direction=\"in\"}"
        ),
        4
    );
    assert!(text.contains(
        "netfilter_accounting_info{family=\"ipv4\",tag=\"web4\",description=\"Combined web traffic to/from local 80/443\"} 1\n"
    ));
    assert!(text.contains(
        "netfilter_accounting_info{family=\"ipv4\",tag=\"sshsyn\",description=\"\\\"SYN\\\" \\\\ to port 22 é\"} 1\n"
    ), "{text}");
    assert!(text.contains(
        "netfilter_accounting_info{family=\"ipv4\",tag=\"udp9999\",description=\"udp9999\"} 1\n"
    ));
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"ACCT4\"}"
        ),
        1
    );
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_rejected_rules{family=\"ipv6\",chain=\"ACCT6\"}"
        ),
        0
    );
}

/// nfprom's example chain on the example server's address; `comment` makes the rule's
/// comment from its service and direction, or leaves it out.
fn nfprom_chain(comment: impl Fn(&str, &str) -> String) -> String {
    let mut rules = String::from(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:prometheus - [0:0]\n-A INPUT -j prometheus\n-A OUTPUT -j prometheus\n",
    );
    for (service, port) in [("SSH", 22), ("SMTP", 25), ("HTTP", 80), ("HTTPS", 443)] {
        rules += &format!(
            "-A prometheus -d 192.168.24.1/32 -p tcp --dport {port}{} -j RETURN\n",
            comment(service, "in")
        );
        rules += &format!(
            "-A prometheus -s 192.168.24.1/32 -p tcp --sport {port}{} -j RETURN\n",
            comment(service, "out")
        );
    }
    rules + "-A prometheus -j RETURN\nCOMMIT\n"
}

#[test]
fn nfprom_label_comments_count_real_traffic() {
    if !can_run() {
        return;
    }
    let pair = Pair::new();
    let rules = nfprom_chain(|service, dir| {
        format!(
            " -m comment --comment \"nft(l2proto=ipv4;l3proto=tcp;service={service};dir={dir})\""
        )
    });
    pair.server("iptables-restore", &[], Some(&rules));
    knock(&pair, "192.168.24.1", &["22", "25", "80", "443", "443"], 2);
    let text = pair.dump(&[
        "--accounting.ipv4-chains",
        "prometheus",
        "--accounting.labels-prefix",
        "nfprom",
    ]);
    let rules = pair.counters("iptables", "prometheus");
    let mut checked = 0;
    for (packets, bytes, comment) in &rules {
        let Some(inner) = comment
            .strip_prefix("nft(")
            .and_then(|c| c.strip_suffix(')'))
        else {
            continue;
        };
        let mut pairs: Vec<(&str, &str)> =
            inner.split(';').filter_map(|p| p.split_once('=')).collect();
        pairs.sort();
        let labels: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let labels = labels.join(",");
        assert_eq!(
            sample(&text, &format!("nfprom_packets_total{{{labels}}}")),
            *packets
        );
        assert_eq!(
            sample(&text, &format!("nfprom_bytes_total{{{labels}}}")),
            *bytes
        );
        assert!(*packets > 0, "{labels}");
        checked += 1;
    }
    assert_eq!(checked, 8);
    // One SYN per refused connection to 443, two rounds of two.
    assert_eq!(
        sample(
            &text,
            "nfprom_packets_total{dir=\"in\",l2proto=\"ipv4\",l3proto=\"tcp\",service=\"HTTPS\"}"
        ),
        4
    );
    assert_eq!(
        sample(
            &text,
            "netfilter_accounting_rejected_rules{family=\"ipv4\",chain=\"prometheus\"}"
        ),
        0
    );
}

#[test]
fn rule_parameters_label_real_traffic() {
    if !can_run() {
        return;
    }
    let pair = Pair::new();
    pair.server(
        "iptables-restore",
        &[],
        Some(&nfprom_chain(|_, _| String::new())),
    );
    knock(&pair, "192.168.24.1", &["22", "25", "80", "443"], 2);
    let text = pair.dump(&[
        "--accounting.rule-params-chain",
        "prometheus",
        "--accounting.rule-params-prefix",
        "nfprom",
    ]);
    let rules = pair.counters("iptables", "prometheus");
    assert_eq!(rules.len(), 9);
    for (i, port) in ["22", "25", "80", "443"].into_iter().enumerate() {
        for (j, direction) in ["in", "out"].into_iter().enumerate() {
            let (packets, bytes, _) = &rules[2 * i + j];
            let labels = format!(
                "address=\"192.168.24.1/32\",direction=\"{direction}\",l2proto=\"ipv4\",l3proto=\"tcp\",port=\"{port}\""
            );
            assert_eq!(
                sample(&text, &format!("nfprom_packets_total{{{labels}}}")),
                *packets
            );
            assert_eq!(
                sample(&text, &format!("nfprom_bytes_total{{{labels}}}")),
                *bytes
            );
            // One SYN in and one RST out per attempt.
            assert_eq!(*packets, 2, "{labels}");
        }
    }
    let (packets, bytes, _) = &rules[8];
    let all = "address=\"0.0.0.0/0\",direction=\"all\",l2proto=\"ipv4\",l3proto=\"all\",port=\"\"";
    assert_eq!(
        sample(&text, &format!("nfprom_packets_total{{{all}}}")),
        *packets
    );
    assert_eq!(
        sample(&text, &format!("nfprom_bytes_total{{{all}}}")),
        *bytes
    );
}
