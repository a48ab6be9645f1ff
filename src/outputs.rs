//! The ways data leaves the engine besides member lists: k-threshold counts,
//! breakdowns, differentially private counts, and exports to recipients.
//! Each is gated by the actor's permissions and the policy (purpose,
//! recipient, fields) and recorded in the audit log before anything is
//! released.

use std::io::Write;

use serde::Serialize;

use crate::access::{Actor, Permission};
use crate::audit::Operation;
use crate::audit::details::{self as entry_kind, EntryKind, SegmentRun, Sharded};
use crate::consent::{DataUse, Rule};
use crate::engine::{Engine, EngineError, Members};
use crate::eval::{self, kernels};
use crate::policy::{AttrId, AttrType, CcpaRole, covers};
use crate::privacy::aggregate::{Breakdown, Count, breakdown, k_threshold};
use crate::privacy::dp::{
    BudgetError, BudgetStore, Charge, DpError, Epsilon, RandomSource, Rational, noisy_count,
};
use crate::privacy::normalize::IdKind;
use crate::privacy::pseudonym::{Keyring, Pseudonymizer};
use crate::segment::{self, CheckedSegment, Term};
use crate::store::Store;
use crate::timestamp::Timestamp;
use crate::value::Value;

/// Output format of an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON object per line: `{"id": "v1:<hex>", "<field>": value, ...}`.
    Jsonl,
    /// A header `id,<field>,...`, then one row per member (RFC 4180 quoting).
    Csv,
}

/// What an export sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Recipient id.
    pub recipient: String,
    /// Purpose key.
    pub purpose: String,
    /// Rows written.
    pub rows: u64,
    /// Fields written besides the pseudonym.
    pub fields: Vec<String>,
    /// Pseudonym key version.
    pub key_version: u32,
}

impl Engine {
    /// Checks that `attr` may be read for `seg`'s purpose (R2, R7, R8, R20)
    /// and returns its id and data use.
    fn field_use(
        &self,
        seg: &CheckedSegment,
        attr: &str,
    ) -> Result<(AttrId, DataUse), EngineError> {
        Ok(segment::check_field(self.policy(), seg, attr)?)
    }

    /// Runs `seg` with extra data uses (for fields read besides the predicate).
    fn run_with(
        &self,
        seg: &CheckedSegment,
        at: Timestamp,
        extra: DataUse,
    ) -> Result<Members, EngineError> {
        if extra.union(seg.data_use()) == seg.data_use() {
            return self.evaluate_ungated(seg, at);
        }
        self.evaluate_ungated(&seg.widened(extra), at)
    }

    /// The number of members, reported as "fewer than k" below the policy's
    /// threshold. Needs the `count` permission for the purpose.
    pub fn count(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
    ) -> Result<Count, EngineError> {
        self.allow(
            actor,
            Permission::Count(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        let m = self.evaluate_ungated(seg, at)?;
        let c = k_threshold(m.count(), self.policy().k_threshold());
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::Counted(entry_kind::Counted {
                run: SegmentRun::new(seg.name(), at),
                reported: c.to_string(),
                sharded: None,
            }),
        ))?;
        Ok(c)
    }

    /// Members per value of a categorical attribute, with small cells and
    /// enough others suppressed that none can be derived from the totals.
    /// The attribute must be one the purpose may read; members with no
    /// (fresh) value are counted under `(none)`.
    pub fn breakdown(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
        attr: &str,
    ) -> Result<Breakdown, EngineError> {
        self.allow(
            actor,
            Permission::Count(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        let (id, uses) = self.field_use(seg, attr)?;
        let spec = self.policy().attribute(id);
        if spec.ty != AttrType::Categorical {
            return Err(EngineError::NotCategorical(attr.into()));
        }
        let m = self.run_with(seg, at, uses)?;
        let mut cells = Vec::with_capacity(spec.values.len() + 1);
        let mut counted = 0u64;
        for (i, v) in spec.values.iter().enumerate() {
            let term = Term::CatIn {
                attr: id,
                values: vec![i as u32],
                negated: false,
            };
            let mut bits = eval::predicate_bits(
                self.policy(),
                self.store(),
                seg.purpose(),
                &segment::CheckedExpr::Term(term),
                m.at(),
            );
            kernels::and_assign(bits.as_raw_mut_slice(), m.bits().as_raw_slice());
            let n = kernels::count(bits.as_raw_slice());
            counted += n;
            cells.push((v.clone(), n));
        }
        cells.push(("(none)".to_string(), m.count() - counted));
        let b = breakdown(cells, self.policy().k_threshold())?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::Breakdown(entry_kind::Breakdown {
                run: SegmentRun::new(seg.name(), at),
                by: attr.into(),
                suppressed_cells: b.suppressed_cells() as u64,
            }),
        ))?;
        Ok(b)
    }

