//! The GPP US state sections (ids 8 to 27: `usca`, `usva`, `usco`, `usut`,
//! `usct`, `usfl`, `usmt`, `usor`, `ustx`, `usde`, `usia`, `usne`, `usnh`,
//! `usnj`, `ustn`, `usmn`, `usmd`, `usin`, `usky`, `usri`), read and written
//! from one table per section.
//!
//! Each table lists the core segment's fields in string order with their
//! kind, and the optional sub-segment after a `.`: the GPC sub-segment
//! (`GpcSegmentType` Int(2) = 1, then `Gpc`) or, for Indiana, Kentucky and
//! Rhode Island, the sensitive-data consent sub-segment (the
//! `SensitiveDataProcessing` list alone, without a type field). The field
//! names, widths, list lengths and the sub-segments are those of iabgpp-es
//! (`@iabgpp/cmpapi` 3.2.0, `encoder/segment/Us*CoreSegment.js`).
//!
//! Decoding reads any value a field can hold, as the reference library
//! does; [`UsStateSection::violations`] lists the values the specifications
//! forbid (an `MspaCoveredTransaction` of 0 or 3, the undefined value 3 of
//! the other 2-bit fields). A version other than the table's is refused:
//! its layout is unknown, and reading it with the known one would give
//! wrong answers (the safer reading).

use serde_json::Value;

use super::json::JsonFields;

use super::bits::{BitReader, BitWriter, Bits, Padding};
use super::error::{SignalError, SignalResult};
use super::tcf::Violation;

/// The kind of one field of a US state section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// The section version, Int(6).
    Version,
    /// An Int(2) enumeration: 0 = not applicable, 1 and 2 its two answers;
    /// 3 is undefined.
    Enum,
    /// `MspaCoveredTransaction`, Int(2): 1 = yes, 2 = no; 0 and 3 are
    /// invalid.
    Covered,
    /// An N-Bitfield of `n` Int(2) enumerations (each 0 to 2).
    List(u8),
    /// The sub-segment type, Int(2), always 1.
    SubsectionType,
    /// A Boolean.
    Bool,
}

impl FieldKind {
    /// Number of bits the field takes.
    pub fn bits(self) -> usize {
        match self {
            FieldKind::Version => 6,
            FieldKind::Enum | FieldKind::Covered | FieldKind::SubsectionType => 2,
            FieldKind::List(n) => 2 * usize::from(n),
            FieldKind::Bool => 1,
        }
    }
}

/// One field: its iabgpp name and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldDef {
    /// Field name as in iabgpp-es (the JSON name is this with its first
    /// letter in lower case).
    pub name: &'static str,
    /// Field kind.
    pub kind: FieldKind,
}

/// The optional sub-segment of a section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubDef {
    /// Name of the JSON flag saying whether the sub-segment is present
    /// (`GpcSegmentIncluded`, `SensitiveDataConsentSegmentIncluded`).
    pub included: &'static str,
    /// The sub-segment's fields in string order.
    pub fields: &'static [FieldDef],
    /// Values of `fields` when the sub-segment is absent.
    pub absent: &'static [u8],
}

/// The layout of one US state section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionDef {
    /// GPP section id.
    pub id: u16,
    /// GPP section name (`usca`, ...).
    pub name: &'static str,
    /// The only version this layout describes.
    pub version: u8,
    /// Core segment fields in string order (the first is the version).
    pub core: &'static [FieldDef],
    /// The optional sub-segment.
    pub sub: Option<SubDef>,
}

const fn f(name: &'static str, kind: FieldKind) -> FieldDef {
    FieldDef { name, kind }
}

use FieldKind::{Bool, Covered, Enum, List, SubsectionType, Version};

const GPC: SubDef = SubDef {
    included: "GpcSegmentIncluded",
    fields: &[f("GpcSegmentType", SubsectionType), f("Gpc", Bool)],
    absent: &[1, 0],
};

const SENSITIVE: SubDef = SubDef {
    included: "SensitiveDataConsentSegmentIncluded",
    fields: &[f("SensitiveDataProcessing", List(8))],
    absent: &[0],
};

