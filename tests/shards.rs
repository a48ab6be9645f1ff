//! Scale-out: engines over shards of the subjects, released once on a
//! driver, answer exactly what one engine over every subject answers; and
//! partials that cannot be released together are refused.

mod common;

use std::sync::Arc;

use common::*;
use privseg::consent::{ConsentEvent, EventKind};
use privseg::outputs::ExportFormat;
use privseg::policy::*;
use privseg::privacy::aggregate::Count;
use privseg::privacy::dp::{BudgetLedger, Epsilon, SplitMix64};
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::segment::CheckedSegment;
use privseg::shard::{ExportRows, Partial, PartialRequest, ShardError, shard_of};
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, EngineError, Timestamp};
use proptest::prelude::*;

const NOW: &str = "2026-02-01T00:00:00Z";

fn shard_policy() -> Arc<Policy> {
    let mut spec = policy().spec().clone();
    spec.recipients = vec![
        RecipientSpec {
            id: "adnet".into(),
            name: "AdNet Inc".into(),
            country: "US".into(),
            third_country: true,
            dpa_reference: "SSA-2026-07".into(),
            purposes: vec!["marketing.email".into()],
            categories: vec![
                "user.location".into(),
                "user.behaviour".into(),
                "user.financial.transactions".into(),
            ],
            ccpa_role: CcpaRole::ThirdParty,
        },
        RecipientSpec {
            id: "mailer".into(),
            name: "Mailer GmbH".into(),
            country: "DE".into(),
            third_country: false,
            dpa_reference: "DPA-2026-01".into(),
            purposes: vec!["marketing.email".into()],
            categories: vec![
                "user.location".into(),
                "user.behaviour".into(),
                "user.financial.transactions".into(),
            ],
            ccpa_role: CcpaRole::ServiceProvider,
        },
        // An agreement for locations only: no spend, no behaviour.
        RecipientSpec {
            id: "geo".into(),
            name: "Geo SARL".into(),
            country: "FR".into(),
            third_country: false,
            dpa_reference: "DPA-2026-02".into(),
            purposes: vec!["marketing.email".into()],
            categories: vec!["user.location".into()],
            ccpa_role: CcpaRole::ServiceProvider,
        },
    ];
    let mut admin = all_permissions();
    admin.export = vec!["adnet".into(), "mailer".into(), "geo".into()];
    spec.roles = vec![
        admin,
        RoleSpec {
            name: "analyst".into(),
            count: vec!["marketing".into()],
            ..RoleSpec::default()
        },
    ];
    spec.k_threshold = Some(3);
    spec.dp_budgets = vec![DpBudgetSpec {
        purpose: "marketing".into(),
        max_epsilon: Epsilon::new(1, 2).unwrap(),
        total: Epsilon::new(100, 1).unwrap(),
    }];
    Arc::new(Policy::from_spec(spec).unwrap())
}

fn keys() -> Keyring {
    Keyring::new(MasterSecret::from_bytes(&[9u8; 32]).unwrap(), 1).unwrap()
}

/// One generated subject: jurisdiction, minor, country, spend, last order
/// (days before now; large means stale for analytics), consent, later
/// event.
type Subject = (u8, bool, Option<u8>, Option<u32>, Option<u16>, u8, u8);

fn subject() -> impl Strategy<Value = Subject> {
    (
        0u8..3,
        any::<bool>(),
        prop::option::of(0u8..3),
        prop::option::of(0u32..2000),
        prop::option::of(0u16..400),
        0u8..3,
        0u8..5,
    )
}

