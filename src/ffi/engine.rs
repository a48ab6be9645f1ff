//! `privseg_engine`: subjects, attributes, events, evaluation and erasure,
//! each call made by the engine's actor.

use std::ffi::c_char;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use time::Date;

use super::members::{self, privseg_members};
use super::policy::privseg_policy;
use super::prelude::*;
use super::segment::privseg_segment;
use super::{
    FfiError, ffi_status, field, non_null, opt_field, opt_str_arg, privseg_status, privseg_str,
    slice_arg, str_arg, str_list, time_arg, write_out, write_text,
};
use crate::access::Actor;
use crate::consent::{ConsentEvent, EventKind};
use crate::import::{ImportError, ImportItem, SubjectRow};
use crate::store::Value;
use crate::timestamp::parse_date;
use crate::{Engine, ValueUpdate};

/// An engine: one policy, its subjects, its audit log, and the actor every
/// call through this handle is made by (see [`privseg_engine_new`]). It may
/// be used by several threads at once: it locks itself, calls that change
/// it or its actor one at a time, the others (which take a
/// `const privseg_engine *`) together. Only [`privseg_engine_free`] must not
/// race with another call on it.
pub struct privseg_engine {
    _opaque: [u8; 0],
}

/// What a `*mut privseg_engine` points to: the engine and its actor behind
/// one lock, so that a handle shared by threads is safe whatever the host
/// does. Calls that change the engine or its actor take the lock for
/// writing; the others (evaluations, counts, exports, reads of members)
/// take it for reading and run at once. Each call's audit entries are
/// appended under the engine's own audit lock, so none is lost.
#[derive(Debug)]
pub(crate) struct EngineHandle {
    pub(super) state: RwLock<EngineState>,
}

impl EngineHandle {
    /// A new handle for C: the engine, acting as `actor`, boxed; freed by
    /// `privseg_engine_free`.
    pub(super) fn into_raw(engine: Engine, actor: Actor) -> *mut privseg_engine {
        let handle = EngineHandle {
            state: RwLock::new(EngineState { engine, actor }),
        };
        to_box(handle)
    }
}

/// The engine and the actor its calls are made by.
#[derive(Debug)]
pub(crate) struct EngineState {
    pub engine: Engine,
    pub actor: Actor,
}

/// The failure of a call on an engine whose lock a panic poisoned: a
/// change may have stopped half way, so the engine is not used again (the
/// safer reading: never judge eligibility on state that may be partial).
fn poisoned() -> FfiError {
    FfiError::new(
        privseg_status::Panic,
        "an earlier call panicked while changing this engine; it can no longer be used and should be freed",
    )
}

impl Castable for privseg_engine {
    type Rust = EngineHandle;
    const WHAT: &'static str = "engine";
}
impl BoxCastable for privseg_engine {}

/// Locks an engine for a call that does not change it.
///
/// # Safety
/// As for [`handle`].
pub(crate) unsafe fn engine_read<'a>(
    e: *const privseg_engine,
) -> Result<RwLockReadGuard<'a, EngineState>, FfiError> {
    let h = try_ref_from_ptr!(e)?;
    h.state.read().map_err(|_| poisoned())
}

/// Locks an engine for a call that changes it or its actor.
///
/// # Safety
/// As for [`handle`].
pub(super) unsafe fn engine_write<'a>(
    e: *const privseg_engine,
) -> Result<RwLockWriteGuard<'a, EngineState>, FfiError> {
    let h = try_ref_from_ptr!(e)?;
    h.state.write().map_err(|_| poisoned())
}

/// Reads an actor: its id and its role names, each of the form of an id
/// (see `crate::engine::check_actor`).
///
/// # Safety
/// `id` as for [`str_arg`]; `roles` as for [`str_list`].
pub(super) unsafe fn actor_arg(
    id: *const c_char,
    id_len: usize,
    roles: *const privseg_str,
    roles_len: usize,
) -> Result<Actor, FfiError> {
    let id = from_caller!(str_arg(id, id_len, "actor_id"))?;
    let roles = from_caller!(str_list(roles, roles_len, "roles"))?;
    let actor = Actor::new(id, &roles);
    crate::engine::check_actor(&actor)?;
    Ok(actor)
}

