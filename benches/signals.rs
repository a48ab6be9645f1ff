//! Decode throughput for a typical TC string.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use privseg::consent::signals::gpp::GppString;
use privseg::consent::signals::tcf::{
    IdSet, PublisherRestriction, RestrictionType, Segment, TcString, VendorBits, VendorEncoding,
    VendorRange, VendorSection,
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

criterion_group!(benches, bench);
criterion_main!(benches);
