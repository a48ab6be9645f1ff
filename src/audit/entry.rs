//! Audit entries, their canonical encoding, and subject pseudonymization.

use std::collections::BTreeMap;

use ring::hmac;
use serde::{Deserialize, Serialize};

use super::AuditError;

/// What kind of operation an [`AuditEntry`] records.
///
/// Serialized in `snake_case` (for example `segment_refused`). New variants
/// may be added in later versions, so matches must have a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// A privacy policy was loaded.
    PolicyLoaded,
    /// The active privacy policy was changed.
    PolicyChanged,
    /// A data subject was added.
    SubjectAdded,
    /// An event about a subject was recorded.
    EventRecorded,
    /// A segment definition passed validation.
    SegmentValidated,
    /// A segment definition was refused.
    SegmentRefused,
    /// A segment was evaluated.
    SegmentEvaluated,
    /// A subject's segment membership was explained.
    SubjectExplained,
    /// Data was exported.
    Exported,
    /// An aggregate count was produced.
    Counted,
    /// A subject was erased.
    SubjectErased,
    /// A subject's data was rectified.
    SubjectRectified,
    /// Access was refused.
    AccessRefused,
    /// A report was generated.
    ReportGenerated,
    /// A subject's data or history was read (an access request).
    SubjectAccessed,
    /// The audit log itself was read.
    AuditRead,
    /// Values past their retention period were removed (R17). Logs written
    /// before this variant record a purge as `SubjectRectified` with
    /// `retention_purge: true`; [`EntryKind::of`](super::EntryKind::of)
    /// reads both.
    RetentionPurge,
    /// The key-encryption key was rotated. Logs written before this variant
    /// record it as `SubjectRectified` with `key_rotation: true`.
    KeyRotated,
}

/// One record of the audit log.
///
/// # Never put personal data in an entry
///
/// **Raw subject identifiers and attribute values must never be placed in an
/// entry — not in `subjects`, not in `actor`, not in `purpose`, not in
/// `details`.** The log is append-only and tamper-evident: anything written to
/// it cannot be removed later without breaking verification, so personal data
/// written here would survive an erasure request. Refer to subjects only
/// through pseudonyms produced by an [`AuditPseudonymizer`] (whose key is kept
/// apart from the log), and record in `details` only non-personal facts such
/// as member counts, rule ids or recipient ids.
///
/// # Canonical form
///
/// An entry is hashed into the Merkle tree through its canonical bytes
/// ([`AuditEntry::canonical_bytes`]): its compact JSON serialization, with
/// fields in the declaration order below, `time` as an RFC 3339 UTC string
/// with whole seconds, and `details` keys in sorted order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Position of the entry in the log, starting at 0, without gaps.
    pub seq: u64,
    /// When the operation happened, in Unix seconds (UTC). Serialized as
    /// RFC 3339, for example `2026-01-31T12:00:00Z`.
    #[serde(with = "rfc3339_seconds")]
    pub time: i64,
    /// Who performed the operation (a user, service or role id; not a data
    /// subject's identity).
    pub actor: String,
    /// What was done.
    pub operation: Operation,
    /// The processing purpose the operation was performed for, if any.
    pub purpose: Option<String>,
    /// The version of the privacy policy in force, if any.
    pub policy_version: Option<String>,
    /// Pseudonyms of the subjects concerned (see [`AuditPseudonymizer`]);
    /// never raw identifiers.
    pub subjects: Vec<String>,
    /// Further non-personal facts, such as `member_count`, `rule_id` or
    /// `recipient_id`.
    pub details: BTreeMap<String, serde_json::Value>,
    /// The chain MAC: HMAC-SHA-256, under a key derived from the host's
    /// audit key, over the previous entry's `mac` (32 zero bytes for entry
    /// 0) and this entry's canonical bytes with `mac` set to zeros. Set by
    /// [`AuditLog::append`](super::AuditLog::append); without the key no
    /// entry can be edited, removed, reordered or renumbered unnoticed.
    #[serde(with = "super::hex::serde_hash")]
    pub mac: [u8; 32],
}

