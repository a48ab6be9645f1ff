//! Throughput report: builds a synthetic CRM and measures, in one run, the
//! fast evaluator, the row-at-a-time reference evaluator (on a sample of
//! rows, extrapolated), an executor on the `roaring` crate over the same
//! data, and the time to stream the plan's inputs once.
//!
//! ```text
//! cargo run --release --example throughput -- --subjects 10000000
//! ```
//!
//! Options: `--subjects N` (default 10 000 000), `--sample N` rows for the
//! reference evaluator (default 200 000), `--updates N` consent events for
//! the update rate (default 2 000 000), `--batch N` events per import batch
//! (default 10 000), `--runs N` timed runs per figure (the median is
//! reported; default 7), `--profile-fixed-cost S` (after the fixed-cost
//! figure, evaluate the tiny plan for S seconds for a profiler, then stop).
//!
//! Besides one line per scenario, it prints a `first_evaluation` line (the
//! first evaluation of each scenario after the import, against the cached
//! ones and against one that must build its mask), a `fixed_cost` line (a
//! tiny plan through `Engine::evaluate` against its execution alone) and a
//! `consent_updates` line (single audited updates and import batches).
//!
//! One JSON object per line on stdout; progress on stderr.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use privseg::consent::{ConsentEvent, EventKind};
use privseg::eval::{self, ExecOptions, Plan, PlanNode};
use privseg::import::SubjectRow;
use privseg::policy::*;
use privseg::segment::CheckedSegment;
use privseg::timestamp::DAY;
use privseg::{Actor, Engine, Timestamp};
use roaring::RoaringBitmap;

/// The evaluation instant: 2026-03-01T00:00:00Z.
const NOW: i64 = 1_772_323_200;
const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

const COUNTRIES: [&str; 20] = [
    "FR", "DE", "ES", "IT", "NL", "BE", "PL", "SE", "AT", "PT", "IE", "DK", "FI", "CZ", "RO", "GR",
    "HU", "SK", "US", "GB",
];
const TIERS: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
const CHANNELS: [&str; 5] = ["web", "app", "store", "phone", "partner"];

/// splitmix64: a small deterministic generator.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// Skewed pick: low indexes more likely.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }
}

fn policy() -> Policy {
    PolicyBuilder::new("Synthetic Retail Ltd")
        .category(CategorySpec::new("user.profile"))
        .category(CategorySpec::new("user.commerce"))
        .category(CategorySpec::new("user.location"))
        .attribute(AttributeSpec::categorical(
            "country",
            "user.location",
            &COUNTRIES,
        ))
        .attribute(AttributeSpec::categorical("tier", "user.commerce", &TIERS))
        .attribute(AttributeSpec::categorical(
            "channel",
            "user.commerce",
            &CHANNELS,
        ))
        .attribute(AttributeSpec::integer("age", "user.profile", 0, 120))
        .attribute(AttributeSpec::integer(
            "lifetime_value",
            "user.commerce",
            0,
            1_000_000,
        ))
        .attribute(AttributeSpec::integer("orders", "user.commerce", 0, 10_000))
        .attribute(
            AttributeSpec::timestamp("last_purchase", "user.commerce").max_staleness_days(365),
        )
        .attribute(AttributeSpec::timestamp("signup", "user.profile"))
        .attribute(AttributeSpec::boolean("newsletter", "user.profile"))
        .attribute(AttributeSpec::boolean("vip", "user.commerce"))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user")
                .notice_versions(&["v2", "v3"])
                .consent_validity_days(730)
                .email(true),
        )
        .purpose(
            PurposeSpec::new("analytics", LawfulBasis::LegitimateInterests)
                .allow("user.profile")
                .allow("user.commerce")
                .allow("user.location"),
        )
        .purpose(
            PurposeSpec::new("ads.share", LawfulBasis::Consent)
                .allow("user")
                .notice_versions(&["v3"])
                .sale_share(),
        )
        .role(RoleSpec {
            name: "bench".into(),
            count: vec!["marketing".into(), "analytics".into(), "ads".into()],
            member_ids: vec!["marketing".into(), "analytics".into(), "ads".into()],
            subjects: true,
            ..RoleSpec::default()
        })
        .build()
        .expect("valid policy")
}

