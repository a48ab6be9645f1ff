//! The C ABI: opaque handles, status codes, error objects.
//!
//! Every function here checks its arguments and then calls one safe function
//! of the Rust API; there is no logic in this layer that the Rust API lacks.
//! The header `include/privseg.h` is generated from this module by cbindgen.
//!
//! Conventions, for every function:
//!
//! - Names start with `privseg_`. Handles are opaque. Strings are UTF-8, given
//!   as a pointer and a length in bytes (no NUL needed); invalid UTF-8 gives
//!   [`privseg_status::InvalidUtf8`].
//! - Most functions return a [`privseg_status`]. A NULL handle or pointer
//!   gives [`privseg_status::NullParameter`]. An integer that stands for an
//!   enum or for flags is checked: an unknown value gives
//!   [`privseg_status::InvalidArgument`].
//! - Out-parameters come last and are written only on success, with two
//!   exceptions said where they apply: the length of a text that did not fit
//!   a buffer, and an error object, written only on failure.
//! - A panic never crosses the boundary: it becomes [`privseg_status::Panic`]
//!   (or NULL, 0), with its message and place in the last error, and it
//!   prints nothing on stderr (see the quiet hook below).
//! - Every failure leaves a message for the calling thread, read with
//!   [`privseg_last_error_message`].
//! - Ownership: each `*_new` (or function that makes a handle) has a
//!   `*_free`, and `*_free(NULL)` does nothing. A policy and a checked segment
//!   are immutable and reference counted: `*_clone` adds a reference, `*_free`
//!   drops one, and they may be shared between threads. An engine may be
//!   used by several threads at once: it holds a read-write lock, taken for
//!   writing by the calls that change it or its actor (adding subjects,
//!   recording events, erasing, `privseg_engine_set_actor`) and for reading
//!   by the others (evaluations, counts, exports, reading members), which
//!   run at the same time. Every call's audit entries are kept. Only
//!   `privseg_engine_free` must not race with another call on the engine.
//!
//! Actors: every engine call is made by an actor and recorded in the
//! engine's audit log. An engine handle acts as one actor, given to
//! `privseg_engine_new` (an id and its role names) and changed with
//! `privseg_engine_set_actor`; a CRM plugin usually runs as one service
//! identity. The library does not authenticate actors: the host must have
//! authenticated the id, and assigned the roles, before it passes them.
//! What each role may do is said by the policy's `roles` (nothing is granted
//! by default); a call the actor may not make fails with
//! [`privseg_status::AccessDenied`], its message naming the actor and the
//! permission, and the refusal is recorded. A call whose audit entry cannot
//! be written fails with [`privseg_status::Audit`] and is not carried out.
//!
//! Text written to a caller's buffer: the buffer of `len` bytes receives the
//! text and a terminating NUL; `*written` receives the text's length in bytes
//! (without the NUL). When the text does not fit, nothing is written to the
//! buffer, `*written` still receives the text's length (so `*written + 1`
//! bytes are needed) and the status is [`privseg_status::BufferTooSmall`].
//! A NULL buffer with `len == 0` asks for the length this way.

// Every unsafe block says why it is sound; every unsafe fn says its contract.
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]

mod buffer;
mod engine;
mod error;
mod handle;
mod members;
mod outputs;
mod policy;
mod segment;
mod signals;
mod store;
pub use store::*;

use std::cell::RefCell;
use std::ffi::c_char;

pub use buffer::*;
pub use engine::*;
pub use error::*;
pub use members::*;
pub use outputs::*;
pub use policy::*;
pub use segment::*;
pub use signals::*;

use crate::timestamp::Timestamp;

