//! Consent signals: decode a TCF, GPP or US Privacy string to JSON or to a
//! handle with field accessors, and encode one from JSON.

use std::ffi::c_char;

use super::prelude::*;
use super::{
    FfiError, ffi_status, ffi_value, non_null, privseg_status, str_arg, write_out, write_text,
};
use crate::consent::signals::gpp::{GppOptions, GppSection, GppString};
use crate::consent::signals::json::{self, GppJson, TcfJson, UspJson};
use crate::consent::signals::tcf::{TcString, TcfOptions};
use crate::consent::signals::usp::{UsPrivacy, UspFlag};
use crate::consent::signals::{self, DecodeOptions, SignalError, SignalFormat};

/// `format` value for an IAB TCF v2 TC string.
pub const PRIVSEG_SIGNAL_TCF: u32 = 1;
/// `format` value for a GPP string.
pub const PRIVSEG_SIGNAL_GPP: u32 = 2;
/// `format` value for a US Privacy string.
pub const PRIVSEG_SIGNAL_USP: u32 = 3;

fn signal_fail(e: SignalError) -> FfiError {
    FfiError::new(privseg_status::SignalInvalid, e.to_string())
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
        let text = from_caller!(str_arg(text, text_len, "text"))?;
        let json = signals::decode_to_json(text).map_err(signal_fail)?;
        from_caller!(write_text(json.as_bytes(), buf, len, written))
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
            other => {
                return Err(FfiError::arg(format!(
                    "format: unknown signal format {other}"
                )));
            }
        };
        let json = from_caller!(str_arg(json, json_len, "json"))?;
        let out = signals::encode_from_json(format, json).map_err(signal_fail)?;
        from_caller!(write_text(out.as_bytes(), buf, len, written))
    })
}

/// A decoded consent signal: a TCF TC string, a GPP string or a US Privacy
/// string, decoded once by [`privseg_signal_decode_handle`] and read field
/// by field. Immutable: several threads may read it at once. Free it with
/// [`privseg_signal_free`].
pub struct privseg_signal {
    _opaque: [u8; 0],
}

/// What a `*mut privseg_signal` points to.
pub(crate) struct SignalObject {
    decoded: Decoded,
    tcf_opts: TcfOptions,
}

enum Decoded {
    Tcf(Box<TcString>),
    Gpp(GppString),
    Usp(UsPrivacy),
}

impl SignalObject {
    /// The TC string: the signal itself, or the `tcfeuv2` section of a GPP
    /// string.
    fn tcf(&self) -> Result<&TcString, FfiError> {
        match &self.decoded {
            Decoded::Tcf(t) => Ok(t),
            Decoded::Gpp(g) => g
                .sections
                .iter()
                .find_map(|s| match s {
                    GppSection::TcfEuV2(t) => Some(t),
                    _ => None,
                })
                .ok_or_else(|| absent("this GPP string has no tcfeuv2 section")),
            Decoded::Usp(_) => Err(absent("a US Privacy string has no TCF fields")),
        }
    }
    /// The US Privacy fields: the signal itself, or the `uspv1` section of a
    /// GPP string.
    fn usp(&self) -> Result<UsPrivacy, FfiError> {
        match &self.decoded {
            Decoded::Usp(u) => Ok(*u),
            Decoded::Gpp(g) => g
                .sections
                .iter()
                .find_map(|s| match s {
                    GppSection::UspV1(u) => Some(*u),
                    _ => None,
                })
                .ok_or_else(|| absent("this GPP string has no uspv1 section")),
            Decoded::Tcf(_) => Err(absent("a TC string has no US Privacy fields")),
        }
    }
    fn gpp(&self) -> Result<&GppString, FfiError> {
        match &self.decoded {
            Decoded::Gpp(g) => Ok(g),
            _ => Err(absent("the signal is not a GPP string")),
        }
    }
}

fn absent(message: &str) -> FfiError {
    FfiError::new(privseg_status::SignalAbsent, message)
}

impl Castable for privseg_signal {
    type Rust = SignalObject;
    const WHAT: &'static str = "signal";
}
impl BoxCastable for privseg_signal {}

/// Copies a list of ids into a caller's array of `cap` items: `*count`
/// receives the number of ids, also when they do not fit (then nothing is
/// copied and the status is `PRIVSEG_STATUS_BUFFER_TOO_SMALL`); a NULL
/// array with `cap == 0` asks for the count this way.
///
/// # Safety
/// `out` must be NULL or point to `cap` writable items; `count` must be NULL
/// or point to a writable `size_t`.
unsafe fn write_ids<T: Copy>(
    ids: &[T],
    out: *mut T,
    cap: usize,
    count: *mut usize,
) -> Result<(), FfiError> {
    non_null(count, "count")?;
    if out.is_null() && cap != 0 {
        return Err(FfiError::null("ids"));
    }
    // SAFETY: count is not NULL and writable, as the caller promises.
    unsafe { *count = ids.len() };
    if ids.len() > cap {
        return Err(FfiError::new(
            privseg_status::BufferTooSmall,
            format!(
                "an array of {cap} items is too small: {} are needed",
                ids.len()
            ),
        ));
    }
    if !ids.is_empty() {
        // SAFETY: out is writable for cap >= ids.len() items and cannot
        // overlap the library's list.
        unsafe { std::ptr::copy_nonoverlapping(ids.as_ptr(), out, ids.len()) };
    }
    Ok(())
}