fn bench_actor() -> Actor {
    Actor::new("throughput", &["bench"])
}

fn id(i: u64) -> String {
    format!("cust-{i:09}")
}

fn build(n: u64) -> Engine {
    // The recording clock stands two years after the evaluation instant:
    // some generated withdrawals are dated up to a year after it, and an
    // event later than the recording clock is refused.
    let clock = privseg::clock::ManualClock::new(Timestamp::from_unix(NOW + 2 * 365 * DAY));
    let mut e = Engine::new(Arc::new(policy())).with_clock(Arc::new(clock));
    let actor = bench_actor();
    let mut rng = Rng(42);
    let mut rows: Vec<SubjectRow> = Vec::new();
    let mut events: Vec<ConsentEvent> = Vec::new();
    let year = 365 * DAY;
    for i in 0..n {
        let sid = id(i);
        let us = rng.chance(20);
        let juris = if us {
            "US-CA"
        } else {
            ["EU-FR", "EU-DE", "EU-ES", "EU-IT", "EU-NL"][rng.below(5) as usize]
        };
        let age = 14 + rng.below(70) as i64;
        let birth = (!rng.chance(5)).then(|| {
            let y = 2026 - age as i32;
            time::Date::from_calendar_date(y, time::Month::January, 1)
                .expect("valid date")
                .saturating_add(time::Duration::days(rng.below(365) as i64))
        });
        rows.push(SubjectRow {
            id: sid.clone(),
            jurisdiction: juris.into(),
            birth_date: birth,
            values: Vec::with_capacity(10),
        });
        let verified =
            |rng: &mut Rng| Timestamp::from_unix(NOW - rng.below(2 * year as u64) as i64);
        let set =
            |rows: &mut Vec<SubjectRow>, attr: &str, v: privseg::store::Value, rng: &mut Rng| {
                let t = verified(rng);
                rows.last_mut()
                    .expect("a row")
                    .values
                    .push((attr.to_string(), v, t));
            };
        let country = if us {
            "US"
        } else {
            COUNTRIES[rng.skewed(18) as usize]
        };
        set(&mut rows, "country", country.into(), &mut rng);
        set(
            &mut rows,
            "tier",
            TIERS[rng.skewed(4) as usize].into(),
            &mut rng,
        );
        if rng.chance(90) {
            set(
                &mut rows,
                "channel",
                CHANNELS[rng.below(5) as usize].into(),
                &mut rng,
            );
        }
        if birth.is_some() {
            set(&mut rows, "age", age.into(), &mut rng);
        }
        let orders = rng.skewed(60) as i64;
        set(
            &mut rows,
            "lifetime_value",
            (orders * rng.below(400) as i64).into(),
            &mut rng,
        );
        set(&mut rows, "orders", orders.into(), &mut rng);
        if orders > 0 {
            let t = Timestamp::from_unix(NOW - rng.below(3 * year as u64) as i64);
            set(&mut rows, "last_purchase", t.into(), &mut rng);
        }
        let signup = Timestamp::from_unix(NOW - rng.below(10 * year as u64) as i64);
        set(&mut rows, "signup", signup.into(), &mut rng);
        set(&mut rows, "newsletter", rng.chance(40).into(), &mut rng);
        set(&mut rows, "vip", rng.chance(3).into(), &mut rng);

        // Consent history.
        let at =
            |rng: &mut Rng, back: i64| Timestamp::from_unix(NOW - rng.below(back as u64) as i64);
        if rng.chance(65) {
            let t = at(&mut rng, 3 * year);
            let v = if rng.chance(85) { "v3" } else { "v1" };
            events.push(ConsentEvent::grant(&sid, "marketing.email", t, v, SHA));
            if rng.chance(10) {
                let w = Timestamp::from_unix(t.unix() + rng.below(year as u64) as i64);
                events.push(ConsentEvent::new(
                    &sid,
                    EventKind::ConsentWithdrawn,
                    Some("marketing.email"),
                    w,
                ));
            }
        } else if rng.chance(30) {
            events.push(ConsentEvent::new(
                &sid,
                EventKind::SoftOptIn,
                Some("marketing.email"),
                at(&mut rng, 2 * year),
            ));
        }
        if rng.chance(40) {
            events.push(ConsentEvent::grant(
                &sid,
                "ads.share",
                at(&mut rng, 2 * year),
                "v3",
                SHA,
            ));
        }
        if us && rng.chance(12) {
            let kind = if rng.chance(50) {
                EventKind::OptOutSaleShare
            } else {
                EventKind::Gpc
            };
            events.push(ConsentEvent::new(&sid, kind, None, at(&mut rng, year)));
        }
        if rng.chance(3) {
            events.push(ConsentEvent::new(
                &sid,
                EventKind::Objection,
                None,
                at(&mut rng, year),
            ));
        }
        if rng.chance(1) {
            events.push(ConsentEvent::new(
                &sid,
                EventKind::Restriction,
                None,
                at(&mut rng, year),
            ));
        }
        if rng.chance(4) {
            events.push(ConsentEvent::new(
                &sid,
                EventKind::Unsubscribe,
                None,
                at(&mut rng, year),
            ));
        }
        if rows.len() == 1_000_000 || i + 1 == n {
            e.import(&actor, &rows, &events).expect("valid import");
            rows.clear();
            events.clear();
            eprintln!("  built {} subjects", i + 1);
        }
    }
    e
}

