//! privseg: privacy-compliant customer segmentation.
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod audit;
pub mod consent;
pub mod policy;
pub mod privacy;
pub mod timestamp;

pub use timestamp::Timestamp;
pub mod segment;
