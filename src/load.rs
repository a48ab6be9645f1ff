//! Streaming bulk loaders: a policy from its JSON file, subjects from CSV and
//! consent events from JSON Lines (the formats are described in
//! `docs/formats.md`).
//!
//! Loading is all or nothing. A [`Loader`] reads and checks every input as a
//! stream, keeping the parsed subjects and events, and [`Loader::finish`]
//! hands them to the engine in one [`Engine::import`] call made by the
//! loader's [`Actor`]: one audit entry for the whole load, and nothing
//! changed unless every row was accepted. On the first bad row the error
//! says which file, line, column or field was wrong and what was expected;
//! errors that only the engine can find (a repeated id, a value outside its
//! bounds, an event for an unknown subject...) are traced back to their file
//! and line the same way.
//!
//! Inputs are read as streams, one record at a time through a buffer: a file
//! is never read whole into memory (the parsed rows are held until
//! [`Loader::finish`]).
//!
//! ```
//! use std::sync::Arc;
//! use privseg::load::Loader;
//! use privseg::policy::*;
//! use privseg::{Actor, Timestamp};
//!
//! let policy = PolicyBuilder::new("Acme Ltd")
//!     .category(CategorySpec::new("user.location"))
//!     .attribute(AttributeSpec::categorical("country", "user.location", &["FR", "DE"]))
//!     .purpose(PurposeSpec::new("marketing.email", LawfulBasis::Consent)
//!         .allow("user.location").notice_versions(&["v3"]).email(false))
//!     .role(RoleSpec { name: "crm".into(), subjects: true,
//!         member_ids: vec!["marketing".into()], ..RoleSpec::default() })
//!     .build().unwrap();
//! let crm = Actor::new("crm-sync", &["crm"]);
//! let subjects = "id,jurisdiction,birth_date,verified_at,country\n\
//!                 c-1,EU-FR,1980-05-01,2026-03-01T10:00:00Z,FR\n\
//!                 c-2,EU-DE,,2026-03-01T10:00:00Z,DE\n";
//! let sha = "0".repeat(64);
//! let events = format!(
//!     r#"{{"subject":"c-1","kind":"consent_granted","purpose":"marketing.email","at":"2026-03-01T10:00:00Z","notice_version":"v3","notice_sha256":"{sha}","channel":"web","collector":"signup"}}"#
//! );
//! let (engine, stats) = Loader::new(Arc::new(policy), crm.clone())
//!     .subjects("subjects.csv", subjects.as_bytes())?
//!     .events("consents.jsonl", events.as_bytes())?
//!     .finish()?;
//! assert_eq!((stats.subjects, stats.events), (2, 1));
//! let seg = engine.compile(&crm, r#"segment "fr" for marketing.email where country = "FR""#).unwrap();
//! let at = Timestamp::parse("2026-03-02T00:00:00Z").unwrap();
//! let members = engine.evaluate(&crm, &seg, at).unwrap();
//! assert_eq!(engine.member_ids(&crm, &members).unwrap(), vec!["c-1"]);
//! # Ok::<(), privseg::load::LoadError>(())
//! ```

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::access::Actor;
use crate::consent::{ConsentEvent, EventError, EventKind};
use crate::engine::{Engine, EngineError};
use crate::import::{ImportError, ImportItem, SubjectRow};
use crate::policy::{AttrId, AttrType, Policy, PolicyError};
use crate::store::Value;
use crate::timestamp::Timestamp;
use crate::timestamp::parse_date;

/// The columns every subjects file has, besides one per policy attribute.
pub const FIXED_COLUMNS: [&str; 4] = ["id", "jurisdiction", "birth_date", "verified_at"];

/// Buffer size for reading files.
const BUFFER: usize = 1 << 20;

/// Records between two progress reports.
const BATCH: u64 = 4096;

/// What class of problem a bad row or line has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InputErrorKind {
    /// Not valid CSV or JSON, not UTF-8, or the wrong number of fields.
    Syntax,
    /// A header that is missing a column, repeats one, or names an unknown one.
    Header,
    /// A subject id that is empty, badly formed or repeated.
    Id,
    /// A jurisdiction the policy does not list.
    Jurisdiction,
    /// A date that is not `YYYY-MM-DD`.
    Date,
    /// A time that is not RFC 3339.
    Time,
    /// An attribute value that does not fit its attribute's type, bounds or
    /// declared values.
    Value,
    /// An event for a subject that is not loaded.
    UnknownSubject,
    /// An event for a purpose the policy does not have.
    UnknownPurpose,
    /// An event kind that does not exist.
    UnknownEventKind,
    /// An event with a missing, extra or malformed field for its kind.
    Event,
}

