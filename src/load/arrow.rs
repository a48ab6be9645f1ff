//! Subjects and consent events from Arrow record batches and Parquet files
//! (feature `arrow`).
//!
//! The columns, their meaning, the checks and the error texts are those of
//! the CSV and JSON Lines inputs (see `docs/formats.md`); only the cell types
//! differ. Each column is checked against its expected Arrow types once, from
//! the schema, then converted a column at a time (its attribute resolved once)
//! into what the CSV path stages, through the same staging steps: the same
//! all-or-nothing load, the same audit entry.
//!
//! Errors name the input, the row (1-based, counted across the batches;
//! row 0 stands for the schema) and the column (1-based position and name).
//! Nulls are missing values; in text columns an empty string is too, as an
//! empty CSV cell is (but for the event fields, where JSON keeps `""`).
//!
//! The `arrow-array`, `arrow-schema` and `parquet` crates are re-exported so
//! that callers build batches with the versions the loader reads.

use std::fs::File;
use std::path::Path;
use std::time::Instant;

pub use arrow_array;
pub use arrow_schema;
pub use parquet;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int32Type, Int64Type, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use time::Date;

use super::{
    BATCH, EventChunk, EventChunkContext, InputErrorKind, Layout, LoadError, Loader, ParsedRow,
    RowContext, Stage, SubjectChunk, Tally, bad_time, batch_chunks, blank_event, input, parse_kind,
    parse_time, parse_value, set, set_opt,
};
use crate::consent::ConsentEvent;
use crate::policy::{AttrId, AttrType, JurisdictionId, Policy};
use crate::store::BulkEvents;
use crate::timestamp::{Timestamp, parse_date};

/// Rows checked per task: batches are cut into parts of this many rows,
/// checked on every core.
const PART: usize = 16 * 1024;

/// Rows per batch read from a Parquet file.
const PARQUET_BATCH: usize = 64 * 1024;

/// The fields of an event, in the order of `docs/formats.md`.
pub const EVENT_COLUMNS: [&str; 11] = [
    "subject",
    "kind",
    "purpose",
    "at",
    "notice_version",
    "notice_sha256",
    "channel",
    "collector",
    "expires_at",
    "explicit",
    "evidence_sha256",
];

/// The event fields every events input has (the others are optional: a
/// column may be left out, or hold nulls).
const REQUIRED_EVENT_COLUMNS: [usize; 5] = [0, 1, 3, 6, 7];

const TEXT: &str = "Utf8 or LargeUtf8 (or a dictionary of them)";
const TIME: &str = "Timestamp (any unit, with a time zone) or Utf8 (RFC 3339)";
const DATE: &str = "Date32 or Utf8 (YYYY-MM-DD)";

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        // Dictionary-encoded text (as categorical columns often come).
        DataType::Dictionary(_, v) => {
            matches!(
                **v,
                DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
            )
        }
        _ => false,
    }
}

/// A time column: text, or instants. A timestamp without a time zone is a
/// wall-clock time in an unknown zone, not an instant: it is refused rather
/// than read as UTC.
fn is_time(t: &DataType) -> bool {
    is_text(t) || matches!(t, DataType::Timestamp(_, Some(_)))
}

fn is_date(t: &DataType) -> bool {
    is_text(t) || *t == DataType::Date32
}

/// The Arrow types accepted for a value of this attribute type.
fn value_types(ty: AttrType) -> (fn(&DataType) -> bool, &'static str) {
    match ty {
        AttrType::Categorical => (is_text, TEXT),
        AttrType::Timestamp => (is_time, TIME),
        AttrType::Integer => (
            |t| is_text(t) || matches!(t, DataType::Int64 | DataType::Int32),
            "Int64, Int32 or Utf8",
        ),
        AttrType::Boolean => (
            |t| is_text(t) || *t == DataType::Boolean,
            "Boolean or Utf8 (true, false)",
        ),
    }
}

fn wrong_type(file: &str, col: usize, name: &str, t: &DataType, expected: &str) -> LoadError {
    input(
        file,
        0,
        Some(col as u64 + 1),
        Some(name),
        InputErrorKind::Header,
        format!("column {name:?} has type {t}: expected {expected}"),
    )
    .into()
}

