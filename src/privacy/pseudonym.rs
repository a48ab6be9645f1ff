//! Keyed pseudonyms of subject ids and email addresses.
//!
//! # Construction
//!
//! The host supplies one [`MasterSecret`] (at least 32 bytes, from its own
//! secret store; this crate never generates one silently). For every
//! `(recipient, purpose, version)` a separate 32-byte key is derived with
//! HKDF-SHA-256 (RFC 5869):
//!
//! * salt: the fixed ASCII string `privseg/pseudonym/hkdf-salt/v1`;
//! * input keying material: the master secret;
//! * info: the byte string
//!   `"privseg/pseudonym/v1" || u32be(len(recipient)) || recipient ||
//!   u32be(len(purpose)) || purpose || u32be(version)`,
//!   where `recipient` and `purpose` are their UTF-8 bytes and `u32be` is a
//!   4-byte big-endian integer. Every variable-length field is length-prefixed
//!   so no two different triples share an info string (for example
//!   `("ab", "c")` and `("a", "bc")` differ).
//!
//! A pseudonym is then `HMAC-SHA-256(derived_key, tag || normalised_id)`, where
//! `tag` is one byte naming the [`IdKind`] (`0x01` subject id, `0x02` email)
//! and `normalised_id` is the output of [`normalize`]. Two recipients (or two
//! purposes, or two key versions) therefore get unrelated pseudonyms for the
//! same subject and cannot join their lists without the master secret.
//!
//! # Text format
//!
//! [`Pseudonym::to_hex`] gives the 32-byte tag as 64 lowercase hexadecimal
//! characters. [`Pseudonym`]'s `Display` (and serde form) prefixes the key
//! version: `v{version}:{hex}`, for example `v3:` followed by 64 hex digits.
//! [`Pseudonym::from_str`](std::str::FromStr) parses that prefixed form.
//!
//! # Rotation
//!
//! A [`Keyring`] holds the master secret and the current key version.
//! [`Keyring::rotate`] moves to the next version; older versions stay
//! derivable (down to a retirement floor, see [`Keyring::retire_before`]) so
//! a host can re-link old pseudonyms to new ones with [`Rotation::relink`].
//!
//! # Secrets
//!
//! The master secret and derived raw key bytes are wiped on drop (`zeroize`)
//! and their `Debug` output is redacted. The HMAC key schedule held inside
//! `ring`'s `hmac::Key` (used by [`Pseudonymizer`] for speed) is owned by
//! `ring`, which does not offer wiping; it is equivalent to the derived key
//! for one `(recipient, purpose, version)` only, never to the master secret.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use ring::{hkdf, hmac};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use super::normalize::{IdKind, NormalizeError, NormalizedId, normalize};

/// HKDF salt used for every key derivation (domain separation).
const HKDF_SALT: &[u8] = b"privseg/pseudonym/hkdf-salt/v1";
/// Fixed label at the start of every HKDF info string.
const INFO_LABEL: &[u8] = b"privseg/pseudonym/v1";

/// Length of a pseudonym in bytes (HMAC-SHA-256 output).
pub const PSEUDONYM_LEN: usize = 32;

/// Errors from key handling and pseudonymisation.
///
/// Messages never contain secret bytes or identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PseudonymError {
    /// The master secret is shorter than [`MasterSecret::MIN_LEN`] bytes.
    #[error("master secret is too short: {len} bytes given, at least {min} required")]
    SecretTooShort {
        /// Length supplied.
        len: usize,
        /// Minimum length accepted.
        min: usize,
    },
    /// Recipient id was empty.
    #[error("recipient must not be empty")]
    EmptyRecipient,
    /// Purpose was empty.
    #[error("purpose must not be empty")]
    EmptyPurpose,
    /// A recipient or purpose longer than `u32::MAX` bytes.
    #[error("{field} is too long to encode ({len} bytes)")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// Key version 0 was used; versions start at 1.
    #[error("key version 0 is invalid; versions start at 1")]
    ZeroVersion,
    /// A version newer than the keyring's current version was requested.
    #[error("key version {requested} is newer than the current version {current}")]
    FutureVersion {
        /// Requested version.
        requested: u32,
        /// Current version of the keyring.
        current: u32,
    },
    /// A version below the keyring's retirement floor was requested.
    #[error("key version {requested} is retired (oldest usable version is {oldest})")]
    RetiredVersion {
        /// Requested version.
        requested: u32,
        /// Oldest version still usable.
        oldest: u32,
    },
    /// The retirement floor cannot pass the current version.
    #[error("cannot retire versions before {requested}: current version is {current}")]
    RetireBeyondCurrent {
        /// Requested floor.
        requested: u32,
        /// Current version.
        current: u32,
    },
    /// Rotating would overflow the version counter.
    #[error("key version counter exhausted")]
    VersionOverflow,
    /// The identifier could not be normalised.
    #[error(transparent)]
    Normalize(#[from] NormalizeError),
    /// A pseudonym string was not in the `v{version}:{64 hex}` format.
    #[error("invalid pseudonym text: {reason}")]
    InvalidText {
        /// What is wrong.
        reason: &'static str,
    },
    /// The underlying key derivation failed (not expected with valid input).
    #[error("key derivation failed")]
    Derivation,
}

