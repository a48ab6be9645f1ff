//! privseg: customer segmentation that is lawful by construction under the
//! GDPR and the CCPA.
//!
//! A CRM asks for "customers in France or Germany who spent 500 or more";
//! privseg answers with those of them that the controller may process for
//! the segment's declared purpose at that moment, and writes down that it
//! did. Everything is driven by a [`policy::Policy`] (the controller's data
//! categories, attributes, purposes, roles and recipients) and a host
//! [`Clock`].
//!
//! # The path of a segment
//!
//! 1. **Text.** `segment "vip" for marketing.email where country = "FR" and
//!    total_spend >= 500` ([`segment::parse`]; the same tree has a JSON
//!    form, [`segment::to_json`]).
//! 2. **Validation** against the policy ([`Engine::compile`] or
//!    [`Engine::validate`]): the purpose must exist and have a lawful basis
//!    (R1); the predicate may only read attributes whose data categories the
//!    purpose allows (R2); special categories need explicit permission and
//!    consent (R7), criminal data is never read (R8), protected attributes
//!    never appear in a predicate (R20). A refusal is a
//!    [`segment::SegmentError`] naming the rule, the attribute and the
//!    purpose, with a caret under the offending text. The result, a
//!    [`segment::CheckedSegment`], is bound to the policy version.
//! 3. **Evaluation** ([`Engine::evaluate`]) at the clock's instant: the
//!    predicate runs over bitmap indexes and is intersected with the
//!    purpose's eligibility mask: valid consent to an accepted notice, not
//!    withdrawn or expired (R3, R4), no objection (R6), no CCPA opt-out or
//!    sensitive-data limit (R10 to R13), email consent or soft opt-in (R14),
//!    no restriction (R15), old enough to consent or with parental consent
//!    (R9, R12), values fresh enough (R16), not erased (R21). The result is
//!    [`Members`]: a count and opaque rows.
//! 4. **Release.** Ids leave only through [`Engine::member_ids`]; counts go
//!    through k-thresholds or differential privacy ([`privacy`]); exports to
//!    a recipient are pseudonymised and checked against the recipient's
//!    agreement ([`Engine::export`]). Each call needs a permission of the
//!    [`Actor`]'s roles ([`access`]).
//! 5. **Record.** Every call, allowed or refused, is appended to a
//!    tamper-evident [`audit`] log before its result is returned, naming
//!    subjects only by pseudonym. From the policy and the log come the record
//!    of processing activities ([`Engine::ropa`]) and the compliance report
//!    ([`Engine::compliance_report`]).
//!
//! The rules (R1 to R21) are stated in `docs/compliance.md` in the
//! repository; `tests/rules.rs` has one scenario per rule.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use privseg::consent::{ConsentEvent, EventKind};
//! use privseg::policy::{
//!     AttributeSpec, CategorySpec, LawfulBasis, PolicyBuilder, PurposeSpec, RoleSpec,
//! };
//! use privseg::{Actor, Engine};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let policy = PolicyBuilder::new("Acme Retail Ltd")
//!         .category(CategorySpec::new("user.location"))
//!         .category(CategorySpec::new("user.financial.transactions"))
//!         .attribute(AttributeSpec::categorical("country", "user.location", &["FR", "DE", "US"]))
//!         .attribute(AttributeSpec::integer(
//!             "total_spend",
//!             "user.financial.transactions",
//!             0,
//!             1_000_000,
//!         ))
//!         .purpose(
//!             PurposeSpec::new("marketing.email", LawfulBasis::Consent)
//!                 .allow("user.location")
//!                 .allow("user.financial")
//!                 .notice_versions(&["v3"])
//!                 .consent_validity_days(730)
//!                 .email(false),
//!         )
//!         .role(RoleSpec {
//!             name: "crm".into(),
//!             subjects: true,
//!             member_ids: vec!["marketing".into()],
//!             ..RoleSpec::default()
//!         })
//!         .build()?;
//!
//!     let crm = Actor::new("crm-sync", &["crm"]);
//!     let mut engine = Engine::new(Arc::new(policy));
//!     let now = engine.now();
//!     engine.add_subject(&crm, "c-1", "EU-FR", None)?;
//!     engine.set_attribute(&crm, "c-1", "country", "FR".into(), now)?;
//!     engine.set_attribute(&crm, "c-1", "total_spend", 900.into(), now)?;
//!     let notice = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
//!     engine.record(&crm, &ConsentEvent::grant("c-1", "marketing.email", now, "v3", notice))?;
//!
//!     let vip = engine.compile(
//!         &crm,
//!         r#"segment "vip" for marketing.email where country = "FR" and total_spend >= 500"#,
//!     )?;
//!     // c-1's birth date is unknown: a possible minor, so not eligible (R9).
//!     assert_eq!(engine.evaluate(&crm, &vip, now)?.count(), 0);
//!
//!     engine.add_subject(&crm, "c-2", "EU-FR", privseg::timestamp::parse_date("1980-05-01").ok())?;
//!     engine.set_attribute(&crm, "c-2", "country", "FR".into(), now)?;
//!     engine.set_attribute(&crm, "c-2", "total_spend", 700.into(), now)?;
//!     engine.record(&crm, &ConsentEvent::grant("c-2", "marketing.email", now, "v3", notice))?;
//!     let members = engine.evaluate(&crm, &vip, now)?;
//!     assert_eq!(engine.member_ids(&crm, &members)?, ["c-2"]);
//!
//!     // A withdrawal takes effect at once (R4).
//!     let withdrawal =
//!         ConsentEvent::new("c-2", EventKind::ConsentWithdrawn, Some("marketing.email"), now);
//!     engine.record(&crm, &withdrawal)?;
//!     assert_eq!(engine.evaluate(&crm, &vip, now)?.count(), 0);
//!     Ok(())
//! }
//! ```
//!
//! # Where to go next
//!
//! - [`policy`]: the policy model, its JSON form and [`policy::PolicyBuilder`].
//! - [`consent`]: consent events and the eligibility rules; consent signals
//!   (IAB TCF, GPP, US Privacy) in [`consent::signals`].
//! - [`load`]: bulk loading of CSV subjects and JSON Lines consent events.
//! - [`privacy`]: pseudonyms, k-thresholds, differential privacy.
//! - [`audit`]: the audit log, checkpoints and proofs.
//! - [`report`], [`rights`], [`fairness`]: accountability reports, data
//!   subject rights, fairness audits.
//! - The C ABI is documented by its header, `include/privseg.h` (and the C++
//!   wrapper `include/privseg.hpp`); the command-line tool (feature `cli`)
//!   by `docs/cli.md`.
#![warn(missing_docs)]
#![deny(unsafe_code)]
// Errors carry a message, a caret and the names a user needs; they are
// returned on cold paths only, so their size costs nothing that matters.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod audit;
pub mod clock;
pub mod consent;
pub mod engine;
// The evaluator's internals (plans, kernels, masks): public for the
// benchmarks and property tests, not part of the documented API.
#[doc(hidden)]
pub mod eval;
pub mod fairness;
// The C ABI: the one place where unsafe code is allowed. C names are kept
// as they appear in the header, which is their documentation.
#[doc(hidden)]
#[allow(unsafe_code, non_camel_case_types, clippy::too_many_arguments)]
pub mod ffi;
// Bulk import's internals; its types users need are re-exported below.
#[doc(hidden)]
pub mod import;
pub mod load;
pub mod outputs;
pub mod policy;
pub mod privacy;
// Under `cfg(loom)` (the model in tests/loom_publish.rs) it uses loom's locks.
pub mod publish;
pub mod report;
pub mod rights;
pub mod segment;
pub mod shard;
// The column store and its indexes; `Value` is re-exported below.
#[doc(hidden)]
pub mod store;
pub mod timestamp;
pub mod value;

pub use access::Actor;
pub use clock::{Clock, ManualClock, SystemClock};
pub use engine::{
    BatchError, Engine, EngineError, Explanation, Members, PurgeSummary, SharedEngine, ValueUpdate,
};
pub use import::{ImportError, ImportItem, ImportSummary, SubjectRow};
pub use store::ValueError;
pub use timestamp::Timestamp;
pub use value::Value;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The Rust examples of the documentation, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/formats.md")]
pub struct FormatsDoctests;
