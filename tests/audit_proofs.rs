//! Inclusion and consistency proofs for random tree sizes, and their
//! rejection when altered.

use privseg::audit::{
    AuditLog, CheckpointSigner, ConsistencyProof, InclusionProof, MemorySink, Operation,
    PendingEntry, merkle,
};
use proptest::prelude::*;

fn log_of(n: u64) -> AuditLog<MemorySink> {
    let mut log = AuditLog::open(MemorySink::new(), &[0x42; 32]).unwrap();
    for i in 0..n {
        log.append(
            PendingEntry::new(1_767_225_600 + i as i64, "svc", Operation::Exported)
                .detail("recipient_id", format!("rcpt-{}", i % 3)),
        )
        .unwrap();
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn inclusion_proofs_verify_and_alterations_fail(
        n in 1u64..300,
        idx in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let log = log_of(n);
        let signer = CheckpointSigner::from_seed(&[3u8; 32]).unwrap();
        let cp = log.checkpoint(&signer, 1_767_300_000).unwrap();
        let i = idx.index(n as usize) as u64;
        let leaf = log.leaf_hash(i).unwrap();
        let proof = log.prove_inclusion(i).unwrap();
        prop_assert_eq!(proof.tree_size, n);
        proof.verify(&leaf, &cp.root_hash).unwrap();

        // JSON round trip keeps it valid.
        let json = serde_json::to_string(&proof).unwrap();
        let back: InclusionProof = serde_json::from_str(&json).unwrap();
        back.verify(&leaf, &cp.root_hash).unwrap();

        // A flipped bit anywhere in the path.
        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let k = flip.index(bad.path.len());
            bad.path[k][(k * 7) % 32] ^= 1 << bit;
            prop_assert!(bad.verify(&leaf, &cp.root_hash).is_err());
        }
        // Another index.
        let j = other.index(n as usize + 2) as u64;
        if j != i {
            let mut bad = proof.clone();
            bad.index = j;
            prop_assert!(bad.verify(&leaf, &cp.root_hash).is_err(), "index {} -> {}", i, j);
        }
        // Another entry's leaf.
        if n > 1 {
            let wrong = log.leaf_hash((i + 1) % n).unwrap();
            prop_assert!(proof.verify(&wrong, &cp.root_hash).is_err());
        }
        // Another tree size, checked against that size's real root: only
        // a proof identical to the honest one for that size could pass.
        let m = other.index(n as usize) as u64 + 1;
        if m != n && m > i {
            let mut bad = proof.clone();
            bad.tree_size = m;
            let honest = log.prove_inclusion_at(i, m).unwrap();
            honest.verify(&leaf, &log.root_at(m).unwrap()).unwrap();
            if honest.path != proof.path {
                prop_assert!(bad.verify(&leaf, &log.root_at(m).unwrap()).is_err());
            }
        }
        // A dropped or an extra path element.
        let mut shorter = proof.clone();
        if shorter.path.pop().is_some() {
            prop_assert!(shorter.verify(&leaf, &cp.root_hash).is_err());
        }
        let mut longer = proof.clone();
        longer.path.push([0u8; 32]);
        prop_assert!(longer.verify(&leaf, &cp.root_hash).is_err());
    }

    #[test]
    fn consistency_proofs_verify_and_alterations_fail(
        n in 1u64..300,
        old in any::<prop::sample::Index>(),
        other in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let log = log_of(n);
        let m = old.index(n as usize + 1) as u64; // 0..=n
        let old_root = log.root_at(m).unwrap();
        let new_root = log.root();
        let proof = log.prove_consistency(m).unwrap();
        proof.verify(&old_root, &new_root).unwrap();

        let json = serde_json::to_string(&proof).unwrap();
        let back: ConsistencyProof = serde_json::from_str(&json).unwrap();
        back.verify(&old_root, &new_root).unwrap();

        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let k = flip.index(bad.path.len());
            bad.path[k][(k * 11) % 32] ^= 1 << bit;
            prop_assert!(bad.verify(&old_root, &new_root).is_err());
        }
        // A wrong old root or new root.
        if m > 0 && m < n {
            prop_assert!(proof.verify(&log.root_at(m - 1).unwrap(), &new_root).is_err());
            prop_assert!(proof.verify(&old_root, &log.root_at(n - 1).unwrap()).is_err());
        }
        // Another old size, checked against that size's real root.
        let m2 = other.index(n as usize + 1) as u64;
        if m2 != m {
            let mut bad = proof.clone();
            bad.old_size = m2;
            let honest = log.prove_consistency(m2).unwrap();
            honest.verify(&log.root_at(m2).unwrap(), &new_root).unwrap();
            if honest.path != proof.path {
                prop_assert!(
                    bad.verify(&log.root_at(m2).unwrap(), &new_root).is_err(),
                    "old size {} -> {}", m, m2
                );
            }
        }
        // Another new size.
        let n2 = other.index(n as usize) as u64 + 1;
        if n2 != n && n2 >= m {
            let mut bad = proof.clone();
            bad.new_size = n2;
            let honest = log.prove_consistency_between(m, n2).unwrap();
            honest.verify(&old_root, &log.root_at(n2).unwrap()).unwrap();
            if honest.path != proof.path {
                prop_assert!(bad.verify(&old_root, &log.root_at(n2).unwrap()).is_err());
            }
        }
        // Extra element.
        let mut longer = proof.clone();
        longer.path.push([7u8; 32]);
        prop_assert!(longer.verify(&old_root, &new_root).is_err());
    }
}

