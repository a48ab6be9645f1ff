//! A subjects CSV through the bulk loader into an engine holding two
//! subjects. Accepted: the engine holds its subjects plus exactly the rows
//! counted, and the import is one audit entry. (A refused
//! load drops its engine, so "unchanged after a refusal" is checked on the
//! engine's own import in the consent_event target.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::load::Loader;
use privseg_fuzz::{SUBJECTS, admin, engine};

fuzz_target!(|data: &[u8]| {
    // Into an engine that already holds subjects: the loader either takes
    // every row, with one audit entry for the import, or drops the engine.
    // (One loader per input: each reads through a 1 MiB buffer.)
    let e = engine();
    let before = e.subject_count() as u64;
    let audit_before = e.audit_len();
    if let Ok((e, stats)) = Loader::with_engine(e, admin())
        .subjects("s.csv", data)
        .and_then(Loader::finish)
    {
        assert_eq!(e.subject_count() as u64, before + stats.subjects);
        assert_eq!(e.audit_len(), audit_before + 1, "one audit entry for the import");
        for id in SUBJECTS {
            assert!(e.history(&admin(), id).is_ok(), "{id} is still there");
        }
    }
});
