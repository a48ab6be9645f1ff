//! The engine's audit trail on disk: every operation is recorded with its
//! operation and actor, the file holds no raw subject id and no attribute
//! value, signed checkpoints verify and catch a flipped byte, and erasure
//! only ever appends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use privseg::audit::{
    AuditEntry, AuditLog, AuditPseudonymizer, AuditSink, Checkpoint, CheckpointSigner, FileSink,
    Operation, SyncPolicy, VerifyReport, verify_file,
};
use privseg::consent::ConsentEvent;
use privseg::import::SubjectRow;
use privseg::outputs::ExportFormat;
use privseg::policy::*;
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, EngineError, Timestamp};

const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const AT: &str = "2026-03-01T10:00:00Z";
const VERIFIED: &str = "2026-02-01T00:00:00Z";

/// Subject ids of the test; none may reach the log file.
const ALICE: &str = "alice.martin@example.com";
const BRUNO: &str = "cust-0042-bruno";
const CHLOE: &str = "cust-0099-chloe";

/// Attribute values of the test, as given; none may reach the log file.
const REGIONS: [&str; 3] = ["Lyon-Presquile", "Munich-Schwabing", "Porto-Ribeira"];
const SPEND: [i64; 3] = [73_409_817, 52_910_388, 61_873_402];
const LAST_ORDER: &str = "2025-03-17T08:41:09Z";

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn policy() -> Policy {
    PolicyBuilder::new("Acme Retail Ltd")
        .category(CategorySpec::new("user.location").retention_days(730))
        .category(CategorySpec::new("user.financial.transactions"))
        .category(CategorySpec::new("user.behaviour"))
        .category(CategorySpec::new("user.health").special())
        .attribute(AttributeSpec::categorical(
            "region",
            "user.location",
            &REGIONS,
        ))
        .attribute(AttributeSpec::integer(
            "total_spend",
            "user.financial.transactions",
            0,
            100_000_000,
        ))
        .attribute(AttributeSpec::timestamp("last_order", "user.behaviour"))
        .attribute(AttributeSpec::categorical(
            "condition",
            "user.health",
            &["chronic", "none"],
        ))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.financial")
                .allow("user.behaviour")
                .notice_versions(&["v3"])
                .email(false),
        )
        .purpose(
            PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests)
                .allow("user.location")
                .allow("user.financial"),
        )
        .recipient(RecipientSpec {
            id: "mailer".into(),
            name: "Mailer GmbH".into(),
            country: "DE".into(),
            third_country: false,
            dpa_reference: "DPA-2024-003".into(),
            purposes: vec!["marketing.email".into()],
            categories: vec!["user.location".into(), "user.financial".into()],
            ccpa_role: CcpaRole::ServiceProvider,
        })
        .role(RoleSpec {
            name: "crm".into(),
            count: vec!["marketing".into()],
            member_ids: vec!["marketing".into()],
            explain: vec!["marketing".into()],
            export: vec!["mailer".into()],
            subjects: true,
            read_audit: true,
            ..RoleSpec::default()
        })
        .role(RoleSpec {
            name: "analyst".into(),
            count: vec!["analytics".into()],
            ..RoleSpec::default()
        })
        .build()
        .unwrap()
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("privseg-audit-engine-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Syncs the log and takes a signed checkpoint of it (the read is itself
/// recorded first, so the checkpoint covers it).
fn checkpoint(e: &Engine, actor: &Actor, signer: &CheckpointSigner) -> Checkpoint {
    e.with_audit_log(actor, |log| {
        log.sync().unwrap();
        log.checkpoint(signer, t(AT).unix()).unwrap()
    })
    .unwrap()
}

/// The byte range of each record's payload: records are a 12-byte header
/// (magic, little-endian length, checksum) and the payload.
fn payloads(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        assert_eq!(&bytes[at..at + 4], b"PSA1");
        let n = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
        out.push(at + 12..at + 12 + n);
        at += 12 + n;
    }
    out
}

struct Run {
    _dir: Scratch,
    path: PathBuf,
    engine: Engine,
    signer: CheckpointSigner,
    crm: Actor,
    /// File bytes and checkpoint just before the erasure.
    before_erasure: (Vec<u8>, Checkpoint),
    /// Checkpoint after everything.
    last: Checkpoint,
}

