//! The fast evaluator against the row-at-a-time reference: random policies,
//! subjects, histories and segments; every kernel path; chunk boundaries;
//! incremental mask updates interleaved with evaluations at increasing and
//! decreasing times.

mod common;
use common::{At, with_test_clock};
use std::sync::Arc;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::eval::{CHUNK, ExecOptions, KernelPath};
use privseg::policy::*;
use privseg::segment::{CmpOp, Expr, Literal, Segment, Span};
use privseg::timestamp::DAY;
use privseg::{Engine, Timestamp};
use proptest::prelude::*;

const T0: i64 = 1_772_000_000; // 2026-02-25
const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const PURPOSES: [&str; 4] = [
    "marketing.email",
    "analytics",
    "ads.share",
    "health.research",
];
const JURIS: [&str; 4] = ["EU-FR", "EU-DE", "US-CA", "EU"];

/// What varies between generated policies.
#[derive(Clone, Debug)]
struct PolicyKnobs {
    int_bounds: (i64, i64),
    level_bounds: (i64, i64),
    stale_attr: Option<u32>,
    stale_purpose: Option<u32>,
    validity: Option<u32>,
    soft_opt_in: bool,
}

fn knobs() -> impl Strategy<Value = PolicyKnobs> {
    let bounds = prop_oneof![
        Just((0, 120)),
        Just((-1000, 1000)),
        Just((i64::MIN, i64::MAX)),
        Just((7, 7)),
        Just((-5, -1)),
        Just((i64::MIN, i64::MIN + 3)),
        Just((i64::MAX - 3, i64::MAX)),
        Just((-(1 << 40), 1 << 40)),
    ];
    (
        bounds.clone(),
        bounds,
        proptest::option::of(1u32..400),
        proptest::option::of(1u32..400),
        proptest::option::of(1u32..800),
        any::<bool>(),
    )
        .prop_map(
            |(int_bounds, level_bounds, stale_attr, stale_purpose, validity, soft_opt_in)| {
                PolicyKnobs {
                    int_bounds,
                    level_bounds,
                    stale_attr,
                    stale_purpose,
                    validity,
                    soft_opt_in,
                }
            },
        )
}

fn policy(k: &PolicyKnobs) -> Policy {
    let mut seen = AttributeSpec::timestamp("last_seen", "user.profile");
    if let Some(d) = k.stale_attr {
        seen = seen.max_staleness_days(d);
    }
    let mut email = PurposeSpec::new("marketing.email", LawfulBasis::Consent)
        .allow("user")
        .notice_versions(&["v1", "v2"])
        .email(k.soft_opt_in);
    if let Some(d) = k.validity {
        email = email.consent_validity_days(d);
    }
    let mut analytics =
        PurposeSpec::new("analytics", LawfulBasis::LegitimateInterests).allow("user.profile");
    if let Some(d) = k.stale_purpose {
        analytics = analytics.max_staleness_days(d);
    }
    PolicyBuilder::new("Test Ltd")
        .category(CategorySpec::new("user"))
        .category(CategorySpec::new("user.profile"))
        .category(CategorySpec::new("user.health").special())
        .attribute(AttributeSpec::categorical(
            "country",
            "user.profile",
            &["FR", "DE", "US", "ES"],
        ))
        .attribute(AttributeSpec::integer(
            "score",
            "user.profile",
            k.int_bounds.0,
            k.int_bounds.1,
        ))
        .attribute(AttributeSpec::integer(
            "level",
            "user.profile",
            k.level_bounds.0,
            k.level_bounds.1,
        ))
        .attribute(seen)
        .attribute(AttributeSpec::timestamp("signup", "user.profile"))
        .attribute(AttributeSpec::boolean("vip", "user.profile"))
        .attribute(AttributeSpec::categorical(
            "blood",
            "user.health",
            &["A", "B", "O"],
        ))
        .purpose(email)
        .purpose(analytics)
        .purpose(
            PurposeSpec::new("ads.share", LawfulBasis::Consent)
                .allow("user.profile")
                .notice_versions(&["v1"])
                .sale_share(),
        )
        .purpose(
            PurposeSpec::new("health.research", LawfulBasis::Consent)
                .allow("user")
                .allow("user.health")
                .notice_versions(&["v1"]),
        )
        .role(privseg::policy::RoleSpec {
            name: "all".into(),
            count: vec![
                "ads".into(),
                "analytics".into(),
                "health".into(),
                "marketing".into(),
            ],
            member_ids: vec![
                "ads".into(),
                "analytics".into(),
                "health".into(),
                "marketing".into(),
            ],
            explain: vec![
                "ads".into(),
                "analytics".into(),
                "health".into(),
                "marketing".into(),
            ],
            subjects: true,
            read_audit: true,
            administer: true,
            ..Default::default()
        })
        .build()
        .expect("the test policy is valid")
}

