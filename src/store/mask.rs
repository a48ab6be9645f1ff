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
//! A cache cannot move backwards: for an evaluation at an instant earlier
//! than the cache's (a host clock that stepped back) the store rebuilds the
//! cache as of that instant.
//!
//! The store keeps every purpose's mask for the plain data use at all
//! times: built when the engine is made and after a bulk write (one pass
//! per mask, split across the host's cores), updated row by row after
//! smaller writes; so no evaluation builds one.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::consent::{DataUse, eligibility, next_change};
use crate::eval::EvalError;
use crate::policy::{Policy, PurposeId};
use crate::store::{Bits, Store};
use crate::timestamp::Timestamp;

/// A time-queue entry: when, and which row.
type Queued = Reverse<(i64, u32)>;

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

/// Rows below which a mask is built on the calling thread alone.
const PARALLEL_MIN_ROWS: usize = 1 << 16;

/// Words per thread for a mask of `words` words: the whole mask (one run)
/// when it is small or the host has one core.
pub(crate) fn chunk_words(words: usize) -> usize {
    let threads = crate::eval::cpu::cores();
    if threads <= 1 || words * 64 < PARALLEL_MIN_ROWS {
        return words.max(1);
    }
    words.div_ceil(threads).max(1)
}

/// Decides the rows `first..` covered by `words` (and `due`, one entry per
/// row): sets their bits, their next change times and queue entries, and
/// returns how many are eligible.
#[allow(clippy::too_many_arguments)]
fn build_run(
    policy: &Policy,
    store: &Store,
    purpose: PurposeId,
    uses: DataUse,
    at: Timestamp,
    first: usize,
    words: &mut [u64],
    due: &mut [i64],
    pending: &mut Vec<Queued>,
) -> u64 {
    let mut count = 0u64;
    for (i, d) in due.iter_mut().enumerate() {
        let row = (first + i) as u32;
        let facts = store.facts(row);
        if eligibility(policy, &facts, purpose, at, uses).is_allowed() {
            words[i / 64] |= 1 << (i % 64);
            count += 1;
        }
        if let Some(t) = next_change(policy, &facts, purpose, at) {
            *d = t.unix();
            pending.push(Reverse((t.unix(), row)));
        }
    }
    count
}

impl MaskCache {
    /// Builds the mask at `at` with one call of [`eligibility`] and one of
    /// [`next_change`] per row, the rows split in runs of whole 64-bit
    /// words across the host's cores (the answer does not depend on the
    /// split: each row is decided alone, exactly as [`refresh_row`] would).
    ///
    /// [`refresh_row`]: MaskCache::refresh_row
    pub fn build(
        policy: &Policy,
        store: &Store,
        purpose: PurposeId,
        uses: DataUse,
        at: Timestamp,
    ) -> MaskCache {
        let words = store.len().div_ceil(64);
        Self::build_split(policy, store, purpose, uses, at, chunk_words(words))
    }

