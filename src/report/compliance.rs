//! The compliance monitoring report: what needs attention now.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::{export_tallies, heading, retention_of, table};
use crate::audit::{AuditEntry, EntryKind, Operation};
use crate::consent::{DataUse, Denial, Eligibility, Grounds, SubjectFacts, eligibility};
use crate::policy::{AttrId, LawfulBasis, Policy, PurposeId};
use crate::privacy::dp::{BudgetLedger, Rational};
use crate::store::{MISSING, Store};
use crate::timestamp::DAY;
use crate::timestamp::Timestamp;

/// The compliance monitoring report. Counts only: it names no subject.
///
/// The consent, retention and staleness sections describe the engine's data
/// as of [`ComplianceReport::at`]; the refusal, export and budget sections
/// cover the whole audit log and the given ledger as they stood when the
/// report was generated.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComplianceReport {
    /// The instant the data is judged at.
    pub at: Timestamp,
    /// The look-ahead window for expiring consents, in days.
    pub within_days: u32,
    /// The policy version.
    pub policy_version: String,
    /// Subjects held (erased ones excluded).
    pub subjects: u64,
    /// Audit entries read.
    pub audit_entries: u64,
    /// Consent state per purpose that rests on consent or an email permission.
    pub consents: Vec<PurposeConsents>,
    /// Data past its retention period, per category (R17).
    pub retention: Vec<CategoryRetention>,
    /// Stale values, per attribute with a staleness limit (R16).
    pub staleness: Vec<AttributeStaleness>,
    /// Retention purges recorded in the audit log (R17), oldest first.
    pub purges: Vec<PurgeRecord>,
    /// Refused segment definitions, by actor and rule.
    pub refused_segments: Vec<SegmentRefusals>,
    /// Refused calls, by actor and permission.
    pub access_refusals: Vec<AccessRefusals>,
    /// Exports, by recipient.
    pub exports: Vec<ExportTally>,
    /// Privacy budget use per actor and dataset, when a ledger was given.
    pub dp_budgets: Option<Vec<BudgetUse>>,
}

/// Consent state for one purpose at the report's instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurposeConsents {
    /// Purpose key.
    pub purpose: String,
    /// Its lawful basis.
    pub lawful_basis: LawfulBasis,
    /// Subjects eligible for it, on any grounds.
    pub eligible: u64,
    /// Subjects eligible through a valid consent (their own or a parent's).
    pub valid_consents: u64,
    /// Of those, subjects whose consent expires within the window, that is
    /// in `(at, at + within_days]`, unless renewed.
    pub expiring: u64,
    /// Subjects whose consent was given to a notice version the policy no
    /// longer accepts: they must be asked again.
    pub reconsent_needed: u64,
    /// The same, per notice version consented to.
    pub reconsent_by_notice: BTreeMap<String, u64>,
}

/// Values of one category held past its retention period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CategoryRetention {
    /// Category key.
    pub category: String,
    /// Its retention period in days (`None`: none set).
    pub retention_days: Option<u32>,
    /// Values held in the category.
    pub values: u64,
    /// Values last verified longer ago than the retention period.
    pub past_retention: u64,
    /// Subjects holding at least one such value.
    pub subjects_affected: u64,
}

/// Stale values of one attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AttributeStaleness {
    /// Attribute name.
    pub attribute: String,
    /// Its category.
    pub category: String,
    /// The attribute's staleness limit in days.
    pub max_staleness_days: u32,
    /// Values held.
    pub values: u64,
    /// Values last verified longer ago than the limit: they match nothing.
    pub stale: u64,
}

/// One retention purge recorded in the audit log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurgeRecord {
    /// When it ran.
    pub at: Timestamp,
    /// Who ran it.
    pub actor: String,
    /// Values removed.
    pub values: u64,
    /// Subjects whose values were removed.
    pub subjects: u64,
}

/// Refused segment definitions of one actor under one rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SegmentRefusals {
    /// The actor.
    pub actor: String,
    /// The rule that refused (`None` for syntax errors and other refusals
    /// that name no rule).
    pub rule: Option<String>,
    /// How many.
    pub count: u64,
}

/// Refused calls of one actor for one permission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AccessRefusals {
    /// The actor.
    pub actor: String,
    /// The permission lacked.
    pub permission: String,
    /// How many.
    pub count: u64,
}

/// Exports to one recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportTally {
    /// Recipient id.
    pub recipient: String,
    /// Number of exports.
    pub exports: u64,
    /// Rows sent in total.
    pub rows: u64,
}

