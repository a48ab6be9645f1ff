//! Subjects: external ids mapped to dense rows, attribute columns with their
//! indexes, consent histories, and tombstones.
//!
//! Indexes, all bitsets with one bit per row:
//! - every column: a presence bitmap (a value is on record);
//! - categorical: one bitmap per declared value (equality encoding), with
//!   its number of set bits kept current for the planner;
//! - integer and timestamp: a bit-sliced index ([`Bsi`], O'Neil and Quass)
//!   over `value - base`, so a range costs one pass over log2(range) slices;
//! - boolean: the bitmap of `true` values;
//! - columns with a staleness limit under some purpose: a bit-sliced index
//!   over the verification time, so a fresh-mask for any limit and any
//!   evaluation time is one range over it.

use std::collections::HashMap;
use std::sync::Arc;

use bitvec::prelude::*;
use serde::{Deserialize, Serialize};
use time::Date;

use crate::Timestamp;
use crate::consent::{EventRecord, Interner, Proof, SubjectFacts};
use crate::policy::{AttrId, AttrType, JurisdictionId, Policy};

/// A bitset with one bit per row.
pub type Bits = BitVec<u64, Lsb0>;

/// Marks a missing value in the verified-at column.
pub(crate) const MISSING: i64 = i64::MIN;

/// An attribute value as a caller gives it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// Boolean.
    Bool(bool),
    /// Integer.
    Int(i64),
    /// Categorical value, or an RFC 3339 time for a timestamp attribute.
    Str(String),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.into())
    }
}
impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl From<Timestamp> for Value {
    fn from(t: Timestamp) -> Value {
        Value::Str(t.to_string())
    }
}

/// The data of one attribute column.
#[derive(Clone, Debug)]
pub(crate) enum ColumnData {
    /// Value index per row (`u32::MAX` when missing), a bitmap per value and
    /// the number of rows holding each value.
    Cat {
        codes: Vec<u32>,
        bitmaps: Vec<Bits>,
        counts: Vec<u64>,
    },
    /// Integers or Unix seconds per row, and their bit-sliced index.
    Int { vals: Vec<i64>, bsi: Bsi },
    /// Booleans per row.
    Bool { vals: Bits },
}

/// One attribute column.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub data: ColumnData,
    /// When each row's value was last verified (Unix seconds), or [`MISSING`].
    pub verified: Vec<i64>,
    /// Rows with a value.
    pub present: Bits,
    /// Number of rows with a value.
    pub present_count: u64,
    /// Bit-sliced index over `verified`, kept when a staleness limit applies
    /// to this attribute for some purpose.
    pub verified_bsi: Option<Bsi>,
}

/// A bit-sliced index (O'Neil and Quass) over signed 64-bit values.
///
/// A row's value `v` is stored as the unsigned offset `v - base`; slice `i`
/// holds bit `i` of every row's offset. Rows without a value hold offset 0
/// (callers AND the column's presence bitmap in). The slices cover
/// `base ..= base + 2^width - 1`: for an integer with declared bounds that is
/// fixed when the store is made; otherwise (timestamps, unbounded integers)
/// it follows the observed values, growing on insert: a slice is added for a
/// larger value, and a smaller value moves the base down (with slack, so
/// that repeated moves stay rare) and re-encodes every row.
#[derive(Clone, Debug, Default)]
pub struct Bsi {
    base: i64,
    /// Slices, least significant first.
    slices: Vec<Bits>,
    /// Has any value been encoded yet (for observed ranges)?
    seeded: bool,
}

impl Bsi {
    /// An index with a fixed range `lo..=hi`, or an observed one if `None`.
    fn new(bounds: Option<(i64, i64)>) -> Bsi {
        match bounds {
            Some((lo, hi)) => {
                let span = (i128::from(hi) - i128::from(lo)).max(0) as u128;
                Bsi {
                    base: lo,
                    slices: Vec::new(),
                    seeded: true,
                }
                .with_width(bits_for(span))
            }
            None => Bsi::default(),
        }
    }

    fn with_width(mut self, width: u32) -> Bsi {
        self.slices = vec![Bits::new(); width as usize];
        self
    }

    /// The smallest value the slices can hold.
    pub fn base(&self) -> i64 {
        self.base
    }