/// An engine with no subjects and an in-memory audit log, holding its own
/// reference to the policy. Every call through it is made by the actor
/// `actor_id` with the role names `roles` (`roles_len` of them; NULL when
/// `roles_len` is 0), until [`privseg_engine_set_actor`] changes it.
///
/// The host is responsible for authenticating the actor: the library takes
/// the id and roles as given. The roles are looked up in the policy's
/// `roles` at each call; a role the policy does not define grants nothing
/// (calls then fail with `PRIVSEG_STATUS_ACCESS_DENIED`, naming it).
///
/// An actor id or role name that is empty, longer than
/// `PRIVSEG_MAX_ID_LEN` bytes, or has surrounding whitespace, control (NUL
/// included) or bidirectional formatting characters, or more than 64 roles,
/// gives `PRIVSEG_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `policy` must be a live policy reference; `actor_id` must point to
/// `actor_id_len` readable bytes; `roles` must point to `roles_len`
/// `privseg_str` whose strings are valid (or be NULL when `roles_len` is 0);
/// `engine_out` must point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_new(
    policy: *const privseg_policy,
    actor_id: *const c_char,
    actor_id_len: usize,
    roles: *const privseg_str,
    roles_len: usize,
    engine_out: *mut *mut privseg_engine,
) -> privseg_status {
    ffi_status!({
        let policy = from_caller!(try_clone_arc(policy))?;
        let actor = from_caller!(actor_arg(actor_id, actor_id_len, roles, roles_len))?;
        non_null(engine_out, "engine_out")?;
        let e = EngineHandle::into_raw(Engine::new(policy), actor);
        from_caller!(write_out(engine_out, e))
    })
}

/// Changes the actor every later call through this engine is made by, as
/// for [`privseg_engine_new`]. On failure the actor is unchanged. The host
/// is responsible for authenticating the new actor.
///
/// # Safety
/// `engine` must be a live engine; `actor_id` must
/// point to `actor_id_len` readable bytes; `roles` must point to `roles_len`
/// `privseg_str` whose strings are valid (or be NULL when `roles_len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_set_actor(
    engine: *mut privseg_engine,
    actor_id: *const c_char,
    actor_id_len: usize,
    roles: *const privseg_str,
    roles_len: usize,
) -> privseg_status {
    ffi_status!({
        // The new actor is read before the lock is taken: other threads'
        // calls wait only for the swap.
        let actor = from_caller!(actor_arg(actor_id, actor_id_len, roles, roles_len));
        let mut guard = from_caller!(engine_write(engine))?;
        guard.actor = actor?;
        Ok(())
    })
}

/// Frees an engine; NULL does nothing.
///
/// # Safety
/// `engine` must be NULL or a live engine from this library, not used after
/// this call (members it produced may still be freed, but not read with it).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_free(engine: *mut privseg_engine) {
    super::ffi_value!((), {
        from_caller!(free_box(engine));
    })
}

/// The number of subjects, erased ones excluded.
///
/// # Safety
/// `engine` must be a live engine; `count_out` must point to a writable
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_subject_count(
    engine: *const privseg_engine,
    count_out: *mut usize,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        from_caller!(write_out(count_out, e.engine.subject_count()))
    })
}

fn date_arg(s: Option<&str>) -> Result<Option<Date>, FfiError> {
    s.map(|d| parse_date(d).map_err(|e| FfiError::new(privseg_status::InvalidDate, e.to_string())))
        .transpose()
}

