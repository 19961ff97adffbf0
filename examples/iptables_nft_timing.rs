//! Times, inside a network namespace holding iptables rules on the nf_tables backend, one
//! collection of the `iptables` source read over netlink with its rule texts cached
//! against one run of `iptables-save --counters`, alternately, and prints the best wall
//! time and CPU time (user + system, child processes included) of each:
//! scripts/bench-iptables-nft.sh runs it. With `--change`, a rule is inserted before every
//! netlink collection, so that each one meets a rule it has no text for.
//!
//! Usage: `iptables_nft_timing RUNS [--change]` (as root, inside the namespace)

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use netfilter_exporter::source::iptables_nft::Netlink;
use netfilter_exporter::source::{self, DEFAULT_MAX_OUTPUT_BYTES, Limits, Source, SourceId};

/// The program's allocator (src/main.rs), so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const TIMEOUT: Duration = Duration::from_secs(300);

/// CPU time of this process and its waited-for children so far.
fn cpu() -> Duration {
    netfilter_exporter::budget::cpu_time().expect("/proc/self/stat")
}

/// Best wall and CPU time of `runs` runs of `step`.
async fn best<F: Future<Output = ()>>(
    runs: usize,
    mut step: impl FnMut(usize) -> F,
) -> (Duration, Duration) {
    let (mut wall, mut used) = (Duration::MAX, Duration::MAX);
    for run in 0..runs {
        let (start, cpu_start) = (Instant::now(), cpu());
        step(run).await;
        wall = wall.min(start.elapsed());
        used = used.min(cpu() - cpu_start);
    }
    (wall, used)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(runs) = args.first().and_then(|a| a.parse::<usize>().ok()) else {
        eprintln!("usage: iptables_nft_timing RUNS [--change]");
        return ExitCode::from(2);
    };
    let change = args.iter().any(|a| a == "--change");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async move {
        let save = || source::run("iptables-save", &["--counters"], TIMEOUT, DEFAULT_MAX_OUTPUT_BYTES);
        let limits = Limits { timeout: TIMEOUT, max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES };
        let netlink_source = Arc::new(Netlink::new(SourceId::Iptables));
        // The first read learns the texts (and the backend).
        let save_runs = match netlink_source.read(limits).await {
            Ok(reading) => AtomicU64::new(reading.text_stats.map_or(0, |s| s.save_runs)),
            Err(e) => {
                eprintln!("iptables_nft_timing: {e}");
                return ExitCode::FAILURE;
            }
        };
        let saved = best(runs, |_| async {
            save().await.expect("iptables-save runs");
        })
        .await;
        let netlink_only = AtomicUsize::new(0);
        let netlink = best(runs, |run| {
            let (netlink_source, netlink_only, save_runs) = (Arc::clone(&netlink_source), &netlink_only, &save_runs);
            async move {
                if change {
                    let comment = format!("bench change {} {run}", std::process::id());
                    let status = std::process::Command::new("iptables")
                        .args(["-I", "INPUT", "-m", "comment", "--comment", &comment, "-j", "ACCEPT"])
                        .status()
                        .expect("iptables runs");
                    assert!(status.success());
                }
                let reading = netlink_source.read(limits).await.expect("a collection");
                let runs = reading.text_stats.map_or(0, |s| s.save_runs);
                if save_runs.swap(runs, Ordering::Relaxed) == runs {
                    netlink_only.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
        .await;
        println!("iptables-save --counters  wall {:.3} s  cpu {:.3} s", saved.0.as_secs_f64(), saved.1.as_secs_f64());
        println!(
            "netlink collection        wall {:.3} s  cpu {:.3} s  ({} of {runs} without iptables-save)",
            netlink.0.as_secs_f64(),
            netlink.1.as_secs_f64(),
            netlink_only.load(Ordering::Relaxed)
        );
        println!(
            "iptables-save / netlink: {:.1}x wall, {:.1}x cpu",
            saved.0.as_secs_f64() / netlink.0.as_secs_f64(),
            saved.1.as_secs_f64() / netlink.1.as_secs_f64()
        );
        ExitCode::SUCCESS
    })
}