/// An integer near the interesting points of a range.
fn int_near(lo: i64, hi: i64) -> impl Strategy<Value = i64> {
    let mid = ((i128::from(lo) + i128::from(hi)) / 2) as i64;
    prop_oneof![
        Just(lo),
        Just(hi),
        Just(lo.saturating_add(1)),
        Just(hi.saturating_sub(1)),
        Just(mid),
        Just(0i64),
        Just(-1i64),
        any::<i64>(),
        (lo..=hi),
    ]
    .prop_map(move |v| v.clamp(lo, hi))
}

/// A time near T0.
fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        (-800i64..800).prop_map(|d| T0 + d * DAY),
        (-3 * DAY..3 * DAY).prop_map(|s| T0 + s),
        Just(T0),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Value(usize, usize, i64, i64), // subject, attribute, raw value, verified
    Clear(usize, usize),
    Event(
        usize,
        EventKind,
        Option<usize>,
        i64,
        Option<i64>,
        bool,
        bool,
    ),
    Erase(usize),
}

fn ops(n: usize, k: &PolicyKnobs) -> impl Strategy<Value = Vec<Op>> + use<> {
    let n = n.max(1);
    let (ilo, ihi) = k.int_bounds;
    let (llo, lhi) = k.level_bounds;
    let value = (0..n, 0usize..7, any::<u64>(), time()).prop_flat_map(move |(s, a, r, ver)| {
        let v: BoxedStrategy<i64> = match a {
            1 => int_near(ilo, ihi).boxed(),
            2 => int_near(llo, lhi).boxed(),
            3 | 4 => time().boxed(),
            _ => Just(r as i64).boxed(),
        };
        v.prop_map(move |v| Op::Value(s, a, v, ver))
    });
    let event = (
        0..n,
        proptest::sample::select(EventKind::ALL.to_vec()),
        proptest::option::of(0usize..4),
        time(),
        proptest::option::of(time()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(s, kind, p, at, exp, explicit, v2)| {
            Op::Event(s, kind, p, at, exp, explicit, v2)
        });
    let op = prop_oneof![
        6 => value,
        1 => (0..n, 0usize..7).prop_map(|(s, a)| Op::Clear(s, a)),
        6 => event,
        1 => (0..n).prop_map(Op::Erase),
    ];
    proptest::collection::vec(op, 0..(3 * n).min(300))
}

const ATTRS: [&str; 7] = [
    "country",
    "score",
    "level",
    "last_seen",
    "signup",
    "vip",
    "blood",
];

fn id(i: usize) -> String {
    format!("s{i}")
}

fn apply(e: &mut Engine, op: &Op) {
    match op {
        Op::Value(s, a, raw, ver) => {
            let v = match *a {
                0 => ["FR", "DE", "US", "ES"][(*raw as usize) % 4].into(),
                1 | 2 => (*raw).into(),
                3 | 4 => Timestamp::from_unix(*raw).into(),
                5 => (raw % 2 == 0).into(),
                _ => ["A", "B", "O"][(*raw as usize) % 3].into(),
            };
            let _ = e.set_attribute(&all(), &id(*s), ATTRS[*a], v, Timestamp::from_unix(*ver));
        }
        Op::Clear(s, a) => {
            let _ = e.clear_attribute(&all(), &id(*s), ATTRS[*a]);
        }
        Op::Event(s, kind, p, at, exp, explicit, v2) => {
            let mut ev = ConsentEvent::new(
                &id(*s),
                *kind,
                p.map(|p| PURPOSES[p]),
                Timestamp::from_unix(*at),
            );
            ev.notice_version = Some(if *v2 { "v2" } else { "v1" }.into());
            ev.notice_sha256 = Some(SHA.into());
            ev.expires_at = exp.map(Timestamp::from_unix);
            ev.explicit = *explicit;
            // Events that do not fit their kind are refused; that is fine.
            let _ = e.record(&all(), &ev);
        }
        Op::Erase(s) => {
            let _ = e.erase(&all(), &id(*s));
        }
    }
}

fn leaf(k: &PolicyKnobs) -> BoxedStrategy<Expr> {
    let cmp = |attr: &'static str, op: CmpOp, value: Literal| Expr::Cmp {
        attr: attr.into(),
        op,
        value,
        span: Span::default(),
    };
    let ops = proptest::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ]);
    let (ilo, ihi) = k.int_bounds;
    let (llo, lhi) = k.level_bounds;
    let wide = |lo: i64, hi: i64| {
        prop_oneof![
            int_near(lo, hi),
            Just(i64::MIN),
            Just(i64::MAX),
            Just(lo.saturating_sub(1)),
            Just(hi.saturating_add(1)),
        ]
    };
    let ts = prop_oneof![
        (-400i64..400).prop_map(|d| Literal::Now { now: d * DAY }),
        (-3 * DAY..3 * DAY).prop_map(|s| Literal::Now { now: s }),
        time().prop_map(|t| Literal::Str(Timestamp::from_unix(t).to_string())),
    ];
    prop_oneof![
        (ops.clone(), wide(ilo, ihi)).prop_map(move |(o, v)| cmp("score", o, Literal::Int(v))),
        (ops.clone(), wide(llo, lhi)).prop_map(move |(o, v)| cmp("level", o, Literal::Int(v))),
        (wide(ilo, ihi), wide(ilo, ihi)).prop_map(|(a, b)| Expr::Between {
            attr: "score".into(),
            low: Literal::Int(a),
            high: Literal::Int(b),
            span: Span::default(),
        }),
        (ops.clone(), ts.clone()).prop_map(move |(o, v)| cmp("last_seen", o, v)),
        (ops, ts.clone()).prop_map(move |(o, v)| cmp("signup", o, v)),
        (ts.clone(), ts).prop_map(|(a, b)| Expr::Between {
            attr: "last_seen".into(),
            low: a,
            high: b,
            span: Span::default(),
        }),
        (
            proptest::collection::vec(proptest::sample::select(vec!["FR", "DE", "US", "ES"]), 1..4),
            any::<bool>()
        )
            .prop_map(|(vs, negated)| Expr::In {
                attr: "country".into(),
                values: vs.into_iter().map(|v| Literal::Str(v.into())).collect(),
                negated,
                span: Span::default(),
            }),
        (proptest::sample::select(vec!["FR", "US"]), any::<bool>()).prop_map(move |(v, ne)| cmp(
            "country",
            if ne { CmpOp::Ne } else { CmpOp::Eq },
            Literal::Str(v.into())
        )),
        any::<bool>().prop_map(move |b| cmp("vip", CmpOp::Eq, Literal::Bool(b))),
        proptest::sample::select(ATTRS[..6].to_vec()).prop_map(|a| Expr::Has {
            attr: a.into(),
            span: Span::default(),
        }),
        any::<bool>().prop_map(Expr::Const),
    ]
    .boxed()
}

