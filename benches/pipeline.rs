//! The collection pipeline on generated kube-proxy dumps of 1k, 10k and 100k rules (and 1M
//! with `NFE_BENCH_1M=1`): parsing, rendering as text (the one-shot outputs) and compressed
//! (the server), both together, and the text of a compressed exposition (a plain scrape).
//! Rendering stops at the [`Exposition`] a scrape serves chunk by chunk; nothing copies it
//! into one buffer.
//! DESIGN.md asks for linear, allocation-light parsing and rendering at 100k+ rules; these
//! benches are where that is measured (docs/performance.md records the figures), along
//! with one long rule line of many comment options (`long_line`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netfilter_exporter::exposition::{Exposition, Format, Storage};
use netfilter_exporter::metrics::{self, MetricsConfig};
use netfilter_exporter::ruleset::Family;
use netfilter_exporter::source::iptables_save;

/// The program's allocator (src/main.rs), so that the figures are the program's.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod generate;
mod report;

use report::report;

/// Sizes measured on every run; 1M is opt-in because one iteration takes about a second.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![1_000, 10_000, 100_000];
    if std::env::var_os("NFE_BENCH_1M").is_some() {
        sizes.push(1_000_000);
    }
    sizes
}

/// What one collection does after the dump command returned: parse the dump, then render
/// the families (which a scrape serves as they are).
fn parse_and_render(dump: &str, config: &MetricsConfig) -> Exposition {
    let report = report(iptables_save::parse(Family::Ipv4, dump));
    metrics::render_source(&report, config, Storage::Plain)
}

fn pipeline(c: &mut Criterion) {
    let config = MetricsConfig::default();
    for rules in sizes() {
        let dump = generate::kube_proxy_dump(rules);
        let mut group = c.benchmark_group("pipeline");
        group.throughput(Throughput::Elements(rules as u64));
        if rules >= 100_000 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(if rules >= 1_000_000 { 20 } else { 5 }));
        }

        // The floor of any parser, against which the others are read on a machine whose
        // speed varies from day to day: finding the dump's lines (one vectorised pass).
        group.bench_with_input(BenchmarkId::new("line_scan", rules), &dump, |b, dump| {
            b.iter(|| memchr::memchr_iter(b'\n', black_box(dump).as_bytes()).count())
        });

        // What writing an exposition's worth of text costs at all, into fresh memory (as
        // every render does: the allocator gives freed pages back) and into memory already
        // mapped: on a virtual machine, faulting pages in can cost ten times the writing.
        let exposition_len = metrics::render_source(
            &report(iptables_save::parse(Family::Ipv4, &dump)),
            &config,
            Storage::Plain,
        )
        .len(Format::Text);
        let line = [b'x'; 140];
        let fill = |out: &mut Vec<u8>| {
            while out.len() + line.len() <= exposition_len {
                out.extend_from_slice(&line);
            }
        };
        group.bench_function(BenchmarkId::new("fill_fresh", rules), |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(exposition_len);
                fill(&mut out);
                black_box(out)
            })
        });
        let mut warm = Vec::with_capacity(exposition_len);
        group.bench_function(BenchmarkId::new("fill_warm", rules), |b| {
            b.iter(|| {
                warm.clear();
                fill(&mut warm);
                black_box(warm.len())
            })
        });

        group.bench_with_input(BenchmarkId::new("parse", rules), &dump, |b, dump| {
            b.iter(|| iptables_save::parse(Family::Ipv4, black_box(dump)))
        });

        let parsed = report(iptables_save::parse(Family::Ipv4, &dump));
        group.bench_with_input(BenchmarkId::new("render", rules), &parsed, |b, report| {
            b.iter(|| metrics::render_source(black_box(report), &config, Storage::Plain))
        });

        // The cardinality switch users have: no per-rule series; chain and comment totals stay.
        let chain_totals = MetricsConfig {
            rule_series: false,
            ..MetricsConfig::default()
        };
        group.bench_with_input(
            BenchmarkId::new("render_without_rule_series", rules),
            &parsed,
            |b, report| {
                b.iter(|| metrics::render_source(black_box(report), &chain_totals, Storage::Plain))
            },
        );

        group.bench_with_input(BenchmarkId::new("parse_render", rules), &dump, |b, dump| {
            b.iter(|| parse_and_render(black_box(dump), &config))
        });

        // What the server does after parsing: render with large families compressed
        // piece by piece as they are written.
        group.bench_with_input(
            BenchmarkId::new("render_compressed", rules),
            &parsed,
            |b, report| {
                b.iter(|| metrics::render_source(black_box(report), &config, Storage::LONG_RUNNING))
            },
        );

        let plain = metrics::render_source(&parsed, &config, Storage::Plain);
        let compressed = metrics::render_source(&parsed, &config, Storage::LONG_RUNNING);
        let gzip_len: usize = compressed
            .gzip(Format::Text)
            .map(|chunks| chunks.iter().map(|c| c.len()).sum())
            .unwrap_or_default();
        // Sizes are part of the figures docs/performance.md records.
        eprintln!(
            "{rules} rules: dump {} bytes, exposition {} bytes, gzip {gzip_len} bytes, \
             all text kept: {}",
            dump.len(),
            plain.len(Format::Text),
            compressed.is_plain(),
        );
        // A plain scrape of an exposition kept compressed decompresses it piece by piece.
        group.bench_with_input(
            BenchmarkId::new("text_of_compressed", rules),
            &compressed,
            |b, exposition| {
                b.iter(|| {
                    exposition
                        .chunks(Format::Text)
                        .map(|c| c.len())
                        .sum::<usize>()
                })
            },
        );
        group.finish();
    }
}

/// One rule line of `options` `--comment` options, plain, indented, and with a quote in the
/// chain name. The time per option must not grow with the line (it once did,
/// quadratically).
fn long_lines(c: &mut Criterion) {
    let mut group = c.benchmark_group("long_line");
    group.sample_size(10);
    for options in [20_000, 40_000] {
        group.throughput(Throughput::Elements(options as u64));
        for (kind, chain, indent) in [
            ("plain", "X", ""),
            ("leading_space", "X", " "),
            ("quote_in_chain", "X\"y", ""),
        ] {
            let dump = format!(
                "*filter\n:{chain} - [0:0]\n{indent}[1:2] -A {chain}{}\nCOMMIT\n",
                " -m comment --comment \"a b\"".repeat(options)
            );
            group.bench_with_input(BenchmarkId::new(kind, options), &dump, |b, dump| {
                b.iter(|| iptables_save::parse(Family::Ipv4, dump).rule_count())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, pipeline, long_lines);
criterion_main!(benches);
