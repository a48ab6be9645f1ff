//! The store on disk: one SQLite database (WAL mode, `synchronous=FULL`,
//! `secure_delete` on) beside the audit log in the store's directory.
//!
//! Every write of the store is one SQLite transaction, committed (and so
//! on disk) before the write returns; a batch is one transaction (group
//! commit). Values and birth dates are stored AEAD-encrypted
//! (AES-256-GCM) under the subject's own data key, with the row, the field
//! and a store-wide write version as associated data, so a sealed value
//! cannot be moved to another subject, field or write. Data keys are kept
//! only wrapped by the host's key-encryption key ([`KeyProvider`]).
//!
//! Consent events are kept as pseudonymised records: under the row number,
//! never the subject id, with the notice and evidence as SHA-256 digests.
//! Erasing a subject deletes its wrapped key, its values and its events,
//! clears its id, and checkpoints the write-ahead log so that no old page
//! holding them stays in it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ring::aead::LessSafeKey;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::keys::{KeyError, KeyProvider, aead_key, open, random_key, seal};
use crate::consent::{EventKind, EventRecord, Proof};
use crate::policy::{AttrId, Policy};
use crate::value::Value;

/// The on-disk format this code writes and reads.
pub const FORMAT_VERSION: i64 = 1;

/// The database file's name inside a store directory.
pub const DB_FILE: &str = "store.db";

/// Why the store on disk could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite refused an operation (I/O error, full disk, damaged file).
    #[error("store database {path}: {message}")]
    Database {
        /// The database file.
        path: PathBuf,
        /// SQLite's message.
        message: String,
    },
    /// The directory already holds a store (create) or holds none (open).
    #[error("{0}")]
    Location(String),
    /// The store was written by another format version.
    #[error(
        "store format version {found} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    Format {
        /// The version on disk.
        found: i64,
    },
    /// A key could not be used (wrong key-encryption key, damaged wrap).
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Stored data no longer fits the policy it is opened with.
    #[error("the store does not fit the policy: {0}")]
    Policy(String),
    /// A record failed its integrity check (tampering or damage).
    #[error("store record damaged: {0}")]
    Damaged(String),
}

/// One event as written to disk.
pub(crate) struct StoredEvent<'a> {
    pub row: u32,
    pub rec: &'a EventRecord,
    pub proof: &'a Proof,
    pub purpose: Option<&'a str>,
    pub notice: Option<&'a str>,
    pub channel: &'a str,
    pub collector: &'a str,
}

/// A subject as read back.
pub(crate) struct LoadedSubject {
    pub row: u32,
    pub id: Option<String>,
    pub jurisdiction: String,
    pub birth: Option<String>,
}

/// An event as read back.
pub(crate) struct LoadedEvent {
    pub row: u32,
    pub seq: u64,
    pub at: i64,
    pub expires_at: i64,
    pub purpose: Option<String>,
    pub notice: Option<String>,
    pub kind: EventKind,
    pub explicit: bool,
    pub channel: String,
    pub collector: String,
    pub notice_sha256: Option<[u8; 32]>,
    pub evidence_sha256: Option<[u8; 32]>,
}

/// A value as read back.
pub(crate) struct LoadedValue {
    pub row: u32,
    pub attr: String,
    pub verified: i64,
    pub value: Value,
}