fn add(e: &mut Engine, i: usize, s: &Subject) {
    let a = admin();
    let (juris, minor, country, spend, last, consent, later) = *s;
    let id = format!("s-{i}");
    let birth = if minor { "2012-01-01" } else { "1980-01-01" };
    let j = ["EU-FR", "EU-DE", "US-CA"][juris as usize];
    e.add_subject(&a, &id, j, Some(parse_date(birth).unwrap()))
        .unwrap();
    let v = t("2026-01-05T00:00:00Z");
    if let Some(c) = country {
        let c = ["FR", "DE", "US"][c as usize];
        e.set_attribute(&a, &id, "country", c.into(), v).unwrap();
    }
    if let Some(x) = spend {
        e.set_attribute(&a, &id, "total_spend", i64::from(x).into(), v)
            .unwrap();
    }
    if let Some(d) = last {
        let when = Timestamp::from_unix(t(NOW).unix() - i64::from(d) * 86_400);
        // Verified long ago for some: stale values are exported as null.
        let verified = if d % 3 == 0 {
            t("2024-01-01T00:00:00Z")
        } else {
            v
        };
        e.set_attribute(
            &a,
            &id,
            "last_order",
            when.to_string().as_str().into(),
            verified,
        )
        .unwrap();
    }
    if consent > 0 {
        let notice = if consent == 1 { "v3" } else { "v1" };
        let ev = ConsentEvent::grant(
            &id,
            "marketing.email",
            t("2026-01-10T00:00:00Z"),
            notice,
            SHA,
        );
        // A notice the purpose does not accept is refused at recording.
        let _ = e.record(&a, &ev);
    }
    let kind = match later {
        1 => Some((EventKind::ConsentWithdrawn, Some("marketing.email"))),
        2 => Some((EventKind::OptOutSaleShare, None)),
        3 => Some((EventKind::Gpc, None)),
        _ => None,
    };
    if let Some((k, p)) = kind {
        let _ = e.record(&a, &ConsentEvent::new(&id, k, p, t("2026-01-20T00:00:00Z")));
    }
}

/// One engine over everyone, `n` shard engines, and a driver with no
/// subjects, all on the test clock at `NOW`.
fn build(subjects: &[Subject], n: u32) -> (Engine, Vec<Engine>, Engine) {
    set_now(t(NOW));
    let p = shard_policy();
    let mut one = with_test_clock(Engine::new(p.clone()));
    let mut shards: Vec<Engine> = (0..n)
        .map(|_| with_test_clock(Engine::new(p.clone())))
        .collect();
    for (i, s) in subjects.iter().enumerate() {
        add(&mut one, i, s);
        let id = format!("s-{i}");
        add(&mut shards[shard_of(&id, n) as usize], i, s);
    }
    let driver = with_test_clock(Engine::new(p));
    (one, shards, driver)
}

fn partials(
    shards: &[Engine],
    seg_text: &str,
    request: &PartialRequest<'_>,
) -> Result<Vec<Partial>, ShardError> {
    let n = shards.len() as u32;
    shards
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let seg = e.compile(&admin(), seg_text).unwrap();
            let p = e.partial(&admin(), &seg, t(NOW), i as u32, n, request)?;
            // Partials travel serialised: the release reads them back.
            Partial::from_json(&p.to_json())
        })
        .collect()
}

fn compile(e: &Engine, text: &str) -> CheckedSegment {
    e.compile(&admin(), text).unwrap()
}

/// Splits export partials into headers and rows (the rows through their
/// JSON form, as they travel).
fn split_rows(ps: Vec<Partial>) -> (Vec<Partial>, Vec<ExportRows>) {
    ps.into_iter()
        .map(|p| {
            let (h, r) = p.split_rows();
            let h = Partial::from_json(&h.to_json()).unwrap();
            (h, ExportRows::from_json(&r.to_json()).unwrap())
        })
        .unzip()
}

fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = String::from_utf8(bytes.to_vec())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

