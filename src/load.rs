//! Streaming bulk loaders: a policy from its JSON file, subjects from CSV and
//! consent events from JSON Lines (the formats are described in
//! `docs/formats.md`); with the feature `arrow`, subjects and events also
//! from Arrow record batches and Parquet files (`Loader::subjects_arrow`...).
//!
//! Loading is all or nothing. A [`Loader`] reads and checks every input as a
//! stream of chunks parsed on every core, staging the subjects and events
//! column-wise in the form the store keeps them, and [`Loader::finish`]
//! writes them into the engine in one step made by the loader's [`Actor`]:
//! one audit entry for the whole load (as one [`Engine::import`] call would
//! make), one transaction for a durable store, and nothing changed unless
//! every row was accepted. On the first bad row the error
//! says which file, line, column or field was wrong and what was expected;
//! errors that only the engine can find (a repeated id, a value outside its
//! bounds, an event for an unknown subject...) are traced back to their file
//! and line the same way.
//!
//! Inputs are read as streams, a chunk of whole records at a time: a file is
//! never read whole into memory. What is staged costs about what the loaded
//! engine holds: ids in one arena, values as the store's codes, events as
//! the store's records.
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

#[cfg(feature = "arrow")]
pub mod arrow;
mod chunk;

use std::borrow::Cow;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::prelude::*;
use serde::Deserialize;
use time::Date;

use crate::access::{Actor, Permission};
use crate::consent::{
    ConsentEvent, EventError, EventKind, EventRecord, Interner, Proof, check_event,
};
use crate::engine::{Engine, EngineError};
use crate::import::Staged;
use crate::policy::{AttrId, AttrType, JurisdictionId, Policy, PolicyError};
use crate::store::{BulkEvents, BulkSubjects, Store, Value};
use crate::timestamp::Timestamp;
use crate::timestamp::parse_date;
use chunk::{Chunk, Chunker};

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

/// Bytes of input parsed per task unless set with [`Loader::chunk_bytes`].
const CHUNK: usize = 256 << 10;

/// A subjects file's error that only fails the load at [`Loader::finish`]
/// (one the engine's import would find: a repeated id, an id or birth date
/// it refuses, a value outside its bounds), found while reading.
struct Deferred {
    /// Where, for a value error: after the repeated-id check of its row.
    line: u64,
    id: String,
    after_duplicate: bool,
    error: LoadError,
}

/// An event whose subject was not loaded yet when it was read: resolved at
/// [`Loader::finish`], against every subject loaded by then.
struct PendingEvent {
    /// Its place among the staged events (a placeholder holds it).
    slot: usize,
    /// Its place among every event read.
    ordinal: u64,
    event: ConsentEvent,
    file: String,
    line: u64,
}

/// Fills an engine from bulk inputs, all or nothing, on behalf of an actor.
///
/// Inputs are read a chunk of records at a time and each batch of chunks is
/// parsed and checked on every core; what passes is staged column-wise (ids
/// in one arena, values as the store's codes, events as the store's
/// records), in the form the store keeps, so staging costs about what the
/// loaded engine will hold. Each step takes the loader by value and returns
/// it only on success, so a failed step drops everything read so far.
/// [`Loader::finish`] writes it all in one [`Engine::commit`]-like step made
/// by the loader's actor, who needs the `subjects` permission: one audit
/// entry, one transaction for a durable store, and nothing changed unless
/// every row was accepted.
pub struct Loader<'a> {
    engine: Engine,
    actor: Actor,
    stats: LoadStats,
    progress: Option<Box<dyn FnMut(Progress) + 'a>>,
    delimiter: u8,
    chunk: usize,
    staged: Staged,
    /// The first subject error the import would refuse.
    deferred_subjects: Option<LoadError>,
    /// The first event error the import would refuse, with its ordinal.
    deferred_events: Option<(u64, LoadError)>,
    pending: Vec<PendingEvent>,
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

/// Chunks parsed together: two per thread.
fn batch_chunks() -> usize {
    2 * rayon::current_num_threads().max(1)
}

