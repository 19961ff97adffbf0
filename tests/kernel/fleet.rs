//! The fleet simulation, `scripts/fleet-sim.sh` (docs/fleet.md), run small: four nodes of
//! about 1,000 kube-proxy-shaped rules each, their exporters started with the DaemonSet's
//! flags and scraped by one real Prometheus with the sample limit that deploy/ sets. Every
//! target must be up, no scrape may fail or exceed the limit, and the script must leave no
//! namespace, process or directory behind.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::EXPORTER;
use crate::generator::kube_proxy_dump;
use crate::harness::{require_command, require_kernel, run_capture};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/fleet-sim.sh");
const NODES: usize = 4;
const RULES: usize = 1000;
/// Scrape interval, warm-up and measured window, in seconds: each node is scraped five
/// times in the window.
const INTERVAL: u32 = 2;
const WARMUP: u32 = 4;
const WINDOW: u32 = 10;
/// How long the script may take, building nothing: the dumps and the binary are given.
const LIMIT: Duration = Duration::from_secs(150);

#[test]
fn every_node_is_up_and_within_the_sample_limit() {
    if !require_kernel() || !require_command("prometheus") || !require_command("curl") {
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    // Node i gets RULES + i - 1 rules, as the script would generate them.
    let rulesets = dir.path().join("rulesets");
    std::fs::create_dir(&rulesets).expect("create the rulesets directory");
    for node in 1..=NODES {
        std::fs::write(
            rulesets.join(format!("{node}.rules")),
            kube_proxy_dump(RULES + node - 1),
        )
        .expect("write a ruleset");
    }

    let stdout = dir.path().join("stdout");
    let stderr = dir.path().join("stderr");
    let mut child = Command::new("bash")
        .arg(SCRIPT)
        .args([NODES.to_string(), RULES.to_string()])
        .env("NFE_BINARY", EXPORTER)
        .env("NFE_FLEET_RULESETS", &rulesets)
        .env("NFE_FLEET_INTERVAL", INTERVAL.to_string())
        .env("NFE_FLEET_WARMUP", WARMUP.to_string())
        .env("NFE_FLEET_WINDOW", WINDOW.to_string())
        // The limit is deploy/'s, and the waits the script's own.
        .env_remove("NFE_FLEET_SAMPLE_LIMIT")
        .env_remove("NFE_FLEET_TIMEOUT")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("create stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("create stderr file"))
        .spawn()
        .expect("start scripts/fleet-sim.sh");
    // The script names its namespaces after its process id: bash's, which runs it.
    let pid = child.id();
    let status = wait_or_stop(&mut child, LIMIT);
    let output = format!(
        "standard output:\n{}\nstandard error:\n{}",
        std::fs::read_to_string(&stdout).unwrap_or_default(),
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    let status = status.unwrap_or_else(|| panic!("fleet-sim.sh ran over {LIMIT:?}\n{output}"));
    assert!(status.success(), "fleet-sim.sh failed ({status})\n{output}");

    let summary = summary(&output);
    let number = |key: &str| -> f64 {
        summary
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number {key} in the summary\n{output}"))
    };
    let nodes = NODES as f64;
    assert_eq!(number("nodes"), nodes, "{output}");
    assert_eq!(number("up"), nodes, "every target up\n{output}");
    // Each node is scraped every INTERVAL s; allow one scrape less for the window's edges.
    let expected = nodes * f64::from(WINDOW / INTERVAL - 1);
    assert!(
        number("scrapes") >= expected,
        "at least {expected} scrapes in the window\n{output}"
    );
    assert_eq!(number("failed_scrapes"), 0.0, "{output}");
    assert_eq!(number("exceeded_sample_limit"), 0.0, "{output}");
    let (limit, most) = (number("sample_limit"), number("max_samples_per_scrape"));
    assert!(limit > 0.0, "a sample limit applies\n{output}");
    assert!(
        most > 0.0 && most <= limit,
        "samples per scrape {most} within the limit {limit}\n{output}"
    );
    assert!(
        number("head_series") >= number("samples_per_round"),
        "Prometheus holds every node's series\n{output}"
    );

    // Nothing left: the namespaces, the work directory, Prometheus (whose command line
    // names the work directory).
    let namespaces =
        run_capture(Command::new("ip").args(["netns", "list"])).expect("ip netns list");
    let left: Vec<&str> = namespaces
        .lines()
        .filter(|line| line.starts_with("nfe-fleet") && line.contains(&format!("-{pid}-")))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    let work = summary
        .get("work")
        .expect("the summary names the work directory");
    assert!(!Path::new(work).exists(), "{work} left behind");
    assert_eq!(
        processes_naming(work),
        Vec::<u32>::new(),
        "processes left behind"
    );
}

/// Waits up to `limit` for `child` to exit; then asks it to stop (SIGTERM, on which the
/// script cleans up), and kills it 20 s later. Its exit status when it ended by itself.
fn wait_or_stop(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait for fleet-sim.sh") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stopped = Instant::now() + Duration::from_secs(20);
    while Instant::now() < stopped {
        if child.try_wait().expect("wait for fleet-sim.sh").is_some() {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The `key=value` pairs of the script's last `summary` line.
fn summary(output: &str) -> BTreeMap<&str, &str> {
    let line = output
        .lines()
        .rev()
        .find_map(|line| line.strip_prefix("summary "))
        .unwrap_or_else(|| panic!("no summary line\n{output}"));
    line.split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .collect()
}

/// The processes whose command line contains `text`.
fn processes_naming(text: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(text))
        })
        .collect()
}
