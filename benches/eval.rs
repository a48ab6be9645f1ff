//! Benchmarks of the fast evaluator: plan execution per kernel path and
//! thread count, whole evaluations through the engine (plan compile, mask
//! and output included), the fixed cost of an evaluation (group
//! `fixed_cost`: a tiny plan through `Engine::evaluate` next to its
//! execution alone, with a `fixed_cost:` line giving both and their
//! difference from one interleaved run), and consent updates with masks
//! cached.
//!
//! `cargo bench --bench eval` (set `ROWS` to change the subject count,
//! default 1 000 000).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use privseg::consent::{ConsentEvent, EventKind};
use privseg::eval::{self, ExecOptions, KernelPath};
use privseg::policy::*;
use privseg::timestamp::DAY;
use privseg::{Engine, Timestamp};

const NOW: i64 = 1_772_323_200;
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn engine(n: u64) -> Engine {
    let policy = PolicyBuilder::new("Bench Ltd")
        .category(CategorySpec::new("user.profile"))
        .attribute(AttributeSpec::categorical(
            "country",
            "user.profile",
            &["FR", "DE", "ES", "IT", "US"],
        ))
        .attribute(AttributeSpec::integer("age", "user.profile", 0, 120))
        .attribute(AttributeSpec::timestamp("last_seen", "user.profile"))
        .attribute(AttributeSpec::boolean("vip", "user.profile"))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.profile")
                .notice_versions(&["v1"])
                .consent_validity_days(730)
                .email(false),
        )
        .role(privseg::policy::RoleSpec {
            name: "all".into(),
            count: vec!["marketing".into()],
            member_ids: vec!["marketing".into()],
            explain: vec!["marketing".into()],
            subjects: true,
            read_audit: true,
            administer: true,
            ..Default::default()
        })
        .build()
        .expect("valid policy");
    let mut e = Engine::new(Arc::new(policy));
    let mut rng = Rng(0x1234_5678);
    let t = Timestamp::from_unix(NOW - DAY);
    for i in 0..n {
        let id = format!("c{i}");
        let r = rng.next();
        e.add_subject(&all(), &id, "EU-FR", None).expect("new");
        let c = ["FR", "DE", "ES", "IT", "US"][(r % 5) as usize];
        e.set_attribute(&all(), &id, "country", c.into(), t)
            .expect("ok");
        e.set_attribute(&all(), &id, "age", ((r >> 8) % 100).cast_signed().into(), t)
            .expect("ok");
        let seen = Timestamp::from_unix(NOW - ((r >> 16) % (1000 * DAY as u64)) as i64);
        e.set_attribute(&all(), &id, "last_seen", seen.into(), t)
            .expect("ok");
        e.set_attribute(&all(), &id, "vip", r.is_multiple_of(7).into(), t)
            .expect("ok");
        if !r.is_multiple_of(3) {
            let g = Timestamp::from_unix(NOW - ((r >> 24) % (600 * DAY as u64)) as i64);
            e.record(
                &all(),
                &ConsentEvent::grant(&id, "marketing.email", g, "v1", SHA),
            )
            .expect("ok");
        }
    }
    e
}

const SEGMENTS: [(&str, &str); 3] = [
    (
        "eq",
        r#"segment "a" for marketing.email where country = "FR""#,
    ),
    (
        "range_time",
        r#"segment "b" for marketing.email where age between 25 and 54 and last_seen >= now - 90d"#,
    ),
    (
        "or_not",
        r#"segment "c" for marketing.email where (country in ("FR", "DE") or vip = true) and not age < 18"#,
    ),
];

/// A tiny plan: one bitmap and the eligibility mask.
const TINY: &str = r#"segment "t" for marketing.email where vip = true"#;

