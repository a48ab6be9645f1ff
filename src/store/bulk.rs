//! Bulk appends: many new subjects with their values, and many events, laid
//! out column-wise and written in one go (one transaction for a durable
//! store), with the same result as the row-at-a-time write API.

use hashbrown::{DefaultHashBuilder, HashTable};
use rayon::prelude::*;
use time::Date;

use super::{
    Bits, Column, ColumnData, MISSING, NewSubject, Store, StoreError, ValueChange, ValueWrite,
};
use crate::Timestamp;
use crate::consent::{EventRecord, Interner, Proof};
use crate::policy::{AttrId, JurisdictionId};

/// New subjects, column by column. Every vector has one entry per subject;
/// ids are new and distinct (checked by the caller), codes come from
/// [`Store::encode`].
#[derive(Debug, Default)]
pub(crate) struct BulkSubjects {
    /// The ids' bytes, one after the other.
    pub id_bytes: Vec<u8>,
    /// Where each id ends in `id_bytes`.
    pub id_ends: Vec<usize>,
    /// Jurisdictions.
    pub juris: Vec<JurisdictionId>,
    /// Birth dates.
    pub birth: Vec<Option<Date>>,
    /// One per policy attribute, in attribute order.
    pub columns: Vec<BulkColumn>,
    /// The position of each id by its hash under the hasher, if already
    /// built (taken over by a store that has no rows yet).
    pub index: Option<(HashTable<u32>, DefaultHashBuilder)>,
}

/// The values of one attribute for the new subjects.
#[derive(Clone, Debug, Default)]
pub(crate) struct BulkColumn {
    /// Encoded values (anything where absent).
    pub codes: Vec<i64>,
    /// When each value was verified (Unix seconds), or [`MISSING`] where
    /// the subject has no value.
    pub verified: Vec<i64>,
}

impl BulkSubjects {
    /// No subjects, with a column for each of `attributes` attributes.
    pub(crate) fn new(attributes: usize) -> BulkSubjects {
        BulkSubjects {
            columns: vec![BulkColumn::default(); attributes],
            ..BulkSubjects::default()
        }
    }

    /// Number of subjects.
    pub(crate) fn len(&self) -> usize {
        self.id_ends.len()
    }

    /// The id of subject `i`.
    pub(crate) fn id(&self, i: usize) -> &str {
        // The bytes were appended from `&str`s, whole.
        std::str::from_utf8(self.id_bytes(i)).unwrap_or("")
    }

    /// The bytes of the id of subject `i`.
    pub(crate) fn id_bytes(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.id_ends[i - 1] };
        &self.id_bytes[start..self.id_ends[i]]
    }

    /// Appends a subject without values (see [`BulkSubjects::set`]).
    pub(crate) fn push(&mut self, id: &str, juris: JurisdictionId, birth: Option<Date>) {
        self.id_bytes.extend_from_slice(id.as_bytes());
        self.id_ends.push(self.id_bytes.len());
        self.juris.push(juris);
        self.birth.push(birth);
        for c in &mut self.columns {
            c.codes.push(0);
            c.verified.push(MISSING);
        }
    }

    /// Sets the value of the last subject for an attribute.
    pub(crate) fn set(&mut self, attr: AttrId, code: i64, verified: Timestamp) {
        let c = &mut self.columns[attr.0 as usize];
        if let (Some(slot), Some(ver)) = (c.codes.last_mut(), c.verified.last_mut()) {
            *slot = code;
            *ver = verified.unix().max(MISSING + 1);
        }
    }

    /// Appends `other`'s subjects after these.
    pub(crate) fn append(&mut self, mut other: BulkSubjects) {
        let shift = self.id_bytes.len();
        self.id_bytes.append(&mut other.id_bytes);
        self.id_ends.extend(other.id_ends.iter().map(|e| e + shift));
        self.juris.append(&mut other.juris);
        self.birth.append(&mut other.birth);
        for (c, o) in self.columns.iter_mut().zip(&mut other.columns) {
            c.codes.append(&mut o.codes);
            c.verified.append(&mut o.verified);
        }
    }

    /// Keeps the first `n` subjects.
    pub(crate) fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        self.id_bytes
            .truncate(if n == 0 { 0 } else { self.id_ends[n - 1] });
        self.id_ends.truncate(n);
        self.juris.truncate(n);
        self.birth.truncate(n);
        for c in &mut self.columns {
            c.codes.truncate(n);
            c.verified.truncate(n);
        }
    }
}

