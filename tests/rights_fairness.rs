//! Subject access reports (R21) and fairness audits (R20).

mod common;

use common::*;
use privseg::consent::{Denial, Eligibility, EventKind};
use privseg::{Actor, EngineError};

#[test]
fn subject_report_holds_data_history_eligibility_and_segments() {
    let mut e = engine();
    adult(&mut e, "c-1", "EU-FR");
    e.set_attribute(
        &admin(),
        "c-1",
        "country",
        "FR".into(),
        t("2026-02-01T00:00:00Z"),
    )
    .unwrap();
    grant(
        &mut e,
        "c-1",
        "marketing.email",
        "2026-01-01T00:00:00Z",
        "v3",
    );
    event(
        &mut e,
        "c-1",
        EventKind::Objection,
        Some("analytics.product"),
        "2026-01-05T00:00:00Z",
    );
    let seg = e
        .compile(
            &admin(),
            r#"segment "fr" for marketing.email where country = "FR""#,
        )
        .unwrap();
    let de = e
        .compile(
            &admin(),
            r#"segment "de" for marketing.email where country = "DE""#,
        )
        .unwrap();
    set_now(t("2026-02-10T00:00:00Z"));
    let r = e
        .subject_report(&admin(), "c-1", &[seg, de], t("2026-02-10T00:00:00Z"))
        .unwrap();
    assert_eq!(r.subject, "c-1");
    assert_eq!(r.jurisdiction, "EU-FR");
    assert_eq!(r.birth_date.as_deref(), Some("1980-01-01"));
    assert_eq!(r.data.len(), 1);
    assert_eq!(r.data[0].attribute, "country");
    assert_eq!(r.history.len(), 2);
    let status = |p: &str| {
        r.purposes
            .iter()
            .find(|s| s.purpose == p)
            .unwrap()
            .eligibility
            .clone()
    };
    assert!(status("marketing.email").is_allowed());
    assert_eq!(
        status("analytics.product"),
        Eligibility::Denied(Denial::Objected)
    );
    assert!(r.segments[0].member);
    assert!(!r.segments[1].member);
    assert_eq!(r.segments[1].failing_terms[0].term, "country = \"DE\"");
    // Portable: it is JSON.
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["history"][0]["kind"], "consent_granted");
    // Only with the subjects permission.
    let err = e
        .subject_report(&Actor::new("x", &[]), "c-1", &[], t("2026-02-10T00:00:00Z"))
        .unwrap_err();
    assert!(matches!(err, EngineError::Access(_)));
    // Gone after erasure.
    e.erase(&admin(), "c-1").unwrap();
    assert!(matches!(
        e.subject_report(&admin(), "c-1", &[], t("2026-02-10T00:00:00Z")),
        Err(EngineError::UnknownSubject(_))
    ));
}

#[test]
fn fairness_audit_flags_adverse_impact_and_proxies() {
    let mut e = engine();
    let now = "2026-02-01T00:00:00Z";
    // Group a: 28 of 40 in FR; group b: 12 of 40. Every cell (pool,
    // selected, not selected) is at least k = 11, so all may be shown.
    for i in 0..80 {
        let id = format!("s-{i}");
        adult(&mut e, &id, "EU-FR");
        let group = if i < 40 { "a" } else { "b" };
        let country = if i < 28 || (40..52).contains(&i) {
            "FR"
        } else {
            "DE"
        };
        e.set_attribute(&admin(), &id, "ethnicity", group.into(), t(now))
            .unwrap();
        e.set_attribute(&admin(), &id, "country", country.into(), t(now))
            .unwrap();
    }
    // 24 subjects whose group is unknown, half in FR.
    for i in 0..24 {
        let id = format!("u-{i}");
        adult(&mut e, &id, "EU-FR");
        let country = if i < 12 { "FR" } else { "DE" };
        e.set_attribute(&admin(), &id, "country", country.into(), t(now))
            .unwrap();
    }
    let seg = e
        .compile(
            &admin(),
            r#"segment "fr" for analytics.product where country = "FR""#,
        )
        .unwrap();
    set_now(t(now));
    let r = e
        .fairness_audit(&admin(), &seg, t(now), "ethnicity")
        .unwrap();
    let g = |name: &str| r.groups.iter().find(|g| g.group == name).unwrap().clone();
    assert_eq!((g("a").pool, g("a").selected), (Some(40), Some(28)));
    assert_eq!((g("b").pool, g("b").selected), (Some(40), Some(12)));
    assert!((g("b").impact_ratio.unwrap() - 12.0 / 28.0).abs() < 1e-12);
    assert!(g("b").adverse_impact && !g("a").adverse_impact && r.adverse_impact);
    assert_eq!(
        (g("(unknown)").pool, g("(unknown)").selected),
        (Some(24), Some(12))
    );
    let proxy = &r.proxies[0];
    assert_eq!(proxy.attribute, "country");
    assert!(
        // 2x2 table [[28, 12], [12, 28]]: chi2 = 80 * 640^2 / 40^4 = 12.8.
        (proxy.cramers_v - (12.8f64 / 80.0).sqrt()).abs() < 1e-9,
        "{}",
        proxy.cramers_v
    );
    assert!(proxy.flagged);
    // A balanced segment shows no adverse impact.
    let all = e
        .compile(&admin(), r#"segment "all" for analytics.product"#)
        .unwrap();
    assert!(
        !e.fairness_audit(&admin(), &all, t(now), "ethnicity")
            .unwrap()
            .adverse_impact
    );
    // Only protected attributes define groups; only administrators audit.
    assert!(matches!(
        e.fairness_audit(&admin(), &seg, t(now), "country"),
        Err(EngineError::NotProtected(_))
    ));
    let marketer = Actor::new("m", &[]);
    assert!(matches!(
        e.fairness_audit(&marketer, &seg, t(now), "ethnicity"),
        Err(EngineError::Access(_))
    ));
}
