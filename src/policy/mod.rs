//! The policy: data categories, the attribute schema, purposes with their
//! lawful basis and rules, and jurisdictions.
//!
//! A [`Policy`] can only be made by validating a [`PolicySpec`] (from JSON
//! with [`Policy::from_json`], or in code with [`PolicyBuilder`]). Validation
//! reports every problem it finds, each with its JSON path. A valid policy is
//! immutable, kept in canonical form (lists sorted by key) and identified by
//! its [`PolicyVersion`], the SHA-256 of its canonical JSON.
//!
//! ```
//! use privseg::policy::*;
//! let policy = PolicyBuilder::new("Acme Ltd")
//!     .category(CategorySpec::new("user.contact.email").retention_days(730))
//!     .attribute(AttributeSpec::categorical("country", "user.contact.email", &["FR", "DE"]))
//!     .purpose(PurposeSpec::new("marketing.email", LawfulBasis::Consent)
//!         .allow("user.contact").notice_versions(&["v3"]).email(false))
//!     .build()
//!     .unwrap();
//! assert!(policy.purpose_id("marketing.email").is_some());
//! assert_eq!(policy.version().to_string().len(), 64);
//! ```

mod check;
mod spec;

use std::collections::{HashMap, HashSet};
use std::fmt;

use crate::timestamp::DAY;
pub use spec::*;

/// Default for [`PolicySpec::event_clock_skew_seconds`]: five minutes.
pub const DEFAULT_EVENT_CLOCK_SKEW: u64 = 300;
/// Largest allowed [`PolicySpec::event_clock_skew_seconds`]: one day.
pub const MAX_EVENT_CLOCK_SKEW: u64 = 86_400;

/// Index of an attribute in its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrId(pub u32);
/// Index of a purpose in its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PurposeId(pub u32);
/// Index of a jurisdiction in its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JurisdictionId(pub u32);

/// The SHA-256 of a policy's canonical JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyVersion(pub [u8; 32]);

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyVersion({self})")
    }
}

/// Flags of a category after inheritance from its declared ancestors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CategoryFlags {
    /// GDPR Art. 9.
    pub special: bool,
    /// GDPR Art. 10.
    pub criminal: bool,
    /// CCPA sensitive.
    pub ccpa_sensitive: bool,
    /// Protected attribute.
    pub protected: bool,
}

/// One problem found in a policy, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyProblem {
    /// JSON path such as `$.purposes[2].categories[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The text is not JSON of the policy's shape.
    #[error("policy JSON, line {line}, column {column}: {message}")]
    Json {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// serde's message.
        message: String,
    },
    /// The policy is well-formed but breaks one or more rules.
    #[error("invalid policy ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" },
        .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<PolicyProblem>),
}

impl PolicyError {
    /// Every problem, for an invalid policy; empty for a JSON error.
    pub fn problems(&self) -> &[PolicyProblem] {
        match self {
            PolicyError::Invalid(p) => p,
            PolicyError::Json { .. } => &[],
        }
    }
}

#[derive(Debug)]
struct Attribute {
    category_flags: CategoryFlags,
    max_staleness: Option<i64>,
    values: HashMap<String, u32>,
}

#[derive(Debug)]
struct Purpose {
    accepted: HashSet<String>,
    direct_marketing: bool,
}

/// A validated, immutable policy.
#[derive(Debug)]
pub struct Policy {
    spec: PolicySpec,
    version: PolicyVersion,
    version_hex: String,
    declared: HashMap<String, CategoryFlags>,
    attrs: Vec<Attribute>,
    attr_index: HashMap<String, AttrId>,
    purposes: Vec<Purpose>,
    purpose_index: HashMap<String, PurposeId>,
    jurisdiction_index: HashMap<String, JurisdictionId>,
}

/// Builds a policy in code.
#[derive(Clone, Debug)]
pub struct PolicyBuilder {
    spec: PolicySpec,
}

