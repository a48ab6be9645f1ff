//! File storage of the audit log: crash recovery, tamper detection and the
//! absence of raw subject ids.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use privseg::audit::{
    AuditEntry, AuditError, AuditLog, AuditPseudonymizer, AuditSink, Checkpoint, CheckpointSigner,
    FileSink, Operation, PendingEntry, RunState, SyncPolicy, VerifyReport, verify_entries,
    verify_entries_with_checkpoints, verify_file,
};
use proptest::prelude::*;

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // A memory file system where there is one: the crash test makes
        // thousands of fsyncs, whose cost on a disk says nothing here.
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "privseg-audit-test-{}-{}-{}",
            tag,
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

/// The host's audit key.
const KEY: &[u8] = &[0x42; 32];

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_seed(&[0x5a; 32]).unwrap()
}

fn pending(i: u64) -> PendingEntry {
    // Vary sizes so record boundaries are irregular.
    PendingEntry::new(1_767_225_600 + i as i64, "svc", Operation::SegmentEvaluated)
        .purpose("analytics")
        .detail("member_count", i * 37)
        .detail("rule_id", "r".repeat((i % 5) as usize + 1))
}

/// A log of `n` entries written to `path` in one run, sealed at the end;
/// returns the byte offset where each record ends and a checkpoint after
/// every append.
fn write_log(path: &Path, n: u64, signer: &CheckpointSigner) -> (Vec<u64>, Vec<Checkpoint>) {
    let (sink, _) = FileSink::open(path, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    let mut ends = Vec::new();
    let mut cps = Vec::new();
    for i in 0..n {
        assert_eq!(log.append(pending(i)).unwrap(), i);
        ends.push(log.sink().byte_len());
        cps.push(log.checkpoint(signer, 1_767_300_000).unwrap());
    }
    log.seal().unwrap();
    (ends, cps)
}

fn head_of(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".head");
    PathBuf::from(p)
}

