//! The audit log: a sink plus its Merkle tree.

use super::merkle::{self, ConsistencyProof, Frontier, Hash, InclusionProof};
use super::{AuditEntry, AuditError, AuditSink, Checkpoint, CheckpointSigner, PendingEntry};

/// An append-only, tamper-evident audit log over an [`AuditSink`].
///
/// It assigns sequence numbers, keeps the Merkle frontier up to date on every
/// append (the root costs O(log n) hashes), and keeps the 32-byte leaf hash
/// of every entry in memory to answer proofs (each proof costs O(n) hashes).
///
/// The default type parameter lets an engine hold
/// `AuditLog<Box<dyn AuditSink + Send>>` without naming the concrete sink.
///
/// ```
/// use privseg::audit::{AuditLog, CheckpointSigner, MemorySink, Operation, PendingEntry};
///
/// let signer = CheckpointSigner::from_seed(&[1u8; 32])?;
/// let mut log = AuditLog::open(MemorySink::new())?;
/// for t in 0..5 {
///     log.append(PendingEntry::new(1_767_225_600 + t, "svc", Operation::Counted))?;
/// }
/// let old = log.checkpoint(&signer, 1_767_225_610)?;
/// log.append(PendingEntry::new(1_767_225_620, "svc", Operation::Exported))?;
/// let new = log.checkpoint(&signer, 1_767_225_630)?;
///
/// let proof = log.prove_consistency(old.tree_size)?;
/// proof.verify(&old.root_hash, &new.root_hash)?;
/// # Ok::<(), privseg::audit::AuditError>(())
/// ```
#[derive(Debug)]
pub struct AuditLog<S: AuditSink = Box<dyn AuditSink + Send>> {
    sink: S,
    frontier: Frontier,
    leaves: Vec<Hash>,
}

impl<S: AuditSink> AuditLog<S> {
    /// Wraps a sink, reading every stored entry to rebuild the tree.
    ///
    /// Fails if an entry cannot be read or encoded, or with
    /// [`AuditError::Inconsistent`] if sequence numbers are not exactly
    /// `0, 1, 2, …`.
    pub fn open(sink: S) -> Result<Self, AuditError> {
        let mut frontier = Frontier::new();
        let mut leaves = Vec::with_capacity(usize::try_from(sink.len()).unwrap_or(0));
        for (i, entry) in sink.iter()?.enumerate() {
            let entry = entry?;
            let i = i as u64;
            if entry.seq != i {
                return Err(AuditError::Inconsistent {
                    index: i,
                    reason: format!("expected sequence number {i}, found {}", entry.seq),
                });
            }
            let h = merkle::leaf_hash(&entry.canonical_bytes()?);
            frontier.push(h);
            leaves.push(h);
        }
        if frontier.size() != sink.len() {
            return Err(AuditError::Inconsistent {
                index: frontier.size(),
                reason: format!(
                    "sink reports {} entries but yielded {}",
                    sink.len(),
                    frontier.size()
                ),
            });
        }
        Ok(AuditLog {
            sink,
            frontier,
            leaves,
        })
    }

    /// Appends an entry, assigning it the next sequence number, which is
    /// returned. The time stamp is the caller's. Nothing changes if the
    /// sink fails.
    pub fn append(&mut self, entry: PendingEntry) -> Result<u64, AuditError> {
        let seq = self.frontier.size();
        let entry = entry.with_seq(seq);
        let h = merkle::leaf_hash(&entry.canonical_bytes()?);
        self.sink.append(&entry)?;
        self.frontier.push(h);
        self.leaves.push(h);
        Ok(seq)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.frontier.size()
    }

    /// Whether the log has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current Merkle root.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The Merkle root of the first `size` entries.
    pub fn root_at(&self, size: u64) -> Result<Hash, AuditError> {
        let n = self.check_size(size)?;
        Ok(merkle::root_of(&self.leaves[..n]))
    }