impl PolicyBuilder {
    /// A policy for this controller, with the default jurisdictions.
    pub fn new(controller: &str) -> Self {
        PolicyBuilder {
            spec: PolicySpec {
                controller: Controller {
                    name: controller.into(),
                    contact: None,
                },
                jurisdictions: default_jurisdictions(),
                categories: Vec::new(),
                attributes: Vec::new(),
                purposes: Vec::new(),
                recipients: Vec::new(),
                roles: Vec::new(),
                k_threshold: None,
                dp_budgets: Vec::new(),
                actors: Vec::new(),
                event_clock_skew_seconds: None,
            },
        }
    }
    /// Adds a recipient.
    pub fn recipient(mut self, r: RecipientSpec) -> Self {
        self.spec.recipients.push(r);
        self
    }
    /// Adds a role.
    pub fn role(mut self, r: RoleSpec) -> Self {
        self.spec.roles.push(r);
        self
    }
    /// Sets the count threshold k.
    pub fn k_threshold(mut self, k: u64) -> Self {
        self.spec.k_threshold = Some(k);
        self
    }
    /// Adds a differential-privacy budget for a purpose (and those below it).
    pub fn dp_budget(
        mut self,
        purpose: &str,
        max_epsilon: crate::privacy::dp::Epsilon,
        total: crate::privacy::dp::Epsilon,
    ) -> Self {
        self.spec.dp_budgets.push(DpBudgetSpec {
            purpose: purpose.into(),
            max_epsilon,
            total,
        });
        self
    }
    /// Lets an operating-system user act as an identity with these roles.
    pub fn actor(mut self, a: ActorSpec) -> Self {
        self.spec.actors.push(a);
        self
    }
    /// Sets how many seconds ahead of the recording instant an event's time
    /// may be (default [`DEFAULT_EVENT_CLOCK_SKEW`]).
    pub fn event_clock_skew_seconds(mut self, seconds: u64) -> Self {
        self.spec.event_clock_skew_seconds = Some(seconds);
        self
    }
    /// Sets the controller's contact point.
    pub fn contact(mut self, contact: &str) -> Self {
        self.spec.controller.contact = Some(contact.into());
        self
    }
    /// Replaces the jurisdiction list.
    pub fn jurisdictions(mut self, list: Vec<JurisdictionSpec>) -> Self {
        self.spec.jurisdictions = list;
        self
    }
    /// Adds a category.
    pub fn category(mut self, c: CategorySpec) -> Self {
        self.spec.categories.push(c);
        self
    }
    /// Adds an attribute.
    pub fn attribute(mut self, a: AttributeSpec) -> Self {
        self.spec.attributes.push(a);
        self
    }
    /// Adds a purpose.
    pub fn purpose(mut self, p: PurposeSpec) -> Self {
        self.spec.purposes.push(p);
        self
    }
    /// Validates and builds.
    pub fn build(self) -> Result<Policy, PolicyError> {
        Policy::from_spec(self.spec)
    }
}

/// Words of the segment language that cannot name an attribute.
pub const RESERVED_WORDS: &[&str] = &[
    "segment", "for", "where", "and", "or", "not", "in", "between", "has", "now", "true", "false",
];

fn is_dotted_key(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut ch = part.chars();
            matches!(ch.next(), Some(c) if c.is_ascii_lowercase())
                && ch.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

fn is_identifier(s: &str) -> bool {
    let mut ch = s.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && ch.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED_WORDS.contains(&s)
}

/// Does `key` equal `prefix` or lie below it in the dotted hierarchy?
pub fn covers(prefix: &str, key: &str) -> bool {
    #[cfg(test)]
    tests::count_key_step();
    key == prefix || (key.starts_with(prefix) && key.as_bytes().get(prefix.len()) == Some(&b'.'))
}

/// The keys that cover `key` ([`covers`]): `key` itself and each prefix of
/// it that ends before a `.`, at most one per dot.
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    key.match_indices('.')
        .map(|(i, _)| &key[..i])
        .chain(std::iter::once(key))
        .inspect(|_| {
            #[cfg(test)]
            tests::count_key_step();
        })
}

/// A category's own flags, before inheritance.
fn own_flags(c: &CategorySpec) -> CategoryFlags {
    CategoryFlags {
        special: c.special,
        criminal: c.criminal,
        ccpa_sensitive: c.ccpa_sensitive,
        protected: c.protected,
    }
}

