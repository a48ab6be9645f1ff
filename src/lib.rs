//! privseg: privacy-compliant customer segmentation.
#![warn(missing_docs)]
#![deny(unsafe_code)]
// Errors carry a message, a caret and the names a user needs; they are
// returned on cold paths only, so their size costs nothing that matters.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod audit;
pub mod clock;
pub mod consent;
pub mod engine;
pub mod eval;
pub mod fairness;
// The C ABI: the one place where unsafe code is allowed. C names are kept
// as they appear in the header.
#[allow(unsafe_code, non_camel_case_types, clippy::too_many_arguments)]
pub mod ffi;
pub mod import;
pub mod load;
pub mod outputs;
pub mod policy;
pub mod privacy;
// Under `cfg(loom)` tests/loom_publish.rs compiles this file itself, with
// loom's primitives (loom is a dev-dependency, which the library cannot use).
#[cfg(not(loom))]
pub mod publish;
pub mod report;
pub mod rights;
pub mod segment;
pub mod shard;
pub mod store;
pub mod timestamp;
pub mod value;

pub use access::Actor;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{Engine, EngineError, Explanation, Members, PurgeSummary, SharedEngine};
pub use timestamp::Timestamp;
pub use value::Value;

/// The README's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
