//! The subject store: the one owner of every fact about a row.
//!
//! It holds external ids mapped to dense rows, attribute columns with their
//! indexes, consent histories and tombstones, and the cached eligibility
//! masks derived from them. Its fields are private: every change goes
//! through one write API ([`Store::add_subjects`], [`Store::set_values`],
//! [`Store::append_events`], [`Store::erase`], [`Store::purge`]), which keeps
//! the masks current itself and returns the rows it touched; everything else
//! reads through views.
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

mod bsi;
mod bulk;
mod durable;
mod history;
mod ids;
mod keys;
mod mask;
mod snapshot;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bitvec::prelude::*;
use time::Date;

use crate::clock::{Clock, SystemClock};
use crate::consent::{
    DataUse, EventContext, EventError, EventKind, EventRecord, Interner, Proof, ProofTable,
    SubjectFacts, check_event,
};
use crate::policy::{AttrId, AttrType, JurisdictionId, Policy, PurposeId};
use crate::timestamp::DAY;
use crate::timestamp::Timestamp;

/// Values moved to their own module; kept here for existing paths.
pub use crate::value::Value;
pub use bsi::Bsi;
pub(crate) use bulk::{BulkEvents, BulkSubjects};
pub use durable::{DB_FILE, FORMAT_VERSION, StoreError};
pub use keys::{KeyError, KeyProvider, StaticKek};
pub use mask::MaskCache;
pub(crate) use mask::chunk_words;
pub use snapshot::{SNAPSHOT_FILE, SNAPSHOT_VERSION};

/// A bitset with one bit per row.
pub type Bits = BitVec<u64, Lsb0>;

/// Marks a missing value in the verified-at column.
pub(crate) const MISSING: i64 = i64::MIN;

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
    data: ColumnData,
    /// When each row's value was last verified (Unix seconds), or [`MISSING`].
    verified: Vec<i64>,
    /// Rows with a value.
    present: Bits,
    /// Number of rows with a value.
    present_count: u64,
    /// Bit-sliced index over `verified`, kept when a staleness limit applies
    /// to this attribute for some purpose.
    verified_bsi: Option<Bsi>,
}

impl Column {
    /// The column's values and value indexes.
    pub(crate) fn data(&self) -> &ColumnData {
        &self.data
    }
    /// When each row's value was last verified (Unix seconds), or [`MISSING`].
    pub(crate) fn verified(&self) -> &[i64] {
        &self.verified
    }
    /// Rows with a value.
    pub(crate) fn present(&self) -> &Bits {
        &self.present
    }
    /// Number of rows with a value.
    pub(crate) fn present_count(&self) -> u64 {
        self.present_count
    }
    /// The bit-sliced index over verification times, if kept.
    pub(crate) fn verified_bsi(&self) -> Option<&Bsi> {
        self.verified_bsi.as_ref()
    }
}

/// One cached eligibility mask, shared between concurrent evaluations.
type MaskEntry = Arc<RwLock<MaskCache>>;

/// A read lock, whether or not a panicking holder poisoned it: every
/// writer of these locks leaves the data consistent before anything can
/// panic, or the entry is rebuilt (see `Store::mask_entry`).
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

/// Does an event of this kind and purpose leave eligibility for `purpose`
/// unchanged? Grants, refusals, withdrawals, parental consents and soft
/// opt-ins only count for their own purpose (see `consent::eligibility`).
fn event_irrelevant(kind: EventKind, event_purpose: Option<PurposeId>, purpose: PurposeId) -> bool {
    matches!(
        kind,
        EventKind::ConsentGranted
            | EventKind::ConsentRefused
            | EventKind::ConsentWithdrawn
            | EventKind::ParentalConsent
            | EventKind::SoftOptIn
    ) && event_purpose != Some(purpose)
}

/// A row whose history changed, with the kind and purpose of the event
/// that changed it (`None`: a change that concerns every purpose).
type Change = (u32, Option<(EventKind, Option<PurposeId>)>);

/// Row updates (rows times masks) below which the masks are updated on
/// the calling thread alone: a scoped thread costs tens of microseconds.
const PARALLEL_REFRESH_MIN: usize = 1 << 14;

/// A subject to add.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewSubject<'a> {
    /// External id (checked new by the caller).
    pub id: &'a str,
    /// Jurisdiction.
    pub jurisdiction: JurisdictionId,
    /// Birth date, if known.
    pub birth_date: Option<Date>,
}

/// One change to one value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ValueChange {
    /// Set an encoded value (from [`Store::encode`]) verified at a time.
    Set {
        /// The encoded value.
        code: i64,
        /// When it was verified.
        verified: Timestamp,
    },
    /// Remove the value.
    Clear,
}

/// A value change for a row and attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ValueWrite {
    /// The row.
    pub row: u32,
    /// The attribute.
    pub attr: AttrId,
    /// What to do.
    pub change: ValueChange,
}

/// The subject table and the eligibility masks derived from it.
pub struct Store {
    policy: Arc<Policy>,
    ids: ids::IdTable,
    juris: Vec<JurisdictionId>,
    birth: Vec<Option<Date>>,
    erased: Bits,
    erased_count: usize,
    events: history::Histories,
    proofs: ProofTable,
    strings: Interner,
    next_seq: u64,
    columns: Vec<Column>,
    /// Eligibility masks, one per purpose and data use: every purpose's
    /// mask for the plain data use is kept at all times (built when the
    /// store is made or a bulk write lands, then updated row by row), and a
    /// mask for another data use once a segment has asked for it.
    masks: RwLock<HashMap<(PurposeId, DataUse), MaskEntry>>,
    /// The host clock: masks are (re)built as of its now.
    clock: Arc<dyn Clock>,
    /// The database every write goes to first, for a durable store.
    durable: Option<durable::Durable>,
}

