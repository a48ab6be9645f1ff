//! `privseg`: check segments and policies, evaluate, count, export and
//! explain segments over bulk files, keep and verify the audit log, and
//! decode consent signals, from the command line.
//!
//! The tool only parses arguments, calls the library and prints. Every call
//! on personal data is made by an identity the policy's `actors` section
//! assigns to the operating-system user running the tool (`--actor` picks
//! one when there are several), holding the roles named with `--role`, each
//! of which the policy must assign to that identity; nothing is granted by
//! default. The policy file is a trust root: one that others could have
//! written is refused. Exit codes: 0 success, 1 a segment, policy or call
//! was refused (including access refusals), 2 a usage or input error.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use zeroize::Zeroizing;

use privseg::audit::{
    AuditError, AuditLog, AuditPseudonymizer, AuditSink, Checkpoint, CheckpointSigner,
    CheckpointVerifier, FileSink, MemorySink, RunState, SyncPolicy, VerifyReport, verify_file,
    verify_file_with_key,
};
use privseg::load::{LoadError, LoadStats, Loader, Progress, Stage};
use privseg::outputs::ExportFormat;
use privseg::policy::{AttrType, AttributeSpec, CategorySpec, Policy, PolicyError, PurposeSpec};
use privseg::privacy::aggregate::{Count, k_threshold};
use privseg::privacy::dp::{Epsilon, LedgerFile, SystemRandomSource};
use privseg::privacy::pseudonym::{Keyring, MasterSecret};
use privseg::segment::{CheckedSegment, SegmentError};
use privseg::{Actor, Engine, EngineError, Timestamp};

#[path = "privseg/store.rs"]
mod store_cmd;