/// A bad row of a subjects file or a bad line of an events file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// The file (as named to the loader).
    pub file: String,
    /// 1-based line where the row or event starts.
    pub line: u64,
    /// 1-based column: the field's position in a CSV row, or the byte
    /// position in a JSON line of a syntax error; `None` when a whole row or
    /// a named JSON field is concerned.
    pub column: Option<u64>,
    /// The CSV column name or JSON field name concerned, if any.
    pub field: Option<String>,
    /// The class of problem.
    pub kind: InputErrorKind,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        match (self.column, &self.field) {
            (Some(c), Some(name)) => write!(f, ", column {c} ({name})")?,
            (Some(c), None) => write!(f, ", column {c}")?,
            (None, Some(name)) => write!(f, ", field `{name}`")?,
            (None, None) => {}
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for InputError {}

/// Why loading failed. Nothing loaded so far is kept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file could not be opened or read.
    #[error("{file}: {error}")]
    Io {
        /// The file.
        file: String,
        /// The I/O error.
        #[source]
        error: io::Error,
    },
    /// The policy file is not a valid policy.
    #[error("{file}: {error}")]
    Policy {
        /// The file.
        file: String,
        /// The problems, each with its JSON path.
        error: PolicyError,
    },
    /// A row or line is malformed or does not fit the policy.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The engine refused the import as a whole: the actor may not add
    /// subjects ([`EngineError::Access`]), or the audit log could not record
    /// it ([`EngineError::Audit`]).
    #[error(transparent)]
    Refused(Box<EngineError>),
}

/// Counters and timings of a load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Subject rows loaded.
    pub subjects: u64,
    /// Attribute values set.
    pub values: u64,
    /// Events recorded.
    pub events: u64,
    /// Bytes of subject files read.
    pub subject_bytes: u64,
    /// Bytes of event files read.
    pub event_bytes: u64,
    /// Time spent reading and checking subjects.
    pub subject_time: Duration,
    /// Time spent reading and checking events.
    pub event_time: Duration,
    /// Time spent in the engine's import of everything read.
    pub engine_time: Duration,
}

/// Which kind of input a progress report is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stage {
    /// A subjects CSV file.
    Subjects,
    /// A consent events JSONL file.
    Events,
    /// The import of everything read into the engine (reported when it
    /// starts and when it ends; `records` counts subjects and events,
    /// `bytes` every byte read).
    Import,
}

/// Progress through one input, reported after every batch of 4,096 records
/// and at its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being read.
    pub stage: Stage,
    /// Records read so far from this input.
    pub records: u64,
    /// Bytes read so far from this input.
    pub bytes: u64,
    /// True for the last report of the input.
    pub done: bool,
}

/// Where a parsed subject or event came from: the file's index among the
/// loader's inputs of that kind, and its line.
#[derive(Clone, Copy)]
struct Origin {
    file: u32,
    line: u64,
}

/// Fills an engine from bulk inputs, all or nothing, on behalf of an actor.
///
/// Each step takes the loader by value and returns it only on success, so a
/// failed step drops everything read so far. [`Loader::finish`] imports it
/// all in one call; the actor needs the `subjects` permission.
pub struct Loader<'a> {
    engine: Engine,
    actor: Actor,
    stats: LoadStats,
    progress: Option<Box<dyn FnMut(Progress) + 'a>>,
    subjects: Vec<SubjectRow>,
    subject_origins: Vec<Origin>,
    subject_files: Vec<(String, Layout)>,
    events: Vec<ConsentEvent>,
    event_origins: Vec<Origin>,
    event_files: Vec<String>,
    delimiter: u8,
}

impl fmt::Debug for Loader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("actor", &self.actor.id())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Reads and validates a policy file.
pub fn read_policy(path: &Path) -> Result<Policy, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Io {
        file: file.clone(),
        error,
    })?;
    Policy::from_json(&text).map_err(|error| LoadError::Policy { file, error })
}

