//! GPP section 7, `usnat` (MSPA US National), versions 1 and 2, with the
//! optional GPC sub-section.
//!
//! The layout is chosen from the `Version` field, as the specification
//! says: version 1 has 12 `SensitiveDataProcessing` and 2
//! `KnownChildSensitiveDataConsents` entries, version 2 has 16 and 3. Some
//! implementations write `Version = 1` with the 16/3 layout; such strings
//! decode here as version 1 (the extra bits are ignored as padding).

use serde::{Deserialize, Serialize};

use super::bits::{BitWriter, Bits, Padding};
use super::error::{SignalError, SignalResult};
use super::tcf::Violation;
use super::usstate::{COVERED_REASON, UNDEFINED_REASON};

/// A decoded `usnat` section. All 2-bit fields keep their raw value
/// (0 = not applicable; for notices 1 = provided, 2 = not provided; for
/// opt-outs 1 = opted out, 2 = did not opt out; for consents 1 = no consent,
/// 2 = consent).
///
/// Its serde form is [`super::json::UsNatJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "super::json::UsNatJson", try_from = "super::json::UsNatJson")]
pub struct UsNat {
    /// Version, Int(6): 1 or 2.
    pub version: u8,
    /// SharingNotice.
    pub sharing_notice: u8,
    /// SaleOptOutNotice.
    pub sale_opt_out_notice: u8,
    /// SharingOptOutNotice.
    pub sharing_opt_out_notice: u8,
    /// TargetedAdvertisingOptOutNotice.
    pub targeted_advertising_opt_out_notice: u8,
    /// SensitiveDataProcessingOptOutNotice.
    pub sensitive_data_processing_opt_out_notice: u8,
    /// SensitiveDataLimitUseNotice.
    pub sensitive_data_limit_use_notice: u8,
    /// SaleOptOut.
    pub sale_opt_out: u8,
    /// SharingOptOut.
    pub sharing_opt_out: u8,
    /// TargetedAdvertisingOptOut.
    pub targeted_advertising_opt_out: u8,
    /// SensitiveDataProcessing, one entry per category (12 in v1, 16 in v2);
    /// index 0 is category 1.
    pub sensitive_data_processing: Vec<u8>,
    /// KnownChildSensitiveDataConsents (2 in v1, 3 in v2).
    pub known_child_sensitive_data_consents: Vec<u8>,
    /// PersonalDataConsents.
    pub personal_data_consents: u8,
    /// MspaCoveredTransaction (1 = yes, 2 = no).
    pub mspa_covered_transaction: u8,
    /// MspaOptOutOptionMode.
    pub mspa_opt_out_option_mode: u8,
    /// MspaServiceProviderMode.
    pub mspa_service_provider_mode: u8,
    /// The GPC sub-section: `None` when absent, else the `Gpc` flag.
    pub gpc: Option<bool>,
}

/// Number of (sensitive-data, known-child) entries for a version.
pub fn layout(version: u8) -> Option<(usize, usize)> {
    match version {
        1 => Some((12, 2)),
        2 => Some((16, 3)),
        _ => None,
    }
}

const TWO_BIT_FIELDS: [&str; 9] = [
    "SharingNotice",
    "SaleOptOutNotice",
    "SharingOptOutNotice",
    "TargetedAdvertisingOptOutNotice",
    "SensitiveDataProcessingOptOutNotice",
    "SensitiveDataLimitUseNotice",
    "SaleOptOut",
    "SharingOptOut",
    "TargetedAdvertisingOptOut",
];