/// Privacy-compliant customer segmentation: check, evaluate, count, export
/// and explain segments against a policy and bulk subject and consent files;
/// keep and verify the audit log; decode consent signals.
///
/// Every call is made by an identity that the policy's `actors` section
/// assigns to the operating-system user running privseg (--actor picks one
/// when there are several), with the roles given by --role, each assigned to
/// that identity by the policy; nothing is granted by default. Loading the
/// subject and consent files adds subjects, so it needs a role with the
/// `subjects` permission. The policy file must not be writable by anyone but
/// its owner, who must be root or the user running privseg.
///
/// Exit codes: 0 success; 1 a segment, policy or call was refused (an
/// access refusal names the actor and the permission); 2 a usage or input
/// error (unreadable or malformed files, unknown subject...).
#[derive(Parser, Debug)]
#[command(name = "privseg", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Who acts: given only to the commands that act on personal data.
#[derive(Args, Debug, Clone)]
struct ActorArgs {
    /// Which identity to act as, among those the policy assigns to the
    /// operating-system user running privseg [default: its only one].
    #[arg(long, value_name = "ID")]
    actor: Option<String>,
    /// A role to take, among those the policy assigns to the identity;
    /// repeat for several. Without one the actor may do nothing that needs a
    /// permission.
    #[arg(long = "role", value_name = "NAME")]
    roles: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check that a segment is valid under a policy (exit 0), or show why it
    /// is refused (exit 1): the rule, attribute and purpose, with a caret
    /// under the offending text.
    Check(CheckArgs),
    /// Load subjects and consent events and evaluate segments at an instant:
    /// each segment's name, purpose and member count (and member ids). Needs
    /// `member_ids` for each segment's purpose.
    Eval(EvalArgs),
    /// Load subjects and consent events and explain whether one subject is in
    /// a segment, and why: the failing terms, or the rule (R3, R6...) that
    /// makes the subject ineligible. Needs `explain` for the purpose.
    Explain(ExplainArgs),
    /// Validate a policy and print its version hash and a summary; every
    /// problem is listed with its JSON path (exit 1 when invalid).
    Policy(PolicyArgs),
    /// Export a segment's members to a recipient of the policy: one row per
    /// member, ids pseudonymised under the recipient's key, on stdout. Needs
    /// `export` to the recipient; the recipient's agreement must cover the
    /// purpose and every field.
    Export(ExportArgs),
    /// Count a segment's members: k-thresholded (counts below the policy's k
    /// are reported as "fewer than k"), differentially private (--epsilon),
    /// or broken down by a categorical attribute (--by). Needs `count` for
    /// the purpose.
    Count(CountArgs),
    /// Signed checkpoints, verification and inclusion proofs of an audit log
    /// file.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Decode and encode consent signals (IAB TCF, GPP, US Privacy).
    #[command(subcommand)]
    Signal(SignalCommand),
    /// Reports: a subject access report, a fairness audit, the record of
    /// processing activities, the compliance report.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Create a durable store (with a fresh key-encryption key). Needs
    /// `administer`.
    Init(store_cmd::InitArgs),
    /// Append subjects and consent events to a store, all or nothing. Needs
    /// `subjects`.
    Import(store_cmd::ImportArgs),
    /// Erase a subject from a store (R21). Needs `subjects`.
    Erase(store_cmd::EraseArgs),
    /// Remove a store's values past retention (R17). Needs `subjects`.
    Purge(store_cmd::PurgeArgs),
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

#[derive(Args, Debug, Clone)]
struct AuditArgs {
    /// Append the audit entries of this run to this log file (created if
    /// missing; each entry is synced to disk before the call it records
    /// returns). Without it the audit log is kept in memory and lost at exit.
    #[arg(long, value_name = "FILE", requires = "audit_key_file")]
    audit_log: Option<PathBuf>,
    /// The key under which subject ids are pseudonymised in the audit log:
    /// a file of at least 16 raw bytes, or hex. Required with --audit-log;
    /// keep the same key for the whole log.
    #[arg(long, value_name = "FILE", requires = "audit_log")]
    audit_key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DataArgs {
    #[command(flatten)]
    who: ActorArgs,
    #[command(flatten)]
    policy: PolicyArg,
    /// Subjects, CSV with a header: id, jurisdiction, birth_date,
    /// verified_at and one column per policy attribute. `-` reads standard
    /// input; gzip-compressed files are recognised by their content.
    #[arg(long, value_name = "FILE", required_unless_present = "store")]
    subjects: Option<PathBuf>,
    /// Consent events, JSON Lines: one event object per line. `-` reads
    /// standard input (not both inputs); gzip is recognised by content.
    #[arg(long, value_name = "FILE", required_unless_present = "store")]
    consents: Option<PathBuf>,
    #[command(flatten)]
    store: store_cmd::StoreSource,
    /// The field delimiter of the subjects file: one ASCII character, or
    /// `tab`.
    #[arg(long, value_name = "CHAR", default_value = ",", value_parser = parse_delimiter)]
    delimiter: u8,
    /// The reference time of the segments' relative times (`now - 90d`),
    /// RFC 3339 such as 2026-03-01T10:00:00Z; defaults to now. Eligibility
    /// (consent, objections, expiry) is always judged as of the host clock.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<Timestamp>,
    /// Print load and evaluation statistics on stderr: rows per second, peak
    /// memory, time per segment.
    #[arg(long)]
    stats: bool,
    #[command(flatten)]
    audit: AuditArgs,
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
#[group(required = true, multiple = false)]
struct PolicyArgs {
    /// The policy to validate, in the JSON policy format.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print the JSON Schema of the policy format instead.
    #[arg(long)]
    schema: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum RowFormat {
    /// One JSON object per line: {"id": "v1:<hex>", "<field>": value, ...}.
    Jsonl,
    /// A header line `id,<field>,...`, then one row per member.
    Csv,
}

#[derive(Args, Debug)]
struct ExportArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    segment: OneSegment,
    /// The recipient, by its id in the policy.
    #[arg(long, value_name = "ID")]
    recipient: String,
    /// Attributes to send besides the pseudonym, comma-separated.
    #[arg(long, value_name = "A,B", value_delimiter = ',')]
    fields: Vec<String>,
    /// The pseudonym master secret: a file of at least 32 raw bytes, or of
    /// hex digits (at least 64). It is never printed.
    #[arg(long, value_name = "FILE")]
    master_key_file: PathBuf,
    /// The pseudonym key version to use.
    #[arg(long, value_name = "N", default_value_t = 1)]
    key_version: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = RowFormat::Jsonl)]
    format: RowFormat,
}

#[derive(Args, Debug)]
struct CountArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    segment: OneSegment,
    /// A stricter threshold than the policy's: counts below N are reported
    /// as "fewer than N". The policy's k is the floor; a smaller N is
    /// refused (exit 2).
    #[arg(long, value_name = "N", conflicts_with_all = ["epsilon", "by"])]
    k: Option<u64>,
    /// Members per value of this categorical attribute, with small cells
    /// suppressed.
    #[arg(long, value_name = "ATTR", conflicts_with = "epsilon")]
    by: Option<String>,
    /// A differentially private count with this epsilon (a decimal such as
    /// 0.5 or a fraction such as 1/2), at most the policy's cap for the
    /// purpose, charged to the purpose's budget in the policy. The ledger is
    /// kept beside the audit log (FILE.budget), so --audit-log is needed,
    /// or --store, whose audit log (DIR/audit.log) is the default.
    #[arg(long, value_name = "E")]
    epsilon: Option<Epsilon>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// Print every entry of a log file as JSON Lines, in order (subjects
    /// appear only as pseudonyms), without changing the file.
    Dump {
        /// The audit log file.
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
    },
    /// Write a signed checkpoint (tree size, Merkle root, time) of a log
    /// file to stdout, as JSON. Keep it outside the log.
    Checkpoint {
        /// The audit log file.
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        /// The Ed25519 signing key: a 32-byte seed, raw or as 64 hex digits.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Verify a log file against a signed checkpoint: exit 0 when intact,
    /// 1 naming the first bad entry otherwise.
    Verify {
        /// The audit log file.
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        /// The checkpoint JSON (as written by `audit checkpoint`).
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        /// The Ed25519 public key: 32 raw bytes or 64 hex digits (as printed
        /// by `audit public-key`).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Also check every entry's chain MAC and the head record with the
        /// audit key: finds edits and removals past the checkpoint too.
        #[arg(long, value_name = "FILE")]
        audit_key_file: Option<PathBuf>,
    },
    /// Print the proof (JSON) that entry INDEX is in the log's Merkle tree,
    /// with the entry's leaf hash and the tree's root.
    Prove {
        /// The audit log file.
        #[arg(long, value_name = "FILE")]
        log: PathBuf,
        /// The entry's index (its sequence number).
        #[arg(long, value_name = "I")]
        index: u64,
        /// The tree size to prove against (such as a checkpoint's); defaults
        /// to the whole log.
        #[arg(long, value_name = "N")]
        size: Option<u64>,
    },
    /// Print the hex public key of a signing key, for `audit verify`.
    PublicKey {
        /// The Ed25519 signing key: a 32-byte seed, raw or as 64 hex digits.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SignalType {
    /// An IAB TCF v2 TC string.
    Tcf,
    /// An IAB GPP string.
    Gpp,
    /// An IAB US Privacy string.
    Usp,
}

#[derive(Subcommand, Debug)]
enum SignalCommand {
    /// Decode a consent signal and print it as JSON: a TCF TC string
    /// (starting with C), a GPP string (D) or a US Privacy string (1).
    ///
    /// Decoding is lenient: a string that breaks a TCF policy rule (policy
    /// version below 4, a TCF v2.3 requirement) decodes, and the rules it
    /// breaks are listed under "violations" with field and bit offset.
    Decode {
        /// The signal string.
        string: String,
        /// Refuse a string that breaks a policy rule, naming the rule.
        #[arg(long)]
        strict: bool,
        /// For a GPP string, decode the header alone (version and section
        /// ids), even when sections it names are absent.
        #[arg(long)]
        header_only: bool,
    },
    /// Encode a consent signal from its JSON form (as `signal decode`
    /// prints it) and print the string.
    Encode {
        /// The JSON file.
        #[arg(long, value_name = "FILE")]
        json: PathBuf,
        /// Which kind of signal the JSON describes (default: its "type").
        #[arg(long = "type", value_enum, value_name = "TYPE")]
        kind: Option<SignalType>,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCommand {
    /// The subject access report (JSON): the subject's data, consent
    /// history, eligibility per purpose, and membership in the segments
    /// given, with the reasons. Needs `subjects`.
    Subject(SubjectReportArgs),
    /// A fairness audit (JSON) of a segment over a protected attribute:
    /// selection rates per group under the four-fifths rule, and proxy
    /// attributes. Needs `administer`.
    Fairness(FairnessArgs),
    /// The record of processing activities (GDPR Art. 30) from the policy
    /// and the audit log. Needs `read_audit`.
    Ropa(RopaArgs),
    /// The compliance report: consents expiring or needing renewal, values
    /// past retention or stale, refusals and exports from the audit log,
    /// privacy budget use. Counts only. Needs `subjects` (to load the files)
    /// and `read_audit`.
    Compliance(ComplianceArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// JSON.
    Json,
    /// Markdown tables.
    Md,
}

#[derive(Args, Debug)]
struct RopaArgs {
    #[command(flatten)]
    who: ActorArgs,
    #[command(flatten)]
    policy: PolicyArg,
    #[command(flatten)]
    audit: AuditArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    format: ReportFormat,
}

#[derive(Args, Debug)]
struct ComplianceArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Report consents that expire within this many days.
    #[arg(long, value_name = "DAYS", default_value_t = 30)]
    within_days: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Json)]
    format: ReportFormat,
}

#[derive(Args, Debug)]
struct SubjectReportArgs {
    #[command(flatten)]
    data: DataArgs,
    /// The subject's id.
    #[arg(long, value_name = "ID")]
    subject: String,
    /// A segment to report membership in; repeat for several.
    #[arg(long, value_name = "TEXT")]
    segment: Vec<String>,
}

#[derive(Args, Debug)]
struct FairnessArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    segment: OneSegment,
    /// The protected categorical attribute defining the groups.
    #[arg(long, value_name = "ATTR")]
    protected: String,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse(s).map_err(|e| e.to_string())
}

fn parse_delimiter(s: &str) -> Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && s != "\"" && s != "\n" && s != "\r" => {
            Ok(s.as_bytes()[0])
        }
        _ => Err(format!(
            "expected one ASCII character (not a quote or a line break) or `tab`, found {s:?}"
        )),
    }
}