/// Privacy budget of one actor on one dataset.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BudgetUse {
    /// The actor.
    pub actor: String,
    /// The dataset.
    pub dataset: String,
    /// Total epsilon allowed.
    pub total: Rational,
    /// Epsilon spent.
    pub spent: Rational,
    /// Epsilon left.
    pub remaining: Rational,
    /// Spent as a share of the total (0 to 1; 0 for a zero budget).
    pub spent_share: f64,
}

/// Does a purpose rest on a consent-like record?
fn consent_purpose(policy: &Policy, p: PurposeId) -> bool {
    let spec = policy.purpose(p);
    spec.basis == LawfulBasis::Consent || spec.email_channel
}

fn consents(
    policy: &Policy,
    store: &Store,
    at: Timestamp,
    within_days: u32,
) -> Vec<PurposeConsents> {
    let horizon = at.add_secs(i64::from(within_days) * DAY);
    let now = at.unix();
    policy
        .purpose_ids()
        .filter(|&p| consent_purpose(policy, p))
        .map(|p| {
            let spec = policy.purpose(p);
            let mut out = PurposeConsents {
                purpose: spec.key.clone(),
                lawful_basis: spec.basis,
                eligible: 0,
                valid_consents: 0,
                expiring: 0,
                reconsent_needed: 0,
                reconsent_by_notice: BTreeMap::new(),
            };
            for row in 0..store.len() as u32 {
                if store.is_erased(row) {
                    continue;
                }
                let facts = store.facts(row);
                match eligibility(policy, &facts, p, at, DataUse::default()) {
                    Eligibility::Allowed(g) => {
                        out.eligible += 1;
                        if !matches!(g, Grounds::Consent | Grounds::ParentalConsent) {
                            continue;
                        }
                        out.valid_consents += 1;
                        // With only the events already in effect, the answer
                        // can change before the horizon only by an expiry (or
                        // by ages rising, which only lifts denials). So the
                        // consent in force now lapses within the window iff
                        // the answer at the horizon is an expiry after `at`.
                        let cut = facts.events.partition_point(|e| e.at <= now);
                        let current = SubjectFacts {
                            events: &facts.events[..cut],
                            ..facts
                        };
                        if let Eligibility::Denied(Denial::ConsentExpired { expired_at }) =
                            eligibility(policy, &current, p, horizon, DataUse::default())
                            && expired_at > at
                        {
                            out.expiring += 1;
                        }
                    }
                    Eligibility::Denied(Denial::NoticeNotAccepted { version }) => {
                        out.reconsent_needed += 1;
                        *out.reconsent_by_notice.entry(version).or_default() += 1;
                    }
                    Eligibility::Denied(_) => {}
                }
            }
            out
        })
        .collect()
}

fn retention(policy: &Policy, store: &Store, at: Timestamp) -> Vec<CategoryRetention> {
    let spec = policy.spec();
    let mut affected = vec![false; store.len()];
    spec.categories
        .iter()
        .map(|c| {
            let days = retention_of(policy, &c.key).map(|(d, _)| d);
            let since = days.map(|d| at.unix().saturating_sub(i64::from(d) * DAY));
            let mut out = CategoryRetention {
                category: c.key.clone(),
                retention_days: days,
                values: 0,
                past_retention: 0,
                subjects_affected: 0,
            };
            affected.fill(false);
            for (i, a) in spec.attributes.iter().enumerate() {
                if a.category != c.key {
                    continue;
                }
                for (row, &v) in store.column(AttrId(i as u32)).verified().iter().enumerate() {
                    if v == MISSING || store.is_erased(row as u32) {
                        continue;
                    }
                    out.values += 1;
                    if since.is_some_and(|s| v < s) {
                        out.past_retention += 1;
                        affected[row] = true;
                    }
                }
            }
            out.subjects_affected = affected.iter().filter(|&&b| b).count() as u64;
            out
        })
        .collect()
}

fn staleness(policy: &Policy, store: &Store, at: Timestamp) -> Vec<AttributeStaleness> {
    policy
        .spec()
        .attributes
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let days = a.max_staleness_days?;
            let since = at.unix().saturating_sub(i64::from(days) * DAY);
            let mut out = AttributeStaleness {
                attribute: a.name.clone(),
                category: a.category.clone(),
                max_staleness_days: days,
                values: 0,
                stale: 0,
            };
            for (row, &v) in store.column(AttrId(i as u32)).verified().iter().enumerate() {
                if v == MISSING || store.is_erased(row as u32) {
                    continue;
                }
                out.values += 1;
                if v < since {
                    out.stale += 1;
                }
            }
            Some(out)
        })
        .collect()
}

