//! Typed details of audit entries: one [`EntryKind`] variant per kind of
//! entry the engine writes, each with its fields.
//!
//! An entry still stores its details as a JSON object (so the canonical
//! bytes, and every log written before these types, are unchanged): a kind
//! serialises to exactly the keys and values the engine has always written,
//! and [`EntryKind::of`] reads an entry's details back into its kind, from
//! the entry's operation and the keys that tell its variants apart. Readers
//! (the reports, the privacy budget's audit check) match on the kind, so a
//! renamed field is a compile error rather than a silently empty report.

use std::collections::BTreeMap;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use super::{AuditEntry, AuditError, Operation};

/// A detail that is present only as `true` (the marker of a variant, such
/// as `plan: true`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct True;

impl Serialize for True {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for True {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<True, D::Error> {
        if bool::deserialize(d)? {
            Ok(True)
        } else {
            Err(de::Error::custom("expected true"))
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// The segment run an entry is about: the segment's name and the
/// predicate's reference instant (RFC 3339), `segment` and `at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRun {
    /// The segment's name.
    pub segment: String,
    /// The reference instant of the predicate.
    pub at: String,
}

impl SegmentRun {
    /// The run of `segment` at `at`.
    pub fn new(segment: impl Into<String>, at: impl ToString) -> SegmentRun {
        SegmentRun {
            segment: segment.into(),
            at: at.to_string(),
        }
    }
}

/// The shards a merged release came from: their number and the Merkle
/// root over their audit roots.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sharded {
    /// Number of shards merged.
    pub shards: u64,
    /// Root over the shards' audit roots.
    pub shard_roots: String,
}

/// The evaluator named by an entry that did not use the fast path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Evaluator {
    /// The reference evaluator.
    Reference,
}

/// The report an entry of a generated report names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportName {
    /// The record of processing activities.
    Ropa,
    /// The compliance monitoring report.
    Compliance,
}

/// The outcome of a lookup of an unknown subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// No such subject.
    Unknown,
}

/// No details.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoDetails {}

/// The policy changed since the store was last opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChanged {
    /// The version the store was written under.
    pub from: String,
    /// Number of changes found.
    pub changes: u64,
}

/// A retention purge (R17): values removed, and the subjects they belonged to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPurge {
    /// Values removed.
    pub values: u64,
    /// Subjects concerned.
    pub subjects: u64,
}

/// A bulk import: what it held, and a keyed digest of its contents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Import {
    /// Subjects added.
    pub import_subjects: u64,
    /// Attribute values set.
    pub import_values: u64,
    /// Events recorded.
    pub import_events: u64,
    /// Keyed digest of the batch.
    pub import_mac: String,
}

/// An attribute of a subject set (or cleared).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeRectified {
    /// The attribute.
    pub attribute: String,
    /// Whether the value was removed rather than set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cleared: bool,
}

/// An attribute of a subject read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeRead {
    /// The attribute.
    pub attribute: String,
}

/// A subject's event history read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRead {
    /// Marker.
    pub history: True,
}

/// A subject access report (Art. 15) produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessReport {
    /// Marker.
    pub report: True,
    /// Number of segments the report lists.
    pub segments: u64,
}

/// An event recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecorded {
    /// The event's kind.
    pub kind: String,
    /// When it happened (RFC 3339).
    pub at: String,
}

/// A subject's eligibility for a purpose explained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityExplained {
    /// The instant judged (RFC 3339).
    pub at: String,
}

#[derive(Deserialize)]
struct UnknownSubject {
    outcome: Outcome,
}

/// A segment that passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentValidated {
    /// The segment's name.
    pub segment: String,
}

/// A segment refused. Only the stage, rule and position are recorded: the
/// message quotes the segment's text, whose literals may be personal data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRefused {
    /// `parse` or `validate`.
    pub stage: String,
    /// 1-based line (0 if unknown).
    pub line: u64,
    /// 1-based column (0 if unknown).
    pub column: u64,
    /// The rule broken, for a policy refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A permission refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRefused {
    /// The permission, as text.
    pub permission: String,
}

