//! `privseg_segment`: a segment checked against a policy (reference counted,
//! immutable).

use std::ffi::c_char;
use std::sync::Arc;

use super::error::{ErrorObject, give_error, privseg_error};
use super::policy::privseg_policy;
use super::prelude::*;
use super::{
    FfiError, ffi_status, ffi_value, non_null, privseg_status, str_arg, write_out, write_text,
};
use crate::segment::{self, CheckedSegment, SegmentError};

/// A segment parsed and validated against a policy: holding one is the proof
/// that it respects the policy. Reference counted and immutable: share it
/// between threads with [`privseg_segment_clone`]; release each reference
/// with [`privseg_segment_free`].
pub struct privseg_segment {
    _opaque: [u8; 0],
}

impl Castable for privseg_segment {
    type Rust = CheckedSegment;
    const WHAT: &'static str = "segment";
}
impl ArcCastable for privseg_segment {}

/// Writes a compiled segment or its error.
///
/// # Safety
/// `out` must be writable; `err_out` NULL or writable.
pub(crate) unsafe fn segment_result(
    r: Result<CheckedSegment, SegmentError>,
    out: *mut *const privseg_segment,
    err_out: *mut *mut privseg_error,
) -> Result<(), FfiError> {
    match r {
        Ok(s) => {
            let p = to_arc::<privseg_segment>(Arc::new(s));
            from_caller!(write_out(out, p))
        }
        Err(e) => Err(from_caller!(give_error(ErrorObject::from(&e), err_out))),
    }
}

/// Parses a segment's text form, such as
/// `segment "fr" for marketing.email where country = "FR"`, and validates it
/// against the policy.
///
/// On success `*segment_out` receives a new segment reference. On failure
/// the status is `PRIVSEG_STATUS_SEGMENT_SYNTAX` or
/// `PRIVSEG_STATUS_SEGMENT_REFUSED`, and `*err_out`, when `err_out` is not
/// NULL, receives an error object with the message (a caret under the
/// offending text), its line and column and, for a refusal, the rule.
///
/// # Safety
/// `policy` must be a live policy reference; `text` must point to `len`
/// readable bytes; `segment_out` must point to a writable pointer; `err_out`
/// must be NULL or point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_compile(
    policy: *const privseg_policy,
    text: *const c_char,
    len: usize,
    segment_out: *mut *const privseg_segment,
    err_out: *mut *mut privseg_error,
) -> privseg_status {
    ffi_status!({
        let policy = try_ref_from_ptr!(policy)?;
        let text = from_caller!(str_arg(text, len, "text"))?;
        non_null(segment_out, "segment_out")?;
        from_caller!(segment_result(
            segment::compile(policy, text),
            segment_out,
            err_out
        ))
    })
}

/// Parses a segment's JSON form, such as `{"name": "fr", "purpose":
/// "marketing.email", "where": {...}}`, and validates it against the policy;
/// as [`privseg_segment_compile`] otherwise.
///
/// # Safety
/// As for [`privseg_segment_compile`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_from_json(
    policy: *const privseg_policy,
    json: *const c_char,
    len: usize,
    segment_out: *mut *const privseg_segment,
    err_out: *mut *mut privseg_error,
) -> privseg_status {
    ffi_status!({
        let policy = try_ref_from_ptr!(policy)?;
        let json = from_caller!(str_arg(json, len, "json"))?;
        non_null(segment_out, "segment_out")?;
        let r = segment::from_json(json).and_then(|s| segment::validate(policy, &s, ""));
        from_caller!(segment_result(r, segment_out, err_out))
    })
}

/// Adds a reference to a segment and returns it (the same pointer); NULL for
/// NULL.
///
/// # Safety
/// `segment` must be NULL or a live segment reference from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_clone(
    segment: *const privseg_segment,
) -> *const privseg_segment {
    ffi_value!(std::ptr::null(), { from_caller!(clone_arc_ptr(segment)) })
}

/// Releases one reference to a segment; NULL does nothing.
///
/// # Safety
/// `segment` must be NULL or a live segment reference from this library, not
/// used through this reference after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_free(segment: *const privseg_segment) {
    ffi_value!((), {
        from_caller!(free_arc(segment));
    })
}

/// Copies the segment's name into `buf`, following the buffer convention of
/// this API.
///
/// # Safety
/// `segment` must be a live segment reference; `buf` must be NULL or point to
/// `len` writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_name(
    segment: *const privseg_segment,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(segment)?;
        from_caller!(write_text(s.name().as_bytes(), buf, len, written))
    })
}

/// Copies the segment's purpose key into `buf`, following the buffer
/// convention of this API.
///
/// # Safety
/// As for [`privseg_segment_name`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_purpose(
    segment: *const privseg_segment,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(segment)?;
        from_caller!(write_text(s.purpose_key().as_bytes(), buf, len, written))
    })
}
