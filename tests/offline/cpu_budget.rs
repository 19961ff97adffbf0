//! The CPU budget of collections, with stand-in `iptables-save` commands put first in
//! `PATH` (one that burns CPU time, one that does not) and the textfile loop: the pause
//! after a costly collection stretches to keep within `--collect-cpu-budget`, the log says
//! so once, and a cheap source stays at `--collect-interval`.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{EXPORTER, Exposition, FakePath, ONE_RULE_DUMP as DUMP, Process, spawn_logged};

/// A stand-in that spends about `loops` shell loop turns of CPU time, then prints [`DUMP`].
fn stand_in(loops: u32) -> FakePath {
    FakePath::save_command(&format!(
        "i=0\nwhile [ $i -lt {loops} ]; do i=$((i+1)); done\nprintf '{}'",
        DUMP.replace('\n', "\\n")
    ))
}

fn start(fake: &FakePath, path: &Path, flags: &[&str]) -> Process {
    let mut command = Command::new(EXPORTER);
    command
        .args([
            "textfile",
            "-t",
            "iptables",
            "--no-iptables-netlink",
            "--collect-interval",
            "0.5",
        ])
        .args(flags)
        .arg(path)
        .env("PATH", fake.before_path());
    spawn_logged(command, &path.with_extension("log"))
}

/// The textfile once it reports an interval, with that interval and the CPU cost.
fn cadence(process: &mut Process, path: &Path) -> (f64, f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && text.contains("netfilter_exporter_collection_interval_seconds{")
        {
            let exposition = Exposition::parse(&text);
            let at = [("source", "iptables")];
            return (
                exposition.value("netfilter_exporter_collection_interval_seconds", &at),
                exposition.value("netfilter_exporter_collection_cpu_seconds", &at),
            );
        }
        process.assert_running();
        assert!(
            Instant::now() < deadline,
            "no interval reported:\n{}",
            process.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_costly_source_waits_longer_to_keep_within_the_budget() {
    let fake = stand_in(300_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("out.prom");
    let mut process = start(&fake, &path, &["--collect-cpu-budget", "0.05"]);
    let (interval, cost) = cadence(&mut process, &path);
    assert!(cost > 0.05, "the stand-in burnt only {cost} s");
    // cost / (cost + pause) = 5%: the pause is 19 times the cost.
    let expected = cost / 0.05 - cost;
    assert!(
        (interval - expected).abs() < 1e-6 * expected.max(1.0) + 0.011,
        "{interval} against {expected}"
    );
    assert!(interval > 0.5, "not stretched: {interval}");
    std::thread::sleep(Duration::from_millis(500));
    let log = process.log();
    assert_eq!(log.matches("the pause is stretched").count(), 1, "{log}");
    process.terminate(Duration::from_secs(10));
}

#[test]
fn a_cheap_source_and_a_budget_of_zero_keep_the_interval() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let cheap = stand_in(0);
    let path = dir.path().join("cheap.prom");
    let mut process = start(&cheap, &path, &[]);
    assert_eq!(cadence(&mut process, &path).0, 0.5);
    process.terminate(Duration::from_secs(10));

    let costly = stand_in(300_000);
    let path = dir.path().join("off.prom");
    let mut process = start(&costly, &path, &["--collect-cpu-budget", "0"]);
    assert_eq!(cadence(&mut process, &path).0, 0.5);
    assert!(!process.log().contains("stretched"));
    process.terminate(Duration::from_secs(10));
}

#[test]
fn a_budget_out_of_range_is_refused() {
    let out = Command::new(EXPORTER)
        .args(["dump", "--collect-cpu-budget=-1"])
        .output()
        .expect("the exporter runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--collect-cpu-budget"));
}
