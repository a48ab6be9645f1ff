//! The leak suite: for every channel through which information leaves the
//! engine, an actor with the narrowest role that channel allows tries to
//! learn what the rules forbid (an ineligible subject's membership or
//! value, a forbidden or protected attribute, a count under k) by a
//! sequence of allowed calls. Each test names the gate it holds up; each
//! fails when that gate is removed.
//!
//! The C ABI's channels are tried by tests/c/bad_input.c (foreign handles,
//! role changes, exports whose selection the agreement does not cover) and
//! the command line's by tests/cli.rs (self-asserted roles, policy files,
//! DP budgets across processes).

mod common;

use std::sync::Arc;

use common::{SHA, t};
use privseg::audit::{AuditLog, AuditPseudonymizer, AuditSink, MemorySink};
use privseg::consent::{ConsentEvent, EventKind};
use privseg::outputs::ExportFormat;
use privseg::policy::*;
use privseg::privacy::aggregate::Count;
use privseg::privacy::dp::{BudgetLedger, Epsilon, SplitMix64};
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, EngineError, ManualClock};
use proptest::prelude::*;

const NOW: &str = "2026-06-01T00:00:00Z";
const AUDIT_KEY: [u8; 32] = [42; 32];

fn role(name: &str) -> RoleSpec {
    RoleSpec {
        name: name.into(),
        ..RoleSpec::default()
    }
}

fn policy() -> Policy {
    PolicyBuilder::new("Acme Retail Ltd")
        .category(CategorySpec::new("user.location"))
        .category(CategorySpec::new("user.financial.transactions"))
        .category(CategorySpec::new("user.health").special())
        .category(
            CategorySpec::new("user.demographic.ethnicity")
                .special()
                .protected(),
        )
        .attribute(AttributeSpec::categorical(
            "country",
            "user.location",
            &["FR", "DE", "US"],
        ))
        .attribute(AttributeSpec::integer(
            "spend",
            "user.financial.transactions",
            0,
            1_000_000,
        ))
        .attribute(AttributeSpec::categorical(
            "condition",
            "user.health",
            &["diabetes", "none"],
        ))
        .attribute(AttributeSpec::categorical(
            "ethnicity",
            "user.demographic.ethnicity",
            &["a", "b"],
        ))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.financial")
                .allow("user.health")
                .notice_versions(&["v1"])
                .email(false),
        )
        .purpose(
            PurposeSpec::new("analytics", LawfulBasis::LegitimateInterests)
                .allow("user.location")
                .allow("user.financial"),
        )
        .recipient(RecipientSpec {
            id: "geo".into(),
            name: "Geo Mailer".into(),
            country: "FR".into(),
            third_country: false,
            dpa_reference: "DPA-GEO".into(),
            purposes: vec!["marketing".into()],
            categories: vec!["user.location".into()],
            ccpa_role: CcpaRole::ServiceProvider,
        })
        .role(RoleSpec {
            count: vec!["marketing".into(), "analytics".into()],
            ..role("counter")
        })
        .role(RoleSpec {
            member_ids: vec!["marketing".into()],
            ..role("lister")
        })
        .role(RoleSpec {
            explain: vec!["marketing".into()],
            ..role("explainer")
        })
        .role(RoleSpec {
            export: vec!["geo".into()],
            ..role("exporter")
        })
        .role(RoleSpec {
            administer: true,
            ..role("auditor")
        })
        .role(RoleSpec {
            subjects: true,
            read_audit: true,
            ..role("crm")
        })
        .dp_budget(
            "marketing",
            Epsilon::new(1, 2).unwrap(),
            Epsilon::new(1, 1).unwrap(),
        )
        .build()
        .unwrap()
}

fn crm() -> Actor {
    Actor::new("crm-sync", &["crm"])
}

/// One subject: id, country, spend, health condition, ethnicity, and
/// whether they consented (and then withdrew).
struct Person<'a> {
    id: &'a str,
    country: &'a str,
    spend: i64,
    condition: &'a str,
    ethnicity: &'a str,
    consent: Consent,
}

#[derive(Clone, Copy, PartialEq)]
enum Consent {
    Yes,
    Withdrawn,
    Never,
}

