//! A policy and helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use privseg::consent::Eligibility;
use privseg::consent::{ConsentEvent, EventKind};
use privseg::policy::*;
use privseg::privacy::aggregate::Count;
use privseg::segment::CheckedSegment;
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, EngineError, Explanation, ManualClock, Members, Timestamp};

thread_local! {
    /// The host clock of the engines a test builds with [`engine`] or
    /// [`with_test_clock`]: each test runs on its own thread, so each has
    /// its own clock. It starts far in the future so that events of any
    /// date can be recorded; the `*_at` helpers set it to the instant they
    /// are asked about.
    static CLOCK: ManualClock = ManualClock::new(Timestamp::parse("2100-01-01T00:00:00Z").unwrap());
}

/// This thread's test clock.
pub fn clock() -> ManualClock {
    CLOCK.with(|c| c.clone())
}

/// Sets this thread's test clock.
pub fn set_now(at: Timestamp) {
    CLOCK.with(|c| c.set(at));
}

/// Puts this thread's test clock back far in the future, so that events of
/// any date can be recorded again.
pub fn reset_now() {
    set_now(Timestamp::parse("2100-01-01T00:00:00Z").unwrap());
}

/// An engine on this thread's test clock.
pub fn with_test_clock(e: Engine) -> Engine {
    e.with_clock(Arc::new(clock()))
}

/// The engine calls of the tests, at an instant: the host clock is set to
/// `at` and the predicate's reference time is `at`, as a host would do when
/// it asks "now".
pub trait At {
    fn evaluate_at(
        &self,
        a: &Actor,
        s: &CheckedSegment,
        at: Timestamp,
    ) -> Result<Members, EngineError>;
    fn eligibility_at(
        &self,
        a: &Actor,
        id: &str,
        p: &str,
        at: Timestamp,
    ) -> Result<Eligibility, EngineError>;
    fn count_at(&self, a: &Actor, s: &CheckedSegment, at: Timestamp) -> Result<Count, EngineError>;
    fn explain_at(
        &self,
        a: &Actor,
        s: &CheckedSegment,
        id: &str,
        at: Timestamp,
    ) -> Result<Explanation, EngineError>;
    fn evaluate_reference_at(
        &self,
        a: &Actor,
        s: &CheckedSegment,
        at: Timestamp,
    ) -> Result<Members, EngineError>;
    fn ids_at(&self, a: &Actor, s: &CheckedSegment, at: Timestamp) -> Vec<String>;
}

impl At for Engine {
    fn evaluate_at(
        &self,
        a: &Actor,
        s: &CheckedSegment,
        at: Timestamp,
    ) -> Result<Members, EngineError> {
        set_now(at);
        let out = self.evaluate(a, s, at);
        reset_now();
        out
    }
    fn eligibility_at(
        &self,
        a: &Actor,
        id: &str,
        p: &str,
        at: Timestamp,
    ) -> Result<Eligibility, EngineError> {
        set_now(at);
        let out = self.eligibility(a, id, p);
        reset_now();
        out
    }
    fn count_at(&self, a: &Actor, s: &CheckedSegment, at: Timestamp) -> Result<Count, EngineError> {
        set_now(at);
        let out = self.count(a, s, at);
        reset_now();
        out
    }
    fn explain_at(
        &self,
        a: &Actor,
        s: &CheckedSegment,
        id: &str,
        at: Timestamp,
    ) -> Result<Explanation, EngineError> {
        set_now(at);
        let out = self.explain(a, s, id, at);
        reset_now();
        out
    }
    fn evaluate_reference_at(
        &self,
        a: &Actor,
        s: &CheckedSegment,
        at: Timestamp,
    ) -> Result<Members, EngineError> {
        set_now(at);
        let out = self.evaluate_reference(a, s, at);
        reset_now();
        out
    }
    fn ids_at(&self, a: &Actor, s: &CheckedSegment, at: Timestamp) -> Vec<String> {
        set_now(at);
        let m = self.evaluate(a, s, at).unwrap();
        let ids = self.member_ids(a, &m).unwrap();
        reset_now();
        ids
    }
}

pub const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

pub fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

