//! `privseg`: check segments and policies, evaluate segments over bulk files
//! and explain single subjects, from the command line.
//!
//! The tool only parses arguments, calls the library and prints. Exit codes:
//! 0 success, 1 a segment or policy was refused, 2 a usage or input error.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use privseg::load::{LoadError, LoadStats, Loader, Progress, Stage, read_policy};
use privseg::policy::{AttrType, Policy, PolicyError};
use privseg::segment::{CheckedSegment, SegmentError};
use privseg::{Engine, Timestamp};

/// Privacy-compliant customer segmentation: check, evaluate and explain
/// segments against a policy and bulk subject and consent files.
///
/// Exit codes: 0 success; 1 a segment or policy was refused; 2 a usage or
/// input error (unreadable or malformed files, unknown subject...).
#[derive(Parser, Debug)]
#[command(name = "privseg", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check that a segment is valid under a policy (exit 0), or show why it
    /// is refused (exit 1): the rule, attribute and purpose, with a caret
    /// under the offending text.
    Check(CheckArgs),
    /// Load subjects and consent events and evaluate segments at an instant:
    /// each segment's name, purpose and member count (and member ids).
    Eval(EvalArgs),
    /// Load subjects and consent events and explain whether one subject is in
    /// a segment, and why: the failing terms, or the rule (R3, R6...) that
    /// makes the subject ineligible.
    Explain(ExplainArgs),
    /// Validate a policy and print its version hash and a summary; every
    /// problem is listed with its JSON path (exit 1 when invalid).
    Policy(PolicyArgs),
}

#[derive(Args, Debug)]
struct PolicyArg {
    /// The policy, in the JSON policy format.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct OneSegment {
    /// The segment, in the text form:
    /// segment "NAME" for PURPOSE where PREDICATE.
    #[arg(long, value_name = "TEXT")]
    segment: Option<String>,
    /// A file holding the segment's text.
    #[arg(long, value_name = "FILE")]
    segment_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    segment: OneSegment,
}

#[derive(Args, Debug)]
struct DataArgs {
    #[command(flatten)]
    policy: PolicyArg,
    /// Subjects, CSV with a header: id, jurisdiction, birth_date,
    /// verified_at and one column per policy attribute.
    #[arg(long, value_name = "FILE")]
    subjects: PathBuf,
    /// Consent events, JSON Lines: one event object per line.
    #[arg(long, value_name = "FILE")]
    consents: PathBuf,
    /// The evaluation instant, RFC 3339 (such as 2026-03-01T10:00:00Z);
    /// defaults to now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<Timestamp>,
    /// Print load and evaluation statistics on stderr: rows per second, peak
    /// memory, time per segment.
    #[arg(long)]
    stats: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Args, Debug)]
struct EvalArgs {
    #[command(flatten)]
    data: DataArgs,
    /// A segment to evaluate, in the text form; repeat for several.
    #[arg(long, value_name = "TEXT", required_unless_present = "segment_file")]
    segment: Vec<String>,
    /// A file holding one segment's text; repeat for several (evaluated
    /// after the --segment ones).
    #[arg(long, value_name = "FILE")]
    segment_file: Vec<PathBuf>,
    /// Also print the member ids, in the order of the subjects file.
    #[arg(long)]
    ids: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args, Debug)]
struct ExplainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    segment: OneSegment,
    /// The subject's id.
    #[arg(long, value_name = "ID")]
    subject: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Args, Debug)]
struct PolicyArgs {
    #[command(flatten)]
    policy: PolicyArg,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| e.to_string())
}

