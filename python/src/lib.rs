//! The `privseg._privseg` extension module: the engine behind the `privseg`
//! Python package. Every call goes through the same Rust API (and so the
//! same gate and audit log) as a Rust host; errors become the exceptions of
//! `privseg.errors`, carrying the rule id where one applies.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use privseg::audit::{AuditLog, AuditPseudonymizer, AuditSink, FileSink, SyncPolicy};
use privseg::clock::ManualClock;
use privseg::consent::{ConsentEvent, EventError, Rule};
use privseg::load::{LoadError, Loader};
use privseg::outputs::ExportFormat;
use privseg::policy::{Policy as RPolicy, PolicyError};
use privseg::privacy::aggregate::Count;
use privseg::privacy::dp::{BudgetLedger, Epsilon, SplitMix64, SystemRandomSource};
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::segment::CheckedSegment;
use privseg::shard::{Partial, PartialRequest, ShardError};
use privseg::store::{KeyProvider, StaticKek, Value};
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine as REngine, EngineError, Timestamp};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// An exception of `privseg.errors` by class name.
fn raise(py: Python<'_>, class: &str, message: String, rule: Option<String>) -> PyErr {
    let made = py
        .import("privseg.errors")
        .and_then(|m| m.getattr(class))
        .and_then(|c| c.call1((message, rule)));
    match made {
        Ok(v) => PyErr::from_value(v),
        Err(e) => e,
    }
}

fn engine_err(py: Python<'_>, e: EngineError) -> PyErr {
    let msg = e.to_string();
    match e {
        EngineError::Access(_) => raise(py, "AccessDenied", msg, None),
        EngineError::Segment(s) => {
            raise(py, "SegmentRefused", msg, s.rule().map(|r| r.to_string()))
        }
        EngineError::ExportRefused { rule, .. } => {
            raise(py, "ExportRefused", msg, Some(rule.to_string()))
        }
        EngineError::Event(ev) => {
            let rule = match ev {
                EventError::FromTheFuture { .. } => Some(Rule::R5.to_string()),
                EventError::ParentalConsentNotMinor { .. } => Some(Rule::R9.to_string()),
                _ => None,
            };
            raise(py, "EventRefused", msg, rule)
        }
        EngineError::Budget(_)
        | EngineError::Random(_)
        | EngineError::Noise(_)
        | EngineError::UnreadableCharge { .. }
        | EngineError::Pseudonym(_)
        | EngineError::Aggregate(_) => raise(py, "PrivacyError", msg, None),
        EngineError::Audit(_) => raise(py, "AuditError", msg, None),
        EngineError::PolicyMismatch { .. } | EngineError::ForeignResult => {
            raise(py, "PolicyMismatch", msg, None)
        }
        EngineError::Store(_) | EngineError::Io(_) => raise(py, "StoreError", msg, None),
        _ => raise(py, "InvalidInput", msg, None),
    }
}

fn shard_err(py: Python<'_>, e: ShardError) -> PyErr {
    match e {
        ShardError::Engine(e) => engine_err(py, e),
        other => raise(py, "PartialsRefused", other.to_string(), None),
    }
}

fn load_err(py: Python<'_>, e: LoadError) -> PyErr {
    match e {
        LoadError::Refused(e) => engine_err(py, *e),
        LoadError::Policy { .. } => raise(py, "PolicyInvalid", e.to_string(), None),
        other => raise(py, "InputError", other.to_string(), None),
    }
}

fn policy_err(py: Python<'_>, e: PolicyError) -> PyErr {
    raise(py, "PolicyInvalid", e.to_string(), None)
}

fn bad(py: Python<'_>, msg: String) -> PyErr {
    raise(py, "InvalidInput", msg, None)
}

fn time(py: Python<'_>, what: &str, s: &str) -> PyResult<Timestamp> {
    Timestamp::parse(s).map_err(|e| {
        bad(
            py,
            format!("{what}: {s:?} is not an RFC 3339 UTC time ({e})"),
        )
    })
}

/// A validated policy.
#[pyclass(frozen, module = "privseg")]
struct Policy {
    inner: Arc<RPolicy>,
}

#[pymethods]
impl Policy {
    /// Reads a policy from its JSON text.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Policy> {
        RPolicy::from_json(text)
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| policy_err(py, e))
    }

    /// Reads a policy from a JSON file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: &str) -> PyResult<Policy> {
        privseg::load::read_policy(std::path::Path::new(path))
            .map(|p| Policy { inner: Arc::new(p) })
            .map_err(|e| load_err(py, e))
    }

    /// The policy version (64 hex digits).
    #[getter]
    fn version(&self) -> String {
        self.inner.version_hex().to_string()
    }

    /// The smallest count released exactly.
    #[getter]
    fn k_threshold(&self) -> u64 {
        self.inner.k_threshold()
    }

    fn __repr__(&self) -> String {
        format!("Policy(version={:?})", &self.inner.version_hex()[..12])
    }
}