/// Checked events (from [`Store::check_event`] with an interner that
/// extends the store's), with their rows, in arrival order.
#[derive(Debug, Default)]
pub(crate) struct BulkEvents {
    /// The row of each event.
    pub rows: Vec<u32>,
    /// The stored records (their `seq` and `proof` are set on write).
    pub recs: Vec<EventRecord>,
    /// The proof details of each event.
    pub proofs: Vec<Proof>,
}

impl BulkEvents {
    /// Number of events.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }
}

impl Store {
    /// Appends `subjects` with their values, then `events` (whose interned
    /// strings are those of `strings`, an interner that extends the
    /// store's), as one write: one transaction for a durable store, and
    /// nothing changed if it fails. The masks are kept current as with
    /// [`Store::write_batch`]: rebuilt once after a bulk write, else
    /// grown and refreshed on the rows touched.
    pub(crate) fn write_bulk(
        &mut self,
        subjects: BulkSubjects,
        events: BulkEvents,
        strings: &Interner,
    ) -> Result<(), StoreError> {
        let start = self.strings.len();
        if strings.len() < start || (0..start as u32).any(|i| strings.get(i) != self.strings.get(i))
        {
            return Err(StoreError::Damaged(
                "the events of a bulk write were checked against another store's strings".into(),
            ));
        }
        for i in start..strings.len() {
            self.strings.intern(strings.get(i as u32));
        }
        if let Some(mut d) = self.durable.take() {
            let out = d.write(|w| self.persist_bulk(w, &subjects, &events));
            self.durable = Some(d);
            out?;
        }
        let bulk = self.is_bulk(subjects.len(), events.len());
        self.apply_bulk_subjects(subjects, bulk);
        self.apply_bulk_events(events, bulk);
        if bulk {
            self.rebuild_masks();
        } else {
            self.ensure_masks();
        }
        Ok(())
    }

    /// Writes a bulk append to the open transaction, through the
    /// row-at-a-time record format.
    fn persist_bulk(
        &self,
        w: &mut super::durable::Writer<'_>,
        subjects: &BulkSubjects,
        events: &BulkEvents,
    ) -> Result<(), StoreError> {
        let base = self.len() as u32;
        let new: Vec<NewSubject<'_>> = (0..subjects.len())
            .map(|i| NewSubject {
                id: subjects.id(i),
                jurisdiction: subjects.juris[i],
                birth_date: subjects.birth[i],
            })
            .collect();
        let mut values = Vec::new();
        for i in 0..subjects.len() {
            for (a, c) in subjects.columns.iter().enumerate() {
                if c.verified[i] != MISSING {
                    values.push(ValueWrite {
                        row: base + i as u32,
                        attr: AttrId(a as u32),
                        change: ValueChange::Set {
                            code: c.codes[i],
                            verified: Timestamp::from_unix(c.verified[i]),
                        },
                    });
                }
            }
        }
        let evs: Vec<(u32, EventRecord, Proof)> = (0..events.len())
            .map(|k| (events.rows[k], events.recs[k], events.proofs[k].clone()))
            .collect();
        self.persist(w, &new, &values, &evs)
    }

    fn apply_bulk_subjects(&mut self, subjects: BulkSubjects, bulk: bool) {
        let (len0, n) = (self.len(), subjects.len());
        if n == 0 {
            return;
        }
        let BulkSubjects {
            id_bytes,
            id_ends,
            juris,
            birth,
            columns,
            index,
        } = subjects;
        let kept = match index {
            Some((table, hasher)) => self.ids.adopt(super::ids::IdParts {
                bytes: id_bytes,
                ends: id_ends,
                table,
                hasher,
            }),
            None => Err(super::ids::IdParts {
                bytes: id_bytes,
                ends: id_ends,
                table: HashTable::new(),
                hasher: DefaultHashBuilder::default(),
            }),
        };
        if let Err(parts) = kept {
            self.ids.extend(&parts.bytes, parts.ends.iter().copied());
        }
        self.juris.extend_from_slice(&juris);
        self.birth.extend_from_slice(&birth);
        self.erased.resize(len0 + n, false);
        self.events.add_rows(n);
        self.columns
            .par_iter_mut()
            .zip(columns)
            .for_each(|(c, b)| extend_column(c, len0, b));
        if !bulk {
            for m in super::read(&self.masks).values() {
                super::write(m).grow(&self.policy, self);
            }
        }
    }