struct World {
    engine: Engine,
    clock: ManualClock,
}

fn world(people: &[Person<'_>]) -> World {
    let clock = ManualClock::new(t(NOW));
    let ids = AuditPseudonymizer::new(&AUDIT_KEY).unwrap();
    let sink: Box<dyn AuditSink + Send> = Box::new(MemorySink::new());
    let log = AuditLog::open(sink, &AUDIT_KEY).unwrap();
    let mut engine = Engine::with_audit(Arc::new(policy()), log, ids)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let a = crm();
    let verified = t("2026-01-01T00:00:00Z");
    for p in people {
        engine
            .add_subject(&a, p.id, "EU-FR", parse_date("1980-01-01").ok())
            .unwrap();
        engine
            .set_attribute(&a, p.id, "country", p.country.into(), verified)
            .unwrap();
        engine
            .set_attribute(&a, p.id, "spend", p.spend.into(), verified)
            .unwrap();
        engine
            .set_attribute(&a, p.id, "condition", p.condition.into(), verified)
            .unwrap();
        engine
            .set_attribute(&a, p.id, "ethnicity", p.ethnicity.into(), verified)
            .unwrap();
        if p.consent != Consent::Never {
            let mut g = ConsentEvent::grant(
                p.id,
                "marketing.email",
                t("2026-01-02T00:00:00Z"),
                "v1",
                SHA,
            );
            g.explicit = true;
            engine.record(&a, &g).unwrap();
        }
        if p.consent == Consent::Withdrawn {
            engine
                .record(
                    &a,
                    &ConsentEvent::new(
                        p.id,
                        EventKind::ConsentWithdrawn,
                        Some("marketing.email"),
                        t("2026-04-01T00:00:00Z"),
                    ),
                )
                .unwrap();
        }
    }
    World { engine, clock }
}

fn person(id: &str, consent: Consent) -> Person<'_> {
    Person {
        id,
        country: "FR",
        spend: 100,
        condition: "none",
        ethnicity: "a",
        consent,
    }
}

/// 30 consenting subjects, and "w" who consented in January and withdrew
/// in April.
fn crowd() -> Vec<String> {
    (0..30).map(|i| format!("c{i:02}")).collect()
}