/// A status code. The values are fixed and never reused.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privseg_status {
    /// Success.
    Ok = 0,
    /// A required handle or pointer was NULL.
    NullParameter = 1,
    /// A string was not valid UTF-8.
    InvalidUtf8 = 2,
    /// An unknown enum value or flag, a length that cannot be right, or a
    /// combination of arguments the function does not accept.
    InvalidArgument = 3,
    /// The caller's buffer is too small; the length needed was written.
    BufferTooSmall = 4,
    /// The library panicked; the call had no effect that can be relied on.
    Panic = 5,
    /// The handle was already used up (a policy builder after its build).
    AlreadyUsed = 6,
    /// An iteration has no more items.
    Done = 7,
    /// A policy is not JSON of the policy's shape.
    PolicyJson = 100,
    /// A policy breaks one or more rules.
    PolicyInvalid = 101,
    /// A segment was validated against another policy than the engine's.
    PolicyMismatch = 102,
    /// A segment's text or JSON is not well-formed.
    SegmentSyntax = 200,
    /// A segment breaks the policy (its rule is in the error object).
    SegmentRefused = 201,
    /// No subject has this id (or it was erased).
    UnknownSubject = 300,
    /// A subject with this id exists already.
    DuplicateSubject = 301,
    /// The subject id is empty, longer than `PRIVSEG_MAX_ID_LEN` bytes, or
    /// has surrounding whitespace, control (NUL included) or bidirectional
    /// formatting characters.
    InvalidSubjectId = 302,
    /// The jurisdiction is not in the policy.
    UnknownJurisdiction = 303,
    /// The attribute is not in the policy.
    UnknownAttribute = 304,
    /// The purpose is not in the policy.
    UnknownPurpose = 305,
    /// A value does not fit its attribute.
    InvalidValue = 306,
    /// An event is malformed or does not fit the policy.
    InvalidEvent = 307,
    /// An engine error this version of the C API has no code for.
    EngineOther = 308,
    /// The engine's actor lacks the permission for this call; the message
    /// names the actor, the permission and any role the policy does not
    /// define. The refusal is recorded in the audit log.
    AccessDenied = 309,
    /// The audit log could not be written, so the call was not carried out.
    Audit = 310,
    /// The recipient is not in the policy.
    UnknownRecipient = 311,
    /// The export breaks the recipient's agreement (the message says how).
    ExportRefused = 312,
    /// Members (or another result) given to an engine other than the one
    /// that made them: read them through the engine that made them.
    ForeignResult = 313,
    /// The library could not finish the call: the system random source or
    /// writing the output failed. Not a refusal; nothing was released.
    Internal = 314,
    /// A time is not RFC 3339, or (as Unix seconds) lies outside the years
    /// 0000 to 9999.
    InvalidTime = 400,
    /// A date is not of the form YYYY-MM-DD, or a birth date is before
    /// 1900 or after today.
    InvalidDate = 401,
    /// JSON that is not of the expected shape (an event).
    InvalidJson = 402,
    /// A consent signal (TCF, GPP, US Privacy) that does not decode or
    /// encode; the message names the field and bit offset.
    SignalInvalid = 403,
    /// A decoded signal has no such part: TCF fields of a US Privacy string,
    /// a GPP section the string does not have.
    SignalAbsent = 404,
}

/// The status's values are written once, in the enum above (cbindgen reads
/// the header's constants from it, so it cannot be made by a macro); this
/// table gives each variant its C name once, and from it come both
/// `from_u32` and `name`. A variant missing here does not compile: `name`
/// matches every variant, with no wildcard.
macro_rules! status_table {
    ($($variant:ident => $c_name:ident,)*) => {
        impl privseg_status {
            /// The status with this value, if there is one.
            pub fn from_u32(v: u32) -> Option<privseg_status> {
                $(
                    if v == privseg_status::$variant as u32 {
                        return Some(privseg_status::$variant);
                    }
                )*
                None
            }

            /// The constant's name, NUL-terminated.
            fn name(self) -> &'static str {
                match self {
                    $(privseg_status::$variant => {
                        concat!("PRIVSEG_STATUS_", stringify!($c_name), "\0")
                    })*
                }
            }
        }
    };
}