/// Adds a subject: its id, its jurisdiction code (such as `EU-FR` or
/// `US-CA`) and its birth date `YYYY-MM-DD` (NULL with length 0 when
/// unknown: the subject is then treated as a possible minor wherever an age
/// gate applies). Needs the `subjects` permission.
///
/// # Safety
/// `engine` must be a live engine; each string must
/// point to its length in readable bytes (`birth_date` may be NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_add_subject(
    engine: *mut privseg_engine,
    id: *const c_char,
    id_len: usize,
    jurisdiction: *const c_char,
    jurisdiction_len: usize,
    birth_date: *const c_char,
    birth_date_len: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let id = from_caller!(str_arg(id, id_len, "id"))?;
        let j = from_caller!(str_arg(jurisdiction, jurisdiction_len, "jurisdiction"))?;
        let birth = date_arg(from_caller!(opt_str_arg(
            birth_date,
            birth_date_len,
            "birth_date"
        ))?)?;
        Ok(e.engine.add_subject(&e.actor, id, j, birth)?)
    })
}

/// One subject of a batch, for [`privseg_engine_add_subjects`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct privseg_subject {
    /// External id.
    pub id: privseg_str,
    /// Jurisdiction code.
    pub jurisdiction: privseg_str,
    /// Birth date `YYYY-MM-DD`, or a NULL pointer when unknown.
    pub birth_date: privseg_str,
}

/// Turns a refused import into a failure naming the item by its index in
/// the C array (`subjects[i]`, `events[i]`).
fn import_fail(e: ImportError) -> FfiError {
    let array = match e.what {
        ImportItem::Subject => "subjects",
        ImportItem::Event => "events",
        _ => return FfiError::from(*e.error),
    };
    FfiError::from(*e.error).context(&format!("{array}[{}]", e.index))
}

/// Converts a C subject, with no values yet.
///
/// # Safety
/// The strings of `s` must be valid as for `str_arg` (`birth_date` may be
/// NULL).
unsafe fn subject_row(s: &privseg_subject) -> Result<SubjectRow, FfiError> {
    let id = from_caller!(field(s.id, "id"))?;
    let j = from_caller!(field(s.jurisdiction, "jurisdiction"))?;
    let birth = date_arg(from_caller!(opt_field(s.birth_date, "birth_date"))?)?;
    Ok(SubjectRow {
        id: id.into(),
        jurisdiction: j.into(),
        birth_date: birth,
        values: Vec::new(),
    })
}

/// Adds `count` subjects (needing the `subjects` permission), all or nothing: if one item fails (a NULL or
/// non-UTF-8 string, a bad date, an unknown jurisdiction, an id already in
/// the engine or twice in the batch, an id of the wrong form), nothing is
/// added and the last error message names the item (`subjects[i]: ...`).
/// The batch is one entry of the audit log.
///
/// # Safety
/// `engine` must be a live engine; `subjects` must
/// point to `count` `privseg_subject` whose strings are valid (or be NULL when
/// `count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_add_subjects(
    engine: *mut privseg_engine,
    subjects: *const privseg_subject,
    count: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let items = from_caller!(slice_arg(subjects, count, "subjects"))?;
        let rows = read_items(items, "subjects", |s| from_caller!(subject_row(s)))?;
        e.engine.import(&e.actor, &rows, &[]).map_err(import_fail)?;
        Ok(())
    })
}

/// The kind of a `privseg_value`, passed as a `uint32_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privseg_value_kind {
    /// `text`: a categorical value, or an RFC 3339 time for a timestamp
    /// attribute.
    String = 1,
    /// `integer`.
    Integer = 2,
    /// `integer`, 0 for false and 1 for true.
    Boolean = 3,
}

/// An attribute value.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct privseg_value {
    /// A `privseg_value_kind` value.
    pub kind: u32,
    /// The value for `PRIVSEG_VALUE_KIND_INTEGER` and
    /// `PRIVSEG_VALUE_KIND_BOOLEAN`.
    pub integer: i64,
    /// The value for `PRIVSEG_VALUE_KIND_STRING`.
    pub text: privseg_str,
}

/// Converts a C value.
///
/// # Safety
/// `v.text` must be valid as for `str_arg` when the kind is a string.
unsafe fn value_of(v: &privseg_value) -> Result<Value, FfiError> {
    Ok(match v.kind {
        1 => Value::Str(from_caller!(field(v.text, "value text"))?.to_owned()),
        2 => Value::Int(v.integer),
        3 => match v.integer {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            n => {
                return Err(FfiError::arg(format!(
                    "boolean value must be 0 or 1, got {n}"
                )));
            }
        },
        k => return Err(FfiError::arg(format!("unknown value kind {k}"))),
    })
}