fn crowd_world(extra: &[Person<'_>]) -> World {
    let ids = crowd();
    let mut people: Vec<Person<'_>> = ids.iter().map(|id| person(id, Consent::Yes)).collect();
    people.extend(extra.iter().map(|p| Person { ..*p }));
    world(&people)
}

fn seg(e: &Engine, text: &str) -> privseg::segment::CheckedSegment {
    e.compile(&crm(), text)
        .unwrap_or_else(|err| panic!("{err}"))
}

// ---- ids and member iteration ------------------------------------------

/// Gate: eligibility as of the host clock, not the caller's time (R4).
#[test]
fn a_past_reference_time_never_brings_back_a_withdrawn_subject() {
    let w = crowd_world(&[person("w", Consent::Withdrawn)]);
    let lister = Actor::new("l", &["lister"]);
    let s = seg(
        &w.engine,
        r#"segment "fr" for marketing.email where country = "FR""#,
    );
    // "As of March", when w's consent still held.
    let m = w
        .engine
        .evaluate(&lister, &s, t("2026-03-01T00:00:00Z"))
        .unwrap();
    let ids = w.engine.member_ids(&lister, &m).unwrap();
    assert_eq!(ids.len(), 30);
    assert!(!ids.contains(&"w".to_string()), "{ids:?}");
    assert_eq!(m.at(), t(NOW));
}

/// Gate: `member_ids` applies eligibility again at release (R4: a
/// withdrawal takes effect before the call returns, even for results
/// computed earlier).
#[test]
fn ids_of_an_old_result_leave_out_who_withdrew_since() {
    let mut w = crowd_world(&[]);
    let lister = Actor::new("l", &["lister"]);
    let s = seg(&w.engine, r#"segment "all" for marketing.email"#);
    let m = w.engine.evaluate(&lister, &s, t(NOW)).unwrap();
    w.engine
        .record(
            &crm(),
            &ConsentEvent::new(
                "c07",
                EventKind::ConsentWithdrawn,
                Some("marketing.email"),
                t(NOW),
            ),
        )
        .unwrap();
    let ids = w.engine.member_ids(&lister, &m).unwrap();
    assert_eq!(ids.len(), 29);
    assert!(!ids.contains(&"c07".to_string()));
    // An erased subject is gone too.
    w.engine.erase(&crm(), "c08").unwrap();
    let ids = w.engine.member_ids(&lister, &m).unwrap();
    assert!(!ids.iter().any(|i| i == "c08" || i.is_empty()), "{ids:?}");
}

/// Gate: a result is bound to the engine that made it.
#[test]
fn a_result_cannot_be_read_through_another_engine() {
    let a = crowd_world(&[]);
    let b = world(&[person("other", Consent::Yes)]);
    let lister = Actor::new("l", &["lister"]);
    let s = seg(&a.engine, r#"segment "all" for marketing.email"#);
    let m = a.engine.evaluate(&lister, &s, t(NOW)).unwrap();
    assert!(matches!(
        b.engine.member_ids(&lister, &m),
        Err(EngineError::ForeignResult)
    ));
}

/// Gate: the permission is checked again at release.
#[test]
fn ids_need_the_member_ids_permission_at_release() {
    let w = crowd_world(&[]);
    let lister = Actor::new("l", &["lister"]);
    let counter = Actor::new("c", &["counter"]);
    let s = seg(&w.engine, r#"segment "all" for marketing.email"#);
    assert!(matches!(
        w.engine.evaluate(&counter, &s, t(NOW)),
        Err(EngineError::Access(_))
    ));
    let m = w.engine.evaluate(&lister, &s, t(NOW)).unwrap();
    // A result handed to an actor who may only count.
    assert!(matches!(
        w.engine.member_ids(&counter, &m),
        Err(EngineError::Access(_))
    ));
}

// ---- counts, breakdowns, DP counts --------------------------------------

/// Gate: counts under k are withheld; eligibility as of now.
#[test]
fn counts_under_k_and_past_times_reveal_nothing() {
    let w = crowd_world(&[person("w", Consent::Withdrawn)]);
    let counter = Actor::new("c", &["counter"]);
    // A one-person segment: the withdrawn subject as of March.
    let s = seg(
        &w.engine,
        r#"segment "x" for marketing.email where country = "FR" and spend = 100"#,
    );
    let n = w
        .engine
        .count(&counter, &s, t("2026-03-01T00:00:00Z"))
        .unwrap();
    assert_eq!(n, Count::Exact(30), "w must not be counted");
    let s = seg(
        &w.engine,
        r#"segment "x" for marketing.email where spend > 100"#,
    );
    assert_eq!(
        w.engine.count(&counter, &s, t(NOW)).unwrap(),
        Count::FewerThan(11)
    );
}

/// Gate: breakdown cells under k (and their complements) are suppressed.
#[test]
fn a_breakdown_does_not_single_out_one_subject() {
    let mut de = person("de-1", Consent::Yes);
    de.country = "DE";
    let w = crowd_world(&[de]);
    let counter = Actor::new("c", &["counter"]);
    let s = seg(&w.engine, r#"segment "all" for marketing.email"#);
    let b = w.engine.breakdown(&counter, &s, t(NOW), "country").unwrap();
    assert!(b.get("DE").unwrap().is_withheld());
    // FR alone would give DE away from the total.
    assert!(b.get("FR").unwrap().is_withheld());
}

/// Gate: epsilon and budget come from the policy; names do not reset it.
#[test]
fn dp_budget_cannot_be_raised_or_reset_by_names() {
    let w = crowd_world(&[]);
    let s = seg(&w.engine, r#"segment "all" for marketing.email"#);
    let mut ledger = BudgetLedger::new();
    let mut rng = SplitMix64::new(1);
    let over = Epsilon::new(1, 1).unwrap();
    let a1 = Actor::new("ann", &["counter"]);
    assert!(
        w.engine
            .dp_count(&a1, &s, t(NOW), Some(over), &mut ledger, &mut rng)
            .is_err()
    );
    // Two queries at the cap spend the total of 1...
    w.engine
        .dp_count(&a1, &s, t(NOW), None, &mut ledger, &mut rng)
        .unwrap();
    let a2 = Actor::new("someone-else", &["counter"]);
    w.engine
        .dp_count(&a2, &s, t(NOW), None, &mut ledger, &mut rng)
        .unwrap();
    // ...and a third, by yet another name, is refused.
    let a3 = Actor::new("mallory", &["counter"]);
    assert!(
        w.engine
            .dp_count(&a3, &s, t(NOW), None, &mut ledger, &mut rng)
            .is_err()
    );
    // A fresh ledger does not reset it either: the audit log remembers.
    let mut fresh = BudgetLedger::new();
    assert!(
        w.engine
            .dp_count(&a3, &s, t(NOW), None, &mut fresh, &mut rng)
            .is_err()
    );
}

// ---- explain --------------------------------------------------------------

/// Gate: explain reads no predicate for an ineligible subject (bisection
/// on a restricted subject's spend or a withdrawn subject's health).
#[test]
fn explain_cannot_bisect_an_ineligible_subjects_values() {
    let mut w_p = person("w", Consent::Withdrawn);
    w_p.spend = 731;
    w_p.condition = "diabetes";
    let mut w = crowd_world(&[w_p]);
    w.engine
        .record(
            &crm(),
            &ConsentEvent::new(
                "c00",
                EventKind::Restriction,
                None,
                t("2026-05-01T00:00:00Z"),
            ),
        )
        .unwrap();
    let explainer = Actor::new("x", &["explainer"]);
    for who in ["w", "c00"] {
        let mut answers = Vec::new();
        for guess in [0, 500, 730, 731, 1000] {
            let s = seg(
                &w.engine,
                &format!(r#"segment "b" for marketing.email where spend > {guess}"#),
            );
            let ex = w.engine.explain(&explainer, &s, who, t(NOW)).unwrap();
            assert!(!ex.member && !ex.eligibility.is_allowed());
            assert_eq!(ex.predicate_held, None, "{ex:?}");
            assert!(ex.failing_terms.is_empty());
            answers.push(serde_json::to_string(&(&ex.eligibility, ex.predicate_held)).unwrap());
        }
        answers.dedup();
        assert_eq!(
            answers.len(),
            1,
            "answers depend on {who}'s spend: {answers:?}"
        );
        let s = seg(
            &w.engine,
            r#"segment "h" for marketing.email where condition = "diabetes""#,
        );
        let ex = w.engine.explain(&explainer, &s, who, t(NOW)).unwrap();
        assert_eq!(ex.predicate_held, None);
    }
    // An eligible subject is explained in full.
    let s = seg(
        &w.engine,
        r#"segment "b" for marketing.email where spend > 500"#,
    );
    let ex = w.engine.explain(&explainer, &s, "c01", t(NOW)).unwrap();
    assert_eq!(ex.predicate_held, Some(false));
    assert_eq!(ex.failing_terms.len(), 1);
}

/// Gate: eligibility answers are as of now; no caller-chosen instant.
#[test]
fn eligibility_is_only_ever_as_of_now() {
    let w = crowd_world(&[person("w", Consent::Withdrawn)]);
    let explainer = Actor::new("x", &["explainer"]);
    let e = w
        .engine
        .eligibility(&explainer, "w", "marketing.email")
        .unwrap();
    assert!(!e.is_allowed());
    w.clock.set(t("2026-03-01T00:00:00Z"));
    // Only the host can move the clock; then the answer is as of then.
    let e = w
        .engine
        .eligibility(&explainer, "w", "marketing.email")
        .unwrap();
    assert!(e.is_allowed());
}

// ---- exports ----------------------------------------------------------------

/// Gate: the agreement must cover what the selection reads, not only the
/// fields sent (R19, R7).
#[test]
fn an_export_selected_by_health_or_spend_needs_an_agreement_covering_them() {
    let w = crowd_world(&[]);
    let exporter = Actor::new("e", &["exporter"]);
    let keys = Keyring::new(MasterSecret::from_bytes(&[7; 32]).unwrap(), 1).unwrap();
    for text in [
        r#"segment "h" for marketing.email where condition = "diabetes""#,
        r#"segment "s" for marketing.email where spend > 50"#,
    ] {
        let s = seg(&w.engine, text);
        let mut out = Vec::new();
        let err = w
            .engine
            .export(
                &exporter,
                &s,
                t(NOW),
                "geo",
                &["country"],
                ExportFormat::Jsonl,
                &keys,
                &mut out,
            )
            .unwrap_err();
        assert!(matches!(err, EngineError::ExportRefused { .. }), "{err}");
        assert!(out.is_empty());
    }
    // Selected by location only: allowed, pseudonymous ids.
    let s = seg(
        &w.engine,
        r#"segment "fr" for marketing.email where country = "FR""#,
    );
    let mut out = Vec::new();
    let sent = w
        .engine
        .export(
            &exporter,
            &s,
            t(NOW),
            "geo",
            &["country"],
            ExportFormat::Jsonl,
            &keys,
            &mut out,
        )
        .unwrap();
    assert_eq!(sent.rows, 30);
    let text = String::from_utf8(out).unwrap();
    for id in crowd() {
        assert!(
            !text.contains(&format!("\"{id}\"")),
            "raw id {id} in an export"
        );
    }
}

/// Gate: exports apply eligibility as of now.
#[test]
fn an_export_as_of_the_past_leaves_out_who_withdrew() {
    let w = crowd_world(&[person("w", Consent::Withdrawn)]);
    let exporter = Actor::new("e", &["exporter"]);
    let keys = Keyring::new(MasterSecret::from_bytes(&[7; 32]).unwrap(), 1).unwrap();
    let s = seg(
        &w.engine,
        r#"segment "fr" for marketing.email where country = "FR""#,
    );
    let mut out = Vec::new();
    let sent = w
        .engine
        .export(
            &exporter,
            &s,
            t("2026-03-01T00:00:00Z"),
            "geo",
            &[],
            ExportFormat::Csv,
            &keys,
            &mut out,
        )
        .unwrap();
    assert_eq!(sent.rows, 30);
}

// ---- fairness, subject, RoPA and compliance reports ---------------------------

/// Gate: fairness cells under k are suppressed.
#[test]
fn a_fairness_audit_of_one_person_does_not_reveal_their_ethnicity() {
    let mut target = person("t", Consent::Yes);
    target.spend = 999_999;
    target.ethnicity = "b";
    let mut people = vec![target];
    let ids: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut p = person(id, Consent::Yes);
        p.ethnicity = if i < 20 { "a" } else { "b" };
        people.push(p);
    }
    let w = world(&people);
    let auditor = Actor::new("a", &["auditor"]);
    let s = seg(
        &w.engine,
        r#"segment "one" for marketing.email where spend > 500000"#,
    );
    let r = w
        .engine
        .fairness_audit(&auditor, &s, t(NOW), "ethnicity")
        .unwrap();
    for g in &r.groups {
        assert_eq!(g.selected, None, "{g:?}");
        assert_eq!(g.rate, None, "{g:?}");
    }
    assert!(!r.adverse_impact);
}

/// Gate: the subject report needs the `subjects` permission.
#[test]
fn reports_need_their_permissions() {
    let w = crowd_world(&[]);
    for a in ["counter", "lister", "explainer", "exporter", "auditor"] {
        let actor = Actor::new("n", &[a]);
        assert!(matches!(
            w.engine.subject_report(&actor, "c01", &[], t(NOW)),
            Err(EngineError::Access(_))
        ));
        if a != "auditor" {
            assert!(matches!(
                w.engine.compliance_report(&actor, 30, None),
                Err(EngineError::Access(_))
            ));
            assert!(matches!(w.engine.ropa(&actor), Err(EngineError::Access(_))));
        }
    }
}

// ---- the audit log and error messages -------------------------------------------

/// Gate: the log holds pseudonyms, no values, no refused literals.
#[test]
fn the_audit_log_and_errors_hold_no_identifier_or_value() {
    let w = crowd_world(&[]);
    // A refused segment quoting a value (R2: balance is not for analytics).
    let err = w
        .engine
        .compile(
            &crm(),
            r#"segment "x" for analytics where condition = "diabetes""#,
        )
        .unwrap_err();
    // The caller sees their own text; the log must not.
    assert!(err.to_string().contains("condition"));
    let counter = Actor::new("c", &["counter"]);
    let _ = w.engine.explain(
        &counter,
        &seg(&w.engine, r#"segment "a" for marketing.email"#),
        "c01",
        t(NOW),
    );
    let entries = w
        .engine
        .with_audit_log(&crm(), |log| log.entries().unwrap())
        .unwrap();
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.is_empty());
    for needle in ["\"c01\"", "\"c29\"", "diabetes", "\"FR\""] {
        assert!(!text.contains(needle), "the log holds {needle}");
    }
    // An access refusal names the actor and the permission, no data.
    let err = w
        .engine
        .member_ids(
            &counter,
            &w.engine
                .evaluate(
                    &Actor::new("l", &["lister"]),
                    &seg(&w.engine, r#"segment "a" for marketing.email"#),
                    t(NOW),
                )
                .unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(!err.contains("\"c0"), "{err}");
}

// ---- non-interference ---------------------------------------------------------

/// What every allowed call of a narrow actor returns, as text.
fn observe(w: &World, subjects: &[String]) -> Vec<String> {
    let counter = Actor::new("c", &["counter"]);
    let lister = Actor::new("l", &["lister"]);
    let explainer = Actor::new("x", &["explainer"]);
    let mut out = Vec::new();
    for text in [
        r#"segment "all" for marketing.email"#,
        r#"segment "fr" for marketing.email where country = "FR""#,
        r#"segment "rich" for marketing.email where spend > 500"#,
        r#"segment "sick" for marketing.email where condition = "diabetes""#,
    ] {
        let s = seg(&w.engine, text);
        out.push(format!(
            "{:?}",
            w.engine.count(&counter, &s, t(NOW)).unwrap()
        ));
        out.push(format!(
            "{:?}",
            w.engine.breakdown(&counter, &s, t(NOW), "country").unwrap()
        ));
        let m = w.engine.evaluate(&lister, &s, t(NOW)).unwrap();
        out.push(format!(
            "{} {:?}",
            m.count(),
            w.engine.member_ids(&lister, &m).unwrap()
        ));
        for id in subjects {
            let ex = w.engine.explain(&explainer, &s, id, t(NOW)).unwrap();
            out.push(serde_json::to_string(&ex).unwrap());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Two populations that differ only in the values of subjects who are
    /// not eligible (withdrawn, or never consented) give identical answers
    /// to every allowed call of narrow actors.
    #[test]
    fn ineligible_subjects_values_never_show(
        base in proptest::collection::vec((0usize..3, 0i64..1000, any::<bool>(), 0u8..3), 1..14),
        other in proptest::collection::vec((0usize..3, 0i64..1000, any::<bool>()), 14),
    ) {
        const COUNTRIES: [&str; 3] = ["FR", "DE", "US"];
        let ids: Vec<String> = (0..base.len()).map(|i| format!("s{i}")).collect();
        let consent = |c: u8| match c { 0 => Consent::Yes, 1 => Consent::Withdrawn, _ => Consent::Never };
        let people = |alt: bool| -> Vec<Person<'_>> {
            base.iter().enumerate().map(|(i, &(c, spend, sick, cons))| {
                let cons = consent(cons);
                // The second population changes only ineligible subjects.
                let (c, spend, sick) = if alt && cons != Consent::Yes {
                    (other[i].0, other[i].1, other[i].2)
                } else {
                    (c, spend, sick)
                };
                Person {
                    id: &ids[i],
                    country: COUNTRIES[c],
                    spend,
                    condition: if sick { "diabetes" } else { "none" },
                    ethnicity: "a",
                    consent: cons,
                }
            }).collect()
        };
        let a = world(&people(false));
        let b = world(&people(true));
        prop_assert_eq!(observe(&a, &ids), observe(&b, &ids));
    }
}

#[test]
fn the_non_interference_property_can_fail() {
    // A control: changing an eligible subject's value does change what a
    // narrow actor sees, so the property above compares something real.
    let mut p = person("s0", Consent::Yes);
    let a = world(&[Person { ..p }]);
    p.spend = 900;
    let b = world(&[p]);
    let ids = vec!["s0".to_string()];
    assert_ne!(observe(&a, &ids), observe(&b, &ids));
}
