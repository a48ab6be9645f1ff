//! Validation of a [`PolicySpec`]: one check per section of the policy, each
//! adding what it finds to one [`Problems`] collector, so that a spec with
//! several mistakes is reported with all of them at once, each with its JSON
//! path.

use std::collections::{HashMap, HashSet};

use super::{
    AttrType, CategoryIndex, LawfulBasis, MAX_EVENT_CLOCK_SKEW, PolicyProblem, PolicySpec, Regime,
    ancestors, covers, is_dotted_key, is_identifier, own_flags,
};
use crate::privacy::dp::Rational;

/// Every problem found so far, in the order the checks ran.
#[derive(Default)]
pub(super) struct Problems(Vec<PolicyProblem>);

impl Problems {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(PolicyProblem {
            path: path.into(),
            message: message.into(),
        });
    }

    pub(super) fn into_vec(self) -> Vec<PolicyProblem> {
        self.0
    }
}

/// Runs every check over `spec`.
pub(super) fn check_spec(spec: &PolicySpec) -> Problems {
    let mut p = Problems::default();
    if spec.controller.name.trim().is_empty() {
        p.add("$.controller.name", "the controller needs a name");
    }
    check_jurisdictions(spec, &mut p);
    let declared = check_categories(spec, &mut p);
    let categories = CategoryIndex::new(
        spec.categories
            .iter()
            .map(|c| (c.key.as_str(), own_flags(c))),
    );
    check_attributes(spec, &declared, &mut p);
    check_purposes(spec, &categories, &mut p);
    let purposes = PurposePrefixes::new(spec);
    let recipients = check_recipients(spec, &categories, &purposes, &mut p);
    check_roles(spec, &purposes, &recipients, &mut p);
    if spec.k_threshold == Some(0) {
        p.add("$.k_threshold", "k must be at least 1");
    }
    check_dp_budgets(spec, &purposes, &mut p);
    check_actors(spec, &mut p);
    check_clock_skew(spec, &mut p);
    p
}

/// The declared purpose keys and their prefixes: the keys a role, a
/// recipient or a budget may name ([`covers`] some declared purpose).
struct PurposePrefixes<'a>(HashSet<&'a str>);

impl<'a> PurposePrefixes<'a> {
    fn new(spec: &'a PolicySpec) -> Self {
        PurposePrefixes(
            spec.purposes
                .iter()
                .flat_map(|p| ancestors(&p.key))
                .collect(),
        )
    }

    /// Reports each key of `list` (at `path[k]`) that covers no purpose.
    fn check_list(&self, path: &str, list: &[String], p: &mut Problems) {
        for (k, pu) in list.iter().enumerate() {
            if !self.0.contains(pu.as_str()) {
                p.add(format!("{path}[{k}]"), format!("unknown purpose {pu:?}"));
            }
        }
    }
}

/// Codes are well formed and unique; an age of digital consent is one GDPR
/// Art. 8 allows, and only under the GDPR.
fn check_jurisdictions(spec: &PolicySpec, p: &mut Problems) {
    let mut seen = HashSet::new();
    for (i, j) in spec.jurisdictions.iter().enumerate() {
        let path = format!("$.jurisdictions[{i}]");
        let well_formed = !j.code.is_empty()
            && j.code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-');
        check_unique(
            format!("{path}.code"),
            "jurisdiction",
            &j.code,
            (!well_formed).then(|| {
                format!(
                    "jurisdiction code {:?} must be upper-case letters, digits and '-' (such as EU-FR)",
                    j.code
                )
            }),
            &mut seen,
            p,
        );
        match (j.regime, j.digital_consent_age) {
            (Regime::Gdpr, Some(age)) if !(13..=16).contains(&age) => p.add(
                format!("{path}.digital_consent_age"),
                format!("GDPR Art. 8 allows an age of digital consent from 13 to 16, not {age}"),
            ),
            (Regime::Ccpa | Regime::None, Some(_)) => p.add(
                format!("{path}.digital_consent_age"),
                "an age of digital consent applies only to the gdpr regime",
            ),
            _ => {}
        }
    }
}

