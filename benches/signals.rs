//! Decode throughput for a typical TC string.
//!
//! Besides the criterion groups, `main` first measures decoding by the CPU
//! time of the decoding thread (from `/proc/thread-self/schedstat`, so that
//! other load on the machine does not count) and prints strings per second
//! per core: `cargo bench --bench signals -- --cpu-only` prints that alone.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group};
use privseg::consent::signals::gpp::GppString;
use privseg::consent::signals::tcf::{
    IdSet, PublisherRestriction, RestrictionType, Segment, TcString, TcfOptions, VendorBits,
    VendorEncoding, VendorRange, VendorSection,
};

/// A TCF v2.3 string shaped like a common CMP output: a few hundred vendors
/// in the consent bitfield, a range-encoded LI section, one publisher
/// restriction and a DisclosedVendors segment.
fn typical() -> String {
    let mut tc = TcString::example();
    tc.core.purposes_consent = (1..=11).collect();
    tc.core.purposes_li_transparency = IdSet::from_ids([2, 7, 8, 9, 10, 11]);
    tc.core.special_feature_opt_ins = IdSet::from_ids([1, 2]);
    tc.core.vendor_consents = VendorSection {
        max_vendor_id: 1100,
        encoding: VendorEncoding::Bitfield {
            ids: VendorBits::from_ids((1..=1100).filter(|v| v % 3 != 0)),
        },
    };
    tc.core.vendor_legitimate_interests = VendorSection {
        max_vendor_id: 1000,
        encoding: VendorEncoding::Range {
            entries: (0..20)
                .map(|i| VendorRange {
                    start: i * 50 + 1,
                    end: i * 50 + 30,
                })
                .collect(),
        },
    };
    tc.core.publisher_restrictions = vec![PublisherRestriction {
        purpose_id: 2,
        restriction_type: RestrictionType::RequireConsent,
        entries: vec![VendorRange { start: 10, end: 90 }],
    }];
    tc.segments = vec![Segment::DisclosedVendors(VendorSection {
        max_vendor_id: 1100,
        encoding: VendorEncoding::Range {
            entries: vec![VendorRange {
                start: 1,
                end: 1100,
            }],
        },
    })];
    tc.encode().expect("valid example")
}

fn bench(c: &mut Criterion) {
    let s = typical();
    let mut g = c.benchmark_group("signals");
    g.throughput(Throughput::Elements(1));
    g.bench_function("tcf_decode_typical", |b| {
        b.iter(|| TcString::decode(black_box(&s)).expect("decodes"))
    });
    let small = TcString::example().encode().expect("valid example");
    g.bench_function("tcf_decode_small", |b| {
        b.iter(|| TcString::decode(black_box(&small)).expect("decodes"))
    });
    let gpp = "DBABTA~1YN-";
    g.bench_function("gpp_decode_usp", |b| {
        b.iter(|| GppString::decode(black_box(gpp)).expect("decodes"))
    });
    g.finish();
}

/// CPU time of the calling thread in nanoseconds.
fn thread_cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// Decodes `s` until about one second of this thread's CPU time is spent
/// and returns strings per CPU second.
fn cpu_rate(s: &str, opts: &TcfOptions) -> Option<f64> {
    let start = thread_cpu_ns()?;
    let mut n = 0u64;
    loop {
        for _ in 0..10_000 {
            black_box(TcString::decode_with(black_box(s), opts).expect("decodes"));
        }
        n += 10_000;
        let spent = thread_cpu_ns()? - start;
        if spent >= 1_000_000_000 {
            return Some(n as f64 / (spent as f64 / 1e9));
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    let s = typical();
    match cpu_rate(&s, &TcfOptions::lenient()) {
        Some(rate) => println!(
            "tcf_decode_typical ({} characters): {:.2} M strings per CPU second per thread",
            s.len(),
            rate / 1e6
        ),
        None => println!("thread CPU time unavailable (no /proc/thread-self/schedstat)"),
    }
    if std::env::args().any(|a| a == "--cpu-only") {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