const SEGMENTS: [&str; 3] = [
    r#"segment "all" for marketing.email"#,
    r#"segment "fr_or_big" for marketing.email where country = "FR" or total_spend > 800"#,
    r#"segment "recent" for marketing.email where last_order >= now - 90d and not country = "US""#,
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// For random populations and shardings, the merged answers (count, DP
    /// count with the same random source, member set, export rows in both
    /// formats) are identical to one engine's over the same subjects.
    #[test]
    fn sharded_answers_equal_one_engines(
        subjects in prop::collection::vec(subject(), 0..60),
        n in 1u32..8,
        which in 0usize..3,
        seed in any::<u64>(),
    ) {
        let (one, shards, driver) = build(&subjects, n);
        let text = SEGMENTS[which];
        let seg1 = compile(&one, text);
        let segd = compile(&driver, text);
        let at = t(NOW);

        // k-threshold count.
        let expect = one.count(&admin(), &seg1, at).unwrap();
        let ps = partials(&shards, text, &PartialRequest::Count).unwrap();
        let before = driver.audit_len();
        prop_assert_eq!(driver.release_count(&admin(), &segd, &ps).unwrap(), expect);
        prop_assert_eq!(driver.audit_len(), before + 1);
        // The shards' raw counts add up to the one engine's raw count.
        let raw = one.evaluate(&admin(), &seg1, at).unwrap().count();
        prop_assert_eq!(ps.iter().map(Partial::count).sum::<u64>(), raw);

        // DP count: same noise from the same source, charged once.
        let (mut l1, mut l2) = (BudgetLedger::new(), BudgetLedger::new());
        let (x1, c1) = one
            .dp_count(&admin(), &seg1, at, None, &mut l1, &mut SplitMix64::new(seed))
            .unwrap();
        let (x2, c2) = driver
            .release_dp_count(&admin(), &segd, &ps, None, &mut l2, &mut SplitMix64::new(seed))
            .unwrap();
        prop_assert_eq!(x1, x2);
        prop_assert_eq!(c1, c2);

        // Member set.
        let members = one.evaluate(&admin(), &seg1, at).unwrap();
        let mut expect = one.member_ids(&admin(), &members).unwrap();
        let ps = partials(&shards, text, &PartialRequest::Members).unwrap();
        let mut got = driver.release_members(&admin(), &segd, &ps).unwrap();
        expect.sort();
        got.sort();
        prop_assert_eq!(&got, &expect);
        // The same members, a shard at a time, from split partials.
        let (headers, bodies): (Vec<Partial>, Vec<Vec<String>>) =
            ps.into_iter().map(Partial::split_ids).unzip();
        let mut rel = driver.release_members_split(&admin(), &segd, &headers).unwrap();
        prop_assert_eq!(rel.total(), expect.len() as u64);
        let mut split: Vec<String> = Vec::new();
        for (h, ids) in headers.iter().zip(bodies).rev() {
            split.extend(rel.ids(h.shard(), ids).unwrap());
        }
        prop_assert!(rel.pending().is_empty());
        split.sort();
        prop_assert_eq!(split, expect);

        // Export rows, both formats, to a service provider and to a third
        // party (opt-outs and minors apply).
        for (recipient, fields) in [
            ("mailer", &["country"][..]),
            ("adnet", &["country", "total_spend", "last_order"][..]),
        ] {
            for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
                let mut a = Vec::new();
                let s1 = one
                    .export(&admin(), &seg1, at, recipient, fields, format, &keys(), &mut a)
                    .unwrap();
                let ps = partials(&shards, text, &PartialRequest::Export { recipient, fields })
                    .unwrap();
                let mut b = Vec::new();
                let s2 = driver
                    .release_export(&admin(), &segd, &ps, recipient, fields, format, &keys(), &mut b)
                    .unwrap();
                prop_assert_eq!(&s1, &s2);
                prop_assert_eq!(sorted_lines(&a), sorted_lines(&b));
                // The same rows, a shard at a time, from split partials,
                // shards in reverse order: one export, the same pseudonyms.
                let (headers, rows) = split_rows(ps);
                let mut rel = driver
                    .release_export_split(&admin(), &segd, &headers, recipient, fields, format, &keys())
                    .unwrap();
                prop_assert_eq!(rel.summary(), &s1);
                let mut c = Vec::new();
                for (h, r) in headers.iter().zip(&rows).rev() {
                    let n = rel.rows(h.shard(), r, &mut c).unwrap();
                    prop_assert_eq!(n, h.count());
                }
                prop_assert!(rel.pending().is_empty());
                prop_assert_eq!(sorted_lines(&a), sorted_lines(&c));
            }
        }
        reset_now();
    }
}

/// A small fixed population spread over three shards.
fn fixed(n: u32) -> (Engine, Vec<Engine>, Engine) {
    let subjects: Vec<Subject> = (0..40)
        .map(|i| {
            (
                i % 3,
                false,
                Some(i % 3),
                Some(u32::from(i) * 50),
                Some(10),
                1,
                0,
            )
        })
        .collect();
    build(&subjects, n)
}

