//! `privseg_segment`: a segment checked against a policy (reference counted,
//! immutable).

use std::ffi::c_char;
use std::sync::Arc;

use super::error::{ErrorObject, give_error, privseg_error};
use super::policy::{policy_ref, privseg_policy};
use super::{
    Fail, ffi_status, ffi_value, non_null, privseg_status, str_arg, write_out, write_text,
};
use crate::segment::{self, CheckedSegment, SegmentError};

/// A segment parsed and validated against a policy: holding one is the proof
/// that it respects the policy. Reference counted and immutable: share it
/// between threads with [`privseg_segment_clone`]; release each reference
/// with [`privseg_segment_free`].
pub struct privseg_segment {
    _opaque: [u8; 0],
}

/// Borrows a segment.
///
/// # Safety
/// `s` must be NULL or a live segment reference from this library.
pub(crate) unsafe fn segment_ref<'a>(
    s: *const privseg_segment,
) -> Result<&'a CheckedSegment, Fail> {
    non_null(s, "segment")?;
    // SAFETY: a non-NULL segment pointer comes from Arc::into_raw in
    // segment_result and its reference is alive, as the caller promises.
    Ok(unsafe { &*s.cast::<CheckedSegment>() })
}

/// Writes a compiled segment or its error.
///
/// # Safety
/// `out` must be writable; `err_out` NULL or writable.
pub(crate) unsafe fn segment_result(
    r: Result<CheckedSegment, SegmentError>,
    out: *mut *const privseg_segment,
    err_out: *mut *mut privseg_error,
) -> Result<(), Fail> {
    match r {
        Ok(s) => {
            let p = Arc::into_raw(Arc::new(s)).cast::<privseg_segment>();
            // SAFETY: out is writable, as the caller promises.
            unsafe { write_out(out, p) }
        }
        // SAFETY: err_out is NULL or writable, as the caller promises.
        Err(e) => Err(unsafe { give_error(ErrorObject::from(&e), err_out) }),
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
        // SAFETY: the caller's contract.
        let policy = unsafe { policy_ref(policy) }?;
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg(text, len, "text") }?;
        non_null(segment_out, "segment_out")?;
        // SAFETY: the caller's contract.
        unsafe { segment_result(segment::compile(policy, text), segment_out, err_out) }
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
        // SAFETY: the caller's contract.
        let policy = unsafe { policy_ref(policy) }?;
        // SAFETY: the caller's contract.
        let json = unsafe { str_arg(json, len, "json") }?;
        non_null(segment_out, "segment_out")?;
        let r = segment::from_json(json).and_then(|s| segment::validate(policy, &s, ""));
        // SAFETY: the caller's contract.
        unsafe { segment_result(r, segment_out, err_out) }
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
    ffi_value!(std::ptr::null(), {
        if !segment.is_null() {
            // SAFETY: the pointer came from Arc::into_raw and holds a live
            // reference, as the caller promises.
            unsafe { Arc::increment_strong_count(segment.cast::<CheckedSegment>()) };
        }
        segment
    })
}

/// Releases one reference to a segment; NULL does nothing.
///
/// # Safety
/// `segment` must be NULL or a live segment reference from this library, not
/// used through this reference after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_segment_free(segment: *const privseg_segment) {
    ffi_value!((), {
        if !segment.is_null() {
            // SAFETY: the pointer came from Arc::into_raw and this reference
            // is released once, as the caller promises.
            drop(unsafe { Arc::from_raw(segment.cast::<CheckedSegment>()) });
        }
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
        // SAFETY: the caller's contract.
        let s = unsafe { segment_ref(segment) }?;
        // SAFETY: the caller's contract.
        unsafe { write_text(s.name().as_bytes(), buf, len, written) }
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
        // SAFETY: the caller's contract.
        let s = unsafe { segment_ref(segment) }?;
        // SAFETY: the caller's contract.
        unsafe { write_text(s.purpose_key().as_bytes(), buf, len, written) }
    })
}
