//! `privseg_members`: the result of an evaluation.

use std::ffi::c_char;

use std::sync::RwLockReadGuard;

use super::buffer::{buffer_out, privseg_buffer};
use super::engine::{EngineState, engine_read, privseg_engine};
use super::prelude::*;
use super::{FfiError, ffi_status, ffi_value, non_null, privseg_status, write_out, write_text};
use crate::Members;

/// The longest subject or actor id, in bytes: longer ids are refused when
/// they are given (`crate::engine::MAX_ID_LEN`).
pub const PRIVSEG_MAX_ID_LEN: usize = 256;

/// The members of a segment at an instant, from `privseg_engine_evaluate`.
/// It owns its result; reading member ids needs the engine that produced it
/// (another engine gives `PRIVSEG_STATUS_FOREIGN_RESULT`).
/// Free it with [`privseg_members_free`].
pub struct privseg_members {
    _opaque: [u8; 0],
}

impl Castable for privseg_members {
    type Rust = Members;
    const WHAT: &'static str = "members";
}
impl BoxCastable for privseg_members {}

/// Hands members to C.
pub(crate) fn members_out(m: Members) -> *mut privseg_members {
    to_box(m)
}

/// Borrows members and locks the engine that produced them for reading,
/// refusing members of another engine with
/// `PRIVSEG_STATUS_FOREIGN_RESULT`.
///
/// # Safety
/// As for [`members_ref`] and `engine_read`.
unsafe fn with_engine<'a>(
    m: *const privseg_members,
    e: *const privseg_engine,
) -> Result<(&'a Members, RwLockReadGuard<'a, EngineState>), FfiError> {
    let m = try_ref_from_ptr!(m)?;
    let e = from_caller!(engine_read(e))?;
    if !m.made_by(&e.engine) {
        return Err(crate::EngineError::ForeignResult.into());
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
        let m = try_ref_from_ptr!(members)?;
        from_caller!(write_out(count_out, m.count()))
    })
}

/// Releases every member id, in the order subjects were added, into a new
/// buffer `*ids_out` (read it with `privseg_buffer_len` and
/// `privseg_buffer_copy`, free it with `privseg_buffer_free`): each id
/// followed by a NUL byte, one after the other. The gate is applied again
/// now: the engine's current actor must hold `member_ids` for the purpose
/// (after `privseg_engine_set_actor` to an actor without it, the members
/// can no longer be read: `PRIVSEG_STATUS_ACCESS_DENIED`), and members no
/// longer eligible as of the engine's clock (a withdrawal, an objection, an
/// erasure since the evaluation) are left out. The release is one entry of
/// the audit log; reading the buffer records nothing more, so its size is
/// known without releasing the ids twice. Members of another engine give
/// `PRIVSEG_STATUS_FOREIGN_RESULT`.
///
/// # Safety
/// `members` must be live members; `engine` the live engine that produced
/// them; `ids_out` must point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_members_ids(
    members: *const privseg_members,
    engine: *const privseg_engine,
    ids_out: *mut *mut privseg_buffer,
) -> privseg_status {
    ffi_status!({
        let (m, e) = from_caller!(with_engine(members, engine))?;
        non_null(ids_out, "ids_out")?;
        let ids = e.engine.member_ids(&e.actor, m)?;
        let mut bytes = Vec::with_capacity(ids.iter().map(|id| id.len() + 1).sum());
        for id in &ids {
            bytes.extend_from_slice(id.as_bytes());
            bytes.push(0);
        }
        from_caller!(write_out(ids_out, buffer_out(bytes)))
    })
}

/// Iterates over the members: start with `*cursor == 0`; each call copies
/// the next member id at or after the cursor into `buf` (following the
/// buffer convention of this API), advances `*cursor` past it, and returns
/// `PRIVSEG_STATUS_OK`; when there is none left it returns
/// `PRIVSEG_STATUS_DONE`. The gate is that of [`privseg_members_ids`],
/// applied at each call, and each id released is recorded. `buf` must hold
/// `PRIVSEG_MAX_ID_LEN + 1` bytes, enough for any id: a smaller one gives
/// `PRIVSEG_STATUS_BUFFER_TOO_SMALL` (with `*written` set to
/// `PRIVSEG_MAX_ID_LEN`) before anything is released or recorded, and the
/// cursor is left unchanged.
///
/// # Safety
/// `members` must be live members; `engine` the live engine that produced
/// them; `cursor` must point to a
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
        let (m, e) = from_caller!(with_engine(members, engine))?;
        non_null(cursor, "cursor")?;
        non_null(written, "written")?;
        if buf.is_null() && len != 0 {
            return Err(FfiError::null("buf"));
        }
        if len <= PRIVSEG_MAX_ID_LEN {
            // SAFETY: written is not NULL and writable, as the caller
            // promises.
            unsafe { *written = PRIVSEG_MAX_ID_LEN };
            return Err(FfiError::new(
                privseg_status::BufferTooSmall,
                format!(
                    "a buffer of {len} bytes is too small: {} are needed for any id",
                    PRIVSEG_MAX_ID_LEN + 1
                ),
            ));
        }
        // SAFETY: cursor is not NULL and readable, as the caller promises.
        let from = unsafe { *cursor };
        let from = u32::try_from(from).unwrap_or(u32::MAX);
        let next = e.engine.release_rows(&e.actor, m, from, 1)?;
        let Some(&row) = next.first() else {
            return Err(FfiError::new(privseg_status::Done, "no more members"));
        };
        let row = row as usize;
        let id = e.engine.store().id(row as u32);
        from_caller!(write_text(id.as_bytes(), buf, len, written))?;
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
        from_caller!(free_box(members));
    })
}
