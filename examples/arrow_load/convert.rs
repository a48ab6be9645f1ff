//! Subjects CSV and events JSON Lines as Arrow record batches, and Arrow
//! batches as a Parquet file: how a pipeline might hand the loader the same
//! data in Arrow form.

use std::path::Path;
use std::sync::Arc;

use privseg::Timestamp;
use privseg::load::arrow::arrow_array::builder::{
    BooleanBuilder, Date32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    TimestampSecondBuilder,
};
use privseg::load::arrow::arrow_array::{ArrayRef, RecordBatch};
use privseg::load::arrow::arrow_schema::{DataType, Field, Schema, TimeUnit};
use privseg::load::arrow::parquet::arrow::ArrowWriter;
use privseg::load::arrow::parquet::basic::Compression;
use privseg::load::arrow::parquet::file::properties::WriterProperties;
use privseg::policy::{AttrType, Policy};
use privseg::timestamp::parse_date;

/// How a column is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Utf8, the text as it is (an empty text stays empty).
    Text,
    /// Date32 (from `YYYY-MM-DD`).
    Date,
    /// Timestamp in seconds, UTC.
    Seconds,
    /// Timestamp in microseconds, UTC.
    Micros,
    /// Int64.
    Int,
    /// Boolean.
    Bool,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Date => DataType::Date32,
            Kind::Seconds => DataType::Timestamp(TimeUnit::Second, Some("UTC".into())),
            Kind::Micros => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::Int => DataType::Int64,
            Kind::Bool => DataType::Boolean,
        }
    }

    /// An array of the cells (`None`: null). A typed column's cell that
    /// does not convert is an error naming it.
    pub fn array(self, cells: &[Option<&str>]) -> Result<ArrayRef, String> {
        let bad = |c: &str| format!("{c:?} does not convert to {:?}", self.data_type());
        let time = |c: &str| Timestamp::parse(c).map(|t| t.unix()).map_err(|_| bad(c));
        Ok(match self {
            Kind::Text => {
                let mut b = StringBuilder::new();
                cells.iter().for_each(|c| b.append_option(*c));
                Arc::new(b.finish())
            }
            Kind::Date => {
                let mut b = Date32Builder::new();
                for c in cells {
                    let d = c
                        .map(|c| parse_date(c).map_err(|_| bad(c)))
                        .transpose()?
                        .map(|d| d.to_julian_day() - 2_440_588);
                    b.append_option(d);
                }
                Arc::new(b.finish())
            }
            Kind::Seconds => {
                let mut b = TimestampSecondBuilder::new().with_timezone("UTC");
                for c in cells {
                    b.append_option(c.map(time).transpose()?);
                }
                Arc::new(b.finish())
            }
            Kind::Micros => {
                let mut b = TimestampMicrosecondBuilder::new().with_timezone("UTC");
                for c in cells {
                    b.append_option(c.map(time).transpose()?.map(|s| s * 1_000_000));
                }
                Arc::new(b.finish())
            }
            Kind::Int => {
                let mut b = Int64Builder::new();
                for c in cells {
                    b.append_option(c.map(|c| c.parse().map_err(|_| bad(c))).transpose()?);
                }
                Arc::new(b.finish())
            }
            Kind::Bool => {
                let mut b = BooleanBuilder::new();
                for c in cells {
                    let v = c
                        .map(|c| match c {
                            "true" => Ok(true),
                            "false" => Ok(false),
                            _ => Err(bad(c)),
                        })
                        .transpose()?;
                    b.append_option(v);
                }
                Arc::new(b.finish())
            }
        })
    }
}

/// The natural Arrow kind of a subjects column (text for a column the
/// policy does not know).
pub fn subject_kind(policy: &Policy, column: &str) -> Kind {
    match column {
        "birth_date" => Kind::Date,
        "verified_at" => Kind::Seconds,
        name => match policy.attr_id(name).map(|a| policy.attribute(a).ty) {
            Some(AttrType::Integer) => Kind::Int,
            Some(AttrType::Boolean) => Kind::Bool,
            Some(AttrType::Timestamp) => Kind::Micros,
            Some(AttrType::Categorical) | None => Kind::Text,
        },
    }
}

/// The natural Arrow kind of an event field.
pub fn event_kind(field: &str) -> Kind {
    match field {
        "at" | "expires_at" => Kind::Micros,
        "explicit" => Kind::Bool,
        _ => Kind::Text,
    }
}

/// Rows of text cells as batches of `rows` rows (at least one batch),
/// each column of the kind `kind` gives it.
fn batches(
    names: &[String],
    kinds: &[Kind],
    cells: &[Vec<Option<String>>],
    rows: usize,
) -> Result<Vec<RecordBatch>, String> {
    let fields: Vec<Field> = names
        .iter()
        .zip(kinds)
        .map(|(n, k)| Field::new(n, k.data_type(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + rows.max(1)).min(cells.len());
        let mut columns = Vec::with_capacity(names.len());
        for (c, kind) in kinds.iter().enumerate() {
            let col: Vec<Option<&str>> =
                cells[start..end].iter().map(|r| r[c].as_deref()).collect();
            columns.push(kind.array(&col)?);
        }
        out.push(RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?);
        start = end;
        if start >= cells.len() {
            return Ok(out);
        }
    }
}

/// A subjects CSV file as batches of `rows` rows. With `typed`, each
/// column has its natural Arrow type (`subject_kind`) and an empty cell is
/// a null; otherwise every column is Utf8 and holds the cells as they are.
pub fn subjects(
    policy: &Policy,
    csv: &[u8],
    typed: bool,
    rows: usize,
) -> Result<Vec<RecordBatch>, String> {
    let mut rdr = csv::ReaderBuilder::new().from_reader(csv);
    let names: Vec<String> = rdr
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(String::from)
        .collect();
    let kinds: Vec<Kind> = names
        .iter()
        .map(|n| {
            if typed {
                subject_kind(policy, n)
            } else {
                Kind::Text
            }
        })
        .collect();
    let mut cells = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| e.to_string())?;
        cells.push(
            rec.iter()
                .map(|c| (!typed || !c.is_empty()).then(|| c.to_string()))
                .collect(),
        );
    }
    batches(&names, &kinds, &cells, rows)
}

/// An events JSON Lines file as batches of `rows` rows, one column per
/// event field (absent fields are nulls). With `typed`, times are
/// Timestamp columns; otherwise Utf8.
pub fn events(jsonl: &[u8], typed: bool, rows: usize) -> Result<Vec<RecordBatch>, String> {
    const FIELDS: [&str; 11] = [
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
    let names: Vec<String> = FIELDS.iter().map(|s| s.to_string()).collect();
    let kinds: Vec<Kind> = FIELDS
        .iter()
        .map(|f| match event_kind(f) {
            Kind::Micros if !typed => Kind::Text,
            k => k,
        })
        .collect();
    let mut cells = Vec::new();
    for line in jsonl.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
        cells.push(
            FIELDS
                .iter()
                .map(|f| match &v[f] {
                    serde_json::Value::Null => None,
                    serde_json::Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
                .collect(),
        );
    }
    batches(&names, &kinds, &cells, rows)
}

/// Writes batches (of one schema) to a Parquet file, Snappy-compressed.
pub fn write_parquet(path: &Path, batches: &[RecordBatch]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut w =
        ArrowWriter::try_new(file, batches[0].schema(), Some(props)).map_err(|e| e.to_string())?;
    for b in batches {
        w.write(b).map_err(|e| e.to_string())?;
    }
    w.close().map_err(|e| e.to_string())?;
    Ok(())
}