fn check_type(
    file: &str,
    schema: &Schema,
    col: usize,
    ok: fn(&DataType) -> bool,
    expected: &str,
) -> Result<(), LoadError> {
    let f = schema.field(col);
    if ok(f.data_type()) {
        Ok(())
    } else {
        Err(wrong_type(file, col, f.name(), f.data_type(), expected))
    }
}

/// The layout of a subjects schema: its columns by name (as a CSV header
/// would be read), each of a type its column accepts.
fn subject_layout(policy: &Policy, file: &str, schema: &Schema) -> Result<Layout, LoadError> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let layout = Layout::of(policy, file, 0, &csv::ByteRecord::from(names))?;
    check_type(file, schema, layout.id, is_text, TEXT)?;
    check_type(file, schema, layout.jurisdiction, is_text, TEXT)?;
    check_type(file, schema, layout.birth_date, is_date, DATE)?;
    check_type(file, schema, layout.verified_at, is_time, TIME)?;
    for (col, _, ty, _) in &layout.attrs {
        let (ok, expected) = value_types(*ty);
        check_type(file, schema, *col, ok, expected)?;
    }
    Ok(layout)
}

/// Where each event field is in an events schema.
struct EventLayout {
    cols: [Option<usize>; EVENT_COLUMNS.len()],
}

impl EventLayout {
    fn of(file: &str, schema: &Schema) -> Result<EventLayout, LoadError> {
        let header = |col: Option<usize>, name: Option<&str>, msg: String| {
            LoadError::from(input(
                file,
                0,
                col.map(|c| c as u64 + 1),
                name,
                InputErrorKind::Header,
                msg,
            ))
        };
        let mut cols = [None; EVENT_COLUMNS.len()];
        for (i, f) in schema.fields().iter().enumerate() {
            let name = f.name().as_str();
            let Some(k) = EVENT_COLUMNS.iter().position(|c| *c == name) else {
                return Err(header(
                    Some(i),
                    Some(name),
                    format!(
                        "unknown column {name:?}: expected an event field ({})",
                        EVENT_COLUMNS.join(", ")
                    ),
                ));
            };
            if let Some(first) = cols[k] {
                return Err(header(
                    Some(i),
                    Some(name),
                    format!(
                        "column {name:?} appears twice (first as column {})",
                        first + 1
                    ),
                ));
            }
            let (ok, expected): (fn(&DataType) -> bool, &str) = match name {
                "at" | "expires_at" => (is_time, TIME),
                "explicit" => (|t| *t == DataType::Boolean, "Boolean"),
                _ => (is_text, TEXT),
            };
            check_type(file, schema, i, ok, expected)?;
            cols[k] = Some(i);
        }
        let missing: Vec<&str> = REQUIRED_EVENT_COLUMNS
            .iter()
            .filter(|&&k| cols[k].is_none())
            .map(|&k| EVENT_COLUMNS[k])
            .collect();
        if !missing.is_empty() {
            let required: Vec<&str> = REQUIRED_EVENT_COLUMNS
                .iter()
                .map(|&k| EVENT_COLUMNS[k])
                .collect();
            return Err(header(
                None,
                None,
                format!(
                    "missing column{} {}: every event needs {}",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    required.join(", ")
                ),
            ));
        }
        Ok(EventLayout { cols })
    }
}