status_table! {
    Ok => OK,
    NullParameter => NULL_PARAMETER,
    InvalidUtf8 => INVALID_UTF8,
    InvalidArgument => INVALID_ARGUMENT,
    BufferTooSmall => BUFFER_TOO_SMALL,
    Panic => PANIC,
    AlreadyUsed => ALREADY_USED,
    Done => DONE,
    PolicyJson => POLICY_JSON,
    PolicyInvalid => POLICY_INVALID,
    PolicyMismatch => POLICY_MISMATCH,
    SegmentSyntax => SEGMENT_SYNTAX,
    SegmentRefused => SEGMENT_REFUSED,
    UnknownSubject => UNKNOWN_SUBJECT,
    DuplicateSubject => DUPLICATE_SUBJECT,
    InvalidSubjectId => INVALID_SUBJECT_ID,
    UnknownJurisdiction => UNKNOWN_JURISDICTION,
    UnknownAttribute => UNKNOWN_ATTRIBUTE,
    UnknownPurpose => UNKNOWN_PURPOSE,
    InvalidValue => INVALID_VALUE,
    InvalidEvent => INVALID_EVENT,
    EngineOther => ENGINE_OTHER,
    AccessDenied => ACCESS_DENIED,
    Audit => AUDIT,
    UnknownRecipient => UNKNOWN_RECIPIENT,
    ExportRefused => EXPORT_REFUSED,
    ForeignResult => FOREIGN_RESULT,
    Internal => INTERNAL,
    InvalidTime => INVALID_TIME,
    InvalidDate => INVALID_DATE,
    InvalidJson => INVALID_JSON,
    SignalInvalid => SIGNAL_INVALID,
    SignalAbsent => SIGNAL_ABSENT,
}

/// A UTF-8 string given by pointer and length, as a field of a struct.
/// `ptr == NULL` (with `len == 0`) means "absent" where a field is optional.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct privseg_str {
    /// First byte; need not be NUL-terminated.
    pub ptr: *const c_char,
    /// Length in bytes.
    pub len: usize,
}

/// The failure of a C call: its status and a message for the thread's last
/// error.
#[derive(Debug)]
pub(crate) struct FfiError {
    pub status: privseg_status,
    pub message: String,
}

impl FfiError {
    pub(crate) fn new(status: privseg_status, message: impl Into<String>) -> FfiError {
        FfiError {
            status,
            message: message.into(),
        }
    }
    pub(crate) fn null(what: &str) -> FfiError {
        FfiError::new(privseg_status::NullParameter, format!("{what} is NULL"))
    }
    pub(crate) fn arg(message: impl Into<String>) -> FfiError {
        FfiError::new(privseg_status::InvalidArgument, message)
    }
    /// The same failure with `prefix` before its message.
    pub(crate) fn context(self, prefix: &str) -> FfiError {
        FfiError::new(self.status, format!("{prefix}: {}", self.message))
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

pub(crate) fn set_last_error(message: &str) {
    LAST_ERROR.with(|l| {
        let mut l = l.borrow_mut();
        l.clear();
        l.push_str(message);
    });
}

/// Turns a body's result into a status, keeping the message of a failure.
pub(crate) fn finish(r: Result<(), FfiError>) -> privseg_status {
    match r {
        Ok(()) => privseg_status::Ok,
        // The end of an iteration is no failure: the last error stays.
        Err(f) if f.status == privseg_status::Done => f.status,
        Err(f) => {
            set_last_error(&f.message);
            f.status
        }
    }
}

pub(crate) fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    // The hook's record, with the panic's place, when it ran for this call.
    if let Some(m) = PANIC_RECORD.with(|r| r.borrow_mut().take()) {
        return m;
    }
    let what = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown cause");
    format!("privseg panicked: {what}")
}

// Panics and the host's stderr.
//
// `catch_unwind` stops a panic at the boundary, but the process's panic
// hook runs before unwinding starts, and the default hook prints the
// message to stderr: a C host would see text it never asked for on its
// own stderr. The hook is process-wide, so the library does not replace it
// outright. Once, on the first call of this API, it installs a hook that
// wraps the one in place: a panic on a thread that is inside a call of this
// API (a thread-local depth counter, raised by `ffi_status!` and
// `ffi_value!` for the call) is recorded for that call's last-error message
// and printed nowhere; any other panic goes to the previous hook unchanged,
// so a Rust host's own panics still print (or reach its own hook) as
// before. A host that sets its own hook after its first call of this API
// replaces this one: the library cannot prevent that, and says so in the
// header.

thread_local! {
    /// How many calls of this API the thread is inside (nested calls are
    /// possible only through the library itself).
    static FFI_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    /// The message of a panic inside a call, as the hook recorded it.
    static PANIC_RECORD: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the quiet hook once for the process.
fn install_quiet_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let inside = FFI_DEPTH.try_with(|d| d.get() > 0).unwrap_or(false);
            if !inside {
                previous(info);
                return;
            }
            let p = info.payload();
            let what = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("unknown cause");
            let message = match info.location() {
                Some(l) => format!("privseg panicked at {}:{}: {what}", l.file(), l.line()),
                None => format!("privseg panicked: {what}"),
            };
            let _ = PANIC_RECORD.try_with(|r| *r.borrow_mut() = Some(message));
        }));
    });
}

