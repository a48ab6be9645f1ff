//! The audit log file: scanning (read only) and opening (recovery) agree;
//! recovery leaves exactly the complete records, which then scan cleanly
//! and verify against a checkpoint of the recovered log; an append after
//! recovery is read back.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use privseg::audit::{
    AuditLog, CheckpointSigner, FileSink, Operation, PendingEntry, SyncPolicy, verify_file,
};

fn path() -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("privseg-fuzz-{}.audit", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let path = path();
    cleanup(&path);
    std::fs::write(&path, data).expect("writing the input file");
    let scanned = FileSink::scan(&path);
    let opened = FileSink::open(&path, SyncPolicy::Never);
    let (sink, report) = match opened {
        Ok(x) => x,
        Err(_) => {
            // A log that cannot be recovered is left exactly as it was:
            // nothing is ever deleted from a log.
            assert_eq!(std::fs::read(&path).unwrap(), data);
            cleanup(&path);
            return;
        }
    };
    let scanned = scanned.expect("a file that opens also scans");
    // Recovery keeps exactly the complete records the scan found...
    assert_eq!(report.entries, scanned.entries.len() as u64);
    assert_eq!(report.valid_len, scanned.valid_len);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), report.valid_len);
    assert_eq!(
        &std::fs::read(&path).unwrap()[..],
        &data[..report.valid_len as usize]
    );
    // ...and keeps every byte it cut, unchanged, in a side file.
    if let Some(d) = &report.discarded {
        let saved = d.saved_to.as_ref().expect("cut bytes are saved aside");
        assert_eq!(
            std::fs::read(saved).unwrap(),
            &data[report.valid_len as usize..]
        );
    } else {
        assert_eq!(report.valid_len, data.len() as u64);
    }
    // The recovered records verify against a checkpoint of themselves.
    if let Ok(log) = AuditLog::open_read_only(sink) {
        assert_eq!(log.len(), report.entries);
        let signer = CheckpointSigner::from_seed(&[7; 32]).expect("a signing key");
        let cp = log.checkpoint(&signer, 0).expect("a checkpoint");
        let verdict = verify_file(&path, &cp, &signer.verifier()).expect("reading the file");
        assert!(verdict.is_ok(), "{verdict:?}");
    }
    // Without the key's MACs and head, a keyed open refuses anything but an
    // empty log; an empty one accepts an append that reads back.
    if let Ok((sink, _)) = FileSink::open(&path, SyncPolicy::Never)
        && let Ok(mut log) = AuditLog::open(sink, &[7; 32])
    {
        let before = log.len();
        log.append(PendingEntry::new(1, "fuzz", Operation::PolicyLoaded))
            .expect("appending to a log that opened");
        drop(log);
        let after = FileSink::scan(&path).expect("scanning after the append");
        assert_eq!(after.entries.len() as u64, before + 1);
    }
    cleanup(&path);
});

/// Removes the log, its head record and any side file a run left.
fn cleanup(path: &std::path::Path) {
    let _ = std::fs::remove_file(path);
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    if let Some(dir) = path.parent()
        && let Ok(rd) = std::fs::read_dir(dir)
    {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(&format!("{name}.")) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}
