//! Eligibility masks kept current incrementally.
//!
//! A [`MaskCache`] holds the eligibility of every row for one purpose and one
//! [`DataUse`] as of one instant (`at`). It changes in two ways only:
//!
//! - a new event, erasure or subject: the writer recomputes that one row at
//!   the cache's instant with [`eligibility`] ([`MaskCache::refresh_row`]);
//! - time passing: each row whose answer could change without a new event
//!   (an expiry, a future-dated event, a birthday crossing an age gate) sits
//!   in a min-heap keyed by [`next_change`]. Moving the cache forward to a
//!   later instant ([`MaskCache::advance`]) pops the rows due by then,
//!   recomputes them and queues them again; no other row is looked at.
//!
//! A cache cannot move backwards: an evaluation at an instant earlier than
//! the cache's falls back to a full recompute ([`super::eligibility_mask`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::Timestamp;
use crate::consent::{DataUse, eligibility, next_change};
use crate::eval::EvalError;
use crate::policy::{Policy, PurposeId};
use crate::store::{Bits, Store};

/// Marks a row with nothing pending.
const NEVER: i64 = i64::MAX;

/// The eligibility mask of one purpose and data use, kept current.
#[derive(Clone, Debug)]
pub struct MaskCache {
    purpose: PurposeId,
    uses: DataUse,
    at: i64,
    bits: Bits,
    count: u64,
    /// The earliest queued recompute time of each row ([`NEVER`] when
    /// none); a queue entry whose time differs from its row's is stale and
    /// skipped.
    due: Vec<i64>,
    queue: BinaryHeap<Reverse<(i64, u32)>>,
}

impl MaskCache {
    /// Builds the mask at `at` with one call of [`eligibility`] per row.
    pub fn build(
        policy: &Policy,
        store: &Store,
        purpose: PurposeId,
        uses: DataUse,
        at: Timestamp,
    ) -> MaskCache {
        let n = store.len();
        let mut c = MaskCache {
            purpose,
            uses,
            at: at.unix(),
            bits: Bits::repeat(false, n),
            count: 0,
            due: vec![NEVER; n],
            queue: BinaryHeap::new(),
        };
        let mut pending = Vec::new();
        for row in 0..n as u32 {
            let facts = store.facts(row);
            if eligibility(policy, &facts, purpose, at, uses).is_allowed() {
                c.bits.set(row as usize, true);
                c.count += 1;
            }
            if let Some(t) = next_change(policy, &facts, purpose, at) {
                c.due[row as usize] = t.unix();
                pending.push(Reverse((t.unix(), row)));
            }
        }
        c.queue = BinaryHeap::from(pending);
        c
    }

    /// The purpose.
    pub fn purpose(&self) -> PurposeId {
        self.purpose
    }
    /// The data use.
    pub fn data_use(&self) -> DataUse {
        self.uses
    }
    /// The instant the mask is current for.
    pub fn at(&self) -> Timestamp {
        Timestamp::from_unix(self.at)
    }
    /// The mask.
    pub fn bits(&self) -> &Bits {
        &self.bits
    }
    /// Number of eligible rows.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Rows waiting in the time queue (stale entries included).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }
    /// Bytes held: the mask, the per-row due times and the queue.
    pub fn bytes(&self) -> usize {
        self.bits.as_raw_slice().len() * 8
            + self.due.capacity() * 8
            + self.queue.capacity() * std::mem::size_of::<Reverse<(i64, u32)>>()
    }

    fn put(&mut self, row: u32, ok: bool) {
        let r = row as usize;
        if self.bits[r] != ok {
            self.bits.set(r, ok);
            if ok {
                self.count += 1;
            } else {
                self.count -= 1;
            }
        }
    }

    /// Makes sure the row is recomputed by time `t`. A row already queued
    /// for an earlier time keeps that entry (it is recomputed then, which is
    /// merely early), so a burst of events on one row costs few pushes.
    fn schedule(&mut self, row: u32, t: Option<Timestamp>) {
        let t = t.map_or(NEVER, Timestamp::unix);
        let r = row as usize;
        if t < self.due[r] {
            self.due[r] = t;
            self.queue.push(Reverse((t, row)));
        }
    }

    /// Recomputes one row at the cache's instant (after a new event or an
    /// erasure), and queues its next change.
    pub fn refresh_row(&mut self, policy: &Policy, store: &Store, row: u32) {
        let at = Timestamp::from_unix(self.at);
        let facts = store.facts(row);
        let ok = eligibility(policy, &facts, self.purpose, at, self.uses).is_allowed();
        self.put(row, ok);
        let next = next_change(policy, &facts, self.purpose, at);
        self.schedule(row, next);
    }

    /// Adds the rows the store has gained since the mask was built.
    pub fn grow(&mut self, policy: &Policy, store: &Store) {
        while self.bits.len() < store.len() {
            let row = self.bits.len() as u32;
            self.bits.push(false);
            self.due.push(NEVER);
            self.refresh_row(policy, store, row);
        }
    }

    /// Moves the mask forward to `at`: only the rows whose change time has
    /// come are recomputed.
    ///
    /// # Errors
    /// [`EvalError::MaskBackwards`] if `at` is before the cache's instant
    /// (rebuild the cache or use [`crate::eval::eligibility_mask`]), and
    /// [`EvalError::MaskStore`] if `store` has fewer rows than the cache;
    /// the cache is then unchanged.
    pub fn advance(
        &mut self,
        policy: &Policy,
        store: &Store,
        at: Timestamp,
    ) -> Result<(), EvalError> {
        let now = at.unix();
        if now < self.at {
            return Err(EvalError::MaskBackwards {
                cache: self.at(),
                asked: at,
            });
        }
        if store.len() < self.bits.len() {
            return Err(EvalError::MaskStore {
                cache: self.bits.len(),
                rows: store.len(),
            });
        }
        self.at = now;
        while let Some(&Reverse((t, row))) = self.queue.peek() {
            if t > now {
                break;
            }
            self.queue.pop();
            if self.due[row as usize] != t {
                continue; // superseded by a later refresh
            }
            self.due[row as usize] = NEVER;
            self.refresh_row(policy, store, row);
        }
        Ok(())
    }
}
