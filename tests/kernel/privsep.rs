//! Privilege separation against the real binary: started as root in a namespace, and as
//! systemd starts the hardened unit (a non-root user with only CAP_NET_ADMIN and
//! CAP_NET_RAW, emulated with setpriv), the HTTP server runs as another process without
//! any capability and with no_new_privs, read from `/proc/<pid>/status`, while the
//! collector still reads real counters; either process dying ends the other at once; a
//! server stopped with SIGSTOP holds up neither SIGTERM nor, for long, the collector; the
//! server holds none of the descriptors the exporter was started with but its standard
//! streams; a web config file that is a FIFO is refused and holds up neither publication
//! nor SIGTERM; `--web.systemd-socket` serves on a socket from `systemd-socket-activate`. The
//! process metrics of both processes are checked for plausible values and by promtool.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{
    EXPORTER, Exposition, FakePath, ONE_RULE_DUMP as DUMP, Process, free_port, spawn_logged,
};
use crate::harness::{
    Ip, Netns, output_with_input, require_command, require_kernel, require_root, run_capture,
    wait_until,
};

/// This module's label in the names of its namespaces (see [`Netns::new`]).
const NETNS_LABEL: &str = "privsep";

const RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
    -A INPUT -p icmp -m icmp --icmp-type 8 -m comment --comment \"ping in\" -j ACCEPT\nCOMMIT\n";

const URL: &str = "http://127.0.0.1:9455/metrics";

/// Every field of `/proc/<pid>/status`.
fn status(pid: u32) -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
        .collect()
}

/// The state letter of `pid`, None once it is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

/// True once `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: u32) -> bool {
    matches!(state(pid), None | Some('Z' | 'X'))
}

/// The server process started by `parent`, waited for.
fn server_of(parent: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s[s.rfind(')')? + 1..]
                        .split_whitespace()
                        .nth(1)?
                        .parse::<u32>()
                        .ok()
                });
            if ppid == Some(parent)
                && cmdline.starts_with(b"netfilter_exporter\0internal-web-server")
            {
                return pid;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no server process under {parent}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts that `pid` runs as `uid`, holds no capability in any set and has no_new_privs.
fn assert_unprivileged(pid: u32, uid: &str) {
    let status = status(pid);
    assert_eq!(
        status["Uid"].split_whitespace().collect::<Vec<_>>(),
        [uid; 4],
        "{status:?}"
    );
    for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
        assert_eq!(status[set], "0000000000000000", "{set}: {status:?}");
    }
    assert_eq!(status["NoNewPrivs"], "1", "{status:?}");
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs_f64()
}