impl CategoryFlags {
    fn union(self, o: CategoryFlags) -> CategoryFlags {
        CategoryFlags {
            special: self.special | o.special,
            criminal: self.criminal | o.criminal,
            ccpa_sensitive: self.ccpa_sensitive | o.ccpa_sensitive,
            protected: self.protected | o.protected,
        }
    }
}

/// Declared categories indexed for the two questions a policy asks of them,
/// each answered in time proportional to the key's number of dots (not to
/// the number of categories): the flags a key inherits from the declared
/// keys that cover it, and whether a key names a declared category or a
/// prefix of one.
struct CategoryIndex<'a> {
    flags: HashMap<&'a str, CategoryFlags>,
    prefixes: HashSet<&'a str>,
}

impl<'a> CategoryIndex<'a> {
    /// A key declared twice (a problem reported on its own) gets the union
    /// of its flags: the stricter reading.
    fn new(declared: impl IntoIterator<Item = (&'a str, CategoryFlags)>) -> Self {
        let mut flags: HashMap<&str, CategoryFlags> = HashMap::new();
        let mut prefixes = HashSet::new();
        for (key, f) in declared {
            let e = flags.entry(key).or_default();
            *e = e.union(f);
            prefixes.extend(ancestors(key));
        }
        CategoryIndex { flags, prefixes }
    }

    /// Flags of `key` after inheritance from every declared key covering it.
    fn flags(&self, key: &str) -> CategoryFlags {
        ancestors(key)
            .filter_map(|a| self.flags.get(a))
            .fold(CategoryFlags::default(), |f, g| f.union(*g))
    }

    /// Is `key` a declared category or a prefix of one?
    fn known(&self, key: &str) -> bool {
        self.prefixes.contains(key)
    }
}

impl Policy {
    /// Parses and validates a JSON policy.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let spec: PolicySpec = serde_json::from_str(text).map_err(|e| PolicyError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        Policy::from_spec(spec)
    }

