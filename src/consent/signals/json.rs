//! The JSON form of decoded signals, with the field names and shapes of the
//! IAB reference libraries (see `docs/formats.md`, "Consent signals").
//!
//! * TCF: the names of the iabtcf-es `TCModel` (`cmpId`, `policyVersion`,
//!   `purposeConsents`, `vendorConsents`, `vendorsDisclosed`,
//!   `vendorsAllowed`, `publisherCountryCode`, ...). Every purpose, feature
//!   and vendor set is an ascending array of ids whatever its encoding; how
//!   each vendor section was encoded (bitfield or range, and its
//!   `MaxVendorId`) and the segment order are kept apart, in `encoding`.
//!   Times are ISO 8601 strings with milliseconds, as `JSON.stringify` writes
//!   the library's `Date`s.
//! * GPP: `sectionIds` as numbers, and `sections` keyed by the section names
//!   of iabgpp-es (`tcfeuv2`, `uspv1`, `usnat`, ...). The field names inside
//!   a `usnat` or US state section are iabgpp's with the first letter in
//!   lower case, each with the `violations` it breaks.
//! * US Privacy: `notice`, `optOutSale`, `lspaCovered` as the string's own
//!   `Y`, `N` or `-`.
//!
//! Each object has a top-level `type` (`tcf`, `gpp`, `usp`). Encoding reads
//! the same JSON back; unknown fields are refused, so that a misspelt field
//! is an error rather than a silently empty set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::error::{SignalError, SignalResult};
use super::gpp::{GppSection, GppString};
use super::tcf::{
    IdSet, PublisherRestriction, PublisherTc, RestrictionType, Segment, TcString, TcfOptions,
    VendorBits, VendorEncoding, VendorRange, VendorSection,
};
use super::tcfca::TcfCaV1;
use super::usnat::UsNat;
use super::usp::{UsPrivacy, UspFlag};
use super::usstate::UsStateSection;

fn json_err(e: impl std::fmt::Display) -> SignalError {
    SignalError::Json(e.to_string())
}

fn enc_err(field: &'static str, reason: impl Into<String>) -> SignalError {
    SignalError::Encode {
        field,
        reason: reason.into(),
    }
}

// ---------------------------------------------------------------------------
// Times

/// Deciseconds since the epoch as an ISO 8601 UTC time with milliseconds
/// (`2020-01-26T17:01:00.000Z`).
pub fn deciseconds_to_iso(ds: u64) -> String {
    let fmt =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    // 36-bit deciseconds reach the year 2187: always representable.
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ds) * 100_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| ds.to_string())
}

/// An RFC 3339 time to deciseconds since the epoch, rounded to the nearest
/// decisecond as the reference encoders do (`Math.round(ms / 100)`).
pub fn iso_to_deciseconds(text: &str, field: &'static str) -> SignalResult<u64> {
    let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        enc_err(
            field,
            format!("{text:?} is not an RFC 3339 time such as 2024-05-01T00:00:00.000Z ({e})"),
        )
    })?;
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    if ms < 0 {
        return Err(enc_err(field, format!("{text:?} is before 1970")));
    }
    let ds = (ms + 50) / 100;
    u64::try_from(ds)
        .ok()
        .filter(|&d| d < 1 << 36)
        .ok_or_else(|| enc_err(field, format!("{text:?} does not fit in 36 bits")))
}

// ---------------------------------------------------------------------------
// TCF

/// A policy rule broken by a decoded string, as listed in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViolationJson {
    /// Field name from the specification.
    pub field: String,
    /// Bit offset of the offending bit in its segment, or null.
    pub offset: Option<usize>,
    /// The rule.
    pub reason: String,
}

/// Vendor section encoding: bitfield or range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EncodingKind {
    /// `IsRangeEncoding = 0`.
    Bitfield,
    /// `IsRangeEncoding = 1`.
    Range,
}

/// How one vendor section is encoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SectionEncodingJson {
    /// Bitfield or range.
    #[serde(rename = "type")]
    pub kind: EncodingKind,
    /// `MaxVendorId` as written in the string (at least the largest id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vendor_id: Option<u16>,
}

/// The `encoding` object of the TCF JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcfEncodingJson {
    /// Segment names in string order after the core segment
    /// (`vendorsDisclosed`, `vendorsAllowed`, `publisherTC`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<Vec<String>>,
    /// Encoding of `vendorConsents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_consents: Option<SectionEncodingJson>,
    /// Encoding of `vendorLegitimateInterests`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_legitimate_interests: Option<SectionEncodingJson>,
    /// Encoding of `vendorsDisclosed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors_disclosed: Option<SectionEncodingJson>,
    /// Encoding of `vendorsAllowed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors_allowed: Option<SectionEncodingJson>,
}

