//! The accounting view on a generated 100k-rule ruleset of which 10k rules, in ACCT4, carry
//! `=tag=` comments (1k distinct tags, a third of them up/down pairs) and the rest are
//! kube-proxy-like rules in other chains: `tag_view` alone, and the whole accounting
//! render (tags, label comments, exposition) as a collection runs it.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use netfilter_exporter::accounting::{self, AccountingConfig};
use netfilter_exporter::exposition::Format;
use netfilter_exporter::ruleset::{Family, Ruleset};
use netfilter_exporter::source::SourceId;
use netfilter_exporter::source::iptables_save;

const RULES: usize = 100_000;
const TAGGED: usize = 10_000;
const TAGS: usize = 1_000;

/// An `iptables-save --counters` dump with `TAGGED` tagged rules among `RULES`.
fn dump() -> String {
    let mut text = String::from("*filter\n:INPUT ACCEPT [0:0]\n:ACCT4 - [0:0]\n");
    let chains = 1_000;
    for c in 0..chains {
        writeln!(text, ":KUBE-SVC-{c:05} - [0:0]").expect("write to string");
    }
    writeln!(text, "[0:0] -A INPUT -j ACCT4").expect("write to string");
    for i in 0..TAGGED {
        let tag = i % TAGS;
        let suffix = match tag % 3 {
            0 => "_up",
            1 => "_down",
            _ => "",
        };
        writeln!(
            text,
            "[{i}:{}] -A ACCT4 -d 10.{}.{}.1/32 -p tcp -m tcp --dport {} -m comment --comment \"=t{tag}{suffix}= Traffic of service {tag}\"",
            i * 60,
            (i >> 8) & 255,
            i & 255,
            1 + i % 65_000
        )
        .expect("write to string");
    }
    for i in TAGGED..RULES {
        writeln!(
            text,
            "[{i}:{}] -A KUBE-SVC-{:05} -s 10.{}.{}.0/24 -p tcp -m comment --comment \"default/svc-{i}:http\" -m tcp --dport 8080 -j RETURN",
            i * 60,
            i % chains,
            (i >> 8) & 255,
            i & 255
        )
        .expect("write to string");
    }
    text.push_str("COMMIT\n");
    text
}

fn bench(c: &mut Criterion) {
    let ruleset: Ruleset = iptables_save::parse(Family::Ipv4, &dump());
    assert_eq!(ruleset.rule_count(), RULES + 1);
    let config = AccountingConfig::default();
    let view = accounting::tag_view(&[(SourceId::Iptables, &ruleset)], &config);
    assert_eq!((view.entities.len(), view.problems.len()), (TAGS, 0));

    let mut group = c.benchmark_group("accounting_100k_rules_10k_tagged");
    group.throughput(Throughput::Elements(RULES as u64));
    group.bench_function("tag_view", |b| {
        b.iter(|| accounting::tag_view(black_box(&[(SourceId::Iptables, &ruleset)]), &config))
    });
    group.bench_function("render", |b| {
        b.iter(|| {
            accounting::render(black_box(&[(SourceId::Iptables, &ruleset)]), &config)
                .0
                .to_vec(Format::Text)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
