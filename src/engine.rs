//! The facade: one policy, its subjects, and the path of a segment from text
//! to members. The engine applies the purpose's eligibility mask to every
//! evaluation itself; a caller cannot skip it. Every call is made by an
//! [`Actor`], checked against the policy's roles, and recorded in the audit
//! log; a result that leaves the engine is released only once its audit
//! entry is written.
//!
//! ```
//! use std::sync::Arc;
//! use privseg::{Actor, Engine, Timestamp};
//! use privseg::consent::ConsentEvent;
//! use privseg::policy::*;
//!
//! let policy = PolicyBuilder::new("Acme Ltd")
//!     .category(CategorySpec::new("user.location"))
//!     .attribute(AttributeSpec::categorical("country", "user.location", &["FR", "DE"]))
//!     .purpose(PurposeSpec::new("marketing.email", LawfulBasis::Consent)
//!         .allow("user.location").notice_versions(&["v3"]).email(false))
//!     .role(RoleSpec { name: "crm".into(), subjects: true,
//!         member_ids: vec!["marketing".into()], ..RoleSpec::default() })
//!     .build().unwrap();
//! let crm = Actor::new("crm-sync", &["crm"]);
//! let mut engine = Engine::new(Arc::new(policy));
//! let t = Timestamp::parse("2026-03-01T10:00:00Z").unwrap();
//! engine.add_subject(&crm, "c-1", "EU-FR", privseg::timestamp::parse_date("1980-05-01").ok()).unwrap();
//! engine.set_attribute(&crm, "c-1", "country", "FR".into(), t).unwrap();
//! let seg = engine.compile(&crm, r#"segment "fr" for marketing.email where country = "FR""#).unwrap();
//! assert_eq!(engine.evaluate(&crm, &seg, t).unwrap().count(), 0); // no consent yet (R3)
//! let sha = "0".repeat(64);
//! engine.record(&crm, &ConsentEvent::grant("c-1", "marketing.email", t, "v3", &sha)).unwrap();
//! let members = engine.evaluate(&crm, &seg, t).unwrap();
//! assert_eq!(engine.member_ids(&crm, &members).unwrap(), vec!["c-1"]);
//! // Every call above is in the tamper-evident audit log.
//! assert_eq!(engine.audit_len(), 8);
//! ```

use crate::publish::{RwLockReadGuard, RwLockWriteGuard};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use time::Date;

use crate::access::{AccessError, Actor, Permission, authorize};
use crate::audit::details::{self as entry_kind, EntryKind, SegmentRun};
use crate::audit::{AuditError, AuditLog, AuditPseudonymizer, MemorySink, Operation, PendingEntry};
use crate::clock::{Clock, SystemClock};
use crate::consent::{
    ConsentEvent, DataUse, Eligibility, EventContext, EventError, Rule, eligibility,
    event_of_record,
};
use crate::eval::{self, ExecOptions, Plan, kernels};
use crate::policy::{Policy, PolicyVersion, PurposeId};
use crate::privacy::aggregate::AggregateError;
use crate::privacy::dp::{BudgetError, DpError, RandomError};
use crate::privacy::pseudonym::PseudonymError;
use crate::segment::{self, CheckedExpr, CheckedSegment, Expr, Segment, SegmentError};
use crate::store::{
    Bits, KeyProvider, NewSubject, OpenReport, Store, Value, ValueChange, ValueError, ValueWrite,
};
use crate::timestamp::Timestamp;

/// Why an engine call failed. Nothing is changed when a call fails.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No subject has this id (or it was erased).
    #[error("unknown subject {0:?}")]
    UnknownSubject(String),
    /// A subject with this id exists already.
    #[error("subject {0:?} exists already")]
    DuplicateSubject(String),
    /// The id is empty, longer than [`MAX_ID_LEN`] bytes, or has
    /// surrounding whitespace, control or bidirectional formatting
    /// characters. The text says which, with the id shortened.
    #[error("invalid subject id {0}")]
    InvalidId(String),
    /// The actor's id or one of its role names is not of the form of an id
    /// (see [`MAX_ID_LEN`]); nothing is recorded under it.
    #[error("invalid actor: {0}")]
    InvalidActor(String),
    /// A birth date in the future (as of the engine's clock) or before
    /// [`MIN_BIRTH_YEAR`].
    #[error("subject {subject}: birth date {date} refused: {reason}")]
    InvalidBirthDate {
        /// The subject id, shortened.
        subject: String,
        /// The date given.
        date: String,
        /// Why.
        reason: String,
    },
    /// The jurisdiction is not in the policy.
    #[error(
        "subject {subject:?}: unknown jurisdiction {code:?} (the policy lists its jurisdictions)"
    )]
    UnknownJurisdiction {
        /// Subject id.
        subject: String,
        /// The code given.
        code: String,
    },
    /// The attribute is not in the policy.
    #[error("unknown attribute {0:?}")]
    UnknownAttribute(String),
    /// The purpose is not in the policy.
    #[error("unknown purpose {0:?}")]
    UnknownPurpose(String),
    /// A value does not fit its attribute.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// An event is malformed or does not fit the policy.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The actor lacks a permission.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The audit log could not be written: the call was not carried out.
    /// The message includes the audit error's, so it is not also given as
    /// the `source` (a chain would print it twice); match on the field.
    #[error("audit log: {0}")]
    Audit(AuditError),
    /// A segment (or a field read for one) was refused by validation.
    #[error(transparent)]
    Segment(Box<SegmentError>),
    /// The attribute is not categorical (breakdowns need one).
    #[error("attribute {0:?} is not categorical, so it cannot be broken down")]
    NotCategorical(String),
    /// The attribute is not a categorical protected attribute.
    #[error(
        "attribute {0:?} is not a categorical protected attribute, so it cannot define audit groups"
    )]
    NotProtected(String),
    /// The recipient is not in the policy.
    #[error("unknown recipient {0:?}")]
    UnknownRecipient(String),
    /// The export breaks the recipient's agreement.
    #[error("export to {recipient} refused ({rule}): {reason}")]
    ExportRefused {
        /// Recipient id.
        recipient: String,
        /// The rule.
        rule: Rule,
        /// Why.
        reason: String,
    },
    /// A differential-privacy budget refused the query (no budget, above
    /// the cap, spent, a ledger behind the audit log), or its ledger file
    /// could not be read or written ([`BudgetError::File`], a failure, not
    /// a refusal: see [`EngineError::is_internal`]).
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The random source failed: nothing was released. An internal
    /// failure, not a refusal.
    #[error(transparent)]
    Random(#[from] RandomError),
    /// Noise could not be added to a count (a count or noise out of range).
    /// Budget and random-source failures of [`DpError`] become
    /// [`EngineError::Budget`] and [`EngineError::Random`].
    #[error(transparent)]
    Noise(DpError),
    /// An audit entry records a differential-privacy charge without a
    /// readable epsilon, so what was spent cannot be known: nothing is
    /// charged or released.
    #[error("audit entry {seq} records a charge without a readable epsilon")]
    UnreadableCharge {
        /// The entry's sequence number.
        seq: u64,
    },
    /// A pseudonym could not be made (keys of the recipient and purpose).
    #[error(transparent)]
    Pseudonym(#[from] PseudonymError),
    /// An aggregate could not be formed.
    #[error(transparent)]
    Aggregate(#[from] AggregateError),
    /// An evaluation step was given inputs that do not fit each other (an
    /// eligibility mask of another length than the store): an internal
    /// failure, not a refusal. Nothing is released.
    #[error(transparent)]
    Eval(#[from] crate::eval::EvalError),
    /// Writing the output failed. An internal failure, not a refusal.
    #[error("the output could not be written")]
    Io(#[source] std::io::Error),
    /// The durable store could not be created, opened or written: the
    /// call was not carried out.
    /// The message includes the store error's, so it is not also given as
    /// the `source`; match on the field.
    #[error("store: {0}")]
    Store(crate::store::StoreError),
    /// A result was given to an engine other than the one that made it.
    #[error("this result was made by another engine: read it through the engine that made it")]
    ForeignResult,
    /// The segment was validated against another policy version.
    #[error(
        "segment {segment:?} was validated against policy {segment_version}, but the engine runs policy {engine_version}: validate it again"
    )]
    PolicyMismatch {
        /// Segment name.
        segment: String,
        /// Its policy version.
        segment_version: PolicyVersion,
        /// The engine's.
        engine_version: PolicyVersion,
    },
}

impl From<AuditError> for EngineError {
    fn from(e: AuditError) -> Self {
        EngineError::Audit(e)
    }
}

impl From<crate::store::StoreError> for EngineError {
    fn from(e: crate::store::StoreError) -> Self {
        EngineError::Store(e)
    }
}

impl From<DpError> for EngineError {
    fn from(e: DpError) -> Self {
        match e {
            DpError::Random(r) => EngineError::Random(r),
            DpError::Budget(b) => EngineError::Budget(b),
            other => EngineError::Noise(other),
        }
    }
}

impl EngineError {
    /// Whether the call failed inside the engine or its surroundings (the
    /// random source, writing the output or the budget ledger file) rather
    /// than being refused or given bad input.
    /// Such a failure is neither a refusal nor the caller's mistake.
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            EngineError::Random(_)
                | EngineError::Io(_)
                | EngineError::Eval(_)
                | EngineError::Budget(BudgetError::File(_))
        )
    }
}

