//! IAB TCF v2.2 / v2.3 TC strings: core segment, DisclosedVendors,
//! AllowedVendors (legacy) and PublisherTC segments.
//!
//! Field names in JSON follow the specification's field names in camelCase
//! (`cmpId`, `purposesConsent`, `purposesLITransparency`, `publisherCC`, ...).
//! Timestamps (`created`, `lastUpdated`) are kept as in the string:
//! deciseconds since the Unix epoch.

use serde::{Deserialize, Serialize};

use super::bits::{BitReader, BitWriter, Bits, Padding};
use super::error::{SignalError, SignalResult};

/// Bit offset of `TcfPolicyVersion` in the core segment.
pub const OFFSET_POLICY_VERSION: usize = 132;
/// Bit offset of `IsServiceSpecific` in the core segment.
pub const OFFSET_IS_SERVICE_SPECIFIC: usize = 138;
/// Bit offset of the first bit of `PurposesLITransparency` in the core segment.
pub const OFFSET_PURPOSES_LI: usize = 176;
/// Bit offset of the vendor consent section in the core segment.
pub const OFFSET_VENDOR_CONSENTS: usize = 213;

/// A decoded TC string. Its serde form is the reference-library JSON of
/// [`super::json::TcfJson`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "super::json::TcfJson", try_from = "super::json::TcfJson")]
pub struct TcString {
    /// The core segment (always first).
    pub core: CoreSegment,
    /// The optional segments, in the order in which they appear.
    pub segments: Vec<Segment>,
}

/// The core segment of a TC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreSegment {
    /// Version, 6 bits; always 2.
    pub version: u8,
    /// Created, deciseconds since the epoch (36 bits).
    pub created: u64,
    /// LastUpdated, deciseconds since the epoch (36 bits).
    pub last_updated: u64,
    /// CmpId (12 bits).
    pub cmp_id: u16,
    /// CmpVersion (12 bits).
    pub cmp_version: u16,
    /// ConsentScreen (6 bits).
    pub consent_screen: u8,
    /// ConsentLanguage, two upper-case letters `A`-`Z`.
    pub consent_language: String,
    /// VendorListVersion (12 bits).
    pub vendor_list_version: u16,
    /// TcfPolicyVersion (6 bits): 4 for TCF v2.2, 5 for TCF v2.3.
    pub tcf_policy_version: u8,
    /// IsServiceSpecific.
    pub is_service_specific: bool,
    /// UseNonStandardTexts (formerly UseNonStandardStacks).
    pub use_non_standard_texts: bool,
    /// SpecialFeatureOptIns: ids (1..=12) of opted-in special features, ascending.
    pub special_feature_opt_ins: IdSet,
    /// PurposesConsent: ids (1..=24) of consented purposes, ascending.
    pub purposes_consent: IdSet,
    /// PurposesLITransparency: ids (1..=24) of purposes with legitimate interest
    /// established and not objected to, ascending.
    #[serde(rename = "purposesLITransparency")]
    pub purposes_li_transparency: IdSet,
    /// PurposeOneTreatment.
    pub purpose_one_treatment: bool,
    /// PublisherCC, two upper-case letters `A`-`Z`.
    #[serde(rename = "publisherCC")]
    pub publisher_cc: String,
    /// Vendor consent section.
    pub vendor_consents: VendorSection,
    /// Vendor legitimate interest section.
    pub vendor_legitimate_interests: VendorSection,
    /// Publisher restrictions, in string order.
    pub publisher_restrictions: Vec<PublisherRestriction>,
}

/// A vendor section: `MaxVendorId`, then a bitfield or a list of ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VendorSection {
    /// MaxVendorId (16 bits).
    pub max_vendor_id: u16,
    /// Bitfield or range encoding, as found in the string.
    #[serde(flatten)]
    pub encoding: VendorEncoding,
}

/// How a vendor section is encoded (`IsRangeEncoding`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "encoding", rename_all = "camelCase")]
pub enum VendorEncoding {
    /// `IsRangeEncoding = 0`: the ids of the set bits, ascending.
    Bitfield {
        /// Vendor ids whose bit is set.
        ids: VendorBits,
    },
    /// `IsRangeEncoding = 1`: range entries, in string order.
    Range {
        /// Range entries.
        entries: Vec<VendorRange>,
    },
}

/// A set of small ids (1..=64), such as purposes or special features,
/// stored as a bitmask. Serialised as an ascending list of ids.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct IdSet(u64);

impl IdSet {
    /// An empty set.
    pub fn new() -> Self {
        Self(0)
    }

    /// A set holding the given ids; ids outside 1..=64 are ignored.
    pub fn from_ids<I: IntoIterator<Item = u8>>(ids: I) -> Self {
        let mut s = Self::new();
        for id in ids {
            s.insert(id);
        }
        s
    }

