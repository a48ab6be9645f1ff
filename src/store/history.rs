//! Every row's consent history, in one arena: the records of all rows laid
//! out row after row, and where each row's records end. A store made in
//! bulk (a snapshot, a rebuild, a large import) holds one vector of
//! records and four bytes per row, where a vector per row costs 24 bytes
//! and an allocation each.
//!
//! A row that gains an event after that moves out of the arena into a
//! side map (a bit per row says which rows have moved), so every history
//! is still one contiguous slice in effect order. When the moved rows grow
//! to a share of the store, everything is laid out in one arena again:
//! the rewrite costs a pass over every record, paid for by the rows that
//! moved since the last one.

use std::collections::HashMap;

use super::Bits;
use crate::consent::{EventKind, EventRecord};

/// The most records the arena holds (its offsets are 32-bit); the
/// histories of rows past it stay in the side map.
const ARENA_MAX: usize = u32::MAX as usize;

/// A record overwriting an erased row's records in the arena.
const BLANK: EventRecord = EventRecord {
    at: 0,
    seq: 0,
    expires_at: 0,
    purpose: None,
    notice: u32::MAX,
    proof: 0,
    kind: EventKind::ConsentGranted,
    explicit: false,
};

/// The consent histories of a store's rows.
#[derive(Default)]
pub(crate) struct Histories {
    /// The records of the rows that have not moved, row after row.
    arena: Vec<EventRecord>,
    /// Where each row's records end in `arena` (its start is the previous
    /// row's end).
    ends: Vec<u32>,
    /// The rows whose history is held in `moved` instead.
    is_moved: Bits,
    /// The histories of the rows that gained events since the arena was
    /// laid out (and of erased rows: empty).
    moved: HashMap<u32, Vec<EventRecord>>,
    /// Records held in `moved`.
    moved_records: usize,
}

impl std::fmt::Debug for Histories {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histories")
            .field("rows", &self.len())
            .field("records", &self.arena.len())
            .field("moved", &self.moved.len())
            .finish()
    }
}

/// Histories are equal when every row's records are.
impl PartialEq for Histories {
    fn eq(&self, other: &Histories) -> bool {
        self.len() == other.len() && (0..self.len()).all(|r| self.get(r) == other.get(r))
    }
}

