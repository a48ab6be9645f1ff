//! privseg: privacy-compliant customer segmentation.
#![warn(missing_docs)]
#![deny(unsafe_code)]
// Errors carry a message, a caret and the names a user needs; they are
// returned on cold paths only, so their size costs nothing that matters.
#![allow(clippy::result_large_err)]

pub mod audit;
pub mod consent;
pub mod engine;
pub mod eval;
pub mod policy;
pub mod privacy;
pub mod segment;
pub mod store;
pub mod timestamp;

pub use engine::{Engine, EngineError, Explanation, Members, SharedEngine};
pub use timestamp::Timestamp;