    /// Adds `id`; ids outside 1..=64 are ignored.
    pub fn insert(&mut self, id: u8) {
        if (1..=64).contains(&id) {
            self.0 |= 1u64 << (id - 1);
        }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u8) -> bool {
        (1..=64).contains(&id) && (self.0 >> (id - 1)) & 1 == 1
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The largest id, if any.
    pub fn max_id(&self) -> Option<u8> {
        (self.0 != 0).then(|| (64 - self.0.leading_zeros()) as u8)
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u8> + '_ {
        let mut w = self.0;
        std::iter::from_fn(move || {
            if w == 0 {
                return None;
            }
            let tz = w.trailing_zeros();
            w &= w - 1;
            Some((tz + 1) as u8)
        })
    }

    fn read(r: &mut BitReader<'_>, n: usize, field: &'static str) -> SignalResult<Self> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Ok(Self::new());
        }
        if r.remaining() < n {
            r.read_id_bitfield(n, field)?;
        }
        let hi = n.min(32);
        let mut v = r.read(hi, field)? << (64 - hi);
        if n > 32 {
            v |= r.read(n - 32, field)? << (32 - (n - 32));
        }
        Ok(Self(v.reverse_bits()))
    }
}

impl FromIterator<u8> for IdSet {
    fn from_iter<I: IntoIterator<Item = u8>>(iter: I) -> Self {
        Self::from_ids(iter)
    }
}

impl std::fmt::Debug for IdSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for IdSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for IdSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ids = Vec::<u8>::deserialize(d)?;
        if ids.iter().any(|&i| !(1..=64).contains(&i)) {
            return Err(serde::de::Error::custom("ids must be in 1..=64"));
        }
        Ok(Self::from_ids(ids))
    }
}

/// A set of vendor ids stored as a bitset (O(1) membership). Serialised as
/// an ascending list of ids. Two sets are equal when they hold the same ids.
#[derive(Clone, PartialEq, Eq, Default, Hash)]
pub struct VendorBits {
    /// Bit `63 - (id - 1) % 64` of word `(id - 1) / 64` stands for `id`;
    /// no trailing all-zero words.
    words: Vec<u64>,
}

impl VendorBits {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set holding the given ids (0 is ignored: vendor ids start at 1).
    pub fn from_ids<I: IntoIterator<Item = u16>>(ids: I) -> Self {
        let mut s = Self::new();
        for id in ids {
            s.insert(id);
        }
        s
    }

    /// Adds `id` (ignored when 0).
    pub fn insert(&mut self, id: u16) {
        if id == 0 {
            return;
        }
        let i = usize::from(id - 1);
        if self.words.len() <= i / 64 {
            self.words.resize(i / 64 + 1, 0);
        }
        self.words[i / 64] |= 1u64 << (63 - i % 64);
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: u16) -> bool {
        if id == 0 {
            return false;
        }
        let i = usize::from(id - 1);
        self.words
            .get(i / 64)
            .is_some_and(|w| (w >> (63 - i % 64)) & 1 == 1)
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The largest id, if any.
    pub fn max_id(&self) -> Option<u16> {
        let last = self.words.last()?;
        let k = (self.words.len() - 1) * 64 + 63 - last.trailing_zeros() as usize;
        Some((k + 1) as u16)
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.words.iter().enumerate().flat_map(|(k, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let lz = w.leading_zeros() as usize;
                w &= !(1u64 << (63 - lz));
                Some((k * 64 + lz + 1) as u16)
            })
        })
    }

    fn read(r: &mut BitReader<'_>, n: usize, field: &'static str) -> SignalResult<Self> {
        if r.remaining() < n {
            // Let the reader build the error with the right offset.
            r.read_id_bitfield(n, field)?;
        }
        let mut words = Vec::with_capacity(n.div_ceil(64));
        let mut left = n;
        while left > 0 {
            let take = left.min(64);
            let hi = take.min(32);
            let mut w = r.read(hi, field)? << (64 - hi);
            if take > 32 {
                w |= r.read(take - 32, field)? << (32 - (take - 32));
            }
            words.push(w);
            left -= take;
        }
        while words.last() == Some(&0) {
            words.pop();
        }
        Ok(Self { words })
    }
}

impl FromIterator<u16> for VendorBits {
    fn from_iter<I: IntoIterator<Item = u16>>(iter: I) -> Self {
        Self::from_ids(iter)
    }
}

impl std::fmt::Debug for VendorBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for VendorBits {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for VendorBits {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ids = Vec::<u16>::deserialize(d)?;
        if ids.contains(&0) {
            return Err(serde::de::Error::custom("vendor ids start at 1"));
        }
        Ok(Self::from_ids(ids))
    }
}

/// An inclusive range of vendor ids. A single id has `start == end` and is
/// encoded with `IsARange = 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorRange {
    /// First id.
    pub start: u16,
    /// Last id (inclusive).
    pub end: u16,
}

/// A publisher restriction entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherRestriction {
    /// PurposeId (6 bits).
    pub purpose_id: u8,
    /// RestrictionType (2 bits).
    pub restriction_type: RestrictionType,
    /// Vendor ranges the restriction applies to, in string order.
    pub entries: Vec<VendorRange>,
}

/// Publisher restriction type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RestrictionType {
    /// 0: purpose flatly not allowed.
    NotAllowed,
    /// 1: require consent.
    RequireConsent,
    /// 2: require legitimate interest.
    RequireLegitimateInterest,
    /// 3: undefined by the specification (kept so the string round-trips;
    /// reported by validation).
    Undefined,
}

