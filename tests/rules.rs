//! One scenario per rule of COMPLIANCE.md enforced by the core: each shows
//! the allowed case and the refused case.

mod common;

use common::*;
use privseg::consent::{ConsentEvent, Denial, Eligibility, EventKind, Rule};
use privseg::timestamp::parse_date;

const ALL_EMAIL: &str = r#"segment "all" for marketing.email"#;

fn refusal(seg: &str) -> privseg::segment::SegmentError {
    engine()
        .compile(&admin(), seg)
        .expect_err("should be refused")
}

#[test]
fn r1_every_segment_declares_a_known_purpose() {
    let e = engine();
    assert!(e.compile(&admin(), ALL_EMAIL).is_ok());
    let err = refusal(r#"segment "x" for marketing.sms"#);
    assert_eq!(err.rule(), Some(Rule::R1));
    assert_eq!(err.snippet(), "marketing.sms");
    let err = privseg::segment::parse(r#"segment "x" where country = "FR""#).unwrap_err();
    assert!(err.message().contains("R1"), "{err}");
}

#[test]
fn r2_purpose_limitation_and_minimisation() {
    let e = engine();
    assert!(
        e.compile(
            &admin(),
            r#"segment "ok" for analytics.product where country = "FR""#
        )
        .is_ok()
    );
    let err = refusal(r#"segment "x" for analytics.product where newsletter = true"#);
    assert_eq!(err.rule(), Some(Rule::R2));
    assert_eq!(err.attribute(), Some("newsletter"));
    assert_eq!(err.purpose(), Some("analytics.product"));
    assert_eq!((err.line(), err.column()), (1, 41));
    assert!(err.to_string().contains("^^^^^^^^^^"), "{err}");
}

#[test]
fn r3_consent_must_be_valid_current_and_to_an_accepted_notice() {
    let mut e = engine();
    for id in ["ok", "none", "refused", "old-notice", "expired"] {
        adult(&mut e, id, "EU-DE");
    }
    grant(
        &mut e,
        "ok",
        "marketing.email",
        "2026-01-01T00:00:00Z",
        "v4",
    );
    event(
        &mut e,
        "refused",
        EventKind::ConsentRefused,
        Some("marketing.email"),
        "2026-01-01T00:00:00Z",
    );
    grant(
        &mut e,
        "old-notice",
        "marketing.email",
        "2026-01-01T00:00:00Z",
        "v2",
    );
    grant(
        &mut e,
        "expired",
        "marketing.email",
        "2024-01-01T00:00:00Z",
        "v3",
    );
    let at = "2026-06-01T00:00:00Z";
    assert_eq!(members(&e, ALL_EMAIL, at), ["ok"]);
    let why = |id| {
        e.eligibility_at(&admin(), id, "marketing.email", t(at))
            .unwrap()
    };
    assert_eq!(why("none"), Eligibility::Denied(Denial::NoConsent));
    assert_eq!(why("refused"), Eligibility::Denied(Denial::ConsentRefused));
    assert_eq!(
        why("old-notice"),
        Eligibility::Denied(Denial::NoticeNotAccepted {
            version: "v2".into()
        })
    );
    match why("expired") {
        Eligibility::Denied(d @ Denial::ConsentExpired { .. }) => assert_eq!(d.rule(), Rule::R3),
        other => panic!("{other:?}"),
    }
    // An explicit expiry earlier than the policy's validity wins.
    let mut ev = ConsentEvent::grant(
        "ok",
        "marketing.email",
        t("2026-06-02T00:00:00Z"),
        "v4",
        SHA,
    );
    ev.expires_at = Some(t("2026-06-03T00:00:00Z"));
    e.record(&admin(), &ev).unwrap();
    assert_eq!(members(&e, ALL_EMAIL, "2026-06-02T12:00:00Z"), ["ok"]);
    assert!(members(&e, ALL_EMAIL, "2026-06-03T00:00:00Z").is_empty());
}

#[test]
fn r4_withdrawal_takes_effect_at_once_and_by_its_time() {
    let mut e = engine();
    adult(&mut e, "c-1", "EU-FR");
    grant(
        &mut e,
        "c-1",
        "marketing.email",
        "2026-01-01T00:00:00Z",
        "v3",
    );
    assert_eq!(members(&e, ALL_EMAIL, "2026-02-01T00:00:00Z"), ["c-1"]);
    event(
        &mut e,
        "c-1",
        EventKind::ConsentWithdrawn,
        Some("marketing.email"),
        "2026-01-15T00:00:00Z",
    );
    assert!(members(&e, ALL_EMAIL, "2026-02-01T00:00:00Z").is_empty());
    // Before the withdrawal's time the consent still held.
    assert_eq!(members(&e, ALL_EMAIL, "2026-01-10T00:00:00Z"), ["c-1"]);
    assert_eq!(
        e.eligibility_at(
            &admin(),
            "c-1",
            "marketing.email",
            t("2026-02-01T00:00:00Z")
        )
        .unwrap(),
        Eligibility::Denied(Denial::ConsentWithdrawn)
    );
    // A new consent after the withdrawal counts again.
    grant(
        &mut e,
        "c-1",
        "marketing.email",
        "2026-03-01T00:00:00Z",
        "v3",
    );
    assert_eq!(members(&e, ALL_EMAIL, "2026-03-02T00:00:00Z"), ["c-1"]);
}

#[test]
fn r6_objection_to_direct_marketing_is_absolute() {
    let mut e = engine();
    adult(&mut e, "obj", "EU-FR");
    adult(&mut e, "ok", "EU-FR");
    for id in ["obj", "ok"] {
        grant(&mut e, id, "marketing.email", "2026-01-01T00:00:00Z", "v3");
        event(
            &mut e,
            id,
            EventKind::SoftOptIn,
            Some("marketing.newsletter"),
            "2026-01-01T00:00:00Z",
        );
    }
    event(
        &mut e,
        "obj",
        EventKind::Objection,
        None,
        "2026-02-01T00:00:00Z",
    );
    let at = "2026-03-01T00:00:00Z";
    assert_eq!(members(&e, ALL_EMAIL, at), ["ok"]);
    assert_eq!(
        members(&e, r#"segment "n" for marketing.newsletter"#, at),
        ["ok"]
    );
    // Non-marketing purposes are not affected by a marketing objection.
    assert_eq!(
        members(&e, r#"segment "b" for service.billing"#, at),
        ["obj", "ok"]
    );
    // An objection to one non-marketing purpose covers it (and below).
    event(
        &mut e,
        "ok",
        EventKind::Objection,
        Some("analytics.product"),
        "2026-02-01T00:00:00Z",
    );
    assert_eq!(
        members(&e, r#"segment "a" for analytics.product"#, at),
        ["obj"]
    );
}

#[test]
fn r7_special_categories_need_permission_and_explicit_consent() {
    let mut e = engine();
    let err = refusal(r#"segment "x" for marketing.email where condition = "diabetes""#);
    assert_eq!(
        err.rule(),
        Some(Rule::R2),
        "not allowed at all for marketing: {err}"
    );
    let seg = r#"segment "care" for care.programs where condition = "diabetes""#;
    assert!(e.compile(&admin(), seg).is_ok());
    for id in ["explicit", "plain"] {
        adult(&mut e, id, "EU-DE");
        e.set_attribute(
            &admin(),
            id,
            "condition",
            "diabetes".into(),
            t("2026-01-01T00:00:00Z"),
        )
        .unwrap();
    }
    let mut ev = ConsentEvent::grant(
        "explicit",
        "care.programs",
        t("2026-01-01T00:00:00Z"),
        "h1",
        SHA,
    );
    ev.explicit = true;
    e.record(&admin(), &ev).unwrap();
    grant(
        &mut e,
        "plain",
        "care.programs",
        "2026-01-01T00:00:00Z",
        "h1",
    );
    assert_eq!(members(&e, seg, "2026-02-01T00:00:00Z"), ["explicit"]);
    let checked = e.compile(&admin(), seg).unwrap();
    let ex = e
        .explain_at(&admin(), &checked, "plain", t("2026-02-01T00:00:00Z"))
        .unwrap();
    assert_eq!(
        ex.eligibility,
        Eligibility::Denied(Denial::NoExplicitConsent)
    );
    // Without the special attribute the plain consent suffices.
    assert_eq!(
        members(
            &e,
            r#"segment "c" for care.programs"#,
            "2026-02-01T00:00:00Z"
        ),
        ["explicit", "plain"]
    );
    // A purpose that allows only a broad non-special prefix does not allow special data.
    let p = privseg::policy::PolicyBuilder::new("X")
        .category(privseg::policy::CategorySpec::new("user.health").special())
        .attribute(privseg::policy::AttributeSpec::boolean(
            "ill",
            "user.health",
        ))
        .purpose(
            privseg::policy::PurposeSpec::new(
                "research",
                privseg::policy::LawfulBasis::LegitimateInterests,
            )
            .allow("user"),
        )
        .build()
        .unwrap();
    let err =
        privseg::segment::compile(&p, r#"segment "r" for research where ill = true"#).unwrap_err();
    assert_eq!(err.rule(), Some(Rule::R7));
}

#[test]
fn r8_criminal_data_is_never_usable() {
    let err = refusal(r#"segment "x" for legal.claims where convicted = true"#);
    assert_eq!(err.rule(), Some(Rule::R8));
    assert_eq!(err.attribute(), Some("convicted"));
    // And no purpose may even list it.
    let bad = privseg::policy::PolicyBuilder::new("X")
        .category(privseg::policy::CategorySpec::new("user.criminal").criminal())
        .purpose(
            privseg::policy::PurposeSpec::new(
                "legal",
                privseg::policy::LawfulBasis::LegalObligation,
            )
            .allow("user.criminal"),
        )
        .build()
        .unwrap_err();
    assert!(bad.to_string().contains("R8"), "{bad}");
}

#[test]
fn r9_children_need_parental_consent_below_the_national_age() {
    let mut e = engine();
    // In France the age of digital consent is 15; in Germany 16.
    e.add_subject(
        &admin(),
        "fr-15",
        "EU-FR",
        Some(parse_date("2011-01-01").unwrap()),
    )
    .unwrap();
    e.add_subject(
        &admin(),
        "de-15",
        "EU-DE",
        Some(parse_date("2011-01-01").unwrap()),
    )
    .unwrap();
    e.add_subject(
        &admin(),
        "de-15-parent",
        "EU-DE",
        Some(parse_date("2011-01-01").unwrap()),
    )
    .unwrap();
    e.add_subject(&admin(), "unknown", "EU-DE", None).unwrap();
    for id in ["fr-15", "de-15", "de-15-parent", "unknown"] {
        grant(&mut e, id, "marketing.email", "2026-05-01T00:00:00Z", "v3");
    }
    let mut parental = ConsentEvent::grant(
        "de-15-parent",
        "marketing.email",
        t("2026-05-01T00:00:00Z"),
        "v3",
        SHA,
    );
    parental.kind = EventKind::ParentalConsent;
    e.record(&admin(), &parental).unwrap();
    let at = "2026-06-01T00:00:00Z";
    assert_eq!(members(&e, ALL_EMAIL, at), ["fr-15", "de-15-parent"]);
    assert_eq!(
        e.eligibility_at(&admin(), "de-15", "marketing.email", t(at))
            .unwrap(),
        Eligibility::Denied(Denial::UnderAgeOfConsent {
            age: 15,
            required: 16
        })
    );
    assert_eq!(
        e.eligibility_at(&admin(), "unknown", "marketing.email", t(at))
            .unwrap(),
        Eligibility::Denied(Denial::AgeUnknown { required: 16 })
    );
    // Non-consent purposes have no age gate.
    assert!(
        e.eligibility_at(&admin(), "de-15", "analytics.product", t(at))
            .unwrap()
            .is_allowed()
    );
}

const ADS: &str = r#"segment "ads" for marketing.advertising.third_party"#;

#[test]
fn r10_ccpa_sale_share_is_allowed_until_opt_out() {
    let mut e = engine();
    adult(&mut e, "ca-1", "US-CA");
    adult(&mut e, "ca-2", "US-CA");
    adult(&mut e, "eu-1", "EU-FR");
    event(
        &mut e,
        "ca-2",
        EventKind::OptOutSaleShare,
        None,
        "2026-02-01T00:00:00Z",
    );
    let at = "2026-03-01T00:00:00Z";
    // California: opt-out model. EU: the purpose's consent basis.
    assert_eq!(members(&e, ADS, at), ["ca-1"]);
    assert_eq!(
        e.eligibility_at(&admin(), "ca-2", "marketing.advertising.third_party", t(at))
            .unwrap(),
        Eligibility::Denied(Denial::OptedOut)
    );
    // Opting back in restores it.
    event(
        &mut e,
        "ca-2",
        EventKind::OptInSaleShare,
        None,
        "2026-02-15T00:00:00Z",
    );
    assert_eq!(members(&e, ADS, at), ["ca-1", "ca-2"]);
}

#[test]
fn r11_global_privacy_control_is_an_opt_out() {
    let mut e = engine();
    adult(&mut e, "gpc", "US-CA");
    adult(&mut e, "plain", "US-CA");
    event(&mut e, "gpc", EventKind::Gpc, None, "2026-02-01T00:00:00Z");
    assert_eq!(members(&e, ADS, "2026-03-01T00:00:00Z"), ["plain"]);
    assert_eq!(
        e.eligibility_at(
            &admin(),
            "gpc",
            "marketing.advertising.third_party",
            t("2026-03-01T00:00:00Z")
        )
        .unwrap()
        .clone(),
        Eligibility::Denied(Denial::GlobalPrivacyControl)
    );
    assert_eq!(members(&e, ADS, "2026-01-01T00:00:00Z"), ["gpc", "plain"]);
}

#[test]
fn r12_ccpa_minors_must_opt_in_and_children_need_a_parent() {
    let mut e = engine();
    e.add_subject(
        &admin(),
        "teen",
        "US-CA",
        Some(parse_date("2012-01-01").unwrap()),
    )
    .unwrap();
    e.add_subject(
        &admin(),
        "teen-in",
        "US-CA",
        Some(parse_date("2012-01-01").unwrap()),
    )
    .unwrap();
    e.add_subject(
        &admin(),
        "child-in",
        "US-CA",
        Some(parse_date("2016-01-01").unwrap()),
    )
    .unwrap();
    e.add_subject(
        &admin(),
        "child-parent",
        "US-CA",
        Some(parse_date("2016-01-01").unwrap()),
    )
    .unwrap();
    // A minor's opt-in passes the consent checks: it names a notice version
    // the purpose accepts.
    let mut opt_in = ConsentEvent::new(
        "teen-in",
        EventKind::OptInSaleShare,
        None,
        t("2026-02-01T00:00:00Z"),
    );
    opt_in.notice_version = Some("ads1".into());
    e.record(&admin(), &opt_in).unwrap();
    event(
        &mut e,
        "child-in",
        EventKind::OptInSaleShare,
        None,
        "2026-02-01T00:00:00Z",
    );
    let mut p = ConsentEvent::grant(
        "child-parent",
        "marketing.advertising.third_party",
        t("2026-02-01T00:00:00Z"),
        "ads1",
        SHA,
    );
    p.kind = EventKind::ParentalConsent;
    e.record(&admin(), &p).unwrap();
    let at = "2026-03-01T00:00:00Z";
    assert_eq!(members(&e, ADS, at), ["teen-in", "child-parent"]);
    match e
        .eligibility_at(
            &admin(),
            "child-in",
            "marketing.advertising.third_party",
            t(at),
        )
        .unwrap()
    {
        Eligibility::Denied(
            d @ Denial::MinorWithoutOptIn {
                parental_needed: true,
                ..
            },
        ) => {
            assert_eq!(d.rule(), Rule::R12)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn r14_email_needs_consent_or_soft_opt_in_and_no_unsubscribe() {
    let mut e = engine();
    for id in ["soft", "none", "unsub", "resub"] {
        adult(&mut e, id, "EU-FR");
    }
    for id in ["soft", "unsub", "resub"] {
        event(
            &mut e,
            id,
            EventKind::SoftOptIn,
            Some("marketing.newsletter"),
            "2026-01-01T00:00:00Z",
        );
    }
    event(
        &mut e,
        "unsub",
        EventKind::Unsubscribe,
        None,
        "2026-02-01T00:00:00Z",
    );
    event(
        &mut e,
        "resub",
        EventKind::Unsubscribe,
        Some("marketing.newsletter"),
        "2026-02-01T00:00:00Z",
    );
    grant(
        &mut e,
        "resub",
        "marketing.newsletter",
        "2026-02-10T00:00:00Z",
        "any",
    );
    let seg = r#"segment "n" for marketing.newsletter"#;
    assert_eq!(members(&e, seg, "2026-03-01T00:00:00Z"), ["soft", "resub"]);
    let at = t("2026-03-01T00:00:00Z");
    assert_eq!(
        e.eligibility_at(&admin(), "none", "marketing.newsletter", at)
            .unwrap(),
        Eligibility::Denied(Denial::NoEmailPermission)
    );
    assert_eq!(
        e.eligibility_at(&admin(), "unsub", "marketing.newsletter", at)
            .unwrap(),
        Eligibility::Denied(Denial::Unsubscribed)
    );
    // The soft opt-in does not apply to a purpose that does not allow it.
    let err = e
        .record(
            &admin(),
            &ConsentEvent::new("soft", EventKind::SoftOptIn, Some("marketing.email"), at),
        )
        .unwrap_err();
    assert!(err.to_string().contains("R14"), "{err}");
}

#[test]
fn r15_restriction_excludes_all_but_exempt_purposes() {
    let mut e = engine();
    adult(&mut e, "r", "EU-FR");
    event(
        &mut e,
        "r",
        EventKind::Restriction,
        None,
        "2026-02-01T00:00:00Z",
    );
    let at = "2026-03-01T00:00:00Z";
    assert!(members(&e, r#"segment "b" for service.billing"#, at).is_empty());
    assert_eq!(members(&e, r#"segment "l" for legal.claims"#, at), ["r"]);
    event(
        &mut e,
        "r",
        EventKind::RestrictionLifted,
        None,
        "2026-02-15T00:00:00Z",
    );
    assert_eq!(members(&e, r#"segment "b" for service.billing"#, at), ["r"]);
    assert!(
        members(
            &e,
            r#"segment "b" for service.billing"#,
            "2026-02-10T00:00:00Z"
        )
        .is_empty()
    );
}

#[test]
fn r16_stale_values_do_not_match() {
    let mut e = engine();
    adult(&mut e, "fresh", "EU-FR");
    adult(&mut e, "stale", "EU-FR");
    e.set_attribute(
        &admin(),
        "fresh",
        "country",
        "FR".into(),
        t("2026-02-20T00:00:00Z"),
    )
    .unwrap();
    e.set_attribute(
        &admin(),
        "stale",
        "country",
        "FR".into(),
        t("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    // analytics.product allows values verified at most 30 days ago.
    let seg = r#"segment "a" for analytics.product where country = "FR""#;
    assert_eq!(members(&e, seg, "2026-03-01T00:00:00Z"), ["fresh"]);
    assert_eq!(members(&e, seg, "2026-01-15T00:00:00Z"), ["fresh", "stale"]);
    // `not` does not turn a stale value into a match of `!=`.
    let ne = r#"segment "a" for analytics.product where country != "DE""#;
    assert_eq!(members(&e, ne, "2026-03-01T00:00:00Z"), ["fresh"]);
    let checked = e.compile(&admin(), seg).unwrap();
    let ex = e
        .explain_at(&admin(), &checked, "stale", t("2026-03-01T00:00:00Z"))
        .unwrap();
    assert!(!ex.member && ex.eligibility.is_allowed());
    assert_eq!(ex.failing_terms[0].term, "country = \"FR\"");
}

#[test]
fn r13_limit_sensitive_data_keeps_only_necessary_purposes() {
    let mut e = engine();
    adult(&mut e, "lim", "US-CA");
    e.set_attribute(
        &admin(),
        "lim",
        "balance",
        10.into(),
        t("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    event(
        &mut e,
        "lim",
        EventKind::LimitSensitive,
        None,
        "2026-02-01T00:00:00Z",
    );
    let at = "2026-03-01T00:00:00Z";
    assert!(
        members(
            &e,
            r#"segment "a" for analytics.product where balance > 0"#,
            "2026-01-05T00:00:00Z"
        )
        .len()
            == 1
    );
    assert!(
        members(
            &e,
            r#"segment "a" for analytics.product where balance > 0"#,
            at
        )
        .is_empty()
    );
    assert_eq!(
        members(
            &e,
            r#"segment "b" for service.billing where balance > 0"#,
            at
        ),
        ["lim"]
    );
}

#[test]
fn r20_protected_attributes_are_never_predicate_terms() {
    let err = refusal(r#"segment "x" for legal.claims where ethnicity = "a""#);
    assert_eq!(err.rule(), Some(Rule::R20));
    let err = refusal(r#"segment "x" for legal.claims where has(ethnicity)"#);
    assert_eq!(err.rule(), Some(Rule::R20));
    assert!(
        engine()
            .compile(
                &admin(),
                r#"segment "x" for legal.claims where country = "FR""#
            )
            .is_ok()
    );
}

#[test]
fn r21_erased_subjects_are_never_returned() {
    let mut e = engine();
    adult(&mut e, "gone", "EU-FR");
    adult(&mut e, "kept", "EU-FR");
    e.set_attribute(
        &admin(),
        "gone",
        "country",
        "FR".into(),
        t("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    let seg = r#"segment "b" for service.billing where country = "FR" or not has(country)"#;
    e.erase(&admin(), "gone").unwrap();
    assert_eq!(members(&e, seg, "2026-02-01T00:00:00Z"), ["kept"]);
    assert!(e.history(&admin(), "gone").is_err());
    assert_eq!(e.subject_count(), 1);
    // The id can come back as a new subject, with nothing of the old one.
    adult(&mut e, "gone", "EU-FR");
    assert_eq!(e.attribute(&admin(), "gone", "country").unwrap(), None);
}

#[test]
fn an_import_after_an_evaluation_is_seen_by_the_next_one() {
    use privseg::import::SubjectRow;
    let mut e = engine();
    adult(&mut e, "a", "EU-FR");
    grant(&mut e, "a", "marketing.email", "2026-01-01T00:00:00Z", "v3");
    let at = "2026-02-01T00:00:00Z";
    // The first evaluation builds and caches the purpose's mask.
    assert_eq!(members(&e, ALL_EMAIL, at), ["a"]);
    let rows = vec![SubjectRow {
        id: "b".into(),
        jurisdiction: "EU-DE".into(),
        birth_date: parse_date("1970-01-01").ok(),
        values: vec![],
    }];
    let events = vec![
        ConsentEvent::grant("b", "marketing.email", t("2026-01-02T00:00:00Z"), "v3", SHA),
        ConsentEvent::new(
            "a",
            EventKind::ConsentWithdrawn,
            Some("marketing.email"),
            t("2026-01-03T00:00:00Z"),
        ),
    ];
    e.import(&admin(), &rows, &events).unwrap();
    assert_eq!(members(&e, ALL_EMAIL, at), ["b"]);
}

#[test]
fn a_small_import_updates_the_cached_masks_row_by_row() {
    use privseg::import::SubjectRow;
    let mut e = engine();
    for i in 0..100 {
        let id = format!("s{i}");
        adult(&mut e, &id, "EU-FR");
        grant(&mut e, &id, "marketing.email", "2026-01-01T00:00:00Z", "v3");
    }
    let at = "2026-02-01T00:00:00Z";
    assert_eq!(members(&e, ALL_EMAIL, at).len(), 100);
    // One withdrawal for an existing subject, one new subject with a grant:
    // few enough rows that the cached mask is updated, not rebuilt.
    let rows = vec![SubjectRow {
        id: "new".into(),
        jurisdiction: "EU-DE".into(),
        birth_date: parse_date("1970-01-01").ok(),
        values: vec![],
    }];
    let events = vec![
        ConsentEvent::new(
            "s7",
            EventKind::ConsentWithdrawn,
            Some("marketing.email"),
            t("2026-01-05T00:00:00Z"),
        ),
        ConsentEvent::grant(
            "new",
            "marketing.email",
            t("2026-01-06T00:00:00Z"),
            "v3",
            SHA,
        ),
    ];
    e.import(&admin(), &rows, &events).unwrap();
    let m = members(&e, ALL_EMAIL, at);
    assert_eq!(m.len(), 100);
    assert!(!m.contains(&"s7".to_string()));
    assert!(m.contains(&"new".to_string()));
}

// ---- Minors, precisely (R9, R12): one test per paragraph ------------------

use privseg::consent::{EventError, Grounds};
use privseg::import::SubjectRow;
use privseg::{Engine, EngineError};

fn born(e: &mut Engine, id: &str, juris: &str, birth: Option<&str>) {
    e.add_subject(&admin(), id, juris, birth.map(|b| parse_date(b).unwrap()))
        .unwrap();
}

fn parental(id: &str, purpose: &str, at: &str, notice: &str) -> ConsentEvent {
    let mut p = ConsentEvent::grant(id, purpose, t(at), notice, SHA);
    p.kind = EventKind::ParentalConsent;
    p
}

fn why(e: &Engine, id: &str, purpose: &str, at: &str) -> Eligibility {
    e.eligibility_at(&admin(), id, purpose, t(at)).unwrap()
}

const EMAIL: &str = "marketing.email";
const ADS_PURPOSE: &str = "marketing.advertising.third_party";

#[test]
fn minors_below_the_gate_need_a_parental_consent_valid_at_the_time() {
    let mut e = engine();
    // Germany: age gate 16. All born 2012-01-01, so 14 all through 2026.
    let kids = [
        "ok",
        "own-only",
        "old-notice",
        "expired",
        "withdrawn",
        "refused",
        "objected",
        "other-purpose",
    ];
    for id in kids {
        born(&mut e, id, "EU-DE", Some("2012-01-01"));
    }
    e.record(
        &admin(),
        &parental("ok", EMAIL, "2026-03-01T00:00:00Z", "v4"),
    )
    .unwrap();
    grant(&mut e, "own-only", EMAIL, "2026-03-01T00:00:00Z", "v4");
    e.record(
        &admin(),
        &parental("old-notice", EMAIL, "2026-03-01T00:00:00Z", "v2"),
    )
    .unwrap();
    // marketing.email consents are valid for 365 days from when given.
    e.record(
        &admin(),
        &parental("expired", EMAIL, "2025-03-01T00:00:00Z", "v4"),
    )
    .unwrap();
    for id in ["withdrawn", "refused", "objected"] {
        e.record(&admin(), &parental(id, EMAIL, "2026-03-01T00:00:00Z", "v4"))
            .unwrap();
    }
    let ended = "2026-04-01T00:00:00Z";
    event(
        &mut e,
        "withdrawn",
        EventKind::ConsentWithdrawn,
        Some(EMAIL),
        ended,
    );
    event(
        &mut e,
        "refused",
        EventKind::ConsentRefused,
        Some(EMAIL),
        ended,
    );
    event(&mut e, "objected", EventKind::Objection, None, ended);
    e.record(
        &admin(),
        &parental(
            "other-purpose",
            "care.programs",
            "2026-03-01T00:00:00Z",
            "h1",
        ),
    )
    .unwrap();

    let before = "2026-03-15T00:00:00Z";
    let at = "2026-06-01T00:00:00Z";
    assert_eq!(
        members(&e, ALL_EMAIL, before),
        ["ok", "withdrawn", "refused", "objected"]
    );
    assert_eq!(members(&e, ALL_EMAIL, at), ["ok"]);
    assert_eq!(
        why(&e, "ok", EMAIL, at),
        Eligibility::Allowed(Grounds::ParentalConsent)
    );
    let under = Eligibility::Denied(Denial::UnderAgeOfConsent {
        age: 14,
        required: 16,
    });
    assert_eq!(why(&e, "own-only", EMAIL, at), under);
    assert_eq!(why(&e, "other-purpose", EMAIL, at), under);
    assert_eq!(
        why(&e, "old-notice", EMAIL, at),
        Eligibility::Denied(Denial::NoticeNotAccepted {
            version: "v2".into()
        })
    );
    assert_eq!(
        why(&e, "expired", EMAIL, at),
        Eligibility::Denied(Denial::ConsentExpired {
            expired_at: t("2026-03-01T00:00:00Z")
        })
    );
    assert_eq!(
        why(&e, "withdrawn", EMAIL, at),
        Eligibility::Denied(Denial::ConsentWithdrawn)
    );
    assert_eq!(
        why(&e, "refused", EMAIL, at),
        Eligibility::Denied(Denial::ConsentRefused)
    );
    assert_eq!(
        why(&e, "objected", EMAIL, at),
        Eligibility::Denied(Denial::Objected)
    );
}

#[test]
fn a_grant_given_below_the_gate_never_counts_not_even_after_the_birthday() {
    let mut e = engine();
    // France: age gate 15; 15th birthday on 2026-03-01.
    born(&mut e, "early", "EU-FR", Some("2011-03-01"));
    born(&mut e, "again", "EU-FR", Some("2011-03-01"));
    for id in ["early", "again"] {
        grant(&mut e, id, EMAIL, "2025-06-01T00:00:00Z", "v4"); // aged 14
    }
    // Given on the birthday itself: it counts.
    grant(&mut e, "again", EMAIL, "2026-03-01T00:00:00Z", "v4");
    // Before the birthday, then after it (the cached mask moves across it).
    assert!(members(&e, ALL_EMAIL, "2026-02-01T00:00:00Z").is_empty());
    assert_eq!(members(&e, ALL_EMAIL, "2026-03-15T00:00:00Z"), ["again"]);
    let reason = why(&e, "early", EMAIL, "2026-03-15T00:00:00Z");
    assert_eq!(
        reason,
        Eligibility::Denied(Denial::GrantedBelowAge {
            age: 14,
            required: 15
        })
    );
    if let Eligibility::Denied(d) = &reason {
        assert_eq!(d.rule(), Rule::R9);
        assert!(d.to_string().contains("given at age 14"), "{d}");
    }
    assert_eq!(
        why(&e, "again", EMAIL, "2026-03-15T00:00:00Z"),
        Eligibility::Allowed(Grounds::Consent)
    );

    // CCPA: an opt-in given at 12 does not start counting at 13.
    born(&mut e, "ca-12", "US-CA", Some("2013-09-01"));
    let mut opt_in = ConsentEvent::new(
        "ca-12",
        EventKind::OptInSaleShare,
        None,
        t("2026-06-01T00:00:00Z"),
    );
    opt_in.notice_version = Some("ads1".into());
    e.record(&admin(), &opt_in).unwrap();
    assert_eq!(
        why(&e, "ca-12", ADS_PURPOSE, "2026-10-01T00:00:00Z"),
        Eligibility::Denied(Denial::MinorWithoutOptIn {
            age: Some(13),
            parental_needed: false
        })
    );
    assert!(members(&e, ADS, "2026-10-01T00:00:00Z").is_empty());
}

#[test]
fn after_the_birthday_a_valid_parental_consent_continues_until_the_subject_decides() {
    let mut e = engine();
    // France: age gate 15; 15th birthday on 2026-03-01.
    for id in ["kept", "grants", "withdraws", "refuses"] {
        born(&mut e, id, "EU-FR", Some("2011-03-01"));
        e.record(&admin(), &parental(id, EMAIL, "2026-01-01T00:00:00Z", "v3"))
            .unwrap();
    }
    let decided = "2026-04-01T00:00:00Z";
    // The own grant is to v4 and has an explicit expiry: it now rules.
    let mut own = ConsentEvent::grant("grants", EMAIL, t(decided), "v4", SHA);
    own.expires_at = Some(t("2026-08-01T00:00:00Z"));
    e.record(&admin(), &own).unwrap();
    event(
        &mut e,
        "withdraws",
        EventKind::ConsentWithdrawn,
        Some(EMAIL),
        decided,
    );
    event(
        &mut e,
        "refuses",
        EventKind::ConsentRefused,
        Some(EMAIL),
        decided,
    );

    // After the birthday, before deciding: the parental consent carries on.
    assert_eq!(
        members(&e, ALL_EMAIL, "2026-03-15T00:00:00Z"),
        ["kept", "grants", "withdraws", "refuses"]
    );
    assert_eq!(
        why(&e, "kept", EMAIL, "2026-03-15T00:00:00Z"),
        Eligibility::Allowed(Grounds::ParentalConsent)
    );
    // After deciding: their own decision rules.
    let at = "2026-06-01T00:00:00Z";
    assert_eq!(members(&e, ALL_EMAIL, at), ["kept", "grants"]);
    assert_eq!(
        why(&e, "grants", EMAIL, at),
        Eligibility::Allowed(Grounds::Consent)
    );
    assert_eq!(
        why(&e, "withdraws", EMAIL, at),
        Eligibility::Denied(Denial::ConsentWithdrawn)
    );
    assert_eq!(
        why(&e, "refuses", EMAIL, at),
        Eligibility::Denied(Denial::ConsentRefused)
    );
    // The own grant's expiry is its own; the parental consent does not come
    // back after it.
    assert_eq!(members(&e, ALL_EMAIL, "2026-09-01T00:00:00Z"), ["kept"]);
    // The parental consent ends with its validity (365 days), adult or not.
    assert!(members(&e, ALL_EMAIL, "2027-01-01T00:00:00Z").is_empty());
    assert_eq!(
        why(&e, "kept", EMAIL, "2027-01-01T00:00:00Z"),
        Eligibility::Denied(Denial::ConsentExpired {
            expired_at: t("2027-01-01T00:00:00Z")
        })
    );
}

#[test]
fn a_parental_consent_for_a_subject_not_below_the_gate_is_refused_at_recording() {
    let mut e = engine();
    adult(&mut e, "adult", "EU-DE");
    born(&mut e, "just-16", "EU-DE", Some("2010-05-01"));
    born(&mut e, "ca-14", "US-CA", Some("2012-01-01"));
    born(&mut e, "ca-12", "US-CA", Some("2014-01-01"));
    grant(&mut e, "adult", EMAIL, "2026-01-01T00:00:00Z", "v4");
    event(
        &mut e,
        "adult",
        EventKind::ConsentWithdrawn,
        Some(EMAIL),
        "2026-02-01T00:00:00Z",
    );
    event(
        &mut e,
        "adult",
        EventKind::Unsubscribe,
        None,
        "2026-02-01T00:00:00Z",
    );
    let refused = |e: &mut Engine, ev: &ConsentEvent| {
        let before = e.history(&admin(), &ev.subject).unwrap();
        let err = e.record(&admin(), ev).expect_err("must be refused");
        assert_eq!(e.history(&admin(), &ev.subject).unwrap(), before);
        match err {
            EngineError::Event(err @ EventError::ParentalConsentNotMinor { .. }) => err,
            other => panic!("{other:?}"),
        }
    };
    let err = refused(
        &mut e,
        &parental("adult", EMAIL, "2026-03-01T00:00:00Z", "v4"),
    );
    let msg = err.to_string();
    for part in ["\"adult\"", "was 46", "age gate of 16", "EU-DE", "R9"] {
        assert!(msg.contains(part), "{part:?} missing from {msg}");
    }
    // The adult's own decisions stand.
    assert_eq!(
        why(&e, "adult", EMAIL, "2026-06-01T00:00:00Z"),
        Eligibility::Denied(Denial::Unsubscribed)
    );
    // On the 16th birthday, the subject is no longer below the gate; the day
    // before, they are.
    refused(
        &mut e,
        &parental("just-16", EMAIL, "2026-05-01T00:00:00Z", "v4"),
    );
    e.record(
        &admin(),
        &parental("just-16", EMAIL, "2026-04-30T23:59:59Z", "v4"),
    )
    .unwrap();
    // CCPA: a parent opts in for a child under 13 only.
    let err = refused(
        &mut e,
        &parental("ca-14", ADS_PURPOSE, "2026-03-01T00:00:00Z", "ads1"),
    );
    assert!(err.to_string().contains("age gate of 13"), "{err}");
    e.record(
        &admin(),
        &parental("ca-12", ADS_PURPOSE, "2026-03-01T00:00:00Z", "ads1"),
    )
    .unwrap();
    // An import is refused as a whole, naming the event.
    let err = e
        .import(
            &admin(),
            &[SubjectRow {
                id: "new-adult".into(),
                jurisdiction: "EU-IT".into(),
                birth_date: parse_date("1990-01-01").ok(),
                values: vec![],
            }],
            &[
                parental("ca-12", ADS_PURPOSE, "2026-03-02T00:00:00Z", "ads1"),
                parental("new-adult", EMAIL, "2026-03-01T00:00:00Z", "v4"),
            ],
        )
        .unwrap_err();
    assert_eq!((err.what, err.index), (privseg::ImportItem::Event, 1));
    assert!(err.to_string().starts_with("event 1: "), "{err}");
    assert!(
        matches!(
            *err.error,
            EngineError::Event(EventError::ParentalConsentNotMinor {
                age: 36,
                gate: Some(14),
                ..
            })
        ),
        "{err}"
    );
    assert_eq!(e.history(&admin(), "ca-12").unwrap().len(), 1);
    assert!(e.history(&admin(), "new-adult").is_err());
}

#[test]
fn an_unknown_birth_date_counts_as_may_be_a_minor_and_the_reason_says_so() {
    let mut e = engine();
    for id in ["own", "own-after-withdrawal", "parent"] {
        born(&mut e, id, "EU-DE", None);
    }
    grant(&mut e, "own", EMAIL, "2026-03-01T00:00:00Z", "v4");
    event(
        &mut e,
        "own-after-withdrawal",
        EventKind::ConsentWithdrawn,
        Some(EMAIL),
        "2026-02-01T00:00:00Z",
    );
    grant(
        &mut e,
        "own-after-withdrawal",
        EMAIL,
        "2026-03-01T00:00:00Z",
        "v4",
    );
    // A parental consent may be recorded: the subject may be a child.
    e.record(
        &admin(),
        &parental("parent", EMAIL, "2026-03-01T00:00:00Z", "v4"),
    )
    .unwrap();
    let at = "2026-06-01T00:00:00Z";
    assert_eq!(members(&e, ALL_EMAIL, at), ["parent"]);
    for id in ["own", "own-after-withdrawal"] {
        let reason = why(&e, id, EMAIL, at);
        assert_eq!(
            reason,
            Eligibility::Denied(Denial::AgeUnknown { required: 16 }),
            "{id}"
        );
        if let Eligibility::Denied(d) = reason {
            assert!(d.to_string().contains("birth date unknown"), "{d}");
        }
    }
    // Where the age changes nothing, it is not a reason.
    assert!(why(&e, "own", "analytics.product", at).is_allowed());

    // CCPA: of unknown age, so possibly under 13: a parent must opt in.
    born(&mut e, "ca-own", "US-CA", None);
    born(&mut e, "ca-parent", "US-CA", None);
    let mut opt_in = ConsentEvent::new(
        "ca-own",
        EventKind::OptInSaleShare,
        None,
        t("2026-03-01T00:00:00Z"),
    );
    opt_in.notice_version = Some("ads1".into());
    e.record(&admin(), &opt_in).unwrap();
    e.record(
        &admin(),
        &parental("ca-parent", ADS_PURPOSE, "2026-03-01T00:00:00Z", "ads1"),
    )
    .unwrap();
    assert_eq!(members(&e, ADS, at), ["ca-parent"]);
    let reason = why(&e, "ca-own", ADS_PURPOSE, at);
    assert_eq!(
        reason,
        Eligibility::Denied(Denial::MinorWithoutOptIn {
            age: None,
            parental_needed: true
        })
    );
    if let Eligibility::Denied(d) = reason {
        assert!(d.to_string().contains("birth date unknown"), "{d}");
    }
}

#[test]
fn ccpa_opt_in_from_a_parent_under_13_from_the_consumer_13_to_15_with_the_same_checks() {
    let mut e = engine();
    let opt_in = |id: &str, at: &str, notice: Option<&str>| {
        let mut ev = ConsentEvent::new(id, EventKind::OptInSaleShare, None, t(at));
        ev.notice_version = notice.map(Into::into);
        ev
    };
    // Children (10 in 2026) and teens (14 in 2026; 13th birthday 2025-06-01
    // for "grows").
    for id in [
        "child-own",
        "child-parent",
        "child-old-notice",
        "child-expired",
        "child-withdrawn",
    ] {
        born(&mut e, id, "US-CA", Some("2016-01-01"));
    }
    for id in ["teen-own", "teen-no-notice", "teen-old-notice"] {
        born(&mut e, id, "US-CA", Some("2012-01-01"));
    }
    born(&mut e, "grows", "US-CA", Some("2012-06-01"));
    let at = "2026-03-01T00:00:00Z";
    let given = "2026-02-01T00:00:00Z";
    e.record(&admin(), &opt_in("child-own", given, Some("ads1")))
        .unwrap();
    e.record(
        &admin(),
        &parental("child-parent", ADS_PURPOSE, given, "ads1"),
    )
    .unwrap();
    e.record(
        &admin(),
        &parental("child-old-notice", ADS_PURPOSE, given, "ads0"),
    )
    .unwrap();
    let mut short = parental("child-expired", ADS_PURPOSE, given, "ads1");
    short.expires_at = Some(t("2026-02-15T00:00:00Z"));
    e.record(&admin(), &short).unwrap();
    e.record(
        &admin(),
        &parental("child-withdrawn", ADS_PURPOSE, given, "ads1"),
    )
    .unwrap();
    event(
        &mut e,
        "child-withdrawn",
        EventKind::ConsentWithdrawn,
        Some(ADS_PURPOSE),
        "2026-02-10T00:00:00Z",
    );
    e.record(&admin(), &opt_in("teen-own", given, Some("ads1")))
        .unwrap();
    e.record(&admin(), &opt_in("teen-no-notice", given, None))
        .unwrap();
    e.record(&admin(), &opt_in("teen-old-notice", given, Some("ads0")))
        .unwrap();
    // A parent's consent at 12 carries on after the 13th birthday, until the
    // teen decides: here, an opt-out.
    e.record(
        &admin(),
        &parental("grows", ADS_PURPOSE, "2025-01-01T00:00:00Z", "ads1"),
    )
    .unwrap();
    event(
        &mut e,
        "grows",
        EventKind::OptOutSaleShare,
        None,
        "2026-02-15T00:00:00Z",
    );

    assert_eq!(
        members(&e, ADS, "2026-02-05T00:00:00Z"),
        [
            "child-parent",
            "child-expired",
            "child-withdrawn",
            "teen-own",
            "grows"
        ]
    );
    assert_eq!(members(&e, ADS, at), ["child-parent", "teen-own"]);
    let denied = |id: &str| match why(&e, id, ADS_PURPOSE, at) {
        Eligibility::Denied(d) => d,
        other => panic!("{id}: {other:?}"),
    };
    assert_eq!(
        denied("child-own"),
        Denial::MinorWithoutOptIn {
            age: Some(10),
            parental_needed: true
        }
    );
    assert_eq!(
        denied("child-old-notice"),
        Denial::NoticeNotAccepted {
            version: "ads0".into()
        }
    );
    assert_eq!(
        denied("child-expired"),
        Denial::ConsentExpired {
            expired_at: t("2026-02-15T00:00:00Z")
        }
    );
    assert_eq!(denied("child-withdrawn"), Denial::ConsentWithdrawn);
    let no_notice = denied("teen-no-notice");
    assert_eq!(
        no_notice,
        Denial::NoticeNotAccepted {
            version: String::new()
        }
    );
    assert!(no_notice.to_string().contains("names no notice version"));
    assert_eq!(
        denied("teen-old-notice"),
        Denial::NoticeNotAccepted {
            version: "ads0".into()
        }
    );
    assert_eq!(denied("grows"), Denial::OptedOut);
    assert_eq!(
        why(&e, "grows", ADS_PURPOSE, "2026-02-01T00:00:00Z"),
        Eligibility::Allowed(Grounds::ParentalConsent)
    );
    assert_eq!(
        why(&e, "teen-own", ADS_PURPOSE, at),
        Eligibility::Allowed(Grounds::CcpaOptIn)
    );
}

#[test]
fn events_dated_later_than_now_plus_the_clock_skew_are_refused() {
    let mut e = engine();
    adult(&mut e, "c-1", "EU-DE");
    // The host clock says 2026-06-01 00:00:00; the policy allows 300 s.
    set_now(t("2026-06-01T00:00:00Z"));
    let far = ConsentEvent::grant("c-1", EMAIL, t("2026-06-01T00:05:01Z"), "v4", SHA);
    match e.record(&admin(), &far) {
        Err(EngineError::Event(err @ EventError::FromTheFuture { .. })) => {
            let msg = err.to_string();
            assert!(msg.contains("2026-06-01T00:05:01Z"), "{msg}");
            assert!(msg.contains("300 s"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.history(&admin(), "c-1").unwrap().is_empty());
    let err = e.import(&admin(), &[], &[far]).unwrap_err();
    assert!(
        matches!(
            *err.error,
            EngineError::Event(EventError::FromTheFuture { .. })
        ),
        "{err}"
    );
    assert!(e.history(&admin(), "c-1").unwrap().is_empty());
    // Within the skew it is recorded.
    let near = ConsentEvent::grant("c-1", EMAIL, t("2026-06-01T00:05:00Z"), "v4", SHA);
    e.record(&admin(), &near).unwrap();
    assert_eq!(e.history(&admin(), "c-1").unwrap().len(), 1);
}
