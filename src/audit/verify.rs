//! Checking a log against signed checkpoints.

use std::path::Path;

use super::chain::{self, ChainKeys, RunState};
use super::file::{Discarded, read_head_file, scan_path};
use super::merkle::{self, Frontier};
use super::{AuditEntry, AuditError, Checkpoint, CheckpointVerifier};

/// The outcome of verifying a log against checkpoints: either
/// [`VerifyReport::Ok`] or the first problem found, in log order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyReport {
    /// Every checkpoint's signature is valid, the log holds at least as many
    /// entries as each checkpoint covers, the first `tree_size` entries
    /// hash to its root, and all sequence numbers are `0..log_len`.
    Ok {
        /// Size of the largest checkpoint.
        checkpoint_size: u64,
        /// Number of entries in the log (entries past the checkpoint are
        /// not covered by it).
        log_len: u64,
    },
    /// A checkpoint's signature does not verify with the given public key:
    /// the checkpoint is forged or was altered.
    BadSignature {
        /// The tree size the checkpoint claims.
        checkpoint_size: u64,
    },
    /// A stored record is damaged (bad checksum, bad framing or bad
    /// encoding) and is followed by intact records.
    CorruptRecord {
        /// Index of the damaged record.
        index: u64,
        /// Its byte offset in the file.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// Entry `index` carries the wrong sequence number: an entry was
    /// deleted, inserted, duplicated or moved here.
    SequenceMismatch {
        /// Position in the log.
        index: u64,
        /// The sequence number found there (it should equal `index`).
        found: u64,
    },
    /// Entry `index` cannot be encoded (time out of range).
    UnencodableEntry {
        /// Position in the log.
        index: u64,
        /// The encoding error.
        reason: String,
    },
    /// The log holds fewer entries than a checkpoint covers: entries from
    /// index `log_len` on were removed or lost.
    Truncated {
        /// Size of the checkpoint.
        checkpoint_size: u64,
        /// Number of entries present.
        log_len: u64,
    },
    /// Sequence numbers are in order but the first `checkpoint_size`
    /// entries do not hash to the checkpoint's root: some entry with index
    /// in `first_bad_at_least..checkpoint_size` was edited (or the
    /// checkpoint belongs to another log). The lower bound comes from the
    /// largest smaller checkpoint that did match (0 if none).
    RootMismatch {
        /// Size of the first checkpoint whose root differs.
        checkpoint_size: u64,
        /// The edited entry's index is at least this.
        first_bad_at_least: u64,
    },
}

impl VerifyReport {
    /// Whether the log verified.
    pub fn is_ok(&self) -> bool {
        matches!(self, VerifyReport::Ok { .. })
    }

    /// The index of the first bad entry, when it is known exactly.
    ///
    /// `None` for [`VerifyReport::Ok`] and [`VerifyReport::BadSignature`],
    /// and for [`VerifyReport::RootMismatch`] unless its range holds a
    /// single index.
    pub fn first_bad_index(&self) -> Option<u64> {
        match *self {
            VerifyReport::Ok { .. } | VerifyReport::BadSignature { .. } => None,
            VerifyReport::CorruptRecord { index, .. }
            | VerifyReport::SequenceMismatch { index, .. }
            | VerifyReport::UnencodableEntry { index, .. } => Some(index),
            VerifyReport::Truncated { log_len, .. } => Some(log_len),
            VerifyReport::RootMismatch {
                checkpoint_size,
                first_bad_at_least,
            } => (checkpoint_size == first_bad_at_least + 1).then_some(first_bad_at_least),
        }
    }
}

/// Verifies `entries` against one signed checkpoint.
///
/// Checks, in this order: the checkpoint's signature; then, entry by entry,
/// the sequence numbers and the root once the checkpoint's size is reached;
/// then that the log is not shorter than the checkpoint. The first problem
/// is reported.
pub fn verify_entries(
    entries: &[AuditEntry],
    checkpoint: &Checkpoint,
    verifier: &CheckpointVerifier,
) -> VerifyReport {
    verify_entries_with_checkpoints(entries, std::slice::from_ref(checkpoint), verifier)
}

/// Verifies `entries` against several signed checkpoints (in any order).
///
/// Like [`verify_entries`], but an edited entry is located between the
/// largest checkpoint that still matches and the first that does not; with
/// a checkpoint after every append it is located exactly.
pub fn verify_entries_with_checkpoints(
    entries: &[AuditEntry],
    checkpoints: &[Checkpoint],
    verifier: &CheckpointVerifier,
) -> VerifyReport {
    if let Some(bad) = check_signatures(checkpoints, verifier) {
        return bad;
    }
    walk(entries, checkpoints, true).unwrap_or(VerifyReport::Ok {
        checkpoint_size: 0,
        log_len: entries.len() as u64,
    })
}