impl RestrictionType {
    pub(crate) fn from_bits(v: u64) -> Self {
        match v {
            0 => Self::NotAllowed,
            1 => Self::RequireConsent,
            2 => Self::RequireLegitimateInterest,
            _ => Self::Undefined,
        }
    }
    pub(crate) fn bits(self) -> u64 {
        match self {
            Self::NotAllowed => 0,
            Self::RequireConsent => 1,
            Self::RequireLegitimateInterest => 2,
            Self::Undefined => 3,
        }
    }
}

/// An optional segment after the core segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "segmentType", rename_all = "camelCase")]
pub enum Segment {
    /// SegmentType 1.
    DisclosedVendors(VendorSection),
    /// SegmentType 2 (legacy; no longer in the specification).
    AllowedVendors(VendorSection),
    /// SegmentType 3.
    #[serde(rename = "publisherTC")]
    PublisherTc(PublisherTc),
}

impl Segment {
    fn type_id(&self) -> u8 {
        match self {
            Segment::DisclosedVendors(_) => 1,
            Segment::AllowedVendors(_) => 2,
            Segment::PublisherTc(_) => 3,
        }
    }
}

/// The PublisherTC segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherTc {
    /// PubPurposesConsent: purpose ids (1..=24), ascending.
    pub pub_purposes_consent: IdSet,
    /// PubPurposesLITransparency: purpose ids (1..=24), ascending.
    #[serde(rename = "pubPurposesLITransparency")]
    pub pub_purposes_li_transparency: IdSet,
    /// NumCustomPurposes (6 bits).
    pub num_custom_purposes: u8,
    /// CustomPurposesConsent: custom purpose ids (1..=NumCustomPurposes).
    pub custom_purposes_consent: IdSet,
    /// CustomPurposesLITransparency: custom purpose ids (1..=NumCustomPurposes).
    #[serde(rename = "customPurposesLITransparency")]
    pub custom_purposes_li_transparency: IdSet,
}

/// Validation options for TC strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcfOptions {
    /// When true (the default) a policy violation is an error; when false
    /// violations are returned alongside the decoded string.
    pub strict: bool,
    /// Lowest accepted `TcfPolicyVersion` (default 4: the TCF v2.2 policy;
    /// lower versions are invalid since 30 Sep 2023).
    pub min_policy_version: u8,
    /// Apply the TCF v2.3 rules whatever the policy version. By default they
    /// apply when `TcfPolicyVersion >= 5`.
    pub enforce_v23: bool,
}

impl Default for TcfOptions {
    fn default() -> Self {
        Self {
            strict: true,
            min_policy_version: 4,
            enforce_v23: false,
        }
    }
}

impl TcfOptions {
    /// Lenient options: violations are reported, not fatal.
    pub fn lenient() -> Self {
        Self {
            strict: false,
            ..Self::default()
        }
    }
}

/// A policy rule broken by a structurally valid TC string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Field name.
    pub field: &'static str,
    /// Bit offset of the offending bit in its segment, when one applies.
    pub offset: Option<usize>,
    /// The rule.
    pub reason: &'static str,
}

impl From<Violation> for SignalError {
    fn from(v: Violation) -> Self {
        SignalError::PolicyViolation {
            field: v.field,
            offset: v.offset,
            reason: v.reason,
        }
    }
}

/// A TC string with the policy violations found while decoding leniently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcDecoded {
    /// The decoded string.
    pub tc: TcString,
    /// Policy violations (always empty in strict mode, where they are errors).
    pub violations: Vec<Violation>,
}

struct VNames {
    max: &'static str,
    is_range: &'static str,
    bitfield: &'static str,
    num_entries: &'static str,
    is_a_range: &'static str,
    start: &'static str,
    end: &'static str,
}

const V_CONSENT: VNames = VNames {
    max: "VendorConsents.MaxVendorId",
    is_range: "VendorConsents.IsRangeEncoding",
    bitfield: "VendorConsents.BitField",
    num_entries: "VendorConsents.NumEntries",
    is_a_range: "VendorConsents.IsARange",
    start: "VendorConsents.StartOrOnlyVendorId",
    end: "VendorConsents.EndVendorId",
};
const V_LI: VNames = VNames {
    max: "VendorLegitimateInterests.MaxVendorId",
    is_range: "VendorLegitimateInterests.IsRangeEncoding",
    bitfield: "VendorLegitimateInterests.BitField",
    num_entries: "VendorLegitimateInterests.NumEntries",
    is_a_range: "VendorLegitimateInterests.IsARange",
    start: "VendorLegitimateInterests.StartOrOnlyVendorId",
    end: "VendorLegitimateInterests.EndVendorId",
};
const V_DISCLOSED: VNames = VNames {
    max: "DisclosedVendors.MaxVendorId",
    is_range: "DisclosedVendors.IsRangeEncoding",
    bitfield: "DisclosedVendors.BitField",
    num_entries: "DisclosedVendors.NumEntries",
    is_a_range: "DisclosedVendors.IsARange",
    start: "DisclosedVendors.StartOrOnlyVendorId",
    end: "DisclosedVendors.EndVendorId",
};
const V_ALLOWED: VNames = VNames {
    max: "AllowedVendors.MaxVendorId",
    is_range: "AllowedVendors.IsRangeEncoding",
    bitfield: "AllowedVendors.BitField",
    num_entries: "AllowedVendors.NumEntries",
    is_a_range: "AllowedVendors.IsARange",
    start: "AllowedVendors.StartOrOnlyVendorId",
    end: "AllowedVendors.EndVendorId",
};
const V_PUBRESTR: VNames = VNames {
    max: "PubRestrictionEntry.MaxVendorId",
    is_range: "PubRestrictionEntry.IsRangeEncoding",
    bitfield: "PubRestrictionEntry.BitField",
    num_entries: "PubRestrictionEntry.NumEntries",
    is_a_range: "PubRestrictionEntry.IsARange",
    start: "PubRestrictionEntry.StartOrOnlyVendorId",
    end: "PubRestrictionEntry.EndVendorId",
};

