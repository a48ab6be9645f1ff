//! Signed checkpoints (tree heads) and the keys that sign and verify them.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use super::AuditError;
use super::entry::rfc3339_seconds;
use super::merkle::Hash;

/// A signed statement that the log had `tree_size` entries with Merkle root
/// `root_hash` at `time`.
///
/// Serialized as JSON with hex-encoded `root_hash` and `signature` and an
/// RFC 3339 `time`, for example:
///
/// ```text
/// {"tree_size":3,"root_hash":"5f…","time":"2026-01-31T12:00:00Z","signature":"9a…"}
/// ```
///
/// The signature is Ed25519 over [`Checkpoint::signed_message`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Number of entries covered.
    pub tree_size: u64,
    /// Merkle root of the first `tree_size` entries.
    #[serde(with = "super::hex::serde_hash")]
    pub root_hash: Hash,
    /// When the checkpoint was made, in Unix seconds (UTC).
    #[serde(with = "rfc3339_seconds")]
    pub time: i64,
    /// Ed25519 signature over [`Checkpoint::signed_message`].
    #[serde(with = "super::hex::serde_sig")]
    pub signature: [u8; 64],
}

impl Checkpoint {
    /// The exact bytes that are signed: a versioned text block holding the
    /// size, the hex root and the Unix time, one per line.
    pub fn signed_message(tree_size: u64, root_hash: &Hash, time: i64) -> Vec<u8> {
        format!(
            "privseg-audit-checkpoint/v1\n{tree_size}\n{}\n{time}\n",
            super::hex::encode(root_hash)
        )
        .into_bytes()
    }

    /// Creates and signs a checkpoint.
    pub fn sign(
        signer: &CheckpointSigner,
        tree_size: u64,
        root_hash: Hash,
        time: i64,
    ) -> Result<Checkpoint, AuditError> {
        // Refuse times that the JSON form could not carry.
        rfc3339_seconds::format(time)
            .map_err(|e| AuditError::Encoding(format!("checkpoint time {time}: {e}")))?;
        let sig = signer
            .key
            .sign(&Self::signed_message(tree_size, &root_hash, time));
        let mut signature = [0u8; 64];
        signature.copy_from_slice(sig.as_ref());
        Ok(Checkpoint {
            tree_size,
            root_hash,
            time,
            signature,
        })
    }

    /// Checks the signature with `verifier`'s public key.
    pub fn verify_signature(&self, verifier: &CheckpointVerifier) -> Result<(), AuditError> {
        let msg = Self::signed_message(self.tree_size, &self.root_hash, self.time);
        UnparsedPublicKey::new(&ED25519, &verifier.public_key)
            .verify(&msg, &self.signature)
            .map_err(|_| AuditError::BadSignature)
    }

    /// The JSON form of this checkpoint. Fails only if `time` is outside
    /// the RFC 3339 range (never for a checkpoint made by [`Checkpoint::sign`]
    /// or [`Checkpoint::from_json`]).
    pub fn to_json(&self) -> Result<String, AuditError> {
        serde_json::to_string(self).map_err(|e| AuditError::Encoding(format!("checkpoint: {e}")))
    }

    /// Parses the JSON form. Does not check the signature.
    pub fn from_json(json: &str) -> Result<Checkpoint, AuditError> {
        serde_json::from_str(json).map_err(|e| AuditError::Encoding(format!("checkpoint: {e}")))
    }
}

/// The private Ed25519 key that signs checkpoints, supplied by the host.
pub struct CheckpointSigner {
    key: Ed25519KeyPair,
}

impl CheckpointSigner {
    /// Loads a key from a PKCS#8 v1 or v2 document (as produced by
    /// `ring::signature::Ed25519KeyPair::generate_pkcs8` or OpenSSL).
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, AuditError> {
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| AuditError::InvalidKey(format!("Ed25519 PKCS#8: {e}")))?;
        Ok(CheckpointSigner { key })
    }

    /// Derives a key from a 32-byte Ed25519 seed. Keep the seed secret.
    pub fn from_seed(seed: &[u8]) -> Result<Self, AuditError> {
        let key = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|e| AuditError::InvalidKey(format!("Ed25519 seed: {e}")))?;
        Ok(CheckpointSigner { key })
    }

    /// The matching verifier.
    pub fn verifier(&self) -> CheckpointVerifier {
        let mut public_key = [0u8; 32];
        public_key.copy_from_slice(self.key.public_key().as_ref());
        CheckpointVerifier { public_key }
    }
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("public_key", &self.verifier().to_hex())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key that verifies checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointVerifier {
    public_key: [u8; 32],
}

impl CheckpointVerifier {
    /// From the 32 raw bytes of an Ed25519 public key.
    pub fn from_bytes(public_key: &[u8]) -> Result<Self, AuditError> {
        let public_key: [u8; 32] = public_key.try_into().map_err(|_| {
            AuditError::InvalidKey(format!(
                "Ed25519 public key must be 32 bytes, got {}",
                public_key.len()
            ))
        })?;
        Ok(CheckpointVerifier { public_key })
    }

    /// From 64 hex digits.
    pub fn from_hex(hex: &str) -> Result<Self, AuditError> {
        let bytes = super::hex::decode(hex)
            .map_err(|e| AuditError::InvalidKey(format!("public key: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// The raw public key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.public_key
    }

    /// The public key as hex.
    pub fn to_hex(&self) -> String {
        super::hex::encode(&self.public_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_json_roundtrip() {
        let signer = CheckpointSigner::from_seed(&[7u8; 32]).unwrap();
        let cp = Checkpoint::sign(&signer, 5, [3u8; 32], 1_700_000_000).unwrap();
        cp.verify_signature(&signer.verifier()).unwrap();
        let json = cp.to_json().unwrap();
        assert!(json.contains("\"time\":\"2023-11-14T22:13:20Z\""), "{json}");
        assert!(json.contains(&"03".repeat(32)), "{json}");
        let back = Checkpoint::from_json(&json).unwrap();
        assert_eq!(back, cp);

        let mut forged = cp.clone();
        forged.tree_size = 4;
        assert!(matches!(
            forged.verify_signature(&signer.verifier()),
            Err(AuditError::BadSignature)
        ));
        let other = CheckpointSigner::from_seed(&[8u8; 32]).unwrap();
        assert!(cp.verify_signature(&other.verifier()).is_err());
    }

    #[test]
    fn bad_keys_are_errors() {
        assert!(CheckpointSigner::from_seed(&[1u8; 31]).is_err());
        assert!(CheckpointSigner::from_pkcs8(b"not a key").is_err());
        assert!(CheckpointVerifier::from_hex("zz").is_err());
        assert!(CheckpointVerifier::from_bytes(&[0u8; 31]).is_err());
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let s = CheckpointSigner::from_pkcs8(doc.as_ref()).unwrap();
        let v = CheckpointVerifier::from_hex(&s.verifier().to_hex()).unwrap();
        assert_eq!(v, s.verifier());
    }

    #[test]
    fn malformed_json_is_an_error() {
        assert!(Checkpoint::from_json("{}").is_err());
        assert!(
            Checkpoint::from_json(
                r#"{"tree_size":1,"root_hash":"00","time":"2023-11-14T22:13:20Z","signature":"00"}"#
            )
            .is_err()
        );
    }
}