const V: FieldDef = f("Version", Version);
const MCT: FieldDef = f("MspaCoveredTransaction", Covered);
const MOOM: FieldDef = f("MspaOptOutOptionMode", Enum);
const MSPM: FieldDef = f("MspaServiceProviderMode", Enum);
const SHN: FieldDef = f("SharingNotice", Enum);
const PN: FieldDef = f("ProcessingNotice", Enum);
const SOON: FieldDef = f("SaleOptOutNotice", Enum);
const TAOON: FieldDef = f("TargetedAdvertisingOptOutNotice", Enum);
const SOO: FieldDef = f("SaleOptOut", Enum);
const TAOO: FieldDef = f("TargetedAdvertisingOptOut", Enum);
const KCSDC: FieldDef = f("KnownChildSensitiveDataConsents", Enum);
const ADPC: FieldDef = f("AdditionalDataProcessingConsent", Enum);
const fn sdp(n: u8) -> FieldDef {
    f("SensitiveDataProcessing", List(n))
}
const fn kcsdc(n: u8) -> FieldDef {
    f("KnownChildSensitiveDataConsents", List(n))
}

/// The layout shared by FL, MT, OR, TX, DE, NE, NH, NJ, TN and MN:
/// notice and opt-out fields, the sensitive-data list, the known-child
/// field or list, `AdditionalDataProcessingConsent` and the MSPA fields.
macro_rules! state_core {
    ($notice:expr, $sdp:expr, $child:expr) => {
        &[
            V, $notice, SOON, TAOON, SOO, TAOO, $sdp, $child, ADPC, MCT, MOOM, MSPM,
        ]
    };
}

/// The layout of MD, IN, KY and RI: MSPA fields first.
const MSPA_FIRST: &[FieldDef] = &[
    f("MspaVersion", Version),
    MCT,
    f("MspaMode", Enum),
    PN,
    SOON,
    TAOON,
    SOO,
    TAOO,
    KCSDC,
    ADPC,
];

