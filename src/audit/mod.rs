//! Tamper-evident audit log.
//!
//! Every operation the engine performs on personal data (loading a policy,
//! evaluating a segment, exporting, erasing a subject, …) is recorded as an
//! [`AuditEntry`]. Entries are appended to an [`AuditLog`], which stores them
//! in an [`AuditSink`] (a [`FileSink`] on disk or a [`MemorySink`]) and keeps
//! them as the leaves of an RFC 6962-style Merkle tree.
//!
//! # Guarantees
//!
//! * **Keyed chain.** The log is opened under the host's audit key
//!   ([`AuditLog::open`]). Every entry carries a chain MAC
//!   ([`AuditEntry::mac`]): HMAC-SHA-256 over the previous entry's MAC and
//!   its own canonical bytes, under a key derived from the audit key with
//!   HKDF (label `privseg-audit-chain/v1`). Whoever holds the key finds any
//!   edit, deletion, insertion, reordering, renumbering or rewrite of
//!   entries ([`AuditError::Tampered`]), without any checkpoint, and can
//!   check a file without changing it ([`verify_file_with_key`]).
//! * **Head record.** Each run that appends writes a MACed head record
//!   through [`AuditSink::write_head`] (for a [`FileSink`], the file
//!   `<log>.head`, replaced atomically): "open at n" before its first
//!   entry, "sealed at n" when it ends ([`AuditLog::seal`], also on drop).
//!   The next open checks that the log still holds the entry the head names,
//!   so entries cut off the end (back to an earlier seal or checkpoint, or
//!   anywhere else) are detected; a missing or forged head is too.
//! * **Crash or truncation.** A run that died leaves "open at n": the next
//!   open reports [`RunState::Unsealed`] instead of an error. Entries up to
//!   n are fully protected; entries the dead run appended verify, but if
//!   some of its last entries are missing, a crash cannot be told from their
//!   deliberate removal. Also beyond the key's reach: replacing both the log
//!   and its head with an older copy of both. Against that, keep the latest
//!   signed checkpoint (or a copy of the head) where the log's writers
//!   cannot reach it.
//! * **Checkpoints.** The host can also ask for a signed [`Checkpoint`]
//!   (tree size, Merkle root, time; Ed25519) and hand it to an auditor who
//!   has no key. Given the entries and a checkpoint, [`verify_entries`] (or
//!   [`verify_file`]) reports either [`VerifyReport::Ok`] or what is wrong
//!   and, where it can be told, the index of the first bad entry.
//! * **Proofs.** [`AuditLog::prove_inclusion`] shows that one entry is in
//!   the tree of a checkpoint, and [`AuditLog::prove_consistency`] that a
//!   later checkpoint extends an earlier one (the log was only appended to),
//!   following RFC 9162. Both can be checked without the log.
//! * **No personal data.** Entries refer to subjects only through pseudonyms
//!   from an [`AuditPseudonymizer`] (HMAC-SHA-256 under the audit key).
//!   Erasing a subject therefore never requires rewriting the log. Digests
//!   of identifiers are keyed too ([`AuditPseudonymizer::digest`]).
//!   **Raw subject ids and attribute values must never be put in an
//!   entry**; the library cannot check this for free-form fields.
//!
//! What a checkpoint alone cannot do: an entry whose content was edited
//! while its sequence number was kept is detected (the Merkle root differs),
//! but with a single checkpoint the verifier cannot say which entry it was
//! (the keyed chain can). Given several checkpoints
//! ([`verify_entries_with_checkpoints`]) it narrows the edit down to the
//! range between the last matching and the first mismatching checkpoint.
//!
//! # Durability and the fsync policy
//!
//! A [`FileSink`] writes each entry as one length-prefixed, checksummed
//! record at the end of the file (format in [`FileSink`]'s docs). The
//! [`SyncPolicy`] decides when data is forced to stable storage:
//!
//! * [`SyncPolicy::EveryAppend`]: `append` returns only after the record has
//!   been written and `fdatasync`ed. An entry is *acknowledged* when
//!   `append` returns `Ok`, and acknowledged entries survive a crash or power
//!   loss (as far as the storage honours `fsync`).
//! * [`SyncPolicy::Never`]: `append` only writes to the operating system;
//!   data reaches the disk when the OS flushes it or when the host calls
//!   [`AuditSink::sync`]. Entries appended since the last successful `sync`
//!   may be lost in a crash (never half-kept: see below). Use it for
//!   throughput when the host syncs at its own points, e.g. before
//!   answering a request.
//!
//! On [`FileSink::open`], a torn last record (from a crash in the middle of
//! an append, with the file cut short or padded with zeros or garbage) is
//! copied unchanged into a side file `<log>.damaged-<n>`, the log is cut
//! back to the end of the last complete record, and the returned
//! [`RecoveryReport`] says how many bytes were moved, from which offset, to
//! which file. Nothing is ever deleted. If the moved bytes held an entry a
//! sealed head covers, [`AuditLog::open`] then fails with
//! [`AuditError::Tampered`]. A damaged record *followed by intact ones* is
//! not a crash artefact: opening then fails with [`AuditError::Corrupt`] and
//! the file is left untouched; so is a file damaged from its first byte
//! (which would otherwise be left empty), unless the damage is only zeros.
//!
//! The head record is always written with `fsync` (before the run's first
//! entry and at the seal), whatever the [`SyncPolicy`], and the sink is
//! synced first: so a crash can never leave a head covering entries that
//! did not reach the disk.
//!
//! # Example
//!
//! ```
//! use privseg::audit::{
//!     AuditLog, AuditPseudonymizer, CheckpointSigner, MemorySink, Operation,
//!     PendingEntry, verify_entries,
//! };
//!
//! // The host's audit key: pseudonyms, chain and head MACs derive from it.
//! let key = [42u8; 32];
//! let pseudonyms = AuditPseudonymizer::new(&key)?;
//! let signer = CheckpointSigner::from_seed(&[7u8; 32])?;
//! let mut log = AuditLog::open(MemorySink::new(), &key)?;
//!
//! let seq = log.append(
//!     PendingEntry::new(1_767_225_600, "crm-service", Operation::SubjectErased)
//!         .purpose("gdpr-art-17")
//!         .subject(&pseudonyms, "customer-1234"),
//! )?;
//! assert_eq!(seq, 0);
//! log.append(
//!     PendingEntry::new(1_767_225_660, "analyst-7", Operation::Counted)
//!         .detail("member_count", 1200),
//! )?;
//!
//! let checkpoint = log.checkpoint(&signer, 1_767_225_700)?;
//! let entries = log.entries()?;
//! assert!(verify_entries(&entries, &checkpoint, &signer.verifier()).is_ok());
//!
//! let proof = log.prove_inclusion(0)?;
//! proof.verify(&log.leaf_hash(0)?, &checkpoint.root_hash)?;
//! # Ok::<(), privseg::audit::AuditError>(())
//! ```