/// What opening a durable store found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// The policy version the store was last written under (hex).
    pub stored_policy_version: String,
    /// What differs between that policy and the one opened with (empty
    /// when they are the same).
    pub policy_changes: Vec<String>,
    /// Where the in-memory state came from.
    pub state: StateSource,
}

/// Where an opened store's in-memory state (columns, indexes, histories)
/// came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum StateSource {
    /// Not opened from disk.
    #[default]
    New,
    /// The snapshot, which matched the database's write generation and
    /// passed every integrity check.
    Snapshot,
    /// Rebuilt from the database; why the snapshot was not used.
    Rebuilt(String),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rows", &self.ids.len())
            .field("erased", &self.erased_count)
            .finish_non_exhaustive()
    }
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

fn new_column(policy: &Policy, i: u32) -> Column {
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
}

impl Store {
    /// An empty store with columns for the policy's attributes.
    pub fn new(policy: Arc<Policy>) -> Store {
        let columns = (0..policy.attribute_count() as u32)
            .map(|i| new_column(&policy, i))
            .collect();
        Store {
            policy,
            ids: ids::IdTable::default(),
            juris: Vec::new(),
            birth: Vec::new(),
            erased: Bits::new(),
            erased_count: 0,
            events: history::Histories::default(),
            proofs: ProofTable::default(),
            strings: Interner::default(),
            next_seq: 0,
            columns,
            masks: RwLock::new(HashMap::new()),
            clock: Arc::new(SystemClock),
            durable: None,
        }
    }

