//! Data subject rights: the subject access report (GDPR Art. 15, and the
//! portable copy of Art. 20; CCPA 1798.100 and 1798.110). Rectification,
//! restriction, objection and erasure are engine calls of their own
//! (`set_attribute`, `record` with a restriction or objection, `erase`).

use serde::Serialize;

use crate::access::{Actor, Permission};
use crate::audit::Operation;
use crate::audit::details::{self as entry_kind, EntryKind};
use crate::consent::{ConsentEvent, DataUse, Eligibility, eligibility};
use crate::engine::{Engine, EngineError, Explanation};
use crate::policy::AttrId;
use crate::segment::CheckedSegment;
use crate::store::{Store, Value};
use crate::timestamp::Timestamp;
use crate::timestamp::format_date;

/// One stored value of the subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReportedValue {
    /// Attribute name.
    pub attribute: String,
    /// Its data category.
    pub category: String,
    /// The value.
    pub value: Value,
    /// When it was last verified.
    pub verified_at: Timestamp,
}

/// Eligibility for one purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PurposeStatus {
    /// Purpose key.
    pub purpose: String,
    /// Its lawful basis.
    pub basis: &'static str,
    /// Allowed or denied, and why.
    pub eligibility: Eligibility,
}

/// Everything the engine holds about a subject, and what it does with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SubjectReport {
    /// The subject's id.
    pub subject: String,
    /// When the report was made.
    pub at: Timestamp,
    /// The controller.
    pub controller: String,
    /// Version of the policy in force.
    pub policy_version: String,
    /// Jurisdiction code of the policy entry that applies.
    pub jurisdiction: String,
    /// Birth date, if held.
    pub birth_date: Option<String>,
    /// Every value held.
    pub data: Vec<ReportedValue>,
    /// The full history of consents, objections, opt-outs and other events.
    pub history: Vec<ConsentEvent>,
    /// Eligibility for each purpose of the policy.
    pub purposes: Vec<PurposeStatus>,
    /// Membership in the segments asked about, and why.
    pub segments: Vec<Explanation>,
}

impl Engine {
    /// The subject access report: data, history, eligibility per purpose,
    /// and membership in `segments` with the reasons, at `at`. Needs the
    /// `subjects` permission; recorded.
    pub fn subject_report(
        &self,
        actor: &Actor,
        id: &str,
        segments: &[CheckedSegment],
        at: Timestamp,
    ) -> Result<SubjectReport, EngineError> {
        self.allow(actor, Permission::Subjects, None)?;
        let policy = self.policy().clone();
        let store = self.store();
        let row = self.row(actor, Operation::SubjectAccessed, id)?;
        let facts = store.facts(row);
        // Eligibility as of the host clock; `at` only anchors the segments'
        // relative times.
        let now = self.now();
        let data = (0..policy.attribute_count() as u32)
            .filter_map(|a| {
                let a = AttrId(a);
                store.get(row, a).map(|(code, verified)| ReportedValue {
                    attribute: policy.attribute(a).name.clone(),
                    category: policy.attribute(a).category.clone(),
                    value: Store::decode(&policy, a, code),
                    verified_at: Timestamp::from_unix(verified),
                })
            })
            .collect();
        let purposes = policy
            .purpose_ids()
            .map(|p| PurposeStatus {
                purpose: policy.purpose(p).key.clone(),
                basis: policy.purpose(p).basis.as_str(),
                eligibility: eligibility(&policy, &facts, p, now, DataUse::default()),
            })
            .collect();
        let history = store
            .history(row)
            .iter()
            .map(|r| {
                crate::consent::event_of_record(&policy, id, r, store.proof(r), store.strings())
            })
            .collect();
        let mut explained = Vec::with_capacity(segments.len());
        for seg in segments {
            explained.push(self.explain_unlogged(seg, id, at)?);
        }
        self.log(
            self.entry(actor.id(), Operation::SubjectAccessed)
                .pseudonymous_subject(self.audit_pseudonym(id))
                .with_kind(EntryKind::AccessReport(entry_kind::AccessReport {
                    report: entry_kind::True,
                    segments: segments.len() as u64,
                })),
        )?;
        Ok(SubjectReport {
            subject: id.into(),
            at: now,
            controller: policy.spec().controller.name.clone(),
            policy_version: policy.version().to_string(),
            jurisdiction: policy.jurisdiction(facts.jurisdiction).code.clone(),
            birth_date: facts.birth_date.map(format_date),
            data,
            history,
            purposes,
            segments: explained,
        })
    }
}