const SCENARIOS: [(&str, &str); 6] = [
    (
        "eq_2_terms",
        r#"segment "fr_gold" for marketing.email where country = "FR" and tier = "gold""#,
    ),
    (
        "in_range_3_terms",
        r#"segment "south_adults" for marketing.email where country in ("ES", "IT", "PT", "GR") and age between 25 and 54 and orders >= 3"#,
    ),
    (
        "relative_time_4_terms",
        r#"segment "recent_big" for marketing.email where last_purchase >= now - 90d and lifetime_value > 1000 and channel != "phone" and newsletter = true"#,
    ),
    (
        "or_not_6_terms",
        r#"segment "mixed" for ads.share where (country in ("FR", "DE", "NL") or tier = "platinum") and not (age < 18) and signup >= now - 365d and not vip = false and orders between 1 and 100"#,
    ),
    (
        "wide_8_terms",
        r#"segment "wide" for analytics where country != "US" and tier in ("silver", "gold", "platinum") and channel in ("web", "app") and age >= 30 and lifetime_value between 500 and 20000 and orders > 1 and signup < now - 180d and newsletter = true"#,
    ),
    (
        "dense_1_term",
        r#"segment "everyone_eu" for analytics where country != "US""#,
    ),
];

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time the calling thread has had (Linux: `/proc/thread-self/schedstat`),
/// if known: on a shared machine, wall time also counts the time other
/// processes held the cores.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// Wall time and the calling thread's CPU time of `f`.
fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration, Option<Duration>) {
    let c = thread_cpu();
    let t = Instant::now();
    let r = f();
    let wall = t.elapsed();
    let cpu = c.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a));
    (r, wall, cpu)
}

fn time_runs<R>(runs: usize, mut f: impl FnMut() -> R) -> Duration {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        black_box(f());
        v.push(t.elapsed());
    }
    median(v)
}