/// Parses `batch` on the thread pool while the calling thread reads the
/// next batch from `chunks` (the reader need not be `Send`): reading, most
/// of it the kernel's copy out of the page cache, is then no longer a
/// serial step between batches. Returns the parsed chunks in order and the
/// next batch (empty at the end of the input).
fn parse_while_reading<T: Send, R: BufRead>(
    batch: &[Chunk],
    parse: impl Fn(usize, &Chunk) -> T + Sync,
    chunks: &mut Chunker<R>,
    target: usize,
) -> (Vec<T>, Result<Vec<Chunk>, LoadError>) {
    let mut parsed = Vec::new();
    let next = rayon::in_place_scope(|s| {
        s.spawn(|_| {
            parsed = batch
                .par_iter()
                .enumerate()
                .map(|(k, c)| parse(k, c))
                .collect();
        });
        chunks.batch(batch_chunks(), target)
    });
    (parsed, next)
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
            staged: Staged::new(&engine),
            engine,
            actor,
            stats: LoadStats::default(),
            progress: None,
            delimiter: b',',
            chunk: CHUNK,
            deferred_subjects: None,
            deferred_events: None,
            pending: Vec::new(),
        }
    }

    /// The field delimiter of the subjects CSV inputs read after this call
    /// (`,` unless set; `b'\t'` for tab-separated files).
    pub fn delimiter(mut self, delimiter: u8) -> Loader<'a> {
        self.delimiter = delimiter;
        self
    }

    /// Bytes of input parsed per task (256 KiB unless set; at least 1).
    /// Inputs are cut at record boundaries into chunks of about this size,
    /// parsed on every core; the result, errors included, does not depend on
    /// it.
    pub fn chunk_bytes(mut self, bytes: usize) -> Loader<'a> {
        self.chunk = bytes.max(1);
        self
    }

    /// Calls `f` as inputs are read (after every batch of 4,096 records or
    /// more, and at the end of each input) and around the final import.
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

    /// Reports progress after a chunk if another batch of records is done.
    fn report_chunk(&mut self, stage: Stage, before: u64, after: u64, bytes: u64) {
        if before / BATCH != after / BATCH {
            self.report(stage, after, bytes, false);
        }
    }

    /// Imports everything read into the engine in one step, and returns the
    /// engine and the counters. Nothing is imported if any row is refused;
    /// the error names its file and line.
    pub fn finish(mut self) -> Result<(Engine, LoadStats), LoadError> {
        let records = self.stats.subjects + self.stats.events;
        let bytes = self.stats.subject_bytes + self.stats.event_bytes;
        self.report(Stage::Import, 0, bytes, false);
        let start = Instant::now();
        self.engine
            .allow(&self.actor, Permission::Subjects, None)
            .map_err(|e| LoadError::Refused(Box::new(e)))?;
        if let Some(e) = self.deferred_subjects.take() {
            return Err(e);
        }
        self.resolve_pending()?;
        if let Some((_, e)) = self.deferred_events.take() {
            return Err(e);
        }
        let staged = std::mem::replace(&mut self.staged, Staged::new(&self.engine));
        self.engine
            .commit_import(&self.actor, staged)
            .map_err(|e| LoadError::Refused(Box::new(e)))?;
        self.stats.engine_time += start.elapsed();
        self.report(Stage::Import, records, bytes, true);
        Ok((self.engine, self.stats))
    }

    /// Resolves the events read before their subject, in reading order;
    /// the first that fails (or the first deferred event error, if
    /// earlier) is the load's error.
    fn resolve_pending(&mut self) -> Result<(), LoadError> {
        let now = self.engine.now();
        for p in std::mem::take(&mut self.pending) {
            if self
                .deferred_events
                .as_ref()
                .is_some_and(|(o, _)| *o < p.ordinal)
            {
                break;
            }
            let store = self.engine.store();
            let checked = match self.staged.row(store, &p.event.subject) {
                None => Err(EngineError::UnknownSubject(p.event.subject.clone())),
                Some(row) => {
                    let ctx = self.staged.context(store, row, now);
                    let policy = self.engine.policy();
                    check_event(policy, &p.event, &ctx, &mut self.staged.strings)
                        .map(|(rec, proof)| (row, rec, proof))
                        .map_err(EngineError::from)
                }
            };
            match checked {
                Ok((row, rec, proof)) => self.staged.fill_event(p.slot, row, rec, proof),
                Err(e) => return Err(event_error(&p.file, p.line, &p.event, e)),
            }
        }
        Ok(())
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
        let mut chunks = Chunker::new(reader, name, Some(self.delimiter));
        let (layout, first) = self.header(name, &mut chunks)?;
        let mut tally = Tally::default();
        let mut batch = vec![first];
        let mut header_chunk = true;
        while !batch.is_empty() {
            let next =
                self.subject_batch(name, &layout, &batch, &mut tally, header_chunk, &mut chunks)?;
            header_chunk = false;
            chunks.recycle(std::mem::replace(&mut batch, next));
        }
        self.report(Stage::Subjects, tally.records, tally.bytes, true);
        self.stats.subjects += tally.records;
        self.stats.values += tally.values;
        self.stats.subject_bytes += tally.bytes;
        self.stats.subject_time += start.elapsed();
        Ok(self)
    }

    /// Reads the header row (skipping blank lines before it): the layout,
    /// and the chunk holding the header (whose rows, if it has more, are
    /// parsed after it).
    fn header<R: BufRead>(
        &self,
        name: &str,
        chunks: &mut Chunker<R>,
    ) -> Result<(Layout, Chunk), LoadError> {
        loop {
            let Some(chunk) = chunks.next(1)? else {
                return Err(input(
                    name,
                    1,
                    None,
                    None,
                    InputErrorKind::Header,
                    "the file is empty: expected a header row naming the columns".into(),
                )
                .into());
            };
            let mut rdr = csv_reader(&chunk.bytes, self.delimiter);
            let mut header = csv::ByteRecord::new();
            if rdr
                .read_byte_record(&mut header)
                .map_err(|e| csv_error(name, chunk.line0, e))?
            {
                let line = LineCursor::new(&chunk).line_of(&header);
                let layout = Layout::of(self.engine.policy(), name, line, &header)?;
                return Ok((layout, chunk));
            }
        }
    }

    /// Parses and checks a batch of chunks of a subjects file on every
    /// core while this thread reads the next batch, then stages their rows
    /// in order. Returns the next batch.
    fn subject_batch<R: BufRead>(
        &mut self,
        name: &str,
        layout: &Layout,
        batch: &[Chunk],
        tally: &mut Tally,
        header_first: bool,
        chunks: &mut Chunker<R>,
    ) -> Result<Vec<Chunk>, LoadError> {
        let target = self.chunk;
        let ctx = RowContext {
            policy: self.engine.policy(),
            file: name,
            layout,
            delimiter: self.delimiter,
            today: self.engine.now().date(),
            stage: self.deferred_subjects.is_none(),
        };
        let (parsed, next) = parse_while_reading(
            batch,
            |k, c| ctx.parse_chunk(c, header_first && k == 0),
            chunks,
            target,
        );
        for (c, out) in batch.iter().zip(parsed) {
            let before = tally.records;
            tally.records += out.records;
            tally.values += out.values;
            tally.bytes = c.end;
            self.stage_subjects(layout, name, out)?;
            self.report_chunk(Stage::Subjects, before, tally.records, c.end);
        }
        // An error in this batch comes before any reading the next one hit.
        next
    }

    /// Stages a parsed chunk's rows (unless an earlier error already fails
    /// the load) and keeps the first deferred error; returns its syntax
    /// error, if any.
    fn stage_subjects(
        &mut self,
        layout: &Layout,
        name: &str,
        out: SubjectChunk,
    ) -> Result<(), LoadError> {
        if self.deferred_subjects.is_none() {
            let policy = self.engine.policy();
            let store = self.engine.store();
            let err = |line, e| layout.engine_error(policy, name, line, e);
            self.deferred_subjects = match self.staged.append_subjects(store, out.rows) {
                Err((k, e)) => Some(err(out.lines[k], e)),
                Ok(()) => out.deferred.map(|d| {
                    if d.after_duplicate && self.staged.is_known(store, &d.id) {
                        err(d.line, EngineError::DuplicateSubject(d.id))
                    } else {
                        d.error
                    }
                }),
            };
        }
        out.failed.map_or(Ok(()), Err)
    }

    /// Reads consent events from JSON Lines text: one event object per line
    /// (blank lines are skipped). Events may come in any order; each takes
    /// effect by its own time. `name` names the input in errors.
    pub fn events<R: BufRead>(mut self, name: &str, reader: R) -> Result<Loader<'a>, LoadError> {
        let start = Instant::now();
        let mut chunks = Chunker::new(reader, name, None);
        let mut tally = Tally::default();
        let mut batch = chunks.batch(batch_chunks(), self.chunk)?;
        while !batch.is_empty() {
            let next = self.event_batch(name, &batch, &mut tally, &mut chunks)?;
            chunks.recycle(std::mem::replace(&mut batch, next));
        }
        self.report(Stage::Events, tally.records, tally.bytes, true);
        self.stats.events += tally.records;
        self.stats.event_bytes += tally.bytes;
        self.stats.event_time += start.elapsed();
        Ok(self)
    }

    /// Parses, resolves and checks a batch of chunks of an events file on
    /// every core while this thread reads the next batch, then stages their
    /// events in order. Returns the next batch.
    fn event_batch<R: BufRead>(
        &mut self,
        name: &str,
        batch: &[Chunk],
        tally: &mut Tally,
        chunks: &mut Chunker<R>,
    ) -> Result<Vec<Chunk>, LoadError> {
        let target = self.chunk;
        let ctx = EventChunkContext {
            policy: self.engine.policy(),
            store: self.engine.store(),
            staged: &self.staged,
            file: name,
            now: self.engine.now(),
            stage: self.deferred_subjects.is_none() && self.deferred_events.is_none(),
        };
        let (parsed, next) = parse_while_reading(batch, |_, c| ctx.parse_chunk(c), chunks, target);
        for (c, out) in batch.iter().zip(parsed) {
            let before = tally.records;
            tally.bytes = c.end;
            let failed = self.stage_events(name, out, &mut tally.records);
            self.report_chunk(Stage::Events, before, tally.records, c.end);
            failed?;
        }
        next
    }

    /// Stages a parsed chunk's events: their interned strings renumbered
    /// into the staged ones, placeholders for the events whose subject is
    /// not loaded yet. Returns the chunk's syntax error, if any.
    fn stage_events(
        &mut self,
        name: &str,
        out: EventChunk,
        records: &mut u64,
    ) -> Result<(), LoadError> {
        let ordinal0 = self.stats.events + *records;
        *records += out.records;
        if self.deferred_events.is_none() && self.deferred_subjects.is_none() {
            let slot0 = self.staged.events.len();
            self.staged
                .append_events(out.events, &out.strings, out.strings_base);
            for (slot, ordinal, event, line) in out.pending {
                self.pending.push(PendingEvent {
                    slot: slot0 + slot,
                    ordinal: ordinal0 + ordinal,
                    event,
                    file: name.to_string(),
                    line,
                });
            }
            self.deferred_events = out.deferred.map(|(o, e)| (ordinal0 + o, e));
        }
        out.failed.map_or(Ok(()), Err)
    }
}

