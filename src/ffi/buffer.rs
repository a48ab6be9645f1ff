//! `privseg_buffer`: the output of a call that releases data (an export, a
//! list of member ids), made once and then read by the caller as often as
//! it needs.
//!
//! Such a call is gated and recorded in the audit log each time it runs, so
//! it must not run once to learn a size and again to fill a buffer: it runs
//! once into a buffer the library holds, and the caller asks that buffer its
//! length ([`privseg_buffer_len`]) and copies it out
//! ([`privseg_buffer_copy`]) without anything being run or recorded again.

use std::ffi::c_char;

use zeroize::Zeroizing;

use super::prelude::*;
use super::{ffi_status, ffi_value, privseg_status, write_out, write_text};

/// Bytes released by one call (an export, member ids), held by the library
/// until [`privseg_buffer_free`], which wipes them. Reading it runs and
/// records nothing. Immutable: several threads may read it at once.
pub struct privseg_buffer {
    _opaque: [u8; 0],
}

/// What a `*mut privseg_buffer` points to; its bytes are wiped when it is
/// dropped.
pub(crate) struct Buffer(Zeroizing<Vec<u8>>);

impl Castable for privseg_buffer {
    type Rust = Buffer;
    const WHAT: &'static str = "buffer";
}
impl BoxCastable for privseg_buffer {}

/// Hands bytes to C as a buffer.
pub(crate) fn buffer_out(bytes: Vec<u8>) -> *mut privseg_buffer {
    to_box(Buffer(Zeroizing::new(bytes)))
}

/// The length in bytes of the buffer's contents (without a terminating NUL:
/// copying them out needs one byte more).
///
/// # Safety
/// `buffer` must be a live buffer; `len_out` must point to a writable
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_buffer_len(
    buffer: *const privseg_buffer,
    len_out: *mut usize,
) -> privseg_status {
    ffi_status!({
        let b = try_ref_from_ptr!(buffer)?;
        from_caller!(write_out(len_out, b.0.len()))
    })
}

/// Copies the buffer's contents and a terminating NUL into `buf`, following
/// the buffer convention of this API (a buffer too small gets nothing, and
/// `*written` the length). Runs and records nothing: it may be repeated.
///
/// # Safety
/// `buffer` must be a live buffer; `buf` must be NULL or point to `len`
/// writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_buffer_copy(
    buffer: *const privseg_buffer,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let b = try_ref_from_ptr!(buffer)?;
        from_caller!(write_text(&b.0, buf, len, written))
    })
}

/// Wipes and frees a buffer; NULL does nothing.
///
/// # Safety
/// `buffer` must be NULL or a live buffer from this library, not used after
/// this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_buffer_free(buffer: *mut privseg_buffer) {
    ffi_value!((), {
        from_caller!(free_box(buffer));
    })
}