impl From<SegmentError> for EngineError {
    fn from(e: SegmentError) -> Self {
        EngineError::Segment(Box::new(e))
    }
}

/// The members of a segment at an instant.
#[derive(Clone, Debug)]
pub struct Members {
    engine: u64,
    segment: String,
    purpose: String,
    purpose_id: PurposeId,
    uses: DataUse,
    version: PolicyVersion,
    at: Timestamp,
    reference: Timestamp,
    bits: Bits,
    count: u64,
}

impl Members {
    /// Number of members.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Segment name.
    pub fn segment(&self) -> &str {
        &self.segment
    }
    /// Purpose key.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }
    /// The policy version it ran under.
    pub fn policy_version(&self) -> PolicyVersion {
        self.version
    }
    /// The instant eligibility was judged at: the engine clock's time of
    /// the evaluation.
    pub fn at(&self) -> Timestamp {
        self.at
    }
    /// The reference time the predicate's relative times (`now - 30d`)
    /// were read against.
    pub fn reference(&self) -> Timestamp {
        self.reference
    }
    /// Member rows, in row order. Rows are positions inside the engine that
    /// made this result; ids are released only by [`Engine::member_ids`].
    pub fn rows(&self) -> impl Iterator<Item = u32> + '_ {
        kernels::ones(self.bits.as_raw_slice())
    }
    /// Is this row a member?
    pub fn contains_row(&self, row: u32) -> bool {
        self.bits.get(row as usize).is_some_and(|b| *b)
    }
    /// The member bitset.
    #[doc(hidden)]
    pub fn bits(&self) -> &Bits {
        &self.bits
    }
    /// Was this result made by `engine`?
    pub fn made_by(&self, engine: &Engine) -> bool {
        self.engine == engine.instance
    }
}

/// A predicate term and whether it held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TermOutcome {
    /// The term as text.
    pub term: String,
    /// Did it hold?
    pub held: bool,
}

/// Why a subject is in or out of a segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// Subject id.
    pub subject: String,
    /// Segment name.
    pub segment: String,
    /// Purpose key.
    pub purpose: String,
    /// The instant eligibility was judged at (the engine clock's now).
    pub at: Timestamp,
    /// The reference time of the predicate's relative times.
    pub reference: Timestamp,
    /// In the segment?
    pub member: bool,
    /// Eligibility for the purpose (and the segment's data use).
    pub eligibility: Eligibility,
    /// Did the predicate hold? `None` when the subject is not eligible: the
    /// predicate is never evaluated for them, so an explanation cannot be
    /// used to read an excluded subject's values.
    pub predicate_held: Option<bool>,
    /// The terms that made the predicate false (empty if it held or if the
    /// subject is not eligible).
    pub failing_terms: Vec<TermOutcome>,
}

impl std::fmt::Display for Explanation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inout = if self.member { "IN" } else { "OUT" };
        writeln!(
            f,
            "{} is {inout} segment {:?} ({}) at {}",
            self.subject, self.segment, self.purpose, self.at
        )?;
        match &self.eligibility {
            Eligibility::Allowed(g) => writeln!(f, "  eligible: yes ({g:?})")?,
            Eligibility::Denied(d) => writeln!(f, "  eligible: no, {d}")?,
        }
        match self.predicate_held {
            None => writeln!(f, "  predicate: not evaluated (not eligible)"),
            Some(true) => writeln!(f, "  predicate: holds"),
            Some(false) => {
                writeln!(f, "  predicate: fails")?;
                for t in &self.failing_terms {
                    writeln!(f, "    failed: {}", t.term)?;
                }
                Ok(())
            }
        }
    }
}

/// The engine: one policy, its subjects, and the audit log of every call.
///
/// Evaluation takes `&self`; the eligibility masks it keeps (one per
/// purpose and data use, see [`MaskCache`]) sit behind locks inside the
/// engine, so an `Engine` is `Send + Sync` and many threads may evaluate at
/// once. Writers take `&mut self` and update every cached mask before they
/// return, so an evaluation sees an event entirely or not at all; share an
/// engine between readers and writers with [`SharedEngine`].
///
/// A cached mask only moves forward in time: evaluating at an instant
/// earlier than the mask's recomputes eligibility for every row instead
/// (correct, but as slow as building the mask).
pub struct Engine {
    policy: Arc<Policy>,
    store: Store,
    exec: ExecOptions,
    audit: Mutex<AuditLog>,
    audit_ids: AuditPseudonymizer,
    clock: Arc<dyn Clock>,
    open_report: OpenReport,
    /// A random identity, so that results are only read through the engine
    /// that made them.
    instance: u64,
}

/// An engine shared between threads: evaluations take a read lock, writes
/// a write lock ([`crate::publish::Shared`], the protocol checked by the
/// loom model in tests/loom_publish.rs). A write (an event, an erasure) is
/// seen by an evaluation entirely or not at all, and every evaluation that
/// starts after a write returned sees it.
#[derive(Clone, Debug)]
pub struct SharedEngine(crate::publish::Shared<Engine>);

impl SharedEngine {
    /// Shares an engine.
    pub fn new(engine: Engine) -> SharedEngine {
        SharedEngine(crate::publish::Shared::new(engine))
    }
    /// Read access (many at once).
    pub fn read(&self) -> RwLockReadGuard<'_, Engine> {
        self.0.read()
    }
    /// Write access (exclusive).
    pub fn write(&self) -> RwLockWriteGuard<'_, Engine> {
        self.0.write()
    }
    /// [`Engine::evaluate`] under a read lock.
    pub fn evaluate(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
    ) -> Result<Members, EngineError> {
        self.read().evaluate(actor, seg, at)
    }
    /// [`Engine::record`] under a write lock.
    pub fn record(&self, actor: &Actor, event: &ConsentEvent) -> Result<(), EngineError> {
        self.0.update(|e| e.record(actor, event))
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("policy_version", &self.policy.version())
            .field("subjects", &self.subject_count())
            .finish_non_exhaustive()
    }
}

/// An in-memory audit log and pseudonymizer under a fresh key from the
/// system random source.
fn memory_audit() -> Result<(AuditLog, AuditPseudonymizer), EngineError> {
    memory_audit_from(|key| {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), key)
            .map_err(|_| RandomError)
    })
}

/// An in-memory audit log and pseudonymizer under a key drawn by `fill`.
fn memory_audit_from(
    fill: impl FnOnce(&mut [u8]) -> Result<(), RandomError>,
) -> Result<(AuditLog, AuditPseudonymizer), EngineError> {
    let mut key = zeroize::Zeroizing::new([0u8; 32]);
    fill(&mut key[..])?;
    let ids = AuditPseudonymizer::new(&key[..])?;
    let log = AuditLog::open(
        Box::new(MemorySink::new()) as Box<dyn crate::audit::AuditSink + Send>,
        &key[..],
    )?;
    Ok((log, ids))
}

/// The longest subject id, actor id or role name, in bytes. Longer ones are
/// refused where they are given: an actor id is copied into every audit
/// entry its calls make, and a subject id is kept for as long as the subject.
pub const MAX_ID_LEN: usize = 256;

/// The most role names one actor may carry.
pub const MAX_ROLES: usize = 64;

/// The earliest birth year taken: an earlier date is a typing error, not a
/// living subject.
pub const MIN_BIRTH_YEAR: i32 = 1900;