impl AuditEntry {
    /// The canonical bytes of this entry, which are what gets stored and
    /// hashed.
    ///
    /// Fails only when `time` is outside the range RFC 3339 can express
    /// (years 0000 to 9999).
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, AuditError> {
        serde_json::to_vec(self).map_err(|e| AuditError::Encoding(e.to_string()))
    }

    /// Decodes an entry from bytes, accepting only its canonical form: the
    /// bytes must be exactly what [`AuditEntry::canonical_bytes`] would
    /// produce for the decoded entry.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<AuditEntry, AuditError> {
        let entry: AuditEntry =
            serde_json::from_slice(bytes).map_err(|e| AuditError::Encoding(e.to_string()))?;
        if entry.canonical_bytes()? != bytes {
            return Err(AuditError::Encoding(
                "entry bytes are not in canonical form".to_owned(),
            ));
        }
        Ok(entry)
    }
}

/// An entry that has not been appended yet: everything but the sequence
/// number, which [`AuditLog::append`](super::AuditLog::append) assigns.
///
/// The same rule as for [`AuditEntry`] applies: **no raw subject ids and no
/// attribute values**. Use [`PendingEntry::subject`] with an
/// [`AuditPseudonymizer`] to add subjects.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingEntry {
    /// When the operation happened, in Unix seconds (UTC), supplied by the
    /// caller.
    pub time: i64,
    /// Who performed the operation.
    pub actor: String,
    /// What was done.
    pub operation: Operation,
    /// The processing purpose, if any.
    pub purpose: Option<String>,
    /// The policy version in force, if any.
    pub policy_version: Option<String>,
    /// Subject pseudonyms.
    pub subjects: Vec<String>,
    /// Further non-personal facts.
    pub details: BTreeMap<String, serde_json::Value>,
}

impl PendingEntry {
    /// Starts an entry with no purpose, policy version, subjects or details.
    pub fn new(time: i64, actor: impl Into<String>, operation: Operation) -> Self {
        PendingEntry {
            time,
            actor: actor.into(),
            operation,
            purpose: None,
            policy_version: None,
            subjects: Vec::new(),
            details: BTreeMap::new(),
        }
    }

    /// Sets the processing purpose.
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }

    /// Sets the policy version.
    pub fn policy_version(mut self, version: impl Into<String>) -> Self {
        self.policy_version = Some(version.into());
        self
    }

    /// Adds a subject, given its raw id, by storing only its pseudonym.
    /// The raw id itself is not kept.
    pub fn subject(mut self, pseudonymizer: &AuditPseudonymizer, raw_subject_id: &str) -> Self {
        self.subjects
            .push(pseudonymizer.pseudonymize(raw_subject_id));
        self
    }

    /// Adds a subject that is already a pseudonym (for example one produced
    /// earlier by [`AuditPseudonymizer::pseudonymize`]).
    pub fn pseudonymous_subject(mut self, pseudonym: impl Into<String>) -> Self {
        self.subjects.push(pseudonym.into());
        self
    }

    /// Sets the operation and details of an entry of `kind` (the typed way
    /// to build an entry; see [`EntryKind`](super::EntryKind)).
    pub fn with_kind(mut self, kind: super::EntryKind) -> Self {
        self.operation = kind.operation();
        self.details.extend(kind.to_details());
        self
    }

    /// Adds a detail. Must not carry personal data.
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Turns this into an entry with the given sequence number.
    pub fn with_seq(self, seq: u64) -> AuditEntry {
        AuditEntry {
            seq,
            time: self.time,
            actor: self.actor,
            operation: self.operation,
            purpose: self.purpose,
            policy_version: self.policy_version,
            subjects: self.subjects,
            details: self.details,
            mac: [0u8; 32],
        }
    }
}