/// How a command failed.
enum Failure {
    /// A segment or policy was refused: exit 1. The text is already printed.
    Refused,
    /// A usage or input error: exit 2.
    Input(String),
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Failure {
        Failure::Input(e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => check(a),
        Command::Eval(a) => eval(a),
        Command::Explain(a) => explain(a),
        Command::Policy(a) => policy(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused) => ExitCode::from(1),
        Err(Failure::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
    }
}

fn load_policy(path: &Path) -> Result<Arc<Policy>, Failure> {
    read_policy(path).map(Arc::new).map_err(Failure::from)
}

fn read_segment(one: &OneSegment) -> Result<String, Failure> {
    match (&one.segment, &one.segment_file) {
        (Some(text), _) => Ok(text.clone()),
        (None, Some(path)) => read_text(path),
        (None, None) => Err(Failure::Input(
            "give the segment with --segment or --segment-file".into(),
        )),
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
}

/// Prints a refusal on stderr: the error with its caret, then the rule,
/// attribute and purpose concerned.
fn print_refusal(e: &SegmentError) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{e}");
    if let Some(r) = e.rule {
        let _ = writeln!(err, "  rule: {r}");
    }
    if let Some(a) = &e.attribute {
        let _ = writeln!(err, "  attribute: {a}");
    }
    if let Some(p) = &e.purpose {
        let _ = writeln!(err, "  purpose: {p}");
    }
}

fn compile(engine: &Engine, text: &str) -> Result<CheckedSegment, Failure> {
    engine.compile(text).map_err(|e| {
        print_refusal(&e);
        Failure::Refused
    })
}

fn check(a: CheckArgs) -> Result<(), Failure> {
    let policy = load_policy(&a.policy.policy)?;
    let text = read_segment(&a.segment)?;
    let engine = Engine::new(policy);
    let seg = compile(&engine, &text)?;
    println!(
        "ok: segment {:?} for {} is valid under policy {}",
        seg.name(),
        seg.purpose_key(),
        seg.policy_version()
    );
    Ok(())
}

/// Peak resident memory of this process (VmHWM), where the system says.
fn peak_memory() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MiB", kb as f64 / 1024.0))
}

fn per_second(n: u64, d: Duration) -> String {
    let s = d.as_secs_f64();
    if s == 0.0 {
        return "n/a".into();
    }
    format!("{:.0}", n as f64 / s)
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Loads the subjects and events, with a progress bar on stderr when it is
/// a terminal.
fn load(d: &DataArgs, policy: Arc<Policy>) -> Result<(Engine, LoadStats, Duration), Failure> {
    let start = Instant::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let total = file_size(&d.subjects) + file_size(&d.consents);
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{msg:10} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    });
    let mut loader = Loader::new(policy);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        let subject_bytes = file_size(&d.subjects);
        loader = loader.on_progress(move |p: Progress| {
            let (msg, base) = match p.stage {
                Stage::Subjects => ("subjects", 0),
                Stage::Events => ("consents", subject_bytes),
            };
            bar.set_message(msg);
            bar.set_position(base + p.bytes);
        });
    }
    let result = loader
        .subjects_file(&d.subjects)
        .and_then(|l| l.events_file(&d.consents));
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (engine, stats) = result?.finish();
    Ok((engine, stats, start.elapsed()))
}

fn print_load_stats(stats: &LoadStats, total: Duration) {
    eprintln!(
        "stats: loaded {} subjects ({} values) in {:.3} s: {} rows/s",
        stats.subjects,
        stats.values,
        stats.subject_time.as_secs_f64(),
        per_second(stats.subjects, stats.subject_time)
    );
    eprintln!(
        "stats: loaded {} events in {:.3} s: {} lines/s",
        stats.events,
        stats.event_time.as_secs_f64(),
        per_second(stats.events, stats.event_time)
    );
    eprintln!(
        "stats: of which {:.3} s in engine calls (add_subject, set_attribute, record)",
        stats.engine_time.as_secs_f64()
    );
    eprintln!(
        "stats: load total {:.3} s; peak memory {}",
        total.as_secs_f64(),
        peak_memory().unwrap_or_else(|| "unknown".into())
    );
}

#[derive(Serialize)]
struct SegmentJson<'a> {
    segment: &'a str,
    purpose: &'a str,
    policy_version: String,
    at: Timestamp,
    members: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    ids: Option<Vec<&'a str>>,
}

fn eval(a: EvalArgs) -> Result<(), Failure> {
    let policy = load_policy(&a.data.policy.policy)?;
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let mut texts = a.segment.clone();
    for f in &a.segment_file {
        texts.push(read_text(f)?);
    }
    // Every segment is checked before anything is loaded.
    let checker = Engine::new(policy.clone());
    let segments = texts
        .iter()
        .map(|t| compile(&checker, t))
        .collect::<Result<Vec<_>, _>>()?;
    drop(checker);
    let (engine, stats, total) = load(&a.data, policy)?;
    if a.data.stats {
        print_load_stats(&stats, total);
    }
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| Failure::Input(format!("writing the output: {e}"));
    for seg in &segments {
        let t = Instant::now();
        let members = engine
            .evaluate(seg, at)
            .map_err(|e| Failure::Input(e.to_string()))?;
        let took = t.elapsed();
        if a.data.stats {
            let per_million = took.as_secs_f64() * 1e3 * 1e6 / (engine.store().len().max(1) as f64);
            eprintln!(
                "stats: segment {:?}: {} members in {:.3} ms ({:.3} ms per million subjects)",
                members.segment(),
                members.count(),
                took.as_secs_f64() * 1e3,
                per_million
            );
        }
        match a.format {
            Format::Json => {
                let j = SegmentJson {
                    segment: members.segment(),
                    purpose: members.purpose(),
                    policy_version: members.policy_version().to_string(),
                    at: members.at(),
                    members: members.count(),
                    ids: a.ids.then(|| members.ids(&engine).collect()),
                };
                let line = serde_json::to_string(&j)
                    .map_err(|e| Failure::Input(format!("writing the output: {e}")))?;
                writeln!(out, "{line}").map_err(io)?;
            }
            Format::Text => {
                writeln!(
                    out,
                    "segment {:?} for {}: {} members at {}",
                    members.segment(),
                    members.purpose(),
                    members.count(),
                    members.at()
                )
                .map_err(io)?;
                if a.ids {
                    for id in members.ids(&engine) {
                        writeln!(out, "  {id}").map_err(io)?;
                    }
                }
            }
        }
    }
    out.flush().map_err(io)?;
    // The process ends here: let the system reclaim the engine's memory
    // rather than freeing millions of allocations one by one.
    std::mem::forget(engine);
    Ok(())
}