/// Marks the thread as inside a call of this API while it lives.
pub(crate) struct CallGuard(());

impl CallGuard {
    pub(crate) fn enter() -> CallGuard {
        install_quiet_hook();
        FFI_DEPTH.with(|d| d.set(d.get() + 1));
        PANIC_RECORD.with(|r| r.borrow_mut().take());
        CallGuard(())
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        FFI_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Runs a function body that yields `Result<(), FfiError>`, turning a failure
/// into its status and a panic into [`privseg_status::Panic`], silently.
macro_rules! ffi_status {
    ($body:block) => {{
        let _call = $crate::ffi::CallGuard::enter();
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> ::std::result::Result<(), $crate::ffi::FfiError> { $body },
        )) {
            Ok(r) => $crate::ffi::finish(r),
            Err(p) => {
                $crate::ffi::set_last_error(&$crate::ffi::panic_message(&*p));
                $crate::ffi::privseg_status::Panic
            }
        }
    }};
}

/// Runs a function body that yields a plain value, giving `$fallback` on a
/// panic, silently.
macro_rules! ffi_value {
    ($fallback:expr, $body:block) => {{
        let _call = $crate::ffi::CallGuard::enter();
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(|| $body)) {
            Ok(v) => v,
            Err(p) => {
                $crate::ffi::set_last_error(&$crate::ffi::panic_message(&*p));
                $fallback
            }
        }
    }};
}

pub(crate) use {ffi_status, ffi_value};

/// Calls a pointer helper (one that [`pointer_helper!`] admits) on the
/// pointer arguments of the `unsafe extern "C"` function it is used in:
/// `from_caller!(str_arg(id, id_len, "id"))`. The one place where a C
/// caller's promise about its pointers is turned into their use.
macro_rules! from_caller {
    ($helper:ident ( $($arg:expr),* $(,)? )) => {{
        $crate::ffi::pointer_helper!($helper);
        // SAFETY: `from_caller!` is used only in the body of an
        // `unsafe extern "C"` function of this module, or of a helper that
        // `pointer_helper!` admits, with pointers that are that function's
        // own arguments (or fields of them) passed on unchanged.
        // `pointer_helper!` admits only helpers whose `# Safety` contract
        // asks of those pointers no more than the enclosing function's
        // `# Safety` section makes its own caller promise for the whole
        // call: NULL, or valid for what the helper does with it (a handle:
        // made by this library for its type and not freed; a string or an
        // array: `len` readable items; an out-parameter: writable).
        #[allow(unused_unsafe)]
        unsafe {
            $helper($($arg),*)
        }
    }};
}

