//! The collection pipeline on generated kube-proxy dumps of 1k, 10k and 100k rules (and 1M
//! with `NFE_BENCH_1M=1`): parsing, rendering, both together, and gzip of the exposition.
//! Rendering stops at the [`Exposition`] a scrape serves chunk by chunk; nothing copies it
//! into one buffer.
//! DESIGN.md asks for linear, allocation-light parsing and rendering at 100k+ rules; these
//! benches are where that is measured (docs/performance.md records the figures).

use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use netfilter_exporter::metrics::{self, MetricsConfig, SourceReport};
use netfilter_exporter::output::exposition::{Exposition, Format};
use netfilter_exporter::ruleset::{self, Ruleset};
use netfilter_exporter::source::Target;

mod generate;

/// Sizes measured on every run; 1M is opt-in because one iteration takes about a second.
fn sizes() -> Vec<usize> {
    let mut sizes = vec![1_000, 10_000, 100_000];
    if std::env::var_os("NFE_BENCH_1M").is_some() {
        sizes.push(1_000_000);
    }
    sizes
}

fn report(ruleset: Ruleset) -> SourceReport {
    SourceReport {
        target: Target::Iptables,
        outcome: Ok(Arc::new(ruleset)),
        duration: Duration::from_millis(12),
        finished_at: SystemTime::UNIX_EPOCH,
    }
}

/// What one collection does after the dump command returned: parse the dump it owns, then
/// render the families (which a scrape serves as they are).
fn parse_and_render(dump: String, config: &MetricsConfig) -> Exposition {
    let report = report(ruleset::parse(dump));
    metrics::render_source(&report, config)
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

        // The dump is moved into the snapshot, as a collection moves the command's output:
        // the copy made for each iteration is not timed.
        group.bench_with_input(BenchmarkId::new("parse", rules), &dump, |b, dump| {
            b.iter_batched(
                || dump.clone(),
                |dump| ruleset::parse(black_box(dump)),
                BatchSize::LargeInput,
            )
        });

        let parsed = report(ruleset::parse(&dump));
        group.bench_with_input(BenchmarkId::new("render", rules), &parsed, |b, report| {
            b.iter(|| metrics::render_source(black_box(report), &config))
        });

        // The cardinality switch users have: no per-rule series; chain and comment totals stay.
        let chain_totals = MetricsConfig {
            rule_series: false,
            ..MetricsConfig::default()
        };
        group.bench_with_input(
            BenchmarkId::new("render_without_rule_series", rules),
            &parsed,
            |b, report| b.iter(|| metrics::render_source(black_box(report), &chain_totals)),
        );

        group.bench_with_input(BenchmarkId::new("parse_render", rules), &dump, |b, dump| {
            b.iter_batched(
                || dump.clone(),
                |dump| parse_and_render(black_box(dump), &config),
                BatchSize::LargeInput,
            )
        });

        let exposition = parse_and_render(dump.clone(), &config).to_vec(Format::Text);
        // Sizes are part of the figures docs/performance.md records.
        eprintln!(
            "{rules} rules: dump {} bytes, exposition {} bytes, gzip (fast) {} bytes",
            dump.len(),
            exposition.len(),
            gzip_fast(&exposition).len()
        );
        if rules == 100_000 {
            group.bench_with_input(
                BenchmarkId::new("gzip_fast", rules),
                &exposition,
                |b, exposition| b.iter(|| gzip_fast(black_box(exposition))),
            );
        }
        group.finish();
    }
}

/// Compresses like a publication's gzip body (flate2, fast level).
fn gzip_fast(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(data);
    encoder.finish().unwrap_or_default()
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
