//! Differential tests against the IAB reference implementations from npm:
//! iabtcf-es (`@iabtechlabtcf/core`) for TC strings and iabgpp-es
//! (`@iabgpp/cmpapi`) for GPP strings.
//!
//! Random strings are made by this crate's encoders and by theirs, decoded
//! by both, and every field compared in one normalised form: every
//! purpose, feature and vendor set an ascending id array, times ISO 8601,
//! an absent optional segment as empty sets, publisher restrictions sorted
//! by purpose and type, plus the list of segments in string order. GPP
//! strings hold `tcfeuv2` (ours only: iabgpp-es's encoder is not used for
//! it), `tcfcav1`, `uspv1`, `usnat` and up to three of the 20 US state
//! sections; the sections other than `tcfeuv2` are compared in iabgpp-es's
//! `toObject` shape (first letters in lower case), without our `encoding`
//! and `violations`.
//!
//! The Node side is `tests/signals_diff/harness.cjs`; its packages are
//! installed with `npm ci` into a directory under the cargo target
//! directory. Without `node` and `npm` the test is skipped with the reason
//! printed. `PRIVSEG_SIGNALS_DIFF_N` sets the number of random strings per
//! direction (default 500; four directions, the second compared twice:
//! 2,500 comparisons in all); a long run uses
//! `PRIVSEG_SIGNALS_DIFF_N=25000` for 125,000.
//!
//! Some vendor sections hold range entries that overlap an earlier entry
//! or go above `MaxVendorId`: the specification forbids them, the libraries
//! read them (the union of the ids), and so does this crate, with a
//! violation.
//!
//! Known differences, kept out of the random strings and documented in
//! `docs/formats.md`:
//! * iabtcf-es refuses `CmpId` 0 and 1 and consent languages outside its
//!   list (the TCModel setters throw while decoding); this crate reads any
//!   value the format can hold.
//! * iabtcf-es's `TCString.encode` first applies rules that need a Global
//!   Vendor List (SemanticPreEncoder); the harness writes bits with its
//!   `SegmentEncoder`, which is what `TCString.encode` calls after them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use privseg::consent::signals::bits::Padding;
use privseg::consent::signals::gpp::{GppOptions, GppSection, GppString};
use privseg::consent::signals::json::{TcfJson, UsNatJson, UspJson};
use privseg::consent::signals::tcf::{
    ABOVE_MAX_REASON, IdSet, OVERLAP_REASON, PublisherRestriction, PublisherTc, RestrictionType,
    Segment, TcString, TcfOptions, VendorBits, VendorEncoding, VendorRange, VendorSection,
    Violation,
};
use privseg::consent::signals::tcfca::{CaRestriction, CaValue, CaVendors, TcfCaV1};
use privseg::consent::signals::usnat::UsNat;
use privseg::consent::signals::usp::{UsPrivacy, UspFlag};
use privseg::consent::signals::usstate::{FieldKind, FieldValue, SECTIONS, UsStateSection};
use serde_json::{Value, json};

// ---------------------------------------------------------------------
// Setup