/// Admits the helpers [`from_caller!`] may call, and nothing else (an
/// unknown name does not compile): each takes pointers from a C caller and
/// asks of them only what the calling function's `# Safety` section states.
macro_rules! pointer_helper {
    (str_arg) => {};
    (opt_str_arg) => {};
    (field) => {};
    (opt_field) => {};
    (slice_arg) => {};
    (str_list) => {};
    (write_text) => {};
    (write_out) => {};
    (give_error) => {};
    (try_ref) => {};
    (try_mut) => {};
    (try_clone_arc) => {};
    (free_box) => {};
    (free_arc) => {};
    (clone_arc_ptr) => {};
    (engine_read) => {};
    (engine_write) => {};
    (with_engine) => {};
    (with_builder) => {};
    (segment_result) => {};
    (actor_arg) => {};
    (write_ids) => {};
    (value_of) => {};
    (event_of) => {};
    (subject_row) => {};
    (value_update) => {};
    (add_attribute) => {};
    (durable) => {};
}

/// Borrows the value behind a handle argument (NULL gives
/// `PRIVSEG_STATUS_NULL_PARAMETER`), for the `?` operator.
macro_rules! try_ref_from_ptr {
    ($p:expr) => {{
        use $crate::ffi::handle::try_ref;
        $crate::ffi::from_caller!(try_ref($p))
    }};
}

/// Borrows the value behind a boxed handle argument mutably.
macro_rules! try_mut_from_ptr {
    ($p:expr) => {{
        use $crate::ffi::handle::try_mut;
        $crate::ffi::from_caller!(try_mut($p))
    }};
}

pub(crate) use {from_caller, pointer_helper, try_mut_from_ptr, try_ref_from_ptr};

/// What every submodule uses to take pointers from C and hand handles to it.
mod prelude {
    pub(crate) use super::handle::*;
    pub(crate) use super::{from_caller, read_items, try_mut_from_ptr, try_ref_from_ptr};
}

/// Checks that a pointer is not NULL.
pub(crate) fn non_null<T>(p: *const T, what: &str) -> Result<(), FfiError> {
    if p.is_null() {
        Err(FfiError::null(what))
    } else {
        Ok(())
    }
}

/// Borrows a required string argument.
///
/// # Safety
/// `ptr` must be NULL or point to `len` readable bytes that stay valid and
/// unchanged for `'a`.
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<&'a str, FfiError> {
    non_null(ptr, what)?;
    if len > isize::MAX as usize {
        return Err(FfiError::arg(format!("{what}: length {len} is too large")));
    }
    // SAFETY: ptr is not NULL, and the caller promises `len` readable bytes;
    // len fits in isize as slice::from_raw_parts requires.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|e| {
        FfiError::new(
            privseg_status::InvalidUtf8,
            format!("{what} is not valid UTF-8 ({e})"),
        )
    })
}

/// Borrows an optional string argument: NULL with length 0 is `None`.
///
/// # Safety
/// As for [`str_arg`].
pub(crate) unsafe fn opt_str_arg<'a>(
    ptr: *const c_char,
    len: usize,
    what: &str,
) -> Result<Option<&'a str>, FfiError> {
    if ptr.is_null() {
        if len != 0 {
            return Err(FfiError::arg(format!(
                "{what} is NULL but its length is {len}"
            )));
        }
        return Ok(None);
    }
    from_caller!(str_arg(ptr, len, what)).map(Some)
}

/// Borrows a `privseg_str` field.
///
/// # Safety
/// As for [`str_arg`], for `s.ptr` and `s.len`.
pub(crate) unsafe fn field<'a>(s: privseg_str, what: &str) -> Result<&'a str, FfiError> {
    from_caller!(str_arg(s.ptr, s.len, what))
}

/// Borrows an optional `privseg_str` field.
///
/// # Safety
/// As for [`str_arg`], for `s.ptr` and `s.len`.
pub(crate) unsafe fn opt_field<'a>(
    s: privseg_str,
    what: &str,
) -> Result<Option<&'a str>, FfiError> {
    from_caller!(opt_str_arg(s.ptr, s.len, what))
}

