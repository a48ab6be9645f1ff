//! The gated, audited entry points of the reports on [`Engine`].

use std::collections::BTreeMap;

use crate::access::Actor;
use crate::audit::Operation;
use crate::audit::details::{self as entry_kind, EntryKind};
use crate::engine::{Engine, EngineError};
use crate::privacy::dp::BudgetLedger;

use super::{ComplianceReport, Ropa};

impl Engine {
    /// Subjects held per jurisdiction code (erased ones excluded).
    pub(crate) fn subjects_by_jurisdiction(&self) -> BTreeMap<String, u64> {
        let store = self.store();
        let mut out = BTreeMap::new();
        for row in 0..store.len() as u32 {
            let j = store.jurisdiction(row);
            if !store.is_erased(row) {
                *out.entry(self.policy().jurisdiction(j).code.clone())
                    .or_default() += 1;
            }
        }
        out
    }

    /// The record of processing activities (GDPR Art. 30, R18), from the
    /// policy, the subjects held and the audit log. Needs `read_audit`; the
    /// read of the log and the report are both recorded, and the report's
    /// audit size and root hash cover the log up to and including the read.
    pub fn ropa(&self, actor: &Actor) -> Result<Ropa, EngineError> {
        let counts = self.subjects_by_jurisdiction();
        self.with_audit_log(actor, |log| {
            let mut ropa = super::ropa(self.policy(), log, self.now())?;
            ropa.set_subject_counts(&counts);
            log.append(
                self.entry(actor.id(), Operation::ReportGenerated)
                    .with_kind(EntryKind::RopaGenerated(entry_kind::RopaGenerated {
                        report: entry_kind::ReportName::Ropa,
                        audit_size: ropa.security.audit_log.entries,
                        audit_root: ropa.security.audit_log.root_hash.clone(),
                    })),
            )?;
            Ok(ropa)
        })?
    }

    /// The compliance monitoring report at `at`: consents expiring within
    /// `within_days` days and consents to notices no longer accepted, per
    /// purpose; values past their category's retention (R17) and stale
    /// values (R16); refused segments, access refusals and exports from the
    /// audit log; and privacy budget use if a ledger is given. Counts only.
    /// Needs `read_audit`; the read of the log and the report are both
    /// recorded.
    pub fn compliance_report(
        &self,
        actor: &Actor,
        within_days: u32,
        ledger: Option<&BudgetLedger>,
    ) -> Result<ComplianceReport, EngineError> {
        // As of the host clock: a report is a release like any other.
        let at = self.now();
        self.with_audit_log(actor, |log| {
            let entries = log.entries()?;
            let report = super::compliance::compliance_report(
                self.policy(),
                self.store(),
                &entries,
                at,
                within_days,
                ledger,
            );
            log.append(
                self.entry(actor.id(), Operation::ReportGenerated)
                    .with_kind(EntryKind::ComplianceGenerated(
                        entry_kind::ComplianceGenerated {
                            report: entry_kind::ReportName::Compliance,
                            at: at.to_string(),
                            within_days,
                        },
                    )),
            )?;
            Ok(report)
        })?
    }
}
