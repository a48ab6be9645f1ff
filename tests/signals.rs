//! Vector tests for the consent signal codecs. Strings are either taken
//! from the specifications' worked examples or built here bit by bit with a
//! small independent bit-string helper.

use privseg::consent::signals::SignalError;
use privseg::consent::signals::bits::Padding;
use privseg::consent::signals::gpc::{gpc_from_header, gpc_from_headers};
use privseg::consent::signals::gpp::{
    GppOptions, GppSection, GppString, decode_header, encode_header,
};
use privseg::consent::signals::mapping::{SignalDecisionKind, SignalMapping, sha256_hex};
use privseg::consent::signals::tcf::{
    ABOVE_MAX_REASON, IdSet, OVERLAP_REASON, PublisherTc, RestrictionType, Segment, TcString,
    TcfOptions, VendorBits, VendorEncoding, VendorRange, Violation,
};
use privseg::consent::signals::usnat::UsNat;
use privseg::consent::signals::usp::{UsPrivacy, UspFlag};

// ---------------------------------------------------------------------
// Independent helpers: bits as '0'/'1' text, base64url by table lookup.

const A: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn int(v: u64, n: usize) -> String {
    format!("{v:0n$b}")
}

fn set(ids: &[u32], n: usize) -> String {
    (1..=n as u32)
        .map(|i| if ids.contains(&i) { '1' } else { '0' })
        .collect()
}

fn letters(s: &str) -> String {
    s.bytes().map(|c| int(u64::from(c - b'A'), 6)).collect()
}

/// Pads to a whole byte, then to a whole sextet, and maps to base64url.
fn b64(bits: &str) -> String {
    let mut b = bits.to_string();
    while !b.len().is_multiple_of(8) {
        b.push('0');
    }
    while !b.len().is_multiple_of(6) {
        b.push('0');
    }
    b.as_bytes()
        .chunks(6)
        .map(|c| {
            let v = usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap();
            A.as_bytes()[v] as char
        })
        .collect()
}

const SPEC_TC: &str = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA";

/// Core segment built field by field: policy 5 (TCF v2.3).
fn handmade_core_bits(policy: u64, iss: bool, li: &[u32]) -> String {
    let mut s = String::new();
    s += &int(2, 6); // Version
    s += &int(17_000_000_000, 36); // Created
    s += &int(17_000_000_123, 36); // LastUpdated
    s += &int(300, 12); // CmpId
    s += &int(5, 12); // CmpVersion
    s += &int(2, 6); // ConsentScreen
    s += &letters("FR"); // ConsentLanguage
    s += &int(150, 12); // VendorListVersion
    s += &int(policy, 6); // TcfPolicyVersion
    s += if iss { "1" } else { "0" }; // IsServiceSpecific
    s += "0"; // UseNonStandardTexts
    s += &set(&[1, 2], 12); // SpecialFeatureOptIns
    s += &set(&[1, 2, 3, 4, 7], 24); // PurposesConsent
    s += &set(li, 24); // PurposesLITransparency
    s += "0"; // PurposeOneTreatment
    s += &letters("FR"); // PublisherCC
    // Vendor consents: MaxVendorId 12, bitfield {2,5,12}
    s += &int(12, 16);
    s += "0";
    s += &set(&[2, 5, 12], 12);
    // Vendor LI: MaxVendorId 40, range: single 8, range 30..=40
    s += &int(40, 16);
    s += "1";
    s += &int(2, 12);
    s += "0";
    s += &int(8, 16);
    s += "1";
    s += &int(30, 16);
    s += &int(40, 16);
    // One publisher restriction: purpose 2, RequireConsent, range 10..=20
    s += &int(1, 12);
    s += &int(2, 6);
    s += &int(1, 2);
    s += &int(1, 12);
    s += "1";
    s += &int(10, 16);
    s += &int(20, 16);
    s
}

fn disclosed_bits() -> String {
    let mut s = String::from("001");
    s += &int(40, 16);
    s += "1";
    s += &int(1, 12);
    s += "1";
    s += &int(1, 16);
    s += &int(40, 16);
    s
}

fn publisher_tc_bits() -> String {
    let mut s = String::from("011");
    s += &set(&[1, 3], 24);
    s += &set(&[2], 24);
    s += &int(2, 6);
    s += "10";
    s += "01";
    s
}

fn handmade_tc() -> String {
    format!(
        "{}.{}.{}",
        b64(&handmade_core_bits(5, true, &[2, 7, 9])),
        b64(&disclosed_bits()),
        b64(&publisher_tc_bits())
    )
}

// ---------------------------------------------------------------------
// TCF

#[test]
fn tcf_spec_example_fields() {
    // From the GPP specification's example strings. Policy version 2, so
    // strict decoding rejects it; lenient decoding reports the violation.
    let err = TcString::decode(SPEC_TC).unwrap_err();
    assert_eq!(
        err,
        SignalError::PolicyViolation {
            field: "TcfPolicyVersion",
            offset: Some(132),
            reason: "policy version below the accepted minimum"
        }
    );
    let d = TcString::decode_with(SPEC_TC, &TcfOptions::lenient()).unwrap();
    assert_eq!(d.violations.len(), 1);
    let c = &d.tc.core;
    assert_eq!(c.version, 2);
    assert_eq!(c.created, 16_504_920_000);
    assert_eq!(c.last_updated, 16_504_920_000);
    assert_eq!(d.tc.created_unix_seconds(), 1_650_492_000);
    assert_eq!(c.cmp_id, 31);
    assert_eq!(c.cmp_version, 640);
    assert_eq!(c.consent_screen, 1);
    assert_eq!(c.consent_language, "EN");
    assert_eq!(c.vendor_list_version, 126);
    assert_eq!(c.tcf_policy_version, 2);
    assert!(c.is_service_specific);
    assert!(!c.use_non_standard_texts);
    assert!(c.special_feature_opt_ins.is_empty());
    assert!(c.purposes_consent.is_empty());
    assert!(c.purposes_li_transparency.is_empty());
    assert!(!c.purpose_one_treatment);
    assert_eq!(c.publisher_cc, "DE");
    assert_eq!(c.vendor_consents.max_vendor_id, 0);
    assert_eq!(c.vendor_legitimate_interests.max_vendor_id, 0);
    assert!(c.publisher_restrictions.is_empty());
    assert!(d.tc.segments.is_empty());
    assert_eq!(d.tc.encode().unwrap(), SPEC_TC);
}

