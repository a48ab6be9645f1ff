//! Segment text: parse, print and parse again, JSON and back, and validate
//! each form against the example policy. Every form must agree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::segment::{self, Segment};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(seg) = segment::parse(text) else {
        return;
    };
    // Printing gives text that parses to the same segment.
    let printed = seg.to_string();
    let again = segment::parse(&printed)
        .unwrap_or_else(|e| panic!("printed form {printed:?} does not parse: {e}"));
    assert_eq!(again, seg, "print/parse changed {text:?}");
    // JSON round trip.
    let json = segment::to_json(&seg);
    let from_json: Segment = segment::from_json(&json)
        .unwrap_or_else(|e| panic!("JSON form {json:?} does not parse: {e}"));
    assert_eq!(from_json, seg, "JSON round trip changed {text:?}");
    // Validation agrees across the forms.
    let policy = privseg_fuzz::policy();
    let a = segment::validate(&policy, &seg, text);
    let b = segment::validate(&policy, &again, &printed);
    match (&a, &b) {
        (Ok(x), Ok(y)) => {
            assert_eq!(x.expr(), y.expr());
            assert_eq!(x.purpose(), y.purpose());
        }
        (Err(_), Err(_)) => {}
        _ => panic!("validation of {text:?} and of its printed form disagree: {a:?} / {b:?}"),
    }
});