/// The host's master secret from which all pseudonym keys are derived.
///
/// Wiped from memory on drop; `Debug` prints only its length.
#[derive(Clone)]
pub struct MasterSecret {
    bytes: Zeroizing<Vec<u8>>,
}

impl MasterSecret {
    /// Minimum accepted length in bytes.
    pub const MIN_LEN: usize = 32;

    /// Copies `bytes` into a new master secret. The caller remains responsible
    /// for wiping its own copy (or use [`MasterSecret::from_vec`]).
    ///
    /// # Errors
    /// [`PseudonymError::SecretTooShort`] if fewer than [`Self::MIN_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PseudonymError> {
        Self::check_len(bytes.len())?;
        Ok(Self {
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    /// Takes ownership of `bytes`. They are wiped on drop, and also when the
    /// secret is rejected.
    ///
    /// # Errors
    /// [`PseudonymError::SecretTooShort`] if fewer than [`Self::MIN_LEN`] bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self, PseudonymError> {
        let bytes = Zeroizing::new(bytes);
        Self::check_len(bytes.len())?;
        Ok(Self { bytes })
    }

    /// Length of the secret in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: an accepted secret has at least [`Self::MIN_LEN`] bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    fn check_len(len: usize) -> Result<(), PseudonymError> {
        if len < Self::MIN_LEN {
            Err(PseudonymError::SecretTooShort {
                len,
                min: Self::MIN_LEN,
            })
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterSecret([REDACTED; {} bytes])", self.bytes.len())
    }
}

/// A derived per-(recipient, purpose, version) key in raw form; wiped on drop.
struct DerivedKey([u8; 32]);

impl Drop for DerivedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

struct KeyLen;

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        32
    }
}

fn field_len(field: &'static str, value: &str) -> Result<[u8; 4], PseudonymError> {
    u32::try_from(value.len())
        .map(u32::to_be_bytes)
        .map_err(|_| PseudonymError::FieldTooLong {
            field,
            len: value.len(),
        })
}

/// Builds the HKDF info string documented in the module docs.
///
/// Exposed so hosts and auditors can check the encoding.
///
/// # Errors
/// Empty recipient or purpose, version 0, or a field over `u32::MAX` bytes.
pub fn hkdf_info(recipient: &str, purpose: &str, version: u32) -> Result<Vec<u8>, PseudonymError> {
    if recipient.is_empty() {
        return Err(PseudonymError::EmptyRecipient);
    }
    if purpose.is_empty() {
        return Err(PseudonymError::EmptyPurpose);
    }
    if version == 0 {
        return Err(PseudonymError::ZeroVersion);
    }
    let mut info = Vec::with_capacity(INFO_LABEL.len() + 12 + recipient.len() + purpose.len());
    info.extend_from_slice(INFO_LABEL);
    info.extend_from_slice(&field_len("recipient", recipient)?);
    info.extend_from_slice(recipient.as_bytes());
    info.extend_from_slice(&field_len("purpose", purpose)?);
    info.extend_from_slice(purpose.as_bytes());
    info.extend_from_slice(&version.to_be_bytes());
    Ok(info)
}