/// Every US state section, by id.
pub const SECTIONS: &[SectionDef] = &[
    SectionDef {
        id: 8,
        name: "usca",
        version: 1,
        core: &[
            V,
            SOON,
            f("SharingOptOutNotice", Enum),
            f("SensitiveDataLimitUseNotice", Enum),
            SOO,
            f("SharingOptOut", Enum),
            sdp(9),
            kcsdc(2),
            f("PersonalDataConsents", Enum),
            MCT,
            MOOM,
            MSPM,
        ],
        sub: Some(GPC),
    },
    SectionDef {
        id: 9,
        name: "usva",
        version: 1,
        core: &[
            V,
            SHN,
            SOON,
            TAOON,
            SOO,
            TAOO,
            sdp(8),
            KCSDC,
            MCT,
            MOOM,
            MSPM,
        ],
        sub: None,
    },
    SectionDef {
        id: 10,
        name: "usco",
        version: 1,
        core: &[
            V,
            SHN,
            SOON,
            TAOON,
            SOO,
            TAOO,
            sdp(7),
            KCSDC,
            MCT,
            MOOM,
            MSPM,
        ],
        sub: Some(GPC),
    },
    SectionDef {
        id: 11,
        name: "usut",
        version: 1,
        core: &[
            V,
            SHN,
            SOON,
            TAOON,
            f("SensitiveDataProcessingOptOutNotice", Enum),
            SOO,
            TAOO,
            sdp(8),
            KCSDC,
            MCT,
            MOOM,
            MSPM,
        ],
        sub: None,
    },
    SectionDef {
        id: 12,
        name: "usct",
        version: 1,
        core: &[
            V,
            SHN,
            SOON,
            TAOON,
            SOO,
            TAOO,
            sdp(8),
            kcsdc(3),
            MCT,
            MOOM,
            MSPM,
        ],
        sub: Some(GPC),
    },
    SectionDef {
        id: 13,
        name: "usfl",
        version: 1,
        core: state_core!(PN, sdp(8), kcsdc(3)),
        sub: None,
    },
    SectionDef {
        id: 14,
        name: "usmt",
        version: 1,
        core: state_core!(SHN, sdp(8), kcsdc(3)),
        sub: Some(GPC),
    },
    SectionDef {
        id: 15,
        name: "usor",
        version: 1,
        core: state_core!(PN, sdp(11), kcsdc(3)),
        sub: Some(GPC),
    },
    SectionDef {
        id: 16,
        name: "ustx",
        version: 1,
        core: state_core!(PN, sdp(8), KCSDC),
        sub: Some(GPC),
    },
    SectionDef {
        id: 17,
        name: "usde",
        version: 1,
        core: state_core!(PN, sdp(9), kcsdc(5)),
        sub: Some(GPC),
    },
    SectionDef {
        id: 18,
        name: "usia",
        version: 1,
        core: &[
            V,
            PN,
            SOON,
            TAOON,
            f("SensitiveDataOptOutNotice", Enum),
            SOO,
            TAOO,
            sdp(8),
            KCSDC,
            MCT,
            MOOM,
            MSPM,
        ],
        sub: Some(GPC),
    },
    SectionDef {
        id: 19,
        name: "usne",
        version: 1,
        core: state_core!(PN, sdp(8), KCSDC),
        sub: Some(GPC),
    },
    SectionDef {
        id: 20,
        name: "usnh",
        version: 1,
        core: state_core!(PN, sdp(8), kcsdc(3)),
        sub: Some(GPC),
    },
    SectionDef {
        id: 21,
        name: "usnj",
        version: 1,
        core: state_core!(PN, sdp(10), kcsdc(5)),
        sub: Some(GPC),
    },
    SectionDef {
        id: 22,
        name: "ustn",
        version: 1,
        core: state_core!(PN, sdp(8), KCSDC),
        sub: Some(GPC),
    },
    SectionDef {
        id: 23,
        name: "usmn",
        version: 1,
        core: state_core!(PN, sdp(8), KCSDC),
        sub: Some(GPC),
    },
    SectionDef {
        id: 24,
        name: "usmd",
        version: 1,
        core: &[
            f("MspaVersion", Version),
            MCT,
            f("MspaMode", Enum),
            PN,
            SOON,
            TAOON,
            SOO,
            TAOO,
            ADPC,
        ],
        sub: Some(GPC),
    },
    SectionDef {
        id: 25,
        name: "usin",
        version: 1,
        core: MSPA_FIRST,
        sub: Some(SENSITIVE),
    },
    SectionDef {
        id: 26,
        name: "usky",
        version: 1,
        core: MSPA_FIRST,
        sub: Some(SENSITIVE),
    },
    SectionDef {
        id: 27,
        name: "usri",
        version: 1,
        core: MSPA_FIRST,
        sub: Some(SENSITIVE),
    },
];

/// The table of a US state section id.
pub fn section_def(id: u16) -> Option<&'static SectionDef> {
    SECTIONS.iter().find(|d| d.id == id)
}

/// A field value: a number (an integer or a boolean as 0/1), or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// An Int(n) or Boolean field.
    Int(u8),
    /// An N-Bitfield of Int(2) values.
    List(Vec<u8>),
}

/// A decoded US state section: the values of its table's fields in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsStateSection {
    /// Section id (8 to 27).
    pub id: u16,
    /// Core segment values, one per [`SectionDef::core`] field.
    pub core: Vec<FieldValue>,
    /// Sub-segment values, one per [`SubDef::fields`] field, when the
    /// sub-segment is present.
    pub sub: Option<Vec<FieldValue>>,
}

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn read_field(r: &mut BitReader<'_>, d: &FieldDef) -> SignalResult<FieldValue> {
    Ok(match d.kind {
        FieldKind::List(n) => {
            let mut v = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                v.push(r.read(2, d.name)? as u8);
            }
            FieldValue::List(v)
        }
        k => FieldValue::Int(r.read(k.bits(), d.name)? as u8),
    })
}

fn write_field(w: &mut BitWriter, d: &FieldDef, v: &FieldValue) -> SignalResult<()> {
    match (d.kind, v) {
        (FieldKind::List(n), FieldValue::List(list)) => {
            if list.len() != usize::from(n) {
                return Err(SignalError::Encode {
                    field: d.name,
                    reason: format!("{} entries, expected {n}", list.len()),
                });
            }
            for &x in list {
                w.write(u64::from(x), 2, d.name)?;
            }
            Ok(())
        }
        (FieldKind::List(_), FieldValue::Int(_)) | (_, FieldValue::List(_)) => {
            Err(SignalError::Encode {
                field: d.name,
                reason: "a list field holds a number or a number field holds a list".into(),
            })
        }
        (k, FieldValue::Int(x)) => w.write(u64::from(*x), k.bits(), d.name),
    }
}

