//! A loom model of the publish protocol (src/publish.rs): readers evaluate
//! while a writer records withdrawals. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_publish`.
//!
//! Readers and writers start with a read-modify-write: a thread whose
//! first operation is a plain atomic load makes loom explore a single
//! execution (loom issue 392). The `#[should_panic]` test runs the same
//! model on a writer that publishes in two steps: if the model stopped
//! exploring interleavings, it would pass, and that test would fail; the
//! same for a writer that acknowledges a withdrawal before applying it.
#![cfg(loom)]

#[path = "../src/publish.rs"]
#[allow(dead_code)]
mod publish;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;
use publish::{MaskState, Publisher};

const ROWS: usize = 3;
const WITHDRAWN: [usize; 2] = [0, 2];

/// What every reader checks on the state it is shown, given the highest
/// version acknowledged to the writer's caller before the read started.
fn check(s: &MaskState, acked: u64) {
    assert_eq!(s.count(), s.counted(), "count and bits disagree: {s:?}");
    assert_eq!(
        s.version(),
        ROWS as u64 - s.count(),
        "version and bits disagree: {s:?}"
    );
    assert!(
        s.version() >= acked,
        "acknowledged version {acked} missed: {s:?}"
    );
    for &row in &WITHDRAWN[..acked as usize] {
        assert!(
            !s.get(row),
            "acknowledged withdrawal of {row} missed: {s:?}"
        );
    }
}

/// When the writer tells its caller a withdrawal is done.
#[derive(Clone, Copy)]
enum Ack {
    /// After `withdraw` returns (the protocol).
    After,
    /// Before calling it (broken).
    Before,
}

/// One writer withdrawing `WITHDRAWN` in order with `withdraw`, publishing
/// each acknowledged version; two readers. At most three preemptions per
/// execution (LOOM_MAX_PREEMPTIONS overrides it).
/// Returns the number of executions explored.
fn model(withdraw: fn(&Publisher, usize) -> u64, ack: Ack) -> usize {
    let executions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = executions.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(3);
    }
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = Publisher::new(ROWS);
        let acked = Arc::new(AtomicU64::new(0));
        let writer = {
            let (p, acked) = (p.clone(), acked.clone());
            thread::spawn(move || {
                acked.fetch_add(0, Ordering::AcqRel);
                for (i, row) in WITHDRAWN.into_iter().enumerate() {
                    if let Ack::Before = ack {
                        acked.store(i as u64 + 1, Ordering::Release);
                    }
                    let v = withdraw(&p, row);
                    if let Ack::After = ack {
                        acked.store(v, Ordering::Release);
                    }
                }
            })
        };
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (p, acked) = (p.clone(), acked.clone());
                thread::spawn(move || {
                    let a = acked.fetch_add(0, Ordering::AcqRel);
                    p.read(|s| check(s, a));
                })
            })
            .collect();
        writer.join().unwrap();
        for r in readers {
            r.join().unwrap();
        }
        p.read(|s| check(s, WITHDRAWN.len() as u64));
    });
    executions.load(std::sync::atomic::Ordering::Relaxed)
}

#[test]
fn readers_never_see_a_half_applied_or_missed_withdrawal() {
    let n = model(Publisher::withdraw, Ack::After);
    // A model that stopped exploring would pass in one execution.
    assert!(n > 100, "only {n} executions explored");
    println!("{n} executions explored");
}

/// The broken variant: the bit is cleared under one write lock and the
/// count and version under a second, so a reader can come in between.
fn withdraw_in_two_steps(p: &Publisher, row: usize) -> u64 {
    p.clear_bit_only(row);
    p.finish_withdrawal()
}

#[test]
#[should_panic(expected = "disagree")]
fn a_writer_publishing_in_two_steps_is_caught() {
    model(withdraw_in_two_steps, Ack::After);
}

/// Broken the other way: a withdrawal acknowledged before it is applied
/// can be missed by a reader that starts after the acknowledgement.
#[test]
#[should_panic(expected = "missed")]
fn an_acknowledgement_before_the_update_is_caught() {
    model(Publisher::withdraw, Ack::Before);
}
