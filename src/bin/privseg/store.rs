//! The durable store from the command line: `init`, `import`, `erase`,
//! `purge`, and `--store DIR` for the data commands (see docs/cli.md).
//!
//! A store directory holds the database (`store.db`), and by default the
//! key-encryption key (`store.key`), the audit log (`audit.log`) and its
//! pseudonym key (`audit.key`), each key file readable by its owner only.
//! `--key-file` keeps the key-encryption key elsewhere (the safer place:
//! another volume or a secret store), `--audit-log`/`--audit-key-file` the
//! log. One process at a time uses a store: each run holds an exclusive
//! lock on `DIR/store.lock`, since an engine keeps the row numbering in
//! memory between its writes.

use std::os::unix::fs::OpenOptionsExt;

use privseg::access::{Permission, authorize};
use privseg::store::{KeyProvider, StaticKek};
use ring::rand::{SecureRandom, SystemRandom};

use super::*;

/// The key-encryption key's default file in a store directory.
pub const KEY_FILE: &str = "store.key";
/// The audit log's default file in a store directory.
pub const AUDIT_LOG: &str = "audit.log";
/// The audit pseudonym key's default file in a store directory.
pub const AUDIT_KEY: &str = "audit.key";
/// The file locked by the run using a store.
pub const LOCK_FILE: &str = "store.lock";