fn derive_key(
    master: &MasterSecret,
    recipient: &str,
    purpose: &str,
    version: u32,
) -> Result<DerivedKey, PseudonymError> {
    let info = hkdf_info(recipient, purpose, version)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, HKDF_SALT).extract(&master.bytes);
    let info_parts = [info.as_slice()];
    let okm = prk
        .expand(&info_parts, KeyLen)
        .map_err(|_| PseudonymError::Derivation)?;
    let mut key = DerivedKey([0u8; 32]);
    okm.fill(&mut key.0)
        .map_err(|_| PseudonymError::Derivation)?;
    Ok(key)
}

/// A pseudonym: a 32-byte HMAC tag and the key version that produced it.
///
/// Equality is constant-time in the tag bytes. `Hash` is not constant-time
/// (it is meant for hash maps of pseudonyms, not for checking a guessed
/// value). `Display` and serde use the `v{version}:{64 lowercase hex}` form.
#[derive(Clone, Copy)]
pub struct Pseudonym {
    version: u32,
    bytes: [u8; PSEUDONYM_LEN],
}

impl Pseudonym {
    /// Builds a pseudonym from its parts (for example read from storage).
    pub fn from_parts(version: u32, bytes: [u8; PSEUDONYM_LEN]) -> Self {
        Self { version, bytes }
    }

    /// The key version that produced this pseudonym.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The raw 32-byte tag.
    pub fn as_bytes(&self) -> &[u8; PSEUDONYM_LEN] {
        &self.bytes
    }

    /// The tag as 64 lowercase hex characters, without version prefix.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(PSEUDONYM_LEN * 2);
        self.write_hex(&mut out);
        out
    }

    /// Appends the 64 lowercase hex characters to `out` (no allocation if
    /// `out` has room), for bulk export.
    pub fn write_hex(&self, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.reserve(PSEUDONYM_LEN * 2);
        for b in self.bytes {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0x0f)] as char);
        }
    }

    /// Constant-time comparison of version and tag.
    pub fn ct_eq(&self, other: &Pseudonym) -> bool {
        let same_version = self.version.ct_eq(&other.version);
        let same_bytes = self.bytes.ct_eq(&other.bytes);
        bool::from(same_version & same_bytes)
    }
}

impl PartialEq for Pseudonym {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other)
    }
}

impl Eq for Pseudonym {}

impl Hash for Pseudonym {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.version.hash(state);
        self.bytes.hash(state);
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}:{}", self.version, self.to_hex())
    }
}

impl fmt::Debug for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pseudonym({self})")
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl FromStr for Pseudonym {
    type Err = PseudonymError;

    /// Parses `v{version}:{64 lowercase hex}`; uppercase hex is rejected so
    /// every pseudonym has exactly one text form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix('v').ok_or(PseudonymError::InvalidText {
            reason: "missing 'v' version prefix",
        })?;
        let (ver, hex) = rest.split_once(':').ok_or(PseudonymError::InvalidText {
            reason: "missing ':' after version",
        })?;
        if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit()) || ver.starts_with('0') {
            return Err(PseudonymError::InvalidText {
                reason: "version is not a positive decimal number without leading zeros",
            });
        }
        let version: u32 = ver.parse().map_err(|_| PseudonymError::InvalidText {
            reason: "version does not fit in 32 bits",
        })?;
        let hex = hex.as_bytes();
        if hex.len() != PSEUDONYM_LEN * 2 {
            return Err(PseudonymError::InvalidText {
                reason: "tag is not 64 hex characters",
            });
        }
        let mut bytes = [0u8; PSEUDONYM_LEN];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            match (hex_val(pair[0]), hex_val(pair[1])) {
                (Some(h), Some(l)) => bytes[i] = (h << 4) | l,
                _ => {
                    return Err(PseudonymError::InvalidText {
                        reason: "tag contains characters other than lowercase hex",
                    });
                }
            }
        }
        Ok(Self { version, bytes })
    }
}

