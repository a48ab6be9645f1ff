//! The serialisable form of a policy: what its JSON says, field for field.
//!
//! A `PolicySpec` is plain data with no guarantees; [`crate::policy::Policy`]
//! is made from one by validation.

use serde::{Deserialize, Serialize};

use crate::privacy::dp::Epsilon;

/// The six lawful bases of GDPR Art. 6(1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    /// Art. 6(1)(a): the subject consented to this purpose.
    Consent,
    /// Art. 6(1)(b): needed to perform a contract with the subject.
    Contract,
    /// Art. 6(1)(c): needed to comply with a legal obligation.
    LegalObligation,
    /// Art. 6(1)(d): needed to protect someone's vital interests.
    VitalInterests,
    /// Art. 6(1)(e): a task in the public interest.
    PublicTask,
    /// Art. 6(1)(f): the controller's legitimate interests.
    LegitimateInterests,
}

impl LawfulBasis {
    /// The snake_case name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            LawfulBasis::Consent => "consent",
            LawfulBasis::Contract => "contract",
            LawfulBasis::LegalObligation => "legal_obligation",
            LawfulBasis::VitalInterests => "vital_interests",
            LawfulBasis::PublicTask => "public_task",
            LawfulBasis::LegitimateInterests => "legitimate_interests",
        }
    }
}

/// The body of law that decides which rules apply to a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// The EU GDPR (with the ePrivacy rules on email marketing).
    Gdpr,
    /// The California Consumer Privacy Act as amended by the CPRA.
    Ccpa,
    /// No regime-specific rules: only the purpose's declared basis applies.
    None,
}

/// Who is responsible for the processing (GDPR Art. 4(7)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controller {
    /// Legal name of the controller.
    pub name: String,
    /// Contact point, such as the DPO's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
}

/// A jurisdiction a subject can belong to, such as `EU`, `EU-FR` or `US-CA`.
///
/// A subject in `EU-XX` uses the `EU-XX` entry if the policy has one, and
/// otherwise the `EU` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JurisdictionSpec {
    /// Code such as `EU`, `EU-FR`, `US-CA`.
    pub code: String,
    /// Which rules apply.
    pub regime: Regime,
    /// GDPR Art. 8 age of digital consent (13 to 16); GDPR only, default 16.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital_consent_age: Option<u8>,
}

/// A data category, a dotted hierarchical key such as `user.contact.email`.
///
/// Flags are inherited: a category is special if it or any declared ancestor
/// is flagged special, and likewise for the other flags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    /// Dotted key.
    pub key: String,
    /// GDPR Art. 9 special category.
    #[serde(default, skip_serializing_if = "is_false")]
    pub special: bool,
    /// GDPR Art. 10 criminal convictions and offences: never usable in a segment.
    #[serde(default, skip_serializing_if = "is_false")]
    pub criminal: bool,
    /// CCPA sensitive personal information (1798.140(ae)).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ccpa_sensitive: bool,
    /// Protected attribute: held for fairness audits only, never a predicate term.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protected: bool,
    /// Retention period in days (R17).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_days: Option<u32>,
    /// Free text for the record of processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The type of an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrType {
    /// One of a declared set of string values.
    Categorical,
    /// A 64-bit integer within declared bounds.
    Integer,
    /// An instant (RFC 3339 in JSON, seconds internally).
    Timestamp,
    /// True or false.
    Boolean,
}

impl AttrType {
    /// The snake_case name used in JSON and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            AttrType::Categorical => "categorical",
            AttrType::Integer => "integer",
            AttrType::Timestamp => "timestamp",
            AttrType::Boolean => "boolean",
        }
    }
}

/// One attribute of the subject schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    /// Name used in segments (an identifier).
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// Declared values (categorical only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// Lower bound, inclusive (integer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    /// Upper bound, inclusive (integer only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    /// Its data category (a declared category key).
    pub category: String,
    /// A value verified longer ago than this is stale and matches nothing (R16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness_days: Option<u32>,
}