/// Maps raw subject ids to stable pseudonyms for the audit log:
/// `hex(HMAC-SHA-256(key, raw_id))`.
///
/// The key must be used for the audit log only and kept by the host apart
/// from the log. The log then holds no personal data by itself: after a
/// subject is erased, entries about them stay in place (so the log never has
/// to be rewritten and its hashes stay valid), and a pseudonym can be linked
/// back to a person only by someone holding both the key and the raw id.
///
/// ```
/// use privseg::audit::AuditPseudonymizer;
///
/// let p = AuditPseudonymizer::new(b"an audit-only key of 32+ bytes!!").unwrap();
/// let a = p.pseudonymize("customer-42");
/// assert_eq!(a.len(), 64);
/// assert_eq!(a, p.pseudonymize("customer-42"));
/// assert!(!a.contains("customer-42"));
/// ```
pub struct AuditPseudonymizer {
    key: hmac::Key,
    digest: hmac::Key,
}

impl AuditPseudonymizer {
    /// Shortest key accepted, in bytes. 32 bytes of random data are
    /// recommended.
    pub const MIN_KEY_LEN: usize = 16;

    /// Creates a pseudonymizer from an audit-only secret key.
    ///
    /// Returns [`AuditError::InvalidKey`] when the key is shorter than
    /// [`Self::MIN_KEY_LEN`].
    pub fn new(key: &[u8]) -> Result<Self, AuditError> {
        if key.len() < Self::MIN_KEY_LEN {
            return Err(AuditError::InvalidKey(format!(
                "pseudonymization key must be at least {} bytes, got {}",
                Self::MIN_KEY_LEN,
                key.len()
            )));
        }
        Ok(AuditPseudonymizer {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            digest: super::chain::derive(key, super::chain::DIGEST_LABEL)?,
        })
    }

    /// A keyed digest (HMAC-SHA-256 under a key derived from the audit key
    /// with its own label) for recording that some identifiers were
    /// processed without the log revealing them: unlike a plain hash, it
    /// cannot be reversed by hashing guessed ids.
    pub fn digest(&self) -> AuditDigest {
        AuditDigest {
            ctx: hmac::Context::with_key(&self.digest),
            buf: Vec::with_capacity(DIGEST_BUFFER),
        }
    }

    /// The pseudonym of `raw_subject_id`: 64 lowercase hex digits.
    pub fn pseudonymize(&self, raw_subject_id: &str) -> String {
        let tag = hmac::sign(&self.key, raw_subject_id.as_bytes());
        super::hex::encode(tag.as_ref())
    }
}

/// An incremental keyed digest from [`AuditPseudonymizer::digest`].
pub struct AuditDigest {
    ctx: hmac::Context,
    /// Bytes not yet hashed: callers add a field at a time (a few bytes
    /// each, millions of times for a large import), and hashing them in
    /// blocks of this buffer's size costs a fraction of a call per field.
    buf: Vec<u8>,
}

/// Bytes an [`AuditDigest`] gathers before hashing them.
const DIGEST_BUFFER: usize = 16 << 10;

impl AuditDigest {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        if self.buf.len() + bytes.len() > DIGEST_BUFFER {
            self.ctx.update(&self.buf);
            self.buf.clear();
            if bytes.len() >= DIGEST_BUFFER {
                self.ctx.update(bytes);
                return;
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The digest: 64 lowercase hex digits.
    pub fn finish(mut self) -> String {
        self.ctx.update(&self.buf);
        super::hex::encode(self.ctx.sign().as_ref())
    }
}

impl std::fmt::Debug for AuditDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditDigest { .. }")
    }
}

impl std::fmt::Debug for AuditPseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditPseudonymizer { key: <redacted> }")
    }
}