fn expr(k: &PolicyKnobs) -> impl Strategy<Value = Expr> + use<> {
    leaf(k).prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Expr::And),
            proptest::collection::vec(inner.clone(), 1..4).prop_map(Expr::Or),
            inner.prop_map(|x| Expr::Not(Box::new(x))),
        ]
    })
}

fn segment(purpose: usize, predicate: Expr) -> Segment {
    Segment {
        name: "s".into(),
        purpose: PURPOSES[purpose].into(),
        predicate,
        purpose_span: Span::default(),
    }
}

/// Subject counts around the word and block boundaries.
fn subject_count() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0usize),
        Just(1),
        Just(63),
        Just(64),
        Just(65),
        Just(127),
        Just(129),
        0usize..200,
    ]
}

fn build(k: &PolicyKnobs, n: usize, births: &[Option<i32>]) -> Engine {
    let mut e = with_test_clock(Engine::new(Arc::new(policy(k))));
    for i in 0..n {
        let birth = births[i % births.len().max(1)]
            .and_then(|y| time::Date::from_calendar_date(y, time::Month::June, 15).ok());
        e.add_subject(&all(), &id(i), JURIS[i % JURIS.len()], birth)
            .unwrap();
    }
    e
}

/// Every path this CPU can run, each single-threaded and with threads.
fn option_sets() -> Vec<ExecOptions> {
    let mut v = Vec::new();
    for path in KernelPath::ALL.into_iter().filter(|p| p.is_available()) {
        for threads in [None, Some(1), Some(2), Some(3)] {
            v.push(ExecOptions {
                path: Some(path),
                threads,
            });
        }
    }
    v
}

