//! Consent strings taken from the reference implementations' own test
//! suites and from the specifications' examples, decoded by privseg and
//! compared with what those suites expect. Each fixture names its origin.
//! Historical strings (TCF policy version 2) decode leniently: the policy
//! rule they break comes back as a violation, not as a refusal.

use privseg::consent::signals::decode_to_json;
use serde_json::Value;

fn decode(s: &str) -> Value {
    let text = decode_to_json(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

/// iabtcf-java, iabtcf-decoder/src/test/java/com/iabtcf/decoder/
/// TCStringV2Test.java, `testCanConstructTCModelFromBase64String` (a string
/// made with the IAB's encoder at iabtcf.com).
#[test]
fn iabtcf_java_core_string() {
    let d = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA");
    assert_eq!(d["type"], "tcf");
    assert_eq!(d["version"], 2);
    assert_eq!(d["created"], "2020-01-26T17:01:00.000Z");
    assert_eq!(d["lastUpdated"], "2021-02-02T17:01:00.000Z");
    assert_eq!(d["cmpId"], 675);
    assert_eq!(d["cmpVersion"], 2);
    assert_eq!(d["consentScreen"], 1);
    assert_eq!(d["vendorListVersion"], 15);
    assert_eq!(d["policyVersion"], 2);
    assert_eq!(d["consentLanguage"], "EN");
    assert_eq!(d["publisherCountryCode"], "AA");
    assert_eq!(d["isServiceSpecific"], false);
    assert_eq!(d["purposeOneTreatment"], true);
    assert_eq!(ids(&d["specialFeatureOptins"]), [1]);
    assert_eq!(ids(&d["purposeConsents"]), [2, 10]);
    assert_eq!(ids(&d["purposeLegitimateInterests"]), [2, 9]);
    // Policy version 2 is below today's minimum: reported, not refused.
    let v = &d["violations"][0];
    assert_eq!(v["field"], "TcfPolicyVersion");
    assert_eq!(v["offset"], 132);
}

/// iabtcf-java TCStringV2Test: `testConstructConsentsFromBitFields`,
/// `testCanParseDisclosedAndAllowedVendors`, `testCanParseAllParts`.
#[test]
fn iabtcf_java_all_segments() {
    let core = "COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA";
    let d = decode(core);
    assert_eq!(ids(&d["purposeConsents"]), [3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(ids(&d["vendorConsents"]), [23, 37, 47, 48, 53, 65, 98]);
    assert_eq!(
        ids(&d["vendorLegitimateInterests"]),
        [37, 47, 48, 53, 65, 98, 129]
    );
    let all = format!("{core}.IBAgAAAgAIAwgAgAAAAEAAAACA.QAagAQAgAIAwgA.cAAAAAAAITg=");
    let d = decode(&all);
    assert_eq!(ids(&d["vendorsAllowed"]), [12, 23, 37, 47, 48, 53]);
    assert_eq!(
        ids(&d["vendorsDisclosed"]),
        [23, 37, 47, 48, 53, 65, 98, 129]
    );
    assert_eq!(ids(&d["publisherConsents"]).len(), 1);
}

/// iabtcf-java TCStringV2Test: `testCanParseRangeEncodedVendorLegitimateInterests`
/// and `testRange` (one and two vendor ranges), `testPurposesConsent`.
#[test]
fn iabtcf_java_ranges_and_purposes() {
    let d = decode("COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA");
    assert_eq!(ids(&d["vendorLegitimateInterests"]), [128]);
    let disclosed = "IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQBAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw";
    let d = decode(&format!(
        "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.{disclosed}"
    ));
    assert_eq!(ids(&d["vendorConsents"]), [702, 703]);
    assert_eq!(d["encoding"]["vendorConsents"]["type"], "range");
    let d = decode(&format!(
        "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA.{disclosed}"
    ));
    assert_eq!(ids(&d["vendorConsents"]), [703]);
    let d = decode("COwxsONOwxsONKpAAAENAdCAAMAAAAAAAAAAAAAAAAAA");
    assert_eq!(ids(&d["purposeConsents"]), [1, 2]);
}

/// The GPP specification's examples (IAB Global Privacy Platform, "Consent
/// String Specification", examples of a GPP string with the EU TCF v2
/// section, and with the EU TCF v2 and US Privacy sections), also used by
/// the iabgpp libraries' and prebid's go-gpp test suites.
#[test]
fn gpp_specification_examples() {
    let d = decode("DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA");
    assert_eq!(d["type"], "gpp");
    assert_eq!(d["version"], 1);
    assert_eq!(ids(&d["sectionIds"]), [2]);
    assert_eq!(d["sections"]["tcfeuv2"]["cmpId"], 31);
    assert_eq!(d["sections"]["tcfeuv2"]["publisherCountryCode"], "DE");
    let d = decode("DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN");
    assert_eq!(ids(&d["sectionIds"]), [2, 6]);
    let usp = &d["sections"]["uspv1"];
    assert_eq!(usp["notice"], "Y");
    assert_eq!(usp["optOutSale"], "N");
    assert_eq!(usp["lspaCovered"], "N");
}

/// The US Privacy String specification's example values (IAB CCPA
/// Compliance Framework, "US Privacy String": `1YNN`, and `1---` when the
/// CCPA does not apply).
#[test]
fn us_privacy_specification_examples() {
    let d = decode("1YNN");
    assert_eq!(d["type"], "usp");
    assert_eq!(d["notice"], "Y");
    assert_eq!(d["optOutSale"], "N");
    let d = decode("1---");
    assert_eq!(d["notice"], "-");
    assert_eq!(d["optOutSale"], "-");
    assert_eq!(d["lspaCovered"], "-");
}
