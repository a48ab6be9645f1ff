//! The segment language: text and JSON forms, parsing, and validation
//! against a policy.
//!
//! ```text
//! text ─┐
//!       ├─> Segment (syntax only) ──validate(policy)──> CheckedSegment
//! JSON ─┘
//! ```

mod ast;
mod error;
mod parse;
mod validate;

pub use ast::{CmpOp, Expr, Literal, Segment, Span};
pub use error::{SegmentError, SegmentErrorKind, Stage};
pub use parse::{MAX_DEPTH, MAX_SEGMENT_BYTES, parse};
pub(crate) use validate::check_field;
pub use validate::{Bound, CheckedExpr, CheckedSegment, Term, validate};

/// Parses the JSON form of a segment.
pub fn from_json(text: &str) -> Result<Segment, SegmentError> {
    parse::check_size(text)?;
    serde_json::from_str(text).map_err(|e| SegmentError::json(e.to_string(), e.line(), e.column()))
}

/// The JSON form of a segment.
pub fn to_json(seg: &Segment) -> String {
    serde_json::to_string(seg).expect("a segment always serialises")
}

/// Parses the text form and validates it.
pub fn compile(policy: &crate::policy::Policy, text: &str) -> Result<CheckedSegment, SegmentError> {
    validate(policy, &parse(text)?, text)
}