/// A publisher restriction: a purpose, a type (0 not allowed, 1 require
/// consent, 2 require legitimate interest, 3 undefined) and its vendors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestrictionJson {
    /// PurposeId.
    pub purpose_id: u8,
    /// RestrictionType, 0 to 3 (iabtcf-es `RestrictionType`).
    pub restriction_type: u8,
    /// Vendor ids, ascending.
    pub vendors: Vec<u16>,
}

fn tcf_type() -> String {
    "tcf".into()
}

/// The JSON form of a TC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TcfJson {
    /// Always `tcf`.
    #[serde(rename = "type", default = "tcf_type")]
    pub kind: String,
    /// Version (2).
    pub version: u8,
    /// Created, ISO 8601 UTC.
    pub created: String,
    /// LastUpdated, ISO 8601 UTC.
    pub last_updated: String,
    /// CmpId.
    pub cmp_id: u16,
    /// CmpVersion.
    pub cmp_version: u16,
    /// ConsentScreen.
    pub consent_screen: u8,
    /// ConsentLanguage, two letters.
    pub consent_language: String,
    /// VendorListVersion.
    pub vendor_list_version: u16,
    /// TcfPolicyVersion.
    pub policy_version: u8,
    /// IsServiceSpecific.
    pub is_service_specific: bool,
    /// UseNonStandardTexts.
    pub use_non_standard_texts: bool,
    /// SpecialFeatureOptIns.
    pub special_feature_optins: IdSet,
    /// PurposesConsent.
    pub purpose_consents: IdSet,
    /// PurposesLITransparency.
    pub purpose_legitimate_interests: IdSet,
    /// PurposeOneTreatment.
    pub purpose_one_treatment: bool,
    /// PublisherCC.
    pub publisher_country_code: String,
    /// Vendor consents.
    pub vendor_consents: Vec<u16>,
    /// Vendor legitimate interests.
    pub vendor_legitimate_interests: Vec<u16>,
    /// Publisher restrictions, in string order.
    #[serde(default)]
    pub publisher_restrictions: Vec<RestrictionJson>,
    /// DisclosedVendors segment (absent when the string has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors_disclosed: Option<Vec<u16>>,
    /// Legacy AllowedVendors segment (absent when the string has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendors_allowed: Option<Vec<u16>>,
    /// PubPurposesConsent (PublisherTC segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_consents: Option<IdSet>,
    /// PubPurposesLITransparency (PublisherTC segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_legitimate_interests: Option<IdSet>,
    /// NumCustomPurposes (PublisherTC segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_custom_purposes: Option<u8>,
    /// CustomPurposesConsent (PublisherTC segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_custom_consents: Option<IdSet>,
    /// CustomPurposesLITransparency (PublisherTC segment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publisher_custom_legitimate_interests: Option<IdSet>,
    /// How the string was encoded; optional on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<TcfEncodingJson>,
    /// Policy rules the string breaks under the default options (output
    /// only: ignored on input).
    #[serde(default)]
    pub violations: Vec<ViolationJson>,
}

const SEG_DISCLOSED: &str = "vendorsDisclosed";
const SEG_ALLOWED: &str = "vendorsAllowed";
const SEG_PUBLISHER: &str = "publisherTC";

fn section_json(v: &VendorSection) -> (Vec<u16>, SectionEncodingJson) {
    let kind = match v.encoding {
        VendorEncoding::Bitfield { .. } => EncodingKind::Bitfield,
        VendorEncoding::Range { .. } => EncodingKind::Range,
    };
    (
        v.vendor_ids(),
        SectionEncodingJson {
            kind,
            max_vendor_id: Some(v.max_vendor_id),
        },
    )
}

/// A publisher restriction with its vendors listed one by one.
fn restriction_json(p: &PublisherRestriction) -> RestrictionJson {
    let mut vendors: Vec<u16> = p.entries.iter().flat_map(|e| e.start..=e.end).collect();
    vendors.sort_unstable();
    vendors.dedup();
    RestrictionJson {
        purpose_id: p.purpose_id,
        restriction_type: p.restriction_type.bits() as u8,
        vendors,
    }
}

