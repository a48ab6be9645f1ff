//! Every way out of the engine is gated: access control, exports to
//! recipients, k-threshold counts and breakdowns, DP counts; and signals
//! turn into consent events with their proof.

mod common;

use std::sync::Arc;

use common::*;
use privseg::consent::EventKind;
use privseg::consent::signals::events::{SignalNotice, decisions_to_events};
use privseg::consent::signals::mapping::SignalMapping;
use privseg::outputs::ExportFormat;
use privseg::policy::*;
use privseg::privacy::aggregate::Count;
use privseg::privacy::dp::{BudgetLedger, Epsilon, SplitMix64};
use privseg::privacy::normalize::IdKind;
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, EngineError};
use proptest::prelude::*;

fn recipients_policy() -> Policy {
    let mut spec = policy().spec().clone();
    spec.recipients = vec![
        RecipientSpec {
            id: "adnet".into(),
            name: "AdNet Inc".into(),
            country: "US".into(),
            third_country: true,
            dpa_reference: "SSA-2026-07".into(),
            purposes: vec!["marketing.advertising".into(), "marketing.email".into()],
            categories: vec!["user.location".into(), "user.behaviour".into()],
            ccpa_role: CcpaRole::ThirdParty,
        },
        RecipientSpec {
            id: "mailer".into(),
            name: "Mailer GmbH".into(),
            country: "DE".into(),
            third_country: false,
            dpa_reference: "DPA-2026-01".into(),
            purposes: vec!["marketing.email".into()],
            categories: vec!["user.location".into(), "user.financial.transactions".into()],
            ccpa_role: CcpaRole::ServiceProvider,
        },
    ];
    let mut admin = all_permissions();
    admin.export = vec!["adnet".into(), "mailer".into()];
    spec.roles = vec![
        admin,
        RoleSpec {
            name: "analyst".into(),
            count: vec!["analytics".into()],
            ..RoleSpec::default()
        },
    ];
    spec.k_threshold = Some(3);
    spec.dp_budgets = vec![DpBudgetSpec {
        purpose: "marketing".into(),
        max_epsilon: Epsilon::new(1, 2).unwrap(),
        total: Epsilon::new(1, 1).unwrap(),
    }];
    Policy::from_spec(spec).unwrap()
}

fn keys() -> Keyring {
    Keyring::new(MasterSecret::from_bytes(&[9u8; 32]).unwrap(), 1).unwrap()
}

