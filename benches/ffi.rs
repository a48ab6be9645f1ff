//! The cost of the C ABI over the Rust API on one evaluation: the same
//! engine content (100 000 subjects) and segment, evaluated and counted
//! through `Engine::evaluate` and through `privseg_engine_evaluate`.
//!
//! Run with `cargo bench --bench ffi`.

use std::ffi::c_char;
use std::hint::black_box;
use std::ptr;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use privseg::consent::ConsentEvent;
use privseg::ffi::*;
use privseg::policy::Policy;
use privseg::{Engine, Timestamp};

const POLICY: &str = include_str!("../examples/c/policy.json");
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SEGMENT: &str =
    r#"segment "vip" for marketing.email where country in ("FR", "DE") and total_spend >= 500"#;
const N: usize = 100_000;
const T0: i64 = 1_772_359_200;
const COUNTRIES: [&str; 3] = ["FR", "DE", "ES"];

fn s(text: &str) -> privseg_str {
    privseg_str {
        ptr: text.as_ptr().cast::<c_char>(),
        len: text.len(),
    }
}

fn subject(i: usize) -> (String, &'static str, i64, bool) {
    (
        format!("c-{i}"),
        COUNTRIES[i % 3],
        ((i * 7919) % 1000) as i64,
        !i.is_multiple_of(4),
    )
}

fn rust_engine() -> (Engine, privseg::segment::CheckedSegment) {
    let policy = Arc::new(Policy::from_json(POLICY).unwrap());
    let mut e = Engine::new(policy);
    let t = Timestamp::from_unix(T0);
    let birth = privseg::timestamp::parse_date("1980-01-01").ok();
    for i in 0..N {
        let (id, country, spend, consent) = subject(i);
        e.add_subject(&id, "EU-FR", birth).unwrap();
        e.set_attribute(&id, "country", country.into(), t).unwrap();
        e.set_attribute(&id, "total_spend", spend.into(), t)
            .unwrap();
        if consent {
            e.record(&ConsentEvent::grant(&id, "marketing.email", t, "v3", SHA))
                .unwrap();
        }
    }
    let seg = e.compile(SEGMENT).unwrap();
    (e, seg)
}

/// The same content built through the C API, in batches.
fn c_engine() -> (*mut privseg_engine, *const privseg_segment) {
    let data: Vec<_> = (0..N).map(subject).collect();
    let mut policy = ptr::null();
    let mut engine = ptr::null_mut();
    let mut seg = ptr::null();
    // SAFETY: every pointer given points to live data of the stated length.
    unsafe {
        assert_eq!(
            privseg_policy_from_json(
                POLICY.as_ptr().cast(),
                POLICY.len(),
                &mut policy,
                ptr::null_mut()
            ),
            privseg_status::Ok
        );
        assert_eq!(privseg_engine_new(policy, &mut engine), privseg_status::Ok);
        let subjects: Vec<_> = data
            .iter()
            .map(|(id, ..)| privseg_subject {
                id: s(id),
                jurisdiction: s("EU-FR"),
                birth_date: s("1980-01-01"),
            })
            .collect();
        assert_eq!(
            privseg_engine_add_subjects(engine, subjects.as_ptr(), subjects.len()),
            privseg_status::Ok
        );
        let mut updates = Vec::new();
        for (id, country, spend, _) in &data {
            updates.push(privseg_attribute_update {
                subject: s(id),
                attribute: s("country"),
                value: privseg_value {
                    kind: privseg_value_kind::String as u32,
                    integer: 0,
                    text: s(country),
                },
                verified_at: T0,
            });
            updates.push(privseg_attribute_update {
                subject: s(id),
                attribute: s("total_spend"),
                value: privseg_value {
                    kind: privseg_value_kind::Integer as u32,
                    integer: *spend,
                    text: privseg_str {
                        ptr: ptr::null(),
                        len: 0,
                    },
                },
                verified_at: T0,
            });
        }
        assert_eq!(
            privseg_engine_set_attributes(engine, updates.as_ptr(), updates.len()),
            privseg_status::Ok
        );
        let none = privseg_str {
            ptr: ptr::null(),
            len: 0,
        };
        let events: Vec<_> = data
            .iter()
            .filter(|d| d.3)
            .map(|(id, ..)| privseg_event {
                subject: s(id),
                kind: privseg_event_kind::ConsentGranted as u32,
                purpose: s("marketing.email"),
                at: T0,
                notice_version: s("v3"),
                notice_sha256: s(SHA),
                channel: none,
                collector: none,
                expires_at: 0,
                flags: 0,
            })
            .collect();
        assert_eq!(
            privseg_engine_record_batch(engine, events.as_ptr(), events.len()),
            privseg_status::Ok
        );
        assert_eq!(
            privseg_segment_compile(
                policy,
                SEGMENT.as_ptr().cast(),
                SEGMENT.len(),
                &mut seg,
                ptr::null_mut()
            ),
            privseg_status::Ok
        );
        privseg_policy_free(policy);
    }
    (engine, seg)
}

fn c_count(engine: *const privseg_engine, seg: *const privseg_segment, at: i64) -> u64 {
    let mut m = ptr::null_mut();
    let mut count = 0;
    // SAFETY: engine and seg are live handles; m and count are valid out-pointers.
    unsafe {
        assert_eq!(
            privseg_engine_evaluate(engine, seg, at, &mut m),
            privseg_status::Ok
        );
        assert_eq!(privseg_members_count(m, &mut count), privseg_status::Ok);
        privseg_members_free(m);
    }
    count
}

fn bench(c: &mut Criterion) {
    let (engine, seg) = rust_engine();
    let (cengine, cseg) = c_engine();
    let at = T0 + 3600;
    let expected = engine
        .evaluate(&seg, Timestamp::from_unix(at))
        .unwrap()
        .count();
    assert_eq!(c_count(cengine, cseg, at), expected);

    let mut g = c.benchmark_group("evaluate_100k");
    g.bench_function("rust_api", |b| {
        b.iter(|| {
            engine
                .evaluate(black_box(&seg), black_box(Timestamp::from_unix(at)))
                .unwrap()
                .count()
        })
    });
    g.bench_function("c_abi", |b| {
        b.iter(|| c_count(black_box(cengine), black_box(cseg), black_box(at)))
    });
    g.finish();

    // SAFETY: the handles are released once, after their last use.
    unsafe {
        privseg_segment_free(cseg);
        privseg_engine_free(cengine);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
