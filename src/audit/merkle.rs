//! RFC 6962 / RFC 9162 Merkle tree hashing, proofs and proof verification.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`. The root of an empty tree is
//! `SHA-256("")`.

use ring::digest::{Context, SHA256, digest};
use serde::{Deserialize, Serialize};

use super::AuditError;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// The hash of a leaf whose data is `data`: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x00]);
    ctx.update(data);
    to_hash(ctx.finish().as_ref())
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut ctx = Context::new(&SHA256);
    ctx.update(&[0x01]);
    ctx.update(left);
    ctx.update(right);
    to_hash(ctx.finish().as_ref())
}

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    to_hash(digest(&SHA256, b"").as_ref())
}

fn to_hash(bytes: &[u8]) -> Hash {
    let mut h = [0u8; 32];
    h.copy_from_slice(bytes);
    h
}

/// Largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash (MTH, RFC 6962 section 2.1) of a list of leaf hashes.
pub fn root_of(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&root_of(&leaves[..k]), &root_of(&leaves[k..]))
        }
    }
}

/// The compact frontier of a growing tree: the roots of its maximal perfect
/// subtrees, from left (largest) to right (smallest). Appending costs
/// amortized O(1) hashes and computing the root O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// An empty frontier.
    pub fn new() -> Self {
        Frontier::default()
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            // Invariant: one peak per set bit of `size`.
            let left = self.peaks.pop().unwrap_or_default();
            carry = node_hash(&left, &carry);
            s >>= 1;
        }
        self.peaks.push(carry);
        self.size += 1;
    }

    /// The current root hash.
    pub fn root(&self) -> Hash {
        let mut iter = self.peaks.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, peak| node_hash(peak, &acc)),
        }
    }
}

/// The audit path of leaf `index` in the tree over `leaves` (RFC 6962
/// section 2.1.1). Requires `index < leaves.len()`.
pub(crate) fn inclusion_path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    let mut out = Vec::new();
    path_rec(index, leaves, &mut out);
    out
}

fn path_rec(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split_point(n);
    if m < k {
        path_rec(m, &leaves[..k], out);
        out.push(root_of(&leaves[k..]));
    } else {
        path_rec(m - k, &leaves[k..], out);
        out.push(root_of(&leaves[..k]));
    }
}

/// The consistency proof between the first `m` leaves and all of `leaves`
/// (RFC 6962 section 2.1.2). Empty when `m == 0` or `m == leaves.len()`.
pub(crate) fn consistency_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let mut out = Vec::new();
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    out
}

fn subproof(m: usize, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            out.push(root_of(leaves));
        }
        return;
    }
    let k = split_point(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, out);
        out.push(root_of(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, out);
        out.push(root_of(&leaves[..k]));
    }
}

