//! The record of processing activities (GDPR Art. 30, R18).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{export_tallies, heading, retention_of, table, yes};
use crate::audit::{AuditError, AuditLog, AuditSink};
use crate::policy::{CcpaRole, LawfulBasis, Policy, Regime, RoleSpec, covers};
use crate::timestamp::Timestamp;

/// The record of processing activities, generated from the policy, its
/// recipients and the audit log.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Ropa {
    /// When it was generated.
    pub generated_at: Timestamp,
    /// The policy version it describes.
    pub policy_version: String,
    /// The controller (Art. 30(1)(a)).
    pub controller: ControllerRecord,
    /// Purposes with their lawful basis and the data each uses (Art.
    /// 30(1)(b), (c)).
    pub purposes: Vec<PurposeRecord>,
    /// Categories of data subjects, by regime and jurisdiction (Art.
    /// 30(1)(c)).
    pub subject_categories: Vec<SubjectCategory>,
    /// Recipients and their agreements (Art. 30(1)(d)).
    pub recipients: Vec<RecipientRecord>,
    /// Transfers to third countries and their safeguards (Art. 30(1)(e)).
    pub third_country_transfers: Vec<TransferRecord>,
    /// Retention periods per data category (Art. 30(1)(f)).
    pub retention: Vec<RetentionRecord>,
    /// Technical and organisational security measures (Art. 30(1)(g)).
    pub security: SecurityMeasures,
}

/// The controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ControllerRecord {
    /// Legal name.
    pub name: String,
    /// Contact point, such as the DPO's address.
    pub contact: Option<String>,
}

/// One purpose of processing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurposeRecord {
    /// Purpose key.
    pub key: String,
    /// Free text from the policy.
    pub description: Option<String>,
    /// Its lawful basis (GDPR Art. 6(1)).
    pub lawful_basis: LawfulBasis,
    /// Consent terms, for consent-based purposes.
    pub consent: Option<ConsentTerms>,
    /// Direct marketing (`marketing` and below): objections are absolute.
    pub direct_marketing: bool,
    /// Email marketing under the ePrivacy rules.
    pub email_channel: bool,
    /// A CCPA sale or share.
    pub ccpa_sale_share: bool,
    /// Still allowed for restricted subjects.
    pub restriction_exempt: bool,
    /// Staleness limit set by the purpose, in days.
    pub max_staleness_days: Option<u32>,
    /// The declared data categories it may use.
    pub data_categories: Vec<CategoryUse>,
    /// Does it use a GDPR Art. 9 special category?
    pub uses_special_categories: bool,
    /// Does it use CCPA sensitive personal information?
    pub uses_ccpa_sensitive: bool,
    /// Recipients whose agreement covers it.
    pub recipients: Vec<String>,
}

/// How consents for a purpose are taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentTerms {
    /// Notice versions whose consents are accepted.
    pub accepted_notice_versions: Vec<String>,
    /// Validity of a consent in days, if it expires by default.
    pub validity_days: Option<u32>,
}

/// A declared data category as used by a purpose or a recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryUse {
    /// Category key.
    pub category: String,
    /// GDPR Art. 9 special category.
    pub special: bool,
    /// CCPA sensitive personal information.
    pub ccpa_sensitive: bool,
    /// Protected attribute (fairness audits only, never a predicate).
    pub protected: bool,
    /// Attributes of this category.
    pub attributes: Vec<String>,
}

/// Data subjects under one regime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubjectCategory {
    /// The regime.
    pub regime: Regime,
    /// Who they are.
    pub description: String,
    /// Declared jurisdictions of the regime.
    pub jurisdictions: Vec<JurisdictionRecord>,
    /// Subjects held under the regime (when generated from an engine).
    pub subjects: Option<u64>,
}

/// A jurisdiction of the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JurisdictionRecord {
    /// Code such as `EU-FR`.
    pub code: String,
    /// GDPR age of digital consent.
    pub digital_consent_age: Option<u8>,
    /// Subjects held in it (when generated from an engine).
    pub subjects: Option<u64>,
}

/// A recipient and its agreement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecipientRecord {
    /// Identifier.
    pub id: String,
    /// Legal name.
    pub name: String,
    /// Country where it processes the data.
    pub country: String,
    /// A third-country transfer (GDPR Art. 44+).
    pub third_country: bool,
    /// Reference of the agreement.
    pub dpa_reference: String,
    /// Its CCPA role.
    pub ccpa_role: CcpaRole,
    /// Purposes the agreement covers.
    pub purposes: Vec<String>,
    /// Declared data categories the agreement covers.
    pub categories: Vec<CategoryUse>,
    /// Exports to it recorded in the audit log.
    pub exports: u64,
    /// Rows sent to it in those exports.
    pub rows_exported: u64,
}