#[test]
fn tcf_handmade_all_segments() {
    let s = handmade_tc();
    let tc = TcString::decode(&s).unwrap();
    let c = &tc.core;
    assert_eq!(c.created, 17_000_000_000);
    assert_eq!(c.last_updated, 17_000_000_123);
    assert_eq!(tc.last_updated_unix_seconds(), 1_700_000_012);
    assert_eq!((c.cmp_id, c.cmp_version, c.consent_screen), (300, 5, 2));
    assert_eq!(c.consent_language, "FR");
    assert_eq!(c.vendor_list_version, 150);
    assert_eq!(c.tcf_policy_version, 5);
    assert!(c.is_service_specific);
    assert_eq!(c.special_feature_opt_ins, IdSet::from_ids([1, 2]));
    assert_eq!(c.purposes_consent, IdSet::from_ids([1, 2, 3, 4, 7]));
    assert_eq!(c.purposes_li_transparency, IdSet::from_ids([2, 7, 9]));
    assert_eq!(c.publisher_cc, "FR");
    assert_eq!(c.vendor_consents.max_vendor_id, 12);
    assert_eq!(
        c.vendor_consents.encoding,
        VendorEncoding::Bitfield {
            ids: VendorBits::from_ids([2, 5, 12])
        }
    );
    assert!(c.vendor_consents.contains(5));
    assert!(!c.vendor_consents.contains(6));
    assert_eq!(
        c.vendor_legitimate_interests.encoding,
        VendorEncoding::Range {
            entries: vec![
                VendorRange { start: 8, end: 8 },
                VendorRange { start: 30, end: 40 }
            ]
        }
    );
    assert_eq!(c.vendor_legitimate_interests.vendor_ids().len(), 12);
    assert_eq!(c.publisher_restrictions.len(), 1);
    let r = &c.publisher_restrictions[0];
    assert_eq!(r.purpose_id, 2);
    assert_eq!(r.restriction_type, RestrictionType::RequireConsent);
    assert_eq!(r.entries, vec![VendorRange { start: 10, end: 20 }]);
    let dv = tc.disclosed_vendors().unwrap();
    assert_eq!(dv.max_vendor_id, 40);
    assert!(dv.contains(1) && dv.contains(40) && !dv.contains(41));
    let p = tc.publisher_tc().unwrap();
    assert_eq!(p.pub_purposes_consent, IdSet::from_ids([1, 3]));
    assert_eq!(p.pub_purposes_li_transparency, IdSet::from_ids([2]));
    assert_eq!(p.num_custom_purposes, 2);
    assert_eq!(p.custom_purposes_consent, IdSet::from_ids([1]));
    assert_eq!(p.custom_purposes_li_transparency, IdSet::from_ids([2]));
    assert!(matches!(tc.segments[0], Segment::DisclosedVendors(_)));
    assert!(matches!(tc.segments[1], Segment::PublisherTc(_)));
    assert_eq!(tc.encode().unwrap(), s);
}

#[test]
fn tcf_segment_order_is_preserved() {
    let s = format!(
        "{}.{}.{}",
        b64(&handmade_core_bits(5, true, &[])),
        b64(&publisher_tc_bits()),
        b64(&disclosed_bits())
    );
    let tc = TcString::decode(&s).unwrap();
    assert!(matches!(tc.segments[0], Segment::PublisherTc(_)));
    assert_eq!(tc.encode().unwrap(), s);
}

#[test]
fn tcf_trailing_equals_and_sextet_padding_accepted() {
    let tc = TcString::decode_with(&format!("{SPEC_TC}="), &TcfOptions::lenient()).unwrap();
    assert_eq!(tc.tc.core.cmp_id, 31);
    let short = tc.tc.encode_with(Padding::Sextet).unwrap();
    // 259 bits -> 44 characters in both forms for this string.
    assert_eq!(short.len(), 44);
}

#[test]
fn tcf_v23_rules_strict_and_lenient() {
    // IsServiceSpecific = 0 under policy 5.
    let s = format!(
        "{}.{}",
        b64(&handmade_core_bits(5, false, &[])),
        b64(&disclosed_bits())
    );
    match TcString::decode(&s).unwrap_err() {
        SignalError::PolicyViolation { field, offset, .. } => {
            assert_eq!(field, "IsServiceSpecific");
            assert_eq!(offset, Some(138));
        }
        e => panic!("unexpected {e:?}"),
    }
    // Legitimate interest for purpose 1 and 4.
    let s = format!(
        "{}.{}",
        b64(&handmade_core_bits(5, true, &[1, 4])),
        b64(&disclosed_bits())
    );
    let lenient = TcString::decode_with(&s, &TcfOptions::lenient()).unwrap();
    let offsets: Vec<_> = lenient
        .violations
        .iter()
        .map(|v| (v.field, v.offset))
        .collect();
    assert_eq!(
        offsets,
        vec![
            ("PurposesLITransparency", Some(176)),
            ("PurposesLITransparency", Some(179))
        ]
    );
    assert!(TcString::decode(&s).is_err());
    // DisclosedVendors missing.
    let s = b64(&handmade_core_bits(5, true, &[]));
    match TcString::decode(&s).unwrap_err() {
        SignalError::PolicyViolation { field, offset, .. } => {
            assert_eq!(field, "DisclosedVendors");
            assert_eq!(offset, None);
        }
        e => panic!("unexpected {e:?}"),
    }
    // Policy 4 (v2.2): IsServiceSpecific 0 and no DisclosedVendors is fine,
    // LI for purpose 3 is not.
    assert!(TcString::decode(&b64(&handmade_core_bits(4, false, &[2]))).is_ok());
    let err = TcString::decode(&b64(&handmade_core_bits(4, false, &[3]))).unwrap_err();
    assert!(matches!(
        err,
        SignalError::PolicyViolation {
            field: "PurposesLITransparency",
            offset: Some(178),
            ..
        }
    ));
    // enforce_v23 applies the v2.3 rules to a policy-4 string.
    let opts = TcfOptions {
        enforce_v23: true,
        ..TcfOptions::default()
    };
    assert!(TcString::decode_with(&b64(&handmade_core_bits(4, true, &[])), &opts).is_err());
}

