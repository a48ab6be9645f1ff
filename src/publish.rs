//! Publishing updates to concurrent readers: [`Shared`], the lock protocol
//! [`crate::SharedEngine`] is built on, and [`Publisher`], the same protocol
//! over an eligibility mask, small enough for a model checker.
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
//! `SharedEngine` is a `Shared<Engine>`: the code the model checks is the
//! code the engine runs, with the engine replaced by a mask (loom cannot
//! run the engine itself: it does file and random-source I/O). Under
//! `cfg(loom)` this module is built on loom's primitives.

#[cfg(loom)]
use loom::sync::{Arc, RwLock};
#[cfg(loom)]
pub use loom::sync::{RwLockReadGuard, RwLockWriteGuard};
#[cfg(not(loom))]
use std::sync::{Arc, RwLock};
#[cfg(not(loom))]
pub use std::sync::{RwLockReadGuard, RwLockWriteGuard};

/// A value shared by writers and many readers: the one lock protocol of
/// the crate's shared engines ([`crate::SharedEngine`]).
///
/// An update runs whole under the write lock ([`Shared::update`]); when it
/// returns, the update is acknowledged, and every read that starts
/// afterwards sees it. A lock poisoned by a panicking holder is taken
/// anyway: every writer leaves the value consistent before anything can
/// panic (the engine rebuilds what it cannot, see `Engine::mask_entry`).
pub struct Shared<T> {
    inner: Arc<RwLock<T>>,
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Shared").field(&*self.read()).finish()
    }
}

impl<T> Shared<T> {
    /// Shares `value`.
    pub fn new(value: T) -> Shared<T> {
        Shared {
            inner: Arc::new(RwLock::new(value)),
        }
    }

    /// Read access (many readers at once).
    pub fn read(&self) -> RwLockReadGuard<'_, T> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Write access (exclusive).
    pub fn write(&self) -> RwLockWriteGuard<'_, T> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs the update `f` whole under the write lock; once this returns,
    /// the update is acknowledged.
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.write())
    }

    /// Runs `f` on the current value, under a read lock.
    pub fn read_with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.read())
    }
}

/// An eligibility mask as readers see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MaskState {
    words: Vec<u64>,
    count: u64,
    version: u64,
}

impl MaskState {
    /// `rows` rows, all eligible, at version 0.
    pub fn new(rows: usize) -> MaskState {
        let mut words = vec![u64::MAX; rows.div_ceil(64)];
        if !rows.is_multiple_of(64) {
            words[rows / 64] = (1u64 << (rows % 64)) - 1;
        }
        MaskState {
            words,
            count: rows as u64,
            version: 0,
        }
    }
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
    /// Withdraws row `row`: the bit, the count and the version change
    /// together. Returns the version that includes it.
    fn withdraw(&mut self, row: usize) -> u64 {
        let (w, b) = (row / 64, 1u64 << (row % 64));
        if self.words[w] & b != 0 {
            self.words[w] &= !b;
            self.count -= 1;
            self.version += 1;
        }
        self.version
    }
}

/// A mask shared by one writer and many readers through [`Shared`]: the
/// engine's protocol with the engine reduced to a mask.
#[derive(Clone, Debug)]
pub struct Publisher {
    inner: Shared<MaskState>,
}

impl Publisher {
    /// `rows` rows, all eligible, at version 0.
    pub fn new(rows: usize) -> Publisher {
        Publisher {
            inner: Shared::new(MaskState::new(rows)),
        }
    }

    /// Records a withdrawal of row `row` as one [`Shared::update`]. Returns
    /// the version that includes it; once this returns, the withdrawal is
    /// acknowledged. A row already withdrawn leaves the mask as it is (and
    /// returns the current version).
    pub fn withdraw(&self, row: usize) -> u64 {
        self.inner.update(|s| s.withdraw(row))
    }

    /// Runs `f` on the current state, under a read lock.
    pub fn read<R>(&self, f: impl FnOnce(&MaskState) -> R) -> R {
        self.inner.read_with(f)
    }
}

/// A deliberately broken withdrawal, in two steps under two locks, for
/// the model's negative test (compiled only into the loom model).
#[cfg(loom)]
impl Publisher {
    /// Step one: clears the bit only.
    pub fn clear_bit_only(&self, row: usize) {
        self.inner
            .update(|s| s.words[row / 64] &= !(1u64 << (row % 64)));
    }
    /// Step two: lowers the count and raises the version.
    pub fn finish_withdrawal(&self) -> u64 {
        self.inner.update(|s| {
            s.count -= 1;
            s.version += 1;
            s.version
        })
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
