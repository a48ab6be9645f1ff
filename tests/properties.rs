//! Property tests of the core: the bitset evaluator equals the reference
//! evaluator on random policies, subjects, histories and segments; no member
//! ever lacks a valid basis; the parser and loaders never panic; the text
//! and JSON forms round-trip.

use std::sync::Arc;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::policy::*;
use privseg::segment::{self, CmpOp, Expr, Literal, Segment};
use privseg::timestamp::{DAY, parse_date};
use privseg::{Actor, Engine, Timestamp};

mod common;
use common::{At, with_test_clock};

fn admin() -> Actor {
    Actor::new("prop", &["admin"])
}

fn admin_role(purposes: &[&str]) -> RoleSpec {
    let list: Vec<String> = purposes.iter().map(|p| p.to_string()).collect();
    RoleSpec {
        name: "admin".into(),
        count: list.clone(),
        member_ids: list.clone(),
        explain: list,
        subjects: true,
        ..RoleSpec::default()
    }
}
use proptest::prelude::*;

const SHA: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const T0: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

#[derive(Clone, Debug)]
struct PolicyShape {
    cat_flags: Vec<(bool, bool)>, // (special, ccpa_sensitive) for c0..c3
    attrs: Vec<(u8, u8, Option<u32>)>, // (type, category, staleness days)
    purposes: Vec<(u8, u8, Option<u32>, Option<u32>)>, // (basis, flags, validity, staleness)
}

fn policy_shape() -> impl Strategy<Value = PolicyShape> {
    (
        prop::collection::vec((any::<bool>(), any::<bool>()), 4),
        prop::collection::vec((0u8..4, 0u8..4, prop::option::of(1u32..60)), 1..5),
        prop::collection::vec(
            (
                0u8..6,
                any::<u8>(),
                prop::option::of(1u32..90),
                prop::option::of(1u32..60),
            ),
            1..4,
        ),
    )
        .prop_map(|(cat_flags, attrs, purposes)| PolicyShape {
            cat_flags,
            attrs,
            purposes,
        })
}

fn build_policy(s: &PolicyShape) -> Policy {
    let mut b = PolicyBuilder::new("Prop Ltd");
    for (i, (special, sens)) in s.cat_flags.iter().enumerate() {
        let mut c = CategorySpec::new(format!("user.c{i}"));
        c.special = *special;
        c.ccpa_sensitive = *sens;
        b = b.category(c);
    }
    for (i, (ty, cat, stale)) in s.attrs.iter().enumerate() {
        let name = format!("a{i}");
        let cat = format!("user.c{cat}");
        let mut a = match ty {
            0 => AttributeSpec::categorical(&name, &cat, &["x", "y", "z"]),
            1 => AttributeSpec::integer(&name, &cat, -50, 50),
            2 => AttributeSpec::timestamp(&name, &cat),
            _ => AttributeSpec::boolean(&name, &cat),
        };
        a.max_staleness_days = *stale;
        b = b.attribute(a);
    }
    let bases = [
        LawfulBasis::Consent,
        LawfulBasis::Contract,
        LawfulBasis::LegalObligation,
        LawfulBasis::VitalInterests,
        LawfulBasis::PublicTask,
        LawfulBasis::LegitimateInterests,
    ];
    for (i, (basis, flags, validity, stale)) in s.purposes.iter().enumerate() {
        let basis = bases[*basis as usize];
        let key = if flags & 1 != 0 {
            format!("marketing.p{i}")
        } else {
            format!("ops.p{i}")
        };
        let mut p = PurposeSpec::new(&key, basis).allow("user");
        for c in 0..4 {
            p = p.allow(&format!("user.c{c}"));
        }
        if basis == LawfulBasis::Consent || flags & 2 != 0 {
            p = p.notice_versions(&["n1", "n2"]);
        }
        p.consent_validity_days = *validity;
        p.max_staleness_days = *stale;
        p.ccpa_sale_share = flags & 4 != 0;
        p.ccpa_sensitive_necessary = flags & 8 != 0;
        p.email_channel = flags & 16 != 0;
        p.email_soft_opt_in = p.email_channel
            && flags & 32 != 0
            && key.starts_with("marketing")
            && basis != LawfulBasis::Consent;
        p.restriction_exempt = flags & 64 != 0;
        b = b.purpose(p);
    }
    let keys: Vec<String> = (0..s.purposes.len())
        .map(|i| {
            if s.purposes[i].1 & 1 != 0 {
                format!("marketing.p{i}")
            } else {
                format!("ops.p{i}")
            }
        })
        .collect();
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    b.role(admin_role(&keys))
        .build()
        .expect("generated policies are valid")
}