/// A segment validated against an engine's policy.
#[pyclass(frozen, module = "privseg")]
struct Segment {
    inner: CheckedSegment,
    text: String,
}

#[pymethods]
impl Segment {
    /// Segment name.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }
    /// Purpose key.
    #[getter]
    fn purpose(&self) -> String {
        self.inner.purpose_key().to_string()
    }
    /// The text it was compiled from.
    #[getter]
    fn text(&self) -> String {
        self.text.clone()
    }
    fn __repr__(&self) -> String {
        format!(
            "Segment(name={:?}, purpose={:?})",
            self.inner.name(),
            self.inner.purpose_key()
        )
    }
}

/// A count released under the k-threshold: `value` is the exact count, or
/// None when it is below `fewer_than`.
#[pyclass(frozen, eq, module = "privseg")]
#[derive(PartialEq)]
struct CountResult {
    #[pyo3(get)]
    value: Option<u64>,
    #[pyo3(get)]
    fewer_than: Option<u64>,
}

#[pymethods]
impl CountResult {
    fn __repr__(&self) -> String {
        match (self.value, self.fewer_than) {
            (Some(v), _) => format!("CountResult(value={v})"),
            (_, Some(k)) => format!("CountResult(fewer_than={k})"),
            _ => "CountResult(suppressed)".into(),
        }
    }
}

fn count_result(c: Count) -> CountResult {
    match c {
        Count::Exact(n) => CountResult {
            value: Some(n),
            fewer_than: None,
        },
        Count::FewerThan(k) => CountResult {
            value: None,
            fewer_than: Some(k),
        },
        _ => CountResult {
            value: None,
            fewer_than: None,
        },
    }
}

/// An engine: one policy, its subjects, the audit log of every call, run
/// on behalf of one actor.
#[pyclass(module = "privseg")]
struct Engine {
    inner: REngine,
    actor: Actor,
    clock: Option<ManualClock>,
    ledger: BudgetLedger,
    /// The exclusive lock on a store directory's `store.lock`, held while
    /// this engine lives (one engine at a time writes a store).
    store_lock: Option<std::fs::File>,
}

fn make_engine(policy: &Policy, now: Option<Timestamp>) -> (REngine, Option<ManualClock>) {
    let e = REngine::new(policy.inner.clone());
    match now {
        Some(t) => {
            let c = ManualClock::new(t);
            (e.with_clock(Arc::new(c.clone())), Some(c))
        }
        None => (e, None),
    }
}

fn actor(py: Python<'_>, id: &str, roles: Vec<String>) -> PyResult<Actor> {
    if id.trim().is_empty() {
        return Err(bad(py, "the actor id is empty".into()));
    }
    let roles: Vec<&str> = roles.iter().map(String::as_str).collect();
    Ok(Actor::new(id, &roles))
}

fn format_of(py: Python<'_>, f: &str) -> PyResult<ExportFormat> {
    match f {
        "jsonl" => Ok(ExportFormat::Jsonl),
        "csv" => Ok(ExportFormat::Csv),
        _ => Err(bad(
            py,
            format!("format {f:?}: expected \"jsonl\" or \"csv\""),
        )),
    }
}

fn keyring(py: Python<'_>, key: &[u8], version: u32) -> PyResult<Keyring> {
    let master =
        MasterSecret::from_bytes(key).map_err(|e| bad(py, format!("pseudonym key: {e}")))?;
    Keyring::new(master, version).map_err(|e| bad(py, format!("pseudonym key: {e}")))
}

fn epsilon(py: Python<'_>, e: Option<&str>) -> PyResult<Option<Epsilon>> {
    e.map(|s| {
        s.parse::<Epsilon>()
            .map_err(|err| bad(py, format!("epsilon {s:?}: {err}")))
    })
    .transpose()
}

fn partials(py: Python<'_>, items: Vec<String>) -> PyResult<Vec<Partial>> {
    items
        .iter()
        .map(|p| Partial::from_json(p).map_err(|e| shard_err(py, e)))
        .collect()
}

fn value_of(v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_instance_of::<pyo3::types::PyBool>() {
        return Ok(Value::Bool(v.extract::<bool>()?));
    }
    if let Ok(i) = v.extract::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(s) = v.extract::<String>() {
        return Ok(Value::Str(s));
    }
    Err(bad(
        v.py(),
        format!(
            "value {}: expected a bool, an int or a str",
            v.repr().map_or_else(|_| "?".into(), |r| r.to_string())
        ),
    ))
}

/// The files of a store directory, as the command line names them.
const STORE_AUDIT_LOG: &str = "audit.log";
const STORE_LOCK: &str = "store.lock";

fn store_io(py: Python<'_>, path: &Path, e: std::io::Error) -> PyErr {
    raise(py, "StoreError", format!("{}: {e}", path.display()), None)
}