/// Scrapes in `ns` until the ping rule has counted `pings`, then checks the whole
/// exposition with promtool and the process metrics of both processes.
fn scrape_counters(ns: &Netns, process: &mut Process, pings: u64, started: f64) -> Exposition {
    let deadline = Instant::now() + Duration::from_secs(30);
    let labels = [
        ("table", "filter"),
        ("chain", "INPUT"),
        ("comment", "ping in"),
    ];
    let exposition = loop {
        let exposition = ns
            .try_curl(&[URL])
            .map(|text| Exposition::parse(&text))
            .filter(|e| !e.find("iptables_comment_packets_total", &labels).is_empty());
        if let Some(exposition) = exposition {
            break exposition;
        }
        process.assert_running();
        assert!(Instant::now() < deadline, "no counters:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        exposition.value("iptables_comment_packets_total", &labels),
        pings as f64
    );
    assert_eq!(
        exposition.value("iptables_comment_bytes_total", &labels),
        (pings * Ip::V4.echo_bytes(56)) as f64
    );
    for process in ["collector", "server"] {
        let label = [("process", process)];
        let start = exposition.value("process_start_time_seconds", &label);
        assert!(
            start >= started - 1.0 && start <= now() + 1.0,
            "{process} started at {start}"
        );
        assert!(exposition.value("process_open_fds", &label) > 2.0);
        assert!(exposition.value("process_max_fds", &label) >= 1024.0);
        assert!(exposition.value("process_resident_memory_bytes", &label) > 1e6);
        assert!(exposition.value("process_cpu_seconds_total", &label) >= 0.0);
    }
    // iptables_exporter's millisecond gauge is kept for compatibility but fails the lint.
    let text: String = exposition
        .text
        .lines()
        .filter(|l| !l.contains("scrape_duration_milliseconds"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = output_with_input(Command::new("promtool").args(["check", "metrics"]), &text);
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    exposition
}

#[test]
fn started_as_root_the_server_is_nobody_without_capabilities_and_serves_real_counters() {
    if !(require_kernel() && require_command("curl") && require_command("promtool")) {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", RULES);
    ns.ping(Ip::V4, 3, 56);
    let started = now();
    let dir = tempfile::tempdir().expect("temporary directory");
    let command = ns.exporter(&[
        "-t",
        "iptables",
        "--collect-interval",
        "0.5",
        "--web.listen-address",
        "127.0.0.1:9455",
    ]);
    let mut process = ns.spawn(command, &dir.path().join("log"));
    let server = server_of(process.id());
    assert_unprivileged(server, "65534");
    assert_eq!(status(server)["CapBnd"], "0000000000000000");
    assert!(
        status(process.id())["Uid"].starts_with("0\t"),
        "the collector stays root"
    );
    scrape_counters(&ns, &mut process, 3, started);
}

#[test]
fn started_as_systemd_starts_the_unit_the_collector_keeps_net_admin_and_the_server_nothing() {
    if !(require_kernel()
        && require_command("curl")
        && require_command("promtool")
        && require_command("setpriv"))
    {
        return;
    }
    let ns = Netns::new(NETNS_LABEL);
    ns.restore("iptables-restore", RULES);
    ns.ping(Ip::V4, 2, 56);
    let started = now();
    let dir = tempfile::tempdir().expect("temporary directory");
    // User=, AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW of the unit, as setpriv does it.
    let mut command = ns.command("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=+net_admin,+net_raw",
        "--ambient-caps=+net_admin,+net_raw",
        EXPORTER,
        "-t",
        "iptables",
        "--collect-interval",
        "0.5",
        "--web.listen-address",
        "127.0.0.1:9455",
    ]);
    let mut process = ns.spawn(command, &dir.path().join("log"));
    scrape_counters(&ns, &mut process, 2, started);
    let server = server_of(process.id());
    assert_unprivileged(server, "65534");
    let collector = status(process.id());
    assert_eq!(collector["CapEff"], "0000000000003000", "{collector:?}");
}

/// The exporter started as root (privileged, so split) on a fake iptables-save, once it
/// serves.
fn start_split(dir: &std::path::Path, fake: &FakePath) -> Process {
    start_split_with(dir, fake, &[], &[]).0
}

/// As [`start_split`], with `args` added to the exporter's, started through `wrapper` (a
/// command that runs the rest of its arguments) when not empty; with the address it
/// listens on.
fn start_split_with(
    dir: &std::path::Path,
    fake: &FakePath,
    wrapper: &[&str],
    args: &[&str],
) -> (Process, String) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let exporter = [EXPORTER, "-t", "iptables", "--web.listen-address", &listen];
    let mut all = wrapper.iter().chain(&exporter).chain(args);
    let mut command = Command::new(all.next().expect("a program"));
    command.args(all).env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.join("log"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !Command::new("curl")
        .args(["-sf", "--max-time", "2", "-o", "/dev/null"])
        .arg(format!("http://{listen}/-/healthy"))
        .status()
        .is_ok_and(|s| s.success())
    {
        process.assert_running();
        assert!(Instant::now() < deadline, "not serving:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    (process, listen)
}

fn root() -> bool {
    require_root("the processes split only when privileged")
}

#[test]
fn a_killed_server_ends_the_collector_at_once_with_a_failure() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let fake = FakePath::iptables_save(DUMP);
    let mut process = start_split(dir.path(), &fake);
    let server = server_of(process.id());
    let killed = Instant::now();
    run_capture(Command::new("kill").args(["-KILL", &server.to_string()])).expect("kill");
    let status = process
        .wait(Duration::from_secs(2))
        .expect("the collector exits");
    assert!(killed.elapsed() < Duration::from_secs(2));
    assert!(!status.success(), "{status}");
    assert!(
        process.log().contains("the server process exited"),
        "{}",
        process.log()
    );
}

/// Waits until `listen` serves `family`: the first collection has been published.
fn wait_until_served(process: &Process, listen: &str, family: &str) {
    let url = format!("http://{listen}/metrics");
    let served = wait_until(Duration::from_secs(60), || {
        run_capture(Command::new("curl").args(["-sf", "--max-time", "10", &url]))
            .is_ok_and(|text| text.contains(family))
    });
    assert!(served, "{family} is not served:\n{}", process.log());
}

#[test]
fn a_killed_collector_ends_the_server_at_once() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let fake = FakePath::iptables_save(DUMP);
    let (mut process, listen) = start_split_with(dir.path(), &fake, &[], &[]);
    // Killed between two publications, not in the middle of one, which the server reads
    // as a message cut short: the next collection is the default interval away.
    wait_until_served(&process, &listen, "iptables_rule_packets_total");
    let server = server_of(process.id());
    run_capture(Command::new("kill").args(["-KILL", &process.id().to_string()])).expect("kill");
    process.wait(Duration::from_secs(2)).expect("killed");
    let deadline = Instant::now() + Duration::from_secs(2);
    while !exited(server) {
        assert!(
            Instant::now() < deadline,
            "the server outlived the collector"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        process
            .log()
            .contains("the collector process closed its socket"),
        "{}",
        process.log()
    );
}

#[test]
fn sigterm_stops_both_with_success() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let fake = FakePath::iptables_save(DUMP);
    let mut process = start_split(dir.path(), &fake);
    let server = server_of(process.id());
    let status = process.terminate(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status}: {}", process.log());
    assert!(exited(server));
    assert!(!process.log().contains("level=error"), "{}", process.log());
}

#[test]
fn the_socket_systemd_passes_is_served() {
    if !(root() && require_command("systemd-socket-activate") && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let fake = FakePath::iptables_save(DUMP);
    let port = free_port();
    let mut command = Command::new("systemd-socket-activate");
    command
        .arg(format!("--listen=127.0.0.1:{port}"))
        .args([EXPORTER, "-t", "iptables", "--web.systemd-socket"])
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    let url = format!("http://127.0.0.1:{port}/metrics");
    let deadline = Instant::now() + Duration::from_secs(30);
    // The first connection starts the exporter, which then accepts it on the passed socket.
    let text = loop {
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", &url])
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if text.contains("iptables_rule_packets_total") {
            break text;
        }
        process.assert_running();
        assert!(
            Instant::now() < deadline,
            "nothing served:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // Served by the unprivileged server process, on the socket systemd bound.
    assert!(
        text.contains("process_open_fds{process=\"server\"}"),
        "{text}"
    );
    assert!(
        process.log().contains("listening on a socket from systemd"),
        "{}",
        process.log()
    );
}

#[test]
fn without_a_socket_from_systemd_the_flag_is_an_error() {
    let output = Command::new(EXPORTER)
        .args(["-t", "iptables", "--web.systemd-socket"])
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_PID")
        .output()
        .expect("run the exporter");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--web.systemd-socket: no socket passed"),
        "{stderr}"
    );
}

/// Sends `signal` (a name of kill(1)) to `pid`.
fn signal(pid: u32, signal: &str) {
    run_capture(Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]))
        .unwrap_or_else(|e| panic!("kill -{signal} {pid}: {e}"));
}

/// Kills a process when dropped: a stopped server left behind by a failed test would
/// otherwise stay stopped for ever.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.0.to_string()])
            .output();
    }
}

/// A stand-in `iptables-save` printing thousands of rules whose comments are random hex,
/// so that one publication, compressed, is larger than a socket's buffer: the collector's
/// send then waits for a server that reads.
fn incompressible_fake(dir: &std::path::Path) -> FakePath {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut dump = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
    for i in 0..20_000_u32 {
        let mut comment = String::new();
        for _ in 0..4 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            comment.push_str(&format!("{state:016x}"));
        }
        dump.push_str(&format!(
            "[1:2] -A INPUT -s 10.{}.{}.{}/32 -m comment --comment \"{comment}\" -j ACCEPT\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    dump.push_str("COMMIT\n");
    let path = dir.join("dump");
    std::fs::write(&path, dump).expect("write the dump");
    FakePath::save_command(&format!("cat '{}'", path.display()))
}

/// The exporter split on [`incompressible_fake`], once its first publication is served,
/// with its server process stopped (SIGSTOP) and a few publications sent to it since.
fn split_with_a_stopped_server(dir: &std::path::Path) -> (Process, KillOnDrop, u32) {
    let fake = incompressible_fake(dir);
    let (mut process, listen) = start_split_with(
        dir,
        &fake,
        &[],
        &["--collect-interval", "0.5", "--collect-cpu-budget", "0"],
    );
    wait_until_served(&process, &listen, "iptables_comment_packets_total");
    let server = server_of(process.id());
    let guard = KillOnDrop(server);
    signal(server, "STOP");
    // Each publication is larger than the socket's buffer: the first one after the stop
    // is still being sent to the stopped server.
    std::thread::sleep(Duration::from_secs(3));
    process.assert_running();
    (process, guard, server)
}

#[test]
fn sigterm_ends_both_while_the_server_does_not_read() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut process, _guard, server) = split_with_a_stopped_server(dir.path());
    let terminated = Instant::now();
    let status = process
        .terminate(Duration::from_secs(40))
        .unwrap_or_else(|| {
            panic!(
                "SIGTERM ignored while the server does not read:\n{}",
                process.log()
            )
        });
    // The collector waits 10 s for the server to stop, then kills it.
    assert!(
        terminated.elapsed() < Duration::from_secs(25),
        "{:?}",
        terminated.elapsed()
    );
    assert!(status.success(), "{status}: {}", process.log());
    assert!(exited(server), "the server outlived the collector");
    assert!(process.log().contains("killing it"), "{}", process.log());
}

#[test]
fn a_server_that_stops_reading_is_killed_and_the_collector_fails() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut process, _guard, server) = split_with_a_stopped_server(dir.path());
    // The collector gives up on a server that read nothing for 30 s.
    let status = process.wait(Duration::from_secs(90)).unwrap_or_else(|| {
        panic!(
            "the collector still waits for a server that does not read:\n{}",
            process.log()
        )
    });
    assert!(!status.success(), "{status}");
    assert!(exited(server), "the server outlived the collector");
    assert!(
        process.log().contains("the server process read nothing"),
        "{}",
        process.log()
    );
}
/// Where each descriptor of `pid` points, as `/proc/<pid>/fd` shows it.
fn descriptors(pid: u32) -> BTreeMap<u32, String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .flatten()
        .filter_map(|entry| {
            let fd = entry.file_name().to_str()?.parse().ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((fd, target.display().to_string()))
        })
        .collect()
}