/// Sets a subject's attribute value, verified at `verified_at` (Unix
/// seconds). Needs the `subjects` permission.
///
/// # Safety
/// `engine` must be a live engine; each string must
/// point to its length in readable bytes; `value` must point to a
/// `privseg_value` whose text, for a string, is valid likewise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_set_attribute(
    engine: *mut privseg_engine,
    subject: *const c_char,
    subject_len: usize,
    attribute: *const c_char,
    attribute_len: usize,
    value: *const privseg_value,
    verified_at: i64,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let subject = from_caller!(str_arg(subject, subject_len, "subject"))?;
        let attribute = from_caller!(str_arg(attribute, attribute_len, "attribute"))?;
        non_null(value, "value")?;
        let value = from_caller!(value_of(&*value))?;
        Ok(e.engine.set_attribute(
            &e.actor,
            subject,
            attribute,
            value,
            time_arg(verified_at, "verified_at")?,
        )?)
    })
}

/// One attribute update of a batch, for [`privseg_engine_set_attributes`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct privseg_attribute_update {
    /// Subject id.
    pub subject: privseg_str,
    /// Attribute name.
    pub attribute: privseg_str,
    /// The value.
    pub value: privseg_value,
    /// When it was verified (Unix seconds).
    pub verified_at: i64,
}

/// Sets `count` attribute values of existing subjects, all or nothing
/// (`Engine::set_values`): every update is read (strings, value, time), then
/// the actor's permission and every update are checked (known subject and
/// attribute, a value that fits), and if one fails nothing is changed and
/// the last error message names the item (`updates[i]: ...`). Later updates
/// of the same subject and attribute win. Each update is an entry of the
/// audit log; should the log fail (`PRIVSEG_STATUS_AUDIT`), no value is
/// changed. (New subjects are best given
/// with their values to `privseg_engine_import`, which is one step.)
///
/// # Safety
/// `engine` must be a live engine; `updates` must
/// point to `count` `privseg_attribute_update` whose strings are valid (or be
/// NULL when `count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_set_attributes(
    engine: *mut privseg_engine,
    updates: *const privseg_attribute_update,
    count: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let items = from_caller!(slice_arg(updates, count, "updates"))?;
        let batch = read_items(items, "updates", |u| from_caller!(value_update(u)))?;
        let EngineState { engine, actor } = &mut *guard;
        engine.set_values(actor, &batch).map_err(|b| {
            let f = FfiError::from(b.error);
            match b.index {
                Some(i) => f.context(&format!("updates[{i}]")),
                None => f,
            }
        })
    })
}

/// Reads one update of a batch.
///
/// # Safety
/// The strings of `u` must be valid as for `str_arg`.
unsafe fn value_update(u: &privseg_attribute_update) -> Result<ValueUpdate<'_>, FfiError> {
    Ok(ValueUpdate {
        subject: from_caller!(field(u.subject, "subject"))?,
        attribute: from_caller!(field(u.attribute, "attribute"))?,
        value: from_caller!(value_of(&u.value))?,
        verified_at: time_arg(u.verified_at, "verified_at")?,
    })
}

/// Removes a subject's attribute value. Needs the `subjects` permission.
///
/// # Safety
/// `engine` must be a live engine; each string must
/// point to its length in readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_clear_attribute(
    engine: *mut privseg_engine,
    subject: *const c_char,
    subject_len: usize,
    attribute: *const c_char,
    attribute_len: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let subject = from_caller!(str_arg(subject, subject_len, "subject"))?;
        let attribute = from_caller!(str_arg(attribute, attribute_len, "attribute"))?;
        Ok(e.engine.clear_attribute(&e.actor, subject, attribute)?)
    })
}

