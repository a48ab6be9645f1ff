//! The audit log: a sink plus its Merkle tree.

use super::chain::{self, ChainKeys, RunState};
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
/// let mut log = AuditLog::open(MemorySink::new(), &[3u8; 32])?;
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
    /// Always `Some`; taken only by [`AuditLog::into_sink`].
    sink: Option<S>,
    frontier: Frontier,
    leaves: Vec<Hash>,
    /// `None` for a read-only log.
    keys: Option<ChainKeys>,
    last_mac: Hash,
    run: u64,
    state: RunState,
    /// Whether this run has written its "open" head and not sealed yet.
    run_open: bool,
}

impl<S: AuditSink> AuditLog<S> {
    /// Wraps a sink under the host's audit key (at least 16 bytes; the
    /// same secret as the [`AuditPseudonymizer`](super::AuditPseudonymizer)
    /// key is fine: the chain and head keys are derived from it with HKDF
    /// under their own labels). Reads every stored entry, checks the chain
    /// MAC of each and the head record, and rebuilds the tree.
    ///
    /// Errors: [`AuditError::InvalidKey`] for a short key;
    /// [`AuditError::Inconsistent`] if sequence numbers are not exactly
    /// `0, 1, 2, …`; [`AuditError::Tampered`] if an entry's MAC does not
    /// verify (edited, removed, reordered, renumbered, inserted, or written
    /// under another key), if the head record is missing, forged or names
    /// another entry, or if the log is shorter than its head says
    /// (truncated). What the head says about the previous run (sealed, or
    /// interrupted by a crash) is in [`AuditLog::run_state`].
    pub fn open(sink: S, key: &[u8]) -> Result<Self, AuditError> {
        let keys = ChainKeys::derive(key)?;
        let head = sink.read_head()?;
        let mut frontier = Frontier::new();
        let mut leaves = Vec::with_capacity(usize::try_from(sink.len()).unwrap_or(0));
        let checked = chain::check(&keys, sink.iter()?, head.as_deref(), |entry| {
            let h = merkle::leaf_hash(&entry.canonical_bytes()?);
            frontier.push(h);
            leaves.push(h);
            Ok(())
        })?;
        Self::check_len(&sink, &frontier)?;
        Ok(AuditLog {
            sink: Some(sink),
            frontier,
            leaves,
            keys: Some(keys),
            last_mac: checked.last_mac,
            run: checked.run,
            state: checked.state,
            run_open: false,
        })
    }

    /// Wraps a sink without the audit key, to read entries, make
    /// checkpoints and proofs: sequence numbers are checked, chain MACs and
    /// the head are not, and [`AuditLog::append`] is refused.
    pub fn open_read_only(sink: S) -> Result<Self, AuditError> {
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
        Self::check_len(&sink, &frontier)?;
        let n = frontier.size();
        Ok(AuditLog {
            sink: Some(sink),
            frontier,
            leaves,
            keys: None,
            last_mac: [0u8; 32],
            run: 0,
            state: if n == 0 {
                RunState::Fresh
            } else {
                RunState::Sealed { entries: n }
            },
            run_open: false,
        })
    }

    fn check_len(sink: &S, frontier: &Frontier) -> Result<(), AuditError> {
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
        Ok(())
    }

    /// What the head record said about the previous run when the log was
    /// opened (always `Sealed` or `Fresh` for a read-only log).
    pub fn run_state(&self) -> RunState {
        self.state
    }

    /// Appends an entry, assigning it the next sequence number and its
    /// chain MAC; the sequence number is returned. The time stamp is the
    /// caller's. The first append of a run first syncs the sink and writes
    /// an "open" head record. Nothing changes if the sink fails.
    pub fn append(&mut self, entry: PendingEntry) -> Result<u64, AuditError> {
        let Some(keys) = &self.keys else {
            return Err(AuditError::InvalidArgument(
                "the log was opened read-only (without the audit key)".to_owned(),
            ));
        };
        let seq = self.frontier.size();
        let mut entry = entry.with_seq(seq);
        let h = merkle::leaf_hash(&keys.seal_entry(&self.last_mac, &mut entry)?);
        let mac = entry.mac;
        if !self.run_open {
            let head = keys.make_head(seq, self.last_mac, false, self.run + 1);
            let sink = self.sink_mut();
            sink.sync()?;
            sink.write_head(&head)?;
            self.run += 1;
            self.run_open = true;
        }
        self.sink_mut().append(&entry)?;
        self.frontier.push(h);
        self.leaves.push(h);
        self.last_mac = mac;
        Ok(seq)
    }

    /// Ends the current run: syncs the sink and writes a sealed head record
    /// covering every entry, so that the next [`AuditLog::open`] detects
    /// any entry removed from the end. Does nothing if nothing was appended
    /// since the last seal. Called on drop (errors then ignored: the next
    /// open reports [`RunState::Unsealed`]).
    pub fn seal(&mut self) -> Result<(), AuditError> {
        if !self.run_open {
            return Ok(());
        }
        let Some(keys) = &self.keys else {
            return Ok(());
        };
        let head = keys.make_head(self.len(), self.last_mac, true, self.run);
        let sink = self.sink_mut();
        sink.sync()?;
        sink.write_head(&head)?;
        self.run_open = false;
        Ok(())
    }

    fn sink_ref(&self) -> &S {
        self.sink
            .as_ref()
            .expect("the sink is taken only by into_sink")
    }

    fn sink_mut(&mut self) -> &mut S {
        self.sink
            .as_mut()
            .expect("the sink is taken only by into_sink")
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
        self.sink_ref().iter()?.collect()
    }

    /// Forces appended entries to stable storage ([`AuditSink::sync`]).
    pub fn sync(&mut self) -> Result<(), AuditError> {
        self.sink_mut().sync()
    }

    /// The underlying sink.
    pub fn sink(&self) -> &S {
        self.sink_ref()
    }

    /// Seals the log (errors ignored; call [`AuditLog::seal`] first to see
    /// them) and gives back the underlying sink.
    pub fn into_sink(mut self) -> S {
        let _ = self.seal();
        self.sink.take().expect("the sink is taken only once")
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

impl<S: AuditSink> Drop for AuditLog<S> {
    fn drop(&mut self) {
        if self.sink.is_some() {
            let _ = self.seal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{MemorySink, Operation};

    const KEY: &[u8] = &[5u8; 32];

    fn log_of(n: u64) -> AuditLog<MemorySink> {
        let mut log = AuditLog::open(MemorySink::new(), KEY).unwrap();
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
        let reopened = AuditLog::open(log.into_sink(), KEY).unwrap();
        assert_eq!(reopened.root(), merkle::root_of(&leaves));
    }

    #[test]
    fn open_rejects_sequence_gaps() {
        let (mut entries, head) = log_of(4).into_sink().into_parts();
        entries.remove(1);
        let err = AuditLog::open(MemorySink::from_parts(entries, head), KEY).unwrap_err();
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
        let mut log: AuditLog = AuditLog::open(sink, KEY).unwrap();
        log.append(PendingEntry::new(0, "a", Operation::Counted))
            .unwrap();
        assert_eq!(log.sink().len(), 1);
    }
}