/// A text column.
enum Text<'a> {
    Utf8(&'a arrow_array::StringArray),
    Large(&'a arrow_array::LargeStringArray),
    View(&'a arrow_array::StringViewArray),
    /// Dictionary-encoded text: each cell's index into `values` (a null
    /// key is a null cell).
    Dict {
        keys: &'a dyn Array,
        index: Vec<usize>,
        values: Box<Text<'a>>,
    },
}

impl<'a> Text<'a> {
    fn of(a: &'a ArrayRef) -> Option<Text<'a>> {
        match a.data_type() {
            DataType::Utf8 => a.as_string_opt::<i32>().map(Text::Utf8),
            DataType::LargeUtf8 => a.as_string_opt::<i64>().map(Text::Large),
            DataType::Utf8View => a.as_string_view_opt().map(Text::View),
            DataType::Dictionary(_, v) if !matches!(**v, DataType::Dictionary(..)) => {
                let d = a.as_any_dictionary_opt()?;
                let values = Box::new(Text::of(d.values())?);
                // (`normalized_keys` needs a dictionary with a value: one
                // without has only null keys, if it is valid.)
                let index = if d.values().is_empty() {
                    vec![usize::MAX; d.len()]
                } else {
                    d.normalized_keys()
                };
                Some(Text::Dict {
                    keys: d.keys(),
                    index,
                    values,
                })
            }
            _ => None,
        }
    }

    fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            Text::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            Text::Large(a) => a.is_valid(i).then(|| a.value(i)),
            Text::View(a) => a.is_valid(i).then(|| a.value(i)),
            Text::Dict {
                keys,
                index,
                values,
            } => {
                if keys.is_valid(i) && index[i] != usize::MAX {
                    values.get(index[i])
                } else {
                    None
                }
            }
        }
    }

    /// The cell, `None` when null or empty (a missing value, as an empty
    /// CSV cell).
    fn cell(&self, i: usize) -> Option<&'a str> {
        self.get(i).filter(|s| !s.is_empty())
    }
}

/// What is wrong with a cell: its class and text.
type CellError = (InputErrorKind, String);

/// A time column.
enum Time<'a> {
    Text(Text<'a>),
    /// Instants as counts of `1 / per_sec` seconds since the epoch.
    Stamp {
        array: &'a dyn Array,
        values: &'a [i64],
        per_sec: i64,
    },
}

impl<'a> Time<'a> {
    fn of(a: &'a ArrayRef) -> Option<Time<'a>> {
        fn stamp<T: arrow_array::ArrowPrimitiveType<Native = i64>>(
            a: &ArrayRef,
            per_sec: i64,
        ) -> Option<Time<'_>> {
            a.as_primitive_opt::<T>().map(|p| Time::Stamp {
                array: p,
                values: p.values(),
                per_sec,
            })
        }
        match a.data_type() {
            DataType::Timestamp(unit, Some(_)) => match unit {
                TimeUnit::Second => stamp::<TimestampSecondType>(a, 1),
                TimeUnit::Millisecond => stamp::<TimestampMillisecondType>(a, 1_000),
                TimeUnit::Microsecond => stamp::<TimestampMicrosecondType>(a, 1_000_000),
                TimeUnit::Nanosecond => stamp::<TimestampNanosecondType>(a, 1_000_000_000),
            },
            _ => Text::of(a).map(Time::Text),
        }
    }

    /// The instant of a cell (fractions of a second dropped, as from an
    /// RFC 3339 text), `None` when missing.
    fn get(&self, i: usize) -> Option<Result<Timestamp, CellError>> {
        match self {
            Time::Text(t) => t
                .cell(i)
                .map(|s| parse_time(s).ok_or_else(|| (InputErrorKind::Time, bad_time(s)))),
            Time::Stamp {
                array,
                values,
                per_sec,
            } => array.is_valid(i).then(|| {
                Timestamp::checked_from_unix(values[i].div_euclid(*per_sec))
                    .map_err(|e| (InputErrorKind::Time, e.to_string()))
            }),
        }
    }
}

/// A column converted a row at a time up to its first bad cell: `vals`
/// holds the rows before it, `err` what is wrong with it.
struct Conv<T> {
    vals: Vec<T>,
    err: Option<CellError>,
}

impl<T> Conv<T> {
    fn new(n: usize, mut f: impl FnMut(usize) -> Result<T, CellError>) -> Conv<T> {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            match f(i) {
                Ok(v) => vals.push(v),
                Err(e) => return Conv { vals, err: Some(e) },
            }
        }
        Conv { vals, err: None }
    }

    /// The value of row `i`, or what is wrong with it.
    fn at(&self, i: usize) -> Result<&T, &CellError> {
        match self.vals.get(i) {
            Some(v) => Ok(v),
            None => Err(self
                .err
                .as_ref()
                .expect("rows past the first bad cell are not read")),
        }
    }
}