#[test]
fn the_server_holds_only_its_sockets_and_standard_streams() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let secret = dir.path().join("secret.key");
    std::fs::write(&secret, "root only\n").expect("write the key");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod the key");
    let secret = secret.display().to_string();
    let fake = FakePath::iptables_save(DUMP);
    // Whoever starts the exporter leaves the key open as descriptor 7.
    let wrapper = ["sh", "-c", "exec 7<\"$0\" && exec \"$@\"", &secret];
    let (process, _) = start_split_with(dir.path(), &fake, &wrapper, &[]);
    assert_eq!(
        descriptors(process.id()).get(&7),
        Some(&secret),
        "the collector was started with the key open"
    );
    let server = server_of(process.id());
    let log = dir.path().join("log").display().to_string();
    for (fd, target) in descriptors(server) {
        let expected = target.starts_with("socket:[")
            || target.starts_with("anon_inode:")
            || target == "/dev/null"
            || (fd == 2 && target == log);
        assert!(expected, "the server holds descriptor {fd}: {target}");
    }
}
/// The time of the last collection `listen` serves.
fn last_collection(listen: &str) -> f64 {
    let url = format!("http://{listen}/metrics");
    let text = run_capture(Command::new("curl").args(["-sf", "--max-time", "10", &url]))
        .unwrap_or_else(|e| panic!("scrape: {e}"));
    Exposition::parse(&text)
        .find("netfilter_exporter_collection_timestamp_seconds", &[])
        .iter()
        .map(|s| s.value)
        .fold(0.0, f64::max)
}