/// Verifies the log file at `path` against a signed checkpoint, without
/// changing the file.
///
/// A damaged record followed by intact ones is reported as
/// [`VerifyReport::CorruptRecord`] (unless an earlier entry is already
/// bad); a torn tail is ignored like [`FileSink::open`](super::FileSink::open)
/// would cut it, so if it held checkpointed entries the report is
/// [`VerifyReport::Truncated`]. Errors are returned only for I/O failures.
pub fn verify_file(
    path: impl AsRef<Path>,
    checkpoint: &Checkpoint,
    verifier: &CheckpointVerifier,
) -> Result<VerifyReport, AuditError> {
    let checkpoints = std::slice::from_ref(checkpoint);
    if let Some(bad) = check_signatures(checkpoints, verifier) {
        return Ok(bad);
    }
    let mut entries = Vec::new();
    match scan_path(path.as_ref(), |e| entries.push(e)) {
        Ok(_) => Ok(
            walk(&entries, checkpoints, true).unwrap_or(VerifyReport::Ok {
                checkpoint_size: 0,
                log_len: entries.len() as u64,
            }),
        ),
        Err(AuditError::Corrupt {
            index,
            offset,
            reason,
        }) => Ok(
            walk(&entries, checkpoints, false).unwrap_or(VerifyReport::CorruptRecord {
                index,
                offset,
                reason,
            }),
        ),
        Err(e) => Err(e),
    }
}

/// What [`verify_file_with_key`] found in a log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedReport {
    /// Entries whose chain MACs verified.
    pub entries: u64,
    /// What the head record says about the last run.
    pub state: RunState,
    /// A torn tail after the last complete record (left in place: the file
    /// is only read).
    pub discarded: Option<Discarded>,
}

/// Verifies the log file at `path` and its head record (`<path>.head`)
/// with the host's audit key alone, without changing either: every
/// entry's chain MAC, the sequence numbers, and that the log holds at least
/// the entries the head covers and the very entry it names. No checkpoint
/// is needed. Errors: [`AuditError::Tampered`], [`AuditError::Inconsistent`]
/// or [`AuditError::Corrupt`] for a log that does not verify (as
/// [`AuditLog::open`](super::AuditLog::open) would report it),
/// [`AuditError::Io`] for I/O failures.
pub fn verify_file_with_key(path: impl AsRef<Path>, key: &[u8]) -> Result<KeyedReport, AuditError> {
    let keys = ChainKeys::derive(key)?;
    let path = path.as_ref();
    let mut entries = Vec::new();
    let (_, _, discarded) = scan_path(path, |e| entries.push(e))?;
    let head = read_head_file(path)?;
    let n = entries.len() as u64;
    let checked = chain::check(&keys, entries.into_iter().map(Ok), head.as_deref(), |_| {
        Ok(())
    })?;
    Ok(KeyedReport {
        entries: n,
        state: checked.state,
        discarded,
    })
}

fn check_signatures(
    checkpoints: &[Checkpoint],
    verifier: &CheckpointVerifier,
) -> Option<VerifyReport> {
    checkpoints
        .iter()
        .find(|c| c.verify_signature(verifier).is_err())
        .map(|c| VerifyReport::BadSignature {
            checkpoint_size: c.tree_size,
        })
}

