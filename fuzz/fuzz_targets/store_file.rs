//! The durable store's database file, damaged. A valid store (two
//! subjects, values, a consent) is made once; each input patches its bytes
//! (5-byte chunks: a 4-byte offset and a byte) and may cut it short (a
//! first byte of 1 followed by a 4-byte length). Opening the result gives a
//! clear error or a store that works: never a panic, and a store that opens
//! answers like the reference evaluator (every row through `eligibility()`)
//! and takes a write whole or not at all.
//!
//! An input starting with 2 patches the store's snapshot (the encrypted
//! copy of the in-memory state) the same way instead, the database left
//! whole: the store must then open, from the snapshot only if its bytes
//! are unchanged, else rebuilt from the database.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use privseg::Engine;
use privseg::consent::ConsentEvent;
use privseg::store::{DB_FILE, SNAPSHOT_FILE, StateSource, StaticKek};
use privseg_fuzz::{SUBJECTS, admin, policy};

const KEY: [u8; 32] = [3; 32];

fn keys() -> Arc<StaticKek> {
    Arc::new(StaticKek::new("fuzz", &KEY).expect("a key"))
}

/// The bytes of a valid store's database and snapshot, made once.
fn seed() -> &'static (Vec<u8>, Vec<u8>) {
    static SEED: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    SEED.get_or_init(|| {
        let dir = dir().with_extension("seed");
        let _ = std::fs::remove_dir_all(&dir);
        let a = admin();
        {
            let mut e = Engine::create(&dir, policy(), keys()).expect("a new store");
            let birth = privseg::timestamp::parse_date("1980-05-01").ok();
            for (id, j) in SUBJECTS.iter().zip(["EU-FR", "US-CA"]) {
                e.add_subject(&a, id, j, birth).expect("a subject");
            }
            let t = e.now();
            e.set_attribute(&a, SUBJECTS[0], "country", "FR".into(), t)
                .expect("a value");
            let sha = "0".repeat(64);
            // The example policy accepts notice v3 for marketing.email.
            e.record(
                &a,
                &ConsentEvent::grant(SUBJECTS[0], "marketing.email", t, "v3", &sha),
            )
            .expect("a consent");
            e.checkpoint().expect("a snapshot");
        }
        let bytes = std::fs::read(dir.join(DB_FILE)).expect("the store's file");
        let snap = std::fs::read(dir.join(SNAPSHOT_FILE)).expect("the snapshot");
        let _ = std::fs::remove_dir_all(&dir);
        (bytes, snap)
    })
}

/// `seed` with the input's patches applied.
fn damaged(seed: &[u8], data: &[u8]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    let mut rest = data;
    if let [1, a, b, c, d, tail @ ..] = rest {
        let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
        bytes.truncate(len % (bytes.len() + 1));
        rest = tail;
    }
    for chunk in rest.chunks_exact(5) {
        if bytes.is_empty() {
            break;
        }
        let at = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) as usize;
        let n = bytes.len();
        bytes[at % n] = chunk[4];
    }
    bytes
}

fn dir() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("privseg-fuzz-store-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let dir = dir();
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let (db, snap) = seed();
    let snapshot_patched = match data {
        [2, rest @ ..] => {
            let patched = damaged(snap, rest);
            std::fs::write(dir.join(DB_FILE), db).expect("writing the database");
            std::fs::write(dir.join(SNAPSHOT_FILE), &patched).expect("writing the input file");
            Some(patched != *snap)
        }
        _ => {
            std::fs::write(dir.join(DB_FILE), damaged(db, data)).expect("writing the input file");
            None
        }
    };
    let opened = Engine::open(&dir, policy(), keys());
    if let Some(changed) = snapshot_patched {
        let e = opened.as_ref().expect("an intact database opens");
        let from_snapshot = e.open_report().state == StateSource::Snapshot;
        assert_eq!(from_snapshot, !changed, "{:?}", e.open_report().state);
    }
    if let Ok(mut e) = opened {
        let a = admin();
        let seg = e
            .compile(&a, r#"segment "all" for marketing.email"#)
            .expect("the example segment validates");
        let now = e.now();
        let fast = e.evaluate(&a, &seg, now).expect("evaluating an open store");
        let slow = e
            .evaluate_reference(&a, &seg, now)
            .expect("the reference on an open store");
        assert_eq!(fast.count(), slow.count());
        assert!(fast.rows().eq(slow.rows()));
        // A write after a damaged open either lands or is refused whole.
        let before = e.subject_count();
        match e.add_subject(&a, "fuzz-new", "EU-FR", None) {
            Ok(()) => assert_eq!(e.subject_count(), before + 1),
            Err(_) => assert_eq!(e.subject_count(), before),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
});