#[derive(Clone, Debug)]
struct SubjectShape {
    juris: u8,
    birth: Option<u16>, // days after 2000-01-01, spanning children and adults
    values: Vec<Option<(i64, i64)>>, // (raw, verified offset days)
}

#[derive(Clone, Debug)]
struct EventShape {
    subject: usize,
    kind: u8,
    purpose: usize,
    at_days: i64,
    notice: u8,
    expires: Option<i64>,
    explicit: bool,
    with_purpose: bool,
}

fn subjects() -> impl Strategy<Value = Vec<SubjectShape>> {
    prop::collection::vec(
        (
            0u8..4,
            prop::option::of(0u16..9000),
            prop::collection::vec(prop::option::of((-60i64..60, -200i64..10)), 5),
        )
            .prop_map(|(juris, birth, values)| SubjectShape {
                juris,
                birth,
                values,
            }),
        0..140,
    )
}

fn events() -> impl Strategy<Value = Vec<EventShape>> {
    prop::collection::vec(
        (
            any::<usize>(),
            0u8..13,
            0usize..4,
            -100i64..200,
            0u8..3,
            prop::option::of(1i64..200),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(
                |(subject, kind, purpose, at_days, notice, expires, explicit, with_purpose)| {
                    EventShape {
                        subject,
                        kind,
                        purpose,
                        at_days,
                        notice,
                        expires,
                        explicit,
                        with_purpose,
                    }
                },
            ),
        0..300,
    )
}

fn literal_for(ty: u8, r: i64) -> Literal {
    match ty {
        0 => Literal::Str(["x", "y", "z", "w"][r.rem_euclid(4) as usize].into()),
        1 => Literal::Int(r),
        2 => {
            if r % 2 == 0 {
                Literal::Now { now: r * DAY }
            } else {
                Literal::Str(Timestamp::from_unix(T0 + r * DAY).to_string())
            }
        }
        _ => Literal::Bool(r % 2 == 0),
    }
}

fn expr_strategy(n_attrs: usize) -> impl Strategy<Value = Expr> {
    let leaf = (0..n_attrs, 0u8..9, -60i64..60, -60i64..60, any::<bool>())
        .prop_map(move |(a, kind, r1, r2, neg)| (a, kind, r1, r2, neg));
    leaf.prop_map(|(a, kind, r1, r2, neg)| {
        // The literal's type is decided later, when the attribute types are known;
        // encode the choice as an Expr over attribute `a{a}` with a placeholder.
        let attr = format!("a{a}");
        let ops = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        match kind {
            0..=5 => Expr::Cmp {
                attr,
                op: ops[kind as usize],
                value: Literal::Int(r1),
                span: Default::default(),
            },
            6 => Expr::In {
                attr,
                values: vec![Literal::Int(r1), Literal::Int(r2)],
                negated: neg,
                span: Default::default(),
            },
            7 => Expr::Between {
                attr,
                low: Literal::Int(r1.min(r2)),
                high: Literal::Int(r1.max(r2)),
                span: Default::default(),
            },
            _ => Expr::Has {
                attr,
                span: Default::default(),
            },
        }
    })
    .prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|x| Expr::Not(Box::new(x))),
        ]
    })
}