fn tool_ok(name: &str) -> bool {
    Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The harness directory with its packages installed, or the reason why
/// there is none.
fn harness() -> Result<PathBuf, String> {
    if !tool_ok("node") {
        return Err("node is not installed".into());
    }
    if !tool_ok("npm") {
        return Err("npm is not installed".into());
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/signals_diff");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("signals_diff");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    for f in ["package.json", "package-lock.json", "harness.cjs"] {
        std::fs::copy(src.join(f), dir.join(f)).map_err(|e| format!("copy {f}: {e}"))?;
    }
    let installed = dir
        .join("node_modules/@iabtechlabtcf/core/package.json")
        .exists()
        && dir
            .join("node_modules/@iabgpp/cmpapi/package.json")
            .exists();
    if !installed {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .output()
            .map_err(|e| format!("npm ci: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "npm ci failed (registry unreachable?): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(dir)
}

/// Sends requests to the harness, one answer per request.
fn run_harness(dir: &Path, requests: &[Value]) -> Vec<Result<Value, String>> {
    let path = dir.join(format!("requests-{}.jsonl", std::process::id()));
    let mut f = std::fs::File::create(&path).expect("request file");
    for r in requests {
        writeln!(f, "{r}").expect("write request");
    }
    drop(f);
    let out = Command::new("node")
        .arg("harness.cjs")
        .arg(&path)
        .current_dir(dir)
        .output()
        .expect("node runs");
    let _ = std::fs::remove_file(&path);
    assert!(
        out.status.success(),
        "harness failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let answers: Vec<Result<Value, String>> = text
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("harness answer is JSON");
            match v.get("ok") {
                Some(ok) => Ok(ok.clone()),
                None => Err(v["err"].as_str().unwrap_or("?").to_string()),
            }
        })
        .collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    answers
}

fn count() -> usize {
    std::env::var("PRIVSEG_SIGNALS_DIFF_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500)
}

// ---------------------------------------------------------------------
// Random values (xorshift64*, fixed seeds: runs are repeatable)

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const LANGUAGES: [&str; 8] = ["EN", "FR", "DE", "IT", "ES", "NL", "PL", "SV"];

fn small_set(rng: &mut Rng, n: u8) -> IdSet {
    (1..=n).filter(|_| rng.chance(40)).collect()
}

fn vendor_ids(rng: &mut Rng) -> Vec<u16> {
    match rng.below(4) {
        0 => Vec::new(),
        1 => {
            // Dense, like a consent bitfield of a large CMP.
            let max = rng.range(1, 1200) as u16;
            let p = rng.range(5, 95);
            (1..=max).filter(|_| rng.chance(p)).collect()
        }
        2 => {
            // A few runs.
            let mut v = Vec::new();
            let mut at = rng.range(1, 50) as u16;
            for _ in 0..rng.range(1, 12) {
                let len = rng.range(1, 80) as u16;
                for id in at..at.saturating_add(len).min(3000) {
                    v.push(id);
                }
                at = at.saturating_add(len + rng.range(1, 200) as u16);
            }
            v
        }
        _ => {
            // Sparse singletons.
            let mut v: Vec<u16> = (0..rng.range(1, 30))
                .map(|_| rng.range(1, 4000) as u16)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        }
    }
}

fn runs(ids: &[u16]) -> Vec<VendorRange> {
    let mut out: Vec<VendorRange> = Vec::new();
    for &id in ids {
        match out.last_mut() {
            Some(r) if r.end + 1 == id => r.end = id,
            _ => out.push(VendorRange { start: id, end: id }),
        }
    }
    out
}

fn vendor_section(rng: &mut Rng) -> VendorSection {
    let ids = vendor_ids(rng);
    let top = ids.last().copied().unwrap_or(0);
    let max = if rng.chance(20) {
        top.saturating_add(rng.range(0, 20) as u16)
    } else {
        top
    };
    let encoding = if rng.chance(50) {
        VendorEncoding::Bitfield {
            ids: VendorBits::from_ids(ids),
        }
    } else {
        let mut entries = runs(&ids);
        if rng.chance(20) {
            entries.reverse(); // any order is valid
        }
        VendorEncoding::Range { entries }
    };
    let mut max = max;
    let mut encoding = encoding;
    if let VendorEncoding::Range { entries } = &mut encoding
        && !entries.is_empty()
    {
        // Strings the specification forbids but the libraries read (a
        // violation here): an entry overlapping an earlier one, and ids
        // above MaxVendorId.
        if rng.chance(10) {
            let k = rng.below(entries.len() as u64) as usize;
            let e = entries[k];
            let end = e.end.saturating_add(rng.range(0, 5) as u16);
            entries.push(VendorRange {
                start: rng.range(u64::from(e.start), u64::from(e.end)) as u16,
                end,
            });
        }
        if rng.chance(10) {
            max = rng.below(u64::from(top)) as u16;
        }
    }
    VendorSection {
        max_vendor_id: max,
        encoding,
    }
}

fn random_tc(rng: &mut Rng) -> TcString {
    let mut tc = TcString::example();
    let c = &mut tc.core;
    c.created = rng.range(15_000_000_000, 20_000_000_000);
    c.last_updated = c.created + rng.range(0, 10_000_000);
    c.cmp_id = rng.range(2, 4095) as u16;
    c.cmp_version = rng.below(4096) as u16;
    c.consent_screen = rng.below(64) as u8;
    c.consent_language = LANGUAGES[rng.below(8) as usize].to_string();
    c.vendor_list_version = rng.below(4096) as u16;
    c.tcf_policy_version = rng.range(2, 5) as u8;
    c.is_service_specific = rng.chance(70);
    c.use_non_standard_texts = rng.chance(30);
    c.special_feature_opt_ins = small_set(rng, 12);
    c.purposes_consent = small_set(rng, 24);
    c.purposes_li_transparency = small_set(rng, 24);
    c.purpose_one_treatment = rng.chance(20);
    c.publisher_cc = (0..2)
        .map(|_| char::from(b'A' + rng.below(26) as u8))
        .collect();
    c.vendor_consents = vendor_section(rng);
    c.vendor_legitimate_interests = vendor_section(rng);
    // Restrictions: distinct purposes, so that no vendor has two
    // restrictions for one purpose.
    let mut purposes: Vec<u8> = (1..=24).collect();
    c.publisher_restrictions = (0..rng.below(4))
        .map(|_| {
            let p = purposes.remove(rng.below(purposes.len() as u64) as usize);
            let ids = vendor_ids(rng);
            let ids = if ids.is_empty() { vec![7] } else { ids };
            PublisherRestriction {
                purpose_id: p,
                restriction_type: match rng.below(3) {
                    0 => RestrictionType::NotAllowed,
                    1 => RestrictionType::RequireConsent,
                    _ => RestrictionType::RequireLegitimateInterest,
                },
                entries: runs(&ids),
            }
        })
        .collect();
    let mut segments = Vec::new();
    if rng.chance(70) {
        segments.push(Segment::DisclosedVendors(vendor_section(rng)));
    }
    if rng.chance(15) {
        segments.push(Segment::AllowedVendors(vendor_section(rng)));
    }
    if rng.chance(40) {
        let n = rng.below(10) as u8;
        segments.push(Segment::PublisherTc(PublisherTc {
            pub_purposes_consent: small_set(rng, 24),
            pub_purposes_li_transparency: small_set(rng, 24),
            num_custom_purposes: n,
            custom_purposes_consent: small_set(rng, n),
            custom_purposes_li_transparency: small_set(rng, n),
        }));
    }
    // Any order of the optional segments is valid.
    for i in (1..segments.len()).rev() {
        segments.swap(i, rng.below(i as u64 + 1) as usize);
    }
    tc.segments = segments;
    tc
}

fn random_usnat(rng: &mut Rng) -> UsNat {
    let version = rng.range(1, 2) as u8;
    let mut u = UsNat::new(version);
    let mut two = || rng.below(3) as u8;
    u.sharing_notice = two();
    u.sale_opt_out_notice = two();
    u.sharing_opt_out_notice = two();
    u.targeted_advertising_opt_out_notice = two();
    u.sensitive_data_processing_opt_out_notice = two();
    u.sensitive_data_limit_use_notice = two();
    u.sale_opt_out = two();
    u.sharing_opt_out = two();
    u.targeted_advertising_opt_out = two();
    u.personal_data_consents = two();
    u.mspa_opt_out_option_mode = two();
    u.mspa_service_provider_mode = two();
    u.mspa_covered_transaction = rng.range(1, 2) as u8; // 0 is invalid
    for v in u.sensitive_data_processing.iter_mut() {
        *v = rng.below(3) as u8;
    }
    for v in u.known_child_sensitive_data_consents.iter_mut() {
        *v = rng.below(3) as u8;
    }
    u.gpc = if rng.chance(50) {
        Some(rng.chance(50))
    } else {
        None
    };
    u
}

fn random_usp(rng: &mut Rng) -> UsPrivacy {
    let mut flag = || match rng.below(3) {
        0 => UspFlag::Yes,
        1 => UspFlag::No,
        _ => UspFlag::NotApplicable,
    };
    UsPrivacy {
        version: 1,
        notice: flag(),
        opt_out_sale: flag(),
        lspa_covered: flag(),
    }
}

/// A US state section with random valid values (2-bit fields 0 to 2,
/// `MspaCoveredTransaction` 1 or 2) and, when the section has one, its
/// sub-segment half of the time.
fn random_state(rng: &mut Rng, id: u16) -> UsStateSection {
    let def = SECTIONS.iter().find(|d| d.id == id).unwrap();
    let mut s = UsStateSection::new(id).unwrap();
    for f in def.core {
        let v = match f.kind {
            FieldKind::Version | FieldKind::SubsectionType => continue,
            FieldKind::Covered => FieldValue::Int(rng.range(1, 2) as u8),
            FieldKind::List(n) => FieldValue::List((0..n).map(|_| rng.below(3) as u8).collect()),
            FieldKind::Bool => FieldValue::Int(rng.below(2) as u8),
            FieldKind::Enum => FieldValue::Int(rng.below(3) as u8),
        };
        s.set(f.name, v).unwrap();
    }
    if let Some(sub) = def.sub
        && rng.chance(50)
    {
        for f in sub.fields {
            let v = match f.kind {
                FieldKind::List(n) => {
                    FieldValue::List((0..n).map(|_| rng.below(3) as u8).collect())
                }
                FieldKind::Bool => FieldValue::Int(rng.below(2) as u8),
                _ => continue,
            };
            s.set(f.name, v).unwrap();
        }
    }
    s
}

/// A `tcfcav1` section with random values. With `canonical` it is what
/// iabgpp-es writes: segments core, PublisherPurposes and (when it lists a
/// vendor) DisclosedVendors, and each vendor list in its shorter encoding
/// with `MaxId` its largest id. Otherwise the segments come in any order,
/// may be absent, and vendor lists take either encoding and any `MaxId`
/// (above the largest id, or below it in a range list: a violation here,
/// read by iabgpp-es).
fn random_tcfca(rng: &mut Rng, canonical: bool) -> TcfCaV1 {
    let mut t = TcfCaV1::new();
    let vendors = |rng: &mut Rng| {
        let ids = vendor_ids(rng);
        let mut l = CaVendors::optimized(ids);
        if !canonical && rng.chance(50) {
            l.range = rng.chance(50);
            let top = l.max_id;
            l.max_id = if l.range && top > 0 && rng.chance(20) {
                rng.below(u64::from(top)) as u16
            } else {
                top.saturating_add(rng.range(0, 30) as u16)
            };
        }
        l
    };
    let bools = |rng: &mut Rng, n: u64| (0..n).map(|_| rng.chance(40)).collect::<Vec<bool>>();
    let created = rng.range(15_000_000_000, 20_000_000_000);
    let ints: [(&str, u64); 5] = [
        ("CmpId", rng.below(4096)),
        ("CmpVersion", rng.below(4096)),
        ("ConsentScreen", rng.below(64)),
        ("VendorListVersion", rng.below(4096)),
        ("TcfPolicyVersion", rng.below(64)),
    ];
    for (name, v) in ints {
        t.set(name, CaValue::Int(v)).unwrap();
    }
    t.set("Created", CaValue::Time(created)).unwrap();
    t.set(
        "LastUpdated",
        CaValue::Time(created + rng.range(0, 10_000_000)),
    )
    .unwrap();
    t.set(
        "ConsentLanguage",
        CaValue::Lang(LANGUAGES[rng.below(8) as usize].into()),
    )
    .unwrap();
    t.set("UseNonStandardStacks", CaValue::Bool(rng.chance(30)))
        .unwrap();
    for (name, n) in [
        ("SpecialFeatureExpressConsent", 12),
        ("PurposesExpressConsent", 24),
        ("PurposesImpliedConsent", 24),
        ("PubPurposesExpressConsent", 24),
        ("PubPurposesImpliedConsent", 24),
    ] {
        t.set(name, CaValue::Bits(bools(rng, n))).unwrap();
    }
    let n = rng.below(10);
    t.set("NumCustomPurposes", CaValue::Int(n)).unwrap();
    t.set("CustomPurposesExpressConsent", CaValue::Bits(bools(rng, n)))
        .unwrap();
    t.set("CustomPurposesImpliedConsent", CaValue::Bits(bools(rng, n)))
        .unwrap();
    t.set("VendorExpressConsent", CaValue::Vendors(vendors(rng)))
        .unwrap();
    t.set("VendorImpliedConsent", CaValue::Vendors(vendors(rng)))
        .unwrap();
    let restrictions = (0..rng.below(4))
        .map(|_| CaRestriction {
            key: rng.below(64) as u8,
            kind: rng.below(4) as u8,
            vendors: CaVendors::optimized(vendor_ids(rng)),
        })
        .collect();
    t.set("PubRestrictions", CaValue::Restrictions(restrictions))
        .unwrap();
    let disclosed = vendors(rng);
    let has_disclosed = !disclosed.ids.is_empty();
    if canonical {
        if has_disclosed {
            t.set("DisclosedVendors", CaValue::Vendors(disclosed))
                .unwrap();
        }
        t.order = if has_disclosed {
            vec![0, 3, 1]
        } else {
            vec![0, 3]
        };
    } else {
        t.set("DisclosedVendors", CaValue::Vendors(disclosed))
            .unwrap();
        let mut order = vec![0u8];
        for seg in [1u8, 3] {
            if rng.chance(70) {
                order.push(seg);
            }
        }
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        // Drop the values of a segment left out: they are not in the string.
        if !order.contains(&1) {
            t.disclosed = None;
        }
        if !order.contains(&3) {
            t.publisher = None;
        }
        t.order = order;
    }
    t
}

/// With `forbidden`, sometimes a value the US specifications forbid but
/// the libraries read: `MspaCoveredTransaction` 0 or 3, or 3 in another
/// 2-bit field (only for our encoder: iabgpp-es refuses to write them).
fn spoil_us(rng: &mut Rng, s: &mut GppSection) {
    match s {
        GppSection::UsNat(u) => {
            if rng.chance(10) {
                u.mspa_covered_transaction = if rng.chance(50) { 0 } else { 3 };
            }
            if rng.chance(10) {
                let k = rng.below(u.sensitive_data_processing.len() as u64) as usize;
                u.sensitive_data_processing[k] = 3;
            }
        }
        GppSection::UsState(u) => {
            let def = SECTIONS.iter().find(|d| d.id == u.id).unwrap();
            if rng.chance(10) {
                let v = if rng.chance(50) { 0 } else { 3 };
                u.set("MspaCoveredTransaction", FieldValue::Int(v)).unwrap();
            }
            if rng.chance(10) {
                let enums: Vec<_> = def
                    .core
                    .iter()
                    .filter(|f| f.kind == FieldKind::Enum)
                    .collect();
                let f = enums[rng.below(enums.len() as u64) as usize];
                u.set(f.name, FieldValue::Int(3)).unwrap();
            }
        }
        _ => {}
    }
}

fn random_gpp(rng: &mut Rng, with_tcf: bool) -> GppString {
    let mut sections = Vec::new();
    if with_tcf && rng.chance(60) {
        sections.push(GppSection::TcfEuV2(random_tc(rng)));
    }
    if rng.chance(30) {
        sections.push(GppSection::TcfCaV1(random_tcfca(rng, !with_tcf)));
    }
    if rng.chance(50) {
        sections.push(GppSection::UspV1(random_usp(rng)));
    }
    if rng.chance(60) {
        sections.push(GppSection::UsNat(random_usnat(rng)));
    }
    // Up to three US state sections.
    let mut ids: Vec<u16> = SECTIONS.iter().map(|d| d.id).collect();
    for _ in 0..rng.below(4) {
        let id = ids.remove(rng.below(ids.len() as u64) as usize);
        sections.push(GppSection::UsState(random_state(rng, id)));
    }
    if sections.is_empty() {
        sections.push(GppSection::UsNat(random_usnat(rng)));
    }
    sections.sort_by_key(GppSection::id);
    if with_tcf {
        for s in &mut sections {
            spoil_us(rng, s);
        }
    }
    GppString {
        version: 1,
        sections,
    }
}

// ---------------------------------------------------------------------
// Normalised forms

fn normal_tcf(tc: &TcString) -> Value {
    let mut v = serde_json::to_value(TcfJson::from_tc(tc, &TcfOptions::lenient())).unwrap();
    let m = v.as_object_mut().unwrap();
    let segments = m["encoding"]["segments"].clone();
    m.remove("type");
    m.remove("encoding");
    m.remove("violations");
    m.insert("segments".into(), segments);
    for k in [
        "vendorsDisclosed",
        "vendorsAllowed",
        "publisherConsents",
        "publisherLegitimateInterests",
        "publisherCustomConsents",
        "publisherCustomLegitimateInterests",
    ] {
        m.entry(k).or_insert(json!([]));
    }
    m.entry("numCustomPurposes").or_insert(json!(0));
    let r = m["publisherRestrictions"].as_array_mut().unwrap();
    r.sort_by_key(|x| {
        (
            x["purposeId"].as_u64().unwrap(),
            x["restrictionType"].as_u64().unwrap(),
        )
    });
    v
}

fn normal_gpp(g: &GppString) -> Value {
    let mut sections = serde_json::Map::new();
    for s in &g.sections {
        let (name, v) = match s {
            GppSection::TcfEuV2(t) => ("tcfeuv2", normal_tcf(t)),
            GppSection::UspV1(u) => {
                let mut v = serde_json::to_value(UspJson::from(*u)).unwrap();
                v.as_object_mut().unwrap().remove("type");
                ("uspv1", v)
            }
            GppSection::UsNat(u) => (
                "usnat",
                serde_json::to_value(UsNatJson::from(u.clone())).unwrap(),
            ),
            GppSection::UsState(u) => (
                SECTIONS.iter().find(|d| d.id == u.id).unwrap().name,
                u.to_json_value().unwrap(),
            ),
            GppSection::TcfCaV1(t) => {
                let mut v = t.to_json_value();
                v.as_object_mut().unwrap().remove("encoding");
                ("tcfcav1", v)
            }
            _ => panic!("not generated"),
        };
        let mut v = v;
        if let Some(m) = v.as_object_mut()
            && name != "tcfeuv2"
        {
            m.remove("violations");
        }
        sections.insert(name.into(), v);
    }
    json!({"sectionIds": g.section_ids(), "sections": sections})
}

fn lenient() -> GppOptions {
    GppOptions {
        tcf: TcfOptions::lenient(),
    }
}

// ---------------------------------------------------------------------
// Comparison

fn has_range_violation(v: &[Violation]) -> bool {
    v.iter()
        .any(|v| v.reason == OVERLAP_REASON || v.reason == ABOVE_MAX_REASON)
}

#[derive(Default)]
struct Tally {
    compared: usize,
    mismatches: Vec<String>,
    /// Sections compared, by name (GPP only).
    sections: std::collections::BTreeMap<String, usize>,
    /// Strings with a range entry overlapping another or above
    /// `MaxVendorId` (read by all sides, a violation here).
    range_violations: usize,
    /// Strings with a section value the specifications forbid (US values,
    /// `tcfcav1` ids above MaxId; read by all sides, a violation here).
    section_violations: usize,
}

impl Tally {
    fn check(&mut self, what: &str, input: &str, ours: &Value, theirs: &Value) {
        self.compared += 1;
        if ours != theirs {
            self.mismatches.push(format!(
                "{what} {input}\n  ours:   {ours}\n  theirs: {theirs}"
            ));
        }
    }
    fn fail(&mut self, what: &str, input: &str, e: &str) {
        self.compared += 1;
        self.mismatches.push(format!("{what} {input}: {e}"));
    }
    fn count_sections(&mut self, normal: &Value) {
        if let Some(m) = normal["sections"].as_object() {
            for k in m.keys() {
                *self.sections.entry(k.clone()).or_default() += 1;
            }
        }
    }
    fn report(&self, name: &str) {
        println!(
            "{name}: {} compared, {} mismatches",
            self.compared,
            self.mismatches.len()
        );
        if self.range_violations > 0 {
            println!(
                "  with overlapping or above-MaxVendorId range entries: {}",
                self.range_violations
            );
        }
        if self.section_violations > 0 {
            println!(
                "  with forbidden section values (MspaCoveredTransaction 0 or 3, a 3 in a US field, tcfcav1 ids above MaxId): {}",
                self.section_violations
            );
        }
        if !self.sections.is_empty() {
            let list: Vec<String> = self
                .sections
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            println!("  sections compared: {}", list.join(", "));
        }
        for m in self.mismatches.iter().take(5) {
            println!("{m}");
        }
        assert!(
            self.mismatches.is_empty(),
            "{name}: {} of {} differ (first shown above)",
            self.mismatches.len(),
            self.compared
        );
    }
}

#[test]
fn tcf_and_gpp_agree_with_the_reference_libraries() {
    let dir = match harness() {
        Ok(d) => d,
        Err(reason) => {
            println!("SKIPPED signals_diff: {reason}");
            return;
        }
    };
    let n = count();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);

    // 1. Our encoder, both decoders (TCF).
    let ours_tc: Vec<(String, TcString)> = (0..n)
        .map(|_| {
            let tc = random_tc(&mut rng);
            let padding = if rng.chance(20) {
                Padding::Sextet
            } else {
                Padding::Byte
            };
            (tc.encode_with(padding).unwrap(), tc)
        })
        .collect();
    let req: Vec<Value> = ours_tc
        .iter()
        .map(|(s, _)| json!({"op": "tcf_decode", "s": s}))
        .collect();
    let mut t1 = Tally::default();
    for ((s, tc), theirs) in ours_tc.iter().zip(run_harness(&dir, &req)) {
        let d = TcString::decode_with(s, &TcfOptions::lenient()).unwrap();
        if has_range_violation(&d.violations) {
            t1.range_violations += 1;
        }
        let decoded = d.tc;
        assert_eq!(&decoded, tc, "our own round trip of {s}");
        match theirs {
            Ok(t) => t1.check("tcf ours->decode", s, &normal_tcf(&decoded), &t),
            Err(e) => t1.fail("tcf ours->decode: iabtcf-es refused", s, &e),
        }
    }

    // 2. Their encoder (iabtcf-es), our decoder and theirs.
    let models: Vec<Value> = (0..n).map(|_| normal_tcf(&random_tc(&mut rng))).collect();
    let req: Vec<Value> = models
        .iter()
        .map(|m| json!({"op": "tcf_encode", "m": m}))
        .collect();
    let encoded = run_harness(&dir, &req);
    let mut t2 = Tally::default();
    let mut strings = Vec::new();
    for (m, e) in models.iter().zip(encoded) {
        match e {
            Ok(Value::String(s)) => {
                match TcString::decode_with(&s, &TcfOptions::lenient()) {
                    Ok(d) => t2.check("tcf theirs->ours", &s, &normal_tcf(&d.tc), m),
                    Err(err) => t2.fail("tcf theirs->ours", &s, &err.to_string()),
                }
                strings.push(s);
            }
            other => t2.fail(
                "tcf encode by iabtcf-es",
                &m.to_string(),
                &format!("{other:?}"),
            ),
        }
    }
    let req: Vec<Value> = strings
        .iter()
        .map(|s| json!({"op": "tcf_decode", "s": s}))
        .collect();
    for (s, theirs) in strings.iter().zip(run_harness(&dir, &req)) {
        let ours = normal_tcf(&TcString::decode_with(s, &TcfOptions::lenient()).unwrap().tc);
        match theirs {
            Ok(t) => t2.check("tcf theirs->theirs", s, &ours, &t),
            Err(e) => t2.fail("tcf theirs->theirs", s, &e),
        }
    }

    // 3. Our encoder, both decoders (GPP with tcfeuv2, tcfcav1, uspv1, usnat
    // and the US state sections).
    let ours_gpp: Vec<(String, GppString)> = (0..n)
        .map(|_| {
            let g = random_gpp(&mut rng, true);
            (g.encode().unwrap(), g)
        })
        .collect();
    let req: Vec<Value> = ours_gpp
        .iter()
        .map(|(s, _)| json!({"op": "gpp_decode", "s": s}))
        .collect();
    let mut t3 = Tally::default();
    for ((s, g), theirs) in ours_gpp.iter().zip(run_harness(&dir, &req)) {
        let d = GppString::decode_with(s, &lenient()).unwrap();
        if has_range_violation(&d.tcf_violations) {
            t3.range_violations += 1;
        }
        if !d.section_violations.is_empty() {
            t3.section_violations += 1;
        }
        let decoded = d.gpp;
        assert_eq!(&decoded, g, "our own round trip of {s}");
        t3.count_sections(&normal_gpp(&decoded));
        match theirs {
            Ok(t) => t3.check("gpp ours->decode", s, &normal_gpp(&decoded), &t),
            Err(e) => t3.fail("gpp ours->decode: iabgpp-es refused", s, &e),
        }
    }

    // 4. Their encoder (iabgpp-es: tcfcav1, uspv1, usnat and the US
    // states), our decoder.
    let models: Vec<(GppString, Value)> = (0..n)
        .map(|_| {
            let g = random_gpp(&mut rng, false);
            let v = normal_gpp(&g);
            (g, v)
        })
        .collect();
    let req: Vec<Value> = models
        .iter()
        .map(|(_, m)| json!({"op": "gpp_encode", "m": m}))
        .collect();
    let mut t4 = Tally::default();
    for ((g, m), e) in models.iter().zip(run_harness(&dir, &req)) {
        match e {
            Ok(Value::String(s)) => match GppString::decode_with(&s, &lenient()) {
                Ok(d) => {
                    t4.count_sections(m);
                    t4.check("gpp theirs->ours", &s, &normal_gpp(&d.gpp), m);
                    if &d.gpp != g {
                        // Same fields, other encoding choices: the model is
                        // what iabgpp-es writes, so this is a difference too.
                        t4.fail(
                            "gpp theirs->ours: other encoding than the model",
                            &s,
                            &format!(
                                "\n  ours:  {}\n  model: {}",
                                d.gpp.to_json().unwrap(),
                                g.to_json().unwrap()
                            ),
                        );
                    }
                }
                Err(err) => t4.fail("gpp theirs->ours", &s, &err.to_string()),
            },
            other => t4.fail(
                "gpp encode by iabgpp-es",
                &m.to_string(),
                &format!("{other:?}"),
            ),
        }
    }

    let total = t1.compared + t2.compared + t3.compared + t4.compared;
    println!("signals_diff: {total} comparisons in all");
    t1.report("TCF, our encoder, both decoders");
    t2.report("TCF, iabtcf-es encoder, both decoders");
    t3.report("GPP, our encoder, both decoders");
    t4.report("GPP, iabgpp-es encoder, our decoder");
}