/// The column `col` of `batch` as `T`, or the error of a column whose type
/// the schema check let through but this batch does not have.
fn column<'b, T>(
    file: &str,
    batch: &'b RecordBatch,
    col: usize,
    of: impl Fn(&'b ArrayRef) -> Option<T>,
    expected: &str,
) -> Result<T, LoadError> {
    let a = batch.column(col);
    of(a).ok_or_else(|| {
        let schema = batch.schema();
        let f = schema.field(col);
        wrong_type(file, col, f.name(), a.data_type(), expected)
    })
}

fn date_cell(a: &ArrayRef, i: usize) -> Option<Result<Date, CellError>> {
    if let Some(t) = Text::of(a) {
        return t
            .cell(i)
            .map(|s| parse_date(s).map_err(|e| (InputErrorKind::Date, e.to_string())));
    }
    let d = a.as_primitive_opt::<arrow_array::types::Date32Type>()?;
    d.is_valid(i).then(|| {
        let days = d.value(i);
        Date::from_julian_day(2_440_588 + days).map_err(|_| {
            (
                InputErrorKind::Date,
                format!("invalid date: {days} days from 1970-01-01 is out of range"),
            )
        })
    })
}

/// An attribute column's cells as the store's codes (`None` when missing).
fn attr_codes(
    policy: &Policy,
    a: AttrId,
    attr: &str,
    ty: AttrType,
    array: &ArrayRef,
    n: usize,
) -> Option<Conv<Option<i64>>> {
    if let Some(t) = Text::of(array) {
        return Some(Conv::new(n, |i| match t.cell(i) {
            None => Ok(None),
            Some(s) => parse_value(policy, a, attr, ty, s).map(Some),
        }));
    }
    match (ty, array.data_type()) {
        (AttrType::Timestamp, _) => {
            let t = Time::of(array)?;
            Some(Conv::new(n, |i| {
                t.get(i).transpose().map(|v| v.map(|t| t.unix()))
            }))
        }
        (AttrType::Integer, DataType::Int64) => {
            let p = array.as_primitive_opt::<Int64Type>()?;
            Some(Conv::new(n, |i| Ok(p.is_valid(i).then(|| p.value(i)))))
        }
        (AttrType::Integer, DataType::Int32) => {
            let p = array.as_primitive_opt::<Int32Type>()?;
            Some(Conv::new(n, |i| {
                Ok(p.is_valid(i).then(|| i64::from(p.value(i))))
            }))
        }
        (AttrType::Boolean, DataType::Boolean) => {
            let b: &BooleanArray = array.as_boolean_opt()?;
            Some(Conv::new(n, |i| {
                Ok(b.is_valid(i).then(|| i64::from(b.value(i))))
            }))
        }
        _ => None,
    }
}

