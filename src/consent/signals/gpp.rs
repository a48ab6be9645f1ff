//! Global Privacy Platform (GPP) strings: `Header~Section~Section...`.
//!
//! Supported sections: 2 (`tcfeuv2`, the TC string as-is), 6 (`uspv1`, the
//! four-character US Privacy string), 5 (`tcfcav1`, [`super::tcfca`]), 7
//! (`usnat`) and the US state sections 8 to 27 ([`super::usstate`]). Any
//! other section (1, `tcfeuv1`; ids without a name) is kept as opaque text
//! ([`GppSection::Unknown`]) and listed by
//! [`GppString::unknown_section_ids`]; it is not an error.

use serde::{Deserialize, Serialize};

use super::bits::{BitWriter, Bits, Padding};
use super::error::{SignalError, SignalResult};
use super::tcf::{TcString, TcfOptions, Violation};
use super::tcfca::TcfCaV1;
use super::usnat::UsNat;
use super::usp::UsPrivacy;
use super::usstate::UsStateSection;

/// Section id of `tcfeuv2`.
pub const SECTION_TCFEUV2: u16 = 2;
/// Section id of `tcfcav1`.
pub const SECTION_TCFCAV1: u16 = 5;
/// Section id of `uspv1`.
pub const SECTION_USPV1: u16 = 6;
/// Section id of `usnat`.
pub const SECTION_USNAT: u16 = 7;

/// One section of a GPP string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GppSection {
    /// Section 2, `tcfeuv2`.
    TcfEuV2(TcString),
    /// Section 5, `tcfcav1` (the Canadian TCF).
    TcfCaV1(TcfCaV1),
    /// Section 6, `uspv1`.
    UspV1(UsPrivacy),
    /// Section 7, `usnat`.
    UsNat(UsNat),
    /// A US state section, 8 (`usca`) to 27 (`usri`).
    UsState(UsStateSection),
    /// A section this crate does not decode, kept verbatim.
    Unknown {
        /// Section id from the header.
        id: u16,
        /// The section text as found in the string.
        text: String,
    },
}

impl GppSection {
    /// The GPP section id.
    pub fn id(&self) -> u16 {
        match self {
            GppSection::TcfEuV2(_) => SECTION_TCFEUV2,
            GppSection::TcfCaV1(_) => SECTION_TCFCAV1,
            GppSection::UspV1(_) => SECTION_USPV1,
            GppSection::UsNat(_) => SECTION_USNAT,
            GppSection::UsState(u) => u.id,
            GppSection::Unknown { id, .. } => *id,
        }
    }
}

/// A decoded GPP string. Its serde form is the reference-library JSON of
/// [`super::json::GppJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "super::json::GppJson", try_from = "super::json::GppJson")]
pub struct GppString {
    /// GPP header version (1).
    pub version: u8,
    /// Sections in string order; their ids, ascending, form the header's
    /// `SectionIds`.
    pub sections: Vec<GppSection>,
}

/// Options for GPP decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GppOptions {
    /// Options applied to a `tcfeuv2` section.
    pub tcf: TcfOptions,
}

/// A decoded GPP string with what was found along the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GppDecoded {
    /// The decoded string.
    pub gpp: GppString,
    /// TCF policy violations in the `tcfeuv2` section (lenient mode only).
    pub tcf_violations: Vec<Violation>,
    /// Rules broken by the `tcfcav1`, `usnat` and US state sections, with
    /// their section ids (lenient mode only).
    pub section_violations: Vec<(u16, Violation)>,
}

impl GppSection {
    /// The rules of the specifications a `tcfcav1`, `usnat` or US state
    /// section breaks; empty for the other sections (the `tcfeuv2` rules
    /// depend on options: see [`TcString::violations`]).
    pub fn section_violations(&self) -> Vec<Violation> {
        match self {
            GppSection::TcfCaV1(t) => t.violations(),
            GppSection::UsNat(u) => u.violations(),
            GppSection::UsState(u) => u.violations(),
            _ => Vec::new(),
        }
    }
}

