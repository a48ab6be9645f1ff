//! What leaves the engine besides member lists, each gated by the engine's
//! actor and recorded in the audit log: k-threshold counts, breakdowns,
//! exports to recipients, subject access reports; and the size of the log.

use std::ffi::c_char;

use super::buffer::{buffer_out, privseg_buffer};
use super::engine::{engine_read, privseg_engine};
use super::error::privseg_error;
use super::prelude::*;
use super::segment::{privseg_segment, segment_result};
use super::{
    FfiError, ffi_status, non_null, privseg_status, privseg_str, slice_arg, str_arg, str_list,
    time_arg, write_out, write_text,
};
use crate::outputs::ExportFormat;
use crate::privacy::aggregate::Count;
use crate::privacy::pseudonym::{Keyring, MasterSecret};

/// The format of an export, passed as a `uint32_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privseg_export_format {
    /// One JSON object per line: `{"id": "v1:<hex>", "<field>": value, ...}`.
    Jsonl = 1,
    /// A header `id,<field>,...`, then one row per member (RFC 4180 quoting).
    Csv = 2,
}

fn format_of(v: u32) -> Result<ExportFormat, FfiError> {
    match v {
        1 => Ok(ExportFormat::Jsonl),
        2 => Ok(ExportFormat::Csv),
        _ => Err(FfiError::arg(format!("unknown export format {v}"))),
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, FfiError> {
    serde_json::to_string(value)
        .map_err(|e| FfiError::new(privseg_status::EngineOther, e.to_string()))
}

/// Parses a segment's text form and validates it against the engine's
/// policy, as `privseg_segment_compile` does, but as a call of the engine's
/// actor: the outcome (validated, or refused with its rule) is recorded in
/// the audit log. Statuses, `*segment_out` and `*err_out` as for
/// `privseg_segment_compile`.
///
/// # Safety
/// `engine` must be a live engine;
/// `text` must point to `len` readable bytes; `segment_out` must point to a
/// writable pointer; `err_out` must be NULL or point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_compile(
    engine: *const privseg_engine,
    text: *const c_char,
    len: usize,
    segment_out: *mut *const privseg_segment,
    err_out: *mut *mut privseg_error,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let text = from_caller!(str_arg(text, len, "text"))?;
        non_null(segment_out, "segment_out")?;
        let r = e.engine.compile(&e.actor, text);
        from_caller!(segment_result(r, segment_out, err_out))
    })
}

/// The number of members of a segment at an instant, under the policy's
/// k-threshold (`k_threshold` in the policy, 11 by default). Needs the
/// `count` permission for the segment's purpose.
///
/// On success: when the count is at least k, `*count_out` receives it and
/// `*below_k_out` receives 0; when it is below k, the count is withheld:
/// `*count_out` receives k and `*below_k_out` receives 1, meaning "fewer
/// than `*count_out`" (possibly 0).
///
/// # Safety
/// `engine` must be a live engine;
/// `segment` a live segment reference; `count_out` must point to a writable
/// `uint64_t` and `below_k_out` to a writable `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_count(
    engine: *const privseg_engine,
    segment: *const privseg_segment,
    at: i64,
    count_out: *mut u64,
    below_k_out: *mut u32,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let s = try_ref_from_ptr!(segment)?;
        non_null(count_out, "count_out")?;
        non_null(below_k_out, "below_k_out")?;
        let (count, below) = match e.engine.count(&e.actor, s, time_arg(at, "at")?)? {
            Count::Exact(n) => (n, 0),
            Count::FewerThan(k) => (k, 1),
            Count::Suppressed => {
                return Err(FfiError::new(
                    privseg_status::EngineOther,
                    "the count was withheld without a bound",
                ));
            }
        };
        // SAFETY: both out-pointers are writable, as the caller promises.
        unsafe {
            write_out(count_out, count)?;
            write_out(below_k_out, below)
        }
    })
}

/// The members of a segment per value of a categorical attribute the
/// segment's purpose may read, with small cells (and enough others that none
/// can be derived from the totals) withheld, as JSON copied into `buf`
/// following the buffer convention of this API: `{"cells": [{"label": ...,
/// "count": ...}], "total": ..., "k": ...}`, where a count is
/// `{"exact": n}`, `{"fewer_than": k}` or `"suppressed"`; members with no
/// value are counted under `(none)`. Needs the `count` permission for the
/// segment's purpose; each call, also one that ends with
/// `PRIVSEG_STATUS_BUFFER_TOO_SMALL`, is recorded in the audit log.
///
/// # Safety
/// `engine` must be a live engine;
/// `segment` a live segment reference; `attribute` must point to
/// `attribute_len` readable bytes; `buf` must be NULL or point to `len`
/// writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_breakdown(
    engine: *const privseg_engine,
    segment: *const privseg_segment,
    at: i64,
    attribute: *const c_char,
    attribute_len: usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let s = try_ref_from_ptr!(segment)?;
        let attribute = from_caller!(str_arg(attribute, attribute_len, "attribute"))?;
        non_null(written, "written")?;
        let b = e
            .engine
            .breakdown(&e.actor, s, time_arg(at, "at")?, attribute)?;
        from_caller!(write_text(json_text(&b)?.as_bytes(), buf, len, written))
    })
}