/// Reads every input slice once (XOR-folding the words), on `threads`
/// threads: the streaming-read bound of a plan.
fn stream_read(inputs: &[&[u64]], words: usize, threads: usize) -> u64 {
    let read = |lo: usize, hi: usize| {
        let mut acc = [0u64; 4];
        for s in inputs {
            let s = &s[lo..hi];
            let mut chunks = s.chunks_exact(4);
            for c in &mut chunks {
                acc[0] ^= c[0];
                acc[1] ^= c[1];
                acc[2] ^= c[2];
                acc[3] ^= c[3];
            }
            for w in chunks.remainder() {
                acc[0] ^= w;
            }
        }
        acc[0] ^ acc[1] ^ acc[2] ^ acc[3]
    };
    if threads <= 1 {
        return read(0, words);
    }
    let per = words.div_ceil(threads);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (lo, hi) = ((t * per).min(words), ((t + 1) * per).min(words));
                s.spawn(move || read(lo, hi))
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("reader"))
            .fold(0, |a, b| a ^ b)
    })
}

/// A range over roaring slices: slices (least significant first), lower
/// and upper offset bounds, lowest slice read.
type RoaringRange = (Vec<RoaringBitmap>, Option<u64>, Option<u64>, u32);

/// The same plan on `roaring` bitmaps: a node at a time, full size.
struct RoaringPlan {
    universe: RoaringBitmap,
    operands: Vec<RoaringBitmap>,
    /// Per range: slices (least significant first), ge, le, lowest slice.
    ranges: Vec<RoaringRange>,
    root: PlanNode,
}

fn to_roaring(words: &[u64]) -> RoaringBitmap {
    RoaringBitmap::from_sorted_iter(eval::kernels::ones(words)).expect("sorted")
}

impl RoaringPlan {
    fn new(plan: &Plan<'_>, cache: &mut HashMap<usize, RoaringBitmap>) -> RoaringPlan {
        let mut conv = |w: &[u64]| {
            cache
                .entry(w.as_ptr() as usize)
                .or_insert_with(|| to_roaring(w))
                .clone()
        };
        let mut operands = Vec::new();
        let mut ranges = Vec::new();
        fn max_ids(n: &PlanNode, ops: &mut usize, rs: &mut usize) {
            match n {
                PlanNode::Bits { operand, .. } => *ops = (*ops).max(operand + 1),
                PlanNode::Range { range, .. } => *rs = (*rs).max(range + 1),
                PlanNode::And(xs) | PlanNode::Or(xs) => xs.iter().for_each(|x| max_ids(x, ops, rs)),
                PlanNode::Const(_) => {}
            }
        }
        let (mut no, mut nr) = (0, 0);
        max_ids(plan.root(), &mut no, &mut nr);
        for i in 0..no {
            operands.push(conv(plan.operand(i)));
        }
        for i in 0..nr {
            let r = plan.range(i);
            let low = r.lowest_slice();
            let slices = r
                .slices
                .iter()
                .enumerate()
                .map(|(k, s)| {
                    if k as u32 >= low {
                        conv(s)
                    } else {
                        RoaringBitmap::new()
                    }
                })
                .collect();
            ranges.push((slices, r.ge, r.le, low));
        }
        let mut universe = RoaringBitmap::new();
        universe.insert_range(0..plan.len() as u32);
        RoaringPlan {
            universe,
            operands,
            ranges,
            root: plan.root().clone(),
        }
    }

    fn range(&self, i: usize) -> RoaringBitmap {
        let (slices, ge, le, low) = &self.ranges[i];
        let (a, b) = (ge.unwrap_or(0), le.unwrap_or(u64::MAX));
        let stop_a = ge.map_or(64, u64::trailing_zeros);
        let stop_b = le.map_or(64, u64::trailing_ones);
        let (mut eq_a, mut gt) = (self.universe.clone(), RoaringBitmap::new());
        let (mut eq_b, mut lt) = (self.universe.clone(), RoaringBitmap::new());
        for k in (*low as usize..slices.len()).rev() {
            let s = &slices[k];
            if k as u32 >= stop_a {
                if (a >> k) & 1 == 1 {
                    eq_a &= s;
                } else {
                    gt |= &eq_a & s;
                    eq_a -= s;
                }
            }
            if k as u32 >= stop_b {
                if (b >> k) & 1 == 1 {
                    lt |= &eq_b - s;
                    eq_b &= s;
                } else {
                    eq_b -= s;
                }
            }
        }
        let ge_set = if ge.is_some() {
            gt | eq_a
        } else {
            self.universe.clone()
        };
        let le_set = if le.is_some() {
            lt | eq_b
        } else {
            self.universe.clone()
        };
        ge_set & le_set
    }