    /// Validates a spec, reporting every problem with its JSON path.
    pub fn from_spec(spec: PolicySpec) -> Result<Policy, PolicyError> {
        let problems = check::check_spec(&spec).into_vec();
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }
        Ok(Policy::index(canonical(spec)))
    }

    fn index(spec: PolicySpec) -> Policy {
        let version = {
            let bytes = serde_json::to_vec(&spec).expect("a policy spec always serialises");
            let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
            let mut v = [0u8; 32];
            v.copy_from_slice(d.as_ref());
            PolicyVersion(v)
        };
        let index = CategoryIndex::new(
            spec.categories
                .iter()
                .map(|c| (c.key.as_str(), own_flags(c))),
        );
        let flags = |key: &str| index.flags(key);
        let declared = spec
            .categories
            .iter()
            .map(|c| (c.key.clone(), flags(&c.key)))
            .collect();
        let attrs = spec
            .attributes
            .iter()
            .map(|a| Attribute {
                category_flags: flags(&a.category),
                max_staleness: a.max_staleness_days.map(|d| i64::from(d) * DAY),
                values: a
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (v.clone(), i as u32))
                    .collect(),
            })
            .collect();
        let attr_index = spec
            .attributes
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), AttrId(i as u32)))
            .collect();
        let purposes = spec
            .purposes
            .iter()
            .map(|p| Purpose {
                accepted: p.accepted_notice_versions.iter().cloned().collect(),
                direct_marketing: covers("marketing", &p.key),
            })
            .collect();
        let purpose_index = spec
            .purposes
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.clone(), PurposeId(i as u32)))
            .collect();
        let jurisdiction_index = spec
            .jurisdictions
            .iter()
            .enumerate()
            .map(|(i, j)| (j.code.clone(), JurisdictionId(i as u32)))
            .collect();
        Policy {
            spec,
            version,
            version_hex: version.to_string(),
            declared,
            attrs,
            attr_index,
            purposes,
            purpose_index,
            jurisdiction_index,
        }
    }

    /// The canonical spec.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }
    /// The canonical JSON (what the version hashes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.spec).expect("a policy spec always serialises")
    }
    /// The policy version.
    pub fn version(&self) -> PolicyVersion {
        self.version
    }
    /// The policy version as 64 hex digits (kept, since every audit entry
    /// carries it).
    pub fn version_hex(&self) -> &str {
        &self.version_hex
    }
    /// Looks up an attribute by name.
    pub fn attr_id(&self, name: &str) -> Option<AttrId> {
        self.attr_index.get(name).copied()
    }
    /// The attribute's spec.
    pub fn attribute(&self, id: AttrId) -> &AttributeSpec {
        &self.spec.attributes[id.0 as usize]
    }
    /// Number of attributes.
    pub fn attribute_count(&self) -> usize {
        self.spec.attributes.len()
    }
    /// The attribute's category flags, after inheritance.
    pub fn attribute_flags(&self, id: AttrId) -> CategoryFlags {
        self.attrs[id.0 as usize].category_flags
    }
    /// The index of a declared categorical value.
    pub fn value_index(&self, id: AttrId, value: &str) -> Option<u32> {
        self.attrs[id.0 as usize].values.get(value).copied()
    }
    /// Staleness limit in seconds for an attribute used for a purpose: the
    /// stricter of the attribute's and the purpose's.
    pub fn max_staleness(&self, attr: AttrId, purpose: PurposeId) -> Option<i64> {
        let a = self.attrs[attr.0 as usize].max_staleness;
        let p = self
            .purpose(purpose)
            .max_staleness_days
            .map(|d| i64::from(d) * DAY);
        match (a, p) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        }
    }
    /// Looks up a purpose by key.
    pub fn purpose_id(&self, key: &str) -> Option<PurposeId> {
        self.purpose_index.get(key).copied()
    }
    /// The purpose's spec.
    pub fn purpose(&self, id: PurposeId) -> &PurposeSpec {
        &self.spec.purposes[id.0 as usize]
    }
    /// Number of purposes.
    pub fn purpose_count(&self) -> usize {
        self.spec.purposes.len()
    }
    /// All purpose ids.
    pub fn purpose_ids(&self) -> impl Iterator<Item = PurposeId> + '_ {
        (0..self.spec.purposes.len() as u32).map(PurposeId)
    }
    /// Is the purpose direct marketing (`marketing` or below)?
    pub fn is_direct_marketing(&self, id: PurposeId) -> bool {
        self.purposes[id.0 as usize].direct_marketing
    }
    /// Does the purpose accept consents given to this notice version? A
    /// purpose with no list (only possible when its basis is not consent)
    /// accepts any version.
    pub fn accepts_notice(&self, id: PurposeId, version: &str) -> bool {
        let accepted = &self.purposes[id.0 as usize].accepted;
        accepted.is_empty() || accepted.contains(version)
    }
    /// Flags of a category key (declared or a prefix of declared ones).
    pub fn category_flags(&self, key: &str) -> CategoryFlags {
        // The stored flags are already inherited: a union over the declared
        // keys covering `key` is the same as over all their ancestors.
        ancestors(key)
            .filter_map(|a| self.declared.get(a))
            .fold(CategoryFlags::default(), |f, g| f.union(*g))
    }
    /// Resolves a subject's jurisdiction code: the exact code, else the part
    /// before the first `-` when the rest is a real subdivision of it. For
    /// `EU` that is a member state (`EU-FR` falls back to `EU`; `EU-XX`, or
    /// `EU-UK` since 2020, is unknown), for `US` a state, DC or a territory;
    /// other prefixes fall back for any rest, as the policy's author wrote
    /// them. A code that is not of the form of one (too long, lower case,
    /// spaces) is unknown.
    pub fn jurisdiction_id(&self, code: &str) -> Option<JurisdictionId> {
        if code.len() > 16 {
            return None;
        }
        self.jurisdiction_index.get(code).copied().or_else(|| {
            let (head, rest) = code.split_once('-')?;
            let known: &[&str] = match head {
                "EU" => EU_MEMBER_STATES,
                "US" => US_STATES,
                _ => {
                    if rest.is_empty()
                        || !rest
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
                    {
                        return None;
                    }
                    &[]
                }
            };
            if !known.is_empty() && !known.contains(&rest) {
                return None;
            }
            self.jurisdiction_index.get(head).copied()
        })
    }
    /// The jurisdiction's spec.
    pub fn jurisdiction(&self, id: JurisdictionId) -> &JurisdictionSpec {
        &self.spec.jurisdictions[id.0 as usize]
    }
    /// The count threshold k (default 11).
    pub fn k_threshold(&self) -> u64 {
        self.spec
            .k_threshold
            .unwrap_or(crate::privacy::aggregate::DEFAULT_K)
    }
    /// How many seconds after the recording instant an event's time may be
    /// (default [`DEFAULT_EVENT_CLOCK_SKEW`]).
    pub fn event_clock_skew_seconds(&self) -> u64 {
        self.spec
            .event_clock_skew_seconds
            .unwrap_or(DEFAULT_EVENT_CLOCK_SKEW)
    }
    /// Looks up a recipient.
    pub fn recipient(&self, id: &str) -> Option<&RecipientSpec> {
        self.spec.recipients.iter().find(|r| r.id == id)
    }
    /// Looks up a role.
    pub fn role(&self, name: &str) -> Option<&RoleSpec> {
        self.spec.roles.iter().find(|r| r.name == name)
    }
    /// The differential-privacy budget that covers a purpose, if any (at
    /// most one does: validation refuses overlapping budgets).
    pub fn dp_budget(&self, purpose: &str) -> Option<&DpBudgetSpec> {
        self.spec
            .dp_budgets
            .iter()
            .find(|b| covers(&b.purpose, purpose))
    }
    /// The identities an operating-system user may act as.
    pub fn actors_of(&self, os_user: &str) -> impl Iterator<Item = &ActorSpec> + '_ {
        let os_user = os_user.to_owned();
        self.spec
            .actors
            .iter()
            .filter(move |a| a.os_user == os_user)
    }
    /// GDPR age of digital consent for a jurisdiction (None outside the GDPR).
    pub fn consent_age(&self, id: JurisdictionId) -> Option<u32> {
        let j = self.jurisdiction(id);
        (j.regime == Regime::Gdpr).then(|| u32::from(j.digital_consent_age.unwrap_or(16)))
    }
}