impl UsStateSection {
    /// The table of this section.
    pub fn def(&self) -> SignalResult<&'static SectionDef> {
        section_def(self.id).ok_or(SignalError::Encode {
            field: "SectionId",
            reason: format!("{} is not a US state section id (8 to 27)", self.id),
        })
    }

    /// A section of the given id with its default values (those of
    /// iabgpp-es: every field 0, `MspaCoveredTransaction` 1) and no
    /// sub-segment. `None` for an id that is not a US state section.
    pub fn new(id: u16) -> Option<Self> {
        let def = section_def(id)?;
        let core = def
            .core
            .iter()
            .map(|d| match d.kind {
                FieldKind::Version => FieldValue::Int(def.version),
                FieldKind::Covered => FieldValue::Int(1),
                FieldKind::List(n) => FieldValue::List(vec![0; usize::from(n)]),
                _ => FieldValue::Int(0),
            })
            .collect();
        Some(Self {
            id,
            core,
            sub: None,
        })
    }

    /// Decodes the section `id` from its text (core segment, optionally `.`
    /// and the sub-segment).
    ///
    /// ```
    /// use privseg::consent::signals::usstate::{FieldValue, UsStateSection};
    /// let mut s = UsStateSection::new(8).unwrap(); // usca
    /// s.set("SaleOptOut", FieldValue::Int(1))?;
    /// s.set_gpc(Some(true))?;
    /// let text = s.encode()?;
    /// assert_eq!(UsStateSection::decode(8, &text)?, s);
    /// assert_eq!(s.gpc(), Some(true));
    /// # Ok::<(), privseg::consent::signals::SignalError>(())
    /// ```
    pub fn decode(id: u16, s: &str) -> SignalResult<Self> {
        let def = section_def(id).ok_or(SignalError::InvalidValue {
            field: "SectionId",
            offset: 0,
            value: u64::from(id),
            reason: "not a US state section id (8 to 27)",
        })?;
        let mut parts = s.split('.');
        let core_text = parts.next().unwrap_or("");
        if core_text.is_empty() {
            return Err(SignalError::Empty {
                what: "US state section core segment",
            });
        }
        let bits = Bits::from_base64url(core_text)?;
        let mut r = bits.reader();
        let mut core = Vec::with_capacity(def.core.len());
        for d in def.core {
            let offset = r.pos();
            let v = read_field(&mut r, d)?;
            if d.kind == FieldKind::Version && v != FieldValue::Int(def.version) {
                let FieldValue::Int(found) = v else {
                    unreachable!("a version is a number")
                };
                return Err(SignalError::UnsupportedVersion {
                    field: d.name,
                    offset,
                    found: u64::from(found),
                });
            }
            core.push(v);
        }
        let mut sub = None;
        if let Some(part) = parts.next() {
            let Some(sd) = def.sub else {
                return Err(SignalError::InvalidValue {
                    field: "SubSegment",
                    offset: 0,
                    value: 1,
                    reason: "this section has no sub-segment",
                });
            };
            if part.is_empty() {
                return Err(SignalError::Empty {
                    what: "US state sub-segment",
                });
            }
            let bits = Bits::from_base64url(part)?;
            let mut r = bits.reader();
            let mut values = Vec::with_capacity(sd.fields.len());
            for d in sd.fields {
                let offset = r.pos();
                let v = read_field(&mut r, d)?;
                if d.kind == FieldKind::SubsectionType && v != FieldValue::Int(1) {
                    let FieldValue::Int(found) = v else {
                        unreachable!("a type is a number")
                    };
                    return Err(SignalError::UnsupportedVersion {
                        field: d.name,
                        offset,
                        found: u64::from(found),
                    });
                }
                values.push(v);
            }
            sub = Some(values);
        }
        if parts.next().is_some() {
            return Err(SignalError::InvalidValue {
                field: "SubSegment",
                offset: 0,
                value: 2,
                reason: "a US state section has at most one sub-segment",
            });
        }
        Ok(Self { id, core, sub })
    }

    /// Encodes with byte padding (the reference libraries' form).
    pub fn encode(&self) -> SignalResult<String> {
        self.encode_with(Padding::Byte)
    }

    /// Encodes with the given padding.
    pub fn encode_with(&self, padding: Padding) -> SignalResult<String> {
        let def = self.def()?;
        if self.core.len() != def.core.len() {
            return Err(SignalError::Encode {
                field: "SectionFields",
                reason: format!(
                    "{} has {} core fields, got {}",
                    def.name,
                    def.core.len(),
                    self.core.len()
                ),
            });
        }
        let mut w = BitWriter::new();
        for (d, v) in def.core.iter().zip(&self.core) {
            if d.kind == FieldKind::Version && *v != FieldValue::Int(def.version) {
                return Err(SignalError::Encode {
                    field: d.name,
                    reason: format!("{} has version {} only", def.name, def.version),
                });
            }
            write_field(&mut w, d, v)?;
        }
        let mut out = w.to_base64url(padding);
        if let Some(values) = &self.sub {
            let Some(sd) = def.sub else {
                return Err(SignalError::Encode {
                    field: "SubSegment",
                    reason: format!("{} has no sub-segment", def.name),
                });
            };
            if values.len() != sd.fields.len() {
                return Err(SignalError::Encode {
                    field: "SubSegment",
                    reason: format!("expected {} fields", sd.fields.len()),
                });
            }
            let mut w = BitWriter::new();
            for (d, v) in sd.fields.iter().zip(values) {
                if d.kind == FieldKind::SubsectionType && *v != FieldValue::Int(1) {
                    return Err(SignalError::Encode {
                        field: d.name,
                        reason: "the sub-segment type is 1".into(),
                    });
                }
                write_field(&mut w, d, v)?;
            }
            out.push('.');
            out.push_str(&w.to_base64url(padding));
        }
        Ok(out)
    }

    fn position(&self, name: &str) -> SignalResult<(bool, usize)> {
        let def = self.def()?;
        if let Some(i) = def.core.iter().position(|d| d.name == name) {
            return Ok((false, i));
        }
        if let Some(i) = def
            .sub
            .and_then(|s| s.fields.iter().position(|d| d.name == name))
        {
            return Ok((true, i));
        }
        Err(SignalError::Encode {
            field: "SectionFields",
            reason: format!("{} has no field {name:?}", def.name),
        })
    }

    /// The value of a field by its iabgpp name (a sub-segment field of an
    /// absent sub-segment reads as `None`).
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        let (in_sub, i) = self.position(name).ok()?;
        if in_sub {
            self.sub.as_ref()?.get(i)
        } else {
            self.core.get(i)
        }
    }

    /// Sets a field by its iabgpp name. Setting a sub-segment field adds
    /// the sub-segment.
    pub fn set(&mut self, name: &str, v: FieldValue) -> SignalResult<()> {
        let def = self.def()?;
        let (in_sub, i) = self.position(name)?;
        let fd = if in_sub {
            def.sub.map(|s| s.fields[i])
        } else {
            Some(def.core[i])
        };
        let ok = match (fd.map(|d| d.kind), &v) {
            (Some(FieldKind::List(n)), FieldValue::List(l)) => l.len() == usize::from(n),
            (Some(FieldKind::List(_)), _) | (_, FieldValue::List(_)) | (None, _) => false,
            (Some(k), FieldValue::Int(x)) => u64::from(*x) >> k.bits() == 0,
        };
        if !ok {
            return Err(SignalError::Encode {
                field: "SectionFields",
                reason: format!("{v:?} does not fit {name}"),
            });
        }
        if in_sub {
            let sd = def.sub.ok_or(SignalError::Encode {
                field: "SubSegment",
                reason: "no sub-segment".into(),
            })?;
            let values = self.sub.get_or_insert_with(|| absent_values(&sd));
            values[i] = v;
        } else {
            self.core[i] = v;
        }
        Ok(())
    }

    /// The `Gpc` flag: `None` without a GPC sub-segment.
    pub fn gpc(&self) -> Option<bool> {
        match self.get("Gpc")? {
            FieldValue::Int(x) => Some(*x == 1),
            FieldValue::List(_) => None,
        }
    }

    /// Adds (`Some`) or removes (`None`) the GPC sub-segment. An error for
    /// a section without one.
    pub fn set_gpc(&mut self, gpc: Option<bool>) -> SignalResult<()> {
        match gpc {
            Some(g) => self.set("Gpc", FieldValue::Int(u8::from(g))),
            None => {
                self.position("Gpc")?;
                self.sub = None;
                Ok(())
            }
        }
    }

    /// The rules of the specifications this section breaks, with the bit
    /// offset of the offending value in its segment (core or sub-segment):
    /// `MspaCoveredTransaction` must be 1 or 2; the other 2-bit fields and
    /// list entries must be 0, 1 or 2.
    pub fn violations(&self) -> Vec<Violation> {
        let Ok(def) = self.def() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        check_values(def.core, &self.core, &mut out);
        if let (Some(sd), Some(values)) = (def.sub, &self.sub) {
            check_values(sd.fields, values, &mut out);
        }
        out
    }

    /// The JSON object of this section: the iabgpp field names with the
    /// first letter in lower case, in string order, then the sub-segment's
    /// flag and fields (their defaults when it is absent, and no
    /// `gpcSegmentType`), then `violations`.
    pub fn to_json_value(&self) -> SignalResult<Value> {
        Ok(self.to_json_fields().into())
    }

    /// [`UsStateSection::to_json_value`] with its fields in order. A
    /// section whose id is not a US state's gives `{"error": ...}`.
    pub fn to_json_fields(&self) -> JsonFields {
        let mut m = JsonFields::default();
        let def = match self.def() {
            Ok(d) => d,
            Err(e) => {
                m.push("error", Value::from(e.to_string()));
                return m;
            }
        };
        let as_json = |v: &FieldValue, kind: FieldKind| match (v, kind) {
            (FieldValue::Int(x), FieldKind::Bool) => Value::Bool(*x == 1),
            (FieldValue::Int(x), _) => Value::from(*x),
            (FieldValue::List(l), _) => Value::from(l.clone()),
        };
        for (d, v) in def.core.iter().zip(&self.core) {
            m.push(lower_first(d.name), as_json(v, d.kind));
        }
        if let Some(sd) = def.sub {
            m.push(lower_first(sd.included), Value::Bool(self.sub.is_some()));
            let absent = absent_values(&sd);
            let values = self.sub.as_ref().unwrap_or(&absent);
            for (d, v) in sd.fields.iter().zip(values) {
                if d.kind == FieldKind::SubsectionType && self.sub.is_none() {
                    continue;
                }
                m.push(lower_first(d.name), as_json(v, d.kind));
            }
        }
        let violations: Vec<Value> = self
            .violations()
            .into_iter()
            .map(|v| serde_json::json!({"field": v.field, "offset": v.offset, "reason": v.reason}))
            .collect();
        m.push("violations", Value::Array(violations));
        m
    }

    /// Reads the JSON object of [`UsStateSection::to_json_value`] for
    /// section `id`. Every core field is required; the sub-segment is
    /// written when its flag is true (its fields then default to those of
    /// iabgpp-es); `violations` is ignored; any other name is refused.
    pub fn from_json_value(id: u16, v: &Value) -> SignalResult<Self> {
        let def = section_def(id).ok_or_else(|| {
            SignalError::Json(format!("{id} is not a US state section id (8 to 27)"))
        })?;
        let obj = v
            .as_object()
            .ok_or_else(|| SignalError::Json(format!("{}: expected an object", def.name)))?;
        let bad = |what: String| SignalError::Json(format!("sections.{}: {what}", def.name));
        let mut known: Vec<String> = vec!["violations".into()];
        let read = |d: &FieldDef, x: &Value| json_field(def.name, d, x);
        let mut core = Vec::with_capacity(def.core.len());
        for d in def.core {
            let key = lower_first(d.name);
            let x = obj
                .get(&key)
                .ok_or_else(|| bad(format!("missing field {key:?}")))?;
            core.push(read(d, x)?);
            known.push(key);
        }
        let mut sub = None;
        if let Some(sd) = def.sub {
            let flag = lower_first(sd.included);
            let included = match obj.get(&flag) {
                None => false,
                Some(x) => x
                    .as_bool()
                    .ok_or_else(|| bad(format!("{flag}: expected true or false")))?,
            };
            known.push(flag.clone());
            let mut values = absent_values(&sd);
            for (i, d) in sd.fields.iter().enumerate() {
                let key = lower_first(d.name);
                if let Some(x) = obj.get(&key) {
                    let v = read(d, x)?;
                    if !included && v != values[i] {
                        return Err(bad(format!(
                            "{key} is set but {flag} is false: set {flag} to true"
                        )));
                    }
                    values[i] = v;
                }
                known.push(key);
            }
            if included {
                sub = Some(values);
            }
        }
        if let Some(k) = obj.keys().find(|k| !known.contains(k)) {
            return Err(bad(format!("unknown field {k:?}")));
        }
        Ok(Self { id, core, sub })
    }
}

