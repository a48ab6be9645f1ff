//! External ids: one byte arena, an end offset per row, and a hash table of
//! row numbers (the bytes are kept once; a row costs its id's bytes and
//! about 15 bytes more, where a string per row and a map of strings cost
//! about 100).
//!
//! The table may be split in partitions by bits of the hash that neither
//! picks a bucket nor tags one: a snapshot's ids are hashed in one pass,
//! grouped by partition, and each partition (small enough to stay in the
//! processor's cache) is filled on its own, in parallel; one large table
//! filled in row order would miss the cache at almost every insert. A
//! lookup hashes once and probes one partition, as with one table; the
//! hasher stays keyed at random.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use rayon::prelude::*;

/// Ids per partition a snapshot's table is split for: seven tenths of the
/// 8192 buckets such a partition gets (a table holds at most seven eighths
/// of its buckets), so that no partition outgrows them.
const PART_IDS: usize = 8192 * 7 / 10;
/// The most partitions.
const MAX_PARTS: usize = 4096;

/// Ids laid out as an [`IdTable`] keeps them: their bytes, where each ends,
/// and the position of each by its hash under `hasher`.
pub(crate) struct IdParts {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
    pub table: HashTable<u32>,
    pub hasher: DefaultHashBuilder,
}

/// The ids of a store's rows and the row of each id.
pub(crate) struct IdTable {
    bytes: Vec<u8>,
    /// Where each row's id ends in `bytes`.
    ends: Vec<usize>,
    /// The rows whose id is known, by the hash of the id: in the partition
    /// [`part`] picks (at least one).
    parts: Vec<HashTable<u32>>,
    hasher: DefaultHashBuilder,
}

impl Default for IdTable {
    fn default() -> IdTable {
        IdTable {
            bytes: Vec::new(),
            ends: Vec::new(),
            parts: vec![HashTable::new()],
            hasher: DefaultHashBuilder::default(),
        }
    }
}

/// The partition of a hash among `parts` (at most 2^24): from bits 32 to
/// 55, which a table of fewer than 2^32 buckets does not use to pick a
/// bucket, nor to tag one (the top seven bits).
fn part(h: u64, parts: usize) -> usize {
    ((((h >> 32) & 0xFF_FFFF) * parts as u64) >> 24) as usize
}

impl IdTable {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    fn bytes_of(&self, row: usize) -> &[u8] {
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        &self.bytes[start..self.ends[row]]
    }

    /// The id of a row (zero bytes once forgotten: the store answers ""
    /// for an erased row).
    pub fn get(&self, row: u32) -> &str {
        std::str::from_utf8(self.bytes_of(row as usize)).unwrap_or("")
    }

    /// The id bytes of a row (zeros once forgotten).
    pub fn bytes_at(&self, row: usize) -> &[u8] {
        self.bytes_of(row)
    }