    /// Number of slices.
    pub fn width(&self) -> u32 {
        self.slices.len() as u32
    }

    /// The largest offset the slices can hold.
    pub fn max_offset(&self) -> u64 {
        match self.width() {
            64 => u64::MAX,
            w => (1u64 << w) - 1,
        }
    }

    /// The slices' raw words, least significant slice first.
    pub fn slices(&self) -> impl Iterator<Item = &[u64]> + '_ {
        self.slices.iter().map(|s| s.as_raw_slice())
    }

    /// The slice for bit `i` of the offset.
    pub fn slice(&self, i: u32) -> &[u64] {
        self.slices[i as usize].as_raw_slice()
    }

    /// Bytes held by the slices.
    pub fn bytes(&self) -> usize {
        self.slices.iter().map(|s| s.as_raw_slice().len() * 8).sum()
    }

    fn fits(&self, v: i64) -> bool {
        self.seeded && v >= self.base && (v.wrapping_sub(self.base) as u64) <= self.max_offset()
    }

    fn push_row(&mut self) {
        for s in &mut self.slices {
            s.push(false);
        }
    }

    fn write(&mut self, row: usize, offset: u64) {
        for (i, s) in self.slices.iter_mut().enumerate() {
            s.set(row, (offset >> i) & 1 == 1);
        }
    }

    /// Stores `v` for `row`, growing the covered range first if needed.
    /// `others` yields every other row's present value, for a re-encoding.
    fn set(&mut self, row: usize, v: i64, len: usize, others: impl Fn() -> Vec<(usize, i64)>) {
        if !self.fits(v) {
            self.grow(v, len, others);
        }
        self.write(row, v.wrapping_sub(self.base) as u64);
    }

    fn clear(&mut self, row: usize) {
        self.write(row, 0);
    }

    fn grow(&mut self, v: i64, len: usize, others: impl Fn() -> Vec<(usize, i64)>) {
        if !self.seeded {
            self.seeded = true;
            self.base = v;
            return;
        }
        let top = i128::from(self.base) + i128::from(self.max_offset());
        let mut hi = top.max(i128::from(v));
        let mut lo = i128::from(self.base);
        if i128::from(v) < lo {
            // Move the base down past `v` by as much again as the current
            // span, so that values arriving in decreasing order cost few
            // re-encodings.
            let span = hi - lo + 1;
            lo = (i128::from(v) - span).max(i128::from(i64::MIN));
            hi = hi.max(lo);
            let width = bits_for((hi - lo) as u128);
            self.base = lo as i64;
            self.slices = vec![Bits::repeat(false, len); width as usize];
            for (r, x) in others() {
                self.write(r, x.wrapping_sub(self.base) as u64);
            }
        } else {
            let width = bits_for((hi - lo) as u128);
            while self.width() < width {
                self.slices.push(Bits::repeat(false, len));
            }
        }
    }
}

/// Number of bits needed to hold `span` (0 for 0).
fn bits_for(span: u128) -> u32 {
    (128 - span.leading_zeros()).min(64)
}

/// The subject table.
#[derive(Clone, Debug, Default)]
pub struct Store {
    pub(crate) ids: Vec<Arc<str>>,
    pub(crate) index: HashMap<Arc<str>, u32>,
    pub(crate) juris: Vec<JurisdictionId>,
    pub(crate) birth: Vec<Option<Date>>,
    pub(crate) erased: Bits,
    pub(crate) events: Vec<Vec<EventRecord>>,
    pub(crate) proofs: Vec<Proof>,
    pub(crate) strings: Interner,
    pub(crate) next_seq: u64,
    pub(crate) columns: Vec<Column>,
}

/// A value that does not fit its attribute.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("attribute `{attr}`: {problem}")]
pub struct ValueError {
    /// Attribute name.
    pub attr: String,
    /// What is wrong.
    pub problem: String,
}