/// How a command failed.
enum Failure {
    /// A segment or policy was refused: exit 1. The text is already printed.
    Refused,
    /// A call was refused (access, agreement, budget, a log that does not
    /// verify): exit 1 with this message.
    Denied(String),
    /// A usage or input error: exit 2.
    Input(String),
    /// An input error already printed (a segment that does not parse or
    /// names what the policy lacks): exit 2.
    Invalid,
    /// The call could not be finished (the system random source, writing
    /// the output or the budget ledger failed): exit 3 with this message.
    /// Neither a refusal nor the caller's mistake.
    Internal(String),
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Failure {
        match e {
            LoadError::Refused(e) => engine_failure(*e),
            other => Failure::Input(other.to_string()),
        }
    }
}

/// An error with the errors under it, each once: `outer: inner: ...`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(inner) = next {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        next = inner.source();
    }
    text
}

/// Refusals (access, an agreement, a privacy budget) exit 1; internal
/// failures (the random source, output, the ledger file) exit 3; anything
/// else the engine reports is an input error.
fn engine_failure(e: EngineError) -> Failure {
    if e.is_internal() {
        return Failure::Internal(chain(&e));
    }
    match e {
        EngineError::Access(_) | EngineError::ExportRefused { .. } | EngineError::Budget(_) => {
            Failure::Denied(chain(&e))
        }
        EngineError::Segment(s) => segment_failure(&s),
        other => Failure::Input(chain(&other)),
    }
}

/// A segment broken by a rule (R1, R2, R7...) is a refusal: exit 1. One
/// that does not parse, names what the policy lacks or compares with an
/// undeclared value is an input error: exit 2. Both are printed with the
/// caret.
fn segment_failure(e: &SegmentError) -> Failure {
    print_refusal(e);
    if e.rule().is_some() {
        Failure::Refused
    } else {
        Failure::Invalid
    }
}

fn input(e: impl std::fmt::Display) -> Failure {
    Failure::Input(e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(a) => check(a),
        Command::Eval(a) => eval(a),
        Command::Explain(a) => explain(a),
        Command::Policy(a) => policy(a),
        Command::Export(a) => export(a),
        Command::Count(a) => count(a),
        Command::Audit(a) => audit(a),
        Command::Signal(a) => signal(a),
        Command::Report(ReportCommand::Subject(a)) => subject_report(a),
        Command::Report(ReportCommand::Fairness(a)) => fairness(a),
        Command::Report(ReportCommand::Ropa(a)) => ropa(a),
        Command::Report(ReportCommand::Compliance(a)) => compliance(a),
        Command::Init(a) => store_cmd::init(a),
        Command::Import(a) => store_cmd::import(a),
        Command::Erase(a) => store_cmd::erase(a),
        Command::Purge(a) => store_cmd::purge(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Refused) => ExitCode::from(1),
        Err(Failure::Invalid) => ExitCode::from(2),
        Err(Failure::Denied(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Input(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Internal(msg)) => {
            eprintln!("error: {msg}");
            ExitCode::from(3)
        }
    }
}

/// What the command line asks for: an identity (--actor) and roles (--role).
/// Granted only as far as the policy assigns them to the operating-system
/// user running the tool.
type Who = ActorArgs;

/// The operating-system user running this process: the owner of
/// `/proc/self` (the effective user id), named by `/etc/passwd`. No
/// environment variable is consulted: the caller sets those.
fn os_user() -> Result<(u32, String), Failure> {
    let uid = std::fs::metadata("/proc/self")
        .map_err(|e| {
            Failure::Input(format!(
                "finding the user running privseg (/proc/self): {e}"
            ))
        })?
        .uid();
    let passwd = read_text(Path::new("/etc/passwd"))?;
    passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse::<u32>().ok()?;
            (id == uid && !name.is_empty()).then(|| name.to_string())
        })
        .map(|name| (uid, name))
        .ok_or_else(|| {
            Failure::Denied(format!(
                "user id {uid} has no name in /etc/passwd, so no policy identity can be found for it"
            ))
        })
}