/// Takes the store's lock without waiting: a store in use by another engine
/// (in this process or another) is refused, not shared.
fn lock_store(py: Python<'_>, dir: &Path) -> PyResult<std::fs::File> {
    let path = dir.join(STORE_LOCK);
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .map_err(|e| store_io(py, &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(raise(
            py,
            "StoreError",
            format!("{}: the store is in use by another engine", dir.display()),
            None,
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(store_io(py, &path, e)),
    }
}

/// The store's audit log (DIR/audit.log, keyed by `audit_key`) and the
/// audit pseudonymiser. A damaged tail is refused, as on the command line:
/// it was moved aside and someone must look at it first.
fn store_audit(
    py: Python<'_>,
    dir: &Path,
    audit_key: &[u8],
) -> PyResult<(AuditLog, AuditPseudonymizer)> {
    let path = dir.join(STORE_AUDIT_LOG);
    let audit = |e: privseg::audit::AuditError| {
        raise(py, "AuditError", format!("{}: {e}", path.display()), None)
    };
    let ids = AuditPseudonymizer::new(audit_key).map_err(|e| bad(py, format!("audit key: {e}")))?;
    let (sink, report) = FileSink::open(&path, SyncPolicy::EveryAppend).map_err(audit)?;
    if let Some(d) = report.discarded {
        return Err(raise(
            py,
            "AuditError",
            format!(
                "{}: {} damaged bytes at offset {} ({}) were moved aside; inspect them before using the store",
                path.display(),
                d.bytes,
                d.offset,
                d.reason
            ),
            None,
        ));
    }
    let log =
        AuditLog::open(Box::new(sink) as Box<dyn AuditSink + Send>, audit_key).map_err(audit)?;
    Ok((log, ids))
}

/// Creates (`create`) or opens the store in `dir`, then appends the
/// subjects and events given in one all-or-nothing import.
#[allow(clippy::too_many_arguments)]
fn store_engine(
    py: Python<'_>,
    create: bool,
    dir: &str,
    policy: &Policy,
    actor_id: &str,
    roles: Vec<String>,
    kek: &[u8],
    audit_key: &[u8],
    subjects_csv: Option<&str>,
    events_jsonl: Option<&str>,
    now: Option<&str>,
) -> PyResult<Engine> {
    let now = now.map(|n| time(py, "now", n)).transpose()?;
    let a = actor(py, actor_id, roles)?;
    let dir = PathBuf::from(dir);
    let db = dir.join(privseg::store::DB_FILE);
    if create {
        if db.exists() {
            return Err(raise(
                py,
                "StoreError",
                format!("{}: a store is already here", dir.display()),
                None,
            ));
        }
        std::fs::create_dir_all(&dir).map_err(|e| store_io(py, &dir, e))?;
    } else if !db.is_file() {
        return Err(raise(
            py,
            "StoreError",
            format!("{}: no store here", dir.display()),
            None,
        ));
    }
    let keys: Arc<dyn KeyProvider> = Arc::new(
        StaticKek::new("python", kek).map_err(|e| bad(py, format!("key-encryption key: {e}")))?,
    );
    let lock = lock_store(py, &dir)?;
    let (log, ids) = store_audit(py, &dir, audit_key)?;
    let p = policy.inner.clone();
    let engine = if create {
        REngine::create_with_audit(&dir, p, keys, log, ids)
    } else {
        REngine::open_with_audit(&dir, p, keys, log, ids)
    }
    .map_err(|e| engine_err(py, e))?;
    let (engine, clock) = match now {
        Some(t) => {
            let c = ManualClock::new(t);
            (engine.with_clock(Arc::new(c.clone())), Some(c))
        }
        None => (engine, None),
    };
    let inner = if subjects_csv.is_some() || events_jsonl.is_some() {
        import_into(py, engine, &a, subjects_csv, events_jsonl)?
    } else {
        engine
    };
    Ok(Engine {
        inner,
        actor: a,
        clock,
        ledger: BudgetLedger::new(),
        store_lock: Some(lock),
    })
}

/// One all-or-nothing import of subjects CSV and events JSONL text into
/// `engine` on behalf of `actor`.
fn import_into(
    py: Python<'_>,
    engine: REngine,
    actor: &Actor,
    subjects_csv: Option<&str>,
    events_jsonl: Option<&str>,
) -> PyResult<REngine> {
    let mut loader = Loader::with_engine(engine, actor.clone());
    if let Some(s) = subjects_csv {
        loader = loader
            .subjects("subjects", s.as_bytes())
            .map_err(|e| load_err(py, e))?;
    }
    if let Some(ev) = events_jsonl {
        loader = loader
            .events("events", ev.as_bytes())
            .map_err(|e| load_err(py, e))?;
    }
    let (inner, _) = loader.finish().map_err(|e| load_err(py, e))?;
    Ok(inner)
}

#[pymethods]
impl Engine {
    /// An empty engine for `policy`, run by `actor` with `roles`. `now`
    /// (RFC 3339) fixes the host clock (for tests and replays); without it
    /// the system clock is used.
    #[new]
    #[pyo3(signature = (policy, actor_id, roles, now=None))]
    fn new(
        py: Python<'_>,
        policy: &Policy,
        actor_id: &str,
        roles: Vec<String>,
        now: Option<&str>,
    ) -> PyResult<Engine> {
        let now = now.map(|n| time(py, "now", n)).transpose()?;
        let (inner, clock) = make_engine(policy, now);
        Ok(Engine {
            inner,
            actor: actor(py, actor_id, roles)?,
            clock,
            ledger: BudgetLedger::new(),
            store_lock: None,
        })
    }

    /// An engine loaded from subjects CSV text and consent events JSONL
    /// text in one all-or-nothing import (the formats of docs/formats.md).
    #[staticmethod]
    #[pyo3(signature = (policy, actor_id, roles, subjects_csv=None, events_jsonl=None, now=None))]
    fn load(
        py: Python<'_>,
        policy: &Policy,
        actor_id: &str,
        roles: Vec<String>,
        subjects_csv: Option<&str>,
        events_jsonl: Option<&str>,
        now: Option<&str>,
    ) -> PyResult<Engine> {
        let now = now.map(|n| time(py, "now", n)).transpose()?;
        let a = actor(py, actor_id, roles)?;
        let (engine, clock) = make_engine(policy, now);
        let inner = import_into(py, engine, &a, subjects_csv, events_jsonl)?;
        Ok(Engine {
            inner,
            actor: a,
            clock,
            ledger: BudgetLedger::new(),
            store_lock: None,
        })
    }

    /// Creates a durable, encrypted store in directory `dir` (see
    /// docs/store.md) and returns its engine; the subjects and events given
    /// are imported all or nothing. `kek` is the 32-byte key-encryption key
    /// (keep it outside the directory), `audit_key` the audit log's key: the
    /// log is kept with the store (DIR/audit.log). The engine holds the
    /// store's lock while it lives.
    #[staticmethod]
    #[pyo3(signature = (dir, policy, actor_id, roles, kek, audit_key, subjects_csv=None, events_jsonl=None, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn create(
        py: Python<'_>,
        dir: &str,
        policy: &Policy,
        actor_id: &str,
        roles: Vec<String>,
        kek: &[u8],
        audit_key: &[u8],
        subjects_csv: Option<&str>,
        events_jsonl: Option<&str>,
        now: Option<&str>,
    ) -> PyResult<Engine> {
        store_engine(
            py,
            true,
            dir,
            policy,
            actor_id,
            roles,
            kek,
            audit_key,
            subjects_csv,
            events_jsonl,
            now,
        )
    }

    /// Opens the store in `dir` (made by :meth:`create` or `privseg init`)
    /// under `policy`, and appends the subjects and events given, all or
    /// nothing: if the import is refused the store is as it was.
    #[staticmethod]
    #[pyo3(signature = (dir, policy, actor_id, roles, kek, audit_key, subjects_csv=None, events_jsonl=None, now=None))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        dir: &str,
        policy: &Policy,
        actor_id: &str,
        roles: Vec<String>,
        kek: &[u8],
        audit_key: &[u8],
        subjects_csv: Option<&str>,
        events_jsonl: Option<&str>,
        now: Option<&str>,
    ) -> PyResult<Engine> {
        store_engine(
            py,
            false,
            dir,
            policy,
            actor_id,
            roles,
            kek,
            audit_key,
            subjects_csv,
            events_jsonl,
            now,
        )
    }

    /// Is every acknowledged write on disk before the call returns?
    #[getter]
    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }

    /// Writes a durable store's pending state into its database files.
    fn checkpoint(&self, py: Python<'_>) -> PyResult<()> {
        self.inner.checkpoint().map_err(|e| engine_err(py, e))
    }

    /// Erases a subject (R21): every value, event and key of theirs; recorded.
    fn erase(&mut self, py: Python<'_>, id: &str) -> PyResult<()> {
        self.inner
            .erase(&self.actor, id)
            .map_err(|e| engine_err(py, e))
    }

    /// Removes values past their category's retention (R17), as of the
    /// host clock; recorded. Returns ``{"values": n, "subjects": m}``.
    fn purge<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self
            .inner
            .purge(&self.actor)
            .map_err(|e| engine_err(py, e))?;
        let d = PyDict::new(py);
        d.set_item("values", s.values)?;
        d.set_item("subjects", s.subjects)?;
        Ok(d)
    }

    /// The record of processing activities (GDPR Art. 30) as JSON text
    /// (``format="json"``) or Markdown (``"md"``). Needs ``read_audit``.
    #[pyo3(signature = (format="json"))]
    fn ropa(&self, py: Python<'_>, format: &str) -> PyResult<String> {
        let markdown = report_format(py, format)?;
        let r = self
            .inner
            .ropa(&self.actor)
            .map_err(|e| engine_err(py, e))?;
        Ok(if markdown {
            r.to_markdown()
        } else {
            r.to_json()
        })
    }

    /// The compliance monitoring report as of the host clock (consents
    /// expiring within ``within_days``, retention, staleness, refusals,
    /// exports, this engine's privacy budget use) as JSON text or Markdown.
    /// Needs ``read_audit``.
    #[pyo3(signature = (within_days=30, format="json"))]
    fn compliance_report(
        &self,
        py: Python<'_>,
        within_days: u32,
        format: &str,
    ) -> PyResult<String> {
        let markdown = report_format(py, format)?;
        let r = self
            .inner
            .compliance_report(&self.actor, within_days, Some(&self.ledger))
            .map_err(|e| engine_err(py, e))?;
        Ok(if markdown {
            r.to_markdown()
        } else {
            r.to_json()
        })
    }

    /// Makes later calls on behalf of another actor (the host authenticates
    /// actors; e.g. a loader adds subjects, then an analyst counts).
    fn set_actor(&mut self, py: Python<'_>, actor_id: &str, roles: Vec<String>) -> PyResult<()> {
        self.actor = actor(py, actor_id, roles)?;
        Ok(())
    }

    /// The current actor's id.
    #[getter]
    fn actor_id(&self) -> String {
        self.actor.id().to_string()
    }

    /// Sets the host clock (only for an engine made with `now`).
    fn set_now(&self, py: Python<'_>, now: &str) -> PyResult<()> {
        let t = time(py, "now", now)?;
        match &self.clock {
            Some(c) => {
                c.set(t);
                Ok(())
            }
            None => Err(bad(
                py,
                "this engine runs on the system clock: make it with now=... to set it".into(),
            )),
        }
    }

    /// The host clock's now.
    #[getter]
    fn now(&self) -> String {
        self.inner.now().to_string()
    }

    /// Number of subjects.
    #[getter]
    fn subject_count(&self) -> usize {
        self.inner.subject_count()
    }

    /// Number of audit log entries.
    #[getter]
    fn audit_len(&self) -> u64 {
        self.inner.audit_len()
    }

    /// Adds a subject.
    #[pyo3(signature = (id, jurisdiction, birth_date=None))]
    fn add_subject(
        &mut self,
        py: Python<'_>,
        id: &str,
        jurisdiction: &str,
        birth_date: Option<&str>,
    ) -> PyResult<()> {
        let birth = birth_date
            .map(|d| parse_date(d).map_err(|e| bad(py, format!("birth_date {d:?}: {e}"))))
            .transpose()?;
        self.inner
            .add_subject(&self.actor, id, jurisdiction, birth)
            .map_err(|e| engine_err(py, e))
    }

    /// Sets an attribute value, verified at `verified_at`.
    fn set_attribute(
        &mut self,
        py: Python<'_>,
        id: &str,
        attr: &str,
        value: &Bound<'_, PyAny>,
        verified_at: &str,
    ) -> PyResult<()> {
        let v = value_of(value)?;
        let at = time(py, "verified_at", verified_at)?;
        self.inner
            .set_attribute(&self.actor, id, attr, v, at)
            .map_err(|e| engine_err(py, e))
    }

    /// Records one consent event given as its JSON object text.
    fn record_json(&mut self, py: Python<'_>, event: &str) -> PyResult<()> {
        let ev: ConsentEvent =
            serde_json::from_str(event).map_err(|e| bad(py, format!("malformed event: {e}")))?;
        self.inner
            .record(&self.actor, &ev)
            .map_err(|e| engine_err(py, e))
    }

    /// Records one consent event given as a dict of the JSONL event fields
    /// (`subject`, `kind`, `purpose`, `at`, `notice_version`, ...).
    fn record(&mut self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = py
            .import("json")?
            .call_method1("dumps", (event,))
            .map_err(|e| bad(py, format!("the event is not a JSON object: {e}")))?
            .extract()?;
        self.record_json(py, &text)
    }

    /// Parses and validates a segment.
    fn compile(&self, py: Python<'_>, text: &str) -> PyResult<Segment> {
        let seg = self
            .inner
            .compile(&self.actor, text)
            .map_err(|e| engine_err(py, EngineError::from(e)))?;
        Ok(Segment {
            inner: seg,
            text: text.to_string(),
        })
    }

    /// The ids of a segment's members (needs `member_ids`).
    #[pyo3(signature = (segment, reference=None))]
    fn evaluate(
        &self,
        py: Python<'_>,
        segment: &Segment,
        reference: Option<&str>,
    ) -> PyResult<Vec<String>> {
        let at = self.reference(py, reference)?;
        let m = self
            .inner
            .evaluate(&self.actor, &segment.inner, at)
            .map_err(|e| engine_err(py, e))?;
        self.inner
            .member_ids(&self.actor, &m)
            .map_err(|e| engine_err(py, e))
    }

    /// The k-threshold count (needs `count`).
    #[pyo3(signature = (segment, reference=None))]
    fn count(
        &self,
        py: Python<'_>,
        segment: &Segment,
        reference: Option<&str>,
    ) -> PyResult<CountResult> {
        let at = self.reference(py, reference)?;
        self.inner
            .count(&self.actor, &segment.inner, at)
            .map(count_result)
            .map_err(|e| engine_err(py, e))
    }

    /// A differentially private count under the policy's budget, charged
    /// to this engine's in-memory ledger. `epsilon` as text ("1/2"); `seed`
    /// only for reproducible tests (the system random source otherwise).
    #[pyo3(signature = (segment, epsilon=None, reference=None, seed=None))]
    fn dp_count(
        &mut self,
        py: Python<'_>,
        segment: &Segment,
        epsilon: Option<&str>,
        reference: Option<&str>,
        seed: Option<u64>,
    ) -> PyResult<i64> {
        let at = self.reference(py, reference)?;
        let eps = self::epsilon(py, epsilon)?;
        let r = match seed {
            Some(s) => self.inner.dp_count(
                &self.actor,
                &segment.inner,
                at,
                eps,
                &mut self.ledger,
                &mut SplitMix64::new(s),
            ),
            None => self.inner.dp_count(
                &self.actor,
                &segment.inner,
                at,
                eps,
                &mut self.ledger,
                &mut SystemRandomSource::new(),
            ),
        };
        r.map(|(n, _)| n).map_err(|e| engine_err(py, e))
    }

    /// Why a subject is in or out of a segment, as a dict.
    #[pyo3(signature = (segment, id, reference=None))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        segment: &Segment,
        id: &str,
        reference: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let at = self.reference(py, reference)?;
        let x = self
            .inner
            .explain(&self.actor, &segment.inner, id, at)
            .map_err(|e| engine_err(py, e))?;
        let json = serde_json::to_string(&x).map_err(|e| bad(py, e.to_string()))?;
        let d = py.import("json")?.call_method1("loads", (json,))?;
        d.downcast::<PyDict>()?.set_item("text", x.to_string())?;
        Ok(d)
    }

    /// Exports a segment to a recipient; returns the rows as text
    /// (`format` "jsonl" or "csv"). Ids are pseudonymised under the
    /// recipient's key derived from `key` (32 bytes or more).
    #[pyo3(signature = (segment, recipient, fields, key, format="jsonl", key_version=1, reference=None))]
    #[allow(clippy::too_many_arguments)]
    fn export(
        &self,
        py: Python<'_>,
        segment: &Segment,
        recipient: &str,
        fields: Vec<String>,
        key: &[u8],
        format: &str,
        key_version: u32,
        reference: Option<&str>,
    ) -> PyResult<String> {
        let at = self.reference(py, reference)?;
        let f = format_of(py, format)?;
        let keys = keyring(py, key, key_version)?;
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        self.inner
            .export(
                &self.actor,
                &segment.inner,
                at,
                recipient,
                &fields,
                f,
                &keys,
                &mut out,
            )
            .map_err(|e| engine_err(py, e))?;
        String::from_utf8(out).map_err(|e| bad(py, e.to_string()))
    }

    /// This engine's partial answer as shard `shard` of `shards` (JSON
    /// text). `kind`: "count", "members" or "export" (with `recipient` and
    /// `fields`).
    #[pyo3(signature = (segment, shard, shards, kind="count", recipient=None, fields=None, reference=None))]
    #[allow(clippy::too_many_arguments)]
    fn partial(
        &self,
        py: Python<'_>,
        segment: &Segment,
        shard: u32,
        shards: u32,
        kind: &str,
        recipient: Option<&str>,
        fields: Option<Vec<String>>,
        reference: Option<&str>,
    ) -> PyResult<String> {
        let at = self.reference(py, reference)?;
        let fields = fields.unwrap_or_default();
        let fs: Vec<&str> = fields.iter().map(String::as_str).collect();
        let req = match (kind, recipient) {
            ("count", None) => PartialRequest::Count,
            ("members", None) => PartialRequest::Members,
            ("export", Some(r)) => PartialRequest::Export {
                recipient: r,
                fields: &fs,
            },
            _ => {
                return Err(bad(
                    py,
                    format!(
                        "partial kind {kind:?}: expected \"count\", \"members\" or \"export\" (a recipient only for export)"
                    ),
                ));
            }
        };
        self.inner
            .partial(&self.actor, &segment.inner, at, shard, shards, &req)
            .map(|p| p.to_json())
            .map_err(|e| shard_err(py, e))
    }

    /// Releases the k-threshold count of every shard's partial.
    fn release_count(
        &self,
        py: Python<'_>,
        segment: &Segment,
        partials: Vec<String>,
    ) -> PyResult<CountResult> {
        let ps = self::partials(py, partials)?;
        self.inner
            .release_count(&self.actor, &segment.inner, &ps)
            .map(count_result)
            .map_err(|e| shard_err(py, e))
    }

    /// Releases a DP count of every shard's partial (one charge, one draw).
    #[pyo3(signature = (segment, partials, epsilon=None, seed=None))]
    fn release_dp_count(
        &mut self,
        py: Python<'_>,
        segment: &Segment,
        partials: Vec<String>,
        epsilon: Option<&str>,
        seed: Option<u64>,
    ) -> PyResult<i64> {
        let ps = self::partials(py, partials)?;
        let eps = self::epsilon(py, epsilon)?;
        let r = match seed {
            Some(s) => self.inner.release_dp_count(
                &self.actor,
                &segment.inner,
                &ps,
                eps,
                &mut self.ledger,
                &mut SplitMix64::new(s),
            ),
            None => self.inner.release_dp_count(
                &self.actor,
                &segment.inner,
                &ps,
                eps,
                &mut self.ledger,
                &mut SystemRandomSource::new(),
            ),
        };
        r.map(|(n, _)| n).map_err(|e| shard_err(py, e))
    }

    /// Releases the member ids of every shard's partial.
    fn release_members(
        &self,
        py: Python<'_>,
        segment: &Segment,
        partials: Vec<String>,
    ) -> PyResult<Vec<String>> {
        let ps = self::partials(py, partials)?;
        self.inner
            .release_members(&self.actor, &segment.inner, &ps)
            .map_err(|e| shard_err(py, e))
    }

    /// Starts releasing the members of split partials (headers from
    /// :func:`split_partial`) a shard at a time: the gate is applied and the
    /// release recorded now; each shard's ids then come out of
    /// :meth:`MembersRelease.ids`, checked against their header.
    fn release_members_split(
        &self,
        py: Python<'_>,
        segment: &Segment,
        headers: Vec<String>,
    ) -> PyResult<MembersRelease> {
        let hs = self::partials(py, headers)?;
        let inner = self
            .inner
            .release_members_split(&self.actor, &segment.inner, &hs)
            .map_err(|e| shard_err(py, e))?;
        Ok(MembersRelease { inner })
    }

    /// Releases an export of every shard's partial (pseudonyms made here).
    #[pyo3(signature = (segment, partials, recipient, fields, key, format="jsonl", key_version=1))]
    #[allow(clippy::too_many_arguments)]
    fn release_export(
        &self,
        py: Python<'_>,
        segment: &Segment,
        partials: Vec<String>,
        recipient: &str,
        fields: Vec<String>,
        key: &[u8],
        format: &str,
        key_version: u32,
    ) -> PyResult<String> {
        let ps = self::partials(py, partials)?;
        let f = format_of(py, format)?;
        let keys = keyring(py, key, key_version)?;
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        self.inner
            .release_export(
                &self.actor,
                &segment.inner,
                &ps,
                recipient,
                &fields,
                f,
                &keys,
                &mut out,
            )
            .map_err(|e| shard_err(py, e))?;
        String::from_utf8(out).map_err(|e| bad(py, e.to_string()))
    }

    /// Starts releasing an export of split partials (headers from
    /// :func:`split_export_partial`) a shard at a time: the gate of
    /// :meth:`release_export` is applied and the export of every row
    /// recorded now; each shard's rows then come out of
    /// :meth:`ExportRelease.rows`, checked against their header and
    /// pseudonymised here.
    #[pyo3(signature = (segment, headers, recipient, fields, key, format="jsonl", key_version=1))]
    #[allow(clippy::too_many_arguments)]
    fn release_export_split(
        &self,
        py: Python<'_>,
        segment: &Segment,
        headers: Vec<String>,
        recipient: &str,
        fields: Vec<String>,
        key: &[u8],
        format: &str,
        key_version: u32,
    ) -> PyResult<ExportRelease> {
        let hs = self::partials(py, headers)?;
        let f = format_of(py, format)?;
        let keys = keyring(py, key, key_version)?;
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let inner = self
            .inner
            .release_export_split(
                &self.actor,
                &segment.inner,
                &hs,
                recipient,
                &fields,
                f,
                &keys,
            )
            .map_err(|e| shard_err(py, e))?;
        Ok(ExportRelease { inner })
    }

    fn __repr__(&self) -> String {
        format!("Engine(subjects={})", self.inner.subject_count())
    }
}