fn read_letters(r: &mut BitReader<'_>, field: &'static str) -> SignalResult<String> {
    let mut s = String::with_capacity(2);
    for _ in 0..2 {
        let offset = r.pos();
        let v = r.read(6, field)?;
        if v > 25 {
            return Err(SignalError::InvalidValue {
                field,
                offset,
                value: v,
                reason: "letter must be 0 (a) to 25 (z)",
            });
        }
        s.push(char::from(b'A' + v as u8));
    }
    Ok(s)
}

fn write_letters(w: &mut BitWriter, s: &str, field: &'static str) -> SignalResult<()> {
    let b = s.as_bytes();
    if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
        return Err(SignalError::Encode {
            field,
            reason: format!("expected two upper-case letters A-Z, got {s:?}"),
        });
    }
    for c in b {
        w.write(u64::from(c - b'A'), 6, field)?;
    }
    Ok(())
}

/// Reads `NumEntries` and the range entries. Entries that overlap or go
/// above `MaxVendorId` are read as the reference libraries read them (every
/// id of every entry counts); [`TcString::violations`] reports them.
fn read_ranges(r: &mut BitReader<'_>, names: &VNames) -> SignalResult<Vec<VendorRange>> {
    let n = r.read(12, names.num_entries)? as usize;
    let mut entries: Vec<VendorRange> = Vec::with_capacity(n.min(r.remaining() / 17 + 1));
    for _ in 0..n {
        let offset = r.pos();
        let is_range = r.read_bool(names.is_a_range)?;
        let start = r.read(16, names.start)? as u16;
        let end = if is_range {
            r.read(16, names.end)? as u16
        } else {
            start
        };
        if start == 0 {
            return Err(SignalError::InvalidValue {
                field: names.start,
                offset,
                value: 0,
                reason: "vendor ids start at 1",
            });
        }
        if start > end {
            return Err(SignalError::RangeStartAfterEnd {
                field: names.end,
                offset,
                start,
                end,
            });
        }
        entries.push(VendorRange { start, end });
    }
    Ok(entries)
}

/// Reason given for a range entry above `MaxVendorId`.
pub const ABOVE_MAX_REASON: &str =
    "vendor id above MaxVendorId (read as the reference libraries read it: the id counts)";
/// Reason given for a range entry overlapping an earlier one.
pub const OVERLAP_REASON: &str =
    "range overlaps an earlier entry (read as the reference libraries read it: the union)";

fn entry_bits(e: &VendorRange) -> usize {
    if e.start == e.end { 17 } else { 33 }
}

/// Bits taken by a vendor section (`MaxVendorId` to its last entry).
fn section_bits(v: &VendorSection) -> usize {
    17 + match &v.encoding {
        VendorEncoding::Bitfield { .. } => usize::from(v.max_vendor_id),
        VendorEncoding::Range { entries } => 12 + entries.iter().map(entry_bits).sum::<usize>(),
    }
}

/// Entries above `max` or overlapping an earlier entry; `at` is the bit
/// offset of the first entry.
fn range_violations(
    entries: &[VendorRange],
    max: Option<u16>,
    field: &'static str,
    mut at: usize,
    out: &mut Vec<Violation>,
) {
    let mut prev_end = 0u16;
    for (i, e) in entries.iter().enumerate() {
        if max.is_some_and(|m| e.end > m) {
            out.push(Violation {
                field,
                offset: Some(at),
                reason: ABOVE_MAX_REASON,
            });
        }
        if e.start <= prev_end
            && entries[..i]
                .iter()
                .any(|p| p.start <= e.end && e.start <= p.end)
        {
            out.push(Violation {
                field,
                offset: Some(at),
                reason: OVERLAP_REASON,
            });
        }
        prev_end = prev_end.max(e.end);
        at += entry_bits(e);
    }
}

/// [`range_violations`] of a vendor section whose `MaxVendorId` is at bit
/// `at`.
fn section_violations(v: &VendorSection, names: &VNames, at: usize, out: &mut Vec<Violation>) {
    if let VendorEncoding::Range { entries } = &v.encoding {
        range_violations(entries, Some(v.max_vendor_id), names.start, at + 29, out);
    }
}

fn read_vendor_section(r: &mut BitReader<'_>, names: &VNames) -> SignalResult<VendorSection> {
    let max_vendor_id = r.read(16, names.max)? as u16;
    let is_range = r.read_bool(names.is_range)?;
    let encoding = if is_range {
        VendorEncoding::Range {
            entries: read_ranges(r, names)?,
        }
    } else {
        VendorEncoding::Bitfield {
            ids: VendorBits::read(r, usize::from(max_vendor_id), names.bitfield)?,
        }
    };
    Ok(VendorSection {
        max_vendor_id,
        encoding,
    })
}