impl Store {
    /// An empty store with columns for the policy's attributes.
    pub fn new(policy: &Policy) -> Store {
        let columns = (0..policy.attribute_count() as u32)
            .map(|i| {
                let spec = policy.attribute(AttrId(i));
                let data = match spec.ty {
                    AttrType::Categorical => ColumnData::Cat {
                        codes: Vec::new(),
                        bitmaps: vec![Bits::new(); spec.values.len()],
                        counts: vec![0; spec.values.len()],
                    },
                    AttrType::Integer => ColumnData::Int {
                        vals: Vec::new(),
                        bsi: Bsi::new(spec.min.zip(spec.max)),
                    },
                    AttrType::Timestamp => ColumnData::Int {
                        vals: Vec::new(),
                        bsi: Bsi::new(None),
                    },
                    AttrType::Boolean => ColumnData::Bool { vals: Bits::new() },
                };
                let stale = policy
                    .purpose_ids()
                    .any(|p| policy.max_staleness(AttrId(i), p).is_some());
                Column {
                    data,
                    verified: Vec::new(),
                    present: Bits::new(),
                    present_count: 0,
                    verified_bsi: stale.then(|| Bsi::new(None)),
                }
            })
            .collect();
        Store {
            columns,
            ..Store::default()
        }
    }

    /// Number of rows (erased ones included).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No rows at all?
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The row of an external id.
    pub fn row(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The external id of a row.
    pub fn id(&self, row: u32) -> &str {
        &self.ids[row as usize]
    }

    /// Appends a subject; the caller has checked the id is new.
    pub(crate) fn push(&mut self, id: &str, juris: JurisdictionId, birth: Option<Date>) -> u32 {
        let row = self.ids.len() as u32;
        let id: Arc<str> = Arc::from(id);
        self.ids.push(id.clone());
        self.index.insert(id, row);
        self.juris.push(juris);
        self.birth.push(birth);
        self.erased.push(false);
        self.events.push(Vec::new());
        for c in &mut self.columns {
            c.verified.push(MISSING);
            c.present.push(false);
            if let Some(b) = &mut c.verified_bsi {
                b.push_row();
            }
            match &mut c.data {
                ColumnData::Cat { codes, bitmaps, .. } => {
                    codes.push(u32::MAX);
                    for b in bitmaps {
                        b.push(false);
                    }
                }
                ColumnData::Int { vals, bsi } => {
                    vals.push(0);
                    bsi.push_row();
                }
                ColumnData::Bool { vals } => vals.push(false),
            }
        }
        row
    }

    /// Converts a value for an attribute, checking its type and bounds.
    pub(crate) fn encode(policy: &Policy, attr: AttrId, v: &Value) -> Result<i64, ValueError> {
        let spec = policy.attribute(attr);
        let err = |problem: String| ValueError {
            attr: spec.name.clone(),
            problem,
        };
        match (spec.ty, v) {
            (AttrType::Categorical, Value::Str(s)) => {
                policy.value_index(attr, s).map(i64::from).ok_or_else(|| {
                    err(format!(
                        "{s:?} is not a declared value ({})",
                        spec.values.join(", ")
                    ))
                })
            }
            (AttrType::Integer, Value::Int(i)) => {
                let (lo, hi) = (spec.min.unwrap_or(i64::MIN), spec.max.unwrap_or(i64::MAX));
                if (lo..=hi).contains(i) {
                    Ok(*i)
                } else {
                    Err(err(format!(
                        "{i} is outside the declared bounds {lo}..={hi}"
                    )))
                }
            }
            (AttrType::Timestamp, Value::Str(s)) => Timestamp::parse(s)
                .map(|t| t.unix())
                .map_err(|e| err(e.to_string())),
            (AttrType::Boolean, Value::Bool(b)) => Ok(i64::from(*b)),
            (ty, v) => Err(err(format!("expected {} value, got {v:?}", ty.as_str()))),
        }
    }

    /// Sets an encoded value (from [`Store::encode`]) with its verification time.
    pub(crate) fn set(&mut self, row: u32, attr: AttrId, code: i64, verified: Timestamp) {
        let r = row as usize;
        let len = self.ids.len();
        let c = &mut self.columns[attr.0 as usize];
        let ver = verified.unix().max(MISSING + 1);
        c.verified[r] = ver;
        if !c.present[r] {
            c.present.set(r, true);
            c.present_count += 1;
        }
        if let Some(b) = &mut c.verified_bsi {
            let verified = &c.verified;
            b.set(r, ver, len, || present_values(verified, verified));
        }
        match &mut c.data {
            ColumnData::Cat {
                codes,
                bitmaps,
                counts,
            } => {
                if let Some(old) = codes.get(r).copied().filter(|&o| o != u32::MAX) {
                    bitmaps[old as usize].set(r, false);
                    counts[old as usize] -= 1;
                }
                codes[r] = code as u32;
                bitmaps[code as usize].set(r, true);
                counts[code as usize] += 1;
            }
            ColumnData::Int { vals, bsi } => {
                vals[r] = code;
                let verified = &c.verified;
                bsi.set(r, code, len, || present_values(verified, vals));
            }
            ColumnData::Bool { vals } => vals.set(r, code != 0),
        }
    }

    /// Removes a value.
    pub(crate) fn clear(&mut self, row: u32, attr: AttrId) {
        let r = row as usize;
        let c = &mut self.columns[attr.0 as usize];
        c.verified[r] = MISSING;
        if c.present[r] {
            c.present.set(r, false);
            c.present_count -= 1;
        }
        if let Some(b) = &mut c.verified_bsi {
            b.clear(r);
        }
        match &mut c.data {
            ColumnData::Cat {
                codes,
                bitmaps,
                counts,
            } => {
                if codes[r] != u32::MAX {
                    bitmaps[codes[r] as usize].set(r, false);
                    counts[codes[r] as usize] -= 1;
                }
                codes[r] = u32::MAX;
            }
            ColumnData::Int { vals, bsi } => {
                vals[r] = 0;
                bsi.clear(r);
            }
            ColumnData::Bool { vals } => vals.set(r, false),
        }
    }

    /// The encoded value of a row and when it was verified, if present.
    pub(crate) fn get(&self, row: u32, attr: AttrId) -> Option<(i64, i64)> {
        let r = row as usize;
        let c = &self.columns[attr.0 as usize];
        let v = c.verified[r];
        if v == MISSING {
            return None;
        }
        let code = match &c.data {
            ColumnData::Cat { codes, .. } => i64::from(codes[r]),
            ColumnData::Int { vals, .. } => vals[r],
            ColumnData::Bool { vals } => i64::from(vals[r]),
        };
        Some((code, v))
    }

    /// Decodes a stored value back to its public form.
    pub(crate) fn decode(policy: &Policy, attr: AttrId, code: i64) -> Value {
        let spec = policy.attribute(attr);
        match spec.ty {
            AttrType::Categorical => Value::Str(spec.values[code as usize].clone()),
            AttrType::Integer => Value::Int(code),
            AttrType::Timestamp => Value::Str(Timestamp::from_unix(code).to_string()),
            AttrType::Boolean => Value::Bool(code != 0),
        }
    }

    /// What the eligibility function needs of a row.
    pub fn facts(&self, row: u32) -> SubjectFacts<'_> {
        let r = row as usize;
        SubjectFacts {
            jurisdiction: self.juris[r],
            birth_date: self.birth[r],
            erased: self.erased[r],
            events: &self.events[r],
            strings: &self.strings,
        }
    }

