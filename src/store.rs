//! Subjects: external ids mapped to dense rows, attribute columns with a
//! bitmap per categorical value, consent histories, and tombstones.

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
    /// Value index per row (`u32::MAX` when missing) and a bitmap per value.
    Cat { codes: Vec<u32>, bitmaps: Vec<Bits> },
    /// Integers or Unix seconds per row.
    Int { vals: Vec<i64> },
    /// Booleans per row.
    Bool { vals: Bits },
}

/// One attribute column.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub data: ColumnData,
    /// When each row's value was last verified (Unix seconds), or [`MISSING`].
    pub verified: Vec<i64>,
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
                    },
                    AttrType::Integer | AttrType::Timestamp => ColumnData::Int { vals: Vec::new() },
                    AttrType::Boolean => ColumnData::Bool { vals: Bits::new() },
                };
                Column {
                    data,
                    verified: Vec::new(),
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
            match &mut c.data {
                ColumnData::Cat { codes, bitmaps } => {
                    codes.push(u32::MAX);
                    for b in bitmaps {
                        b.push(false);
                    }
                }
                ColumnData::Int { vals } => vals.push(0),
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
        let c = &mut self.columns[attr.0 as usize];
        c.verified[r] = verified.unix().max(MISSING + 1);
        match &mut c.data {
            ColumnData::Cat { codes, bitmaps } => {
                if let Some(old) = codes.get(r).copied().filter(|&o| o != u32::MAX) {
                    bitmaps[old as usize].set(r, false);
                }
                codes[r] = code as u32;
                bitmaps[code as usize].set(r, true);
            }
            ColumnData::Int { vals } => vals[r] = code,
            ColumnData::Bool { vals } => vals.set(r, code != 0),
        }
    }

    /// Removes a value.
    pub(crate) fn clear(&mut self, row: u32, attr: AttrId) {
        let r = row as usize;
        let c = &mut self.columns[attr.0 as usize];
        c.verified[r] = MISSING;
        match &mut c.data {
            ColumnData::Cat { codes, bitmaps } => {
                if codes[r] != u32::MAX {
                    bitmaps[codes[r] as usize].set(r, false);
                }
                codes[r] = u32::MAX;
            }
            ColumnData::Int { vals } => vals[r] = 0,
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
            ColumnData::Int { vals } => vals[r],
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
