//! Consent events (the proof records of GDPR Art. 7(1)), per-subject
//! histories, and the one function that decides eligibility.
//!
//! Histories are append-only: an event is never changed or removed (only an
//! erasure drops a subject's whole history). Events may arrive in any order;
//! they take effect by their own time, and two events with the same time take
//! effect in arrival order.

mod rules;
pub mod signals;

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use hashbrown::{DefaultHashBuilder, HashTable};

use serde::{Deserialize, Serialize};
use time::Date;

use crate::policy::{JurisdictionId, LawfulBasis, Policy, PurposeId, covers};
use crate::timestamp::Timestamp;
use crate::timestamp::age_on;
pub use rules::*;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The subject consented to a purpose (needs the notice version and hash).
    ConsentGranted,
    /// The subject was asked and said no.
    ConsentRefused,
    /// The subject withdrew a consent (GDPR Art. 7(3)).
    ConsentWithdrawn,
    /// Objection (Art. 21): without a purpose, to all direct marketing; with
    /// one, to that purpose and everything below it (and, if it is
    /// marketing, to all direct marketing).
    Objection,
    /// Restriction of processing (Art. 18).
    Restriction,
    /// The restriction is lifted.
    RestrictionLifted,
    /// CCPA opt-out of sale and sharing.
    OptOutSaleShare,
    /// Opt-in to sale and sharing (needed for minors under the CCPA, and to
    /// undo an earlier opt-out).
    OptInSaleShare,
    /// CCPA request to limit the use of sensitive personal information.
    LimitSensitive,
    /// A Global Privacy Control signal: an opt-out of sale and sharing.
    Gpc,
    /// Email unsubscribe: without a purpose, from every email purpose.
    Unsubscribe,
    /// Record that the email soft opt-in applies (existing customer, similar
    /// products, opt-out offered).
    SoftOptIn,
    /// Consent given by the holder of parental responsibility for a child.
    ParentalConsent,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 13] = [
        EventKind::ConsentGranted,
        EventKind::ConsentRefused,
        EventKind::ConsentWithdrawn,
        EventKind::Objection,
        EventKind::Restriction,
        EventKind::RestrictionLifted,
        EventKind::OptOutSaleShare,
        EventKind::OptInSaleShare,
        EventKind::LimitSensitive,
        EventKind::Gpc,
        EventKind::Unsubscribe,
        EventKind::SoftOptIn,
        EventKind::ParentalConsent,
    ];

    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConsentGranted => "consent_granted",
            EventKind::ConsentRefused => "consent_refused",
            EventKind::ConsentWithdrawn => "consent_withdrawn",
            EventKind::Objection => "objection",
            EventKind::Restriction => "restriction",
            EventKind::RestrictionLifted => "restriction_lifted",
            EventKind::OptOutSaleShare => "opt_out_sale_share",
            EventKind::OptInSaleShare => "opt_in_sale_share",
            EventKind::LimitSensitive => "limit_sensitive",
            EventKind::Gpc => "gpc",
            EventKind::Unsubscribe => "unsubscribe",
            EventKind::SoftOptIn => "soft_opt_in",
            EventKind::ParentalConsent => "parental_consent",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    fn purpose_rule(self) -> PurposeField {
        use EventKind::*;
        match self {
            ConsentGranted | ConsentRefused | ConsentWithdrawn | ParentalConsent | SoftOptIn => {
                PurposeField::Required
            }
            Objection | Unsubscribe => PurposeField::Optional,
            Restriction | RestrictionLifted | OptOutSaleShare | OptInSaleShare | LimitSensitive
            | Gpc => PurposeField::None,
        }
    }

    fn is_grant(self) -> bool {
        matches!(
            self,
            EventKind::ConsentGranted | EventKind::ParentalConsent | EventKind::SoftOptIn
        )
    }
}

enum PurposeField {
    Required,
    Optional,
    None,
}

