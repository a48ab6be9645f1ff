//! A budget ledger kept in a file that several processes share.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{BudgetError, BudgetLedger};

/// Where a ledger is kept: in memory, or in a file shared by processes.
///
/// [`transact`](BudgetStore::transact) gives exclusive access to the ledger
/// for the whole of a read-check-charge-write, and keeps what the closure
/// changed only if it succeeds.
pub trait BudgetStore {
    /// Runs `f` on the ledger with exclusive access. If `f` succeeds and
    /// changed the ledger, the change is durable before this returns; if
    /// `f` fails, nothing is kept.
    ///
    /// # Errors
    /// `f`'s error, or [`BudgetError::File`] if the store cannot be read,
    /// locked or written.
    fn transact<T, E: From<BudgetError>>(
        &mut self,
        f: impl FnOnce(&mut BudgetLedger) -> Result<T, E>,
    ) -> Result<T, E>;
}

impl BudgetStore for BudgetLedger {
    fn transact<T, E: From<BudgetError>>(
        &mut self,
        f: impl FnOnce(&mut BudgetLedger) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut work = self.clone();
        let out = f(&mut work)?;
        *self = work;
        Ok(out)
    }
}

/// A [`BudgetLedger`] in a JSON file, shared by processes.
///
/// Every transaction takes an exclusive lock on a lock file beside the
/// ledger (`FILE.lock`, never replaced, so every process locks the same
/// file) and holds it across reading, checking, charging and writing. The
/// ledger is written to a temporary file beside it, synced, renamed over it,
/// and the directory synced, so a crash leaves the old or the new ledger,
/// never a mix.
///
/// A missing file reads as an empty ledger: this type cannot know whether
/// one existed. The engine compares the ledger with the charges its audit
/// log records and refuses a ledger that is behind it (see
/// [`crate::Engine::dp_count`]); [`LedgerFile::beside_audit_log`] keeps the
/// two together.
///
/// ```
/// use privseg::privacy::dp::{BudgetError, BudgetStore, LedgerFile};
///
/// let dir = std::env::temp_dir().join(format!("privseg-ledger-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let mut file = LedgerFile::new(dir.join("budget.json"));
/// let charge = file
///     .transact(|l| l.charge("Acme", "analytics", "1".parse().unwrap(), "0.5".parse().unwrap()))
///     .unwrap();
/// assert_eq!(charge.remaining.to_string(), "1/2");
/// assert_eq!(file.read().unwrap().spent("Acme", "analytics").to_string(), "1/2");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct LedgerFile {
    path: PathBuf,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

impl LedgerFile {
    /// The ledger in `path` (created on the first charge).
    pub fn new(path: impl Into<PathBuf>) -> LedgerFile {
        LedgerFile { path: path.into() }
    }

    /// The ledger kept beside an audit log file: `LOG.budget`.
    pub fn beside_audit_log(log: &Path) -> LedgerFile {
        LedgerFile::new(with_suffix(log, ".budget"))
    }

    /// The ledger's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The lock file's path: `FILE.lock`.
    pub fn lock_path(&self) -> PathBuf {
        with_suffix(&self.path, ".lock")
    }

    fn err(&self, what: &str, e: std::io::Error) -> BudgetError {
        BudgetError::File(format!("{what} {}: {e}", self.path.display()))
    }

    fn lock(&self) -> Result<File, BudgetError> {
        let lock_path = self.lock_path();
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                BudgetError::File(format!(
                    "opening the lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        lock.lock()
            .map_err(|e| BudgetError::File(format!("locking {}: {e}", lock_path.display())))?;
        Ok(lock)
    }

    fn load(&self) -> Result<BudgetLedger, BudgetError> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => BudgetLedger::from_json(&text).map_err(|e| match e {
                BudgetError::File(m) => BudgetError::File(format!("{}: {m}", self.path.display())),
                other => other,
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(BudgetLedger::new()),
            Err(e) => Err(self.err("reading", e)),
        }
    }

    /// A snapshot of the ledger, read under the lock (empty if there is no
    /// file yet).
    ///
    /// # Errors
    /// [`BudgetError::File`] if the file cannot be locked, read or parsed.
    pub fn read(&self) -> Result<BudgetLedger, BudgetError> {
        let _lock = self.lock()?;
        self.load()
    }

    /// Replaces the file: a temporary file beside it, synced, renamed over
    /// it, then the directory synced.
    fn save(&self, ledger: &BudgetLedger) -> Result<(), BudgetError> {
        let text = ledger.to_json()?;
        let name = self.path.file_name().ok_or_else(|| {
            BudgetError::File(format!("{}: not a file name", self.path.display()))
        })?;
        let mut tmp_name = OsString::from(".");
        tmp_name.push(name);
        // Unique per process and per write, so that no two writers ever
        // share a temporary file, even without the lock.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        tmp_name.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = self.path.with_file_name(tmp_name);
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, &self.path)?;
            let dir = match self.path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            self.err("writing", e)
        })
    }
}

impl BudgetStore for LedgerFile {
    fn transact<T, E: From<BudgetError>>(
        &mut self,
        f: impl FnOnce(&mut BudgetLedger) -> Result<T, E>,
    ) -> Result<T, E> {
        // Held until the end of this function: the read, the check and the
        // write below are one step for every process using this file.
        let _lock = self.lock()?;
        let before = self.load()?;
        let mut ledger = before.clone();
        let out = f(&mut ledger)?;
        if ledger != before {
            self.save(&ledger)?;
        }
        Ok(out)
    }
}