fn refused(r: Result<impl std::fmt::Debug, ShardError>, needle: &str) {
    match r {
        Err(ShardError::Partials(m)) => assert!(m.contains(needle), "{m}"),
        other => panic!("expected a refusal naming {needle:?}, got {other:?}"),
    }
}

#[test]
fn partials_must_cover_every_shard_exactly_once() {
    let (_, shards, driver) = fixed(3);
    let text = SEGMENTS[0];
    let seg = compile(&driver, text);
    let ps = partials(&shards, text, &PartialRequest::Count).unwrap();
    refused(
        driver.release_count(&admin(), &seg, &ps[..2]),
        "every shard",
    );
    let dup = vec![ps[0].clone(), ps[1].clone(), ps[1].clone()];
    refused(driver.release_count(&admin(), &seg, &dup), "given twice");
    refused(driver.release_count(&admin(), &seg, &[]), "no partial");
    // Any order of the same partials is accepted.
    let rev: Vec<Partial> = ps.iter().rev().cloned().collect();
    assert_eq!(
        driver.release_count(&admin(), &seg, &rev).unwrap(),
        driver.release_count(&admin(), &seg, &ps).unwrap()
    );
    reset_now();
}

#[test]
fn partials_of_another_segment_kind_or_recipient_are_refused() {
    let (_, shards, driver) = fixed(2);
    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Count).unwrap();
    let other = compile(&driver, SEGMENTS[1]);
    refused(
        driver.release_count(&admin(), &other, &ps),
        "made for segment",
    );
    let seg = compile(&driver, SEGMENTS[0]);
    refused(driver.release_members(&admin(), &seg, &ps), "count release");
    let fields = ["country"];
    let ps = partials(
        &shards,
        SEGMENTS[0],
        &PartialRequest::Export {
            recipient: "mailer",
            fields: &fields,
        },
    )
    .unwrap();
    let r = driver.release_export(
        &admin(),
        &seg,
        &ps,
        "adnet",
        &fields,
        ExportFormat::Jsonl,
        &keys(),
        Vec::new(),
    );
    refused(r, "another recipient");
    reset_now();
}

#[test]
fn a_partial_under_another_policy_is_refused() {
    let (_, shards, _) = fixed(1);
    let mut spec = shard_policy().spec().clone();
    spec.k_threshold = Some(5);
    let other = with_test_clock(Engine::new(Arc::new(Policy::from_spec(spec).unwrap())));
    let seg = compile(&other, SEGMENTS[0]);
    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Count).unwrap();
    refused(
        other.release_count(&admin(), &seg, &ps),
        "made under policy",
    );
    reset_now();
}

#[test]
fn old_or_future_partials_are_refused() {
    let (_, shards, driver) = fixed(1);
    let seg = compile(&driver, SEGMENTS[0]);
    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Count).unwrap();
    set_now(Timestamp::from_unix(t(NOW).unix() + 601));
    refused(driver.release_count(&admin(), &seg, &ps), "before now");
    set_now(Timestamp::from_unix(t(NOW).unix() + 600));
    assert!(driver.release_count(&admin(), &seg, &ps).is_ok());
    set_now(Timestamp::from_unix(t(NOW).unix() - 3600));
    refused(driver.release_count(&admin(), &seg, &ps), "later than now");
    reset_now();
}

#[test]
fn a_shard_holding_a_subject_of_another_shard_is_refused() {
    set_now(t(NOW));
    let mut e = with_test_clock(Engine::new(shard_policy()));
    let id = (0..)
        .map(|i| format!("x-{i}"))
        .find(|id| shard_of(id, 2) == 1)
        .unwrap();
    adult(&mut e, &id, "EU-FR");
    let seg = compile(&e, SEGMENTS[0]);
    let r = e.partial(&admin(), &seg, t(NOW), 0, 2, &PartialRequest::Count);
    assert!(
        matches!(r, Err(ShardError::WrongShard { belongs: 1, .. })),
        "{r:?}"
    );
    assert!(
        e.partial(&admin(), &seg, t(NOW), 1, 2, &PartialRequest::Count)
            .is_ok()
    );
    for (s, n) in [(0, 0), (2, 2), (0, 70_000)] {
        let r = e.partial(&admin(), &seg, t(NOW), s, n, &PartialRequest::Count);
        assert!(matches!(r, Err(ShardError::BadShard { .. })), "{r:?}");
    }
    reset_now();
}

