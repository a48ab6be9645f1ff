//! US Privacy strings: a decoded string re-encodes as its upper-case form,
//! which decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::consent::signals::usp::UsPrivacy;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(u) = UsPrivacy::decode(s) {
        let enc = u.encode();
        assert_eq!(enc, s.to_ascii_uppercase());
        assert_eq!(UsPrivacy::decode(&enc), Ok(u));
    }
});