/// Serde helpers for Unix seconds stored as RFC 3339 strings.
pub(crate) mod rfc3339_seconds {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::Error as _};
    use time::{OffsetDateTime, format_description::well_known::Rfc3339};

    pub(crate) fn format(unix: i64) -> Result<String, String> {
        let t = OffsetDateTime::from_unix_timestamp(unix).map_err(|e| e.to_string())?;
        t.format(&Rfc3339).map_err(|e| e.to_string())
    }

    pub(crate) fn parse(s: &str) -> Result<i64, String> {
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| e.to_string())?;
        Ok(t.unix_timestamp())
    }

    pub(crate) fn serialize<S: Serializer>(unix: &i64, s: S) -> Result<S::Ok, S::Error> {
        let text = format(*unix).map_err(|e| S::Error::custom(format!("time {unix}: {e}")))?;
        s.serialize_str(&text)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let text = String::deserialize(d)?;
        parse(&text).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditEntry {
        PendingEntry::new(1_700_000_000, "svc", Operation::SegmentEvaluated)
            .purpose("marketing")
            .policy_version("v3")
            .pseudonymous_subject("ab")
            .detail("member_count", 12)
            .detail("a_rule", "r-1")
            .with_seq(7)
    }

    #[test]
    fn canonical_bytes_have_fixed_layout() {
        let bytes = sample().canonical_bytes().unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"seq":7,"time":"2023-11-14T22:13:20Z","actor":"svc","operation":"segment_evaluated","purpose":"marketing","policy_version":"v3","subjects":["ab"],"details":{"a_rule":"r-1","member_count":12},"mac":"0000000000000000000000000000000000000000000000000000000000000000"}"#
        );
    }

    #[test]
    fn canonical_roundtrip_and_rejects_other_forms() {
        let e = sample();
        let bytes = e.canonical_bytes().unwrap();
        assert_eq!(AuditEntry::from_canonical_bytes(&bytes).unwrap(), e);
        // Same content, different offset notation: not canonical.
        let other = String::from_utf8(bytes)
            .unwrap()
            .replace("22:13:20Z", "23:13:20+01:00");
        assert!(AuditEntry::from_canonical_bytes(other.as_bytes()).is_err());
        // Unknown field.
        assert!(AuditEntry::from_canonical_bytes(br#"{"seq":1,"x":2}"#).is_err());
    }

    #[test]
    fn out_of_range_time_is_an_error() {
        let e = PendingEntry::new(i64::MAX, "a", Operation::Counted).with_seq(0);
        assert!(matches!(e.canonical_bytes(), Err(AuditError::Encoding(_))));
    }

    #[test]
    fn pseudonymizer_is_keyed() {
        let a = AuditPseudonymizer::new(&[1u8; 32]).unwrap();
        let b = AuditPseudonymizer::new(&[2u8; 32]).unwrap();
        assert_ne!(a.pseudonymize("x"), b.pseudonymize("x"));
        assert_ne!(a.pseudonymize("x"), a.pseudonymize("y"));
        assert!(AuditPseudonymizer::new(b"short").is_err());
        let digest = |p: &AuditPseudonymizer| {
            let mut d = p.digest();
            d.update(b"x");
            d.finish()
        };
        assert_ne!(digest(&a), digest(&b));
        assert_ne!(digest(&a), a.pseudonymize("x"));
        assert_eq!(format!("{a:?}"), "AuditPseudonymizer { key: <redacted> }");
    }

    #[test]
    fn a_digest_is_the_hmac_of_its_pieces_however_they_are_cut() {
        let key = [7u8; 32];
        let p = AuditPseudonymizer::new(&key).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let mac_key = super::super::chain::derive(&key, super::super::chain::DIGEST_LABEL).unwrap();
        let expected = super::super::hex::encode(hmac::sign(&mac_key, &data).as_ref());
        // Pieces of every size class: below, at and above the buffer.
        for cuts in [
            vec![1usize, 7, 64],
            vec![DIGEST_BUFFER - 1, 1, 2],
            vec![DIGEST_BUFFER, 3],
            vec![3 * DIGEST_BUFFER + 5, 11],
            vec![data.len()],
        ] {
            let mut d = p.digest();
            let (mut at, mut k) = (0, 0);
            while at < data.len() {
                let n = cuts[k % cuts.len()].min(data.len() - at);
                d.update(&data[at..at + n]);
                at += n;
                k += 1;
            }
            assert_eq!(d.finish(), expected, "cut in pieces of {cuts:?}");
        }
        let mut d = p.digest();
        d.update(b"");
        let empty = super::super::hex::encode(hmac::sign(&mac_key, b"").as_ref());
        assert_eq!(d.finish(), empty);
    }
}
