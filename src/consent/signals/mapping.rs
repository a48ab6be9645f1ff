//! Mapping of decoded signals to privseg purpose keys.
//!
//! A [`SignalMapping`] (loadable from JSON with serde) says which privseg
//! purpose key (a dotted string such as `marketing.advertising.third_party`)
//! each TCF purpose, TCF special feature and `usnat` field stands for. The
//! `*_decisions` methods turn a decoded signal into a list of
//! [`SignalDecision`]s, each carrying a [`SignalProof`] with the SHA-256 of
//! the raw string so that the decision can be traced back to the signal.
//!
//! Rules:
//!
//! * TCF purposes and special features: bit set → `ConsentGranted`, bit
//!   clear → `ConsentRefused` (only mapped ids). With
//!   `tcf_li_objections`, a mapped purpose whose `PurposesLITransparency`
//!   bit is clear also yields `Objection`; note that the string cannot tell
//!   an objection apart from legitimate interest never being established.
//!   The time is `LastUpdated`.
//! * `usnat` `SaleOptOut` / `SharingOptOut` / `TargetedAdvertisingOptOut`:
//!   1 → `OptOutSaleShare`, 2 → `OptInSaleShare`, 0 → nothing. These are
//!   emitted even when no key is configured (`purpose: None`), because an
//!   opt-out applies whatever the purpose.
//! * `usnat` `SensitiveDataProcessing` (mapped categories only): 1 (no
//!   consent) → `LimitSensitive`, 2 (consent) → `ConsentGranted`.
//! * `usnat` `KnownChildSensitiveDataConsents` and `PersonalDataConsents`
//!   (mapped only): 1 → `ConsentRefused`, 2 → `ConsentGranted`.
//! * GPC (the `Sec-GPC` header or the `usnat` GPC sub-section set to true):
//!   `Gpc`, which the engine must treat as an opt-out of sale and sharing
//!   (Cal. Code Regs. tit. 11 § 7025). An absent or false GPC yields
//!   nothing: absence is not an opt-in.
//! * US Privacy `OptOutSale`: `Y` → `OptOutSaleShare`, `N` →
//!   `OptInSaleShare`, `-` → nothing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{SignalError, SignalResult};
use super::gpc::gpc_from_header;
use super::gpp::{GppSection, GppString};
use super::tcf::TcString;
use super::usnat::UsNat;
use super::usp::{UsPrivacy, UspFlag};

/// What a signal says about one purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignalDecisionKind {
    /// Consent given.
    ConsentGranted,
    /// Consent refused or withdrawn.
    ConsentRefused,
    /// Opt-out of sale / sharing / targeted advertising.
    OptOutSaleShare,
    /// Explicit choice not to opt out of sale / sharing.
    OptInSaleShare,
    /// Limit the use of sensitive data.
    LimitSensitive,
    /// Global Privacy Control signal (an opt-out of sale and sharing).
    Gpc,
    /// Objection to processing based on legitimate interest.
    Objection,
}

/// Evidence for a decision: where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalProof {
    /// `"tcf"`, `"gpp"`, `"usp"` or `"gpc"`.
    pub format: String,
    /// CMP id, when the signal carries one (TCF).
    pub cmp_id: Option<u16>,
    /// CMP version, when the signal carries one (TCF).
    pub cmp_version: Option<u16>,
    /// Creation time of the signal in Unix seconds (UTC), when known.
    pub created: Option<i64>,
    /// Lower-case hex SHA-256 of the raw signal string.
    pub sha256_hex: String,
}

/// One decision derived from a consent signal. Self-contained: it does not
/// depend on the engine's own consent event types.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalDecision {
    /// privseg purpose key, or `None` when the decision applies whatever the
    /// purpose (an unmapped opt-out or GPC).
    pub purpose: Option<String>,
    /// What the signal says.
    pub kind: SignalDecisionKind,
    /// When the decision was made, Unix seconds UTC (the signal's
    /// `LastUpdated` for TCF, otherwise the time given by the caller).
    pub at: i64,
    /// Where the decision comes from.
    pub proof: SignalProof,
}