/// Borrows an array given by pointer and count; NULL is allowed when the
/// count is 0.
///
/// # Safety
/// `ptr` must be NULL or point to `count` initialised values that stay valid
/// for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    count: usize,
    what: &str,
) -> Result<&'a [T], FfiError> {
    if count == 0 {
        return Ok(&[]);
    }
    non_null(ptr, what)?;
    if count > isize::MAX as usize / std::mem::size_of::<T>().max(1) {
        return Err(FfiError::arg(format!("{what}: count {count} is too large")));
    }
    // SAFETY: ptr is not NULL, aligned and valid for `count` values as the
    // caller promises; the total size fits in isize.
    Ok(unsafe { std::slice::from_raw_parts(ptr, count) })
}

/// Borrows an array of strings.
///
/// # Safety
/// `ptr` must be NULL (with `count == 0`) or point to `count` `privseg_str`
/// values, each valid as for [`str_arg`].
pub(crate) unsafe fn str_list<'a>(
    ptr: *const privseg_str,
    count: usize,
    what: &str,
) -> Result<Vec<&'a str>, FfiError> {
    let items = from_caller!(slice_arg(ptr, count, what))?;
    items
        .iter()
        .enumerate()
        .map(|(i, s)| from_caller!(field(*s, &format!("{what}[{i}]"))))
        .collect()
}

/// Reads every item of a C array with `read`, in order; a failure names
/// its item as `what[i]`.
pub(crate) fn read_items<'a, T, U>(
    items: &'a [T],
    what: &str,
    mut read: impl FnMut(&'a T) -> Result<U, FfiError>,
) -> Result<Vec<U>, FfiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| read(item).map_err(|f| f.context(&format!("{what}[{i}]"))))
        .collect()
}

/// Reads a time given as Unix seconds: within the years 0000 to 9999, else
/// [`privseg_status::InvalidTime`] naming the argument.
pub(crate) fn time_arg(secs: i64, what: &str) -> Result<Timestamp, FfiError> {
    Timestamp::checked_from_unix(secs)
        .map_err(|e| FfiError::new(privseg_status::InvalidTime, format!("{what}: {e}")))
}

/// Copies `text` and a NUL into a caller's buffer, following the module's
/// buffer convention.
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes; `written` must be
/// NULL or point to a writable `size_t`.
pub(crate) unsafe fn write_text(
    text: &[u8],
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> Result<(), FfiError> {
    non_null(written, "written")?;
    if buf.is_null() && len != 0 {
        return Err(FfiError::null("buf"));
    }
    if text.len() >= len {
        // SAFETY: written is not NULL and writable.
        unsafe { *written = text.len() };
        return Err(FfiError::new(
            privseg_status::BufferTooSmall,
            format!(
                "a buffer of {len} bytes is too small: {} are needed",
                text.len() + 1
            ),
        ));
    }
    // SAFETY: buf is writable for len > text.len() bytes, and cannot overlap
    // a text owned by the library.
    unsafe {
        std::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        *buf.add(text.len()) = 0;
        *written = text.len();
    }
    Ok(())
}

/// Writes an out-parameter after checking it is not NULL.
///
/// # Safety
/// `out` must be NULL or valid for a write of `T`.
pub(crate) unsafe fn write_out<T>(out: *mut T, value: T) -> Result<(), FfiError> {
    non_null(out, "out")?;
    // SAFETY: out is not NULL and valid for writes, as the caller promises.
    unsafe { out.write(value) };
    Ok(())
}

/// The library's version, such as `"0.1.0"`: a static NUL-terminated string
/// that equals `PRIVSEG_VERSION` in the header.
#[unsafe(no_mangle)]
pub extern "C" fn privseg_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The name of a status code, such as `"PRIVSEG_STATUS_NULL_PARAMETER"`, as a
/// static NUL-terminated string; NULL for a value that is not a status.
#[unsafe(no_mangle)]
pub extern "C" fn privseg_status_name(status: u32) -> *const c_char {
    ffi_value!(std::ptr::null(), {
        privseg_status::from_u32(status).map_or(std::ptr::null(), |s| s.name().as_ptr().cast())
    })
}

/// Copies the calling thread's last error message into `buf`, following the
/// buffer convention above. The message is that of the last failed call made
/// by this thread (success leaves it unchanged); it is empty if no call has
/// failed yet. This function never changes it.
///
/// # Safety
/// `buf` must be NULL or point to `len` writable bytes; `written` must point
/// to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_last_error_message(
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_value!(privseg_status::Panic, {
        let r =
            LAST_ERROR.with(|l| from_caller!(write_text(l.borrow().as_bytes(), buf, len, written)));
        match r {
            Ok(()) => privseg_status::Ok,
            Err(f) => f.status,
        }
    })
}