/// Evaluates with every option set and checks each against the reference.
fn check(e: &mut Engine, seg: &Segment, at: i64) -> Result<(), TestCaseError> {
    let Ok(checked) = e.validate(&all(), seg) else {
        return Ok(()); // a combination validation refuses (e.g. R7)
    };
    let at = Timestamp::from_unix(at);
    let want = e.evaluate_reference_at(&all(), &checked, at).unwrap();
    for opts in option_sets() {
        e.set_exec_options(opts);
        let got = e.evaluate_at(&all(), &checked, at).unwrap();
        prop_assert_eq!(
            got.bits(),
            want.bits(),
            "options {:?} at {} for {:?}",
            opts,
            at,
            seg.predicate
        );
        prop_assert_eq!(got.count(), want.count());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random data, one evaluation per segment and time, every path.
    #[test]
    fn fast_matches_reference(
        (k, n, births, ops, segs, times) in (knobs(), subject_count()).prop_flat_map(|(k, n)| {
            let ops = ops(n, &k);
            let segs = proptest::collection::vec((0usize..4, expr(&k)), 1..5);
            (Just(k), Just(n),
             proptest::collection::vec(proptest::option::of(1995i32..2022), 1..5),
             ops, segs, proptest::collection::vec(time(), 1..4))
        })
    ) {
        let mut e = build(&k, n, &births);
        for op in &ops {
            apply(&mut e, op);
        }
        for (p, x) in &segs {
            for &t in &times {
                check(&mut e, &segment(*p, x.clone()), t)?;
            }
        }
    }

    /// Events and values arriving between evaluations at increasing and
    /// decreasing times: the incremental masks must equal fresh eligibility.
    #[test]
    fn incremental_updates_match_reference(
        (k, n, births, batches, segs) in (knobs(), subject_count()).prop_flat_map(|(k, n)| {
            let batches = proptest::collection::vec((ops(n, &k), time()), 1..6);
            let segs = proptest::collection::vec((0usize..4, expr(&k)), 1..3);
            (Just(k), Just(n),
             proptest::collection::vec(proptest::option::of(1995i32..2022), 1..5),
             batches, segs)
        })
    ) {
        let mut e = build(&k, n, &births);
        let mut added = n;
        for (i, (ops, t)) in batches.iter().enumerate() {
            for op in ops {
                apply(&mut e, op);
            }
            if i % 2 == 1 {
                // Subjects added after the masks were built.
                e.add_subject(&all(), &id(added), "EU-FR", None).unwrap();
                added += 1;
            }
            for (p, x) in &segs {
                check(&mut e, &segment(*p, x.clone()), *t)?;
                check(&mut e, &segment(*p, Expr::Const(true)), *t + DAY)?;
            }
        }
    }
}

/// Subject counts around the block size (and two blocks, split between
/// threads), with segments that exercise every kind of leaf.
#[test]
fn block_boundaries() {
    let k = PolicyKnobs {
        int_bounds: (-1000, 1000),
        level_bounds: (i64::MIN, i64::MAX),
        stale_attr: Some(30),
        stale_purpose: None,
        validity: Some(365),
        soft_opt_in: true,
    };
    let rows = CHUNK * 64;
    for n in [rows - 1, rows, rows + 65] {
        let mut e = build(&k, n, &[Some(1990), None, Some(2015)]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..n {
            let r = rnd();
            let ops = [
                Op::Value(i, 0, r as i64, T0 - (r % 60) as i64 * DAY),
                Op::Value(i, 1, (r % 2001) as i64 - 1000, T0),
                Op::Value(i, 2, (r as i64) >> (r % 64), T0),
                Op::Value(i, 3, T0 - (r % 90) as i64 * DAY, T0 - (r % 40) as i64 * DAY),
                Op::Event(
                    i,
                    EventKind::ConsentGranted,
                    Some((r % 4) as usize),
                    T0 - (r % 400) as i64 * DAY,
                    None,
                    r % 3 == 0,
                    false,
                ),
            ];
            for op in ops.iter().take(2 + (r % 4) as usize) {
                apply(&mut e, op);
            }
        }
        let texts = [
            r#"country in ("FR", "DE") and score between -10 and 500 and not vip = true"#,
            r#"level >= 0 or last_seen >= now - 30d"#,
            r#"not (country = "US" or score < 0) and has(last_seen)"#,
        ];
        for text in texts {
            for p in ["marketing.email", "analytics"] {
                let seg = match privseg::segment::parse(&format!(
                    r#"segment "b" for {p} where {text}"#
                )) {
                    Ok(s) => s,
                    Err(err) => panic!("{text}: {err}"),
                };
                let mut ok = Ok(());
                // A later instant (the mask moves forward), then an earlier
                // one (full recompute).
                for t in [T0 + 10 * DAY, T0 - DAY] {
                    ok = ok.and(check(&mut e, &seg, t));
                }
                ok.unwrap();
            }
        }
    }
}

fn all() -> privseg::Actor {
    privseg::Actor::new("test", &["all"])
}
