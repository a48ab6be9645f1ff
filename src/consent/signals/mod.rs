//! Decoders and encoders for consent signals (IAB TCF, GPP, US Privacy, GPC).
//!
//! * [`tcf`]: TCF v2.2/v2.3 TC strings (core, DisclosedVendors,
//!   AllowedVendors, PublisherTC segments) with policy validation.
//! * [`gpp`]: GPP strings (header, `tcfeuv2`, `tcfcav1`, `uspv1`, `usnat` and
//!   US state sections; other sections kept as opaque text).
//! * [`tcfca`]: the GPP `tcfcav1` section (the Canadian TCF), table-driven.
//! * [`usnat`]: the GPP US National section, versions 1 and 2.
//! * [`usstate`]: the GPP US state sections (8 to 27), table-driven.
//! * [`usp`]: the US Privacy string (`1YNN`).
//! * [`gpc`]: the `Sec-GPC` header.
//! * [`mapping`]: configurable mapping of decoded signals to privseg purpose
//!   keys, producing [`mapping::SignalDecision`]s.
//!
//! All decoders return [`SignalError`] on bad input and never panic.

pub mod bits;
pub mod error;
pub mod events;
pub mod gpc;
pub mod gpp;
pub mod json;
pub mod mapping;
pub mod tcf;
pub mod tcfca;
pub mod usnat;
pub mod usp;
pub mod usstate;

pub use error::{SignalError, SignalResult};

/// The signal formats this module reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalFormat {
    /// An IAB TCF v2 TC string (starts with `C`).
    Tcf,
    /// A GPP string (starts with `D`).
    Gpp,
    /// A US Privacy string (starts with `1`).
    Usp,
}

impl SignalFormat {
    /// The format of a string, from its first character.
    pub fn detect(s: &str) -> SignalResult<SignalFormat> {
        match s.trim().chars().next() {
            Some('C') => Ok(SignalFormat::Tcf),
            Some('D') => Ok(SignalFormat::Gpp),
            Some('1') => Ok(SignalFormat::Usp),
            // Version 1 in the first 6 bits: a TCF v1 consent string.
            Some('B') => Err(SignalError::TcfV1Unsupported),
            Some(first) => Err(SignalError::UnknownFormat { first }),
            None => Err(SignalError::Empty { what: "signal" }),
        }
    }
}

/// How [`decode_to_json_with`] treats what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecodeOptions {
    /// Refuse a string that breaks a policy rule (the first violation
    /// found is the error). Off by default: decoding reports what the
    /// string says and lists the violations in the JSON.
    pub strict: bool,
    /// For a GPP string, decode the header alone (its version and section
    /// ids), whether or not the sections it names are present.
    pub header_only: bool,
    /// The TCF rules: minimum policy version and TCF v2.3 requirements.
    pub tcf: tcf::TcfOptions,
}

/// Decodes a TCF, GPP or US Privacy string (told apart by its first
/// character) and returns it as JSON with the field names and shapes of the
/// IAB reference libraries (see [`json`]). Decoding is lenient: a string
/// that breaks a policy rule (an old policy version, a TCF v2.3
/// requirement) decodes, and the JSON lists the rules broken under
/// `violations`, with field and bit offset.
///
/// ```
/// let json = privseg::consent::signals::decode_to_json("1YNN").unwrap();
/// assert!(json.contains("\"optOutSale\":\"N\""), "{json}");
/// ```
pub fn decode_to_json(s: &str) -> SignalResult<String> {
    decode_to_json_with(s, &DecodeOptions::default())
}

/// [`decode_to_json`] with options: `strict` turns the first policy
/// violation into the error, `header_only` reads a GPP header alone.
pub fn decode_to_json_with(s: &str, opts: &DecodeOptions) -> SignalResult<String> {
    let s = s.trim();
    let format = SignalFormat::detect(s)?;
    if opts.header_only {
        if format != SignalFormat::Gpp {
            return Err(SignalError::InvalidValue {
                field: "Type",
                offset: 0,
                value: 0,
                reason: "only a GPP string has a header to decode alone",
            });
        }
        let header = s.split('~').next().unwrap_or("");
        let (version, ids) = gpp::decode_header(header)?;
        return json::to_json(&json::GppJson::header_only(version, ids));
    }
    let tcf_opts = tcf::TcfOptions {
        strict: opts.strict,
        ..opts.tcf
    };
    match format {
        SignalFormat::Tcf => {
            let d = tcf::TcString::decode_with(s, &tcf_opts)?;
            json::to_json(&json::TcfJson::from_tc(&d.tc, &tcf_opts))
        }
        SignalFormat::Gpp => {
            let d = gpp::GppString::decode_with(s, &gpp::GppOptions { tcf: tcf_opts })?;
            json::to_json(&json::GppJson::from_gpp(&d.gpp, &tcf_opts))
        }
        SignalFormat::Usp => json::to_json(&json::UspJson::from(usp::UsPrivacy::decode(s)?)),
    }
}

/// Encodes a signal of the given format from its JSON form (the form
/// [`decode_to_json`] prints).
pub fn encode_from_json(format: SignalFormat, json: &str) -> SignalResult<String> {
    match format {
        SignalFormat::Tcf => tcf::TcString::from_json(json)?.encode(),
        SignalFormat::Gpp => gpp::GppString::from_json(json)?.encode(),
        SignalFormat::Usp => Ok(json::from_json::<usp::UsPrivacy>(json)?.encode()),
    }
}

/// Encodes a signal from its JSON form, the format given by the JSON's
/// top-level `type` (`tcf`, `gpp` or `usp`).
pub fn encode_json(json: &str) -> SignalResult<String> {
    #[derive(serde::Deserialize)]
    struct Kind {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    let k: Kind = json::from_json(json)?;
    let format = match k.kind.as_deref() {
        Some("tcf") => SignalFormat::Tcf,
        Some("gpp") => SignalFormat::Gpp,
        Some("usp") => SignalFormat::Usp,
        Some(other) => {
            return Err(SignalError::Json(format!(
                "unknown signal type {other:?}: expected tcf, gpp or usp"
            )));
        }
        None => {
            return Err(SignalError::Json(
                "missing \"type\": expected tcf, gpp or usp".into(),
            ));
        }
    };
    encode_from_json(format, json)
}
