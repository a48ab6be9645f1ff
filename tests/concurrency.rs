//! Readers evaluating while a writer records withdrawals: each withdrawal
//! is seen entirely or not at all, in order, and never missed by an
//! evaluation that started after it returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use privseg::consent::{ConsentEvent, EventKind};
use privseg::policy::*;
use privseg::timestamp::DAY;
use privseg::{Engine, ManualClock, SharedEngine, Timestamp};

const T0: i64 = 1_772_000_000;
const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[test]
fn engine_is_send_and_sync() {
    fn assert<T: Send + Sync>() {}
    assert::<Engine>();
    assert::<SharedEngine>();
}

fn engine(n: usize, clock: &ManualClock) -> Engine {
    let policy = PolicyBuilder::new("Acme")
        .category(CategorySpec::new("user.profile"))
        .attribute(AttributeSpec::categorical(
            "country",
            "user.profile",
            &["FR", "DE"],
        ))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.profile")
                .notice_versions(&["v1"])
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
        .unwrap();
    let mut e = Engine::new(Arc::new(policy)).with_clock(Arc::new(clock.clone()));
    let t = Timestamp::from_unix(T0 - 10 * DAY);
    let birth = time::Date::from_calendar_date(1980, time::Month::May, 1).ok();
    for i in 0..n {
        let id = format!("c{i}");
        e.add_subject(&all(), &id, "EU-FR", birth).unwrap();
        e.set_attribute(&all(), &id, "country", "FR".into(), t)
            .unwrap();
        e.record(
            &all(),
            &ConsentEvent::grant(&id, "marketing.email", t, "v1", SHA),
        )
        .unwrap();
    }
    e
}

/// A small deterministic generator (xorshift), so runs are repeatable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn withdrawals_are_atomic_and_never_missed() {
    const N: usize = 3000;
    const WITHDRAWALS: usize = 400;
    const READERS: usize = 3;
    // One host clock shared by every thread; readers move it to the instant
    // they ask about (forward: the mask advances; back: a full recompute).
    let clock = ManualClock::new(Timestamp::from_unix(T0));
    let shared = SharedEngine::new(engine(N, &clock));
    let seg = shared
        .read()
        .compile(
            &all(),
            r#"segment "fr" for marketing.email where country = "FR""#,
        )
        .unwrap();
    // Withdrawals 0..done have returned.
    let done = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        for r in 0..READERS {
            let (shared, seg, done, finished, clock) = (&shared, &seg, &done, &finished, &clock);
            s.spawn(move || {
                let mut rng = Rng(0x5eed_0000 + r as u64);
                let mut evaluations = 0;
                while !finished.load(Ordering::SeqCst) || evaluations < 5 {
                    let before = done.load(Ordering::SeqCst);
                    // Same instant (cached mask), later instants (the mask
                    // moves forward) and an earlier one (full recompute).
                    let at = T0 + [0, 0, DAY, 2 * DAY, -DAY][(rng.next() % 5) as usize];
                    clock.set(Timestamp::from_unix(at));
                    let m = shared
                        .evaluate(&all(), seg, Timestamp::from_unix(at))
                        .unwrap();
                    let after = done.load(Ordering::SeqCst);
                    // Subjects withdraw in order c0, c1, ...: the members
                    // must be exactly c_k.. for one k between the
                    // withdrawals returned before and after the evaluation
                    // (the one in flight may or may not be seen).
                    let rows: Vec<u32> = m.rows().collect();
                    let k = N - rows.len();
                    assert!(
                        (before..=after + 1).contains(&k),
                        "saw {k} withdrawals; {before} had returned before the evaluation started"
                    );
                    assert!(
                        rows.iter()
                            .enumerate()
                            .all(|(i, &row)| row as usize == k + i),
                        "members are not a suffix: an event was seen partly"
                    );
                    evaluations += 1;
                    assert!(evaluations < 1_000_000, "bounded");
                }
            });
        }
        s.spawn(|| {
            for i in 0..WITHDRAWALS {
                let ev = ConsentEvent::new(
                    &format!("c{i}"),
                    EventKind::ConsentWithdrawn,
                    Some("marketing.email"),
                    Timestamp::from_unix(T0 - DAY),
                );
                shared.record(&all(), &ev).unwrap();
                done.store(i + 1, Ordering::SeqCst);
            }
            finished.store(true, Ordering::SeqCst);
        });
    });
    clock.set(Timestamp::from_unix(T0 + 3 * DAY));
    let m = shared
        .evaluate(&all(), &seg, Timestamp::from_unix(T0 + 3 * DAY))
        .unwrap();
    assert_eq!(m.count(), (N - WITHDRAWALS) as u64);
}

fn all() -> privseg::Actor {
    privseg::Actor::new("test", &["all"])
}