/// Reads the policy, refusing a file that someone other than its owner
/// could have written, or whose owner is neither root nor the user running
/// privseg: whoever can write the policy decides every role, so it must be
/// an administrator's file.
fn load_policy(path: &Path) -> Result<Arc<Policy>, Failure> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| Failure::Input(format!("{shown}: {e}")))?;
    // The checks are on the file opened, so it cannot be swapped in between.
    let meta = file
        .metadata()
        .map_err(|e| Failure::Input(format!("{shown}: {e}")))?;
    check_policy_file(path, meta.uid(), meta.mode())?;
    if let Some(dir) = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    }) && let Ok(d) = std::fs::metadata(dir)
        && d.mode() & 0o022 != 0
        && d.mode() & 0o1000 == 0
    {
        return Err(Failure::Denied(format!(
            "policy file {shown}: its directory {} is writable by others (mode {:o}) without the sticky bit, \
             so they could replace it; keep the policy in a directory only its administrators can write",
            dir.display(),
            d.mode() & 0o7777
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| Failure::Input(format!("{shown}: {e}")))?;
    Policy::from_json(&text).map(Arc::new).map_err(|error| {
        Failure::from(LoadError::Policy {
            file: shown.to_string(),
            error,
        })
    })
}

/// The policy file's owner must be root or the user running privseg, and
/// neither its group nor others may write it.
fn check_policy_file(path: &Path, owner: u32, mode: u32) -> Result<(), Failure> {
    let shown = path.display();
    if mode & 0o022 != 0 {
        return Err(Failure::Denied(format!(
            "policy file {shown} is writable by {} (mode {:o}): whoever can write the policy \
             is its administrator, so it must be writable by its owner only (chmod go-w)",
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            },
            mode & 0o7777
        )));
    }
    let (uid, user) = os_user()?;
    if owner != 0 && owner != uid {
        return Err(Failure::Denied(format!(
            "policy file {shown} is owned by user id {owner}, neither root nor {user} (running privseg): \
             whoever owns the policy is its administrator"
        )));
    }
    Ok(())
}

/// The policy (checked as a trust root) and the actor: the identity the
/// policy assigns to the operating-system user (the one --actor names, when
/// it has several), with the --role roles, each assigned to that identity.
fn trusted(path: &Path, who: &Who) -> Result<(Arc<Policy>, Actor), Failure> {
    let policy = load_policy(path)?;
    let (_, user) = os_user()?;
    let mine: Vec<_> = policy.actors_of(&user).collect();
    let names = |v: &[&privseg::policy::ActorSpec]| {
        v.iter()
            .map(|a| a.actor_id())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if mine.is_empty() {
        return Err(Failure::Denied(format!(
            "operating-system user {user:?} has no identity in the policy {}: \
             its `actors` section must assign one (with the roles it may take)",
            path.display()
        )));
    }
    let me = match &who.actor {
        Some(id) => mine.iter().find(|a| a.actor_id() == id).ok_or_else(|| {
            Failure::Denied(format!(
                "operating-system user {user:?} may not act as {id:?}: the policy lets it act as {}",
                names(&mine)
            ))
        })?,
        None if mine.len() == 1 => &mine[0],
        None => {
            return Err(Failure::Denied(format!(
                "operating-system user {user:?} has several identities in the policy ({}): choose one with --actor",
                names(&mine)
            )));
        }
    };
    for r in &who.roles {
        if !me.roles.contains(r) {
            return Err(Failure::Denied(format!(
                "actor {:?} may not take role {r:?}: the policy assigns it {}",
                me.actor_id(),
                if me.roles.is_empty() {
                    "no role".to_string()
                } else {
                    format!("only {}", me.roles.join(", "))
                }
            )));
        }
    }
    let roles: Vec<&str> = who.roles.iter().map(String::as_str).collect();
    let actor = Actor::new(me.actor_id(), &roles);
    drop(mine);
    Ok((policy, actor))
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

/// A key file: hex digits (surrounding whitespace ignored) when it holds
/// only those, else its raw bytes. Wiped from memory when dropped.
fn read_key(path: &Path, what: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let raw = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Failure::Input(format!("{what} {}: {e}", path.display())))?,
    );
    let text = raw.trim_ascii();
    if !text.is_empty() && text.len() % 2 == 0 && text.iter().all(u8::is_ascii_hexdigit) {
        let nibble = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
        let bytes: Vec<u8> = text
            .chunks(2)
            .map(|p| (nibble(p[0]) << 4) | nibble(p[1]))
            .collect();
        return Ok(Zeroizing::new(bytes));
    }
    Ok(raw)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Prints a refusal on stderr: the error with its caret, then the rule,
/// attribute and purpose concerned.
fn print_refusal(e: &SegmentError) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{e}");
    if let Some(r) = e.rule() {
        let _ = writeln!(err, "  rule: {r}");
    }
    if let Some(a) = e.attribute() {
        let _ = writeln!(err, "  attribute: {a}");
    }
    if let Some(p) = e.purpose() {
        let _ = writeln!(err, "  purpose: {p}");
    }
}

fn compile(engine: &Engine, actor: &Actor, text: &str) -> Result<CheckedSegment, Failure> {
    engine.compile(actor, text).map_err(|e| segment_failure(&e))
}

/// A policy read for checking only: it grants nothing here, so any file
/// is read; an invalid one is an input error.
fn draft_policy(path: &Path) -> Result<Policy, Failure> {
    Policy::from_json(&read_text(path)?).map_err(|error| {
        Failure::from(LoadError::Policy {
            file: path.display().to_string(),
            error,
        })
    })
}

/// Validates a segment against the policy: no data is read and no one acts,
/// so no identity is needed.
fn check(a: CheckArgs) -> Result<(), Failure> {
    let policy = draft_policy(&a.policy.policy)?;
    let text = read_segment(&a.segment)?;
    let parsed = privseg::segment::parse(&text).map_err(|e| segment_failure(&e))?;
    let seg =
        privseg::segment::validate(&policy, &parsed, &text).map_err(|e| segment_failure(&e))?;
    println!(
        "ok: segment {:?} for {} is valid under policy {}",
        seg.name(),
        seg.purpose_key(),
        seg.policy_version()
    );
    Ok(())
}

/// An engine for the policy, with its audit log in the --audit-log file
/// when one is given, else in memory.
fn new_engine(policy: Arc<Policy>, audit: &AuditArgs) -> Result<Engine, Failure> {
    if audit.audit_log.is_none() {
        return Ok(Engine::new(policy));
    }
    let (log, ids) = audit_parts(audit)?;
    Engine::with_audit(policy, log, ids).map_err(engine_failure)
}

/// The audit log in the --audit-log file and its pseudonymiser.
fn audit_parts(audit: &AuditArgs) -> Result<(AuditLog, AuditPseudonymizer), Failure> {
    let (Some(log), Some(key)) = (&audit.audit_log, &audit.audit_key_file) else {
        return Err(Failure::Input("--audit-log needs --audit-key-file".into()));
    };
    lock_audit_log(log)?;
    let key = read_key(key, "audit key file")?;
    let ids = AuditPseudonymizer::new(&key)
        .map_err(|e| Failure::Input(format!("audit key file {}: {e}", log.display())))?;
    let (sink, report) = FileSink::open(log, SyncPolicy::EveryAppend)
        .map_err(|e| Failure::Input(format!("{}: {e}", log.display())))?;
    // A damaged tail stops the command: it was moved aside, not deleted, and
    // someone must look at it before data is processed again.
    if let Some(d) = report.discarded {
        let saved = d.saved_to.as_deref().unwrap_or(log.as_path());
        return Err(Failure::Input(format!(
            "{}: {} damaged bytes at offset {} ({}) were moved to {}; inspect them, then run the command again",
            log.display(),
            d.bytes,
            d.offset,
            d.reason,
            saved.display()
        )));
    }
    let path = log;
    let log = AuditLog::open(Box::new(sink) as Box<dyn AuditSink + Send>, &key)
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    if let RunState::Unsealed {
        sealed_entries,
        unsealed_entries,
    } = log.run_state()
    {
        eprintln!(
            "warning: {}: the run that wrote entries {sealed_entries}..{} did not end cleanly (crash?); entries it lost at the end cannot be detected",
            path.display(),
            sealed_entries + unsealed_entries
        );
    }
    Ok((log, ids))
}

/// Takes an exclusive lock on the audit log file for the rest of the run
/// (waiting for other runs that hold it): one process at a time appends
/// to a log, so sequence numbers never clash, and the budget check sees
/// every charge before it. The lock goes with the process.
fn lock_audit_log(path: &Path) -> Result<(), Failure> {
    static HELD: OnceLock<File> = OnceLock::new();
    let fail = |e: std::io::Error| {
        Failure::Input(format!("locking the audit log {}: {e}", path.display()))
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(fail)?;
    file.lock().map_err(fail)?;
    let _ = HELD.set(file);
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

/// An input file, or standard input for `-`; gzip is recognised by its
/// first two bytes (1f 8b) and decompressed as it is read.
fn open_input(path: &Path) -> Result<(String, Box<dyn BufRead>), Failure> {
    let (name, raw): (String, Box<dyn Read>) = if path == Path::new("-") {
        ("<stdin>".into(), Box::new(std::io::stdin()))
    } else {
        let f = File::open(path).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
        (path.display().to_string(), Box::new(f))
    };
    let mut r = BufReader::with_capacity(1 << 20, raw);
    let head = r
        .fill_buf()
        .map_err(|e| Failure::Input(format!("{name}: {e}")))?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(r);
        return Ok((name, Box::new(BufReader::with_capacity(1 << 20, gz))));
    }
    Ok((name, Box::new(r)))
}

/// Loads the subjects and events into `engine` on behalf of `actor`, with a
/// progress line on stderr when it is a terminal: reading subjects, reading
/// events, importing (a spinner keeps turning through the import, which is
/// one call).
fn load(
    subjects_path: &Path,
    consents_path: &Path,
    delimiter: u8,
    engine: Engine,
    actor: &Actor,
) -> Result<(Engine, LoadStats, Duration), Failure> {
    let start = Instant::now();
    if subjects_path == Path::new("-") && consents_path == Path::new("-") {
        return Err(Failure::Input(
            "--subjects and --consents cannot both read standard input (-)".into(),
        ));
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let (subjects_name, subjects) = open_input(subjects_path)?;
    let (events_name, events) = open_input(consents_path)?;
    let mut loader = Loader::with_engine(engine, actor.clone()).delimiter(delimiter);
    if let Some(bar) = &bar {
        let bar = bar.clone();
        let (sn, en) = (subjects_name.clone(), events_name.clone());
        let mut subjects_read = 0;
        loader = loader.on_progress(move |p: Progress| {
            let mib = p.bytes as f64 / (1024.0 * 1024.0);
            let msg = match p.stage {
                Stage::Subjects => {
                    subjects_read = p.records;
                    format!(
                        "reading subjects from {sn}: {} rows ({mib:.1} MiB)",
                        p.records
                    )
                }
                Stage::Events => format!(
                    "reading consent events from {en}: {} events ({mib:.1} MiB)",
                    p.records
                ),
                _ if p.done => format!("imported {} subjects and events", p.records),
                _ => format!("importing {subjects_read} subjects and their events into the engine"),
            };
            bar.set_message(msg);
        });
    }
    let result = loader
        .subjects(&subjects_name, subjects)
        .and_then(|l| l.events(&events_name, events))
        .and_then(|l| l.finish());
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (engine, stats) = result?;
    Ok((engine, stats, start.elapsed()))
}

/// The policy, an engine with the --audit-log, the segments compiled (and
/// refused before anything is loaded), then the files loaded.
fn prepare(
    d: &DataArgs,
    texts: &[String],
) -> Result<(Engine, Vec<CheckedSegment>, Actor), Failure> {
    let (policy, actor) = trusted(&d.policy.policy, &d.who)?;
    if let Some(dir) = &d.store.store {
        let start = Instant::now();
        let engine = store_cmd::open_store(dir, d.store.store_key_file.as_ref(), policy, &d.audit)?;
        if d.stats {
            eprintln!(
                "stats: opened the store ({} subjects) in {:.3} s",
                engine.subject_count(),
                start.elapsed().as_secs_f64()
            );
        }
        let segments = texts
            .iter()
            .map(|t| compile(&engine, &actor, t))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((engine, segments, actor));
    }
    let engine = new_engine(policy, &d.audit)?;
    let segments = texts
        .iter()
        .map(|t| compile(&engine, &actor, t))
        .collect::<Result<Vec<_>, _>>()?;
    let (Some(subjects), Some(consents)) = (&d.subjects, &d.consents) else {
        return Err(Failure::Input(
            "give --subjects and --consents, or --store".into(),
        ));
    };
    let (engine, stats, total) = load(subjects, consents, d.delimiter, engine, &actor)?;
    if d.stats {
        print_load_stats(&stats, total);
        let m = engine.memory_bytes();
        let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
        eprintln!(
            "stats: engine holds {:.1} MiB (ids {:.1}, subjects {:.1}, values {:.1}, indexes {:.1}, histories {:.1}, masks {:.1})",
            mib(m.total()),
            mib(m.ids),
            mib(m.subjects),
            mib(m.values),
            mib(m.indexes),
            mib(m.histories),
            mib(m.masks)
        );
    }
    Ok((engine, segments, actor))
}

fn print_load_stats(stats: &LoadStats, total: Duration) {
    eprintln!(
        "stats: read {} subjects ({} values) in {:.3} s: {} rows/s",
        stats.subjects,
        stats.values,
        stats.subject_time.as_secs_f64(),
        per_second(stats.subjects, stats.subject_time)
    );
    eprintln!(
        "stats: read {} events in {:.3} s: {} lines/s",
        stats.events,
        stats.event_time.as_secs_f64(),
        per_second(stats.events, stats.event_time)
    );
    eprintln!(
        "stats: imported them in {:.3} s (one Engine::import call)",
        stats.engine_time.as_secs_f64()
    );
    eprintln!(
        "stats: load total {:.3} s; peak memory {}",
        total.as_secs_f64(),
        peak_memory().unwrap_or_else(|| "unknown".into())
    );
}

fn write_err(e: std::io::Error) -> Failure {
    Failure::Input(format!("writing the output: {e}"))
}

fn to_json<T: Serialize>(v: &T) -> Result<String, Failure> {
    serde_json::to_string(v).map_err(|e| Failure::Input(format!("writing the output: {e}")))
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
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let mut texts = a.segment.clone();
    for f in &a.segment_file {
        texts.push(read_text(f)?);
    }
    let (engine, segments, actor) = prepare(&a.data, &texts)?;
    let mut out = BufWriter::new(std::io::stdout().lock());
    for seg in &segments {
        let t = Instant::now();
        let members = engine.evaluate(&actor, seg, at).map_err(engine_failure)?;
        let took = t.elapsed();
        let ids = if a.ids {
            Some(
                engine
                    .member_ids(&actor, &members)
                    .map_err(engine_failure)?,
            )
        } else {
            None
        };
        if a.data.stats {
            let n = engine.subject_count().max(1) as f64;
            eprintln!(
                "stats: segment {:?}: {} members in {:.3} ms ({:.3} ms per million subjects)",
                members.segment(),
                members.count(),
                took.as_secs_f64() * 1e3,
                took.as_secs_f64() * 1e3 * 1e6 / n
            );
        }
        match a.format {
            Format::Json => {
                let j = SegmentJson {
                    segment: members.segment(),
                    purpose: members.purpose(),
                    policy_version: members.policy_version().to_string(),
                    at: members.reference(),
                    members: members.count(),
                    ids: ids.as_ref().map(|v| v.iter().map(String::as_str).collect()),
                };
                writeln!(out, "{}", to_json(&j)?).map_err(write_err)?;
            }
            Format::Text => {
                writeln!(
                    out,
                    "segment {:?} for {}: {} members at {}",
                    members.segment(),
                    members.purpose(),
                    members.count(),
                    members.reference()
                )
                .map_err(write_err)?;
                for id in ids.iter().flatten() {
                    writeln!(out, "  {id}").map_err(write_err)?;
                }
            }
        }
    }
    out.flush().map_err(write_err)?;
    // The engine is not dropped below, so its audit log is sealed here.
    engine.seal_audit().map_err(engine_failure)?;
    // The process ends here: let the system reclaim the engine's memory
    // rather than freeing millions of allocations one by one.
    std::mem::forget(engine);
    Ok(())
}

fn explain(a: ExplainArgs) -> Result<(), Failure> {
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let text = read_segment(&a.segment)?;
    let (engine, segments, actor) = prepare(&a.data, &[text])?;
    let ex = engine
        .explain(&actor, &segments[0], &a.subject, at)
        .map_err(engine_failure)?;
    match a.format {
        Format::Text => print!("{ex}"),
        Format::Json => println!("{}", to_json(&ex)?),
    }
    Ok(())
}

fn export(a: ExportArgs) -> Result<(), Failure> {
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let text = read_segment(&a.segment)?;
    // The key is read and checked before anything is loaded.
    let key = read_key(&a.master_key_file, "master key file")?;
    let master = MasterSecret::from_bytes(&key).map_err(|e| {
        Failure::Input(format!(
            "master key file {}: {e}",
            a.master_key_file.display()
        ))
    })?;
    drop(key);
    let keys = Keyring::new(master, a.key_version).map_err(|e| Failure::Input(e.to_string()))?;
    // Names the policy lacks are mistakes in the command, named as such
    // before anything is loaded.
    let spec = draft_policy(&a.data.policy.policy)?;
    if spec.recipient(&a.recipient).is_none() {
        let known: Vec<&str> = spec
            .spec()
            .recipients
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        return Err(Failure::Input(format!(
            "--recipient: unknown recipient {:?}: the policy's recipients are {}",
            a.recipient,
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        )));
    }
    for f in &a.fields {
        if spec.attr_id(f).is_none() {
            let known: Vec<&str> = spec
                .spec()
                .attributes
                .iter()
                .map(|a| a.name.as_str())
                .collect();
            return Err(Failure::Input(format!(
                "--fields: unknown attribute {f:?}: the policy's attributes are {}",
                known.join(", ")
            )));
        }
    }
    let (engine, segments, actor) = prepare(&a.data, &[text])?;
    let fields: Vec<&str> = a.fields.iter().map(String::as_str).collect();
    let format = match a.format {
        RowFormat::Jsonl => ExportFormat::Jsonl,
        RowFormat::Csv => ExportFormat::Csv,
    };
    let out = BufWriter::new(std::io::stdout().lock());
    let summary = engine
        .export(
            &actor,
            &segments[0],
            at,
            &a.recipient,
            &fields,
            format,
            &keys,
            out,
        )
        .map_err(engine_failure)?;
    eprintln!(
        "exported {} rows to {} for {} (pseudonym key version {})",
        summary.rows, summary.recipient, summary.purpose, summary.key_version
    );
    Ok(())
}

/// `segment "NAME" for PURPOSE at TIME`.
fn segment_label(seg: &CheckedSegment, at: Timestamp) -> String {
    format!("segment {:?} for {} at {at}", seg.name(), seg.purpose_key())
}

/// A published count in JSON, one shape whatever the answer: `"count": N`,
/// or `"count": null, "suppressed": true, "threshold": K` when it is
/// withheld (below the threshold, or suppressed to protect a small cell).
#[derive(Serialize)]
struct CountJson {
    count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold: Option<u64>,
}

impl CountJson {
    fn new(c: Count, k: u64) -> CountJson {
        match c {
            Count::Exact(n) => CountJson {
                count: Some(n),
                suppressed: None,
                threshold: None,
            },
            Count::FewerThan(t) => CountJson {
                count: None,
                suppressed: Some(true),
                threshold: Some(t),
            },
            Count::Suppressed => CountJson {
                count: None,
                suppressed: Some(true),
                threshold: Some(k),
            },
        }
    }
}

/// A rational as a JSON number, with the exact fraction beside it.
fn rational_number(r: &impl std::fmt::Display) -> f64 {
    let t = r.to_string();
    match t.split_once('/') {
        Some((n, d)) => n.parse::<f64>().unwrap_or(f64::NAN) / d.parse::<f64>().unwrap_or(f64::NAN),
        None => t.parse().unwrap_or(f64::NAN),
    }
}

fn count_text(c: Count) -> String {
    match c {
        Count::Exact(n) => format!("{n}"),
        Count::FewerThan(k) => format!("fewer than {k}"),
        Count::Suppressed => "suppressed".into(),
    }
}

fn count(a: CountArgs) -> Result<(), Failure> {
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let text = read_segment(&a.segment)?;
    if let Some(k) = a.k {
        // The policy's k is the floor: checked before anything is loaded.
        let (policy, _) = trusted(&a.data.policy.policy, &a.data.who)?;
        if k < policy.k_threshold() {
            return Err(Failure::Input(format!(
                "--k {k} is below the policy's k threshold {}: --k can only make counts stricter",
                policy.k_threshold()
            )));
        }
    }
    if let Some(eps) = a.epsilon {
        return dp_count(&a, &text, at, eps);
    }
    let (engine, segments, actor) = prepare(&a.data, &[text])?;
    let actor = &actor;
    let seg = &segments[0];
    if let Some(attr) = &a.by {
        return breakdown(&engine, actor, seg, at, attr, a.format);
    }
    let policy_k = engine.policy().k_threshold();
    let mut c = engine.count(actor, seg, at).map_err(engine_failure)?;
    let k = a.k.unwrap_or(policy_k).max(policy_k);
    if let Count::Exact(n) = c {
        c = k_threshold(n, k);
    }
    match a.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                segment: &'a str,
                purpose: &'a str,
                at: Timestamp,
                k: u64,
                #[serde(flatten)]
                count: CountJson,
            }
            let out = Out {
                segment: seg.name(),
                purpose: seg.purpose_key(),
                at,
                k,
                count: CountJson::new(c, k),
            };
            println!("{}", to_json(&out)?);
        }
        Format::Text => println!("{}: {} members", segment_label(seg, at), count_text(c)),
    }
    Ok(())
}