    /// Tombstones a row: every value, bitmap bit and event is dropped.
    pub(crate) fn erase(&mut self, row: u32) {
        for a in 0..self.columns.len() {
            self.clear(row, AttrId(a as u32));
        }
        let r = row as usize;
        self.events[r] = Vec::new();
        self.birth[r] = None;
        self.erased.set(r, true);
    }
}

/// The `(row, value)` pairs of the rows with a value (for re-encoding a
/// bit-sliced index).
fn present_values(verified: &[i64], vals: &[i64]) -> Vec<(usize, i64)> {
    verified
        .iter()
        .zip(vals)
        .enumerate()
        .filter(|(_, (v, _))| **v != MISSING)
        .map(|(r, (_, x))| (r, *x))
        .collect()
}

/// Bytes held by the indexes of a store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexBytes {
    /// Categorical value bitmaps.
    pub categorical: usize,
    /// Bit-sliced indexes over integer and timestamp values.
    pub bit_sliced: usize,
    /// Boolean bitmaps.
    pub boolean: usize,
    /// Presence bitmaps.
    pub presence: usize,
    /// Bit-sliced indexes over verification times (staleness).
    pub freshness: usize,
    /// The tombstone bitmap.
    pub tombstones: usize,
}

impl IndexBytes {
    /// The sum.
    pub fn total(&self) -> usize {
        self.categorical
            + self.bit_sliced
            + self.boolean
            + self.presence
            + self.freshness
            + self.tombstones
    }
}

