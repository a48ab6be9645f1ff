//! The durable store, measured: loading the generator's CSV/JSONL files
//! into memory, importing the same files into a new store, writing its
//! snapshot, reopening it from the snapshot and by a rebuild from the
//! database, durable single-event writes (one transaction and sync each),
//! batched writes (one transaction), and the store's size on disk.
//!
//! ```text
//! cargo run --release --example gen_data -- --subjects 1000000 --out target/big
//! cargo run --release --example store_report -- --data target/big
//! ```
//!
//! Every figure comes from this one run on this machine; ratios compare
//! steps measured side by side.
//!
//! `--store DIR` keeps the store in `DIR` (made by the first run, reused
//! by the next ones: the import is then skipped, the rest measured again);
//! `--skip-load` and `--skip-rebuild` leave those steps out (to profile the
//! reopen alone, or with `--reopen-only`, only that); `--writes 0` leaves
//! the store's data as imported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::load::{Loader, read_policy};
use privseg::store::{SNAPSHOT_FILE, StateSource, StaticKek};
use privseg::{Actor, Engine};

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// CPU seconds (user and system, every thread) this process has used so
/// far, from /proc/self/stat (clock ticks, taken as 100 per second); `None`
/// off Linux. On a busy machine the CPU time of a step varies less than
/// its wall-clock time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the parenthesised command name; utime and stime
    // are the 14th and 15th fields of the line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Runs `f`, returning its result, wall-clock seconds and CPU seconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64, f64) {
    let (c, t) = (cpu_seconds().unwrap_or(0.0), Instant::now());
    let out = f();
    let wall = t.elapsed().as_secs_f64();
    (out, wall, cpu_seconds().unwrap_or(0.0) - c)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let data = PathBuf::from(arg("--data").unwrap_or_else(|| "examples/data".into()));
    let writes: usize = arg("--writes").map_or(Ok(200), |s| s.parse())?;
    let policy = Arc::new(read_policy(&data.join("policy.json"))?);
    let loader = Actor::new("store-report", &["loader"]);
    let subjects = data.join("subjects.csv");
    let consents = data.join("consents.jsonl");
    let keys = Arc::new(StaticKek::new("report", &[9u8; 32])?);
    let kept = arg("--store").map(PathBuf::from);
    let store_dir = kept.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("privseg-store-report-{}", std::process::id()))
    });
    let reuse = kept.is_some() && store_dir.join("store.db").is_file();
    if !reuse {
        let _ = std::fs::remove_dir_all(&store_dir);
        std::fs::create_dir_all(&store_dir)?;
    }

    if reuse && flag("--reopen-only") {
        // Only reopen the kept store (to profile that step).
        let (e, wall, cpu) = timed(|| Engine::open(&store_dir, policy.clone(), keys.clone()));
        let e = e?;
        println!(
            "reopen ({:?}): {wall:.3} s (CPU {cpu:.2} s), {:?}",
            e.open_report().state,
            e.memory_bytes()
        );
        return Ok(());
    }

    let (mut load, mut load_cpu, mut n) = (f64::NAN, f64::NAN, 0);
    if !flag("--skip-load") {
        eprintln!("loading {} into memory...", data.display());
        let (loaded, wall, cpu) = timed(|| {
            Loader::new(policy.clone(), loader.clone())
                .subjects_file(&subjects)?
                .events_file(&consents)?
                .finish()
        });
        let (memory, stats) = loaded?;
        (load, load_cpu, n) = (wall, cpu, memory.subject_count());
        let m = memory.memory_bytes();
        drop(memory);
        println!("subjects: {n}, events: {}", stats.events);
        println!("load CSV/JSONL into memory:     {load:>9.3} s (CPU {load_cpu:.2} s)");
        println!("memory after the load:          {m:?}");
    }

    let durable = if reuse {
        eprintln!("reusing the store in {}...", store_dir.display());
        let e = Engine::open(&store_dir, policy.clone(), keys.clone())?;
        println!(
            "the kept store opened from:     {:?}",
            e.open_report().state
        );
        e
    } else {
        eprintln!("importing the same files into a new store...");
        let t = Instant::now();
        let durable = Engine::create(&store_dir, policy.clone(), keys.clone())?;
        let (durable, _) = Loader::with_engine(durable, loader.clone())
            .subjects_file(&subjects)?
            .events_file(&consents)?
            .finish()?;
        let import = t.elapsed();
        println!(
            "import into a new store:        {:>9.3} s",
            import.as_secs_f64()
        );
        durable
    };
    if n == 0 {
        n = durable.subject_count();
    }
    let t = Instant::now();
    durable.checkpoint()?;
    let snap_write = t.elapsed();
    drop(durable);
    let snap_bytes = std::fs::metadata(store_dir.join(SNAPSHOT_FILE))?.len();
    println!(
        "write the snapshot:             {:>9.3} s, {:.1} MB",
        snap_write.as_secs_f64(),
        snap_bytes as f64 / 1e6
    );
    let bytes = dir_bytes(&store_dir);

    eprintln!("reopening the store from its snapshot...");
    let (fast, reopen_snap, snap_cpu) =
        timed(|| Engine::open(&store_dir, policy.clone(), keys.clone()));
    let fast = fast?;
    assert_eq!(fast.open_report().state, StateSource::Snapshot);
    assert_eq!(fast.subject_count(), n, "every subject is back");
    let fast_bytes = fast.memory_bytes();
    drop(fast);
    println!("reopen from the snapshot:       {reopen_snap:>9.3} s (CPU {snap_cpu:.2} s)");
    println!(
        "memory after the reopen:        {:.1} bytes per subject, {fast_bytes:?}",
        fast_bytes.total() as f64 / n.max(1) as f64
    );
    let ratio = |a: f64, b: f64| a / b.max(1e-3);
    println!(
        "snapshot reopen vs CSV load:    {:>9.2}x faster ({:.2}x in CPU time)",
        ratio(load, reopen_snap),
        ratio(load_cpu, snap_cpu)
    );
    if flag("--skip-rebuild") {
        if kept.is_none() {
            std::fs::remove_dir_all(&store_dir)?;
        }
        return Ok(());
    }

    eprintln!("reopening the store by a rebuild from the database...");
    std::fs::remove_file(store_dir.join(SNAPSHOT_FILE))?;
    let (reopened, reopen, rebuild_cpu) =
        timed(|| Engine::open(&store_dir, policy.clone(), keys.clone()));
    let mut reopened = reopened?;
    assert!(matches!(
        reopened.open_report().state,
        StateSource::Rebuilt(_)
    ));
    assert_eq!(reopened.subject_count(), n, "every subject is back");
    assert_eq!(
        reopened.memory_bytes().indexes,
        fast_bytes.indexes,
        "the same indexes either way"
    );
    println!("reopen by a rebuild:            {reopen:>9.3} s (CPU {rebuild_cpu:.2} s)");
    println!(
        "snapshot reopen vs rebuild:     {:>9.2}x faster ({:.2}x in CPU time)",
        ratio(reopen, reopen_snap),
        ratio(rebuild_cpu, snap_cpu)
    );
    println!(
        "rebuild reopen vs CSV load:     {:>9.2}x faster ({:.2}x in CPU time)",
        ratio(load, reopen),
        ratio(load_cpu, rebuild_cpu)
    );
    println!(
        "store on disk:                  {:>9.1} MB, {:.0} bytes per subject",
        bytes as f64 / 1e6,
        bytes as f64 / n.max(1) as f64
    );

    // Durable single writes: each is one committed transaction.
    let ids: Vec<String> = {
        let text = std::fs::read_to_string(&subjects)?;
        text.lines()
            .skip(1)
            .filter_map(|l| l.split(',').next())
            .map(|s| s.trim_matches('"').to_string())
            .take(writes * 2)
            .collect()
    };
    let now = reopened.now();
    let event = |id: &str| {
        ConsentEvent::new(
            id,
            EventKind::ConsentWithdrawn,
            Some("marketing.email"),
            now,
        )
    };
    let single = &ids[..writes.min(ids.len())];
    if single.is_empty() {
        drop(reopened);
        if kept.is_none() {
            std::fs::remove_dir_all(&store_dir)?;
        }
        return Ok(());
    }
    let t = Instant::now();
    for id in single {
        reopened.record(&loader, &event(id))?;
    }
    let took = t.elapsed();
    println!(
        "durable single events:          {:>9.0} per second ({} events, one transaction each)",
        single.len() as f64 / took.as_secs_f64(),
        single.len()
    );
    let batch: Vec<ConsentEvent> = ids[single.len()..].iter().map(|id| event(id)).collect();
    let t = Instant::now();
    reopened.import(&loader, &[], &batch)?;
    let took = t.elapsed();
    println!(
        "durable batched events:         {:>9.0} per second ({} events, one transaction)",
        batch.len() as f64 / took.as_secs_f64(),
        batch.len()
    );
    drop(reopened);
    if kept.is_none() {
        std::fs::remove_dir_all(&store_dir)?;
    }
    Ok(())
}