/// Entries the format cannot hold. Overlapping entries and ids above
/// `MaxVendorId` are written as given (a decoded string that has them
/// encodes back); [`TcString::violations`] reports them.
fn check_ranges(entries: &[VendorRange], field: &'static str) -> SignalResult<()> {
    for e in entries {
        let bad = if e.start == 0 {
            Some("vendor ids start at 1".to_string())
        } else if e.start > e.end {
            Some(format!("range {}..={} has start > end", e.start, e.end))
        } else {
            None
        };
        if let Some(reason) = bad {
            return Err(SignalError::Encode { field, reason });
        }
    }
    if entries.len() > 4095 {
        return Err(SignalError::Encode {
            field,
            reason: "more than 4095 entries".into(),
        });
    }
    Ok(())
}

fn write_ranges(
    w: &mut BitWriter,
    entries: &[VendorRange],
    field: &'static str,
) -> SignalResult<()> {
    check_ranges(entries, field)?;
    w.write(entries.len() as u64, 12, field)?;
    for e in entries {
        if e.start == e.end {
            w.write_bool(false);
            w.write(u64::from(e.start), 16, field)?;
        } else {
            w.write_bool(true);
            w.write(u64::from(e.start), 16, field)?;
            w.write(u64::from(e.end), 16, field)?;
        }
    }
    Ok(())
}

fn write_vendor_section(
    w: &mut BitWriter,
    v: &VendorSection,
    field: &'static str,
) -> SignalResult<()> {
    w.write(u64::from(v.max_vendor_id), 16, field)?;
    match &v.encoding {
        VendorEncoding::Bitfield { ids } => {
            w.write_bool(false);
            w.write_id_bitfield(usize::from(v.max_vendor_id), ids.iter(), field)
        }
        VendorEncoding::Range { entries } => {
            w.write_bool(true);
            write_ranges(w, entries, field)
        }
    }
}

fn write_small_ids(
    w: &mut BitWriter,
    n: usize,
    ids: &IdSet,
    field: &'static str,
) -> SignalResult<()> {
    w.write_id_bitfield(n, ids.iter().map(u16::from), field)
}

impl VendorSection {
    /// An empty section (`MaxVendorId = 0`, bitfield encoding).
    pub fn empty() -> Self {
        Self {
            max_vendor_id: 0,
            encoding: VendorEncoding::Bitfield {
                ids: VendorBits::new(),
            },
        }
    }

    /// Whether the section includes vendor `id`.
    pub fn contains(&self, id: u16) -> bool {
        match &self.encoding {
            VendorEncoding::Bitfield { ids } => ids.contains(id),
            VendorEncoding::Range { entries } => {
                entries.iter().any(|e| e.start <= id && id <= e.end)
            }
        }
    }