fn explain(a: ExplainArgs) -> Result<(), Failure> {
    let policy = load_policy(&a.data.policy.policy)?;
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let text = read_segment(&a.segment)?;
    let seg = compile(&Engine::new(policy.clone()), &text)?;
    let (engine, stats, total) = load(&a.data, policy)?;
    if a.data.stats {
        print_load_stats(&stats, total);
    }
    let ex = engine
        .explain(&seg, &a.subject, at)
        .map_err(|e| Failure::Input(e.to_string()))?;
    match a.format {
        Format::Text => print!("{ex}"),
        Format::Json => println!(
            "{}",
            serde_json::to_string(&ex).map_err(|e| Failure::Input(e.to_string()))?
        ),
    }
    Ok(())
}

fn policy(a: PolicyArgs) -> Result<(), Failure> {
    let path = &a.policy.policy;
    let text = read_text(path)?;
    let policy = match Policy::from_json(&text) {
        Ok(p) => p,
        Err(PolicyError::Invalid(problems)) => {
            eprintln!(
                "{}: invalid policy, {} problem{}:",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            for p in &problems {
                eprintln!("  {}: {}", p.path, p.message);
            }
            return Err(Failure::Refused);
        }
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            return Err(Failure::Refused);
        }
    };
    print!("{}", summary(&policy));
    Ok(())
}

fn summary(policy: &Policy) -> String {
    use std::fmt::Write as _;
    let spec = policy.spec();
    let mut s = String::new();
    let _ = writeln!(s, "valid policy");
    let _ = writeln!(s, "version: {}", policy.version());
    let _ = writeln!(
        s,
        "controller: {}{}",
        spec.controller.name,
        spec.controller
            .contact
            .as_ref()
            .map_or(String::new(), |c| format!(" <{c}>"))
    );
    let codes: Vec<&str> = spec.jurisdictions.iter().map(|j| j.code.as_str()).collect();
    let _ = writeln!(s, "jurisdictions ({}): {}", codes.len(), codes.join(", "));
    let _ = writeln!(s, "categories ({}):", spec.categories.len());
    for c in &spec.categories {
        let mut flags = Vec::new();
        for (on, name) in [
            (c.special, "special"),
            (c.criminal, "criminal"),
            (c.ccpa_sensitive, "ccpa_sensitive"),
            (c.protected, "protected"),
        ] {
            if on {
                flags.push(name.to_string());
            }
        }
        if let Some(d) = c.retention_days {
            flags.push(format!("retention {d} days"));
        }
        let _ = writeln!(
            s,
            "  {}{}",
            c.key,
            if flags.is_empty() {
                String::new()
            } else {
                format!(" ({})", flags.join(", "))
            }
        );
    }
    let _ = writeln!(s, "attributes ({}):", spec.attributes.len());
    for a in &spec.attributes {
        let ty = match a.ty {
            AttrType::Categorical => format!("categorical {{{}}}", a.values.join(", ")),
            AttrType::Integer => format!(
                "integer {}..={}",
                a.min.unwrap_or(i64::MIN),
                a.max.unwrap_or(i64::MAX)
            ),
            other => other.as_str().to_string(),
        };
        let stale = a
            .max_staleness_days
            .map_or(String::new(), |d| format!(", stale after {d} days"));
        let _ = writeln!(s, "  {}: {ty}, category {}{stale}", a.name, a.category);
    }
    let _ = writeln!(s, "purposes ({}):", spec.purposes.len());
    for p in &spec.purposes {
        let mut extra = Vec::new();
        if !p.accepted_notice_versions.is_empty() {
            extra.push(format!("notices {}", p.accepted_notice_versions.join(", ")));
        }
        for (on, name) in [
            (p.ccpa_sale_share, "ccpa_sale_share"),
            (p.ccpa_sensitive_necessary, "ccpa_sensitive_necessary"),
            (p.email_channel, "email_channel"),
            (p.email_soft_opt_in, "email_soft_opt_in"),
            (p.restriction_exempt, "restriction_exempt"),
        ] {
            if on {
                extra.push(name.into());
            }
        }
        if let Some(d) = p.consent_validity_days {
            extra.push(format!("consent valid {d} days"));
        }
        let _ = writeln!(
            s,
            "  {}: {}, categories [{}]{}",
            p.key,
            p.basis.as_str(),
            p.categories.join(", "),
            if extra.is_empty() {
                String::new()
            } else {
                format!("; {}", extra.join("; "))
            }
        );
    }
    s
}
