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
    std::fs::write(&path, data).expect("writing the input file");
    let scanned = FileSink::scan(&path);
    let opened = FileSink::open(&path, SyncPolicy::Never);
    let (sink, report, scanned) = match (opened, scanned) {
        (Ok((sink, report)), Ok(scanned)) => (sink, report, scanned),
        (Err(_), Err(_)) => {
            // A corrupt file is left as it was.
            assert_eq!(std::fs::read(&path).unwrap(), data);
            return;
        }
        (o, s) => panic!("open and scan disagree: {:?} / {:?}", o.map(|x| x.1), s),
    };
    assert_eq!(report.entries, scanned.entries.len() as u64);
    assert_eq!(report.valid_len, scanned.valid_len);
    assert_eq!(report.discarded, scanned.discarded);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), report.valid_len);
    assert_eq!(
        &std::fs::read(&path).unwrap()[..],
        &data[..report.valid_len as usize]
    );
    let Ok(mut log) = AuditLog::open(sink) else {
        // Entries whose sequence or chain do not hold are refused here.
        return;
    };
    assert_eq!(log.len(), report.entries);
    let signer = CheckpointSigner::from_seed(&[7; 32]).expect("a signing key");
    let cp = log.checkpoint(&signer, 0).expect("a checkpoint");
    let verdict = verify_file(&path, &cp, &signer.verifier()).expect("reading the file");
    assert!(verdict.is_ok(), "{verdict:?}");
    log.append(PendingEntry::new(1, "fuzz", Operation::PolicyLoaded))
        .expect("appending after recovery");
    drop(log);
    let after = FileSink::scan(&path).expect("scanning after the append");
    assert_eq!(after.entries.len() as u64, report.entries + 1);
    assert!(after.discarded.is_none());
});