/// A segment's plan used (members not released).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUsed {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// Marker.
    pub plan: True,
}

/// A segment evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentEvaluated {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// Number of members.
    pub members: u64,
    /// The evaluator, when not the fast path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluator: Option<Evaluator>,
}

/// Given rows checked against a segment by the reference evaluator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowsEvaluated {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// The evaluator.
    pub evaluator: Evaluator,
    /// Number of rows checked.
    pub rows: u64,
}

/// Members' ids released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberIdsReleased {
    /// The segment's name.
    pub segment: String,
    /// The reference instant, for a merged release of shards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Number of ids released.
    pub released_ids: u64,
    /// The shards merged, if any.
    #[serde(flatten)]
    pub sharded: Option<Sharded>,
}

/// A shard's partial result made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPartial {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// `count`, `members` or `export`.
    pub partial: String,
    /// This shard.
    pub shard: u64,
    /// Number of shards.
    pub shards: u64,
    /// Members on this shard.
    pub members: u64,
    /// The recipient, for an export partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// The fields, comma-separated, for an export partial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<String>,
}

/// A k-threshold count released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// The count as released (a number or `<k`).
    pub reported: String,
    /// The shards merged, if any.
    #[serde(flatten)]
    pub sharded: Option<Sharded>,
}

/// A breakdown by a categorical attribute released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// The attribute broken down by.
    pub by: String,
    /// Cells suppressed below the threshold.
    pub suppressed_cells: u64,
}

/// A differentially private count released, and its charge to a budget.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpCounted {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// Epsilon charged, as an exact fraction.
    pub epsilon: String,
    /// The budget's scope (the controller).
    pub dp_scope: String,
    /// The budget (its purpose).
    pub dp_budget: String,
    /// Spent after the charge.
    pub dp_spent: String,
    /// The budget's total.
    pub dp_total: String,
    /// The shards merged, if any.
    #[serde(flatten)]
    pub sharded: Option<Sharded>,
}

/// Members exported to a recipient.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// The run.
    #[serde(flatten)]
    pub run: SegmentRun,
    /// The recipient.
    pub recipient: String,
    /// The fields, comma-separated.
    pub fields: String,
    /// Rows exported.
    pub rows: u64,
    /// The recipient key's version.
    pub key_version: u32,
    /// The shards merged, if any.
    #[serde(flatten)]
    pub sharded: Option<Sharded>,
}

/// The record of processing activities generated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RopaGenerated {
    /// Always [`ReportName::Ropa`].
    pub report: ReportName,
    /// Entries in the log it describes.
    pub audit_size: u64,
    /// The log's Merkle root.
    pub audit_root: String,
}

/// The compliance report generated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceGenerated {
    /// Always [`ReportName::Compliance`].
    pub report: ReportName,
    /// The instant judged (RFC 3339).
    pub at: String,
    /// The look-ahead window in days.
    pub within_days: u32,
}

/// A fairness audit of a segment generated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FairnessAudit {
    /// The segment's name.
    pub fairness_audit: String,
    /// The protected attribute audited.
    pub protected_attribute: String,
    /// Whether any group shows adverse impact.
    pub adverse_impact: bool,
}