/// Panics inside the library on purpose, for a host to check its
/// integration: the status is `PRIVSEG_STATUS_PANIC`, the last-error
/// message says where the panic was, and nothing is printed on stderr.
/// Has no other effect.
#[unsafe(no_mangle)]
pub extern "C" fn privseg_check_panic() -> privseg_status {
    ffi_status!({
        if std::hint::black_box(true) {
            panic!("a panic asked for by privseg_check_panic");
        }
        Ok(())
    })
}

/// Parses an RFC 3339 time such as `2026-03-01T10:00:00Z` into Unix seconds,
/// the form every time argument of this API takes.
///
/// # Safety
/// `text` must point to `len` readable bytes; `out` must point to a writable
/// `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_time_parse(
    text: *const c_char,
    len: usize,
    out: *mut i64,
) -> privseg_status {
    ffi_status!({
        let text = from_caller!(str_arg(text, len, "text"))?;
        non_null(out, "out")?;
        let t = Timestamp::parse(text)
            .map_err(|e| FfiError::new(privseg_status::InvalidTime, e.to_string()))?;
        from_caller!(write_out(out, t.unix()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        let mut buf = [0 as c_char; 256];
        let mut n = 0;
        // SAFETY: buf has 256 writable bytes and n is a valid size_t.
        let st = unsafe { privseg_last_error_message(buf.as_mut_ptr(), buf.len(), &mut n) };
        assert_eq!(st, privseg_status::Ok);
        let bytes: Vec<u8> = buf[..n].iter().map(|&c| c as u8).collect();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let st = ffi_status!({
            if last_error().len() < usize::MAX {
                panic!("planted");
            }
            Ok(())
        });
        assert_eq!(st, privseg_status::Panic);
        let m = last_error();
        assert!(
            m.starts_with("privseg panicked at src/ffi/mod.rs:") && m.ends_with(": planted"),
            "{m}"
        );
        let v: *const c_char = ffi_value!(std::ptr::null(), {
            panic!("{}", String::from("owned message"))
        });
        assert!(v.is_null());
        assert!(last_error().ends_with(": owned message"));
    }

    #[test]
    fn every_status_round_trips_through_its_value_and_has_a_name() {
        let mut seen = 0;
        for v in 0..1000u32 {
            if let Some(s) = privseg_status::from_u32(v) {
                assert_eq!(s as u32, v);
                let name = s.name();
                assert!(name.starts_with("PRIVSEG_STATUS_") && name.ends_with('\0'));
                seen += 1;
            }
        }
        assert_eq!(seen, 33);
        assert!(privseg_status_name(8).is_null());
    }

    /// Each name is the variant's, as cbindgen spells it in the header,
    /// with the variant's value there.
    #[test]
    fn status_names_match_the_header() {
        let header = include_str!("../../include/privseg.h");
        for v in 0..1000u32 {
            let Some(s) = privseg_status::from_u32(v) else {
                continue;
            };
            let mut screaming = String::new();
            for (i, c) in format!("{s:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    screaming.push('_');
                }
                screaming.push(c.to_ascii_uppercase());
            }
            let name = s.name().trim_end_matches('\0');
            assert_eq!(name, format!("PRIVSEG_STATUS_{screaming}"));
            assert!(
                header.contains(&format!("  {name} = {v},\n")),
                "{name} = {v}"
            );
        }
    }

    #[test]
    fn done_leaves_the_last_error_alone() {
        set_last_error("earlier");
        let st = ffi_status!({ Err(FfiError::new(privseg_status::Done, "no more")) });
        assert_eq!(st, privseg_status::Done);
        assert_eq!(last_error(), "earlier");
    }
}
