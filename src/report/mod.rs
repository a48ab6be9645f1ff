//! Accountability reports: the record of processing activities (GDPR
//! Art. 30, R18) and the compliance monitoring report.
//!
//! Both are plain serialisable data with stable field names, rendered as
//! JSON ([`Ropa::to_json`], [`ComplianceReport::to_json`]) or as Markdown
//! tables ([`Ropa::to_markdown`], [`ComplianceReport::to_markdown`]). They
//! hold counts and policy facts only, never a subject id or an attribute
//! value.
//!
//! Through the engine, [`crate::Engine::ropa`] and
//! [`crate::Engine::compliance_report`] need the `read_audit` permission;
//! each reads the audit log (recorded as `audit_read`) and records the
//! report it produced (`report_generated`).
//!
//! ```
//! use std::sync::Arc;
//! use privseg::{Actor, Engine, Timestamp};
//! use privseg::policy::*;
//!
//! let policy = PolicyBuilder::new("Acme Ltd")
//!     .contact("dpo@acme.example")
//!     .category(CategorySpec::new("user.location").retention_days(730))
//!     .attribute(AttributeSpec::categorical("country", "user.location", &["FR", "DE"]))
//!     .purpose(PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests)
//!         .allow("user.location"))
//!     .role(RoleSpec { name: "dpo".into(), read_audit: true, ..RoleSpec::default() })
//!     .build().unwrap();
//! let engine = Engine::new(Arc::new(policy));
//! let dpo = Actor::new("dpo-1", &["dpo"]);
//! let ropa = engine.ropa(&dpo).unwrap();
//! assert_eq!(ropa.controller.name, "Acme Ltd");
//! assert_eq!(ropa.purposes[0].lawful_basis, LawfulBasis::LegitimateInterests);
//! assert!(ropa.to_markdown().contains("| analytics.product |"));
//!
//! let at = Timestamp::parse("2026-06-01T00:00:00Z").unwrap();
//! let report = engine.compliance_report(&dpo, 30, None).unwrap();
//! assert_eq!(report.subjects, 0);
//! ```

mod compliance;
mod engine;
mod ropa;

pub use compliance::{
    AccessRefusals, AttributeStaleness, BudgetUse, CategoryRetention, ComplianceReport,
    ExportTally, PurgeRecord, PurposeConsents, SegmentRefusals,
};
pub use ropa::{
    AuditLogRecord, CategoryUse, ConsentTerms, ControllerRecord, EncryptionRecord,
    JurisdictionRecord, PseudonymisationRecord, PurposeRecord, RecipientRecord, RetentionRecord,
    RoleRecord, Ropa, SecurityMeasures, SubjectCategory, TransferRecord, ropa,
};

use crate::audit::{AuditEntry, EntryKind};
use crate::policy::{Policy, covers};

/// A Markdown table: a header row, the separator and one row per item, with
/// `|` escaped and line breaks flattened in every cell.
pub(crate) fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let cell = |s: &str| {
        let s = s.replace('|', "\\|").replace(['\n', '\r'], " ");
        if s.is_empty() { "—".to_string() } else { s }
    };
    out.push('|');
    for h in headers {
        out.push(' ');
        out.push_str(&cell(h));
        out.push_str(" |");
    }
    out.push_str("\n|");
    for _ in headers {
        out.push_str(" --- |");
    }
    out.push('\n');
    for row in rows {
        out.push('|');
        for c in row {
            out.push(' ');
            out.push_str(&cell(c));
            out.push_str(" |");
        }
        out.push('\n');
    }
    out.push('\n');
}

/// Appends a Markdown heading of `level` (1 for `#`) and a blank line.
pub(crate) fn heading(out: &mut String, level: usize, title: &str) {
    for _ in 0..level {
        out.push('#');
    }
    out.push(' ');
    out.push_str(title);
    out.push_str("\n\n");
}

/// `yes` or empty (shown as a dash).
pub(crate) fn yes(b: bool) -> String {
    if b { "yes".into() } else { String::new() }
}

/// The retention period of a category key: its own, else that of the
/// nearest declared ancestor that sets one, with the key it comes from.
pub(crate) fn retention_of(policy: &Policy, key: &str) -> Option<(u32, String)> {
    policy
        .spec()
        .categories
        .iter()
        .filter(|c| covers(&c.key, key))
        .filter_map(|c| c.retention_days.map(|d| (c.key.len(), d, c.key.clone())))
        .max_by_key(|(len, _, _)| *len)
        .map(|(_, d, k)| (d, k))
}

/// Exports per recipient in audit entries: (number of exports, rows). An
/// export entry whose details do not read as an export (not written by
/// the engine) counts under `(unnamed)` with no rows.
pub(crate) fn export_tallies(
    entries: &[AuditEntry],
) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::<String, (u64, u64)>::new();
    for e in entries {
        if e.operation != crate::audit::Operation::Exported {
            continue;
        }
        let (recipient, rows) = match EntryKind::of(e) {
            Ok(EntryKind::Exported(x)) => (x.recipient, x.rows),
            _ => ("(unnamed)".to_string(), 0),
        };
        let t = out.entry(recipient).or_default();
        t.0 += 1;
        t.1 += rows;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{CategorySpec, PolicyBuilder};

    #[test]
    fn retention_comes_from_the_nearest_declared_ancestor() {
        let p = PolicyBuilder::new("X")
            .category(CategorySpec::new("user").retention_days(100))
            .category(CategorySpec::new("user.contact"))
            .category(CategorySpec::new("user.contact.email").retention_days(30))
            .build()
            .unwrap();
        assert_eq!(retention_of(&p, "user.contact"), Some((100, "user".into())));
        assert_eq!(
            retention_of(&p, "user.contact.email"),
            Some((30, "user.contact.email".into()))
        );
        let q = PolicyBuilder::new("X")
            .category(CategorySpec::new("user.contact"))
            .build()
            .unwrap();
        assert_eq!(retention_of(&q, "user.contact"), None);
    }

    #[test]
    fn table_cells_are_escaped() {
        let mut md = String::new();
        table(
            &mut md,
            &["a", "b"],
            &[
                vec!["x|y".into(), String::new()],
                vec!["line\nbreak".into(), "z".into()],
            ],
        );
        assert_eq!(
            md,
            "| a | b |\n| --- | --- |\n| x\\|y | — |\n| line break | z |\n\n"
        );
    }
}