impl TcfJson {
    /// The JSON form of a TC string, with the violations found under `opts`.
    pub fn from_tc(tc: &TcString, opts: &TcfOptions) -> Self {
        let c = &tc.core;
        let (vc, vc_enc) = section_json(&c.vendor_consents);
        let (vli, vli_enc) = section_json(&c.vendor_legitimate_interests);
        let mut enc = TcfEncodingJson {
            segments: Some(Vec::new()),
            vendor_consents: Some(vc_enc),
            vendor_legitimate_interests: Some(vli_enc),
            ..TcfEncodingJson::default()
        };
        let mut j = TcfJson {
            kind: tcf_type(),
            version: c.version,
            created: deciseconds_to_iso(c.created),
            last_updated: deciseconds_to_iso(c.last_updated),
            cmp_id: c.cmp_id,
            cmp_version: c.cmp_version,
            consent_screen: c.consent_screen,
            consent_language: c.consent_language.clone(),
            vendor_list_version: c.vendor_list_version,
            policy_version: c.tcf_policy_version,
            is_service_specific: c.is_service_specific,
            use_non_standard_texts: c.use_non_standard_texts,
            special_feature_optins: c.special_feature_opt_ins,
            purpose_consents: c.purposes_consent,
            purpose_legitimate_interests: c.purposes_li_transparency,
            purpose_one_treatment: c.purpose_one_treatment,
            publisher_country_code: c.publisher_cc.clone(),
            vendor_consents: vc,
            vendor_legitimate_interests: vli,
            publisher_restrictions: c
                .publisher_restrictions
                .iter()
                .map(restriction_json)
                .collect(),
            vendors_disclosed: None,
            vendors_allowed: None,
            publisher_consents: None,
            publisher_legitimate_interests: None,
            num_custom_purposes: None,
            publisher_custom_consents: None,
            publisher_custom_legitimate_interests: None,
            encoding: None,
            violations: tc
                .violations(opts)
                .into_iter()
                .map(|v| ViolationJson {
                    field: v.field.to_string(),
                    offset: v.offset,
                    reason: v.reason.to_string(),
                })
                .collect(),
        };
        j.add_segments(tc, &mut enc);
        j.encoding = Some(enc);
        j
    }

    /// Adds the optional segments' fields and their encodings, in the
    /// string's order.
    fn add_segments(&mut self, tc: &TcString, enc: &mut TcfEncodingJson) {
        let segs = enc.segments.get_or_insert_with(Vec::new);
        for seg in &tc.segments {
            match seg {
                Segment::DisclosedVendors(v) => {
                    let (ids, e) = section_json(v);
                    self.vendors_disclosed = Some(ids);
                    enc.vendors_disclosed = Some(e);
                    segs.push(SEG_DISCLOSED.into());
                }
                Segment::AllowedVendors(v) => {
                    let (ids, e) = section_json(v);
                    self.vendors_allowed = Some(ids);
                    enc.vendors_allowed = Some(e);
                    segs.push(SEG_ALLOWED.into());
                }
                Segment::PublisherTc(p) => {
                    self.publisher_consents = Some(p.pub_purposes_consent);
                    self.publisher_legitimate_interests = Some(p.pub_purposes_li_transparency);
                    self.num_custom_purposes = Some(p.num_custom_purposes);
                    self.publisher_custom_consents = Some(p.custom_purposes_consent);
                    self.publisher_custom_legitimate_interests =
                        Some(p.custom_purposes_li_transparency);
                    segs.push(SEG_PUBLISHER.into());
                }
            }
        }
    }

    /// The TC string this JSON describes. Sets are written as maximal
    /// ascending ranges when range-encoded; without an `encoding` entry a
    /// vendor section takes the shorter of the two encodings and
    /// `MaxVendorId` is its largest id.
    pub fn to_tc(&self) -> SignalResult<TcString> {
        self.check_header()?;
        let enc = self.encoding.clone().unwrap_or_default();
        let order = self.segment_order(&enc);
        let segments = self.segments(&enc, &order)?;
        let publisher_restrictions = self.restrictions()?;
        let mut tc = TcString::example();
        let c = &mut tc.core;
        c.version = self.version;
        c.created = iso_to_deciseconds(&self.created, "created")?;
        c.last_updated = iso_to_deciseconds(&self.last_updated, "lastUpdated")?;
        c.cmp_id = self.cmp_id;
        c.cmp_version = self.cmp_version;
        c.consent_screen = self.consent_screen;
        c.consent_language = self.consent_language.to_ascii_uppercase();
        c.vendor_list_version = self.vendor_list_version;
        c.tcf_policy_version = self.policy_version;
        c.is_service_specific = self.is_service_specific;
        c.use_non_standard_texts = self.use_non_standard_texts;
        c.special_feature_opt_ins = self.special_feature_optins;
        c.purposes_consent = self.purpose_consents;
        c.purposes_li_transparency = self.purpose_legitimate_interests;
        c.purpose_one_treatment = self.purpose_one_treatment;
        c.publisher_cc = self.publisher_country_code.to_ascii_uppercase();
        c.vendor_consents = build_section(
            &self.vendor_consents,
            enc.vendor_consents.as_ref(),
            "vendorConsents",
        )?;
        c.vendor_legitimate_interests = build_section(
            &self.vendor_legitimate_interests,
            enc.vendor_legitimate_interests.as_ref(),
            "vendorLegitimateInterests",
        )?;
        c.publisher_restrictions = publisher_restrictions;
        tc.segments = segments;
        Ok(tc)
    }