impl RowContext<'_> {
    /// Checks a part of a batch of subjects whose first row is row
    /// `row0 + 1` of the input, as [`RowContext::parse_chunk`] checks a
    /// chunk of CSV rows.
    fn arrow_part(&self, batch: &RecordBatch, row0: u64) -> SubjectChunk {
        let mut out = SubjectChunk::new(self.policy.attribute_count());
        if let Err(e) = self.arrow_rows(batch, row0, &mut out) {
            out.failed = Some(e);
        }
        out
    }

    /// Each attribute column of a batch converted to the store's codes
    /// (column, attribute, codes), or the first column of a wrong type.
    #[allow(clippy::type_complexity)]
    fn attr_columns(
        &self,
        batch: &RecordBatch,
    ) -> Result<Vec<(usize, AttrId, Conv<Option<i64>>)>, LoadError> {
        let n = batch.num_rows();
        self.layout
            .attrs
            .iter()
            .map(|(col, attr, ty, a)| {
                let array = batch.column(*col);
                let conv = attr_codes(self.policy, *a, attr, *ty, array, n).ok_or_else(|| {
                    wrong_type(self.file, *col, attr, array.data_type(), value_types(*ty).1)
                })?;
                Ok((*col, *a, conv))
            })
            .collect()
    }

    fn arrow_rows(
        &self,
        batch: &RecordBatch,
        row0: u64,
        out: &mut SubjectChunk,
    ) -> Result<(), LoadError> {
        let (file, layout, policy) = (self.file, self.layout, self.policy);
        let n = batch.num_rows();
        let ids = column(file, batch, layout.id, Text::of, TEXT)?;
        let codes = column(file, batch, layout.jurisdiction, Text::of, TEXT)?;
        let birth_col = batch.column(layout.birth_date);
        let verified_col = column(file, batch, layout.verified_at, Time::of, TIME)?;
        // Each column converted whole, up to its first bad cell.
        let juris: Conv<JurisdictionId> = Conv::new(n, |i| {
            let code = codes.get(i).unwrap_or("");
            policy.jurisdiction_id(code).ok_or_else(|| {
                (
                    InputErrorKind::Jurisdiction,
                    format!(
                        "unknown jurisdiction {code:?}: expected one the policy lists ({})",
                        super::jurisdictions(policy)
                    ),
                )
            })
        });
        let births: Conv<Option<Date>> = Conv::new(n, |i| date_cell(birth_col, i).transpose());
        let verified: Conv<Option<Timestamp>> = Conv::new(n, |i| verified_col.get(i).transpose());
        let attrs = self.attr_columns(batch)?;
        // Then the rows, in order, checked as CSV rows are (the first bad
        // cell of a row in the order the CSV path checks them).
        let mut values = Vec::new();
        for i in 0..n {
            let line = row0 + i as u64 + 1;
            let err = |col: usize, (kind, msg): &CellError| {
                layout.error(file, line, col, *kind, msg.clone())
            };
            let jurisdiction = *juris.at(i).map_err(|e| err(layout.jurisdiction, e))?;
            let birth_date = *births.at(i).map_err(|e| err(layout.birth_date, e))?;
            let verified = *verified.at(i).map_err(|e| err(layout.verified_at, e))?;
            values.clear();
            for ((col, a, conv), (_, attr, _, _)) in attrs.iter().zip(&layout.attrs) {
                let code = match conv.at(i) {
                    Ok(None) => continue,
                    Ok(Some(code)) => Ok(*code),
                    Err(e) => Err(e),
                };
                let Some(verified) = verified else {
                    return Err(layout.error(
                        file,
                        line,
                        layout.verified_at,
                        InputErrorKind::Time,
                        format!(
                            "the row has a value for {attr:?}, so it needs the time its values were verified"
                        ),
                    ));
                };
                values.push((*a, code.map_err(|e| err(*col, e))?, verified));
            }
            let row = ParsedRow {
                id: ids.get(i).unwrap_or(""),
                jurisdiction,
                birth_date,
                verified,
            };
            self.take_row(out, line, &row, &values);
        }
        Ok(())
    }
}

/// The columns of a part of a batch of events.
struct EventCols<'b> {
    subject: Text<'b>,
    kind: Text<'b>,
    purpose: Option<Text<'b>>,
    at: Time<'b>,
    notice_version: Option<Text<'b>>,
    notice_sha256: Option<Text<'b>>,
    channel: Text<'b>,
    collector: Text<'b>,
    expires_at: Option<Time<'b>>,
    explicit: Option<&'b BooleanArray>,
    evidence_sha256: Option<Text<'b>>,
}