impl UsNat {
    /// Decodes a `usnat` section (core segment, optionally `.` GPC
    /// sub-section).
    ///
    /// ```
    /// use privseg::consent::signals::usnat::UsNat;
    /// let mut u = UsNat::new(2);
    /// u.sale_opt_out = 1;
    /// u.gpc = Some(true);
    /// let s = u.encode()?;
    /// assert!(s.ends_with(".YA"));
    /// assert_eq!(UsNat::decode(&s)?, u);
    /// # Ok::<(), privseg::consent::signals::SignalError>(())
    /// ```
    pub fn decode(s: &str) -> SignalResult<Self> {
        let mut parts = s.split('.');
        let core = parts.next().unwrap_or("");
        if core.is_empty() {
            return Err(SignalError::Empty {
                what: "usnat core segment",
            });
        }
        let bits = Bits::from_base64url(core)?;
        let mut r = bits.reader();
        let version = r.read(6, "Version")?;
        let Some((n_sensitive, n_child)) = u8::try_from(version).ok().and_then(layout) else {
            return Err(SignalError::UnsupportedVersion {
                field: "Version",
                offset: 0,
                found: version,
            });
        };
        let mut two = [0u8; 9];
        for (slot, name) in two.iter_mut().zip(TWO_BIT_FIELDS) {
            *slot = r.read(2, name)? as u8;
        }
        let sensitive = (0..n_sensitive)
            .map(|_| r.read(2, "SensitiveDataProcessing").map(|v| v as u8))
            .collect::<SignalResult<Vec<u8>>>()?;
        let child = (0..n_child)
            .map(|_| {
                r.read(2, "KnownChildSensitiveDataConsents")
                    .map(|v| v as u8)
            })
            .collect::<SignalResult<Vec<u8>>>()?;
        let personal_data_consents = r.read(2, "PersonalDataConsents")? as u8;
        let mspa_covered_transaction = r.read(2, "MspaCoveredTransaction")? as u8;
        let mspa_opt_out_option_mode = r.read(2, "MspaOptOutOptionMode")? as u8;
        let mspa_service_provider_mode = r.read(2, "MspaServiceProviderMode")? as u8;
        let gpc = gpc_subsection(parts)?;
        Ok(Self {
            version: version as u8,
            sharing_notice: two[0],
            sale_opt_out_notice: two[1],
            sharing_opt_out_notice: two[2],
            targeted_advertising_opt_out_notice: two[3],
            sensitive_data_processing_opt_out_notice: two[4],
            sensitive_data_limit_use_notice: two[5],
            sale_opt_out: two[6],
            sharing_opt_out: two[7],
            targeted_advertising_opt_out: two[8],
            sensitive_data_processing: sensitive,
            known_child_sensitive_data_consents: child,
            personal_data_consents,
            mspa_covered_transaction,
            mspa_opt_out_option_mode,
            mspa_service_provider_mode,
            gpc,
        })
    }

    /// The rules of the MSPA US National specification this section breaks,
    /// with the bit offset of the offending value in the core segment
    /// (which the reference libraries read without complaint):
    /// `MspaCoveredTransaction` must be 1 (yes) or 2 (no), 0 being invalid;
    /// every other 2-bit field and list entry is 0, 1 or 2, 3 being
    /// undefined.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut undefined = |field: &'static str, offset: usize, v: u8| {
            if v == 3 {
                out.push(Violation {
                    field,
                    offset: Some(offset),
                    reason: UNDEFINED_REASON,
                });
            }
        };
        let two = self.two_bit_fields();
        let mut at = 6;
        for (v, name) in two.into_iter().zip(TWO_BIT_FIELDS) {
            undefined(name, at, v);
            at += 2;
        }
        for &v in &self.sensitive_data_processing {
            undefined("SensitiveDataProcessing", at, v);
            at += 2;
        }
        for &v in &self.known_child_sensitive_data_consents {
            undefined("KnownChildSensitiveDataConsents", at, v);
            at += 2;
        }
        undefined("PersonalDataConsents", at, self.personal_data_consents);
        let covered_at = at + 2;
        undefined(
            "MspaOptOutOptionMode",
            at + 4,
            self.mspa_opt_out_option_mode,
        );
        undefined(
            "MspaServiceProviderMode",
            at + 6,
            self.mspa_service_provider_mode,
        );
        if !(1..=2).contains(&self.mspa_covered_transaction) {
            let i = out
                .iter()
                .position(|v| v.offset > Some(covered_at))
                .unwrap_or(out.len());
            out.insert(
                i,
                Violation {
                    field: "MspaCoveredTransaction",
                    offset: Some(covered_at),
                    reason: COVERED_REASON,
                },
            );
        }
        out
    }

    /// The nine 2-bit fields after the version, in string order (named by
    /// `TWO_BIT_FIELDS`).
    fn two_bit_fields(&self) -> [u8; 9] {
        [
            self.sharing_notice,
            self.sale_opt_out_notice,
            self.sharing_opt_out_notice,
            self.targeted_advertising_opt_out_notice,
            self.sensitive_data_processing_opt_out_notice,
            self.sensitive_data_limit_use_notice,
            self.sale_opt_out,
            self.sharing_opt_out,
            self.targeted_advertising_opt_out,
        ]
    }

    /// A section of the given version with every field 0 (not applicable),
    /// `MspaCoveredTransaction` = 2 (no) and no GPC sub-section.
    pub fn new(version: u8) -> Self {
        let (ns, nc) = layout(version).unwrap_or((16, 3));
        Self {
            version,
            sharing_notice: 0,
            sale_opt_out_notice: 0,
            sharing_opt_out_notice: 0,
            targeted_advertising_opt_out_notice: 0,
            sensitive_data_processing_opt_out_notice: 0,
            sensitive_data_limit_use_notice: 0,
            sale_opt_out: 0,
            sharing_opt_out: 0,
            targeted_advertising_opt_out: 0,
            sensitive_data_processing: vec![0; ns],
            known_child_sensitive_data_consents: vec![0; nc],
            personal_data_consents: 0,
            mspa_covered_transaction: 2,
            mspa_opt_out_option_mode: 0,
            mspa_service_provider_mode: 0,
            gpc: None,
        }
    }

    /// Encodes with byte padding (the reference libraries' form).
    pub fn encode(&self) -> SignalResult<String> {
        self.encode_with(Padding::Byte)
    }

    /// Encodes with the given padding.
    pub fn encode_with(&self, padding: Padding) -> SignalResult<String> {
        let Some((ns, nc)) = layout(self.version) else {
            return Err(SignalError::Encode {
                field: "Version",
                reason: format!("unsupported usnat version {}", self.version),
            });
        };
        if self.sensitive_data_processing.len() != ns {
            return Err(SignalError::Encode {
                field: "SensitiveDataProcessing",
                reason: format!("version {} needs {ns} entries", self.version),
            });
        }
        if self.known_child_sensitive_data_consents.len() != nc {
            return Err(SignalError::Encode {
                field: "KnownChildSensitiveDataConsents",
                reason: format!("version {} needs {nc} entries", self.version),
            });
        }
        let mut w = BitWriter::new();
        w.write(u64::from(self.version), 6, "Version")?;
        let two = self.two_bit_fields();
        for (v, name) in two.into_iter().zip(TWO_BIT_FIELDS) {
            w.write(u64::from(v), 2, name)?;
        }
        for &v in &self.sensitive_data_processing {
            w.write(u64::from(v), 2, "SensitiveDataProcessing")?;
        }
        for &v in &self.known_child_sensitive_data_consents {
            w.write(u64::from(v), 2, "KnownChildSensitiveDataConsents")?;
        }
        w.write(
            u64::from(self.personal_data_consents),
            2,
            "PersonalDataConsents",
        )?;
        w.write(
            u64::from(self.mspa_covered_transaction),
            2,
            "MspaCoveredTransaction",
        )?;
        w.write(
            u64::from(self.mspa_opt_out_option_mode),
            2,
            "MspaOptOutOptionMode",
        )?;
        w.write(
            u64::from(self.mspa_service_provider_mode),
            2,
            "MspaServiceProviderMode",
        )?;
        let mut out = w.to_base64url(padding);
        if let Some(g) = self.gpc {
            let mut w = BitWriter::new();
            w.write(1, 2, "SubsectionType")?;
            w.write_bool(g);
            out.push('.');
            out.push_str(&w.to_base64url(padding));
        }
        Ok(out)
    }
}

