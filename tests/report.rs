//! The record of processing activities and the compliance report: their
//! content on a known engine, their gate and their audit entries.

mod common;

use std::sync::Arc;

use common::*;
use privseg::audit::{AuditEntry, Operation};
use privseg::consent::{ConsentEvent, EventKind};
use privseg::outputs::ExportFormat;
use privseg::policy::*;
use privseg::privacy::dp::BudgetLedger;
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::{Actor, Engine, EngineError, Timestamp};

const AT: &str = "2026-06-01T00:00:00Z";

fn report_policy() -> Policy {
    let mut spec = common::policy().spec().clone();
    spec.recipients = vec![
        RecipientSpec {
            id: "adnet".into(),
            name: "AdNet Inc".into(),
            country: "US".into(),
            third_country: true,
            dpa_reference: "DPA-2025-017".into(),
            purposes: vec!["marketing.advertising.third_party".into()],
            categories: vec!["user.location".into(), "user.behaviour".into()],
            ccpa_role: CcpaRole::ThirdParty,
        },
        RecipientSpec {
            id: "mailer".into(),
            name: "Mailer GmbH".into(),
            country: "DE".into(),
            third_country: false,
            dpa_reference: "DPA-2024-003".into(),
            purposes: vec!["marketing.email".into(), "marketing.newsletter".into()],
            categories: vec!["user.contact".into(), "user.location".into()],
            ccpa_role: CcpaRole::ServiceProvider,
        },
    ];
    let mut admin = all_permissions();
    admin.export = vec!["mailer".into()];
    spec.roles = vec![
        admin,
        RoleSpec {
            name: "dpo".into(),
            read_audit: true,
            ..RoleSpec::default()
        },
        RoleSpec {
            name: "analyst".into(),
            count: vec!["analytics".into()],
            ..RoleSpec::default()
        },
    ];
    Policy::from_spec(spec).unwrap()
}

fn dpo() -> Actor {
    Actor::new("dpo-office", &["dpo"])
}

fn analyst() -> Actor {
    Actor::new("analyst-7", &["analyst"])
}

fn set(e: &mut Engine, id: &str, attr: &str, v: privseg::store::Value, verified: &str) {
    e.set_attribute(&admin(), id, attr, v, t(verified)).unwrap();
}

/// Every subject id used below; none may appear in a report.
const IDS: &[&str] = &[
    "subj-exp1",
    "subj-exp2",
    "subj-ok",
    "subj-edge",
    "subj-beyond",
    "subj-old",
    "subj-old3",
    "subj-care",
    "subj-wd",
    "subj-gone",
    "subj-expired",
    "subj-ca",
];

