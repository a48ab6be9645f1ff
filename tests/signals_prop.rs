//! Property tests: round trips over generated field structs, and robustness
//! (no panic) on arbitrary and corrupted input.

use proptest::prelude::*;
use proptest::sample::Index;

use privseg::consent::signals::gpp::{GppOptions, GppSection, GppString};
use privseg::consent::signals::tcf::{
    CoreSegment, IdSet, PublisherRestriction, PublisherTc, RestrictionType, Segment, TcString,
    TcfOptions, VendorBits, VendorEncoding, VendorRange, VendorSection,
};
use privseg::consent::signals::tcfca::{CaRestriction, CaValue, CaVendors, TcfCaV1};
use privseg::consent::signals::usnat::UsNat;
use privseg::consent::signals::usp::{UsPrivacy, UspFlag};
use privseg::consent::signals::usstate::{FieldKind, FieldValue, SECTIONS, UsStateSection};

fn ids(max: u8) -> impl Strategy<Value = IdSet> {
    proptest::collection::btree_set(1..=max, 0..=usize::from(max)).prop_map(IdSet::from_ids)
}

fn ranges(max_entries: usize) -> impl Strategy<Value = Vec<VendorRange>> {
    proptest::collection::vec((1u16..40, 0u16..12), 0..max_entries).prop_map(|steps| {
        let mut out = Vec::new();
        let mut last = 0u16;
        for (gap, len) in steps {
            let start = last + gap;
            let end = start + len;
            out.push(VendorRange { start, end });
            last = end;
        }
        out
    })
}

fn vendor_section() -> impl Strategy<Value = VendorSection> {
    prop_oneof![
        (0u16..400).prop_flat_map(|max| {
            let ids = if max == 0 {
                Just(VendorBits::new()).boxed()
            } else {
                proptest::collection::btree_set(1..=max, 0..40)
                    .prop_map(VendorBits::from_ids)
                    .boxed()
            };
            ids.prop_map(move |ids| VendorSection {
                max_vendor_id: max,
                encoding: VendorEncoding::Bitfield { ids },
            })
        }),
        (ranges(12), 0u16..5).prop_map(|(entries, extra)| VendorSection {
            max_vendor_id: entries.last().map_or(0, |e| e.end) + extra,
            encoding: VendorEncoding::Range { entries },
        }),
    ]
}

fn restriction() -> impl Strategy<Value = PublisherRestriction> {
    (0u8..64, 0u8..4, ranges(5)).prop_map(|(purpose_id, t, entries)| PublisherRestriction {
        purpose_id,
        restriction_type: match t {
            0 => RestrictionType::NotAllowed,
            1 => RestrictionType::RequireConsent,
            2 => RestrictionType::RequireLegitimateInterest,
            _ => RestrictionType::Undefined,
        },
        entries,
    })
}

fn publisher_tc() -> impl Strategy<Value = PublisherTc> {
    (ids(24), ids(24), 0u8..64).prop_flat_map(|(c, l, n)| {
        let custom = if n == 0 {
            Just((IdSet::new(), IdSet::new())).boxed()
        } else {
            (ids(n), ids(n)).boxed()
        };
        custom.prop_map(move |(cc, cl)| PublisherTc {
            pub_purposes_consent: c,
            pub_purposes_li_transparency: l,
            num_custom_purposes: n,
            custom_purposes_consent: cc,
            custom_purposes_li_transparency: cl,
        })
    })
}

prop_compose! {
    fn core()(
        created in 0u64..(1 << 36),
        last_updated in 0u64..(1 << 36),
        cmp_id in 0u16..4096,
        cmp_version in 0u16..4096,
        consent_screen in 0u8..64,
        consent_language in "[A-Z]{2}",
        vendor_list_version in 0u16..4096,
        tcf_policy_version in 0u8..64,
        flags in any::<(bool, bool, bool)>(),
        special_feature_opt_ins in ids(12),
        purposes_consent in ids(24),
        purposes_li_transparency in ids(24),
        publisher_cc in "[A-Z]{2}",
        vendor_consents in vendor_section(),
        vendor_legitimate_interests in vendor_section(),
        publisher_restrictions in proptest::collection::vec(restriction(), 0..4),
    ) -> CoreSegment {
        CoreSegment {
            version: 2,
            created,
            last_updated,
            cmp_id,
            cmp_version,
            consent_screen,
            consent_language,
            vendor_list_version,
            tcf_policy_version,
            is_service_specific: flags.0,
            use_non_standard_texts: flags.1,
            special_feature_opt_ins,
            purposes_consent,
            purposes_li_transparency,
            purpose_one_treatment: flags.2,
            publisher_cc,
            vendor_consents,
            vendor_legitimate_interests,
            publisher_restrictions,
        }
    }
}

