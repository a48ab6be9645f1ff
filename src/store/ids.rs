//! External ids: one byte arena, an end offset per row, and a hash table of
//! row numbers (the bytes are kept once; a row costs its id's bytes and
//! about 15 bytes more, where a string per row and a map of strings cost
//! about 100).

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Ids laid out as an [`IdTable`] keeps them: their bytes, where each ends,
/// and the position of each by its hash under `hasher`.
pub(crate) struct IdParts {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
    pub table: HashTable<u32>,
    pub hasher: DefaultHashBuilder,
}

/// The ids of a store's rows and the row of each id.
#[derive(Default)]
pub(crate) struct IdTable {
    bytes: Vec<u8>,
    /// Where each row's id ends in `bytes`.
    ends: Vec<usize>,
    /// The rows whose id is known, by the hash of the id.
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
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
    /// live id held twice, or an erased row with an id, is refused.
    pub fn from_parts(
        lens: &[u32],
        blob: &[u8],
        erased: &crate::store::Bits,
    ) -> Result<IdTable, String> {
        let mut t = IdTable {
            bytes: blob.to_vec(),
            ends: Vec::with_capacity(lens.len()),
            ..IdTable::default()
        };
        let mut at = 0usize;
        for &l in lens {
            at += l as usize;
            t.ends.push(at);
        }
        if at != blob.len() {
            return Err("the id lengths do not add up".into());
        }
        let live = lens.len() - erased.count_ones();
        let mut table = std::mem::take(&mut t.table);
        let hash = |r: &u32| t.hasher.hash_one(t.bytes_of(*r as usize));
        table.reserve(live, hash);
        for r in 0..lens.len() {
            let id = t.bytes_of(r);
            if erased[r] {
                if !id.is_empty() {
                    return Err(format!("erased row {r} has an id"));
                }
                continue;
            }
            if std::str::from_utf8(id).is_err() {
                return Err(format!("row {r}: the id is not UTF-8"));
            }
            let h = t.hasher.hash_one(id);
            if table.find(h, |&o| t.bytes_of(o as usize) == id).is_some() {
                return Err(format!("row {r}: an id held twice"));
            }
            table.insert_unique(h, r as u32, hash);
        }
        t.table = table;
        Ok(t)
    }

    /// The row of an id.
    pub fn row(&self, id: &str) -> Option<u32> {
        let id = id.as_bytes();
        let h = self.hasher.hash_one(id);
        self.table
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
        let mut table = std::mem::take(&mut self.table);
        let hash = |r: &u32| self.hasher.hash_one(self.bytes_of(*r as usize));
        table.reserve(self.len() - first, hash);
        for r in first as u32..self.len() as u32 {
            table.insert_unique(hash(&r), r, hash);
        }
        self.table = table;
    }

    /// Takes over ids already laid out and hashed, when there are none yet:
    /// `table` holds each id's position by its hash under `hasher`. Returns
    /// them if there are ids already.
    pub fn adopt(&mut self, ids: IdParts) -> Result<(), IdParts> {
        if self.len() > 0 || ids.table.len() != ids.ends.len() {
            return Err(ids);
        }
        self.bytes = ids.bytes;
        self.bytes.shrink_to_fit();
        self.ends = ids.ends;
        self.ends.shrink_to_fit();
        self.table = ids.table;
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
        if let Ok(entry) = self.table.find_entry(h, |&r| r == row) {
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
        self.bytes.capacity() + self.ends.capacity() * 8 + self.table.capacity() * 5
    }
}