/// A consent or other subject event as a CRM records it: the proof record.
///
/// The JSON form is one object per event, as in the JSONL event files:
/// `{"subject": "c-1", "kind": "consent_granted", "purpose": "marketing.email",
/// "at": "2026-03-01T10:00:00Z", "notice_version": "v3", "notice_sha256": "<hex>",
/// "channel": "web", "collector": "signup-form"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentEvent {
    /// External subject id.
    pub subject: String,
    /// What happened.
    pub kind: EventKind,
    /// The purpose concerned, where the kind has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// When it happened (UTC).
    pub at: Timestamp,
    /// The notice version the subject was shown (required for grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_version: Option<String>,
    /// SHA-256 of the notice text, 64 hex digits (required for grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice_sha256: Option<String>,
    /// How it was collected (web, app, phone, paper, signal...).
    pub channel: String,
    /// Who or what collected it (form id, agent, CMP).
    pub collector: String,
    /// When a grant stops being valid, if earlier than the purpose's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// An explicit consent (GDPR Art. 9(2)(a)), needed for special categories.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub explicit: bool,
    /// SHA-256 (64 hex digits) of the evidence the event was taken from,
    /// such as the raw consent signal string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_sha256: Option<String>,
}

impl ConsentEvent {
    /// An event with the given kind, purpose and time, channel `api` and
    /// collector `privseg`; set the other fields as needed.
    pub fn new(subject: &str, kind: EventKind, purpose: Option<&str>, at: Timestamp) -> Self {
        ConsentEvent {
            subject: subject.into(),
            kind,
            purpose: purpose.map(Into::into),
            at,
            notice_version: None,
            notice_sha256: None,
            channel: "api".into(),
            collector: "privseg".into(),
            expires_at: None,
            explicit: false,
            evidence_sha256: None,
        }
    }

    /// A consent grant with its notice version and notice hash.
    pub fn grant(
        subject: &str,
        purpose: &str,
        at: Timestamp,
        notice: &str,
        sha256_hex: &str,
    ) -> Self {
        let mut e = Self::new(subject, EventKind::ConsentGranted, Some(purpose), at);
        e.notice_version = Some(notice.into());
        e.notice_sha256 = Some(sha256_hex.into());
        e
    }
}

/// Why an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The purpose is not in the policy.
    #[error("event {kind}: unknown purpose {purpose:?}")]
    UnknownPurpose {
        /// Event kind.
        kind: &'static str,
        /// The purpose given.
        purpose: String,
    },
    /// A field is missing, present where it must not be, or malformed.
    #[error("event {kind}: field {field}: {problem}")]
    Field {
        /// Event kind.
        kind: &'static str,
        /// Field name.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The event is dated later than now plus the allowed clock skew.
    #[error(
        "event {kind}: its time {at} is later than now ({now}) plus the allowed clock skew of {skew_seconds} s; an event cannot be recorded ahead of time"
    )]
    FromTheFuture {
        /// Event kind.
        kind: &'static str,
        /// The event's time.
        at: Timestamp,
        /// The recording instant.
        now: Timestamp,
        /// The policy's `event_clock_skew_seconds`.
        skew_seconds: u64,
    },
    /// A parental consent for a subject who was not below the age gate when
    /// it was given (R9, R12): it would stand in for the subject's own
    /// decisions.
    #[error("{}", parental_message(subject, at, *age, *gate, jurisdiction))]
    ParentalConsentNotMinor {
        /// External subject id.
        subject: String,
        /// When the parental consent was given.
        at: Timestamp,
        /// The subject's age then.
        age: u32,
        /// The jurisdiction's age gate for parental consent, if it has one.
        gate: Option<u32>,
        /// The subject's jurisdiction code.
        jurisdiction: String,
    },
}

fn parental_message(
    subject: &str,
    at: &Timestamp,
    age: u32,
    gate: Option<u32>,
    jurisdiction: &str,
) -> String {
    let why = match gate {
        Some(g) => format!("not below the age gate of {g} in {jurisdiction}"),
        None => format!("and {jurisdiction} has no age gate for parental consent"),
    };
    format!(
        "event parental_consent: subject {subject:?} was {age} at {at}, {why}; only the subject's own decisions count (R9, R12)"
    )
}