#[test]
fn tampered_partials_are_refused() {
    let (_, shards, driver) = fixed(2);
    let seg = compile(&driver, SEGMENTS[0]);
    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Members).unwrap();
    // An id moved between shards, a count that disagrees with the ids.
    let mut json: serde_json::Value = serde_json::from_str(&ps[0].to_json()).unwrap();
    let other = ps[1].to_json();
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    json["ids"][0] = other["ids"][0].clone();
    let bad = Partial::from_json(&json.to_string()).unwrap();
    refused(
        driver.release_members(&admin(), &seg, &[bad, ps[1].clone()]),
        "another shard",
    );
    let mut json: serde_json::Value = serde_json::from_str(&ps[0].to_json()).unwrap();
    json["count"] = (ps[0].count() + 1).into();
    let bad = Partial::from_json(&json.to_string()).unwrap();
    refused(
        driver.release_members(&admin(), &seg, &[bad, ps[1].clone()]),
        "ids for",
    );
    assert!(matches!(
        Partial::from_json("{\"format\":1}"),
        Err(ShardError::Malformed(_))
    ));
    reset_now();
}

/// Counts carry no ids and no bitset; members carry ids of members only.
#[test]
fn partials_carry_ids_only_when_the_release_needs_them() {
    let (one, shards, _) = fixed(3);
    let ps = partials(&shards, SEGMENTS[1], &PartialRequest::Count).unwrap();
    for p in &ps {
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["ids"], serde_json::json!([]));
        assert_eq!(v["bits"], serde_json::json!([]));
        assert!(!p.to_json().contains("s-"), "{}", p.to_json());
    }
    let ps = partials(&shards, SEGMENTS[1], &PartialRequest::Members).unwrap();
    let seg = compile(&one, SEGMENTS[1]);
    let m = one.evaluate(&admin(), &seg, t(NOW)).unwrap();
    let members = one.member_ids(&admin(), &m).unwrap();
    assert!(members.len() < 40, "the segment must leave someone out");
    for p in &ps {
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        for id in v["ids"].as_array().unwrap() {
            assert!(members.contains(&id.as_str().unwrap().to_string()));
        }
    }
    reset_now();
}

/// Partials and releases are gated by the permission of the release, and
/// the release writes one entry committing to the shards' audit roots.
#[test]
fn partials_and_releases_are_gated_and_recorded() {
    let (_, shards, driver) = fixed(2);
    let analyst = Actor::new("ana", &["analyst"]);
    let seg0 = compile(&shards[0], SEGMENTS[0]);
    let before = shards[0].audit_len();
    let r = shards[0].partial(&analyst, &seg0, t(NOW), 0, 2, &PartialRequest::Members);
    assert!(
        matches!(r, Err(ShardError::Engine(EngineError::Access(_)))),
        "{r:?}"
    );
    let p = shards[0]
        .partial(&analyst, &seg0, t(NOW), 0, 2, &PartialRequest::Count)
        .unwrap();
    // The refusal and the partial are both in the shard's log, and the
    // partial commits to the log after its own entry.
    assert_eq!(shards[0].audit_len(), before + 2);
    assert_eq!(p.audit_root().0, shards[0].audit_len());

    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Members).unwrap();
    let seg = compile(&driver, SEGMENTS[0]);
    let r = driver.release_members(&analyst, &seg, &ps);
    assert!(
        matches!(r, Err(ShardError::Engine(EngineError::Access(_)))),
        "{r:?}"
    );
    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Count).unwrap();
    let c = driver.release_count(&analyst, &seg, &ps).unwrap();
    assert!(matches!(c, Count::Exact(_)));
    let last = driver
        .with_audit_log(&admin(), |l| l.entries().unwrap())
        .unwrap();
    let release = last
        .iter()
        .rev()
        .find(|e| e.details.contains_key("shard_roots"))
        .unwrap();
    assert_eq!(release.details["shards"], serde_json::json!(2));
    assert_eq!(release.details["shard_roots"].as_str().unwrap().len(), 64);
    reset_now();
}

