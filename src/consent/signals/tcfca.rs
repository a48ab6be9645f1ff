//! GPP section 5, `tcfcav1` (the Canadian TCF), read and written from one
//! field table per segment.
//!
//! The segments and fields are those of iabgpp-es (`@iabgpp/cmpapi` 3.2.0,
//! `TcfCaV1CoreSegment`, `TcfCaV1PublisherPurposesSegment`,
//! `TcfCaV1DisclosedVendorsSegment`): a core segment, and optional
//! PublisherPurposes (`SegmentType` = 3) and DisclosedVendors
//! (`SegmentType` = 1) segments after `.`, in any order. Vendor lists are OptimizedRange
//! fields with Fibonacci-coded ranges: `MaxId` (16 bits), an encoding bit,
//! then a bitfield of `MaxId` bits or a Fibonacci range list.
//!
//! Differences from iabgpp-es, each the safer reading:
//! * a version other than 1, a language letter outside A-Z, an empty or
//!   repeated segment and a publisher restriction list cut short are
//!   errors (iabgpp-es reads them, the last as no restrictions at all);
//! * ids above `MaxId` in a range-coded list are read, as iabgpp-es reads
//!   them, and reported as violations.

use serde_json::{Map, Value, json};

use super::bits::{BitReader, BitWriter, Bits, Padding};
use super::error::{SignalError, SignalResult};
use super::json::{JsonFields, deciseconds_to_iso, iso_to_deciseconds};
use super::tcf::{ABOVE_MAX_REASON, Violation};

/// The kind of one `tcfcav1` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaKind {
    /// Int(n).
    Int(u8),
    /// Boolean.
    Bool,
    /// Datetime: 36-bit deciseconds since the epoch.
    Time,
    /// Two letters, 6 bits each (A = 0 ... Z = 25).
    Lang,
    /// A fixed bitfield of n bits.
    Bits(u8),
    /// A bitfield of `NumCustomPurposes` bits.
    Flex,
    /// An OptimizedRange vendor list (Fibonacci-coded ranges).
    Vendors,
    /// The publisher restrictions: Int(12) count, then per entry a purpose
    /// Int(6), a type Int(2) and an OptimizedRange vendor list.
    Restrictions,
}

/// A field: its iabgpp name and kind.
pub type CaField = (&'static str, CaKind);

/// Core segment fields in string order.
pub const CORE: &[CaField] = &[
    ("Version", CaKind::Int(6)),
    ("Created", CaKind::Time),
    ("LastUpdated", CaKind::Time),
    ("CmpId", CaKind::Int(12)),
    ("CmpVersion", CaKind::Int(12)),
    ("ConsentScreen", CaKind::Int(6)),
    ("ConsentLanguage", CaKind::Lang),
    ("VendorListVersion", CaKind::Int(12)),
    ("TcfPolicyVersion", CaKind::Int(6)),
    ("UseNonStandardStacks", CaKind::Bool),
    ("SpecialFeatureExpressConsent", CaKind::Bits(12)),
    ("PurposesExpressConsent", CaKind::Bits(24)),
    ("PurposesImpliedConsent", CaKind::Bits(24)),
    ("VendorExpressConsent", CaKind::Vendors),
    ("VendorImpliedConsent", CaKind::Vendors),
    ("PubRestrictions", CaKind::Restrictions),
];

/// PublisherPurposes segment fields after its `SegmentType` (3 bits, 3).
pub const PUBLISHER: &[CaField] = &[
    ("PubPurposesExpressConsent", CaKind::Bits(24)),
    ("PubPurposesImpliedConsent", CaKind::Bits(24)),
    ("NumCustomPurposes", CaKind::Int(6)),
    ("CustomPurposesExpressConsent", CaKind::Flex),
    ("CustomPurposesImpliedConsent", CaKind::Flex),
];

/// DisclosedVendors segment fields after its `SegmentType` (3 bits, 1).
pub const DISCLOSED: &[CaField] = &[("DisclosedVendors", CaKind::Vendors)];

/// An OptimizedRange vendor list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaVendors {
    /// `MaxId` as written.
    pub max_id: u16,
    /// Range (Fibonacci) coded rather than a bitfield.
    pub range: bool,
    /// The ids, ascending and distinct.
    pub ids: Vec<u16>,
}

impl CaVendors {
    /// The list as iabgpp-es writes it: `MaxId` the largest id, range coded
    /// when that is no longer than the bitfield.
    pub fn optimized(mut ids: Vec<u16>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        let max_id = ids.last().copied().unwrap_or(0);
        let range = fib_range_bits(&ids) <= usize::from(max_id);
        Self { max_id, range, ids }
    }
}

/// One publisher restriction: purpose, type and vendors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaRestriction {
    /// Purpose id, Int(6).
    pub key: u8,
    /// Restriction type, Int(2).
    pub kind: u8,
    /// The vendors.
    pub vendors: CaVendors,
}