/// The GPC sub-section, if the string has one (at most one, of type 1).
fn gpc_subsection<'a>(parts: impl Iterator<Item = &'a str>) -> SignalResult<Option<bool>> {
    let mut gpc = None;
    for part in parts {
        if part.is_empty() {
            return Err(SignalError::Empty {
                what: "usnat sub-section",
            });
        }
        let bits = Bits::from_base64url(part)?;
        let mut r = bits.reader();
        let t = r.read(2, "SubsectionType")?;
        if t != 1 {
            return Err(SignalError::UnsupportedVersion {
                field: "SubsectionType",
                offset: 0,
                found: t,
            });
        }
        if gpc.is_some() {
            return Err(SignalError::InvalidValue {
                field: "SubsectionType",
                offset: 0,
                value: t,
                reason: "GPC sub-section appears twice",
            });
        }
        gpc = Some(r.read_bool("Gpc")?);
    }
    Ok(gpc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covered_transaction_zero_is_a_violation_at_its_offset() {
        let mut u = UsNat::new(2);
        assert!(u.violations().is_empty());
        u.mspa_covered_transaction = 0;
        let back = UsNat::decode(&u.encode().unwrap()).unwrap();
        assert_eq!(back, u, "the libraries read it: so does the decoder");
        // Version(6) + 9 fields(18) + 16 sensitive(32) + 3 child(6) +
        // PersonalDataConsents(2) = 64.
        assert_eq!(
            back.violations(),
            vec![Violation {
                field: "MspaCoveredTransaction",
                offset: Some(64),
                reason: COVERED_REASON,
            }]
        );
        let mut v1 = UsNat::new(1);
        v1.mspa_covered_transaction = 3;
        assert_eq!(v1.violations()[0].offset, Some(6 + 18 + 24 + 4 + 2));
    }

    #[test]
    fn undefined_value_three_is_a_violation() {
        let mut u = UsNat::new(2);
        u.sale_opt_out = 3;
        u.sensitive_data_processing[15] = 3;
        u.mspa_service_provider_mode = 3;
        let v = u.violations();
        let got: Vec<_> = v.iter().map(|v| (v.field, v.offset)).collect();
        assert_eq!(
            got,
            vec![
                ("SaleOptOut", Some(18)),
                ("SensitiveDataProcessing", Some(24 + 30)),
                ("MspaServiceProviderMode", Some(68)),
            ]
        );
        assert!(v.iter().all(|v| v.reason == UNDEFINED_REASON));
    }
}