/// Characters refused in ids and names: controls (NUL included) and the
/// Unicode bidirectional formatting characters, which make a text display
/// otherwise than it reads (an audit log or a report shown to a person
/// must not be able to lie about whom it names).
fn forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// An id as shown in a message: at most 40 characters, escaped, with the
/// length in bytes when it was cut.
pub(crate) fn shown_id(id: &str) -> String {
    let head: String = id.chars().take(40).collect();
    if head.len() == id.len() {
        format!("{head:?}")
    } else {
        format!("{head:?}... ({} bytes)", id.len())
    }
}

/// What is wrong with an id or a name, if anything.
pub(crate) fn id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("it is empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Some(format!(
            "it is {} bytes long, more than the {MAX_ID_LEN} allowed",
            id.len()
        ));
    }
    if id.trim() != id {
        return Some("it has surrounding whitespace".into());
    }
    if let Some(c) = id.chars().find(|&c| forbidden_char(c)) {
        return Some(format!(
            "it contains U+{:04X}: control and bidirectional formatting characters are refused",
            c as u32
        ));
    }
    None
}

pub(crate) fn check_id(id: &str) -> Result<(), EngineError> {
    match id_problem(id) {
        Some(why) => Err(EngineError::InvalidId(format!("{}: {why}", shown_id(id)))),
        None => Ok(()),
    }
}

/// Checks an actor's id and role names as ids (every gated call does, so a
/// Rust caller is held to the same limits as the C API).
pub fn check_actor(actor: &Actor) -> Result<(), EngineError> {
    if let Some(why) = id_problem(actor.id()) {
        return Err(EngineError::InvalidActor(format!(
            "id {}: {why}",
            shown_id(actor.id())
        )));
    }
    if actor.roles().len() > MAX_ROLES {
        return Err(EngineError::InvalidActor(format!(
            "{} roles, more than the {MAX_ROLES} allowed",
            actor.roles().len()
        )));
    }
    for r in actor.roles() {
        if let Some(why) = id_problem(r) {
            return Err(EngineError::InvalidActor(format!(
                "role name {}: {why}",
                shown_id(r)
            )));
        }
    }
    Ok(())
}

/// Checks a subject's id and birth date: a birth date must lie between
/// [`MIN_BIRTH_YEAR`] and `today` (the engine clock's date).
pub(crate) fn check_subject(id: &str, birth: Option<Date>, today: Date) -> Result<(), EngineError> {
    check_id(id)?;
    let Some(b) = birth else {
        return Ok(());
    };
    let reason = if b.year() < MIN_BIRTH_YEAR {
        format!("it is before {MIN_BIRTH_YEAR}")
    } else if b > today {
        format!(
            "it is after today ({})",
            crate::timestamp::format_date(today)
        )
    } else {
        return Ok(());
    };
    Err(EngineError::InvalidBirthDate {
        subject: shown_id(id),
        date: crate::timestamp::format_date(b),
        reason,
    })
}

impl Engine {
    /// An engine with no subjects and an in-memory audit log whose subject
    /// pseudonyms use a fresh random key. Use [`Engine::with_audit`] to keep
    /// the log in a file and under a key the host holds.
    ///
    /// A convenience over [`Engine::try_new`].
    ///
    /// # Panics
    /// If the system random source fails (the key cannot be drawn), which
    /// nothing the caller passes can cause; use [`Engine::try_new`] to get
    /// that failure as [`EngineError::Random`] instead.
    pub fn new(policy: Arc<Policy>) -> Engine {
        match Engine::try_new(policy) {
            Ok(e) => e,
            Err(e) => panic!("an in-memory engine could not be made: {e}"),
        }
    }

    /// [`Engine::new`] that reports a failing system random source as
    /// [`EngineError::Random`] (an internal failure) instead of panicking.
    pub fn try_new(policy: Arc<Policy>) -> Result<Engine, EngineError> {
        let (log, ids) = memory_audit()?;
        Engine::with_audit(policy, log, ids)
    }

    /// An engine writing its audit entries to `log`, with subject pseudonyms
    /// under `pseudonyms` (an audit-only key held by the host). Records that
    /// the policy was loaded.
    pub fn with_audit(
        policy: Arc<Policy>,
        log: AuditLog,
        pseudonyms: AuditPseudonymizer,
    ) -> Result<Engine, EngineError> {
        Engine::assemble(Store::new(policy), log, pseudonyms)
    }

    /// Creates a durable engine in directory `dir` (see
    /// [`Store::create`]): every acknowledged write is on disk before the
    /// call returns. The audit log is in memory under a fresh key, as for
    /// [`Engine::new`]; use [`Engine::create_with_audit`] to keep it with
    /// the store.
    pub fn create(
        dir: impl AsRef<std::path::Path>,
        policy: Arc<Policy>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Engine, EngineError> {
        let store = Store::create(dir.as_ref(), policy, keys)?;
        let (log, ids) = memory_audit()?;
        Engine::assemble(store, log, ids)
    }

    /// [`Engine::create`] with the audit log and pseudonym key given.
    pub fn create_with_audit(
        dir: impl AsRef<std::path::Path>,
        policy: Arc<Policy>,
        keys: Arc<dyn KeyProvider>,
        log: AuditLog,
        pseudonyms: AuditPseudonymizer,
    ) -> Result<Engine, EngineError> {
        let store = Store::create(dir.as_ref(), policy, keys)?;
        Engine::assemble(store, log, pseudonyms)
    }

    /// Opens the durable engine in directory `dir` under `policy` (see
    /// [`Store::open`] for what is checked; [`Engine::open_report`] says
    /// what changed if the policy differs from the stored one).
    pub fn open(
        dir: impl AsRef<std::path::Path>,
        policy: Arc<Policy>,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Engine, EngineError> {
        let (log, ids) = memory_audit()?;
        Engine::open_with_audit(dir, policy, keys, log, ids)
    }

    /// [`Engine::open`] with the audit log and pseudonym key given. A
    /// policy change found on open is recorded.
    pub fn open_with_audit(
        dir: impl AsRef<std::path::Path>,
        policy: Arc<Policy>,
        keys: Arc<dyn KeyProvider>,
        log: AuditLog,
        pseudonyms: AuditPseudonymizer,
    ) -> Result<Engine, EngineError> {
        let (store, report) = Store::open(dir.as_ref(), policy, keys)?;
        let mut e = Engine::assemble(store, log, pseudonyms)?;
        if !report.policy_changes.is_empty() {
            e.log(e.entry("privseg", Operation::PolicyChanged).with_kind(
                EntryKind::PolicyChanged(entry_kind::PolicyChanged {
                    from: report.stored_policy_version.clone(),
                    changes: report.policy_changes.len() as u64,
                }),
            ))?;
        }
        e.open_report = report;
        Ok(e)
    }

    /// What opening the store found (empty for a new or in-memory engine).
    pub fn open_report(&self) -> &OpenReport {
        &self.open_report
    }

    /// Is every acknowledged write on disk before the call returns?
    pub fn is_durable(&self) -> bool {
        self.store.is_durable()
    }

    /// Rewraps every subject's data key under a new key-encryption key
    /// (values are not touched). Needs the `subjects` permission; recorded.
    pub fn rotate_kek(
        &mut self,
        actor: &Actor,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<u64, EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        self.log(
            self.entry(actor.id(), Operation::KeyRotated)
                .with_kind(EntryKind::KeyRotated(entry_kind::NoDetails {})),
        )?;
        Ok(self.store.rotate_kek(keys)?)
    }

    /// Checkpoints a durable store's write-ahead log into its database and
    /// writes an encrypted snapshot of the in-memory state, so that the
    /// next [`Engine::open`] reads it instead of rebuilding every index
    /// (skipped when the snapshot on record is current). Call it after a
    /// bulk import and before closing; nothing is lost without it, only
    /// the next open is slower. A no-op for an in-memory engine.
    pub fn checkpoint(&self) -> Result<(), EngineError> {
        self.store.checkpoint()?;
        Ok(())
    }

    fn assemble(
        mut store: Store,
        log: AuditLog,
        pseudonyms: AuditPseudonymizer,
    ) -> Result<Engine, EngineError> {
        let policy = store.policy().clone();
        // Every purpose's eligibility mask is kept from the start, so that
        // no evaluation pays for building one.
        store.ensure_masks();
        let mut instance = [0u8; 8];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut instance)
            .map_err(|_| RandomError)?;
        let engine = Engine {
            policy,
            store,
            exec: ExecOptions::default(),
            audit: Mutex::new(log),
            audit_ids: pseudonyms,
            clock: Arc::new(SystemClock),
            instance: u64::from_le_bytes(instance),
            open_report: OpenReport::default(),
        };
        engine.log(
            engine
                .entry("privseg", Operation::PolicyLoaded)
                .with_kind(EntryKind::PolicyLoaded(entry_kind::NoDetails {})),
        )?;
        Ok(engine)
    }

    /// The engine with the host's clock: every release judges eligibility
    /// as of this clock's now, and audit entries carry its time. Set by the
    /// host when it builds the engine (the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Engine {
        self.store.set_clock(clock.clone());
        self.clock = clock;
        self
    }