/// A known population at `AT`; see each subject's comment.
fn populated() -> Engine {
    let mut e = with_test_clock(Engine::new(Arc::new(report_policy())));
    for id in IDS {
        let j = if *id == "subj-ca" { "US-CA" } else { "EU-FR" };
        adult(&mut e, id, j);
    }
    // Valid marketing.email consents (365 days by policy).
    grant(
        &mut e,
        "subj-exp1",
        "marketing.email",
        "2025-06-10T00:00:00Z",
        "v3",
    ); // ends 2026-06-10: expiring
    let mut g = ConsentEvent::grant(
        "subj-exp2",
        "marketing.email",
        t("2026-01-05T00:00:00Z"),
        "v4",
        SHA,
    );
    g.expires_at = Some(t("2026-06-20T00:00:00Z")); // own expiry inside the window
    e.record(&admin(), &g).unwrap();
    grant(
        &mut e,
        "subj-ok",
        "marketing.email",
        "2026-01-01T00:00:00Z",
        "v4",
    ); // ends 2027
    grant(
        &mut e,
        "subj-edge",
        "marketing.email",
        "2025-07-01T00:00:00Z",
        "v3",
    ); // ends exactly at AT + 30 days
    grant(
        &mut e,
        "subj-beyond",
        "marketing.email",
        "2025-07-01T00:00:01Z",
        "v3",
    ); // one second later
    // Consents to notices no longer accepted.
    grant(
        &mut e,
        "subj-old",
        "marketing.email",
        "2025-03-01T00:00:00Z",
        "v2",
    );
    grant(
        &mut e,
        "subj-old3",
        "marketing.email",
        "2025-09-01T00:00:00Z",
        "v1",
    );
    grant(
        &mut e,
        "subj-care",
        "care.programs",
        "2025-09-01T00:00:00Z",
        "h0",
    );
    // Withdrawn, erased, already expired.
    grant(
        &mut e,
        "subj-wd",
        "marketing.email",
        "2025-06-10T00:00:00Z",
        "v3",
    );
    event(
        &mut e,
        "subj-wd",
        EventKind::ConsentWithdrawn,
        Some("marketing.email"),
        "2026-01-01T00:00:00Z",
    );
    grant(
        &mut e,
        "subj-gone",
        "marketing.email",
        "2025-06-10T00:00:00Z",
        "v3",
    );
    grant(
        &mut e,
        "subj-expired",
        "marketing.email",
        "2025-05-01T00:00:00Z",
        "v3",
    );
    // The newsletter on the soft opt-in.
    event(
        &mut e,
        "subj-ok",
        EventKind::SoftOptIn,
        Some("marketing.newsletter"),
        "2026-01-01T00:00:00Z",
    );

    // Values and when they were verified. Retention at AT: user.location
    // and user.contact 730 days (since 2024-06-01), user.behaviour 365
    // days (since 2025-06-01), transactions 3650 days; accounts: none.
    set(
        &mut e,
        "subj-exp1",
        "country",
        "FR".into(),
        "2024-05-31T23:59:59Z",
    ); // past
    set(
        &mut e,
        "subj-exp2",
        "country",
        "FR".into(),
        "2024-06-01T00:00:00Z",
    ); // on the limit: kept
    set(
        &mut e,
        "subj-ok",
        "country",
        "DE".into(),
        "2026-01-01T00:00:00Z",
    );
    set(
        &mut e,
        "subj-exp1",
        "last_order",
        t("2026-05-01T00:00:00Z").into(),
        "2026-05-01T00:00:00Z",
    );
    set(
        &mut e,
        "subj-ok",
        "last_order",
        t("2025-01-01T00:00:00Z").into(),
        "2025-01-01T00:00:00Z",
    ); // past, stale
    set(
        &mut e,
        "subj-ok",
        "total_spend",
        4711i64.into(),
        "2015-01-01T00:00:00Z",
    ); // past
    set(
        &mut e,
        "subj-ok",
        "newsletter",
        true.into(),
        "2020-01-01T00:00:00Z",
    ); // past
    set(
        &mut e,
        "subj-ok",
        "balance",
        815i64.into(),
        "2000-01-01T00:00:00Z",
    ); // no retention set
    set(
        &mut e,
        "subj-gone",
        "country",
        "FR".into(),
        "2020-01-01T00:00:00Z",
    );
    e.erase(&admin(), "subj-gone").unwrap();
    e
}

fn entries(e: &Engine) -> Vec<AuditEntry> {
    e.with_audit_log(&dpo(), |log| log.entries().unwrap())
        .unwrap()
}

fn keys() -> Keyring {
    Keyring::new(MasterSecret::from_bytes(&[9u8; 32]).unwrap(), 1).unwrap()
}

