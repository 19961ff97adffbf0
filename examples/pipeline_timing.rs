//! Times one step of a collection over and over on one dump and prints the fastest and the
//! median run: the harness for comparing two builds on a machine whose speed varies from
//! minute to minute (run both, alternately, and compare minimums), and the program to put
//! under `perf record` or `valgrind --tool=callgrind` (docs/performance.md). The criterion
//! benchmarks (`benches/pipeline.rs`) remain where figures are measured.
//!
//! Usage: `cargo run --release --example pipeline_timing -- STEP RUNS [DUMP]`
//! with STEP one of `parse`, `render`, `render_compressed`, `parse_render`, and DUMP an
//! `iptables-save --counters` file (default: the generated 100k-rule dump).

use std::process::ExitCode;
use std::time::Instant;

use netfilter_exporter::exposition::{Format, Storage};
use netfilter_exporter::metrics::{self, MetricsConfig};
use netfilter_exporter::ruleset::Family;
use netfilter_exporter::source::iptables_save;

/// The program's allocator (src/main.rs), so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "../benches/generate/mod.rs"]
mod generate;
#[path = "../benches/report/mod.rs"]
mod report;

use report::report;

const USAGE: &str =
    "usage: pipeline_timing parse|render|render_compressed|parse_render RUNS [DUMP]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(step), Some(Ok(runs))) = (args.first(), args.get(1).map(|r| r.parse::<usize>()))
    else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let dump = match args.get(2) {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(dump) => dump,
            Err(e) => {
                eprintln!("pipeline_timing: cannot read {path}: {e}");
                return ExitCode::FAILURE;
            }
        },
        None => generate::kube_proxy_dump(100_000),
    };
    let config = MetricsConfig::default();
    let parsed = report(iptables_save::parse(Family::Ipv4, &dump));
    let mut times = Vec::with_capacity(runs);
    let mut written = 0;
    for _ in 0..runs {
        let input = dump.as_str();
        let start = Instant::now();
        written += match step.as_str() {
            "parse" => iptables_save::parse(Family::Ipv4, input).rule_count(),
            "render" => metrics::render_source(&parsed, &config, Storage::Plain).len(Format::Text),
            "render_compressed" => {
                metrics::render_source(&parsed, &config, Storage::LONG_RUNNING).len(Format::Text)
            }
            "parse_render" => metrics::render_source(
                &report(iptables_save::parse(Family::Ipv4, input)),
                &config,
                Storage::Plain,
            )
            .len(Format::Text),
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        times.push(start.elapsed());
    }
    times.sort();
    let (Some(min), Some(median)) = (times.first(), times.get(runs / 2)) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    // The total keeps the work from being optimised away, and tells a wrong build apart.
    println!("{step}: {runs} runs, min {min:.2?}, median {median:.2?} (total output {written})");
    ExitCode::SUCCESS
}