fn budgets(ledger: &BudgetLedger) -> Vec<BudgetUse> {
    // The ledger lists its accounts only through its JSON form.
    let names: Vec<(String, String)> = ledger
        .to_json()
        .ok()
        .and_then(|j| serde_json::from_str::<serde_json::Value>(&j).ok())
        .and_then(|v| v.get("accounts").cloned())
        .and_then(|a| a.as_object().cloned())
        .map(|actors| {
            actors
                .iter()
                .flat_map(|(actor, ds)| {
                    ds.as_object()
                        .into_iter()
                        .flat_map(|m| m.keys())
                        .map(move |d| (actor.clone(), d.clone()))
                })
                .collect()
        })
        .unwrap_or_default();
    names
        .into_iter()
        .filter_map(|(actor, dataset)| {
            let acc = ledger.account(&actor, &dataset)?;
            let total = acc.total().to_f64();
            Some(BudgetUse {
                spent_share: if total > 0.0 {
                    acc.spent().to_f64() / total
                } else {
                    0.0
                },
                total: acc.total(),
                spent: acc.spent(),
                remaining: acc.remaining(),
                actor,
                dataset,
            })
        })
        .collect()
}

/// Builds the report from a policy, the subject store and the audit entries.
pub(crate) fn compliance_report(
    policy: &Policy,
    store: &Store,
    entries: &[AuditEntry],
    at: Timestamp,
    within_days: u32,
    ledger: Option<&BudgetLedger>,
) -> ComplianceReport {
    let mut refused: BTreeMap<(String, Option<String>), u64> = BTreeMap::new();
    let mut access: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut purges = Vec::new();
    for e in entries {
        // An entry whose details do not read as its kind (one not written
        // by the engine) still counts as a refusal, naming no rule or
        // permission.
        let kind = EntryKind::of(e).ok();
        match (e.operation, kind) {
            (_, Some(EntryKind::RetentionPurge(p))) => purges.push(PurgeRecord {
                at: Timestamp::from_unix(e.time),
                actor: e.actor.clone(),
                values: p.values,
                subjects: p.subjects,
            }),
            (Operation::SegmentRefused, kind) => {
                let rule = match kind {
                    Some(EntryKind::SegmentRefused(r)) => r.rule,
                    _ => None,
                };
                *refused.entry((e.actor.clone(), rule)).or_default() += 1;
            }
            (Operation::AccessRefused, kind) => {
                let perm = match kind {
                    Some(EntryKind::AccessRefused(a)) => a.permission,
                    _ => "(unnamed)".into(),
                };
                *access.entry((e.actor.clone(), perm)).or_default() += 1;
            }
            _ => {}
        }
    }
    ComplianceReport {
        at,
        within_days,
        policy_version: policy.version().to_string(),
        subjects: store.live_count() as u64,
        audit_entries: entries.len() as u64,
        consents: consents(policy, store, at, within_days),
        retention: retention(policy, store, at),
        staleness: staleness(policy, store, at),
        purges,
        refused_segments: refused
            .into_iter()
            .map(|((actor, rule), count)| SegmentRefusals { actor, rule, count })
            .collect(),
        access_refusals: access
            .into_iter()
            .map(|((actor, permission), count)| AccessRefusals {
                actor,
                permission,
                count,
            })
            .collect(),
        exports: export_tallies(entries)
            .into_iter()
            .map(|(recipient, (exports, rows))| ExportTally {
                recipient,
                exports,
                rows,
            })
            .collect(),
        dp_budgets: ledger.map(budgets),
    }
}