#[test]
fn compliance_report_counts() {
    let e = populated();
    // Audit history: two R8 refusals by the admin, a syntax error by the
    // analyst, access refusals, two exports.
    for _ in 0..2 {
        assert!(
            e.compile(
                &admin(),
                r#"segment "x" for marketing.email where convicted = true"#
            )
            .is_err()
        );
    }
    assert!(e.compile(&analyst(), "segment where").is_err());
    let seg = e
        .compile(
            &admin(),
            r#"segment "fr" for marketing.email where country = "FR""#,
        )
        .unwrap();
    assert!(matches!(
        e.evaluate_at(&analyst(), &seg, t(AT)),
        Err(EngineError::Access(_))
    ));
    let ks = keys();
    let mut sink = Vec::new();
    set_now(t(AT));
    let first = e
        .export(
            &admin(),
            &seg,
            t(AT),
            "mailer",
            &["country"],
            ExportFormat::Jsonl,
            &ks,
            &mut sink,
        )
        .unwrap();
    // At AT subj-exp1 and subj-exp2 are FR with valid consents.
    assert_eq!(first.rows, 2);
    e.export(
        &admin(),
        &seg,
        t(AT),
        "mailer",
        &[],
        ExportFormat::Csv,
        &ks,
        &mut sink,
    )
    .unwrap();
    assert!(matches!(
        e.compliance_report_at(&analyst(), t(AT), 30, None),
        Err(EngineError::Access(_))
    ));
    let mut ledger = BudgetLedger::new();
    ledger
        .set_budget("analyst-7", "crm", "1".parse().unwrap())
        .unwrap();
    ledger
        .spend("analyst-7", "crm", "1/4".parse().unwrap())
        .unwrap();

    let before = e.audit_len();
    let r = e
        .compliance_report_at(&dpo(), t(AT), 30, Some(&ledger))
        .unwrap();
    // The read of the log and the report itself are recorded.
    assert_eq!(e.audit_len(), before + 2);
    assert_eq!(r.audit_entries, before + 1);
    assert_eq!(r.subjects, 11);

    let c = |p: &str| r.consents.iter().find(|c| c.purpose == p).unwrap();
    let purposes: Vec<&str> = r.consents.iter().map(|c| c.purpose.as_str()).collect();
    assert_eq!(
        purposes,
        [
            "care.programs",
            "marketing.advertising.third_party",
            "marketing.email",
            "marketing.newsletter"
        ]
    );
    let email = c("marketing.email");
    assert_eq!(
        (
            email.eligible,
            email.valid_consents,
            email.expiring,
            email.reconsent_needed
        ),
        (5, 5, 3, 2)
    );
    assert_eq!(
        email
            .reconsent_by_notice
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect::<Vec<_>>(),
        [("v1", 1), ("v2", 1)]
    );
    let news = c("marketing.newsletter");
    assert_eq!(
        (news.eligible, news.valid_consents, news.expiring),
        (1, 0, 0)
    );
    let care = c("care.programs");
    assert_eq!((care.valid_consents, care.reconsent_needed), (0, 1));
    assert_eq!(care.reconsent_by_notice.get("h0"), Some(&1));
    // The Californian is in the sale/share purpose by default, not by consent.
    let ads = c("marketing.advertising.third_party");
    assert_eq!((ads.eligible, ads.valid_consents), (1, 0));

    // A shorter window sees only the consent ending on 2026-06-10.
    let short = e.compliance_report_at(&dpo(), t(AT), 9, None).unwrap();
    let email9 = short
        .consents
        .iter()
        .find(|c| c.purpose == "marketing.email")
        .unwrap();
    assert_eq!(email9.expiring, 1);
    assert!(short.dp_budgets.is_none());

    let ret = |k: &str| r.retention.iter().find(|c| c.category == k).unwrap();
    let loc = ret("user.location");
    assert_eq!(
        (
            loc.retention_days,
            loc.values,
            loc.past_retention,
            loc.subjects_affected
        ),
        (Some(730), 3, 1, 1)
    );
    let beh = ret("user.behaviour");
    assert_eq!((beh.values, beh.past_retention), (2, 1));
    assert_eq!(ret("user.financial.transactions").past_retention, 1);
    assert_eq!(ret("user.contact").past_retention, 1);
    let acc = ret("user.financial.account");
    assert_eq!(
        (acc.retention_days, acc.values, acc.past_retention),
        (None, 1, 0)
    );
    assert_eq!(ret("user.health").values, 0);

    assert_eq!(r.staleness.len(), 1);
    let s = &r.staleness[0];
    assert_eq!(
        (
            s.attribute.as_str(),
            s.max_staleness_days,
            s.values,
            s.stale
        ),
        ("last_order", 365, 2, 1)
    );

    let refusals: Vec<(&str, Option<&str>, u64)> = r
        .refused_segments
        .iter()
        .map(|x| (x.actor.as_str(), x.rule.as_deref(), x.count))
        .collect();
    assert_eq!(
        refusals,
        [("analyst-7", None, 1), ("test-admin", Some("R8"), 2)]
    );
    let access: Vec<(&str, &str, u64)> = r
        .access_refusals
        .iter()
        .map(|x| (x.actor.as_str(), x.permission.as_str(), x.count))
        .collect();
    assert_eq!(
        access,
        [
            ("analyst-7", "member_ids for purpose marketing.email", 1),
            ("analyst-7", "read_audit", 1)
        ]
    );
    assert_eq!(r.exports.len(), 1);
    assert_eq!(
        (
            r.exports[0].recipient.as_str(),
            r.exports[0].exports,
            r.exports[0].rows
        ),
        ("mailer", 2, 4)
    );
    let b = r.dp_budgets.as_ref().unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(
        (
            b[0].actor.as_str(),
            b[0].dataset.as_str(),
            b[0].spent.to_string(),
            b[0].remaining.to_string()
        ),
        ("analyst-7", "crm", "1/4".to_string(), "3/4".to_string())
    );
    assert!((b[0].spent_share - 0.25).abs() < 1e-12);

    // The last entry records the report.
    let log = entries(&e);
    let rep: Vec<&AuditEntry> = log
        .iter()
        .filter(|x| x.operation == Operation::ReportGenerated)
        .collect();
    assert_eq!(rep.len(), 2);
    assert!(rep.iter().all(|x| x.actor == "dpo-office"));
    assert_eq!(rep[0].details["report"], "compliance");
    assert_eq!(rep[0].details["within_days"], 30);

    // Counts only: no subject id in either rendering.
    let json = r.to_json();
    let md = r.to_markdown();
    for id in IDS {
        assert!(!json.contains(id) && !md.contains(id), "{id} leaked");
    }
    assert!(
        md.contains("| marketing.email | consent | 5 | 5 | 3 | 2 | v1: 1, v2: 1 |"),
        "{md}"
    );
    assert!(
        md.contains("| user.location | 730 days | 3 | 1 | 1 |"),
        "{md}"
    );
    assert!(
        md.contains("| analyst-7 | crm | 1 | 1/4 | 3/4 | 25% |"),
        "{md}"
    );
}