    /// Only TCF version 2 can be written.
    fn check_header(&self) -> SignalResult<()> {
        if self.kind != "tcf" {
            return Err(enc_err(
                "type",
                format!("expected \"tcf\", got {:?}", self.kind),
            ));
        }
        if self.version != 2 {
            return Err(enc_err(
                "Version",
                format!("only TCF version 2 can be written, got {}", self.version),
            ));
        }
        Ok(())
    }

    /// Is any field of the publisher TC segment present?
    fn publisher_present(&self) -> bool {
        self.publisher_consents.is_some()
            || self.publisher_legitimate_interests.is_some()
            || self.num_custom_purposes.is_some()
            || self.publisher_custom_consents.is_some()
            || self.publisher_custom_legitimate_interests.is_some()
    }

    /// The optional segments in the order to write them: as
    /// `encoding.segments` lists them, else each present one in the usual
    /// order.
    fn segment_order(&self, enc: &TcfEncodingJson) -> Vec<String> {
        if let Some(list) = &enc.segments {
            return list.clone();
        }
        [
            (self.vendors_disclosed.is_some(), SEG_DISCLOSED),
            (self.vendors_allowed.is_some(), SEG_ALLOWED),
            (self.publisher_present(), SEG_PUBLISHER),
        ]
        .into_iter()
        .filter(|(present, _)| *present)
        .map(|(_, name)| name.to_string())
        .collect()
    }

    /// The optional segments named by `order`, each once; every segment
    /// with fields present must be named.
    fn segments(&self, enc: &TcfEncodingJson, order: &[String]) -> SignalResult<Vec<Segment>> {
        let mut segments: Vec<Segment> = Vec::new();
        for name in order {
            let seg = self.segment(enc, name)?;
            if segments
                .iter()
                .any(|s| std::mem::discriminant(s) == std::mem::discriminant(&seg))
            {
                return Err(enc_err(
                    "encoding.segments",
                    format!("segment {name:?} listed twice"),
                ));
            }
            segments.push(seg);
        }
        let listed = |n: &str| order.iter().any(|s| s == n);
        if self.vendors_disclosed.is_some() && !listed(SEG_DISCLOSED)
            || self.vendors_allowed.is_some() && !listed(SEG_ALLOWED)
            || self.publisher_present() && !listed(SEG_PUBLISHER)
        {
            return Err(enc_err(
                "encoding.segments",
                "a segment with fields present is missing from encoding.segments",
            ));
        }
        Ok(segments)
    }

    /// One optional segment, by its name in `encoding.segments`.
    fn segment(&self, enc: &TcfEncodingJson, name: &str) -> SignalResult<Segment> {
        let absent = |field| move || enc_err(field, "listed in encoding.segments but absent");
        Ok(match name {
            SEG_DISCLOSED => Segment::DisclosedVendors(build_section(
                self.vendors_disclosed
                    .as_deref()
                    .ok_or_else(absent("vendorsDisclosed"))?,
                enc.vendors_disclosed.as_ref(),
                "vendorsDisclosed",
            )?),
            SEG_ALLOWED => Segment::AllowedVendors(build_section(
                self.vendors_allowed
                    .as_deref()
                    .ok_or_else(absent("vendorsAllowed"))?,
                enc.vendors_allowed.as_ref(),
                "vendorsAllowed",
            )?),
            SEG_PUBLISHER => Segment::PublisherTc(self.publisher_tc()?),
            other => {
                return Err(enc_err(
                    "encoding.segments",
                    format!(
                        "unknown segment {other:?}: expected vendorsDisclosed, vendorsAllowed or publisherTC"
                    ),
                ));
            }
        })
    }

    /// The publisher TC segment; its number of custom purposes covers every
    /// custom purpose given, and is at most 63.
    fn publisher_tc(&self) -> SignalResult<PublisherTc> {
        let custom_c = self.publisher_custom_consents.unwrap_or_default();
        let custom_li = self
            .publisher_custom_legitimate_interests
            .unwrap_or_default();
        let needed = custom_c
            .max_id()
            .unwrap_or(0)
            .max(custom_li.max_id().unwrap_or(0));
        let n = self.num_custom_purposes.unwrap_or(needed);
        if n < needed || n > 63 {
            return Err(enc_err(
                "numCustomPurposes",
                format!("{n} must be at most 63 and cover custom purpose {needed}"),
            ));
        }
        Ok(PublisherTc {
            pub_purposes_consent: self.publisher_consents.unwrap_or_default(),
            pub_purposes_li_transparency: self.publisher_legitimate_interests.unwrap_or_default(),
            num_custom_purposes: n,
            custom_purposes_consent: custom_c,
            custom_purposes_li_transparency: custom_li,
        })
    }

