//! The `privseg` store commands, run as a process: init, import (all or
//! nothing), the data commands over `--store`, erase, purge, refusals.
//!
//! Needs the `cli` feature (`cargo test --features cli --test cli_store`);
//! without it the tests are not built.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value as Json;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");
const FR: &str = r#"segment "fr" for marketing.email where country = "FR""#;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_privseg"))
        .args(args)
        .output()
        .expect("privseg runs");
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn login() -> String {
    let out = Command::new("id").arg("-un").output().expect("id runs");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A scratch directory with the sample policy, letting the user running
/// the tests act as `tester` (admin) or `zoe` (loader).
fn scratch(name: &str) -> (PathBuf, String) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("cli-store-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut spec: Json =
        serde_json::from_str(&std::fs::read_to_string(format!("{DATA}/policy.json")).unwrap())
            .unwrap();
    spec["actors"] = serde_json::json!([
        {"os_user": login(), "id": "tester", "roles": ["admin"]},
        {"os_user": login(), "id": "zoe", "roles": ["loader"]},
    ]);
    let policy = dir.join("policy.json");
    std::fs::write(&policy, serde_json::to_string(&spec).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o644)).unwrap();
    (dir, policy.to_str().unwrap().to_string())
}

fn as_admin<'a>(cmd: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![cmd, "--actor", "tester", "--role", "admin"];
    v.extend_from_slice(rest);
    v
}

fn init(dir: &Path, policy: &str) -> String {
    let store = dir.join("store").to_str().unwrap().to_string();
    let r = run(&as_admin("init", &["--policy", policy, "--store", &store]));
    assert_eq!(r.code, 0, "{}", r.stderr);
    store
}

fn import(policy: &str, store: &str, subjects: &str, consents: &str) -> Run {
    run(&[
        "import",
        "--actor",
        "zoe",
        "--role",
        "loader",
        "--policy",
        policy,
        "--store",
        store,
        "--subjects",
        subjects,
        "--consents",
        consents,
    ])
}

fn count_fr(policy: &str, store: &str) -> Run {
    run(&as_admin(
        "eval",
        &[
            "--policy",
            policy,
            "--store",
            store,
            "--ids",
            "--segment",
            FR,
        ],
    ))
}

fn files_eval(policy: &str) -> Run {
    run(&as_admin(
        "eval",
        &[
            "--policy",
            policy,
            "--subjects",
            &format!("{DATA}/subjects.csv"),
            "--consents",
            &format!("{DATA}/consents.jsonl"),
            "--ids",
            "--segment",
            FR,
        ],
    ))
}

