//! `privseg_error`: the rich error of a policy or segment that was refused.

use std::ffi::c_char;

use super::prelude::*;
use super::{FfiError, ffi_status, ffi_value, privseg_status, write_text};
use crate::EngineError;
use crate::consent::Rule;
use crate::policy::PolicyError;
use crate::privacy::dp::BudgetError;
use crate::segment::{SegmentError, Stage};

/// An error object: why a policy or a segment was refused, with its message
/// (a caret under the offending text included), its position and, for a
/// refusal by the policy, the rule broken. Made by the functions that take a
/// `privseg_error **err_out`; freed with [`privseg_error_free`].
pub struct privseg_error {
    _opaque: [u8; 0],
}

/// What a `*mut privseg_error` points to.
#[derive(Debug)]
pub(crate) struct ErrorObject {
    pub status: privseg_status,
    pub message: String,
    pub rule: Option<Rule>,
    pub line: usize,
    pub column: usize,
}

impl From<&ErrorObject> for FfiError {
    fn from(e: &ErrorObject) -> FfiError {
        FfiError::new(e.status, e.message.clone())
    }
}

/// The status of a segment error.
fn segment_status(e: &SegmentError) -> privseg_status {
    match e.stage() {
        Stage::Parse => privseg_status::SegmentSyntax,
        Stage::Validate => privseg_status::SegmentRefused,
    }
}

impl From<&SegmentError> for ErrorObject {
    fn from(e: &SegmentError) -> ErrorObject {
        ErrorObject {
            status: segment_status(e),
            message: e.to_string(),
            rule: e.rule(),
            line: e.line(),
            column: e.column(),
        }
    }
}

impl From<&PolicyError> for ErrorObject {
    fn from(e: &PolicyError) -> ErrorObject {
        let (status, line, column) = match e {
            PolicyError::Json { line, column, .. } => (privseg_status::PolicyJson, *line, *column),
            PolicyError::Invalid(_) => (privseg_status::PolicyInvalid, 0, 0),
        };
        ErrorObject {
            status,
            message: e.to_string(),
            rule: None,
            line,
            column,
        }
    }
}

/// The status of an engine error. Every variant is named: a new one does
/// not compile until it is given a status.
pub(crate) fn engine_status(e: &EngineError) -> privseg_status {
    match e {
        EngineError::UnknownSubject(_) => privseg_status::UnknownSubject,
        EngineError::DuplicateSubject(_) => privseg_status::DuplicateSubject,
        EngineError::InvalidId(_) => privseg_status::InvalidSubjectId,
        EngineError::UnknownJurisdiction { .. } => privseg_status::UnknownJurisdiction,
        EngineError::UnknownAttribute(_) => privseg_status::UnknownAttribute,
        EngineError::UnknownPurpose(_) => privseg_status::UnknownPurpose,
        EngineError::Value(_) => privseg_status::InvalidValue,
        EngineError::Event(_) => privseg_status::InvalidEvent,
        EngineError::PolicyMismatch { .. } => privseg_status::PolicyMismatch,
        EngineError::Access(_) => privseg_status::AccessDenied,
        EngineError::Audit(_) => privseg_status::Audit,
        EngineError::UnknownRecipient(_) => privseg_status::UnknownRecipient,
        EngineError::ExportRefused { .. } => privseg_status::ExportRefused,
        EngineError::ForeignResult => privseg_status::ForeignResult,
        EngineError::InvalidActor(_) => privseg_status::InvalidArgument,
        EngineError::InvalidBirthDate { .. } => privseg_status::InvalidDate,
        EngineError::Segment(s) => segment_status(s),
        EngineError::Random(_)
        | EngineError::Io(_)
        | EngineError::Noise(_)
        | EngineError::Eval(_) => privseg_status::Internal,
        EngineError::Budget(BudgetError::File(_)) => privseg_status::Internal,
        // A charge the log records but cannot be read: the log is not sound.
        EngineError::UnreadableCharge { .. } => privseg_status::Audit,
        // No C function charges a budget, makes pseudonyms outside an
        // export's keys, or opens a durable store yet: the C API has no
        // code of its own for these.
        EngineError::Budget(_)
        | EngineError::Pseudonym(_)
        | EngineError::Aggregate(_)
        | EngineError::Store(_)
        | EngineError::NotCategorical(_)
        | EngineError::NotProtected(_) => privseg_status::EngineOther,
    }
}

impl From<EngineError> for FfiError {
    fn from(e: EngineError) -> FfiError {
        FfiError::new(engine_status(&e), e.to_string())
    }
}

/// Hands an error object to the caller through `err_out` (when it is not
/// NULL) and returns the failure for the status and last-error message.
///
/// # Safety
/// `err_out` must be NULL or valid for a write of a pointer.
pub(crate) unsafe fn give_error(obj: ErrorObject, err_out: *mut *mut privseg_error) -> FfiError {
    let fail = FfiError::from(&obj);
    if !err_out.is_null() {
        let p = to_box::<privseg_error>(obj);
        // SAFETY: err_out is not NULL and writable, as the caller promises.
        unsafe { err_out.write(p) };
    }
    fail
}

impl Castable for privseg_error {
    type Rust = ErrorObject;
    const WHAT: &'static str = "err";
}
impl BoxCastable for privseg_error {}

/// The error's status (such as `PRIVSEG_STATUS_SEGMENT_REFUSED`);
/// `PRIVSEG_STATUS_NULL_PARAMETER` for a NULL error.
///
/// # Safety
/// `err` must be NULL or a live error object from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_error_status(err: *const privseg_error) -> privseg_status {
    ffi_value!(privseg_status::Panic, {
        match try_ref_from_ptr!(err) {
            Ok(e) => e.status,
            Err(f) => f.status,
        }
    })
}

/// Copies the error's full message (for a segment, with the source line and
/// a caret under the offending text) into `buf`, following the buffer
/// convention of this API.
///
/// # Safety
/// `err` must be NULL or a live error object from this library; `buf` must be
/// NULL or point to `len` writable bytes; `written` must point to a writable
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_error_message(
    err: *const privseg_error,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let e = try_ref_from_ptr!(err)?;
        from_caller!(write_text(e.message.as_bytes(), buf, len, written))
    })
}

/// Copies the id of the rule broken (such as `"R2"`) into `buf`, following
/// the buffer convention of this API; the text is empty when no rule applies
/// (a syntax error, an invalid policy).
///
/// # Safety
/// As for [`privseg_error_message`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_error_rule(
    err: *const privseg_error,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let e = try_ref_from_ptr!(err)?;
        let rule = e.rule.map(|r| r.to_string()).unwrap_or_default();
        from_caller!(write_text(rule.as_bytes(), buf, len, written))
    })
}

/// The 1-based line of the offending text; 0 when unknown or `err` is NULL.
///
/// # Safety
/// `err` must be NULL or a live error object from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_error_line(err: *const privseg_error) -> usize {
    ffi_value!(0, { try_ref_from_ptr!(err).map_or(0, |e| e.line) })
}

/// The 1-based column (in characters) of the offending text; 0 when unknown
/// or `err` is NULL.
///
/// # Safety
/// `err` must be NULL or a live error object from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_error_column(err: *const privseg_error) -> usize {
    ffi_value!(0, { try_ref_from_ptr!(err).map_or(0, |e| e.column) })
}

/// Frees an error object; NULL does nothing.
///
/// # Safety
/// `err` must be NULL or a live error object from this library, not used
/// after this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_error_free(err: *mut privseg_error) {
    ffi_value!((), {
        from_caller!(free_box(err));
    })
}
