//! `top` against real rules in a namespace while pings flow through one of them: `--once`
//! reading the namespace's sources, and reading an exporter's /metrics over TLS with a
//! client certificate and basic authentication (the shipped web config, its TLS block in
//! force) or with rule series left out; the full screen driven in tmux, its filter key, and
//! the terminal given back on q, Ctrl-C, SIGTERM and SIGHUP.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{EXPORTER, Process};
use crate::harness::{
    Netns, output_within, require_command, require_kernel, run_capture, wait_until,
};
use crate::web_config::{deploy_example, make_ca, make_cert, with_tls};

/// The ruleset: the pings hit the second rule of INPUT only.
const RULES: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p tcp -m tcp --dport 9 -m comment --comment discard -j ACCEPT
-A INPUT -p icmp -m comment --comment ping -j ACCEPT
-A INPUT -p udp -j ACCEPT
-A OUTPUT -p udp -j ACCEPT
COMMIT
";

/// A namespace with [`RULES`] and pings flowing over its loopback (about 200 packets a
/// second through INPUT, echo requests and replies) while the guard lives.
fn pinged(label: &str, dir: &Path) -> (Netns, Process) {
    let netns = Netns::new(label);
    netns.restore("iptables-restore", RULES);
    let mut ping = netns.command("ping");
    ping.args(["-q", "-i", "0.01", "127.0.0.1"]);
    let ping = netns.spawn(ping, &dir.join("ping.log"));
    (netns, ping)
}

/// `top args…` run to its end inside `netns`.
fn top(netns: &Netns, args: &[&str]) -> Output {
    let mut command = netns.exporter(&["top"]);
    command.args(args);
    output_within(command, Duration::from_secs(120))
}

/// A row of the `--once` table: its first seven columns and the name after them.
#[derive(Debug)]
struct Line {
    columns: Vec<String>,
    name: String,
}

impl Line {
    fn packet_rate(&self) -> f64 {
        self.columns[0].parse().unwrap_or(0.0)
    }
}

/// The table of a successful `--once`: its header, then its rows.
fn table(output: &Output) -> (Line, Vec<Line>) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "top failed ({}): {stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let mut lines = stdout.lines().map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        let split = words.len().min(7);
        Line {
            columns: words[..split].iter().map(|w| (*w).to_owned()).collect(),
            name: words[split..].join(" "),
        }
    });
    let header = lines.next().expect("a header line");
    (header, lines.collect())
}

#[test]
fn once_prints_the_rule_the_pings_hit_first() {
    if !require_kernel() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (netns, _ping) = pinged("top-once", dir.path());
    let output = top(
        &netns,
        &["--once", "-t", "iptables", "--delay", "1", "--rows", "2"],
    );
    let (header, rows) = table(&output);
    assert_eq!(
        header.columns,
        [
            "PKTS/S", "BYTES/S", "PACKETS", "BYTES", "SOURCE", "TABLE", "CHAIN"
        ]
    );
    assert_eq!(header.name, "RULE");
    assert_eq!(rows.len(), 2, "--rows 2: {rows:?}");
    let first = &rows[0];
    assert_eq!(
        first.columns[4..],
        ["iptables", "filter", "INPUT"],
        "{rows:?}"
    );
    assert_eq!(first.name, "-p icmp -j ACCEPT", "{rows:?}");
    assert!(first.packet_rate() > 50.0, "{rows:?}");
    assert!(rows[1].packet_rate() < first.packet_rate(), "{rows:?}");

    let output = top(
        &netns,
        &[
            "--once", "-t", "iptables", "-d", "0.5", "--group", "comment",
        ],
    );
    let (header, rows) = table(&output);
    assert_eq!(header.name, "COMMENT");
    assert_eq!(rows[0].name, "ping", "{rows:?}");
    assert!(rows[0].packet_rate() > 50.0, "{rows:?}");
    assert_eq!(rows.len(), 2, "one row per comment: {rows:?}");
}