/// A realistic sequence of calls, recorded in a file.
fn run(tag: &str) -> Run {
    let dir = Scratch::new(tag);
    let path = dir.0.join("engine.audit");
    let (sink, report) = FileSink::open(&path, SyncPolicy::Never).unwrap();
    assert_eq!(report.entries, 0);
    let log = AuditLog::open(Box::new(sink) as Box<dyn AuditSink + Send>, &[0x42; 32]).unwrap();
    let ids = AuditPseudonymizer::new(&[0x42; 32]).unwrap();
    let mut e = Engine::with_audit(Arc::new(policy()), log, ids).unwrap();
    let crm = Actor::new("crm-sync", &["crm"]);
    let analyst = Actor::new("analyst-7", &["analyst"]);
    let born = Some(parse_date("1980-05-01").unwrap());

    // Bulk import of two subjects with values and a consent.
    let row = |id: &str, i: usize| SubjectRow {
        id: id.into(),
        jurisdiction: "EU-FR".into(),
        birth_date: born,
        values: vec![
            ("region".into(), REGIONS[i].into(), t(VERIFIED)),
            ("total_spend".into(), SPEND[i].into(), t(VERIFIED)),
            ("last_order".into(), LAST_ORDER.into(), t(VERIFIED)),
        ],
    };
    let summary = e
        .import(
            &crm,
            &[row(ALICE, 0), row(BRUNO, 1)],
            &[ConsentEvent::grant(
                ALICE,
                "marketing.email",
                t("2026-01-10T09:00:00Z"),
                "v3",
                SHA,
            )],
        )
        .unwrap();
    assert_eq!(
        (summary.subjects, summary.values, summary.events),
        (2, 6, 1)
    );
    // One subject added by hand.
    e.add_subject(&crm, CHLOE, "EU-DE", born).unwrap();
    e.set_attribute(&crm, CHLOE, "region", REGIONS[2].into(), t(VERIFIED))
        .unwrap();
    e.set_attribute(&crm, CHLOE, "total_spend", SPEND[2].into(), t(VERIFIED))
        .unwrap();
    e.record(
        &crm,
        &ConsentEvent::grant(
            CHLOE,
            "marketing.email",
            t("2026-02-03T12:00:00Z"),
            "v3",
            SHA,
        ),
    )
    .unwrap();
    // A valid segment and one refused (health data for marketing).
    let seg = e
        .compile(
            &crm,
            r#"segment "high-value" for marketing.email where total_spend >= 50000000"#,
        )
        .unwrap();
    let refused = e
        .compile(
            &crm,
            r#"segment "care" for marketing.email where condition = "chronic""#,
        )
        .unwrap_err();
    assert!(refused.rule().is_some(), "{refused}");
    // Evaluate, explain, count, export.
    let members = e.evaluate(&crm, &seg, t(AT)).unwrap();
    assert_eq!(members.count(), 2); // Bruno has no consent
    let why = e.explain(&crm, &seg, BRUNO, t(AT)).unwrap();
    // Not eligible: the predicate is not read for them.
    assert!(!why.member && why.predicate_held.is_none());
    e.count(&crm, &seg, t(AT)).unwrap();
    let keys = Keyring::new(MasterSecret::from_bytes(&[7u8; 32]).unwrap(), 1).unwrap();
    let mut out = Vec::new();
    let sent = e
        .export(
            &crm,
            &seg,
            t(AT),
            "mailer",
            &["region"],
            ExportFormat::Jsonl,
            &keys,
            &mut out,
        )
        .unwrap();
    assert_eq!(sent.rows, 2);
    // The export itself carries the value; the log must not.
    assert!(contains(&out, REGIONS[0]));
    // An access refusal.
    assert!(matches!(
        e.evaluate(&analyst, &seg, t(AT)),
        Err(EngineError::Access(_))
    ));

    let signer = CheckpointSigner::from_seed(&[0x5a; 32]).unwrap();
    let cp = checkpoint(&e, &crm, &signer);
    let bytes = std::fs::read(&path).unwrap();
    e.erase(&crm, ALICE).unwrap();
    let last = checkpoint(&e, &crm, &signer);
    Run {
        _dir: dir,
        path,
        engine: e,
        signer,
        crm,
        before_erasure: (bytes, cp),
        last,
    }
}

