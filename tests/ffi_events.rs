//! Every event kind recorded through the C API has the same effect as the
//! same event recorded through the Rust API, both made by the same actor:
//! the same acceptance or refusal, the same explanation of the subject
//! afterwards, and the same subject access report (its history keeps the
//! evidence digest).

use std::ffi::c_char;
use std::ptr;
use std::sync::Arc;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::ffi::*;
use privseg::policy::Policy;
use privseg::{Actor, Engine, Timestamp};

const POLICY: &str = include_str!("../examples/c/policy.json");
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const SEGMENT: &str = r#"segment "fr" for marketing.email where country = "FR""#;
const T0: i64 = 1_772_359_200;
const EVIDENCE: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn s(text: &str) -> privseg_str {
    privseg_str {
        ptr: text.as_ptr().cast::<c_char>(),
        len: text.len(),
    }
}

fn opt(text: Option<&str>) -> privseg_str {
    text.map_or(
        privseg_str {
            ptr: ptr::null(),
            len: 0,
        },
        s,
    )
}

/// The C kind value of each Rust kind, as the header lists them.
fn c_kind(k: EventKind) -> u32 {
    let kind = match k {
        EventKind::ConsentGranted => privseg_event_kind::ConsentGranted,
        EventKind::ConsentRefused => privseg_event_kind::ConsentRefused,
        EventKind::ConsentWithdrawn => privseg_event_kind::ConsentWithdrawn,
        EventKind::Objection => privseg_event_kind::Objection,
        EventKind::Restriction => privseg_event_kind::Restriction,
        EventKind::RestrictionLifted => privseg_event_kind::RestrictionLifted,
        EventKind::OptOutSaleShare => privseg_event_kind::OptOutSaleShare,
        EventKind::OptInSaleShare => privseg_event_kind::OptInSaleShare,
        EventKind::LimitSensitive => privseg_event_kind::LimitSensitive,
        EventKind::Gpc => privseg_event_kind::Gpc,
        EventKind::Unsubscribe => privseg_event_kind::Unsubscribe,
        EventKind::SoftOptIn => privseg_event_kind::SoftOptIn,
        EventKind::ParentalConsent => privseg_event_kind::ParentalConsent,
    };
    kind as u32
}

/// Reads a text through a C function following the buffer convention.
fn text(f: impl FnOnce(*mut c_char, usize, &mut usize) -> privseg_status) -> String {
    let mut buf = vec![0 as c_char; 8192];
    let mut n = 0;
    assert_eq!(f(buf.as_mut_ptr(), buf.len(), &mut n), privseg_status::Ok);
    String::from_utf8(buf[..n].iter().map(|&c| c as u8).collect()).unwrap()
}

fn explain_c(engine: *const privseg_engine, seg: *const privseg_segment, at: i64) -> String {
    // SAFETY: live handles, a buffer of the given length and a valid out-pointer.
    text(|b, l, n| unsafe { privseg_engine_explain(engine, seg, c"c-1".as_ptr(), 3, at, b, l, n) })
}

fn report_c(engine: *const privseg_engine, seg: *const privseg_segment, at: i64) -> String {
    // SAFETY: live handles, a one-element segment array, a buffer of the
    // given length and a valid out-pointer.
    text(|b, l, n| unsafe {
        privseg_engine_subject_report(engine, c"c-1".as_ptr(), 3, &seg, 1, at, b, l, n)
    })
}