/// Keys are dotted lower-case words, each declared once. Returns the
/// declared keys.
fn check_categories<'a>(spec: &'a PolicySpec, p: &mut Problems) -> HashSet<&'a str> {
    let mut declared = HashSet::new();
    for (i, c) in spec.categories.iter().enumerate() {
        let path = format!("$.categories[{i}].key");
        check_unique(
            path,
            "category",
            &c.key,
            (!is_dotted_key(&c.key)).then(|| {
                format!(
                    "category key {:?} must be dotted lower-case words such as user.contact.email",
                    c.key
                )
            }),
            &mut declared,
            p,
        );
    }
    declared
}

/// Reports at `at` the identifying `value` of a `kind` item when it is not
/// well formed (`malformed` says how) or when an earlier item has it.
fn check_unique<'a>(
    at: String,
    kind: &str,
    value: &'a str,
    malformed: Option<String>,
    seen: &mut HashSet<&'a str>,
    p: &mut Problems,
) {
    if let Some(message) = malformed {
        p.add(at.clone(), message);
    }
    if !seen.insert(value) {
        p.add(at, format!("duplicate {kind} {value:?}"));
    }
}

/// Names are unique identifiers in a declared category; values and bounds
/// fit the type.
fn check_attributes(spec: &PolicySpec, declared: &HashSet<&str>, p: &mut Problems) {
    let mut names = HashSet::new();
    for (i, a) in spec.attributes.iter().enumerate() {
        let path = format!("$.attributes[{i}]");
        check_unique(
            format!("{path}.name"),
            "attribute",
            &a.name,
            (!is_identifier(&a.name)).then(|| {
                format!(
                    "attribute name {:?} must be an identifier (letters, digits, '_') and not a reserved word",
                    a.name
                )
            }),
            &mut names,
            p,
        );
        if !declared.contains(a.category.as_str()) {
            p.add(
                format!("{path}.category"),
                format!(
                    "unknown category {:?} (attributes need a declared category)",
                    a.category
                ),
            );
        }
        check_attribute_values(&path, a, p);
        check_attribute_bounds(&path, a, p);
    }
}

/// A categorical attribute declares distinct values; no other type does.
fn check_attribute_values(path: &str, a: &super::AttributeSpec, p: &mut Problems) {
    let categorical = a.ty == AttrType::Categorical;
    if categorical && a.values.is_empty() {
        p.add(
            format!("{path}.values"),
            "a categorical attribute needs at least one declared value",
        );
    }
    if !categorical && !a.values.is_empty() {
        p.add(
            format!("{path}.values"),
            format!(
                "values are declared only for categorical attributes, not {}",
                a.ty.as_str()
            ),
        );
    }
    let mut seen = HashSet::new();
    for (k, v) in a.values.iter().enumerate() {
        if !seen.insert(v) {
            p.add(
                format!("{path}.values[{k}]"),
                format!("duplicate value {v:?}"),
            );
        }
    }
}

/// An integer attribute has both bounds, in order; no other type has any.
fn check_attribute_bounds(path: &str, a: &super::AttributeSpec, p: &mut Problems) {
    if a.ty == AttrType::Integer {
        match (a.min, a.max) {
            (Some(lo), Some(hi)) if lo > hi => p.add(
                format!("{path}.min"),
                format!("min {lo} is greater than max {hi}"),
            ),
            (Some(_), Some(_)) => {}
            _ => p.add(path, "an integer attribute needs both min and max"),
        }
    } else if a.min.is_some() || a.max.is_some() {
        p.add(
            format!("{path}.min"),
            format!(
                "min and max apply only to integer attributes, not {}",
                a.ty.as_str()
            ),
        );
    }
}

/// Reports each category of `list` (at `path[k]`) that is not declared, or
/// that holds criminal data (R8), which `never` says no `list` may name.
fn check_category_list(
    categories: &CategoryIndex<'_>,
    path: &str,
    list: &[String],
    never: &str,
    p: &mut Problems,
) {
    for (k, c) in list.iter().enumerate() {
        if !categories.known(c) {
            p.add(format!("{path}[{k}]"), format!("unknown category {c:?}"));
        } else if categories.flags(c).criminal {
            p.add(
                format!("{path}[{k}]"),
                format!("category {c:?} holds criminal data, {never} (R8)"),
            );
        }
    }
}