impl serde::Serialize for Pseudonym {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Pseudonym {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Computes pseudonyms for one `(recipient, purpose, key version)`.
///
/// ```
/// use privseg::privacy::normalize::IdKind;
/// use privseg::privacy::pseudonym::{MasterSecret, Pseudonymizer};
///
/// let master = MasterSecret::from_bytes(&[7u8; 32]).unwrap();
/// let p = Pseudonymizer::new(&master, "ads-partner", "retargeting", 1).unwrap();
/// let a = p.pseudonymize(IdKind::Email, " Ann@Example.com").unwrap();
/// let b = p.pseudonymize(IdKind::Email, "ann@example.com").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_hex().len(), 64);
/// assert!(a.to_string().starts_with("v1:"));
///
/// let other = Pseudonymizer::new(&master, "analytics", "retargeting", 1).unwrap();
/// assert_ne!(other.pseudonymize(IdKind::Email, "ann@example.com").unwrap(), a);
/// ```
pub struct Pseudonymizer {
    key: hmac::Key,
    recipient: String,
    purpose: String,
    version: u32,
}

impl Pseudonymizer {
    /// Derives the key for `(recipient, purpose, version)` from `master`.
    ///
    /// # Errors
    /// Empty recipient or purpose, or version 0.
    pub fn new(
        master: &MasterSecret,
        recipient: &str,
        purpose: &str,
        version: u32,
    ) -> Result<Self, PseudonymError> {
        let raw = derive_key(master, recipient, purpose, version)?;
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw.0);
        Ok(Self {
            key,
            recipient: recipient.to_owned(),
            purpose: purpose.to_owned(),
            version,
        })
    }

    /// Recipient this pseudonymiser is scoped to.
    pub fn recipient(&self) -> &str {
        &self.recipient
    }

    /// Purpose this pseudonymiser is scoped to.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// Key version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Normalises `raw` as `kind` and pseudonymises it.
    ///
    /// # Errors
    /// [`PseudonymError::Normalize`] if the id is empty or the email invalid.
    pub fn pseudonymize(&self, kind: IdKind, raw: &str) -> Result<Pseudonym, PseudonymError> {
        let id = normalize(kind, raw)?;
        Ok(self.pseudonymize_normalized(&id))
    }

    /// Pseudonymises an already normalised identifier.
    pub fn pseudonymize_normalized(&self, id: &NormalizedId<'_>) -> Pseudonym {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(&[id.kind().tag()]);
        ctx.update(id.as_str().as_bytes());
        let tag = ctx.sign();
        let mut bytes = [0u8; PSEUDONYM_LEN];
        bytes.copy_from_slice(tag.as_ref());
        Pseudonym {
            version: self.version,
            bytes,
        }
    }