impl ComplianceReport {
    /// Pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a compliance report always serialises")
    }

    /// Markdown with one table per section.
    pub fn to_markdown(&self) -> String {
        let mut md = String::new();
        let sections: [fn(&Self, &mut String); 9] = [
            Self::md_heading,
            Self::md_consents,
            Self::md_retention,
            Self::md_staleness,
            Self::md_purges,
            Self::md_refused_segments,
            Self::md_access_refusals,
            Self::md_exports,
            Self::md_budgets,
        ];
        for section in sections {
            section(self, &mut md);
        }
        md
    }

    fn md_heading(&self, md: &mut String) {
        heading(md, 1, "Compliance report");
        let _ = writeln!(
            md,
            "Data as of {}, policy `{}`: {} subjects; {} audit entries read.\n",
            self.at, self.policy_version, self.subjects, self.audit_entries
        );
    }

    fn md_consents(&self, md: &mut String) {
        heading(
            md,
            2,
            &format!(
                "Consents (R3): expiring within {} days, re-consent needed",
                self.within_days
            ),
        );
        let rows: Vec<Vec<String>> = self
            .consents
            .iter()
            .map(|c| {
                vec![
                    c.purpose.clone(),
                    c.lawful_basis.as_str().into(),
                    c.eligible.to_string(),
                    c.valid_consents.to_string(),
                    c.expiring.to_string(),
                    c.reconsent_needed.to_string(),
                    c.reconsent_by_notice
                        .iter()
                        .map(|(v, n)| format!("{v}: {n}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        table(
            md,
            &[
                "purpose",
                "basis",
                "eligible",
                "valid consents",
                "expiring",
                "re-consent needed",
                "by notice version",
            ],
            &rows,
        );
    }

    fn md_retention(&self, md: &mut String) {
        heading(md, 2, "Data past retention (R17)");
        let rows: Vec<Vec<String>> = self
            .retention
            .iter()
            .map(|r| {
                vec![
                    r.category.clone(),
                    r.retention_days
                        .map_or_else(|| "not set".into(), |d| format!("{d} days")),
                    r.values.to_string(),
                    r.past_retention.to_string(),
                    r.subjects_affected.to_string(),
                ]
            })
            .collect();
        table(
            md,
            &[
                "category",
                "retention",
                "values",
                "past retention",
                "subjects affected",
            ],
            &rows,
        );
    }

    fn md_staleness(&self, md: &mut String) {
        heading(md, 2, "Stale values (R16)");
        let rows: Vec<Vec<String>> = self
            .staleness
            .iter()
            .map(|s| {
                vec![
                    s.attribute.clone(),
                    s.category.clone(),
                    format!("{} days", s.max_staleness_days),
                    s.values.to_string(),
                    s.stale.to_string(),
                ]
            })
            .collect();
        table(
            md,
            &["attribute", "category", "max staleness", "values", "stale"],
            &rows,
        );
    }

    fn md_purges(&self, md: &mut String) {
        heading(md, 2, "Retention purges (R17)");
        let rows: Vec<Vec<String>> = self
            .purges
            .iter()
            .map(|p| {
                vec![
                    p.at.to_string(),
                    p.actor.clone(),
                    p.values.to_string(),
                    p.subjects.to_string(),
                ]
            })
            .collect();
        table(md, &["at", "actor", "values", "subjects"], &rows);
    }

    fn md_refused_segments(&self, md: &mut String) {
        heading(md, 2, "Refused segments");
        let rows: Vec<Vec<String>> = self
            .refused_segments
            .iter()
            .map(|r| {
                vec![
                    r.actor.clone(),
                    r.rule.clone().unwrap_or_default(),
                    r.count.to_string(),
                ]
            })
            .collect();
        table(md, &["actor", "rule", "refusals"], &rows);
    }

    fn md_access_refusals(&self, md: &mut String) {
        heading(md, 2, "Access refusals");
        let rows: Vec<Vec<String>> = self
            .access_refusals
            .iter()
            .map(|r| vec![r.actor.clone(), r.permission.clone(), r.count.to_string()])
            .collect();
        table(md, &["actor", "permission", "refusals"], &rows);
    }

    fn md_exports(&self, md: &mut String) {
        heading(md, 2, "Exports by recipient");
        let rows: Vec<Vec<String>> = self
            .exports
            .iter()
            .map(|e| {
                vec![
                    e.recipient.clone(),
                    e.exports.to_string(),
                    e.rows.to_string(),
                ]
            })
            .collect();
        table(md, &["recipient", "exports", "rows"], &rows);
    }

    fn md_budgets(&self, md: &mut String) {
        heading(md, 2, "Privacy budget use");
        let Some(b) = &self.dp_budgets else {
            md.push_str("No budget ledger was given.\n\n");
            return;
        };
        let rows: Vec<Vec<String>> = b
            .iter()
            .map(|u| {
                vec![
                    u.actor.clone(),
                    u.dataset.clone(),
                    u.total.to_string(),
                    u.spent.to_string(),
                    u.remaining.to_string(),
                    format!("{:.0}%", u.spent_share * 100.0),
                ]
            })
            .collect();
        table(
            md,
            &[
                "actor",
                "dataset",
                "epsilon total",
                "spent",
                "remaining",
                "used",
            ],
            &rows,
        );
    }
}