/// Asserts that `listen` serves a newer collection within a few seconds.
fn assert_fresh(process: &Process, listen: &str) {
    let before = last_collection(listen);
    assert!(
        wait_until(Duration::from_secs(20), || last_collection(listen) > before),
        "no new collection served:\n{}",
        process.log()
    );
}

#[test]
fn a_web_config_file_that_is_a_fifo_is_refused_and_publication_goes_on() {
    if !(root() && require_command("curl") && require_command("mkfifo")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "http_server_config:\n  headers:\n    X-Test: one\n").expect("write");
    let fake = FakePath::iptables_save(DUMP);
    let web_arg = web.display().to_string();
    let args = ["--collect-interval", "0.5", "--web.config.file", &web_arg];
    let (mut process, listen) = start_split_with(dir.path(), &fake, &[], &args);
    let mkfifo = |path: &std::path::Path| {
        run_capture(Command::new("mkfifo").arg(path)).expect("mkfifo");
    };
    let logged = |process: &Process, words: &[&str]| {
        wait_until(Duration::from_secs(20), || {
            let log = process.log();
            log.lines()
                .any(|line| line.contains("level=error") && words.iter().all(|w| line.contains(w)))
        })
    };

    // A certificate named by the config that is a FIFO: opening it would wait for a writer.
    mkfifo(&dir.path().join("cert.pem"));
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n",
    )
    .expect("rewrite web.yml");
    assert!(
        logged(&process, &["cert.pem", "cert_file", "not a regular file"]),
        "{}",
        process.log()
    );
    assert_fresh(&process, &listen);

    // The config file itself a FIFO.
    std::fs::remove_file(&web).expect("remove web.yml");
    mkfifo(&web);
    assert!(
        logged(&process, &["web.yml", "not a regular file"]),
        "{}",
        process.log()
    );
    assert_fresh(&process, &listen);

    let terminated = Instant::now();
    let status = process
        .terminate(Duration::from_secs(30))
        .unwrap_or_else(|| panic!("SIGTERM ignored:\n{}", process.log()));
    assert!(status.success(), "{status}: {}", process.log());
    assert!(terminated.elapsed() < Duration::from_secs(10));
}