/// A field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaValue {
    /// Int(n).
    Int(u64),
    /// Boolean.
    Bool(bool),
    /// Deciseconds since the epoch.
    Time(u64),
    /// Two upper-case letters.
    Lang(String),
    /// A bitfield; index 0 is id 1.
    Bits(Vec<bool>),
    /// A vendor list.
    Vendors(CaVendors),
    /// Publisher restrictions in string order.
    Restrictions(Vec<CaRestriction>),
}

/// A decoded `tcfcav1` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcfCaV1 {
    /// Core segment values, one per [`CORE`] field.
    pub core: Vec<CaValue>,
    /// PublisherPurposes values, one per [`PUBLISHER`] field, when present.
    pub publisher: Option<Vec<CaValue>>,
    /// DisclosedVendors values, one per [`DISCLOSED`] field, when present.
    pub disclosed: Option<Vec<CaValue>>,
    /// Segment types in string order (0 = core, 1 = DisclosedVendors, 3 =
    /// PublisherPurposes).
    pub order: Vec<u8>,
}

fn fib_bits(v: u64) -> usize {
    let (mut a, mut b, mut n) = (1u64, 2u64, 1usize);
    while b <= v {
        (a, b) = (b, a + b);
        n += 1;
    }
    let _ = a;
    n + 1
}

fn runs(ids: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some(r) if u32::from(r.1) + 1 == u32::from(id) => r.1 = id,
            _ => out.push((id, id)),
        }
    }
    out
}

/// Bits of the Fibonacci range form of ascending ids (count included).
fn fib_range_bits(ids: &[u16]) -> usize {
    let mut last = 0u64;
    let mut n = 12;
    for (a, b) in runs(ids) {
        n += 1 + fib_bits(u64::from(a) - last);
        if a != b {
            n += fib_bits(u64::from(b - a));
        }
        last = u64::from(b);
    }
    n
}

fn bad(field: &'static str, offset: usize, value: u64, reason: &'static str) -> SignalError {
    SignalError::InvalidValue {
        field,
        offset,
        value,
        reason,
    }
}

fn read_vendors(r: &mut BitReader<'_>, field: &'static str) -> SignalResult<CaVendors> {
    let max_id = r.read(16, field)? as u16;
    let range = r.read_bool(field)?;
    let mut ids = Vec::new();
    if range {
        let n = r.read(12, field)?;
        let mut last = 0u64;
        for _ in 0..n {
            let offset = r.pos();
            let is_range = r.read_bool(field)?;
            let start = last + r.read_fibonacci(field)?;
            let end = if is_range {
                start + r.read_fibonacci(field)?
            } else {
                start
            };
            if end > u64::from(u16::MAX) {
                return Err(bad(field, offset, end, "vendor id above 65535"));
            }
            ids.extend(start as u16..=end as u16);
            last = end;
        }
    } else {
        ids = r.read_id_bitfield(usize::from(max_id), field)?;
    }
    Ok(CaVendors { max_id, range, ids })
}

fn write_vendors(w: &mut BitWriter, v: &CaVendors, field: &'static str) -> SignalResult<()> {
    if v.ids.windows(2).any(|p| p[0] >= p[1]) || v.ids.first() == Some(&0) {
        return Err(SignalError::Encode {
            field,
            reason: "vendor ids must be ascending, distinct and at least 1".into(),
        });
    }
    w.write(u64::from(v.max_id), 16, field)?;
    w.write_bool(v.range);
    if v.range {
        let rs = runs(&v.ids);
        w.write(rs.len() as u64, 12, field)?;
        let mut last = 0u64;
        for (a, b) in rs {
            w.write_bool(a != b);
            w.write_fibonacci(u64::from(a) - last, field)?;
            if a != b {
                w.write_fibonacci(u64::from(b - a), field)?;
            }
            last = u64::from(b);
        }
        Ok(())
    } else {
        if v.ids.last().is_some_and(|&m| m > v.max_id) {
            return Err(SignalError::Encode {
                field,
                reason: format!(
                    "a bitfield of {} bits cannot hold id {:?}",
                    v.max_id,
                    v.ids.last()
                ),
            });
        }
        w.write_id_bitfield(usize::from(v.max_id), v.ids.iter().copied(), field)
    }
}