    /// The publisher restrictions, each of a known type (0 to 3).
    fn restrictions(&self) -> SignalResult<Vec<PublisherRestriction>> {
        self.publisher_restrictions
            .iter()
            .map(|r| {
                if r.restriction_type > 3 {
                    return Err(enc_err(
                        "publisherRestrictions.restrictionType",
                        format!("{} is not 0 to 3", r.restriction_type),
                    ));
                }
                Ok(PublisherRestriction {
                    purpose_id: r.purpose_id,
                    restriction_type: RestrictionType::from_bits(u64::from(r.restriction_type)),
                    entries: runs(&sorted_ids(&r.vendors, "publisherRestrictions.vendors")?),
                })
            })
            .collect()
    }
}

fn sorted_ids(ids: &[u16], field: &'static str) -> SignalResult<Vec<u16>> {
    if ids.contains(&0) {
        return Err(enc_err(field, "vendor ids start at 1"));
    }
    let mut v = ids.to_vec();
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

/// Maximal runs of ascending unique ids.
fn runs(ids: &[u16]) -> Vec<VendorRange> {
    let mut out: Vec<VendorRange> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some(r) if u32::from(r.end) + 1 == u32::from(id) => r.end = id,
            _ => out.push(VendorRange { start: id, end: id }),
        }
    }
    out
}

fn build_section(
    ids: &[u16],
    enc: Option<&SectionEncodingJson>,
    field: &'static str,
) -> SignalResult<VendorSection> {
    let ids = sorted_ids(ids, field)?;
    let top = ids.last().copied().unwrap_or(0);
    let max = enc.and_then(|e| e.max_vendor_id).unwrap_or(top);
    if max < top {
        return Err(enc_err(
            field,
            format!("maxVendorId {max} is below the largest id {top}"),
        ));
    }
    let ranges = runs(&ids);
    let kind = match enc.map(|e| e.kind) {
        Some(k) => k,
        None => {
            let range_bits: usize = 12
                + ranges
                    .iter()
                    .map(|r| if r.start == r.end { 17 } else { 33 })
                    .sum::<usize>();
            if range_bits < usize::from(max) {
                EncodingKind::Range
            } else {
                EncodingKind::Bitfield
            }
        }
    };
    let encoding = match kind {
        EncodingKind::Bitfield => VendorEncoding::Bitfield {
            ids: VendorBits::from_ids(ids),
        },
        EncodingKind::Range => VendorEncoding::Range { entries: ranges },
    };
    Ok(VendorSection {
        max_vendor_id: max,
        encoding,
    })
}

impl From<TcString> for TcfJson {
    fn from(tc: TcString) -> Self {
        TcfJson::from_tc(&tc, &TcfOptions::default())
    }
}

impl TryFrom<TcfJson> for TcString {
    type Error = SignalError;
    fn try_from(j: TcfJson) -> SignalResult<Self> {
        j.to_tc()
    }
}

// ---------------------------------------------------------------------------
// US Privacy

fn usp_type() -> String {
    "usp".into()
}

/// The JSON form of a US Privacy string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UspJson {
    /// Always `usp`.
    #[serde(rename = "type", default = "usp_type")]
    pub kind: String,
    /// Version (1).
    pub version: u8,
    /// Notice: `Y`, `N` or `-`.
    pub notice: UspFlag,
    /// OptOutSale: `Y`, `N` or `-`.
    pub opt_out_sale: UspFlag,
    /// LspaCovered: `Y`, `N` or `-`.
    pub lspa_covered: UspFlag,
}

impl From<UsPrivacy> for UspJson {
    fn from(u: UsPrivacy) -> Self {
        UspJson {
            kind: usp_type(),
            version: u.version,
            notice: u.notice,
            opt_out_sale: u.opt_out_sale,
            lspa_covered: u.lspa_covered,
        }
    }
}

impl TryFrom<UspJson> for UsPrivacy {
    type Error = SignalError;
    fn try_from(j: UspJson) -> SignalResult<Self> {
        if j.kind != "usp" {
            return Err(enc_err(
                "type",
                format!("expected \"usp\", got {:?}", j.kind),
            ));
        }
        if j.version != 1 {
            return Err(enc_err(
                "version",
                format!("only US Privacy version 1 exists, got {}", j.version),
            ));
        }
        Ok(UsPrivacy {
            version: 1,
            notice: j.notice,
            opt_out_sale: j.opt_out_sale,
            lspa_covered: j.lspa_covered,
        })
    }
}