/// A purpose of processing and what it may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeSpec {
    /// Dotted key; `marketing` and everything below it is direct marketing (R6).
    pub key: String,
    /// Its one lawful basis (R1).
    pub basis: LawfulBasis,
    /// Data categories it may use (a key covers everything below it) (R2).
    #[serde(default)]
    pub categories: Vec<String>,
    /// Notice versions whose consents are still accepted (R3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accepted_notice_versions: Vec<String>,
    /// How long a consent stays valid, in days, when the event sets no expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_validity_days: Option<u32>,
    /// A CCPA sale or share (cross-context behavioural advertising) (R10-R12).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ccpa_sale_share: bool,
    /// Necessary for the service, so CCPA sensitive data stays usable after a
    /// request to limit (R13).
    #[serde(default, skip_serializing_if = "is_false")]
    pub ccpa_sensitive_necessary: bool,
    /// Marketing by email, subject to the ePrivacy rules (R14).
    #[serde(default, skip_serializing_if = "is_false")]
    pub email_channel: bool,
    /// The email soft opt-in (existing customers, similar products) applies (R14).
    #[serde(default, skip_serializing_if = "is_false")]
    pub email_soft_opt_in: bool,
    /// Still allowed for restricted subjects (storage, legal claims) (R15).
    #[serde(default, skip_serializing_if = "is_false")]
    pub restriction_exempt: bool,
    /// A stricter staleness limit for this purpose, in days (R16).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_staleness_days: Option<u32>,
    /// Free text for the record of processing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A whole policy as written in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// The controller.
    pub controller: Controller,
    /// Jurisdictions; when absent, [`default_jurisdictions`] is used.
    #[serde(default = "default_jurisdictions")]
    pub jurisdictions: Vec<JurisdictionSpec>,
    /// The data-category taxonomy.
    pub categories: Vec<CategorySpec>,
    /// The attribute schema.
    pub attributes: Vec<AttributeSpec>,
    /// The purposes.
    pub purposes: Vec<PurposeSpec>,
    /// Third parties that may receive data, with their agreements (R19).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientSpec>,
    /// Roles and what each may do; an actor has only what its roles grant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleSpec>,
    /// Counts below this are reported as "fewer than k" (default 11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_threshold: Option<u64>,
    /// Differential-privacy budgets, per purpose. A purpose none of them
    /// covers gets no differentially private count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dp_budgets: Vec<DpBudgetSpec>,
    /// Who may act, as which operating-system user, with which roles (used
    /// by hosts that authenticate by operating-system account, such as the
    /// command-line tool).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<ActorSpec>,
    /// How far in the future (seconds after the recording instant) an
    /// event's time may be and still be recorded, for clocks that disagree
    /// a little (default 300, at most 86,400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_clock_skew_seconds: Option<u64>,
}

/// The differential-privacy budget of a purpose and every purpose below it.
///
/// The budget belongs to the purpose, not to an actor or a role: the privacy
/// loss of the subjects adds up over every query on their data, whoever asks,
/// so budgets per actor or per role would multiply with the number of actors
/// or roles. All actors and roles counting for the purpose share it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpBudgetSpec {
    /// Purpose key or prefix (a key covers everything below it); budgets may
    /// not overlap.
    pub purpose: String,
    /// The largest epsilon one query may spend; a query may ask for less.
    pub max_epsilon: Epsilon,
    /// The epsilon all queries for the purpose may spend together, over the
    /// life of the data.
    pub total: Epsilon,
}

/// An identity an operating-system user may act as, with its roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    /// The operating-system user name (as in /etc/passwd).
    pub os_user: String,
    /// The actor id recorded in the audit log; defaults to `os_user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The roles this identity may take (each a role of the policy).
    #[serde(default)]
    pub roles: Vec<String>,
}

impl ActorSpec {
    /// The actor id: `id`, else the operating-system user name.
    pub fn actor_id(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.os_user)
    }
}