fn read_value(
    r: &mut BitReader<'_>,
    (name, kind): CaField,
    num_custom: u64,
) -> SignalResult<CaValue> {
    Ok(match kind {
        CaKind::Int(n) => CaValue::Int(r.read(usize::from(n), name)?),
        CaKind::Bool => CaValue::Bool(r.read_bool(name)?),
        CaKind::Time => CaValue::Time(r.read(36, name)?),
        CaKind::Lang => {
            let mut s = String::new();
            for _ in 0..2 {
                let offset = r.pos();
                let v = r.read(6, name)?;
                if v > 25 {
                    return Err(bad(name, offset, v, "letter must be 0 (A) to 25 (Z)"));
                }
                s.push(char::from(b'A' + v as u8));
            }
            CaValue::Lang(s)
        }
        CaKind::Bits(n) => CaValue::Bits(read_bools(r, usize::from(n), name)?),
        CaKind::Flex => CaValue::Bits(read_bools(r, num_custom as usize, name)?),
        CaKind::Vendors => CaValue::Vendors(read_vendors(r, name)?),
        CaKind::Restrictions => {
            // iabgpp-es reads a core segment that ends before this field
            // as one without restrictions.
            if r.remaining() < 12 {
                return Ok(CaValue::Restrictions(Vec::new()));
            }
            let n = r.read(12, name)?;
            let mut out = Vec::new();
            for _ in 0..n {
                let key = r.read(6, name)? as u8;
                let kind = r.read(2, name)? as u8;
                let vendors = read_vendors(r, name)?;
                out.push(CaRestriction { key, kind, vendors });
            }
            CaValue::Restrictions(out)
        }
    })
}

fn read_bools(r: &mut BitReader<'_>, n: usize, name: &'static str) -> SignalResult<Vec<bool>> {
    let mut v = vec![false; n];
    for id in r.read_id_bitfield(n, name)? {
        v[usize::from(id) - 1] = true;
    }
    Ok(v)
}

fn write_value(w: &mut BitWriter, (name, kind): CaField, v: &CaValue) -> SignalResult<()> {
    let mismatch = || SignalError::Encode {
        field: name,
        reason: format!("{v:?} is not a value of kind {kind:?}"),
    };
    match (kind, v) {
        (CaKind::Int(n), CaValue::Int(x)) => w.write(*x, usize::from(n), name),
        (CaKind::Bool, CaValue::Bool(b)) => {
            w.write_bool(*b);
            Ok(())
        }
        (CaKind::Time, CaValue::Time(t)) => w.write(*t, 36, name),
        (CaKind::Lang, CaValue::Lang(s)) => {
            let b = s.as_bytes();
            if b.len() != 2 || !b.iter().all(u8::is_ascii_uppercase) {
                return Err(SignalError::Encode {
                    field: name,
                    reason: format!("expected two upper-case letters A-Z, got {s:?}"),
                });
            }
            for c in b {
                w.write(u64::from(c - b'A'), 6, name)?;
            }
            Ok(())
        }
        (CaKind::Bits(n), CaValue::Bits(bits)) if bits.len() == usize::from(n) => {
            bits.iter().for_each(|&b| w.write_bool(b));
            Ok(())
        }
        (CaKind::Flex, CaValue::Bits(bits)) => {
            bits.iter().for_each(|&b| w.write_bool(b));
            Ok(())
        }
        (CaKind::Vendors, CaValue::Vendors(list)) => write_vendors(w, list, name),
        (CaKind::Restrictions, CaValue::Restrictions(list)) => {
            w.write(list.len() as u64, 12, name)?;
            for e in list {
                w.write(u64::from(e.key), 6, name)?;
                w.write(u64::from(e.kind), 2, name)?;
                write_vendors(w, &e.vendors, name)?;
            }
            Ok(())
        }
        _ => Err(mismatch()),
    }
}

fn num_custom(values: &[CaValue]) -> u64 {
    match values.get(2) {
        Some(CaValue::Int(n)) => *n,
        _ => 0,
    }
}

fn defaults(fields: &[CaField]) -> Vec<CaValue> {
    fields
        .iter()
        .map(|&(name, kind)| match kind {
            CaKind::Int(_) if name == "Version" => CaValue::Int(1),
            CaKind::Int(_) if name == "TcfPolicyVersion" => CaValue::Int(2),
            CaKind::Int(_) => CaValue::Int(0),
            CaKind::Bool => CaValue::Bool(false),
            CaKind::Time => CaValue::Time(0),
            CaKind::Lang => CaValue::Lang("EN".into()),
            CaKind::Bits(n) => CaValue::Bits(vec![false; usize::from(n)]),
            CaKind::Flex => CaValue::Bits(Vec::new()),
            CaKind::Vendors => CaValue::Vendors(CaVendors::optimized(Vec::new())),
            CaKind::Restrictions => CaValue::Restrictions(Vec::new()),
        })
        .collect()
}

impl Default for TcfCaV1 {
    fn default() -> Self {
        Self::new()
    }
}

impl TcfCaV1 {
    /// A section with iabgpp-es's defaults (times at the epoch) and the
    /// segments it writes: core and PublisherPurposes.
    pub fn new() -> Self {
        Self {
            core: defaults(CORE),
            publisher: Some(defaults(PUBLISHER)),
            disclosed: None,
            order: vec![0, 3],
        }
    }