/// Gives each literal the type of its attribute (integers stand for the raw draw).
fn retype(e: &mut Expr, types: &[u8]) {
    let ty_of = |attr: &str| types[attr[1..].parse::<usize>().unwrap()];
    let fix = |ty: u8, l: &mut Literal| {
        if let Literal::Int(r) = l {
            *l = literal_for(ty, *r);
        }
    };
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(|x| retype(x, types)),
        Expr::Not(x) => retype(x, types),
        Expr::Cmp {
            attr, op, value, ..
        } => {
            let ty = ty_of(attr);
            if ty == 0 || ty == 3 {
                *op = if matches!(op, CmpOp::Eq | CmpOp::Lt | CmpOp::Gt) {
                    CmpOp::Eq
                } else {
                    CmpOp::Ne
                };
            }
            fix(ty, value);
        }
        Expr::In { attr, values, .. } => {
            let ty = ty_of(attr);
            if ty != 0 {
                let r = if let Literal::Int(r) = values[0] {
                    r
                } else {
                    0
                };
                *e = Expr::Has {
                    attr: attr.clone(),
                    span: Default::default(),
                };
                if r % 3 == 0 {
                    *e = Expr::Not(Box::new(e.clone()));
                }
                return;
            }
            values.iter_mut().for_each(|v| fix(0, v));
            values.retain(|v| *v != Literal::Str("w".into()));
            if values.is_empty() {
                values.push(Literal::Str("x".into()));
            }
        }
        Expr::Between {
            attr, low, high, ..
        } => {
            let ty = ty_of(attr);
            if ty == 0 || ty == 3 {
                *e = Expr::Has {
                    attr: attr.clone(),
                    span: Default::default(),
                };
                return;
            }
            fix(ty, low);
            fix(ty, high);
        }
        _ => {}
    }
    if let Expr::Cmp {
        value: Literal::Str(s),
        attr,
        ..
    } = e
        && s == "w"
        && ty_of(attr) == 0
    {
        *s = "z".into();
    }
}