impl Histories {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn arena_slice(&self, row: usize) -> &[EventRecord] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.arena[start as usize..self.ends[row] as usize]
    }

    /// A row's records, in effect order.
    pub fn get(&self, row: usize) -> &[EventRecord] {
        if self.is_moved[row] {
            return self.moved.get(&(row as u32)).map_or(&[], Vec::as_slice);
        }
        self.arena_slice(row)
    }

    /// Every record, row after row.
    pub fn records(&self) -> impl Iterator<Item = &EventRecord> {
        (0..self.len()).flat_map(|r| self.get(r))
    }

    /// Appends a row with no events.
    pub fn push_row(&mut self) {
        self.ends.push(self.ends.last().copied().unwrap_or(0));
        self.is_moved.push(false);
    }

    /// Appends `n` rows with no events.
    pub fn add_rows(&mut self, n: usize) {
        let end = self.ends.last().copied().unwrap_or(0);
        self.ends.resize(self.ends.len() + n, end);
        self.is_moved.resize(self.ends.len(), false);
    }

    /// Histories laid out from `counts[r]` records per row, the records
    /// being `records` row after row (each row's in effect order).
    /// `records` holds the sum of `counts` (the caller checked it).
    pub fn from_counts(counts: &[u32], records: Vec<EventRecord>) -> Histories {
        Histories::from_counts_max(counts, records, ARENA_MAX)
    }

    /// [`Histories::from_counts`] with an arena of at most `max` records:
    /// the rows past it are held in the side map.
    fn from_counts_max(counts: &[u32], mut records: Vec<EventRecord>, max: usize) -> Histories {
        let mut h = Histories {
            ends: Vec::with_capacity(counts.len()),
            is_moved: Bits::repeat(false, counts.len()),
            ..Histories::default()
        };
        let mut at = 0usize;
        let mut cut = None;
        for (r, &k) in counts.iter().enumerate() {
            if cut.is_none() && at + k as usize > max {
                cut = Some((r, at));
            }
            if cut.is_none() {
                at += k as usize;
            }
            h.ends.push(at as u32);
        }
        if let Some((first, arena_len)) = cut {
            let mut rest = records.split_off(arena_len).into_iter();
            for (r, &k) in counts.iter().enumerate().skip(first) {
                h.is_moved.set(r, true);
                h.moved_records += k as usize;
                h.moved
                    .insert(r as u32, rest.by_ref().take(k as usize).collect());
            }
        }
        h.arena = records;
        h
    }

    /// Histories of `rows` rows from records in any order, each with its
    /// row: every row's records sorted into effect order.
    pub fn from_rows(rows: usize, records: Vec<(u32, EventRecord)>) -> Histories {
        let mut counts = vec![0u32; rows];
        for (r, _) in &records {
            counts[*r as usize] += 1;
        }
        let mut next: Vec<usize> = Vec::with_capacity(rows);
        let mut at = 0usize;
        for &k in &counts {
            next.push(at);
            at += k as usize;
        }
        let mut laid = vec![BLANK; at];
        for (r, rec) in records {
            laid[next[r as usize]] = rec;
            next[r as usize] += 1;
        }
        let mut start = 0;
        for &k in &counts {
            let h = &mut laid[start..start + k as usize];
            if !h.is_sorted_by_key(|e| (e.at, e.seq)) {
                h.sort_by_key(|e| (e.at, e.seq));
            }
            start += k as usize;
        }
        Histories::from_counts(&counts, laid)
    }

    /// Appends records to rows (numbered already), keeping every history
    /// in effect order. A batch that is a large share of the store (of its
    /// rows and records both) lays everything out in one arena again; a
    /// smaller one moves the rows it touches to the side map.
    pub fn append(&mut self, records: Vec<(u32, EventRecord)>) {
        if records.is_empty() {
            return;
        }
        let held = self.len() + self.arena.len() + self.moved_records;
        if records.len() > 1024 && records.len() >= held / 8 {
            let mut all: Vec<(u32, EventRecord)> =
                Vec::with_capacity(self.arena.len() + records.len());
            for r in 0..self.len() {
                all.extend(self.get(r).iter().map(|e| (r as u32, *e)));
            }
            all.extend(records);
            *self = Histories::from_rows(self.len(), all);
            return;
        }
        let mut unsorted = Vec::new();
        for (row, rec) in records {
            let h = self.moved_mut(row as usize);
            if h.last().is_some_and(|l| (l.at, l.seq) > (rec.at, rec.seq)) {
                unsorted.push(row);
            }
            push_history(h, rec);
            self.moved_records += 1;
        }
        unsorted.sort_unstable();
        unsorted.dedup();
        for row in unsorted {
            self.moved_mut(row as usize).sort_by_key(|e| (e.at, e.seq));
        }
        self.compact_if_due();
    }

    /// A row's history in the side map, moved there first if need be.
    fn moved_mut(&mut self, row: usize) -> &mut Vec<EventRecord> {
        if !self.is_moved[row] {
            let mut h = Vec::new();
            let from = self.arena_slice(row);
            h.reserve_exact(from.len() + from.len().div_ceil(2).max(1));
            h.extend_from_slice(from);
            self.moved_records += h.len();
            self.is_moved.set(row, true);
            self.moved.insert(row as u32, h);
        }
        self.moved.entry(row as u32).or_default()
    }

    /// Drops a row's records (an erasure): its records in the arena are
    /// overwritten and the row holds an empty history.
    pub fn clear(&mut self, row: usize) {
        if !self.is_moved[row] {
            let start = if row == 0 { 0 } else { self.ends[row - 1] } as usize;
            self.arena[start..self.ends[row] as usize].fill(BLANK);
            self.is_moved.set(row, true);
        }
        if let Some(old) = self.moved.insert(row as u32, Vec::new()) {
            self.moved_records -= old.len();
        }
    }

    /// Lays everything out in one arena again once the moved rows are an
    /// eighth of the store (and more than a few): the pass over every
    /// record is paid for by the rows that moved since the last one.
    fn compact_if_due(&mut self) {
        if self.moved.len() > 1024 && self.moved.len() > self.len() / 8 {
            self.compact();
        }
    }

    /// Lays every row's records out in one arena.
    fn compact(&mut self) {
        let counts: Vec<u32> = (0..self.len()).map(|r| self.get(r).len() as u32).collect();
        let mut laid = Vec::with_capacity(counts.iter().map(|&k| k as usize).sum());
        for r in 0..self.len() {
            laid.extend_from_slice(self.get(r));
        }
        *self = Histories::from_counts(&counts, laid);
    }

    /// Rows held in the side map.
    #[cfg(test)]
    pub fn moved_count(&self) -> usize {
        self.moved.len()
    }

    /// Bytes held: the arena, the offsets, the moved bits and the side
    /// map (a key, a vector and a control byte per bucket, and the moved
    /// records).
    pub fn bytes(&self) -> usize {
        use std::mem::size_of;
        self.arena.capacity() * size_of::<EventRecord>()
            + self.ends.capacity() * 4
            + self.is_moved.capacity() / 8
            + self.moved.capacity() * (size_of::<(u32, Vec<EventRecord>)>() + 1)
            + self
                .moved
                .values()
                .map(|h| h.capacity() * size_of::<EventRecord>())
                .sum::<usize>()
    }
}

