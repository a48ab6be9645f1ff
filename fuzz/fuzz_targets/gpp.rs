//! GPP strings: a decoded string encodes, and the encoding decodes to the
//! same value (strict and lenient).
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::consent::signals::gpp::{GppOptions, GppString};
use privseg::consent::signals::tcf::TcfOptions;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(g) = GppString::decode(s) {
        let enc = g
            .encode()
            .unwrap_or_else(|e| panic!("decoded {s:?} does not encode: {e}"));
        let again = GppString::decode(&enc)
            .unwrap_or_else(|e| panic!("re-encoding {enc:?} of {s:?} does not decode: {e}"));
        assert_eq!(again, g, "{s:?} -> {enc:?}");
    }
    let lenient = GppOptions {
        tcf: TcfOptions::lenient(),
    };
    if let Ok(d) = GppString::decode_with(s, &lenient) {
        let enc = d
            .gpp
            .encode()
            .unwrap_or_else(|e| panic!("decoded {s:?} (lenient) does not encode: {e}"));
        let again = GppString::decode_with(&enc, &lenient)
            .unwrap_or_else(|e| panic!("re-encoding {enc:?} of {s:?} does not decode: {e}"));
        assert_eq!(again.gpp, d.gpp, "{s:?} -> {enc:?}");
    }
});