#[test]
fn split_members_are_released_once_each_and_only_as_their_headers_say() {
    let (_, shards, driver) = fixed(3);
    let seg = compile(&driver, SEGMENTS[0]);
    let ps = partials(&shards, SEGMENTS[0], &PartialRequest::Members).unwrap();
    // Whole partials are not headers, and headers are not whole partials.
    refused(
        driver.release_members_split(&admin(), &seg, &ps),
        "not split off",
    );
    let (headers, bodies): (Vec<Partial>, Vec<Vec<String>>) =
        ps.into_iter().map(Partial::split_ids).unzip();
    refused(
        driver.release_members(&admin(), &seg, &headers),
        "release_members_split",
    );
    // A header whose ids were put back is refused.
    let mut back = headers.clone();
    back[0] = Partial::from_json(
        &headers[0]
            .to_json()
            .replace("\"ids\":[]", "\"ids\":[\"x\"]"),
    )
    .unwrap();
    refused(
        driver.release_members_split(&admin(), &seg, &back),
        "still carries ids",
    );
    // The gate: an actor without member_ids gets nothing, and no entry.
    let analyst = Actor::new("ana", &["analyst"]);
    let r = driver.release_members_split(&analyst, &seg, &headers);
    assert!(
        matches!(r, Err(ShardError::Engine(EngineError::Access(_)))),
        "{r:?}"
    );
    // The release is recorded before any id comes out.
    let before = driver.audit_len();
    let mut rel = driver
        .release_members_split(&admin(), &seg, &headers)
        .unwrap();
    assert_eq!(driver.audit_len(), before + 1);
    let shard = headers
        .iter()
        .position(|h| h.count() > 1)
        .expect("a shard with two members");
    let ids = bodies[shard].clone();
    // Other ids than the header's: one dropped, one changed, another shard's.
    let mut fewer = ids.clone();
    fewer.pop();
    refused(rel.ids(shard as u32, fewer), "not the ids");
    let mut changed = ids.clone();
    changed[0].push('x');
    refused(rel.ids(shard as u32, changed), "not the ids");
    let other = (shard + 1) % 3;
    refused(rel.ids(shard as u32, bodies[other].clone()), "not the ids");
    refused(rel.ids(7, Vec::new()), "there are 3 shards");
    // The right ids come out once.
    assert_eq!(rel.ids(shard as u32, ids.clone()).unwrap(), ids);
    refused(rel.ids(shard as u32, ids), "already released");
    assert_eq!(rel.pending().len(), 2);
    reset_now();
}

fn export_partials(shards: &[Engine], recipient: &str, fields: &[&str]) -> Vec<Partial> {
    partials(
        shards,
        SEGMENTS[1],
        &PartialRequest::Export { recipient, fields },
    )
    .unwrap()
}