fn file_entries(path: &Path) -> Vec<AuditEntry> {
    FileSink::scan(path).unwrap().entries
}

#[test]
fn every_operation_is_recorded_with_its_actor() {
    let r = run("ops");
    let e = &r.engine;
    let entries = file_entries(&r.path);
    let p = |id: &str| e.audit_pseudonym(id);
    // (operation, actor, subject pseudonym, purpose)
    let want: Vec<(Operation, &str, Option<String>, Option<&str>)> = vec![
        (Operation::PolicyLoaded, "privseg", None, None),
        (Operation::SubjectAdded, "crm-sync", None, None), // the import
        (Operation::SubjectAdded, "crm-sync", Some(p(CHLOE)), None),
        (
            Operation::SubjectRectified,
            "crm-sync",
            Some(p(CHLOE)),
            None,
        ),
        (
            Operation::SubjectRectified,
            "crm-sync",
            Some(p(CHLOE)),
            None,
        ),
        (
            Operation::EventRecorded,
            "crm-sync",
            Some(p(CHLOE)),
            Some("marketing.email"),
        ),
        (
            Operation::SegmentValidated,
            "crm-sync",
            None,
            Some("marketing.email"),
        ),
        (
            Operation::SegmentRefused,
            "crm-sync",
            None,
            Some("marketing.email"),
        ),
        (
            Operation::SegmentEvaluated,
            "crm-sync",
            None,
            Some("marketing.email"),
        ),
        (
            Operation::SubjectExplained,
            "crm-sync",
            Some(p(BRUNO)),
            Some("marketing.email"),
        ),
        (
            Operation::Counted,
            "crm-sync",
            None,
            Some("marketing.email"),
        ),
        (
            Operation::Exported,
            "crm-sync",
            None,
            Some("marketing.email"),
        ),
        (
            Operation::AccessRefused,
            "analyst-7",
            None,
            Some("marketing.email"),
        ),
        (Operation::AuditRead, "crm-sync", None, None),
        (Operation::SubjectErased, "crm-sync", Some(p(ALICE)), None),
        (Operation::AuditRead, "crm-sync", None, None),
    ];
    let got: Vec<(Operation, &str, Option<String>, Option<&str>)> = entries
        .iter()
        .map(|x| {
            (
                x.operation,
                x.actor.as_str(),
                x.subjects.first().cloned(),
                x.purpose.as_deref(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(e.audit_len(), entries.len() as u64);
    for (i, x) in entries.iter().enumerate() {
        assert_eq!(x.seq, i as u64);
        assert!(x.subjects.len() <= 1);
        assert_eq!(
            x.policy_version.as_deref(),
            Some(e.policy().version().to_string().as_str())
        );
    }
    // The details that make the entries useful, without personal data.
    assert_eq!(entries[1].details["import_subjects"], 2);
    assert_eq!(entries[1].details["import_values"], 6);
    assert_eq!(entries[1].details["import_events"], 1);
    assert_eq!(entries[3].details["attribute"], "region");
    assert_eq!(entries[5].details["kind"], "consent_granted");
    assert_eq!(entries[6].details["segment"], "high-value");
    assert!(entries[7].details.contains_key("rule"));
    assert_eq!(entries[8].details["members"], 2);
    assert_eq!(entries[10].details["reported"], "<11");
    assert_eq!(entries[11].details["recipient"], "mailer");
    assert_eq!(entries[11].details["rows"], 2);
    assert_eq!(
        entries[12].details["permission"],
        "member_ids for purpose marketing.email"
    );
}

#[test]
fn the_log_file_holds_no_subject_id_and_no_value() {
    let r = run("scan");
    let bytes = std::fs::read(&r.path).unwrap();
    // Control: the scan finds what is there.
    assert!(contains(&bytes, "crm-sync"));
    assert!(contains(&bytes, "analyst-7"));
    assert!(contains(&bytes, &r.engine.audit_pseudonym(ALICE)));
    assert!(contains(&bytes, "total_spend")); // attribute names are not personal data
    let mut forbidden: Vec<String> = vec![ALICE.into(), BRUNO.into(), CHLOE.into()];
    // Parts of ids, too: the local part of the email address.
    forbidden.push("alice.martin".into());
    forbidden.extend(REGIONS.iter().map(|s| s.to_string()));
    forbidden.extend(SPEND.iter().map(|v| v.to_string()));
    forbidden.push(LAST_ORDER.into());
    // The literal of the refused segment (a value, possibly personal).
    forbidden.push("chronic".into());
    forbidden.push(t(LAST_ORDER).unix().to_string());
    for s in &forbidden {
        assert!(!contains(&bytes, s), "the log file contains {s:?}");
    }
}

#[test]
fn checkpoints_verify_and_a_flipped_byte_is_found() {
    let r = run("verify");
    let verifier = r.signer.verifier();
    let size = r.engine.audit_len();
    assert_eq!(r.last.tree_size, size);
    assert_eq!(
        verify_file(&r.path, &r.last, &verifier).unwrap(),
        VerifyReport::Ok {
            checkpoint_size: size,
            log_len: size
        }
    );
    let bytes = std::fs::read(&r.path).unwrap();
    let records = payloads(&bytes);
    assert_eq!(records.len() as u64, size);

    // One flipped byte inside record 4: its checksum no longer holds.
    let tampered = r.path.with_file_name("flipped.audit");
    let mut flipped = bytes.clone();
    flipped[records[4].start + 10] ^= 0x01;
    std::fs::write(&tampered, &flipped).unwrap();
    let report = verify_file(&tampered, &r.last, &verifier).unwrap();
    assert!(
        matches!(report, VerifyReport::CorruptRecord { index: 4, .. }),
        "{report:?}"
    );
    assert_eq!(report.first_bad_index(), Some(4));

    // The same edit with the checksum recomputed: the record reads fine,
    // but the Merkle root no longer matches the signed checkpoint.
    let mut forged = bytes.clone();
    let range = records[2].clone();
    let at = range.start
        + bytes[range.clone()]
            .windows(8)
            .position(|w| w == b"crm-sync")
            .unwrap();
    forged[at + 5] = b'z'; // "crm-sznc"
    let mut h = crc32fast::Hasher::new_with_initial(0x5053_4731);
    h.update(&forged[range.start - 12..range.start - 4]);
    h.update(&forged[range.clone()]);
    forged[range.start - 4..range.start].copy_from_slice(&h.finalize().to_le_bytes());
    std::fs::write(&tampered, &forged).unwrap();
    let report = verify_file(&tampered, &r.last, &verifier).unwrap();
    assert_eq!(
        report,
        VerifyReport::RootMismatch {
            checkpoint_size: size,
            first_bad_at_least: 0
        }
    );

    // A checkpoint signed by another key is refused.
    let other = CheckpointSigner::from_seed(&[0x11; 32]).unwrap();
    let report = verify_file(&r.path, &r.last, &other.verifier()).unwrap();
    assert!(matches!(report, VerifyReport::BadSignature { .. }));
}

#[test]
fn erasure_only_appends_to_the_log() {
    let r = run("erase");
    let (before, cp) = &r.before_erasure;
    let after = std::fs::read(&r.path).unwrap();
    assert!(after.len() > before.len());
    assert!(after.starts_with(before), "erasure rewrote the log");
    // The erasure entry and the read after it are the only additions.
    let added = &after[before.len()..];
    assert_eq!(payloads(added).len(), 2);
    // The checkpoint from before the erasure still verifies, and the log
    // after it extends the one before.
    let verifier = r.signer.verifier();
    assert_eq!(
        verify_file(&r.path, cp, &verifier).unwrap(),
        VerifyReport::Ok {
            checkpoint_size: cp.tree_size,
            log_len: r.last.tree_size
        }
    );
    let proof = r
        .engine
        .with_audit_log(&r.crm, |log| {
            log.prove_consistency_between(cp.tree_size, r.last.tree_size)
                .unwrap()
        })
        .unwrap();
    proof.verify(&cp.root_hash, &r.last.root_hash).unwrap();
    // The subject is gone from the engine, but its entries remain, by
    // pseudonym only.
    assert!(matches!(
        r.engine.history(&r.crm, ALICE),
        Err(EngineError::UnknownSubject(_))
    ));
    let pseudonym = r.engine.audit_pseudonym(ALICE);
    let mentions = file_entries(&r.path)
        .iter()
        .filter(|x| x.subjects.contains(&pseudonym))
        .count();
    // The erasure, and the lookup above of the now unknown id (the import
    // lists no pseudonyms).
    assert_eq!(mentions, 2);
}

/// A refused segment is recorded by rule, purpose, stage and position; its
/// text (which quotes literals) is not.
#[test]
fn a_refused_segment_is_recorded_without_its_text() {
    let r = run("refused");
    let entries = file_entries(&r.path);
    let refused = entries
        .iter()
        .find(|x| x.operation == Operation::SegmentRefused)
        .unwrap();
    assert_eq!(refused.purpose.as_deref(), Some("marketing.email"));
    assert!(refused.details.contains_key("rule"), "{refused:?}");
    assert_eq!(refused.details["stage"], "validate");
    assert!(refused.details["line"].as_u64().is_some());
    assert!(refused.details["column"].as_u64().is_some());
    let text = serde_json::to_string(&refused.details).unwrap();
    assert!(
        !text.contains("chronic") && !text.contains("condition ="),
        "{text}"
    );
    assert!(!refused.details.contains_key("message"));

    // Refusals whose messages quote the literal (a parse error at a
    // string, a value compared with a categorical attribute): the literal
    // stays out of the log.
    let secret = "jane.doe@example.com";
    for text in [
        format!(r#"segment "a" for marketing.email where "{secret}""#),
        format!(r#"segment "b" for marketing.email where region > "{secret}""#),
    ] {
        let err = r.engine.compile(&r.crm, &text).unwrap_err();
        assert!(err.to_string().contains(secret), "control: {err}");
    }
    let bytes = std::fs::read(&r.path).unwrap();
    assert!(!contains(&bytes, secret));
    assert!(!contains(&bytes, "jane.doe"));
}

/// Looking up an id the engine does not know is recorded too, by
/// pseudonym, with the outcome.
#[test]
fn lookups_of_unknown_subjects_are_recorded() {
    let r = run("unknown");
    let ghost = "cust-7777-ghost";
    let before = r.engine.audit_len();
    assert!(matches!(
        r.engine.history(&r.crm, ghost),
        Err(EngineError::UnknownSubject(_))
    ));
    assert!(matches!(
        r.engine.eligibility(&r.crm, ghost, "marketing.email"),
        Err(EngineError::UnknownSubject(_))
    ));
    assert_eq!(r.engine.audit_len(), before + 2);
    let entries = file_entries(&r.path);
    let pseudonym = r.engine.audit_pseudonym(ghost);
    let last = &entries[entries.len() - 2..];
    assert_eq!(last[0].operation, Operation::SubjectAccessed);
    assert_eq!(last[1].operation, Operation::SubjectExplained);
    for e in last {
        assert_eq!(e.subjects, vec![pseudonym.clone()]);
        assert_eq!(e.details["outcome"], "unknown");
        assert_eq!(e.actor, "crm-sync");
    }
    assert!(!contains(&std::fs::read(&r.path).unwrap(), ghost));
}

/// The import digest is keyed: the same batch under two audit keys gives
/// two digests, and no unkeyed hash of ids is recorded.
#[test]
fn the_import_digest_is_keyed() {
    let digest_under = |key: u8| {
        let log = AuditLog::open(
            Box::new(privseg::audit::MemorySink::new()) as Box<dyn AuditSink + Send>,
            &[key; 32],
        )
        .unwrap();
        let ids = AuditPseudonymizer::new(&[key; 32]).unwrap();
        let mut e = Engine::with_audit(Arc::new(policy()), log, ids).unwrap();
        let crm = Actor::new("crm-sync", &["crm"]);
        let row = SubjectRow {
            id: ALICE.into(),
            jurisdiction: "EU-FR".into(),
            birth_date: None,
            values: vec![],
        };
        e.import(&crm, &[row], &[]).unwrap();
        let entries = e
            .with_audit_log(&crm, |log| log.entries().unwrap())
            .unwrap();
        let import = &entries[1];
        assert!(!import.details.contains_key("import_sha256"));
        import.details["import_mac"].as_str().unwrap().to_owned()
    };
    let (a, b) = (digest_under(1), digest_under(2));
    assert_eq!(a.len(), 64);
    assert_ne!(a, b);
    assert_eq!(a, digest_under(1));
}