/// Proof that one leaf is part of a tree of a given size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// Index of the leaf (the entry's sequence number).
    pub index: u64,
    /// Size of the tree the proof is for.
    pub tree_size: u64,
    /// Sibling hashes from the leaf up to the root.
    #[serde(with = "super::hex::serde_hash_vec")]
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks that a leaf with hash `leaf` sits at `self.index` in the tree
    /// of size `self.tree_size` whose root is `root` (RFC 9162 section
    /// 2.1.3.2).
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), AuditError> {
        let fail = |why: &str| Err(AuditError::InvalidProof(format!("inclusion proof: {why}")));
        if self.index >= self.tree_size {
            return fail("index is not below the tree size");
        }
        let mut f = self.index;
        let mut s = self.tree_size - 1;
        let mut r = *leaf;
        for p in &self.path {
            if s == 0 {
                return fail("path is too long");
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                if f & 1 == 0 {
                    while f & 1 == 0 && f != 0 {
                        f >>= 1;
                        s >>= 1;
                    }
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        if s != 0 {
            return fail("path is too short");
        }
        if r != *root {
            return fail("computed root differs");
        }
        Ok(())
    }
}

/// Proof that a tree of size `old_size` is a prefix of a tree of size
/// `new_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    /// Size of the older tree.
    pub old_size: u64,
    /// Size of the newer tree.
    pub new_size: u64,
    /// Proof hashes.
    #[serde(with = "super::hex::serde_hash_vec")]
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks that the tree of size `self.old_size` with root `old_root` is
    /// a prefix of the tree of size `self.new_size` with root `new_root`
    /// (RFC 9162 section 2.1.4.2). An empty old tree is consistent with any
    /// tree, provided `old_root` is the empty root and the path is empty.
    pub fn verify(&self, old_root: &Hash, new_root: &Hash) -> Result<(), AuditError> {
        let fail = |why: &str| {
            Err(AuditError::InvalidProof(format!(
                "consistency proof: {why}"
            )))
        };
        let (first, second) = (self.old_size, self.new_size);
        if first > second {
            return fail("old size is larger than new size");
        }
        if first == second {
            if !self.path.is_empty() {
                return fail("path must be empty for equal sizes");
            }
            if old_root != new_root {
                return fail("roots differ for equal sizes");
            }
            return Ok(());
        }
        if first == 0 {
            if !self.path.is_empty() {
                return fail("path must be empty for an empty old tree");
            }
            if *old_root != empty_root() {
                return fail("old root is not the empty root");
            }
            return Ok(());
        }
        if self.path.is_empty() {
            return fail("path is empty");
        }
        let mut hashes = self.path.iter();
        let start = if first.is_power_of_two() {
            *old_root
        } else {
            match hashes.next() {
                Some(h) => *h,
                None => return fail("path is empty"),
            }
        };
        let mut f = first - 1;
        let mut s = second - 1;
        while f & 1 == 1 {
            f >>= 1;
            s >>= 1;
        }
        let mut fr = start;
        let mut sr = start;
        for c in hashes {
            if s == 0 {
                return fail("path is too long");
            }
            if f & 1 == 1 || f == s {
                fr = node_hash(c, &fr);
                sr = node_hash(c, &sr);
                if f & 1 == 0 {
                    while f & 1 == 0 && f != 0 {
                        f >>= 1;
                        s >>= 1;
                    }
                }
            } else {
                sr = node_hash(&sr, c);
            }
            f >>= 1;
            s >>= 1;
        }
        if s != 0 {
            return fail("path is too short");
        }
        if fr != *old_root {
            return fail("computed old root differs");
        }
        if sr != *new_root {
            return fail("computed new root differs");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            super::super::hex::encode(&empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn small_trees_match_definition() {
        let l = leaves(3);
        assert_eq!(root_of(&l[..1]), l[0]);
        assert_eq!(root_of(&l[..2]), node_hash(&l[0], &l[1]));
        assert_eq!(root_of(&l), node_hash(&node_hash(&l[0], &l[1]), &l[2]));
    }

    #[test]
    fn frontier_matches_full_recomputation() {
        let l = leaves(70);
        let mut f = Frontier::new();
        assert_eq!(f.root(), empty_root());
        for (i, h) in l.iter().enumerate() {
            f.push(*h);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.root(), root_of(&l[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn proofs_verify_for_all_small_sizes() {
        let l = leaves(20);
        for n in 1..=l.len() {
            let root = root_of(&l[..n]);
            for i in 0..n {
                let p = InclusionProof {
                    index: i as u64,
                    tree_size: n as u64,
                    path: inclusion_path(i, &l[..n]),
                };
                p.verify(&l[i], &root).unwrap();
                assert!(p.verify(&l[(i + 1) % n], &root).is_err() || n == 1);
            }
            for m in 0..=n {
                let p = ConsistencyProof {
                    old_size: m as u64,
                    new_size: n as u64,
                    path: consistency_path(m, &l[..n]),
                };
                p.verify(&root_of(&l[..m]), &root).unwrap();
            }
        }
    }
}