mod chain;
mod checkpoint;
pub mod details;
mod entry;
mod file;
mod log;
pub mod merkle;
mod sink;
mod verify;

pub use chain::RunState;
pub use checkpoint::{Checkpoint, CheckpointSigner, CheckpointVerifier};
pub use details::EntryKind;
pub use entry::{AuditDigest, AuditEntry, AuditPseudonymizer, Operation, PendingEntry};
pub use file::{Discarded, FileSink, RecoveryReport, ScannedFile, SyncPolicy};
pub use log::AuditLog;
pub use merkle::{ConsistencyProof, Hash, InclusionProof};
pub use sink::{AuditSink, EntryIter, MemorySink};
pub use verify::{
    KeyedReport, VerifyReport, verify_entries, verify_entries_with_checkpoints, verify_file,
    verify_file_with_key,
};

/// Errors of the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// An I/O operation failed.
    ///
    /// The message includes the I/O error's, so it is not also given as the
    /// `source` (a printed chain would name it twice); match on the field.
    #[error("audit log I/O error while {context}: {error}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        error: std::io::Error,
    },
    /// A stored record is damaged and is followed by intact records, so it
    /// is not a torn write from a crash.
    #[error("audit log corrupt at record {index} (byte offset {offset}): {reason}")]
    Corrupt {
        /// Index of the damaged record.
        index: u64,
        /// Byte offset of the damaged record in the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The stored entries do not form a valid log (for example a gap in
    /// sequence numbers).
    #[error("audit log inconsistent at entry {index}: {reason}")]
    Inconsistent {
        /// Index of the first offending entry.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The keyed chain or the head record shows that the log was changed
    /// by someone without the audit key: an entry edited, removed,
    /// inserted, reordered or renumbered, entries cut off the end, the head
    /// record missing or forged, or the whole log replaced.
    #[error("audit log tampered with at entry {index}: {reason}")]
    Tampered {
        /// Index of the first entry found wrong (for a missing or short
        /// log, the first missing one).
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// An entry or checkpoint could not be encoded or decoded.
    #[error("audit encoding error: {0}")]
    Encoding(String),
    /// A key is malformed or too short.
    #[error("invalid audit key: {0}")]
    InvalidKey(String),
    /// A checkpoint signature does not verify.
    #[error("checkpoint signature does not verify")]
    BadSignature,
    /// An inclusion or consistency proof does not verify.
    #[error("invalid proof: {0}")]
    InvalidProof(String),
    /// An argument is out of range (for example an index past the end).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A previous write failed in a way that could not be rolled back; the
    /// sink refuses further appends until it is reopened.
    #[error("audit sink is unusable after an earlier failed write; reopen it")]
    Poisoned,
}

/// Lowercase hex encoding, and serde adapters for fixed-size byte arrays.
pub(crate) mod hex {
    pub(crate) fn encode(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            s.push(DIGITS[(b >> 4) as usize] as char);
            s.push(DIGITS[(b & 0x0f) as usize] as char);
        }
        s
    }

    pub(crate) fn decode(s: &str) -> Result<Vec<u8>, String> {
        fn nibble(c: u8) -> Result<u8, String> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(format!("invalid hex digit {:?}", c as char)),
            }
        }
        let b = s.as_bytes();
        if !b.len().is_multiple_of(2) {
            return Err("odd number of hex digits".to_owned());
        }
        b.chunks(2)
            .map(|p| Ok((nibble(p[0])? << 4) | nibble(p[1])?))
            .collect()
    }

    pub(crate) fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], String> {
        let v = decode(s)?;
        v.as_slice()
            .try_into()
            .map_err(|_| format!("expected {} hex digits, got {}", N * 2, s.len()))
    }

    macro_rules! array_serde {
        ($name:ident, $n:expr) => {
            pub(crate) mod $name {
                use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
                pub(crate) fn serialize<S: Serializer>(
                    v: &[u8; $n],
                    s: S,
                ) -> Result<S::Ok, S::Error> {
                    s.serialize_str(&super::encode(v))
                }
                pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
                    d: D,
                ) -> Result<[u8; $n], D::Error> {
                    let text = String::deserialize(d)?;
                    super::decode_array::<$n>(&text).map_err(D::Error::custom)
                }
            }
        };
    }
    array_serde!(serde_hash, 32);
    array_serde!(serde_sig, 64);

    pub(crate) mod serde_hash_vec {
        use serde::{Deserialize, Deserializer, Serializer, de::Error as _, ser::SerializeSeq};
        pub(crate) fn serialize<S: Serializer>(v: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(v.len()))?;
            for h in v {
                seq.serialize_element(&super::encode(h))?;
            }
            seq.end()
        }
        pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<[u8; 32]>, D::Error> {
            let texts = Vec::<String>::deserialize(d)?;
            texts
                .iter()
                .map(|t| super::decode_array::<32>(t).map_err(D::Error::custom))
                .collect()
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn roundtrip() {
            assert_eq!(super::encode(&[0x00, 0xab, 0x7f]), "00ab7f");
            assert_eq!(super::decode("00AB7f").unwrap(), vec![0x00, 0xab, 0x7f]);
            assert!(super::decode("0").is_err());
            assert!(super::decode("0g").is_err());
            assert!(super::decode_array::<2>("0011aa").is_err());
        }
    }
}