impl<'b> EventCols<'b> {
    fn of(file: &str, layout: &EventLayout, batch: &'b RecordBatch) -> Result<Self, LoadError> {
        let text = |k: usize| -> Result<Option<Text<'b>>, LoadError> {
            layout.cols[k]
                .map(|c| column(file, batch, c, Text::of, TEXT))
                .transpose()
        };
        let time = |k: usize| -> Result<Option<Time<'b>>, LoadError> {
            layout.cols[k]
                .map(|c| column(file, batch, c, Time::of, TIME))
                .transpose()
        };
        fn required<T>(v: Option<T>) -> T {
            v.expect("required columns are checked with the schema")
        }
        Ok(EventCols {
            subject: required(text(0)?),
            kind: required(text(1)?),
            purpose: text(2)?,
            at: required(time(3)?),
            notice_version: text(4)?,
            notice_sha256: text(5)?,
            channel: required(text(6)?),
            collector: required(text(7)?),
            expires_at: time(8)?,
            explicit: layout.cols[9]
                .map(|c| {
                    column(
                        file,
                        batch,
                        c,
                        |a: &'b ArrayRef| a.as_boolean_opt(),
                        "Boolean",
                    )
                })
                .transpose()?,
            evidence_sha256: text(10)?,
        })
    }

    /// Reads row `i` into `into`, reusing its strings; checks what the JSON
    /// path checks while parsing a line (the rest is the engine's check).
    fn read(
        &self,
        file: &str,
        line: u64,
        i: usize,
        into: &mut ConsentEvent,
    ) -> Result<(), LoadError> {
        let field_err = |field: &str, kind: InputErrorKind, msg: String| {
            LoadError::from(input(file, line, None, Some(field), kind, msg))
        };
        let required = |field: &str, v: Option<&'b str>| {
            v.ok_or_else(|| {
                field_err(
                    field,
                    InputErrorKind::Event,
                    format!("missing {field}: the cell is null, and every event needs one"),
                )
            })
        };
        let subject = required("subject", self.subject.get(i))?;
        let kind = required("kind", self.kind.get(i))?;
        let channel = required("channel", self.channel.get(i))?;
        let collector = required("collector", self.collector.get(i))?;
        let time = |field: &str, t: &Time<'_>| match t {
            // An empty text is an invalid time here, as in JSON.
            Time::Text(t) => t.get(i).map(|s| {
                parse_time(s).ok_or_else(|| field_err(field, InputErrorKind::Time, bad_time(s)))
            }),
            stamp => stamp
                .get(i)
                .map(|r| r.map_err(|(kind, msg)| field_err(field, kind, msg))),
        };
        let kind = parse_kind(file, line, kind)?;
        let Some(at) = time("at", &self.at) else {
            return Err(required("at", None).unwrap_err());
        };
        let at = at?;
        let expires_at = self
            .expires_at
            .as_ref()
            .and_then(|t| time("expires_at", t))
            .transpose()?;
        let opt = |t: &Option<Text<'b>>| t.as_ref().and_then(|t| t.get(i));
        set(&mut into.subject, subject);
        set(&mut into.channel, channel);
        set(&mut into.collector, collector);
        set_opt(&mut into.purpose, opt(&self.purpose));
        set_opt(&mut into.notice_version, opt(&self.notice_version));
        set_opt(&mut into.notice_sha256, opt(&self.notice_sha256));
        set_opt(&mut into.evidence_sha256, opt(&self.evidence_sha256));
        into.kind = kind;
        into.at = at;
        into.expires_at = expires_at;
        into.explicit = self.explicit.is_some_and(|b| b.is_valid(i) && b.value(i));
        Ok(())
    }
}

impl EventChunkContext<'_> {
    /// Reads, resolves and checks a part of a batch of events whose first
    /// row is row `row0 + 1` of the input, as
    /// [`EventChunkContext::parse_chunk`] does a chunk of JSON lines.
    fn arrow_part(&self, layout: &EventLayout, batch: &RecordBatch, row0: u64) -> EventChunk {
        let strings = self.staged.strings.clone();
        let mut out = EventChunk {
            events: BulkEvents::default(),
            strings_base: strings.len(),
            strings,
            pending: Vec::new(),
            deferred: None,
            records: 0,
            failed: None,
        };
        let cols = match EventCols::of(self.file, layout, batch) {
            Ok(c) => c,
            Err(e) => {
                out.failed = Some(e);
                return out;
            }
        };
        let mut event = blank_event();
        for i in 0..batch.num_rows() {
            let line = row0 + i as u64 + 1;
            if let Err(e) = cols.read(self.file, line, i, &mut event) {
                out.failed = Some(e);
                break;
            }
            out.records += 1;
            if self.stage && out.deferred.is_none() {
                self.stage_event(&mut out, &event, line);
            }
        }
        out
    }
}

/// Batches (or the error reading one) as a Parquet file or a caller gives
/// them.
type Batches<'i> = Box<dyn Iterator<Item = Result<RecordBatch, LoadError>> + 'i>;

/// Cuts the batches into parts of [`PART`] rows, `batch_chunks()` parts at a
/// time, each with the number of rows before it; checks that every batch
/// has `schema` (or the first batch's schema, which is then checked with
/// `check`).
struct Parts<'i> {
    file: String,
    batches: Batches<'i>,
    schema: Option<SchemaRef>,
    rows: u64,
    bytes: u64,
}