    /// The leaf hash of entry `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, AuditError> {
        let i = self.check_index(index)?;
        Ok(self.leaves[i])
    }

    /// A signed checkpoint of the current tree, dated `time` (Unix seconds).
    pub fn checkpoint(
        &self,
        signer: &CheckpointSigner,
        time: i64,
    ) -> Result<Checkpoint, AuditError> {
        Checkpoint::sign(signer, self.len(), self.root(), time)
    }

    /// Proof that entry `index` is in the current tree.
    pub fn prove_inclusion(&self, index: u64) -> Result<InclusionProof, AuditError> {
        self.prove_inclusion_at(index, self.len())
    }

    /// Proof that entry `index` is in the tree of the first `tree_size`
    /// entries (for example the size of an older checkpoint).
    pub fn prove_inclusion_at(
        &self,
        index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, AuditError> {
        let n = self.check_size(tree_size)?;
        let i = self.check_index(index)?;
        if i >= n {
            return Err(AuditError::InvalidArgument(format!(
                "index {index} is not below tree size {tree_size}"
            )));
        }
        Ok(InclusionProof {
            index,
            tree_size,
            path: merkle::inclusion_path(i, &self.leaves[..n]),
        })
    }

    /// Proof that the tree of the first `old_size` entries is a prefix of
    /// the current tree.
    pub fn prove_consistency(&self, old_size: u64) -> Result<ConsistencyProof, AuditError> {
        self.prove_consistency_between(old_size, self.len())
    }

    /// Proof that the tree of the first `old_size` entries is a prefix of
    /// the tree of the first `new_size` entries.
    pub fn prove_consistency_between(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, AuditError> {
        let n = self.check_size(new_size)?;
        if old_size > new_size {
            return Err(AuditError::InvalidArgument(format!(
                "old size {old_size} is larger than new size {new_size}"
            )));
        }
        Ok(ConsistencyProof {
            old_size,
            new_size,
            path: merkle::consistency_path(old_size as usize, &self.leaves[..n]),
        })
    }

    /// All entries, read back from the sink.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        self.sink.iter()?.collect()
    }

    /// Forces appended entries to stable storage ([`AuditSink::sync`]).
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.sink.sync()
    }

    /// The underlying sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Gives back the underlying sink.
    pub fn into_sink(self) -> S {
        self.sink
    }

    fn check_size(&self, size: u64) -> Result<usize, AuditError> {
        if size > self.len() {
            return Err(AuditError::InvalidArgument(format!(
                "tree size {size} exceeds the log length {}",
                self.len()
            )));
        }
        Ok(size as usize)
    }

    fn check_index(&self, index: u64) -> Result<usize, AuditError> {
        if index >= self.len() {
            return Err(AuditError::InvalidArgument(format!(
                "index {index} is not below the log length {}",
                self.len()
            )));
        }
        Ok(index as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{MemorySink, Operation};

    fn log_of(n: u64) -> AuditLog<MemorySink> {
        let mut log = AuditLog::open(MemorySink::new()).unwrap();
        for i in 0..n {
            let seq = log
                .append(PendingEntry::new(
                    1_700_000_000 + i as i64,
                    "a",
                    Operation::Counted,
                ))
                .unwrap();
            assert_eq!(seq, i);
        }
        log
    }

    #[test]
    fn root_matches_recomputation_and_reopen() {
        let log = log_of(13);
        let leaves: Vec<Hash> = log
            .entries()
            .unwrap()
            .iter()
            .map(|e| merkle::leaf_hash(&e.canonical_bytes().unwrap()))
            .collect();
        assert_eq!(log.root(), merkle::root_of(&leaves));
        assert_eq!(log.root_at(13).unwrap(), log.root());
        let reopened = AuditLog::open(log.into_sink()).unwrap();
        assert_eq!(reopened.root(), merkle::root_of(&leaves));
    }

    #[test]
    fn open_rejects_sequence_gaps() {
        let mut entries = log_of(4).into_sink().into_entries();
        entries.remove(1);
        let err = AuditLog::open(MemorySink::from_entries(entries)).unwrap_err();
        assert!(
            matches!(err, AuditError::Inconsistent { index: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn bad_arguments_are_errors() {
        let log = log_of(3);
        assert!(log.prove_inclusion(3).is_err());
        assert!(log.prove_inclusion_at(2, 2).is_err());
        assert!(log.prove_consistency(4).is_err());
        assert!(log.prove_consistency_between(3, 2).is_err());
        assert!(log.root_at(4).is_err());
        assert!(log.leaf_hash(3).is_err());
    }

    #[test]
    fn failed_encoding_changes_nothing() {
        let mut log = log_of(2);
        let root = log.root();
        assert!(
            log.append(PendingEntry::new(i64::MAX, "a", Operation::Counted))
                .is_err()
        );
        assert_eq!((log.len(), log.root(), log.sink().len()), (2, root, 2));
    }

    #[test]
    fn boxed_dyn_sink_works() {
        let sink: Box<dyn AuditSink + Send> = Box::new(MemorySink::new());
        let mut log: AuditLog = AuditLog::open(sink).unwrap();
        log.append(PendingEntry::new(0, "a", Operation::Counted))
            .unwrap();
        assert_eq!(log.sink().len(), 1);
    }
}