#[test]
fn each_kind_has_the_same_effect_through_both_apis() {
    let policy = Arc::new(Policy::from_json(POLICY).unwrap());
    let t = Timestamp::from_unix(T0);
    for kind in EventKind::ALL {
        // Purpose and notice where the kind takes them; the others without.
        let with_purpose = matches!(
            kind,
            EventKind::ConsentGranted
                | EventKind::ConsentRefused
                | EventKind::ConsentWithdrawn
                | EventKind::ParentalConsent
                | EventKind::SoftOptIn
                | EventKind::Objection
                | EventKind::Unsubscribe
        );
        let with_notice = matches!(kind, EventKind::ConsentGranted | EventKind::ParentalConsent);
        let purpose = with_purpose.then_some("marketing.email");
        let notice = with_notice.then_some("v3");
        let sha = with_notice.then_some(SHA);

        // Rust: a grant first, then the event of this kind an hour later.
        let crm = Actor::new("crm-sync", &["crm"]);
        let mut rust = Engine::new(policy.clone());
        rust.add_subject(
            &crm,
            "c-1",
            "EU-FR",
            privseg::timestamp::parse_date("1980-01-01").ok(),
        )
        .unwrap();
        rust.set_attribute(&crm, "c-1", "country", "FR".into(), t)
            .unwrap();
        rust.record(
            &crm,
            &ConsentEvent::grant("c-1", "marketing.email", t, "v3", SHA),
        )
        .unwrap();
        let mut ev = ConsentEvent::new("c-1", kind, purpose, t.add_secs(3600));
        ev.notice_version = notice.map(Into::into);
        ev.notice_sha256 = sha.map(Into::into);
        ev.evidence_sha256 = Some(EVIDENCE.into());
        let rust_result = rust.record(&crm, &ev);
        let seg = rust.compile(&crm, SEGMENT).unwrap();
        let later = t.add_secs(7200);
        let rust_json =
            serde_json::to_string(&rust.explain(&crm, &seg, "c-1", later).unwrap()).unwrap();
        let rust_report = serde_json::to_string(
            &rust
                .subject_report(&crm, "c-1", std::slice::from_ref(&seg), later)
                .unwrap(),
        )
        .unwrap();
        if rust_result.is_ok() {
            assert!(rust_report.contains(EVIDENCE), "{kind:?}");
        }

        // C: the same, through the C API.
        let json = include_str!("../examples/c/policy.json");
        let (mut p, mut e, mut cseg) = (ptr::null(), ptr::null_mut(), ptr::null());
        // SAFETY: valid strings, structs and out-pointers throughout; every
        // handle is freed once at the end.
        unsafe {
            assert_eq!(
                privseg_policy_from_json(json.as_ptr().cast(), json.len(), &mut p, ptr::null_mut()),
                privseg_status::Ok
            );
            let roles = [s("crm")];
            assert_eq!(
                privseg_engine_new(p, c"crm-sync".as_ptr(), 8, roles.as_ptr(), 1, &mut e),
                privseg_status::Ok
            );
            let (id, j, b) = (s("c-1"), s("EU-FR"), s("1980-01-01"));
            assert_eq!(
                privseg_engine_add_subject(e, id.ptr, id.len, j.ptr, j.len, b.ptr, b.len),
                privseg_status::Ok
            );
            let update = privseg_attribute_update {
                subject: s("c-1"),
                attribute: s("country"),
                value: privseg_value {
                    kind: privseg_value_kind::String as u32,
                    integer: 0,
                    text: s("FR"),
                },
                verified_at: T0,
            };
            assert_eq!(
                privseg_engine_set_attributes(e, &update, 1),
                privseg_status::Ok
            );
            let event = |kind: u32, purpose, notice, sha, at, evidence| privseg_event {
                subject: s("c-1"),
                kind,
                purpose: opt(purpose),
                at,
                notice_version: opt(notice),
                notice_sha256: opt(sha),
                channel: opt(None),
                collector: opt(None),
                expires_at: 0,
                flags: 0,
                evidence_sha256: opt(evidence),
            };
            let grant = event(
                privseg_event_kind::ConsentGranted as u32,
                Some("marketing.email"),
                Some("v3"),
                Some(SHA),
                T0,
                None,
            );
            assert_eq!(privseg_engine_record(e, &grant), privseg_status::Ok);
            let this = event(
                c_kind(kind),
                purpose,
                notice,
                sha,
                T0 + 3600,
                Some(EVIDENCE),
            );
            let st = privseg_engine_record(e, &this);
            match &rust_result {
                Ok(()) => assert_eq!(st, privseg_status::Ok, "{kind:?}"),
                Err(_) => assert_eq!(st, privseg_status::InvalidEvent, "{kind:?}"),
            }
            assert_eq!(
                privseg_segment_compile(
                    p,
                    SEGMENT.as_ptr().cast(),
                    SEGMENT.len(),
                    &mut cseg,
                    ptr::null_mut()
                ),
                privseg_status::Ok
            );
            assert_eq!(explain_c(e, cseg, T0 + 7200), rust_json, "{kind:?}");
            assert_eq!(report_c(e, cseg, T0 + 7200), rust_report, "{kind:?}");
            privseg_segment_free(cseg);
            privseg_engine_free(e);
            privseg_policy_free(p);
        }
    }
}