#[test]
fn tcf_errors_name_field_and_offset() {
    // Version 1 string (first character 'B'): named as TCF v1, not as an
    // unknown signal.
    let v1 = "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA";
    assert_eq!(
        TcString::decode(v1).unwrap_err(),
        SignalError::TcfV1Unsupported
    );
    let msg = privseg::consent::signals::decode_to_json(v1)
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("TCF v1 is not supported"), "{msg}");
    // Bad base64url.
    assert_eq!(
        TcString::decode("CPXx+fAP").unwrap_err(),
        SignalError::InvalidBase64 {
            position: 4,
            ch: '+'
        }
    );
    // Truncated inside the core segment: 10 characters = 60 bits.
    assert_eq!(
        TcString::decode(&SPEC_TC[..10]).unwrap_err(),
        SignalError::Truncated {
            field: "LastUpdated",
            offset: 42,
            needed: 36,
            available: 18
        }
    );
    // Bitfield shorter than MaxVendorId says.
    let mut bits = handmade_core_bits(5, true, &[]);
    let vc = 213;
    bits.truncate(vc);
    bits += &int(500, 16);
    bits += "0";
    bits += &"1".repeat(100);
    match TcString::decode_structure(&b64(&bits)).unwrap_err() {
        SignalError::Truncated {
            field,
            offset,
            needed,
            ..
        } => {
            assert_eq!(field, "VendorConsents.BitField");
            assert_eq!(offset, 230);
            assert_eq!(needed, 500);
        }
        e => panic!("unexpected {e:?}"),
    }
    // Range with start > end.
    let mut bits = handmade_core_bits(5, true, &[]);
    bits.truncate(vc);
    bits += &int(50, 16);
    bits += "1";
    bits += &int(1, 12);
    bits += "1";
    bits += &int(20, 16);
    bits += &int(10, 16);
    assert_eq!(
        TcString::decode_structure(&b64(&bits)).unwrap_err(),
        SignalError::RangeStartAfterEnd {
            field: "VendorConsents.EndVendorId",
            offset: 242,
            start: 20,
            end: 10
        }
    );
    // A range id above MaxVendorId and overlapping ranges are read as the
    // reference libraries read them, and reported as violations (refused
    // in strict mode): see `tcf_range_violations_*` below.
    // Duplicate segment and unknown segment type.
    let core = b64(&handmade_core_bits(5, true, &[]));
    let dv = b64(&disclosed_bits());
    assert_eq!(
        TcString::decode(&format!("{core}.{dv}.{dv}")).unwrap_err(),
        SignalError::DuplicateSegment {
            segment_type: 1,
            index: 2
        }
    );
    assert_eq!(
        TcString::decode(&format!("{core}.{}", b64("101"))).unwrap_err(),
        SignalError::UnsupportedVersion {
            field: "SegmentType",
            offset: 0,
            found: 5
        }
    );
    assert_eq!(
        TcString::decode("").unwrap_err(),
        SignalError::Empty {
            what: "TC string core segment"
        }
    );
    // Missing NumPubRestrictions: 247 bits, padded to 252.
    let mut bits = handmade_core_bits(5, true, &[]);
    bits.truncate(vc);
    bits += &int(0, 16);
    bits += "0";
    bits += &int(0, 16);
    bits += "0";
    assert_eq!(
        TcString::decode_structure(&b64(&bits)).unwrap_err(),
        SignalError::Truncated {
            field: "NumPubRestrictions",
            offset: 247,
            needed: 12,
            available: 5
        }
    );
}

#[test]
fn tcf_json_uses_spec_names_and_round_trips() {
    let tc = TcString::decode(&handmade_tc()).unwrap();
    let json = tc.to_json().unwrap();
    for key in [
        "\"type\":\"tcf\"",
        "\"cmpId\":300",
        "\"cmpVersion\":5",
        "\"consentLanguage\":\"FR\"",
        "\"policyVersion\":5",
        "\"isServiceSpecific\":true",
        "\"purposeConsents\":[1,2,3,4,7]",
        "\"purposeLegitimateInterests\":[2,7,9]",
        "\"publisherCountryCode\":\"FR\"",
        "\"specialFeatureOptins\":[1,2]",
        "\"maxVendorId\":12",
        "\"vendorsDisclosed\":[",
        "\"segments\":[\"vendorsDisclosed\",\"publisherTC\"]",
        "\"numCustomPurposes\":2",
    ] {
        assert!(json.contains(key), "{key} missing in {json}");
    }
    let back = TcString::from_json(&json).unwrap();
    assert_eq!(back, tc);
    assert_eq!(back.encode().unwrap(), handmade_tc());
}

