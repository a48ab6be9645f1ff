//! Segment JSON: parse, JSON round trip, and, for a segment the example
//! policy accepts, the text form must parse and validate to the same
//! checked expression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::segment::{self, CheckedExpr};

/// The text form cannot write a one-operand `and`, nor an `and` directly
/// inside an `and` (it reads `a and (b and c)` flat), nor an empty one
/// (printed as `true`): compare modulo those.
fn normal(e: &CheckedExpr) -> CheckedExpr {
    match e {
        CheckedExpr::And(xs) | CheckedExpr::Or(xs) => {
            let is_and = matches!(e, CheckedExpr::And(_));
            let mut out = Vec::new();
            for x in xs.iter().map(normal) {
                match x {
                    CheckedExpr::And(ys) if is_and => out.extend(ys),
                    CheckedExpr::Or(ys) if !is_and => out.extend(ys),
                    y => out.push(y),
                }
            }
            match out.len() {
                0 => CheckedExpr::Const(is_and),
                1 => out.pop().expect("one operand"),
                _ if is_and => CheckedExpr::And(out),
                _ => CheckedExpr::Or(out),
            }
        }
        CheckedExpr::Not(x) => CheckedExpr::Not(Box::new(normal(x))),
        x => x.clone(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(seg) = segment::from_json(text) else {
        return;
    };
    let json = segment::to_json(&seg);
    let again = segment::from_json(&json)
        .unwrap_or_else(|e| panic!("JSON form {json:?} does not parse: {e}"));
    assert_eq!(again, seg, "JSON round trip changed {text:?}");
    let policy = privseg_fuzz::policy();
    let Ok(checked) = segment::validate(&policy, &seg, "") else {
        return;
    };
    let printed = seg.to_string();
    let reparsed = segment::parse(&printed)
        .unwrap_or_else(|e| panic!("text form {printed:?} of a valid segment does not parse: {e}"));
    let rechecked = segment::validate(&policy, &reparsed, &printed)
        .unwrap_or_else(|e| panic!("text form {printed:?} of a valid segment is refused: {e}"));
    assert_eq!(
        normal(checked.expr()),
        normal(rechecked.expr()),
        "{printed:?}"
    );
    assert_eq!(checked.purpose(), rechecked.purpose());
});