    /// Decodes a `tcfcav1` section.
    ///
    /// ```
    /// use privseg::consent::signals::tcfca::{CaValue, CaVendors, TcfCaV1};
    /// let mut t = TcfCaV1::new();
    /// t.set("VendorExpressConsent", CaValue::Vendors(CaVendors::optimized(vec![2, 3, 4, 90])))?;
    /// let s = t.encode()?;
    /// assert_eq!(TcfCaV1::decode(&s)?, t);
    /// # Ok::<(), privseg::consent::signals::SignalError>(())
    /// ```
    pub fn decode(s: &str) -> SignalResult<Self> {
        let mut out = Self {
            core: Vec::new(),
            publisher: None,
            disclosed: None,
            order: Vec::new(),
        };
        for part in s.split('.') {
            if part.is_empty() {
                return Err(SignalError::Empty {
                    what: "tcfcav1 segment",
                });
            }
            let bits = Bits::from_base64url(part)?;
            let mut r = bits.reader();
            let t = bits.reader().read(3, "SegmentType")? as u8;
            if out.order.contains(&t) {
                return Err(SignalError::DuplicateSegment {
                    segment_type: t,
                    index: out.order.len(),
                });
            }
            match t {
                0 => {
                    let mut values = Vec::with_capacity(CORE.len());
                    for &f in CORE {
                        values.push(read_value(&mut r, f, 0)?);
                    }
                    if values[0] != CaValue::Int(1) {
                        let CaValue::Int(found) = values[0] else {
                            unreachable!("Version is an Int")
                        };
                        return Err(SignalError::UnsupportedVersion {
                            field: "Version",
                            offset: 0,
                            found,
                        });
                    }
                    out.core = values;
                }
                1 | 3 => {
                    r.read(3, "SegmentType")?;
                    let fields = if t == 1 { DISCLOSED } else { PUBLISHER };
                    let mut values: Vec<CaValue> = Vec::with_capacity(fields.len());
                    for &f in fields {
                        let n = num_custom(&values);
                        values.push(read_value(&mut r, f, n)?);
                    }
                    if t == 1 {
                        out.disclosed = Some(values);
                    } else {
                        out.publisher = Some(values);
                    }
                }
                other => {
                    return Err(SignalError::UnsupportedVersion {
                        field: "SegmentType",
                        offset: 0,
                        found: u64::from(other),
                    });
                }
            }
            out.order.push(t);
        }
        if out.core.is_empty() {
            return Err(SignalError::Empty {
                what: "tcfcav1 core segment",
            });
        }
        Ok(out)
    }

    /// Encodes with byte padding (the reference libraries' form).
    pub fn encode(&self) -> SignalResult<String> {
        self.encode_with(Padding::Byte)
    }

    /// Encodes the segments in [`TcfCaV1::order`].
    pub fn encode_with(&self, padding: Padding) -> SignalResult<String> {
        let mut parts = Vec::new();
        let mut seen = Vec::new();
        for &t in &self.order {
            if seen.contains(&t) {
                return Err(SignalError::Encode {
                    field: "SegmentType",
                    reason: format!("segment type {t} appears twice"),
                });
            }
            seen.push(t);
            let mut w = BitWriter::new();
            let (fields, values) = match t {
                0 => (CORE, Some(&self.core)),
                1 => (DISCLOSED, self.disclosed.as_ref()),
                3 => (PUBLISHER, self.publisher.as_ref()),
                _ => (CORE, None),
            };
            let values = values.ok_or_else(|| SignalError::Encode {
                field: "SegmentType",
                reason: format!("segment type {t} is listed but has no values"),
            })?;
            if values.len() != fields.len() {
                return Err(SignalError::Encode {
                    field: "SegmentType",
                    reason: format!("segment type {t} needs {} values", fields.len()),
                });
            }
            if t != 0 {
                w.write(u64::from(t), 3, "SegmentType")?;
            } else if values[0] != CaValue::Int(1) {
                return Err(SignalError::Encode {
                    field: "Version",
                    reason: "tcfcav1 has version 1 only".into(),
                });
            }
            if t == 3
                && let Some(CaValue::Bits(b)) = values.get(3)
                && let Some(CaValue::Bits(c)) = values.get(4)
            {
                let n = num_custom(values) as usize;
                if b.len() != n || c.len() != n {
                    return Err(SignalError::Encode {
                        field: "NumCustomPurposes",
                        reason: format!("the custom purpose bitfields need {n} entries"),
                    });
                }
            }
            for (&f, v) in fields.iter().zip(values) {
                write_value(&mut w, f, v)?;
            }
            parts.push(w.to_base64url(padding));
        }
        if !seen.contains(&0) {
            return Err(SignalError::Encode {
                field: "SegmentType",
                reason: "the core segment is missing".into(),
            });
        }
        Ok(parts.join("."))
    }

