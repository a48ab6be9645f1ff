//! The durable store: reopen, erasure on disk, key rotation, damage,
//! policy changes and crashes.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use privseg::consent::{ConsentEvent, EventKind};
use privseg::import::SubjectRow;
use privseg::store::{KeyProvider, SNAPSHOT_FILE, StateSource, StaticKek, StoreError};
use privseg::timestamp::parse_date;
use privseg::{Engine, EngineError, Timestamp};

fn tmp(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let d = std::env::temp_dir().join(format!("privseg-{name}-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn kek(byte: u8) -> Arc<dyn KeyProvider> {
    Arc::new(StaticKek::new(&format!("k{byte}"), &[byte; 32]).unwrap())
}

fn create(dir: &Path) -> Engine {
    with_test_clock(Engine::create(dir, Arc::new(policy()), kek(1)).unwrap())
}

fn open(dir: &Path) -> Engine {
    with_test_clock(Engine::open(dir, Arc::new(policy()), kek(1)).unwrap())
}

const ATTRS: [&str; 5] = [
    "country",
    "total_spend",
    "last_order",
    "condition",
    "balance",
];
const SEGS: [&str; 3] = [
    r#"segment "a" for marketing.email"#,
    r#"segment "b" for marketing.email where country = "FR""#,
    r#"segment "c" for marketing.email where total_spend > 100"#,
];

/// Everything observable about the subjects `ids`, and the members of a
/// few segments by the fast path and by the reference evaluator (which
/// recomputes eligibility from scratch).
fn dump(e: &Engine, ids: &[String]) -> Vec<String> {
    let a = admin();
    let mut out = vec![format!("subjects {}", e.subject_count())];
    for id in ids {
        for attr in ATTRS {
            out.push(format!("{id} {attr} {:?}", e.attribute(&a, id, attr).ok()));
        }
        out.push(format!("{id} history {:?}", e.history(&a, id).ok()));
    }
    let at = t("2026-06-01T00:00:00Z");
    for s in SEGS {
        let seg = e.compile(&a, s).unwrap();
        let fast = e.ids_at(&a, &seg, at);
        set_now(at);
        let r = e.evaluate_reference(&a, &seg, at).unwrap();
        let reference = e.member_ids(&a, &r).unwrap();
        reset_now();
        assert_eq!(fast, reference, "fast path and reference differ for {s}");
        out.push(format!("{s}: {fast:?}"));
    }
    out
}

fn populate(e: &mut Engine, n: usize) -> Vec<String> {
    let a = admin();
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("cust-{i}");
        adult(e, &id, if i % 2 == 0 { "EU-FR" } else { "US-CA" });
        let v = t("2026-01-01T00:00:00Z");
        e.set_attribute(&a, &id, "country", ["FR", "DE", "US"][i % 3].into(), v)
            .unwrap();
        e.set_attribute(&a, &id, "total_spend", ((i * 37) as i64 % 500).into(), v)
            .unwrap();
        e.set_attribute(&a, &id, "balance", (-(i as i64) * 11).into(), v)
            .unwrap();
        if i % 4 == 0 {
            e.set_attribute(&a, &id, "condition", "diabetes".into(), v)
                .unwrap();
        }
        grant(e, &id, "marketing.email", "2026-01-02T00:00:00Z", "v3");
        if i % 5 == 0 {
            event(
                e,
                &id,
                EventKind::ConsentWithdrawn,
                Some("marketing.email"),
                "2026-02-01T00:00:00Z",
            );
        }
        ids.push(id);
    }
    ids
}

#[test]
fn every_write_is_there_after_reopen() {
    let dir = tmp("reopen");
    let mut e = create(&dir);
    let ids = populate(&mut e, 40);
    e.erase(&admin(), "cust-3").unwrap();
    e.clear_attribute(&admin(), "cust-4", "balance").unwrap();
    let before = dump(&e, &ids);
    drop(e);
    let e = open(&dir);
    assert!(e.is_durable());
    assert!(e.open_report().policy_changes.is_empty());
    assert_eq!(dump(&e, &ids), before);
    // An erased id may come back as a new subject, after a reopen too.
    let mut e = e;
    adult(&mut e, "cust-3", "EU-FR");
    drop(e);
    let e = open(&dir);
    assert_eq!(e.subject_count(), 40);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_import_is_all_or_nothing_on_disk() {
    let dir = tmp("import");
    let mut e = create(&dir);
    let rows: Vec<SubjectRow> = (0..10)
        .map(|i| SubjectRow {
            id: format!("imp-{i}"),
            jurisdiction: "EU-FR".into(),
            birth_date: parse_date("1970-01-01").ok(),
            values: vec![("country".into(), "DE".into(), t("2026-01-01T00:00:00Z"))],
        })
        .collect();
    let mut events: Vec<ConsentEvent> = (0..10)
        .map(|i| {
            ConsentEvent::grant(
                &format!("imp-{i}"),
                "marketing.email",
                t("2026-01-02T00:00:00Z"),
                "v3",
                SHA,
            )
        })
        .collect();
    events.push(ConsentEvent::grant(
        "nobody",
        "marketing.email",
        t("2026-01-02T00:00:00Z"),
        "v3",
        SHA,
    ));
    assert!(e.import(&admin(), &rows, &events).is_err());
    drop(e);
    let mut e = open(&dir);
    assert_eq!(e.subject_count(), 0);
    events.pop();
    e.import(&admin(), &rows, &events).unwrap();
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let before = dump(&e, &ids);
    drop(e);
    assert_eq!(dump(&open(&dir), &ids), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every file of the store, concatenated.
fn store_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            out.extend(std::fs::read(&f).unwrap());
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The sealed values and wrapped key of a row, read from the database.
fn blobs_of(dir: &Path, row: i64) -> Vec<Vec<u8>> {
    let c = rusqlite::Connection::open(dir.join(privseg::store::DB_FILE)).unwrap();
    let mut out: Vec<Vec<u8>> = c
        .prepare("SELECT sealed FROM vals WHERE row = ?1")
        .unwrap()
        .query_map([row], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let dek: Option<Vec<u8>> = c
        .query_row("SELECT dek FROM subjects WHERE row = ?1", [row], |r| {
            r.get(0)
        })
        .unwrap();
    out.extend(dek);
    let birth: Option<Vec<u8>> = c
        .query_row("SELECT birth FROM subjects WHERE row = ?1", [row], |r| {
            r.get(0)
        })
        .unwrap();
    out.extend(birth);
    out
}

#[test]
fn erasure_leaves_neither_the_id_nor_any_value_in_the_files() {
    let dir = tmp("erase");
    let mut e = create(&dir);
    populate(&mut e, 5);
    let id = "zq-subject-77813";
    adult(&mut e, id, "EU-FR");
    let a = admin();
    let v = t("2026-01-01T00:00:00Z");
    e.set_attribute(&a, id, "condition", "diabetes".into(), v)
        .unwrap();
    e.set_attribute(&a, id, "balance", (-987_654).into(), v)
        .unwrap();
    grant(&mut e, id, "marketing.email", "2026-01-02T00:00:00Z", "v3");
    // The checkpoint also writes the snapshot, which holds the subject.
    e.checkpoint().unwrap();
    // Values are never in the files in plain form.
    let bytes = store_bytes(&dir);
    assert!(!contains(&bytes, b"-987654"));
    // Control: the id and the sealed values and key are there before, and
    // so are the snapshot (its encrypted body) and its wrapped key.
    let mut blobs = blobs_of(&dir, 5);
    assert_eq!(
        blobs.len(),
        4,
        "two values, the wrapped key and the birth date"
    );
    let snapshot = std::fs::read(dir.join(SNAPSHOT_FILE)).unwrap();
    assert!(snapshot.len() > 200);
    blobs.push(snapshot[snapshot.len() - 64..].to_vec());
    blobs.push(snapshot_key(&dir).expect("a snapshot key on record"));
    assert!(contains(&bytes, id.as_bytes()));
    for b in &blobs {
        assert!(contains(&bytes, b), "control scan finds each sealed blob");
    }
    e.erase(&a, id).unwrap();
    for phase in ["after erasure", "after a checkpoint", "after close"] {
        match phase {
            "after a checkpoint" => e.checkpoint().unwrap(),
            "after close" => {
                drop(std::mem::replace(&mut e, Engine::new(Arc::new(policy()))));
            }
            _ => {}
        }
        let bytes = store_bytes(&dir);
        assert!(!contains(&bytes, id.as_bytes()), "id found {phase}");
        if phase == "after erasure" {
            assert!(!dir.join(SNAPSHOT_FILE).exists(), "snapshot left {phase}");
            assert_eq!(snapshot_key(&dir), None, "snapshot key left {phase}");
        }
        for b in &blobs {
            assert!(!contains(&bytes, b), "a sealed blob found {phase}");
        }
    }
    let e = open(&dir);
    assert_eq!(e.subject_count(), 5);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The wrapped snapshot key on record, if any.
fn snapshot_key(dir: &Path) -> Option<Vec<u8>> {
    let c = rusqlite::Connection::open(dir.join(privseg::store::DB_FILE)).unwrap();
    c.query_row("SELECT key FROM snapshot", [], |r| r.get(0))
        .ok()
}

fn rebuilt(e: &Engine) -> String {
    match &e.open_report().state {
        StateSource::Rebuilt(why) => why.clone(),
        other => panic!("expected a rebuild, got {other:?}"),
    }
}

/// A store with erasures, cleared values and every kind of column, its
/// snapshot written; returns its ids and what it holds.
fn snapshotted(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut e = create(dir);
    let ids = populate(&mut e, 60);
    e.erase(&admin(), "cust-7").unwrap();
    e.clear_attribute(&admin(), "cust-8", "balance").unwrap();
    let before = dump(&e, &ids);
    e.checkpoint().unwrap();
    drop(e);
    (ids, before)
}

#[test]
fn a_reopen_from_the_snapshot_equals_a_rebuild() {
    let dir = tmp("snap-equal");
    let (ids, before) = snapshotted(&dir);
    let e = open(&dir);
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    let fast = dump(&e, &ids);
    assert_eq!(fast, before);
    drop(e);
    // The same store rebuilt from the record.
    std::fs::remove_file(dir.join(SNAPSHOT_FILE)).unwrap();
    let e = open(&dir);
    assert!(rebuilt(&e).contains("snapshot"), "{}", rebuilt(&e));
    assert_eq!(dump(&e, &ids), fast);
    // A checkpoint with nothing changed since the last snapshot writes a
    // new file only when the file is missing, as here.
    e.checkpoint().unwrap();
    drop(e);
    let mut e = open(&dir);
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    // Writes after a reopen from the snapshot reach existing subjects
    // (their data keys are read back when needed) and new ones.
    let a = admin();
    e.set_attribute(
        &a,
        "cust-3",
        "balance",
        4242.into(),
        t("2026-02-01T00:00:00Z"),
    )
    .unwrap();
    adult(&mut e, "cust-new", "EU-FR");
    e.erase(&a, "cust-9").unwrap();
    let mut ids = ids;
    ids.push("cust-new".into());
    let after = dump(&e, &ids);
    assert_ne!(after, fast);
    drop(e);
    let e = open(&dir);
    assert!(rebuilt(&e).contains("no snapshot"), "{}", rebuilt(&e));
    assert_eq!(dump(&e, &ids), after);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The members of every segment of `SEGS` at `at` by the fast path (the
/// standing masks) and by the reference evaluator, which must agree.
fn fast_equals_reference(e: &Engine, at: Timestamp) -> Vec<Vec<String>> {
    let a = admin();
    SEGS.iter()
        .map(|s| {
            let seg = e.compile(&a, s).unwrap();
            let fast = e.ids_at(&a, &seg, at);
            set_now(at);
            let r = e.evaluate_reference(&a, &seg, at).unwrap();
            let reference = e.member_ids(&a, &r).unwrap();
            reset_now();
            assert_eq!(fast, reference, "{s} at {at}");
            fast
        })
        .collect()
}

#[test]
fn the_snapshot_masks_move_forward_to_the_clock_or_are_rebuilt() {
    let dir = tmp("snap-masks");
    let mut e = create(&dir);
    let ids = populate(&mut e, 40);
    // Grants that lapse between the snapshot's instant and the reopen's:
    // those rows sit in the masks' time queues.
    for id in ids.iter().step_by(3) {
        let mut g =
            ConsentEvent::grant(id, "marketing.email", t("2026-02-10T00:00:00Z"), "v3", SHA);
        g.expires_at = Some(t("2026-04-01T00:00:00Z"));
        e.record(&admin(), &g).unwrap();
    }
    drop(e);
    // Opened on a clock in March, every standing mask is built as of
    // March (the engine's first masks, as of the system clock, are ahead
    // of it); the snapshot keeps them.
    let march = t("2026-03-01T00:00:00Z");
    set_now(march);
    let e = open(&dir);
    let in_march = fast_equals_reference(&e, march);
    e.checkpoint().unwrap();
    drop(e);
    // Reopened in June: the masks move forward from March, and the lapsed
    // grants drop out exactly as a rebuild decides.
    let june = t("2026-06-01T00:00:00Z");
    set_now(june);
    let e = open(&dir);
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    let in_june = fast_equals_reference(&e, june);
    assert_ne!(in_june, in_march, "the lapsed grants change the members");
    drop(e);
    // Reopened on a clock before the masks' instant (it stepped back):
    // they are built again as of that clock's now.
    let feb = t("2026-02-20T00:00:00Z");
    set_now(feb);
    let e = open(&dir);
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    fast_equals_reference(&e, feb);
    assert_eq!(fast_equals_reference(&e, march), in_march);
    drop(e);
    reset_now();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_write_after_the_snapshot_makes_it_stale() {
    let dir = tmp("snap-stale");
    let (ids, _) = snapshotted(&dir);
    let mut e = open(&dir);
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    // One event, no new subject and no value: the row count is unchanged,
    // only the write generation tells.
    event(
        &mut e,
        "cust-2",
        EventKind::ConsentWithdrawn,
        Some("marketing.email"),
        "2026-03-01T00:00:00Z",
    );
    let after = dump(&e, &ids);
    drop(e);
    let e = open(&dir);
    assert!(rebuilt(&e).contains("stale"), "{}", rebuilt(&e));
    assert_eq!(dump(&e, &ids), after);
    drop(e);
    // Opening under another policy does not use it either.
    let e = open(&dir);
    e.checkpoint().unwrap();
    drop(e);
    let mut spec: serde_json::Value = serde_json::from_str(&policy().to_json()).unwrap();
    spec["k_threshold"] = 3.into();
    let other = Arc::new(privseg::policy::Policy::from_json(&spec.to_string()).unwrap());
    let e = Engine::open(&dir, other, kek(1)).unwrap();
    assert!(!e.open_report().policy_changes.is_empty());
    assert!(
        rebuilt(&e).contains("stale") || rebuilt(&e).contains("policy"),
        "{}",
        rebuilt(&e)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_or_foreign_snapshot_is_rebuilt_not_trusted() {
    let dir = tmp("snap-damage");
    let (ids, before) = snapshotted(&dir);
    let file = dir.join(SNAPSHOT_FILE);
    let good = std::fs::read(&file).unwrap();
    // A second store with the same writes: its snapshot is at the same
    // generation with the same rows, under another key.
    let other = tmp("snap-other");
    snapshotted(&other);
    let foreign = std::fs::read(other.join(SNAPSHOT_FILE)).unwrap();
    assert_eq!(foreign.len(), good.len());
    let mut foreign_same_id = foreign.clone();
    foreign_same_id[32..48].copy_from_slice(&good[32..48]);
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    for at in [0, 9, 20, 40, 60, good.len() / 2, good.len() - 1] {
        let mut b = good.clone();
        b[at] ^= 0x01;
        cases.push(("a flipped bit", b, ""));
    }
    cases.push((
        "cut by one byte",
        good[..good.len() - 1].to_vec(),
        "integrity",
    ));
    cases.push(("cut to the header", good[..48].to_vec(), "truncated"));
    cases.push(("empty", Vec::new(), "truncated"));
    cases.push(("one byte more", [&good[..], &[0]].concat(), "integrity"));
    cases.push(("another store's", foreign, "not the snapshot on record"));
    cases.push(("another store's with this id", foreign_same_id, "integrity"));
    for (what, bytes, says) in cases {
        std::fs::write(&file, &bytes).unwrap();
        let e = open(&dir);
        let why = rebuilt(&e);
        assert!(why.contains(says), "{what}: {why}");
        assert_eq!(dump(&e, &ids), before, "{what}");
        drop(e);
    }
    // The good file again: used.
    std::fs::write(&file, &good).unwrap();
    let e = open(&dir);
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    drop(e);
    // A key record that does not unwrap under the key-encryption key.
    let c = rusqlite::Connection::open(dir.join(privseg::store::DB_FILE)).unwrap();
    c.execute("UPDATE snapshot SET key = x'00112233445566778899'", [])
        .unwrap();
    drop(c);
    let e = open(&dir);
    assert!(rebuilt(&e).contains("key"), "{}", rebuilt(&e));
    assert_eq!(dump(&e, &ids), before);
    drop(e);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[test]
fn key_rotation_rewraps_keys_and_leaves_values_alone() {
    let dir = tmp("rotate");
    let mut e = create(&dir);
    let ids = populate(&mut e, 6);
    let before = dump(&e, &ids);
    e.checkpoint().unwrap();
    let sealed = blobs_of(&dir, 2);
    assert_eq!(e.rotate_kek(&admin(), kek(2)).unwrap(), 6);
    // Logged as a rotation, not as a rectification of a subject.
    let log = e
        .with_audit_log(&admin(), |l| l.entries().unwrap())
        .unwrap();
    let ops: Vec<_> = log.iter().map(|x| x.operation).collect();
    assert!(
        ops.contains(&privseg::audit::Operation::KeyRotated),
        "{ops:?}"
    );
    assert!(
        log.iter().all(
            |x| x.operation != privseg::audit::Operation::SubjectRectified
                || x.details.contains_key("attribute")
        ),
        "{log:?}"
    );
    let after = blobs_of(&dir, 2);
    // Values (all but the last two blobs: key and birth date) unchanged,
    // the wrapped key changed.
    let n = sealed.len();
    assert_eq!(sealed[..n - 2], after[..n - 2]);
    assert_ne!(sealed[n - 2], after[n - 2]);
    drop(e);
    match Engine::open(&dir, Arc::new(policy()), kek(1)) {
        Err(EngineError::Store(StoreError::Key(_))) => {}
        other => panic!("the old key must be refused: {other:?}"),
    }
    let e = with_test_clock(Engine::open(&dir, Arc::new(policy()), kek(2)).unwrap());
    // The snapshot's key was rewrapped too.
    assert_eq!(e.open_report().state, StateSource::Snapshot);
    assert_eq!(dump(&e, &ids), before);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn create_and_open_refuse_the_wrong_place() {
    let dir = tmp("place");
    assert!(matches!(
        Engine::open(&dir, Arc::new(policy()), kek(1)),
        Err(EngineError::Store(StoreError::Location(_)))
    ));
    drop(create(&dir));
    assert!(matches!(
        Engine::create(&dir, Arc::new(policy()), kek(1)),
        Err(EngineError::Store(StoreError::Location(_)))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_damaged_database_is_a_clear_error() {
    let dir = tmp("damage");
    let mut e = create(&dir);
    populate(&mut e, 50);
    drop(e);
    let db = dir.join(privseg::store::DB_FILE);
    let mut bytes = std::fs::read(&db).unwrap();
    // Overwrite every page after the first with noise.
    for (i, b) in bytes.iter_mut().enumerate().skip(4096) {
        *b = (i as u8).wrapping_mul(31) ^ 0x5a;
    }
    std::fs::write(&db, &bytes).unwrap();
    match Engine::open(&dir, Arc::new(policy()), kek(1)) {
        Err(EngineError::Store(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("store"), "{msg}");
        }
        other => panic!("damage must be an error: {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_tampered_value_is_refused_not_read() {
    let dir = tmp("tamper");
    let mut e = create(&dir);
    populate(&mut e, 3);
    drop(e);
    {
        // Move row 0's sealed balance onto row 1: the associated data binds
        // it to its row, so it does not decrypt there.
        let c = rusqlite::Connection::open(dir.join(privseg::store::DB_FILE)).unwrap();
        let b: Vec<u8> = c
            .query_row(
                "SELECT sealed FROM vals WHERE row = 0 AND attr = 'balance'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        c.execute(
            "UPDATE vals SET sealed = ?1 WHERE row = 1 AND attr = 'balance'",
            [b],
        )
        .unwrap();
    }
    match Engine::open(&dir, Arc::new(policy()), kek(1)) {
        Err(EngineError::Store(StoreError::Damaged(m))) => assert!(m.contains("balance"), "{m}"),
        other => panic!("{other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn opening_under_another_policy_says_what_changed() {
    let dir = tmp("policy");
    let mut e = create(&dir);
    populate(&mut e, 3);
    drop(e);
    // Drop an attribute that has values on record: refused, naming it.
    let mut spec = policy().spec().clone();
    spec.attributes.retain(|a| a.name != "balance");
    let p = privseg::policy::Policy::from_spec(spec).unwrap();
    match Engine::open(&dir, Arc::new(p), kek(1)) {
        Err(EngineError::Store(StoreError::Policy(m))) => assert!(m.contains("balance"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Drop one with no values: opens, and the report names it.
    let mut spec = policy().spec().clone();
    spec.attributes.retain(|a| a.name != "convicted");
    let p = privseg::policy::Policy::from_spec(spec).unwrap();
    let e = Engine::open(&dir, Arc::new(p), kek(1)).unwrap();
    let changes = &e.open_report().policy_changes;
    assert!(
        changes.iter().any(|c| c.contains("convicted")),
        "{changes:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn purge_removes_values_past_retention_durably() {
    let dir = tmp("purge");
    let mut e = create(&dir);
    let ids = populate(&mut e, 4);
    // country (user.location, 730 days) was verified 2026-01-01.
    set_now(t("2028-06-01T00:00:00Z"));
    let s = e.purge(&admin()).unwrap();
    reset_now();
    assert!(s.values >= 4, "{s:?}");
    drop(e);
    let e = open(&dir);
    for id in &ids {
        assert_eq!(e.attribute(&admin(), id, "country").unwrap(), None);
        assert!(e.attribute(&admin(), id, "balance").unwrap().is_some());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- Crash safety -------------------------------------------------------

/// The child's work: opens (or creates) the store and writes forever,
/// printing `ack N` after write N returned.
fn child(dir: &Path) {
    use std::io::Write;
    let mut e = match Engine::open(dir, Arc::new(policy()), kek(1)) {
        Ok(e) => e,
        Err(_) => Engine::create(dir, Arc::new(policy()), kek(1)).unwrap(),
    };
    e = with_test_clock(e);
    let a = admin();
    // One subject per write number, erased ones included.
    let start = e.row_count();
    let mut out = std::io::stdout().lock();
    for n in start.. {
        let id = format!("c{n}");
        match n % 7 {
            // A batch: a subject with a value and a grant, in one import.
            0 => {
                let row = SubjectRow {
                    id: id.clone(),
                    jurisdiction: "EU-FR".into(),
                    birth_date: parse_date("1970-01-01").ok(),
                    values: vec![(
                        "total_spend".into(),
                        (n as i64 % 900).into(),
                        t("2026-01-01T00:00:00Z"),
                    )],
                };
                let ev = ConsentEvent::grant(
                    &id,
                    "marketing.email",
                    t("2026-01-02T00:00:00Z"),
                    "v3",
                    SHA,
                );
                e.import(&a, &[row], &[ev]).unwrap();
            }
            _ => {
                adult(&mut e, &id, "EU-FR");
                e.set_attribute(
                    &a,
                    &id,
                    "total_spend",
                    (n as i64 % 900).into(),
                    t("2026-01-01T00:00:00Z"),
                )
                .unwrap();
                grant(&mut e, &id, "marketing.email", "2026-01-02T00:00:00Z", "v3");
                if n % 3 == 0 && n > 0 {
                    e.erase(&a, &format!("c{}", n - 1)).ok();
                }
            }
        }
        // Now and then a snapshot (a kill may land while it is written).
        if n % 5 == 4 {
            e.checkpoint().unwrap();
        }
        writeln!(out, "ack {n}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn crash_child() {
    if let Ok(dir) = std::env::var("PRIVSEG_CRASH_CHILD_DIR") {
        child(Path::new(&dir));
    }
}

#[test]
fn a_killed_writer_loses_no_acknowledged_write() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let iterations: usize = std::env::var("PRIVSEG_CRASH_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let dir = tmp("crash");
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut acked_total = 0usize;
    let mut acked_all = std::collections::BTreeSet::new();
    for it in 0..iterations {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = 1 + (seed % 12) as usize;
        let mut c = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env("PRIVSEG_CRASH_CHILD_DIR", &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut acked: Option<usize> = None;
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        let mut seen = 0;
        while let Some(Ok(l)) = lines.next() {
            if let Some(n) = l.find("ack ").map(|i| &l[i + 4..]) {
                let n: usize = n.parse().unwrap();
                acked = Some(n);
                acked_all.insert(n);
                seen += 1;
                if seen >= kill_after {
                    break;
                }
            }
        }
        // Microseconds more of writing, then SIGKILL mid-write.
        std::thread::sleep(std::time::Duration::from_micros(seed % 3000));
        c.kill().unwrap();
        c.wait().unwrap();
        let e = open(&dir);
        let a = admin();
        let last = acked.expect("the child acknowledged writes");
        acked_total += seen;
        // Every acknowledged write is there: each subject, with its value
        // and its grant, unless a later acknowledged write erased it.
        for &n in acked_all.iter() {
            let id = format!("c{n}");
            let erased_by_ack = (n + 1) % 7 != 0 && (n + 1) % 3 == 0 && n < last;
            if erased_by_ack {
                continue;
            }
            if let Ok(Some((v, _))) = e.attribute(&a, &id, "total_spend") {
                assert_eq!(
                    v,
                    privseg::Value::Int(n as i64 % 900),
                    "iteration {it}: {id}"
                );
                assert_eq!(e.history(&a, &id).unwrap().len(), 1, "iteration {it}: {id}");
            } else {
                // Only an erasure by the write after it (which may have
                // landed unacknowledged) may remove an acknowledged subject.
                assert!(
                    (n + 1) % 7 != 0 && (n + 1) % 3 == 0,
                    "iteration {it}: {id} lost"
                );
            }
        }
        // Nothing half-applied: a batch (subject, value and grant in one
        // import) is there whole or not at all, acknowledged or not.
        let rows = e.row_count();
        for n in (0..rows).filter(|n| n % 7 == 0) {
            let id = format!("c{n}");
            if let Ok(v) = e.attribute(&a, &id, "total_spend") {
                assert!(v.is_some(), "iteration {it}: batch {id} without its value");
                assert_eq!(e.history(&a, &id).unwrap().len(), 1, "iteration {it}: {id}");
            }
        }
        // Masks rebuilt on open equal the reference evaluator's.
        let ids: Vec<String> = (0..rows).map(|n| format!("c{n}")).collect();
        let state = dump(&e, &ids);
        // Whether or not the snapshot was used, the state equals the one
        // rebuilt from the record.
        drop(e);
        let _ = std::fs::remove_file(dir.join(SNAPSHOT_FILE));
        let e = open(&dir);
        assert_eq!(dump(&e, &ids), state, "iteration {it}");
        // The next child starts from a snapshot half the time.
        if it % 2 == 0 {
            e.checkpoint().unwrap();
        }
        drop(e);
    }
    assert!(acked_total >= iterations);
    eprintln!("crash test: {iterations} kills, {acked_total} acknowledged writes checked");
    std::fs::remove_dir_all(&dir).unwrap();
}