/// A transfer to a recipient outside the EEA.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransferRecord {
    /// Recipient id.
    pub recipient: String,
    /// Destination country.
    pub country: String,
    /// The agreement that frames it.
    pub dpa_reference: String,
    /// Purposes.
    pub purposes: Vec<String>,
    /// Category keys.
    pub categories: Vec<String>,
}

/// The retention period of a category (R17).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RetentionRecord {
    /// Category key.
    pub category: String,
    /// Retention in days (`None`: no period set).
    pub retention_days: Option<u32>,
    /// The category the period is inherited from, if not its own.
    pub inherited_from: Option<String>,
    /// Attributes of this category.
    pub attributes: Vec<String>,
}

/// Security measures (GDPR Art. 32 as listed under Art. 30(1)(g)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SecurityMeasures {
    /// Pseudonymisation.
    pub pseudonymisation: PseudonymisationRecord,
    /// Encryption of stored data.
    pub encryption: EncryptionRecord,
    /// Access control: the roles and their grants.
    pub access_control: Vec<RoleRecord>,
    /// The tamper-evident audit log.
    pub audit_log: AuditLogRecord,
    /// Counts below this are reported as "fewer than k".
    pub k_threshold: u64,
}

/// How identifiers are pseudonymised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PseudonymisationRecord {
    /// Exports.
    pub exports: String,
    /// Recipients, each under its own keys.
    pub recipients_with_own_keys: Vec<String>,
    /// The audit log.
    pub audit_log: String,
}

/// Encryption at rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EncryptionRecord {
    /// Does privseg encrypt stored values?
    pub in_place: bool,
    /// What applies.
    pub detail: String,
}

/// A role and its grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoleRecord {
    /// Role name.
    pub name: String,
    /// Purposes it may count.
    pub count: Vec<String>,
    /// Purposes whose member ids it may see.
    pub member_ids: Vec<String>,
    /// Purposes it may explain.
    pub explain: Vec<String>,
    /// Recipients it may export to.
    pub export: Vec<String>,
    /// May manage subjects.
    pub subjects: bool,
    /// May read the audit log and reports.
    pub read_audit: bool,
    /// May administer the policy.
    pub administer: bool,
}

/// The state of the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditLogRecord {
    /// How entries are bound together.
    pub mechanism: String,
    /// Number of entries.
    pub entries: u64,
    /// Merkle root of those entries, hex.
    pub root_hash: String,
}

fn category_use(policy: &Policy, allowed: &[String]) -> Vec<CategoryUse> {
    let spec = policy.spec();
    spec.categories
        .iter()
        .filter(|c| allowed.iter().any(|a| covers(a, &c.key)))
        .map(|c| {
            let f = policy.category_flags(&c.key);
            CategoryUse {
                category: c.key.clone(),
                special: f.special,
                ccpa_sensitive: f.ccpa_sensitive,
                protected: f.protected,
                attributes: spec
                    .attributes
                    .iter()
                    .filter(|a| a.category == c.key)
                    .map(|a| a.name.clone())
                    .collect(),
            }
        })
        .collect()
}

fn regime_description(r: Regime) -> &'static str {
    match r {
        Regime::Gdpr => "customers in the EU/EEA (data subjects under the GDPR)",
        Regime::Ccpa => "California residents (consumers under the CCPA/CPRA)",
        Regime::None => "customers under no specific regime",
    }
}

/// Generates the record of processing activities from a policy and an audit
/// log (its size, root hash and the exports it records). Subject counts are
/// left out; [`crate::Engine::ropa`] fills them in.
pub fn ropa<S: AuditSink>(
    policy: &Policy,
    log: &AuditLog<S>,
    generated_at: Timestamp,
) -> Result<Ropa, AuditError> {
    let entries = log.entries()?;
    let exports = export_tallies(&entries);
    let spec = policy.spec();
    Ok(Ropa {
        generated_at,
        policy_version: policy.version().to_string(),
        controller: ControllerRecord {
            name: spec.controller.name.clone(),
            contact: spec.controller.contact.clone(),
        },
        purposes: purpose_records(policy),
        subject_categories: subject_categories(policy),
        recipients: recipient_records(policy, &exports),
        third_country_transfers: transfer_records(policy),
        retention: retention_records(policy),
        security: security_measures(policy, log),
    })
}

