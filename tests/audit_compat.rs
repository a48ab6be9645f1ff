//! An audit log file written before entry details were typed (by the
//! engine of that time: an import, subjects added and rectified, a segment
//! validated, refused, evaluated, counted and exported, an access refusal,
//! an erasure, a retention purge logged as a rectification, a lookup of an
//! unknown subject, an import of events only) still verifies under its
//! key, opens for appending, and every entry reads as its typed kind.

use std::path::PathBuf;

use privseg::audit::{
    AuditLog, AuditSink, EntryKind, FileSink, Operation, PendingEntry, SyncPolicy,
    verify_file_with_key,
};

const KEY: [u8; 32] = [0x42; 32];

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/audit_before_typed_details.log")
}

#[test]
fn a_log_written_before_typed_details_verifies_and_reads_as_kinds() {
    let report = verify_file_with_key(fixture(), &KEY).unwrap();
    assert_eq!(report.entries, 20);
    assert!(report.discarded.is_none());

    let entries = FileSink::scan(fixture()).unwrap().entries;
    let kinds: Vec<EntryKind> = entries
        .iter()
        .map(|e| EntryKind::of(e).unwrap_or_else(|err| panic!("{e:?}: {err}")))
        .collect();
    // The purge, logged then as a rectification, reads as a purge.
    let purge = entries
        .iter()
        .zip(&kinds)
        .find(|(_, k)| matches!(k, EntryKind::RetentionPurge(_)))
        .expect("the fixture holds a purge");
    assert_eq!(purge.0.operation, Operation::SubjectRectified);
    // Both imports read as imports, whatever operation they were logged as.
    assert_eq!(
        kinds
            .iter()
            .filter(|k| matches!(k, EntryKind::Import(_)))
            .count(),
        2
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EntryKind::UnknownSubject { lookup, .. } if *lookup == Operation::SubjectErased))
    );
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, EntryKind::Exported(x) if x.rows == 2))
    );
}

#[test]
fn a_log_written_before_typed_details_opens_and_takes_new_entries() {
    let dir = std::env::temp_dir().join(format!("privseg-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("engine.audit");
    std::fs::copy(fixture(), &path).unwrap();
    let mut head = fixture().into_os_string();
    head.push(".head");
    std::fs::copy(&head, dir.join("engine.audit.head")).unwrap();

    let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open(Box::new(sink) as Box<dyn AuditSink + Send>, &KEY).unwrap();
    assert_eq!(log.len(), 20);
    log.append(
        PendingEntry::new(1_767_225_600, "svc", Operation::AuditRead)
            .with_kind(EntryKind::KeyRotated(privseg::audit::details::NoDetails {})),
    )
    .unwrap();
    log.seal().unwrap();
    drop(log);
    let report = verify_file_with_key(&path, &KEY).unwrap();
    assert_eq!(report.entries, 21);
    let last = FileSink::scan(&path).unwrap().entries.pop().unwrap();
    assert_eq!(last.operation, Operation::KeyRotated);
    std::fs::remove_dir_all(&dir).unwrap();
}