    /// The ids of a snapshot: row `r`'s id is the next `lens[r]` bytes of
    /// `blob`; rows in `erased` hold the empty id and are not looked up. A
    /// live id held twice, an id that is not UTF-8, or an erased row with
    /// an id, is refused.
    pub fn from_parts(
        lens: &[u32],
        blob: Vec<u8>,
        erased: &crate::store::Bits,
    ) -> Result<IdTable, String> {
        let mut ends = Vec::with_capacity(lens.len());
        let mut at = 0usize;
        for &l in lens {
            at += l as usize;
            ends.push(at);
        }
        if at != blob.len() {
            return Err("the id lengths do not add up".into());
        }
        // Every id is UTF-8 when the whole is and each ends on a character
        // boundary.
        let text = std::str::from_utf8(&blob).map_err(|_| "an id is not UTF-8".to_string())?;
        if let Some(r) = ends.iter().position(|&e| !text.is_char_boundary(e)) {
            return Err(format!("row {r}: the id is not UTF-8"));
        }
        let live = lens.len() - erased.count_ones();
        let nparts = live.div_ceil(PART_IDS).clamp(1, MAX_PARTS);
        let mut t = IdTable {
            bytes: blob,
            ends,
            parts: Vec::new(),
            hasher: DefaultHashBuilder::default(),
        };
        // Each live row's hash, grouped by partition (a counting sort).
        let mut hashes = Vec::with_capacity(live);
        let mut counts = vec![0usize; nparts + 1];
        for r in 0..lens.len() {
            let id = t.bytes_of(r);
            if erased[r] {
                if !id.is_empty() {
                    return Err(format!("erased row {r} has an id"));
                }
                continue;
            }
            let h = t.hasher.hash_one(id);
            counts[part(h, nparts) + 1] += 1;
            hashes.push((h, r as u32));
        }
        for p in 1..=nparts {
            counts[p] += counts[p - 1];
        }
        let mut grouped = vec![(0u64, 0u32); live];
        let mut next = counts.clone();
        for &(h, r) in &hashes {
            let p = part(h, nparts);
            grouped[next[p]] = (h, r);
            next[p] += 1;
        }
        drop(hashes);
        let this = &t;
        let parts: Vec<Result<HashTable<u32>, String>> = (0..nparts)
            .into_par_iter()
            .map(|p| this.fill(&grouped[counts[p]..counts[p + 1]]))
            .collect();
        t.parts = parts.into_iter().collect::<Result<_, _>>()?;
        Ok(t)
    }

    /// One partition's table from its rows, each with its id's hash; an
    /// id held twice is refused.
    fn fill(&self, rows: &[(u64, u32)]) -> Result<HashTable<u32>, String> {
        let hash = |r: &u32| self.hasher.hash_one(self.bytes_of(*r as usize));
        let mut table = HashTable::with_capacity(rows.len());
        for &(h, r) in rows {
            // The row's own id is looked at only when a tag matches: most
            // inserts touch the table alone.
            if table
                .find(h, |&o| {
                    self.bytes_of(o as usize) == self.bytes_of(r as usize)
                })
                .is_some()
            {
                return Err(format!("row {r}: an id held twice"));
            }
            table.insert_unique(h, r, hash);
        }
        Ok(table)
    }

    /// The row of an id.
    pub fn row(&self, id: &str) -> Option<u32> {
        let id = id.as_bytes();
        let h = self.hasher.hash_one(id);
        self.parts[part(h, self.parts.len())]
            .find(h, |&r| self.bytes_of(r as usize) == id)
            .copied()
    }

    /// Appends ids (the caller has checked they are new and distinct):
    /// `bytes` holds them one after the other, `ends` where each ends.
    pub fn extend(&mut self, bytes: &[u8], ends: impl ExactSizeIterator<Item = usize>) {
        let (first, shift) = (self.len(), self.bytes.len());
        self.bytes.reserve_exact(bytes.len());
        self.bytes.extend_from_slice(bytes);
        self.ends.reserve_exact(ends.len());
        self.ends.extend(ends.map(|e| shift + e));
        let mut parts = std::mem::take(&mut self.parts);
        let hash = |r: &u32| self.hasher.hash_one(self.bytes_of(*r as usize));
        let n = parts.len();
        if n == 1 {
            parts[0].reserve(self.len() - first, hash);
        }
        for r in first as u32..self.len() as u32 {
            let h = hash(&r);
            parts[part(h, n)].insert_unique(h, r, hash);
        }
        self.parts = parts;
    }

    /// Takes over ids already laid out and hashed, when there are none yet:
    /// `table` holds each id's position by its hash under `hasher`. Returns
    /// them if there are ids already.
    pub fn adopt(&mut self, ids: IdParts) -> Result<(), IdParts> {
        if self.len() > 0 || ids.table.len() != ids.ends.len() {
            return Err(ids);
        }
        self.parts = vec![ids.table];
        self.bytes = ids.bytes;
        self.bytes.shrink_to_fit();
        self.ends = ids.ends;
        self.ends.shrink_to_fit();
        self.hasher = ids.hasher;
        Ok(())
    }

    /// Appends one id (checked new by the caller); returns its row.
    pub fn push(&mut self, id: &str) -> u32 {
        let row = self.len() as u32;
        self.extend(id.as_bytes(), std::iter::once(id.len()));
        row
    }

