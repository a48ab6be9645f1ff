//! Publishing an eligibility mask to concurrent readers: the protocol of
//! [`crate::SharedEngine`], on its own.
//!
//! A writer records a withdrawal by clearing the subject's bit, lowering
//! the count and raising the version, all under one write lock; readers
//! evaluate under a read lock. Two properties follow, and
//! `tests/loom_publish.rs` checks them over every interleaving with loom:
//!
//! - no reader sees a half-applied update: in every [`MaskState`] a reader
//!   is shown, `count` is the number of set bits and `version` the number
//!   of withdrawals applied;
//! - no acknowledged withdrawal is missed: once [`Publisher::withdraw`]
//!   has returned, every read that starts afterwards sees the bit cleared.
//!
//! The engine keeps its whole state behind one `RwLock` in the same way;
//! this module is the protocol reduced to what a model checker can explore
//! (loom cannot run the engine itself). Under `cfg(loom)` the library is
//! built without it and the model compiles this file with loom's
//! primitives.

#[cfg(loom)]
use loom::sync::{Arc, RwLock};
#[cfg(not(loom))]
use std::sync::{Arc, RwLock};

/// An eligibility mask as readers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskState {
    words: Vec<u64>,
    count: u64,
    version: u64,
}

impl MaskState {
    /// Is row `row` eligible?
    pub fn get(&self, row: usize) -> bool {
        self.words[row / 64] >> (row % 64) & 1 == 1
    }
    /// Number of eligible rows.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// Number of withdrawals applied.
    pub fn version(&self) -> u64 {
        self.version
    }
    /// Number of set bits, counted (what `count` must equal).
    pub fn counted(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// A mask shared by one writer and many readers.
#[derive(Clone, Debug)]
pub struct Publisher {
    inner: Arc<RwLock<MaskState>>,
}

impl Publisher {
    /// `rows` rows, all eligible, at version 0.
    pub fn new(rows: usize) -> Publisher {
        let mut words = vec![u64::MAX; rows.div_ceil(64)];
        if !rows.is_multiple_of(64) {
            words[rows / 64] = (1u64 << (rows % 64)) - 1;
        }
        Publisher {
            inner: Arc::new(RwLock::new(MaskState {
                words,
                count: rows as u64,
                version: 0,
            })),
        }
    }

    /// Records a withdrawal of row `row`: the bit, the count and the
    /// version change together. Returns the version that includes it; once
    /// this returns, the withdrawal is acknowledged. A row already
    /// withdrawn leaves the mask as it is (and returns the current
    /// version).
    pub fn withdraw(&self, row: usize) -> u64 {
        let mut s = self
            .inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (w, b) = (row / 64, 1u64 << (row % 64));
        if s.words[w] & b != 0 {
            s.words[w] &= !b;
            s.count -= 1;
            s.version += 1;
        }
        s.version
    }

    /// Runs `f` on the current state, under a read lock.
    pub fn read<R>(&self, f: impl FnOnce(&MaskState) -> R) -> R {
        let s = self
            .inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&s)
    }
}

/// A deliberately broken withdrawal, in two steps under two locks, for
/// the model's negative test (compiled only into the loom model).
#[cfg(loom)]
impl Publisher {
    /// Step one: clears the bit only.
    pub fn clear_bit_only(&self, row: usize) {
        let mut s = self.inner.write().unwrap();
        s.words[row / 64] &= !(1u64 << (row % 64));
    }
    /// Step two: lowers the count and raises the version.
    pub fn finish_withdrawal(&self) -> u64 {
        let mut s = self.inner.write().unwrap();
        s.count -= 1;
        s.version += 1;
        s.version
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::Publisher;

    #[test]
    fn withdraw_changes_bit_count_and_version_together() {
        let p = Publisher::new(70);
        p.read(|s| {
            assert_eq!((s.count(), s.counted(), s.version()), (70, 70, 0));
            assert!(s.get(69));
        });
        assert_eq!(p.withdraw(69), 1);
        assert_eq!(p.withdraw(69), 1, "a second withdrawal changes nothing");
        assert_eq!(p.withdraw(3), 2);
        p.read(|s| {
            assert_eq!((s.count(), s.counted(), s.version()), (68, 68, 2));
            assert!(!s.get(69) && !s.get(3) && s.get(4));
        });
    }
}
