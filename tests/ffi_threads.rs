//! Policies and checked segments are reference counted and shared between
//! threads through the C API; each thread has its own engine, run by its
//! own actor.

use std::ffi::c_char;
use std::ptr;

use privseg::ffi::*;

const POLICY: &str = include_str!("../examples/c/policy.json");
const T0: i64 = 1_772_359_200;
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

fn s(text: &str) -> privseg_str {
    privseg_str {
        ptr: text.as_ptr().cast::<c_char>(),
        len: text.len(),
    }
}

/// Pointers to immutable, reference-counted objects may cross threads.
#[derive(Clone, Copy)]
struct Shared(*const privseg_policy, *const privseg_segment);
// SAFETY: policies and segments are immutable and their reference counts
// atomic; the C API documents them as shareable between threads.
unsafe impl Send for Shared {}

#[test]
fn policy_and_segment_are_shared_by_threads() {
    let mut policy = ptr::null();
    let mut segment = ptr::null();
    let text = r#"segment "vip" for marketing.email where total_spend >= 500"#;
    // SAFETY: valid strings and out-pointers throughout.
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
        assert_eq!(
            privseg_segment_compile(
                policy,
                text.as_ptr().cast(),
                text.len(),
                &mut segment,
                ptr::null_mut()
            ),
            privseg_status::Ok
        );
    }
    let shared = Shared(policy, segment);
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            std::thread::spawn(move || {
                let shared = shared;
                // SAFETY: the references are alive until every thread has
                // joined; each thread owns its engine and its references.
                unsafe {
                    let p = privseg_policy_clone(shared.0);
                    let seg = privseg_segment_clone(shared.1);
                    let mut e = ptr::null_mut();
                    let actor = format!("worker-{t}");
                    let roles = [s("crm")];
                    assert_eq!(
                        privseg_engine_new(
                            p,
                            actor.as_ptr().cast(),
                            actor.len(),
                            roles.as_ptr(),
                            roles.len(),
                            &mut e
                        ),
                        privseg_status::Ok
                    );
                    privseg_policy_free(p);
                    let n: u32 = 50 + t;
                    for i in 0..n {
                        let id = format!("t{t}-{i}");
                        let subject = privseg_subject {
                            id: s(&id),
                            jurisdiction: s("EU-FR"),
                            birth_date: s("1970-01-01"),
                        };
                        assert_eq!(
                            privseg_engine_add_subjects(e, &subject, 1),
                            privseg_status::Ok
                        );
                        let value = privseg_value {
                            kind: privseg_value_kind::Integer as u32,
                            integer: 1000,
                            text: privseg_str {
                                ptr: ptr::null(),
                                len: 0,
                            },
                        };
                        let (subject, attr) = (s(&id), s("total_spend"));
                        assert_eq!(
                            privseg_engine_set_attribute(
                                e,
                                subject.ptr,
                                subject.len,
                                attr.ptr,
                                attr.len,
                                &value,
                                0
                            ),
                            privseg_status::Ok
                        );
                        let ev = privseg_event {
                            subject: s(&id),
                            kind: privseg_event_kind::ConsentGranted as u32,
                            purpose: s("marketing.email"),
                            at: T0,
                            notice_version: s("v3"),
                            notice_sha256: s(SHA),
                            channel: privseg_str {
                                ptr: ptr::null(),
                                len: 0,
                            },
                            collector: privseg_str {
                                ptr: ptr::null(),
                                len: 0,
                            },
                            expires_at: 0,
                            flags: 0,
                            evidence_sha256: privseg_str {
                                ptr: ptr::null(),
                                len: 0,
                            },
                        };
                        assert_eq!(privseg_engine_record(e, &ev), privseg_status::Ok);
                    }
                    let mut m = ptr::null_mut();
                    assert_eq!(
                        privseg_engine_evaluate(e, seg, T0 + 10, &mut m),
                        privseg_status::Ok
                    );
                    let mut count = 0;
                    assert_eq!(privseg_members_count(m, &mut count), privseg_status::Ok);
                    privseg_members_free(m);
                    // 50 or more members: the k-threshold count is exact.
                    let (mut k_count, mut below) = (0, 9);
                    assert_eq!(
                        privseg_engine_count(e, seg, T0 + 10, &mut k_count, &mut below),
                        privseg_status::Ok
                    );
                    assert_eq!((k_count, below), (count, 0));
                    // One policy load, then per subject an add, a value and
                    // an event, then the evaluation and the count.
                    let mut entries = 0;
                    assert_eq!(
                        privseg_engine_audit_len(e, &mut entries),
                        privseg_status::Ok
                    );
                    assert_eq!(entries, 1 + 3 * u64::from(n) + 2);
                    privseg_segment_free(seg);
                    privseg_engine_free(e);
                    assert_eq!(count, u64::from(n));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // SAFETY: the last references, released once.
    unsafe {
        privseg_segment_free(segment);
        privseg_policy_free(policy);
    }
}

/// An engine pointer handed to several threads at once: the engine locks
/// itself, so the host needs no lock of its own.
#[derive(Clone, Copy)]
struct SharedEngine(*mut privseg_engine, *const privseg_segment);
// SAFETY: the C API documents an engine as usable by several threads at
// once (it holds its own read-write lock); the segment is immutable and
// reference counted.
unsafe impl Send for SharedEngine {}

#[test]
fn one_engine_is_used_by_a_writer_and_readers_without_a_host_lock() {
    let mut policy = ptr::null();
    let mut segment = ptr::null();
    let mut engine = ptr::null_mut();
    let text = r#"segment "vip" for marketing.email where total_spend >= 500"#;
    let roles = [s("crm")];
    // SAFETY: valid strings and out-pointers throughout.
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
        assert_eq!(
            privseg_segment_compile(
                policy,
                text.as_ptr().cast(),
                text.len(),
                &mut segment,
                ptr::null_mut()
            ),
            privseg_status::Ok
        );
        assert_eq!(
            privseg_engine_new(
                policy,
                "crm-sync".as_ptr().cast(),
                8,
                roles.as_ptr(),
                1,
                &mut engine
            ),
            privseg_status::Ok
        );
    }
    let shared = SharedEngine(engine, segment);
    const SUBJECTS: u64 = 120;
    const READERS: u64 = 3;
    const ROUNDS: u64 = 40;
    let writer = std::thread::spawn(move || {
        let shared = shared;
        for i in 0..SUBJECTS {
            let id = format!("w-{i}");
            let ev = grant(&id);
            let value = privseg_value {
                kind: privseg_value_kind::Integer as u32,
                integer: 1000,
                text: privseg_str {
                    ptr: ptr::null(),
                    len: 0,
                },
            };
            let subject = privseg_subject {
                id: s(&id),
                jurisdiction: s("EU-FR"),
                birth_date: s("1970-01-01"),
            };
            let update = privseg_attribute_update {
                subject: s(&id),
                attribute: s("total_spend"),
                value,
                verified_at: T0,
            };
            // SAFETY: the engine is alive until every thread has joined;
            // the strings outlive the calls.
            unsafe {
                assert_eq!(
                    privseg_engine_import(shared.0, &subject, 1, &update, 1, &ev, 1),
                    privseg_status::Ok
                );
            }
        }
    });
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            std::thread::spawn(move || {
                let shared = shared;
                let mut last = 0;
                for _ in 0..ROUNDS {
                    // SAFETY: as for the writer; each members result and
                    // buffer is freed once.
                    unsafe {
                        let mut m = ptr::null_mut();
                        assert_eq!(
                            privseg_engine_evaluate(shared.0, shared.1, T0 + 10, &mut m),
                            privseg_status::Ok
                        );
                        let mut count = 0;
                        assert_eq!(privseg_members_count(m, &mut count), privseg_status::Ok);
                        // The writer only adds members: a later evaluation
                        // never sees fewer (each write is seen whole).
                        assert!(count >= last, "{count} < {last}");
                        last = count;
                        let mut ids = ptr::null_mut();
                        assert_eq!(
                            privseg_members_ids(m, shared.0, &mut ids),
                            privseg_status::Ok
                        );
                        let mut len = 0;
                        assert_eq!(privseg_buffer_len(ids, &mut len), privseg_status::Ok);
                        let mut bytes = vec![0 as c_char; len + 1];
                        let mut got = 0;
                        assert_eq!(
                            privseg_buffer_copy(ids, bytes.as_mut_ptr(), bytes.len(), &mut got),
                            privseg_status::Ok
                        );
                        let released = bytes[..got].iter().filter(|&&b| b == 0).count() as u64;
                        assert_eq!(released, count);
                        privseg_buffer_free(ids);
                        privseg_members_free(m);
                        let (mut k, mut below) = (0, 0);
                        assert_eq!(
                            privseg_engine_count(shared.0, shared.1, T0 + 10, &mut k, &mut below),
                            privseg_status::Ok
                        );
                    }
                }
                last
            })
        })
        .collect();
    writer.join().unwrap();
    for r in readers {
        assert!(r.join().unwrap() <= SUBJECTS);
    }
    // SAFETY: every thread has joined; the last references, released once.
    unsafe {
        let mut m = ptr::null_mut();
        assert_eq!(
            privseg_engine_evaluate(engine, segment, T0 + 10, &mut m),
            privseg_status::Ok
        );
        let mut count = 0;
        assert_eq!(privseg_members_count(m, &mut count), privseg_status::Ok);
        assert_eq!(count, SUBJECTS);
        privseg_members_free(m);
        // No entry lost: the policy load, one import per subject, per
        // reader round an evaluation, a release and a count, and the last
        // evaluation.
        let mut entries = 0;
        assert_eq!(
            privseg_engine_audit_len(engine, &mut entries),
            privseg_status::Ok
        );
        assert_eq!(entries, 1 + SUBJECTS + READERS * ROUNDS * 3 + 1);
        privseg_engine_free(engine);
        privseg_segment_free(segment);
        privseg_policy_free(policy);
    }
}

fn grant(id: &str) -> privseg_event {
    let none = privseg_str {
        ptr: ptr::null(),
        len: 0,
    };
    privseg_event {
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
        evidence_sha256: none,
    }
}