fn build_engine(
    policy: Policy,
    shape: &PolicyShape,
    subs: &[SubjectShape],
    evs: &[EventShape],
) -> Engine {
    let mut engine = with_test_clock(Engine::new(Arc::new(policy)));
    let juris = ["EU-FR", "EU-DE", "US-CA", "EU-DK"];
    let base = parse_date("2000-01-01").unwrap();
    for (i, s) in subs.iter().enumerate() {
        let birth = s.birth.map(|d| base + time::Duration::days(i64::from(d)));
        engine
            .add_subject(&admin(), &format!("s{i}"), juris[s.juris as usize], birth)
            .unwrap();
        for (a, (ty, _, _)) in shape.attrs.iter().enumerate() {
            if let Some(Some((raw, vdays))) = s.values.get(a) {
                let v = match ty {
                    0 => ["x", "y", "z"][raw.rem_euclid(3) as usize].into(),
                    1 => (*raw).clamp(-50, 50).into(),
                    2 => Timestamp::from_unix(T0 + raw * DAY).into(),
                    _ => (raw % 2 == 0).into(),
                };
                engine
                    .set_attribute(
                        &admin(),
                        &format!("s{i}"),
                        &format!("a{a}"),
                        v,
                        Timestamp::from_unix(T0 + vdays * DAY),
                    )
                    .unwrap();
            }
        }
    }
    if subs.is_empty() {
        return engine;
    }
    let keys: Vec<String> = engine
        .policy()
        .spec()
        .purposes
        .iter()
        .map(|p| p.key.clone())
        .collect();
    for e in evs {
        let kind = EventKind::ALL[e.kind as usize];
        let purpose = &keys[e.purpose % keys.len()];
        let mut ev = ConsentEvent::new(
            &format!("s{}", e.subject % subs.len()),
            kind,
            e.with_purpose.then_some(purpose.as_str()),
            Timestamp::from_unix(T0 + e.at_days * DAY),
        );
        ev.notice_version = Some(["n1", "n2", "old"][e.notice as usize].into());
        ev.notice_sha256 = Some(SHA.into());
        ev.expires_at = e
            .expires
            .map(|d| Timestamp::from_unix(T0 + (e.at_days + d) * DAY));
        ev.explicit = e.explicit;
        // Invalid combinations are refused by the engine and simply skipped;
        // a refused event must leave nothing behind.
        let before = engine.history(&admin(), &ev.subject).unwrap().len();
        if engine.record(&admin(), &ev).is_err() {
            ev.expires_at = None;
            ev.explicit = false;
            ev.purpose = Some(purpose.clone());
            if engine.record(&admin(), &ev).is_err() {
                assert_eq!(engine.history(&admin(), &ev.subject).unwrap().len(), before);
            }
        }
    }
    engine
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn bitset_evaluator_equals_reference(
        shape in policy_shape(),
        subs in subjects(),
        evs in events(),
        exprs in prop::collection::vec(expr_strategy(5), 1..4),
        purpose_pick in 0usize..4,
        at_days in prop::collection::vec(-120i64..260, 1..4),
    ) {
        let policy = build_policy(&shape);
        let types: Vec<u8> = shape.attrs.iter().map(|a| a.0).collect();
        let engine = build_engine(policy, &shape, &subs, &evs);
        let p = engine.policy().clone();
        let purpose = p.spec().purposes[purpose_pick % p.purpose_count()].key.clone();
        for mut expr in exprs {
            // Only attributes that exist.
            let n = types.len();
            rename(&mut expr, n);
            retype(&mut expr, &types);
            let seg = Segment { name: "p".into(), purpose: purpose.clone(), predicate: expr, purpose_span: Default::default() };
            let checked = match engine.validate(&admin(), &seg) {
                Ok(c) => c,
                Err(e) => panic!("generated segment refused: {e}\n{seg}"),
            };
            for &d in &at_days {
                let at = Timestamp::from_unix(T0 + d * DAY + 3_600);
                let fast = engine.evaluate_at(&admin(), &checked, at).unwrap();
                let slow = engine.evaluate_reference_at(&admin(), &checked, at).unwrap();
                prop_assert_eq!(fast.bits(), slow.bits(), "segment {} at {}", seg, at);
                prop_assert_eq!(fast.count(), slow.count());
                // No member lacks a valid basis.
                for id in engine.member_ids(&admin(), &fast).unwrap() {
                    let ex = engine.explain_at(&admin(), &checked, &id, at).unwrap();
                    prop_assert!(ex.member && ex.eligibility.is_allowed());
                }
            }
        }
    }
}

fn rename(e: &mut Expr, n: usize) {
    match e {
        Expr::And(xs) | Expr::Or(xs) => xs.iter_mut().for_each(|x| rename(x, n)),
        Expr::Not(x) => rename(x, n),
        Expr::Cmp { attr, .. }
        | Expr::In { attr, .. }
        | Expr::Between { attr, .. }
        | Expr::Has { attr, .. } => {
            let i: usize = attr[1..].parse().unwrap();
            *attr = format!("a{}", i % n);
        }
        Expr::Const(_) => {}
    }
}

// ---- An independent model of the main consent rules --------------------