/// The open database and the unwrapped data keys.
pub(crate) struct Durable {
    /// Behind a mutex so that the engine stays `Sync` (a connection is
    /// `Send` only); writers hold `&mut` and never wait on it.
    conn: Mutex<Connection>,
    path: PathBuf,
    keys: Arc<dyn KeyProvider>,
    /// Data keys unwrapped so far, by row (read from the database when a
    /// write first needs one; an erased row has none).
    deks: HashMap<u32, LessSafeKey>,
    /// Number of rows on record.
    rows: u32,
    next_version: u64,
    /// Incremented by every transaction that changes the record (and by a
    /// policy change): a snapshot of the derived state is current only for
    /// the generation it was made at.
    generation: u64,
    /// Held while a snapshot is written (checkpoints take `&self`).
    snapshot_lock: Mutex<()>,
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durable")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Staged changes of one transaction, applied to [`Durable`] after commit.
#[derive(Default)]
pub(crate) struct Staged {
    new_keys: Vec<LessSafeKey>,
    version: u64,
    generation: u64,
}

fn aad(row: u32, field: &str, version: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(field.len() + 16);
    a.extend_from_slice(&row.to_be_bytes());
    a.extend_from_slice(field.as_bytes());
    a.push(0);
    a.extend_from_slice(&version.to_be_bytes());
    a
}

/// The snapshot's wrapped key and what it was made from (at most one row).
const SNAPSHOT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS snapshot(
    one INTEGER PRIMARY KEY CHECK(one = 0),
    generation INTEGER NOT NULL,
    id BLOB NOT NULL,
    key BLOB NOT NULL
);
INSERT OR IGNORE INTO meta(k, v) VALUES ('generation', '0');
";

const SCHEMA: &str = "
CREATE TABLE meta(k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE subjects(
    row INTEGER PRIMARY KEY,
    id TEXT,
    juris TEXT NOT NULL,
    birth BLOB,
    birth_version INTEGER,
    dek BLOB
);
CREATE TABLE vals(
    row INTEGER NOT NULL,
    attr TEXT NOT NULL,
    version INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    sealed BLOB NOT NULL,
    PRIMARY KEY(row, attr)
) WITHOUT ROWID;
CREATE TABLE events(
    seq INTEGER PRIMARY KEY,
    row INTEGER NOT NULL,
    at INTEGER NOT NULL,
    expires INTEGER NOT NULL,
    purpose TEXT,
    notice TEXT,
    kind TEXT NOT NULL,
    explicit INTEGER NOT NULL,
    channel TEXT NOT NULL,
    collector TEXT NOT NULL,
    notice_sha BLOB,
    evidence_sha BLOB
);
CREATE TABLE journal(
    n INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    what TEXT NOT NULL,
    rows INTEGER NOT NULL,
    items INTEGER NOT NULL
);
";

impl Durable {
    fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |e| StoreError::Database {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    fn connect(path: &Path, create: bool) -> Result<Connection, StoreError> {
        use rusqlite::OpenFlags;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags).map_err(Self::db_err(path))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA secure_delete=ON;",
        )
        .map_err(Self::db_err(path))?;
        Ok(conn)
    }

    /// Adds what stores made before snapshots lack: the snapshot table
    /// and the write generation (a no-op for newer stores).
    fn upgrade(conn: &Connection, path: &Path) -> Result<(), StoreError> {
        conn.execute_batch(SNAPSHOT_SCHEMA)
            .map_err(Self::db_err(path))
    }

    /// Creates a store database in `dir` (which must not hold one).
    pub(crate) fn create(
        dir: &Path,
        policy: &Policy,
        keys: Arc<dyn KeyProvider>,
    ) -> Result<Durable, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Location(format!("{}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(StoreError::Location(format!(
                "{} already holds a store: open it instead",
                dir.display()
            )));
        }
        let mut conn = Self::connect(&path, true)?;
        let tx = conn.transaction().map_err(Self::db_err(&path))?;
        tx.execute_batch(SCHEMA).map_err(Self::db_err(&path))?;
        Self::upgrade(&tx, &path)?;
        for (k, v) in [
            ("format_version", FORMAT_VERSION.to_string()),
            ("policy_version", policy.version_hex().to_string()),
            ("policy", policy.to_json()),
            ("key_id", keys.key_id()),
            ("key_check", key_check(keys.as_ref())?),
            ("next_version", "0".into()),
            ("next_seq", "0".into()),
        ] {
            tx.execute("INSERT INTO meta(k, v) VALUES (?1, ?2)", params![k, v])
                .map_err(Self::db_err(&path))?;
        }
        tx.commit().map_err(Self::db_err(&path))?;
        Ok(Durable::with(conn, path, keys))
    }

    /// A store over an open connection, before anything is read from it.
    fn with(conn: Connection, path: PathBuf, keys: Arc<dyn KeyProvider>) -> Durable {
        Durable {
            conn: Mutex::new(conn),
            path,
            keys,
            deks: HashMap::new(),
            rows: 0,
            next_version: 0,
            generation: 0,
            snapshot_lock: Mutex::new(()),
        }
    }

    /// Opens the store database in `dir`.
    pub(crate) fn open(dir: &Path, keys: Arc<dyn KeyProvider>) -> Result<Durable, StoreError> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StoreError::Location(format!(
                "{} holds no store ({DB_FILE} is missing): create one first",
                dir.display()
            )));
        }
        let conn = Self::connect(&path, false)?;
        let mut d = Durable::with(conn, path, keys);
        let found: i64 = d
            .meta("format_version")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Damaged("no format version".into()))?;
        if found != FORMAT_VERSION {
            return Err(StoreError::Format { found });
        }
        // The key-encryption key must be the store's even when it holds no
        // subject yet: a store whose data keys were wrapped under two keys
        // could no longer be opened under either.
        if let Some(check) = d.meta("key_check")? {
            let wrapped = hex_decode(&check)
                .ok_or_else(|| StoreError::Damaged("the key check is not hex".into()))?;
            if d.keys.unwrap(&wrapped).is_err() {
                let id = d.meta("key_id")?.unwrap_or_default();
                return Err(StoreError::Key(KeyError(format!(
                    "the key-encryption key {:?} does not open this store (its key is {id:?})",
                    d.keys.key_id()
                ))));
            }
        }
        d.next_version = d
            .meta("next_version")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Damaged("no write version".into()))?;
        Self::upgrade(
            d.conn.get_mut().unwrap_or_else(PoisonError::into_inner),
            &d.path,
        )?;
        d.generation = d
            .meta("generation")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Damaged("no write generation".into()))?;
        let rows: Option<i64> = d
            .conn
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .query_row("SELECT max(row) FROM subjects", [], |r| r.get(0))
            .map_err(Self::db_err(&d.path))?;
        d.rows = match rows {
            None => 0,
            Some(m) => {
                u32::try_from(m + 1).map_err(|_| StoreError::Damaged(format!("subject row {m}")))?
            }
        };
        Ok(d)
    }

    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        Self::db_err(&self.path)
    }

    /// A meta value.
    pub(crate) fn meta(&self, k: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query_row("SELECT v FROM meta WHERE k = ?1", params![k], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map_err(self.err())
    }

    /// The next event sequence number on record.
    pub(crate) fn next_seq(&self) -> Result<u64, StoreError> {
        self.meta("next_seq")?
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Damaged("no event sequence".into()))
    }

    /// Records that the store now runs under `policy`.
    pub(crate) fn set_policy(&mut self, policy: &Policy) -> Result<(), StoreError> {
        let conn = self.conn.get_mut().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction().map_err(Self::db_err(&self.path))?;
        for (k, v) in [
            ("policy_version", policy.version_hex().to_string()),
            ("policy", policy.to_json()),
        ] {
            tx.execute("UPDATE meta SET v = ?2 WHERE k = ?1", params![k, v])
                .map_err(Self::db_err(&self.path))?;
        }
        tx.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'generation'",
            params![(self.generation + 1).to_string()],
        )
        .map_err(Self::db_err(&self.path))?;
        tx.commit().map_err(Self::db_err(&self.path))?;
        self.generation += 1;
        Ok(())
    }

    /// Runs `f` in one transaction, committed before this returns; the
    /// staged key and version changes are kept only if the commit succeeds.
    pub(crate) fn write<R>(
        &mut self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let path = self.path.clone();
        let mut deks = std::mem::take(&mut self.deks);
        let result = Self::run(
            self.conn.get_mut().unwrap_or_else(PoisonError::into_inner),
            &path,
            &*self.keys,
            &mut deks,
            self.rows,
            (self.next_version, self.generation),
            f,
        );
        self.deks = deks;
        let (out, staged) = result?;
        // New rows' keys are read back when a later write needs them.
        self.rows += staged.new_keys.len() as u32;
        self.next_version = staged.version;
        self.generation = staged.generation;
        Ok(out)
    }

    fn run<R>(
        conn: &mut Connection,
        path: &Path,
        keys: &dyn KeyProvider,
        deks: &mut HashMap<u32, LessSafeKey>,
        rows: u32,
        (version, generation): (u64, u64),
        f: impl FnOnce(&mut Writer<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Staged), StoreError> {
        let tx = conn.transaction().map_err(Self::db_err(path))?;
        let mut w = Writer {
            tx,
            path,
            keys,
            deks,
            rows,
            staged: Staged {
                new_keys: Vec::new(),
                version,
                generation: generation + 1,
            },
        };
        let out = f(&mut w)?;
        w.tx.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'next_version'",
            params![w.staged.version.to_string()],
        )
        .map_err(Self::db_err(path))?;
        w.tx.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'generation'",
            params![w.staged.generation.to_string()],
        )
        .map_err(Self::db_err(path))?;
        let Writer { tx, staged, .. } = w;
        tx.commit().map_err(Self::db_err(path))?;
        Ok((out, staged))
    }

    /// Forgets an erased row's data key.
    pub(crate) fn forget_key(&mut self, row: u32) {
        self.deks.remove(&row);
    }

    /// The write generation of the record (see [`Durable::write`]).
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Number of rows on record.
    pub(crate) fn rows(&self) -> u32 {
        self.rows
    }

    /// One snapshot writer at a time: the guard to hold while writing.
    pub(crate) fn snapshot_guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.snapshot_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The store's directory.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The snapshot on record: the generation it was made at, its id and
    /// its key (unwrapped), or `None`.
    #[allow(clippy::type_complexity)]
    pub(crate) fn snapshot_record(
        &self,
    ) -> Result<Option<(u64, Vec<u8>, zeroize::Zeroizing<[u8; 32]>)>, StoreError> {
        let row: Option<(i64, Vec<u8>, Vec<u8>)> = self
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query_row(
                "SELECT generation, id, key FROM snapshot WHERE one = 0",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err())?;
        match row {
            None => Ok(None),
            Some((generation, id, wrapped)) => {
                let key = self.keys.unwrap(&wrapped)?;
                Ok(Some((generation as u64, id, key)))
            }
        }
    }

    /// Records a snapshot made at `generation` (its key wrapped under the
    /// key-encryption key), replacing any earlier record.
    pub(crate) fn set_snapshot_record(
        &self,
        generation: u64,
        id: &[u8],
        key: &[u8; 32],
    ) -> Result<(), StoreError> {
        let wrapped = self.keys.wrap(key)?;
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .execute(
                "INSERT OR REPLACE INTO snapshot(one, generation, id, key) VALUES (0, ?1, ?2, ?3)",
                params![generation as i64, id, wrapped],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Moves every page of the write-ahead log into the database and
    /// truncates the log, so that no old page image stays beside it.
    pub(crate) fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(self.err())
            .and_then(|busy| {
                if busy == 0 {
                    Ok(())
                } else {
                    Err(StoreError::Database {
                        path: self.path.clone(),
                        message: "the checkpoint could not complete".into(),
                    })
                }
            })
    }

    /// Rewraps every data key under `new` in one transaction; values are
    /// not touched.
    pub(crate) fn rotate(&mut self, new: Arc<dyn KeyProvider>) -> Result<u64, StoreError> {
        let path = self.path.clone();
        let conn = self.conn.get_mut().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction().map_err(Self::db_err(&path))?;
        let mut n = 0u64;
        {
            let mut sel = tx
                .prepare("SELECT row, dek FROM subjects WHERE dek IS NOT NULL")
                .map_err(Self::db_err(&path))?;
            let mut upd = tx
                .prepare("UPDATE subjects SET dek = ?2 WHERE row = ?1")
                .map_err(Self::db_err(&path))?;
            let rows = sel
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .map_err(Self::db_err(&path))?;
            for row in rows {
                let (row, wrapped) = row.map_err(Self::db_err(&path))?;
                let dek = self.keys.unwrap(&wrapped)?;
                upd.execute(params![row, new.wrap(&dek)?])
                    .map_err(Self::db_err(&path))?;
                n += 1;
            }
        }
        let snap: Option<Vec<u8>> = tx
            .query_row("SELECT key FROM snapshot WHERE one = 0", [], |r| r.get(0))
            .optional()
            .map_err(Self::db_err(&path))?;
        if let Some(wrapped) = snap {
            let k = self.keys.unwrap(&wrapped)?;
            tx.execute(
                "UPDATE snapshot SET key = ?1 WHERE one = 0",
                params![new.wrap(&k)?],
            )
            .map_err(Self::db_err(&path))?;
        }
        tx.execute(
            "UPDATE meta SET v = ?1 WHERE k = 'key_id'",
            params![new.key_id()],
        )
        .map_err(Self::db_err(&path))?;
        tx.execute(
            "INSERT OR REPLACE INTO meta(k, v) VALUES ('key_check', ?1)",
            params![key_check(new.as_ref())?],
        )
        .map_err(Self::db_err(&path))?;
        tx.commit().map_err(Self::db_err(&path))?;
        self.keys = new;
        Ok(n)
    }

    /// Reads every subject (unwrapping data keys), value and event.
    #[allow(clippy::type_complexity)]
    pub(crate) fn load(
        &mut self,
    ) -> Result<(Vec<LoadedSubject>, Vec<LoadedValue>, Vec<LoadedEvent>), StoreError> {
        let conn = self.conn.get_mut().unwrap_or_else(PoisonError::into_inner);
        let (subjects, deks) = load_subjects(conn, &self.path, &*self.keys)?;
        let values = load_values(conn, &self.path, &deks)?;
        let events = load_events(conn, &self.path)?;
        self.rows = subjects.len() as u32;
        Ok((subjects, values, events))
    }
}