/// Keys for the `usnat` fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsNatMapping {
    /// Key for `SaleOptOut`.
    pub sale: Option<String>,
    /// Key for `SharingOptOut`.
    pub sharing: Option<String>,
    /// Key for `TargetedAdvertisingOptOut`.
    pub targeted_advertising: Option<String>,
    /// Keys for `SensitiveDataProcessing` categories (1-based).
    pub sensitive_data: BTreeMap<u8, String>,
    /// Keys for `KnownChildSensitiveDataConsents` entries (1-based).
    pub known_child: BTreeMap<u8, String>,
    /// Key for `PersonalDataConsents`.
    pub personal_data: Option<String>,
}

/// Configurable mapping from signal fields to privseg purpose keys.
///
/// ```
/// use privseg::consent::signals::mapping::{SignalDecisionKind, SignalMapping};
/// use privseg::consent::signals::tcf::TcString;
/// let mapping = SignalMapping::from_json(
///     r#"{"tcfPurposes": {"4": "marketing.advertising.third_party"}}"#,
/// )?;
/// let raw = TcString::example().encode()?;
/// let tc = TcString::decode(&raw)?;
/// let d = mapping.tcf_decisions(&raw, &tc);
/// assert_eq!(d.len(), 1);
/// assert_eq!(d[0].kind, SignalDecisionKind::ConsentGranted);
/// assert_eq!(d[0].proof.format, "tcf");
/// # Ok::<(), privseg::consent::signals::SignalError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SignalMapping {
    /// TCF purpose id (1..=24) → key.
    pub tcf_purposes: BTreeMap<u8, String>,
    /// TCF special feature id (1..=12) → key.
    pub tcf_special_features: BTreeMap<u8, String>,
    /// Emit `Objection` for mapped purposes without legitimate-interest
    /// transparency (off by default; see the module documentation).
    pub tcf_li_objections: bool,
    /// Keys for `usnat`.
    pub usnat: UsNatMapping,
    /// Key for the US Privacy `OptOutSale` flag.
    pub usp_sale: Option<String>,
    /// Key for GPC decisions.
    pub gpc: Option<String>,
}