// ---------------------------------------------------------------------------
// usnat

/// The JSON form of a `usnat` section (iabgpp field names, first letter in
/// lower case).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct UsNatJson {
    pub version: u8,
    pub sharing_notice: u8,
    pub sale_opt_out_notice: u8,
    pub sharing_opt_out_notice: u8,
    pub targeted_advertising_opt_out_notice: u8,
    pub sensitive_data_processing_opt_out_notice: u8,
    pub sensitive_data_limit_use_notice: u8,
    pub sale_opt_out: u8,
    pub sharing_opt_out: u8,
    pub targeted_advertising_opt_out: u8,
    pub sensitive_data_processing: Vec<u8>,
    pub known_child_sensitive_data_consents: Vec<u8>,
    pub personal_data_consents: u8,
    pub mspa_covered_transaction: u8,
    pub mspa_opt_out_option_mode: u8,
    pub mspa_service_provider_mode: u8,
    /// 1 when the GPC sub-section is present (iabgpp `GpcSegmentType`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpc_segment_type: Option<u8>,
    /// Whether the GPC sub-section is present.
    #[serde(default)]
    pub gpc_segment_included: bool,
    /// The `Gpc` flag (false when the sub-section is absent).
    #[serde(default)]
    pub gpc: bool,
    /// Value rules of the specification the section breaks (output only:
    /// ignored on input).
    #[serde(default)]
    pub violations: Vec<ViolationJson>,
}

fn violations_json(v: Vec<super::tcf::Violation>) -> Vec<ViolationJson> {
    v.into_iter()
        .map(|v| ViolationJson {
            field: v.field.to_string(),
            offset: v.offset,
            reason: v.reason.to_string(),
        })
        .collect()
}

impl From<UsNat> for UsNatJson {
    fn from(u: UsNat) -> Self {
        let violations = violations_json(u.violations());
        UsNatJson {
            version: u.version,
            sharing_notice: u.sharing_notice,
            sale_opt_out_notice: u.sale_opt_out_notice,
            sharing_opt_out_notice: u.sharing_opt_out_notice,
            targeted_advertising_opt_out_notice: u.targeted_advertising_opt_out_notice,
            sensitive_data_processing_opt_out_notice: u.sensitive_data_processing_opt_out_notice,
            sensitive_data_limit_use_notice: u.sensitive_data_limit_use_notice,
            sale_opt_out: u.sale_opt_out,
            sharing_opt_out: u.sharing_opt_out,
            targeted_advertising_opt_out: u.targeted_advertising_opt_out,
            sensitive_data_processing: u.sensitive_data_processing,
            known_child_sensitive_data_consents: u.known_child_sensitive_data_consents,
            personal_data_consents: u.personal_data_consents,
            mspa_covered_transaction: u.mspa_covered_transaction,
            mspa_opt_out_option_mode: u.mspa_opt_out_option_mode,
            mspa_service_provider_mode: u.mspa_service_provider_mode,
            gpc_segment_type: u.gpc.map(|_| 1),
            gpc_segment_included: u.gpc.is_some(),
            gpc: u.gpc.unwrap_or(false),
            violations,
        }
    }
}

impl TryFrom<UsNatJson> for UsNat {
    type Error = SignalError;
    fn try_from(j: UsNatJson) -> SignalResult<Self> {
        if j.gpc_segment_type.is_some_and(|t| t != 1) {
            return Err(enc_err("gpcSegmentType", "the GPC sub-section type is 1"));
        }
        if j.gpc && !j.gpc_segment_included {
            return Err(enc_err(
                "gpc",
                "gpc is true but gpcSegmentIncluded is false",
            ));
        }
        Ok(UsNat {
            version: j.version,
            sharing_notice: j.sharing_notice,
            sale_opt_out_notice: j.sale_opt_out_notice,
            sharing_opt_out_notice: j.sharing_opt_out_notice,
            targeted_advertising_opt_out_notice: j.targeted_advertising_opt_out_notice,
            sensitive_data_processing_opt_out_notice: j.sensitive_data_processing_opt_out_notice,
            sensitive_data_limit_use_notice: j.sensitive_data_limit_use_notice,
            sale_opt_out: j.sale_opt_out,
            sharing_opt_out: j.sharing_opt_out,
            targeted_advertising_opt_out: j.targeted_advertising_opt_out,
            sensitive_data_processing: j.sensitive_data_processing,
            known_child_sensitive_data_consents: j.known_child_sensitive_data_consents,
            personal_data_consents: j.personal_data_consents,
            mspa_covered_transaction: j.mspa_covered_transaction,
            mspa_opt_out_option_mode: j.mspa_opt_out_option_mode,
            mspa_service_provider_mode: j.mspa_service_provider_mode,
            gpc: j.gpc_segment_included.then_some(j.gpc),
        })
    }
}