/// One record per purpose: its basis, consent terms, data and recipients.
fn purpose_records(policy: &Policy) -> Vec<PurposeRecord> {
    let spec = policy.spec();
    spec.purposes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let cats = category_use(policy, &p.categories);
            PurposeRecord {
                key: p.key.clone(),
                description: p.description.clone(),
                lawful_basis: p.basis,
                consent: (p.basis == LawfulBasis::Consent).then(|| ConsentTerms {
                    accepted_notice_versions: p.accepted_notice_versions.clone(),
                    validity_days: p.consent_validity_days,
                }),
                direct_marketing: policy.is_direct_marketing(crate::policy::PurposeId(i as u32)),
                email_channel: p.email_channel,
                ccpa_sale_share: p.ccpa_sale_share,
                restriction_exempt: p.restriction_exempt,
                max_staleness_days: p.max_staleness_days,
                uses_special_categories: cats.iter().any(|c| c.special),
                uses_ccpa_sensitive: cats.iter().any(|c| c.ccpa_sensitive),
                data_categories: cats,
                recipients: spec
                    .recipients
                    .iter()
                    .filter(|r| r.purposes.iter().any(|rp| covers(rp, &p.key)))
                    .map(|r| r.id.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The categories of data subjects: the jurisdictions grouped by regime,
/// without subject counts.
fn subject_categories(policy: &Policy) -> Vec<SubjectCategory> {
    let mut regimes: BTreeMap<Regime, Vec<JurisdictionRecord>> = BTreeMap::new();
    for j in &policy.spec().jurisdictions {
        regimes
            .entry(j.regime)
            .or_default()
            .push(JurisdictionRecord {
                code: j.code.clone(),
                digital_consent_age: j.digital_consent_age,
                subjects: None,
            });
    }
    regimes
        .into_iter()
        .map(|(regime, jurisdictions)| SubjectCategory {
            regime,
            description: regime_description(regime).into(),
            jurisdictions,
            subjects: None,
        })
        .collect()
}

/// One record per recipient, with the exports the audit log records for it.
fn recipient_records(
    policy: &Policy,
    exports: &BTreeMap<String, (u64, u64)>,
) -> Vec<RecipientRecord> {
    policy
        .spec()
        .recipients
        .iter()
        .map(|r| {
            let (n, rows) = exports.get(&r.id).copied().unwrap_or((0, 0));
            RecipientRecord {
                id: r.id.clone(),
                name: r.name.clone(),
                country: r.country.clone(),
                third_country: r.third_country,
                dpa_reference: r.dpa_reference.clone(),
                ccpa_role: r.ccpa_role,
                purposes: r.purposes.clone(),
                categories: category_use(policy, &r.categories),
                exports: n,
                rows_exported: rows,
            }
        })
        .collect()
}

/// The recipients in third countries and what goes to them.
fn transfer_records(policy: &Policy) -> Vec<TransferRecord> {
    policy
        .spec()
        .recipients
        .iter()
        .filter(|r| r.third_country)
        .map(|r| TransferRecord {
            recipient: r.id.clone(),
            country: r.country.clone(),
            dpa_reference: r.dpa_reference.clone(),
            purposes: r.purposes.clone(),
            categories: r.categories.clone(),
        })
        .collect()
}

/// The retention period of each data category, own or inherited.
fn retention_records(policy: &Policy) -> Vec<RetentionRecord> {
    let spec = policy.spec();
    spec.categories
        .iter()
        .map(|c| {
            let r = retention_of(policy, &c.key);
            RetentionRecord {
                category: c.key.clone(),
                retention_days: r.as_ref().map(|(d, _)| *d),
                inherited_from: r.and_then(|(_, k)| (k != c.key).then_some(k)),
                attributes: spec
                    .attributes
                    .iter()
                    .filter(|a| a.category == c.key)
                    .map(|a| a.name.clone())
                    .collect(),
            }
        })
        .collect()
}

/// The security measures: pseudonymisation, encryption, access control and
/// the audit log's state.
fn security_measures<S: AuditSink>(policy: &Policy, log: &AuditLog<S>) -> SecurityMeasures {
    let spec = policy.spec();
    SecurityMeasures {
        pseudonymisation: PseudonymisationRecord {
            exports: "subject ids are replaced by HMAC-SHA-256 pseudonyms under a key per \
                      recipient, purpose and key version, derived with HKDF-SHA-256 from one \
                      master secret, so that recipients cannot join their lists"
                .into(),
            recipients_with_own_keys: spec.recipients.iter().map(|r| r.id.clone()).collect(),
            audit_log: "subjects appear in the audit log only as HMAC-SHA-256 pseudonyms under \
                        an audit-only key; no attribute value is logged"
                .into(),
        },
        encryption: EncryptionRecord {
            in_place: false,
            detail: "privseg does not encrypt the values it holds; encryption at rest, if \
                     any, is left to the host (storage or disk encryption)"
                .into(),
        },
        access_control: spec.roles.iter().map(role_record).collect(),
        audit_log: AuditLogRecord {
            mechanism: "append-only log; every entry is a leaf of an RFC 6962 SHA-256 Merkle \
                        tree, checked against Ed25519-signed checkpoints"
                .into(),
            entries: log.len(),
            root_hash: crate::audit::hex::encode(&log.root()),
        },
        k_threshold: policy.k_threshold(),
    }
}

/// A role and its grants.
fn role_record(r: &RoleSpec) -> RoleRecord {
    RoleRecord {
        name: r.name.clone(),
        count: r.count.clone(),
        member_ids: r.member_ids.clone(),
        explain: r.explain.clone(),
        export: r.export.clone(),
        subjects: r.subjects,
        read_audit: r.read_audit,
        administer: r.administer,
    }
}

impl Ropa {
    /// Fills in the number of subjects per jurisdiction code (and so per
    /// regime); codes not given count zero.
    pub(crate) fn set_subject_counts(&mut self, counts: &BTreeMap<String, u64>) {
        for sc in &mut self.subject_categories {
            let mut total = 0;
            for j in &mut sc.jurisdictions {
                let n = counts.get(&j.code).copied().unwrap_or(0);
                j.subjects = Some(n);
                total += n;
            }
            sc.subjects = Some(total);
        }
    }

    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a record of processing always serialises")
    }

    /// Markdown, one section per item of Art. 30(1), with tables.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let sections: [fn(&Self, &mut String); 10] = [
            Self::md_heading,
            Self::md_controller,
            Self::md_purposes,
            Self::md_data_categories,
            Self::md_subject_categories,
            Self::md_recipients,
            Self::md_transfers,
            Self::md_retention,
            Self::md_security,
            Self::md_access_control,
        ];
        for section in sections {
            section(self, &mut md);
        }
        md
    }

    fn md_heading(&self, md: &mut String) {
        heading(md, 1, "Record of processing activities");
        let _ = writeln!(
            md,
            "Generated {} under policy `{}`.\n",
            self.generated_at, self.policy_version
        );
    }

    fn md_controller(&self, md: &mut String) {
        heading(md, 2, "Controller");
        table(
            md,
            &["name", "contact"],
            &[vec![
                self.controller.name.clone(),
                self.controller.contact.clone().unwrap_or_default(),
            ]],
        );
    }

    fn md_purposes(&self, md: &mut String) {
        heading(md, 2, "Purposes and lawful bases");
        let rows: Vec<Vec<String>> = self
            .purposes
            .iter()
            .map(|p| {
                vec![
                    p.key.clone(),
                    p.lawful_basis.as_str().into(),
                    p.consent
                        .as_ref()
                        .map(|c| {
                            let mut s = format!("notices {}", list(&c.accepted_notice_versions));
                            if let Some(d) = c.validity_days {
                                let _ = write!(s, "; valid {d} days");
                            }
                            s
                        })
                        .unwrap_or_default(),
                    yes(p.direct_marketing),
                    yes(p.ccpa_sale_share),
                    list(&p.recipients),
                    p.description.clone().unwrap_or_default(),
                ]
            })
            .collect();
        table(
            md,
            &[
                "purpose",
                "lawful basis",
                "consent",
                "direct marketing",
                "CCPA sale/share",
                "recipients",
                "description",
            ],
            &rows,
        );
    }

    fn md_data_categories(&self, md: &mut String) {
        heading(md, 2, "Categories of data per purpose");
        let mut rows = Vec::new();
        for p in &self.purposes {
            for c in &p.data_categories {
                rows.push(vec![
                    p.key.clone(),
                    c.category.clone(),
                    yes(c.special),
                    yes(c.ccpa_sensitive),
                    yes(c.protected),
                    list(&c.attributes),
                ]);
            }
        }
        table(
            md,
            &[
                "purpose",
                "category",
                "special (Art. 9)",
                "CCPA sensitive",
                "protected",
                "attributes",
            ],
            &rows,
        );
    }

    fn md_subject_categories(&self, md: &mut String) {
        heading(md, 2, "Categories of data subjects");
        let rows: Vec<Vec<String>> = self
            .subject_categories
            .iter()
            .map(|s| {
                let codes: Vec<String> = s
                    .jurisdictions
                    .iter()
                    .filter(|j| j.subjects.is_none_or(|n| n > 0))
                    .map(|j| match j.subjects {
                        Some(n) => format!("{} ({n})", j.code),
                        None => j.code.clone(),
                    })
                    .collect();
                vec![
                    format!("{:?}", s.regime).to_lowercase(),
                    s.description.clone(),
                    codes.join(", "),
                    s.subjects.map(|n| n.to_string()).unwrap_or_default(),
                ]
            })
            .collect();
        table(md, &["regime", "subjects", "jurisdictions", "count"], &rows);
    }

    fn md_recipients(&self, md: &mut String) {
        heading(md, 2, "Recipients");
        let rows: Vec<Vec<String>> = self
            .recipients
            .iter()
            .map(|r| {
                vec![
                    r.id.clone(),
                    r.name.clone(),
                    r.country.clone(),
                    yes(r.third_country),
                    r.dpa_reference.clone(),
                    match r.ccpa_role {
                        CcpaRole::ServiceProvider => "service provider".into(),
                        CcpaRole::ThirdParty => "third party".into(),
                    },
                    list(&r.purposes),
                    r.categories
                        .iter()
                        .map(|c| c.category.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                    format!("{} ({} rows)", r.exports, r.rows_exported),
                ]
            })
            .collect();
        table(
            md,
            &[
                "id",
                "name",
                "country",
                "third country",
                "agreement",
                "CCPA role",
                "purposes",
                "categories",
                "exports",
            ],
            &rows,
        );
    }

    fn md_transfers(&self, md: &mut String) {
        heading(md, 2, "Transfers to third countries");
        let rows: Vec<Vec<String>> = self
            .third_country_transfers
            .iter()
            .map(|t| {
                vec![
                    t.recipient.clone(),
                    t.country.clone(),
                    t.dpa_reference.clone(),
                    list(&t.purposes),
                    list(&t.categories),
                ]
            })
            .collect();
        table(
            md,
            &[
                "recipient",
                "country",
                "safeguard",
                "purposes",
                "categories",
            ],
            &rows,
        );
    }

    fn md_retention(&self, md: &mut String) {
        heading(md, 2, "Retention periods");
        let rows: Vec<Vec<String>> = self
            .retention
            .iter()
            .map(|r| {
                vec![
                    r.category.clone(),
                    r.retention_days
                        .map_or_else(|| "not set".into(), |d| format!("{d} days")),
                    r.inherited_from.clone().unwrap_or_default(),
                    list(&r.attributes),
                ]
            })
            .collect();
        table(
            md,
            &["category", "retention", "inherited from", "attributes"],
            &rows,
        );
    }

    fn md_security(&self, md: &mut String) {
        let s = &self.security;
        heading(md, 2, "Security measures");
        table(
            md,
            &["measure", "detail"],
            &[
                vec![
                    "pseudonymisation of exports".into(),
                    format!(
                        "{} (recipients: {})",
                        s.pseudonymisation.exports,
                        list(&s.pseudonymisation.recipients_with_own_keys)
                    ),
                ],
                vec![
                    "pseudonymisation in the audit log".into(),
                    s.pseudonymisation.audit_log.clone(),
                ],
                vec![
                    "encryption at rest".into(),
                    format!(
                        "{}: {}",
                        if s.encryption.in_place { "yes" } else { "no" },
                        s.encryption.detail
                    ),
                ],
                vec![
                    "tamper-evident audit log".into(),
                    format!(
                        "{}; {} entries, root {}",
                        s.audit_log.mechanism, s.audit_log.entries, s.audit_log.root_hash
                    ),
                ],
                vec![
                    "small-count suppression".into(),
                    format!("counts below {} are not released", s.k_threshold),
                ],
            ],
        );
    }

    fn md_access_control(&self, md: &mut String) {
        heading(md, 3, "Access control (roles and grants)");
        let rows: Vec<Vec<String>> = self
            .security
            .access_control
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    list(&r.count),
                    list(&r.member_ids),
                    list(&r.explain),
                    list(&r.export),
                    yes(r.subjects),
                    yes(r.read_audit),
                    yes(r.administer),
                ]
            })
            .collect();
        table(
            md,
            &[
                "role",
                "count",
                "member ids",
                "explain",
                "export",
                "subjects",
                "read audit",
                "administer",
            ],
            &rows,
        );
    }
}

/// A list as comma-separated text.
fn list(v: &[String]) -> String {
    v.join(", ")
}