    /// [`MaskCache::build`] with runs of `chunk` words (at least one), each
    /// on its own thread when there is more than one run.
    pub(crate) fn build_split(
        policy: &Policy,
        store: &Store,
        purpose: PurposeId,
        uses: DataUse,
        at: Timestamp,
        chunk: usize,
    ) -> MaskCache {
        let n = store.len();
        let chunk = chunk.max(1);
        let mut bits = Bits::repeat(false, n);
        let mut due = vec![NEVER; n];
        let mut pending = Vec::new();
        let mut count = 0u64;
        let words = bits.as_raw_mut_slice();
        if chunk >= words.len() {
            count = build_run(
                policy,
                store,
                purpose,
                uses,
                at,
                0,
                words,
                &mut due,
                &mut pending,
            );
        } else {
            let parts: Vec<(u64, Vec<Queued>)> = std::thread::scope(|sc| {
                let handles: Vec<_> = words
                    .chunks_mut(chunk)
                    .zip(due.chunks_mut(chunk.saturating_mul(64)))
                    .enumerate()
                    .map(|(k, (w, d))| {
                        sc.spawn(move || {
                            let mut p = Vec::new();
                            let c = build_run(
                                policy,
                                store,
                                purpose,
                                uses,
                                at,
                                k * chunk * 64,
                                w,
                                d,
                                &mut p,
                            );
                            (c, p)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                    .collect()
            });
            for (c, p) in parts {
                count += c;
                pending.extend(p);
            }
        }
        MaskCache {
            purpose,
            uses,
            at: at.unix(),
            bits,
            count,
            due,
            queue: BinaryHeap::from(pending),
        }
    }

    /// The rows with a recompute time queued, each with that time, in row
    /// order (what a snapshot keeps of the time queue).
    pub(crate) fn due_rows(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.due
            .iter()
            .enumerate()
            .filter(|(_, t)| **t != NEVER)
            .map(|(r, t)| (r as u32, *t))
    }

    /// A mask as a snapshot kept it: its instant, bits and count, and the
    /// rows with a recompute time queued (`due`, in row order). Checked
    /// for consistency (the count that of the bits, every row in range and
    /// once); the queue is rebuilt from `due`.
    pub(crate) fn from_parts(
        purpose: PurposeId,
        uses: DataUse,
        at: i64,
        (bits, count): (Bits, u64),
        due: &[(u32, i64)],
    ) -> Result<MaskCache, String> {
        if bits.count_ones() as u64 != count {
            return Err("a mask's count differs from its bits".into());
        }
        let n = bits.len();
        let mut times = vec![NEVER; n];
        let mut last = None;
        for &(row, t) in due {
            if row as usize >= n || last.is_some_and(|l| l >= row) || t == NEVER {
                return Err("a mask's queued row out of range or order".into());
            }
            times[row as usize] = t;
            last = Some(row);
        }
        let queue = BinaryHeap::from(
            due.iter()
                .map(|&(row, t)| Reverse((t, row)))
                .collect::<Vec<_>>(),
        );
        Ok(MaskCache {
            purpose,
            uses,
            at,
            bits,
            count,
            due: times,
            queue,
        })
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::consent::{EventKind, EventRecord, Proof};
    use crate::store::{NewSubject, read};

    const T0: i64 = 1_700_000_000;
    const YEAR: i64 = 365 * 86_400;

    /// One random event: kind, purpose (index into the policy's, or none),
    /// time and expiry offsets, notice choice, explicit flag.
    type RawEvent = (usize, Option<usize>, i64, Option<i64>, u8, bool);

    fn raw_event() -> impl Strategy<Value = RawEvent> {
        (
            0..EventKind::ALL.len(),
            proptest::option::of(0usize..8),
            -3 * YEAR..3 * YEAR,
            proptest::option::of(0..2 * YEAR),
            0u8..4,
            any::<bool>(),
        )
    }

    /// A store under the sample policy with random subjects and histories.
    fn store(subjects: &[(usize, Option<i32>, bool, Vec<RawEvent>)]) -> Store {
        let policy =
            Arc::new(Policy::from_json(include_str!("../../examples/data/policy.json")).unwrap());
        let purposes: Vec<PurposeId> = policy.purpose_ids().collect();
        let juris: Vec<_> = ["EU", "EU-DE", "EU-FR", "US-CA"]
            .iter()
            .map(|c| policy.jurisdiction_id(c).unwrap())
            .collect();
        let mut s = Store::new(policy);
        let ids: Vec<String> = (0..subjects.len()).map(|i| format!("s{i}")).collect();
        let new: Vec<NewSubject<'_>> = subjects
            .iter()
            .zip(&ids)
            .map(|((j, birth, _, _), id)| NewSubject {
                id,
                jurisdiction: juris[j % juris.len()],
                birth_date: birth
                    .and_then(|y| time::Date::from_calendar_date(y, time::Month::March, 1).ok()),
            })
            .collect();
        s.add_subjects(&new).unwrap();
        let notices = [
            s.strings.intern("v3"),
            s.strings.intern("ads1"),
            s.strings.intern("v1"),
            u32::MAX,
        ];
        let mut events = Vec::new();
        for (row, (_, _, _, evs)) in subjects.iter().enumerate() {
            for &(k, p, dt, exp, notice, explicit) in evs {
                let rec = EventRecord {
                    at: T0 + dt,
                    seq: 0,
                    expires_at: exp.map_or(i64::MAX, |x| T0 + dt + x),
                    purpose: p.and_then(|p| purposes.get(p).copied()),
                    notice: notices[notice as usize],
                    proof: 0,
                    kind: EventKind::ALL[k],
                    explicit,
                };
                let proof = Proof {
                    channel: 0,
                    collector: 0,
                    notice_sha256: None,
                    evidence_sha256: None,
                };
                events.push((row as u32, rec, proof));
            }
        }
        s.append_events(events).unwrap();
        for (row, (_, _, erased, _)) in subjects.iter().enumerate() {
            if *erased {
                s.erase(row as u32, Timestamp::from_unix(T0)).unwrap();
            }
        }
        s
    }

    /// One write or clock move of the maintained-masks property.
    #[derive(Clone, Debug)]
    enum Step {
        /// New subjects: jurisdiction index and birth year each.
        Add(Vec<(usize, Option<i32>)>),
        /// Events, each on the row picked by the index modulo the rows.
        Events(Vec<(usize, RawEvent)>),
        /// A value set on a row (values never change eligibility).
        Value(usize),
        /// An erasure.
        Erase(usize),
        /// The clock moves by this many seconds (back, when negative).
        Clock(i64),
        /// An evaluation for every purpose at the clock's now.
        Evaluate,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            2 => proptest::collection::vec((0usize..4, proptest::option::of(1995i32..2022)), 1..40)
                .prop_map(Step::Add),
            4 => proptest::collection::vec((any::<usize>(), raw_event()), 1..12)
                .prop_map(Step::Events),
            1 => any::<usize>().prop_map(Step::Value),
            1 => any::<usize>().prop_map(Step::Erase),
            3 => prop_oneof![4 => 0..YEAR, 1 => -YEAR..0].prop_map(Step::Clock),
            3 => Just(Step::Evaluate),
        ]
    }

    /// The stored form of a random event at `T0 + dt`.
    fn record(s: &mut Store, e: RawEvent) -> (EventRecord, Proof) {
        let (k, p, dt, exp, notice, explicit) = e;
        let purposes: Vec<PurposeId> = s.policy().purpose_ids().collect();
        let notices = [
            s.strings.intern("v3"),
            s.strings.intern("ads1"),
            s.strings.intern("v1"),
            u32::MAX,
        ];
        let rec = EventRecord {
            at: T0 + dt,
            seq: 0,
            expires_at: exp.map_or(i64::MAX, |x| T0 + dt + x),
            purpose: p.and_then(|p| purposes.get(p).copied()),
            notice: notices[notice as usize],
            proof: 0,
            kind: EventKind::ALL[k],
            explicit,
        };
        let proof = Proof {
            channel: 0,
            collector: 0,
            notice_sha256: None,
            evidence_sha256: None,
        };
        (rec, proof)
    }

    /// Every standing mask held by the store (none built on demand) at the
    /// clock's now equals one call of `eligibility` per row.
    fn check_standing(s: &Store, clock: &crate::ManualClock) -> Result<(), TestCaseError> {
        use crate::clock::Clock;
        let policy = s.policy().clone();
        let now = clock.now();
        let uses = DataUse::default();
        for p in policy.purpose_ids() {
            let entry = read(&s.masks).get(&(p, uses)).cloned();
            let entry = entry.ok_or_else(|| TestCaseError::fail("a standing mask is missing"))?;
            let (bits, count) = s.with_mask(p, uses, now, |b, c| (b.clone(), c));
            prop_assert!(std::sync::Arc::ptr_eq(
                &entry,
                read(&s.masks).get(&(p, uses)).unwrap()
            ));
            prop_assert_eq!(bits.len(), s.len());
            let mut n = 0;
            for row in 0..s.len() as u32 {
                let ok = eligibility(&policy, &s.facts(row), p, now, uses).is_allowed();
                n += u64::from(ok);
                prop_assert_eq!(bits[row as usize], ok, "purpose {:?} row {}", p, row);
            }
            prop_assert_eq!(count, n);
            let fresh = MaskCache::build(&policy, s, p, uses, now);
            prop_assert_eq!(fresh.bits(), &bits);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Masks maintained by the store through a random sequence of
        /// writes (small ones update them row by row, bulk ones rebuild
        /// them) and clock moves equal masks rebuilt from scratch: one call
        /// of `eligibility` per row at the clock's now.
        #[test]
        fn maintained_masks_equal_rebuilt_masks(
            steps in proptest::collection::vec(step(), 1..30),
        ) {
            use crate::store::{ValueChange, ValueWrite};
            let policy =
                Arc::new(Policy::from_json(include_str!("../../examples/data/policy.json")).unwrap());
            let juris: Vec<_> = ["EU", "EU-DE", "EU-FR", "US-CA"]
                .iter()
                .map(|c| policy.jurisdiction_id(c).unwrap())
                .collect();
            let clock = crate::ManualClock::new(Timestamp::from_unix(T0));
            let mut s = Store::new(policy.clone());
            s.set_clock(Arc::new(clock.clone()));
            let attr = crate::policy::AttrId(0);
            let code = match policy.attribute(attr).ty {
                crate::policy::AttrType::Integer => policy.attribute(attr).min.unwrap_or(0),
                _ => 0,
            };
            for st in steps {
                match st {
                    Step::Add(subjects) => {
                        let ids: Vec<String> =
                            (0..subjects.len()).map(|i| format!("s{}", s.len() + i)).collect();
                        let new: Vec<NewSubject<'_>> = subjects
                            .iter()
                            .zip(&ids)
                            .map(|((j, birth), id)| NewSubject {
                                id,
                                jurisdiction: juris[j % juris.len()],
                                birth_date: birth.and_then(|y| {
                                    time::Date::from_calendar_date(y, time::Month::March, 1).ok()
                                }),
                            })
                            .collect();
                        s.add_subjects(&new).unwrap();
                    }
                    Step::Events(evs) if !s.is_empty() => {
                        let n = s.len();
                        let evs: Vec<_> = evs
                            .into_iter()
                            .map(|(r, e)| {
                                let (rec, proof) = record(&mut s, e);
                                ((r % n) as u32, rec, proof)
                            })
                            .collect();
                        s.append_events(evs).unwrap();
                    }
                    Step::Value(r) if !s.is_empty() => {
                        let row = (r % s.len()) as u32;
                        let verified = Timestamp::from_unix(T0);
                        s.set_values(&[ValueWrite {
                            row,
                            attr,
                            change: ValueChange::Set { code, verified },
                        }])
                        .unwrap();
                    }
                    Step::Erase(r) if !s.is_empty() => {
                        let row = (r % s.len()) as u32;
                        s.erase(row, Timestamp::from_unix(T0)).unwrap();
                    }
                    Step::Clock(dt) => clock.advance(dt),
                    Step::Evaluate => check_standing(&s, &clock)?,
                    _ => {}
                }
            }
            check_standing(&s, &clock)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The mask built in runs of any size, on any number of threads,
        /// equals one call of `eligibility` and `next_change` per row.
        #[test]
        fn split_build_equals_per_row_eligibility(
            subjects in proptest::collection::vec(
                (0usize..4, proptest::option::of(1995i32..2022), proptest::bool::weighted(0.05),
                 proptest::collection::vec(raw_event(), 0..6)),
                0..300),
            dt in -2 * YEAR..2 * YEAR,
            sale_share in any::<bool>(),
            chunk in 1usize..4,
        ) {
            let s = store(&subjects);
            let policy = s.policy().clone();
            let at = Timestamp::from_unix(T0 + dt);
            let uses = DataUse { sale_share, ..DataUse::default() };
            for p in policy.purpose_ids() {
                let m = MaskCache::build_split(&policy, &s, p, uses, at, chunk);
                let whole = MaskCache::build_split(&policy, &s, p, uses, at, usize::MAX);
                let mut count = 0;
                for row in 0..s.len() as u32 {
                    let facts = s.facts(row);
                    let ok = eligibility(&policy, &facts, p, at, uses).is_allowed();
                    count += u64::from(ok);
                    prop_assert_eq!(m.bits()[row as usize], ok, "row {}", row);
                    let next = next_change(&policy, &facts, p, at).map_or(NEVER, Timestamp::unix);
                    prop_assert_eq!(m.due[row as usize], next, "row {}", row);
                }
                prop_assert_eq!(m.bits().len(), s.len());
                prop_assert_eq!(m.count(), count);
                prop_assert_eq!(m.bits(), whole.bits());
                let mut q: Vec<_> = m.queue.clone().into_sorted_vec();
                let mut w: Vec<_> = whole.queue.clone().into_sorted_vec();
                q.sort_unstable();
                w.sort_unstable();
                prop_assert_eq!(q, w);
                let mut e = crate::eval::eligibility_mask_split(&policy, &s, p, at, uses, chunk);
                e.truncate(s.len());
                prop_assert_eq!(&e, m.bits());
            }
        }
    }
}