impl Engine {
    fn reference(&self, py: Python<'_>, r: Option<&str>) -> PyResult<Timestamp> {
        match r {
            Some(s) => time(py, "reference", s),
            None => Ok(self.inner.now()),
        }
    }
}

fn report_format(py: Python<'_>, f: &str) -> PyResult<bool> {
    match f {
        "json" => Ok(false),
        "md" => Ok(true),
        _ => Err(bad(
            py,
            format!("format {f:?}: expected \"json\" or \"md\""),
        )),
    }
}

/// A release of split members partials in progress: recorded already;
/// each shard's ids come out once, checked against its header.
#[pyclass(module = "privseg")]
struct MembersRelease {
    inner: privseg::shard::MembersRelease,
}

#[pymethods]
impl MembersRelease {
    /// Number of members released over all shards.
    #[getter]
    fn total(&self) -> u64 {
        self.inner.total()
    }

    /// Shards whose ids have not come out yet.
    #[getter]
    fn pending(&self) -> Vec<u32> {
        self.inner.pending()
    }

    /// Shard `shard`'s ids (as :func:`split_partial` gave them), released
    /// if they are exactly those its header was made with, once.
    fn ids(&mut self, py: Python<'_>, shard: u32, ids: Vec<String>) -> PyResult<Vec<String>> {
        self.inner.ids(shard, ids).map_err(|e| shard_err(py, e))
    }
}