/// The kind of a consent or subject event, passed as a `uint32_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privseg_event_kind {
    /// Consent to a purpose (needs the notice version and its SHA-256).
    ConsentGranted = 1,
    /// Asked, and said no.
    ConsentRefused = 2,
    /// Consent withdrawn (GDPR Art. 7(3)).
    ConsentWithdrawn = 3,
    /// Objection (Art. 21); without a purpose, to all direct marketing.
    Objection = 4,
    /// Restriction of processing (Art. 18).
    Restriction = 5,
    /// The restriction is lifted.
    RestrictionLifted = 6,
    /// CCPA opt-out of sale and sharing.
    OptOutSaleShare = 7,
    /// Opt-in to sale and sharing.
    OptInSaleShare = 8,
    /// CCPA request to limit the use of sensitive personal information.
    LimitSensitive = 9,
    /// A Global Privacy Control signal.
    Gpc = 10,
    /// Email unsubscribe; without a purpose, from every email purpose.
    Unsubscribe = 11,
    /// The email soft opt-in applies.
    SoftOptIn = 12,
    /// Consent by the holder of parental responsibility.
    ParentalConsent = 13,
}

fn kind_of(v: u32) -> Result<EventKind, FfiError> {
    Ok(match v {
        1 => EventKind::ConsentGranted,
        2 => EventKind::ConsentRefused,
        3 => EventKind::ConsentWithdrawn,
        4 => EventKind::Objection,
        5 => EventKind::Restriction,
        6 => EventKind::RestrictionLifted,
        7 => EventKind::OptOutSaleShare,
        8 => EventKind::OptInSaleShare,
        9 => EventKind::LimitSensitive,
        10 => EventKind::Gpc,
        11 => EventKind::Unsubscribe,
        12 => EventKind::SoftOptIn,
        13 => EventKind::ParentalConsent,
        _ => return Err(FfiError::arg(format!("unknown event kind {v}"))),
    })
}

/// Event flag: an explicit consent (GDPR Art. 9(2)(a)).
pub const PRIVSEG_EVENT_EXPLICIT: u32 = 1;
/// Event flag: `expires_at` is set.
pub const PRIVSEG_EVENT_EXPIRES: u32 = 2;

/// A consent or subject event: the proof record.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct privseg_event {
    /// Subject id.
    pub subject: privseg_str,
    /// A `privseg_event_kind` value.
    pub kind: u32,
    /// The purpose concerned, or a NULL pointer for none.
    pub purpose: privseg_str,
    /// When it happened (Unix seconds).
    pub at: i64,
    /// The notice version shown, or a NULL pointer (required for grants).
    pub notice_version: privseg_str,
    /// SHA-256 of the notice text as 64 hex digits, or a NULL pointer
    /// (required for grants).
    pub notice_sha256: privseg_str,
    /// How it was collected (web, app, ...); a NULL pointer means `api`.
    pub channel: privseg_str,
    /// Who collected it; a NULL pointer means `privseg`.
    pub collector: privseg_str,
    /// When a grant stops being valid (Unix seconds), read only with
    /// `PRIVSEG_EVENT_EXPIRES`.
    pub expires_at: i64,
    /// `PRIVSEG_EVENT_*` flags.
    pub flags: u32,
    /// SHA-256 of the evidence the event was taken from (such as the raw
    /// consent signal string) as 64 hex digits, or a NULL pointer for none.
    pub evidence_sha256: privseg_str,
}

