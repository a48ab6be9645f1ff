//! One consent event line (JSON Lines). A line the engine refuses leaves it
//! unchanged (subjects, audit log, histories); one it accepts adds exactly
//! one audit entry. The bulk loader accepts a line exactly when the direct
//! route does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::consent::ConsentEvent;
use privseg::load::Loader;
use privseg_fuzz::{Snapshot, admin, engine};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // One line: blank lines and line breaks are the loader's business.
    if line.contains(['\n', '\r']) || line.trim().is_empty() {
        return;
    }
    let direct = match serde_json::from_str::<ConsentEvent>(line) {
        Err(_) => false,
        Ok(ev) => {
            let mut e = engine();
            let before = Snapshot::of(&e);
            let after_snapshot = e.audit_len();
            match e.import(&admin(), &[], std::slice::from_ref(&ev)) {
                Err(_) => {
                    assert_eq!(e.audit_len(), after_snapshot, "a refused event was logged");
                    let now = Snapshot::of(&e);
                    assert_eq!(now, before, "a refused event changed the engine: {line:?}");
                    false
                }
                Ok(_) => {
                    assert_eq!(e.audit_len(), after_snapshot + 1);
                    true
                }
            }
        }
    };
    let loaded = Loader::with_engine(engine(), admin())
        .events("line", line.as_bytes())
        .and_then(Loader::finish)
        .is_ok();
    assert_eq!(
        loaded, direct,
        "loader and direct import disagree on {line:?}"
    );
});