    /// A differentially private count (discrete Laplace noise of scale
    /// 1/epsilon) under the policy's budget for the segment's purpose.
    ///
    /// The policy sets, per purpose, the largest epsilon one query may spend
    /// and the total all queries may spend; `epsilon` may ask for less than
    /// the cap (`None` spends the cap) but never more. The account charged
    /// is named by the policy's controller (the data) and the budget's
    /// purpose key, so no actor, role or data-set name opens a new one.
    ///
    /// In one transaction of `budgets`: the ledger is compared with the
    /// charges this engine's audit log records for the account, and refused
    /// if it shows less spent (a deleted, rolled-back or edited ledger);
    /// then the query is charged and the ledger made durable. Only then is
    /// the charge written to the audit log (a crash in between leaves the
    /// ledger ahead of the log, the safe side), and only then is noise
    /// drawn. A failure after the charge keeps the charge.
    ///
    /// Needs the `count` permission for the purpose.
    pub fn dp_count<S: BudgetStore, R: RandomSource + ?Sized>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
        epsilon: Option<Epsilon>,
        budgets: &mut S,
        rng: &mut R,
    ) -> Result<(i64, Charge), EngineError> {
        let (budget, epsilon) = self.dp_gate(actor, seg, epsilon)?;
        let count = self.evaluate_ungated(seg, at)?.count();
        self.dp_release(actor, seg, at, count, &budget, epsilon, budgets, rng, None)
    }

    /// The gate of a DP count before anything is read: the `count`
    /// permission, the policy's budget for the purpose and its cap.
    pub(crate) fn dp_gate(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        epsilon: Option<Epsilon>,
    ) -> Result<(crate::policy::DpBudgetSpec, Epsilon), EngineError> {
        self.allow(
            actor,
            Permission::Count(seg.purpose_key()),
            Some(seg.purpose_key()),
        )?;
        let budget = self
            .policy()
            .dp_budget(seg.purpose_key())
            .ok_or_else(|| {
                EngineError::Budget(BudgetError::NoPolicyBudget {
                    purpose: seg.purpose_key().into(),
                })
            })?
            .clone();
        let epsilon = epsilon.unwrap_or(budget.max_epsilon);
        if Rational::from(epsilon) > Rational::from(budget.max_epsilon) {
            return Err(EngineError::Budget(BudgetError::AboveCap {
                budget: budget.purpose.clone(),
                requested: epsilon,
                cap: budget.max_epsilon,
            }));
        }
        Ok((budget, epsilon))
    }

    /// The charge and the noise of [`Engine::dp_count`] for a count already
    /// made (by this engine, or merged from shards by
    /// [`crate::shard`]): the ledger checked against this engine's audit
    /// log, charged once, one audit entry (naming the shards merged, if any), then noise
    /// drawn once. The caller has checked the permission and the cap.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn dp_release<S: BudgetStore, R: RandomSource + ?Sized>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
        count: u64,
        budget: &crate::policy::DpBudgetSpec,
        epsilon: Epsilon,
        budgets: &mut S,
        rng: &mut R,
        sharded: Option<Sharded>,
    ) -> Result<(i64, Charge), EngineError> {
        let scope = self.policy().spec().controller.name.clone();
        if i64::try_from(count).is_err() {
            return Err(EngineError::Noise(DpError::CountTooLarge { count }));
        }
        // What the audit log says was charged to this account so far.
        let mut audit_spent = Rational::ZERO;
        for e in self.audit_entries()? {
            if e.operation != Operation::Counted || !e.details.contains_key("dp_scope") {
                continue;
            }
            // A charge entry that does not read as one is refused rather
            // than skipped: skipping it would under-count what was spent.
            let Ok(EntryKind::DpCounted(d)) = EntryKind::of(&e) else {
                return Err(EngineError::UnreadableCharge { seq: e.seq });
            };
            if d.dp_scope != scope || d.dp_budget != budget.purpose {
                continue;
            }
            let charged: Rational = d
                .epsilon
                .parse()
                .map_err(|_| EngineError::UnreadableCharge { seq: e.seq })?;
            audit_spent = audit_spent.checked_add(charged).ok_or_else(|| {
                EngineError::Budget(BudgetError::Overflow {
                    scope: scope.clone(),
                    budget: budget.purpose.clone(),
                })
            })?;
        }
        let charge = budgets.transact(|ledger| {
            let ledger_spent = ledger.spent(&scope, &budget.purpose);
            if ledger_spent < audit_spent {
                return Err(BudgetError::BehindAudit {
                    scope: scope.clone(),
                    budget: budget.purpose.clone(),
                    ledger_spent,
                    audit_spent,
                });
            }
            ledger.charge(&scope, &budget.purpose, budget.total, epsilon)
        });
        let charge = charge?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::DpCounted(entry_kind::DpCounted {
                run: SegmentRun::new(seg.name(), at),
                epsilon: epsilon.to_string(),
                dp_scope: scope.clone(),
                dp_budget: budget.purpose.clone(),
                dp_spent: charge.spent.to_string(),
                dp_total: charge.total.to_string(),
                sharded,
            }),
        ))?;
        let noisy = noisy_count(count, epsilon, rng)?;
        Ok((noisy, charge))
    }

    /// The gate of an export before anything is read: the `export`
    /// permission for the recipient, its agreement (purpose, every field's
    /// category, every category the selection reads) and each field's
    /// purpose limitation. Returns the fields' ids and the data use
    /// members must be eligible for.
    pub(crate) fn export_gate(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        recipient: &str,
        fields: &[&str],
    ) -> Result<(Vec<AttrId>, DataUse), EngineError> {
        // An unknown recipient is a mistake in the call, not a missing
        // permission: say so before checking access.
        let policy = self.policy().clone();
        let r = policy
            .recipient(recipient)
            .ok_or_else(|| EngineError::UnknownRecipient(recipient.into()))?;
        self.allow(
            actor,
            Permission::Export(recipient),
            Some(seg.purpose_key()),
        )?;
        let refuse = |reason: String| EngineError::ExportRefused {
            recipient: recipient.into(),
            rule: Rule::R19,
            reason,
        };
        if !r.purposes.iter().any(|p| covers(p, seg.purpose_key())) {
            return Err(refuse(format!(
                "the agreement {} does not cover purpose {}",
                r.dpa_reference,
                seg.purpose_key()
            )));
        }
        let mut uses = DataUse {
            sale_share: r.ccpa_role == CcpaRole::ThirdParty,
            ..DataUse::default()
        };
        let mut ids = Vec::with_capacity(fields.len());
        for (i, f) in fields.iter().enumerate() {
            if fields[..i].contains(f) {
                return Err(refuse(format!("field {f} is asked for twice")));
            }
            let (id, u) = self.field_use(seg, f)?;
            let cat = &policy.attribute(id).category;
            if !r.categories.iter().any(|c| covers(c, cat)) {
                return Err(refuse(format!(
                    "the agreement {} does not cover field {f} (category {cat})",
                    r.dpa_reference
                )));
            }
            uses = uses.union(u);
            ids.push(id);
        }
        // The selection reads data too: a segment chosen by an attribute
        // tells the recipient something about that attribute's category, so
        // the agreement must cover every category the predicate reads, not
        // only the fields sent (R19, R7).
        for &a in seg.attributes() {
            let spec = policy.attribute(a);
            if !r.categories.iter().any(|c| covers(c, &spec.category)) {
                return Err(refuse(format!(
                    "the agreement {} does not cover category {} read by the segment's selection (attribute {})",
                    r.dpa_reference, spec.category, spec.name
                )));
            }
        }
        Ok((ids, uses))
    }

    /// Members for an export: the segment run with the fields' data uses.
    pub(crate) fn run_for_export(
        &self,
        seg: &CheckedSegment,
        at: Timestamp,
        uses: DataUse,
    ) -> Result<Members, EngineError> {
        self.run_with(seg, at, uses)
    }

    /// The oldest verification time still fresh, per exported field.
    pub(crate) fn fresh_since(
        &self,
        seg: &CheckedSegment,
        ids: &[AttrId],
        at: Timestamp,
    ) -> Vec<i64> {
        ids.iter()
            .map(|a| eval::fresh_since(self.policy(), *a, seg.purpose(), at))
            .collect()
    }

    /// A row's exported values: missing or stale ones as `None` (R16).
    pub(crate) fn export_values(
        &self,
        ids: &[AttrId],
        fresh: &[i64],
        row: u32,
        out: &mut Vec<Option<Value>>,
    ) {
        out.clear();
        for (k, a) in ids.iter().enumerate() {
            out.push(
                self.store()
                    .get(row, *a)
                    .filter(|(_, verified)| *verified >= fresh[k])
                    .map(|(code, _)| Store::decode(self.policy(), *a, code)),
            );
        }
    }

    /// Exports a segment's members to a recipient: only if the actor may
    /// export to it, its agreement covers the segment's purpose and every
    /// field's category, and each field may be read for the purpose. For a
    /// CCPA third party, opt-outs, GPC and the minors' rules apply whatever
    /// the purpose. Ids are pseudonymised under the recipient's key from
    /// `keys`; a missing or stale value is written as null (empty in CSV).
    /// Rows are streamed to `out` after the export is recorded.
    #[allow(clippy::too_many_arguments)]
    pub fn export<W: Write>(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
        recipient: &str,
        fields: &[&str],
        format: ExportFormat,
        keys: &Keyring,
        out: W,
    ) -> Result<ExportSummary, EngineError> {
        let (ids, uses) = self.export_gate(actor, seg, recipient, fields)?;
        let pseudonymizer = keys.current(recipient, seg.purpose_key())?;
        let members = self.run_with(seg, at, uses)?;
        self.log(self.segment_entry(
            actor,
            seg,
            EntryKind::Exported(entry_kind::Exported {
                run: SegmentRun::new(seg.name(), at),
                recipient: recipient.into(),
                fields: fields.join(","),
                rows: members.count(),
                key_version: pseudonymizer.version(),
                sharded: None,
            }),
        ))?;
        self.write_members(&members, seg, &ids, fields, format, &pseudonymizer, out)?;
        Ok(ExportSummary::new(
            recipient,
            seg,
            members.count(),
            fields,
            pseudonymizer.version(),
        ))
    }

    /// Streams the rows of an export already gated and recorded: each
    /// member's pseudonym and its fresh values.
    #[allow(clippy::too_many_arguments)]
    fn write_members<W: Write>(
        &self,
        members: &Members,
        seg: &CheckedSegment,
        ids: &[AttrId],
        fields: &[&str],
        format: ExportFormat,
        pseudonymizer: &Pseudonymizer,
        out: W,
    ) -> Result<(), EngineError> {
        let store = self.store();
        let fresh = self.fresh_since(seg, ids, members.at());
        let mut writer = ExportWriter::start(format, fields, out)?;
        let mut values = Vec::with_capacity(ids.len());
        for row in members.rows() {
            let p = pseudonymizer.pseudonymize(IdKind::SubjectId, store.id(row))?;
            self.export_values(ids, &fresh, row, &mut values);
            writer.row(&p.to_string(), &values)?;
        }
        writer.finish()
    }
}