#[test]
fn compliance_report_json_field_names_are_stable() {
    let e = populated();
    let r = e.compliance_report_at(&dpo(), t(AT), 30, None).unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "access_refusals",
            "at",
            "audit_entries",
            "consents",
            "dp_budgets",
            "exports",
            "policy_version",
            "purges",
            "refused_segments",
            "retention",
            "staleness",
            "subjects",
            "within_days"
        ]
    );
    assert_eq!(v["at"], AT);
    let email = v["consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["purpose"] == "marketing.email")
        .unwrap();
    assert_eq!(email["expiring"], 3);
    assert_eq!(email["lawful_basis"], "consent");
    assert_eq!(email["reconsent_by_notice"]["v2"], 1);
}

#[test]
fn ropa_from_policy_recipients_and_log() {
    let e = populated();
    let seg = e
        .compile(
            &admin(),
            r#"segment "fr" for marketing.email where country = "FR""#,
        )
        .unwrap();
    let mut sink = Vec::new();
    set_now(t(AT));
    e.export(
        &admin(),
        &seg,
        t(AT),
        "mailer",
        &["country"],
        ExportFormat::Jsonl,
        &keys(),
        &mut sink,
    )
    .unwrap();
    assert!(matches!(e.ropa(&analyst()), Err(EngineError::Access(_))));

    let before = e.audit_len();
    let ropa = e.ropa(&dpo()).unwrap();
    assert_eq!(e.audit_len(), before + 2);

    assert_eq!(ropa.controller.name, "Acme Retail Ltd");
    assert_eq!(ropa.controller.contact.as_deref(), Some("dpo@acme.example"));
    assert_eq!(ropa.policy_version, e.policy().version().to_string());
    assert_eq!(ropa.purposes.len(), 7);
    let p = |k: &str| ropa.purposes.iter().find(|p| p.key == k).unwrap();
    let email = p("marketing.email");
    assert_eq!(email.lawful_basis, LawfulBasis::Consent);
    let terms = email.consent.as_ref().unwrap();
    assert_eq!(terms.accepted_notice_versions, ["v3", "v4"]);
    assert_eq!(terms.validity_days, Some(365));
    assert!(email.direct_marketing && email.email_channel);
    assert_eq!(email.recipients, ["mailer"]);
    let cats: Vec<&str> = email
        .data_categories
        .iter()
        .map(|c| c.category.as_str())
        .collect();
    assert_eq!(
        cats,
        [
            "user.behaviour",
            "user.contact",
            "user.financial.transactions",
            "user.location"
        ]
    );
    assert!(!email.uses_special_categories && !email.uses_ccpa_sensitive);
    let analytics = p("analytics.product");
    assert!(analytics.consent.is_none());
    assert_eq!(analytics.lawful_basis, LawfulBasis::LegitimateInterests);
    // `user.financial` covers both declared financial categories.
    let acct = analytics
        .data_categories
        .iter()
        .find(|c| c.category == "user.financial.account")
        .unwrap();
    assert!(acct.ccpa_sensitive && !acct.special);
    assert_eq!(acct.attributes, ["balance"]);
    assert!(analytics.uses_ccpa_sensitive);
    let care = p("care.programs");
    assert!(care.uses_special_categories);
    assert_eq!(care.data_categories[0].attributes, ["condition"]);
    assert_eq!(p("marketing.advertising.third_party").recipients, ["adnet"]);

    // Subjects by regime: eleven added in EU-FR and one erased, one in US-CA.
    let sc = |r: Regime| {
        ropa.subject_categories
            .iter()
            .find(|s| s.regime == r)
            .unwrap()
    };
    assert_eq!(sc(Regime::Gdpr).subjects, Some(10));
    assert_eq!(sc(Regime::Ccpa).subjects, Some(1));
    let fr = sc(Regime::Gdpr)
        .jurisdictions
        .iter()
        .find(|j| j.code == "EU-FR")
        .unwrap();
    assert_eq!((fr.subjects, fr.digital_consent_age), (Some(10), Some(15)));

    assert_eq!(ropa.recipients.len(), 2);
    let adnet = &ropa.recipients[0];
    assert_eq!(
        (
            adnet.id.as_str(),
            adnet.country.as_str(),
            adnet.third_country,
            adnet.ccpa_role
        ),
        ("adnet", "US", true, CcpaRole::ThirdParty)
    );
    assert_eq!((adnet.exports, adnet.rows_exported), (0, 0));
    let mailer = &ropa.recipients[1];
    assert_eq!((mailer.exports, mailer.rows_exported), (1, 2));
    assert_eq!(mailer.dpa_reference, "DPA-2024-003");
    assert_eq!(ropa.third_country_transfers.len(), 1);
    let tr = &ropa.third_country_transfers[0];
    assert_eq!(
        (
            tr.recipient.as_str(),
            tr.country.as_str(),
            tr.dpa_reference.as_str()
        ),
        ("adnet", "US", "DPA-2025-017")
    );
    assert_eq!(tr.categories, ["user.behaviour", "user.location"]);

    let ret = |k: &str| ropa.retention.iter().find(|r| r.category == k).unwrap();
    assert_eq!(ret("user.contact").retention_days, Some(730));
    assert_eq!(ret("user.contact").attributes, ["newsletter"]);
    assert_eq!(ret("user.financial.account").retention_days, None);
    assert_eq!(ret("user.behaviour").retention_days, Some(365));

    let sec = &ropa.security;
    let roles: Vec<&str> = sec.access_control.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(roles, ["admin", "analyst", "dpo"]);
    assert_eq!(sec.access_control[1].count, ["analytics"]);
    assert!(sec.access_control[2].read_audit && !sec.access_control[2].subjects);
    assert_eq!(
        sec.pseudonymisation.recipients_with_own_keys,
        ["adnet", "mailer"]
    );
    assert!(!sec.encryption.in_place);
    assert_eq!(sec.k_threshold, 11);
    // The audit size and root cover the log up to the read that produced it.
    assert_eq!(sec.audit_log.entries, before + 1);
    let root = e
        .with_audit_log(&dpo(), |log| log.root_at(before + 1).unwrap())
        .unwrap();
    let hex: String = root.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sec.audit_log.root_hash, hex);

    let log = entries(&e);
    let generated = log
        .iter()
        .find(|x| x.operation == Operation::ReportGenerated)
        .unwrap();
    assert_eq!(generated.actor, "dpo-office");
    assert_eq!(generated.details["report"], "ropa");
    assert_eq!(generated.details["audit_size"], before + 1);
    assert!(log.iter().any(|x| x.operation == Operation::AccessRefused
        && x.actor == "analyst-7"
        && x.details["permission"] == "read_audit"));

    let md = ropa.to_markdown();
    assert!(
        md.contains("| Acme Retail Ltd | dpo@acme.example |"),
        "{md}"
    );
    assert!(
        md.contains("| adnet | AdNet Inc | US | yes | DPA-2025-017 | third party | marketing.advertising.third_party | user.behaviour, user.location | 0 (0 rows) |"),
        "{md}"
    );
    assert!(md.contains("| adnet | US | DPA-2025-017 |"), "{md}");
    assert!(
        md.contains("| user.financial.account | not set | — | balance |"),
        "{md}"
    );
    assert!(md.contains("| gdpr | "), "{md}");
    assert!(md.contains("EU-FR (10)"), "{md}");
    let json = ropa.to_json();
    for id in IDS {
        assert!(!json.contains(id) && !md.contains(id), "{id} leaked");
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "controller",
            "generated_at",
            "policy_version",
            "purposes",
            "recipients",
            "retention",
            "security",
            "subject_categories",
            "third_country_transfers"
        ]
    );
    assert_eq!(v["security"]["audit_log"]["entries"], before + 1);
}