/// What checking an event needs to know besides the event and the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventContext {
    /// The subject's resolved jurisdiction.
    pub jurisdiction: JurisdictionId,
    /// The subject's birth date, if known.
    pub birth_date: Option<Date>,
    /// The instant of recording: an event dated later than this plus the
    /// policy's `event_clock_skew_seconds` is refused.
    pub now: Timestamp,
}

/// One event as stored: compact, with the purpose resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRecord {
    /// Time it takes effect (Unix seconds).
    pub at: i64,
    /// Arrival order, unique within an engine.
    pub seq: u64,
    /// Expiry (Unix seconds) set on the event, or `i64::MAX`.
    pub expires_at: i64,
    /// The purpose, if any.
    pub purpose: Option<PurposeId>,
    /// Interned notice version, or `u32::MAX`.
    pub notice: u32,
    /// Index of the proof details in the store's [`ProofTable`] (shared by
    /// every event with the same details).
    pub proof: u32,
    /// Kind.
    pub kind: EventKind,
    /// Explicit consent.
    pub explicit: bool,
}

/// The rest of the proof record: kept aside from the hot fields, in a
/// [`ProofTable`] that holds each distinct one once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Proof {
    /// Interned channel.
    pub channel: u32,
    /// Interned collector.
    pub collector: u32,
    /// SHA-256 of the notice text.
    pub notice_sha256: Option<[u8; 32]>,
    /// SHA-256 of the evidence (a raw consent signal).
    pub evidence_sha256: Option<[u8; 32]>,
}

/// The proof details of events, each distinct [`Proof`] held once: most
/// events share their channel, collector and notice hash with many others,
/// so an event refers to its proof by a `u32` index.
#[derive(Clone, Default)]
pub struct ProofTable {
    proofs: Vec<Proof>,
    /// Indexes into `proofs`, by the hash of the proof under `hasher`.
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for ProofTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProofTable")
            .field("proofs", &self.proofs.len())
            .finish()
    }
}

/// Two tables are equal when they hold the same proofs at the same indexes.
impl PartialEq for ProofTable {
    fn eq(&self, other: &ProofTable) -> bool {
        self.proofs == other.proofs
    }
}

impl Eq for ProofTable {}

impl ProofTable {
    /// A table of these proofs, at these indexes; `None` if one is
    /// repeated (a table never holds a proof twice).
    pub fn from_distinct(proofs: Vec<Proof>) -> Option<ProofTable> {
        let mut t = ProofTable::default();
        t.index.reserve(proofs.len(), |_| 0);
        t.proofs.reserve_exact(proofs.len());
        for p in proofs {
            let n = t.proofs.len() as u32;
            if t.intern(p) != n {
                return None;
            }
        }
        Some(t)
    }

    /// The index of `p`, adding it if new.
    pub fn intern(&mut self, p: Proof) -> u32 {
        let h = self.hasher.hash_one(&p);
        let (proofs, hasher) = (&self.proofs, &self.hasher);
        if let Some(&i) = self.index.find(h, |&j| proofs[j as usize] == p) {
            return i;
        }
        let i = self.proofs.len() as u32;
        self.index
            .insert_unique(h, i, |&j| hasher.hash_one(&proofs[j as usize]));
        self.proofs.push(p);
        i
    }

    /// The proof at an index from [`ProofTable::intern`].
    ///
    /// # Panics
    /// On an index the table never gave.
    pub fn get(&self, i: u32) -> &Proof {
        &self.proofs[i as usize]
    }

    /// Number of distinct proofs held (indexes are `0..len`).
    pub fn len(&self) -> usize {
        self.proofs.len()
    }

    /// No proof held?
    pub fn is_empty(&self) -> bool {
        self.proofs.is_empty()
    }

    /// The proofs, in index order.
    pub fn iter(&self) -> std::slice::Iter<'_, Proof> {
        self.proofs.iter()
    }

    /// Bytes allocated: the proofs and their index.
    pub fn bytes(&self) -> usize {
        self.proofs.capacity() * std::mem::size_of::<Proof>() + self.index.allocation_size()
    }
}