/// A stateful test on a fixed policy: random sequences of grants,
/// withdrawals, refusals, objections, restrictions and evaluations. The
/// expected membership is computed by a model written here from the rules'
/// text, independent of the engine's eligibility function.
#[derive(Clone, Debug)]
enum Op {
    Grant { s: usize, at: i64, notice_ok: bool },
    Withdraw { s: usize, at: i64 },
    Refuse { s: usize, at: i64 },
    Object { s: usize, at: i64 },
    Restrict { s: usize, at: i64, lift: bool },
    Eval { at: i64 },
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let s = 0usize..6;
    let at = 0i64..100;
    prop::collection::vec(
        prop_oneof![
            (s.clone(), at.clone(), any::<bool>()).prop_map(|(s, at, notice_ok)| Op::Grant {
                s,
                at,
                notice_ok
            }),
            (s.clone(), at.clone()).prop_map(|(s, at)| Op::Withdraw { s, at }),
            (s.clone(), at.clone()).prop_map(|(s, at)| Op::Refuse { s, at }),
            (s.clone(), at.clone()).prop_map(|(s, at)| Op::Object { s, at }),
            (s.clone(), at.clone(), any::<bool>()).prop_map(|(s, at, lift)| Op::Restrict {
                s,
                at,
                lift
            }),
            at.prop_map(|at| Op::Eval { at }),
        ],
        1..80,
    )
}

fn model_member(log: &[(usize, Op, usize)], s: usize, at: i64) -> bool {
    // Events of subject s effective at `at`, in (time, arrival) order.
    let mut evs: Vec<&(usize, Op, usize)> = log
        .iter()
        .filter(|(who, op, _)| *who == s && op_time(op) <= at)
        .collect();
    evs.sort_by_key(|(_, op, seq)| (op_time(op), *seq));
    let mut consent = None::<(bool, i64)>; // (notice ok, granted at) of the latest decision, None if withdrawn/refused
    let mut restricted = false;
    let mut objected = false;
    for (_, op, _) in evs {
        match op {
            Op::Grant { notice_ok, at, .. } => consent = Some((*notice_ok, *at)),
            Op::Withdraw { .. } | Op::Refuse { .. } => consent = None,
            Op::Object { .. } => objected = true,
            Op::Restrict { lift, .. } => restricted = !lift,
            Op::Eval { .. } => {}
        }
    }
    // marketing.email: consent basis, 30 days validity, direct marketing.
    !restricted && !objected && matches!(consent, Some((true, g)) if at < g + 30)
}