// ---------------------------------------------------------------------------
// GPP

/// GPP section names by id, as iabgpp-es names them.
pub const SECTION_NAMES: [(u16, &str); 25] = [
    (1, "tcfeuv1"),
    (2, "tcfeuv2"),
    (5, "tcfcav1"),
    (6, "uspv1"),
    (7, "usnat"),
    (8, "usca"),
    (9, "usva"),
    (10, "usco"),
    (11, "usut"),
    (12, "usct"),
    (13, "usfl"),
    (14, "usmt"),
    (15, "usor"),
    (16, "ustx"),
    (17, "usde"),
    (18, "usia"),
    (19, "usne"),
    (20, "usnh"),
    (21, "usnj"),
    (22, "ustn"),
    (23, "usmn"),
    (24, "usmd"),
    (25, "usin"),
    (26, "usky"),
    (27, "usri"),
];

/// The name of a GPP section id (`section<N>` for ids without one).
pub fn section_name(id: u16) -> String {
    SECTION_NAMES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, n)| (*n).to_string())
        .unwrap_or_else(|| format!("section{id}"))
}

/// The id of a GPP section name.
pub fn section_id(name: &str) -> Option<u16> {
    SECTION_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(i, _)| *i)
        .or_else(|| name.strip_prefix("section")?.parse().ok())
}

fn gpp_type() -> String {
    "gpp".into()
}

/// A section this crate does not decode, kept as found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpaqueSectionJson {
    /// The section text.
    pub encoded: String,
}

/// The JSON form of a GPP string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GppJson {
    /// Always `gpp`.
    #[serde(rename = "type", default = "gpp_type")]
    pub kind: String,
    /// Header version (1).
    pub version: u8,
    /// Section ids from the header, ascending.
    #[serde(default)]
    pub section_ids: Vec<u16>,
    /// Sections by name, in `sectionIds` order; absent for a header decoded
    /// alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sections: Option<SectionsJson>,
}

/// One section in the `sections` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SectionJson {
    /// `tcfeuv2`: the TC string's JSON.
    Tcf(Box<TcfJson>),
    /// `tcfcav1`: see [`TcfCaV1::to_json_value`].
    TcfCa(JsonFields),
    /// `uspv1`.
    Usp(UspJson),
    /// `usnat`.
    UsNat(UsNatJson),
    /// A US state section (`usca` ... `usri`): see
    /// [`UsStateSection::to_json_value`].
    UsState(JsonFields),
    /// Any other section, kept as found.
    Opaque(OpaqueSectionJson),
}

/// The `sections` object: section name to its JSON, written in section id
/// order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SectionsJson(pub Vec<(String, SectionJson)>);

impl Serialize for SectionsJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

fn object(v: serde_json::Value) -> Result<JsonFields, serde_json::Error> {
    match v {
        serde_json::Value::Object(m) => Ok(m.into()),
        _ => Err(serde::de::Error::custom("expected an object")),
    }
}

impl<'de> Deserialize<'de> for SectionsJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let m = BTreeMap::<String, serde_json::Value>::deserialize(d)?;
        let mut out = Vec::with_capacity(m.len());
        for (name, v) in m {
            let id = section_id(&name)
                .ok_or_else(|| D::Error::custom(format!("unknown GPP section name {name:?}")))?;
            let bad = |e: serde_json::Error| D::Error::custom(format!("sections.{name}: {e}"));
            let s = match id {
                super::gpp::SECTION_TCFEUV2 => {
                    SectionJson::Tcf(Box::new(serde_json::from_value(v).map_err(bad)?))
                }
                super::gpp::SECTION_TCFCAV1 => SectionJson::TcfCa(object(v).map_err(bad)?),
                super::gpp::SECTION_USPV1 => {
                    SectionJson::Usp(serde_json::from_value(v).map_err(bad)?)
                }
                super::gpp::SECTION_USNAT => {
                    SectionJson::UsNat(serde_json::from_value(v).map_err(bad)?)
                }
                _ if super::usstate::section_def(id).is_some() => {
                    SectionJson::UsState(object(v).map_err(bad)?)
                }
                _ => SectionJson::Opaque(serde_json::from_value(v).map_err(bad)?),
            };
            out.push((name, s));
        }
        Ok(Self(out))
    }
}