/// Loads a subjects CSV file and an events JSONL file into a fresh engine,
/// on behalf of `actor`.
pub fn load_files(
    policy: Arc<Policy>,
    actor: Actor,
    subjects: &Path,
    events: &Path,
) -> Result<(Engine, LoadStats), LoadError> {
    Loader::new(policy, actor)
        .subjects_file(subjects)?
        .events_file(events)?
        .finish()
}

fn open(path: &Path) -> Result<BufReader<File>, LoadError> {
    File::open(path)
        .map(|f| BufReader::with_capacity(BUFFER, f))
        .map_err(|error| LoadError::Io {
            file: path.display().to_string(),
            error,
        })
}

impl<'a> Loader<'a> {
    /// A loader filling a fresh engine (with an in-memory audit log) for
    /// this policy, on behalf of `actor`.
    pub fn new(policy: Arc<Policy>, actor: Actor) -> Loader<'a> {
        Loader::with_engine(Engine::new(policy), actor)
    }

    /// A loader filling `engine` (for example one whose audit log is kept in
    /// a file) on behalf of `actor`. Subjects already in the engine stay;
    /// events may refer to them.
    pub fn with_engine(engine: Engine, actor: Actor) -> Loader<'a> {
        Loader {
            engine,
            actor,
            stats: LoadStats::default(),
            progress: None,
            subjects: Vec::new(),
            subject_origins: Vec::new(),
            subject_files: Vec::new(),
            events: Vec::new(),
            event_origins: Vec::new(),
            event_files: Vec::new(),
            delimiter: b',',
        }
    }

    /// The field delimiter of the subjects CSV inputs read after this call
    /// (`,` unless set; `b'\t'` for tab-separated files).
    pub fn delimiter(mut self, delimiter: u8) -> Loader<'a> {
        self.delimiter = delimiter;
        self
    }

    /// Calls `f` as inputs are read (after every batch of 4,096 records and
    /// at the end of each input) and around the final import.
    pub fn on_progress(mut self, f: impl FnMut(Progress) + 'a) -> Loader<'a> {
        self.progress = Some(Box::new(f));
        self
    }

    /// The counters so far.
    pub fn stats(&self) -> &LoadStats {
        &self.stats
    }

    fn report(&mut self, stage: Stage, records: u64, bytes: u64, done: bool) {
        if let Some(f) = &mut self.progress {
            f(Progress {
                stage,
                records,
                bytes,
                done,
            });
        }
    }

    /// Imports everything read into the engine in one call, and returns the
    /// engine and the counters. Nothing is imported if any row is refused;
    /// the error names its file and line.
    pub fn finish(mut self) -> Result<(Engine, LoadStats), LoadError> {
        let records = self.stats.subjects + self.stats.events;
        let bytes = self.stats.subject_bytes + self.stats.event_bytes;
        self.report(Stage::Import, 0, bytes, false);
        let start = Instant::now();
        let result = self
            .engine
            .import(&self.actor, &self.subjects, &self.events);
        self.stats.engine_time += start.elapsed();
        if let Err(e) = result {
            return Err(self.import_error(e));
        }
        self.report(Stage::Import, records, bytes, true);
        Ok((self.engine, self.stats))
    }

    /// Traces an import error back to the file, line and column it came from.
    fn import_error(&self, e: ImportError) -> LoadError {
        let ImportError { what, index, error } = e;
        match what {
            ImportItem::Subject if index < self.subject_origins.len() => {
                let origin = self.subject_origins[index];
                let (file, layout) = &self.subject_files[origin.file as usize];
                layout.engine_error(self.engine.policy(), file, origin.line, *error)
            }
            ImportItem::Event if index < self.event_origins.len() => {
                let origin = self.event_origins[index];
                let file = &self.event_files[origin.file as usize];
                event_error(file, origin.line, &self.events[index], *error)
            }
            _ => LoadError::Refused(error),
        }
    }

    /// Reads a subjects CSV file.
    pub fn subjects_file(self, path: &Path) -> Result<Loader<'a>, LoadError> {
        let r = open(path)?;
        self.subjects(&path.display().to_string(), r)
    }

    /// Reads consent events from a JSONL file.
    pub fn events_file(self, path: &Path) -> Result<Loader<'a>, LoadError> {
        let r = open(path)?;
        self.events(&path.display().to_string(), r)
    }

    /// Reads subjects from CSV text: a header row, then one row per subject.
    /// `name` names the input in errors.
    pub fn subjects<R: BufRead>(mut self, name: &str, reader: R) -> Result<Loader<'a>, LoadError> {
        let start = Instant::now();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(BUFFER)
            .delimiter(self.delimiter)
            .from_reader(reader);
        let mut header = csv::ByteRecord::new();
        if !rdr
            .read_byte_record(&mut header)
            .map_err(|e| csv_error(name, e))?
        {
            return Err(input(
                name,
                1,
                None,
                None,
                InputErrorKind::Header,
                "the file is empty: expected a header row naming the columns".into(),
            )
            .into());
        }
        let policy = self.engine.policy().clone();
        let layout = Layout::of(&policy, name, &header)?;
        let file = self.subject_files.len() as u32;
        let width = layout.names.len();
        let mut rec = csv::ByteRecord::new();
        let mut rows = 0u64;
        let mut values = 0u64;
        while rdr
            .read_byte_record(&mut rec)
            .map_err(|e| csv_error(name, e))?
        {
            let line = rec.position().map_or(0, |p| p.line());
            if rec.len() != width {
                if rec.len() == 1 && rec[0].is_empty() {
                    continue; // a blank line
                }
                return Err(input(
                    name,
                    line,
                    None,
                    None,
                    InputErrorKind::Syntax,
                    format!(
                        "expected {width} fields as in the header, found {}",
                        rec.len()
                    ),
                )
                .into());
            }
            let row = layout.parse_row(&policy, name, line, &rec)?;
            values += row.values.len() as u64;
            self.subjects.push(row);
            self.subject_origins.push(Origin { file, line });
            rows += 1;
            if rows.is_multiple_of(BATCH) {
                self.report(Stage::Subjects, rows, rdr.position().byte(), false);
            }
        }
        let bytes = rdr.position().byte();
        self.report(Stage::Subjects, rows, bytes, true);
        self.subject_files.push((name.to_string(), layout));
        self.stats.subjects += rows;
        self.stats.values += values;
        self.stats.subject_bytes += bytes;
        self.stats.subject_time += start.elapsed();
        Ok(self)
    }

    /// Reads consent events from JSON Lines text: one event object per line
    /// (blank lines are skipped). Events may come in any order; each takes
    /// effect by its own time. `name` names the input in errors.
    pub fn events<R: BufRead>(
        mut self,
        name: &str,
        mut reader: R,
    ) -> Result<Loader<'a>, LoadError> {
        let start = Instant::now();
        let file = self.event_files.len() as u32;
        let mut buf = Vec::with_capacity(1024);
        let mut line = 0u64;
        let mut bytes = 0u64;
        let mut count = 0u64;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|error| LoadError::Io {
                    file: name.into(),
                    error,
                })?;
            if n == 0 {
                break;
            }
            line += 1;
            bytes += n as u64;
            let text = trim_line(&buf);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.events.push(parse_event(name, line, text)?);
            self.event_origins.push(Origin { file, line });
            count += 1;
            if count.is_multiple_of(BATCH) {
                self.report(Stage::Events, count, bytes, false);
            }
        }
        self.report(Stage::Events, count, bytes, true);
        self.event_files.push(name.to_string());
        self.stats.events += count;
        self.stats.event_bytes += bytes;
        self.stats.event_time += start.elapsed();
        Ok(self)
    }
}

