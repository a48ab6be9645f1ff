//! What the audit log adds to a segment evaluation over 1,000,000 subjects.
//!
//! `Engine::evaluate` checks the actor's permission, evaluates, and appends
//! one audit entry to a file-backed log before releasing the members. The
//! bench times that call, and separately the gate and the audit entry alone
//! (the same permission check and the same entry, built the same way and
//! appended to a log file of the same kind), and prints their ratio.
//!
//! Run with `cargo bench --bench audit_overhead`.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use privseg::access::{Permission, authorize};
use privseg::audit::{
    AuditLog, AuditPseudonymizer, AuditSink, FileSink, Operation, PendingEntry, SyncPolicy,
};
use privseg::consent::ConsentEvent;
use privseg::import::SubjectRow;
use privseg::policy::*;
use privseg::segment::CheckedSegment;
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, Timestamp};

const SUBJECTS: u32 = 1_000_000;
const SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
const COUNTRIES: [&str; 4] = ["FR", "DE", "ES", "IT"];

fn policy() -> Policy {
    PolicyBuilder::new("Acme Retail Ltd")
        .category(CategorySpec::new("user.location"))
        .category(CategorySpec::new("user.financial.transactions"))
        .attribute(AttributeSpec::categorical(
            "country",
            "user.location",
            &COUNTRIES,
        ))
        .attribute(AttributeSpec::integer(
            "total_spend",
            "user.financial.transactions",
            0,
            1_000_000,
        ))
        .purpose(
            PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                .allow("user.location")
                .allow("user.financial")
                .notice_versions(&["v3"])
                .email(false),
        )
        .role(RoleSpec {
            name: "crm".into(),
            member_ids: vec!["marketing".into()],
            subjects: true,
            ..RoleSpec::default()
        })
        .build()
        .unwrap()
}

fn file_log(path: &Path) -> AuditLog {
    let _ = std::fs::remove_file(path);
    let (sink, _) = FileSink::open(path, SyncPolicy::Never).unwrap();
    AuditLog::open(Box::new(sink) as Box<dyn AuditSink + Send>, &[0x42; 32]).unwrap()
}

/// An engine over `SUBJECTS` subjects with two values each and a consent
/// for about two in three, logging to a file.
fn engine(path: &Path) -> Engine {
    let ids = AuditPseudonymizer::new(&[0x42; 32]).unwrap();
    let mut e = Engine::with_audit(Arc::new(policy()), file_log(path), ids).unwrap();
    let crm = Actor::new("crm-sync", &["crm"]);
    let verified = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
    let granted = Timestamp::parse("2026-01-10T00:00:00Z").unwrap();
    let born = parse_date("1980-01-01").ok();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rows = Vec::with_capacity(SUBJECTS as usize);
    let mut events = Vec::new();
    for i in 0..SUBJECTS {
        let id = format!("c-{i}");
        let r = next();
        if r % 3 != 0 {
            events.push(ConsentEvent::grant(
                &id,
                "marketing.email",
                granted,
                "v3",
                SHA,
            ));
        }
        rows.push(SubjectRow {
            id,
            jurisdiction: "EU-FR".into(),
            birth_date: born,
            values: vec![
                (
                    "country".into(),
                    COUNTRIES[(r >> 8) as usize % 4].into(),
                    verified,
                ),
                (
                    "total_spend".into(),
                    (((r >> 16) % 1_000_000) as i64).into(),
                    verified,
                ),
            ],
        });
    }
    e.import(&crm, &rows, &events).unwrap();
    e
}

/// The gate and the entry of an evaluation, as `Engine::evaluate` makes
/// them, appended to `log`.
fn gate_and_entry(
    policy: &Policy,
    actor: &Actor,
    seg: &CheckedSegment,
    at: Timestamp,
    members: u64,
    log: &mut AuditLog,
) {
    authorize(policy, actor, Permission::MemberIds(seg.purpose_key())).unwrap();
    let entry = PendingEntry::new(
        Timestamp::now().unix(),
        actor.id(),
        Operation::SegmentEvaluated,
    )
    .policy_version(policy.version().to_string())
    .purpose(seg.purpose_key())
    .detail("segment", seg.name())
    .detail("at", at.to_string())
    .detail("members", members);
    black_box(log.append(entry).unwrap());
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn overhead(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("privseg-audit-overhead-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let built = Instant::now();
    let e = engine(&dir.join("engine.audit"));
    eprintln!(
        "built {} subjects in {:.1?}",
        e.subject_count(),
        built.elapsed()
    );
    let crm = Actor::new("crm-sync", &["crm"]);
    let seg = e
        .compile(
            &crm,
            r#"segment "high-value-fr" for marketing.email where country = "FR" and total_spend >= 500000"#,
        )
        .unwrap();
    let at = Timestamp::parse("2026-03-01T10:00:00Z").unwrap();
    let members = e.evaluate(&crm, &seg, at).unwrap().count();
    let policy = e.policy().clone();
    let mut side = file_log(&dir.join("side.audit"));

    let mut group = c.benchmark_group("audit_overhead");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("evaluate_1m_audited", |b| {
        b.iter(|| black_box(e.evaluate(&crm, &seg, at).unwrap().count()))
    });
    group.measurement_time(Duration::from_secs(3));
    let side_path = dir.join("bench.audit");
    group.bench_function("gate_and_audit_entry_alone", |b| {
        // A fresh log file per sample keeps the file and the tree small.
        b.iter_custom(|iters| {
            let mut log = file_log(&side_path);
            let t = Instant::now();
            for _ in 0..iters {
                gate_and_entry(&policy, &crm, &seg, at, members, &mut log);
            }
            t.elapsed()
        })
    });
    group.finish();

    // The ratio, from medians of interleaved runs.
    let mut eval = Vec::new();
    let mut audit = Vec::new();
    for _ in 0..15 {
        let t = Instant::now();
        black_box(e.evaluate(&crm, &seg, at).unwrap().count());
        eval.push(t.elapsed());
        let t = Instant::now();
        for _ in 0..100 {
            gate_and_entry(&policy, &crm, &seg, at, members, &mut side);
        }
        audit.push(t.elapsed() / 100);
    }
    let (ev, au) = (median(eval), median(audit));
    let share = au.as_secs_f64() / ev.as_secs_f64();
    eprintln!(
        "audit overhead over {} subjects ({members} members): evaluate {:.2?} of which gate + audit entry {:.2?} = {:.3}% (target < 5%)",
        e.subject_count(),
        ev,
        au,
        share * 100.0
    );
    drop(side);
    drop(e);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, overhead);
criterion_main!(benches);