#[test]
fn split_exports_are_gated_once_and_recorded_before_any_row() {
    let (_, shards, driver) = fixed(3);
    let seg = compile(&driver, SEGMENTS[1]);
    let fields = ["country", "total_spend"];
    let ps = export_partials(&shards, "adnet", &fields);
    let release = |actor: &Actor, hs: &[Partial], recipient: &str, fields: &[&str]| {
        driver.release_export_split(
            actor,
            &seg,
            hs,
            recipient,
            fields,
            ExportFormat::Jsonl,
            &keys(),
        )
    };
    // Whole partials are not headers, and headers are not whole partials.
    refused(release(&admin(), &ps, "adnet", &fields), "not split off");
    let (headers, rows) = split_rows(ps);
    refused(
        driver.release_export(
            &admin(),
            &seg,
            &headers,
            "adnet",
            &fields,
            ExportFormat::Jsonl,
            &keys(),
            Vec::new(),
        ),
        "release_export_split",
    );
    // A header whose rows were put back is refused.
    let mut back = headers.clone();
    let mut v: serde_json::Value = serde_json::from_str(&back[0].to_json()).unwrap();
    v["values"] = serde_json::json!([[null, null]]);
    back[0] = Partial::from_json(&v.to_string()).unwrap();
    refused(release(&admin(), &back, "adnet", &fields), "still carries");
    // A header claiming more members than its shard has rows is refused.
    let mut more = headers.clone();
    let mut v: serde_json::Value = serde_json::from_str(&more[0].to_json()).unwrap();
    v["count"] = (v["rows"].as_u64().unwrap() + 1).into();
    more[0] = Partial::from_json(&v.to_string()).unwrap();
    refused(
        release(&admin(), &more, "adnet", &fields),
        "more members than rows",
    );
    // Headers of another recipient or other fields are refused.
    refused(
        release(&admin(), &headers, "mailer", &fields),
        "another recipient",
    );
    refused(
        release(&admin(), &headers, "adnet", &fields[..1]),
        "other fields",
    );
    // A header twice, or one missing.
    let twice = vec![headers[0].clone(), headers[1].clone(), headers[1].clone()];
    refused(release(&admin(), &twice, "adnet", &fields), "given twice");
    refused(
        release(&admin(), &headers[..2], "adnet", &fields),
        "every shard",
    );

    // The gate refuses with no entry and no release: an actor without the
    // export permission; a recipient whose agreement covers neither the
    // fields nor what the selection reads.
    let before = driver.audit_len();
    let analyst = Actor::new("ana", &["analyst"]);
    let r = release(&analyst, &headers, "adnet", &fields);
    assert!(
        matches!(r, Err(ShardError::Engine(EngineError::Access(_)))),
        "{r:?}"
    );
    for (fields, needle) in [
        (&["total_spend"][..], "does not cover field total_spend"),
        (&["country"][..], "read by the segment's selection"),
    ] {
        match release(&admin(), &headers, "geo", fields) {
            Err(ShardError::Engine(EngineError::ExportRefused { reason, .. })) => {
                assert!(reason.contains(needle), "{reason}")
            }
            other => panic!("expected the agreement to refuse, got {other:?}"),
        }
    }
    let r = release(&admin(), &headers, "nobody", &fields);
    assert!(
        matches!(r, Err(ShardError::Engine(EngineError::UnknownRecipient(_)))),
        "{r:?}"
    );
    // Access refusals are recorded; nothing was released.
    let entries = driver
        .with_audit_log(&admin(), |l| l.entries().unwrap())
        .unwrap();
    assert!(
        entries[before as usize..]
            .iter()
            .all(|e| !e.details.contains_key("shard_roots")),
        "a refused release wrote a release entry"
    );

    // The release is recorded, with every row, before any row comes out.
    let before = driver.audit_len();
    let total: u64 = headers.iter().map(Partial::count).sum();
    let rel = release(&admin(), &headers, "adnet", &fields).unwrap();
    assert_eq!(driver.audit_len(), before + 1);
    let entries = driver
        .with_audit_log(&admin(), |l| l.entries().unwrap())
        .unwrap();
    // (Reading the log is itself recorded, after the release's entry.)
    let last = &entries[before as usize];
    assert_eq!(last.details["rows"], serde_json::json!(total));
    assert_eq!(last.details["recipient"], serde_json::json!("adnet"));
    assert_eq!(last.details["shards"], serde_json::json!(3));
    assert_eq!(rel.summary().rows, total);
    assert_eq!(rel.pending(), vec![0, 1, 2]);
    drop(rel);
    drop(rows);
    reset_now();
}

