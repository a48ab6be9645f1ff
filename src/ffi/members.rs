//! `privseg_members`: the result of an evaluation.

use std::ffi::c_char;

use super::engine::{EngineHandle, engine_ref, privseg_engine};
use super::{Fail, ffi_status, ffi_value, non_null, privseg_status, write_out};
use crate::Members;

/// The members of a segment at an instant, from `privseg_engine_evaluate`.
/// It owns its result; reading member ids needs the engine that produced it.
/// Free it with [`privseg_members_free`].
pub struct privseg_members {
    _opaque: [u8; 0],
}

/// Hands members to C.
pub(crate) fn members_out(m: Members) -> *mut privseg_members {
    Box::into_raw(Box::new(m)).cast()
}

/// Borrows members.
///
/// # Safety
/// `m` must be NULL or live members from this library.
unsafe fn members_ref<'a>(m: *const privseg_members) -> Result<&'a Members, Fail> {
    non_null(m, "members")?;
    // SAFETY: a non-NULL members pointer is a Box<Members> from members_out,
    // alive as the caller promises.
    Ok(unsafe { &*m.cast::<Members>() })
}

/// Borrows members and the engine that produced them, checking they belong
/// together as far as it can be seen (same policy, no more rows than the
/// engine has).
///
/// # Safety
/// As for [`members_ref`] and `engine_ref`.
unsafe fn with_engine<'a>(
    m: *const privseg_members,
    e: *const privseg_engine,
) -> Result<(&'a Members, &'a EngineHandle), Fail> {
    // SAFETY: the caller's contract.
    let m = unsafe { members_ref(m) }?;
    // SAFETY: the caller's contract.
    let e = unsafe { engine_ref(e) }?;
    if !m.made_by(&e.engine) {
        return Err(Fail::arg("these members were not produced by this engine"));
    }
    Ok((m, e))
}

/// The number of members.
///
/// # Safety
/// `members` must be live members from this library; `count_out` must point
/// to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_members_count(
    members: *const privseg_members,
    count_out: *mut u64,
) -> privseg_status {
    ffi_status!({
        // SAFETY: the caller's contract.
        let m = unsafe { members_ref(members) }?;
        // SAFETY: the caller's contract.
        unsafe { write_out(count_out, m.count()) }
    })
}

/// Copies every member id, in the order subjects were added, into `buf`:
/// each id followed by a NUL byte, one after the other. `*written` receives
/// the total number of bytes, NULs included. When they do not fit, nothing
/// is written to `buf`, `*written` still receives the size needed, and the
/// status is `PRIVSEG_STATUS_BUFFER_TOO_SMALL`; a NULL `buf` with `len == 0`
/// asks for the size this way. A subject erased after the evaluation reads
/// as an empty id.
///
/// # Safety
/// `members` must be live members; `engine` the live engine that produced
/// them, not being changed by another thread; `buf` must be NULL or point to
/// `len` writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_members_ids(
    members: *const privseg_members,
    engine: *const privseg_engine,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        // SAFETY: the caller's contract.
        let (m, e) = unsafe { with_engine(members, engine) }?;
        non_null(written, "written")?;
        if buf.is_null() && len != 0 {
            return Err(Fail::null("buf"));
        }
        // The gate is applied again now: the current actor's permission, and
        // eligibility as of the engine's clock.
        let ids = e.engine.member_ids(&e.actor, m)?;
        let needed: usize = ids.iter().map(|id| id.len() + 1).sum();
        if needed > len {
            // SAFETY: written is not NULL and writable.
            unsafe { *written = needed };
            return Err(Fail::new(
                privseg_status::BufferTooSmall,
                format!("a buffer of {len} bytes is too small: {needed} are needed"),
            ));
        }
        let mut at = 0;
        for id in &ids {
            // SAFETY: buf is writable for len >= needed bytes, and at +
            // id.len() + 1 <= needed; the ids are owned by the library and
            // cannot overlap the caller's buffer.
            unsafe {
                std::ptr::copy_nonoverlapping(id.as_ptr(), buf.add(at).cast::<u8>(), id.len());
                *buf.add(at + id.len()) = 0;
            }
            at += id.len() + 1;
        }
        // SAFETY: written is not NULL and writable.
        unsafe { *written = at };
        Ok(())
    })
}

/// Iterates over the members: start with `*cursor == 0`; each call copies
/// the next member id at or after the cursor into `buf` (following the
/// buffer convention of this API), advances `*cursor` past it, and returns
/// `PRIVSEG_STATUS_OK`; when there is none left it returns
/// `PRIVSEG_STATUS_DONE`. When the id does not fit, the cursor is left
/// unchanged, so the call can be repeated with a larger buffer.
///
/// # Safety
/// `members` must be live members; `engine` the live engine that produced
/// them, not being changed by another thread; `cursor` must point to a
/// readable and writable `size_t`; `buf` must be NULL or point to `len`
/// writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_members_next(
    members: *const privseg_members,
    engine: *const privseg_engine,
    cursor: *mut usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        // SAFETY: the caller's contract.
        let (m, e) = unsafe { with_engine(members, engine) }?;
        non_null(cursor, "cursor")?;
        // SAFETY: cursor is not NULL and readable, as the caller promises.
        let from = unsafe { *cursor };
        let from = u32::try_from(from).unwrap_or(u32::MAX);
        let next = e.engine.release_rows(&e.actor, m, from, 1)?;
        let Some(&row) = next.first() else {
            return Err(Fail::new(privseg_status::Done, "no more members"));
        };
        let row = row as usize;
        let id = e.engine.store().id(row as u32);
        // SAFETY: the caller's contract.
        unsafe { super::write_text(id.as_bytes(), buf, len, written) }?;
        // SAFETY: cursor is writable, as the caller promises.
        unsafe { *cursor = row + 1 };
        Ok(())
    })
}

/// Frees members; NULL does nothing.
///
/// # Safety
/// `members` must be NULL or live members from this library, not used after
/// this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_members_free(members: *mut privseg_members) {
    ffi_value!((), {
        if !members.is_null() {
            // SAFETY: the pointer is a Box<Members> from members_out, freed
            // once, as the caller promises.
            drop(unsafe { Box::from_raw(members.cast::<Members>()) });
        }
    })
}