/// Converts a C event.
///
/// # Safety
/// Every string of `ev` must be valid as for `str_arg`, or NULL where
/// optional.
unsafe fn event_of(ev: &privseg_event) -> Result<ConsentEvent, FfiError> {
    let subject = from_caller!(field(ev.subject, "subject"))?;
    let kind = kind_of(ev.kind)?;
    let purpose = from_caller!(opt_field(ev.purpose, "purpose"))?;
    let notice = from_caller!(opt_field(ev.notice_version, "notice_version"))?;
    let sha = from_caller!(opt_field(ev.notice_sha256, "notice_sha256"))?;
    let channel = from_caller!(opt_field(ev.channel, "channel"))?;
    let collector = from_caller!(opt_field(ev.collector, "collector"))?;
    let evidence = from_caller!(opt_field(ev.evidence_sha256, "evidence_sha256"))?;
    if ev.flags & !(PRIVSEG_EVENT_EXPLICIT | PRIVSEG_EVENT_EXPIRES) != 0 {
        return Err(FfiError::arg(format!(
            "unknown event flags {:#x}",
            ev.flags
        )));
    }
    let mut e = ConsentEvent::new(subject, kind, purpose, time_arg(ev.at, "at")?);
    e.notice_version = notice.map(Into::into);
    e.notice_sha256 = sha.map(Into::into);
    e.evidence_sha256 = evidence.map(Into::into);
    if let Some(c) = channel {
        e.channel = c.into();
    }
    if let Some(c) = collector {
        e.collector = c.into();
    }
    if ev.flags & PRIVSEG_EVENT_EXPIRES != 0 {
        e.expires_at = Some(time_arg(ev.expires_at, "expires_at")?);
    }
    e.explicit = ev.flags & PRIVSEG_EVENT_EXPLICIT != 0;
    Ok(e)
}

/// Records a consent or subject event. It takes effect by its own time.
/// Needs the `subjects` permission.
///
/// # Safety
/// `engine` must be a live engine; `event` must
/// point to a `privseg_event` whose strings are valid (or NULL where
/// optional).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_record(
    engine: *mut privseg_engine,
    event: *const privseg_event,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        non_null(event, "event")?;
        let ev = from_caller!(event_of(&*event))?;
        Ok(e.engine.record(&e.actor, &ev)?)
    })
}

/// Records `count` events (needing the `subjects` permission), all or nothing: if one fails (a bad argument, an
/// unknown subject, an event that does not fit the policy), nothing is
/// recorded and the last error message names the item (`events[i]: ...`).
/// The batch is one entry of the audit log.
///
/// # Safety
/// `engine` must be a live engine; `events` must
/// point to `count` `privseg_event` whose strings are valid (or be NULL when
/// `count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_record_batch(
    engine: *mut privseg_engine,
    events: *const privseg_event,
    count: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let items = from_caller!(slice_arg(events, count, "events"))?;
        let batch = read_items(items, "events", |item| from_caller!(event_of(item)))?;
        e.engine
            .import(&e.actor, &[], &batch)
            .map_err(import_fail)?;
        Ok(())
    })
}

/// Imports new subjects with their attribute values, and events (of these
/// subjects or of subjects already in the engine), in one call, all or
/// nothing: if any item fails, nothing is changed and the last error message
/// names it (`subjects[i]`, `values[i]`, `events[i]`; a value that does not
/// fit its attribute is reported on its subject). Each value must name a
/// subject of `subjects`. Needs the `subjects` permission; the import is one
/// entry of the audit log. Any array may be NULL when its count is 0.
///
/// # Safety
/// `engine` must be a live engine; `subjects`,
/// `values` and `events` must point to their counts of items whose strings
/// are valid (or be NULL when the count is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_import(
    engine: *mut privseg_engine,
    subjects: *const privseg_subject,
    subject_count: usize,
    values: *const privseg_attribute_update,
    value_count: usize,
    events: *const privseg_event,
    event_count: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let subject_items = from_caller!(slice_arg(subjects, subject_count, "subjects"))?;
        let value_items = from_caller!(slice_arg(values, value_count, "values"))?;
        let event_items = from_caller!(slice_arg(events, event_count, "events"))?;
        let mut rows = read_items(subject_items, "subjects", |s| from_caller!(subject_row(s)))?;
        let mut index = std::collections::HashMap::with_capacity(rows.len());
        for (i, row) in rows.iter().enumerate() {
            index.entry(row.id.clone()).or_insert(i);
        }
        let values = read_items(value_items, "values", |u| {
            let u = from_caller!(value_update(u))?;
            let row = *index.get(u.subject).ok_or_else(|| {
                FfiError::new(
                    privseg_status::UnknownSubject,
                    format!(
                        "subject {:?} is not among the subjects of this import",
                        u.subject
                    ),
                )
            })?;
            Ok((row, u))
        })?;
        for (row, u) in values {
            rows[row]
                .values
                .push((u.attribute.into(), u.value, u.verified_at));
        }
        let batch = read_items(event_items, "events", |item| from_caller!(event_of(item)))?;
        e.engine
            .import(&e.actor, &rows, &batch)
            .map_err(import_fail)?;
        Ok(())
    })
}