fn garbage(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Tail {
    Cut,
    Zeros,
    Garbage,
}

/// Two runs: the first appends `sealed` entries and seals the log; the
/// second appends more and the process dies (no seal). For every byte
/// offset k of the file, the file is cut at k, or padded after k with zeros
/// or garbage up to its length. Opening must keep exactly the records that
/// end at or before k, with the damaged bytes moved (unchanged) into a side
/// file; if records the sealed head covers are lost, the keyed open reports
/// tampering; otherwise the log opens as an interrupted run and appending
/// afterwards works.
#[test]
fn crash_at_every_offset_with_head_records() {
    let dir = Scratch::new("crash");
    let original = dir.file("original.audit");
    let signer = signer();
    let (sealed, n) = (2u64, 6u64);
    let (mut ends, _) = write_log(&original, sealed, &signer);
    let (sink, _) = FileSink::open(&original, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    let mut cps = Vec::new();
    for i in sealed..n {
        log.append(pending(i)).unwrap();
        ends.push(log.sink().byte_len());
        cps.push(log.checkpoint(&signer, 1_767_300_000).unwrap());
    }
    log.sync().unwrap();
    std::mem::forget(log); // the process dies: no seal
    let full = std::fs::read(&original).unwrap();
    let head = std::fs::read(head_of(&original)).unwrap();
    assert_eq!(*ends.last().unwrap(), full.len() as u64);
    let originals = FileSink::scan(&original).unwrap().entries;
    assert_eq!(originals.len() as u64, n);

    let path = dir.file("crashed.audit");
    let mut cases = 0;
    for k in 0..=full.len() {
        for tail in [Tail::Cut, Tail::Zeros, Tail::Garbage] {
            let mut bytes = full[..k].to_vec();
            match tail {
                Tail::Cut => {}
                Tail::Zeros => bytes.resize(full.len(), 0),
                Tail::Garbage => bytes.extend(garbage(full.len() - k, k as u64)),
            }
            std::fs::write(&path, &bytes).unwrap();
            std::fs::write(head_of(&path), &head).unwrap();
            let kept = ends.iter().filter(|&&e| e <= k as u64).count() as u64;
            let kept_len = if kept == 0 {
                0
            } else {
                ends[kept as usize - 1]
            };
            let policy = if k.is_multiple_of(2) {
                SyncPolicy::EveryAppend
            } else {
                SyncPolicy::Never
            };
            let opened = FileSink::open(&path, policy);
            if kept == 0 && bytes.iter().any(|&b| b != 0) {
                // Damaged from the first byte: never emptied, refused and
                // left as it is.
                assert!(
                    matches!(
                        opened,
                        Err(AuditError::Corrupt {
                            index: 0,
                            offset: 0,
                            ..
                        })
                    ),
                    "k={k} {tail:?}: {opened:?}"
                );
                assert_eq!(std::fs::read(&path).unwrap(), bytes);
                continue;
            }
            let (sink, report) = opened.unwrap_or_else(|e| panic!("k={k} {tail:?}: {e}"));
            assert_eq!(report.entries, kept, "k={k} {tail:?}");
            assert_eq!(report.valid_len, kept_len, "k={k} {tail:?}");
            match &report.discarded {
                None => assert_eq!(bytes.len() as u64, kept_len, "k={k} {tail:?}"),
                Some(d) => {
                    assert_eq!(d.offset, kept_len, "k={k} {tail:?}");
                    assert_eq!(d.bytes, bytes.len() as u64 - kept_len, "k={k} {tail:?}");
                    // Nothing deleted: the bytes are in the side file.
                    let saved = d.saved_to.as_ref().expect("saved");
                    assert_eq!(std::fs::read(saved).unwrap(), bytes[kept_len as usize..]);
                    std::fs::remove_file(saved).unwrap();
                }
            }
            assert_eq!(std::fs::metadata(&path).unwrap().len(), kept_len);

            let opened = AuditLog::open(sink, KEY);
            if kept < sealed {
                // Entries under the sealed head are gone: never accepted.
                assert!(
                    matches!(opened, Err(AuditError::Tampered { index, .. }) if index == kept),
                    "k={k} {tail:?}: {opened:?}"
                );
                continue;
            }
            let mut log = opened.unwrap_or_else(|e| panic!("k={k} {tail:?}: {e}"));
            assert_eq!(
                log.run_state(),
                RunState::Unsealed {
                    sealed_entries: sealed,
                    unsealed_entries: kept - sealed
                },
                "k={k} {tail:?}"
            );
            let entries = log.entries().unwrap();
            assert_eq!(entries[..], originals[..kept as usize], "k={k} {tail:?}");
            if kept > sealed {
                let cp = &cps[(kept - sealed - 1) as usize];
                assert_eq!(log.root(), cp.root_hash, "k={k} {tail:?}");
            }

            // Appending after recovery works, and the next open finds a
            // sealed log.
            assert_eq!(log.append(pending(100)).unwrap(), kept);
            drop(log);
            let (sink, report) = FileSink::open(&path, SyncPolicy::Never).unwrap();
            assert_eq!(report.entries, kept + 1, "k={k} {tail:?}");
            assert!(report.discarded.is_none());
            let reopened = AuditLog::open(sink, KEY).unwrap();
            assert_eq!(reopened.run_state(), RunState::Sealed { entries: kept + 1 });
            let entries = reopened.entries().unwrap();
            assert_eq!(entries[kept as usize].actor, "svc");
            assert_eq!(entries[kept as usize].seq, kept);
            cases += 1;
        }
    }
    assert!(cases > 3 * 600, "only {cases} cases");
}

#[test]
fn empty_and_zero_files_open_as_empty_logs() {
    let dir = Scratch::new("empty");
    let path = dir.file("a.audit");
    let (sink, report) = FileSink::open(&path, SyncPolicy::EveryAppend).unwrap();
    assert_eq!((sink.len(), report.discarded), (0, None));
    drop(sink);
    std::fs::write(&path, vec![0u8; 100]).unwrap();
    let (sink, report) = FileSink::open(&path, SyncPolicy::EveryAppend).unwrap();
    assert_eq!(sink.len(), 0);
    let d = report.discarded.unwrap();
    assert_eq!((d.offset, d.bytes), (0, 100));
    assert_eq!(d.reason, "bad record magic");
    assert_eq!(std::fs::read(d.saved_to.unwrap()).unwrap(), vec![0u8; 100]);
}

#[test]
fn corrupt_record_followed_by_valid_ones_is_refused_and_left_alone() {
    let dir = Scratch::new("corrupt");
    let path = dir.file("a.audit");
    let signer = signer();
    let (ends, cps) = write_log(&path, 5, &signer);
    let mut bytes = std::fs::read(&path).unwrap();
    let pos = ends[1] as usize + 20; // inside record 2
    bytes[pos] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();

    let err = FileSink::open(&path, SyncPolicy::Never).unwrap_err();
    match err {
        AuditError::Corrupt { index, offset, .. } => {
            assert_eq!((index, offset), (2, ends[1]));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "file must be untouched"
    );
    let report = verify_file(&path, &cps[4], &signer.verifier()).unwrap();
    assert!(
        matches!(report, VerifyReport::CorruptRecord { index: 2, offset, .. } if offset == ends[1]),
        "{report:?}"
    );
}

#[test]
fn raw_subject_ids_never_reach_the_file() {
    let dir = Scratch::new("pseudo");
    let path = dir.file("a.audit");
    let raw = "jane.doe+4711@example.com";
    let p = AuditPseudonymizer::new(b"audit-only key, kept by the host").unwrap();
    let (sink, _) = FileSink::open(&path, SyncPolicy::EveryAppend).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    log.append(PendingEntry::new(1_767_225_600, "crm", Operation::SubjectAdded).subject(&p, raw))
        .unwrap();
    log.append(
        PendingEntry::new(1_767_225_700, "crm", Operation::SubjectErased)
            .purpose("gdpr-art-17")
            .subject(&p, raw),
    )
    .unwrap();
    drop(log);

    let bytes = std::fs::read(&path).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(raw.as_bytes()), "raw subject id found in the log");
    assert!(!contains(b"jane.doe"), "part of the raw subject id found");
    // The pseudonym is stored (so the scan above looks at real content).
    let pseudonym = p.pseudonymize(raw);
    assert!(contains(pseudonym.as_bytes()));

    // Control: the scan does find an id that was stored unpseudonymized.
    let control = dir.file("control.audit");
    let (sink, _) = FileSink::open(&control, SyncPolicy::Never).unwrap();
    let mut log = AuditLog::open(sink, KEY).unwrap();
    log.append(
        PendingEntry::new(1_767_225_600, "crm", Operation::SubjectAdded).pseudonymous_subject(raw),
    )
    .unwrap();
    drop(log);
    let bytes = std::fs::read(&control).unwrap();
    assert!(bytes.windows(raw.len()).any(|w| w == raw.as_bytes()));
}

#[test]
fn forged_checkpoint_is_reported_for_files() {
    let dir = Scratch::new("forged");
    let path = dir.file("a.audit");
    let signer = signer();
    let (_, cps) = write_log(&path, 3, &signer);
    let mut cp = cps[2].clone();
    cp.tree_size = 2;
    assert_eq!(
        verify_file(&path, &cp, &signer.verifier()).unwrap(),
        VerifyReport::BadSignature { checkpoint_size: 2 }
    );
    assert!(
        verify_file(&path, &cps[2], &signer.verifier())
            .unwrap()
            .is_ok()
    );
}

/// Re-frames an entry as a record with a valid checksum, as someone who
/// knows the file format could.
fn frame(entry: &AuditEntry) -> Vec<u8> {
    let payload = entry.canonical_bytes().unwrap();
    let mut head = Vec::new();
    head.extend_from_slice(b"PSA1");
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new_with_initial(0x5053_4731);
    h.update(&head);
    h.update(&payload);
    let mut out = head;
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

#[derive(Debug, Clone)]
enum Tamper {
    FlipByte {
        pos: prop::sample::Index,
        xor: u8,
    },
    Delete(prop::sample::Index),
    Duplicate(prop::sample::Index),
    Swap(prop::sample::Index, prop::sample::Index),
    Truncate(prop::sample::Index),
    /// Rewrites an entry's content, keeping its sequence number and giving
    /// the record a valid checksum.
    Edit(prop::sample::Index),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255)
            .prop_map(|(pos, xor)| Tamper::FlipByte { pos, xor }),
        any::<prop::sample::Index>().prop_map(Tamper::Delete),
        any::<prop::sample::Index>().prop_map(Tamper::Duplicate),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(a, b)| Tamper::Swap(a, b)),
        any::<prop::sample::Index>().prop_map(Tamper::Truncate),
        any::<prop::sample::Index>().prop_map(Tamper::Edit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Every change to a checkpointed file is detected, and the reported
    /// first bad index is the one the change affected.
    #[test]
    fn every_tampering_is_detected_at_the_right_index(n in 1u64..12, t in tamper()) {
        let dir = Scratch::new("tamper");
        let path = dir.file("a.audit");
        let signer = signer();
        let verifier = signer.verifier();
        let (ends, cps) = write_log(&path, n, &signer);
        let cp = &cps[n as usize - 1];
        let bytes = std::fs::read(&path).unwrap();
        let starts: Vec<usize> = std::iter::once(0).chain(ends.iter().map(|&e| e as usize)).collect();
        let record = |i: usize| bytes[starts[i]..starts[i + 1]].to_vec();
        let nn = n as usize;

        let (tampered, expected): (Vec<u8>, u64) = match &t {
            Tamper::FlipByte { pos, xor } => {
                let p = pos.index(bytes.len());
                let mut b = bytes.clone();
                b[p] ^= xor;
                let i = starts.iter().rposition(|&s| s <= p).unwrap();
                (b, i as u64)
            }
            Tamper::Delete(i) => {
                let i = i.index(nn);
                let mut b = bytes[..starts[i]].to_vec();
                b.extend_from_slice(&bytes[starts[i + 1]..]);
                (b, i as u64)
            }
            Tamper::Duplicate(i) => {
                let i = i.index(nn);
                let mut b = bytes[..starts[i + 1]].to_vec();
                b.extend(record(i));
                b.extend_from_slice(&bytes[starts[i + 1]..]);
                (b, i as u64 + 1)
            }
            Tamper::Swap(a, b_) => {
                prop_assume!(n >= 2);
                let (a, b_) = (a.index(nn), b_.index(nn));
                prop_assume!(a != b_);
                let (i, j) = (a.min(b_), a.max(b_));
                let mut b = bytes[..starts[i]].to_vec();
                b.extend(record(j));
                b.extend_from_slice(&bytes[starts[i + 1]..starts[j]]);
                b.extend(record(i));
                b.extend_from_slice(&bytes[starts[j + 1]..]);
                (b, i as u64)
            }
            Tamper::Truncate(at) => {
                let k = at.index(bytes.len());
                let kept = ends.iter().filter(|&&e| e <= k as u64).count();
                (bytes[..k].to_vec(), kept as u64)
            }
            Tamper::Edit(i) => {
                let i = i.index(nn);
                let mut entry = FileSink::scan(&path).unwrap().entries[i].clone();
                entry.actor.push('x');
                let mut b = bytes[..starts[i]].to_vec();
                b.extend(frame(&entry));
                b.extend_from_slice(&bytes[starts[i + 1]..]);
                (b, i as u64)
            }
        };
        prop_assert_ne!(&tampered, &bytes);
        std::fs::write(&path, &tampered).unwrap();

        let report = verify_file(&path, cp, &verifier).unwrap();
        prop_assert!(!report.is_ok(), "undetected: {:?}", report);
        match &t {
            Tamper::Edit(_) => {
                // One checkpoint: detected, but not located.
                prop_assert_eq!(
                    &report,
                    &VerifyReport::RootMismatch { checkpoint_size: n, first_bad_at_least: 0 }
                );
                // A checkpoint after every append locates it.
                let entries = FileSink::scan(&path).unwrap().entries;
                let located = verify_entries_with_checkpoints(&entries, &cps, &verifier);
                prop_assert_eq!(located.first_bad_index(), Some(expected), "{:?}", located);
            }
            _ => prop_assert_eq!(report.first_bad_index(), Some(expected), "{:?}", report),
        }

        // Opening the file either refuses it (damage followed by intact
        // records, reported at the same index) or recovers a log that
        // still fails verification at the same index.
        match FileSink::open(&path, SyncPolicy::Never) {
            Err(AuditError::Corrupt { index, .. }) => {
                prop_assert_eq!(index, expected);
                prop_assert_eq!(std::fs::read(&path).unwrap(), tampered);
            }
            Err(e) => prop_assert!(false, "unexpected error {}", e),
            Ok((sink, _)) => {
                let entries: Vec<AuditEntry> =
                    sink.iter().unwrap().collect::<Result<_, _>>().unwrap();
                let again = verify_entries(&entries, cp, &verifier);
                prop_assert!(!again.is_ok());
                if !matches!(t, Tamper::Edit(_)) {
                    prop_assert_eq!(again.first_bad_index(), Some(expected), "{:?}", again);
                }
                // With the key alone, no checkpoint: every change is
                // refused by the keyed open, at the changed entry.
                let seq_bad = matches!(again, VerifyReport::SequenceMismatch { .. });
                let keyed = AuditLog::open(sink, KEY);
                match keyed {
                    Err(AuditError::Inconsistent { index, .. }) => {
                        prop_assert!(seq_bad);
                        prop_assert_eq!(index, expected);
                    }
                    Err(AuditError::Tampered { index, .. }) => {
                        prop_assert!(!seq_bad);
                        prop_assert_eq!(index, expected);
                    }
                    other => prop_assert!(false, "keyed open accepted {:?}: {:?}", t, other.map(|l| l.len())),
                }
            }
        }
    }
}

/// A last record with a valid checksum but an entry this version cannot
/// decode (say, an operation added later) must not be cut off as if torn.
#[test]
fn intact_but_undecodable_last_record_is_never_cut() {
    let dir = Scratch::new("undecodable");
    let path = dir.file("a.audit");
    let signer = signer();
    let (ends, _) = write_log(&path, 3, &signer);
    let mut entries = FileSink::scan(&path).unwrap().entries;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(ends[1] as usize);
    entries[2].operation = Operation::Counted;
    let record = frame(&entries[2]);
    let text = String::from_utf8(record[12..].to_vec())
        .unwrap()
        .replace("\"counted\"", "\"teleported\"");
    let payload = text.into_bytes();
    let mut head = b"PSA1".to_vec();
    head.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new_with_initial(0x5053_4731);
    h.update(&head);
    h.update(&payload);
    bytes.extend_from_slice(&head);
    bytes.extend_from_slice(&h.finalize().to_le_bytes());
    bytes.extend_from_slice(&payload);
    std::fs::write(&path, &bytes).unwrap();

    match FileSink::open(&path, SyncPolicy::Never) {
        Err(AuditError::Corrupt {
            index,
            offset,
            reason,
        }) => {
            assert_eq!((index, offset), (2, ends[1]));
            assert!(reason.contains("cannot be decoded"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "file must be untouched"
    );
}