    fn slot(&mut self, name: &str) -> Option<(CaField, &mut CaValue)> {
        if let Some(i) = CORE.iter().position(|f| f.0 == name) {
            return Some((CORE[i], &mut self.core[i]));
        }
        if let Some(i) = PUBLISHER.iter().position(|f| f.0 == name) {
            let p = self.publisher.get_or_insert_with(|| defaults(PUBLISHER));
            return Some((PUBLISHER[i], &mut p[i]));
        }
        if let Some(i) = DISCLOSED.iter().position(|f| f.0 == name) {
            let d = self.disclosed.get_or_insert_with(|| defaults(DISCLOSED));
            return Some((DISCLOSED[i], &mut d[i]));
        }
        None
    }

    /// Sets a field by its iabgpp name; setting a field of an absent
    /// optional segment adds that segment (at the end of the order).
    pub fn set(&mut self, name: &str, v: CaValue) -> SignalResult<()> {
        let (had_pub, had_disc) = (self.publisher.is_some(), self.disclosed.is_some());
        let Some((field, slot)) = self.slot(name) else {
            return Err(SignalError::Encode {
                field: "tcfcav1",
                reason: format!("no field {name:?}"),
            });
        };
        // Check the kind by writing the value alone.
        write_value(&mut BitWriter::new(), field, &v)?;
        *slot = v;
        if !had_pub && self.publisher.is_some() {
            self.order.push(3);
        }
        if !had_disc && self.disclosed.is_some() {
            self.order.push(1);
        }
        Ok(())
    }