fn tc_string() -> impl Strategy<Value = TcString> {
    (
        core(),
        proptest::option::of(vendor_section()),
        proptest::option::of(vendor_section()),
        proptest::option::of(publisher_tc()),
        Just(()).prop_perturb(|_, mut rng| rng.random_range(0..6u8)),
    )
        .prop_map(|(core, dv, av, ptc, perm)| {
            let mut segments: Vec<Segment> = Vec::new();
            if let Some(v) = dv {
                segments.push(Segment::DisclosedVendors(v));
            }
            if let Some(v) = av {
                segments.push(Segment::AllowedVendors(v));
            }
            if let Some(p) = ptc {
                segments.push(Segment::PublisherTc(p));
            }
            if !segments.is_empty() {
                let n = segments.len();
                segments.rotate_left(usize::from(perm) % n);
                if perm >= 3 {
                    segments.reverse();
                }
            }
            TcString { core, segments }
        })
}

fn usnat() -> impl Strategy<Value = UsNat> {
    (1u8..=2).prop_flat_map(|version| {
        let (ns, nc) = if version == 1 { (12, 2) } else { (16, 3) };
        (
            proptest::collection::vec(0u8..4, 9),
            proptest::collection::vec(0u8..4, ns),
            proptest::collection::vec(0u8..4, nc),
            proptest::collection::vec(0u8..4, 4),
            proptest::option::of(any::<bool>()),
        )
            .prop_map(move |(two, sens, child, tail, gpc)| UsNat {
                version,
                sharing_notice: two[0],
                sale_opt_out_notice: two[1],
                sharing_opt_out_notice: two[2],
                targeted_advertising_opt_out_notice: two[3],
                sensitive_data_processing_opt_out_notice: two[4],
                sensitive_data_limit_use_notice: two[5],
                sale_opt_out: two[6],
                sharing_opt_out: two[7],
                targeted_advertising_opt_out: two[8],
                sensitive_data_processing: sens,
                known_child_sensitive_data_consents: child,
                personal_data_consents: tail[0],
                mspa_covered_transaction: tail[1],
                mspa_opt_out_option_mode: tail[2],
                mspa_service_provider_mode: tail[3],
                gpc,
            })
    })
}

/// A US state section with any 2-bit values (3 included: it decodes, as a
/// violation) and its sub-segment or not.
fn us_state() -> impl Strategy<Value = UsStateSection> {
    (
        0..SECTIONS.len(),
        proptest::collection::vec(0u8..4, 64),
        any::<bool>(),
    )
        .prop_map(|(i, raw, with_sub)| {
            let def = &SECTIONS[i];
            let mut s = UsStateSection::new(def.id).unwrap();
            let mut next = raw.into_iter().cycle();
            let fields = def.core.iter().chain(
                def.sub
                    .iter()
                    .flat_map(|d| d.fields.iter())
                    .filter(|_| with_sub),
            );
            for f in fields {
                let v = match f.kind {
                    FieldKind::Version | FieldKind::SubsectionType => continue,
                    FieldKind::List(n) => {
                        FieldValue::List((0..n).map(|_| next.next().unwrap()).collect())
                    }
                    FieldKind::Bool => FieldValue::Int(next.next().unwrap() % 2),
                    FieldKind::Enum | FieldKind::Covered => FieldValue::Int(next.next().unwrap()),
                };
                s.set(f.name, v).unwrap();
            }
            s
        })
}

fn ca_vendors() -> impl Strategy<Value = CaVendors> {
    (
        proptest::collection::btree_set(1u16..3000, 0..40),
        any::<bool>(),
        0u16..200,
        any::<bool>(),
    )
        .prop_map(|(ids, range, extra, below)| {
            let ids: Vec<u16> = ids.into_iter().collect();
            let top = ids.last().copied().unwrap_or(0);
            // A range list may go above its MaxId (a violation the decoder
            // reads); a bitfield holds its ids.
            let max_id = if range && below {
                top / 2
            } else {
                top.saturating_add(extra)
            };
            CaVendors { max_id, range, ids }
        })
}