    /// Forgets a row's id: it no longer finds the row, and its bytes are
    /// overwritten with zeros.
    pub fn forget(&mut self, row: u32) {
        let id = self.bytes_of(row as usize);
        let h = self.hasher.hash_one(id);
        let n = self.parts.len();
        if let Ok(entry) = self.parts[part(h, n)].find_entry(h, |&r| r == row) {
            entry.remove();
        }
        let start = if row == 0 {
            0
        } else {
            self.ends[row as usize - 1]
        };
        let end = self.ends[row as usize];
        zeroize::Zeroize::zeroize(&mut self.bytes[start..end]);
    }

    /// Bytes held: the arena, the offsets and the table (a row number and a
    /// control byte per bucket).
    pub fn bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 8
            + self.parts.iter().map(|t| t.capacity() * 5).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Bits;

    /// A snapshot's ids: `n` rows, every seventh erased.
    fn snapshot_ids(n: usize) -> (Vec<u32>, Vec<u8>, Bits) {
        let mut erased = Bits::repeat(false, n);
        let (mut lens, mut blob) = (Vec::new(), Vec::new());
        for r in 0..n {
            if r % 7 == 3 {
                erased.set(r, true);
                lens.push(0);
            } else {
                let id = format!("c-{r}-é");
                lens.push(id.len() as u32);
                blob.extend_from_slice(id.as_bytes());
            }
        }
        (lens, blob, erased)
    }

    #[test]
    fn a_partitioned_table_finds_every_id_and_keeps_working() {
        let n = 40_000;
        let (lens, blob, erased) = snapshot_ids(n);
        let mut t = IdTable::from_parts(&lens, blob.clone(), &erased).unwrap();
        assert!(t.parts.len() >= 4, "{} partitions", t.parts.len());
        // The partitions are sized to their rows: no table more than about
        // half empty.
        let live = n - n.div_ceil(7);
        let held: usize = t.parts.iter().map(|p| p.capacity()).sum();
        assert!(held < live * 3 / 2, "{held} slots for {live} ids");
        for r in 0..n {
            let want = (r % 7 != 3).then_some(r as u32);
            assert_eq!(t.row(&format!("c-{r}-é")), want, "row {r}");
        }
        assert_eq!(t.row(""), None);
        assert_eq!(t.row("c-40000-é"), None);
        // Appends and erasures go to the right partitions.
        t.extend(b"new-anew-b", [5, 10].into_iter());
        assert_eq!(t.row("new-a"), Some(n as u32));
        assert_eq!(t.row("new-b"), Some(n as u32 + 1));
        t.forget(12);
        assert_eq!(t.row("c-12-é"), None);
        assert_eq!(t.get(12), "\0\0\0\0\0\0\0", "its bytes are zeros");
        assert_eq!(t.row("c-11-é"), Some(11));
    }

    #[test]
    fn a_bad_snapshot_id_list_is_refused() {
        let (mut lens, blob, erased) = snapshot_ids(30_000);
        // The same id twice (rows 0 and 1 have the same length).
        let mut twice = blob.clone();
        let (a, b) = (lens[0] as usize, lens[1] as usize);
        assert_eq!(a, b);
        let first = twice[..a].to_vec();
        twice[a..a + b].copy_from_slice(&first);
        let err = IdTable::from_parts(&lens, twice, &erased).err().unwrap();
        assert!(err.contains("held twice"), "{err}");
        // An id cut inside a character.
        let mut cut = lens.clone();
        cut[0] -= 1;
        cut[1] += 1;
        let err = IdTable::from_parts(&cut, blob.clone(), &erased)
            .err()
            .unwrap();
        assert!(err.contains("UTF-8"), "{err}");
        // An erased row with an id.
        let mut live = erased.clone();
        live.set(0, true);
        let err = IdTable::from_parts(&lens, blob.clone(), &live)
            .err()
            .unwrap();
        assert!(err.contains("has an id"), "{err}");
        lens.pop();
        assert!(IdTable::from_parts(&lens, blob.clone(), &erased).is_err());
    }
}