/// Counters of one input.
#[derive(Default)]
struct Tally {
    records: u64,
    values: u64,
    bytes: u64,
}

fn csv_reader(bytes: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(bytes)
}

/// What parsing a chunk of a subjects file needs.
struct RowContext<'c> {
    policy: &'c Policy,
    file: &'c str,
    layout: &'c Layout,
    delimiter: u8,
    today: Date,
    /// Stage the rows (false once the load is known to fail: the rest of
    /// the file is only checked for syntax errors).
    stage: bool,
}

/// A chunk of a subjects file, parsed and checked.
struct SubjectChunk {
    /// The rows before the first deferred error, and their lines.
    rows: BulkSubjects,
    lines: Vec<u64>,
    records: u64,
    values: u64,
    deferred: Option<Deferred>,
    /// The first syntax error: the rows after it are not read.
    failed: Option<LoadError>,
}

impl SubjectChunk {
    /// An empty chunk for a policy of `attributes` attributes.
    fn new(attributes: usize) -> SubjectChunk {
        SubjectChunk {
            rows: BulkSubjects::new(attributes),
            lines: Vec::new(),
            records: 0,
            values: 0,
            deferred: None,
            failed: None,
        }
    }
}

impl RowContext<'_> {
    /// Counts a parsed row of line `line` and, when staging and no engine
    /// error is deferred yet, checks it as the engine would and stages it
    /// (or defers the error).
    fn take_row(
        &self,
        out: &mut SubjectChunk,
        line: u64,
        row: &ParsedRow<'_>,
        values: &[(AttrId, i64, Timestamp)],
    ) {
        out.records += 1;
        out.values += values.len() as u64;
        if self.stage && out.deferred.is_none() {
            match self.layout.check_row(self, line, row, values) {
                Ok(()) => {
                    out.rows.push(row.id, row.jurisdiction, row.birth_date);
                    for (a, code, verified) in values {
                        out.rows.set(*a, *code, *verified);
                    }
                    out.lines.push(line);
                }
                Err(d) => out.deferred = Some(d),
            }
        }
    }
}