fn op_time(op: &Op) -> i64 {
    match op {
        Op::Grant { at, .. }
        | Op::Withdraw { at, .. }
        | Op::Refuse { at, .. }
        | Op::Object { at, .. }
        | Op::Restrict { at, .. }
        | Op::Eval { at } => *at,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn members_always_have_a_valid_basis(ops in ops()) {
        let policy = PolicyBuilder::new("Model Ltd")
            .category(CategorySpec::new("user.contact"))
            .purpose(PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.contact").notice_versions(&["ok"]).consent_validity_days(30))
            .role(admin_role(&["marketing"]))
            .build().unwrap();
        let mut engine = with_test_clock(Engine::new(Arc::new(policy)));
        for s in 0..6 {
            engine.add_subject(&admin(), &format!("s{s}"), "EU-DE", parse_date("1970-01-01").ok()).unwrap();
        }
        let seg = engine.compile(&admin(), r#"segment "m" for marketing.email"#).unwrap();
        let day = |d: i64| Timestamp::from_unix(T0 + d * DAY);
        let mut log: Vec<(usize, Op, usize)> = Vec::new();
        for (seq, op) in ops.into_iter().enumerate() {
            let (s, ev) = match &op {
                Op::Grant { s, at, notice_ok } => (*s, ConsentEvent::grant(&format!("s{s}"), "marketing.email", day(*at), if *notice_ok { "ok" } else { "stale" }, SHA)),
                Op::Withdraw { s, at } => (*s, ConsentEvent::new(&format!("s{s}"), EventKind::ConsentWithdrawn, Some("marketing.email"), day(*at))),
                Op::Refuse { s, at } => (*s, ConsentEvent::new(&format!("s{s}"), EventKind::ConsentRefused, Some("marketing.email"), day(*at))),
                Op::Object { s, at } => (*s, ConsentEvent::new(&format!("s{s}"), EventKind::Objection, None, day(*at))),
                Op::Restrict { s, at, lift } => (*s, ConsentEvent::new(&format!("s{s}"), if *lift { EventKind::RestrictionLifted } else { EventKind::Restriction }, None, day(*at))),
                Op::Eval { at } => {
                    let m = engine.evaluate_at(&admin(), &seg, day(*at)).unwrap();
                    common::reset_now();
                    let got: Vec<bool> = (0..6).map(|s| m.bits()[s]).collect();
                    let want: Vec<bool> = (0..6).map(|s| model_member(&log, s, *at)).collect();
                    prop_assert_eq!(got, want, "at day {}", at);
                    continue;
                }
            };
            engine.record(&admin(), &ev).unwrap();
            log.push((s, op, seq));
            // A withdrawal, refusal or objection excludes the subject from
            // every evaluation at or after its time, immediately.
            if let Op::Withdraw { at, .. } | Op::Refuse { at, .. } | Op::Object { at, .. } = log.last().unwrap().1 {
                for later in [at, at + 1, at + 50] {
                    let m = engine.evaluate_at(&admin(), &seg, day(later)).unwrap();
                    let regranted = log.iter().any(|(w, o, _)| *w == s && matches!(o, Op::Grant { at: g, .. } if *g >= at && *g <= later));
                    if !regranted || matches!(log.last().unwrap().1, Op::Object { .. }) {
                        prop_assert!(!m.bits()[s], "s{} still a member at day {}", s, later);
                    }
                }
                common::reset_now();
            }
        }
    }
}

// ---- Parsers and loaders never panic -----------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = segment::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_soup(
        toks in prop::collection::vec(prop::sample::select(vec![
            "segment", "\"n\"", "for", "marketing.email", "where", "and", "or", "not", "(", ")",
            "country", "=", "!=", "<", ">=", "in", "between", "has", "now", "-", "+", "90d", "12",
            "-7", "\"FR\"", ",", "true", "false", ".", "\"", "\\", "é", "99999999999999999999",
        ]), 0..40)
    ) {
        let text = toks.join(" ");
        if let Err(e) = segment::parse(&text) {
            prop_assert!(e.line() >= 1 && e.column() >= 1, "{e:?}");
            let _ = e.to_string();
        }
    }

    #[test]
    fn loaders_never_panic_on_arbitrary_json(s in "\\PC{0,200}", v in arbitrary_json()) {
        let _ = Policy::from_json(&s);
        let _ = segment::from_json(&s);
        let text = v.to_string();
        let _ = Policy::from_json(&text);
        if let Ok(seg) = segment::from_json(&text) {
            let _ = segment::validate(&common_policy(), &seg, "");
        }
    }

    #[test]
    fn text_and_json_forms_round_trip(expr in expr_strategy(3), name in "\\PC{0,12}") {
        let mut expr = expr;
        retype(&mut expr, &[0, 1, 2]);
        let seg = Segment { name, purpose: "marketing.email".into(), predicate: expr, purpose_span: Default::default() };
        let text = seg.to_string();
        let parsed = segment::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&parsed, &seg);
        let json = segment::to_json(&parsed);
        let back = segment::from_json(&json).unwrap();
        prop_assert_eq!(&back, &seg);
        prop_assert_eq!(back.to_string(), text);
    }
}

fn common_policy() -> Policy {
    PolicyBuilder::new("X")
        .category(CategorySpec::new("user.c"))
        .attribute(AttributeSpec::categorical("a0", "user.c", &["x", "y"]))
        .attribute(AttributeSpec::integer("a1", "user.c", 0, 9))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::LegitimateInterests).allow("user"),
        )
        .build()
        .unwrap()
}