fn populated() -> Engine {
    let mut e = with_test_clock(Engine::new(Arc::new(recipients_policy())));
    for (i, juris) in ["EU-FR", "EU-DE", "US-CA", "US-CA", "EU-FR"]
        .iter()
        .enumerate()
    {
        let id = format!("c-{i}");
        adult(&mut e, &id, juris);
        e.set_attribute(
            &admin(),
            &id,
            "country",
            "FR".into(),
            t("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        e.set_attribute(
            &admin(),
            &id,
            "total_spend",
            (100 * i as i64).into(),
            t("2026-01-01T00:00:00Z"),
        )
        .unwrap();
        grant(&mut e, &id, "marketing.email", "2026-01-01T00:00:00Z", "v3");
    }
    e
}

fn export(
    e: &Engine,
    actor: &Actor,
    recipient: &str,
    fields: &[&str],
    format: ExportFormat,
) -> Result<String, EngineError> {
    let seg = e
        .compile(actor, r#"segment "all" for marketing.email"#)
        .unwrap();
    let mut out = Vec::new();
    set_now(t("2026-02-01T00:00:00Z"));
    e.export(
        actor,
        &seg,
        t("2026-02-01T00:00:00Z"),
        recipient,
        fields,
        format,
        &keys(),
        &mut out,
    )?;
    Ok(String::from_utf8(out).unwrap())
}

#[test]
fn exports_stay_inside_the_recipients_agreement() {
    let e = populated();
    // Allowed: purpose and categories covered.
    let out = export(
        &e,
        &admin(),
        "mailer",
        &["country", "total_spend"],
        ExportFormat::Csv,
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "id,country,total_spend");
    assert_eq!(lines.len(), 6);
    assert!(
        lines[1].starts_with("v1:") && lines[1].ends_with(",FR,0"),
        "{}",
        lines[1]
    );
    // No raw id anywhere in the output.
    for i in 0..5 {
        assert!(!out.contains(&format!("c-{i}")));
    }
    // A field outside the agreement's categories.
    let err = export(&e, &admin(), "adnet", &["total_spend"], ExportFormat::Jsonl).unwrap_err();
    assert!(matches!(err, EngineError::ExportRefused { .. }), "{err}");
    assert!(
        err.to_string().contains("R19") && err.to_string().contains("total_spend"),
        "{err}"
    );
    // A field the purpose itself may not read (R2) is refused before the agreement.
    let err = export(&e, &admin(), "mailer", &["balance"], ExportFormat::Jsonl).unwrap_err();
    assert!(err.to_string().contains("R2"), "{err}");
    // A purpose outside the agreement.
    let seg = e
        .compile(&admin(), r#"segment "a" for analytics.product"#)
        .unwrap();
    let err = e
        .export(
            &admin(),
            &seg,
            t("2026-02-01T00:00:00Z"),
            "mailer",
            &[],
            ExportFormat::Jsonl,
            &keys(),
            Vec::new(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not cover purpose analytics.product"),
        "{err}"
    );
    // An unknown recipient is named as such (not a missing permission),
    // and an actor without the export grant is refused.
    assert!(matches!(
        export(&e, &admin(), "nobody", &[], ExportFormat::Csv),
        Err(EngineError::UnknownRecipient(r)) if r == "nobody"
    ));
    let err = export(
        &e,
        &Actor::new("ann", &["analyst"]),
        "mailer",
        &[],
        ExportFormat::Csv,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "access refused: actor \"ann\" lacks permission export to recipient mailer"
    );
}

#[test]
fn two_recipients_cannot_join_their_lists() {
    let e = populated();
    let a = export(&e, &admin(), "mailer", &["country"], ExportFormat::Jsonl).unwrap();
    let b = export(&e, &admin(), "adnet", &["country"], ExportFormat::Jsonl).unwrap();
    let ids = |s: &str| -> Vec<String> {
        s.lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let (a, b) = (ids(&a), ids(&b));
    assert!(!a.is_empty() && !b.is_empty());
    for x in &a {
        assert!(!b.contains(x), "pseudonym {x} appears in both exports");
    }
    // Each is the recipient's own keyed pseudonym.
    let p = keys().current("mailer", "marketing.email").unwrap();
    assert_eq!(
        a[0],
        p.pseudonymize(IdKind::SubjectId, "c-0")
            .unwrap()
            .to_string()
    );
}

#[test]
fn stale_fields_are_exported_as_null() {
    let mut e = populated();
    // analytics.product allows 30 days; marketing.email has no limit, but
    // last_order itself allows 365 days.
    e.set_attribute(
        &admin(),
        "c-0",
        "last_order",
        t("2025-01-01T00:00:00Z").into(),
        t("2024-01-01T00:00:00Z"),
    )
    .unwrap();
    e.set_attribute(
        &admin(),
        "c-1",
        "last_order",
        t("2026-01-10T00:00:00Z").into(),
        t("2026-01-10T00:00:00Z"),
    )
    .unwrap();
    let out = export(&e, &admin(), "adnet", &["last_order"], ExportFormat::Jsonl).unwrap();
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let p = keys().current("adnet", "marketing.email").unwrap();
    let find = |id: &str| {
        let ps = p.pseudonymize(IdKind::SubjectId, id).unwrap().to_string();
        rows.iter().find(|r| r["id"] == ps.as_str()).cloned()
    };
    assert_eq!(find("c-0").unwrap()["last_order"], serde_json::Value::Null);
    assert_eq!(find("c-1").unwrap()["last_order"], "2026-01-10T00:00:00Z");
}

#[test]
fn small_counts_are_never_revealed() {
    let e = populated();
    let a = admin();
    let seg = e
        .compile(
            &a,
            r#"segment "rich" for marketing.email where total_spend >= 300"#,
        )
        .unwrap();
    // Two members, k = 3.
    assert_eq!(
        e.count_at(&a, &seg, t("2026-02-01T00:00:00Z")).unwrap(),
        Count::FewerThan(3)
    );
    let seg = e
        .compile(&a, r#"segment "all" for marketing.email"#)
        .unwrap();
    assert_eq!(
        e.count_at(&a, &seg, t("2026-02-01T00:00:00Z")).unwrap(),
        Count::Exact(5)
    );
    // Breakdown by country: FR = 5, the other cells 0, below k. Publishing
    // FR next to the exact total would give the zeros away, so FR is
    // withheld too (complementary suppression).
    set_now(t("2026-02-01T00:00:00Z"));
    let b = e
        .breakdown(&a, &seg, t("2026-02-01T00:00:00Z"), "country")
        .unwrap();
    assert_eq!(b.total, Count::Exact(5));
    for c in ["FR", "DE", "US", "(none)"] {
        assert!(b.get(c).unwrap().is_withheld(), "{c}: {:?}", b.get(c));
    }
    // Breaking down by an attribute the purpose may not read is refused.
    assert!(
        e.breakdown(&a, &seg, t("2026-02-01T00:00:00Z"), "balance")
            .is_err()
    );
    // An analyst may count analytics, not marketing.
    let analyst = Actor::new("ann", &["analyst"]);
    assert!(matches!(
        e.count_at(&analyst, &seg, t("2026-02-01T00:00:00Z")),
        Err(EngineError::Access(_))
    ));
}

#[test]
fn dp_counts_spend_the_budget_and_stop() {
    let e = populated();
    let a = admin();
    let seg = e
        .compile(&a, r#"segment "all" for marketing.email"#)
        .unwrap();
    let mut ledger = BudgetLedger::new();
    let mut rng = SplitMix64::new(7);
    let eps = Epsilon::new(1, 2).unwrap();
    let at = t("2026-02-01T00:00:00Z");
    set_now(at);
    let (first, charge) = e
        .dp_count(&a, &seg, at, Some(eps), &mut ledger, &mut rng)
        .unwrap();
    assert!(
        (first - 5).abs() < 60,
        "noise of scale 2 is far smaller: {first}"
    );
    // The policy's budget for `marketing` is charged, whoever asks.
    assert_eq!(charge.budget, "marketing");
    assert_eq!(charge.remaining.to_string(), "1/2");
    e.dp_count(&a, &seg, at, None, &mut ledger, &mut rng)
        .unwrap();
    let err = e
        .dp_count(&a, &seg, at, Some(eps), &mut ledger, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("budget exhausted"), "{err}");
    // Above the cap: refused before anything is charged.
    let err = e
        .dp_count(
            &a,
            &seg,
            at,
            Some(Epsilon::new(1, 1).unwrap()),
            &mut BudgetLedger::new(),
            &mut rng,
        )
        .unwrap_err();
    assert!(err.to_string().contains("above the policy's cap"), "{err}");
}

#[test]
fn access_refusals_name_the_actor_and_permission_and_are_recorded() {
    let mut e = populated();
    let nobody = Actor::new("mallory", &["intruder"]);
    let before = e.audit_len();
    let seg = e
        .compile(&admin(), r#"segment "all" for marketing.email"#)
        .unwrap();
    let err = e
        .evaluate_at(&nobody, &seg, t("2026-02-01T00:00:00Z"))
        .unwrap_err();
    assert!(
        err.to_string().contains("mallory")
            && err
                .to_string()
                .contains("member_ids for purpose marketing.email"),
        "{err}"
    );
    assert!(err.to_string().contains("unknown roles: intruder"), "{err}");
    assert!(e.add_subject(&nobody, "x", "EU-FR", None).is_err());
    assert!(e.history(&nobody, "c-0").is_err());
    assert_eq!(
        e.audit_len(),
        before + 4,
        "one validation and three refusals"
    );
    let entries = e
        .with_audit_log(&admin(), |log| log.entries().unwrap())
        .unwrap();
    let refusals = entries
        .iter()
        .filter(|x| x.actor == "mallory" && format!("{:?}", x.operation) == "AccessRefused")
        .count();
    assert_eq!(refusals, 3);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Opted-out and GPC subjects never reach a sale/share recipient, and
    /// Californian minors without an opt-in never do either.
    #[test]
    fn opted_out_subjects_never_reach_third_parties(
        subjects in prop::collection::vec((any::<bool>(), 0u8..4, any::<bool>(), 0u8..3), 1..40)
    ) {
        let mut e = with_test_clock(Engine::new(Arc::new(recipients_policy())));
        let mut excluded = Vec::new();
        for (i, (ca, signal, minor, later)) in subjects.iter().enumerate() {
            let id = format!("s-{i}");
            let birth = if *minor { "2012-01-01" } else { "1980-01-01" };
            e.add_subject(&admin(), &id, if *ca { "US-CA" } else { "EU-FR" }, Some(parse_date(birth).unwrap())).unwrap();
            e.set_attribute(&admin(), &id, "country", "US".into(), t("2026-01-01T00:00:00Z")).unwrap();
            grant(&mut e, &id, "marketing.email", "2026-01-01T00:00:00Z", "v3");
            let kinds = [None, Some(EventKind::OptOutSaleShare), Some(EventKind::Gpc), Some(EventKind::OptInSaleShare)];
            if let Some(k) = kinds[*signal as usize] {
                event(&mut e, &id, k, None, "2026-01-10T00:00:00Z");
            }
            // Sometimes an opt-in follows, sometimes an opt-out follows an opt-in.
            let mut last = kinds[*signal as usize];
            match later {
                1 => { event(&mut e, &id, EventKind::OptInSaleShare, None, "2026-01-20T00:00:00Z"); last = Some(EventKind::OptInSaleShare); }
                2 => { event(&mut e, &id, EventKind::Gpc, None, "2026-01-20T00:00:00Z"); last = Some(EventKind::Gpc); }
                _ => {}
            }
            let opted_out = matches!(last, Some(EventKind::OptOutSaleShare | EventKind::Gpc));
            let minor_without_opt_in = *ca && *minor && last != Some(EventKind::OptInSaleShare);
            if opted_out || minor_without_opt_in {
                excluded.push(id);
            }
        }
        let out = export(&e, &admin(), "adnet", &["country"], ExportFormat::Jsonl).unwrap();
        let p = keys().current("adnet", "marketing.email").unwrap();
        for id in &excluded {
            let ps = p.pseudonymize(IdKind::SubjectId, id).unwrap().to_string();
            prop_assert!(!out.contains(&ps), "{} reached the third party", id);
        }
        // The service provider is not a sale: everyone with consent gets there.
        let out = export(&e, &admin(), "mailer", &["country"], ExportFormat::Jsonl).unwrap();
        let minors_eu = subjects.iter().filter(|(ca, _, minor, _)| !ca && *minor).count();
        prop_assert_eq!(out.lines().count(), subjects.len() - minors_eu);
    }
}

#[test]
fn signals_become_consent_events_with_their_proof() {
    let mut e = engine();
    adult(&mut e, "web-1", "US-CA");
    let mapping = SignalMapping::from_json(r#"{"gpc": null}"#).unwrap();
    let decisions = mapping.gpc_decisions("1", t("2026-02-01T00:00:00Z").unix());
    assert_eq!(decisions.len(), 1);
    let notice = SignalNotice {
        version: "ads1".into(),
        sha256_hex: SHA.into(),
    };
    let events = decisions_to_events("web-1", &decisions, &notice).unwrap();
    assert_eq!(events[0].kind, EventKind::Gpc);
    assert_eq!(events[0].channel, "signal:gpc");
    for ev in &events {
        e.record(&admin(), ev).unwrap();
    }
    let at = t("2026-03-01T00:00:00Z");
    assert!(
        !e.eligibility_at(&admin(), "web-1", "marketing.advertising.third_party", at)
            .unwrap()
            .is_allowed()
    );
    let history = e.history(&admin(), "web-1").unwrap();
    assert_eq!(
        history[0].evidence_sha256.as_deref(),
        Some(privseg::consent::signals::mapping::sha256_hex("1").as_str())
    );
}