    /// The value of a field by its iabgpp name (`None` for a field of an
    /// absent segment).
    pub fn get(&self, name: &str) -> Option<&CaValue> {
        fn find<'a>(
            name: &str,
            fields: &[CaField],
            values: Option<&'a Vec<CaValue>>,
        ) -> Option<&'a CaValue> {
            let i = fields.iter().position(|f| f.0 == name)?;
            values?.get(i)
        }
        find(name, CORE, Some(&self.core))
            .or_else(|| find(name, PUBLISHER, self.publisher.as_ref()))
            .or_else(|| find(name, DISCLOSED, self.disclosed.as_ref()))
    }

    /// Range-coded vendor lists with ids above their `MaxId` (read as
    /// iabgpp-es reads them), at the bit offset of that `MaxId` in its
    /// segment.
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = Vec::new();
        let mut scan = |fields: &[CaField], values: &[CaValue], mut at: usize| {
            for (&(name, kind), v) in fields.iter().zip(values) {
                let check = |list: &CaVendors, at: usize, out: &mut Vec<Violation>| {
                    if list.range && list.ids.last().is_some_and(|&m| m > list.max_id) {
                        out.push(Violation {
                            field: name,
                            offset: Some(at),
                            reason: ABOVE_MAX_REASON,
                        });
                    }
                };
                match v {
                    CaValue::Vendors(list) => check(list, at, &mut out),
                    CaValue::Restrictions(list) => {
                        let mut p = at + 12;
                        for e in list {
                            check(&e.vendors, p + 8, &mut out);
                            p += 8 + vendors_bits(&e.vendors);
                        }
                    }
                    _ => {}
                }
                at += value_bits(kind, v);
            }
        };
        scan(CORE, &self.core, 0);
        if let Some(p) = &self.publisher {
            scan(PUBLISHER, p, 3);
        }
        if let Some(d) = &self.disclosed {
            scan(DISCLOSED, d, 3);
        }
        out
    }

    /// The JSON object: every field of the three segments (an absent
    /// segment's with iabgpp-es's defaults, as its `toObject` shows them)
    /// under iabgpp's names with the first letter in lower case; bitfields
    /// as arrays of booleans, vendor lists as ascending ids, times as ISO
    /// 8601, `pubRestrictions` as `[{"key", "type", "ids"}]`; then
    /// `encoding` (the segments in string order and each vendor list's
    /// `{"type": "bitfield" | "range", "maxVendorId"}`, an array of them for
    /// `pubRestrictions`) and `violations`.
    pub fn to_json_value(&self) -> Value {
        self.to_json_fields().into()
    }

    /// [`TcfCaV1::to_json_value`] with its fields in string order.
    pub fn to_json_fields(&self) -> JsonFields {
        let mut m = JsonFields::default();
        let mut enc = Map::new();
        let pub_default = defaults(PUBLISHER);
        let disc_default = defaults(DISCLOSED);
        let groups: [(&[CaField], &Vec<CaValue>); 3] = [
            (CORE, &self.core),
            (PUBLISHER, self.publisher.as_ref().unwrap_or(&pub_default)),
            (DISCLOSED, self.disclosed.as_ref().unwrap_or(&disc_default)),
        ];
        for (fields, values) in groups {
            for (&(name, _), v) in fields.iter().zip(values) {
                let key = lower_first(name);
                let j = match v {
                    CaValue::Int(x) => json!(x),
                    CaValue::Bool(b) => json!(b),
                    CaValue::Time(t) => json!(deciseconds_to_iso(*t)),
                    CaValue::Lang(s) => json!(s),
                    CaValue::Bits(b) => json!(b),
                    CaValue::Vendors(l) => {
                        enc.insert(key.clone(), vendors_encoding(l));
                        json!(l.ids)
                    }
                    CaValue::Restrictions(list) => {
                        let encodings = list.iter().map(|e| vendors_encoding(&e.vendors)).collect();
                        enc.insert(key.clone(), Value::Array(encodings));
                        Value::Array(
                            list.iter()
                                .map(
                                    |e| json!({"key": e.key, "type": e.kind, "ids": e.vendors.ids}),
                                )
                                .collect(),
                        )
                    }
                };
                m.push(key, j);
            }
        }
        let names: Vec<&str> = self
            .order
            .iter()
            .map(|t| match t {
                0 => "core",
                1 => "disclosedVendors",
                _ => "publisherPurposes",
            })
            .collect();
        enc.insert("segments".into(), json!(names));
        m.push("encoding", Value::Object(enc));
        let v: Vec<Value> = self
            .violations()
            .into_iter()
            .map(|v| json!({"field": v.field, "offset": v.offset, "reason": v.reason}))
            .collect();
        m.push("violations", Value::Array(v));
        m
    }

    /// Reads the JSON of [`TcfCaV1::to_json_value`]. The core fields are
    /// required, the others default as in iabgpp-es; `encoding` and each of
    /// its parts are optional: without it the segments are those iabgpp-es
    /// writes (core, PublisherPurposes, and DisclosedVendors when it lists
    /// a vendor) and each vendor list is written as iabgpp-es writes it
    /// ([`CaVendors::optimized`]). `violations` is ignored; any other name
    /// is refused.
    pub fn from_json_value(v: &Value) -> SignalResult<Self> {
        let err = json_error;
        let obj = v
            .as_object()
            .ok_or_else(|| err("expected an object".into()))?;
        let enc = json_encoding(obj)?;
        let mut known = vec!["encoding".to_string(), "violations".to_string()];
        let mut read_group =
            |fields: &[CaField], required: bool| -> SignalResult<(Vec<CaValue>, bool)> {
                let mut values: Vec<CaValue> = defaults(fields);
                let mut any = false;
                for (i, &(name, kind)) in fields.iter().enumerate() {
                    let key = lower_first(name);
                    known.push(key.clone());
                    let Some(x) = obj.get(&key) else {
                        if required {
                            return Err(err(format!("missing field {key:?}")));
                        }
                        continue;
                    };
                    any = true;
                    values[i] = json_value(name, &key, kind, x, enc.get(&key))?;
                }
                Ok((values, any))
            };
        let (core, _) = read_group(CORE, true)?;
        let (publisher, _) = read_group(PUBLISHER, false)?;
        let (disclosed, _) = read_group(DISCLOSED, false)?;
        if let Some(k) = obj.keys().find(|k| !known.contains(k)) {
            return Err(err(format!("unknown field {k:?}")));
        }
        let order = json_segment_order(&enc, &disclosed)?;
        check_segments_written(&order, &publisher, &disclosed)?;
        Ok(Self {
            core,
            publisher: order.contains(&3).then_some(publisher),
            disclosed: order.contains(&1).then_some(disclosed),
            order,
        })
    }
}

/// An error in the JSON form of the TCF Canada section.
fn json_error(what: String) -> SignalError {
    SignalError::Json(format!("sections.tcfcav1: {what}"))
}

/// The optional `encoding` object, with only the names it may hold.
fn json_encoding(obj: &Map<String, Value>) -> SignalResult<Map<String, Value>> {
    let err = json_error;
    let enc = match obj.get("encoding") {
        None => Map::new(),
        Some(Value::Object(e)) => e.clone(),
        Some(_) => return Err(err("encoding: expected an object".into())),
    };
    let enc_keys = [
        "segments",
        "vendorExpressConsent",
        "vendorImpliedConsent",
        "pubRestrictions",
        "disclosedVendors",
    ];
    if let Some(k) = enc.keys().find(|k| !enc_keys.contains(&k.as_str())) {
        return Err(err(format!("encoding: unknown field {k:?}")));
    }
    Ok(enc)
}