    fn apply_bulk_events(&mut self, events: BulkEvents, bulk: bool) {
        let BulkEvents { rows, recs, proofs } = events;
        if rows.is_empty() {
            return;
        }
        let mut counts = vec![0u32; self.events.len()];
        for r in &rows {
            counts[*r as usize] += 1;
        }
        let mut numbered = Vec::with_capacity(rows.len());
        for ((row, mut rec), proof) in rows.iter().zip(recs).zip(proofs) {
            rec.seq = self.next_seq;
            rec.proof = self.proofs.intern(proof);
            self.next_seq += 1;
            numbered.push((*row, rec));
        }
        self.events.append(numbered);
        if !bulk {
            // Every mask recomputes the rows that gained events.
            let changed: Vec<(u32, _)> = (0..counts.len() as u32)
                .filter(|r| counts[*r as usize] > 0)
                .map(|r| (r, None))
                .collect();
            self.refresh_masks(&changed);
        }
    }
}

/// Appends the rows `len0..` of one column, indexes included.
fn extend_column(c: &mut Column, len0: usize, b: BulkColumn) {
    let BulkColumn { codes, verified } = b;
    let len = len0 + codes.len();
    c.present.resize(len, false);
    set_bits(&mut c.present, len0, verified.iter().map(|v| *v != MISSING));
    c.present_count += verified.iter().filter(|v| **v != MISSING).count() as u64;
    if let Some(bsi) = &mut c.verified_bsi {
        let old = &c.verified;
        bsi.extend(len0, &verified, &verified, || present_of(old, old));
    }
    match &mut c.data {
        ColumnData::Cat {
            codes: cat,
            bitmaps,
            counts,
        } => {
            cat.reserve_exact(codes.len());
            cat.extend(
                codes.iter().zip(&verified).map(
                    |(c, v)| {
                        if *v == MISSING { u32::MAX } else { *c as u32 }
                    },
                ),
            );
            for (k, bm) in bitmaps.iter_mut().enumerate() {
                bm.resize(len, false);
                let new = &cat[len0..];
                set_bits(bm, len0, new.iter().map(|c| *c == k as u32));
                counts[k] += new.iter().filter(|c| **c == k as u32).count() as u64;
            }
        }
        ColumnData::Int { vals, bsi } => {
            let old = &c.verified;
            bsi.extend(len0, &codes, &verified, || present_of(old, vals));
            vals.reserve_exact(codes.len());
            vals.extend(
                codes
                    .iter()
                    .zip(&verified)
                    .map(|(c, v)| if *v == MISSING { 0 } else { *c }),
            );
        }
        ColumnData::Bool { vals } => {
            vals.resize(len, false);
            set_bits(
                vals,
                len0,
                codes
                    .iter()
                    .zip(&verified)
                    .map(|(c, v)| *v != MISSING && *c != 0),
            );
        }
    }
    if c.verified.is_empty() {
        c.verified = verified;
    } else {
        c.verified.reserve_exact(len - len0);
        c.verified.extend_from_slice(&verified);
    }
}

/// Sets bit `from + k` of `bits` for every true `k`-th item (the bits are
/// clear and `bits` long enough).
fn set_bits(bits: &mut Bits, from: usize, items: impl Iterator<Item = bool>) {
    let words = bits.as_raw_mut_slice();
    for (k, on) in items.enumerate() {
        if on {
            let r = from + k;
            words[r / 64] |= 1 << (r % 64);
        }
    }
}