/// What an audit entry records, with its details: one variant per kind of
/// entry the engine writes. [`EntryKind::operation`] is the entry's
/// operation; the details serialise to exactly the JSON object stored.
///
/// New variants may be added in later versions, so matches must have a
/// wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum EntryKind {
    /// The policy was loaded.
    PolicyLoaded(NoDetails),
    /// The policy changed since the store was written.
    PolicyChanged(PolicyChanged),
    /// The key-encryption key was rotated.
    KeyRotated(NoDetails),
    /// Values past retention were purged (R17).
    RetentionPurge(RetentionPurge),
    /// A subject was added.
    SubjectAdded(NoDetails),
    /// A batch was imported: logged as [`Operation::SubjectAdded`] if it
    /// added subjects, else as [`Operation::EventRecorded`] (a batch with
    /// no subject holds only events).
    Import(Import),
    /// A subject was erased.
    SubjectErased(NoDetails),
    /// An attribute was set or cleared.
    AttributeRectified(AttributeRectified),
    /// An attribute was read.
    AttributeRead(AttributeRead),
    /// An event history was read.
    HistoryRead(HistoryRead),
    /// A subject access report was produced.
    AccessReport(AccessReport),
    /// An event was recorded.
    EventRecorded(EventRecorded),
    /// A subject's eligibility was explained.
    EligibilityExplained(EligibilityExplained),
    /// A subject's membership of a segment was explained.
    MembershipExplained(SegmentRun),
    /// A subject that does not exist was looked up.
    UnknownSubject {
        /// The operation of the lookup.
        #[serde(skip_serializing)]
        lookup: Operation,
        /// Always [`Outcome::Unknown`].
        outcome: Outcome,
    },
    /// A segment passed validation.
    SegmentValidated(SegmentValidated),
    /// A segment was refused.
    SegmentRefused(SegmentRefused),
    /// A permission was refused.
    AccessRefused(AccessRefused),
    /// The audit log was read.
    AuditRead(NoDetails),
    /// A segment's plan was used.
    PlanUsed(PlanUsed),
    /// A segment was evaluated.
    SegmentEvaluated(SegmentEvaluated),
    /// Given rows were checked by the reference evaluator.
    RowsEvaluated(RowsEvaluated),
    /// Members' ids were released.
    MemberIdsReleased(MemberIdsReleased),
    /// A shard's partial result was made.
    ShardPartial(ShardPartial),
    /// A k-threshold count was released.
    Counted(Counted),
    /// A breakdown was released.
    Breakdown(Breakdown),
    /// A differentially private count was released.
    DpCounted(DpCounted),
    /// Members were exported.
    Exported(Exported),
    /// The record of processing activities was generated.
    RopaGenerated(RopaGenerated),
    /// The compliance report was generated.
    ComplianceGenerated(ComplianceGenerated),
    /// A fairness audit was generated.
    FairnessAudit(FairnessAudit),
}