/// Everything after the first line (the ids), which holds the time.
fn ids(r: &Run) -> Vec<String> {
    r.stdout
        .lines()
        .skip(1)
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn a_store_answers_as_the_files_do_and_keeps_its_audit_log() {
    let (dir, policy) = scratch("same");
    let store = init(&dir, &policy);
    let key = Path::new(&store).join("store.key");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o077,
        0,
        "the key file is its owner's only"
    );
    let r = import(
        &policy,
        &store,
        &format!("{DATA}/subjects.csv"),
        &format!("{DATA}/consents.jsonl"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // The import ends with a snapshot of the state, for fast opens.
    assert!(Path::new(&format!("{store}/snapshot.bin")).exists());
    let from_store = count_fr(&policy, &store);
    assert_eq!(from_store.code, 0, "{}", from_store.stderr);
    let from_files = files_eval(&policy);
    assert_eq!(from_files.code, 0, "{}", from_files.stderr);
    assert!(!ids(&from_files).is_empty());
    assert_eq!(ids(&from_store), ids(&from_files));
    // The store's own audit log recorded the runs; it verifies with its key.
    let dump = run(&["audit", "dump", "--log", &format!("{store}/audit.log")]);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    assert!(dump.stdout.lines().count() >= 3, "{}", dump.stdout);
    // A second init on the same directory is an input error.
    let again = run(&as_admin("init", &["--policy", &policy, "--store", &store]));
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_import_with_a_bad_line_adds_nothing() {
    let (dir, policy) = scratch("atomic");
    let store = init(&dir, &policy);
    let subjects = std::fs::read_to_string(format!("{DATA}/subjects.csv")).unwrap();
    // A good file, but one event line at the end names an unknown subject
    // field: the whole import is refused.
    let mut consents = std::fs::read_to_string(format!("{DATA}/consents.jsonl")).unwrap();
    consents.push_str("{\"not an event\": true}\n");
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, consents).unwrap();
    let r = import(
        &policy,
        &store,
        &format!("{DATA}/subjects.csv"),
        bad.to_str().unwrap(),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("bad.jsonl"), "{}", r.stderr);
    let after = count_fr(&policy, &store);
    assert_eq!(after.code, 0, "{}", after.stderr);
    assert!(after.stdout.contains(": 0 members"), "{}", after.stdout);
    // The subjects file alone, then appended a second time: duplicates are
    // refused whole too.
    let good = import(
        &policy,
        &store,
        &format!("{DATA}/subjects.csv"),
        &format!("{DATA}/consents.jsonl"),
    );
    assert_eq!(good.code, 0, "{}", good.stderr);
    let n = ids(&count_fr(&policy, &store)).len();
    assert!(n > 0);
    let twice = import(
        &policy,
        &store,
        &format!("{DATA}/subjects.csv"),
        &format!("{DATA}/consents.jsonl"),
    );
    assert_eq!(twice.code, 2, "{}", twice.stderr);
    assert_eq!(ids(&count_fr(&policy, &store)).len(), n);
    drop(subjects);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn erase_removes_a_subject_for_good_and_needs_the_subjects_permission() {
    let (dir, policy) = scratch("erase");
    let store = init(&dir, &policy);
    let r = import(
        &policy,
        &store,
        &format!("{DATA}/subjects.csv"),
        &format!("{DATA}/consents.jsonl"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let before = ids(&count_fr(&policy, &store));
    let victim = before[0].clone();
    // zoe (loader) has `subjects`; an identity with no role is refused.
    let refused = run(&[
        "erase",
        "--actor",
        "zoe",
        "--policy",
        &policy,
        "--store",
        &store,
        "--subject",
        &victim,
    ]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("subjects"), "{}", refused.stderr);
    assert_eq!(ids(&count_fr(&policy, &store)), before);
    let ok = run(&[
        "erase",
        "--actor",
        "zoe",
        "--role",
        "loader",
        "--policy",
        &policy,
        "--store",
        &store,
        "--subject",
        &victim,
    ]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let after = ids(&count_fr(&policy, &store));
    assert_eq!(after.len(), before.len() - 1);
    assert!(!after.contains(&victim));
    // Its id is in no file of the store (the audit log has pseudonyms).
    for f in std::fs::read_dir(&store).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(victim.len()).any(|w| w == victim.as_bytes()),
            "the erased id is still on disk"
        );
    }
    let unknown = run(&[
        "erase",
        "--actor",
        "zoe",
        "--role",
        "loader",
        "--policy",
        &policy,
        "--store",
        &store,
        "--subject",
        &victim,
    ]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    let purge = run(&[
        "purge", "--actor", "zoe", "--role", "loader", "--policy", &policy, "--store", &store,
    ]);
    assert_eq!(purge.code, 0, "{}", purge.stderr);
    assert!(purge.stdout.starts_with("purged "), "{}", purge.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn store_input_errors_are_named() {
    let (dir, policy) = scratch("errors");
    let missing = dir.join("nowhere");
    let r = count_fr(&policy, missing.to_str().unwrap());
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no store here"), "{}", r.stderr);
    // --store with --subjects is a usage error.
    let both = run(&as_admin(
        "eval",
        &[
            "--policy",
            &policy,
            "--store",
            "x",
            "--subjects",
            "y",
            "--segment",
            FR,
        ],
    ));
    assert_eq!(both.code, 2, "{}", both.stderr);
    // The wrong key-encryption key is refused, naming the key.
    let store = init(&dir, &policy);
    let wrong = dir.join("wrong.key");
    std::fs::write(&wrong, [7u8; 32]).unwrap();
    let r = run(&as_admin(
        "eval",
        &[
            "--policy",
            &policy,
            "--store",
            &store,
            "--key-file",
            wrong.to_str().unwrap(),
            "--segment",
            FR,
        ],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("key"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dp_count_over_a_store_charges_the_stores_audit_log() {
    let (dir, policy) = scratch("dp");
    let store = init(&dir, &policy);
    let r = import(
        &policy,
        &store,
        &format!("{DATA}/subjects.csv"),
        &format!("{DATA}/consents.jsonl"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let segment = r#"segment "fr" for marketing.email where country = "FR""#;
    let dp = || {
        run(&as_admin(
            "count",
            &[
                "--policy",
                &policy,
                "--store",
                &store,
                "--segment",
                segment,
                "--epsilon",
                "1/2",
                "--format",
                "json",
            ],
        ))
    };
    // No --audit-log: the store's own log keeps the charge, its ledger
    // beside it.
    let first = dp();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let obj: Json = serde_json::from_str(first.stdout.trim()).unwrap();
    assert!(obj["noisy_count"].is_i64(), "{}", first.stdout);
    assert_eq!(obj["remaining_exact"], "1/2");
    assert!(Path::new(&format!("{store}/audit.log.budget")).exists());
    // The budget carries over between runs: the second charge spends the
    // rest and the third is refused.
    let second = dp();
    assert_eq!(second.code, 0, "{}", second.stderr);
    let obj: Json = serde_json::from_str(second.stdout.trim()).unwrap();
    assert_eq!(obj["remaining_exact"], "0");
    let third = dp();
    assert_ne!(third.code, 0, "{}", third.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dp_count_without_a_store_still_needs_an_audit_log() {
    let (dir, policy) = scratch("dp-files");
    let r = run(&as_admin(
        "count",
        &[
            "--policy",
            &policy,
            "--subjects",
            &format!("{DATA}/subjects.csv"),
            "--consents",
            &format!("{DATA}/consents.jsonl"),
            "--segment",
            FR,
            "--epsilon",
            "1/2",
        ],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--epsilon needs --audit-log"),
        "{}",
        r.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}