impl ExportSummary {
    pub(crate) fn new(
        recipient: &str,
        seg: &CheckedSegment,
        rows: u64,
        fields: &[&str],
        key_version: u32,
    ) -> ExportSummary {
        ExportSummary {
            recipient: recipient.into(),
            purpose: seg.purpose_key().into(),
            rows,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            key_version,
        }
    }
}

/// Writes an export's rows in its format, the pseudonym first and then the
/// fields in the order asked. A missing or stale value is `null` in JSONL
/// and an empty cell in CSV. CSV goes through the `csv` crate: `\n` line
/// ends, and a cell quoted only when it holds a comma, a quote or a line
/// break (RFC 4180).
pub(crate) struct ExportWriter<'f, W: Write> {
    fields: &'f [&'f str],
    sink: Sink<W>,
}

enum Sink<W: Write> {
    Jsonl {
        out: W,
        line: String,
    },
    // Boxed: the writer holds its own buffer.
    Csv {
        out: Box<csv::Writer<W>>,
        cell: String,
    },
}

impl<'f, W: Write> ExportWriter<'f, W> {
    /// Starts an export to `out`, writing the CSV header `id,<field>,...`.
    pub(crate) fn start(
        format: ExportFormat,
        fields: &'f [&'f str],
        out: W,
    ) -> Result<Self, EngineError> {
        let sink = match format {
            ExportFormat::Jsonl => Sink::Jsonl {
                out,
                line: String::new(),
            },
            ExportFormat::Csv => {
                let mut out = Box::new(csv::Writer::from_writer(out));
                out.write_record(std::iter::once("id").chain(fields.iter().copied()))
                    .map_err(csv_error)?;
                Sink::Csv {
                    out,
                    cell: String::new(),
                }
            }
        };
        Ok(ExportWriter { fields, sink })
    }

    /// Continues an export to `out` whose start (and CSV header) was
    /// written by an earlier writer: rows only.
    pub(crate) fn resume(format: ExportFormat, fields: &'f [&'f str], out: W) -> Self {
        let sink = match format {
            ExportFormat::Jsonl => Sink::Jsonl {
                out,
                line: String::new(),
            },
            ExportFormat::Csv => Sink::Csv {
                out: Box::new(csv::Writer::from_writer(out)),
                cell: String::new(),
            },
        };
        ExportWriter { fields, sink }
    }

    /// Writes one member's row: its pseudonym and its values, one per field.
    pub(crate) fn row(
        &mut self,
        pseudonym: &str,
        values: &[Option<Value>],
    ) -> Result<(), EngineError> {
        match &mut self.sink {
            Sink::Jsonl { out, line } => {
                // `id` first, then the fields in the order asked (a JSON map
                // would sort them).
                line.clear();
                line.push_str("{\"id\":");
                line.push_str(&serde_json::Value::from(pseudonym).to_string());
                for (field, value) in self.fields.iter().zip(values) {
                    let v = value.as_ref().map_or(serde_json::Value::Null, |v| {
                        serde_json::to_value(v).unwrap_or_default()
                    });
                    line.push(',');
                    line.push_str(&serde_json::Value::from(*field).to_string());
                    line.push(':');
                    line.push_str(&v.to_string());
                }
                line.push('}');
                writeln!(out, "{line}").map_err(EngineError::Io)
            }
            Sink::Csv { out, cell } => {
                out.write_field(pseudonym).map_err(csv_error)?;
                for value in values {
                    cell.clear();
                    if let Some(v) = value {
                        write_value(cell, v);
                    }
                    out.write_field(cell.as_str()).map_err(csv_error)?;
                }
                out.write_record(std::iter::empty::<&str>())
                    .map_err(csv_error)
            }
        }
    }

    /// Flushes what is buffered; an export is complete only once this
    /// returns `Ok`.
    pub(crate) fn finish(self) -> Result<(), EngineError> {
        match self.sink {
            Sink::Jsonl { mut out, .. } => out.flush().map_err(EngineError::Io),
            Sink::Csv { mut out, .. } => out.flush().map_err(EngineError::Io),
        }
    }
}