/// A release of split export partials in progress: recorded already; each
/// shard's rows come out once, checked against its header.
#[pyclass(module = "privseg")]
struct ExportRelease {
    inner: privseg::shard::ExportRelease,
}

#[pymethods]
impl ExportRelease {
    /// Number of rows released over all shards.
    #[getter]
    fn total(&self) -> u64 {
        self.inner.summary().rows
    }

    /// The recipient key's version the pseudonyms are made with.
    #[getter]
    fn key_version(&self) -> u32 {
        self.inner.summary().key_version
    }

    /// Shards whose rows have not come out yet.
    #[getter]
    fn pending(&self) -> Vec<u32> {
        self.inner.pending()
    }

    /// Shard `shard`'s export rows (the JSON text :func:`split_export_partial`
    /// gave), as export text (ids pseudonymised) if they are exactly those
    /// its header was made with, once. The first text (CSV) starts with the
    /// header line: the texts concatenated are one export.
    fn rows(&mut self, py: Python<'_>, shard: u32, rows: &str) -> PyResult<String> {
        let rows = privseg::shard::ExportRows::from_json(rows).map_err(|e| shard_err(py, e))?;
        let mut out = Vec::new();
        self.inner
            .rows(shard, &rows, &mut out)
            .map_err(|e| shard_err(py, e))?;
        String::from_utf8(out).map_err(|e| bad(py, e.to_string()))
    }
}