/// Prints a breakdown of the segment's members by a categorical attribute.
fn breakdown(
    engine: &Engine,
    actor: &Actor,
    seg: &CheckedSegment,
    at: Timestamp,
    attr: &str,
    format: Format,
) -> Result<(), Failure> {
    let b = engine
        .breakdown(actor, seg, at, attr)
        .map_err(engine_failure)?;
    match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Cell<'a> {
                value: &'a str,
                #[serde(flatten)]
                count: CountJson,
            }
            #[derive(Serialize)]
            struct Out<'a> {
                segment: &'a str,
                purpose: &'a str,
                at: Timestamp,
                by: &'a str,
                k: u64,
                cells: Vec<Cell<'a>>,
                total: CountJson,
            }
            let out = Out {
                segment: seg.name(),
                purpose: seg.purpose_key(),
                at,
                by: attr,
                k: b.k,
                cells: b
                    .cells
                    .iter()
                    .map(|c| Cell {
                        value: &c.label,
                        count: CountJson::new(c.count, b.k),
                    })
                    .collect(),
                total: CountJson::new(b.total, b.k),
            };
            println!("{}", to_json(&out)?);
        }
        Format::Text => {
            println!("{}, by {attr} (k = {}):", segment_label(seg, at), b.k);
            for c in &b.cells {
                println!("  {}: {}", c.label, count_text(c.count));
            }
            println!("  total: {}", count_text(b.total));
        }
    }
    Ok(())
}

