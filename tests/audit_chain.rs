//! The keyed chain and the head record: with the host's audit key alone
//! (no checkpoint), every edit, deletion, reordering, renumbering,
//! truncation or rewrite of a log file is detected, and damaged bytes are
//! moved aside, never deleted.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use privseg::audit::{
    AuditEntry, AuditError, AuditLog, CheckpointSigner, FileSink, Operation, PendingEntry,
    RunState, SyncPolicy, verify_file, verify_file_with_key,
};

const KEY: &[u8] = &[0x42; 32];

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "privseg-audit-chain-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn head_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

fn pending(i: u64) -> PendingEntry {
    PendingEntry::new(1_767_225_600 + i as i64, "svc", Operation::SubjectAccessed)
        .pseudonymous_subject(format!("{:064x}", i))
        .detail("attribute", "region")
}

/// Appends `n` entries in one run and seals it.
fn append_run(path: &Path, key: &[u8], n: u64) {
    let (sink, report) = FileSink::open(path, SyncPolicy::Never).unwrap();
    assert!(report.discarded.is_none());
    let mut log = AuditLog::open(sink, key).unwrap();
    let start = log.len();
    for i in start..start + n {
        log.append(pending(i)).unwrap();
    }
    log.seal().unwrap();
}

/// A record with a valid checksum, as anyone knowing the format can make.
fn frame(entry: &AuditEntry) -> Vec<u8> {
    let payload = entry.canonical_bytes().unwrap();
    let mut head = b"PSA1".to_vec();
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new_with_initial(0x5053_4731);
    h.update(&head);
    h.update(&payload);
    let mut out = head;
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn write_entries(path: &Path, entries: &[AuditEntry]) {
    let bytes: Vec<u8> = entries.iter().flat_map(frame).collect();
    std::fs::write(path, bytes).unwrap();
}

/// A sealed log of `n` entries and its entries as read back.
fn sealed_log(dir: &Scratch, n: u64) -> (PathBuf, Vec<AuditEntry>) {
    let path = dir.file("a.audit");
    append_run(&path, KEY, n);
    let entries = FileSink::scan(&path).unwrap().entries;
    // The framing above reproduces the file exactly (so the attacks below
    // change only what they say they change).
    let bytes: Vec<u8> = entries.iter().flat_map(frame).collect();
    assert_eq!(bytes, std::fs::read(&path).unwrap());
    (path, entries)
}

/// Opens the file with the key, as the next run would, and returns the
/// error; also checks that the read-only keyed verification agrees.
fn keyed_open_error(path: &Path) -> AuditError {
    let read_only = verify_file_with_key(path, KEY);
    assert!(read_only.is_err(), "read-only verification accepted it");
    let (sink, _) = FileSink::open(path, SyncPolicy::Never).unwrap();
    match AuditLog::open(sink, KEY) {
        Ok(log) => panic!("accepted a tampered log of {} entries", log.len()),
        Err(e) => e,
    }
}

fn tampered_at(err: &AuditError) -> u64 {
    match err {
        AuditError::Tampered { index, .. } => *index,
        other => panic!("expected Tampered, got {other}"),
    }
}

#[test]
fn untouched_log_opens_sealed() {
    let dir = Scratch::new("clean");
    let (path, _) = sealed_log(&dir, 5);
    let report = verify_file_with_key(&path, KEY).unwrap();
    assert_eq!(report.state, RunState::Sealed { entries: 5 });
    let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let log = AuditLog::open(sink, KEY).unwrap();
    assert_eq!(log.run_state(), RunState::Sealed { entries: 5 });
    // Another key does not verify it.
    let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    assert_eq!(
        tampered_at(&AuditLog::open(sink, &[0x43; 32]).unwrap_err()),
        0
    );
}

#[test]
fn an_edited_byte_of_an_actor_is_detected() {
    let dir = Scratch::new("actor");
    let (path, mut entries) = sealed_log(&dir, 6);
    entries[3].actor = "svd".into(); // one byte
    write_entries(&path, &entries);
    assert_eq!(tampered_at(&keyed_open_error(&path)), 3);
}

#[test]
fn a_deleted_entry_with_later_ones_renumbered_is_detected() {
    let dir = Scratch::new("renumber");
    let (path, mut entries) = sealed_log(&dir, 6);
    entries.remove(2);
    for e in &mut entries[2..] {
        e.seq -= 1;
    }
    write_entries(&path, &entries);
    assert_eq!(tampered_at(&keyed_open_error(&path)), 2);
}

#[test]
fn two_entries_swapped_and_renumbered_are_detected() {
    let dir = Scratch::new("reorder");
    let (path, mut entries) = sealed_log(&dir, 6);
    entries.swap(1, 4);
    entries[1].seq = 1;
    entries[4].seq = 4;
    write_entries(&path, &entries);
    assert_eq!(tampered_at(&keyed_open_error(&path)), 1);
}

/// Cutting the log back to where an earlier run sealed it, or to where a
/// checkpoint was handed out, passes the checkpoint but not the head.
#[test]
fn truncation_to_an_earlier_head_or_checkpoint_is_detected() {
    let dir = Scratch::new("truncate");
    let path = dir.file("a.audit");
    let signer = CheckpointSigner::from_seed(&[0x5a; 32]).unwrap();
    append_run(&path, KEY, 3);
    let at_first_head = std::fs::read(&path).unwrap();
    let old_head = std::fs::read(head_of(&path)).unwrap();
    let cp = {
        let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
        AuditLog::open(sink, KEY)
            .unwrap()
            .checkpoint(&signer, 1_767_300_000)
            .unwrap()
    };
    append_run(&path, KEY, 4);
    let full = std::fs::read(&path).unwrap();
    let full_head = std::fs::read(head_of(&path)).unwrap();

    std::fs::write(&path, &at_first_head).unwrap();
    // The checkpoint alone cannot see it ...
    assert!(verify_file(&path, &cp, &signer.verifier()).unwrap().is_ok());
    // ... the head can.
    assert_eq!(tampered_at(&keyed_open_error(&path)), 3);

    // Cut at any earlier record boundary.
    let ends: Vec<usize> = {
        let entries = FileSink::scan(dir.file("a.audit")).unwrap().entries;
        entries
            .iter()
            .scan(0, |acc, e| {
                *acc += frame(e).len();
                Some(*acc)
            })
            .collect()
    };
    for (i, &end) in ends.iter().enumerate() {
        std::fs::write(&path, &full[..end]).unwrap();
        std::fs::write(head_of(&path), &full_head).unwrap();
        assert_eq!(tampered_at(&keyed_open_error(&path)), i as u64 + 1);
    }

    // What the key alone cannot catch: log and head file both put back
    // from an old copy. This is why the docs tell hosts to keep the latest
    // checkpoint (or a copy of the head) out of reach of the log's
    // writers.
    std::fs::write(&path, &at_first_head).unwrap();
    std::fs::write(head_of(&path), &old_head).unwrap();
    assert!(verify_file_with_key(&path, KEY).is_ok());
}

#[test]
fn a_log_rewritten_without_the_key_is_detected() {
    let dir = Scratch::new("rewrite");
    let (path, _) = sealed_log(&dir, 4);
    let real_head = std::fs::read(head_of(&path)).unwrap();

    // A new log under the forger's own key, head included.
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(head_of(&path)).unwrap();
    append_run(&path, &[0x13; 32], 4);
    assert_eq!(tampered_at(&keyed_open_error(&path)), 0);

    // The same forged entries under the real head record.
    std::fs::write(head_of(&path), &real_head).unwrap();
    assert_eq!(tampered_at(&keyed_open_error(&path)), 0);

    // Entries without a head record at all.
    std::fs::remove_file(head_of(&path)).unwrap();
    let err = keyed_open_error(&path);
    assert!(matches!(err, AuditError::Tampered { .. }), "{err}");
}

#[test]
fn a_deleted_head_record_is_detected() {
    let dir = Scratch::new("nohead");
    let (path, _) = sealed_log(&dir, 3);
    std::fs::remove_file(head_of(&path)).unwrap();
    let err = keyed_open_error(&path);
    assert!(err.to_string().contains("head record is missing"), "{err}");
}

/// A damaged last record is moved, byte for byte, into a side file, the
/// caller is told where, and since the sealed head covers it the open is
/// refused: nothing disappears with only a warning.
#[test]
fn a_corrupt_last_record_is_kept_aside_and_detected() {
    let dir = Scratch::new("lastrec");
    let (path, entries) = sealed_log(&dir, 5);
    let mut bytes = std::fs::read(&path).unwrap();
    let last_start = bytes.len() - frame(&entries[4]).len();
    bytes[last_start + 30] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    // Read-only verification already refuses it.
    assert_eq!(
        tampered_at(&verify_file_with_key(&path, KEY).unwrap_err()),
        4
    );
    let (sink, report) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let d = report.discarded.expect("the damaged record is reported");
    assert_eq!(d.offset, last_start as u64);
    let saved = d.saved_to.expect("and saved");
    assert_eq!(std::fs::read(&saved).unwrap(), bytes[last_start..]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        last_start as u64,
        "only the damaged record left the log"
    );
    let err = AuditLog::open(sink, KEY).unwrap_err();
    assert_eq!(tampered_at(&err), 4);

    // A second damage goes to a second side file; the first is kept.
    std::fs::write(&path, &bytes).unwrap();
    let (_, report) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let second = report.discarded.unwrap().saved_to.unwrap();
    assert_ne!(second, saved);
    assert!(saved.exists() && second.exists());
}

/// A run that dies without sealing is reported as such; the next run's
/// seal makes the log sealed again.
#[test]
fn a_crashed_run_is_told_apart_from_a_sealed_one() {
    let dir = Scratch::new("crash");
    let (path, _) = sealed_log(&dir, 3);
    let (sink, _) = FileSink::open(&path, SyncPolicy::EveryAppend).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    log.append(pending(3)).unwrap();
    log.append(pending(4)).unwrap();
    std::mem::forget(log); // the process dies here

    let report = verify_file_with_key(&path, KEY).unwrap();
    assert_eq!(
        report.state,
        RunState::Unsealed {
            sealed_entries: 3,
            unsealed_entries: 2
        }
    );
    // Losing the crashed run's entries is not told apart from the crash
    // (documented); losing sealed ones is.
    let bytes = std::fs::read(&path).unwrap();
    let entries = FileSink::scan(&path).unwrap().entries;
    let cut = bytes.len() - frame(&entries[4]).len();
    std::fs::write(&path, &bytes[..cut]).unwrap();
    let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    assert_eq!(
        log.run_state(),
        RunState::Unsealed {
            sealed_entries: 3,
            unsealed_entries: 1
        }
    );
    log.append(pending(4)).unwrap();
    drop(log);
    let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let log = AuditLog::open(sink, KEY).unwrap();
    assert_eq!(log.run_state(), RunState::Sealed { entries: 5 });
}

/// A file that is not a log is refused, not emptied.
#[test]
fn a_file_that_is_not_a_log_is_left_alone() {
    let dir = Scratch::new("notalog");
    let path = dir.file("notes.txt");
    std::fs::write(&path, b"customer list: jane, john\n").unwrap();
    let err = FileSink::open(&path, SyncPolicy::Never).unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"customer list: jane, john\n"
    );
}

