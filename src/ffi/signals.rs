//! Consent signals: decode a TCF, GPP or US Privacy string to JSON, and
//! encode one from JSON.

use std::ffi::c_char;

use super::{Fail, ffi_status, privseg_status, str_arg, write_text};
use crate::consent::signals::{self, SignalError, SignalFormat};

/// `format` value for an IAB TCF v2 TC string.
pub const PRIVSEG_SIGNAL_TCF: u32 = 1;
/// `format` value for a GPP string.
pub const PRIVSEG_SIGNAL_GPP: u32 = 2;
/// `format` value for a US Privacy string.
pub const PRIVSEG_SIGNAL_USP: u32 = 3;

fn signal_fail(e: SignalError) -> Fail {
    Fail::new(privseg_status::SignalInvalid, e.to_string())
}

/// Decodes a consent signal (a TCF TC string starting with `C`, a GPP
/// string starting with `D`, or a US Privacy string starting with `1`) and
/// copies its JSON, with the IAB field names, into `buf` following the
/// buffer convention of this API. A string that does not decode gives
/// `PRIVSEG_STATUS_SIGNAL_INVALID` with the field and bit offset in the
/// message.
///
/// # Safety
/// `text` must point to `text_len` readable bytes; `buf` must be NULL or
/// point to `len` writable bytes; `written` must point to a writable
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_decode(
    text: *const c_char,
    text_len: usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        // SAFETY: the caller's contract.
        let text = unsafe { str_arg(text, text_len, "text") }?;
        let json = signals::decode_to_json(text).map_err(signal_fail)?;
        // SAFETY: the caller's contract.
        unsafe { write_text(json.as_bytes(), buf, len, written) }
    })
}

/// Encodes a consent signal of `format` (`PRIVSEG_SIGNAL_TCF`, `_GPP` or
/// `_USP`) from its JSON form (what `privseg_signal_decode` writes) and
/// copies the string into `buf` following the buffer convention of this
/// API.
///
/// # Safety
/// `json` must point to `json_len` readable bytes; `buf` must be NULL or
/// point to `len` writable bytes; `written` must point to a writable
/// `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_encode(
    format: u32,
    json: *const c_char,
    json_len: usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let format = match format {
            PRIVSEG_SIGNAL_TCF => SignalFormat::Tcf,
            PRIVSEG_SIGNAL_GPP => SignalFormat::Gpp,
            PRIVSEG_SIGNAL_USP => SignalFormat::Usp,
            other => return Err(Fail::arg(format!("format: unknown signal format {other}"))),
        };
        // SAFETY: the caller's contract.
        let json = unsafe { str_arg(json, json_len, "json") }?;
        let out = signals::encode_from_json(format, json).map_err(signal_fail)?;
        // SAFETY: the caller's contract.
        unsafe { write_text(out.as_bytes(), buf, len, written) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> (privseg_status, String) {
        let mut buf = vec![0 as c_char; 4096];
        let mut written = 0usize;
        // SAFETY: valid pointers and lengths.
        let st = unsafe {
            privseg_signal_decode(
                s.as_ptr().cast(),
                s.len(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut written,
            )
        };
        let bytes: Vec<u8> = buf[..written.min(buf.len())]
            .iter()
            .map(|&c| c as u8)
            .collect();
        (st, String::from_utf8(bytes).unwrap_or_default())
    }

    #[test]
    fn decode_and_encode_round_trip_and_bad_input_has_a_status() {
        let (st, json) = decode("1YNN");
        assert_eq!(st, privseg_status::Ok);
        assert!(json.contains("\"optOutSale\":\"N\""), "{json}");
        let mut buf = vec![0 as c_char; 64];
        let mut written = 0usize;
        // SAFETY: valid pointers and lengths.
        let st = unsafe {
            privseg_signal_encode(
                PRIVSEG_SIGNAL_USP,
                json.as_ptr().cast(),
                json.len(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut written,
            )
        };
        assert_eq!(st, privseg_status::Ok);
        let out: String = buf[..written].iter().map(|&c| c as u8 as char).collect();
        assert_eq!(out, "1YNN");
        assert_eq!(decode("XYZ").0, privseg_status::SignalInvalid);
        assert_eq!(
            decode("CPXxRfAPXxRfAAfKABENB").0,
            privseg_status::SignalInvalid
        );
        // SAFETY: valid pointers; the format value is unknown.
        let st = unsafe {
            privseg_signal_encode(
                9,
                json.as_ptr().cast(),
                json.len(),
                buf.as_mut_ptr(),
                buf.len(),
                &mut written,
            )
        };
        assert_eq!(st, privseg_status::InvalidArgument);
    }
}
