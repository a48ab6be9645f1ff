//! Loading the same data from CSV/JSON Lines and from Parquet, timed in one
//! run (feature `arrow`).
//!
//! ```text
//! cargo run --release --example gen_data -- --subjects 1000000 --out target/big
//! cargo run --release --features arrow --example arrow_load -- target/big
//! ```
//!
//! Writes `subjects.parquet` and `consents.parquet` next to the CSV and
//! JSONL files (unless they are there already), then loads each form
//! `--runs N` times (default 3) and reports the best time of each and
//! their ratio. Both loads must give the same counts.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use privseg::Actor;
use privseg::load::{LoadStats, Loader, read_policy};
use privseg::policy::Policy;

mod convert;

fn best(
    runs: usize,
    mut load: impl FnMut() -> Result<LoadStats, String>,
) -> Result<(Duration, LoadStats), String> {
    let mut best: Option<(Duration, LoadStats)> = None;
    for _ in 0..runs {
        let start = Instant::now();
        let stats = load()?;
        let took = start.elapsed();
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, stats));
        }
    }
    best.ok_or_else(|| "no run".into())
}

fn ensure_parquet(policy: &Policy, dir: &Path) -> Result<(), String> {
    let read = |name: &str| {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    if !dir.join("subjects.parquet").exists() {
        let b = convert::subjects(policy, &read("subjects.csv")?, true, 64 * 1024)?;
        convert::write_parquet(&dir.join("subjects.parquet"), &b)?;
    }
    if !dir.join("consents.parquet").exists() {
        let b = convert::events(&read("consents.jsonl")?, true, 64 * 1024)?;
        convert::write_parquet(&dir.join("consents.parquet"), &b)?;
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut dir = PathBuf::from("target/big");
    let mut runs = 3;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => {
                runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--runs needs a number")?
            }
            _ => dir = PathBuf::from(a),
        }
    }
    let policy = Arc::new(read_policy(&dir.join("policy.json")).map_err(|e| e.to_string())?);
    let actor = Actor::new("loader", &["admin"]);
    let start = Instant::now();
    ensure_parquet(&policy, &dir)?;
    eprintln!("parquet files ready in {:.2?}", start.elapsed());
    let (csv, csv_stats) = best(runs, || {
        Loader::new(policy.clone(), actor.clone())
            .subjects_file(&dir.join("subjects.csv"))
            .and_then(|l| l.events_file(&dir.join("consents.jsonl")))
            .and_then(|l| l.finish())
            .map(|(_, s)| s)
            .map_err(|e| e.to_string())
    })?;
    let (pq, pq_stats) = best(runs, || {
        Loader::new(policy.clone(), actor.clone())
            .subjects_parquet(&dir.join("subjects.parquet"))
            .and_then(|l| l.events_parquet(&dir.join("consents.parquet")))
            .and_then(|l| l.finish())
            .map(|(_, s)| s)
            .map_err(|e| e.to_string())
    })?;
    let counts = |s: &LoadStats| (s.subjects, s.values, s.events);
    if counts(&csv_stats) != counts(&pq_stats) {
        return Err(format!(
            "the loads differ: CSV/JSONL {:?}, Parquet {:?}",
            counts(&csv_stats),
            counts(&pq_stats)
        ));
    }
    let line = |name: &str, t: Duration, s: &LoadStats| {
        println!(
            "{name:<10} {:>8.3} s  (subjects {:.3} s, events {:.3} s, import {:.3} s; {:.1} MB read)",
            t.as_secs_f64(),
            s.subject_time.as_secs_f64(),
            s.event_time.as_secs_f64(),
            s.engine_time.as_secs_f64(),
            (s.subject_bytes + s.event_bytes) as f64 / 1e6
        )
    };
    println!(
        "{} subjects, {} values, {} events; best of {runs} runs on {} threads",
        csv_stats.subjects,
        csv_stats.values,
        csv_stats.events,
        rayon::current_num_threads()
    );
    line("CSV/JSONL", csv, &csv_stats);
    line("Parquet", pq, &pq_stats);
    println!(
        "Parquet / CSV time: {:.2} (CSV is {:.2}x the Parquet time)",
        pq.as_secs_f64() / csv.as_secs_f64(),
        csv.as_secs_f64() / pq.as_secs_f64()
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("arrow_load: {e}");
            ExitCode::FAILURE
        }
    }
}
