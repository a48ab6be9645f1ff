//! Evaluation: the fast evaluator, a simple bitset evaluator, and the plain
//! row-at-a-time reference.
//!
//! - The fast evaluator ([`evaluate_with_mask`], used by the engine)
//!   compiles a segment to a [`Plan`] over the store's indexes
//!   ([`plan::compile`]) and runs it block by block ([`execute`]), with the
//!   eligibility mask kept current incrementally ([`MaskCache`]).
//! - The simple bitset evaluator ([`evaluate`]) computes each term as a
//!   full-size bitset from the row-wise columns and rebuilds the
//!   eligibility mask from scratch.
//! - The reference evaluator ([`reference`]) asks
//!   [`crate::consent::eligibility`] and [`matches_row`] about each row in
//!   turn. Property tests hold all three equal.

#[allow(unsafe_code)]
pub mod cpu;
mod error;
mod exec;
pub mod kernels;
pub mod plan;

pub use crate::store::MaskCache;
pub use cpu::{ExecOptions, KernelPath, cpu_features, default_path, execute, execute_into};
pub use error::EvalError;
pub use exec::CHUNK;
pub use plan::{Plan, PlanNode, RangeTest, compile};

use crate::consent::{DataUse, eligibility};
use crate::policy::{AttrId, Policy, PurposeId};
use crate::segment::{CheckedExpr, CheckedSegment, Term};
use crate::store::{Bits, ColumnData, MISSING, Store};
use crate::timestamp::Timestamp;

/// The earliest verification time at which a value of `attr` still counts
/// as fresh for `purpose` at `at` ([`MISSING`] + 1 when there is no limit).
pub(crate) fn fresh_since(policy: &Policy, attr: AttrId, purpose: PurposeId, at: Timestamp) -> i64 {
    match policy.max_staleness(attr, purpose) {
        Some(max) => at.unix().saturating_sub(max).max(MISSING + 1),
        None => MISSING + 1,
    }
}

/// Does one term hold for one row? False when the value is missing or stale.
pub fn term_matches(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    term: &Term,
    row: u32,
    at: Timestamp,
) -> bool {
    let attr = term.attr();
    let Some((code, verified)) = store.get(row, attr) else {
        return false;
    };
    if verified < fresh_since(policy, attr, purpose, at) {
        return false;
    }
    match term {
        Term::Has(_) => true,
        Term::CatIn {
            values, negated, ..
        } => values.contains(&(code as u32)) != *negated,
        Term::Range {
            lo, hi, negated, ..
        } => (lo.resolve(at)..=hi.resolve(at)).contains(&code) != *negated,
        Term::BoolIs { value, .. } => (code != 0) == *value,
    }
}

/// Does a predicate hold for one row (eligibility aside)?
pub fn matches_row(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    expr: &CheckedExpr,
    row: u32,
    at: Timestamp,
) -> bool {
    match expr {
        CheckedExpr::Const(b) => *b,
        CheckedExpr::And(xs) => xs
            .iter()
            .all(|x| matches_row(policy, store, purpose, x, row, at)),
        CheckedExpr::Or(xs) => xs
            .iter()
            .any(|x| matches_row(policy, store, purpose, x, row, at)),
        CheckedExpr::Not(x) => !matches_row(policy, store, purpose, x, row, at),
        CheckedExpr::Term(t) => term_matches(policy, store, purpose, t, row, at),
    }
}

/// The reference evaluator: every row, one at a time, through the plain
/// eligibility function and the plain predicate.
pub fn reference(policy: &Policy, store: &Store, seg: &CheckedSegment, at: Timestamp) -> Bits {
    let mut out = Bits::repeat(false, store.len());
    for row in 0..store.len() as u32 {
        let ok = eligibility(policy, &store.facts(row), seg.purpose(), at, seg.data_use())
            .is_allowed()
            && matches_row(policy, store, seg.purpose(), seg.expr(), row, at);
        out.set(row as usize, ok);
    }
    out
}

/// The eligibility mask of a purpose at an instant, for a segment's data use.
pub fn eligibility_mask(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    at: Timestamp,
    uses: DataUse,
) -> Bits {
    let chunk = crate::store::chunk_words(store.len().div_ceil(64));
    eligibility_mask_split(policy, store, purpose, at, uses, chunk)
}

/// [`eligibility_mask`] with runs of `chunk` words (at least one), each on
/// its own thread when there is more than one run.
pub(crate) fn eligibility_mask_split(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    at: Timestamp,
    uses: DataUse,
    chunk: usize,
) -> Bits {
    let n = store.len();
    let chunk = chunk.max(1);
    let mut out = Bits::repeat(false, n);
    let words = out.as_raw_mut_slice();
    let fill = |first: usize, words: &mut [u64]| {
        for (w, word) in words.iter_mut().enumerate() {
            let base = first + w * 64;
            let mut acc = 0u64;
            for bit in 0..64.min(n - base) {
                let row = (base + bit) as u32;
                if eligibility(policy, &store.facts(row), purpose, at, uses).is_allowed() {
                    acc |= 1 << bit;
                }
            }
            *word = acc;
        }
    };
    if chunk >= words.len() {
        fill(0, words);
    } else {
        // Each row is decided alone, so the split does not change the answer.
        std::thread::scope(|sc| {
            for (k, w) in words.chunks_mut(chunk).enumerate() {
                sc.spawn(move || fill(k * chunk * 64, w));
            }
        });
    }
    out
}