#[test]
fn tcf_encode_rejects_invalid_structs() {
    let mut tc = TcString::example();
    tc.core.consent_language = "en".into();
    assert!(matches!(
        tc.encode(),
        Err(SignalError::Encode {
            field: "ConsentLanguage",
            ..
        })
    ));
    let mut tc = TcString::example();
    tc.core.purposes_consent = IdSet::from_ids([3, 25]);
    assert!(matches!(
        tc.encode(),
        Err(SignalError::Encode {
            field: "PurposesConsent",
            ..
        })
    ));
    let mut tc = TcString::example();
    tc.segments.push(Segment::PublisherTc(PublisherTc {
        pub_purposes_consent: IdSet::new(),
        pub_purposes_li_transparency: IdSet::new(),
        num_custom_purposes: 2,
        custom_purposes_consent: IdSet::from_ids([3]),
        custom_purposes_li_transparency: IdSet::new(),
    }));
    assert!(matches!(
        tc.encode(),
        Err(SignalError::Encode {
            field: "CustomPurposesConsent",
            ..
        })
    ));
    let mut tc = TcString::example();
    tc.segments.push(tc.segments[0].clone());
    assert!(matches!(
        tc.encode(),
        Err(SignalError::Encode {
            field: "SegmentType",
            ..
        })
    ));
    let mut tc = TcString::example();
    tc.core.cmp_id = 4096;
    assert!(matches!(
        tc.encode(),
        Err(SignalError::Encode { field: "CmpId", .. })
    ));
    let mut tc = TcString::example();
    tc.core.vendor_consents.encoding = VendorEncoding::Range {
        entries: vec![VendorRange { start: 6, end: 4 }],
    };
    assert!(matches!(
        tc.encode(),
        Err(SignalError::Encode {
            field: "VendorConsents",
            ..
        })
    ));
    // Overlapping entries are written as given (a decoded string that has
    // them encodes back) and reported when read.
    let mut tc = TcString::example();
    tc.core.vendor_consents.encoding = VendorEncoding::Range {
        entries: vec![
            VendorRange { start: 1, end: 5 },
            VendorRange { start: 4, end: 6 },
        ],
    };
    let s = tc.encode().unwrap();
    let d = TcString::decode_with(&s, &TcfOptions::lenient()).unwrap();
    assert_eq!(d.tc, tc);
    assert!(d.violations.iter().any(|v| v.reason == OVERLAP_REASON));
    assert!(TcString::decode(&s).is_err());
}

// ---------------------------------------------------------------------
// GPP

#[test]
fn gpp_header_examples_from_spec() {
    assert_eq!(decode_header("DBABM").unwrap(), (1, vec![2]));
    assert_eq!(decode_header("DBABMA").unwrap(), (1, vec![2]));
    assert_eq!(decode_header("DBACNY").unwrap(), (1, vec![2, 6]));
    assert_eq!(decode_header("DBACNYA").unwrap(), (1, vec![2, 6]));
    assert_eq!(decode_header("DBABjw").unwrap(), (1, vec![5, 6]));
    assert_eq!(encode_header(&[2], Padding::Sextet).unwrap(), "DBABM");
    assert_eq!(encode_header(&[2], Padding::Byte).unwrap(), "DBABMA");
    assert_eq!(encode_header(&[2, 6], Padding::Sextet).unwrap(), "DBACNY");
    assert_eq!(encode_header(&[2, 6], Padding::Byte).unwrap(), "DBACNYA");
    assert_eq!(encode_header(&[5, 6], Padding::Sextet).unwrap(), "DBABjw");
    // Range(Fibonacci) example from the data-type table: [3,5,6,7,8].
    let bits = format!(
        "{}{}{}",
        int(3, 6),
        int(1, 6),
        "000000000010".to_string() + "0" + "0011" + "1" + "011" + "0011"
    );
    assert_eq!(
        decode_header(&b64(&bits)).unwrap(),
        (1, vec![3, 5, 6, 7, 8])
    );
    assert!(encode_header(&[6, 2], Padding::Byte).is_err());
}

#[test]
fn gpp_full_examples_from_spec() {
    let lenient = GppOptions {
        tcf: TcfOptions::lenient(),
    };
    let s = format!("DBACNYA~{SPEC_TC}~1YNN");
    let d = GppString::decode_with(&s, &lenient).unwrap();
    assert_eq!(d.gpp.section_ids(), vec![2, 6]);
    assert_eq!(d.gpp.tcf().unwrap().core.cmp_id, 31);
    let u = d.gpp.usp().unwrap();
    assert_eq!(
        (u.notice, u.opt_out_sale, u.lspa_covered),
        (UspFlag::Yes, UspFlag::No, UspFlag::No)
    );
    assert_eq!(d.tcf_violations.len(), 1);
    assert_eq!(d.gpp.encode().unwrap(), s);
    // Strict options reject the old policy version inside the section.
    assert!(matches!(
        GppString::decode(&s).unwrap_err(),
        SignalError::InSection {
            section_id: 2,
            index: 0,
            ..
        }
    ));

    // The specification's example puts a TCF EU string under id 5 (the
    // Canadian TCF): it is not a tcfcav1 section, and iabgpp-es refuses it
    // too ("Unable to decode TcfCaV1CoreSegment").
    let s = format!("DBABjw~{SPEC_TC}~1YNN");
    assert!(matches!(
        GppString::decode(&s).unwrap_err(),
        SignalError::InSection { section_id: 5, .. }
    ));
    // A tcfcav1 section decodes; an id without a name is kept opaque.
    let ca = privseg::consent::signals::tcfca::TcfCaV1::new();
    let s = format!("DBABjw~{}~1YNN", ca.encode().unwrap());
    let g = GppString::decode(&s).unwrap();
    assert_eq!(g.section_ids(), vec![5, 6]);
    assert_eq!(g.tcfca(), Some(&ca));
    assert!(g.unknown_section_ids().is_empty());
    assert_eq!(g.encode().unwrap(), s);
    let s = format!("{}~{SPEC_TC}", encode_header(&[40], Padding::Byte).unwrap());
    let g = GppString::decode(&s).unwrap();
    assert_eq!(g.unknown_section_ids(), vec![40]);
    assert_eq!(
        g.sections[0],
        GppSection::Unknown {
            id: 40,
            text: SPEC_TC.to_string()
        }
    );
    assert_eq!(g.encode().unwrap(), s);
}

