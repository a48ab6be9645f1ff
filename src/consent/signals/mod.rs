//! Decoders and encoders for consent signals (IAB TCF, GPP, US Privacy, GPC).
//!
//! * [`tcf`]: TCF v2.2/v2.3 TC strings (core, DisclosedVendors,
//!   AllowedVendors, PublisherTC segments) with policy validation.
//! * [`gpp`]: GPP strings (header, `tcfeuv2`, `uspv1`, `usnat` sections;
//!   other sections kept as opaque text).
//! * [`usnat`]: the GPP US National section, versions 1 and 2.
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
pub mod mapping;
pub mod tcf;
pub mod usnat;
pub mod usp;

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
            Some(first) => Err(SignalError::UnknownFormat { first }),
            None => Err(SignalError::Empty { what: "signal" }),
        }
    }
}

/// Decodes a TCF, GPP or US Privacy string (told apart by its first
/// character) and returns it as JSON with the IAB field names.
///
/// ```
/// let json = privseg::consent::signals::decode_to_json("1YNN").unwrap();
/// assert!(json.contains("\"optOutSale\":\"No\""), "{json}");
/// ```
pub fn decode_to_json(s: &str) -> SignalResult<String> {
    let s = s.trim();
    match SignalFormat::detect(s)? {
        SignalFormat::Tcf => tcf::TcString::decode(s)?.to_json(),
        SignalFormat::Gpp => gpp::GppString::decode(s)?.to_json(),
        SignalFormat::Usp => serde_json::to_string(&usp::UsPrivacy::decode(s)?)
            .map_err(|e| SignalError::Json(e.to_string())),
    }
}

/// Encodes a signal of the given format from its JSON form (the form
/// [`decode_to_json`] prints).
pub fn encode_from_json(format: SignalFormat, json: &str) -> SignalResult<String> {
    match format {
        SignalFormat::Tcf => tcf::TcString::from_json(json)?.encode(),
        SignalFormat::Gpp => gpp::GppString::from_json(json)?.encode(),
        SignalFormat::Usp => Ok(serde_json::from_str::<usp::UsPrivacy>(json)
            .map_err(|e| SignalError::Json(e.to_string()))?
            .encode()),
    }
}