/// Exports a segment's members at an instant to a recipient of the policy,
/// as text copied into `buf` following the buffer convention of this API:
/// `format` is a `privseg_export_format`; each member's id is pseudonymised
/// for the recipient and the purpose under the key of version `key_version`
/// (1 or more) derived from the host's master secret (`master_secret_len`
/// bytes, at least 32; copied, and wiped from the library's memory after the
/// call); `fields` names the attributes written besides it (a missing or
/// stale value is null in JSON, empty in CSV).
///
/// Refused unless the actor may export to the recipient
/// (`PRIVSEG_STATUS_ACCESS_DENIED`; granted by a role's `export` list in the
/// policy's JSON), the recipient is in the policy
/// (`PRIVSEG_STATUS_UNKNOWN_RECIPIENT`), and its agreement covers the
/// purpose and every field's category (`PRIVSEG_STATUS_EXPORT_REFUSED`); a
/// field the purpose may not read gives `PRIVSEG_STATUS_SEGMENT_REFUSED`. A
/// master secret shorter than 32 bytes, or key version 0, gives
/// `PRIVSEG_STATUS_INVALID_ARGUMENT`.
///
/// The export runs once, into a new buffer `*export_out` (read it with
/// `privseg_buffer_len` and `privseg_buffer_copy`, free it with
/// `privseg_buffer_free`, which wipes it): each call that passes these
/// checks is one export recorded in the audit log, and learning its size
/// runs and records nothing more.
///
/// # Safety
/// `engine` must be a live engine;
/// `segment` a live segment reference; `recipient` must point to
/// `recipient_len` readable bytes; `fields` must point to `field_count`
/// `privseg_str` (or be NULL when `field_count` is 0); `master_secret` must
/// point to `master_secret_len` readable bytes; `export_out` must point to a
/// writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_export(
    engine: *const privseg_engine,
    segment: *const privseg_segment,
    at: i64,
    recipient: *const c_char,
    recipient_len: usize,
    fields: *const privseg_str,
    field_count: usize,
    format: u32,
    master_secret: *const u8,
    master_secret_len: usize,
    key_version: u32,
    export_out: *mut *mut privseg_buffer,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let s = try_ref_from_ptr!(segment)?;
        let recipient = from_caller!(str_arg(recipient, recipient_len, "recipient"))?;
        let fields = from_caller!(str_list(fields, field_count, "fields"))?;
        let format = format_of(format)?;
        non_null(master_secret, "master_secret")?;
        let secret = from_caller!(slice_arg(master_secret, master_secret_len, "master_secret"))?;
        let master = MasterSecret::from_bytes(secret)
            .map_err(|err| FfiError::arg(format!("master_secret: {err}")))?;
        let keys = Keyring::new(master, key_version)
            .map_err(|err| FfiError::arg(format!("key_version: {err}")))?;
        non_null(export_out, "export_out")?;
        let mut out = Vec::new();
        e.engine.export(
            &e.actor,
            s,
            time_arg(at, "at")?,
            recipient,
            &fields,
            format,
            &keys,
            &mut out,
        )?;
        from_caller!(write_out(export_out, buffer_out(out)))
    })
}

/// The subject access report (GDPR Art. 15 and 20, CCPA 1798.100 and
/// 1798.110) of a subject at an instant, as JSON copied into `buf` following
/// the buffer convention of this API: its data, its full event history, its
/// eligibility for each purpose of the policy, and its membership in the
/// `segment_count` segments of `segments` with the reasons (NULL when
/// `segment_count` is 0). Needs the `subjects` permission; each call, also
/// one that ends with `PRIVSEG_STATUS_BUFFER_TOO_SMALL`, is recorded in the
/// audit log.
///
/// # Safety
/// `engine` must be a live engine; `id`
/// must point to `id_len` readable bytes; `segments` must point to
/// `segment_count` live segment references; `buf` must be NULL or point to
/// `len` writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_subject_report(
    engine: *const privseg_engine,
    id: *const c_char,
    id_len: usize,
    segments: *const *const privseg_segment,
    segment_count: usize,
    at: i64,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        let id = from_caller!(str_arg(id, id_len, "id"))?;
        let list = from_caller!(slice_arg(segments, segment_count, "segments"))?;
        let segs = read_items(list, "segments", |p| {
            try_ref_from_ptr!(*p).map(|s: &crate::segment::CheckedSegment| s.clone())
        })?;
        non_null(written, "written")?;
        let report = e
            .engine
            .subject_report(&e.actor, id, &segs, time_arg(at, "at")?)?;
        from_caller!(write_text(
            json_text(&report)?.as_bytes(),
            buf,
            len,
            written
        ))
    })
}

/// The number of entries in the engine's audit log: one for the policy
/// loaded, then one per call recorded (refusals included; a batch is one).
///
/// # Safety
/// `engine` must be a live engine;
/// `count_out` must point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_engine_audit_len(
    engine: *const privseg_engine,
    count_out: *mut u64,
) -> privseg_status {
    ffi_status!({
        let e = from_caller!(engine_read(engine))?;
        from_caller!(write_out(count_out, e.engine.audit_len()))
    })
}