/// Appends to a history that may be full: it grows by half its length
/// (at least one record), not doubled to four or more records as a plain
/// push would, since most histories stay short. Still amortised constant
/// time per record.
fn push_history(h: &mut Vec<EventRecord>, rec: EventRecord) {
    if h.len() == h.capacity() {
        h.reserve_exact((h.len() / 2).max(1));
    }
    h.push(rec);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::PurposeId;

    fn rec(at: i64, seq: u64) -> EventRecord {
        EventRecord {
            at,
            seq,
            purpose: Some(PurposeId(1)),
            ..BLANK
        }
    }

    /// The reference: a vector per row, each sorted.
    fn reference(rows: usize, recs: &[(u32, EventRecord)]) -> Vec<Vec<EventRecord>> {
        let mut v = vec![Vec::new(); rows];
        for (r, e) in recs {
            v[*r as usize].push(*e);
        }
        for h in &mut v {
            h.sort_by_key(|e| (e.at, e.seq));
        }
        v
    }

    fn same(h: &Histories, want: &[Vec<EventRecord>]) {
        assert_eq!(h.len(), want.len());
        for (r, w) in want.iter().enumerate() {
            assert_eq!(h.get(r), w.as_slice(), "row {r}");
        }
    }

    #[test]
    fn appends_move_rows_and_keep_every_history_sorted() {
        let mut all = Vec::new();
        let mut seq = 0;
        let mut next = |row: u32, at: i64| {
            seq += 1;
            (row, rec(at, seq))
        };
        for r in 0..100u32 {
            for k in 0..(r % 3) {
                all.push(next(r, i64::from(100 - k as i32)));
            }
        }
        let mut h = Histories::from_rows(100, all.clone());
        same(&h, &reference(100, &all));
        assert_eq!(h.moved_count(), 0, "a bulk layout moves nothing");
        // Small batches move the rows they touch, out of order too.
        for (row, at) in [(5, 1), (5, 500), (7, 50), (0, 3)] {
            let e = next(row, at);
            all.push(e);
            h.append(vec![e]);
        }
        assert_eq!(h.moved_count(), 3);
        same(&h, &reference(100, &all));
        h.add_rows(2);
        h.push_row();
        let e = next(102, 9);
        all.push(e);
        h.append(vec![e]);
        same(&h, &reference(103, &all));
        // A large batch lays everything out in one arena again.
        let batch: Vec<_> = (0..1100).map(|r| next(r % 103, 42)).collect();
        all.extend(batch.iter().copied());
        h.append(batch);
        assert_eq!(h.moved_count(), 0);
        same(&h, &reference(103, &all));
    }

    #[test]
    fn clearing_a_row_blanks_its_records() {
        let all = vec![
            (0, rec(1, 1)),
            (1, rec(2, 2)),
            (1, rec(3, 3)),
            (2, rec(4, 4)),
        ];
        let mut h = Histories::from_rows(3, all);
        h.clear(1);
        assert!(h.get(1).is_empty());
        assert_eq!(h.get(0), &[rec(1, 1)]);
        assert_eq!(h.get(2), &[rec(4, 4)]);
        assert!(
            h.arena.iter().filter(|e| e.seq == 2 || e.seq == 3).count() == 0,
            "the erased row's records are overwritten"
        );
    }

    #[test]
    fn many_moved_rows_are_laid_out_again() {
        let n = 20_000u32;
        let all: Vec<_> = (0..n).map(|r| (r, rec(1, u64::from(r)))).collect();
        let mut h = Histories::from_rows(n as usize, all.clone());
        let mut want = reference(n as usize, &all);
        // Batches too small to relayout at once, but together more than an
        // eighth of the rows.
        let mut seq = u64::from(n);
        for r in 0..(n / 8 + 1) {
            seq += 1;
            let e = (r, rec(2, seq));
            want[r as usize].push(e.1);
            h.append(vec![e]);
            assert!(h.moved_count() <= (n / 8) as usize);
        }
        assert!(h.moved_count() < 10, "{}", h.moved_count());
        same(&h, &want);
    }

    #[test]
    fn rows_past_the_arena_limit_are_held_aside() {
        let all: Vec<_> = (0..10u32)
            .flat_map(|r| {
                [
                    (r, rec(1, u64::from(r) * 2)),
                    (r, rec(2, u64::from(r) * 2 + 1)),
                ]
            })
            .collect();
        let want = reference(10, &all);
        let counts = vec![2u32; 10];
        let laid: Vec<_> = all.iter().map(|(_, e)| *e).collect();
        let h = Histories::from_counts_max(&counts, laid, 7);
        assert_eq!(h.arena.len(), 6, "three rows fit");
        assert_eq!(h.moved_count(), 7);
        same(&h, &want);
    }
}