/// The `(row, value)` pairs of the rows with a value.
fn present_of(verified: &[i64], vals: &[i64]) -> Vec<(usize, i64)> {
    super::present_values(verified, vals)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::policy::{AttributeSpec, CategorySpec, LawfulBasis, PolicyBuilder, PurposeSpec};
    use crate::store::Bsi;

    fn policy() -> Arc<crate::policy::Policy> {
        let p = PolicyBuilder::new("T")
            .category(CategorySpec::new("c"))
            .attribute(AttributeSpec::timestamp("t", "c").max_staleness_days(3))
            .attribute(AttributeSpec::integer("i", "c", -5, 1000))
            .attribute(AttributeSpec::categorical("k", "c", &["a", "b", "c"]))
            .attribute(AttributeSpec::boolean("b", "c"))
            .purpose(PurposeSpec::new("p", LawfulBasis::Contract).allow("c"))
            .build()
            .unwrap();
        Arc::new(p)
    }

    fn same_bsi(x: &Bsi, y: &Bsi, what: &str) {
        assert_eq!((x.base(), x.width()), (y.base(), y.width()), "{what}");
        assert!(x.slices().eq(y.slices()), "{what}");
    }

    /// Every column, index and history of two stores.
    fn same(x: &Store, y: &Store) {
        assert!(
            (0..x.len() as u32)
                .map(|r| x.id(r))
                .eq((0..y.len() as u32).map(|r| y.id(r)))
        );
        assert!(
            (0..x.len() as u32).all(|r| x.row(x.id(r)) == Some(r) && y.row(y.id(r)) == Some(r))
        );
        assert_eq!(
            (x.juris.clone(), x.birth.clone()),
            (y.juris.clone(), y.birth.clone())
        );
        assert_eq!(x.events, y.events);
        assert_eq!(x.proofs, y.proofs);
        for (a, (c, d)) in x.columns.iter().zip(&y.columns).enumerate() {
            let what = format!("column {a}");
            assert_eq!(c.verified, d.verified, "{what}");
            assert_eq!(
                (&c.present, c.present_count),
                (&d.present, d.present_count),
                "{what}"
            );
            match (&c.verified_bsi, &d.verified_bsi) {
                (Some(p), Some(q)) => same_bsi(p, q, &what),
                (p, q) => assert_eq!(p.is_some(), q.is_some(), "{what}"),
            }
            match (&c.data, &d.data) {
                (ColumnData::Int { vals: v, bsi: p }, ColumnData::Int { vals: w, bsi: q }) => {
                    assert_eq!(v, w, "{what}");
                    same_bsi(p, q, &what);
                }
                (
                    ColumnData::Cat {
                        codes: p,
                        bitmaps: b,
                        counts: n,
                    },
                    ColumnData::Cat {
                        codes: q,
                        bitmaps: e,
                        counts: m,
                    },
                ) => assert_eq!((p, b, n), (q, e, m), "{what}"),
                (ColumnData::Bool { vals: v }, ColumnData::Bool { vals: w }) => {
                    assert_eq!(v, w, "{what}")
                }
                _ => panic!("{what}: different kinds"),
            }
        }
    }

    /// A bulk append gives the same store as the row-at-a-time writes, in
    /// two rounds (so that ranges grow and bases move over existing rows).
    #[test]
    fn a_bulk_append_equals_row_by_row_writes() {
        let policy = policy();
        let (mut bulk, mut rows) = (Store::new(policy.clone()), Store::new(policy.clone()));
        let mut x = 7u64;
        let mut next = |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        for round in 0..3 {
            let mut b = BulkSubjects::new(4);
            let (mut new, mut writes) = (Vec::new(), Vec::new());
            let ids: Vec<String> = (0..150).map(|i| format!("s{round}-{i}")).collect();
            for (i, id) in ids.iter().enumerate() {
                let row = (rows.len() + i) as u32;
                let j = JurisdictionId(0);
                b.push(id, j, None);
                new.push(NewSubject {
                    id,
                    jurisdiction: j,
                    birth_date: None,
                });
                for a in 0..4u32 {
                    if next(3) == 0 {
                        continue;
                    }
                    let code = match a {
                        0 => next(1 << (10 + 10 * round)) as i64 - (1 << (8 * round)),
                        1 => next(1006) as i64 - 5,
                        2 => next(3) as i64,
                        _ => next(2) as i64,
                    };
                    let verified = Timestamp::from_unix(
                        1_700_000_000 - next(1 << 20) as i64 * (round as i64 + 1),
                    );
                    b.set(AttrId(a), code, verified);
                    writes.push(ValueWrite {
                        row,
                        attr: AttrId(a),
                        change: ValueChange::Set { code, verified },
                    });
                }
            }
            rows.write_batch(&new, &writes, Vec::new()).unwrap();
            bulk.write_bulk(b, BulkEvents::default(), &Interner::default())
                .unwrap();
            same(&bulk, &rows);
        }
    }
}