fn dp_count(a: &CountArgs, text: &str, at: Timestamp, eps: Epsilon) -> Result<(), Failure> {
    // Over a store, its own audit log (DIR/audit.log) unless --audit-log
    // names another: the same log `prepare` opens.
    let audit = match &a.data.store.store {
        Some(dir) => store_cmd::store_audit(dir, &a.data.audit),
        None => a.data.audit.clone(),
    };
    let Some(log) = &audit.audit_log else {
        return Err(Failure::Input(
            "--epsilon needs --audit-log (or --store, whose audit log is used): the budget ledger is kept beside the audit log, which records every charge".into(),
        ));
    };
    // The ledger lives beside the audit log; the engine checks it against
    // the charges the log records, under the ledger's lock.
    let mut ledger = LedgerFile::beside_audit_log(log);
    let (engine, segments, actor) = prepare(&a.data, &[text.to_string()])?;
    let seg = &segments[0];
    let (noisy, charge) = engine
        .dp_count(
            &actor,
            seg,
            at,
            Some(eps),
            &mut ledger,
            &mut SystemRandomSource::new(),
        )
        .map_err(engine_failure)?;
    match a.format {
        Format::Json => {
            #[derive(Serialize)]
            struct Out<'a> {
                segment: &'a str,
                purpose: &'a str,
                at: Timestamp,
                noisy_count: i64,
                epsilon: f64,
                epsilon_exact: String,
                budget: &'a str,
                spent: f64,
                spent_exact: String,
                total: f64,
                total_exact: String,
                remaining: f64,
                remaining_exact: String,
            }
            let out = Out {
                segment: seg.name(),
                purpose: seg.purpose_key(),
                at,
                noisy_count: noisy,
                epsilon: rational_number(&eps),
                epsilon_exact: eps.to_string(),
                budget: &charge.budget,
                spent: rational_number(&charge.spent),
                spent_exact: charge.spent.to_string(),
                total: rational_number(&charge.total),
                total_exact: charge.total.to_string(),
                remaining: rational_number(&charge.remaining),
                remaining_exact: charge.remaining.to_string(),
            };
            println!("{}", to_json(&out)?);
        }
        Format::Text => println!(
            "{}: noisy count {noisy} (epsilon {eps}; budget {}: {} of {} spent, {} left)",
            segment_label(seg, at),
            charge.budget,
            charge.spent,
            charge.total,
            charge.remaining
        ),
    }
    Ok(())
}