/// Keys are unique dotted words; categories are declared and never
/// criminal; consent, the soft opt-in and the validity are consistent.
fn check_purposes(spec: &PolicySpec, categories: &CategoryIndex<'_>, p: &mut Problems) {
    let mut keys = HashSet::new();
    for (i, pu) in spec.purposes.iter().enumerate() {
        let path = format!("$.purposes[{i}]");
        check_unique(
            format!("{path}.key"),
            "purpose",
            &pu.key,
            (!is_dotted_key(&pu.key)).then(|| {
                format!(
                    "purpose key {:?} must be dotted lower-case words such as marketing.email",
                    pu.key
                )
            }),
            &mut keys,
            p,
        );
        check_category_list(
            categories,
            &format!("{path}.categories"),
            &pu.categories,
            "which no purpose may use",
            p,
        );
        if pu.basis == LawfulBasis::Consent && pu.accepted_notice_versions.is_empty() {
            p.add(
                format!("{path}.accepted_notice_versions"),
                "a consent-based purpose needs at least one accepted notice version (R3, R5)",
            );
        }
        if pu.email_soft_opt_in && !pu.email_channel {
            p.add(
                format!("{path}.email_soft_opt_in"),
                "the soft opt-in applies only to email_channel purposes",
            );
        }
        if pu.email_soft_opt_in && !covers("marketing", &pu.key) {
            p.add(
                format!("{path}.email_soft_opt_in"),
                "the soft opt-in is for direct marketing purposes (marketing.*)",
            );
        }
        if pu.consent_validity_days == Some(0) {
            p.add(
                format!("{path}.consent_validity_days"),
                "a consent validity of 0 days would accept no consent",
            );
        }
    }
}

/// Ids are unique; each recipient is named, bound by an agreement (R19) in
/// a country, for known purposes and declared, non-criminal categories.
/// Returns the ids.
fn check_recipients<'a>(
    spec: &'a PolicySpec,
    categories: &CategoryIndex<'_>,
    purposes: &PurposePrefixes<'_>,
    p: &mut Problems,
) -> HashSet<&'a str> {
    let mut ids = HashSet::new();
    for (i, r) in spec.recipients.iter().enumerate() {
        let path = format!("$.recipients[{i}]");
        check_unique(
            format!("{path}.id"),
            "recipient",
            &r.id,
            (!is_dotted_key(&r.id.replace('-', "_"))).then(|| {
                format!(
                    "recipient id {:?} must be lower-case words, digits, '_' or '-'",
                    r.id
                )
            }),
            &mut ids,
            p,
        );
        if r.name.trim().is_empty() {
            p.add(format!("{path}.name"), "a recipient needs its legal name");
        }
        if r.dpa_reference.trim().is_empty() {
            p.add(
                format!("{path}.dpa_reference"),
                "a recipient needs the reference of the agreement that binds it (R19)",
            );
        }
        if r.country.len() != 2 || !r.country.chars().all(|c| c.is_ascii_uppercase()) {
            p.add(
                format!("{path}.country"),
                format!(
                    "country {:?} must be an ISO 3166-1 alpha-2 code such as FR",
                    r.country
                ),
            );
        }
        if r.purposes.is_empty() {
            p.add(
                format!("{path}.purposes"),
                "an agreement covers at least one purpose",
            );
        }
        purposes.check_list(&format!("{path}.purposes"), &r.purposes, p);
        check_category_list(
            categories,
            &format!("{path}.categories"),
            &r.categories,
            "which is never shared",
            p,
        );
    }
    ids
}

