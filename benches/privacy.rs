//! Benchmarks for pseudonymisation throughput and DP sampling cost.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use privseg::privacy::dp::{Epsilon, SplitMix64, SystemRandomSource, sample_discrete_laplace};
use privseg::privacy::normalize::IdKind;
use privseg::privacy::pseudonym::{MasterSecret, Pseudonymizer};

const IDS: usize = 1_000_000;

fn pseudonymizer() -> Pseudonymizer {
    let master = MasterSecret::from_bytes(&[0x5a; 32]).unwrap();
    Pseudonymizer::new(&master, "bench-recipient", "bench-purpose", 1).unwrap()
}

fn pseudonyms(c: &mut Criterion) {
    let p = pseudonymizer();
    let ids: Vec<String> = (0..IDS).map(|i| format!("customer-{i:010}")).collect();
    let emails: Vec<String> = (0..IDS)
        .map(|i| format!("First.Last{i}@Example.com"))
        .collect();

    let mut group = c.benchmark_group("pseudonymize");
    group.sample_size(10);
    group.throughput(Throughput::Elements(IDS as u64));
    group.bench_function("1M subject ids", |b| {
        b.iter(|| {
            for id in &ids {
                black_box(p.pseudonymize(IdKind::SubjectId, id).unwrap());
            }
        })
    });
    group.bench_function("1M subject ids to hex", |b| {
        let mut out = String::with_capacity(64);
        b.iter(|| {
            for id in &ids {
                out.clear();
                p.pseudonymize(IdKind::SubjectId, id)
                    .unwrap()
                    .write_hex(&mut out);
                black_box(&out);
            }
        })
    });
    group.bench_function("1M mixed-case emails", |b| {
        b.iter(|| {
            for e in &emails {
                black_box(p.pseudonymize(IdKind::Email, e).unwrap());
            }
        })
    });
    group.finish();

    c.bench_function("derive pseudonymizer (HKDF)", |b| {
        let master = MasterSecret::from_bytes(&[0x5a; 32]).unwrap();
        b.iter(|| black_box(Pseudonymizer::new(&master, "r", "p", 7).unwrap()))
    });
}

fn dp_sampling(c: &mut Criterion) {
    let mut group = c.benchmark_group("discrete_laplace");
    for text in ["1", "0.1", "0.01"] {
        let eps: Epsilon = text.parse().unwrap();
        group.bench_function(format!("eps={text} splitmix"), |b| {
            let mut rng = SplitMix64::new(1);
            b.iter(|| black_box(sample_discrete_laplace(&mut rng, eps).unwrap()))
        });
        group.bench_function(format!("eps={text} system"), |b| {
            let mut rng = SystemRandomSource::new();
            b.iter(|| black_box(sample_discrete_laplace(&mut rng, eps).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, pseudonyms, dp_sampling);
criterion_main!(benches);