/// A `tcfcav1` section with any values, encodings and segment order.
fn tcfca() -> impl Strategy<Value = TcfCaV1> {
    (
        (
            0u64..4096,
            0u64..64,
            0u64..(1 << 36),
            any::<bool>(),
            proptest::collection::vec(any::<bool>(), 60),
        ),
        (ca_vendors(), ca_vendors(), ca_vendors()),
        proptest::collection::vec((0u8..64, 0u8..4, ca_vendors()), 0..3),
        (0u64..64, proptest::collection::vec(any::<bool>(), 128)),
        proptest::sample::select(vec![
            vec![0u8],
            vec![0, 3],
            vec![0, 1],
            vec![0, 3, 1],
            vec![1, 0, 3],
            vec![3, 1, 0],
        ]),
    )
        .prop_map(
            |((cmp, screen, time, flag, bits), (ve, vi, dv), restr, (n, custom), order)| {
                let mut t = TcfCaV1::new();
                t.set("CmpId", CaValue::Int(cmp)).unwrap();
                t.set("ConsentScreen", CaValue::Int(screen)).unwrap();
                t.set("Created", CaValue::Time(time)).unwrap();
                t.set("UseNonStandardStacks", CaValue::Bool(flag)).unwrap();
                t.set("PurposesExpressConsent", CaValue::Bits(bits[..24].to_vec()))
                    .unwrap();
                t.set(
                    "SpecialFeatureExpressConsent",
                    CaValue::Bits(bits[24..36].to_vec()),
                )
                .unwrap();
                t.set("VendorExpressConsent", CaValue::Vendors(ve)).unwrap();
                t.set("VendorImpliedConsent", CaValue::Vendors(vi)).unwrap();
                let restrictions = restr
                    .into_iter()
                    .map(|(key, kind, vendors)| CaRestriction { key, kind, vendors })
                    .collect();
                t.set("PubRestrictions", CaValue::Restrictions(restrictions))
                    .unwrap();
                t.set("NumCustomPurposes", CaValue::Int(n)).unwrap();
                let n = n as usize;
                t.set(
                    "CustomPurposesExpressConsent",
                    CaValue::Bits(custom[..n].to_vec()),
                )
                .unwrap();
                t.set(
                    "CustomPurposesImpliedConsent",
                    CaValue::Bits(custom[64..64 + n].to_vec()),
                )
                .unwrap();
                t.set("DisclosedVendors", CaValue::Vendors(dv)).unwrap();
                if !order.contains(&3) {
                    t.publisher = None;
                }
                if !order.contains(&1) {
                    t.disclosed = None;
                }
                t.order = order;
                t
            },
        )
}

fn usp_flag() -> impl Strategy<Value = UspFlag> {
    prop_oneof![
        Just(UspFlag::Yes),
        Just(UspFlag::No),
        Just(UspFlag::NotApplicable)
    ]
}

fn usp() -> impl Strategy<Value = UsPrivacy> {
    (usp_flag(), usp_flag(), usp_flag()).prop_map(|(notice, opt_out_sale, lspa_covered)| {
        UsPrivacy {
            version: 1,
            notice,
            opt_out_sale,
            lspa_covered,
        }
    })
}

fn gpp() -> impl Strategy<Value = GppString> {
    (
        proptest::option::of(tc_string()),
        proptest::option::of(usp()),
        proptest::option::of(usnat()),
        proptest::collection::btree_map(
            prop_oneof![Just(1u16), 3u16..=4, 28u16..=40, Just(500u16)],
            "[A-Za-z0-9_.-]{1,24}",
            0..4,
        ),
        proptest::collection::vec(us_state(), 0..3),
        proptest::option::of(tcfca()),
    )
        .prop_map(|(tc, u, n, unknown, states, ca)| {
            let mut sections: Vec<GppSection> = unknown
                .into_iter()
                .map(|(id, text)| GppSection::Unknown { id, text })
                .collect();
            if let Some(ca) = ca {
                sections.push(GppSection::TcfCaV1(ca));
            }
            for s in states {
                if !sections.iter().any(|x| x.id() == s.id) {
                    sections.push(GppSection::UsState(s));
                }
            }
            if let Some(t) = tc {
                sections.push(GppSection::TcfEuV2(t));
            }
            if let Some(u) = u {
                sections.push(GppSection::UspV1(u));
            }
            if let Some(n) = n {
                sections.push(GppSection::UsNat(n));
            }
            sections.sort_by_key(GppSection::id);
            GppString {
                version: 1,
                sections,
            }
        })
}