/// Prints, from one run of interleaved rounds, the median time of a whole
/// evaluation of `seg`, of its plan's execution alone, and their
/// difference (the fixed cost), in microseconds.
fn report_fixed_cost(e: &Engine, seg: &privseg::segment::CheckedSegment, at: Timestamp) {
    use std::time::Instant;
    const ROUNDS: usize = 15;
    const ITERS: u32 = 200;
    let opts = e.exec_options();
    let (mut whole, mut exec) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        // The plan holds the eligibility mask's lock: evaluations run
        // outside it (one may need to move the mask forward).
        e.with_plan_for_benchmarks(&all(), seg, at, |plan| {
            let mut out = vec![0u64; plan.words()];
            let t = Instant::now();
            for _ in 0..ITERS {
                black_box(eval::execute_into(black_box(plan), opts, &mut out).expect("sized"));
            }
            exec.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(ITERS));
        })
        .expect("plans");
        let t = Instant::now();
        for _ in 0..ITERS {
            black_box(e.evaluate(&all(), black_box(seg), at).expect("ok").count());
        }
        whole.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(ITERS));
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (w, x) = (median(whole), median(exec));
    println!(
        "fixed_cost: evaluate {w:.2} us, execute only {x:.2} us, fixed cost {:.2} us ({} rows)",
        w - x,
        e.row_count()
    );
}

fn benches(c: &mut Criterion) {
    let n: u64 = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let mut e = engine(n);
    let at = Timestamp::from_unix(NOW);
    let segs: Vec<_> = SEGMENTS
        .iter()
        .map(|(k, t)| (*k, e.compile(&all(), t).expect("valid")))
        .collect();

    let mut g = c.benchmark_group("plan_execute");
    g.throughput(Throughput::Elements(n));
    for (name, seg) in &segs {
        for path in KernelPath::ALL.into_iter().filter(|p| p.is_available()) {
            for threads in [1, 2] {
                let opts = ExecOptions {
                    path: Some(path),
                    threads: Some(threads),
                };
                let id = BenchmarkId::new(*name, format!("{}/{threads}t", path.as_str()));
                e.with_plan_for_benchmarks(&all(), seg, at, |plan| {
                    let mut out = vec![0u64; plan.words()];
                    g.bench_function(id, |b| {
                        b.iter(|| eval::execute_into(black_box(plan), opts, &mut out))
                    });
                })
                .expect("plans");
            }
        }
    }
    g.finish();

    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(n));
    for (name, seg) in &segs {
        g.bench_function(*name, |b| {
            b.iter(|| e.evaluate(&all(), black_box(seg), at).expect("ok").count())
        });
    }
    g.finish();

    // The fixed cost of an evaluation: a tiny plan (one bitmap ANDed with
    // the eligibility mask) through `Engine::evaluate` (gate, mask lookup,
    // planning, execution, result, audit entry) next to the same plan's
    // execution alone into a reused buffer. Their difference is the
    // per-evaluation cost that does not depend on the plan.
    let tiny = e.compile(&all(), TINY).expect("valid");
    e.evaluate(&all(), &tiny, at).expect("ok");
    let mut g = c.benchmark_group("fixed_cost");
    g.bench_function("evaluate_tiny", |b| {
        b.iter(|| {
            e.evaluate(&all(), black_box(&tiny), at)
                .expect("ok")
                .count()
        })
    });
    let opts = e.exec_options();
    e.with_plan_for_benchmarks(&all(), &tiny, at, |plan| {
        let mut out = vec![0u64; plan.words()];
        g.bench_function("execute_only_tiny", |b| {
            b.iter(|| eval::execute_into(black_box(plan), opts, &mut out))
        });
    })
    .expect("plans");
    g.finish();
    report_fixed_cost(&e, &tiny, at);

    // Consent updates with the mask of the purpose cached (and, for
    // comparison, with no mask cached: the cost of the history alone).
    for (name, seg) in &segs[..1] {
        e.evaluate(&all(), seg, at).expect("ok");
        let _ = name;
    }
    let mut bare = engine(n);
    bare.clear_mask_cache();
    let mut g = c.benchmark_group("consent_update");
    g.throughput(Throughput::Elements(1));
    for (label, engine) in [("mask_cached", &mut e), ("no_mask_cached", &mut bare)] {
        let mut rng = Rng(99);
        let mut i = 0u64;
        g.bench_function(label, |b| {
            b.iter(|| {
                i += 1;
                let id = format!("c{}", rng.next() % n);
                let t = Timestamp::from_unix(NOW - 1);
                let ev = if i.is_multiple_of(2) {
                    ConsentEvent::new(&id, EventKind::ConsentWithdrawn, Some("marketing.email"), t)
                } else {
                    ConsentEvent::grant(&id, "marketing.email", t, "v1", SHA)
                };
                engine.record(&all(), &ev).expect("ok")
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = eval_benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = benches
}
criterion_main!(eval_benches);

fn all() -> privseg::Actor {
    privseg::Actor::new("test", &["all"])
}