/// A value's text in a CSV cell.
fn write_value(cell: &mut String, v: &Value) {
    use std::fmt::Write as _;
    // Writing to a String cannot fail.
    let _ = match v {
        Value::Bool(b) => write!(cell, "{b}"),
        Value::Int(i) => write!(cell, "{i}"),
        Value::Str(s) => cell.write_str(s),
    };
}

/// The `csv` writer fails only by its sink's I/O error: passed on as it is.
fn csv_error(e: csv::Error) -> EngineError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => EngineError::Io(io),
        other => EngineError::Io(std::io::Error::other(format!("CSV writer: {other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(
        format: ExportFormat,
        fields: &[&str],
        rows: &[(&str, Vec<Option<Value>>)],
    ) -> String {
        let mut out = Vec::new();
        let mut w = ExportWriter::start(format, fields, &mut out).unwrap();
        for (p, values) in rows {
            w.row(p, values).unwrap();
        }
        w.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_only_cells_that_need_it() {
        let rows = [
            (
                "v1:aa",
                vec![
                    Some(Value::Str("plain".into())),
                    Some(Value::Str("a,b".into())),
                    Some(Value::Str("say \"hi\"".into())),
                ],
            ),
            (
                "v1:bb",
                vec![
                    None,
                    Some(Value::Str("two\nlines\r".into())),
                    Some(Value::Int(-3)),
                ],
            ),
            ("v1:cc", vec![Some(Value::Bool(true)), None, None]),
        ];
        assert_eq!(
            written(ExportFormat::Csv, &["name", "x,y", "q\"t"], &rows),
            "id,name,\"x,y\",\"q\"\"t\"\n\
             v1:aa,plain,\"a,b\",\"say \"\"hi\"\"\"\n\
             v1:bb,,\"two\nlines\r\",-3\n\
             v1:cc,true,,\n"
        );
    }

    #[test]
    fn jsonl_keeps_the_fields_in_the_order_asked() {
        let rows = [("v1:aa", vec![Some(Value::Int(7)), None])];
        assert_eq!(
            written(ExportFormat::Jsonl, &["z", "a"], &rows),
            "{\"id\":\"v1:aa\",\"z\":7,\"a\":null}\n"
        );
    }

    #[test]
    fn csv_with_no_fields_is_ids_only() {
        let rows = [("v1:aa", vec![])];
        assert_eq!(written(ExportFormat::Csv, &[], &rows), "id\nv1:aa\n");
    }
}