    /// The host clock's current instant.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// How evaluations execute (kernel path, threads).
    #[doc(hidden)]
    pub fn exec_options(&self) -> ExecOptions {
        self.exec
    }

    /// Sets how evaluations execute (e.g. to force a kernel path).
    #[doc(hidden)]
    pub fn set_exec_options(&mut self, opts: ExecOptions) {
        self.exec = opts;
    }

    /// Bytes held by the cached eligibility masks (bitsets, per-row due
    /// times and time queues).
    #[doc(hidden)]
    pub fn mask_cache_bytes(&self) -> usize {
        self.store.mask_cache_bytes()
    }

    /// Drops every cached eligibility mask.
    #[doc(hidden)]
    pub fn clear_mask_cache(&mut self) {
        self.store.clear_mask_cache();
    }

    /// Calls `f` with the eligibility mask of a purpose and data use at
    /// `at` and its number of set bits (see [`Store::with_mask`]).
    fn with_mask<R>(
        &self,
        purpose: PurposeId,
        uses: DataUse,
        at: Timestamp,
        f: impl FnOnce(&Bits, u64) -> R,
    ) -> R {
        self.store.with_mask(purpose, uses, at, f)
    }

    /// Runs `f` on the compiled plan of a segment (the eligibility mask as
    /// of now ANDed in), for the project's own kernel benchmarks. A plan's
    /// operands are raw column bitmaps over every row, unmasked, so this
    /// exists only with the `bench-internals` feature, which no production
    /// build should enable. Needs `member_ids` and is recorded.
    #[cfg(feature = "bench-internals")]
    #[doc(hidden)]
    pub fn with_plan_for_benchmarks<R>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        reference: Timestamp,
        f: impl FnOnce(&Plan<'_>) -> R,
    ) -> Result<R, EngineError> {
        self.allow_members(actor, seg)?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::PlanUsed(entry_kind::PlanUsed {
                run: SegmentRun::new(seg.name(), reference),
                plan: entry_kind::True,
            }),
        ))?;
        self.with_plan_unreleased(seg, reference, f)
    }

    /// Runs `f` on the compiled plan of a segment (the eligibility mask as
    /// of now ANDed in). Inside the crate only: a plan's operands are raw
    /// column bitmaps, which must never leave the engine.
    #[cfg_attr(not(any(test, feature = "bench-internals")), allow(dead_code))]
    pub(crate) fn with_plan_unreleased<R>(
        &self,
        seg: &CheckedSegment,
        reference: Timestamp,
        f: impl FnOnce(&Plan<'_>) -> R,
    ) -> Result<R, EngineError> {
        let now = self.now();
        let anchored = seg.anchored(reference);
        self.with_mask(seg.purpose(), seg.data_use(), now, |mask, count| {
            let plan = eval::compile(&self.policy, &self.store, &anchored, now, mask, count)?;
            Ok(f(&plan))
        })
    }

    /// The policy.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    /// Applies a checked bulk import (subjects with their values, then
    /// events whose strings `strings` interned) as one write (one
    /// transaction for a durable store).
    pub(crate) fn apply_bulk(
        &mut self,
        subjects: crate::store::BulkSubjects,
        events: crate::store::BulkEvents,
        strings: &crate::consent::Interner,
    ) -> Result<(), EngineError> {
        self.store.write_bulk(subjects, events, strings)?;
        Ok(())
    }

    /// An audit entry stamped with the clock's time and the policy version.
    pub(crate) fn entry(&self, actor: &str, op: Operation) -> PendingEntry {
        PendingEntry::new(self.now().unix(), actor, op).policy_version(self.policy.version_hex())
    }

    /// The gate of every call that releases members of a segment: the
    /// `member_ids` permission for its purpose, and its policy version.
    fn allow_members(&self, actor: &Actor, seg: &CheckedSegment) -> Result<(), EngineError> {
        self.allow(
            actor,
            Permission::MemberIds(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        self.check_version(seg)
    }

    /// An entry about a segment run: its purpose, and its kind, which
    /// names the segment and the predicate's reference time (the entry's
    /// own time is the release instant).
    pub(crate) fn segment_entry(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        kind: EntryKind,
    ) -> PendingEntry {
        self.entry(actor.id(), kind.operation())
            .purpose(seg.purpose_key())
            .with_kind(kind)
    }

    /// Appends an entry; the caller releases its result only on success.
    pub(crate) fn log(&self, entry: PendingEntry) -> Result<(), EngineError> {
        let mut log = self.audit.lock().map_err(|_| AuditError::Poisoned)?;
        log.append(entry)?;
        Ok(())
    }

    /// Checks a permission; a refusal is itself recorded.
    pub(crate) fn allow(
        &self,
        actor: &Actor,
        permission: Permission<'_>,
        purpose: Option<&str>,
    ) -> Result<(), EngineError> {
        // An actor that is not of the form of one is refused unrecorded:
        // its id would be copied into the log.
        check_actor(actor)?;
        match authorize(&self.policy, actor, permission) {
            Ok(()) => Ok(()),
            Err(e) => {
                let mut entry = self.entry(actor.id(), Operation::AccessRefused).with_kind(
                    EntryKind::AccessRefused(entry_kind::AccessRefused {
                        permission: permission.to_string(),
                    }),
                );
                if let Some(p) = purpose {
                    entry = entry.purpose(p);
                }
                // The refusal stands even if it cannot be logged.
                let _ = self.log(entry);
                Err(e.into())
            }
        }
    }

    /// The audit pseudonymizer (also the source of keyed digests).
    pub(crate) fn audit_ids(&self) -> &AuditPseudonymizer {
        &self.audit_ids
    }

    /// The subject's pseudonym in the audit log.
    pub fn audit_pseudonym(&self, id: &str) -> String {
        self.audit_ids.pseudonymize(id)
    }

    /// Every entry of the audit log, read without a permission check or an
    /// entry of its own: for the engine's own checks, never released.
    pub(crate) fn audit_entries(&self) -> Result<Vec<crate::audit::AuditEntry>, EngineError> {
        let log = self.audit.lock().map_err(|_| AuditError::Poisoned)?;
        Ok(log.entries()?)
    }

    /// Seals the audit log: the run's last head record, which lets the next
    /// open detect entries cut off the end (see
    /// [`AuditLog::seal`](crate::audit::AuditLog::seal)). Dropping the
    /// engine seals too, ignoring errors; call this where the engine is
    /// not dropped or errors must be seen.
    pub fn seal_audit(&self) -> Result<(), EngineError> {
        let mut log = self.audit.lock().map_err(|_| AuditError::Poisoned)?;
        log.seal()?;
        Ok(())
    }

    /// Number of entries in the audit log.
    pub fn audit_len(&self) -> u64 {
        self.audit.lock().map_or(0, |l| l.len())
    }

    /// The audit log's size and Merkle root, for a shard's partial result
    /// to commit to (see [`crate::shard`]).
    pub(crate) fn audit_root(&self) -> Result<(u64, crate::audit::Hash), EngineError> {
        let log = self.audit.lock().map_err(|_| AuditError::Poisoned)?;
        Ok((log.len(), log.root()))
    }

    /// Runs `f` on the audit log (for checkpoints, proofs and reading
    /// entries), if the actor may read it. Recorded.
    pub fn with_audit_log<T>(
        &self,
        actor: &Actor,
        f: impl FnOnce(&mut AuditLog) -> T,
    ) -> Result<T, EngineError> {
        self.allow(actor, Permission::ReadAudit, None)?;
        let mut log = self.audit.lock().map_err(|_| AuditError::Poisoned)?;
        log.append(
            self.entry(actor.id(), Operation::AuditRead)
                .with_kind(EntryKind::AuditRead(entry_kind::NoDetails {})),
        )?;
        Ok(f(&mut log))
    }

    /// Number of subjects, erased ones excluded.
    pub fn subject_count(&self) -> usize {
        self.store.live_count()
    }

    /// The row of a subject. A lookup of an unknown id is recorded too
    /// (under `op`, the subject by pseudonym, `outcome: unknown`), so every
    /// lookup leaves a trace; if that record cannot be written the audit
    /// error is returned instead.
    pub(crate) fn row(&self, actor: &Actor, op: Operation, id: &str) -> Result<u32, EngineError> {
        if let Some(row) = self.store.row(id) {
            return Ok(row);
        }
        self.log(
            self.entry(actor.id(), op)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::UnknownSubject {
                    lookup: op,
                    outcome: entry_kind::Outcome::Unknown,
                }),
        )?;
        Err(EngineError::UnknownSubject(id.into()))
    }

    /// Adds a subject. Without a birth date the subject is treated as a
    /// possible minor wherever an age gate applies.
    pub fn add_subject(
        &mut self,
        actor: &Actor,
        id: &str,
        jurisdiction: &str,
        birth_date: Option<Date>,
    ) -> Result<(), EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        check_subject(id, birth_date, self.now().date())?;
        if self.store.row(id).is_some() {
            return Err(EngineError::DuplicateSubject(id.into()));
        }
        let j = self.policy.jurisdiction_id(jurisdiction).ok_or_else(|| {
            EngineError::UnknownJurisdiction {
                subject: id.into(),
                code: jurisdiction.into(),
            }
        })?;
        self.log(
            self.entry(actor.id(), Operation::SubjectAdded)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::SubjectAdded(entry_kind::NoDetails {})),
        )?;
        self.store.add_subjects(&[NewSubject {
            id,
            jurisdiction: j,
            birth_date,
        }])?;
        Ok(())
    }

    /// Sets an attribute value, verified at `verified_at`.
    pub fn set_attribute(
        &mut self,
        actor: &Actor,
        id: &str,
        attr: &str,
        value: Value,
        verified_at: Timestamp,
    ) -> Result<(), EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let row = self.row(actor, Operation::SubjectRectified, id)?;
        let a = self
            .policy
            .attr_id(attr)
            .ok_or_else(|| EngineError::UnknownAttribute(attr.into()))?;
        let code = Store::encode(&self.policy, a, &value)?;
        self.log(
            self.entry(actor.id(), Operation::SubjectRectified)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::AttributeRectified(
                    entry_kind::AttributeRectified {
                        attribute: attr.into(),
                        cleared: false,
                    },
                )),
        )?;
        self.store.set_values(&[ValueWrite {
            row,
            attr: a,
            change: ValueChange::Set {
                code,
                verified: verified_at,
            },
        }])?;
        Ok(())
    }

    /// Sets many attribute values of existing subjects, all or nothing.
    /// The permission and then every update are checked first (known
    /// subject and attribute, a value that fits): if one fails, nothing is
    /// changed and the error names it by its index. Each update is then
    /// recorded in the audit log (an audit failure fails the call before any
    /// value is written; the entries already made stay, as for any call
    /// whose effect then fails), and all are written in one store write (one
    /// transaction in a durable store). Later updates of the same subject
    /// and attribute win.
    pub fn set_values(
        &mut self,
        actor: &Actor,
        updates: &[ValueUpdate<'_>],
    ) -> Result<(), BatchError> {
        self.allow(actor, Permission::Subjects, None)
            .map_err(BatchError::whole)?;
        let mut writes = Vec::with_capacity(updates.len());
        for (i, u) in updates.iter().enumerate() {
            let write = self
                .value_write(actor, u)
                .map_err(|e| BatchError::item(i, e))?;
            writes.push(write);
        }
        for u in updates {
            self.log(
                self.entry(actor.id(), Operation::SubjectRectified)
                    .subject(&self.audit_ids, u.subject)
                    .with_kind(EntryKind::AttributeRectified(
                        entry_kind::AttributeRectified {
                            attribute: u.attribute.into(),
                            cleared: false,
                        },
                    )),
            )
            .map_err(BatchError::whole)?;
        }
        self.store
            .set_values(&writes)
            .map_err(|e| BatchError::whole(e.into()))?;
        Ok(())
    }

    /// Checks one update of [`Engine::set_values`] and makes its write.
    fn value_write(&self, actor: &Actor, u: &ValueUpdate<'_>) -> Result<ValueWrite, EngineError> {
        let row = self.row(actor, Operation::SubjectRectified, u.subject)?;
        let attr = self
            .policy
            .attr_id(u.attribute)
            .ok_or_else(|| EngineError::UnknownAttribute(u.attribute.into()))?;
        let code = Store::encode(&self.policy, attr, &u.value)?;
        Ok(ValueWrite {
            row,
            attr,
            change: ValueChange::Set {
                code,
                verified: u.verified_at,
            },
        })
    }

    /// Removes an attribute value.
    pub fn clear_attribute(
        &mut self,
        actor: &Actor,
        id: &str,
        attr: &str,
    ) -> Result<(), EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let row = self.row(actor, Operation::SubjectRectified, id)?;
        let a = self
            .policy
            .attr_id(attr)
            .ok_or_else(|| EngineError::UnknownAttribute(attr.into()))?;
        self.log(
            self.entry(actor.id(), Operation::SubjectRectified)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::AttributeRectified(
                    entry_kind::AttributeRectified {
                        attribute: attr.into(),
                        cleared: true,
                    },
                )),
        )?;
        self.store.set_values(&[ValueWrite {
            row,
            attr: a,
            change: ValueChange::Clear,
        }])?;
        Ok(())
    }

    /// A subject's attribute value and when it was verified.
    pub fn attribute(
        &self,
        actor: &Actor,
        id: &str,
        attr: &str,
    ) -> Result<Option<(Value, Timestamp)>, EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let row = self.row(actor, Operation::SubjectAccessed, id)?;
        let a = self
            .policy
            .attr_id(attr)
            .ok_or_else(|| EngineError::UnknownAttribute(attr.into()))?;
        self.log(
            self.entry(actor.id(), Operation::SubjectAccessed)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::AttributeRead(entry_kind::AttributeRead {
                    attribute: attr.into(),
                })),
        )?;
        Ok(self.store.get(row, a).map(|(code, v)| {
            (
                Store::decode(&self.policy, a, code),
                Timestamp::from_unix(v),
            )
        }))
    }

    /// Records a consent or other subject event. It takes effect by its own
    /// time, for every evaluation at or after that time, as soon as this
    /// call returns.
    pub fn record(&mut self, actor: &Actor, event: &ConsentEvent) -> Result<(), EngineError> {
        self.allow(actor, Permission::Subjects, event.purpose.as_deref())?;
        let row = self.row(actor, Operation::EventRecorded, &event.subject)?;
        let facts = self.store.facts(row);
        let ctx = EventContext {
            jurisdiction: facts.jurisdiction,
            birth_date: facts.birth_date,
            // The recording instant, from the host clock.
            now: self.now(),
        };
        let (rec, proof) = self.store.check_event(event, &ctx)?;
        let mut entry = self
            .entry(actor.id(), Operation::EventRecorded)
            .subject(&self.audit_ids, &event.subject)
            .with_kind(EntryKind::EventRecorded(entry_kind::EventRecorded {
                kind: event.kind.as_str().into(),
                at: event.at.to_string(),
            }));
        if let Some(p) = &event.purpose {
            entry = entry.purpose(p.as_str());
        }
        self.log(entry)?;
        self.store.append_events(vec![(row, rec, proof)])?;
        Ok(())
    }

    /// A subject's event history, in effect order.
    pub fn history(&self, actor: &Actor, id: &str) -> Result<Vec<ConsentEvent>, EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let row = self.row(actor, Operation::SubjectAccessed, id)?;
        self.log(
            self.entry(actor.id(), Operation::SubjectAccessed)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::HistoryRead(entry_kind::HistoryRead {
                    history: entry_kind::True,
                })),
        )?;
        Ok(self
            .store
            .history(row)
            .iter()
            .map(|r| {
                event_of_record(
                    &self.policy,
                    id,
                    r,
                    self.store.proof(r),
                    self.store.strings(),
                )
            })
            .collect())
    }

    /// Is a subject eligible for a purpose now (for a segment reading no
    /// special or sensitive data)? Always as of the host clock: a past
    /// instant would tell who has since withdrawn or objected.
    pub fn eligibility(
        &self,
        actor: &Actor,
        id: &str,
        purpose: &str,
    ) -> Result<Eligibility, EngineError> {
        let at = self.now();
        self.allow(actor, Permission::Explain(purpose), Some(purpose))?;
        let row = self.row(actor, Operation::SubjectExplained, id)?;
        let p = self
            .policy
            .purpose_id(purpose)
            .ok_or_else(|| EngineError::UnknownPurpose(purpose.into()))?;
        self.log(
            self.entry(actor.id(), Operation::SubjectExplained)
                .purpose(purpose)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::EligibilityExplained(
                    entry_kind::EligibilityExplained { at: at.to_string() },
                )),
        )?;
        Ok(eligibility(
            &self.policy,
            &self.store.facts(row),
            p,
            at,
            DataUse::default(),
        ))
    }

    /// Parses and validates a segment's text form against the policy. The
    /// outcome (validated, or refused with its rule) is recorded.
    pub fn compile(&self, actor: &Actor, text: &str) -> Result<CheckedSegment, SegmentError> {
        let out = segment::parse(text).and_then(|seg| segment::validate(&self.policy, &seg, text));
        self.log_validation(actor, &out);
        out
    }

    /// Validates a parsed segment (from text or JSON) against the policy.
    pub fn validate(&self, actor: &Actor, seg: &Segment) -> Result<CheckedSegment, SegmentError> {
        let out = segment::validate(&self.policy, seg, "");
        self.log_validation(actor, &out);
        out
    }

    /// Validation reads no personal data, so its audit entry is best effort:
    /// a failure to write it does not change the outcome.
    fn log_validation(&self, actor: &Actor, out: &Result<CheckedSegment, SegmentError>) {
        let entry = match out {
            Ok(seg) => self
                .entry(actor.id(), Operation::SegmentValidated)
                .purpose(seg.purpose_key())
                .with_kind(EntryKind::SegmentValidated(entry_kind::SegmentValidated {
                    segment: seg.name().into(),
                })),
            Err(e) => {
                // The message, snippet and caret quote the segment's text,
                // whose literals may be personal data: only the stage, the
                // rule, the purpose and the position are recorded.
                let mut entry = self.entry(actor.id(), Operation::SegmentRefused).with_kind(
                    EntryKind::SegmentRefused(entry_kind::SegmentRefused {
                        stage: format!("{:?}", e.stage()).to_lowercase(),
                        line: e.line() as u64,
                        column: e.column() as u64,
                        rule: e.rule().map(|r| r.to_string()),
                    }),
                );
                if let Some(p) = e.purpose() {
                    entry = entry.purpose(p);
                }
                entry
            }
        };
        let _ = self.log(entry);
    }

    fn check_version(&self, seg: &CheckedSegment) -> Result<(), EngineError> {
        if seg.policy_version() != self.policy.version() {
            return Err(EngineError::PolicyMismatch {
                segment: seg.name().into(),
                segment_version: seg.policy_version(),
                engine_version: self.policy.version(),
            });
        }
        Ok(())
    }

    /// Evaluates a segment: its predicate, with relative times read against
    /// `reference`, AND the purpose's eligibility as of the host clock's
    /// now (never as of `reference`: a past reference time cannot bring
    /// back someone who has withdrawn or objected since). Needs the
    /// `member_ids` permission for the segment's purpose; counts alone go
    /// through [`Engine::count`]; ids through [`Engine::member_ids`].
    pub fn evaluate(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        reference: Timestamp,
    ) -> Result<Members, EngineError> {
        self.allow_members(actor, seg)?;
        let members = self.evaluate_ungated(seg, reference)?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::SegmentEvaluated(entry_kind::SegmentEvaluated {
                run: SegmentRun::new(seg.name(), reference),
                members: members.count(),
                evaluator: None,
            }),
        ))?;
        Ok(members)
    }

    /// Releases the ids of a result's members, in the order subjects were
    /// added. The gate is applied again at this instant: the result must
    /// come from this engine and this policy version, the actor must hold
    /// `member_ids` for its purpose now, and members who are no longer
    /// eligible as of the host clock's now (a withdrawal, an objection, an
    /// erasure since the evaluation) are left out. Recorded before release.
    pub fn member_ids(&self, actor: &Actor, members: &Members) -> Result<Vec<String>, EngineError> {
        let rows = self.release_rows(actor, members, 0, usize::MAX)?;
        Ok(rows
            .into_iter()
            .map(|r| self.store.id(r).to_string())
            .collect())
    }

    /// The gate of [`Engine::member_ids`] for at most `limit` member rows
    /// at or after row `from` (the C ABI's cursor reads one at a time).
    pub(crate) fn release_rows(
        &self,
        actor: &Actor,
        members: &Members,
        from: u32,
        limit: usize,
    ) -> Result<Vec<u32>, EngineError> {
        if !members.made_by(self) {
            return Err(EngineError::ForeignResult);
        }
        self.allow(
            actor,
            Permission::MemberIds(&members.purpose),
            Some(&members.purpose),
        )?;
        if members.version != self.policy.version() {
            return Err(EngineError::PolicyMismatch {
                segment: members.segment.clone(),
                segment_version: members.version,
                engine_version: self.policy.version(),
            });
        }
        let now = self.now();
        let rows: Vec<u32> = self.with_mask(members.purpose_id, members.uses, now, |mask, _| {
            members
                .rows()
                .skip_while(|&r| r < from)
                .filter(|&r| mask.get(r as usize).is_some_and(|b| *b))
                .take(limit)
                .collect()
        });
        self.log(
            self.entry(actor.id(), Operation::SegmentEvaluated)
                .purpose(&members.purpose)
                .with_kind(EntryKind::MemberIdsReleased(
                    entry_kind::MemberIdsReleased {
                        segment: members.segment.clone(),
                        at: None,
                        released_ids: rows.len() as u64,
                        sharded: None,
                    },
                )),
        )?;
        Ok(rows)
    }

    /// Evaluates a segment with the plain row-at-a-time reference evaluator
    /// (every subject through [`crate::consent::eligibility`] and the plain
    /// predicate). Slow; the same gate and record as [`Engine::evaluate`].
    /// It exists so that hosts and tests can check the fast path.
    #[doc(hidden)]
    pub fn evaluate_reference(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        reference: Timestamp,
    ) -> Result<Members, EngineError> {
        self.allow_members(actor, seg)?;
        let now = self.now();
        let bits = eval::reference(&self.policy, &self.store, &seg.anchored(reference), now);
        let count = kernels::count(bits.as_raw_slice());
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::SegmentEvaluated(entry_kind::SegmentEvaluated {
                run: SegmentRun::new(seg.name(), reference),
                members: count,
                evaluator: Some(entry_kind::Evaluator::Reference),
            }),
        ))?;
        Ok(self.members(seg, now, reference, bits, count))
    }

    fn members(
        &self,
        seg: &CheckedSegment,
        at: Timestamp,
        reference: Timestamp,
        bits: Bits,
        count: u64,
    ) -> Members {
        Members {
            engine: self.instance,
            segment: seg.name().into(),
            purpose: seg.purpose_key().into(),
            purpose_id: seg.purpose(),
            uses: seg.data_use(),
            version: seg.policy_version(),
            at,
            reference,
            bits,
            count,
        }
    }

    /// The reference evaluator on the given rows only (positions as
    /// [`Members::rows`] gives them): whether each is a member. For checking
    /// and timing the fast path on engines too large to run the reference
    /// on every row. Gated and recorded like [`Engine::evaluate`].
    #[doc(hidden)]
    pub fn evaluate_reference_rows(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        reference: Timestamp,
        rows: &[u32],
    ) -> Result<Vec<bool>, EngineError> {
        self.allow_members(actor, seg)?;
        let at = self.now();
        let anchored = seg.anchored(reference);
        let seg = &anchored;
        if let Some(&r) = rows.iter().find(|&&r| r as usize >= self.store.len()) {
            return Err(EngineError::UnknownSubject(format!("row {r}")));
        }
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::RowsEvaluated(entry_kind::RowsEvaluated {
                run: SegmentRun::new(seg.name(), reference),
                evaluator: entry_kind::Evaluator::Reference,
                rows: rows.len() as u64,
            }),
        ))?;
        Ok(rows
            .iter()
            .map(|&r| {
                eligibility(
                    &self.policy,
                    &self.store.facts(r),
                    seg.purpose(),
                    at,
                    seg.data_use(),
                )
                .is_allowed()
                    && eval::matches_row(
                        &self.policy,
                        &self.store,
                        seg.purpose(),
                        seg.expr(),
                        r,
                        at,
                    )
            })
            .collect())
    }

    /// Rows in the store, erased ones included (row positions run from 0
    /// to this).
    #[doc(hidden)]
    pub fn row_count(&self) -> usize {
        self.store.len()
    }

    /// Memory held by the indexes.
    #[doc(hidden)]
    pub fn index_bytes(&self) -> crate::store::IndexBytes {
        self.store.index_bytes()
    }
    /// Bytes held by the subject table, by component (ids, values,
    /// indexes, histories, cached masks).
    pub fn memory_bytes(&self) -> crate::store::MemoryBytes {
        self.store.memory_bytes()
    }

    /// What [`Engine::evaluate`] computes, without its permission check and
    /// its audit entry: for the engine's own outputs (counts, exports,
    /// audits), each of which checks its own permission and writes its own
    /// entry before it releases anything. The predicate as of `reference`,
    /// eligibility and staleness as of the host clock's now; the segment's
    /// policy version is still checked.
    pub(crate) fn evaluate_ungated(
        &self,
        seg: &CheckedSegment,
        reference: Timestamp,
    ) -> Result<Members, EngineError> {
        self.check_version(seg)?;
        let now = self.now();
        let anchored = seg.anchored(reference);
        let (bits, count) = self.with_mask(seg.purpose(), seg.data_use(), now, |mask, n| {
            eval::evaluate_with_mask(
                &self.policy,
                &self.store,
                &anchored,
                now,
                mask,
                n,
                self.exec,
            )
        })?;
        Ok(self.members(seg, now, reference, bits, count))
    }

    /// Explains whether a subject is in a segment at an instant, and why.
    ///
    /// Eligibility is judged as of the host clock's now. For a subject who
    /// is not eligible, the explanation names only the rule that excludes
    /// them: the predicate is not evaluated, so no value of theirs can be
    /// learnt through it.
    pub fn explain(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        id: &str,
        reference: Timestamp,
    ) -> Result<Explanation, EngineError> {
        let at = reference;
        self.allow(
            actor,
            Permission::Explain(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        self.check_version(seg)?;
        self.row(actor, Operation::SubjectExplained, id)?;
        self.log(
            self.entry(actor.id(), Operation::SubjectExplained)
                .purpose(seg.purpose_key())
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::MembershipExplained(SegmentRun::new(
                    seg.name(),
                    at,
                ))),
        )?;
        self.explain_unlogged(seg, id, at)
    }

    /// The explanation itself, for callers that have checked and recorded.
    pub(crate) fn explain_unlogged(
        &self,
        seg: &CheckedSegment,
        id: &str,
        reference: Timestamp,
    ) -> Result<Explanation, EngineError> {
        self.check_version(seg)?;
        let row = self
            .store
            .row(id)
            .ok_or_else(|| EngineError::UnknownSubject(id.into()))?;
        let now = self.now();
        let elig = eligibility(
            &self.policy,
            &self.store.facts(row),
            seg.purpose(),
            now,
            seg.data_use(),
        );
        let mut failing = Vec::new();
        // The predicate is read only for an eligible subject: for anyone
        // else the rule that excludes them is the whole answer.
        let held = elig.is_allowed().then(|| {
            let anchored = seg.anchored(reference);
            let held = eval::matches_row(
                &self.policy,
                &self.store,
                seg.purpose(),
                anchored.expr(),
                row,
                now,
            );
            if !held {
                self.failing(
                    &seg.ast().predicate,
                    anchored.expr(),
                    seg,
                    row,
                    now,
                    &mut failing,
                );
            }
            held
        });
        Ok(Explanation {
            subject: id.into(),
            segment: seg.name().into(),
            purpose: seg.purpose_key().into(),
            at: now,
            reference,
            member: held == Some(true),
            eligibility: elig,
            predicate_held: held,
            failing_terms: failing,
        })
    }

    /// Collects the terms responsible for a false predicate: the false
    /// operands of an `and`, every operand of an `or`, a `not` whose
    /// operand held, a false term.
    fn failing(
        &self,
        ast: &Expr,
        expr: &CheckedExpr,
        seg: &CheckedSegment,
        row: u32,
        at: Timestamp,
        out: &mut Vec<TermOutcome>,
    ) {
        let holds = |e: &CheckedExpr| {
            eval::matches_row(&self.policy, &self.store, seg.purpose(), e, row, at)
        };
        match (ast, expr) {
            (Expr::And(xs), CheckedExpr::And(ys)) | (Expr::Or(xs), CheckedExpr::Or(ys)) => {
                for (x, y) in xs.iter().zip(ys) {
                    if !holds(y) {
                        self.failing(x, y, seg, row, at, out);
                    }
                }
            }
            _ => out.push(TermOutcome {
                term: ast.to_string(),
                held: false,
            }),
        }
    }

    /// Erases a subject: every value, bit and event is dropped, the id is
    /// forgotten, and the row is never returned again. The id may later be
    /// added again as a new subject.
    pub fn erase(&mut self, actor: &Actor, id: &str) -> Result<(), EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let row = self.row(actor, Operation::SubjectErased, id)?;
        self.log(
            self.entry(actor.id(), Operation::SubjectErased)
                .subject(&self.audit_ids, id)
                .with_kind(EntryKind::SubjectErased(entry_kind::NoDetails {})),
        )?;
        let now = self.now();
        self.store.erase(row, now)?;
        Ok(())
    }

    /// Retention (R17): removes every value past its category's retention
    /// period as of the host clock's now (verified earlier than now minus
    /// the period). Needs the `subjects` permission; recorded (as a
    /// retention purge with the number of values and subjects, and no
    /// subject named) before anything is removed.
    pub fn purge(&mut self, actor: &Actor) -> Result<PurgeSummary, EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let now = self.now();
        let due = self.store.purge_due(now);
        let subjects = {
            let mut rows: Vec<u32> = due.iter().map(|w| w.row).collect();
            rows.dedup();
            rows.len() as u64
        };
        self.log(self.entry(actor.id(), Operation::RetentionPurge).with_kind(
            EntryKind::RetentionPurge(entry_kind::RetentionPurge {
                values: due.len() as u64,
                subjects,
            }),
        ))?;
        self.store.purge(&due, now)?;
        Ok(PurgeSummary {
            values: due.len() as u64,
            subjects,
        })
    }
}

