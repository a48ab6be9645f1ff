//! Handles: how a Rust value is handed to C, borrowed back and freed,
//! written once for every handle type.
//!
//! Each opaque C type (`privseg_policy`, `privseg_engine`, ...) says what
//! it stands for by implementing [`Castable`], and how it is owned by one of
//! two marker traits:
//!
//! - [`BoxCastable`]: one owner, the caller. Made by [`to_box`] (a
//!   `Box::into_raw`), freed once by [`free_box`]; may be borrowed mutably
//!   ([`try_mut`]) where the C side passes a non-`const` pointer.
//! - [`ArcCastable`]: immutable and reference counted, shared between
//!   threads. Made by [`to_arc`] (an `Arc::into_raw`), another reference
//!   taken by [`try_clone_arc`], each reference released by [`free_arc`].
//!
//! A pointer can only be cast to the Rust type its C type declares, so no
//! call site names the type behind a pointer by hand. Pointer arguments
//! reach these functions through [`from_caller!`](super::from_caller).

use std::sync::Arc;

use super::FfiError;

/// An opaque C handle type and the Rust value its pointers point to.
pub(crate) trait Castable {
    /// What a pointer of this C type points to.
    type Rust;
    /// The handle's name in messages, such as `"policy"` in "policy is
    /// NULL".
    const WHAT: &'static str;
}

/// A handle owned by the caller alone: boxed.
pub(crate) trait BoxCastable: Castable {}

/// A handle that is immutable and reference counted: an `Arc`.
pub(crate) trait ArcCastable: Castable {}

/// Hands a value to C as a new boxed handle.
pub(crate) fn to_box<C: BoxCastable>(value: C::Rust) -> *mut C {
    Box::into_raw(Box::new(value)).cast()
}

/// Hands a reference to C as a reference-counted handle.
pub(crate) fn to_arc<C: ArcCastable>(value: Arc<C::Rust>) -> *const C {
    Arc::into_raw(value).cast()
}

/// Borrows the value behind a handle; NULL gives
/// `PRIVSEG_STATUS_NULL_PARAMETER` naming the handle.
///
/// # Safety
/// `p` must be NULL or a pointer made by [`to_box`] or [`to_arc`] for `C`,
/// not freed (for an `Arc`, one reference held) for `'a`, and not borrowed
/// mutably meanwhile.
pub(crate) unsafe fn try_ref<'a, C: Castable>(p: *const C) -> Result<&'a C::Rust, FfiError> {
    if p.is_null() {
        return Err(FfiError::null(C::WHAT));
    }
    // SAFETY: p is not NULL, and by the contract above points to a live
    // C::Rust (to_box and to_arc cast from exactly that type), not mutably
    // borrowed for 'a.
    Ok(unsafe { &*p.cast::<C::Rust>() })
}

/// Borrows the value behind a boxed handle mutably.
///
/// # Safety
/// `p` must be NULL or a pointer made by [`to_box`] for `C`, not freed and
/// not borrowed elsewhere for `'a`.
pub(crate) unsafe fn try_mut<'a, C: BoxCastable>(p: *mut C) -> Result<&'a mut C::Rust, FfiError> {
    if p.is_null() {
        return Err(FfiError::null(C::WHAT));
    }
    // SAFETY: p is not NULL, and by the contract above is a live, unaliased
    // Box<C::Rust> (to_box casts from exactly that type).
    Ok(unsafe { &mut *p.cast::<C::Rust>() })
}

/// A new owning reference to the value behind a reference-counted handle;
/// the caller's reference stays its own.
///
/// # Safety
/// As for [`try_ref`], for a pointer made by [`to_arc`].
pub(crate) unsafe fn try_clone_arc<C: ArcCastable>(p: *const C) -> Result<Arc<C::Rust>, FfiError> {
    if p.is_null() {
        return Err(FfiError::null(C::WHAT));
    }
    let p = p.cast::<C::Rust>();
    // SAFETY: p comes from Arc::into_raw for C::Rust and holds a live
    // reference (the contract above); adding one and taking it back as an
    // Arc leaves the caller's reference intact.
    unsafe {
        Arc::increment_strong_count(p);
        Ok(Arc::from_raw(p))
    }
}

/// Frees a boxed handle; NULL does nothing.
///
/// # Safety
/// `p` must be NULL or a pointer made by [`to_box`] for `C`, freed only
/// here, once, and not used after.
pub(crate) unsafe fn free_box<C: BoxCastable>(p: *mut C) {
    if !p.is_null() {
        // SAFETY: by the contract above, p is a Box<C::Rust> from to_box,
        // given up by its owner.
        drop(unsafe { Box::from_raw(p.cast::<C::Rust>()) });
    }
}

/// Releases one reference of a reference-counted handle; NULL does nothing.
/// The value is dropped with its last reference.
///
/// # Safety
/// `p` must be NULL or a pointer made by [`to_arc`] (or cloned by
/// [`try_clone_arc`] and handed out) for `C`, whose reference the caller
/// releases once and does not use after.
pub(crate) unsafe fn free_arc<C: ArcCastable>(p: *const C) {
    if !p.is_null() {
        // SAFETY: by the contract above, p holds one reference of an
        // Arc<C::Rust>, given up here.
        drop(unsafe { Arc::from_raw(p.cast::<C::Rust>()) });
    }
}

/// Adds a reference to a reference-counted handle and returns it (the same
/// pointer); NULL for NULL.
///
/// # Safety
/// As for [`try_clone_arc`].
pub(crate) unsafe fn clone_arc_ptr<C: ArcCastable>(p: *const C) -> *const C {
    // SAFETY: the contract above.
    match unsafe { try_clone_arc(p) } {
        Ok(a) => to_arc(a),
        Err(_) => std::ptr::null(),
    }
}