/// Splits an export partial (JSON) into its header (JSON, with the SHA-256
/// of its ids and rows) and its rows (JSON), which can travel apart; see
/// :meth:`Engine.release_export_split`. Other partials come back whole,
/// with no rows (``{"ids":[],"values":[]}``).
#[pyfunction]
fn split_export_partial(py: Python<'_>, partial: &str) -> PyResult<(String, String)> {
    let p = Partial::from_json(partial).map_err(|e| shard_err(py, e))?;
    let (header, rows) = p.split_rows();
    Ok((header.to_json(), rows.to_json()))
}

/// Splits a members partial (JSON) into its header (JSON, with the SHA-256
/// of its ids) and its ids, which can travel apart; see
/// :meth:`Engine.release_members_split`. Other partials come back whole,
/// with no ids.
#[pyfunction]
fn split_partial(py: Python<'_>, partial: &str) -> PyResult<(String, Vec<String>)> {
    let p = Partial::from_json(partial).map_err(|e| shard_err(py, e))?;
    let (header, ids) = p.split_ids();
    Ok((header.to_json(), ids))
}

/// The shard of a subject id among `shards` (see privseg::shard::shard_of).
#[pyfunction]
fn shard_of(py: Python<'_>, id: &str, shards: u32) -> PyResult<u32> {
    if shards == 0 || shards > privseg::shard::MAX_SHARDS {
        return Err(bad(
            py,
            format!(
                "shards {shards}: expected 1 to {}",
                privseg::shard::MAX_SHARDS
            ),
        ));
    }
    Ok(privseg::shard::shard_of(id, shards))
}

#[pymodule]
fn _privseg(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Policy>()?;
    m.add_class::<Segment>()?;
    m.add_class::<Engine>()?;
    m.add_class::<CountResult>()?;
    m.add_class::<MembersRelease>()?;
    m.add_class::<ExportRelease>()?;
    m.add_function(wrap_pyfunction!(shard_of, m)?)?;
    m.add_function(wrap_pyfunction!(split_partial, m)?)?;
    m.add_function(wrap_pyfunction!(split_export_partial, m)?)?;
    Ok(())
}