/// What a retention purge removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PurgeSummary {
    /// Values removed.
    pub values: u64,
    /// Subjects that lost at least one value.
    pub subjects: u64,
}

/// One update of a batch for [`Engine::set_values`].
#[derive(Clone, Debug, PartialEq)]
pub struct ValueUpdate<'a> {
    /// Subject id.
    pub subject: &'a str,
    /// Attribute name.
    pub attribute: &'a str,
    /// The value.
    pub value: Value,
    /// When the value was verified.
    pub verified_at: Timestamp,
}

/// Why a batch was refused: what was wrong and, when one item was at fault,
/// its index in the batch.
#[derive(Debug, thiserror::Error)]
#[error("{}{error}", .index.map(|i| format!("item {i}: ")).unwrap_or_default())]
pub struct BatchError {
    /// The index of the item at fault; `None` when the batch as a whole
    /// was refused (a permission, the store).
    pub index: Option<usize>,
    /// What was wrong.
    #[source]
    pub error: EngineError,
}

impl BatchError {
    fn whole(error: EngineError) -> BatchError {
        BatchError { index: None, error }
    }

    fn item(index: usize, error: EngineError) -> BatchError {
        BatchError {
            index: Some(index),
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::PlanNode;
    use crate::policy::*;

    /// The planner folds constants and pushes `not` to the leaves. Plans
    /// never leave the engine (even their shape depends on which operands
    /// are empty), so this is checked inside the crate.
    #[test]
    fn plan_is_simplified() {
        let (e, a, t) = small_engine();
        let root = |text: &str| {
            let seg = e.compile(&a, text).unwrap();
            e.with_plan_unreleased(&seg, t, |p| p.root().clone())
                .unwrap()
        };
        // Legitimate interests: all are eligible, so the mask is full and
        // folds away.
        assert_eq!(
            root(r#"segment "a" for analytics where country = "FR" and false"#),
            PlanNode::Const(false)
        );
        assert_eq!(
            root(r#"segment "a" for analytics where country = "FR" or true"#),
            PlanNode::Const(true)
        );
        fn negations_on_leaves_only(n: &PlanNode) -> bool {
            match n {
                PlanNode::And(xs) | PlanNode::Or(xs) => xs.iter().all(negations_on_leaves_only),
                _ => true,
            }
        }
        let r = root(r#"segment "a" for analytics where not (vip = true or country = "US")"#);
        assert!(negations_on_leaves_only(&r));
        let PlanNode::And(xs) = &r else {
            panic!("expected an and: {r:?}")
        };
        assert_eq!(xs.len(), 2, "{r:?}");
    }

    fn small_engine() -> (Engine, Actor, Timestamp) {
        let policy = PolicyBuilder::new("X")
            .category(CategorySpec::new("user.c"))
            .attribute(AttributeSpec::categorical(
                "country",
                "user.c",
                &["US", "FR"],
            ))
            .attribute(AttributeSpec::boolean("vip", "user.c"))
            .purpose(PurposeSpec::new("analytics", LawfulBasis::LegitimateInterests).allow("user"))
            .dp_budget(
                "analytics",
                crate::privacy::dp::Epsilon::new(1, 2).unwrap(),
                crate::privacy::dp::Epsilon::new(1, 1).unwrap(),
            )
            .role(RoleSpec {
                name: "all".into(),
                subjects: true,
                count: vec!["analytics".into()],
                ..RoleSpec::default()
            })
            .build()
            .unwrap();
        let a = Actor::new("t", &["all"]);
        let mut e = Engine::new(Arc::new(policy));
        let t = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        for i in 0..1000 {
            let id = format!("s{i}");
            e.add_subject(&a, &id, "EU", None).unwrap();
            let c = if i < 10 { "US" } else { "FR" };
            e.set_attribute(&a, &id, "country", c.into(), t).unwrap();
            e.set_attribute(&a, &id, "vip", (i % 2 == 0).into(), t)
                .unwrap();
        }
        (e, a, t)
    }

    /// Operand bitsets never leave the engine, so the planner's ordering is
    /// checked here: the most selective operand of an `and` comes first,
    /// whichever order the segment gives.
    #[test]
    fn and_puts_the_most_selective_operand_first() {
        let (e, a, t) = small_engine();
        for text in [
            r#"segment "a" for analytics where vip = true and country = "US""#,
            r#"segment "a" for analytics where country = "US" and vip = true"#,
        ] {
            let seg = e.compile(&a, text).unwrap();
            let first = e.with_plan_unreleased(&seg, t, |p| match p.root() {
                PlanNode::And(xs) => match xs[0] {
                    PlanNode::Bits {
                        operand,
                        negated: false,
                    } => p
                        .operand(operand)
                        .iter()
                        .map(|w| w.count_ones())
                        .sum::<u32>(),
                    _ => panic!("{:?}", p.root()),
                },
                other => panic!("expected an and: {other:?}"),
            });
            assert_eq!(first.unwrap(), 10, "{text}");
        }
    }

    /// A random source that always fails.
    struct BrokenRandom;

    impl crate::privacy::dp::RandomSource for BrokenRandom {
        fn next_u64(&mut self) -> Result<u64, RandomError> {
            Err(RandomError)
        }
    }

    /// A failing random source is reported as such (an internal failure),
    /// and a spent budget as a budget refusal: callers can tell them apart.
    #[test]
    fn random_failure_and_budget_refusal_are_told_apart() {
        use crate::privacy::dp::{BudgetLedger, Epsilon, SplitMix64};
        let (e, a, t) = small_engine();
        let seg = e.compile(&a, r#"segment "a" for analytics"#).unwrap();
        let mut ledger = BudgetLedger::new();
        let eps = Epsilon::new(1, 2).unwrap();
        let err = e
            .dp_count(&a, &seg, t, Some(eps), &mut ledger, &mut BrokenRandom)
            .unwrap_err();
        assert!(matches!(err, EngineError::Random(_)), "{err:?}");
        assert!(err.is_internal());
        // The charge was made before the noise was drawn (the safer
        // reading: a failed draw still spends), so one more query is left.
        e.dp_count(&a, &seg, t, Some(eps), &mut ledger, &mut SplitMix64::new(1))
            .unwrap();
        let err = e
            .dp_count(&a, &seg, t, Some(eps), &mut ledger, &mut SplitMix64::new(1))
            .unwrap_err();
        assert!(
            matches!(err, EngineError::Budget(BudgetError::Exhausted { .. })),
            "{err:?}"
        );
        assert!(!err.is_internal());
    }

    /// An error whose message already includes the inner error does not
    /// also give it as its source, so a printed chain names it once.
    #[test]
    fn wrapped_errors_are_printed_once_in_a_chain() {
        use std::error::Error;
        let inner = AuditError::Io {
            context: "appending".into(),
            error: std::io::Error::other("disk full"),
        };
        let e = EngineError::from(inner);
        assert_eq!(
            e.to_string(),
            "audit log: audit log I/O error while appending: disk full"
        );
        let mut chain = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            chain.push_str(&format!(": {s}"));
            next = s.source();
        }
        assert_eq!(chain.matches("appending").count(), 1, "{chain}");
    }

    /// A failing random source when an in-memory engine draws its audit key
    /// is reported as an internal failure, not a panic.
    #[test]
    fn in_memory_audit_key_failure_is_an_error() {
        let Err(err) = memory_audit_from(|_| Err(RandomError)) else {
            panic!("a failing random source gave a key");
        };
        assert!(matches!(err, EngineError::Random(_)), "{err:?}");
        assert!(err.is_internal());
        let (e, _, _) = small_engine();
        assert!(Engine::try_new(e.policy().clone()).is_ok());
    }

    /// `eval::compile` refuses a mask of another length than the store.
    #[test]
    fn compile_refuses_a_mask_of_the_wrong_length() {
        let (e, a, t) = small_engine();
        let seg = e.compile(&a, r#"segment "a" for analytics"#).unwrap();
        let mask = Bits::repeat(true, e.store().len() - 1);
        let err = eval::compile(e.policy(), e.store(), &seg, t, &mask, 0).unwrap_err();
        assert_eq!(
            err,
            eval::EvalError::MaskLength {
                mask: 999,
                rows: 1000
            }
        );
        let mask = Bits::repeat(true, e.store().len());
        assert!(eval::compile(e.policy(), e.store(), &seg, t, &mask, 1000).is_ok());
    }

    /// `eval::execute_into` refuses a buffer of another length than the
    /// plan, and leaves it untouched.
    #[test]
    fn execute_into_refuses_a_buffer_of_the_wrong_length() {
        let (e, a, t) = small_engine();
        let seg = e.compile(&a, r#"segment "a" for analytics"#).unwrap();
        e.with_plan_unreleased(&seg, t, |plan| {
            let words = plan.words();
            let opts = eval::ExecOptions::default();
            for len in [0, words - 1, words + 1] {
                let mut out = vec![7u64; len];
                let err = eval::execute_into(plan, opts, &mut out).unwrap_err();
                assert_eq!(err, eval::EvalError::OutputLength { out: len, words });
                assert!(out.iter().all(|&w| w == 7));
            }
            let mut out = vec![0u64; words];
            assert_eq!(eval::execute_into(plan, opts, &mut out), Ok(1000));
        })
        .unwrap();
    }

    /// `MaskCache::advance` refuses to move back in time or to follow a
    /// smaller store, and leaves the cache as it was.
    #[test]
    fn mask_cache_refuses_to_move_back() {
        let (e, a, t) = small_engine();
        let seg = e.compile(&a, r#"segment "a" for analytics"#).unwrap();
        let (p, store) = (e.policy(), e.store());
        let mut c = crate::store::MaskCache::build(p, store, seg.purpose(), seg.data_use(), t);
        let before = Timestamp::from_unix(t.unix() - 1);
        let err = c.advance(p, store, before).unwrap_err();
        assert_eq!(
            err,
            eval::EvalError::MaskBackwards {
                cache: t,
                asked: before
            }
        );
        assert_eq!((c.at(), c.count()), (t, 1000));
        let empty = Store::new(p.clone());
        let err = c.advance(p, &empty, t).unwrap_err();
        assert_eq!(
            err,
            eval::EvalError::MaskStore {
                cache: 1000,
                rows: 0
            }
        );
        let later = Timestamp::from_unix(t.unix() + 1);
        c.advance(p, store, later).unwrap();
        assert_eq!(c.at(), later);
    }
}