#[test]
fn split_export_rows_come_out_once_each_and_only_as_their_headers_say() {
    let (_, shards, driver) = fixed(3);
    let seg = compile(&driver, SEGMENTS[1]);
    let fields = ["country", "total_spend"];
    let (headers, rows) = split_rows(export_partials(&shards, "adnet", &fields));
    let mut rel = driver
        .release_export_split(
            &admin(),
            &seg,
            &headers,
            "adnet",
            &fields,
            ExportFormat::Csv,
            &keys(),
        )
        .unwrap();
    let shard = headers
        .iter()
        .position(|h| h.count() > 1)
        .expect("a shard with two members");
    let other = (0..3)
        .find(|&s| s != shard && headers[s].count() > 0)
        .unwrap();
    let json = |r: &ExportRows| serde_json::from_str::<serde_json::Value>(&r.to_json()).unwrap();
    let rows_of = |v: serde_json::Value| ExportRows::from_json(&v.to_string()).unwrap();
    let mut out = Vec::new();
    // A value changed (same ids, same count): only the digest tells.
    let mut v = json(&rows[shard]);
    let spend = &v["values"][0][1];
    v["values"][0][1] = serde_json::json!(spend.as_i64().unwrap_or(0) + 1);
    refused(
        rel.rows(shard as u32, &rows_of(v), &mut out),
        "not the rows",
    );
    // A null put in for a value, an id changed, a row dropped, two rows
    // swapped.
    let mut v = json(&rows[shard]);
    v["values"][0][0] = serde_json::Value::Null;
    refused(
        rel.rows(shard as u32, &rows_of(v), &mut out),
        "not the rows",
    );
    let mut v = json(&rows[shard]);
    v["ids"][0] = serde_json::json!(format!("{}x", v["ids"][0].as_str().unwrap()));
    refused(
        rel.rows(shard as u32, &rows_of(v), &mut out),
        "not the rows",
    );
    let mut v = json(&rows[shard]);
    v["ids"].as_array_mut().unwrap().pop();
    v["values"].as_array_mut().unwrap().pop();
    refused(
        rel.rows(shard as u32, &rows_of(v), &mut out),
        "not the rows",
    );
    let mut v = json(&rows[shard]);
    v["values"].as_array_mut().unwrap().swap(0, 1);
    v["ids"].as_array_mut().unwrap().swap(0, 1);
    let swapped = rows_of(v);
    if swapped != rows[shard] {
        refused(rel.rows(shard as u32, &swapped, &mut out), "not the rows");
    }
    // Rows whose values do not match the fields.
    let mut v = json(&rows[shard]);
    v["values"][0].as_array_mut().unwrap().pop();
    refused(
        rel.rows(shard as u32, &rows_of(v), &mut out),
        "do not match",
    );
    // Another shard's rows under this shard's number; a shard that is not.
    refused(
        rel.rows(shard as u32, &rows[other], &mut out),
        "not the rows",
    );
    refused(rel.rows(7, &rows[shard], &mut out), "there are 3 shards");
    assert!(out.is_empty(), "a refused call wrote output");
    // The right rows come out once; the CSV header goes out once, first.
    let n = rel.rows(shard as u32, &rows[shard], &mut out).unwrap();
    assert_eq!(n, headers[shard].count());
    refused(
        rel.rows(shard as u32, &rows[shard], &mut out),
        "already released",
    );
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(text.starts_with("id,country,total_spend\n"), "{text}");
    assert_eq!(text.lines().count() as u64, 1 + n);
    // Raw ids never come out: pseudonyms only.
    assert!(!text.contains("s-"), "{text}");
    rel.rows(other as u32, &rows[other], &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("id,country").count(), 1, "{text}");
    assert_eq!(rel.pending().len(), 1);

    // A shard that put another shard's subject in its partial before the
    // split: its header agrees with its rows, but the subject is not its.
    for members in [false, true] {
        let mut ps = if members {
            partials(&shards, SEGMENTS[1], &PartialRequest::Members).unwrap()
        } else {
            export_partials(&shards, "adnet", &fields)
        };
        let mut v: serde_json::Value = serde_json::from_str(&ps[shard].to_json()).unwrap();
        let w: serde_json::Value = serde_json::from_str(&ps[other].to_json()).unwrap();
        v["ids"].as_array_mut().unwrap().push(w["ids"][0].clone());
        if members {
            v["ids"].as_array_mut().unwrap().remove(0);
        } else {
            v["values"]
                .as_array_mut()
                .unwrap()
                .push(w["values"][0].clone());
            v["count"] = (headers[shard].count() + 1).into();
        }
        ps[shard] = Partial::from_json(&v.to_string()).unwrap();
        if members {
            let (hs, ids): (Vec<Partial>, Vec<Vec<String>>) =
                ps.into_iter().map(Partial::split_ids).unzip();
            let mut rel = driver.release_members_split(&admin(), &seg, &hs).unwrap();
            refused(rel.ids(shard as u32, ids[shard].clone()), "another shard");
        } else {
            let (hs, rows) = split_rows(ps);
            let mut rel = driver
                .release_export_split(
                    &admin(),
                    &seg,
                    &hs,
                    "adnet",
                    &fields,
                    ExportFormat::Csv,
                    &keys(),
                )
                .unwrap();
            refused(
                rel.rows(shard as u32, &rows[shard], Vec::new()),
                "another shard",
            );
        }
    }
    reset_now();
}