fn permissive() -> GppOptions {
    GppOptions {
        tcf: TcfOptions {
            min_policy_version: 0,
            ..TcfOptions::lenient()
        },
    }
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn corrupt(s: &str, mode: u8, at: Index, ch: Index) -> String {
    let mut b = s.as_bytes().to_vec();
    if b.is_empty() {
        return String::new();
    }
    let i = at.index(b.len());
    match mode % 3 {
        0 => b[i] = ALPHABET[ch.index(ALPHABET.len())],
        1 => b.truncate(i),
        _ => {
            b.insert(i, ALPHABET[ch.index(ALPHABET.len())]);
        }
    }
    String::from_utf8(b).unwrap_or_default()
}

fn check_tc(s: &str) {
    match TcString::decode_with(s, &TcfOptions::lenient()) {
        Ok(d) => {
            let _ = d.tc.encode();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn check_gpp(s: &str) {
    match GppString::decode_with(s, &permissive()) {
        Ok(d) => {
            let _ = d.gpp.encode();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tcf_decode_encode_round_trip(tc in tc_string()) {
        let s = tc.encode().unwrap();
        let back = TcString::decode_structure(&s).unwrap();
        prop_assert_eq!(&back, &tc);
        prop_assert_eq!(back.encode().unwrap(), s);
        // The JSON holds sets, so ranges come back as maximal ascending
        // runs: the JSON is a fixed point, and what it says is unchanged.
        let json = tc.to_json().unwrap();
        let from = TcString::from_json(&json).unwrap();
        prop_assert_eq!(from.to_json().unwrap(), json.clone());
        let again = TcString::decode_structure(&from.encode().unwrap()).unwrap();
        prop_assert_eq!(again.to_json().unwrap(), json);
    }

    #[test]
    fn usnat_round_trip(u in usnat()) {
        let s = u.encode().unwrap();
        prop_assert_eq!(UsNat::decode(&s).unwrap(), u);
    }

    #[test]
    fn us_state_round_trip(u in us_state()) {
        let s = u.encode().unwrap();
        prop_assert_eq!(&UsStateSection::decode(u.id, &s).unwrap(), &u);
        let j = u.to_json_value().unwrap();
        prop_assert_eq!(UsStateSection::from_json_value(u.id, &j).unwrap(), u);
    }

    #[test]
    fn tcfca_round_trip(t in tcfca()) {
        let s = t.encode().unwrap();
        prop_assert_eq!(&TcfCaV1::decode(&s).unwrap(), &t);
        let j = t.to_json_value();
        prop_assert_eq!(&TcfCaV1::from_json_value(&j).unwrap(), &t);
    }

    #[test]
    fn usp_round_trip(u in usp()) {
        let s = u.encode();
        prop_assert_eq!(s.len(), 4);
        prop_assert_eq!(UsPrivacy::decode(&s).unwrap(), u);
    }

    #[test]
    fn gpp_round_trip(g in gpp()) {
        let s = g.encode().unwrap();
        let back = GppString::decode_with(&s, &permissive()).unwrap().gpp;
        prop_assert_eq!(&back, &g);
        prop_assert_eq!(back.encode().unwrap(), s);
        let json = g.to_json().unwrap();
        let from = GppString::from_json(&json).unwrap();
        prop_assert_eq!(from.to_json().unwrap(), json.clone());
        let again = GppString::decode_with(&from.encode().unwrap(), &permissive()).unwrap().gpp;
        prop_assert_eq!(again.to_json().unwrap(), json);
    }

    #[test]
    fn arbitrary_strings_do_not_panic(s in ".{0,80}") {
        check_tc(&s);
        check_gpp(&s);
        let _ = UsNat::decode(&s);
        let _ = UsPrivacy::decode(&s);
    }

    #[test]
    fn base64ish_strings_do_not_panic(s in "[A-Za-z0-9_.~-]{0,120}") {
        check_tc(&s);
        check_gpp(&s);
        let _ = UsNat::decode(&s);
    }

    #[test]
    fn corrupted_tc_strings_do_not_panic(tc in tc_string(), mode in 0u8..3, at in any::<Index>(), ch in any::<Index>()) {
        let s = tc.encode().unwrap();
        check_tc(&corrupt(&s, mode, at, ch));
    }

    #[test]
    fn corrupted_gpp_strings_do_not_panic(g in gpp(), mode in 0u8..3, at in any::<Index>(), ch in any::<Index>()) {
        let s = g.encode().unwrap();
        check_gpp(&corrupt(&s, mode, at, ch));
    }
}