/// Where the durable store and its key are.
#[derive(Args, Debug, Clone)]
pub struct StoreLocation {
    /// The store directory (made by `privseg init`).
    #[arg(long, value_name = "DIR")]
    pub store: PathBuf,
    /// The key-encryption key: 32 raw bytes or 64 hex digits
    /// [default: DIR/store.key].
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

/// `--store DIR` for the data commands, instead of --subjects/--consents.
#[derive(Args, Debug, Clone)]
pub struct StoreSource {
    /// Read the subjects and consent events from this durable store (made by
    /// `privseg init`, filled by `privseg import`) instead of files. Its
    /// audit log is DIR/audit.log unless --audit-log says otherwise.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["subjects", "consents", "delimiter"])]
    pub store: Option<PathBuf>,
    /// The store's key-encryption key [default: DIR/store.key].
    #[arg(long = "key-file", value_name = "FILE", requires = "store")]
    pub store_key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    who: ActorArgs,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    at: StoreLocation,
    #[command(flatten)]
    audit: AuditArgs,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    who: ActorArgs,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    at: StoreLocation,
    /// Subjects, CSV with a header (as for `eval`). `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    subjects: PathBuf,
    /// Consent events, JSON Lines. `-` reads standard input (not both).
    #[arg(long, value_name = "FILE")]
    consents: PathBuf,
    /// The field delimiter of the subjects file: one ASCII character, or `tab`.
    #[arg(long, value_name = "CHAR", default_value = ",", value_parser = parse_delimiter)]
    delimiter: u8,
    #[command(flatten)]
    audit: AuditArgs,
}

#[derive(Args, Debug)]
pub struct EraseArgs {
    #[command(flatten)]
    who: ActorArgs,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    at: StoreLocation,
    /// The id of the subject to erase.
    #[arg(long, value_name = "ID")]
    subject: String,
    #[command(flatten)]
    audit: AuditArgs,
}

#[derive(Args, Debug)]
pub struct PurgeArgs {
    #[command(flatten)]
    who: ActorArgs,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    at: StoreLocation,
    #[command(flatten)]
    audit: AuditArgs,
}

fn key_path(dir: &Path, key_file: Option<&PathBuf>) -> PathBuf {
    key_file.cloned().unwrap_or_else(|| dir.join(KEY_FILE))
}

/// The audit log and key of a store: those given, else the store's own.
pub fn store_audit(dir: &Path, audit: &AuditArgs) -> AuditArgs {
    match (&audit.audit_log, &audit.audit_key_file) {
        (Some(_), Some(_)) => audit.clone(),
        _ => AuditArgs {
            audit_log: Some(dir.join(AUDIT_LOG)),
            audit_key_file: Some(dir.join(AUDIT_KEY)),
        },
    }
}

fn store_failure(dir: &Path, e: EngineError) -> Failure {
    match e {
        EngineError::Store(s) => Failure::Input(format!("store {}: {s}", dir.display())),
        other => engine_failure(other),
    }
}

/// Takes an exclusive lock on DIR/store.lock for the rest of the run.
fn lock_store(dir: &Path) -> Result<(), Failure> {
    static HELD: OnceLock<File> = OnceLock::new();
    let path = dir.join(LOCK_FILE);
    let fail =
        |e: std::io::Error| Failure::Input(format!("locking the store {}: {e}", path.display()));
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    file.lock().map_err(fail)?;
    let _ = HELD.set(file);
    Ok(())
}

fn read_kek(path: &Path) -> Result<Arc<dyn KeyProvider>, Failure> {
    StaticKek::from_file(path)
        .map(|k| Arc::new(k) as Arc<dyn KeyProvider>)
        .map_err(|e| Failure::Input(format!("key-encryption key file: {e}")))
}

/// Opens the store in `dir` under `policy`, with its audit log.
pub fn open_store(
    dir: &Path,
    key_file: Option<&PathBuf>,
    policy: Arc<Policy>,
    audit: &AuditArgs,
) -> Result<Engine, Failure> {
    if !dir.join(privseg::store::DB_FILE).is_file() {
        return Err(Failure::Input(format!(
            "{}: no store here (make one with `privseg init --store {} --policy P`)",
            dir.display(),
            dir.display()
        )));
    }
    lock_store(dir)?;
    let keys = read_kek(&key_path(dir, key_file))?;
    let (log, ids) = audit_parts(&store_audit(dir, audit))?;
    let engine =
        Engine::open_with_audit(dir, policy, keys, log, ids).map_err(|e| store_failure(dir, e))?;
    for change in &engine.open_report().policy_changes {
        eprintln!("note: the policy changed since the store was last written: {change}");
    }
    Ok(engine)
}

/// Writes `bytes` as hex to a new file readable by its owner only.
fn write_new_key(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    writeln!(f, "{}", hex(bytes))
        .and_then(|()| f.sync_all())
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
}

fn random_32() -> Result<Zeroizing<[u8; 32]>, Failure> {
    let mut k = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(&mut k[..])
        .map_err(|_| Failure::Input("the system random source failed".into()))?;
    Ok(k)
}

/// `privseg init`: a new store, with a fresh key-encryption key (and audit
/// key) in files only their owner can read. Needs `administer`. Nothing is
/// left behind when it fails.
pub fn init(a: InitArgs) -> Result<(), Failure> {
    let (policy, actor) = trusted(&a.policy.policy, &a.who)?;
    authorize(&policy, &actor, Permission::Administer)
        .map_err(|e| Failure::Denied(e.to_string()))?;
    let dir = &a.at.store;
    if dir.join(privseg::store::DB_FILE).exists() {
        return Err(Failure::Input(format!(
            "{}: a store is already here",
            dir.display()
        )));
    }
    let existed = dir.exists();
    std::fs::create_dir_all(dir).map_err(|e| Failure::Input(format!("{}: {e}", dir.display())))?;
    let mut made: Vec<PathBuf> = Vec::new();
    let result = (|| {
        lock_store(dir)?;
        let key = key_path(dir, a.at.key_file.as_ref());
        write_new_key(&key, &random_32()?[..])?;
        made.push(key.clone());
        let audit = store_audit(dir, &a.audit);
        if let Some(k) = audit
            .audit_key_file
            .as_ref()
            .filter(|_| a.audit.audit_log.is_none())
        {
            write_new_key(k, &random_32()?[..])?;
            made.push(k.clone());
        }
        let keys = read_kek(&key)?;
        let (log, ids) = audit_parts(&audit)?;
        let engine = Engine::create_with_audit(dir, policy, keys, log, ids)
            .map_err(|e| store_failure(dir, e))?;
        engine.seal_audit().map_err(engine_failure)?;
        println!(
            "created store {} (key-encryption key in {}, audit log in {})",
            dir.display(),
            key.display(),
            audit.audit_log.as_deref().unwrap_or(dir).display()
        );
        Ok(())
    })();
    if result.is_err() {
        for f in &made {
            let _ = std::fs::remove_file(f);
        }
        if !existed {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}

/// `privseg import`: appends the subjects and events of the files to the
/// store in one transaction: all of them, or none. Needs `subjects`.
pub fn import(a: ImportArgs) -> Result<(), Failure> {
    let (policy, actor) = trusted(&a.policy.policy, &a.who)?;
    let dir = &a.at.store;
    let engine = open_store(dir, a.at.key_file.as_ref(), policy, &a.audit)?;
    let before = engine.subject_count();
    let (engine, stats, took) = load(&a.subjects, &a.consents, a.delimiter, engine, &actor)?;
    eprintln!(
        "imported {} subjects and {} events into {} in {:.3} s ({} subjects in the store, {} before)",
        stats.subjects,
        stats.events,
        dir.display(),
        took.as_secs_f64(),
        engine.subject_count(),
        before
    );
    // A snapshot of the state, so that the next command opens fast.
    engine.checkpoint().map_err(|e| store_failure(dir, e))?;
    engine.seal_audit().map_err(engine_failure)
}

/// `privseg erase`: erases a subject (R21): its data key, id, values and
/// events are deleted from disk. Needs `subjects`.
pub fn erase(a: EraseArgs) -> Result<(), Failure> {
    let (policy, actor) = trusted(&a.policy.policy, &a.who)?;
    let mut engine = open_store(&a.at.store, a.at.key_file.as_ref(), policy, &a.audit)?;
    engine.erase(&actor, &a.subject).map_err(engine_failure)?;
    eprintln!("erased subject {:?}", a.subject);
    // The erasure deleted the snapshot; a new one without the subject.
    engine
        .checkpoint()
        .map_err(|e| store_failure(&a.at.store, e))?;
    engine.seal_audit().map_err(engine_failure)
}

/// `privseg purge`: removes the values past their category's retention
/// period (R17). Needs `subjects`.
pub fn purge(a: PurgeArgs) -> Result<(), Failure> {
    let (policy, actor) = trusted(&a.policy.policy, &a.who)?;
    let mut engine = open_store(&a.at.store, a.at.key_file.as_ref(), policy, &a.audit)?;
    let s = engine.purge(&actor).map_err(engine_failure)?;
    println!(
        "purged {} values past retention from {} subjects",
        s.values, s.subjects
    );
    engine
        .checkpoint()
        .map_err(|e| store_failure(&a.at.store, e))?;
    engine.seal_audit().map_err(engine_failure)
}