#[test]
fn once_reads_native_nftables_rules_by_handle_and_comment_and_named_counters() {
    if !(require_kernel() && require_command("nft")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (netns, _ping) = pinged("top-nft", dir.path());
    let output = netns.output(
        "nft",
        &["-f", "-"],
        "table inet fw {\n  counter replies { }\n  chain in {\n    type filter hook input priority 10; policy accept;\n    icmp type echo-request counter comment \"requests\"\n    icmp type echo-reply counter name replies\n    tcp dport 9 counter\n  }\n}\n",
    );
    assert!(
        output.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // With iptables, which reads iptables-nft's tables, nftables reads the native one only.
    let sources = "iptables,nftables";
    let output = top(&netns, &["--once", "-t", sources, "-d", "0.5"]);
    let (_, rows) = table(&output);
    let native: Vec<&Line> = rows.iter().filter(|r| r.columns[4] == "nftables").collect();
    assert_eq!(
        native.len(),
        2,
        "the rules with a counter expression: {rows:?}"
    );
    assert_eq!(native[0].columns[5..], ["inet/fw", "in"], "{rows:?}");
    assert!(
        native[0].name.starts_with("comment \"requests\" # handle "),
        "{rows:?}"
    );
    assert!(native[0].packet_rate() > 20.0, "{rows:?}");
    let output = top(
        &netns,
        &["--once", "-t", sources, "-d", "0.5", "--group", "object"],
    );
    let (header, rows) = table(&output);
    assert_eq!(header.name, "OBJECT");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].columns[5..], ["inet/fw", "counter"], "{rows:?}");
    assert_eq!(rows[0].name, "replies", "{rows:?}");
    assert!(rows[0].packet_rate() > 20.0, "{rows:?}");
}

/// An exporter inside `netns` with `args`, its log in `dir`.
fn exporter(netns: &Netns, dir: &Path, name: &str, args: &[&str]) -> Process {
    let mut command = netns.exporter(&["-t", "iptables", "--collect-interval", "0.5"]);
    command.args(args);
    netns.spawn(command, &dir.join(format!("{name}.log")))
}

/// `top --once --url url args…` inside `netns`, run again until it succeeds (the exporter
/// starting) for up to 30 s; the last output.
fn top_of(netns: &Netns, url: &str, args: &[&str]) -> Output {
    let mut output = None;
    wait_until(Duration::from_secs(30), || {
        let mut all = vec!["--once", "-d", "0.5", "--url", url];
        all.extend_from_slice(args);
        let done = top(netns, &all);
        let ok = done.status.success();
        output = Some(done);
        ok
    });
    output.expect("top ran")
}