fn arbitrary_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(|i| serde_json::json!(i)),
        prop::sample::select(vec![
            "name",
            "purpose",
            "where",
            "and",
            "cmp",
            "attr",
            "a0",
            "op",
            "=",
            "marketing.email",
            "controller",
            "categories"
        ])
        .prop_map(|s| serde_json::Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "name",
                        "purpose",
                        "where",
                        "and",
                        "or",
                        "not",
                        "cmp",
                        "in",
                        "has",
                        "attr",
                        "op",
                        "value",
                        "values",
                        "controller",
                        "categories",
                        "attributes",
                        "purposes",
                        "key",
                        "basis",
                    ]),
                    inner
                ),
                0..4
            )
            .prop_map(|kv| serde_json::Value::Object(
                kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for depth in [65usize, 1_000, 100_000] {
        let text = format!(
            "segment \"d\" for marketing.email where {}true{}",
            "(".repeat(depth),
            ")".repeat(depth)
        );
        let err = segment::parse(&text).unwrap_err();
        assert!(err.message().contains("nesting"), "{err}");
        let text = format!(
            "segment \"d\" for marketing.email where {}true",
            "not ".repeat(depth)
        );
        assert!(
            segment::parse(&text)
                .unwrap_err()
                .message()
                .contains("nesting")
        );
    }
    let ok = format!(
        "segment \"d\" for marketing.email where {}true{}",
        "(".repeat(60),
        ")".repeat(60)
    );
    assert!(segment::parse(&ok).is_ok());
}

// ---- Minors: parental consents never stand in for an adult --------------

#[derive(Clone, Debug)]
enum MinorOp {
    Grant,
    Parental,
    Withdraw,
    Refuse,
    Unsubscribe,
}

/// The age gate below which a parent decides, per jurisdiction of the test
/// (written out here, not taken from the engine): France 15, Germany 16,
/// Denmark 13, California 13.
const MINOR_JURIS: [(&str, i32); 4] = [("EU-FR", 15), ("EU-DE", 16), ("EU-DK", 13), ("US-CA", 13)];

/// Was someone born on `birth` at least `years` old at Unix time `t`?
fn has_reached(birth: time::Date, years: i32, t: i64) -> bool {
    let on = time::OffsetDateTime::from_unix_timestamp(t).unwrap().date();
    let mut age = on.year() - birth.year();
    if (u8::from(on.month()), on.day()) < (u8::from(birth.month()), birth.day()) {
        age -= 1;
    }
    age >= years
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// For random subjects (children, teenagers, adults, unknown ages) and
    /// histories: a parental consent is recorded exactly when the subject
    /// may have been below the gate at its time, and is otherwise refused
    /// with nothing left behind; and no withdrawal or unsubscribe a subject
    /// gave at or above the gate is ever overridden by a parental consent,
    /// however the events interleave.
    #[test]
    fn parental_consents_never_stand_in_for_an_adult(
        subs in prop::collection::vec((0usize..4, prop::option::of(0i64..6000)), 1..7),
        ops in prop::collection::vec(
            (any::<usize>(), 0u8..5, 0i64..300, any::<bool>()),
            0..60,
        ),
        evals in prop::collection::vec(0i64..500, 1..5),
    ) {
        let policy = PolicyBuilder::new("Minors Ltd")
            .category(CategorySpec::new("user.contact"))
            .purpose(PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.contact").notice_versions(&["ok"]).consent_validity_days(120).email(false))
            .role(admin_role(&["marketing"]))
            .build().unwrap();
        let mut engine = Engine::new(Arc::new(policy));
        let born0 = parse_date("2005-01-01").unwrap();
        let t0: i64 = 1_748_736_000; // 2025-06-01T00:00:00Z
        let births: Vec<Option<time::Date>> =
            subs.iter().map(|(_, b)| b.map(|d| born0 + time::Duration::days(d))).collect();
        for (i, (j, _)) in subs.iter().enumerate() {
            engine.add_subject(&admin(), &format!("s{i}"), MINOR_JURIS[*j].0, births[i]).unwrap();
        }
        // (subject, op, time) of each event recorded.
        let mut log: Vec<(usize, MinorOp, i64)> = Vec::new();
        for (who, kind, day, notice_ok) in ops {
            let s = who % subs.len();
            let at = t0 + day * DAY + (who as i64 % DAY);
            let id = format!("s{s}");
            let op = [MinorOp::Grant, MinorOp::Parental, MinorOp::Withdraw, MinorOp::Refuse, MinorOp::Unsubscribe][kind as usize].clone();
            let ts = Timestamp::from_unix(at);
            let notice = if notice_ok { "ok" } else { "old" };
            let ev = match op {
                MinorOp::Grant => ConsentEvent::grant(&id, "marketing.email", ts, notice, SHA),
                MinorOp::Parental => {
                    let mut e = ConsentEvent::grant(&id, "marketing.email", ts, notice, SHA);
                    e.kind = EventKind::ParentalConsent;
                    e
                }
                MinorOp::Withdraw => ConsentEvent::new(&id, EventKind::ConsentWithdrawn, Some("marketing.email"), ts),
                MinorOp::Refuse => ConsentEvent::new(&id, EventKind::ConsentRefused, Some("marketing.email"), ts),
                MinorOp::Unsubscribe => ConsentEvent::new(&id, EventKind::Unsubscribe, None, ts),
            };
            let before = engine.history(&admin(), &id).unwrap().len();
            let result = engine.record(&admin(), &ev);
            if let MinorOp::Parental = op {
                let gate = MINOR_JURIS[subs[s].0].1;
                let may_be_below = births[s].is_none_or(|b| !has_reached(b, gate, at));
                match &result {
                    Ok(()) => prop_assert!(may_be_below, "s{} recorded a parental consent at {} though adult", s, ts),
                    Err(privseg::EngineError::Event(privseg::consent::EventError::ParentalConsentNotMinor { .. })) => {
                        prop_assert!(!may_be_below, "s{} refused a parental consent at {} though below the gate", s, ts);
                        prop_assert_eq!(engine.history(&admin(), &id).unwrap().len(), before);
                    }
                    Err(other) => prop_assert!(false, "unexpected error {}", other),
                }
            } else {
                prop_assert!(result.is_ok(), "{:?}", result);
            }
            if result.is_ok() {
                log.push((s, op, at));
            }
        }
        let seg = engine.compile(&admin(), r#"segment "m" for marketing.email"#).unwrap();
        for d in evals {
            let at = t0 + d * DAY;
            let ts = Timestamp::from_unix(at);
            let m = engine.evaluate_at(&admin(), &seg, ts).unwrap();
            for (s, (j, _)) in subs.iter().enumerate() {
                let gate = MINOR_JURIS[*j].1;
                let ok = engine.eligibility_at(&admin(), &format!("s{s}"), "marketing.email", ts).unwrap();
                prop_assert_eq!(m.bits()[s], ok.is_allowed(), "fast and reference differ for s{} at {}", s, ts);
                let Some(b) = births[s] else { continue };
                // The subject's own latest "no" given at or above the gate...
                let no = log.iter().filter(|(w, op, t)| {
                    *w == s && *t <= at && has_reached(b, gate, *t)
                        && matches!(op, MinorOp::Withdraw | MinorOp::Unsubscribe | MinorOp::Refuse)
                }).map(|(_, _, t)| *t).max();
                let Some(no) = no else { continue };
                // ...with no own grant since: nothing else may let them in.
                let regranted = log.iter().any(|(w, op, t)| {
                    *w == s && matches!(op, MinorOp::Grant) && *t >= no && *t <= at
                });
                if !regranted {
                    prop_assert!(!ok.is_allowed(), "s{} (born {}) allowed at {} after their own no at {}: {:?}", s, b, ts, Timestamp::from_unix(no), ok);
                }
            }
        }
    }
}