/// Decodes a consent signal as [`privseg_signal_decode`] does (a TCF TC
/// string starting with `C`, a GPP string starting with `D`, a US Privacy
/// string starting with `1`; leniently: policy violations are listed in the
/// JSON, not refused) into a new handle `*signal_out` whose fields are read
/// with the `privseg_signal_*` accessors. A string that does not decode
/// gives `PRIVSEG_STATUS_SIGNAL_INVALID` with the field and bit offset in
/// the message.
///
/// # Safety
/// `text` must point to `text_len` readable bytes; `signal_out` must point
/// to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_decode_handle(
    text: *const c_char,
    text_len: usize,
    signal_out: *mut *mut privseg_signal,
) -> privseg_status {
    ffi_status!({
        let text = from_caller!(str_arg(text, text_len, "text"))?.trim();
        non_null(signal_out, "signal_out")?;
        let tcf_opts = TcfOptions {
            strict: false,
            ..DecodeOptions::default().tcf
        };
        let decoded = match SignalFormat::detect(text).map_err(signal_fail)? {
            SignalFormat::Tcf => Decoded::Tcf(Box::new(
                TcString::decode_with(text, &tcf_opts)
                    .map_err(signal_fail)?
                    .tc,
            )),
            SignalFormat::Gpp => Decoded::Gpp(
                GppString::decode_with(text, &GppOptions { tcf: tcf_opts })
                    .map_err(signal_fail)?
                    .gpp,
            ),
            SignalFormat::Usp => Decoded::Usp(UsPrivacy::decode(text).map_err(signal_fail)?),
        };
        let obj = SignalObject { decoded, tcf_opts };
        let p = to_box::<privseg_signal>(obj);
        from_caller!(write_out(signal_out, p))
    })
}

/// The signal's format: `PRIVSEG_SIGNAL_TCF`, `_GPP` or `_USP`.
///
/// # Safety
/// `signal` must be a live signal; `format_out` must point to a writable
/// `uint32_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_format(
    signal: *const privseg_signal,
    format_out: *mut u32,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(signal)?;
        let f = match s.decoded {
            Decoded::Tcf(_) => PRIVSEG_SIGNAL_TCF,
            Decoded::Gpp(_) => PRIVSEG_SIGNAL_GPP,
            Decoded::Usp(_) => PRIVSEG_SIGNAL_USP,
        };
        from_caller!(write_out(format_out, f))
    })
}

/// Copies the whole signal's JSON (what [`privseg_signal_decode`] writes)
/// into `buf`, following the buffer convention of this API.
///
/// # Safety
/// `signal` must be a live signal; `buf` must be NULL or point to `len`
/// writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_json(
    signal: *const privseg_signal,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(signal)?;
        let text = match &s.decoded {
            Decoded::Tcf(t) => json::to_json(&TcfJson::from_tc(t, &s.tcf_opts)),
            Decoded::Gpp(g) => json::to_json(&GppJson::from_gpp(g, &s.tcf_opts)),
            Decoded::Usp(u) => json::to_json(&UspJson::from(*u)),
        }
        .map_err(signal_fail)?;
        from_caller!(write_text(text.as_bytes(), buf, len, written))
    })
}

/// Which TCF id list [`privseg_signal_tcf_ids`] copies, passed as a
/// `uint32_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privseg_tcf_list {
    /// PurposesConsent: purposes (1-24) consented to.
    PurposesConsent = 1,
    /// PurposesLITransparency: purposes (1-24) under legitimate interest.
    PurposesLegitimateInterest = 2,
    /// SpecialFeatureOptIns: special features (1-12) opted in.
    SpecialFeatureOptIns = 3,
    /// Vendor consents: vendor ids with consent.
    VendorConsents = 4,
    /// Vendor legitimate interests: vendor ids with legitimate interest.
    VendorLegitimateInterests = 5,
}