#[test]
fn gpp_errors() {
    let lenient = GppOptions {
        tcf: TcfOptions::lenient(),
    };
    assert_eq!(
        GppString::decode_with(&format!("DBACNYA~{SPEC_TC}"), &lenient).unwrap_err(),
        SignalError::SectionMissing {
            section_id: 6,
            index: 1
        }
    );
    assert_eq!(
        GppString::decode_with(&format!("DBACNYA~{SPEC_TC}~"), &lenient).unwrap_err(),
        SignalError::SectionMissing {
            section_id: 6,
            index: 1
        }
    );
    // A section in the wrong place fails inside that section.
    assert!(matches!(
        GppString::decode("DBACNYA~1YNN~1YNN").unwrap_err(),
        SignalError::InSection {
            section_id: 2,
            index: 0,
            ..
        }
    ));
    assert_eq!(
        GppString::decode("DBABTA~1YNN~1YNN").unwrap_err(),
        SignalError::ExtraSections {
            declared: 1,
            found: 2
        }
    );
    assert_eq!(
        GppString::decode("CBABTA~1YNN").unwrap_err(),
        SignalError::UnsupportedVersion {
            field: "Type",
            offset: 0,
            found: 2
        }
    );
    assert_eq!(
        GppString::decode("DCABTA~1YNN").unwrap_err(),
        SignalError::UnsupportedVersion {
            field: "Version",
            offset: 6,
            found: 2
        }
    );
    assert!(matches!(
        GppString::decode("DBABTA~2YNN").unwrap_err(),
        SignalError::InSection {
            section_id: 6,
            index: 0,
            ..
        }
    ));
    assert!(matches!(
        GppString::decode("DBAB").unwrap_err(),
        SignalError::Truncated { .. }
    ));
    assert_eq!(
        GppString::decode("").unwrap_err(),
        SignalError::Empty { what: "GPP header" }
    );
}

// ---------------------------------------------------------------------
// usnat

fn usnat_bits(version: u64, sensitive: &[u64], child: &[u64]) -> String {
    let mut s = int(version, 6);
    for v in [1, 1, 1, 1, 0, 0, 1, 2, 1] {
        s += &int(v, 2);
    }
    for &v in sensitive {
        s += &int(v, 2);
    }
    for &v in child {
        s += &int(v, 2);
    }
    for v in [0, 1, 1, 2] {
        s += &int(v, 2);
    }
    s
}