/// Names are unique identifiers; grants name known purposes and recipients.
fn check_roles(
    spec: &PolicySpec,
    purposes: &PurposePrefixes<'_>,
    recipients: &HashSet<&str>,
    p: &mut Problems,
) {
    let mut names = HashSet::new();
    for (i, r) in spec.roles.iter().enumerate() {
        let path = format!("$.roles[{i}]");
        check_unique(
            format!("{path}.name"),
            "role",
            &r.name,
            (!is_identifier(&r.name))
                .then(|| format!("role name {:?} must be an identifier", r.name)),
            &mut names,
            p,
        );
        for (field, list) in [
            ("count", &r.count),
            ("member_ids", &r.member_ids),
            ("explain", &r.explain),
        ] {
            purposes.check_list(&format!("{path}.{field}"), list, p);
        }
        for (k, rid) in r.export.iter().enumerate() {
            if !recipients.contains(rid.as_str()) {
                p.add(
                    format!("{path}.export[{k}]"),
                    format!("unknown recipient {rid:?}"),
                );
            }
        }
    }
}

/// Each budget names a known purpose, its cap is within its total, and no
/// two budgets cover the same purpose (a query must charge exactly one).
fn check_dp_budgets(spec: &PolicySpec, purposes: &PurposePrefixes<'_>, p: &mut Problems) {
    for (i, b) in spec.dp_budgets.iter().enumerate() {
        let path = format!("$.dp_budgets[{i}]");
        if !purposes.0.contains(b.purpose.as_str()) {
            p.add(
                format!("{path}.purpose"),
                format!("unknown purpose {:?}", b.purpose),
            );
        }
        if Rational::from(b.max_epsilon) > Rational::from(b.total) {
            p.add(
                format!("{path}.max_epsilon"),
                format!(
                    "the per-query cap {} is above the total budget {}",
                    b.max_epsilon, b.total
                ),
            );
        }
        for (j, other) in spec.dp_budgets[..i].iter().enumerate() {
            if covers(&other.purpose, &b.purpose) || covers(&b.purpose, &other.purpose) {
                p.add(
                    format!("{path}.purpose"),
                    format!(
                        "budget for {:?} overlaps the budget for {:?} at $.dp_budgets[{j}]: \
                         each purpose has one budget",
                        b.purpose, other.purpose
                    ),
                );
            }
        }
    }
}

/// Each identity has an operating-system user, an id no other identity
/// uses, and roles the policy defines.
fn check_actors(spec: &PolicySpec, p: &mut Problems) {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, a) in spec.actors.iter().enumerate() {
        let path = format!("$.actors[{i}]");
        let valid_name = |s: &str| {
            !s.is_empty()
                && s.len() <= 256
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@' | '$'))
        };
        if !valid_name(&a.os_user) {
            p.add(
                format!("{path}.os_user"),
                format!(
                    "operating-system user {:?} must be a user name (letters, digits, '_', '-', '.')",
                    a.os_user
                ),
            );
        }
        if let Some(id) = &a.id
            && (id.trim() != id || id.is_empty() || id.chars().any(char::is_control))
        {
            p.add(
                format!("{path}.id"),
                format!(
                    "actor id {id:?} must be non-empty, without surrounding spaces or control characters"
                ),
            );
        }
        if let Some(j) = ids.insert(a.actor_id(), i) {
            p.add(
                format!("{path}.id"),
                format!(
                    "actor id {:?} is already used at $.actors[{j}]: one id, one identity",
                    a.actor_id()
                ),
            );
        }
        for (k, r) in a.roles.iter().enumerate() {
            if !spec.roles.iter().any(|x| &x.name == r) {
                p.add(format!("{path}.roles[{k}]"), format!("unknown role {r:?}"));
            }
        }
    }
}

/// The clock skew allowed to events is at most a day.
fn check_clock_skew(spec: &PolicySpec, p: &mut Problems) {
    if let Some(s) = spec.event_clock_skew_seconds
        && s > MAX_EVENT_CLOCK_SKEW
    {
        p.add(
            "$.event_clock_skew_seconds",
            format!(
                "{s} seconds is more than the maximum {MAX_EVENT_CLOCK_SKEW} (one day): a larger skew would let events dated in the future take effect ahead of time"
            ),
        );
    }
}