    fn eval(&self, n: &PlanNode) -> RoaringBitmap {
        match n {
            PlanNode::Const(true) => self.universe.clone(),
            PlanNode::Const(false) => RoaringBitmap::new(),
            PlanNode::Bits { operand, negated } => {
                let b = &self.operands[*operand];
                if *negated {
                    &self.universe - b
                } else {
                    b.clone()
                }
            }
            PlanNode::Range { range, negated } => {
                let r = self.range(*range);
                if *negated { &self.universe - r } else { r }
            }
            PlanNode::And(xs) => {
                let mut acc = self.eval(&xs[0]);
                for x in &xs[1..] {
                    match x {
                        PlanNode::Bits {
                            operand,
                            negated: false,
                        } => acc &= &self.operands[*operand],
                        PlanNode::Bits {
                            operand,
                            negated: true,
                        } => acc -= &self.operands[*operand],
                        _ => acc &= self.eval(x),
                    }
                }
                acc
            }
            PlanNode::Or(xs) => {
                let mut acc = self.eval(&xs[0]);
                for x in &xs[1..] {
                    match x {
                        PlanNode::Bits {
                            operand,
                            negated: false,
                        } => acc |= &self.operands[*operand],
                        _ => acc |= self.eval(x),
                    }
                }
                acc
            }
        }
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.replace('_', "").parse().expect("a number"))
        .unwrap_or(default)
}

/// The reference evaluator on `sample` evenly spaced rows: its time per
/// row, and whether it agrees with the fast result on those rows.
fn reference_sample(
    e: &Engine,
    seg: &CheckedSegment,
    at: Timestamp,
    sample: u64,
    fast: &privseg::Members,
) -> (f64, bool) {
    let n = e.row_count() as u64;
    let step = (n / sample.max(1)).max(1);
    let rows: Vec<u32> = (0..n).step_by(step as usize).map(|r| r as u32).collect();
    let t = Instant::now();
    let got = e
        .evaluate_reference_rows(&bench_actor(), seg, at, &rows)
        .expect("evaluates");
    let ns = t.elapsed().as_nanos() as f64 / rows.len().max(1) as f64;
    let agree = rows
        .iter()
        .zip(&got)
        .all(|(&r, &g)| fast.bits()[r as usize] == g);
    (ns, agree)
}