#[test]
fn usnat_v1_and_v2_vectors() {
    let sens12 = [0, 1, 2, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    let s1 = b64(&usnat_bits(1, &sens12, &[1, 2]));
    let u = UsNat::decode(&s1).unwrap();
    assert_eq!(u.version, 1);
    assert_eq!(u.sharing_notice, 1);
    assert_eq!(u.sensitive_data_processing_opt_out_notice, 0);
    assert_eq!(
        (
            u.sale_opt_out,
            u.sharing_opt_out,
            u.targeted_advertising_opt_out
        ),
        (1, 2, 1)
    );
    assert_eq!(
        u.sensitive_data_processing,
        sens12.iter().map(|&v| v as u8).collect::<Vec<_>>()
    );
    assert_eq!(u.known_child_sensitive_data_consents, vec![1, 2]);
    assert_eq!(u.personal_data_consents, 0);
    assert_eq!(u.mspa_covered_transaction, 1);
    assert_eq!(u.mspa_opt_out_option_mode, 1);
    assert_eq!(u.mspa_service_provider_mode, 2);
    assert_eq!(u.gpc, None);
    assert_eq!(u.encode().unwrap(), s1);

    let sens16 = [2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2, 1, 2];
    let s2 = format!("{}.YA", b64(&usnat_bits(2, &sens16, &[1, 1, 2])));
    let u = UsNat::decode(&s2).unwrap();
    assert_eq!(u.version, 2);
    assert_eq!(u.sensitive_data_processing.len(), 16);
    assert_eq!(u.sensitive_data_processing[15], 2);
    assert_eq!(u.known_child_sensitive_data_consents, vec![1, 1, 2]);
    assert_eq!(u.mspa_service_provider_mode, 2);
    assert_eq!(u.gpc, Some(true));
    assert_eq!(u.encode().unwrap(), s2);
    let s3 = format!("{}.QA", b64(&usnat_bits(2, &sens16, &[1, 1, 2])));
    assert_eq!(UsNat::decode(&s3).unwrap().gpc, Some(false));

    // In a GPP string: header for section 7 alone.
    let header = encode_header(&[7], Padding::Byte).unwrap();
    let g = GppString::decode(&format!("{header}~{s2}")).unwrap();
    assert_eq!(g.usnat().unwrap().gpc, Some(true));
}

#[test]
fn usnat_errors() {
    let bits = usnat_bits(3, &[0; 16], &[0; 3]);
    assert_eq!(
        UsNat::decode(&b64(&bits)).unwrap_err(),
        SignalError::UnsupportedVersion {
            field: "Version",
            offset: 0,
            found: 3
        }
    );
    // v2 truncated after 40 bits.
    let bits = &usnat_bits(2, &[0; 16], &[0; 3])[..36];
    assert!(matches!(
        UsNat::decode(&b64(bits)).unwrap_err(),
        SignalError::Truncated {
            field: "SensitiveDataProcessing",
            ..
        }
    ));
    let ok = b64(&usnat_bits(2, &[0; 16], &[0; 3]));
    assert_eq!(
        UsNat::decode(&format!("{ok}.gA")).unwrap_err(),
        SignalError::UnsupportedVersion {
            field: "SubsectionType",
            offset: 0,
            found: 2
        }
    );
    let mut u = UsNat::new(2);
    u.sensitive_data_processing.pop();
    assert!(u.encode().is_err());
}

// ---------------------------------------------------------------------
// US Privacy and GPC

#[test]
fn usp_vectors() {
    let u = UsPrivacy::decode("1YNN").unwrap();
    assert_eq!(
        (u.version, u.notice, u.opt_out_sale, u.lspa_covered),
        (1, UspFlag::Yes, UspFlag::No, UspFlag::No)
    );
    let u = UsPrivacy::decode("1NYN").unwrap();
    assert_eq!(u.opt_out_sale, UspFlag::Yes);
    assert_eq!(u.notice, UspFlag::No);
    let u = UsPrivacy::decode("1-Y-").unwrap();
    assert_eq!(
        (u.notice, u.lspa_covered),
        (UspFlag::NotApplicable, UspFlag::NotApplicable)
    );
    assert!(UsPrivacy::decode("1---").unwrap().ccpa_not_applicable());
    assert!(!UsPrivacy::decode("1YNN").unwrap().ccpa_not_applicable());
    assert_eq!(UsPrivacy::decode("1yny").unwrap().encode(), "1YNY");
    assert_eq!(
        UsPrivacy::decode("2YNN").unwrap_err(),
        SignalError::InvalidUsPrivacy {
            position: 0,
            reason: "only version 1 is defined"
        }
    );
    assert!(matches!(
        UsPrivacy::decode("1YXN").unwrap_err(),
        SignalError::InvalidUsPrivacy { position: 2, .. }
    ));
    assert!(matches!(
        UsPrivacy::decode("1YN").unwrap_err(),
        SignalError::InvalidUsPrivacy { .. }
    ));
    assert!(matches!(
        UsPrivacy::decode("1YNNN").unwrap_err(),
        SignalError::InvalidUsPrivacy { .. }
    ));
    assert!(UsPrivacy::decode("1ÿN").is_err());
}

#[test]
fn gpc_header_values() {
    for v in ["1", " 1", "1 ", "\t1\r\n"] {
        assert!(gpc_from_header(v), "{v:?}");
    }
    for v in ["", "0", "true", "01", "1.0", "11", "yes", "1,1"] {
        assert!(!gpc_from_header(v), "{v:?}");
    }
    assert!(gpc_from_headers(["0", " 1"]));
    assert!(!gpc_from_headers(["0", "true"]));
    assert!(!gpc_from_headers(std::iter::empty()));
}

// ---------------------------------------------------------------------
// Mapping

fn mapping() -> SignalMapping {
    SignalMapping::from_json(
        r#"{
            "tcfPurposes": {"1": "device.storage", "4": "marketing.advertising.personalised", "9": "analytics.audience"},
            "tcfSpecialFeatures": {"1": "location.precise", "2": "device.scanning"},
            "tcfLiObjections": true,
            "usnat": {
                "sale": "marketing.sale",
                "targetedAdvertising": "marketing.advertising.third_party",
                "sensitiveData": {"2": "sensitive.religion", "3": "sensitive.health", "9": "sensitive.id"},
                "knownChild": {"1": "child.13_16"}
            },
            "uspSale": "marketing.sale",
            "gpc": "marketing.sale_share"
        }"#,
    )
    .unwrap()
}

#[test]
fn mapping_tcf() {
    let raw = handmade_tc();
    let tc = TcString::decode(&raw).unwrap();
    let d = mapping().tcf_decisions(&raw, &tc);
    let got: Vec<(Option<&str>, SignalDecisionKind)> =
        d.iter().map(|x| (x.purpose.as_deref(), x.kind)).collect();
    use SignalDecisionKind::*;
    assert_eq!(
        got,
        vec![
            (Some("device.storage"), ConsentGranted),
            (Some("device.storage"), Objection),
            (Some("marketing.advertising.personalised"), ConsentGranted),
            (Some("marketing.advertising.personalised"), Objection),
            (Some("analytics.audience"), ConsentRefused),
            (Some("location.precise"), ConsentGranted),
            (Some("device.scanning"), ConsentGranted),
        ]
    );
    let p = &d[0].proof;
    assert_eq!(p.format, "tcf");
    assert_eq!(p.cmp_id, Some(300));
    assert_eq!(p.cmp_version, Some(5));
    assert_eq!(p.created, Some(1_700_000_000));
    assert_eq!(p.sha256_hex, sha256_hex(&raw));
    assert_eq!(d[0].at, 1_700_000_012);
}