    /// Sets the host clock the masks are built against, and rebuilds them
    /// as of its now.
    ///
    /// Masks current as of an instant at or before the new clock's now
    /// are kept (they move forward at the next evaluation); masks current
    /// as of a later instant are rebuilt.
    pub(crate) fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
        let now = self.clock.now();
        let ahead = read(&self.masks).values().any(|m| read(m).at() > now);
        if ahead {
            self.rebuild_masks();
        } else {
            self.ensure_masks();
        }
    }

    /// Creates a durable store in directory `dir` (which must not hold one
    /// yet): every write is on disk before it returns.
    pub fn create(
        dir: &Path,
        policy: Arc<Policy>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Store, StoreError> {
        let d = durable::Durable::create(dir, &policy, keys)?;
        let mut s = Store::new(policy);
        s.durable = Some(d);
        Ok(s)
    }

    /// Opens the durable store in `dir` under `policy`. The in-memory
    /// state is read from the snapshot when it matches the database (see
    /// the `snapshot` module); otherwise every record is read back and
    /// checked against the policy (an attribute, purpose, jurisdiction or
    /// value the policy no longer has is an error naming it) and the
    /// indexes are rebuilt from the record. [`OpenReport::state`] says
    /// which, and why. If the policy differs from the one the store was
    /// last written under, the report says what changed and the store
    /// records the new version.
    pub fn open(
        dir: &Path,
        policy: Arc<Policy>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<(Store, OpenReport), StoreError> {
        let mut d = durable::Durable::open(dir, keys)?;
        let stored_version = d.meta("policy_version")?.unwrap_or_default();
        let mut report = OpenReport {
            stored_policy_version: stored_version.clone(),
            policy_changes: Vec::new(),
            state: StateSource::New,
        };
        if stored_version != policy.version_hex() {
            let old = d
                .meta("policy")?
                .ok_or_else(|| StoreError::Damaged("no policy on record".into()))?;
            report.policy_changes = policy_diff(&old, &policy);
        }
        let next_seq = d.next_seq()?;
        let why = match d.snapshot_record() {
            Ok(Some((g, id, key))) => {
                let why = match Store::read_snapshot(
                    dir,
                    &policy,
                    (d.generation(), d.rows()),
                    (g, &id, &key),
                ) {
                    Ok(mut s) if s.next_seq == next_seq => {
                        s.durable = Some(d);
                        report.state = StateSource::Snapshot;
                        return Ok((s, report));
                    }
                    Ok(_) => "its event sequence differs from the database's".to_string(),
                    Err(why) => why,
                };
                // A record that is current for a file that cannot be used
                // (another format version, damage): the file goes, so that
                // the next checkpoint writes one that can, even with no
                // write since. (A stale record is replaced at the next
                // checkpoint anyway.)
                if g == d.generation() {
                    snapshot::remove_files(dir);
                }
                why
            }
            Ok(None) => {
                snapshot::remove_files(dir);
                "no snapshot is on record".into()
            }
            Err(e) => format!("its key does not unwrap: {e}"),
        };
        report.state = StateSource::Rebuilt(format!("the snapshot was not used: {why}"));
        let (subjects, values, events) = d.load()?;
        let mut s = Store::new(policy.clone());
        s.rebuild_subjects(subjects)?;
        s.rebuild_values(values)?;
        s.rebuild_events(events)?;
        s.next_seq = next_seq;
        if !report.policy_changes.is_empty() {
            d.set_policy(&policy)?;
        }
        s.durable = Some(d);
        Ok((s, report))
    }

    /// Rebuilding from the database: the subject rows, in order (an erased
    /// row keeps its place, with no id).
    fn rebuild_subjects(
        &mut self,
        subjects: Vec<durable::LoadedSubject>,
    ) -> Result<(), StoreError> {
        let (policy, s) = (self.policy.clone(), self);
        for sub in subjects {
            let j = policy.jurisdiction_id(&sub.jurisdiction).ok_or_else(|| {
                StoreError::Policy(format!(
                    "row {} is in jurisdiction {:?}, which the policy no longer lists",
                    sub.row, sub.jurisdiction
                ))
            })?;
            match sub.id {
                Some(id) => {
                    let birth = sub
                        .birth
                        .map(|b| crate::timestamp::parse_date(&b))
                        .transpose()
                        .map_err(|_| {
                            StoreError::Damaged(format!("birth date of row {}", sub.row))
                        })?;
                    s.push(&id, j, birth);
                }
                None => {
                    let row = s.push("", j, None);
                    s.ids.forget(row);
                    s.erased.set(row as usize, true);
                    s.erased_count += 1;
                }
            }
        }
        Ok(())
    }

    /// Rebuilding from the database: every value, under the current policy.
    fn rebuild_values(&mut self, values: Vec<durable::LoadedValue>) -> Result<(), StoreError> {
        let (policy, s) = (self.policy.clone(), self);
        for v in values {
            let a = policy.attr_id(&v.attr).ok_or_else(|| {
                StoreError::Policy(format!(
                    "values of attribute {:?} are on record, but the policy no longer declares it",
                    v.attr
                ))
            })?;
            let code = Store::encode(&policy, a, &v.value)
                .map_err(|e| StoreError::Policy(format!("row {}: {e}", v.row)))?;
            if v.row as usize >= s.len() || s.erased[v.row as usize] {
                return Err(StoreError::Damaged(format!(
                    "a value of unknown row {}",
                    v.row
                )));
            }
            s.set(v.row, a, code, Timestamp::from_unix(v.verified));
        }
        Ok(())
    }

    /// Rebuilding from the database: every event, under the current policy.
    fn rebuild_events(&mut self, events: Vec<durable::LoadedEvent>) -> Result<(), StoreError> {
        let (policy, s) = (self.policy.clone(), self);
        let mut recs = Vec::with_capacity(events.len());
        for e in events {
            if e.row as usize >= s.len() || s.erased[e.row as usize] {
                return Err(StoreError::Damaged(format!(
                    "an event of unknown row {}",
                    e.row
                )));
            }
            let purpose = match &e.purpose {
                Some(k) => Some(policy.purpose_id(k).ok_or_else(|| {
                    StoreError::Policy(format!(
                        "events for purpose {k:?} are on record, but the policy no longer declares it"
                    ))
                })?),
                None => None,
            };
            let notice = e
                .notice
                .as_deref()
                .map_or(u32::MAX, |n| s.strings.intern(n));
            let proof = Proof {
                channel: s.strings.intern(&e.channel),
                collector: s.strings.intern(&e.collector),
                notice_sha256: e.notice_sha256,
                evidence_sha256: e.evidence_sha256,
            };
            let rec = EventRecord {
                at: e.at,
                seq: e.seq,
                expires_at: e.expires_at,
                purpose,
                notice,
                proof: s.proofs.intern(proof),
                kind: e.kind,
                explicit: e.explicit,
            };
            recs.push((e.row, rec));
        }
        s.events = history::Histories::from_rows(s.len(), recs);
        Ok(())
    }

    /// Is every write of this store on disk before it returns?
    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Rewraps every subject's data key under a new key-encryption key, in
    /// one transaction; no value is touched. Returns the number of keys.
    pub(crate) fn rotate_kek(&mut self, new: Arc<dyn KeyProvider>) -> Result<u64, StoreError> {
        match &mut self.durable {
            Some(d) => d.rotate(new),
            None => Ok(0),
        }
    }

    /// Checkpoints the write-ahead log into the database file, then writes
    /// a snapshot of the in-memory state for a fast reopen unless the one
    /// on record is current (see the `snapshot` module). Returns whether a
    /// snapshot was written. A no-op for an in-memory store.
    pub fn checkpoint(&self) -> Result<bool, StoreError> {
        let Some(d) = &self.durable else {
            return Ok(false);
        };
        d.checkpoint()?;
        self.write_snapshot()
    }

    /// The policy the columns follow.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    // ---- Read-only views ----------------------------------------------

    /// Number of rows (erased ones included).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// No rows at all?
    pub fn is_empty(&self) -> bool {
        self.ids.len() == 0
    }

    /// Number of rows that are not erased.
    pub fn live_count(&self) -> usize {
        self.ids.len() - self.erased_count
    }

    /// The row of an external id.
    pub fn row(&self, id: &str) -> Option<u32> {
        self.ids.row(id)
    }

    /// The external id of a row (empty once erased).
    pub fn id(&self, row: u32) -> &str {
        if self.erased[row as usize] {
            return "";
        }
        self.ids.get(row)
    }

    /// Is the row erased?
    pub fn is_erased(&self, row: u32) -> bool {
        self.erased[row as usize]
    }

    /// The jurisdiction of a row.
    pub fn jurisdiction(&self, row: u32) -> JurisdictionId {
        self.juris[row as usize]
    }

    /// A row's event history, in effect order.
    pub fn history(&self, row: u32) -> &[EventRecord] {
        self.events.get(row as usize)
    }

    /// The proof details of an event.
    pub fn proof(&self, rec: &EventRecord) -> &Proof {
        self.proofs.get(rec.proof)
    }

    /// The interned strings events refer to.
    pub fn strings(&self) -> &Interner {
        &self.strings
    }

    /// One attribute column.
    pub(crate) fn column(&self, attr: AttrId) -> &Column {
        &self.columns[attr.0 as usize]
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

    /// What the eligibility function needs of a row.
    pub fn facts(&self, row: u32) -> SubjectFacts<'_> {
        let r = row as usize;
        SubjectFacts {
            jurisdiction: self.juris[r],
            birth_date: self.birth[r],
            erased: self.erased[r],
            events: self.events.get(r),
            strings: &self.strings,
        }
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

    /// Checks an event against the policy and the row's facts and turns it
    /// into its stored form (strings it names are interned; nothing else
    /// changes). Append it with [`Store::append_events`].
    pub(crate) fn check_event(
        &mut self,
        event: &crate::consent::ConsentEvent,
        ctx: &EventContext,
    ) -> Result<(EventRecord, Proof), EventError> {
        check_event(&self.policy, event, ctx, &mut self.strings)
    }

    /// The retention cut-off of each attribute at `at`: a value verified
    /// before it is past its category's retention period.
    pub(crate) fn retention_cutoffs(&self, at: Timestamp) -> Vec<Option<i64>> {
        (0..self.columns.len() as u32)
            .map(|i| {
                let spec = self.policy.attribute(AttrId(i));
                crate::report::retention_of(&self.policy, &spec.category)
                    .map(|(d, _)| at.unix().saturating_sub(i64::from(d) * DAY))
            })
            .collect()
    }

    // ---- The write API ---------------------------------------------------

    /// Appends subjects (the caller has checked every id is new and
    /// distinct); returns their rows. Every mask gains the new rows, or all
    /// are rebuilt once when the batch is a large share of the store.
    pub(crate) fn add_subjects(
        &mut self,
        subjects: &[NewSubject<'_>],
    ) -> Result<Vec<u32>, StoreError> {
        self.write_batch(subjects, &[], Vec::new())
            .map(|(rows, _, _)| rows)
    }

    /// Subjects, then values, then events, as one write: one transaction
    /// for a durable store (all of it is on disk or none of it). Returns
    /// the new rows, the rows whose values changed and the rows whose
    /// histories changed.
    #[allow(clippy::type_complexity)]
    pub(crate) fn write_batch(
        &mut self,
        subjects: &[NewSubject<'_>],
        values: &[ValueWrite],
        events: Vec<(u32, EventRecord, Proof)>,
    ) -> Result<(Vec<u32>, Vec<u32>, Vec<u32>), StoreError> {
        if let Some(mut d) = self.durable.take() {
            let out = d.write(|w| self.persist(w, subjects, values, &events));
            self.durable = Some(d);
            out?;
        }
        let bulk = self.is_bulk(subjects.len(), events.len());
        let rows = self.apply_subjects(subjects, bulk);
        let vrows = self.apply_values(values);
        let erows = self.apply_events(events, bulk);
        if bulk {
            self.rebuild_masks();
        } else {
            self.ensure_masks();
        }
        Ok((rows, vrows, erows))
    }

    /// Writes a batch to the open transaction.
    fn persist(
        &self,
        w: &mut durable::Writer<'_>,
        subjects: &[NewSubject<'_>],
        values: &[ValueWrite],
        events: &[(u32, EventRecord, Proof)],
    ) -> Result<(), StoreError> {
        let policy = &*self.policy;
        for (i, s) in subjects.iter().enumerate() {
            let birth = s.birth_date.map(crate::timestamp::format_date);
            w.subject(
                (self.len() + i) as u32,
                s.id,
                &policy.jurisdiction(s.jurisdiction).code,
                birth.as_deref(),
            )?;
        }
        for v in values {
            let name = durable::attr_name(policy, v.attr);
            match v.change {
                ValueChange::Set { code, verified } => w.value(
                    v.row,
                    name,
                    &Store::decode(policy, v.attr, code),
                    verified.unix().max(MISSING + 1),
                )?,
                ValueChange::Clear => w.clear(v.row, name)?,
            }
        }
        for (k, (row, rec, proof)) in events.iter().enumerate() {
            let mut rec = *rec;
            rec.seq = self.next_seq + k as u64;
            w.event(&durable::StoredEvent {
                row: *row,
                rec: &rec,
                proof,
                purpose: rec.purpose.map(|p| policy.purpose(p).key.as_str()),
                notice: (rec.notice != u32::MAX).then(|| self.strings.get(rec.notice)),
                channel: self.strings.get(proof.channel),
                collector: self.strings.get(proof.collector),
            })?;
        }
        if !events.is_empty() {
            w.set_next_seq(self.next_seq + events.len() as u64)?;
        }
        Ok(())
    }

    /// Is a write of `subjects` new subjects and `events` events large
    /// enough (more than an eighth of the rows the store will have) that
    /// the masks are rebuilt in one pass after it rather than updated row
    /// by row? A rebuild decides every row; an update decides the rows
    /// touched, each at a scattered place in memory.
    fn is_bulk(&self, subjects: usize, events: usize) -> bool {
        let rows = self.len() + subjects;
        subjects.max(events) > 1 && subjects.max(events) > rows / 8
    }

    /// Appends subjects; unless `bulk` (the masks are rebuilt after the
    /// whole write), every mask gains the new rows.
    fn apply_subjects(&mut self, subjects: &[NewSubject<'_>], bulk: bool) -> Vec<u32> {
        let rows: Vec<u32> = subjects
            .iter()
            .map(|s| self.push(s.id, s.jurisdiction, s.birth_date))
            .collect();
        if !rows.is_empty() && !bulk {
            for m in read(&self.masks).values() {
                write(m).grow(&self.policy, self);
            }
        }
        rows
    }

    /// Sets or clears values; returns the rows touched (in order, once
    /// each). Values do not change eligibility, so the masks stay.
    pub(crate) fn set_values(&mut self, writes: &[ValueWrite]) -> Result<Vec<u32>, StoreError> {
        self.write_batch(&[], writes, Vec::new())
            .map(|(_, rows, _)| rows)
    }

    fn apply_values(&mut self, writes: &[ValueWrite]) -> Vec<u32> {
        let mut rows = Vec::with_capacity(writes.len());
        for w in writes {
            match w.change {
                ValueChange::Set { code, verified } => self.set(w.row, w.attr, code, verified),
                ValueChange::Clear => self.clear(w.row, w.attr),
            }
            rows.push(w.row);
        }
        rows.sort_unstable();
        rows.dedup();
        rows
    }

    /// Appends checked events (from [`Store::check_event`]) with their
    /// rows, numbering them in arrival order; returns the rows whose
    /// histories changed. Every mask is updated row by row, or all are
    /// rebuilt once when the batch is a large share of the store.
    pub(crate) fn append_events(
        &mut self,
        events: Vec<(u32, EventRecord, Proof)>,
    ) -> Result<Vec<u32>, StoreError> {
        self.write_batch(&[], &[], events).map(|(_, _, rows)| rows)
    }

    /// Appends events; unless `bulk` (the masks are rebuilt after the
    /// whole write), every mask is updated for the rows whose histories
    /// changed.
    fn apply_events(&mut self, events: Vec<(u32, EventRecord, Proof)>, bulk: bool) -> Vec<u32> {
        // What changed each row, for the masks: an event's kind and purpose.
        let mut changes: Vec<Change> = if bulk {
            Vec::new()
        } else {
            events
                .iter()
                .map(|(row, rec, _)| (*row, Some((rec.kind, rec.purpose))))
                .collect()
        };
        let mut rows = Vec::with_capacity(events.len());
        let mut recs = Vec::with_capacity(events.len());
        for (row, mut rec, proof) in events {
            rec.seq = self.next_seq;
            rec.proof = self.proofs.intern(proof);
            self.next_seq += 1;
            recs.push((row, rec));
            rows.push(row);
        }
        self.events.append(recs);
        rows.sort_unstable();
        rows.dedup();
        if !bulk {
            changes.sort_unstable_by_key(|c| c.0);
            self.refresh_masks(&changes);
        }
        rows
    }

    /// Erases a row: every value, bitmap bit and event is dropped, the id
    /// is forgotten (it may be added again as a new subject) and the row is
    /// tombstoned. Returns the row.
    /// For a durable store, the subject's wrapped data key, id, birth
    /// date, values and events are deleted in one transaction (recorded in
    /// the store's journal without the id), and the write-ahead log is then
    /// checkpointed and truncated so that no old page holds them.
    pub(crate) fn erase(&mut self, row: u32, at: Timestamp) -> Result<Vec<u32>, StoreError> {
        if let Some(d) = &mut self.durable {
            d.write(|w| w.erase(row, at.unix()))?;
            d.forget_key(row);
            // Its key is gone with the erasure's commit; the file goes too.
            snapshot::remove_files(d.dir());
        }
        for a in 0..self.columns.len() {
            self.clear(row, AttrId(a as u32));
        }
        let r = row as usize;
        self.events.clear(r);
        self.birth[r] = None;
        if !self.erased[r] {
            self.erased.set(r, true);
            self.erased_count += 1;
        }
        self.ids.forget(row);
        self.refresh_masks(&[(row, None)]);
        self.ensure_masks();
        if let Some(d) = &self.durable {
            // The erasure is committed; a checkpoint that cannot complete
            // now (a concurrent reader) is retried at the next erasure and
            // when the store is dropped.
            let _ = d.checkpoint();
        }
        Ok(vec![row])
    }

    /// The value removals a retention purge at `at` makes: every value
    /// verified before `at` minus its category's retention period, in row
    /// order. Apply them with [`Store::purge`].
    pub(crate) fn purge_due(&self, at: Timestamp) -> Vec<ValueWrite> {
        let cutoffs = self.retention_cutoffs(at);
        let mut out = Vec::new();
        for (i, cut) in cutoffs.into_iter().enumerate() {
            let Some(cut) = cut else { continue };
            out.extend(
                self.columns[i]
                    .verified
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v != MISSING && **v < cut)
                    .map(|(r, _)| ValueWrite {
                        row: r as u32,
                        attr: AttrId(i as u32),
                        change: ValueChange::Clear,
                    }),
            );
        }
        out.sort_by_key(|w| (w.row, w.attr.0));
        out
    }

    /// Applies a retention purge (from [`Store::purge_due`]); returns the
    /// rows that lost a value. Values do not change eligibility, so the
    /// masks stay.
    pub(crate) fn purge(
        &mut self,
        due: &[ValueWrite],
        at: Timestamp,
    ) -> Result<Vec<u32>, StoreError> {
        debug_assert!(due.iter().all(|w| w.change == ValueChange::Clear));
        if let Some(mut d) = self.durable.take() {
            let mut rows: Vec<u32> = due.iter().map(|w| w.row).collect();
            rows.dedup();
            let out = d.write(|w| {
                self.persist(w, &[], due, &[])?;
                w.purge_record(at.unix(), rows.len() as u64, due.len() as u64)
            });
            self.durable = Some(d);
            out?;
        }
        let rows = self.apply_values(due);
        self.ensure_masks();
        Ok(rows)
    }

    // ---- Eligibility masks -----------------------------------------------

    /// Updates every mask for the rows in `changes` (sorted by row; a row
    /// may appear several times): a row is recomputed in a purpose's mask
    /// unless every change to it is an event that only counts for another
    /// purpose. Masks are updated in parallel when there is enough work.
    fn refresh_masks(&mut self, changes: &[Change]) {
        let map = read(&self.masks);
        let masks: Vec<(PurposeId, &MaskEntry)> = map.iter().map(|((p, _), m)| (*p, m)).collect();
        let this = &*self;
        let update = |purpose: PurposeId, m: &MaskEntry| {
            let mut g = write(m);
            let mut last = None;
            for &(row, change) in changes {
                if last == Some(row) || change.is_some_and(|(k, p)| event_irrelevant(k, p, purpose))
                {
                    continue;
                }
                last = Some(row);
                g.refresh_row(&this.policy, this, row);
            }
        };
        let threads = crate::eval::cpu::cores().min(masks.len());
        if threads <= 1 || changes.len() * masks.len() < PARALLEL_REFRESH_MIN {
            for (p, m) in masks {
                update(p, m);
            }
            return;
        }
        std::thread::scope(|sc| {
            for part in masks.chunks(masks.len().div_ceil(threads)) {
                let update = &update;
                sc.spawn(move || {
                    for &(p, m) in part {
                        update(p, m);
                    }
                });
            }
        });
    }

    /// Bytes held by the cached eligibility masks (bitsets, per-row due
    /// times and time queues).
    pub fn mask_cache_bytes(&self) -> usize {
        read(&self.masks).values().map(|m| read(m).bytes()).sum()
    }

    /// Drops every cached eligibility mask (each purpose's mask for the
    /// plain data use is then rebuilt at the next write, or at its first
    /// use).
    pub(crate) fn clear_mask_cache(&mut self) {
        self.masks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The masks kept at all times: each purpose's, for the plain data
    /// use.
    fn standing_keys(&self) -> impl Iterator<Item = (PurposeId, DataUse)> + '_ {
        self.policy.purpose_ids().map(|p| (p, DataUse::default()))
    }

    /// Builds, as of the clock's now, the standing masks that are missing.
    pub(crate) fn ensure_masks(&mut self) {
        let missing: Vec<_> = {
            let map = read(&self.masks);
            self.standing_keys()
                .filter(|k| map.get(k).is_none_or(|e| e.is_poisoned()))
                .collect()
        };
        if missing.is_empty() {
            return;
        }
        let at = self.clock.now();
        let built = self.build_masks(&missing, at);
        self.masks
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(built);
    }

    /// Rebuilds every mask (the standing ones and any other held) as of
    /// the clock's now: after a bulk write, one pass per mask over the
    /// rows, each split across the host's cores.
    pub(crate) fn rebuild_masks(&mut self) {
        let mut keys: Vec<_> = self.standing_keys().collect();
        // The old masks go first: a store never holds two copies.
        let old = std::mem::take(self.masks.get_mut().unwrap_or_else(PoisonError::into_inner));
        for k in old.into_keys() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let at = self.clock.now();
        let built = self.build_masks(&keys, at);
        *self.masks.get_mut().unwrap_or_else(PoisonError::into_inner) = built.into_iter().collect();
    }

    fn build_masks(
        &self,
        keys: &[(PurposeId, DataUse)],
        at: Timestamp,
    ) -> Vec<((PurposeId, DataUse), MaskEntry)> {
        keys.iter()
            .map(|&k| {
                let m = MaskCache::build(&self.policy, self, k.0, k.1, at);
                (k, Arc::new(RwLock::new(m)))
            })
            .collect()
    }

    /// The cached mask for a purpose and data use, built at `at` if absent
    /// (or rebuilt if a panic left it poisoned).
    fn mask_entry(&self, key: (PurposeId, DataUse), at: Timestamp) -> MaskEntry {
        if let Some(e) = read(&self.masks).get(&key).filter(|e| !e.is_poisoned()) {
            return e.clone();
        }
        let mut map = write(&self.masks);
        let build = || {
            Arc::new(RwLock::new(MaskCache::build(
                &self.policy,
                self,
                key.0,
                key.1,
                at,
            )))
        };
        let e = map.entry(key).or_insert_with(build);
        if e.is_poisoned() {
            *e = build();
        }
        e.clone()
    }

    /// Calls `f` with the eligibility mask of a purpose and data use at
    /// `at` and its number of set bits: the kept mask, moved forward if
    /// needed, or rebuilt as of `at` if `at` is earlier than the mask's
    /// instant (a host clock that stepped back). A mask for a data use not
    /// kept yet is built here and kept from then on.
    pub(crate) fn with_mask<R>(
        &self,
        purpose: PurposeId,
        uses: DataUse,
        at: Timestamp,
        f: impl FnOnce(&Bits, u64) -> R,
    ) -> R {
        let entry = self.mask_entry((purpose, uses), at);
        {
            let g = read(&entry);
            if g.at() == at {
                return f(g.bits(), g.count());
            }
        }
        let mut g = write(&entry);
        // Moving forward fails only for an instant earlier than the cache
        // (a host clock that stepped back): the mask is rebuilt in full as
        // of that instant, and kept current from there.
        if g.advance(&self.policy, self, at).is_err() {
            *g = MaskCache::build(&self.policy, self, purpose, uses, at);
        }
        f(g.bits(), g.count())
    }

    // ---- Row-level primitives (private to the store) ----------------------

    /// Appends a subject.
    fn push(&mut self, id: &str, juris: JurisdictionId, birth: Option<Date>) -> u32 {
        let row = self.ids.push(id);
        self.juris.push(juris);
        self.birth.push(birth);
        self.erased.push(false);
        self.events.push_row();
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

    /// Sets an encoded value (from [`Store::encode`]) with its verification time.
    fn set(&mut self, row: u32, attr: AttrId, code: i64, verified: Timestamp) {
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
    fn clear(&mut self, row: u32, attr: AttrId) {
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
        let bytes = |x: &Bits| x.as_raw_slice().len() * 8;
        let mut out = IndexBytes {
            tombstones: bytes(&self.erased),
            ..IndexBytes::default()
        };
        for c in &self.columns {
            out.presence += bytes(&c.present);
            out.freshness += c.verified_bsi.as_ref().map_or(0, Bsi::bytes);
            match &c.data {
                ColumnData::Cat { bitmaps, .. } => {
                    out.categorical += bitmaps.iter().map(bytes).sum::<usize>()
                }
                ColumnData::Int { bsi, .. } => out.bit_sliced += bsi.bytes(),
                ColumnData::Bool { vals } => out.boolean += bytes(vals),
            }
        }
        out
    }
}

/// Bytes held by a store, by component: allocated capacities, with the
/// id map estimated from its capacity (one bucket per slot and a control
/// byte each; the table's exact layout is the standard library's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MemoryBytes {
    /// Subject ids: the strings, the row-to-id vector and the id-to-row map.
    pub ids: usize,
    /// Jurisdictions, birth dates.
    pub subjects: usize,
    /// Row-wise attribute values and verification times (read by the
    /// row-at-a-time paths and to rebuild the indexes).
    pub values: usize,
    /// The bitset indexes ([`Store::index_bytes`]).
    pub indexes: usize,
    /// Consent histories (the per-row vectors and their records), the
    /// table of distinct proofs with its index (not the few interned
    /// strings).
    pub histories: usize,
    /// Cached eligibility masks ([`Store::mask_cache_bytes`]).
    pub masks: usize,
}

impl MemoryBytes {
    /// The sum.
    pub fn total(&self) -> usize {
        self.ids + self.subjects + self.values + self.indexes + self.histories + self.masks
    }
}

impl Store {
    /// Bytes held by the store, by component (see [`MemoryBytes`]).
    pub fn memory_bytes(&self) -> MemoryBytes {
        use std::mem::size_of;
        let ids = self.ids.bytes();
        let subjects = self.juris.capacity() * size_of::<JurisdictionId>()
            + self.birth.capacity() * size_of::<Option<Date>>();
        let mut values = 0;
        for c in &self.columns {
            values += c.verified.capacity() * 8;
            values += match &c.data {
                ColumnData::Cat { codes, .. } => codes.capacity() * 4,
                ColumnData::Int { vals, .. } => vals.capacity() * 8,
                ColumnData::Bool { .. } => 0, // the bitmap is the index
            };
        }
        let histories = self.events.bytes() + self.proofs.bytes();
        MemoryBytes {
            ids,
            subjects,
            values,
            indexes: self.index_bytes().total(),
            histories,
            masks: self.mask_cache_bytes(),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(d) = &self.durable {
            let _ = d.checkpoint();
        }
    }
}

/// What changed between two lists of policy items named by `key`: the
/// items removed (in the old order), then those added or changed (in the
/// new order).
fn diff_by_key<T: PartialEq>(
    what: &str,
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> &String,
    out: &mut Vec<String>,
) {
    for o in old {
        if !new.iter().any(|n| key(n) == key(o)) {
            out.push(format!("{what} {:?} removed", key(o)));
        }
    }
    for n in new {
        match old.iter().find(|o| key(o) == key(n)) {
            None => out.push(format!("{what} {:?} added", key(n))),
            Some(o) if o != n => out.push(format!("{what} {:?} changed", key(n))),
            _ => {}
        }
    }
}

/// What differs between a stored policy (JSON) and `new`, by name.
fn policy_diff(old_json: &str, new: &Policy) -> Vec<String> {
    let Ok(old) = serde_json::from_str::<crate::policy::PolicySpec>(old_json) else {
        return vec![
            "the stored policy cannot be read; every record was checked against the new one".into(),
        ];
    };
    let new = new.spec();
    let mut out = Vec::new();
    diff_by_key(
        "attribute",
        &old.attributes,
        &new.attributes,
        |a| &a.name,
        &mut out,
    );
    diff_by_key(
        "purpose",
        &old.purposes,
        &new.purposes,
        |p| &p.key,
        &mut out,
    );
    diff_by_key(
        "category",
        &old.categories,
        &new.categories,
        |c| &c.key,
        &mut out,
    );
    if old.jurisdictions != new.jurisdictions {
        out.push("jurisdictions changed".into());
    }
    if out.is_empty() {
        out.push("other policy settings changed (roles, recipients, budgets or thresholds)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AttributeSpec, CategorySpec, PolicyBuilder};

    #[test]
    fn policy_items_diff_by_key() {
        fn key(x: &(String, u8)) -> &String {
            &x.0
        }
        let item = |k: &str, v: u8| (k.to_string(), v);
        let old = [item("a", 1), item("b", 1), item("c", 1)];
        let new = [item("c", 2), item("a", 1), item("d", 1)];
        let mut out = Vec::new();
        diff_by_key("thing", &old, &new, key, &mut out);
        assert_eq!(
            out,
            [
                "thing \"b\" removed",
                "thing \"c\" changed",
                "thing \"d\" added"
            ]
        );
        out.clear();
        diff_by_key("thing", &old, &old, key, &mut out);
        assert!(out.is_empty());
    }

    /// Every event of every row, as read back through its proof.
    fn events_read_back(s: &Store) -> Vec<crate::consent::ConsentEvent> {
        (0..s.len() as u32)
            .flat_map(|r| {
                s.history(r).iter().map(move |e| {
                    crate::consent::event_of_record(s.policy(), s.id(r), e, s.proof(e), s.strings())
                })
            })
            .collect()
    }

    #[test]
    fn proofs_are_held_once_and_read_back_unchanged() {
        use crate::consent::{ConsentEvent, to_hex};
        use crate::policy::{LawfulBasis, PurposeSpec};
        let policy = Arc::new(
            PolicyBuilder::new("T")
                .purpose(
                    PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                        .notice_versions(&["v1", "v2"]),
                )
                .purpose(
                    PurposeSpec::new("analytics", LawfulBasis::Consent).notice_versions(&["v1"]),
                )
                .build()
                .unwrap(),
        );
        let dir = std::env::temp_dir().join(format!("privseg-proofs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys: Arc<dyn KeyProvider> = Arc::new(StaticKek::new("k", &[7; 32]).unwrap());
        let mut s = Store::create(&dir, policy.clone(), keys.clone()).unwrap();
        let juris = policy.jurisdiction_id("EU-DE").unwrap();
        let ids: Vec<String> = (0..40).map(|i| format!("c-{i}")).collect();
        let subjects: Vec<NewSubject<'_>> = ids
            .iter()
            .map(|id| NewSubject {
                id,
                jurisdiction: juris,
                birth_date: None,
            })
            .collect();
        s.add_subjects(&subjects).unwrap();
        let ctx = EventContext {
            jurisdiction: juris,
            birth_date: None,
            now: Timestamp::parse("2026-06-01T00:00:00Z").unwrap(),
        };
        let hash = |b: u8| to_hex(&[b; 32]);
        let day = |k: usize| Timestamp::from_unix(1_767_225_600 + 86_400 * k as i64);
        // Subject i has i % 4 events; the notice hashes, channels and
        // evidence hashes repeat across subjects, some evidence is unique.
        let event = |i: usize, k: usize| {
            let id = &ids[i];
            let mut e = match k {
                0 => ConsentEvent::grant(id, "marketing.email", day(k), "v1", &hash(1)),
                1 => ConsentEvent::grant(id, "analytics", day(k), "v1", &hash(2 + (i % 3) as u8)),
                _ => ConsentEvent::new(
                    id,
                    EventKind::ConsentWithdrawn,
                    Some("marketing.email"),
                    day(k),
                ),
            };
            e.channel = ["web", "app"][i % 2].into();
            if i.is_multiple_of(5) {
                e.evidence_sha256 = Some(hash(100 + i as u8));
            } else if i % 5 == 1 {
                e.evidence_sha256 = Some(hash(99));
            }
            e
        };
        let mut expected: Vec<Vec<ConsentEvent>> = vec![Vec::new(); ids.len()];
        for (i, history) in expected.iter_mut().enumerate() {
            let mut batch = Vec::new();
            for k in 0..i % 4 {
                let e = event(i, k);
                let (rec, proof) = s.check_event(&e, &ctx).unwrap();
                batch.push((i as u32, rec, proof));
                history.push(e);
            }
            if !batch.is_empty() {
                s.append_events(batch).unwrap();
            }
        }
        let all = |x: &[Vec<ConsentEvent>]| x.concat();
        // The distinct proof details among the events: the table holds
        // each once.
        let distinct = |x: &[Vec<ConsentEvent>]| {
            let mut d: Vec<_> = all(x)
                .into_iter()
                .map(|e| (e.channel, e.collector, e.notice_sha256, e.evidence_sha256))
                .collect();
            d.sort();
            d.dedup();
            d.len()
        };
        assert_eq!(events_read_back(&s), all(&expected));
        assert_eq!(s.proofs.len(), distinct(&expected));
        assert!(s.proofs.len() < all(&expected).len() / 2);
        // Erasure, then more events: new ones share the proofs still held.
        for i in (3..ids.len()).step_by(7) {
            s.erase(i as u32, ctx.now).unwrap();
            expected[i].clear();
        }
        let held = s.proofs.len();
        for i in [2, 6, 9] {
            let mut e = event(i, 0);
            e.at = day(5);
            let (rec, proof) = s.check_event(&e, &ctx).unwrap();
            s.append_events(vec![(i as u32, rec, proof)]).unwrap();
            expected[i].push(e);
        }
        assert_eq!(s.proofs.len(), held);
        assert_eq!(events_read_back(&s), all(&expected));
        // Reopened from the snapshot: the same table, the same events.
        assert!(s.checkpoint().unwrap());
        let table = s.proofs.clone();
        drop(s);
        let (s, report) = Store::open(&dir, policy.clone(), keys.clone()).unwrap();
        assert_eq!(report.state, StateSource::Snapshot);
        assert_eq!(s.proofs, table);
        assert_eq!(events_read_back(&s), all(&expected));
        drop(s);
        // A snapshot of the format that held one proof per event is not
        // read: the store is rebuilt from the database, where the proofs
        // of erased events are gone.
        // Nor is one of the format without the masks.
        let file = dir.join(snapshot::SNAPSHOT_FILE);
        let good = std::fs::read(&file).unwrap();
        for v in [1u32, 2] {
            let mut bytes = good.clone();
            bytes[8..12].copy_from_slice(&v.to_le_bytes());
            std::fs::write(&file, bytes).unwrap();
            let (s, report) = Store::open(&dir, policy.clone(), keys.clone()).unwrap();
            match &report.state {
                StateSource::Rebuilt(why) => {
                    assert!(why.contains(&format!("format version {v}")), "{why}")
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(events_read_back(&s), all(&expected));
            assert_eq!(s.proofs.len(), distinct(&expected));
            // The next checkpoint replaces it, with no write since.
            assert!(s.checkpoint().unwrap());
            drop(s);
            let (s, report) = Store::open(&dir, policy.clone(), keys.clone()).unwrap();
            assert_eq!(report.state, StateSource::Snapshot);
            drop(s);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_proof_table_with_a_repeated_proof_is_refused() {
        let p = |c: u32| Proof {
            channel: c,
            collector: 0,
            notice_sha256: Some([c as u8; 32]),
            evidence_sha256: None,
        };
        let t = ProofTable::from_distinct(vec![p(0), p(1), p(2)]).unwrap();
        assert_eq!((t.get(1), t.len()), (&p(1), 3));
        assert!(ProofTable::from_distinct(vec![p(0), p(1), p(0)]).is_none());
    }

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
        let policy = Arc::new(policy);
        let mut s = Store::new(policy.clone());
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