    /// All vendor ids in the section, ascending.
    pub fn vendor_ids(&self) -> Vec<u16> {
        match &self.encoding {
            VendorEncoding::Bitfield { ids } => ids.iter().collect(),
            VendorEncoding::Range { entries } => {
                let mut v: Vec<u16> = entries.iter().flat_map(|e| e.start..=e.end).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }
}

impl TcString {
    /// Decodes a TC string with the default (strict) options.
    ///
    /// ```
    /// use privseg::consent::signals::tcf::TcString;
    /// # let tc = privseg::consent::signals::tcf::TcString::example();
    /// # let s = tc.encode().unwrap();
    /// let tc = TcString::decode(&s)?;
    /// assert_eq!(tc.core.version, 2);
    /// assert_eq!(tc.encode()?, s);
    /// # Ok::<(), privseg::consent::signals::SignalError>(())
    /// ```
    pub fn decode(s: &str) -> SignalResult<Self> {
        let tc = Self::decode_structure(s)?;
        if let Some(v) = tc.violations(&TcfOptions::default()).into_iter().next() {
            return Err(v.into());
        }
        Ok(tc)
    }

    /// Decodes a TC string with the given options. In lenient mode the
    /// policy violations are returned with the result.
    pub fn decode_with(s: &str, opts: &TcfOptions) -> SignalResult<TcDecoded> {
        let tc = Self::decode_structure(s)?;
        let violations = tc.violations(opts);
        if opts.strict
            && let Some(v) = violations.first()
        {
            return Err(v.clone().into());
        }
        Ok(TcDecoded { tc, violations })
    }

    /// Decodes the structure of a TC string without any policy validation.
    pub fn decode_structure(s: &str) -> SignalResult<Self> {
        let mut parts = s.split('.');
        let core_str = parts.next().unwrap_or("");
        if core_str.is_empty() {
            return Err(SignalError::Empty {
                what: "TC string core segment",
            });
        }
        let core = decode_core(core_str)?;
        let mut segments: Vec<Segment> = Vec::new();
        for (i, part) in parts.enumerate() {
            let index = i + 1;
            if part.is_empty() {
                return Err(SignalError::Empty {
                    what: "TC string segment",
                });
            }
            let bits = Bits::from_base64url(part)?;
            let mut r = bits.reader();
            let t = r.read(3, "SegmentType")?;
            let seg = match t {
                1 => Segment::DisclosedVendors(read_vendor_section(&mut r, &V_DISCLOSED)?),
                2 => Segment::AllowedVendors(read_vendor_section(&mut r, &V_ALLOWED)?),
                3 => Segment::PublisherTc(decode_publisher_tc(&mut r)?),
                other => {
                    return Err(SignalError::UnsupportedVersion {
                        field: "SegmentType",
                        offset: 0,
                        found: other,
                    });
                }
            };
            if segments.iter().any(|x| x.type_id() == seg.type_id()) {
                return Err(SignalError::DuplicateSegment {
                    segment_type: seg.type_id(),
                    index,
                });
            }
            segments.push(seg);
        }
        Ok(Self { core, segments })
    }

    /// Encodes the string (byte padding, as the reference libraries do).
    pub fn encode(&self) -> SignalResult<String> {
        self.encode_with(Padding::Byte)
    }

    /// Encodes the string with the given padding.
    pub fn encode_with(&self, padding: Padding) -> SignalResult<String> {
        let mut out = encode_core(&self.core)?.to_base64url(padding);
        let mut seen = [false; 4];
        for seg in &self.segments {
            let t = seg.type_id();
            if seen[usize::from(t)] {
                return Err(SignalError::Encode {
                    field: "SegmentType",
                    reason: format!("segment type {t} appears twice"),
                });
            }
            seen[usize::from(t)] = true;
            let mut w = BitWriter::new();
            w.write(u64::from(t), 3, "SegmentType")?;
            match seg {
                Segment::DisclosedVendors(v) => {
                    write_vendor_section(&mut w, v, "DisclosedVendors")?
                }
                Segment::AllowedVendors(v) => write_vendor_section(&mut w, v, "AllowedVendors")?,
                Segment::PublisherTc(p) => encode_publisher_tc(&mut w, p)?,
            }
            out.push('.');
            out.push_str(&w.to_base64url(padding));
        }
        Ok(out)
    }

    /// The DisclosedVendors segment, if present.
    pub fn disclosed_vendors(&self) -> Option<&VendorSection> {
        self.segments.iter().find_map(|s| match s {
            Segment::DisclosedVendors(v) => Some(v),
            _ => None,
        })
    }

    /// The legacy AllowedVendors segment, if present.
    pub fn allowed_vendors(&self) -> Option<&VendorSection> {
        self.segments.iter().find_map(|s| match s {
            Segment::AllowedVendors(v) => Some(v),
            _ => None,
        })
    }

    /// The PublisherTC segment, if present.
    pub fn publisher_tc(&self) -> Option<&PublisherTc> {
        self.segments.iter().find_map(|s| match s {
            Segment::PublisherTc(p) => Some(p),
            _ => None,
        })
    }

    /// `Created` in whole seconds since the Unix epoch (UTC).
    pub fn created_unix_seconds(&self) -> i64 {
        (self.core.created / 10) as i64
    }

    /// `LastUpdated` in whole seconds since the Unix epoch (UTC).
    pub fn last_updated_unix_seconds(&self) -> i64 {
        (self.core.last_updated / 10) as i64
    }

    /// Policy rules broken by this string under the given options.
    ///
    /// * `TcfPolicyVersion` below `min_policy_version`;
    /// * policy version 4 and later (TCF v2.2): no legitimate interest for
    ///   purposes 3 to 6;
    /// * policy version 5 and later, or `enforce_v23` (TCF v2.3):
    ///   `IsServiceSpecific` must be 1, the DisclosedVendors segment must be
    ///   present, and no legitimate interest for purpose 1;
    /// * publisher restrictions must not use the undefined type 3;
    /// * range entries of a vendor section must not go above its
    ///   `MaxVendorId`, and no entry may overlap an earlier one of the same
    ///   section or publisher restriction (the reference libraries read
    ///   such strings, so the decoder does too: every id of every entry
    ///   counts). Their offsets are those of the entries in the string as
    ///   this crate writes it, which is the string decoded unless it wrote
    ///   a one-id entry as a range (`IsARange = 1`), a form this crate
    ///   writes as a single id.
    pub fn violations(&self, opts: &TcfOptions) -> Vec<Violation> {
        let c = &self.core;
        let mut out = Vec::new();
        if c.tcf_policy_version < opts.min_policy_version {
            out.push(Violation {
                field: "TcfPolicyVersion",
                offset: Some(OFFSET_POLICY_VERSION),
                reason: "policy version below the accepted minimum",
            });
        }
        let v23 = opts.enforce_v23 || c.tcf_policy_version >= 5;
        if v23 && !c.is_service_specific {
            out.push(Violation {
                field: "IsServiceSpecific",
                offset: Some(OFFSET_IS_SERVICE_SPECIFIC),
                reason: "TCF v2.3 requires IsServiceSpecific = 1",
            });
        }
        for p in c.purposes_li_transparency.iter() {
            if v23 && p == 1 {
                out.push(Violation {
                    field: "PurposesLITransparency",
                    offset: Some(OFFSET_PURPOSES_LI),
                    reason: "TCF v2.3 forbids legitimate interest for purpose 1",
                });
            }
            if (3..=6).contains(&p) && (v23 || c.tcf_policy_version >= 4) {
                out.push(Violation {
                    field: "PurposesLITransparency",
                    offset: Some(OFFSET_PURPOSES_LI + usize::from(p) - 1),
                    reason: "TCF v2.2+ forbids legitimate interest for purposes 3 to 6",
                });
            }
        }
        if v23 && self.disclosed_vendors().is_none() {
            out.push(Violation {
                field: "DisclosedVendors",
                offset: None,
                reason: "TCF v2.3 requires the DisclosedVendors segment",
            });
        }
        if c.publisher_restrictions
            .iter()
            .any(|p| p.restriction_type == RestrictionType::Undefined)
        {
            out.push(Violation {
                field: "PubRestrictionEntry.RestrictionType",
                offset: None,
                reason: "restriction type 3 is undefined",
            });
        }
        self.range_violations(&mut out);
        out
    }

    /// Range entries above `MaxVendorId` or overlapping an earlier entry,
    /// in string order (bit offsets within their segment).
    fn range_violations(&self, out: &mut Vec<Violation>) {
        let c = &self.core;
        let mut at = OFFSET_VENDOR_CONSENTS;
        section_violations(&c.vendor_consents, &V_CONSENT, at, out);
        at += section_bits(&c.vendor_consents);
        section_violations(&c.vendor_legitimate_interests, &V_LI, at, out);
        at += section_bits(&c.vendor_legitimate_interests) + 12;
        for p in &c.publisher_restrictions {
            // PurposeId(6), RestrictionType(2), NumEntries(12).
            range_violations(&p.entries, None, V_PUBRESTR.start, at + 20, out);
            at += 20 + p.entries.iter().map(entry_bits).sum::<usize>();
        }
        for seg in &self.segments {
            // Offsets within the segment, after its SegmentType(3).
            match seg {
                Segment::DisclosedVendors(v) => section_violations(v, &V_DISCLOSED, 3, out),
                Segment::AllowedVendors(v) => section_violations(v, &V_ALLOWED, 3, out),
                Segment::PublisherTc(_) => {}
            }
        }
    }

    /// JSON with the field names and shapes of the IAB reference libraries
    /// ([`super::json::TcfJson`]), violations under the default options.
    pub fn to_json(&self) -> SignalResult<String> {
        super::json::to_json(self)
    }

    /// Parses the JSON produced by [`TcString::to_json`].
    pub fn from_json(s: &str) -> SignalResult<Self> {
        super::json::from_json(s)
    }

    /// A small, valid TCF v2.3 example (used in documentation).
    pub fn example() -> Self {
        TcString {
            core: CoreSegment {
                version: 2,
                created: 17_000_000_000,
                last_updated: 17_000_000_000,
                cmp_id: 7,
                cmp_version: 1,
                consent_screen: 1,
                consent_language: "EN".into(),
                vendor_list_version: 100,
                tcf_policy_version: 5,
                is_service_specific: true,
                use_non_standard_texts: false,
                special_feature_opt_ins: IdSet::from_ids([1]),
                purposes_consent: IdSet::from_ids([1, 2, 3, 4]),
                purposes_li_transparency: IdSet::from_ids([2, 7]),
                purpose_one_treatment: false,
                publisher_cc: "DE".into(),
                vendor_consents: VendorSection {
                    max_vendor_id: 10,
                    encoding: VendorEncoding::Bitfield {
                        ids: VendorBits::from_ids([2, 10]),
                    },
                },
                vendor_legitimate_interests: VendorSection::empty(),
                publisher_restrictions: Vec::new(),
            },
            segments: vec![Segment::DisclosedVendors(VendorSection {
                max_vendor_id: 10,
                encoding: VendorEncoding::Range {
                    entries: vec![VendorRange { start: 1, end: 10 }],
                },
            })],
        }
    }
}

fn decode_core(s: &str) -> SignalResult<CoreSegment> {
    let bits = Bits::from_base64url(s)?;
    let mut r = bits.reader();
    let version = r.read(6, "Version")?;
    if version == 1 {
        return Err(SignalError::TcfV1Unsupported);
    }
    if version != 2 {
        return Err(SignalError::UnsupportedVersion {
            field: "Version",
            offset: 0,
            found: version,
        });
    }
    let created = r.read(36, "Created")?;
    let last_updated = r.read(36, "LastUpdated")?;
    let cmp_id = r.read(12, "CmpId")? as u16;
    let cmp_version = r.read(12, "CmpVersion")? as u16;
    let consent_screen = r.read(6, "ConsentScreen")? as u8;
    let consent_language = read_letters(&mut r, "ConsentLanguage")?;
    let vendor_list_version = r.read(12, "VendorListVersion")? as u16;
    let tcf_policy_version = r.read(6, "TcfPolicyVersion")? as u8;
    let is_service_specific = r.read_bool("IsServiceSpecific")?;
    let use_non_standard_texts = r.read_bool("UseNonStandardTexts")?;
    let special_feature_opt_ins = IdSet::read(&mut r, 12, "SpecialFeatureOptIns")?;
    let purposes_consent = IdSet::read(&mut r, 24, "PurposesConsent")?;
    let purposes_li_transparency = IdSet::read(&mut r, 24, "PurposesLITransparency")?;
    let purpose_one_treatment = r.read_bool("PurposeOneTreatment")?;
    let publisher_cc = read_letters(&mut r, "PublisherCC")?;
    let vendor_consents = read_vendor_section(&mut r, &V_CONSENT)?;
    let vendor_legitimate_interests = read_vendor_section(&mut r, &V_LI)?;
    let n = r.read(12, "NumPubRestrictions")? as usize;
    let mut publisher_restrictions = Vec::with_capacity(n.min(r.remaining() / 20 + 1));
    for _ in 0..n {
        let purpose_id = r.read(6, "PubRestrictionEntry.PurposeId")? as u8;
        let restriction_type =
            RestrictionType::from_bits(r.read(2, "PubRestrictionEntry.RestrictionType")?);
        let entries = read_ranges(&mut r, &V_PUBRESTR)?;
        publisher_restrictions.push(PublisherRestriction {
            purpose_id,
            restriction_type,
            entries,
        });
    }
    Ok(CoreSegment {
        version: version as u8,
        created,
        last_updated,
        cmp_id,
        cmp_version,
        consent_screen,
        consent_language,
        vendor_list_version,
        tcf_policy_version,
        is_service_specific,
        use_non_standard_texts,
        special_feature_opt_ins,
        purposes_consent,
        purposes_li_transparency,
        purpose_one_treatment,
        publisher_cc,
        vendor_consents,
        vendor_legitimate_interests,
        publisher_restrictions,
    })
}

fn encode_core(c: &CoreSegment) -> SignalResult<BitWriter> {
    let mut w = BitWriter::new();
    if c.version != 2 {
        return Err(SignalError::Encode {
            field: "Version",
            reason: format!("only version 2 is supported, got {}", c.version),
        });
    }
    w.write(u64::from(c.version), 6, "Version")?;
    w.write(c.created, 36, "Created")?;
    w.write(c.last_updated, 36, "LastUpdated")?;
    w.write(u64::from(c.cmp_id), 12, "CmpId")?;
    w.write(u64::from(c.cmp_version), 12, "CmpVersion")?;
    w.write(u64::from(c.consent_screen), 6, "ConsentScreen")?;
    write_letters(&mut w, &c.consent_language, "ConsentLanguage")?;
    w.write(u64::from(c.vendor_list_version), 12, "VendorListVersion")?;
    w.write(u64::from(c.tcf_policy_version), 6, "TcfPolicyVersion")?;
    w.write_bool(c.is_service_specific);
    w.write_bool(c.use_non_standard_texts);
    write_small_ids(
        &mut w,
        12,
        &c.special_feature_opt_ins,
        "SpecialFeatureOptIns",
    )?;
    write_small_ids(&mut w, 24, &c.purposes_consent, "PurposesConsent")?;
    write_small_ids(
        &mut w,
        24,
        &c.purposes_li_transparency,
        "PurposesLITransparency",
    )?;
    w.write_bool(c.purpose_one_treatment);
    write_letters(&mut w, &c.publisher_cc, "PublisherCC")?;
    write_vendor_section(&mut w, &c.vendor_consents, "VendorConsents")?;
    write_vendor_section(
        &mut w,
        &c.vendor_legitimate_interests,
        "VendorLegitimateInterests",
    )?;
    w.write(
        c.publisher_restrictions.len() as u64,
        12,
        "NumPubRestrictions",
    )?;
    for p in &c.publisher_restrictions {
        w.write(u64::from(p.purpose_id), 6, "PubRestrictionEntry.PurposeId")?;
        w.write(
            p.restriction_type.bits(),
            2,
            "PubRestrictionEntry.RestrictionType",
        )?;
        write_ranges(&mut w, &p.entries, "PubRestrictionEntry")?;
    }
    Ok(w)
}

fn decode_publisher_tc(r: &mut BitReader<'_>) -> SignalResult<PublisherTc> {
    let pub_purposes_consent = IdSet::read(r, 24, "PubPurposesConsent")?;
    let pub_purposes_li_transparency = IdSet::read(r, 24, "PubPurposesLITransparency")?;
    let n = r.read(6, "NumCustomPurposes")? as usize;
    let custom_purposes_consent = IdSet::read(r, n, "CustomPurposesConsent")?;
    let custom_purposes_li_transparency = IdSet::read(r, n, "CustomPurposesLITransparency")?;
    Ok(PublisherTc {
        pub_purposes_consent,
        pub_purposes_li_transparency,
        num_custom_purposes: n as u8,
        custom_purposes_consent,
        custom_purposes_li_transparency,
    })
}

fn encode_publisher_tc(w: &mut BitWriter, p: &PublisherTc) -> SignalResult<()> {
    write_small_ids(w, 24, &p.pub_purposes_consent, "PubPurposesConsent")?;
    write_small_ids(
        w,
        24,
        &p.pub_purposes_li_transparency,
        "PubPurposesLITransparency",
    )?;
    w.write(u64::from(p.num_custom_purposes), 6, "NumCustomPurposes")?;
    let n = usize::from(p.num_custom_purposes);
    write_small_ids(w, n, &p.custom_purposes_consent, "CustomPurposesConsent")?;
    write_small_ids(
        w,
        n,
        &p.custom_purposes_li_transparency,
        "CustomPurposesLITransparency",
    )
}