/// Reads the JSON of one field of section `section`, by the field's kind.
fn json_field(section: &str, d: &FieldDef, x: &Value) -> SignalResult<FieldValue> {
    let bad = |what: String| SignalError::Json(format!("sections.{section}: {what}"));
    let key = lower_first(d.name);
    match d.kind {
        FieldKind::Bool => x
            .as_bool()
            .map(|b| FieldValue::Int(u8::from(b)))
            .ok_or_else(|| bad(format!("{key}: expected true or false"))),
        FieldKind::List(n) => {
            let list = x
                .as_array()
                .ok_or_else(|| bad(format!("{key}: expected an array of {n} numbers")))?;
            if list.len() != usize::from(n) {
                return Err(bad(format!("{key}: {} entries, expected {n}", list.len())));
            }
            list.iter()
                .map(|e| {
                    e.as_u64()
                        .filter(|&e| e < 4)
                        .map(|e| e as u8)
                        .ok_or_else(|| bad(format!("{key}: entries are 0 to 3")))
                })
                .collect::<SignalResult<Vec<u8>>>()
                .map(FieldValue::List)
        }
        k => x
            .as_u64()
            .filter(|&e| e >> k.bits() == 0)
            .map(|e| FieldValue::Int(e as u8))
            .ok_or_else(|| {
                bad(format!(
                    "{key}: expected a number that fits in {} bits",
                    k.bits()
                ))
            }),
    }
}