fn main() {
    let n = arg("--subjects", 10_000_000);
    let sample = arg("--sample", 200_000);
    let updates = arg("--updates", 2_000_000);
    let batch = arg("--batch", 10_000).max(1) as usize;
    let runs = arg("--runs", 7) as usize;
    let at = Timestamp::from_unix(NOW);
    let actor = bench_actor();

    eprintln!("building {n} subjects...");
    let t = Instant::now();
    let mut e = build(n);
    eprintln!("  built in {:.1} s", t.elapsed().as_secs_f64());
    let per_subject = |m: privseg::store::MemoryBytes| {
        let k = n.max(1) as f64;
        serde_json::json!({
            "ids": m.ids as f64 / k,
            "subjects": m.subjects as f64 / k,
            "values": m.values as f64 / k,
            "indexes": m.indexes as f64 / k,
            "histories": m.histories as f64 / k,
            "masks": m.masks as f64 / k,
            "total": m.total() as f64 / k,
        })
    };
    let memory_built = per_subject(e.memory_bytes());
    eprintln!("  bytes per subject, as built: {memory_built}");
    let segs: Vec<(&str, CheckedSegment)> = SCENARIOS
        .iter()
        .map(|(name, text)| (*name, e.compile(&actor, text).expect("valid segment")))
        .collect();

    // The first evaluation of each scenario after the import (the import
    // built every purpose's eligibility mask), then cached ones, then one
    // after the masks were dropped (it builds its purpose's mask).
    let mut first = Vec::new();
    for (name, s) in &segs {
        let t = Instant::now();
        e.evaluate(&actor, s, at).expect("evaluates");
        first.push((*name, t.elapsed()));
    }
    let memory_masks = per_subject(e.memory_bytes());
    eprintln!("  bytes per subject, masks cached: {memory_masks}");
    let mut first_json = serde_json::Map::new();
    for ((name, s), (_, first_t)) in segs.iter().zip(&first) {
        let cached = time_runs(runs, || {
            e.evaluate(&actor, s, at).expect("evaluates").count()
        });
        e.clear_mask_cache();
        let t = Instant::now();
        e.evaluate(&actor, s, at).expect("evaluates");
        let building = t.elapsed();
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        first_json.insert(
            (*name).into(),
            serde_json::json!({
                "first_ms": ms(first_t),
                "cached_ms": ms(&cached),
                "first_to_cached": first_t.as_secs_f64() / cached.as_secs_f64(),
                "building_mask_ms": ms(&building),
            }),
        );
    }
    // Puts back every purpose's standing mask (a write would too).
    for (_, s) in &segs {
        e.evaluate(&actor, s, at).expect("evaluates");
    }
    println!(
        "{}",
        serde_json::json!({"first_evaluation": first_json, "subjects": n})
    );

    // The fixed cost of an evaluation: a tiny plan (one bitmap and the
    // eligibility mask), whole evaluations interleaved with executions of
    // its plan alone into a reused buffer.
    {
        let tiny = e
            .compile(
                &actor,
                r#"segment "tiny" for marketing.email where vip = true"#,
            )
            .expect("valid segment");
        let opts = e.exec_options();
        // Rounds long enough (tens of milliseconds) for the thread's CPU
        // time, which the kernel accounts at scheduler ticks, to mean
        // something when summed over the rounds.
        let iters = 2000u32;
        let (mut whole, mut exec) = (Vec::new(), Vec::new());
        let (mut whole_cpu, mut exec_cpu) = (Vec::new(), Vec::new());
        for _ in 0..runs.max(7) {
            // The plan holds the eligibility mask's lock: evaluations run
            // outside it (one may need to move the mask forward).
            e.with_plan_for_benchmarks(&actor, &tiny, at, |plan| {
                let mut out = vec![0u64; plan.words()];
                let ((), wall, cpu) = timed(|| {
                    for _ in 0..iters {
                        black_box(eval::execute_into(plan, opts, &mut out).expect("sized"));
                    }
                });
                exec.push(wall / iters);
                exec_cpu.extend(cpu.map(|c| c / iters));
            })
            .expect("plans");
            let ((), wall, cpu) = timed(|| {
                for _ in 0..iters {
                    black_box(e.evaluate(&actor, &tiny, at).expect("evaluates").count());
                }
            });
            whole.push(wall / iters);
            whole_cpu.extend(cpu.map(|c| c / iters));
        }
        let (w, x) = (median(whole), median(exec));
        let cpu_us = |v: Vec<Duration>| {
            (!v.is_empty()).then(|| v.iter().sum::<Duration>().as_secs_f64() * 1e6 / v.len() as f64)
        };
        let (wc, xc) = (cpu_us(whole_cpu), cpu_us(exec_cpu));
        // `--profile-fixed-cost S`: evaluate the tiny plan for S seconds
        // more (for a profiler attached to the process), then stop.
        let spin = arg("--profile-fixed-cost", 0);
        if spin > 0 {
            eprintln!(
                "  evaluating the tiny plan for {spin} s (pid {})",
                std::process::id()
            );
            let t = Instant::now();
            while t.elapsed().as_secs() < spin {
                black_box(e.evaluate(&actor, &tiny, at).expect("evaluates").count());
            }
            return;
        }
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "{}",
            serde_json::json!({
                "fixed_cost": {
                    "evaluate_us": us(w),
                    "execute_only_us": us(x),
                    "fixed_us": us(w) - us(x),
                    "evaluate_cpu_us": wc,
                    "execute_only_cpu_us": xc,
                    "fixed_cpu_us": wc.zip(xc).map(|(a, b)| a - b),
                },
                "subjects": n,
            })
        );
    }

    // Consent updates with the masks cached: withdrawals and grants on
    // random subjects, dated before the evaluation time.
    let mut rng = Rng(7);
    let events: Vec<ConsentEvent> = (0..updates)
        .map(|i| {
            let sid = id(rng.below(n));
            let t = Timestamp::from_unix(NOW - 1 - rng.below(30 * DAY as u64) as i64);
            match i % 4 {
                0 => ConsentEvent::new(
                    &sid,
                    EventKind::ConsentWithdrawn,
                    Some("marketing.email"),
                    t,
                ),
                1 => ConsentEvent::grant(&sid, "marketing.email", t, "v3", SHA),
                2 => ConsentEvent::new(&sid, EventKind::ConsentWithdrawn, Some("ads.share"), t),
                _ => ConsentEvent::new(&sid, EventKind::Objection, None, t),
            }
        })
        .collect();
    // One call per event (each with its own audit entry), on the first
    // half; batches of `--batch` events through `Engine::import` (one audit
    // entry per batch, with a keyed digest over its events; the masks
    // updated row by row) on the second half.
    let (single, batched) = events.split_at(events.len() / 2);
    let ((), upd, single_cpu) = timed(|| {
        for ev in single {
            e.record(&actor, ev).expect("valid event");
        }
    });
    let updates_per_sec = single.len() as f64 / upd.as_secs_f64();
    eprintln!(
        "  {} single updates in {:.2} s",
        single.len(),
        upd.as_secs_f64()
    );
    let audit_before = e.audit_len();
    // (The masks of large batches are updated on several threads; the
    // CPU time counted is the calling thread's.)
    let ((), upd, batched_cpu) = timed(|| {
        for chunk in batched.chunks(batch) {
            e.import(&actor, &[], chunk).expect("valid events");
        }
    });
    let batched_updates_per_sec = batched.len() as f64 / upd.as_secs_f64();
    eprintln!(
        "  {} batched updates in {:.2} s",
        batched.len(),
        upd.as_secs_f64()
    );
    let batch_entries = e.audit_len() - audit_before;
    println!(
        "{}",
        serde_json::json!({
            "consent_updates": {
                "single_per_sec": updates_per_sec,
                "single_per_cpu_sec": single_cpu.map(|c| single.len() as f64 / c.as_secs_f64()),
                "batched_per_calling_thread_cpu_sec":
                    batched_cpu.map(|c| batched.len() as f64 / c.as_secs_f64()),
                "single_events": single.len(),
                "batched_per_sec": batched_updates_per_sec,
                "batched_events": batched.len(),
                "batch": batch,
                "batch_audit_entries": batch_entries,
            },
            "subjects": n,
        })
    );
    drop(events);

    let idx = e.index_bytes();
    let index_bytes_per_subject = idx.total() as f64 / n.max(1) as f64;
    let mask_bytes_per_subject = e.mask_cache_bytes() as f64 / n.max(1) as f64;
    eprintln!("  index bytes: {idx:?}");
    let opts = e.exec_options();

    let mut roaring_cache = HashMap::new();
    for (name, seg) in &segs {
        eprintln!("scenario {name}");
        let members = e.evaluate(&actor, seg, at).expect("evaluates");
        let fast = time_runs(runs, || {
            e.evaluate(&actor, seg, at).expect("evaluates").count()
        });
        // Plan execution alone into a reused buffer, and the bound.
        let ([plan_t, plan_1t, plan_2t, bound_t, bound_2t], input_bytes, roaring, threads) = e
            .with_plan_for_benchmarks(&actor, seg, at, |plan| {
                let mut out = vec![0u64; plan.words()];
                let plan_t = time_runs(runs, || eval::execute_into(plan, opts, &mut out));
                let one = ExecOptions {
                    threads: Some(1),
                    ..opts
                };
                let plan_1t = time_runs(runs, || eval::execute_into(plan, one, &mut out));
                let two = ExecOptions {
                    threads: Some(2),
                    ..opts
                };
                let plan_2t = time_runs(runs, || eval::execute_into(plan, two, &mut out));
                let inputs = plan.inputs();
                let threads = opts.resolved_threads(plan.words(), inputs.len());
                let bound_t = time_runs(runs, || stream_read(&inputs, plan.words(), threads));
                let bound_2t = time_runs(runs, || stream_read(&inputs, plan.words(), 2));
                let rp = RoaringPlan::new(plan, &mut roaring_cache);
                (
                    [plan_t, plan_1t, plan_2t, bound_t, bound_2t],
                    plan.input_bytes(),
                    rp,
                    threads,
                )
            })
            .expect("plans");
        let roaring_t = time_runs(runs.min(5), || roaring.eval(&roaring.root).len());
        let roaring_count = roaring.eval(&roaring.root).len();
        drop(roaring);
        let (ref_ns, ref_agrees) = reference_sample(&e, seg, at, sample, &members);
        let ns = |d: Duration| d.as_nanos() as f64 / n.max(1) as f64;
        let line = serde_json::json!({
            "scenario": name,
            "subjects": n,
            "members": members.count(),
            "ns_per_subject": ns(fast),
            "plan_ns_per_subject": ns(plan_t),
            "segment_ms": fast.as_secs_f64() * 1e3,
            "plan_ms": plan_t.as_secs_f64() * 1e3,
            "plan_ms_1_thread": plan_1t.as_secs_f64() * 1e3,
            "plan_ms_2_threads": plan_2t.as_secs_f64() * 1e3,
            "bound_ms_2_threads": bound_2t.as_secs_f64() * 1e3,
            "bound_ms": bound_t.as_secs_f64() * 1e3,
            "input_bytes": input_bytes,
            "reference_ns_per_subject_sampled": ref_ns,
            "reference_sample_rows": sample.min(n),
            "reference_extrapolated": true,
            "roaring_ms": roaring_t.as_secs_f64() * 1e3,
            "speedup_vs_reference": ref_ns / ns(fast),
            "speedup_vs_roaring": roaring_t.as_secs_f64() / fast.as_secs_f64(),
            "ratio_to_bandwidth_bound": fast.as_secs_f64() / bound_t.as_secs_f64(),
            "plan_ratio_to_bandwidth_bound": plan_t.as_secs_f64() / bound_t.as_secs_f64(),
            "index_bytes_per_subject": index_bytes_per_subject,
            "mask_cache_bytes_per_subject": mask_bytes_per_subject,
            "memory_bytes_per_subject_built": memory_built,
            "memory_bytes_per_subject_masks_cached": memory_masks,
            "consent_updates_per_sec": updates_per_sec,
            "consent_updates_per_sec_batched": batched_updates_per_sec,
            "agrees_with_reference_sample": ref_agrees,
            "agrees_with_roaring": roaring_count == members.count(),
            "density": members.count() as f64 / n.max(1) as f64,
            "threads": threads,
            "cpu_features": eval::cpu_features(),
        });
        println!("{line}");
    }
}