#[test]
fn once_reads_an_exporter_over_tls_with_a_client_certificate_and_basic_auth() {
    if !(require_kernel() && require_command("openssl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path();
    make_ca(path, "ca");
    make_cert(path, "ca", "tls", "serverAuth");
    make_cert(path, "ca", "client", "clientAuth");
    std::fs::copy(path.join("ca.crt"), path.join("client-ca.crt")).expect("copy CA");
    std::fs::write(path.join("web.yml"), with_tls(&deploy_example())).expect("write");
    let (netns, _ping) = pinged("top-url", path);
    let web = path.join("web.yml");
    let mut server = exporter(
        &netns,
        path,
        "exporter",
        &[
            "--web.config.file",
            &web.to_string_lossy(),
            "--web.listen-address",
            "127.0.0.1:9455",
        ],
    );
    // Prometheus' http_config, as a scrape config of the shipped example would have it.
    std::fs::write(path.join("password"), "change me\n").expect("write");
    let http_config = |name: &str, body: &str| {
        let file = path.join(name);
        std::fs::write(&file, body).expect("write");
        file.to_string_lossy().into_owned()
    };
    let good = http_config(
        "http.yml",
        "tls_config:\n  ca_file: ca.crt\n  cert_file: client.crt\n  key_file: client.key\nbasic_auth:\n  username: prometheus\n  password_file: password\n",
    );
    let url = "https://127.0.0.1:9455/metrics";
    let output = top_of(&netns, url, &["--http.config.file", &good]);
    let (_, rows) = table(&output);
    server.assert_running();
    assert_eq!(rows[0].name, "-p icmp -j ACCEPT", "{rows:?}");
    assert!(rows[0].packet_rate() > 50.0, "{rows:?}");

    for (body, expected) in [
        (
            "tls_config:\n  ca_file: ca.crt\n  cert_file: client.crt\n  key_file: client.key\nbasic_auth:\n  username: prometheus\n  password: wrong\n",
            &["answered 401"][..],
        ),
        (
            "tls_config:\n  ca_file: ca.crt\nbasic_auth:\n  username: prometheus\n  password_file: password\n",
            // TLS 1.3 refuses the missing certificate after the handshake: the client
            // reads the alert, or the close when the server was quicker.
            &[
                "CertificateRequired",
                "the connection closed before the answer",
            ][..],
        ),
    ] {
        let refused = http_config("refused.yml", body);
        let output = top(
            &netns,
            &[
                "--once",
                "-d",
                "0.2",
                "--url",
                url,
                "--http.config.file",
                &refused,
            ],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{body}: {stderr}");
        assert!(
            expected.iter().any(|e| stderr.contains(e)),
            "{body}: {stderr}"
        );
    }
}

#[test]
fn once_shows_chains_in_place_of_the_rule_series_an_exporter_left_out() {
    if !require_kernel() {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (netns, _ping) = pinged("top-chains", dir.path());
    let _without = exporter(
        &netns,
        dir.path(),
        "without",
        &[
            "--no-rule-metrics",
            "--web.listen-address",
            "127.0.0.1:9456",
        ],
    );
    let _limited = exporter(
        &netns,
        dir.path(),
        "limited",
        &[
            "--max-series",
            "1",
            "--web.listen-address",
            "127.0.0.1:9457",
        ],
    );
    let output = top_of(&netns, "http://127.0.0.1:9456/metrics", &[]);
    let (_, rows) = table(&output);
    // OUTPUT's policy counts the pings its one rule does not match.
    assert_eq!(rows[0].columns[6], "OUTPUT", "{rows:?}");
    assert_eq!(
        rows[0].name, "(no rule series: the chain's policy)",
        "{rows:?}"
    );
    assert!(rows[0].packet_rate() > 50.0, "{rows:?}");
    assert!(
        rows.iter().all(|r| r.name.starts_with("(no rule series")),
        "{rows:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr
            .contains("iptables: chains without rule series, each shown in place of its rules: 2"),
        "{stderr}"
    );

    let output = top_of(&netns, "http://127.0.0.1:9457/metrics", &[]);
    let (_, rows) = table(&output);
    assert!(
        rows.iter().any(|r| r.name.starts_with("(no rule series")),
        "{rows:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("iptables: series dropped by the exporter (--max-series): "),
        "{stderr}"
    );
}

/// A tmux server of the test's own, with one session of a plain shell, 160×40; killed when
/// dropped.
struct Tmux {
    socket: String,
}

/// The shell's prompt in the tmux session.
const PROMPT: &str = "toptest$ ";

impl Tmux {
    fn start(label: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("nfe-{label}-{}", std::process::id()),
        };
        tmux.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "40",
            &format!("env PS1='{PROMPT}' bash --norc --noprofile"),
        ]);
        tmux
    }

    fn run(&self, args: &[&str]) -> String {
        run_capture(Command::new("tmux").arg("-L").arg(&self.socket).args(args))
            .unwrap_or_else(|e| panic!("tmux: {e}"))
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "top"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn typed(&self, text: &str) {
        self.run(&["send-keys", "-t", "top", "-l", text]);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "top"])
    }

    fn alternate_on(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "top", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// The process in the pane's shell: the command it runs.
    fn command_pid(&self) -> String {
        let shell = self.run(&["display-message", "-p", "-t", "top", "#{pane_pid}"]);
        let shell = shell.trim();
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .expect("the shell's children");
        children
            .split_whitespace()
            .next()
            .expect("a command running")
            .to_owned()
    }

    /// Waits up to 30 s for the screen to satisfy `done`; panics with it otherwise.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let mut screen = String::new();
        let ok = wait_until(Duration::from_secs(30), || {
            screen = self.screen();
            done(&screen)
        });
        assert!(ok, "waited for {what}; the screen:\n{screen}");
        screen
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

/// The table rows on a full screen: the lines after the column titles.
fn screen_rows(screen: &str) -> Vec<&str> {
    screen
        .lines()
        .skip_while(|line| !line.trim_start().starts_with("PKTS/S"))
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .collect()
}

/// True when `row` is the ping rule's with a packet rate above zero.
fn pinged_row(row: &str) -> bool {
    let rate = row.split_whitespace().next().unwrap_or("-");
    row.ends_with("-p icmp -j ACCEPT") && !matches!(rate, "-" | "0")
}

#[test]
fn the_full_screen_in_tmux_shows_the_busiest_rule_first_filters_and_gives_the_terminal_back() {
    if !(require_kernel() && require_command("tmux")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (netns, _ping) = pinged("top-tmux", dir.path());
    let tmux = Tmux::start("top");
    let command = format!(
        "ip netns exec {} {EXPORTER} top -d 0.5 -t iptables",
        netns.name()
    );
    tmux.wait_for("the prompt", |screen| screen.contains(PROMPT.trim_end()));
    for quit in ["q", "C-c", "SIGTERM", "SIGHUP"] {
        tmux.typed(&command);
        tmux.keys(&["Enter"]);
        let screen = tmux.wait_for("the ping rule first", |screen| {
            screen_rows(screen)
                .first()
                .is_some_and(|row| pinged_row(row))
        });
        assert!(tmux.alternate_on(), "{screen}");
        assert!(
            screen.contains("iptables ok"),
            "the header names the source:\n{screen}"
        );
        assert_eq!(screen_rows(&screen).len(), 4, "{screen}");
        if quit == "q" {
            tmux.keys(&["/"]);
            tmux.typed("tcp");
            // The whole filter typed, not a prefix of it that already narrows the rows.
            let screen = tmux.wait_for("the filter's rows", |screen| {
                let rows = screen_rows(screen);
                screen.contains("filter /tcp/")
                    && rows.len() == 1
                    && rows[0].ends_with("-p tcp -m tcp --dport 9 -j ACCEPT")
            });
            assert!(screen.contains("filter /tcp/: 1 of 4 rows"), "{screen}");
            tmux.keys(&["Enter", "/", "BSpace", "BSpace", "BSpace", "Enter", "g"]);
            tmux.wait_for("the comments, the pings' first", |screen| {
                let rows = screen_rows(screen);
                rows.len() == 2 && rows[0].ends_with(" ping") && screen.contains("by comment")
            });
        }
        match quit {
            "SIGTERM" | "SIGHUP" => {
                let signal = format!("-{}", &quit[3..]);
                run_capture(Command::new("kill").args([&signal, &tmux.command_pid()]))
                    .unwrap_or_else(|e| panic!("kill: {e}"));
            }
            key => tmux.keys(&[key]),
        }
        let screen = tmux.wait_for("the shell back", |screen| {
            screen.trim_end().ends_with(PROMPT.trim_end()) && !screen.contains("PKTS/S")
        });
        assert!(!tmux.alternate_on(), "after {quit}:\n{screen}");
        // Cooked mode again: the shell echoes what is typed.
        tmux.typed("echo back");
        tmux.keys(&["Enter"]);
        tmux.wait_for("the shell's answer", |screen| screen.contains("\nback\n"));
    }
}