impl<'i> Parts<'i> {
    /// The parts of `batches` from input `file`, none read yet; `schema`
    /// when the input declares one before its first batch.
    fn new(file: String, batches: Batches<'i>, schema: Option<SchemaRef>) -> Parts<'i> {
        Parts {
            file,
            batches,
            schema,
            rows: 0,
            bytes: 0,
        }
    }

    /// The next parts, with the schema; empty at the end.
    fn next(&mut self) -> Result<Vec<(RecordBatch, u64)>, LoadError> {
        let mut parts = Vec::new();
        let want = batch_chunks();
        while parts.len() < want {
            let Some(batch) = self.batches.next() else {
                break;
            };
            let batch = batch?;
            match &self.schema {
                None => self.schema = Some(batch.schema()),
                Some(s) if *s == batch.schema() => {}
                Some(_) => {
                    return Err(input(
                        &self.file,
                        self.rows + 1,
                        None,
                        None,
                        InputErrorKind::Header,
                        "this batch's schema differs from the first batch's: every batch must have the same columns and types".into(),
                    )
                    .into());
                }
            }
            self.bytes += batch.get_array_memory_size() as u64;
            let n = batch.num_rows();
            let mut offset = 0;
            while offset < n {
                let len = PART.min(n - offset);
                parts.push((batch.slice(offset, len), self.rows));
                self.rows += len as u64;
                offset += len;
            }
        }
        Ok(parts)
    }
}

fn parquet_error(file: &str, e: parquet::errors::ParquetError) -> LoadError {
    LoadError::Io {
        file: file.into(),
        error: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not a readable Parquet file: {e}"),
        ),
    }
}

/// A Parquet file's schema, batches and size.
fn parquet_batches(path: &Path) -> Result<(String, SchemaRef, Batches<'static>, u64), LoadError> {
    let file = path.display().to_string();
    let io = |error| LoadError::Io {
        file: file.clone(),
        error,
    };
    let f = File::open(path).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| parquet_error(&file, e))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(PARQUET_BATCH)
        .build()
        .map_err(|e| parquet_error(&file, e))?;
    let name = file.clone();
    let batches = reader.map(move |b| {
        b.map_err(|e| LoadError::Io {
            file: name.clone(),
            error: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not a readable Parquet file: {e}"),
            ),
        })
    });
    Ok((file, schema, Box::new(batches), size))
}

impl<'a> Loader<'a> {
    /// Reads subjects from Arrow record batches (feature `arrow`): one
    /// column per CSV column, with the same names, each of an Arrow type
    /// its column accepts (see `docs/formats.md`); every batch has the same
    /// schema. `name` names the input in errors, whose line is the row
    /// (1-based, across the batches; 0 for the schema). No batch at all
    /// loads no subject.
    pub fn subjects_arrow<I>(self, name: &str, batches: I) -> Result<Loader<'a>, LoadError>
    where
        I: IntoIterator<Item = RecordBatch>,
    {
        let parts = Parts::new(name.into(), Box::new(batches.into_iter().map(Ok)), None);
        self.subject_parts(parts, None)
    }