    /// Checks in constant time whether `raw` has pseudonym `expected` under
    /// this pseudonymiser (version included).
    ///
    /// # Errors
    /// As for [`Pseudonymizer::pseudonymize`].
    pub fn matches(
        &self,
        kind: IdKind,
        raw: &str,
        expected: &Pseudonym,
    ) -> Result<bool, PseudonymError> {
        Ok(self.pseudonymize(kind, raw)?.ct_eq(expected))
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("recipient", &self.recipient)
            .field("purpose", &self.purpose)
            .field("version", &self.version)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

/// Holds the master secret and the current key version; hands out
/// [`Pseudonymizer`]s for the current and older versions.
///
/// ```
/// use privseg::privacy::normalize::IdKind;
/// use privseg::privacy::pseudonym::{Keyring, MasterSecret};
///
/// let master = MasterSecret::from_vec(vec![42u8; 32]).unwrap();
/// let mut ring = Keyring::new(master, 1).unwrap();
/// let before = ring.current("crm-export", "newsletter").unwrap()
///     .pseudonymize(IdKind::SubjectId, "cust-1").unwrap();
///
/// ring.rotate().unwrap();
/// let rotation = ring.rotation("crm-export", "newsletter", 1).unwrap();
/// let (old, new) = rotation.relink(IdKind::SubjectId, "cust-1").unwrap();
/// assert_eq!(old, before);
/// assert_eq!(new.version(), 2);
/// assert_ne!(old, new);
/// ```
#[derive(Clone)]
pub struct Keyring {
    master: MasterSecret,
    current: u32,
    oldest: u32,
}

impl Keyring {
    /// Creates a keyring whose current version is `current_version` (≥ 1).
    /// All versions from 1 to `current_version` are usable until
    /// [`Keyring::retire_before`] is called.
    ///
    /// # Errors
    /// [`PseudonymError::ZeroVersion`] for version 0.
    pub fn new(master: MasterSecret, current_version: u32) -> Result<Self, PseudonymError> {
        if current_version == 0 {
            return Err(PseudonymError::ZeroVersion);
        }
        Ok(Self {
            master,
            current: current_version,
            oldest: 1,
        })
    }

    /// The current key version.
    pub fn current_version(&self) -> u32 {
        self.current
    }

    /// The oldest key version that can still be used.
    pub fn oldest_version(&self) -> u32 {
        self.oldest
    }

    /// Moves to the next key version and returns it.
    ///
    /// # Errors
    /// [`PseudonymError::VersionOverflow`] at `u32::MAX`.
    pub fn rotate(&mut self) -> Result<u32, PseudonymError> {
        self.current = self
            .current
            .checked_add(1)
            .ok_or(PseudonymError::VersionOverflow)?;
        Ok(self.current)
    }

    /// Refuses to hand out versions older than `version` from now on (once
    /// re-linking is finished). This is a policy guard: the master secret can
    /// still derive old keys, so retiring keys for good means replacing the
    /// master secret.
    ///
    /// # Errors
    /// [`PseudonymError::RetireBeyondCurrent`] if `version` > current.
    pub fn retire_before(&mut self, version: u32) -> Result<(), PseudonymError> {
        if version > self.current {
            return Err(PseudonymError::RetireBeyondCurrent {
                requested: version,
                current: self.current,
            });
        }
        self.oldest = self.oldest.max(version);
        Ok(())
    }

    /// A pseudonymiser for the current version.
    ///
    /// # Errors
    /// Empty recipient or purpose.
    pub fn current(&self, recipient: &str, purpose: &str) -> Result<Pseudonymizer, PseudonymError> {
        Pseudonymizer::new(&self.master, recipient, purpose, self.current)
    }

    /// A pseudonymiser for an explicit version between the oldest usable
    /// version and the current one.
    ///
    /// # Errors
    /// Version 0, newer than current, retired, or empty recipient/purpose.
    pub fn version(
        &self,
        recipient: &str,
        purpose: &str,
        version: u32,
    ) -> Result<Pseudonymizer, PseudonymError> {
        if version == 0 {
            return Err(PseudonymError::ZeroVersion);
        }
        if version > self.current {
            return Err(PseudonymError::FutureVersion {
                requested: version,
                current: self.current,
            });
        }
        if version < self.oldest {
            return Err(PseudonymError::RetiredVersion {
                requested: version,
                oldest: self.oldest,
            });
        }
        Pseudonymizer::new(&self.master, recipient, purpose, version)
    }

    /// Pseudonymisers for `from_version` and the current version, for
    /// re-linking a recipient's old pseudonyms to new ones.
    ///
    /// # Errors
    /// As for [`Keyring::version`].
    pub fn rotation(
        &self,
        recipient: &str,
        purpose: &str,
        from_version: u32,
    ) -> Result<Rotation, PseudonymError> {
        Ok(Rotation {
            old: self.version(recipient, purpose, from_version)?,
            new: self.current(recipient, purpose)?,
        })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("master", &self.master)
            .field("current", &self.current)
            .field("oldest", &self.oldest)
            .finish()
    }
}

/// An old and a new pseudonymiser for the same recipient and purpose.
#[derive(Debug)]
pub struct Rotation {
    old: Pseudonymizer,
    new: Pseudonymizer,
}

impl Rotation {
    /// The pseudonymiser for the old version.
    pub fn old(&self) -> &Pseudonymizer {
        &self.old
    }

    /// The pseudonymiser for the current version.
    pub fn new_version(&self) -> &Pseudonymizer {
        &self.new
    }

    /// `(old pseudonym, new pseudonym)` for one identifier.
    ///
    /// # Errors
    /// As for [`Pseudonymizer::pseudonymize`].
    pub fn relink(
        &self,
        kind: IdKind,
        raw: &str,
    ) -> Result<(Pseudonym, Pseudonym), PseudonymError> {
        let id = normalize(kind, raw)?;
        Ok((
            self.old.pseudonymize_normalized(&id),
            self.new.pseudonymize_normalized(&id),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterSecret {
        MasterSecret::from_bytes(&(0u8..32).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn short_secret_is_rejected_with_lengths() {
        let err = MasterSecret::from_bytes(&[1u8; 31]).unwrap_err();
        assert_eq!(err, PseudonymError::SecretTooShort { len: 31, min: 32 });
        assert!(err.to_string().contains("31"));
        assert!(MasterSecret::from_vec(Vec::new()).is_err());
        assert!(MasterSecret::from_bytes(&[1u8; 32]).is_ok());
    }

    #[test]
    fn info_is_length_prefixed() {
        let a = hkdf_info("ab", "c", 1).unwrap();
        let b = hkdf_info("a", "bc", 1).unwrap();
        assert_ne!(a, b);
        let mut expected = INFO_LABEL.to_vec();
        expected.extend_from_slice(&[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c', 0, 0, 0, 1]);
        assert_eq!(a, expected);
    }

    #[test]
    fn hmac_matches_manual_derivation() {
        // Recompute the documented construction step by step.
        let m = master();
        let p = Pseudonymizer::new(&m, "r", "p", 3).unwrap();
        let raw = derive_key(&m, "r", "p", 3).unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, &raw.0);
        let tag = hmac::sign(&key, b"\x01cust-9");
        let got = p.pseudonymize(IdKind::SubjectId, " cust-9 ").unwrap();
        assert_eq!(got.as_bytes().as_slice(), tag.as_ref());
        assert_eq!(got.version(), 3);
    }

    #[test]
    fn kind_is_domain_separated() {
        let p = Pseudonymizer::new(&master(), "r", "p", 1).unwrap();
        let as_id = p.pseudonymize(IdKind::SubjectId, "a@b.c").unwrap();
        let as_email = p.pseudonymize(IdKind::Email, "a@b.c").unwrap();
        assert_ne!(as_id, as_email);
    }

    #[test]
    fn text_round_trip_and_rejections() {
        let p = Pseudonymizer::new(&master(), "r", "p", 12).unwrap();
        let ps = p.pseudonymize(IdKind::SubjectId, "x").unwrap();
        let text = ps.to_string();
        assert!(text.starts_with("v12:"));
        assert_eq!(text.len(), 4 + 64);
        assert!(
            ps.to_hex()
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_eq!(text.parse::<Pseudonym>().unwrap(), ps);
        let json = serde_json::to_string(&ps).unwrap();
        assert_eq!(serde_json::from_str::<Pseudonym>(&json).unwrap(), ps);
        for bad in [
            String::new(),
            ps.to_hex(),
            format!("v0:{}", ps.to_hex()),
            format!("v012:{}", ps.to_hex()),
            format!("v12:{}", ps.to_hex().to_uppercase()),
            format!("v12:{}", &ps.to_hex()[1..]),
            format!("v99999999999:{}", ps.to_hex()),
        ] {
            assert!(bad.parse::<Pseudonym>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keyring_versions() {
        let mut ring = Keyring::new(master(), 1).unwrap();
        assert!(matches!(
            ring.version("r", "p", 2),
            Err(PseudonymError::FutureVersion { .. })
        ));
        assert_eq!(ring.rotate().unwrap(), 2);
        assert_eq!(ring.current("r", "p").unwrap().version(), 2);
        assert_eq!(ring.version("r", "p", 1).unwrap().version(), 1);
        ring.retire_before(2).unwrap();
        assert!(matches!(
            ring.version("r", "p", 1),
            Err(PseudonymError::RetiredVersion { .. })
        ));
        assert!(ring.retire_before(3).is_err());
        assert!(Keyring::new(master(), 0).is_err());
        let mut top = Keyring::new(master(), u32::MAX).unwrap();
        assert_eq!(top.rotate(), Err(PseudonymError::VersionOverflow));
    }

    #[test]
    fn empty_scope_is_rejected() {
        assert_eq!(
            Pseudonymizer::new(&master(), "", "p", 1).unwrap_err(),
            PseudonymError::EmptyRecipient
        );
        assert_eq!(
            Pseudonymizer::new(&master(), "r", "", 1).unwrap_err(),
            PseudonymError::EmptyPurpose
        );
        assert_eq!(
            Pseudonymizer::new(&master(), "r", "p", 0).unwrap_err(),
            PseudonymError::ZeroVersion
        );
    }
}