/// Copies one id list of the signal's TCF fields (its own, or those of the
/// `tcfeuv2` section of a GPP string), ascending, into `ids`, an array of
/// `cap` `uint16_t`: `*count` receives the number of ids, also when they do
/// not fit (then nothing is copied and the status is
/// `PRIVSEG_STATUS_BUFFER_TOO_SMALL`); NULL with `cap == 0` asks for the
/// count. `list` is a `privseg_tcf_list`. A signal without TCF fields gives
/// `PRIVSEG_STATUS_SIGNAL_ABSENT`.
///
/// # Safety
/// `signal` must be a live signal; `ids` must be NULL or point to `cap`
/// writable `uint16_t`; `count` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_tcf_ids(
    signal: *const privseg_signal,
    list: u32,
    ids: *mut u16,
    cap: usize,
    count: *mut usize,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(signal)?;
        let small = |set: &crate::consent::signals::tcf::IdSet| -> Vec<u16> {
            set.iter().map(u16::from).collect()
        };
        let tc = s.tcf()?;
        let list: Vec<u16> = match list {
            1 => small(&tc.core.purposes_consent),
            2 => small(&tc.core.purposes_li_transparency),
            3 => small(&tc.core.special_feature_opt_ins),
            4 => tc.core.vendor_consents.vendor_ids(),
            5 => tc.core.vendor_legitimate_interests.vendor_ids(),
            other => return Err(FfiError::arg(format!("list: unknown TCF list {other}"))),
        };
        from_caller!(write_ids(&list, ids, cap, count))
    })
}

/// The section ids of a GPP string's header, ascending, copied into `ids` as
/// for [`privseg_signal_tcf_ids`]. A signal that is not a GPP string gives
/// `PRIVSEG_STATUS_SIGNAL_ABSENT`.
///
/// # Safety
/// As for [`privseg_signal_tcf_ids`].
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_gpp_section_ids(
    signal: *const privseg_signal,
    ids: *mut u16,
    cap: usize,
    count: *mut usize,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(signal)?;
        let mut list: Vec<u16> = s.gpp()?.sections.iter().map(GppSection::id).collect();
        list.sort_unstable();
        from_caller!(write_ids(&list, ids, cap, count))
    })
}

/// Copies the JSON of the GPP section `section_id` (as it appears under
/// `sections` in the whole signal's JSON: a TC string's JSON for 2, the
/// `tcfcav1` fields for 5, the US Privacy fields for 6, the `usnat` fields
/// for 7, a US state's fields for 8 to 27, the text as found for a section
/// this library does not decode) into `buf`, following the buffer
/// convention of this API. A section the string does not have, or a signal
/// that is not a GPP string, gives `PRIVSEG_STATUS_SIGNAL_ABSENT`.
///
/// # Safety
/// `signal` must be a live signal; `buf` must be NULL or point to `len`
/// writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_gpp_section(
    signal: *const privseg_signal,
    section_id: u16,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(signal)?;
        let g = s.gpp()?;
        let whole = GppJson::from_gpp(g, &s.tcf_opts);
        let at = whole
            .section_ids
            .iter()
            .position(|&id| id == section_id)
            .ok_or_else(|| absent(&format!("this GPP string has no section {section_id}")))?;
        let section = whole
            .sections
            .as_ref()
            .and_then(|all| all.0.get(at))
            .ok_or_else(|| absent(&format!("this GPP string has no section {section_id}")))?;
        let text = json::to_json(&section.1).map_err(signal_fail)?;
        from_caller!(write_text(text.as_bytes(), buf, len, written))
    })
}

/// The fields of a US Privacy string, each flag `'Y'`, `'N'` or `'-'` (not
/// applicable).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct privseg_usp {
    /// Specification version (1).
    pub version: u8,
    /// Explicit notice given.
    pub notice: c_char,
    /// The user opted out of sale.
    pub opt_out_sale: c_char,
    /// Covered by the IAB LSPA.
    pub lspa_covered: c_char,
}

fn flag(f: UspFlag) -> c_char {
    (match f {
        UspFlag::Yes => b'Y',
        UspFlag::No => b'N',
        UspFlag::NotApplicable => b'-',
    }) as c_char
}

/// The US Privacy fields of the signal (a US Privacy string, or the `uspv1`
/// section of a GPP string) into `*usp_out`. A signal without them gives
/// `PRIVSEG_STATUS_SIGNAL_ABSENT`.
///
/// # Safety
/// `signal` must be a live signal; `usp_out` must point to a writable
/// `privseg_usp`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_usp(
    signal: *const privseg_signal,
    usp_out: *mut privseg_usp,
) -> privseg_status {
    ffi_status!({
        let s = try_ref_from_ptr!(signal)?;
        let u = s.usp()?;
        let out = privseg_usp {
            version: u.version,
            notice: flag(u.notice),
            opt_out_sale: flag(u.opt_out_sale),
            lspa_covered: flag(u.lspa_covered),
        };
        from_caller!(write_out(usp_out, out))
    })
}

/// Frees a decoded signal; NULL does nothing.
///
/// # Safety
/// `signal` must be NULL or a live signal from this library, not used after
/// this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_signal_free(signal: *mut privseg_signal) {
    ffi_value!((), {
        from_caller!(free_box(signal));
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