/// How the CCPA classifies a recipient.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CcpaRole {
    /// A service provider or contractor: disclosure is not a sale or share.
    ServiceProvider,
    /// A third party: every disclosure is a sale or share, so CCPA opt-outs,
    /// GPC and the minors' opt-in apply.
    ThirdParty,
}

/// A recipient and the agreement that binds it (GDPR Art. 28, 44+; CCPA
/// 1798.100(d)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientSpec {
    /// Identifier used in exports and permissions.
    pub id: String,
    /// Legal name.
    pub name: String,
    /// Country code (ISO 3166-1 alpha-2) where it processes the data.
    pub country: String,
    /// Outside the EEA: a third-country transfer (Art. 44+).
    #[serde(default, skip_serializing_if = "is_false")]
    pub third_country: bool,
    /// Reference of the data processing or sharing agreement.
    pub dpa_reference: String,
    /// Purposes the agreement covers (a key covers everything below it).
    pub purposes: Vec<String>,
    /// Data categories the agreement covers.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Its CCPA role.
    pub ccpa_role: CcpaRole,
}

/// A role: a named set of permissions. Nothing is granted by default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    /// Role name.
    pub name: String,
    /// Purposes (keys or prefixes) it may evaluate for counts and aggregates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub count: Vec<String>,
    /// Purposes for which it may see member ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub member_ids: Vec<String>,
    /// Purposes for which it may explain a subject's membership.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explain: Vec<String>,
    /// Recipients it may export to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export: Vec<String>,
    /// May add, change, erase subjects, record their events and read their
    /// data for access requests.
    #[serde(default, skip_serializing_if = "is_false")]
    pub subjects: bool,
    /// May read the audit log and compliance reports.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_audit: bool,
    /// May change the policy and run fairness audits.
    #[serde(default, skip_serializing_if = "is_false")]
    pub administer: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The jurisdictions a policy gets when it lists none: `EU` (GDPR, age of
/// digital consent 16), each EU member state with the age its national law
/// sets under GDPR Art. 8, and `US-CA` (CCPA).
pub fn default_jurisdictions() -> Vec<JurisdictionSpec> {
    const MEMBER_STATES: &[(&str, u8)] = &[
        ("AT", 14),
        ("BE", 13),
        ("BG", 14),
        ("CY", 14),
        ("CZ", 15),
        ("DE", 16),
        ("DK", 13),
        ("EE", 13),
        ("ES", 14),
        ("FI", 13),
        ("FR", 15),
        ("GR", 15),
        ("HR", 16),
        ("HU", 16),
        ("IE", 16),
        ("IT", 14),
        ("LT", 14),
        ("LU", 16),
        ("LV", 13),
        ("MT", 13),
        ("NL", 16),
        ("PL", 16),
        ("PT", 13),
        ("RO", 16),
        ("SE", 13),
        ("SI", 15),
        ("SK", 16),
    ];
    let mut out = vec![JurisdictionSpec {
        code: "EU".into(),
        regime: Regime::Gdpr,
        digital_consent_age: Some(16),
    }];
    out.extend(MEMBER_STATES.iter().map(|(cc, age)| JurisdictionSpec {
        code: format!("EU-{cc}"),
        regime: Regime::Gdpr,
        digital_consent_age: Some(*age),
    }));
    out.push(JurisdictionSpec {
        code: "US-CA".into(),
        regime: Regime::Ccpa,
        digital_consent_age: None,
    });
    out
}

impl CategorySpec {
    /// A category with no flags and no retention period.
    pub fn new(key: impl Into<String>) -> Self {
        CategorySpec {
            key: key.into(),
            special: false,
            criminal: false,
            ccpa_sensitive: false,
            protected: false,
            retention_days: None,
            description: None,
        }
    }
    /// Flags it as a GDPR Art. 9 special category.
    pub fn special(mut self) -> Self {
        self.special = true;
        self
    }
    /// Flags it as GDPR Art. 10 criminal data.
    pub fn criminal(mut self) -> Self {
        self.criminal = true;
        self
    }
    /// Flags it as CCPA sensitive personal information.
    pub fn ccpa_sensitive(mut self) -> Self {
        self.ccpa_sensitive = true;
        self
    }
    /// Flags it as protected (fairness audits only).
    pub fn protected(mut self) -> Self {
        self.protected = true;
        self
    }
    /// Sets the retention period.
    pub fn retention_days(mut self, days: u32) -> Self {
        self.retention_days = Some(days);
        self
    }
}

impl AttributeSpec {
    fn new(name: &str, ty: AttrType, category: &str) -> Self {
        AttributeSpec {
            name: name.into(),
            ty,
            values: Vec::new(),
            min: None,
            max: None,
            category: category.into(),
            max_staleness_days: None,
        }
    }
    /// A categorical attribute with its declared values.
    pub fn categorical(name: &str, category: &str, values: &[&str]) -> Self {
        let mut a = Self::new(name, AttrType::Categorical, category);
        a.values = values.iter().map(|v| v.to_string()).collect();
        a
    }
    /// An integer attribute with inclusive bounds.
    pub fn integer(name: &str, category: &str, min: i64, max: i64) -> Self {
        let mut a = Self::new(name, AttrType::Integer, category);
        a.min = Some(min);
        a.max = Some(max);
        a
    }
    /// A timestamp attribute.
    pub fn timestamp(name: &str, category: &str) -> Self {
        Self::new(name, AttrType::Timestamp, category)
    }
    /// A boolean attribute.
    pub fn boolean(name: &str, category: &str) -> Self {
        Self::new(name, AttrType::Boolean, category)
    }
    /// Sets the maximum staleness.
    pub fn max_staleness_days(mut self, days: u32) -> Self {
        self.max_staleness_days = Some(days);
        self
    }
}

impl PurposeSpec {
    /// A purpose with a basis and nothing allowed yet.
    pub fn new(key: &str, basis: LawfulBasis) -> Self {
        PurposeSpec {
            key: key.into(),
            basis,
            categories: Vec::new(),
            accepted_notice_versions: Vec::new(),
            consent_validity_days: None,
            ccpa_sale_share: false,
            ccpa_sensitive_necessary: false,
            email_channel: false,
            email_soft_opt_in: false,
            restriction_exempt: false,
            max_staleness_days: None,
            description: None,
        }
    }
    /// Allows a data category (and everything below it).
    pub fn allow(mut self, category: &str) -> Self {
        self.categories.push(category.into());
        self
    }
    /// Accepts consents given to these notice versions.
    pub fn notice_versions(mut self, versions: &[&str]) -> Self {
        self.accepted_notice_versions
            .extend(versions.iter().map(|v| v.to_string()));
        self
    }
    /// Consents expire after this many days unless the event says otherwise.
    pub fn consent_validity_days(mut self, days: u32) -> Self {
        self.consent_validity_days = Some(days);
        self
    }
    /// Marks it a CCPA sale or share.
    pub fn sale_share(mut self) -> Self {
        self.ccpa_sale_share = true;
        self
    }
    /// Marks it necessary for CCPA sensitive data.
    pub fn sensitive_necessary(mut self) -> Self {
        self.ccpa_sensitive_necessary = true;
        self
    }
    /// Marks it email marketing; `soft_opt_in` says whether the soft opt-in applies.
    pub fn email(mut self, soft_opt_in: bool) -> Self {
        self.email_channel = true;
        self.email_soft_opt_in = soft_opt_in;
        self
    }
    /// Keeps it allowed for restricted subjects.
    pub fn restriction_exempt(mut self) -> Self {
        self.restriction_exempt = true;
        self
    }
    /// Sets a stricter staleness limit.
    pub fn max_staleness_days(mut self, days: u32) -> Self {
        self.max_staleness_days = Some(days);
        self
    }
}
