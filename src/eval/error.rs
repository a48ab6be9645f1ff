//! Errors of the evaluation entry points: inputs that do not fit each other.

use crate::timestamp::Timestamp;

/// Why an evaluation entry point refused its inputs. The engine never gives
/// such inputs, so from an engine call this is an internal failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The eligibility mask does not have one bit per row of the store.
    #[error("the eligibility mask has {mask} bits but the store has {rows} rows")]
    MaskLength {
        /// Bits in the mask.
        mask: usize,
        /// Rows in the store.
        rows: usize,
    },
    /// The output buffer does not have one word per plan word.
    #[error("the output buffer has {out} words but the plan has {words}")]
    OutputLength {
        /// Words in the buffer.
        out: usize,
        /// Words of the plan ([`super::Plan::words`]).
        words: usize,
    },
    /// A mask cache was asked to move back in time.
    #[error("a mask cache current at {cache} cannot move back to {asked}")]
    MaskBackwards {
        /// The cache's instant.
        cache: Timestamp,
        /// The instant asked for.
        asked: Timestamp,
    },
    /// A mask cache was asked to move forward over a store with fewer rows
    /// than the cache (not the store it was built for).
    #[error("a mask cache of {cache} rows cannot follow a store of {rows} rows")]
    MaskStore {
        /// Rows in the cache.
        cache: usize,
        /// Rows in the store.
        rows: usize,
    },
}