impl RowContext<'_> {
    /// Parses a chunk (skipping its first record, the header, if asked).
    fn parse_chunk(&self, chunk: &Chunk, skip_header: bool) -> SubjectChunk {
        let mut out = SubjectChunk::new(self.policy.attribute_count());
        let mut rdr = csv_reader(&chunk.bytes, self.delimiter);
        let mut rec = csv::ByteRecord::new();
        let mut values = Vec::new();
        let mut skip = skip_header;
        let mut lines = LineCursor::new(chunk);
        let width = self.layout.names.len();
        loop {
            match rdr.read_byte_record(&mut rec) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    out.failed = Some(csv_error(self.file, chunk.line0, e));
                    break;
                }
            }
            if std::mem::take(&mut skip) {
                continue;
            }
            let line = lines.line_of(&rec);
            if rec.len() != width {
                if rec.len() == 1 && rec[0].is_empty() {
                    continue; // a blank line
                }
                out.failed = Some(wrong_width(self.file, line, width, rec.len()));
                break;
            }
            let row = match self
                .layout
                .parse_row(self.policy, self.file, line, &rec, &mut values)
            {
                Ok(row) => row,
                Err(e) => {
                    out.failed = Some(e);
                    break;
                }
            };
            self.take_row(&mut out, line, &row, &values);
        }
        out
    }
}