impl GppJson {
    /// The JSON form of a decoded GPP string, TCF violations found under
    /// `opts`.
    pub fn from_gpp(g: &GppString, opts: &TcfOptions) -> Self {
        let sections = g
            .sections
            .iter()
            .map(|s| {
                let v = match s {
                    GppSection::TcfEuV2(t) => SectionJson::Tcf(Box::new(TcfJson::from_tc(t, opts))),
                    GppSection::TcfCaV1(t) => SectionJson::TcfCa(t.to_json_fields()),
                    GppSection::UspV1(u) => SectionJson::Usp(UspJson::from(*u)),
                    GppSection::UsNat(u) => SectionJson::UsNat(UsNatJson::from(u.clone())),
                    GppSection::UsState(u) => SectionJson::UsState(u.to_json_fields()),
                    GppSection::Unknown { text, .. } => SectionJson::Opaque(OpaqueSectionJson {
                        encoded: text.clone(),
                    }),
                };
                (section_name(s.id()), v)
            })
            .collect();
        GppJson {
            kind: gpp_type(),
            version: g.version,
            section_ids: g.section_ids(),
            sections: Some(SectionsJson(sections)),
        }
    }

    /// The JSON form of a header decoded alone.
    pub fn header_only(version: u8, section_ids: Vec<u16>) -> Self {
        GppJson {
            kind: gpp_type(),
            version,
            section_ids,
            sections: None,
        }
    }

    /// The GPP string this JSON describes.
    pub fn to_gpp(&self) -> SignalResult<GppString> {
        if self.kind != "gpp" {
            return Err(enc_err(
                "type",
                format!("expected \"gpp\", got {:?}", self.kind),
            ));
        }
        let Some(SectionsJson(list)) = &self.sections else {
            return Err(enc_err(
                "sections",
                "absent: a GPP string cannot be written from its header alone",
            ));
        };
        let mut sections = Vec::with_capacity(list.len());
        for (name, v) in list {
            let id = section_id(name)
                .ok_or_else(|| enc_err("sections", format!("unknown section name {name:?}")))?;
            let s = match v.clone() {
                SectionJson::Tcf(t) => GppSection::TcfEuV2(t.to_tc()?),
                SectionJson::TcfCa(v) => GppSection::TcfCaV1(TcfCaV1::from_json_value(&v.into())?),
                SectionJson::Usp(u) => GppSection::UspV1(UsPrivacy::try_from(u)?),
                SectionJson::UsNat(u) => GppSection::UsNat(UsNat::try_from(u)?),
                SectionJson::UsState(v) => {
                    GppSection::UsState(UsStateSection::from_json_value(id, &v.into())?)
                }
                SectionJson::Opaque(o) => GppSection::Unknown {
                    id,
                    text: o.encoded,
                },
            };
            if s.id() != id {
                return Err(enc_err(
                    "sections",
                    format!("section {name:?} does not hold a {name} object"),
                ));
            }
            sections.push(s);
        }
        sections.sort_by_key(GppSection::id);
        let g = GppString {
            version: self.version,
            sections,
        };
        if !self.section_ids.is_empty() && self.section_ids != g.section_ids() {
            return Err(enc_err(
                "sectionIds",
                format!(
                    "{:?} does not match the sections given ({:?})",
                    self.section_ids,
                    g.section_ids()
                ),
            ));
        }
        Ok(g)
    }
}

impl From<GppString> for GppJson {
    fn from(g: GppString) -> Self {
        GppJson::from_gpp(&g, &TcfOptions::default())
    }
}

impl TryFrom<GppJson> for GppString {
    type Error = SignalError;
    fn try_from(j: GppJson) -> SignalResult<Self> {
        j.to_gpp()
    }
}

/// A JSON object whose fields keep the order they were pushed in (the
/// string order of a section's fields).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct JsonFields(pub Vec<(String, serde_json::Value)>);

impl JsonFields {
    /// Adds a field at the end.
    pub fn push(&mut self, key: impl Into<String>, v: serde_json::Value) {
        self.0.push((key.into(), v));
    }
}

impl Eq for JsonFields {}

impl Serialize for JsonFields {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl From<JsonFields> for serde_json::Value {
    fn from(f: JsonFields) -> Self {
        serde_json::Value::Object(f.0.into_iter().collect())
    }
}

impl From<serde_json::Map<String, serde_json::Value>> for JsonFields {
    fn from(m: serde_json::Map<String, serde_json::Value>) -> Self {
        JsonFields(m.into_iter().collect())
    }
}

/// Parses JSON into `T`, naming the problem.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> SignalResult<T> {
    serde_json::from_str(s).map_err(json_err)
}

/// Writes `T` as JSON.
pub(crate) fn to_json<T: Serialize>(t: &T) -> SignalResult<String> {
    serde_json::to_string(t).map_err(json_err)
}