impl Store {
    /// Bytes held by the bitset indexes (not the row-wise columns, the ids
    /// or the histories, which the row-at-a-time paths use).
    pub fn index_bytes(&self) -> IndexBytes {
        let b = |x: &Bits| x.as_raw_slice().len() * 8;
        let mut out = IndexBytes {
            tombstones: b(&self.erased),
            ..IndexBytes::default()
        };
        for c in &self.columns {
            out.presence += b(&c.present);
            out.freshness += c.verified_bsi.as_ref().map_or(0, Bsi::bytes);
            match &c.data {
                ColumnData::Cat { bitmaps, .. } => {
                    out.categorical += bitmaps.iter().map(b).sum::<usize>()
                }
                ColumnData::Int { bsi, .. } => out.bit_sliced += bsi.bytes(),
                ColumnData::Bool { vals } => out.boolean += b(vals),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AttributeSpec, CategorySpec, PolicyBuilder};

    fn offset(b: &Bsi, row: usize) -> u64 {
        (0..b.width()).fold(0, |acc, i| {
            let bit = (b.slice(i)[row / 64] >> (row % 64)) & 1;
            acc | (bit << i)
        })
    }

    #[test]
    fn bit_sliced_indexes_follow_values_in_any_order() {
        let policy = PolicyBuilder::new("T")
            .category(CategorySpec::new("c"))
            .attribute(AttributeSpec::timestamp("t", "c").max_staleness_days(3))
            .attribute(AttributeSpec::integer("i", "c", -5, 1000))
            .purpose(
                crate::policy::PurposeSpec::new("p", crate::policy::LawfulBasis::Contract)
                    .allow("c"),
            )
            .build()
            .unwrap();
        let mut s = Store::new(&policy);
        let (t, i) = (policy.attr_id("t").unwrap(), policy.attr_id("i").unwrap());
        let (tc, ic) = (t.0 as usize, i.0 as usize);
        // Decreasing, increasing, negative and extreme values: the observed
        // range grows both ways and every row stays correctly encoded.
        let vals = [
            0i64,
            -1,
            1_000_000,
            -1_000_000_000,
            i64::MAX,
            i64::MIN,
            7,
            -7,
            1_772_000_000,
        ];
        for (r, v) in vals.iter().enumerate() {
            let row = s.push(&format!("s{r}"), crate::policy::JurisdictionId(0), None);
            s.set(row, t, *v, Timestamp::from_unix(*v));
            s.set(row, i, (r as i64 * 97) % 1006 - 5, Timestamp::from_unix(0));
            for (q, w) in vals[..=r].iter().enumerate() {
                let ColumnData::Int { bsi, .. } = &s.columns[tc].data else {
                    unreachable!()
                };
                assert_eq!(offset(bsi, q), w.wrapping_sub(bsi.base()) as u64, "row {q}");
                let vb = s.columns[tc].verified_bsi.as_ref().unwrap();
                let ver = s.columns[tc].verified[q];
                assert_eq!(offset(vb, q), ver.wrapping_sub(vb.base()) as u64);
            }
        }
        let ColumnData::Int { bsi, .. } = &s.columns[ic].data else {
            unreachable!()
        };
        // Declared bounds -5..=1000: 1005 needs 10 slices, base -5.
        assert_eq!((bsi.base(), bsi.width()), (-5, 10));
        for r in 0..vals.len() {
            assert_eq!(offset(bsi, r) as i64 - 5, (r as i64 * 97) % 1006 - 5);
        }
        // Clearing a value zeroes its offset.
        s.clear(2, t);
        let ColumnData::Int { bsi, .. } = &s.columns[tc].data else {
            unreachable!()
        };
        assert_eq!(offset(bsi, 2), 0);
        assert_eq!(s.columns[tc].present_count, vals.len() as u64 - 1);
    }
}
