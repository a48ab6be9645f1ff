//! `privseg_engine_create` / `privseg_engine_open`: a durable engine kept
//! in a directory, its subjects' data keys wrapped by a key-encryption key
//! the host passes as bytes (see docs/store.md).

use std::ffi::c_char;
use std::sync::Arc;

use super::engine::{EngineHandle, actor_arg, engine_write, privseg_engine};
use super::policy::privseg_policy;
use super::prelude::*;
use super::{
    FfiError, ffi_status, non_null, privseg_status, privseg_str, slice_arg, str_arg, write_out,
};
use crate::Engine;
use crate::store::{KeyProvider, StaticKek};

/// Which of the two calls.
#[derive(Clone, Copy)]
enum Mode {
    Create,
    Open,
}

/// Reads the arguments common to both calls and makes the engine.
///
/// # Safety
/// As for [`privseg_engine_create`].
#[allow(clippy::too_many_arguments)]
unsafe fn durable(
    mode: Mode,
    policy: *const privseg_policy,
    dir: *const c_char,
    dir_len: usize,
    kek: *const u8,
    kek_len: usize,
    actor_id: *const c_char,
    actor_id_len: usize,
    roles: *const privseg_str,
    roles_len: usize,
    engine_out: *mut *mut privseg_engine,
) -> Result<(), FfiError> {
    let policy = from_caller!(try_clone_arc(policy))?;
    let dir = from_caller!(str_arg(dir, dir_len, "dir"))?;
    non_null(kek, "kek")?;
    let kek = from_caller!(slice_arg(kek, kek_len, "kek"))?;
    let actor = from_caller!(actor_arg(actor_id, actor_id_len, roles, roles_len))?;
    non_null(engine_out, "engine_out")?;
    if dir.is_empty() {
        return Err(FfiError::new(
            privseg_status::InvalidArgument,
            "dir: the store directory is empty",
        ));
    }
    let keys: Arc<dyn KeyProvider> = Arc::new(
        StaticKek::new("host", kek)
            .map_err(|e| FfiError::new(privseg_status::InvalidArgument, format!("kek: {e}")))?,
    );
    let engine = match mode {
        Mode::Create => Engine::create(dir, policy, keys),
        Mode::Open => Engine::open(dir, policy, keys),
    }?;
    let e = EngineHandle::into_raw(engine, actor);
    from_caller!(write_out(engine_out, e))
}

/// Creates a durable engine in directory `dir` (`dir_len` bytes of UTF-8,
/// created if missing; it must not hold a store yet), as for
/// [`super::privseg_engine_new`] otherwise. Every acknowledged write (a
/// subject, value, event, erasure, import) is on disk before the call
/// returns. Subjects' data keys are wrapped under `kek`, the host's
/// key-encryption key: exactly 32 bytes (`PRIVSEG_STATUS_INVALID_ARGUMENT`
/// otherwise), which the host keeps and passes again to
/// [`privseg_engine_open`]. The audit log is in memory.
///
/// A directory that already holds a store, or that cannot be written, gives
/// `PRIVSEG_STATUS_ENGINE_OTHER` with the reason in the last error.
///
/// # Safety
/// `policy` must be a live policy reference; `dir` must point to `dir_len`
/// readable bytes; `kek` to `kek_len` readable bytes; `actor_id`, `roles`
/// and `engine_out` as for [`super::privseg_engine_new`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_create(
    policy: *const privseg_policy,
    dir: *const c_char,
    dir_len: usize,
    kek: *const u8,
    kek_len: usize,
    actor_id: *const c_char,
    actor_id_len: usize,
    roles: *const privseg_str,
    roles_len: usize,
    engine_out: *mut *mut privseg_engine,
) -> privseg_status {
    ffi_status!({
        from_caller!(durable(
            Mode::Create,
            policy,
            dir,
            dir_len,
            kek,
            kek_len,
            actor_id,
            actor_id_len,
            roles,
            roles_len,
            engine_out,
        ))
    })
}

/// Opens the durable engine in directory `dir` under `policy` and the
/// key-encryption key `kek` (32 bytes) it was created with: every subject,
/// value and event is read back and checked. A directory with no store, a
/// key that is not the store's, damage, or stored data the policy no longer
/// admits give `PRIVSEG_STATUS_ENGINE_OTHER` naming the cause; nothing is
/// half opened.
///
/// # Safety
/// As for [`privseg_engine_create`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_open(
    policy: *const privseg_policy,
    dir: *const c_char,
    dir_len: usize,
    kek: *const u8,
    kek_len: usize,
    actor_id: *const c_char,
    actor_id_len: usize,
    roles: *const privseg_str,
    roles_len: usize,
    engine_out: *mut *mut privseg_engine,
) -> privseg_status {
    ffi_status!({
        from_caller!(durable(
            Mode::Open,
            policy,
            dir,
            dir_len,
            kek,
            kek_len,
            actor_id,
            actor_id_len,
            roles,
            roles_len,
            engine_out,
        ))
    })
}

/// Writes a durable engine's pending state into its database and an
/// encrypted snapshot of its indexes, so that the next
/// [`privseg_engine_open`] reads the snapshot instead of rebuilding every
/// index (skipped when the snapshot on record is current). Nothing is lost
/// without it, only the next open is slower. Does nothing for an in-memory
/// engine. A failure to write gives `PRIVSEG_STATUS_ENGINE_OTHER` or
/// `PRIVSEG_STATUS_INTERNAL` naming the cause.
///
/// # Safety
/// `engine` must be a live engine.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_checkpoint(engine: *mut privseg_engine) -> privseg_status {
    ffi_status!({
        // The write lock: two checkpoints of one engine never interleave.
        let guard = from_caller!(engine_write(engine))?;
        Ok(guard.engine.checkpoint()?)
    })
}
