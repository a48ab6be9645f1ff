//! Error type shared by all signal decoders and encoders.

use thiserror::Error;

/// An error raised while decoding or encoding a consent signal.
///
/// Bit offsets are counted from the first bit of the segment (TCF) or
/// section/sub-section (GPP) being read, left to right, starting at 0.
/// Field names follow the IAB specifications (for example `MaxVendorId`
/// or `DisclosedVendors.MaxVendorId`).
#[non_exhaustive]
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignalError {
    /// The string is none of the known signal formats.
    #[error(
        "not a known consent signal (starts with {first:?}): a TCF TC string starts with C, a GPP string with D, a US Privacy string with 1"
    )]
    UnknownFormat {
        /// Its first character.
        first: char,
    },
    /// A TCF v1 consent string (its first character is `B`, version 1).
    #[error(
        "TCF v1 is not supported: TCF v1 consent strings were retired in August 2020; only TCF v2 TC strings (starting with C) are read"
    )]
    TcfV1Unsupported,
    /// The input string (or a segment of it) was empty.
    #[error("empty input for {what}")]
    Empty {
        /// What was expected (segment or section name).
        what: &'static str,
    },
    /// A character outside the base64url alphabet was found.
    #[error("invalid base64url character {ch:?} at character position {position}")]
    InvalidBase64 {
        /// Character position in the encoded segment.
        position: usize,
        /// The offending character.
        ch: char,
    },
    /// The data ended before a field could be read completely.
    #[error(
        "truncated data reading {field} at bit {offset}: {needed} bits needed, {available} available"
    )]
    Truncated {
        /// Field being read.
        field: &'static str,
        /// Bit offset of the field.
        offset: usize,
        /// Bits needed to read the field.
        needed: usize,
        /// Bits left in the data.
        available: usize,
    },
    /// A version or type field holds a value this decoder does not support.
    #[error("unsupported value {found} for {field} at bit {offset}")]
    UnsupportedVersion {
        /// Field name.
        field: &'static str,
        /// Bit offset of the field.
        offset: usize,
        /// Value found.
        found: u64,
    },
    /// A field holds a value the specification does not allow.
    #[error("invalid value {value} for {field} at bit {offset}: {reason}")]
    InvalidValue {
        /// Field name.
        field: &'static str,
        /// Bit offset of the field.
        offset: usize,
        /// Value found.
        value: u64,
        /// Why the value is invalid.
        reason: &'static str,
    },
    /// A vendor range has a start greater than its end.
    #[error("range in {field} at bit {offset} has start {start} > end {end}")]
    RangeStartAfterEnd {
        /// Field name.
        field: &'static str,
        /// Bit offset of the range entry.
        offset: usize,
        /// Start id.
        start: u16,
        /// End id.
        end: u16,
    },
    /// Two vendor ranges of the same section overlap. Decoding no longer
    /// returns it: such a string is read as the reference libraries read it
    /// and the overlap is a violation (a `PolicyViolation` in strict mode).
    #[error("range {start}..={end} in {field} at bit {offset} overlaps an earlier entry")]
    RangeOverlap {
        /// Field name.
        field: &'static str,
        /// Bit offset of the range entry.
        offset: usize,
        /// Start id.
        start: u16,
        /// End id.
        end: u16,
    },
    /// A vendor id is larger than the section's `MaxVendorId`. Decoding no
    /// longer returns it: such a string is read as the reference libraries
    /// read it and the id is a violation (a `PolicyViolation` in strict
    /// mode).
    #[error("vendor id {id} in {field} at bit {offset} exceeds MaxVendorId {max}")]
    IdExceedsMax {
        /// Field name.
        field: &'static str,
        /// Bit offset of the entry.
        offset: usize,
        /// The vendor id.
        id: u16,
        /// The declared maximum.
        max: u16,
    },
    /// A TC string segment type occurred twice.
    #[error("duplicate TC string segment type {segment_type} (segment {index})")]
    DuplicateSegment {
        /// The 3-bit segment type.
        segment_type: u8,
        /// Position of the segment in the string (core = 0).
        index: usize,
    },
    /// A policy rule (TCF v2.2 / v2.3) is violated and strict validation is on.
    #[error("policy violation in {field}{}: {reason}", at_bit(*offset))]
    PolicyViolation {
        /// Field name.
        field: &'static str,
        /// Bit offset of the offending bit, when one applies.
        offset: Option<usize>,
        /// The rule that was broken.
        reason: &'static str,
    },
    /// The GPP header names a section that is absent from the string.
    #[error(
        "GPP header names section id {section_id} (position {index}) but the string has no such section"
    )]
    SectionMissing {
        /// Section id from the header.
        section_id: u16,
        /// Position of the section (0 = first after the header).
        index: usize,
    },
    /// The GPP string contains more sections than the header lists.
    #[error("GPP string has {found} sections but the header lists {declared}")]
    ExtraSections {
        /// Sections listed in the header.
        declared: usize,
        /// Sections present.
        found: usize,
    },
    /// An error inside a GPP section.
    ///
    /// The message includes the inner error's, so it is not also given as
    /// the `source` (a printed chain would name it twice); match on the field.
    #[error("in GPP section {section_id} (position {index}): {error}")]
    InSection {
        /// Section id.
        section_id: u16,
        /// Position of the section.
        index: usize,
        /// The underlying error.
        error: Box<SignalError>,
    },
    /// A US Privacy string is malformed.
    #[error("invalid US Privacy string at character {position}: {reason}")]
    InvalidUsPrivacy {
        /// Character position.
        position: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value cannot be encoded.
    #[error("cannot encode {field}: {reason}")]
    Encode {
        /// Field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// JSON input or output failed.
    #[error("JSON error: {0}")]
    Json(String),
}

/// ` at bit N` when an offset applies, nothing otherwise.
fn at_bit(offset: Option<usize>) -> String {
    offset.map(|o| format!(" at bit {o}")).unwrap_or_default()
}

/// Shorthand result type for this module.
pub type SignalResult<T> = Result<T, SignalError>;