/// The rows whose value of `attr` is present and fresh.
fn fresh_mask(
    policy: &Policy,
    store: &Store,
    attr: AttrId,
    purpose: PurposeId,
    at: Timestamp,
) -> Bits {
    let since = fresh_since(policy, attr, purpose, at);
    let verified = store.column(attr).verified();
    kernels::from_predicate(verified.len(), |r| verified[r] >= since)
}

fn term_bits(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    term: &Term,
    at: Timestamp,
) -> Bits {
    let attr = term.attr();
    let fresh = fresh_mask(policy, store, attr, purpose, at);
    let col = store.column(attr);
    let mut out = match (term, col.data()) {
        (Term::Has(_), _) => return fresh,
        (
            Term::CatIn {
                values, negated, ..
            },
            ColumnData::Cat { bitmaps, .. },
        ) => {
            let mut acc = Bits::repeat(false, store.len());
            for &v in values {
                kernels::or_assign(acc.as_raw_mut_slice(), bitmaps[v as usize].as_raw_slice());
            }
            if *negated {
                kernels::not_assign(&mut acc);
            }
            acc
        }
        (
            Term::Range {
                lo, hi, negated, ..
            },
            ColumnData::Int { vals, .. },
        ) => {
            let (lo, hi) = (lo.resolve(at), hi.resolve(at));
            let neg = *negated;
            kernels::from_predicate(vals.len(), |r| (lo..=hi).contains(&vals[r]) != neg)
        }
        (Term::BoolIs { value, .. }, ColumnData::Bool { vals }) => {
            let mut b = vals.clone();
            if !*value {
                kernels::not_assign(&mut b);
            }
            b
        }
        _ => unreachable!("validation ties each term to its column's type"),
    };
    kernels::and_assign(out.as_raw_mut_slice(), fresh.as_raw_slice());
    out
}

/// The predicate as a bitset over all rows (eligibility aside).
pub fn predicate_bits(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    expr: &CheckedExpr,
    at: Timestamp,
) -> Bits {
    let n = store.len();
    match expr {
        CheckedExpr::Const(b) => Bits::repeat(*b, n),
        CheckedExpr::And(xs) => {
            let mut acc = Bits::repeat(true, n);
            for x in xs {
                let b = predicate_bits(policy, store, purpose, x, at);
                kernels::and_assign(acc.as_raw_mut_slice(), b.as_raw_slice());
            }
            acc
        }
        CheckedExpr::Or(xs) => {
            let mut acc = Bits::repeat(false, n);
            for x in xs {
                let b = predicate_bits(policy, store, purpose, x, at);
                kernels::or_assign(acc.as_raw_mut_slice(), b.as_raw_slice());
            }
            acc
        }
        CheckedExpr::Not(x) => {
            let mut b = predicate_bits(policy, store, purpose, x, at);
            kernels::not_assign(&mut b);
            b
        }
        CheckedExpr::Term(t) => term_bits(policy, store, purpose, t, at),
    }
}

/// The bitset evaluator: the predicate AND the eligibility mask.
pub fn evaluate(policy: &Policy, store: &Store, seg: &CheckedSegment, at: Timestamp) -> Bits {
    let mut out = predicate_bits(policy, store, seg.purpose(), seg.expr(), at);
    let mask = eligibility_mask(policy, store, seg.purpose(), at, seg.data_use());
    kernels::and_assign(out.as_raw_mut_slice(), mask.as_raw_slice());
    out
}

/// Wraps result words as a bitset of `len` bits.
pub fn bits_from_words(words: Vec<u64>, len: usize) -> Bits {
    let mut b = Bits::from_vec(words);
    b.truncate(len);
    b
}

/// The fast evaluator with a given eligibility mask (one bit per row, with
/// `mask_count` set): compiles the segment at `at` and executes the plan.
/// Returns the members and their number.
///
/// # Errors
/// [`EvalError::MaskLength`] if `mask` does not have one bit per row of
/// `store`.
pub fn evaluate_with_mask(
    policy: &Policy,
    store: &Store,
    seg: &CheckedSegment,
    at: Timestamp,
    mask: &Bits,
    mask_count: u64,
    opts: ExecOptions,
) -> Result<(Bits, u64), EvalError> {
    let plan = compile(policy, store, seg, at, mask, mask_count)?;
    let (words, count) = execute(&plan, opts);
    Ok((bits_from_words(words, store.len()), count))
}