/// Decodes the GPP header and returns `(version, section ids)`.
pub fn decode_header(s: &str) -> SignalResult<(u8, Vec<u16>)> {
    if s.is_empty() {
        return Err(SignalError::Empty { what: "GPP header" });
    }
    let bits = Bits::from_base64url(s)?;
    let mut r = bits.reader();
    let t = r.read(6, "Type")?;
    if t != 3 {
        return Err(SignalError::UnsupportedVersion {
            field: "Type",
            offset: 0,
            found: t,
        });
    }
    let version = r.read(6, "Version")?;
    if version != 1 {
        return Err(SignalError::UnsupportedVersion {
            field: "Version",
            offset: 6,
            found: version,
        });
    }
    let count = r.read(12, "SectionIds.NumEntries")?;
    let mut ids = Vec::new();
    let mut last: u64 = 0;
    for _ in 0..count {
        let offset = r.pos();
        let group = r.read_bool("SectionIds.IsGroup")?;
        let start = last + r.read_fibonacci("SectionIds.Offset")?;
        let end = if group {
            start + r.read_fibonacci("SectionIds.GroupLength")?
        } else {
            start
        };
        if end > u64::from(u16::MAX) {
            return Err(SignalError::InvalidValue {
                field: "SectionIds",
                offset,
                value: end,
                reason: "section id larger than 65535",
            });
        }
        ids.extend(start as u16..=end as u16);
        last = end;
    }
    Ok((version as u8, ids))
}

/// Encodes a GPP header for the given ascending section ids.
pub fn encode_header(ids: &[u16], padding: Padding) -> SignalResult<String> {
    let mut w = BitWriter::new();
    w.write(3, 6, "Type")?;
    w.write(1, 6, "Version")?;
    let mut runs: Vec<(u16, u16)> = Vec::new();
    let mut prev = 0u16;
    for &id in ids {
        if id <= prev {
            return Err(SignalError::Encode {
                field: "SectionIds",
                reason: format!(
                    "section ids must be ascending, unique and >= 1 (got {id} after {prev})"
                ),
            });
        }
        match runs.last_mut() {
            Some(run) if run.1 + 1 == id => run.1 = id,
            _ => runs.push((id, id)),
        }
        prev = id;
    }
    w.write(runs.len() as u64, 12, "SectionIds.NumEntries")?;
    let mut last = 0u16;
    for (a, b) in runs {
        w.write_bool(a != b);
        w.write_fibonacci(u64::from(a - last), "SectionIds.Offset")?;
        if a != b {
            w.write_fibonacci(u64::from(b - a), "SectionIds.GroupLength")?;
        }
        last = b;
    }
    Ok(w.to_base64url(padding))
}

impl GppString {
    /// Decodes with default options (strict TCF validation).
    ///
    /// ```
    /// use privseg::consent::signals::gpp::{GppSection, GppString};
    /// let g = GppString::decode("DBABTA~1YN-")?;
    /// assert_eq!(g.section_ids(), vec![6]);
    /// assert!(matches!(&g.sections[0], GppSection::UspV1(u) if u.encode() == "1YN-"));
    /// assert_eq!(g.encode()?, "DBABTA~1YN-");
    /// # Ok::<(), privseg::consent::signals::SignalError>(())
    /// ```
    pub fn decode(s: &str) -> SignalResult<Self> {
        Ok(Self::decode_with(s, &GppOptions::default())?.gpp)
    }

    /// Decodes with the given options.
    pub fn decode_with(s: &str, opts: &GppOptions) -> SignalResult<GppDecoded> {
        let mut parts = s.split('~');
        let (version, ids) = decode_header(parts.next().unwrap_or(""))?;
        let texts: Vec<&str> = parts.collect();
        if texts.len() > ids.len() {
            return Err(SignalError::ExtraSections {
                declared: ids.len(),
                found: texts.len(),
            });
        }
        let mut sections = Vec::with_capacity(ids.len());
        let mut tcf_violations = Vec::new();
        let mut section_violations = Vec::new();
        for (index, &id) in ids.iter().enumerate() {
            let text = match texts.get(index) {
                Some(t) if !t.is_empty() => *t,
                _ => {
                    return Err(SignalError::SectionMissing {
                        section_id: id,
                        index,
                    });
                }
            };
            let wrap = |e: SignalError| SignalError::InSection {
                section_id: id,
                index,
                error: Box::new(e),
            };
            let section = match id {
                SECTION_TCFEUV2 => {
                    let d = TcString::decode_with(text, &opts.tcf).map_err(wrap)?;
                    tcf_violations = d.violations;
                    GppSection::TcfEuV2(d.tc)
                }
                SECTION_TCFCAV1 => GppSection::TcfCaV1(TcfCaV1::decode(text).map_err(wrap)?),
                SECTION_USPV1 => GppSection::UspV1(UsPrivacy::decode(text).map_err(wrap)?),
                SECTION_USNAT => GppSection::UsNat(UsNat::decode(text).map_err(wrap)?),
                _ if super::usstate::section_def(id).is_some() => {
                    GppSection::UsState(UsStateSection::decode(id, text).map_err(wrap)?)
                }
                _ => GppSection::Unknown {
                    id,
                    text: text.to_string(),
                },
            };
            let found = section.section_violations();
            if opts.tcf.strict
                && let Some(v) = found.first()
            {
                return Err(wrap(v.clone().into()));
            }
            section_violations.extend(found.into_iter().map(|v| (id, v)));
            sections.push(section);
        }
        Ok(GppDecoded {
            gpp: GppString { version, sections },
            tcf_violations,
            section_violations,
        })
    }

