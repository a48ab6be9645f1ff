//! Keys for encryption at rest.
//!
//! Every subject gets a random 256-bit data key. It is stored only wrapped
//! (AES-256-GCM) by a key-encryption key the host holds behind a
//! [`KeyProvider`]; a subject key is never derived from the host's key and
//! the subject id. Erasing a subject deletes its wrapped key.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// A key could not be wrapped, unwrapped or drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key: {0}")]
pub struct KeyError(pub String);

/// The host's key-encryption key: wraps and unwraps subject data keys.
pub trait KeyProvider: Send + Sync {
    /// A name for the key (recorded with the store, never the key itself),
    /// so that opening with the wrong key is told apart from damage.
    fn key_id(&self) -> String;
    /// Wraps a data key.
    fn wrap(&self, data_key: &[u8; 32]) -> Result<Vec<u8>, KeyError>;
    /// Unwraps a data key wrapped by [`KeyProvider::wrap`].
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError>;
}

/// A key-encryption key held in memory (from the host's secret store or a
/// key file): AES-256-GCM with a random nonce per wrap.
pub struct StaticKek {
    id: String,
    /// The key bytes; the AES key schedule is made per use (a few hundred
    /// nanoseconds), so no long-lived schedule sits in memory, and memory
    /// checkers follow every byte the cipher reads.
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for StaticKek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticKek")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl StaticKek {
    /// A key-encryption key from 32 bytes; `id` names it.
    pub fn new(id: &str, key: &[u8]) -> Result<StaticKek, KeyError> {
        if key.len() != 32 {
            return Err(KeyError(format!(
                "a key-encryption key is 32 bytes, got {}",
                key.len()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        bytes.copy_from_slice(key);
        UnboundKey::new(&AES_256_GCM, &bytes[..])
            .map_err(|_| KeyError("the key-encryption key was refused".into()))?;
        Ok(StaticKek {
            id: id.into(),
            key: bytes,
        })
    }

    /// Reads a key file: exactly 32 bytes, or 64 hex digits (a trailing
    /// newline allowed). The file name (not its contents) names the key.
    pub fn from_file(path: &std::path::Path) -> Result<StaticKek, KeyError> {
        let bytes = Zeroizing::new(
            std::fs::read(path).map_err(|e| KeyError(format!("{}: {e}", path.display())))?,
        );
        let name = path
            .file_name()
            .map_or_else(|| "key".into(), |n| n.to_string_lossy().into_owned());
        if bytes.len() == 32 {
            return StaticKek::new(&name, &bytes);
        }
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| KeyError(format!("{}: not 32 bytes or 64 hex digits", path.display())))?
            .trim();
        let hex = decode_hex32(text).ok_or_else(|| {
            KeyError(format!("{}: not 32 bytes or 64 hex digits", path.display()))
        })?;
        StaticKek::new(&name, &hex[..])
    }
}

impl KeyProvider for StaticKek {
    fn key_id(&self) -> String {
        self.id.clone()
    }
    fn wrap(&self, data_key: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
        seal(&aead_key(&self.key), b"privseg data key", data_key)
    }
    fn unwrap(&self, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let plain = Zeroizing::new(
            open(&aead_key(&self.key), b"privseg data key", wrapped).ok_or_else(|| {
                KeyError("a data key does not unwrap under this key-encryption key".into())
            })?,
        );
        let mut out = Zeroizing::new([0u8; 32]);
        if plain.len() != 32 {
            return Err(KeyError("a wrapped data key has the wrong length".into()));
        }
        out.copy_from_slice(&plain);
        Ok(out)
    }
}

/// A fresh random data key.
pub(crate) fn random_key() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut k = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut k[..])
        .map_err(|_| KeyError("the system random source failed".into()))?;
    Ok(k)
}

/// An AEAD key from a data key.
pub(crate) fn aead_key(k: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k).expect("32 bytes is an AES-256 key"))
}

/// Encrypts `plain` with `aad` bound: nonce, then ciphertext and tag.
pub(crate) fn seal(key: &LessSafeKey, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError("the system random source failed".into()))?;
    let mut buf = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .map_err(|_| KeyError("encryption failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    Ok(out)
}

/// Decrypts what [`seal`] made under the same `aad`, or `None`.
pub(crate) fn open(key: &LessSafeKey, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (n, c) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(n).ok()?;
    let mut buf = c.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
    Some(plain.to_vec())
}

/// 64 hex digits as 32 bytes.
fn decode_hex32(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let b = text.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, pair) in b.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}
