//! TC strings: a decoded string encodes, and the encoding decodes to the
//! same value (strict and lenient).
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::consent::signals::tcf::{TcString, TcfOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tc) = TcString::decode(s) {
        let enc = tc
            .encode()
            .unwrap_or_else(|e| panic!("decoded {s:?} does not encode: {e}"));
        let again = TcString::decode(&enc)
            .unwrap_or_else(|e| panic!("re-encoding {enc:?} of {s:?} does not decode: {e}"));
        assert_eq!(again, tc, "{s:?} -> {enc:?}");
    }
    let lenient = TcfOptions::lenient();
    if let Ok(d) = TcString::decode_with(s, &lenient) {
        let enc =
            d.tc.encode()
                .unwrap_or_else(|e| panic!("decoded {s:?} (lenient) does not encode: {e}"));
        let again = TcString::decode_with(&enc, &lenient)
            .unwrap_or_else(|e| panic!("re-encoding {enc:?} of {s:?} does not decode: {e}"));
        assert_eq!(again.tc, d.tc, "{s:?} -> {enc:?}");
    }
});