/// One open transaction of [`Durable::write`].
pub(crate) struct Writer<'a> {
    tx: Transaction<'a>,
    path: &'a Path,
    keys: &'a dyn KeyProvider,
    deks: &'a mut HashMap<u32, LessSafeKey>,
    /// Rows on record before this transaction.
    rows: u32,
    staged: Staged,
}

impl Writer<'_> {
    fn err(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        Durable::db_err(self.path)
    }

    /// A row's data key: a new row's from this transaction, else the
    /// one on record (unwrapped once, then kept).
    fn key(&mut self, row: u32) -> Result<&LessSafeKey, StoreError> {
        let missing = || StoreError::Damaged(format!("row {row} has no data key"));
        if row >= self.rows {
            return self
                .staged
                .new_keys
                .get((row - self.rows) as usize)
                .ok_or_else(missing);
        }
        if !self.deks.contains_key(&row) {
            let wrapped: Option<Vec<u8>> = self
                .tx
                .query_row(
                    "SELECT dek FROM subjects WHERE row = ?1",
                    params![row],
                    |r| r.get(0),
                )
                .optional()
                .map_err(Durable::db_err(self.path))?
                .flatten();
            let wrapped = wrapped.ok_or_else(missing)?;
            let key = aead_key(&*self.keys.unwrap(&wrapped)?);
            self.deks.insert(row, key);
        }
        self.deks.get(&row).ok_or_else(missing)
    }

    fn bump(&mut self) -> u64 {
        self.staged.version += 1;
        self.staged.version
    }

    /// A new subject at `row` (the next row) with a fresh data key.
    pub(crate) fn subject(
        &mut self,
        row: u32,
        id: &str,
        jurisdiction: &str,
        birth: Option<&str>,
    ) -> Result<(), StoreError> {
        if row as usize != self.rows as usize + self.staged.new_keys.len() {
            return Err(StoreError::Damaged(format!(
                "row {row} is not the next row"
            )));
        }
        let dek = random_key()?;
        let wrapped = self.keys.wrap(&dek)?;
        let key = aead_key(&dek);
        let (sealed_birth, bver) = match birth {
            Some(b) => {
                let v = self.bump();
                (
                    Some(seal(&key, &aad(row, "\0birth", v), b.as_bytes())?),
                    Some(v as i64),
                )
            }
            None => (None, None),
        };
        self.tx
            .execute(
                "INSERT INTO subjects(row, id, juris, birth, birth_version, dek) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row, id, jurisdiction, sealed_birth, bver, wrapped],
            )
            .map_err(self.err())?;
        self.staged.new_keys.push(key);
        Ok(())
    }

    /// Sets a value (sealed under the row's data key).
    pub(crate) fn value(
        &mut self,
        row: u32,
        attr: &str,
        value: &Value,
        verified: i64,
    ) -> Result<(), StoreError> {
        let version = self.bump();
        let plain = zeroize::Zeroizing::new(
            serde_json::to_vec(value).map_err(|e| StoreError::Damaged(e.to_string()))?,
        );
        let aad = aad(row, attr, version);
        let sealed = seal(self.key(row)?, &aad, &plain)?;
        self.tx
            .execute(
                "INSERT INTO vals(row, attr, version, verified, sealed) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT(row, attr) DO UPDATE SET version = ?3, verified = ?4, sealed = ?5",
                params![row, attr, version as i64, verified, sealed],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes a value.
    pub(crate) fn clear(&mut self, row: u32, attr: &str) -> Result<(), StoreError> {
        self.tx
            .execute(
                "DELETE FROM vals WHERE row = ?1 AND attr = ?2",
                params![row, attr],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Appends an event.
    pub(crate) fn event(&mut self, e: &StoredEvent<'_>) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO events(seq, row, at, expires, purpose, notice, kind, explicit, channel, \
                 collector, notice_sha, evidence_sha) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    e.rec.seq as i64,
                    e.row,
                    e.rec.at,
                    e.rec.expires_at,
                    e.purpose,
                    e.notice,
                    e.rec.kind.as_str(),
                    i64::from(e.rec.explicit),
                    e.channel,
                    e.collector,
                    e.proof.notice_sha256.map(|h| h.to_vec()),
                    e.proof.evidence_sha256.map(|h| h.to_vec()),
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// The next event sequence number.
    pub(crate) fn set_next_seq(&mut self, next: u64) -> Result<(), StoreError> {
        self.tx
            .execute(
                "UPDATE meta SET v = ?1 WHERE k = 'next_seq'",
                params![next.to_string()],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Erases a row: its wrapped key, id, birth date, values and events.
    pub(crate) fn erase(&mut self, row: u32, at: i64) -> Result<(), StoreError> {
        let e = self.err();
        self.tx
            .execute(
                "UPDATE subjects SET id = NULL, birth = NULL, birth_version = NULL, dek = NULL WHERE row = ?1",
                params![row],
            )
            .map_err(&e)?;
        self.tx
            .execute("DELETE FROM vals WHERE row = ?1", params![row])
            .map_err(&e)?;
        self.tx
            .execute("DELETE FROM events WHERE row = ?1", params![row])
            .map_err(&e)?;
        // The snapshot holds the subject's id and values: its key goes
        // with the subject's (the file is deleted after the commit).
        self.tx.execute("DELETE FROM snapshot", []).map_err(&e)?;
        self.tx
            .execute(
                "INSERT INTO journal(at, what, rows, items) VALUES (?1, 'erasure', 1, 0)",
                params![at],
            )
            .map_err(&e)?;
        Ok(())
    }

    /// Records a retention purge (counts only).
    pub(crate) fn purge_record(
        &mut self,
        at: i64,
        rows: u64,
        values: u64,
    ) -> Result<(), StoreError> {
        self.tx
            .execute(
                "INSERT INTO journal(at, what, rows, items) VALUES (?1, 'retention_purge', ?2, ?3)",
                params![at, rows as i64, values as i64],
            )
            .map_err(self.err())?;
        Ok(())
    }
}
/// Every subject row, with its birth date opened, and its data key (for
/// the values; writes unwrap keys again one at a time when they need them).
#[allow(clippy::type_complexity)]
fn load_subjects(
    conn: &Connection,
    path: &Path,
    keys: &dyn KeyProvider,
) -> Result<(Vec<LoadedSubject>, Vec<Option<LessSafeKey>>), StoreError> {
    let e = Durable::db_err(path);
    let mut subjects = Vec::new();
    // Data keys are needed here to open values; writes read them back
    // one at a time when they need them.
    let mut deks: Vec<Option<LessSafeKey>> = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT row, id, juris, birth, birth_version, dek FROM subjects ORDER BY row")
            .map_err(&e)?;
        let mut rows = st.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let row: i64 = r.get(0).map_err(&e)?;
            let row = u32::try_from(row)
                .ok()
                .filter(|&x| x as usize == subjects.len())
                .ok_or_else(|| StoreError::Damaged(format!("subject row {row} out of order")))?;
            let id: Option<String> = r.get(1).map_err(&e)?;
            let juris: String = r.get(2).map_err(&e)?;
            let birth: Option<Vec<u8>> = r.get(3).map_err(&e)?;
            let bver: Option<i64> = r.get(4).map_err(&e)?;
            let dek: Option<Vec<u8>> = r.get(5).map_err(&e)?;
            let key = match (&id, dek) {
                (Some(_), Some(w)) => Some(aead_key(&*keys.unwrap(&w)?)),
                (None, None) => None,
                _ => {
                    return Err(StoreError::Damaged(format!(
                        "subject row {row} has an id without a key or a key without an id"
                    )));
                }
            };
            let birth = match (birth, &key) {
                (Some(b), Some(k)) => {
                    let plain = open(k, &aad(row, "\0birth", bver.unwrap_or(-1) as u64), &b)
                        .ok_or_else(|| {
                            StoreError::Damaged(format!("birth date of row {row} does not decrypt"))
                        })?;
                    Some(
                        String::from_utf8(plain)
                            .map_err(|_| StoreError::Damaged(format!("birth date of row {row}")))?,
                    )
                }
                _ => None,
            };
            deks.push(key);
            subjects.push(LoadedSubject {
                row,
                id,
                jurisdiction: juris,
                birth,
            });
        }
    }
    Ok((subjects, deks))
}

/// Every value, opened under its subject's data key.
fn load_values(
    conn: &Connection,
    path: &Path,
    deks: &[Option<LessSafeKey>],
) -> Result<Vec<LoadedValue>, StoreError> {
    let e = Durable::db_err(path);
    let mut values = Vec::new();
    {
        let mut st = conn
            .prepare("SELECT row, attr, version, verified, sealed FROM vals ORDER BY row, attr")
            .map_err(&e)?;
        let mut rows = st.query([]).map_err(&e)?;
        while let Some(r) = rows.next().map_err(&e)? {
            let row: i64 = r.get(0).map_err(&e)?;
            let attr: String = r.get(1).map_err(&e)?;
            let version: i64 = r.get(2).map_err(&e)?;
            let verified: i64 = r.get(3).map_err(&e)?;
            let sealed: Vec<u8> = r.get(4).map_err(&e)?;
            let row = u32::try_from(row).map_err(|_| StoreError::Damaged("value row".into()))?;
            let key = deks
                .get(row as usize)
                .and_then(Option::as_ref)
                .ok_or_else(|| {
                    StoreError::Damaged(format!("a value of row {row} has no subject key"))
                })?;
            let plain = open(key, &aad(row, &attr, version as u64), &sealed).ok_or_else(|| {
                StoreError::Damaged(format!("value {attr:?} of row {row} does not decrypt"))
            })?;
            let value: Value = serde_json::from_slice(&plain)
                .map_err(|_| StoreError::Damaged(format!("value {attr:?} of row {row}")))?;
            values.push(LoadedValue {
                row,
                attr,
                verified,
                value,
            });
        }
    }
    Ok(values)
}

/// Every event, in sequence order.
fn load_events(conn: &Connection, path: &Path) -> Result<Vec<LoadedEvent>, StoreError> {
    let e = Durable::db_err(path);
    let mut events = Vec::new();
    {
        let mut st = conn
            .prepare(
                "SELECT seq, row, at, expires, purpose, notice, kind, explicit, channel, \
                 collector, notice_sha, evidence_sha FROM events ORDER BY seq",
            )
            .map_err(&e)?;
        let mut rows = st.query([]).map_err(&e)?;
        let sha = |v: Option<Vec<u8>>| -> Result<Option<[u8; 32]>, StoreError> {
            v.map(|b| {
                <[u8; 32]>::try_from(b.as_slice())
                    .map_err(|_| StoreError::Damaged("event digest length".into()))
            })
            .transpose()
        };
        while let Some(r) = rows.next().map_err(&e)? {
            let kind: String = r.get(6).map_err(&e)?;
            let row: i64 = r.get(1).map_err(&e)?;
            events.push(LoadedEvent {
                seq: r.get::<_, i64>(0).map_err(&e)? as u64,
                row: u32::try_from(row).map_err(|_| StoreError::Damaged("event row".into()))?,
                at: r.get(2).map_err(&e)?,
                expires_at: r.get(3).map_err(&e)?,
                purpose: r.get(4).map_err(&e)?,
                notice: r.get(5).map_err(&e)?,
                kind: EventKind::parse(&kind)
                    .ok_or_else(|| StoreError::Damaged(format!("event kind {kind:?}")))?,
                explicit: r.get::<_, i64>(7).map_err(&e)? != 0,
                channel: r.get(8).map_err(&e)?,
                collector: r.get(9).map_err(&e)?,
                notice_sha256: sha(r.get(10).map_err(&e)?)?,
                evidence_sha256: sha(r.get(11).map_err(&e)?)?,
            });
        }
    }
    Ok(events)
}

/// Attribute name of an id, for the records.
pub(crate) fn attr_name(policy: &Policy, a: AttrId) -> &str {
    &policy.attribute(a).name
}

/// A zero key wrapped under the key-encryption key, as hex: unwrapping it on
/// open shows the key is the store's.
fn key_check(keys: &dyn KeyProvider) -> Result<String, StoreError> {
    let wrapped = keys.wrap(&[0u8; 32])?;
    Ok(wrapped.iter().map(|b| format!("{b:02x}")).collect())
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