fn subject_report(a: SubjectReportArgs) -> Result<(), Failure> {
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let (engine, segments, actor) = prepare(&a.data, &a.segment)?;
    let report = engine
        .subject_report(&actor, &a.subject, &segments, at)
        .map_err(engine_failure)?;
    emit(serde_json::to_string_pretty(&report).map_err(write_output)?)?;
    Ok(())
}

fn fairness(a: FairnessArgs) -> Result<(), Failure> {
    let at = a.data.at.unwrap_or_else(Timestamp::now);
    let text = read_segment(&a.segment)?;
    let (engine, segments, actor) = prepare(&a.data, &[text])?;
    let report = engine
        .fairness_audit(&actor, &segments[0], at, &a.protected)
        .map_err(engine_failure)?;
    emit(serde_json::to_string_pretty(&report).map_err(write_output)?)?;
    Ok(())
}

fn ropa(a: RopaArgs) -> Result<(), Failure> {
    let (policy, actor) = trusted(&a.policy.policy, &a.who)?;
    let engine = new_engine(policy, &a.audit)?;
    let ropa = engine.ropa(&actor).map_err(engine_failure)?;
    emit(match a.format {
        ReportFormat::Json => ropa.to_json(),
        ReportFormat::Md => ropa.to_markdown(),
    })
}

fn compliance(a: ComplianceArgs) -> Result<(), Failure> {
    // The budget ledger beside the audit log, when there is one.
    let ledger = match &a.data.audit.audit_log {
        Some(log) => {
            let path = PathBuf::from(format!("{}.budget", log.display()));
            if path.exists() {
                use privseg::privacy::dp::{BudgetError, BudgetLedger, BudgetStore};
                let mut file = LedgerFile::beside_audit_log(log);
                Some(
                    file.transact(|l: &mut BudgetLedger| Ok::<_, BudgetError>(l.clone()))
                        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?,
                )
            } else {
                None
            }
        }
        None => None,
    };
    let (engine, _, actor) = prepare(&a.data, &[])?;
    let report = engine
        .compliance_report(&actor, a.within_days, ledger.as_ref())
        .map_err(engine_failure)?;
    emit(match a.format {
        ReportFormat::Json => report.to_json(),
        ReportFormat::Md => report.to_markdown(),
    })
}

/// Prints a line on stdout; a closed stdout is an output error, not a panic.
fn emit(line: impl std::fmt::Display) -> Result<(), Failure> {
    writeln!(std::io::stdout().lock(), "{line}").map_err(write_err)
}

fn write_output(e: serde_json::Error) -> Failure {
    Failure::Input(format!("writing the output: {e}"))
}

/// The entries of a log file, read without changing it, as a log.
fn read_log(path: &Path) -> Result<AuditLog<MemorySink>, Failure> {
    let scanned =
        FileSink::scan(path).map_err(|e| Failure::Input(format!("{}: {e}", path.display())))?;
    AuditLog::open_read_only(MemorySink::from_entries(scanned.entries))
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
}

fn signer(path: &Path) -> Result<CheckpointSigner, Failure> {
    let seed = read_key(path, "signing key file")?;
    if seed.len() != 32 {
        return Err(Failure::Input(format!(
            "signing key file {}: expected a 32-byte Ed25519 seed (raw or 64 hex digits), found {} bytes",
            path.display(),
            seed.len()
        )));
    }
    CheckpointSigner::from_seed(&seed)
        .map_err(|e| Failure::Input(format!("signing key file {}: {e}", path.display())))
}

fn audit(cmd: AuditCommand) -> Result<(), Failure> {
    match cmd {
        AuditCommand::Dump { log } => {
            let log = read_log(&log)?;
            let mut out = BufWriter::new(std::io::stdout().lock());
            for entry in log.entries().map_err(input)? {
                writeln!(out, "{}", to_json(&entry)?).map_err(write_err)?;
            }
            out.flush().map_err(write_err)?;
        }
        AuditCommand::Checkpoint { log, key } => {
            let signer = signer(&key)?;
            let log = read_log(&log)?;
            let cp = log
                .checkpoint(&signer, Timestamp::now().unix())
                .map_err(input)?;
            emit(cp.to_json().map_err(input)?)?;
        }
        AuditCommand::PublicKey { key } => println!("{}", signer(&key)?.verifier().to_hex()),
        AuditCommand::Verify {
            log,
            checkpoint,
            public_key,
            audit_key_file,
        } => {
            if let Some(key_file) = audit_key_file {
                verify_with_audit_key(&log, &key_file)?;
            }
            return verify_against_checkpoint(&log, &checkpoint, &public_key);
        }
        AuditCommand::Prove { log, index, size } => {
            let log = read_log(&log)?;
            let size = size.unwrap_or(log.len());
            let proof = log.prove_inclusion_at(index, size).map_err(input)?;
            let mut json = serde_json::to_value(&proof).map_err(write_output)?;
            if let serde_json::Value::Object(m) = &mut json {
                m.insert(
                    "leaf_hash".into(),
                    hex(&log.leaf_hash(index).map_err(input)?).into(),
                );
                m.insert(
                    "root_hash".into(),
                    hex(&log.root_at(size).map_err(input)?).into(),
                );
            }
            emit(json)?;
        }
    }
    Ok(())
}