/// The response header `x-test` of `listen`'s landing page.
fn test_header(listen: &str) -> String {
    let head = run_capture(Command::new("curl").args([
        "-sfI",
        "--max-time",
        "10",
        &format!("http://{listen}/"),
    ]))
    .unwrap_or_else(|e| panic!("HEAD: {e}"));
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("x-test: ")
                .map(str::to_owned)
        })
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn sighup_rereads_the_web_config_and_ends_nothing() {
    if !(root() && require_command("curl")) {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let web = dir.path().join("web.yml");
    let config = |value: &str| format!("http_server_config:\n  headers:\n    X-Test: {value}\n");
    std::fs::write(&web, config("one")).expect("write");
    let fake = FakePath::iptables_save(DUMP);
    let web_arg = web.display().to_string();
    let (mut process, listen) =
        start_split_with(dir.path(), &fake, &[], &["--web.config.file", &web_arg]);
    let server = server_of(process.id());
    assert_eq!(test_header(&listen), "one");

    // Changed without a new modification time, as a copy that keeps times does: only a
    // SIGHUP makes it read.
    let modified = std::fs::metadata(&web)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&web, config("two")).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&web)
        .and_then(|f| f.set_modified(modified))
        .expect("set mtime");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(test_header(&listen), "one", "read without a SIGHUP");
    signal(process.id(), "HUP");
    assert!(
        wait_until(Duration::from_secs(10), || test_header(&listen) == "two"),
        "not re-read:\n{}",
        process.log()
    );
    process.assert_running();
    assert_eq!(server_of(process.id()), server);
    // The server ignores a SIGHUP of its own (a closed terminal signals the whole group).
    signal(server, "HUP");
    std::thread::sleep(Duration::from_millis(500));
    process.assert_running();
    assert!(!exited(server));
    assert_fresh(&process, &listen);
}