#[test]
fn mapping_usnat_usp_gpc_gpp() {
    use SignalDecisionKind::*;
    assert_eq!(
        sha256_hex("abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let m = mapping();
    let sens = [0, 1, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    let raw = format!("{}.YA", b64(&usnat_bits(2, &sens, &[2, 0, 0])));
    let u = UsNat::decode(&raw).unwrap();
    let d = m.usnat_decisions(&raw, &u, 1_800_000_000);
    let got: Vec<(Option<&str>, SignalDecisionKind)> =
        d.iter().map(|x| (x.purpose.as_deref(), x.kind)).collect();
    assert_eq!(
        got,
        vec![
            (Some("marketing.sale"), OptOutSaleShare),
            (None, OptInSaleShare),
            (Some("marketing.advertising.third_party"), OptOutSaleShare),
            (Some("sensitive.religion"), LimitSensitive),
            (Some("sensitive.health"), ConsentGranted),
            (Some("sensitive.id"), LimitSensitive),
            (Some("child.13_16"), ConsentGranted),
            (Some("marketing.sale_share"), Gpc),
        ]
    );
    assert!(
        d.iter()
            .all(|x| x.at == 1_800_000_000 && x.proof.format == "gpp" && x.proof.cmp_id.is_none())
    );

    let d = m.usp_decisions("1YYN", &UsPrivacy::decode("1YYN").unwrap(), 5);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].kind, d[0].purpose.as_deref()),
        (OptOutSaleShare, Some("marketing.sale"))
    );
    assert_eq!(d[0].proof.format, "usp");
    assert!(
        m.usp_decisions("1---", &UsPrivacy::decode("1---").unwrap(), 5)
            .is_empty()
    );

    let d = m.gpc_decisions(" 1 ", 7);
    assert_eq!(d.len(), 1);
    assert_eq!(
        (d[0].kind, d[0].at, d[0].proof.format.as_str()),
        (Gpc, 7, "gpc")
    );
    assert!(m.gpc_decisions("0", 7).is_empty());

    let raw = format!("DBACNYA~{SPEC_TC}~1YNN");
    let g = GppString::decode_with(
        &raw,
        &GppOptions {
            tcf: TcfOptions::lenient(),
        },
    )
    .unwrap()
    .gpp;
    let d = m.gpp_decisions(&raw, &g, 9);
    // 3 purposes refused (+2 objections: purposes 1 and 4 have no LI; 9 too),
    // 2 special features refused, then the USP opt-in.
    let kinds: Vec<_> = d.iter().map(|x| x.kind).collect();
    assert_eq!(
        kinds,
        vec![
            ConsentRefused,
            Objection,
            ConsentRefused,
            Objection,
            ConsentRefused,
            Objection,
            ConsentRefused,
            ConsentRefused,
            OptInSaleShare
        ]
    );
    assert!(
        d.iter()
            .all(|x| x.proof.format == "gpp" && x.proof.cmp_id == Some(31))
    );
    assert_eq!(d[0].at, 1_650_492_000);
    assert_eq!(d.last().unwrap().at, 9);
}

#[test]
fn tcf_legacy_allowed_vendors_and_empty_segments() {
    // `IAAA` = DisclosedVendors with MaxVendorId 0, `QAAA` = AllowedVendors
    // with MaxVendorId 0 (as found in GPP test strings).
    let core = b64(&handmade_core_bits(5, true, &[]));
    let s = format!("{core}.IAAA.QAAA");
    let tc = TcString::decode(&s).unwrap();
    assert_eq!(tc.disclosed_vendors().unwrap().max_vendor_id, 0);
    assert_eq!(tc.allowed_vendors().unwrap().max_vendor_id, 0);
    assert!(matches!(tc.segments[1], Segment::AllowedVendors(_)));
    assert_eq!(tc.encode().unwrap(), s);
}

#[test]
fn tcf_unsorted_ranges_allowed_overlapping_reported() {
    let vc = 213;
    let entry = |a: u64, b: u64| format!("1{}{}", int(a, 16), int(b, 16));
    let mut bits = handmade_core_bits(5, true, &[]);
    bits.truncate(vc);
    bits += &int(30, 16);
    bits += "1";
    bits += &int(2, 12);
    bits += &entry(20, 30);
    bits += &entry(1, 5);
    bits += &int(0, 16);
    bits += "0";
    bits += &int(0, 12);
    let s = b64(&bits);
    let tc = TcString::decode_structure(&s).unwrap();
    assert_eq!(
        tc.core.vendor_consents.encoding,
        VendorEncoding::Range {
            entries: vec![
                VendorRange { start: 20, end: 30 },
                VendorRange { start: 1, end: 5 }
            ]
        }
    );
    assert_eq!(tc.encode().unwrap(), s);

    // Overlapping entries: read (the union of the ids), reported.
    let mut bits = handmade_core_bits(5, true, &[]);
    bits.truncate(vc);
    bits += &int(30, 16);
    bits += "1";
    bits += &int(2, 12);
    bits += &entry(20, 30);
    bits += &entry(1, 20);
    bits += &int(0, 16);
    bits += "0";
    bits += &int(0, 12);
    let s = b64(&bits);
    let d = TcString::decode_with(&s, &TcfOptions::lenient()).unwrap();
    assert_eq!(
        d.tc.core.vendor_consents.vendor_ids(),
        (1..=30).collect::<Vec<u16>>()
    );
    let v: Vec<_> = d
        .violations
        .iter()
        .filter(|v| v.field.starts_with("VendorConsents"))
        .map(|v| (v.field, v.offset))
        .collect();
    assert_eq!(v, [("VendorConsents.StartOrOnlyVendorId", Some(275))]);
}

/// A complete core segment (policy 5, service-specific) whose vendor
/// consent section is `consent` (MaxVendorId onwards), with an empty LI
/// section and no publisher restrictions, followed by a DisclosedVendors
/// segment.
fn core_with_consent_section(consent: &str) -> String {
    let mut bits = handmade_core_bits(5, true, &[]);
    bits.truncate(213);
    bits += consent;
    bits += &int(0, 16);
    bits += "0";
    bits += &int(0, 12);
    format!("{}.{}", b64(&bits), b64(&disclosed_bits()))
}