    /// Reads subjects from a Parquet file (feature `arrow`), as
    /// [`Loader::subjects_arrow`] reads batches; the file's schema is
    /// checked even if it has no rows.
    pub fn subjects_parquet(self, path: &Path) -> Result<Loader<'a>, LoadError> {
        let (file, schema, batches, size) = parquet_batches(path)?;
        let parts = Parts::new(file, batches, Some(schema));
        self.subject_parts(parts, Some(size))
    }

    /// Reads consent events from Arrow record batches (feature `arrow`):
    /// one column per event field, named as the JSON fields; `subject`,
    /// `kind`, `at`, `channel` and `collector` are required, the others
    /// may be left out. Errors are located as for
    /// [`Loader::subjects_arrow`].
    pub fn events_arrow<I>(self, name: &str, batches: I) -> Result<Loader<'a>, LoadError>
    where
        I: IntoIterator<Item = RecordBatch>,
    {
        let parts = Parts::new(name.into(), Box::new(batches.into_iter().map(Ok)), None);
        self.event_parts(parts, None)
    }

    /// Reads consent events from a Parquet file (feature `arrow`), as
    /// [`Loader::events_arrow`] reads batches.
    pub fn events_parquet(self, path: &Path) -> Result<Loader<'a>, LoadError> {
        let (file, schema, batches, size) = parquet_batches(path)?;
        let parts = Parts::new(file, batches, Some(schema));
        self.event_parts(parts, Some(size))
    }

    /// Checks and stages subjects batch by batch of parts, the parts of a
    /// batch checked on every core. `size` is the file's size, if a file.
    fn subject_parts(
        mut self,
        mut parts: Parts<'_>,
        size: Option<u64>,
    ) -> Result<Loader<'a>, LoadError> {
        let start = Instant::now();
        let mut tally = Tally::default();
        let mut layout: Option<Layout> = None;
        loop {
            if layout.is_none()
                && let Some(schema) = &parts.schema
            {
                layout = Some(subject_layout(self.engine.policy(), &parts.file, schema)?);
            }
            let batch = parts.next()?;
            if batch.is_empty() {
                break;
            }
            if layout.is_none() {
                let schema = parts.schema.as_ref().expect("set by the first batch");
                layout = Some(subject_layout(self.engine.policy(), &parts.file, schema)?);
            }
            let layout = layout.as_ref().expect("set above");
            let ctx = RowContext {
                policy: self.engine.policy(),
                file: &parts.file,
                layout,
                delimiter: self.delimiter,
                today: self.engine.now().date(),
                stage: self.deferred_subjects.is_none(),
            };
            let checked: Vec<SubjectChunk> = batch
                .par_iter()
                .map(|(b, row0)| ctx.arrow_part(b, *row0))
                .collect();
            for out in checked {
                let before = tally.records;
                tally.records += out.records;
                tally.values += out.values;
                self.stage_subjects(layout, &parts.file, out)?;
                if before / BATCH != tally.records / BATCH {
                    self.report(Stage::Subjects, tally.records, parts.bytes, false);
                }
            }
        }
        tally.bytes = size.unwrap_or(parts.bytes);
        self.report(Stage::Subjects, tally.records, tally.bytes, true);
        self.stats.subjects += tally.records;
        self.stats.values += tally.values;
        self.stats.subject_bytes += tally.bytes;
        self.stats.subject_time += start.elapsed();
        Ok(self)
    }

    /// Reads, resolves, checks and stages events batch by batch of parts,
    /// the parts of a batch on every core.
    fn event_parts(
        mut self,
        mut parts: Parts<'_>,
        size: Option<u64>,
    ) -> Result<Loader<'a>, LoadError> {
        let start = Instant::now();
        let mut tally = Tally::default();
        let mut layout: Option<EventLayout> = None;
        loop {
            if layout.is_none()
                && let Some(schema) = &parts.schema
            {
                layout = Some(EventLayout::of(&parts.file, schema)?);
            }
            let batch = parts.next()?;
            if batch.is_empty() {
                break;
            }
            if layout.is_none() {
                let schema = parts.schema.as_ref().expect("set by the first batch");
                layout = Some(EventLayout::of(&parts.file, schema)?);
            }
            let layout = layout.as_ref().expect("set above");
            let ctx = EventChunkContext {
                policy: self.engine.policy(),
                store: self.engine.store(),
                staged: &self.staged,
                file: &parts.file,
                now: self.engine.now(),
                stage: self.deferred_subjects.is_none() && self.deferred_events.is_none(),
            };
            let checked: Vec<EventChunk> = batch
                .par_iter()
                .map(|(b, row0)| ctx.arrow_part(layout, b, *row0))
                .collect();
            for out in checked {
                let before = tally.records;
                let failed = self.stage_events(&parts.file, out, &mut tally.records);
                if before / BATCH != tally.records / BATCH {
                    self.report(Stage::Events, tally.records, parts.bytes, false);
                }
                failed?;
            }
        }
        tally.bytes = size.unwrap_or(parts.bytes);
        self.report(Stage::Events, tally.records, tally.bytes, true);
        self.stats.events += tally.records;
        self.stats.event_bytes += tally.bytes;
        self.stats.event_time += start.elapsed();
        Ok(self)
    }
}