/// Records an event given in its JSON form, such as
/// `{"subject": "c-1", "kind": "consent_withdrawn", "purpose":
/// "marketing.email", "at": "2026-03-01T10:00:00Z", "channel": "web",
/// "collector": "prefs-page"}`. JSON that is not an event gives
/// `PRIVSEG_STATUS_INVALID_JSON`. Needs the `subjects` permission.
///
/// # Safety
/// `engine` must be a live engine; `json` must point
/// to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_record_json(
    engine: *mut privseg_engine,
    json: *const c_char,
    len: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let json = from_caller!(str_arg(json, len, "json"))?;
        let ev: ConsentEvent = serde_json::from_str(json).map_err(|err| {
            FfiError::new(privseg_status::InvalidJson, format!("event JSON: {err}"))
        })?;
        Ok(e.engine.record(&e.actor, &ev)?)
    })
}

/// Erases a subject: every value, bit and event is dropped, and the id is
/// free again. Needs the `subjects` permission.
///
/// # Safety
/// `engine` must be a live engine; `id` must point
/// to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_erase(
    engine: *mut privseg_engine,
    id: *const c_char,
    len: usize,
) -> privseg_status {
    ffi_status!({
        let mut guard = from_caller!(engine_write(engine))?;
        let e = &mut *guard;
        let id = from_caller!(str_arg(id, len, "id"))?;
        Ok(e.engine.erase(&e.actor, id)?)
    })
}

/// Evaluates a segment at an instant (Unix seconds; see
/// `privseg_time_parse`): its predicate AND the purpose's eligibility as of
/// that instant. `*members_out` receives the members, to free with
/// `privseg_members_free`. Needs the `member_ids` permission for the
/// segment's purpose (a count alone needs only `count`: see
/// `privseg_engine_count`).
///
/// # Safety
/// `engine` must be a live engine;
/// `segment` a live segment reference; `members_out` must point to a writable
/// pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_evaluate(
    engine: *const privseg_engine,
    segment: *const privseg_segment,
    at: i64,
    members_out: *mut *mut privseg_members,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let s = try_ref_from_ptr!(segment)?;
        non_null(members_out, "members_out")?;
        let m = e.engine.evaluate(&e.actor, s, time_arg(at, "at")?)?;
        from_caller!(write_out(members_out, members::members_out(m)))
    })
}

/// Explains whether a subject is in a segment at an instant, and why, as a
/// JSON object (`subject`, `segment`, `purpose`, `at`, `member`,
/// `eligibility`, `predicate_held`, `failing_terms`) copied into `buf`,
/// following the buffer convention of this API. Needs the `explain`
/// permission for the segment's purpose; each call, also one that ends with
/// `PRIVSEG_STATUS_BUFFER_TOO_SMALL`, is recorded in the audit log.
///
/// # Safety
/// `engine` must be a live engine;
/// `segment` a live segment reference; `id` must point to `id_len` readable
/// bytes; `buf` must be NULL or point to `len` writable bytes; `written` must
/// point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_explain(
    engine: *const privseg_engine,
    segment: *const privseg_segment,
    id: *const c_char,
    id_len: usize,
    at: i64,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let s = try_ref_from_ptr!(segment)?;
        let id = from_caller!(str_arg(id, id_len, "id"))?;
        non_null(written, "written")?;
        let x = e.engine.explain(&e.actor, s, id, time_arg(at, "at")?)?;
        let json = serde_json::to_string(&x)
            .map_err(|err| FfiError::new(privseg_status::EngineOther, err.to_string()))?;
        from_caller!(write_text(json.as_bytes(), buf, len, written))
    })
}
