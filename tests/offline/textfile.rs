//! The looping textfile mode against a stand-in `iptables-save` put first in `PATH`: what
//! it does between writes needs no kernel, so these tests run anywhere.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{EXPORTER, FakePath, ONE_RULE_DUMP, Process, peak_rss_kib, spawn_logged};

/// A dump of `rules` commented rules in one chain, big enough that writing its
/// exposition takes a while.
fn dump(rules: usize) -> String {
    let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n");
    for i in 0..rules {
        text.push_str(&format!(
            "[{i}:{}] -A INPUT -s 10.{}.{}.{}/32 -p tcp --dport {} -m comment --comment \"rule {i}\" -j ACCEPT\n",
            i * 60,
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255,
            i % 65_536
        ));
    }
    text.push_str("COMMIT\n");
    text
}

/// The exporter in textfile mode writing `path`, reading the stand-in `iptables-save` of
/// `fake`, logging to `log`.
fn start(fake: &FakePath, path: &Path, log: &Path, interval: &str) -> Process {
    let mut command = Command::new(EXPORTER);
    command
        .args(["textfile", "-t", "iptables", "--collect-interval", interval])
        .arg(path)
        .env("PATH", fake.before_path());
    spawn_logged(command, log)
}

/// Waits until a temporary file is in `dir`, that is until a write of the textfile is
/// under way; panics after `limit`.
fn wait_for_a_write(process: &mut Process, dir: &Path, limit: Duration) {
    let deadline = Instant::now() + limit;
    loop {
        let writing = std::fs::read_dir(dir).expect("list directory").any(|e| {
            e.expect("entry")
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        });
        if writing {
            return;
        }
        process.assert_running();
        assert!(Instant::now() < deadline, "no write:\n{}", process.log());
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[test]
fn sigterm_while_writing_stops_the_textfile_loop() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let dump_file = dir.path().join("dump");
    std::fs::write(&dump_file, dump(20_000)).expect("write dump");
    let fake = FakePath::save_command(&format!("exec cat '{}'", dump_file.display()));
    let out = tempfile::tempdir().expect("temporary directory");
    let path = out.path().join("netfilter.prom");
    let mut process = start(&fake, &path, &dir.path().join("log"), "0.001");
    // While the file is written, the loop waits for the write, not for a signal.
    wait_for_a_write(&mut process, out.path(), Duration::from_secs(60));
    let status = process.terminate(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}\n{}",
        process.log()
    );
}

/// Waits until `done` holds while `process` runs; panics naming `what` after `limit`.
fn wait_for(
    process: &mut Process,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&Process) -> bool,
) {
    let deadline = Instant::now() + limit;
    while !done(process) {
        process.assert_running();
        assert!(Instant::now() < deadline, "{what}:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A dump command that prints more than `--collect-max-output-bytes` costs the collector
/// about the limit, not twice it (a buffer grown by doubling holds both copies while it
/// moves).
#[test]
fn output_beyond_the_limit_costs_no_more_than_the_limit() {
    const LIMIT: u64 = 140_000_000;
    let fake = FakePath::save_command("exec head -c 300000000 /dev/zero");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(EXPORTER);
    command
        .args(["textfile", "-t", "iptables", "--collect-interval", "600"])
        .args(["--collect-max-output-bytes", &LIMIT.to_string()])
        .arg(dir.path().join("netfilter.prom"))
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    wait_for(&mut process, Duration::from_secs(60), "no failure", |p| {
        p.log().contains("output larger than")
    });
    let peak_kib = peak_rss_kib(process.id());
    assert!(
        peak_kib * 1024 < LIMIT + 48 * 1024 * 1024,
        "peak {peak_kib} KiB for a limit of {LIMIT} bytes"
    );
}

/// A source that keeps failing with the same error logs it once, not on every collection.
#[test]
fn a_persisting_failure_is_logged_once() {
    let fake = FakePath::save_command("echo 'iptables-save: cannot initialize' >&2; exit 3");
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(EXPORTER);
    command
        .args(["--log.level", "debug", "textfile", "-t", "iptables"])
        .args(["--collect-interval", "0.05"])
        .arg(dir.path().join("out.prom"))
        .env("PATH", fake.before_path());
    let mut process = spawn_logged(command, &dir.path().join("log"));
    // Enough collections to have logged many times over, had each been logged.
    wait_for(
        &mut process,
        Duration::from_secs(30),
        "too few collections",
        |p| {
            let log = p.log();
            log.matches("dump command failed").count() >= 10
                || log.matches("collection failed").count() >= 2
        },
    );
    let log = process.log();
    assert_eq!(log.matches("collection failed").count(), 1, "{log}");
    assert!(log.contains("cannot initialize"), "{log}");
}

/// A failed write is logged with its cause said once, counted, and the count is in the next
/// file that lands.
#[test]
fn failed_writes_are_counted_in_the_next_file() {
    let fake = FakePath::iptables_save(ONE_RULE_DUMP);
    let dir = tempfile::tempdir().expect("temporary directory");
    let sub = dir.path().join("not-yet");
    let path = sub.join("netfilter.prom");
    let mut process = start(&fake, &path, &dir.path().join("log"), "0.2");
    let limit = Duration::from_secs(30);
    wait_for(&mut process, limit, "no failed write", |p| {
        p.log().contains("cannot write textfile")
    });
    let log = process.log();
    let line = log
        .lines()
        .find(|l| l.contains("cannot write textfile"))
        .expect("the line");
    assert_eq!(
        line.matches("No such file or directory").count(),
        1,
        "{line}"
    );
    std::fs::create_dir(&sub).expect("mkdir");
    wait_for(&mut process, limit, "no write", |_| path.exists());
    let text = std::fs::read_to_string(&path).expect("read");
    let failures: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("netfilter_exporter_textfile_write_failures_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no failure count in:\n{text}"));
    assert!(failures >= 1, "{text}");
}

/// SIGHUP (a closed terminal, `systemctl reload`) does not end the looping mode.
#[test]
fn sighup_does_not_stop_the_textfile_loop() {
    let fake = FakePath::iptables_save(ONE_RULE_DUMP);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("netfilter.prom");
    let mut process = start(&fake, &path, &dir.path().join("log"), "0.2");
    let limit = Duration::from_secs(30);
    // Once it runs: before the handler is in place the default action ends any process.
    wait_for(&mut process, limit, "no write", |_| path.exists());
    wait_for(&mut process, limit, "SIGHUP not seen", |p| {
        let _ = Command::new("kill")
            .args(["-HUP", &p.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(100));
        p.log().contains("SIGHUP")
    });
    let _ = std::fs::remove_file(&path);
    wait_for(&mut process, limit, "no write after SIGHUP", |_| {
        path.exists()
    });
    let status = process.terminate(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