fn read<T: DeserializeOwned>(
    entry: &AuditEntry,
    wrap: impl FnOnce(T) -> EntryKind,
) -> Result<EntryKind, AuditError> {
    let object = serde_json::Value::Object(
        entry
            .details
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    serde_json::from_value(object).map(wrap).map_err(|e| {
        AuditError::Encoding(format!(
            "details of entry {} ({:?}): {e}",
            entry.seq, entry.operation
        ))
    })
}

impl EntryKind {
    /// The operation an entry of this kind records.
    pub fn operation(&self) -> Operation {
        use EntryKind as K;
        use Operation as O;
        match self {
            K::PolicyLoaded(_) => O::PolicyLoaded,
            K::PolicyChanged(_) => O::PolicyChanged,
            K::KeyRotated(_) => O::KeyRotated,
            K::RetentionPurge(_) => O::RetentionPurge,
            K::SubjectAdded(_) => O::SubjectAdded,
            K::Import(i) if i.import_subjects > 0 => O::SubjectAdded,
            K::Import(_) => O::EventRecorded,
            K::SubjectErased(_) => O::SubjectErased,
            K::AttributeRectified(_) => O::SubjectRectified,
            K::AttributeRead(_) | K::HistoryRead(_) | K::AccessReport(_) => O::SubjectAccessed,
            K::EventRecorded(_) => O::EventRecorded,
            K::EligibilityExplained(_) | K::MembershipExplained(_) => O::SubjectExplained,
            K::UnknownSubject { lookup, .. } => *lookup,
            K::SegmentValidated(_) => O::SegmentValidated,
            K::SegmentRefused(_) => O::SegmentRefused,
            K::AccessRefused(_) => O::AccessRefused,
            K::AuditRead(_) => O::AuditRead,
            K::PlanUsed(_)
            | K::SegmentEvaluated(_)
            | K::RowsEvaluated(_)
            | K::MemberIdsReleased(_)
            | K::ShardPartial(_) => O::SegmentEvaluated,
            K::Counted(_) | K::Breakdown(_) | K::DpCounted(_) => O::Counted,
            K::Exported(_) => O::Exported,
            K::RopaGenerated(_) | K::ComplianceGenerated(_) | K::FairnessAudit(_) => {
                O::ReportGenerated
            }
        }
    }

    /// The details as the JSON object an entry stores.
    pub fn to_details(&self) -> BTreeMap<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m.into_iter().collect(),
            // Every variant is a struct of plain fields.
            _ => unreachable!("entry details serialise to a JSON object"),
        }
    }

    /// Reads an entry's details back into its kind, from its operation and
    /// the keys that tell that operation's kinds apart.
    ///
    /// Entries written before purges and key rotations had operations of
    /// their own (as `subject_rectified` with `retention_purge: true` or
    /// `key_rotation: true`) read as [`EntryKind::RetentionPurge`] and
    /// [`EntryKind::KeyRotated`]. Fails with [`AuditError::Encoding`] when
    /// the details lack a field of their kind (an entry not written by the
    /// engine).
    pub fn of(entry: &AuditEntry) -> Result<EntryKind, AuditError> {
        use EntryKind as K;
        use Operation as O;
        let has = |k: &str| entry.details.contains_key(k);
        if entry.details.get("outcome") == Some(&serde_json::Value::from("unknown")) {
            return read(entry, |d: UnknownSubject| K::UnknownSubject {
                lookup: entry.operation,
                outcome: d.outcome,
            });
        }
        match entry.operation {
            O::PolicyLoaded => read(entry, K::PolicyLoaded),
            O::PolicyChanged => read(entry, K::PolicyChanged),
            O::KeyRotated => read(entry, K::KeyRotated),
            O::RetentionPurge => read(entry, K::RetentionPurge),
            O::SubjectRectified if has("retention_purge") => read(entry, K::RetentionPurge),
            O::SubjectRectified if has("key_rotation") => read(entry, K::KeyRotated),
            O::SubjectRectified => read(entry, K::AttributeRectified),
            O::SubjectAdded | O::EventRecorded if has("import_mac") => read(entry, K::Import),
            O::SubjectAdded => read(entry, K::SubjectAdded),
            O::EventRecorded => read(entry, K::EventRecorded),
            O::SubjectErased => read(entry, K::SubjectErased),
            O::SubjectAccessed if has("history") => read(entry, K::HistoryRead),
            O::SubjectAccessed if has("report") => read(entry, K::AccessReport),
            O::SubjectAccessed => read(entry, K::AttributeRead),
            O::SubjectExplained if has("segment") => read(entry, K::MembershipExplained),
            O::SubjectExplained => read(entry, K::EligibilityExplained),
            O::SegmentValidated => read(entry, K::SegmentValidated),
            O::SegmentRefused => read(entry, K::SegmentRefused),
            O::AccessRefused => read(entry, K::AccessRefused),
            O::AuditRead => read(entry, K::AuditRead),
            O::SegmentEvaluated if has("plan") => read(entry, K::PlanUsed),
            O::SegmentEvaluated if has("partial") => read(entry, K::ShardPartial),
            O::SegmentEvaluated if has("released_ids") => read(entry, K::MemberIdsReleased),
            O::SegmentEvaluated if has("rows") => read(entry, K::RowsEvaluated),
            O::SegmentEvaluated => read(entry, K::SegmentEvaluated),
            O::Counted if has("dp_scope") => read(entry, K::DpCounted),
            O::Counted if has("by") => read(entry, K::Breakdown),
            O::Counted => read(entry, K::Counted),
            O::Exported => read(entry, K::Exported),
            O::ReportGenerated if has("fairness_audit") => read(entry, K::FairnessAudit),
            O::ReportGenerated if has("audit_root") => read(entry, K::RopaGenerated),
            O::ReportGenerated => read(entry, K::ComplianceGenerated),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::PendingEntry;

    fn entry(op: Operation, details: serde_json::Value) -> AuditEntry {
        let mut e = PendingEntry::new(0, "a", op).with_seq(0);
        e.details = match details {
            serde_json::Value::Object(m) => m.into_iter().collect(),
            _ => panic!("details are an object"),
        };
        e
    }

    fn run() -> SegmentRun {
        SegmentRun::new("s", "2026-01-01T00:00:00Z")
    }

    const AT: &str = "2026-01-01T00:00:00Z";

    fn sharded() -> Option<Sharded> {
        Some(Sharded {
            shards: 3,
            shard_roots: "ab".into(),
        })
    }

    /// Each case's details, as the engine wrote them before the kinds were
    /// typed, read back as its kind, and the kind serialises to the same
    /// object under the same operation.
    fn reads_and_writes(cases: Vec<(Operation, serde_json::Value, EntryKind)>) {
        for (op, details, kind) in cases {
            let e = entry(op, details.clone());
            assert_eq!(EntryKind::of(&e).unwrap(), kind, "{op:?} {details}");
            assert_eq!(kind.operation(), op, "{kind:?}");
            let written = PendingEntry::new(0, "a", Operation::AuditRead)
                .with_kind(kind.clone())
                .with_seq(0);
            assert_eq!(written, e, "{kind:?}");
        }
    }

    /// The kinds for policy, key and retention, with the exact details logs already hold.
    #[test]
    fn policy_and_key_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (O::PolicyLoaded, json!({}), K::PolicyLoaded(NoDetails {})),
            (
                O::PolicyChanged,
                json!({"from": "v1", "changes": 2}),
                K::PolicyChanged(PolicyChanged {
                    from: "v1".into(),
                    changes: 2,
                }),
            ),
            (O::KeyRotated, json!({}), K::KeyRotated(NoDetails {})),
            (
                O::RetentionPurge,
                json!({"values": 4, "subjects": 2}),
                K::RetentionPurge(RetentionPurge {
                    values: 4,
                    subjects: 2,
                }),
            ),
        ]);
    }

    /// The kinds for subjects added, imported, erased or rectified, and unknown subjects, with the exact details logs already hold.
    #[test]
    fn subject_change_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (O::SubjectAdded, json!({}), K::SubjectAdded(NoDetails {})),
            (
                O::SubjectAdded,
                json!({"import_subjects": 1, "import_values": 2, "import_events": 3, "import_mac": "m"}),
                K::Import(Import {
                    import_subjects: 1,
                    import_values: 2,
                    import_events: 3,
                    import_mac: "m".into(),
                }),
            ),
            (
                O::EventRecorded,
                json!({"import_subjects": 0, "import_values": 0, "import_events": 3, "import_mac": "m"}),
                K::Import(Import {
                    import_subjects: 0,
                    import_values: 0,
                    import_events: 3,
                    import_mac: "m".into(),
                }),
            ),
            (O::SubjectErased, json!({}), K::SubjectErased(NoDetails {})),
            (
                O::SubjectRectified,
                json!({"attribute": "x"}),
                K::AttributeRectified(AttributeRectified {
                    attribute: "x".into(),
                    cleared: false,
                }),
            ),
            (
                O::SubjectRectified,
                json!({"attribute": "x", "cleared": true}),
                K::AttributeRectified(AttributeRectified {
                    attribute: "x".into(),
                    cleared: true,
                }),
            ),
            (
                O::SubjectErased,
                json!({"outcome": "unknown"}),
                K::UnknownSubject {
                    lookup: O::SubjectErased,
                    outcome: Outcome::Unknown,
                },
            ),
        ]);
    }

    /// The kinds for subjects' data read, events recorded and explanations, with the exact details logs already hold.
    #[test]
    fn subject_access_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (
                O::SubjectAccessed,
                json!({"attribute": "x"}),
                K::AttributeRead(AttributeRead {
                    attribute: "x".into(),
                }),
            ),
            (
                O::SubjectAccessed,
                json!({"history": true}),
                K::HistoryRead(HistoryRead { history: True }),
            ),
            (
                O::SubjectAccessed,
                json!({"report": true, "segments": 2}),
                K::AccessReport(AccessReport {
                    report: True,
                    segments: 2,
                }),
            ),
            (
                O::EventRecorded,
                json!({"kind": "consent_given", "at": AT}),
                K::EventRecorded(EventRecorded {
                    kind: "consent_given".into(),
                    at: AT.into(),
                }),
            ),
            (
                O::SubjectExplained,
                json!({"at": AT}),
                K::EligibilityExplained(EligibilityExplained { at: AT.into() }),
            ),
            (
                O::SubjectExplained,
                json!({"segment": "s", "at": AT}),
                K::MembershipExplained(run()),
            ),
        ]);
    }

    /// The kinds for segment checks, refused access and audit reads, with the exact details logs already hold.
    #[test]
    fn segment_check_and_access_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (
                O::SegmentValidated,
                json!({"segment": "s"}),
                K::SegmentValidated(SegmentValidated {
                    segment: "s".into(),
                }),
            ),
            (
                O::SegmentRefused,
                json!({"stage": "validate", "line": 1, "column": 5, "rule": "R8"}),
                K::SegmentRefused(SegmentRefused {
                    stage: "validate".into(),
                    line: 1,
                    column: 5,
                    rule: Some("R8".into()),
                }),
            ),
            (
                O::SegmentRefused,
                json!({"stage": "parse", "line": 1, "column": 9}),
                K::SegmentRefused(SegmentRefused {
                    stage: "parse".into(),
                    line: 1,
                    column: 9,
                    rule: None,
                }),
            ),
            (
                O::AccessRefused,
                json!({"permission": "count for purpose p"}),
                K::AccessRefused(AccessRefused {
                    permission: "count for purpose p".into(),
                }),
            ),
            (O::AuditRead, json!({}), K::AuditRead(NoDetails {})),
        ]);
    }

    /// The kinds for segment evaluations and shard partials, with the exact details logs already hold.
    #[test]
    fn evaluation_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "at": AT, "plan": true}),
                K::PlanUsed(PlanUsed {
                    run: run(),
                    plan: True,
                }),
            ),
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "at": AT, "members": 7}),
                K::SegmentEvaluated(SegmentEvaluated {
                    run: run(),
                    members: 7,
                    evaluator: None,
                }),
            ),
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "at": AT, "members": 7, "evaluator": "reference"}),
                K::SegmentEvaluated(SegmentEvaluated {
                    run: run(),
                    members: 7,
                    evaluator: Some(Evaluator::Reference),
                }),
            ),
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "at": AT, "evaluator": "reference", "rows": 2}),
                K::RowsEvaluated(RowsEvaluated {
                    run: run(),
                    evaluator: Evaluator::Reference,
                    rows: 2,
                }),
            ),
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "at": AT, "partial": "export", "shard": 1, "shards": 3,
                       "members": 4, "recipient": "r", "fields": "a,b"}),
                K::ShardPartial(ShardPartial {
                    run: run(),
                    partial: "export".into(),
                    shard: 1,
                    shards: 3,
                    members: 4,
                    recipient: Some("r".into()),
                    fields: Some("a,b".into()),
                }),
            ),
        ]);
    }

    /// The kinds for member ids released, with the exact details logs already hold.
    #[test]
    fn member_id_release_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "released_ids": 2}),
                K::MemberIdsReleased(MemberIdsReleased {
                    segment: "s".into(),
                    at: None,
                    released_ids: 2,
                    sharded: None,
                }),
            ),
            (
                O::SegmentEvaluated,
                json!({"segment": "s", "at": AT, "released_ids": 2, "shards": 3, "shard_roots": "ab"}),
                K::MemberIdsReleased(MemberIdsReleased {
                    segment: "s".into(),
                    at: Some(AT.into()),
                    released_ids: 2,
                    sharded: sharded(),
                }),
            ),
        ]);
    }

    /// The kinds for counts, breakdowns and noisy counts, with the exact details logs already hold.
    #[test]
    fn count_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (
                O::Counted,
                json!({"segment": "s", "at": AT, "reported": "<10"}),
                K::Counted(Counted {
                    run: run(),
                    reported: "<10".into(),
                    sharded: None,
                }),
            ),
            (
                O::Counted,
                json!({"segment": "s", "at": AT, "reported": "12", "shards": 3, "shard_roots": "ab"}),
                K::Counted(Counted {
                    run: run(),
                    reported: "12".into(),
                    sharded: sharded(),
                }),
            ),
            (
                O::Counted,
                json!({"segment": "s", "at": AT, "by": "country", "suppressed_cells": 1}),
                K::Breakdown(Breakdown {
                    run: run(),
                    by: "country".into(),
                    suppressed_cells: 1,
                }),
            ),
            (
                O::Counted,
                json!({"segment": "s", "at": AT, "epsilon": "1/4", "dp_scope": "c",
                       "dp_budget": "p", "dp_spent": "1/2", "dp_total": "1"}),
                K::DpCounted(DpCounted {
                    run: run(),
                    epsilon: "1/4".into(),
                    dp_scope: "c".into(),
                    dp_budget: "p".into(),
                    dp_spent: "1/2".into(),
                    dp_total: "1".into(),
                    sharded: None,
                }),
            ),
        ]);
    }

    /// The kinds for exports and reports, with the exact details logs already hold.
    #[test]
    fn export_and_report_kinds_read_and_write_the_details_logs_already_hold() {
        use EntryKind as K;
        use Operation as O;
        use serde_json::json;
        reads_and_writes(vec![
            (
                O::Exported,
                json!({"segment": "s", "at": AT, "recipient": "r", "fields": "a", "rows": 2,
                       "key_version": 1, "shards": 3, "shard_roots": "ab"}),
                K::Exported(Exported {
                    run: run(),
                    recipient: "r".into(),
                    fields: "a".into(),
                    rows: 2,
                    key_version: 1,
                    sharded: sharded(),
                }),
            ),
            (
                O::ReportGenerated,
                json!({"report": "ropa", "audit_size": 9, "audit_root": "cd"}),
                K::RopaGenerated(RopaGenerated {
                    report: ReportName::Ropa,
                    audit_size: 9,
                    audit_root: "cd".into(),
                }),
            ),
            (
                O::ReportGenerated,
                json!({"report": "compliance", "at": AT, "within_days": 30}),
                K::ComplianceGenerated(ComplianceGenerated {
                    report: ReportName::Compliance,
                    at: AT.into(),
                    within_days: 30,
                }),
            ),
            (
                O::ReportGenerated,
                json!({"fairness_audit": "s", "protected_attribute": "e", "adverse_impact": false}),
                K::FairnessAudit(FairnessAudit {
                    fairness_audit: "s".into(),
                    protected_attribute: "e".into(),
                    adverse_impact: false,
                }),
            ),
        ]);
    }

    #[test]
    fn purges_and_key_rotations_logged_as_rectifications_read_as_their_own_kinds() {
        let purge = entry(
            Operation::SubjectRectified,
            serde_json::json!({"retention_purge": true, "values": 4, "subjects": 2}),
        );
        assert_eq!(
            EntryKind::of(&purge).unwrap(),
            EntryKind::RetentionPurge(RetentionPurge {
                values: 4,
                subjects: 2
            })
        );
        let rotation = entry(
            Operation::SubjectRectified,
            serde_json::json!({"key_rotation": true}),
        );
        assert_eq!(
            EntryKind::of(&rotation).unwrap(),
            EntryKind::KeyRotated(NoDetails {})
        );
    }

    #[test]
    fn an_import_of_events_only_is_not_an_addition_of_subjects() {
        let import = |subjects| {
            EntryKind::Import(Import {
                import_subjects: subjects,
                import_values: 0,
                import_events: 5,
                import_mac: "m".into(),
            })
        };
        assert_eq!(import(0).operation(), Operation::EventRecorded);
        assert_eq!(import(1).operation(), Operation::SubjectAdded);
    }

    #[test]
    fn details_missing_a_field_of_their_kind_are_an_error() {
        let e = entry(Operation::Exported, serde_json::json!({"recipient": "r"}));
        assert!(matches!(EntryKind::of(&e), Err(AuditError::Encoding(_))));
        let e = entry(
            Operation::SubjectAccessed,
            serde_json::json!({"history": false}),
        );
        assert!(EntryKind::of(&e).is_err());
    }
}