/// Verifies the chain of the audit log with the audit key; a run that did
/// not end cleanly is noted on stderr.
fn verify_with_audit_key(log: &Path, key_file: &Path) -> Result<(), Failure> {
    let key = read_key(key_file, "audit key file")?;
    match verify_file_with_key(log, &key) {
        Ok(r) => {
            if let RunState::Unsealed {
                sealed_entries,
                unsealed_entries,
            } = r.state
            {
                eprintln!(
                    "note: {}: the last run did not end cleanly; entries {sealed_entries}..{} verify, but missing ones after them could not be detected",
                    log.display(),
                    sealed_entries + unsealed_entries
                );
            }
            Ok(())
        }
        Err(e @ (AuditError::Io { .. } | AuditError::InvalidKey(_))) => {
            Err(Failure::Input(format!("{}: {e}", log.display())))
        }
        Err(e) => Err(Failure::Denied(format!(
            "{}: the audit log does not verify with the audit key: {e}",
            log.display()
        ))),
    }
}

/// Verifies the audit log against a signed checkpoint.
fn verify_against_checkpoint(
    log: &Path,
    checkpoint: &Path,
    public_key: &Path,
) -> Result<(), Failure> {
    let cp = Checkpoint::from_json(&read_text(checkpoint)?)
        .map_err(|e| Failure::Input(format!("{}: {e}", checkpoint.display())))?;
    let key = read_key(public_key, "public key file")?;
    let verifier = CheckpointVerifier::from_bytes(&key)
        .map_err(|e| Failure::Input(format!("{}: {e}", public_key.display())))?;
    let report = verify_file(log, &cp, &verifier)
        .map_err(|e| Failure::Input(format!("{}: {e}", log.display())))?;
    if let VerifyReport::Ok {
        checkpoint_size,
        log_len,
    } = report
    {
        println!(
            "ok: the first {checkpoint_size} entries match the checkpoint ({log_len} entries in the log)"
        );
        return Ok(());
    }
    let mut msg = format!(
        "{}: the audit log does not verify: {}",
        log.display(),
        describe(&report)
    );
    if let Some(i) = report.first_bad_index() {
        msg.push_str(&format!("; first bad entry: index {i}"));
    }
    Err(Failure::Denied(msg))
}

fn describe(r: &VerifyReport) -> String {
    match r {
        VerifyReport::Ok { .. } => "intact".into(),
        VerifyReport::BadSignature { checkpoint_size } => format!(
            "the checkpoint (size {checkpoint_size}) does not verify with this public key: it is forged or altered"
        ),
        VerifyReport::CorruptRecord {
            index,
            offset,
            reason,
        } => format!("record {index} at byte offset {offset} is damaged ({reason})"),
        VerifyReport::SequenceMismatch { index, found } => format!(
            "entry {index} carries sequence number {found}: an entry was deleted, inserted or moved"
        ),
        VerifyReport::UnencodableEntry { index, reason } => {
            format!("entry {index} cannot be encoded ({reason})")
        }
        VerifyReport::Truncated {
            checkpoint_size,
            log_len,
        } => format!(
            "the log has {log_len} entries but the checkpoint covers {checkpoint_size}: entries were removed"
        ),
        VerifyReport::RootMismatch {
            checkpoint_size,
            first_bad_at_least,
        } => format!(
            "the first {checkpoint_size} entries do not hash to the checkpoint's root: an entry with index from {first_bad_at_least} to {} was changed",
            checkpoint_size.saturating_sub(1)
        ),
        other => format!("{other:?}"),
    }
}

fn signal(cmd: SignalCommand) -> Result<(), Failure> {
    use privseg::consent::signals;
    let bad = |e: privseg::consent::signals::SignalError| Failure::Input(e.to_string());
    match cmd {
        SignalCommand::Decode {
            string,
            strict,
            header_only,
        } => {
            let opts = signals::DecodeOptions {
                strict,
                header_only,
                ..signals::DecodeOptions::default()
            };
            emit(signals::decode_to_json_with(&string, &opts).map_err(bad)?)?;
        }
        SignalCommand::Encode { json, kind } => {
            let text = read_text(&json)?;
            let out = match kind {
                Some(SignalType::Tcf) => {
                    signals::encode_from_json(signals::SignalFormat::Tcf, &text)
                }
                Some(SignalType::Gpp) => {
                    signals::encode_from_json(signals::SignalFormat::Gpp, &text)
                }
                Some(SignalType::Usp) => {
                    signals::encode_from_json(signals::SignalFormat::Usp, &text)
                }
                None => signals::encode_json(&text),
            };
            emit(out.map_err(bad)?)?;
        }
    }
    Ok(())
}

/// The JSON Schema (draft 2020-12) of the policy format.
const POLICY_SCHEMA: &str = include_str!("../../docs/policy.schema.json");

fn policy(a: PolicyArgs) -> Result<(), Failure> {
    let Some(path) = &a.policy else {
        return emit(POLICY_SCHEMA.trim_end());
    };
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
        let _ = writeln!(s, "  {}", category_line(c));
    }
    let _ = writeln!(s, "attributes ({}):", spec.attributes.len());
    for a in &spec.attributes {
        let _ = writeln!(s, "  {}", attribute_line(a));
    }
    let _ = writeln!(s, "purposes ({}):", spec.purposes.len());
    for p in &spec.purposes {
        let _ = writeln!(s, "  {}", purpose_line(p));
    }
    s
}

/// The names of the flags that are set.
fn set_flags(flags: &[(bool, &str)]) -> Vec<String> {
    flags
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// A category of the summary: its key, flags and retention.
fn category_line(c: &CategorySpec) -> String {
    let mut flags = set_flags(&[
        (c.special, "special"),
        (c.criminal, "criminal"),
        (c.ccpa_sensitive, "ccpa_sensitive"),
        (c.protected, "protected"),
    ]);
    if let Some(d) = c.retention_days {
        flags.push(format!("retention {d} days"));
    }
    if flags.is_empty() {
        c.key.clone()
    } else {
        format!("{} ({})", c.key, flags.join(", "))
    }
}

/// An attribute of the summary: its type, category and staleness limit.
fn attribute_line(a: &AttributeSpec) -> String {
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
    format!("{}: {ty}, category {}{stale}", a.name, a.category)
}

/// A purpose of the summary: its basis, categories, notices and flags.
fn purpose_line(p: &PurposeSpec) -> String {
    let mut extra = Vec::new();
    if !p.accepted_notice_versions.is_empty() {
        extra.push(format!("notices {}", p.accepted_notice_versions.join(", ")));
    }
    extra.extend(set_flags(&[
        (p.ccpa_sale_share, "ccpa_sale_share"),
        (p.ccpa_sensitive_necessary, "ccpa_sensitive_necessary"),
        (p.email_channel, "email_channel"),
        (p.email_soft_opt_in, "email_soft_opt_in"),
        (p.restriction_exempt, "restriction_exempt"),
    ]));
    if let Some(d) = p.consent_validity_days {
        extra.push(format!("consent valid {d} days"));
    }
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("; {}", extra.join("; "))
    };
    format!(
        "{}: {}, categories [{}]{extra}",
        p.key,
        p.basis.as_str(),
        p.categories.join(", ")
    )
}