    /// Section ids in string order.
    pub fn section_ids(&self) -> Vec<u16> {
        self.sections.iter().map(GppSection::id).collect()
    }

    /// Ids of the sections kept as opaque text.
    pub fn unknown_section_ids(&self) -> Vec<u16> {
        self.sections
            .iter()
            .filter(|s| matches!(s, GppSection::Unknown { .. }))
            .map(GppSection::id)
            .collect()
    }

    /// The `tcfeuv2` section, if present.
    pub fn tcf(&self) -> Option<&TcString> {
        self.sections.iter().find_map(|s| match s {
            GppSection::TcfEuV2(t) => Some(t),
            _ => None,
        })
    }

    /// The `tcfcav1` section, if present.
    pub fn tcfca(&self) -> Option<&TcfCaV1> {
        self.sections.iter().find_map(|s| match s {
            GppSection::TcfCaV1(t) => Some(t),
            _ => None,
        })
    }

    /// The `uspv1` section, if present.
    pub fn usp(&self) -> Option<&UsPrivacy> {
        self.sections.iter().find_map(|s| match s {
            GppSection::UspV1(u) => Some(u),
            _ => None,
        })
    }

    /// The `usnat` section, if present.
    pub fn usnat(&self) -> Option<&UsNat> {
        self.sections.iter().find_map(|s| match s {
            GppSection::UsNat(u) => Some(u),
            _ => None,
        })
    }

    /// The US state section `id` (8 to 27), if present.
    pub fn us_state(&self, id: u16) -> Option<&UsStateSection> {
        self.sections.iter().find_map(|s| match s {
            GppSection::UsState(u) if u.id == id => Some(u),
            _ => None,
        })
    }

    /// Encodes with byte padding (the reference libraries' form).
    pub fn encode(&self) -> SignalResult<String> {
        self.encode_with(Padding::Byte)
    }

    /// Encodes with the given padding (applied to the header and to the
    /// base64url sections this crate writes).
    pub fn encode_with(&self, padding: Padding) -> SignalResult<String> {
        if self.version != 1 {
            return Err(SignalError::Encode {
                field: "Version",
                reason: format!("only GPP version 1 is supported, got {}", self.version),
            });
        }
        let mut out = encode_header(&self.section_ids(), padding)?;
        for s in &self.sections {
            out.push('~');
            match s {
                GppSection::TcfEuV2(t) => out.push_str(&t.encode_with(padding)?),
                GppSection::TcfCaV1(t) => out.push_str(&t.encode_with(padding)?),
                GppSection::UspV1(u) => out.push_str(&u.encode()),
                GppSection::UsNat(u) => out.push_str(&u.encode_with(padding)?),
                GppSection::UsState(u) => out.push_str(&u.encode_with(padding)?),
                GppSection::Unknown { text, .. } => {
                    if text.is_empty() || text.contains('~') {
                        return Err(SignalError::Encode {
                            field: "Section",
                            reason: "opaque section text must be non-empty and free of '~'".into(),
                        });
                    }
                    out.push_str(text);
                }
            }
        }
        Ok(out)
    }

    /// JSON with the field names and shapes of the IAB reference libraries
    /// ([`super::json::GppJson`]).
    pub fn to_json(&self) -> SignalResult<String> {
        super::json::to_json(self)
    }

    /// Parses the JSON produced by [`GppString::to_json`].
    pub fn from_json(s: &str) -> SignalResult<Self> {
        super::json::from_json(s)
    }
}