/// Sorts every keyed or set-like list so that equal policies hash equally.
fn canonical(mut spec: PolicySpec) -> PolicySpec {
    spec.jurisdictions.sort_by(|a, b| a.code.cmp(&b.code));
    spec.categories.sort_by(|a, b| a.key.cmp(&b.key));
    spec.attributes.sort_by(|a, b| a.name.cmp(&b.name));
    spec.purposes.sort_by(|a, b| a.key.cmp(&b.key));
    spec.recipients.sort_by(|a, b| a.id.cmp(&b.id));
    spec.roles.sort_by(|a, b| a.name.cmp(&b.name));
    spec.dp_budgets.sort_by(|a, b| a.purpose.cmp(&b.purpose));
    spec.actors
        .sort_by(|a, b| (&a.os_user, a.actor_id()).cmp(&(&b.os_user, b.actor_id())));
    for a in &mut spec.actors {
        a.roles.sort();
        a.roles.dedup();
    }
    for r in &mut spec.recipients {
        r.purposes.sort();
        r.purposes.dedup();
        r.categories.sort();
        r.categories.dedup();
    }
    for r in &mut spec.roles {
        for list in [
            &mut r.count,
            &mut r.member_ids,
            &mut r.explain,
            &mut r.export,
        ] {
            list.sort();
            list.dedup();
        }
    }
    for p in &mut spec.purposes {
        p.categories.sort();
        p.categories.dedup();
        p.accepted_notice_versions.sort();
        p.accepted_notice_versions.dedup();
    }
    spec
}

/// The EU member states by their ISO 3166-1 alpha-2 codes, with `EL`, the
/// EU's own code for Greece, beside `GR`.
const EU_MEMBER_STATES: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "EL", "HU", "IE", "IT",
    "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

