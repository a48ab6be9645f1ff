//! Policy JSON: a policy that loads has a canonical form that loads again
//! to the same version and the same canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::policy::Policy;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(p) = Policy::from_json(text) else {
        return;
    };
    let canonical = p.to_json();
    let again = Policy::from_json(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} is refused: {e}"));
    assert_eq!(again.version(), p.version());
    assert_eq!(again.to_json(), canonical);
    assert_eq!(p.version_hex(), p.version().to_string());
});