pub fn policy() -> Policy {
    PolicyBuilder::new("Acme Retail Ltd")
        .contact("dpo@acme.example")
        .category(CategorySpec::new("user.contact").retention_days(730))
        .category(CategorySpec::new("user.location").retention_days(730))
        .category(CategorySpec::new("user.financial.transactions").retention_days(3650))
        .category(CategorySpec::new("user.financial.account").ccpa_sensitive())
        .category(CategorySpec::new("user.behaviour").retention_days(365))
        .category(CategorySpec::new("user.health").special())
        .category(CategorySpec::new("user.criminal").criminal())
        .category(
            CategorySpec::new("user.demographic.ethnicity")
                .special()
                .protected(),
        )
        .attribute(AttributeSpec::categorical(
            "country",
            "user.location",
            &["FR", "DE", "US"],
        ))
        .attribute(AttributeSpec::integer(
            "total_spend",
            "user.financial.transactions",
            0,
            1_000_000,
        ))
        .attribute(AttributeSpec::timestamp("last_order", "user.behaviour").max_staleness_days(365))
        .attribute(AttributeSpec::boolean("newsletter", "user.contact"))
        .attribute(AttributeSpec::categorical(
            "condition",
            "user.health",
            &["diabetes", "none"],
        ))
        .attribute(AttributeSpec::boolean("convicted", "user.criminal"))
        .attribute(AttributeSpec::categorical(
            "ethnicity",
            "user.demographic.ethnicity",
            &["a", "b"],
        ))
        .attribute(AttributeSpec::integer(
            "balance",
            "user.financial.account",
            -1_000_000,
            1_000_000,
        ))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.financial.transactions")
                .allow("user.behaviour")
                .allow("user.contact")
                .notice_versions(&["v3", "v4"])
                .consent_validity_days(365)
                .email(false),
        )
        .purpose(
            PurposeSpec::new("marketing.newsletter", LawfulBasis::LegitimateInterests)
                .allow("user.contact")
                .allow("user.location")
                .email(true),
        )
        .purpose(
            PurposeSpec::new("marketing.advertising.third_party", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.behaviour")
                .allow("user.financial")
                .notice_versions(&["ads1"])
                .sale_share(),
        )
        .purpose(
            PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests)
                .allow("user.behaviour")
                .allow("user.location")
                .allow("user.financial")
                .max_staleness_days(30),
        )
        .purpose(
            PurposeSpec::new("service.billing", LawfulBasis::Contract)
                .allow("user.financial")
                .allow("user.location")
                .sensitive_necessary(),
        )
        .purpose(
            PurposeSpec::new("care.programs", LawfulBasis::Consent)
                .allow("user.health")
                .allow("user.location")
                .notice_versions(&["h1"]),
        )
        .purpose(
            PurposeSpec::new("legal.claims", LawfulBasis::LegalObligation)
                .allow("user.location")
                .restriction_exempt(),
        )
        .role(all_permissions())
        .build()
        .unwrap()
}

/// A role that may do everything, for tests of other things than access.
pub fn all_permissions() -> RoleSpec {
    RoleSpec {
        name: "admin".into(),
        count: vec![
            "marketing".into(),
            "analytics".into(),
            "service".into(),
            "care".into(),
            "legal".into(),
        ],
        member_ids: vec![
            "marketing".into(),
            "analytics".into(),
            "service".into(),
            "care".into(),
            "legal".into(),
        ],
        explain: vec![
            "marketing".into(),
            "analytics".into(),
            "service".into(),
            "care".into(),
            "legal".into(),
        ],
        export: vec![],
        subjects: true,
        read_audit: true,
        administer: true,
    }
}

pub fn admin() -> Actor {
    Actor::new("test-admin", &["admin"])
}

pub fn engine() -> Engine {
    with_test_clock(Engine::new(Arc::new(policy())))
}

pub fn adult(e: &mut Engine, id: &str, juris: &str) {
    e.add_subject(&admin(), id, juris, Some(parse_date("1980-01-01").unwrap()))
        .unwrap();
}

pub fn grant(e: &mut Engine, id: &str, purpose: &str, at: &str, notice: &str) {
    e.record(
        &admin(),
        &ConsentEvent::grant(id, purpose, t(at), notice, SHA),
    )
    .unwrap();
}

pub fn event(e: &mut Engine, id: &str, kind: EventKind, purpose: Option<&str>, at: &str) {
    e.record(&admin(), &ConsentEvent::new(id, kind, purpose, t(at)))
        .unwrap();
}

pub fn members(e: &Engine, seg: &str, at: &str) -> Vec<String> {
    let seg = e
        .compile(&admin(), seg)
        .unwrap_or_else(|err| panic!("{err}"));
    e.ids_at(&admin(), &seg, t(at))
}