/// The segment types in the order `encoding.segments` gives, or as
/// iabgpp-es writes them (core, PublisherPurposes, and DisclosedVendors when
/// it lists a vendor).
fn json_segment_order(enc: &Map<String, Value>, disclosed: &[CaValue]) -> SignalResult<Vec<u8>> {
    let err = json_error;
    Ok(match enc.get("segments") {
        Some(list) => list
            .as_array()
            .ok_or_else(|| err("encoding.segments: expected an array".into()))?
            .iter()
            .map(|s| match s.as_str() {
                Some("core") => Ok(0),
                Some("disclosedVendors") => Ok(1),
                Some("publisherPurposes") => Ok(3),
                _ => Err(err(format!(
                    "encoding.segments: {s} is not core, publisherPurposes or disclosedVendors"
                ))),
            })
            .collect::<SignalResult<_>>()?,
        None => {
            let has_disclosed = matches!(&disclosed[0], CaValue::Vendors(l) if !l.ids.is_empty());
            if has_disclosed {
                vec![0, 3, 1]
            } else {
                vec![0, 3]
            }
        }
    })
}

/// Refuses a segment order that leaves out a segment whose fields are set
/// (they would be lost).
fn check_segments_written(
    order: &[u8],
    publisher: &[CaValue],
    disclosed: &[CaValue],
) -> SignalResult<()> {
    for (t, values) in [(3u8, publisher), (1, disclosed)] {
        if !order.contains(&t) && *values != defaults(if t == 3 { PUBLISHER } else { DISCLOSED }) {
            return Err(json_error(format!(
                "encoding.segments leaves out the {} segment, whose fields are set",
                if t == 3 {
                    "publisherPurposes"
                } else {
                    "disclosedVendors"
                }
            )));
        }
    }
    Ok(())
}