#[test]
fn tcf_range_violations_id_above_max_vendor_id() {
    // MaxVendorId 10, one entry: vendor 11.
    let s = core_with_consent_section(&format!("{}1{}0{}", int(10, 16), int(1, 12), int(11, 16)));
    let d = TcString::decode_with(&s, &TcfOptions::lenient()).unwrap();
    assert_eq!(d.tc.core.vendor_consents.vendor_ids(), [11]);
    assert_eq!(
        d.violations,
        [Violation {
            field: "VendorConsents.StartOrOnlyVendorId",
            offset: Some(242),
            reason: ABOVE_MAX_REASON,
        }]
    );
    // Strict decoding (and so the consent events) refuses it.
    assert_eq!(
        TcString::decode(&s).unwrap_err(),
        SignalError::PolicyViolation {
            field: "VendorConsents.StartOrOnlyVendorId",
            offset: Some(242),
            reason: ABOVE_MAX_REASON,
        }
    );
    // The JSON lists it, and the string encodes back as it was.
    let json = privseg::consent::signals::decode_to_json(&s).unwrap();
    assert!(json.contains("\"offset\":242"), "{json}");
    assert_eq!(d.tc.encode().unwrap(), s);
}

#[test]
fn tcf_range_violations_overlaps_in_every_section() {
    let entry = |a: u64, b: u64| format!("1{}{}", int(a, 16), int(b, 16));
    // Consent section: 1..=5 then 5..=7 (overlap at the second entry).
    let s = core_with_consent_section(&format!(
        "{}1{}{}{}",
        int(10, 16),
        int(2, 12),
        entry(1, 5),
        entry(5, 7)
    ));
    let d = TcString::decode_with(&s, &TcfOptions::lenient()).unwrap();
    assert_eq!(
        d.tc.core.vendor_consents.vendor_ids(),
        [1, 2, 3, 4, 5, 6, 7]
    );
    assert_eq!(
        d.violations,
        [Violation {
            field: "VendorConsents.StartOrOnlyVendorId",
            offset: Some(275),
            reason: OVERLAP_REASON,
        }]
    );
    assert!(matches!(
        TcString::decode(&s).unwrap_err(),
        SignalError::PolicyViolation {
            offset: Some(275),
            ..
        }
    ));
    // DisclosedVendors segment: offsets count from the segment's first bit.
    let core = s.split('.').next().unwrap();
    let mut seg = String::from("001");
    seg += &int(9, 16);
    seg += "1";
    seg += &int(2, 12);
    seg += &entry(2, 9);
    seg += &format!("0{}", int(3, 16));
    let s2 = format!("{core}.{}", b64(&seg));
    let d = TcString::decode_with(&s2, &TcfOptions::lenient()).unwrap();
    let v: Vec<_> = d.violations.iter().map(|v| (v.field, v.offset)).collect();
    assert_eq!(
        v,
        [
            ("VendorConsents.StartOrOnlyVendorId", Some(275)),
            ("DisclosedVendors.StartOrOnlyVendorId", Some(3 + 29 + 33)),
        ]
    );
    assert_eq!(
        d.tc.disclosed_vendors().unwrap().vendor_ids(),
        (2..=9).collect::<Vec<u16>>()
    );
}

#[test]
fn gpp_json_names_and_encode_from_json() {
    let sens = [0u64; 16];
    let usnat = format!("{}.YA", b64(&usnat_bits(2, &sens, &[0, 0, 0])));
    let header = encode_header(&[6, 7], Padding::Byte).unwrap();
    let raw = format!("{header}~1YNN~{usnat}");
    let g = GppString::decode(&raw).unwrap();
    let json = g.to_json().unwrap();
    for key in [
        "\"type\":\"gpp\"",
        "\"sectionIds\":[6,7]",
        "\"uspv1\":{\"type\":\"usp\",\"version\":1,\"notice\":\"Y\",\"optOutSale\":\"N\",\"lspaCovered\":\"N\"}",
        "\"usnat\":{",
        "\"saleOptOut\":1",
        "\"sharingOptOut\":2",
        "\"mspaServiceProviderMode\":2",
        "\"gpc\":true",
    ] {
        assert!(json.contains(key), "{key} missing in {json}");
    }
    let back = GppString::from_json(&json).unwrap();
    assert_eq!(back.encode().unwrap(), raw);
}

#[test]
fn events_refuse_what_decoding_only_reports() {
    use privseg::consent::signals::events::{SignalEventError, SignalNotice, signal_to_events};
    let mapping = SignalMapping::from_json(r#"{"tcfPurposes": {"1": "analytics.basic"}}"#).unwrap();
    let notice = SignalNotice {
        version: "v1".into(),
        sha256_hex: "0".repeat(64),
    };
    // Policy version 2: decodes (the violation listed), but no events.
    let mut old = TcString::example();
    old.core.tcf_policy_version = 2;
    let old = old.encode().unwrap();
    let json = privseg::consent::signals::decode_to_json(&old).unwrap();
    assert!(
        json.contains(r#"{"field":"TcfPolicyVersion","offset":132,"#),
        "{json}"
    );
    let err =
        signal_to_events("s-1", &old, &mapping, &TcfOptions::default(), &notice, 0).unwrap_err();
    assert!(matches!(err, SignalEventError::Refused(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "signal refused: policy violation in TcfPolicyVersion at bit 132: policy version below the accepted minimum"
    );
    // A v2.3 string without DisclosedVendors: refused, no bit offset.
    let mut no_dv = TcString::example();
    no_dv.segments.clear();
    let no_dv = no_dv.encode().unwrap();
    let err = signal_to_events("s-1", &no_dv, &mapping, &TcfOptions::default(), &notice, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "signal refused: policy violation in DisclosedVendors: TCF v2.3 requires the DisclosedVendors segment"
    );
    // Strict decoding refuses the same way.
    let strict = privseg::consent::signals::DecodeOptions {
        strict: true,
        ..Default::default()
    };
    assert!(privseg::consent::signals::decode_to_json_with(&no_dv, &strict).is_err());
    // A valid string gives the events.
    let ok = TcString::example().encode().unwrap();
    let events =
        signal_to_events("s-1", &ok, &mapping, &TcfOptions::default(), &notice, 0).unwrap();
    assert_eq!(events.len(), 1);
}
