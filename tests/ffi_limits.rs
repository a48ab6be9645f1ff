//! The input limits the C ABI maps to statuses hold in the Rust API too:
//! ids and role names, birth dates, jurisdictions and numeric times.

use std::sync::Arc;

use privseg::access::Actor;
use privseg::engine::{MAX_ID_LEN, check_actor};
use privseg::policy::Policy;
use privseg::{Engine, EngineError, Timestamp};
use time::macros::date;

const POLICY: &str = include_str!("../examples/c/policy.json");

fn engine() -> Engine {
    Engine::new(Arc::new(Policy::from_json(POLICY).unwrap()))
}

#[test]
fn an_actor_whose_id_or_roles_are_not_ids_is_refused_and_recorded_nowhere() {
    let mut e = engine();
    let before = e.audit_len();
    let huge = "a".repeat(1 << 20);
    for actor in [
        Actor::new(&huge, &["crm"]),
        Actor::new(&"a".repeat(MAX_ID_LEN + 1), &["crm"]),
        Actor::new("crm\0sync", &["crm"]),
        Actor::new("crm\u{202E}sync", &["crm"]),
        Actor::new("crm-sync", &["crm\u{2066}"]),
        Actor::new("crm-sync", &[huge.as_str()]),
    ] {
        let err = e.add_subject(&actor, "c-1", "EU-FR", None).unwrap_err();
        assert!(matches!(err, EngineError::InvalidActor(_)), "{err}");
        // The message names the problem without copying the id whole.
        assert!(err.to_string().len() < 300, "{}", err.to_string().len());
        assert!(check_actor(&actor).is_err());
    }
    assert_eq!(e.audit_len(), before);
    let ok = Actor::new(&"a".repeat(MAX_ID_LEN), &["crm"]);
    e.add_subject(&ok, "c-1", "EU-FR", None).unwrap();
    assert_eq!(e.audit_len(), before + 1);
}

#[test]
fn subject_ids_birth_dates_and_jurisdictions_have_limits() {
    let mut e = engine();
    let crm = Actor::new("crm-sync", &["crm"]);
    for id in [
        "a".repeat(MAX_ID_LEN + 1),
        "c\0-1".into(),
        "c-\u{200F}1".into(),
        "c-\u{1b}[31m".into(),
    ] {
        let err = e.add_subject(&crm, &id, "EU-FR", None).unwrap_err();
        assert!(matches!(err, EngineError::InvalidId(_)), "{err}");
    }
    for (birth, why) in [
        (date!(1899 - 12 - 31), "before 1900"),
        (date!(2999 - 01 - 01), "after today"),
    ] {
        let err = e
            .add_subject(&crm, "c-1", "EU-FR", Some(birth))
            .unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidBirthDate { .. }) && err.to_string().contains(why),
            "{err}"
        );
    }
    for code in ["EU-XX", "EU-UK", "US-ZZ"] {
        let err = e.add_subject(&crm, "c-1", code, None).unwrap_err();
        assert!(
            matches!(err, EngineError::UnknownJurisdiction { .. }),
            "{err}"
        );
    }
    assert_eq!(e.subject_count(), 0);
    e.add_subject(&crm, "c-1", "EU-FR", Some(date!(1900 - 01 - 01)))
        .unwrap();
    assert!(Timestamp::checked_from_unix(i64::MAX).is_err());
    assert!(Timestamp::checked_from_unix(0).is_ok());
}