fn lower_first(name: &str) -> String {
    let mut c = name.chars();
    match c.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn vendors_bits(l: &CaVendors) -> usize {
    17 + if l.range {
        fib_range_bits(&l.ids)
    } else {
        usize::from(l.max_id)
    }
}

fn value_bits(kind: CaKind, v: &CaValue) -> usize {
    match (kind, v) {
        (CaKind::Int(n), _) => usize::from(n),
        (CaKind::Bool, _) => 1,
        (CaKind::Time, _) => 36,
        (CaKind::Lang, _) => 12,
        (_, CaValue::Bits(b)) => b.len(),
        (_, CaValue::Vendors(l)) => vendors_bits(l),
        (_, CaValue::Restrictions(list)) => {
            12 + list
                .iter()
                .map(|e| 8 + vendors_bits(&e.vendors))
                .sum::<usize>()
        }
        _ => 0,
    }
}

fn vendors_encoding(l: &CaVendors) -> Value {
    json!({"type": if l.range { "range" } else { "bitfield" }, "maxVendorId": l.max_id})
}

fn json_ids(key: &str, x: &Value) -> SignalResult<Vec<u16>> {
    let list = x
        .as_array()
        .ok_or_else(|| SignalError::Json(format!("tcfcav1.{key}: expected an array of ids")))?;
    let mut ids = Vec::with_capacity(list.len());
    for e in list {
        let id = e
            .as_u64()
            .filter(|&i| (1..=65535).contains(&i))
            .ok_or_else(|| SignalError::Json(format!("tcfcav1.{key}: ids are 1 to 65535")))?;
        ids.push(id as u16);
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

fn json_vendors(key: &str, x: &Value, enc: Option<&Value>) -> SignalResult<CaVendors> {
    let ids = json_ids(key, x)?;
    let mut l = CaVendors::optimized(ids);
    if let Some(e) = enc {
        match e.get("type").and_then(Value::as_str) {
            Some("range") => l.range = true,
            Some("bitfield") => l.range = false,
            None => {}
            Some(other) => {
                return Err(SignalError::Json(format!(
                    "tcfcav1.encoding.{key}.type: {other:?} is not bitfield or range"
                )));
            }
        }
        if let Some(m) = e.get("maxVendorId") {
            let m = m.as_u64().filter(|&m| m <= 65535).ok_or_else(|| {
                SignalError::Json(format!("tcfcav1.encoding.{key}.maxVendorId: 0 to 65535"))
            })?;
            l.max_id = m as u16;
        }
    }
    Ok(l)
}

fn json_value(
    name: &'static str,
    key: &str,
    kind: CaKind,
    x: &Value,
    enc: Option<&Value>,
) -> SignalResult<CaValue> {
    let err = |what: &str| SignalError::Json(format!("sections.tcfcav1.{key}: {what}"));
    Ok(match kind {
        CaKind::Int(n) => CaValue::Int(
            x.as_u64()
                .filter(|&v| v >> n == 0)
                .ok_or_else(|| err(&format!("expected a number that fits in {n} bits")))?,
        ),
        CaKind::Bool => CaValue::Bool(x.as_bool().ok_or_else(|| err("expected true or false"))?),
        CaKind::Time => CaValue::Time(iso_to_deciseconds(
            x.as_str().ok_or_else(|| err("expected an ISO 8601 time"))?,
            name,
        )?),
        CaKind::Lang => CaValue::Lang(
            x.as_str()
                .ok_or_else(|| err("expected two letters"))?
                .to_string(),
        ),
        CaKind::Bits(_) | CaKind::Flex => CaValue::Bits(
            x.as_array()
                .ok_or_else(|| err("expected an array of booleans"))?
                .iter()
                .map(|b| {
                    b.as_bool()
                        .ok_or_else(|| err("expected an array of booleans"))
                })
                .collect::<SignalResult<_>>()?,
        ),
        CaKind::Vendors => CaValue::Vendors(json_vendors(key, x, enc)?),
        CaKind::Restrictions => CaValue::Restrictions(
            x.as_array()
                .ok_or_else(|| err("expected an array of {key, type, ids}"))?
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let num = |k: &str, bits: u32| {
                        e.get(k)
                            .and_then(Value::as_u64)
                            .filter(|&v| v >> bits == 0)
                            .map(|v| v as u8)
                            .ok_or_else(|| err(&format!("{k}: expected a {bits}-bit number")))
                    };
                    if let Some(k) = e.as_object().and_then(|o| {
                        o.keys()
                            .find(|k| !["key", "type", "ids"].contains(&k.as_str()))
                    }) {
                        return Err(err(&format!("unknown field {k:?}")));
                    }
                    let ids = e.get("ids").ok_or_else(|| err("missing ids"))?;
                    Ok(CaRestriction {
                        key: num("key", 6)?,
                        kind: num("type", 2)?,
                        vendors: json_vendors(key, ids, enc.and_then(|a| a.get(i)))?,
                    })
                })
                .collect::<SignalResult<_>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fibonacci_range_sizes_match_the_writer() {
        for ids in [
            vec![],
            vec![1],
            vec![1, 2, 3, 10],
            vec![5, 6, 100, 101, 102, 4000],
        ] {
            let l = CaVendors {
                max_id: 0,
                range: true,
                ids: ids.clone(),
            };
            let mut w = BitWriter::new();
            write_vendors(&mut w, &l, "v").unwrap();
            assert_eq!(w.len(), vendors_bits(&l), "{ids:?}");
        }
    }

    #[test]
    fn round_trip_with_every_segment_in_any_order() {
        let mut t = TcfCaV1::new();
        t.set("CmpId", CaValue::Int(300)).unwrap();
        t.set("Created", CaValue::Time(17_000_000_000)).unwrap();
        t.set(
            "VendorImpliedConsent",
            CaValue::Vendors(CaVendors {
                max_id: 40,
                range: false,
                ids: vec![1, 40],
            }),
        )
        .unwrap();
        t.set(
            "PubRestrictions",
            CaValue::Restrictions(vec![CaRestriction {
                key: 3,
                kind: 1,
                vendors: CaVendors::optimized(vec![7, 8, 9]),
            }]),
        )
        .unwrap();
        t.set("NumCustomPurposes", CaValue::Int(2)).unwrap();
        t.set(
            "CustomPurposesExpressConsent",
            CaValue::Bits(vec![true, false]),
        )
        .unwrap();
        t.set(
            "CustomPurposesImpliedConsent",
            CaValue::Bits(vec![false, true]),
        )
        .unwrap();
        t.set(
            "DisclosedVendors",
            CaValue::Vendors(CaVendors::optimized(vec![9])),
        )
        .unwrap();
        t.order = vec![1, 0, 3];
        let s = t.encode().unwrap();
        assert_eq!(TcfCaV1::decode(&s).unwrap(), t);
        let j = t.to_json_value();
        assert_eq!(TcfCaV1::from_json_value(&j).unwrap(), t);
        assert!(t.violations().is_empty());
    }

    #[test]
    fn ids_above_max_in_a_range_list_are_a_violation() {
        let mut t = TcfCaV1::new();
        t.set(
            "VendorExpressConsent",
            CaValue::Vendors(CaVendors {
                max_id: 3,
                range: true,
                ids: vec![2, 9],
            }),
        )
        .unwrap();
        let back = TcfCaV1::decode(&t.encode().unwrap()).unwrap();
        assert_eq!(back, t);
        // Version 6, times 72, CmpId/CmpVersion 24, ConsentScreen 6,
        // language 12, VendorListVersion 12, TcfPolicyVersion 6, 1 bool,
        // bitfields 12 + 24 + 24: MaxId at 199.
        assert_eq!(
            back.violations(),
            vec![Violation {
                field: "VendorExpressConsent",
                offset: Some(199),
                reason: ABOVE_MAX_REASON,
            }]
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let core = TcfCaV1::new().encode().unwrap();
        let core = core.split('.').next().unwrap();
        assert!(TcfCaV1::decode(&format!("{core}.{core}")).is_err());
        assert!(TcfCaV1::decode(&format!("{core}.")).is_err());
        assert!(TcfCaV1::decode("gAAA").is_err()); // SegmentType 4
        assert!(TcfCaV1::decode(&core[..10]).is_err());
    }
}