/// Walks the entries; returns the first problem, or (when `complete`) the
/// final verdict. With `complete == false` (entries are only a prefix of
/// the log) returns `None` when the prefix has no problem.
fn walk(
    entries: &[AuditEntry],
    checkpoints: &[Checkpoint],
    complete: bool,
) -> Option<VerifyReport> {
    let mut sorted: Vec<&Checkpoint> = checkpoints.iter().collect();
    sorted.sort_by_key(|c| c.tree_size);
    let mut pending = sorted.into_iter().peekable();
    let mut last_ok = 0u64;
    let mut frontier = Frontier::new();

    // Returns a mismatch for the checkpoints due at the current size.
    let mut check_due = |frontier: &Frontier,
                         pending: &mut std::iter::Peekable<std::vec::IntoIter<&Checkpoint>>|
     -> Option<VerifyReport> {
        while let Some(c) = pending.next_if(|c| c.tree_size == frontier.size()) {
            if c.root_hash != frontier.root() {
                return Some(VerifyReport::RootMismatch {
                    checkpoint_size: c.tree_size,
                    first_bad_at_least: last_ok,
                });
            }
            last_ok = c.tree_size;
        }
        None
    };

    if let Some(bad) = check_due(&frontier, &mut pending) {
        return Some(bad);
    }
    for (i, entry) in entries.iter().enumerate() {
        let i = i as u64;
        if entry.seq != i {
            return Some(VerifyReport::SequenceMismatch {
                index: i,
                found: entry.seq,
            });
        }
        match entry.canonical_bytes() {
            Ok(bytes) => frontier.push(merkle::leaf_hash(&bytes)),
            Err(e) => {
                return Some(VerifyReport::UnencodableEntry {
                    index: i,
                    reason: e.to_string(),
                });
            }
        }
        if let Some(bad) = check_due(&frontier, &mut pending) {
            return Some(bad);
        }
    }
    let log_len = entries.len() as u64;
    if !complete {
        return None;
    }
    let largest = checkpoints.iter().map(|c| c.tree_size).max().unwrap_or(0);
    if largest > log_len {
        return Some(VerifyReport::Truncated {
            checkpoint_size: largest,
            log_len,
        });
    }
    Some(VerifyReport::Ok {
        checkpoint_size: largest,
        log_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditLog, CheckpointSigner, MemorySink, Operation, PendingEntry};

    fn setup(n: u64) -> (Vec<AuditEntry>, CheckpointSigner, AuditLog<MemorySink>) {
        let signer = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
        let mut log = AuditLog::open(MemorySink::new(), &[4u8; 32]).unwrap();
        for i in 0..n {
            log.append(
                PendingEntry::new(1_700_000_000 + i as i64, "svc", Operation::SegmentEvaluated)
                    .detail("member_count", i),
            )
            .unwrap();
        }
        (log.entries().unwrap(), signer, log)
    }

    #[test]
    fn each_kind_of_damage_is_reported() {
        let (entries, signer, log) = setup(10);
        let v = signer.verifier();
        let cp = log.checkpoint(&signer, 1_700_000_100).unwrap();
        assert_eq!(
            verify_entries(&entries, &cp, &v),
            VerifyReport::Ok {
                checkpoint_size: 10,
                log_len: 10
            }
        );

        let mut edited = entries.clone();
        edited[4].actor = "someone-else".into();
        let r = verify_entries(&edited, &cp, &v);
        assert_eq!(
            r,
            VerifyReport::RootMismatch {
                checkpoint_size: 10,
                first_bad_at_least: 0
            }
        );
        assert_eq!(r.first_bad_index(), None);

        let mut deleted = entries.clone();
        deleted.remove(6);
        assert_eq!(
            verify_entries(&deleted, &cp, &v),
            VerifyReport::SequenceMismatch { index: 6, found: 7 }
        );

        let mut swapped = entries.clone();
        swapped.swap(2, 5);
        assert_eq!(verify_entries(&swapped, &cp, &v).first_bad_index(), Some(2));

        let r = verify_entries(&entries[..7], &cp, &v);
        assert_eq!(
            r,
            VerifyReport::Truncated {
                checkpoint_size: 10,
                log_len: 7
            }
        );
        assert_eq!(r.first_bad_index(), Some(7));

        let mut forged = cp.clone();
        forged.root_hash[0] ^= 1;
        assert_eq!(
            verify_entries(&entries, &forged, &v),
            VerifyReport::BadSignature {
                checkpoint_size: 10
            }
        );
        let other = CheckpointSigner::from_seed(&[1u8; 32]).unwrap();
        let foreign = log.checkpoint(&other, 1_700_000_100).unwrap();
        assert!(!verify_entries(&entries, &foreign, &v).is_ok());
    }

    #[test]
    fn checkpoint_after_every_append_locates_an_edit() {
        let signer = CheckpointSigner::from_seed(&[9u8; 32]).unwrap();
        let mut log = AuditLog::open(MemorySink::new(), &[4u8; 32]).unwrap();
        let mut cps = Vec::new();
        for i in 0..8 {
            log.append(PendingEntry::new(i, "svc", Operation::Counted))
                .unwrap();
            cps.push(log.checkpoint(&signer, 100).unwrap());
        }
        cps.reverse(); // order must not matter
        let mut entries = log.entries().unwrap();
        entries[5].details.insert("x".into(), 1.into());
        let r = verify_entries_with_checkpoints(&entries, &cps, &signer.verifier());
        assert_eq!(
            r,
            VerifyReport::RootMismatch {
                checkpoint_size: 6,
                first_bad_at_least: 5
            }
        );
        assert_eq!(r.first_bad_index(), Some(5));
    }
}