fn trim_line(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b'\n' | b'\r'] = b {
        b = rest;
    }
    b
}

fn input(
    file: &str,
    line: u64,
    column: Option<u64>,
    field: Option<&str>,
    kind: InputErrorKind,
    message: String,
) -> InputError {
    InputError {
        file: file.into(),
        line,
        column,
        field: field.map(Into::into),
        kind,
        message,
    }
}

fn csv_error(file: &str, e: csv::Error) -> LoadError {
    let line = e.position().map_or(0, |p| p.line());
    let message = format!("malformed CSV: {e}");
    match e.into_kind() {
        csv::ErrorKind::Io(error) => LoadError::Io {
            file: file.into(),
            error,
        },
        _ => input(file, line, None, None, InputErrorKind::Syntax, message).into(),
    }
}

/// Where each column of a subjects file goes.
struct Layout {
    id: usize,
    jurisdiction: usize,
    birth_date: usize,
    verified_at: usize,
    /// (column index, attribute name, type, id) for every policy attribute.
    attrs: Vec<(usize, String, AttrType, AttrId)>,
    names: Vec<String>,
}

impl Layout {
    fn of(policy: &Policy, file: &str, header: &csv::ByteRecord) -> Result<Layout, LoadError> {
        let line = header.position().map_or(1, |p| p.line());
        let mut names = Vec::with_capacity(header.len());
        for (i, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| {
                input(
                    file,
                    line,
                    Some(i as u64 + 1),
                    None,
                    InputErrorKind::Syntax,
                    "column name is not valid UTF-8".into(),
                )
            })?;
            let name = if i == 0 {
                name.trim_start_matches('\u{feff}')
            } else {
                name
            };
            names.push(name.to_string());
        }
        let header_err = |col: Option<usize>, field: Option<&str>, msg: String| {
            LoadError::from(input(
                file,
                line,
                col.map(|c| c as u64 + 1),
                field,
                InputErrorKind::Header,
                msg,
            ))
        };
        let mut slots: Vec<Option<usize>> = vec![None; FIXED_COLUMNS.len()];
        let mut attr_slots: Vec<Option<usize>> = vec![None; policy.attribute_count()];
        for (i, name) in names.iter().enumerate() {
            let slot = if let Some(k) = FIXED_COLUMNS.iter().position(|c| c == name) {
                &mut slots[k]
            } else if let Some(a) = policy.attr_id(name) {
                &mut attr_slots[a.0 as usize]
            } else {
                let attrs: Vec<&str> = (0..policy.attribute_count() as u32)
                    .map(|a| policy.attribute(AttrId(a)).name.as_str())
                    .collect();
                return Err(header_err(
                    Some(i),
                    Some(name),
                    format!(
                        "unknown column {name:?}: expected {} or a policy attribute ({})",
                        FIXED_COLUMNS.join(", "),
                        attrs.join(", ")
                    ),
                ));
            };
            if let Some(first) = *slot {
                return Err(header_err(
                    Some(i),
                    Some(name),
                    format!(
                        "column {name:?} appears twice (first as column {})",
                        first + 1
                    ),
                ));
            }
            *slot = Some(i);
        }
        let mut missing: Vec<&str> = FIXED_COLUMNS
            .iter()
            .zip(&slots)
            .filter(|(_, s)| s.is_none())
            .map(|(c, _)| *c)
            .collect();
        let mut attrs = Vec::with_capacity(attr_slots.len());
        for (a, slot) in attr_slots.iter().enumerate() {
            let spec = policy.attribute(AttrId(a as u32));
            match slot {
                Some(col) => attrs.push((*col, spec.name.clone(), spec.ty, AttrId(a as u32))),
                None => missing.push(&spec.name),
            }
        }
        if !missing.is_empty() {
            return Err(header_err(
                None,
                None,
                format!(
                    "missing column{} {}: the header needs {} and one column per policy attribute",
                    if missing.len() == 1 { "" } else { "s" },
                    missing.join(", "),
                    FIXED_COLUMNS.join(", ")
                ),
            ));
        }
        let [id, jurisdiction, birth_date, verified_at] =
            [0, 1, 2, 3].map(|k| slots[k].expect("checked above"));
        Ok(Layout {
            id,
            jurisdiction,
            birth_date,
            verified_at,
            attrs,
            names,
        })
    }

    fn error(
        &self,
        file: &str,
        line: u64,
        col: usize,
        kind: InputErrorKind,
        msg: String,
    ) -> LoadError {
        input(
            file,
            line,
            Some(col as u64 + 1),
            Some(&self.names[col]),
            kind,
            msg,
        )
        .into()
    }

    /// Parses and checks one row: everything but what only the engine can
    /// check (id rules, repeated ids, integer bounds).
    fn parse_row(
        &self,
        policy: &Policy,
        file: &str,
        line: u64,
        rec: &csv::ByteRecord,
    ) -> Result<SubjectRow, LoadError> {
        let err =
            |col: usize, kind: InputErrorKind, msg: String| self.error(file, line, col, kind, msg);
        let cell = |col: usize| -> Result<&str, LoadError> {
            std::str::from_utf8(&rec[col]).map_err(|_| {
                err(
                    col,
                    InputErrorKind::Syntax,
                    "the value is not valid UTF-8".into(),
                )
            })
        };
        let id = cell(self.id)?;
        let jurisdiction = cell(self.jurisdiction)?;
        if policy.jurisdiction_id(jurisdiction).is_none() {
            return Err(err(
                self.jurisdiction,
                InputErrorKind::Jurisdiction,
                format!(
                    "unknown jurisdiction {jurisdiction:?}: expected one the policy lists ({})",
                    jurisdictions(policy)
                ),
            ));
        }
        let birth = cell(self.birth_date)?;
        let birth_date = if birth.is_empty() {
            None
        } else {
            Some(
                parse_date(birth)
                    .map_err(|e| err(self.birth_date, InputErrorKind::Date, e.to_string()))?,
            )
        };
        let verified = cell(self.verified_at)?;
        let verified = if verified.is_empty() {
            None
        } else {
            Some(parse_time(verified).ok_or_else(|| {
                err(
                    self.verified_at,
                    InputErrorKind::Time,
                    format!(
                        "invalid time {verified:?}: expected an RFC 3339 time such as 2026-03-01T10:00:00Z"
                    ),
                )
            })?)
        };
        let mut values = Vec::new();
        for (col, attr, ty, a) in &self.attrs {
            let text = cell(*col)?;
            if text.is_empty() {
                continue;
            }
            let Some(verified) = verified else {
                return Err(err(
                    self.verified_at,
                    InputErrorKind::Time,
                    format!(
                        "the row has a value for {attr:?}, so it needs the time its values were verified"
                    ),
                ));
            };
            let value = match ty {
                AttrType::Categorical => {
                    if policy.value_index(*a, text).is_none() {
                        return Err(err(
                            *col,
                            InputErrorKind::Value,
                            format!(
                                "{text:?} is not a declared value of {attr:?}: expected one of {}",
                                policy.attribute(*a).values.join(", ")
                            ),
                        ));
                    }
                    Value::Str(text.into())
                }
                AttrType::Timestamp => {
                    if parse_time(text).is_none() {
                        return Err(err(
                            *col,
                            InputErrorKind::Time,
                            format!(
                                "invalid time {text:?}: expected an RFC 3339 time such as 2026-03-01T10:00:00Z"
                            ),
                        ));
                    }
                    Value::Str(text.into())
                }
                AttrType::Integer => Value::Int(text.parse().map_err(|_| {
                    err(
                        *col,
                        InputErrorKind::Value,
                        format!("expected an integer, got {text:?}"),
                    )
                })?),
                AttrType::Boolean => match text {
                    "true" => Value::Bool(true),
                    "false" => Value::Bool(false),
                    _ => {
                        return Err(err(
                            *col,
                            InputErrorKind::Value,
                            format!("expected true or false, got {text:?}"),
                        ));
                    }
                },
            };
            values.push((attr.clone(), value, verified));
        }
        Ok(SubjectRow {
            id: id.to_string(),
            jurisdiction: jurisdiction.to_string(),
            birth_date,
            values,
        })
    }

    /// An engine error about the subject on `line`, at its column.
    fn engine_error(&self, policy: &Policy, file: &str, line: u64, e: EngineError) -> LoadError {
        let err =
            |col: usize, kind: InputErrorKind, msg: String| self.error(file, line, col, kind, msg);
        match e {
            EngineError::UnknownJurisdiction { code, .. } => err(
                self.jurisdiction,
                InputErrorKind::Jurisdiction,
                format!(
                    "unknown jurisdiction {code:?}: expected one the policy lists ({})",
                    jurisdictions(policy)
                ),
            ),
            EngineError::DuplicateSubject(id) => err(
                self.id,
                InputErrorKind::Id,
                format!("subject {id:?} appears on an earlier row"),
            ),
            EngineError::Value(v) => match self.attrs.iter().find(|a| a.1 == v.attr) {
                Some((col, _, ty, _)) => {
                    let kind = if *ty == AttrType::Timestamp {
                        InputErrorKind::Time
                    } else {
                        InputErrorKind::Value
                    };
                    err(*col, kind, v.problem)
                }
                None => err(self.id, InputErrorKind::Value, v.to_string()),
            },
            other => err(self.id, InputErrorKind::Id, other.to_string()),
        }
    }
}