fn absent_values(sd: &SubDef) -> Vec<FieldValue> {
    sd.fields
        .iter()
        .zip(sd.absent)
        .map(|(d, &x)| match d.kind {
            FieldKind::List(n) => FieldValue::List(vec![x; usize::from(n)]),
            _ => FieldValue::Int(x),
        })
        .collect()
}

/// Reason given for `MspaCoveredTransaction` outside 1 and 2.
pub const COVERED_REASON: &str =
    "MspaCoveredTransaction must be 1 (yes) or 2 (no); 0 and 3 are invalid";
/// Reason given for a 2-bit field or list entry holding 3.
pub const UNDEFINED_REASON: &str = "value 3 is undefined: the field is 0 (not applicable), 1 or 2";

fn check_values(defs: &[FieldDef], values: &[FieldValue], out: &mut Vec<Violation>) {
    let mut offset = 0;
    for (d, v) in defs.iter().zip(values) {
        match (d.kind, v) {
            (FieldKind::Covered, FieldValue::Int(x)) if !(1..=2).contains(x) => {
                out.push(Violation {
                    field: d.name,
                    offset: Some(offset),
                    reason: COVERED_REASON,
                })
            }
            (FieldKind::Enum, FieldValue::Int(3)) => out.push(Violation {
                field: d.name,
                offset: Some(offset),
                reason: UNDEFINED_REASON,
            }),
            (FieldKind::List(_), FieldValue::List(l)) => {
                for (i, _) in l.iter().enumerate().filter(|(_, x)| **x == 3) {
                    out.push(Violation {
                        field: d.name,
                        offset: Some(offset + 2 * i),
                        reason: UNDEFINED_REASON,
                    });
                }
            }
            _ => {}
        }
        offset += d.kind.bits();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_cover_ids_8_to_27_with_known_names() {
        let ids: Vec<u16> = SECTIONS.iter().map(|d| d.id).collect();
        assert_eq!(ids, (8..=27).collect::<Vec<_>>());
        for d in SECTIONS {
            assert_eq!(super::super::json::section_name(d.id), d.name);
            assert_eq!(d.core.iter().filter(|f| f.kind == Version).count(), 1);
            assert_eq!(d.core.iter().filter(|f| f.kind == Covered).count(), 1);
        }
    }

    #[test]
    fn default_sections_round_trip_and_have_no_violations() {
        for d in SECTIONS {
            let mut s = UsStateSection::new(d.id).unwrap();
            if let Some(sub) = d.sub {
                let (name, v) = match sub.fields.last().unwrap().kind {
                    Bool => ("Gpc", FieldValue::Int(1)),
                    _ => ("SensitiveDataProcessing", FieldValue::List(vec![2; 8])),
                };
                s.set(name, v).unwrap();
            }
            let text = s.encode().unwrap();
            assert_eq!(UsStateSection::decode(d.id, &text).unwrap(), s, "{text}");
            assert!(s.violations().is_empty());
            let j = s.to_json_value().unwrap();
            assert_eq!(UsStateSection::from_json_value(d.id, &j).unwrap(), s);
        }
    }

    #[test]
    fn covered_transaction_zero_is_a_violation_with_its_offset() {
        // usca: Version(6) + 5 enums(10) + 9 sensitive(18) + 2 child(4) +
        // PersonalDataConsents(2) = 40 bits before MspaCoveredTransaction.
        let mut s = UsStateSection::new(8).unwrap();
        s.set("MspaCoveredTransaction", FieldValue::Int(0)).unwrap();
        let back = UsStateSection::decode(8, &s.encode().unwrap()).unwrap();
        assert_eq!(
            back.violations(),
            vec![Violation {
                field: "MspaCoveredTransaction",
                offset: Some(40),
                reason: COVERED_REASON,
            }]
        );
        // usmd: MspaVersion(6), then MspaCoveredTransaction.
        let mut s = UsStateSection::new(24).unwrap();
        s.set("MspaCoveredTransaction", FieldValue::Int(3)).unwrap();
        assert_eq!(s.violations()[0].offset, Some(6));
    }

    #[test]
    fn undefined_value_three_is_a_violation_in_fields_lists_and_sub_segments() {
        let mut s = UsStateSection::new(9).unwrap(); // usva
        s.set("SaleOptOut", FieldValue::Int(3)).unwrap();
        let mut list = vec![0; 8];
        list[2] = 3;
        s.set("SensitiveDataProcessing", FieldValue::List(list))
            .unwrap();
        let v = s.violations();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!((v[0].field, v[0].offset), ("SaleOptOut", Some(12)));
        assert_eq!(
            (v[1].field, v[1].offset),
            ("SensitiveDataProcessing", Some(16 + 4))
        );
        let mut s = UsStateSection::new(25).unwrap(); // usin
        let mut list = vec![0; 8];
        list[7] = 3;
        s.set("SensitiveDataProcessing", FieldValue::List(list))
            .unwrap();
        let v = s.violations();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].offset, Some(14));
    }

    #[test]
    fn other_versions_and_sub_segments_are_refused() {
        let mut w = BitWriter::new();
        w.write(2, 6, "Version").unwrap();
        w.write(0, 60, "rest").unwrap();
        let text = w.to_base64url(Padding::Byte);
        assert!(matches!(
            UsStateSection::decode(9, &text),
            Err(SignalError::UnsupportedVersion { found: 2, .. })
        ));
        let usva = UsStateSection::new(9).unwrap().encode().unwrap();
        assert!(UsStateSection::decode(9, &format!("{usva}.YA")).is_err());
        let usca = UsStateSection::new(8).unwrap().encode().unwrap();
        assert!(UsStateSection::decode(8, &format!("{usca}.YA.YA")).is_err());
        // GpcSegmentType 2.
        assert!(UsStateSection::decode(8, &format!("{usca}.gA")).is_err());
    }
}