/// Interns strings that repeat across events (notice versions, channels).
#[derive(Clone, Debug, Default)]
pub struct Interner {
    map: HashMap<Arc<str>, u32>,
    strs: Vec<Arc<str>>,
}

impl Interner {
    /// The id of `s`, adding it if new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&id) = self.map.get(s) {
            return id;
        }
        let id = self.strs.len() as u32;
        let a: Arc<str> = Arc::from(s);
        self.strs.push(a.clone());
        self.map.insert(a, id);
        id
    }
    /// Number of strings held (ids are `0..len`).
    pub fn len(&self) -> usize {
        self.strs.len()
    }
    /// No string held?
    pub fn is_empty(&self) -> bool {
        self.strs.is_empty()
    }
    /// The string for an id (empty for an unknown id).
    pub fn get(&self, id: u32) -> &str {
        self.strs.get(id as usize).map_or("", |s| s)
    }
}

fn parse_sha256(
    kind: &'static str,
    field: &'static str,
    hex: &str,
) -> Result<[u8; 32], EventError> {
    let bad = || EventError::Field {
        kind,
        field,
        problem: format!("expected 64 hex digits, got {hex:?}"),
    };
    // Exactly 64 hex digits: `u8::from_str_radix` alone would also take a
    // `+` sign in a byte pair.
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Formats bytes as lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks an event against the policy and the subject it concerns, and
/// turns it into its stored form. `seq` and `proof` are filled in by the
/// store.
///
/// Besides the proof fields (R5), it refuses an event dated later than
/// `ctx.now` plus the policy's clock skew, and a parental consent for a
/// subject who was not below the jurisdiction's age gate when it was given
/// ([`parental_gate`]; a subject of unknown birth date may be below it).
pub fn check_event(
    policy: &Policy,
    e: &ConsentEvent,
    ctx: &EventContext,
    strings: &mut Interner,
) -> Result<(EventRecord, Proof), EventError> {
    check_timing(policy, e, ctx)?;
    let purpose = event_purpose(policy, e)?;
    for (name, value) in [("channel", &e.channel), ("collector", &e.collector)] {
        if value.trim().is_empty() {
            return Err(field_error(
                e,
                name,
                "must not be empty (R5 proof of consent)",
            ));
        }
    }
    let (notice_sha256, notice_version) = check_notice(e)?;
    let expires_at = check_expiry(e)?;
    if e.explicit && !is_consent_like(e.kind) {
        return Err(field_error(
            e,
            "explicit",
            "only consent grants can be explicit",
        ));
    }
    if let Some(p) = purpose {
        check_purpose_allows_kind(policy, p, e)?;
    }
    let evidence_sha256 = match &e.evidence_sha256 {
        Some(h) => Some(parse_sha256(e.kind.as_str(), "evidence_sha256", h)?),
        None => None,
    };
    // Nothing below can fail: strings are interned only for an event that
    // is recorded.
    let notice = notice_version.map_or(u32::MAX, |v| strings.intern(v));
    let proof = Proof {
        channel: strings.intern(e.channel.trim()),
        collector: strings.intern(e.collector.trim()),
        notice_sha256,
        evidence_sha256,
    };
    Ok((
        EventRecord {
            at: e.at.unix(),
            seq: 0,
            expires_at,
            purpose,
            notice,
            proof: 0,
            kind: e.kind,
            explicit: e.explicit,
        },
        proof,
    ))
}

/// A problem with one field of an event.
fn field_error(e: &ConsentEvent, field: &'static str, problem: impl Into<String>) -> EventError {
    EventError::Field {
        kind: e.kind.as_str(),
        field,
        problem: problem.into(),
    }
}

/// A grant of consent, by the subject or a parent: the kinds that need the
/// notice shown (R5) and may be explicit.
fn is_consent_like(kind: EventKind) -> bool {
    matches!(kind, EventKind::ConsentGranted | EventKind::ParentalConsent)
}

/// Refuses an event dated later than `ctx.now` plus the policy's clock
/// skew, and a parental consent for a subject known not to be below the
/// jurisdiction's age gate when it was given.
fn check_timing(policy: &Policy, e: &ConsentEvent, ctx: &EventContext) -> Result<(), EventError> {
    let skew = policy.event_clock_skew_seconds();
    let latest = ctx
        .now
        .unix()
        .saturating_add(i64::try_from(skew).unwrap_or(i64::MAX));
    if e.at.unix() > latest {
        return Err(EventError::FromTheFuture {
            kind: e.kind.as_str(),
            at: e.at,
            now: ctx.now,
            skew_seconds: skew,
        });
    }
    if e.kind == EventKind::ParentalConsent
        && let Some(birth) = ctx.birth_date
    {
        let gate = parental_gate(policy, ctx.jurisdiction);
        let age = age_on(birth, e.at.date());
        if gate.is_none_or(|g| age >= g) {
            return Err(EventError::ParentalConsentNotMinor {
                subject: e.subject.clone(),
                at: e.at,
                age,
                gate,
                jurisdiction: policy.jurisdiction(ctx.jurisdiction).code.clone(),
            });
        }
    }
    Ok(())
}

/// The event's purpose: present exactly when its kind takes one, and one
/// the policy declares.
fn event_purpose(policy: &Policy, e: &ConsentEvent) -> Result<Option<PurposeId>, EventError> {
    match (&e.purpose, e.kind.purpose_rule()) {
        (None, PurposeField::Required) => Err(field_error(
            e,
            "purpose",
            "this kind of event needs a purpose",
        )),
        (Some(p), PurposeField::None) => Err(field_error(
            e,
            "purpose",
            format!(
                "this kind of event applies to every purpose it concerns and takes no purpose (got {p:?})"
            ),
        )),
        (None, _) => Ok(None),
        (Some(p), _) => policy
            .purpose_id(p)
            .map(Some)
            .ok_or_else(|| EventError::UnknownPurpose {
                kind: e.kind.as_str(),
                purpose: p.clone(),
            }),
    }
}

/// The notice's SHA-256 and version: both needed by a grant (R5), the
/// version never empty.
fn check_notice(e: &ConsentEvent) -> Result<(Option<[u8; 32]>, Option<&str>), EventError> {
    let consent_like = is_consent_like(e.kind);
    let sha256 = match &e.notice_sha256 {
        Some(h) => Some(parse_sha256(e.kind.as_str(), "notice_sha256", h)?),
        None if consent_like => {
            return Err(field_error(
                e,
                "notice_sha256",
                "a grant needs the SHA-256 of the notice text (R5)",
            ));
        }
        None => None,
    };
    let version = match &e.notice_version {
        Some(v) if v.trim().is_empty() => {
            return Err(field_error(e, "notice_version", "must not be empty"));
        }
        Some(v) => Some(v.as_str()),
        None if consent_like => {
            return Err(field_error(
                e,
                "notice_version",
                "a grant needs the notice version shown (R5)",
            ));
        }
        None => None,
    };
    Ok((sha256, version))
}

/// When a grant expires (`i64::MAX`: never); only grants expire, and after
/// they are given.
fn check_expiry(e: &ConsentEvent) -> Result<i64, EventError> {
    match e.expires_at {
        Some(_) if !e.kind.is_grant() => Err(field_error(e, "expires_at", "only grants expire")),
        Some(x) if x <= e.at => Err(field_error(
            e,
            "expires_at",
            format!("{x} is not after the event time {}", e.at),
        )),
        Some(x) => Ok(x.unix()),
        None => Ok(i64::MAX),
    }
}

/// A soft opt-in only for a purpose that allows it (R14); an unsubscribe
/// only from an email purpose.
fn check_purpose_allows_kind(
    policy: &Policy,
    purpose: PurposeId,
    e: &ConsentEvent,
) -> Result<(), EventError> {
    let spec = policy.purpose(purpose);
    match e.kind {
        EventKind::SoftOptIn if !spec.email_soft_opt_in => Err(field_error(
            e,
            "purpose",
            format!("the soft opt-in does not apply to {:?} (R14)", spec.key),
        )),
        EventKind::Unsubscribe if !spec.email_channel => Err(field_error(
            e,
            "purpose",
            format!("{:?} is not an email purpose", spec.key),
        )),
        _ => Ok(()),
    }
}

/// Rebuilds the public form of a stored event.
pub fn event_of_record(
    policy: &Policy,
    subject: &str,
    r: &EventRecord,
    proof: &Proof,
    strings: &Interner,
) -> ConsentEvent {
    ConsentEvent {
        subject: subject.into(),
        kind: r.kind,
        purpose: r.purpose.map(|p| policy.purpose(p).key.clone()),
        at: Timestamp::from_unix(r.at),
        notice_version: (r.notice != u32::MAX).then(|| strings.get(r.notice).to_string()),
        notice_sha256: proof.notice_sha256.map(|h| to_hex(&h)),
        channel: strings.get(proof.channel).to_string(),
        collector: strings.get(proof.collector).to_string(),
        expires_at: (r.expires_at != i64::MAX).then(|| Timestamp::from_unix(r.expires_at)),
        explicit: r.explicit,
        evidence_sha256: proof.evidence_sha256.map(|h| to_hex(&h)),
    }
}

/// Inserts a record into a history kept in effect order (time, then arrival).
pub fn insert_in_order(history: &mut Vec<EventRecord>, r: EventRecord) {
    let pos = history.partition_point(|e| (e.at, e.seq) <= (r.at, r.seq));
    history.insert(pos, r);
}

/// Does an objection with this purpose (None: all direct marketing) cover `purpose`?
fn objection_covers(policy: &Policy, objected: Option<PurposeId>, purpose: PurposeId) -> bool {
    let marketing = policy.is_direct_marketing(purpose);
    match objected {
        None => marketing,
        Some(o) => {
            (marketing && policy.is_direct_marketing(o))
                || covers(&policy.purpose(o).key, &policy.purpose(purpose).key)
        }
    }
}

/// Is the purpose consent-based?
fn consent_based(policy: &Policy, p: PurposeId) -> bool {
    policy.purpose(p).basis == LawfulBasis::Consent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyBuilder, PurposeSpec};
    use crate::timestamp::parse_date;

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn policy(skew: Option<u64>) -> Policy {
        let mut b = PolicyBuilder::new("Test Ltd").purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .notice_versions(&["v1"])
                .consent_validity_days(365),
        );
        if let Some(s) = skew {
            b = b.event_clock_skew_seconds(s);
        }
        b.build().unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn ctx(p: &Policy, juris: &str, birth: Option<&str>, now: &str) -> EventContext {
        EventContext {
            jurisdiction: p.jurisdiction_id(juris).unwrap(),
            birth_date: birth.map(|b| parse_date(b).unwrap()),
            now: ts(now),
        }
    }

    fn grant(at: &str) -> ConsentEvent {
        ConsentEvent::grant("c-1", "marketing.email", ts(at), "v1", SHA)
    }

    #[test]
    fn events_later_than_now_plus_the_skew_are_refused() {
        let p = policy(None);
        let c = ctx(&p, "EU-DE", Some("1980-01-01"), "2026-03-01T12:00:00Z");
        let mut s = Interner::default();
        // Default skew: 300 seconds.
        assert!(check_event(&p, &grant("2026-03-01T12:05:00Z"), &c, &mut s).is_ok());
        assert!(check_event(&p, &grant("2020-01-01T00:00:00Z"), &c, &mut s).is_ok());
        let err = check_event(&p, &grant("2026-03-01T12:05:01Z"), &c, &mut s).unwrap_err();
        assert_eq!(
            err,
            EventError::FromTheFuture {
                kind: "consent_granted",
                at: ts("2026-03-01T12:05:01Z"),
                now: ts("2026-03-01T12:00:00Z"),
                skew_seconds: 300,
            }
        );
        let msg = err.to_string();
        for part in ["2026-03-01T12:05:01Z", "2026-03-01T12:00:00Z", "300 s"] {
            assert!(msg.contains(part), "{part:?} missing from {msg}");
        }
        // A policy's own skew, zero included.
        let p = policy(Some(0));
        assert!(check_event(&p, &grant("2026-03-01T12:00:00Z"), &c, &mut s).is_ok());
        assert!(matches!(
            check_event(&p, &grant("2026-03-01T12:00:01Z"), &c, &mut s),
            Err(EventError::FromTheFuture {
                skew_seconds: 0,
                ..
            })
        ));
        let p = policy(Some(3_600));
        assert!(check_event(&p, &grant("2026-03-01T13:00:00Z"), &c, &mut s).is_ok());
        assert!(check_event(&p, &grant("2026-03-01T13:00:01Z"), &c, &mut s).is_err());
        // Every kind of event, not only grants.
        let gpc = ConsentEvent::new("c-1", EventKind::Gpc, None, ts("2027-01-01T00:00:00Z"));
        assert!(matches!(
            check_event(&p, &gpc, &c, &mut s),
            Err(EventError::FromTheFuture { kind: "gpc", .. })
        ));
    }

    #[test]
    fn a_parental_consent_needs_a_subject_below_the_gate_when_given() {
        let p = policy(None);
        let mut s = Interner::default();
        let mut ev = grant("2026-03-01T00:00:00Z");
        ev.kind = EventKind::ParentalConsent;
        let now = "2026-06-01T00:00:00Z";
        // France: gate 15. The 15th birthday is the first day not below it.
        assert!(check_event(&p, &ev, &ctx(&p, "EU-FR", Some("2011-03-02"), now), &mut s).is_ok());
        let err =
            check_event(&p, &ev, &ctx(&p, "EU-FR", Some("2011-03-01"), now), &mut s).unwrap_err();
        assert_eq!(
            err,
            EventError::ParentalConsentNotMinor {
                subject: "c-1".into(),
                at: ts("2026-03-01T00:00:00Z"),
                age: 15,
                gate: Some(15),
                jurisdiction: "EU-FR".into(),
            }
        );
        // Unknown birth date: may be a child, so it is recorded.
        assert!(check_event(&p, &ev, &ctx(&p, "EU-FR", None, now), &mut s).is_ok());
        // California: a parent opts in only under 13.
        assert!(check_event(&p, &ev, &ctx(&p, "US-CA", Some("2013-03-02"), now), &mut s).is_ok());
        assert!(check_event(&p, &ev, &ctx(&p, "US-CA", Some("2013-03-01"), now), &mut s).is_err());
        // Other kinds are not checked against the age.
        let own = grant("2026-03-01T00:00:00Z");
        assert!(check_event(&p, &own, &ctx(&p, "EU-FR", Some("1970-01-01"), now), &mut s).is_ok());
    }

    #[test]
    fn a_jurisdiction_without_an_age_gate_takes_no_parental_consent() {
        let p = PolicyBuilder::new("Test Ltd")
            .jurisdictions(vec![crate::policy::JurisdictionSpec {
                code: "XX".into(),
                regime: crate::policy::Regime::None,
                digital_consent_age: None,
            }])
            .purpose(
                PurposeSpec::new("marketing.email", LawfulBasis::Consent).notice_versions(&["v1"]),
            )
            .build()
            .unwrap();
        let mut ev = grant("2026-03-01T00:00:00Z");
        ev.kind = EventKind::ParentalConsent;
        let err = check_event(
            &p,
            &ev,
            &ctx(&p, "XX", Some("2020-01-01"), "2026-06-01T00:00:00Z"),
            &mut Interner::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("XX has no age gate"), "{err}");
    }

    #[test]
    fn notice_sha256_is_exactly_64_hex_digits() {
        let good = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(parse_sha256("k", "f", good).unwrap()[0], 0x9f);
        assert!(parse_sha256("k", "f", &good.to_uppercase()).is_ok());
        for bad in [
            format!("+f{}", &good[2..]),
            format!("{}+8", &good[..62]),
            format!("{}g8", &good[..62]),
            format!("{}-8", &good[..62]),
            good[..62].to_string(),
            format!("{good}00"),
        ] {
            assert!(parse_sha256("k", "f", &bad).is_err(), "{bad:?} accepted");
        }
    }
}