#[test]
fn ropa_without_an_engine_has_no_subject_counts() {
    use privseg::audit::details::{Exported, SegmentRun};
    use privseg::audit::{AuditLog, EntryKind, MemorySink, PendingEntry};
    let policy = report_policy();
    let mut log = AuditLog::open(MemorySink::new(), &[0x42; 32]).unwrap();
    log.append(
        PendingEntry::new(1_767_225_600, "svc", Operation::Exported).with_kind(
            EntryKind::Exported(Exported {
                run: SegmentRun::new("s", AT),
                recipient: "adnet".into(),
                fields: String::new(),
                rows: 120,
                key_version: 1,
                sharded: None,
            }),
        ),
    )
    .unwrap();
    let at = Timestamp::parse(AT).unwrap();
    let ropa = privseg::report::ropa(&policy, &log, at).unwrap();
    assert_eq!(ropa.generated_at, at);
    assert!(ropa.subject_categories.iter().all(|s| s.subjects.is_none()));
    assert_eq!(ropa.subject_categories.len(), 2);
    assert_eq!(ropa.recipients[0].rows_exported, 120);
    assert_eq!(ropa.security.audit_log.entries, 1);
}

#[test]
fn consents_are_judged_at_the_given_instant() {
    // The same engine judged a year later: every 365-day consent granted in
    // 2025 has lapsed, and the 2026 ones expire within 30 days only if
    // granted before mid-2026.
    let e = populated();
    let later = e
        .compliance_report_at(&dpo(), t("2026-12-15T00:00:00Z"), 30, None)
        .unwrap();
    let email = later
        .consents
        .iter()
        .find(|c| c.purpose == "marketing.email")
        .unwrap();
    // Only subj-ok (2026-01-01 + 365 days = 2027-01-01) is still valid, and
    // it ends within 30 days of 2026-12-15.
    assert_eq!((email.valid_consents, email.expiring), (1, 1));
}

