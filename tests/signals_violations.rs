//! Values the specifications forbid but the reference libraries read:
//! decoding reads them and lists a violation (field, bit offset, reason);
//! strict decoding and consent events refuse them.

use privseg::consent::signals::events::{SignalEventError, SignalNotice, signal_to_events};
use privseg::consent::signals::gpp::{GppOptions, GppSection, GppString};
use privseg::consent::signals::mapping::SignalMapping;
use privseg::consent::signals::tcf::{
    ABOVE_MAX_REASON, OVERLAP_REASON, TcString, TcfOptions, VendorEncoding, VendorRange,
    VendorSection,
};
use privseg::consent::signals::tcfca::{CaValue, CaVendors, TcfCaV1};
use privseg::consent::signals::usnat::UsNat;
use privseg::consent::signals::usstate::{
    COVERED_REASON, FieldValue, UNDEFINED_REASON, UsStateSection,
};
use privseg::consent::signals::{DecodeOptions, decode_to_json, decode_to_json_with};
use serde_json::{Value, json};

fn gpp(sections: Vec<GppSection>) -> String {
    GppString {
        version: 1,
        sections,
    }
    .encode()
    .unwrap()
}

fn decode(s: &str) -> Value {
    serde_json::from_str(&decode_to_json(s).unwrap()).unwrap()
}

fn strict() -> DecodeOptions {
    DecodeOptions {
        strict: true,
        ..Default::default()
    }
}

fn refused_by_events(s: &str) -> String {
    let mapping = SignalMapping::from_json(
        r#"{"tcfPurposes": {"1": "analytics.basic"}, "usnat": {"sale": "marketing.sale"}}"#,
    )
    .unwrap();
    let notice = SignalNotice {
        version: "v1".into(),
        sha256_hex: "0".repeat(64),
    };
    match signal_to_events("s-1", s, &mapping, &TcfOptions::default(), &notice, 0) {
        Err(e @ SignalEventError::Refused(_)) => e.to_string(),
        other => panic!("{s}: expected a refusal, got {other:?}"),
    }
}

#[test]
fn usnat_covered_transaction_zero() {
    let mut u = UsNat::new(2);
    u.mspa_covered_transaction = 0;
    let s = gpp(vec![GppSection::UsNat(u.clone())]);
    let d = decode(&s);
    assert_eq!(d["sections"]["usnat"]["mspaCoveredTransaction"], 0);
    assert_eq!(
        d["sections"]["usnat"]["violations"],
        json!([{"field": "MspaCoveredTransaction", "offset": 64, "reason": COVERED_REASON}])
    );
    assert!(decode_to_json_with(&s, &strict()).is_err());
    assert_eq!(
        refused_by_events(&s),
        format!(
            "signal refused: in GPP section 7 (position 0): policy violation in MspaCoveredTransaction at bit 64: {COVERED_REASON}"
        )
    );
    // The same section with a valid value gives events.
    u.mspa_covered_transaction = 1;
    let ok = gpp(vec![GppSection::UsNat(u)]);
    assert!(decode_to_json_with(&ok, &strict()).is_ok());
}

#[test]
fn us_state_values_out_of_range() {
    let mut usva = UsStateSection::new(9).unwrap();
    usva.set("MspaCoveredTransaction", FieldValue::Int(0))
        .unwrap();
    usva.set("TargetedAdvertisingOptOut", FieldValue::Int(3))
        .unwrap();
    let s = gpp(vec![GppSection::UsState(usva)]);
    let d = decode(&s);
    // usva: Version(6), 5 fields(10), 8 sensitive(16), child(2): covered at
    // 34; TargetedAdvertisingOptOut is the fifth 2-bit field, at 14.
    assert_eq!(
        d["sections"]["usva"]["violations"],
        json!([
            {"field": "TargetedAdvertisingOptOut", "offset": 14, "reason": UNDEFINED_REASON},
            {"field": "MspaCoveredTransaction", "offset": 34, "reason": COVERED_REASON},
        ])
    );
    assert!(decode_to_json_with(&s, &strict()).is_err());
    assert!(refused_by_events(&s).contains("GPP section 9"));
    let lenient = GppOptions {
        tcf: TcfOptions::lenient(),
    };
    let dd = GppString::decode_with(&s, &lenient).unwrap();
    assert_eq!(dd.section_violations.len(), 2);
    assert!(dd.section_violations.iter().all(|(id, _)| *id == 9));
}

#[test]
fn tcf_overlap_and_id_above_max() {
    let mut tc = TcString::example();
    tc.core.vendor_legitimate_interests = VendorSection {
        max_vendor_id: 20,
        encoding: VendorEncoding::Range {
            entries: vec![
                VendorRange { start: 5, end: 9 },
                VendorRange { start: 8, end: 8 },
                VendorRange { start: 30, end: 31 },
            ],
        },
    };
    let s = tc.encode().unwrap();
    let d = decode(&s);
    assert_eq!(
        d["vendorLegitimateInterests"],
        json!([5, 6, 7, 8, 9, 30, 31])
    );
    // The consent section of the example ends at bit 213 + 17 + 12 + 17
    // = 259 (MaxVendorId, range, one single-id entry); the LI section's
    // entries start 29 bits later, at 288: 33 bits, then 17, then 33.
    let consent_end = 213 + tc_consent_bits(&tc);
    let first = consent_end + 29;
    let v: Vec<(String, u64, String)> = d["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["field"].as_str().unwrap().to_string(),
                v["offset"].as_u64().unwrap(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let f = "VendorLegitimateInterests.StartOrOnlyVendorId".to_string();
    assert_eq!(
        v,
        [
            (f.clone(), (first + 33) as u64, OVERLAP_REASON.to_string()),
            (f, (first + 50) as u64, ABOVE_MAX_REASON.to_string()),
        ]
    );
    assert!(decode_to_json_with(&s, &strict()).is_err());
    assert!(refused_by_events(&s).contains("VendorLegitimateInterests.StartOrOnlyVendorId"));
    // Inside a GPP string the same.
    let g = gpp(vec![GppSection::TcfEuV2(tc)]);
    assert!(refused_by_events(&g).contains("GPP section 2"));
}

/// Bits of the example's vendor consent section, counted from its fields.
fn tc_consent_bits(tc: &TcString) -> usize {
    let v = &tc.core.vendor_consents;
    17 + match &v.encoding {
        VendorEncoding::Bitfield { .. } => usize::from(v.max_vendor_id),
        VendorEncoding::Range { entries } => {
            12 + entries
                .iter()
                .map(|e| if e.start == e.end { 17 } else { 33 })
                .sum::<usize>()
        }
    }
}

#[test]
fn tcfcav1_range_ids_above_max_id() {
    let mut t = TcfCaV1::new();
    t.set(
        "DisclosedVendors",
        CaValue::Vendors(CaVendors {
            max_id: 2,
            range: true,
            ids: vec![1, 2, 3],
        }),
    )
    .unwrap();
    let s = gpp(vec![GppSection::TcfCaV1(t)]);
    let d = decode(&s);
    assert_eq!(
        d["sections"]["tcfcav1"]["disclosedVendors"],
        json!([1, 2, 3])
    );
    assert_eq!(
        d["sections"]["tcfcav1"]["violations"],
        json!([{"field": "DisclosedVendors", "offset": 3, "reason": ABOVE_MAX_REASON}])
    );
    assert!(decode_to_json_with(&s, &strict()).is_err());
    assert!(refused_by_events(&s).contains("GPP section 5"));
}