fn jurisdictions(policy: &Policy) -> String {
    let codes: Vec<&str> = policy
        .spec()
        .jurisdictions
        .iter()
        .map(|j| j.code.as_str())
        .collect();
    codes.join(", ")
}

/// Parses an RFC 3339 time.
fn parse_time(text: &str) -> Option<Timestamp> {
    Timestamp::parse(text).ok()
}

/// One line of an events file, borrowing from the line where it can.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEvent<'a> {
    #[serde(borrow)]
    subject: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    purpose: Option<Cow<'a, str>>,
    #[serde(borrow)]
    at: Cow<'a, str>,
    #[serde(borrow, default)]
    notice_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    notice_sha256: Option<Cow<'a, str>>,
    #[serde(borrow)]
    channel: Cow<'a, str>,
    #[serde(borrow)]
    collector: Cow<'a, str>,
    #[serde(borrow, default)]
    expires_at: Option<Cow<'a, str>>,
    #[serde(default)]
    explicit: bool,
    #[serde(borrow, default)]
    evidence_sha256: Option<Cow<'a, str>>,
}

/// Parses one JSON line into an event.
fn parse_event(file: &str, line: u64, text: &[u8]) -> Result<ConsentEvent, LoadError> {
    let raw: RawEvent<'_> = serde_json::from_slice(text).map_err(|e| {
        let msg = e.to_string();
        // serde_json appends " at line L column C"; the position is reported apart.
        let msg = msg
            .rfind(" at line ")
            .map_or(msg.as_str(), |i| &msg[..i])
            .to_string();
        input(
            file,
            line,
            Some(e.column() as u64),
            None,
            InputErrorKind::Syntax,
            format!("malformed event: {msg}; expected one JSON object per line"),
        )
    })?;
    let field_err = |field: &str, kind: InputErrorKind, msg: String| {
        LoadError::from(input(file, line, None, Some(field), kind, msg))
    };
    let time = |field: &str, s: &str| {
        parse_time(s).ok_or_else(|| {
            field_err(
                field,
                InputErrorKind::Time,
                format!(
                    "invalid time {s:?}: expected an RFC 3339 time such as 2026-03-01T10:00:00Z"
                ),
            )
        })
    };
    let kind = EventKind::parse(&raw.kind).ok_or_else(|| {
        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        field_err(
            "kind",
            InputErrorKind::UnknownEventKind,
            format!(
                "unknown event kind {:?}: expected one of {}",
                raw.kind,
                kinds.join(", ")
            ),
        )
    })?;
    let at = time("at", &raw.at)?;
    let expires_at = match &raw.expires_at {
        Some(s) => Some(time("expires_at", s)?),
        None => None,
    };
    Ok(ConsentEvent {
        subject: raw.subject.into_owned(),
        kind,
        purpose: raw.purpose.map(Cow::into_owned),
        at,
        notice_version: raw.notice_version.map(Cow::into_owned),
        notice_sha256: raw.notice_sha256.map(Cow::into_owned),
        channel: raw.channel.into_owned(),
        collector: raw.collector.into_owned(),
        expires_at,
        explicit: raw.explicit,
        evidence_sha256: raw.evidence_sha256.map(Cow::into_owned),
    })
}

fn event_error(file: &str, line: u64, event: &ConsentEvent, e: EngineError) -> LoadError {
    let (field, kind, msg) = match e {
        EngineError::UnknownSubject(id) => (
            "subject",
            InputErrorKind::UnknownSubject,
            format!(
                "unknown subject {id:?}: every event must refer to a subject in the subjects file"
            ),
        ),
        EngineError::Event(EventError::UnknownPurpose { purpose, .. }) => (
            "purpose",
            InputErrorKind::UnknownPurpose,
            format!("unknown purpose {purpose:?}: expected a purpose key of the policy"),
        ),
        EngineError::Event(EventError::Field { field, problem, .. }) => (
            field,
            InputErrorKind::Event,
            format!("{} event: {problem}", event.kind.as_str()),
        ),
        other => ("subject", InputErrorKind::Event, other.to_string()),
    };
    input(file, line, None, Some(field), kind, msg).into()
}