/// The line each record of a chunk starts on, counted forward through the
/// chunk. (The CSV parser's own line count is taken before the line break
/// that ends a CRLF line and before blank lines, so it can lag behind.)
struct LineCursor<'b> {
    bytes: &'b [u8],
    pos: usize,
    line: u64,
}

impl<'b> LineCursor<'b> {
    fn new(chunk: &'b Chunk) -> LineCursor<'b> {
        LineCursor {
            bytes: &chunk.bytes,
            pos: 0,
            line: chunk.line0 + 1,
        }
    }

    /// The line of the record's first byte (records come in order).
    fn line_of(&mut self, rec: &csv::ByteRecord) -> u64 {
        let b = self.bytes;
        let mut start = rec
            .position()
            .map_or(self.pos, |p| p.byte() as usize)
            .min(b.len());
        while start < b.len() && (b[start] == b'\n' || b[start] == b'\r') {
            start += 1;
        }
        if start > self.pos {
            self.line += b[self.pos..start].iter().filter(|&&c| c == b'\n').count() as u64;
            self.pos = start;
        }
        self.line
    }
}

fn wrong_width(file: &str, line: u64, width: usize, found: usize) -> LoadError {
    input(
        file,
        line,
        None,
        None,
        InputErrorKind::Syntax,
        format!("expected {width} fields as in the header, found {found}"),
    )
    .into()
}

/// What parsing a chunk of an events file needs.
struct EventChunkContext<'c> {
    policy: &'c Policy,
    store: &'c Store,
    staged: &'c Staged,
    file: &'c str,
    now: Timestamp,
    /// Resolve, check and stage the events (false once the load is known
    /// to fail: the rest of the file is only checked for syntax errors).
    stage: bool,
}

