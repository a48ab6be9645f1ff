//! A subjects CSV through the bulk loader. Accepted: the engine holds
//! exactly the rows counted, and the import is one audit entry. (A refused
//! load drops its engine, so "unchanged after a refusal" is checked on the
//! engine's own import in the consent_event target.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use privseg::load::Loader;
use privseg_fuzz::{admin, engine, policy};

fuzz_target!(|data: &[u8]| {
    // What a new engine's audit log holds before anything is imported.
    let base_audit = privseg::Engine::new(policy()).audit_len();
    let fresh = Loader::new(policy(), admin());
    if let Ok((e, stats)) = fresh.subjects("s.csv", data).and_then(Loader::finish) {
        assert_eq!(e.subject_count() as u64, stats.subjects);
        assert_eq!(
            e.audit_len(),
            base_audit + 1,
            "one audit entry for the import"
        );
    }
    // Into an engine that already holds subjects: the loader either takes
    // every row or drops the engine; the counts must add up when it takes
    // them.
    let e = engine();
    let before = e.subject_count() as u64;
    let audit_before = e.audit_len();
    if let Ok((e, stats)) = Loader::with_engine(e, admin())
        .subjects("s.csv", data)
        .and_then(Loader::finish)
    {
        assert_eq!(e.subject_count() as u64, before + stats.subjects);
        assert_eq!(e.audit_len(), audit_before + 1);
    }
});
