//! Times, inside a network namespace holding iptables rules on the nf_tables backend, one
//! collection of the `iptables` source read over netlink with its rule texts cached
//! against one run of `iptables-save --counters`, alternately, and prints the best wall
//! time and CPU time (user + system, child processes included) of each:
//! scripts/bench-iptables-nft.sh runs it. With `--change`, a rule is inserted before every
//! netlink collection, so that each one meets a rule it has no text for.
//!
//! Usage: `iptables_nft_timing RUNS [--change]` (as root, inside the namespace)

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use netfilter_exporter::ruleset::Family;
use netfilter_exporter::source::iptables_nft::{self, Collection, RuleTexts};
use netfilter_exporter::source::{self, DEFAULT_MAX_OUTPUT_BYTES};

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
        let texts = Arc::new(Mutex::new(RuleTexts::default()));
        // The first collection learns the texts (and the backend).
        let collect = |texts: Arc<Mutex<RuleTexts>>| iptables_nft::collect(Family::Ipv4, texts, TIMEOUT, save());
        if let Err(e) = collect(Arc::clone(&texts)).await {
            eprintln!("iptables_nft_timing: {e}");
            return ExitCode::FAILURE;
        }
        let saved = best(runs, |_| async {
            save().await.expect("iptables-save runs");
        })
        .await;
        let netlink_only = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let netlink = best(runs, |run| {
            let (texts, netlink_only) = (Arc::clone(&texts), Arc::clone(&netlink_only));
            async move {
                if change {
                    let comment = format!("bench change {run}");
                    let status = std::process::Command::new("iptables")
                        .args(["-I", "INPUT", "-m", "comment", "--comment", &comment, "-j", "ACCEPT"])
                        .status()
                        .expect("iptables runs");
                    assert!(status.success());
                }
                match collect(texts).await.expect("a collection") {
                    Collection::Netlink(..) => {
                        netlink_only.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Collection::Saved(..) => {}
                }
            }
        })
        .await;
        println!("iptables-save --counters  wall {:.3} s  cpu {:.3} s", saved.0.as_secs_f64(), saved.1.as_secs_f64());
        println!("netlink collection        wall {:.3} s  cpu {:.3} s  ({} of {runs} without iptables-save)", netlink_only.load(std::sync::atomic::Ordering::Relaxed), netlink.0.as_secs_f64(), netlink.1.as_secs_f64());
        println!(
            "iptables-save / netlink: {:.1}x wall, {:.1}x cpu",
            saved.0.as_secs_f64() / netlink.0.as_secs_f64(),
            saved.1.as_secs_f64() / netlink.1.as_secs_f64()
        );
        ExitCode::SUCCESS
    })
}