/// The Markdown renderings of both reports on a populated engine, compared
/// byte for byte with the files under `tests/golden/` (written by the
/// renderer before it was split into one function per section). The audit
/// root hash depends on the host's random audit key, so it is set to a
/// fixed text first. `PRIVSEG_BLESS=1` rewrites the files.
#[test]
fn markdown_renderings_match_the_golden_files() {
    let e = populated();
    for _ in 0..2 {
        let _ = e.compile(
            &admin(),
            r#"segment "x" for marketing.email where convicted = true"#,
        );
    }
    let _ = e.compile(&analyst(), "segment where");
    let seg = e
        .compile(
            &admin(),
            r#"segment "fr" for marketing.email where country = "FR""#,
        )
        .unwrap();
    let _ = e.evaluate_at(&analyst(), &seg, t(AT));
    set_now(t(AT));
    e.export(
        &admin(),
        &seg,
        t(AT),
        "mailer",
        &["country"],
        ExportFormat::Jsonl,
        &keys(),
        &mut Vec::new(),
    )
    .unwrap();
    let mut ledger = BudgetLedger::new();
    ledger
        .set_budget("analyst-7", "crm", "1".parse().unwrap())
        .unwrap();
    ledger
        .spend("analyst-7", "crm", "1/4".parse().unwrap())
        .unwrap();
    let compliance = e
        .compliance_report_at(&dpo(), t(AT), 30, Some(&ledger))
        .unwrap()
        .to_markdown();
    let mut ropa = e.ropa(&dpo()).unwrap();
    ropa.security.audit_log.root_hash = "ROOT".into();
    let ropa = ropa.to_markdown();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (name, md) in [("compliance.md", &compliance), ("ropa.md", &ropa)] {
        let path = dir.join(name);
        if std::env::var_os("PRIVSEG_BLESS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, md).unwrap();
        }
        let want = std::fs::read_to_string(&path).unwrap();
        assert_eq!(md, &want, "{name} differs from {}", path.display());
    }
}