/// Lower-case hex SHA-256 of a string.
pub fn sha256_hex(raw: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, raw.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest.as_ref() {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

fn proof(format: &str, raw_sha: &str, tc: Option<&TcString>) -> SignalProof {
    SignalProof {
        format: format.to_string(),
        cmp_id: tc.map(|t| t.core.cmp_id),
        cmp_version: tc.map(|t| t.core.cmp_version),
        created: tc.map(TcString::created_unix_seconds),
        sha256_hex: raw_sha.to_string(),
    }
}

fn push(
    out: &mut Vec<SignalDecision>,
    purpose: Option<&String>,
    kind: SignalDecisionKind,
    at: i64,
    p: &SignalProof,
) {
    out.push(SignalDecision {
        purpose: purpose.cloned(),
        kind,
        at,
        proof: p.clone(),
    });
}

impl SignalMapping {
    /// Loads a mapping from JSON.
    pub fn from_json(s: &str) -> SignalResult<Self> {
        serde_json::from_str(s).map_err(|e| SignalError::Json(e.to_string()))
    }

    fn tcf_into(&self, tc: &TcString, p: &SignalProof, out: &mut Vec<SignalDecision>) {
        use SignalDecisionKind::*;
        let at = tc.last_updated_unix_seconds();
        let c = &tc.core;
        for (&id, key) in &self.tcf_purposes {
            let kind = if c.purposes_consent.contains(id) {
                ConsentGranted
            } else {
                ConsentRefused
            };
            push(out, Some(key), kind, at, p);
            if self.tcf_li_objections && !c.purposes_li_transparency.contains(id) {
                push(out, Some(key), Objection, at, p);
            }
        }
        for (&id, key) in &self.tcf_special_features {
            let kind = if c.special_feature_opt_ins.contains(id) {
                ConsentGranted
            } else {
                ConsentRefused
            };
            push(out, Some(key), kind, at, p);
        }
    }

    fn usnat_into(&self, u: &UsNat, at: i64, p: &SignalProof, out: &mut Vec<SignalDecision>) {
        use SignalDecisionKind::*;
        let m = &self.usnat;
        for (value, key) in [
            (u.sale_opt_out, &m.sale),
            (u.sharing_opt_out, &m.sharing),
            (u.targeted_advertising_opt_out, &m.targeted_advertising),
        ] {
            match value {
                1 => push(out, key.as_ref(), OptOutSaleShare, at, p),
                2 => push(out, key.as_ref(), OptInSaleShare, at, p),
                _ => {}
            }
        }
        for (&cat, key) in &m.sensitive_data {
            match u
                .sensitive_data_processing
                .get(usize::from(cat).wrapping_sub(1))
            {
                Some(1) => push(out, Some(key), LimitSensitive, at, p),
                Some(2) => push(out, Some(key), ConsentGranted, at, p),
                _ => {}
            }
        }
        for (&idx, key) in &m.known_child {
            match u
                .known_child_sensitive_data_consents
                .get(usize::from(idx).wrapping_sub(1))
            {
                Some(1) => push(out, Some(key), ConsentRefused, at, p),
                Some(2) => push(out, Some(key), ConsentGranted, at, p),
                _ => {}
            }
        }
        if let Some(key) = &m.personal_data {
            match u.personal_data_consents {
                1 => push(out, Some(key), ConsentRefused, at, p),
                2 => push(out, Some(key), ConsentGranted, at, p),
                _ => {}
            }
        }
        if u.gpc == Some(true) {
            push(out, self.gpc.as_ref(), Gpc, at, p);
        }
    }

    fn usp_into(&self, u: &UsPrivacy, at: i64, p: &SignalProof, out: &mut Vec<SignalDecision>) {
        match u.opt_out_sale {
            UspFlag::Yes => push(
                out,
                self.usp_sale.as_ref(),
                SignalDecisionKind::OptOutSaleShare,
                at,
                p,
            ),
            UspFlag::No => push(
                out,
                self.usp_sale.as_ref(),
                SignalDecisionKind::OptInSaleShare,
                at,
                p,
            ),
            UspFlag::NotApplicable => {}
        }
    }

    /// Decisions from a TC string; `raw` is the string as received.
    pub fn tcf_decisions(&self, raw: &str, tc: &TcString) -> Vec<SignalDecision> {
        let p = proof("tcf", &sha256_hex(raw), Some(tc));
        let mut out = Vec::new();
        self.tcf_into(tc, &p, &mut out);
        out
    }

    /// Decisions from a standalone `usnat` section received at `at`.
    pub fn usnat_decisions(&self, raw: &str, u: &UsNat, at: i64) -> Vec<SignalDecision> {
        let p = proof("gpp", &sha256_hex(raw), None);
        let mut out = Vec::new();
        self.usnat_into(u, at, &p, &mut out);
        out
    }

    /// Decisions from a US Privacy string received at `at`.
    pub fn usp_decisions(&self, raw: &str, u: &UsPrivacy, at: i64) -> Vec<SignalDecision> {
        let p = proof("usp", &sha256_hex(raw), None);
        let mut out = Vec::new();
        self.usp_into(u, at, &p, &mut out);
        out
    }

    /// Decisions from a `Sec-GPC` header value received at `at`: one `Gpc`
    /// decision when the value means true, none otherwise.
    pub fn gpc_decisions(&self, header_value: &str, at: i64) -> Vec<SignalDecision> {
        if !gpc_from_header(header_value) {
            return Vec::new();
        }
        let p = proof("gpc", &sha256_hex(header_value), None);
        let mut out = Vec::new();
        push(&mut out, self.gpc.as_ref(), SignalDecisionKind::Gpc, at, &p);
        out
    }

    /// Decisions from every decodable section of a GPP string received at
    /// `at` (the TCF section uses its own `LastUpdated`). Opaque sections
    /// and the `tcfcav1` and US state sections (which no mapping names
    /// yet) yield nothing. The proof hashes the whole GPP string.
    pub fn gpp_decisions(&self, raw: &str, g: &GppString, at: i64) -> Vec<SignalDecision> {
        let sha = sha256_hex(raw);
        let p = proof("gpp", &sha, g.tcf());
        let mut out = Vec::new();
        for s in &g.sections {
            match s {
                GppSection::TcfEuV2(t) => self.tcf_into(t, &p, &mut out),
                GppSection::UspV1(u) => self.usp_into(u, at, &p, &mut out),
                GppSection::UsNat(u) => self.usnat_into(u, at, &p, &mut out),
                GppSection::TcfCaV1(_) | GppSection::UsState(_) | GppSection::Unknown { .. } => {}
            }
        }
        out
    }
}