/// The roots the log reports agree with an independent, deliberately
/// naive computation of RFC 6962's Merkle tree hash.
#[test]
fn roots_match_a_naive_reference() {
    fn naive(leaves: &[[u8; 32]]) -> [u8; 32] {
        use ring::digest::{SHA256, digest};
        if leaves.is_empty() {
            let mut h = [0u8; 32];
            h.copy_from_slice(digest(&SHA256, b"").as_ref());
            return h;
        }
        if leaves.len() == 1 {
            return leaves[0];
        }
        let mut k = 1;
        while k * 2 < leaves.len() {
            k *= 2;
        }
        let mut buf = vec![1u8];
        buf.extend_from_slice(&naive(&leaves[..k]));
        buf.extend_from_slice(&naive(&leaves[k..]));
        let mut h = [0u8; 32];
        h.copy_from_slice(digest(&SHA256, &buf).as_ref());
        h
    }
    let log = log_of(40);
    let leaves: Vec<[u8; 32]> = log
        .entries()
        .unwrap()
        .iter()
        .map(|e| {
            let mut buf = vec![0u8];
            buf.extend(e.canonical_bytes().unwrap());
            let mut h = [0u8; 32];
            h.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &buf).as_ref());
            h
        })
        .collect();
    for m in 0..=40 {
        assert_eq!(
            log.root_at(m).unwrap(),
            naive(&leaves[..m as usize]),
            "size {m}"
        );
    }
    assert_eq!(log.root(), naive(&leaves));
    assert_eq!(merkle::root_of(&leaves), naive(&leaves));
}

/// Proofs from a larger log check out against an older checkpoint of the
/// same log, and fail against a checkpoint of a diverging log.
#[test]
fn proofs_against_older_checkpoint_and_forked_log() {
    let signer = CheckpointSigner::from_seed(&[3u8; 32]).unwrap();
    let mut log = log_of(10);
    let old = log.checkpoint(&signer, 1).unwrap();
    let mut fork = log_of(10);
    for i in 0..7 {
        log.append(PendingEntry::new(i, "svc", Operation::Counted))
            .unwrap();
        fork.append(PendingEntry::new(i, "other", Operation::Counted))
            .unwrap();
    }
    let new = log.checkpoint(&signer, 2).unwrap();
    let forked = fork.checkpoint(&signer, 2).unwrap();
    let p = log.prove_consistency(old.tree_size).unwrap();
    p.verify(&old.root_hash, &new.root_hash).unwrap();
    assert!(p.verify(&old.root_hash, &forked.root_hash).is_err());
    let pf = fork.prove_consistency(old.tree_size).unwrap();
    pf.verify(&old.root_hash, &forked.root_hash).unwrap();

    let inc = log.prove_inclusion_at(4, old.tree_size).unwrap();
    inc.verify(&log.leaf_hash(4).unwrap(), &old.root_hash)
        .unwrap();
    let late = log.prove_inclusion(12).unwrap();
    assert!(
        late.verify(&log.leaf_hash(12).unwrap(), &forked.root_hash)
            .is_err()
    );
}