/// A retention purge is logged as its own kind of entry, and the
/// compliance report lists it from that kind.
#[test]
fn compliance_report_lists_retention_purges() {
    use privseg::audit::EntryKind;
    let mut e = populated();
    let before = e.compliance_report_at(&dpo(), t(AT), 30, None).unwrap();
    assert!(before.purges.is_empty());
    set_now(t(AT));
    let purged = e.purge(&admin()).unwrap();
    assert!(purged.values > 0, "the sample has values past retention");
    let log = entries(&e);
    let entry = log
        .iter()
        .rfind(|x| x.operation == Operation::RetentionPurge)
        .expect("the purge is logged as a retention purge");
    assert!(
        matches!(
            EntryKind::of(entry).unwrap(),
            EntryKind::RetentionPurge(p) if p.values == purged.values && p.subjects == purged.subjects
        ),
        "{entry:?}"
    );
    assert!(
        !log.iter()
            .any(|x| x.operation == Operation::SubjectRectified && x.details.is_empty()),
        "no rectification stands for the purge"
    );
    let r = e.compliance_report_at(&dpo(), t(AT), 30, None).unwrap();
    assert_eq!(r.purges.len(), 1);
    let p = &r.purges[0];
    assert_eq!(
        (p.actor.as_str(), p.values, p.subjects, p.at),
        ("test-admin", purged.values, purged.subjects, t(AT))
    );
    assert!(
        r.to_markdown().contains(&format!(
            "| {AT} | test-admin | {} | {} |",
            purged.values, purged.subjects
        )),
        "{}",
        r.to_markdown()
    );
}

/// A batch holding only events is logged as recording events, not as
/// adding subjects; one with subjects as adding them.
#[test]
fn an_import_of_events_only_is_logged_as_recording_events() {
    use privseg::audit::EntryKind;
    use privseg::import::SubjectRow;
    let mut e = populated();
    set_now(t(AT));
    let ev = ConsentEvent::grant("subj-ok", "marketing.email", t(AT), "v4", SHA);
    e.import(&admin(), &[], std::slice::from_ref(&ev)).unwrap();
    let last = entries(&e)
        .into_iter()
        .rfind(|x| matches!(EntryKind::of(x), Ok(EntryKind::Import(_))))
        .unwrap();
    assert_eq!(last.operation, Operation::EventRecorded);
    assert_eq!(last.details["import_events"], 1);
    let row = SubjectRow {
        id: "subj-new".into(),
        jurisdiction: "EU-FR".into(),
        birth_date: None,
        values: vec![],
    };
    e.import(&admin(), &[row], &[]).unwrap();
    let last = entries(&e)
        .into_iter()
        .rfind(|x| matches!(EntryKind::of(x), Ok(EntryKind::Import(_))))
        .unwrap();
    assert_eq!(last.operation, Operation::SubjectAdded);
}