/// A chunk of an events file, parsed and checked.
struct EventChunk {
    /// The events before the first deferred error (placeholders for those
    /// whose subject is not loaded yet).
    events: BulkEvents,
    /// The staged strings when the chunk was parsed, and those it added.
    strings: Interner,
    strings_base: usize,
    /// (slot, ordinal in the chunk, event, line) of each placeholder.
    pending: Vec<(usize, u64, ConsentEvent, u64)>,
    /// The first event the import would refuse: its ordinal in the chunk.
    deferred: Option<(u64, LoadError)>,
    records: u64,
    /// The first syntax error: the lines after it are not read.
    failed: Option<LoadError>,
}

impl EventChunkContext<'_> {
    fn parse_chunk(&self, chunk: &Chunk) -> EventChunk {
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
        let mut line = chunk.line0;
        let mut event = blank_event();
        for text in chunk.bytes.split_inclusive(|&b| b == b'\n') {
            line += 1;
            let text = trim_line(text);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if let Err(e) = parse_event(self.file, line, text, &mut event) {
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

    /// Resolves and checks one event into the chunk's staged events.
    fn stage_event(&self, out: &mut EventChunk, event: &ConsentEvent, line: u64) {
        let ordinal = out.records - 1;
        let Some(row) = self.staged.row(self.store, &event.subject) else {
            let slot = out.events.len();
            out.events.rows.push(u32::MAX);
            out.events.recs.push(placeholder(event));
            out.events.proofs.push(Proof {
                channel: u32::MAX,
                collector: u32::MAX,
                notice_sha256: None,
                evidence_sha256: None,
            });
            out.pending.push((slot, ordinal, event.clone(), line));
            return;
        };
        let ctx = self.staged.context(self.store, row, self.now);
        match check_event(self.policy, event, &ctx, &mut out.strings) {
            Ok((rec, proof)) => {
                out.events.rows.push(row);
                out.events.recs.push(rec);
                out.events.proofs.push(proof);
            }
            Err(e) => {
                let e = event_error(self.file, line, event, e.into());
                out.deferred = Some((ordinal, e));
            }
        }
    }
}

/// A stand-in for an event resolved at [`Loader::finish`].
fn placeholder(e: &ConsentEvent) -> EventRecord {
    EventRecord {
        at: e.at.unix(),
        seq: 0,
        expires_at: i64::MAX,
        purpose: None,
        notice: u32::MAX,
        proof: 0,
        kind: e.kind,
        explicit: false,
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

/// A CSV error in a chunk whose first line is `line0 + 1`.
fn csv_error(file: &str, line0: u64, e: csv::Error) -> LoadError {
    let line = line0 + e.position().map_or(1, |p| p.line());
    let message = format!("malformed CSV: {e}");
    match e.into_kind() {
        csv::ErrorKind::Io(error) => LoadError::Io {
            file: file.into(),
            error,
        },
        _ => input(file, line, None, None, InputErrorKind::Syntax, message).into(),
    }
}

/// The column names of a header row (a byte order mark before the first
/// is dropped).
fn header_names(file: &str, line: u64, header: &csv::ByteRecord) -> Result<Vec<String>, LoadError> {
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
    Ok(names)
}

fn unknown_column(policy: &Policy, name: &str) -> String {
    let attrs: Vec<&str> = (0..policy.attribute_count() as u32)
        .map(|a| policy.attribute(AttrId(a)).name.as_str())
        .collect();
    format!(
        "unknown column {name:?}: expected {} or a policy attribute ({})",
        FIXED_COLUMNS.join(", "),
        attrs.join(", ")
    )
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
    fn of(
        policy: &Policy,
        file: &str,
        line: u64,
        header: &csv::ByteRecord,
    ) -> Result<Layout, LoadError> {
        let names = header_names(file, line, header)?;
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
                return Err(header_err(
                    Some(i),
                    Some(name),
                    unknown_column(policy, name),
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

    /// A cell as text.
    fn cell<'r>(
        &self,
        file: &str,
        line: u64,
        rec: &'r csv::ByteRecord,
        col: usize,
    ) -> Result<&'r str, LoadError> {
        std::str::from_utf8(&rec[col]).map_err(|_| {
            self.error(
                file,
                line,
                col,
                InputErrorKind::Syntax,
                "the value is not valid UTF-8".into(),
            )
        })
    }

    /// Parses one row: the fixed columns, then the values (encoded, into
    /// `values`). Checks everything but what the engine's import checks
    /// (id rules, birth date range, repeated ids, integer bounds: see
    /// [`Layout::check_row`]).
    fn parse_row<'r>(
        &self,
        policy: &Policy,
        file: &str,
        line: u64,
        rec: &'r csv::ByteRecord,
        values: &mut Vec<(AttrId, i64, Timestamp)>,
    ) -> Result<ParsedRow<'r>, LoadError> {
        let row = self.parse_fixed(policy, file, line, rec)?;
        values.clear();
        for (col, attr, ty, a) in &self.attrs {
            let text = self.cell(file, line, rec, *col)?;
            if text.is_empty() {
                continue;
            }
            let Some(verified) = row.verified else {
                return Err(self.error(
                    file,
                    line,
                    self.verified_at,
                    InputErrorKind::Time,
                    format!(
                        "the row has a value for {attr:?}, so it needs the time its values were verified"
                    ),
                ));
            };
            let code = parse_value(policy, *a, attr, *ty, text)
                .map_err(|(kind, msg)| self.error(file, line, *col, kind, msg))?;
            values.push((*a, code, verified));
        }
        Ok(row)
    }

    /// Parses the id, jurisdiction, birth date and verification time.
    fn parse_fixed<'r>(
        &self,
        policy: &Policy,
        file: &str,
        line: u64,
        rec: &'r csv::ByteRecord,
    ) -> Result<ParsedRow<'r>, LoadError> {
        let err =
            |col: usize, kind: InputErrorKind, msg: String| self.error(file, line, col, kind, msg);
        let id = self.cell(file, line, rec, self.id)?;
        let code = self.cell(file, line, rec, self.jurisdiction)?;
        let jurisdiction = policy.jurisdiction_id(code).ok_or_else(|| {
            err(
                self.jurisdiction,
                InputErrorKind::Jurisdiction,
                format!(
                    "unknown jurisdiction {code:?}: expected one the policy lists ({})",
                    jurisdictions(policy)
                ),
            )
        })?;
        let birth = self.cell(file, line, rec, self.birth_date)?;
        let birth_date = if birth.is_empty() {
            None
        } else {
            Some(
                parse_date(birth)
                    .map_err(|e| err(self.birth_date, InputErrorKind::Date, e.to_string()))?,
            )
        };
        let verified = self.cell(file, line, rec, self.verified_at)?;
        let verified =
            if verified.is_empty() {
                None
            } else {
                Some(parse_time(verified).ok_or_else(|| {
                    err(self.verified_at, InputErrorKind::Time, bad_time(verified))
                })?)
            };
        Ok(ParsedRow {
            id,
            jurisdiction,
            birth_date,
            verified,
        })
    }

    /// The checks the engine's import makes of a parsed row, in its order:
    /// the id and birth date, then (after the repeated-id check, made when
    /// the row is staged) the integer bounds.
    fn check_row(
        &self,
        ctx: &RowContext<'_>,
        line: u64,
        row: &ParsedRow<'_>,
        values: &[(AttrId, i64, Timestamp)],
    ) -> Result<(), Deferred> {
        let deferred = |after_duplicate, e| Deferred {
            line,
            id: row.id.to_string(),
            after_duplicate,
            error: self.engine_error(ctx.policy, ctx.file, line, e),
        };
        crate::engine::check_subject(row.id, row.birth_date, ctx.today)
            .map_err(|e| deferred(false, e))?;
        for (a, code, _) in values {
            if ctx.policy.attribute(*a).ty == AttrType::Integer {
                Store::encode(ctx.policy, *a, &Value::Int(*code))
                    .map_err(|e| deferred(true, e.into()))?;
            }
        }
        Ok(())
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

/// A subject row's fixed columns, parsed.
struct ParsedRow<'r> {
    id: &'r str,
    jurisdiction: JurisdictionId,
    birth_date: Option<Date>,
    verified: Option<Timestamp>,
}

fn bad_time(text: &str) -> String {
    format!("invalid time {text:?}: expected an RFC 3339 time such as 2026-03-01T10:00:00Z")
}

/// Parses and encodes one value for its attribute (as [`Store::encode`]
/// would, but for integer bounds); on failure, the error's class and text.
fn parse_value(
    policy: &Policy,
    a: AttrId,
    attr: &str,
    ty: AttrType,
    text: &str,
) -> Result<i64, (InputErrorKind, String)> {
    match ty {
        AttrType::Categorical => policy.value_index(a, text).map(i64::from).ok_or_else(|| {
            (
                InputErrorKind::Value,
                format!(
                    "{text:?} is not a declared value of {attr:?}: expected one of {}",
                    policy.attribute(a).values.join(", ")
                ),
            )
        }),
        AttrType::Timestamp => parse_time(text)
            .map(|t| t.unix())
            .ok_or_else(|| (InputErrorKind::Time, bad_time(text))),
        AttrType::Integer => text.parse().map_err(|_| {
            (
                InputErrorKind::Value,
                format!("expected an integer, got {text:?}"),
            )
        }),
        AttrType::Boolean => match text {
            "true" => Ok(1),
            "false" => Ok(0),
            _ => Err((
                InputErrorKind::Value,
                format!("expected true or false, got {text:?}"),
            )),
        },
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

/// Parses one JSON line into an event, reusing `into`'s strings.
fn parse_event(
    file: &str,
    line: u64,
    text: &[u8],
    into: &mut ConsentEvent,
) -> Result<(), LoadError> {
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
    let kind = parse_kind(file, line, &raw.kind)?;
    let at = time("at", &raw.at)?;
    let expires_at = match &raw.expires_at {
        Some(s) => Some(time("expires_at", s)?),
        None => None,
    };
    // The strings go into `into`'s own buffers: no allocation per event
    // once they are large enough.
    set(&mut into.subject, &raw.subject);
    set(&mut into.channel, &raw.channel);
    set(&mut into.collector, &raw.collector);
    set_opt(&mut into.purpose, raw.purpose.as_deref());
    set_opt(&mut into.notice_version, raw.notice_version.as_deref());
    set_opt(&mut into.notice_sha256, raw.notice_sha256.as_deref());
    set_opt(&mut into.evidence_sha256, raw.evidence_sha256.as_deref());
    into.kind = kind;
    into.at = at;
    into.expires_at = expires_at;
    into.explicit = raw.explicit;
    Ok(())
}

/// An event's kind from its name.
fn parse_kind(file: &str, line: u64, text: &str) -> Result<EventKind, LoadError> {
    EventKind::parse(text).ok_or_else(|| {
        let kinds: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        LoadError::from(input(
            file,
            line,
            None,
            Some("kind"),
            InputErrorKind::UnknownEventKind,
            format!(
                "unknown event kind {text:?}: expected one of {}",
                kinds.join(", ")
            ),
        ))
    })
}

fn set(s: &mut String, v: &str) {
    s.clear();
    s.push_str(v);
}

fn set_opt(s: &mut Option<String>, v: Option<&str>) {
    match (s.as_mut(), v) {
        (Some(buf), Some(v)) => set(buf, v),
        (_, v) => *s = v.map(String::from),
    }
}

/// An event to parse lines into (see [`parse_event`]).
fn blank_event() -> ConsentEvent {
    ConsentEvent {
        subject: String::new(),
        kind: EventKind::Gpc,
        purpose: None,
        at: Timestamp::from_unix(0),
        notice_version: None,
        notice_sha256: None,
        channel: String::new(),
        collector: String::new(),
        expires_at: None,
        explicit: false,
        evidence_sha256: None,
    }
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