/// A read-only log can be read and checkpointed but not appended to.
#[test]
fn read_only_logs_refuse_appends() {
    let dir = Scratch::new("ro");
    let (path, _) = sealed_log(&dir, 2);
    let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open_read_only(sink).unwrap();
    assert_eq!(log.len(), 2);
    assert!(matches!(
        log.append(pending(2)),
        Err(AuditError::InvalidArgument(_))
    ));
}

/// An older head put back next to a longer log, and a log swapped for
/// another written under the same key: both refused.
#[test]
fn a_head_from_elsewhere_is_detected() {
    let dir = Scratch::new("otherhead");
    let path = dir.file("a.audit");
    append_run(&path, KEY, 3);
    let old_head = std::fs::read(head_of(&path)).unwrap();
    append_run(&path, KEY, 4);
    let real_head = std::fs::read(head_of(&path)).unwrap();
    std::fs::write(head_of(&path), &old_head).unwrap();
    let err = keyed_open_error(&path);
    assert_eq!(tampered_at(&err), 3, "{err}");

    // The log replaced by another one of the same length written under the
    // same key, next to the real head: its entries verify, but the head
    // names another entry 6.
    std::fs::write(head_of(&path), &real_head).unwrap();
    let other = dir.file("b.audit");
    let (sink, _) = FileSink::open(&other, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    for i in 0..7 {
        log.append(pending(i).detail("other", true)).unwrap();
    }
    drop(log);
    std::fs::copy(&other, &path).unwrap();
    let err = keyed_open_error(&path);
    assert_eq!(tampered_at(&err), 6, "{err}");
    assert!(err.to_string().contains("rewritten"), "{err}");
}
