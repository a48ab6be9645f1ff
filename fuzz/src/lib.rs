//! Fixtures shared by the fuzz targets: the example policy, an actor that
//! may do everything, and a small engine.

use std::sync::{Arc, OnceLock};

use privseg::policy::Policy;
use privseg::{Actor, Engine};

/// The example policy (examples/data/policy.json), parsed once.
pub fn policy() -> Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let text = include_str!("../../examples/data/policy.json");
            Arc::new(Policy::from_json(text).expect("the example policy is valid"))
        })
        .clone()
}

/// An actor holding the example policy's `admin` role (every permission).
pub fn admin() -> Actor {
    Actor::new("fuzz", &["admin"])
}

/// The subjects of [`engine`].
pub const SUBJECTS: [&str; 2] = ["c-000000", "c-000001"];

/// A fresh engine over the example policy with the two [`SUBJECTS`].
pub fn engine() -> Engine {
    let mut e = Engine::new(policy());
    let birth = privseg::timestamp::parse_date("1980-05-01").ok();
    e.add_subject(&admin(), SUBJECTS[0], "EU-FR", birth)
        .expect("a valid subject");
    e.add_subject(&admin(), SUBJECTS[1], "US-CA", birth)
        .expect("a valid subject");
    e
}

/// What a refused call must leave as it was, besides the audit log's
/// length (compared on its own, since reading a history is logged): the
/// subjects and every subject's history.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    subjects: usize,
    histories: Vec<String>,
}

impl Snapshot {
    /// Takes the snapshot.
    pub fn of(e: &Engine) -> Snapshot {
        Snapshot {
            subjects: e.subject_count(),
            histories: SUBJECTS
                .iter()
                .map(|id| format!("{:?}", e.history(&admin(), id)))
                .collect(),
        }
    }
}