/// The US states, DC and the inhabited territories, by their USPS codes.
const US_STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// Keys compared or looked up on this thread (calls of `covers`,
        /// ancestors visited).
        static KEY_STEPS: Cell<u64> = const { Cell::new(0) };
    }

    pub(super) fn count_key_step() {
        KEY_STEPS.with(|c| c.set(c.get() + 1));
    }

    /// 32,000 categories, each with an attribute, all allowed for one
    /// purpose and shared with one recipient: the key work is linear (the
    /// scans this replaced made about 3 * 32,000^2 = 3e9 comparisons).
    #[test]
    fn category_lookups_cost_linear_work() {
        const N: usize = 32_000;
        let mut b = PolicyBuilder::new("Acme").category(CategorySpec::new("user").special());
        let mut purpose = PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests);
        let mut shared = Vec::new();
        for i in 0..N {
            let key = format!("user.c{i}.detail");
            b = b
                .category(CategorySpec::new(&key))
                .attribute(AttributeSpec::boolean(&format!("a{i}"), &key));
            purpose = purpose.allow(&format!("user.c{i}"));
            shared.push(key);
        }
        let b = b.purpose(purpose).recipient(RecipientSpec {
            id: "r".into(),
            name: "R Ltd".into(),
            country: "FR".into(),
            dpa_reference: "DPA-1".into(),
            purposes: vec!["analytics".into()],
            third_country: false,
            categories: shared,
            ccpa_role: CcpaRole::ServiceProvider,
        });
        KEY_STEPS.with(|c| c.set(0));
        let p = b.build().unwrap_or_else(|e| panic!("{e}"));
        let steps = KEY_STEPS.with(Cell::get);
        assert!(
            steps < 40 * N as u64,
            "{steps} key steps for {N} categories"
        );
        // Inheritance still holds: every category sits under `user`.
        let last = p.attr_id(&format!("a{}", N - 1)).unwrap();
        assert!(p.attribute_flags(last).special);
    }

    /// What `reports_each_section_in_order` expects, in order.
    const EACH_SECTION_PROBLEMS: &[&str] = &[
        "$.controller.name: the controller needs a name",
        "$.jurisdictions[0].code: jurisdiction code \"fr\" must be upper-case letters, digits and '-' (such as EU-FR)",
        "$.jurisdictions[0].digital_consent_age: GDPR Art. 8 allows an age of digital consent from 13 to 16, not 12",
        "$.jurisdictions[1].code: jurisdiction code \"fr\" must be upper-case letters, digits and '-' (such as EU-FR)",
        "$.jurisdictions[1].code: duplicate jurisdiction \"fr\"",
        "$.jurisdictions[1].digital_consent_age: an age of digital consent applies only to the gdpr regime",
        "$.recipients[0].id: recipient id \"Bad Id\" must be lower-case words, digits, '_' or '-'",
        "$.recipients[0].name: a recipient needs its legal name",
        "$.recipients[0].dpa_reference: a recipient needs the reference of the agreement that binds it (R19)",
        "$.recipients[0].country: country \"fra\" must be an ISO 3166-1 alpha-2 code such as FR",
        "$.recipients[0].purposes[0]: unknown purpose \"sales\"",
        "$.recipients[0].categories[0]: category \"user.criminal\" holds criminal data, which is never shared (R8)",
        "$.recipients[0].categories[1]: unknown category \"user.nope\"",
        "$.roles[0].name: role name \"1role\" must be an identifier",
        "$.roles[0].count[1]: unknown purpose \"ads\"",
        "$.roles[0].export[0]: unknown recipient \"nobody\"",
        "$.k_threshold: k must be at least 1",
        "$.dp_budgets[0].purpose: unknown purpose \"ads\"",
        "$.dp_budgets[0].max_epsilon: the per-query cap 2 is above the total budget 1",
        "$.actors[0].os_user: operating-system user \"a b\" must be a user name (letters, digits, '_', '-', '.')",
        "$.actors[0].roles[0]: unknown role \"boss\"",
        "$.event_clock_skew_seconds: 86401 seconds is more than the maximum 86400 (one day): a larger skew would let events dated in the future take effect ahead of time",
    ];

    /// One mistake in each section the other tests leave out, and the two
    /// criminal-category refusals: every problem, in order, word for word.
    #[test]
    fn reports_each_section_in_order() {
        let mut spec = base()
            .purpose(PurposeSpec::new(
                "marketing.email",
                LawfulBasis::LegitimateInterests,
            ))
            .spec;
        spec.controller.name = " ".into();
        spec.jurisdictions = vec![
            JurisdictionSpec {
                code: "fr".into(),
                regime: Regime::Gdpr,
                digital_consent_age: Some(12),
            },
            JurisdictionSpec {
                code: "fr".into(),
                regime: Regime::Ccpa,
                digital_consent_age: Some(16),
            },
        ];
        spec.recipients = vec![RecipientSpec {
            id: "Bad Id".into(),
            name: "".into(),
            country: "fra".into(),
            dpa_reference: " ".into(),
            purposes: vec!["sales".into()],
            third_country: false,
            categories: vec!["user.criminal".into(), "user.nope".into()],
            ccpa_role: CcpaRole::ServiceProvider,
        }];
        spec.roles = vec![RoleSpec {
            name: "1role".into(),
            count: vec!["marketing".into(), "ads".into()],
            export: vec!["nobody".into()],
            ..RoleSpec::default()
        }];
        spec.k_threshold = Some(0);
        spec.dp_budgets = vec![DpBudgetSpec {
            purpose: "ads".into(),
            max_epsilon: "2".parse().unwrap(),
            total: "1".parse().unwrap(),
        }];
        spec.actors = vec![ActorSpec {
            os_user: "a b".into(),
            id: None,
            roles: vec!["boss".into()],
        }];
        spec.event_clock_skew_seconds = Some(MAX_EVENT_CLOCK_SKEW + 1);
        let err = Policy::from_spec(spec).unwrap_err();
        let got: Vec<String> = err
            .problems()
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(got, EACH_SECTION_PROBLEMS);
    }

    fn base() -> PolicyBuilder {
        PolicyBuilder::new("Acme")
            .category(CategorySpec::new("user.contact"))
            .category(CategorySpec::new("user.health").special())
            .category(CategorySpec::new("user.criminal").criminal())
    }

    #[test]
    fn reports_every_problem_with_its_path() {
        let err = base()
            .category(CategorySpec::new("user.contact"))
            .attribute(AttributeSpec::categorical("country", "user.nowhere", &[]))
            .attribute(AttributeSpec::integer("and", "user.contact", 5, 1))
            .purpose(PurposeSpec::new("marketing.email", LawfulBasis::Consent).allow("user.bogus"))
            .purpose(PurposeSpec::new("Bad Key", LawfulBasis::Contract).allow("user.criminal"))
            .build()
            .unwrap_err();
        let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
        for want in [
            "$.categories[3].key",
            "$.attributes[0].category",
            "$.attributes[0].values",
            "$.attributes[1].name",
            "$.attributes[1].min",
            "$.purposes[0].categories[0]",
            "$.purposes[0].accepted_notice_versions",
            "$.purposes[1].key",
            "$.purposes[1].categories[0]",
        ] {
            assert!(paths.contains(&want), "missing {want} in {paths:?}");
        }
        assert_eq!(paths.len(), 9, "{err}");
    }

    #[test]
    fn version_is_canonical_and_sensitive_to_content() {
        let a = base()
            .attribute(AttributeSpec::boolean("b", "user.contact"))
            .attribute(AttributeSpec::boolean("a", "user.contact"))
            .build()
            .unwrap();
        let b = base()
            .attribute(AttributeSpec::boolean("a", "user.contact"))
            .attribute(AttributeSpec::boolean("b", "user.contact"))
            .build()
            .unwrap();
        assert_eq!(a.version(), b.version());
        let c = base()
            .attribute(AttributeSpec::boolean("a", "user.contact"))
            .build()
            .unwrap();
        assert_ne!(a.version(), c.version());
        let again = Policy::from_json(&a.to_json()).unwrap();
        assert_eq!(again.version(), a.version());
    }

    #[test]
    fn flags_inherit_and_jurisdictions_fall_back() {
        let p = base()
            .category(CategorySpec::new("user.health.diagnosis"))
            .build()
            .unwrap();
        assert!(p.category_flags("user.health.diagnosis").special);
        assert!(!p.category_flags("user.contact").special);
        assert!(!p.category_flags("user").special);
        let fr = p.jurisdiction_id("EU-FR").unwrap();
        assert_eq!(p.consent_age(fr), Some(15));
        // A policy that lists only `EU` and `US`: only real member states
        // and states fall back to them.
        let spec = |code: &str, regime| JurisdictionSpec {
            code: code.into(),
            regime,
            digital_consent_age: None,
        };
        let broad = base()
            .jurisdictions(vec![spec("EU", Regime::Gdpr), spec("US", Regime::Ccpa)])
            .build()
            .unwrap();
        for good in ["EU-FR", "EU-SE", "EU-EL", "US-NY", "US-DC"] {
            let j = broad.jurisdiction_id(good).unwrap();
            assert_eq!(broad.jurisdiction(j).code, &good[..2]);
        }
        for bad in [
            "EU-XX", "EU-UK", "EU-fr", "EU-", "EU-FRA", "EU-FR-75", "US-ZZ", "BR",
        ] {
            assert!(broad.jurisdiction_id(bad).is_none(), "{bad}");
        }
        let long = format!("EU-{}", "F".repeat(100));
        assert!(broad.jurisdiction_id(&long).is_none());
        assert!(p.jurisdiction_id("EU-XX").is_none());
        assert_eq!(p.consent_age(p.jurisdiction_id("US-CA").unwrap()), None);
        assert!(p.jurisdiction_id("BR").is_none());
        assert!(covers("user.contact", "user.contact.email"));
        assert!(!covers("user.contact", "user.contactless"));
    }

    #[test]
    fn dp_budgets_and_actors_are_checked() {
        let epsilon = |s: &str| s.parse::<crate::privacy::dp::Epsilon>().unwrap();
        let with = |b: PolicyBuilder| {
            b.purpose(PurposeSpec::new(
                "analytics",
                LawfulBasis::LegitimateInterests,
            ))
            .purpose(PurposeSpec::new(
                "analytics.web",
                LawfulBasis::LegitimateInterests,
            ))
            .role(RoleSpec {
                name: "analyst".into(),
                ..RoleSpec::default()
            })
        };
        let actor = |os: &str, id: Option<&str>, roles: &[&str]| ActorSpec {
            os_user: os.into(),
            id: id.map(String::from),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        };
        let err = with(base())
            .dp_budget("analytics", epsilon("2"), epsilon("1"))
            .dp_budget("analytics.web", epsilon("1/2"), epsilon("1"))
            .dp_budget("nowhere", epsilon("1/2"), epsilon("1"))
            .actor(actor("crm", Some("crm-sync"), &["analyst", "ghost"]))
            .actor(actor("dana", Some("crm-sync"), &[]))
            .actor(actor("", None, &[]))
            .build()
            .unwrap_err();
        let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.dp_budgets[0].max_epsilon",
                "$.dp_budgets[1].purpose",
                "$.dp_budgets[2].purpose",
                "$.actors[0].roles[1]",
                "$.actors[1].id",
                "$.actors[2].os_user",
            ],
            "{err}"
        );
        let p = with(base())
            .dp_budget("analytics", epsilon("1/2"), epsilon("1"))
            .actor(actor("dana", None, &["analyst"]))
            .actor(actor("dana", Some("dana-admin"), &[]))
            .build()
            .unwrap();
        assert_eq!(p.dp_budget("analytics.web").unwrap().purpose, "analytics");
        assert!(p.dp_budget("analyticsx").is_none());
        let ids: Vec<&str> = p.actors_of("dana").map(|a| a.actor_id()).collect();
        assert_eq!(ids, ["dana", "dana-admin"]);
        assert_eq!(p.actors_of("crm").count(), 0);
    }

    #[test]
    fn json_errors_have_positions() {
        match Policy::from_json("{\"controller\": {\"name\": 3}}") {
            Err(PolicyError::Json {
                line: 1, column, ..
            }) => assert!(column > 10),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn event_clock_skew_defaults_and_is_bounded() {
        let p = base().build().unwrap();
        assert_eq!(p.event_clock_skew_seconds(), DEFAULT_EVENT_CLOCK_SKEW);
        let p = base().event_clock_skew_seconds(0).build().unwrap();
        assert_eq!(p.event_clock_skew_seconds(), 0);
        let again = Policy::from_json(&p.to_json()).unwrap();
        assert_eq!(again.event_clock_skew_seconds(), 0);
        let err = base()
            .event_clock_skew_seconds(MAX_EVENT_CLOCK_SKEW + 1)
            .build()
            .unwrap_err();
        let paths: Vec<&str> = err.problems().iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["$.event_clock_skew_seconds"], "{err}");
        assert!(
            base()
                .event_clock_skew_seconds(MAX_EVENT_CLOCK_SKEW)
                .build()
                .is_ok()
        );
    }
}
