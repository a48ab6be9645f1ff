//! Cost of appending one entry to the audit log.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use privseg::audit::{AuditLog, FileSink, MemorySink, Operation, PendingEntry, SyncPolicy};

fn entry(i: u64) -> PendingEntry {
    PendingEntry::new(
        1_767_225_600 + i as i64,
        "crm-service",
        Operation::SegmentEvaluated,
    )
    .purpose("marketing")
    .policy_version("2026-01")
    .pseudonymous_subject("4f1c0b6e9a7d2c35e8b1f0a9d6c3e2b17a5f4e3d2c1b0a99887766554433221")
    .detail("member_count", 1234)
    .detail("rule_id", "seg-high-value")
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_append");

    // A fresh log per sample keeps memory bounded.
    group.bench_function("memory_sink", |b| {
        b.iter_custom(|iters| {
            let mut log = AuditLog::open(MemorySink::new(), &[0x42; 32]).unwrap();
            let start = Instant::now();
            for i in 0..iters {
                black_box(log.append(entry(i)).unwrap());
            }
            start.elapsed()
        })
    });

    let dir = std::env::temp_dir().join(format!("privseg-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bench.audit");
    group.bench_function("file_sink_sync_never", |b| {
        b.iter_custom(|iters| {
            let _ = std::fs::remove_file(&path);
            let (sink, _) = FileSink::open(&path, SyncPolicy::Never).unwrap();
            let mut log = AuditLog::open(sink, &[0x42; 32]).unwrap();
            let start = Instant::now();
            for i in 0..iters {
                black_box(log.append(entry(i)).unwrap());
            }
            let elapsed: Duration = start.elapsed();
            elapsed
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, appends);
criterion_main!(benches);
