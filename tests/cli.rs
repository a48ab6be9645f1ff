//! The `privseg` binary, run as a process: every command, every exit code
//! and each class of bad input.
//!
//! The binary needs the `cli` feature. Under `cargo test --features cli`
//! cargo builds it and names it in `CARGO_BIN_EXE_privseg`. Under a plain
//! `cargo test` it is not built, so the first test to need it builds it once
//! (debug profile) with `cargo build --features cli --bin privseg` into
//! `target/cli-tests`: a separate target directory, since the outer cargo
//! holds the lock on the usual one while tests run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use privseg::load::{Loader, read_policy};
use privseg::{Actor, Timestamp};
use serde_json::Value as Json;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");
const AT: &str = "2026-11-23T12:00:00Z";
const LAPSED_VIP: &str = r#"segment "lapsed_vip" for marketing.email where country in ("FR", "DE") and total_spend >= 500 and last_order < now - 90d"#;
const US_RETARGET: &str = r#"segment "us_retarget" for marketing.advertising.third_party where country = "US" and last_order >= now - 30d"#;
const ACTIVE_EU: &str = r#"segment "active_eu" for analytics.product where not country = "US" and last_order between now - 180d and now"#;
const REFUSED_R2: &str =
    r#"segment "big" for marketing.advertising.third_party where total_spend > 1000"#;
const HEADER: &str =
    "id,jurisdiction,birth_date,verified_at,country,total_spend,last_order,newsletter";
const SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

fn bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Cargo names the binary even when it skipped it for a missing
        // feature, so the feature itself decides.
        if cfg!(feature = "cli")
            && let Some(built) = option_env!("CARGO_BIN_EXE_privseg")
        {
            return PathBuf::from(built);
        }
        let manifest = env!("CARGO_MANIFEST_DIR");
        let target = Path::new(manifest).join("target").join("cli-tests");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "--features", "cli", "--bin", "privseg"])
            .arg("--manifest-path")
            .arg(Path::new(manifest).join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the privseg binary failed");
        target
            .join("debug")
            .join(format!("privseg{}", std::env::consts::EXE_SUFFIX))
    })
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs privseg as an actor holding every permission of the sample policy.
fn run(args: &[&str]) -> Run {
    run_as("tester", &["admin"], args)
}

/// How many words name the subcommand, and whether it acts (takes --actor
/// and --role): `eval`, `report fairness`...
fn subcommand(args: &[&str]) -> (usize, bool) {
    match args.first() {
        Some(&("eval" | "explain" | "export" | "count")) => (1, true),
        Some(&"report") if args.len() > 1 && !args[1].starts_with('-') => (2, true),
        _ => (0, false),
    }
}

/// `args` with `--actor ACTOR` and a `--role` for each role after the
/// subcommand, for the commands that act.
fn with_actor(actor: &str, roles: &[&str], args: &[&str]) -> Vec<String> {
    let (n, acts) = subcommand(args);
    let mut v: Vec<String> = args[..n].iter().map(|a| a.to_string()).collect();
    if acts {
        v.extend(["--actor".to_string(), actor.to_string()]);
        for r in roles {
            v.extend(["--role".to_string(), r.to_string()]);
        }
    }
    v.extend(args[n..].iter().map(|a| a.to_string()));
    v
}

/// `args` with a `--role` for each role after the subcommand.
fn with_roles(roles: &[&str], args: &[&str]) -> Vec<String> {
    let (n, _) = subcommand(args);
    let mut v: Vec<String> = args[..n].iter().map(|a| a.to_string()).collect();
    for r in roles {
        v.extend(["--role".to_string(), r.to_string()]);
    }
    v.extend(args[n..].iter().map(|a| a.to_string()));
    v
}

/// Runs privseg as `actor` with these roles (given to the commands that
/// act; the others take no actor).
fn run_as(actor: &str, roles: &[&str], args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    let out = cmd
        .args(with_actor(actor, roles, args))
        .output()
        .expect("privseg runs");
    Run {
        code: out.status.code().expect("exited normally"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// The login name of the user running the tests (the tool finds it from
/// its user id, whatever the environment says).
fn login() -> &'static str {
    static LOGIN: OnceLock<String> = OnceLock::new();
    LOGIN.get_or_init(|| {
        let out = Command::new("id").arg("-un").output().expect("id runs");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    })
}

/// The sample policy with its `actors` section replaced by `actors`, each
/// `[id, roles...]` assigned to the user running the tests; written to a
/// scratch file only its owner can write.
fn policy_with(name: &str, actors: &[&[&str]], edit: impl FnOnce(&mut Json)) -> String {
    let mut spec: Json =
        serde_json::from_str(&std::fs::read_to_string(data("policy.json")).unwrap()).unwrap();
    spec["actors"] = actors
        .iter()
        .map(|a| serde_json::json!({"os_user": login(), "id": a[0], "roles": a[1..]}))
        .collect();
    edit(&mut spec);
    let path = scratch(name, &serde_json::to_string_pretty(&spec).unwrap());
    set_mode(&path, 0o644);
    path
}

fn set_mode(path: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The sample policy, letting the user running the tests act as `tester`
/// (admin), `ann` (loader, marketer, analyst) or `zoe` (loader).
fn policy_file() -> String {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        policy_with(
            "policy.json",
            &[
                &["tester", "admin"],
                &["ann", "loader", "marketer", "analyst"],
                &["zoe", "loader"],
            ],
            |_| {},
        )
    })
    .clone()
}

fn data(file: &str) -> String {
    format!("{DATA}/{file}")
}

/// A new file with this content in the test scratch directory (tests run in
/// parallel, so each file gets a name of its own).
fn scratch(name: &str, content: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = format!(
        "{}/cli-{}-{n}-{name}",
        env!("CARGO_TARGET_TMPDIR"),
        std::process::id()
    );
    std::fs::write(&path, content).unwrap();
    path
}

fn eval_args<'a>(
    policy: &'a str,
    subjects: &'a str,
    consents: &'a str,
    rest: &[&'a str],
) -> Vec<&'a str> {
    let mut v = vec![
        "eval",
        "--policy",
        policy,
        "--subjects",
        subjects,
        "--consents",
        consents,
    ];
    v.extend_from_slice(rest);
    v
}

/// The members the library finds in the sample data.
fn library_members(segment: &str) -> Vec<String> {
    let policy = Arc::new(read_policy(policy_file().as_ref()).unwrap());
    let admin = Actor::new("tester", &["admin"]);
    let (engine, _) = Loader::new(policy, admin.clone())
        .subjects_file(data("subjects.csv").as_ref())
        .unwrap()
        .events_file(data("consents.jsonl").as_ref())
        .unwrap()
        .finish()
        .unwrap();
    let seg = engine.compile(&admin, segment).unwrap();
    let m = engine
        .evaluate(&admin, &seg, Timestamp::parse(AT).unwrap())
        .unwrap();
    engine.member_ids(&admin, &m).unwrap()
}

#[test]
fn help_on_every_command() {
    for args in [
        vec!["--help"],
        vec!["check", "--help"],
        vec!["eval", "--help"],
        vec!["explain", "--help"],
        vec!["policy", "--help"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(
            r.stdout.contains("Usage: privseg"),
            "{args:?}: {}",
            r.stdout
        );
    }
    let r = run(&["--help"]);
    for cmd in ["check", "eval", "explain", "policy"] {
        assert!(r.stdout.contains(cmd), "{}", r.stdout);
    }
    assert!(run(&["eval", "--help"]).stdout.contains("--ids"));
    // No command, an unknown command, an unknown option: usage errors.
    assert_eq!(run(&[]).code, 2);
    assert_eq!(run(&["frobnicate"]).code, 2);
    let r = run(&["policy", "--policy", &policy_file(), "--colour"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--colour"), "{}", r.stderr);
}

#[test]
fn check_accepts_a_valid_segment() {
    let r = run(&["check", "--policy", &policy_file(), "--segment", LAPSED_VIP]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .starts_with("ok: segment \"lapsed_vip\" for marketing.email")
    );
    let file = scratch("segment.txt", US_RETARGET);
    let r = run(&["check", "--policy", &policy_file(), "--segment-file", &file]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"us_retarget\""));
}

#[test]
fn check_refuses_with_rule_attribute_purpose_and_caret() {
    let r = run(&["check", "--policy", &policy_file(), "--segment", REFUSED_R2]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    let e = &r.stderr;
    assert!(e.starts_with("refused (R2):"), "{e}");
    assert!(e.contains("rule: R2"), "{e}");
    assert!(e.contains("attribute: total_spend"), "{e}");
    assert!(
        e.contains("purpose: marketing.advertising.third_party"),
        "{e}"
    );
    // The caret sits under the attribute.
    let lines: Vec<&str> = e.lines().collect();
    let src = lines
        .iter()
        .position(|l| l.contains("where total_spend"))
        .unwrap();
    let caret = lines[src + 1];
    let col = lines[src].find("total_spend").unwrap();
    assert_eq!(&caret[col..col + 11], "^^^^^^^^^^^", "{e}");

    // A syntax error is an input error (exit 2), with its caret.
    let r = run(&[
        "check",
        "--policy",
        &policy_file(),
        "--segment",
        r#"segment "x" for marketing.email where total_spend >> 3"#,
    ]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.starts_with("syntax error:"), "{}", r.stderr);
    assert!(r.stderr.contains('^'));

    // An unknown purpose.
    let r = run(&[
        "check",
        "--policy",
        &policy_file(),
        "--segment",
        r#"segment "x" for marketing.sms where true"#,
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("marketing.sms"), "{}", r.stderr);
}

#[test]
fn check_usage_and_input_errors() {
    let p = policy_file();
    // Neither or both of --segment and --segment-file.
    assert_eq!(run(&["check", "--policy", &p]).code, 2);
    let file = scratch("segment2.txt", LAPSED_VIP);
    let r = run(&[
        "check",
        "--policy",
        &p,
        "--segment",
        LAPSED_VIP,
        "--segment-file",
        &file,
    ]);
    assert_eq!(r.code, 2);
    // Missing files, a bad policy.
    let r = run(&[
        "check",
        "--policy",
        "/nonexistent.json",
        "--segment",
        LAPSED_VIP,
    ]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.starts_with("error: /nonexistent.json:"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "check",
        "--policy",
        &p,
        "--segment-file",
        "/nonexistent.txt",
    ]);
    assert_eq!(r.code, 2);
    let bad = scratch("notjson.json", "{\"controller\":");
    let r = run(&["check", "--policy", &bad, "--segment", LAPSED_VIP]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
}

#[test]
fn policy_prints_version_and_summary() {
    let r = run(&["policy", "--policy", &policy_file()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let version = read_policy(policy_file().as_ref()).unwrap().version();
    assert!(
        r.stdout.contains(&format!("version: {version}")),
        "{}",
        r.stdout
    );
    for want in [
        "controller: Acme Retail Ltd",
        "jurisdictions (6): EU, EU-DE, EU-ES, EU-FR, EU-IT, US-CA",
        "country: categorical {FR, DE, ES, IT, US}",
        "total_spend: integer 0..=100000",
        "user.health (special, ccpa_sensitive)",
        "marketing.email: consent",
        "analytics.product: legitimate_interests",
    ] {
        assert!(r.stdout.contains(want), "missing {want:?} in\n{}", r.stdout);
    }
}

#[test]
fn policy_lists_every_problem_with_its_path() {
    let text = std::fs::read_to_string(policy_file())
        .unwrap()
        .replace(
            "\"consent_validity_days\": 730",
            "\"consent_validity_days\": 0",
        )
        .replace("\"min\": 0", "\"min\": 200000")
        .replacen(
            "\"user.behaviour\",\n        \"user.location\"",
            "\"user.nowhere\",\n        \"user.location\"",
            1,
        );
    let file = scratch("bad-policy.json", &text);
    let r = run(&["policy", "--policy", &file]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("invalid policy, 3 problems"),
        "{}",
        r.stderr
    );
    for path in [
        "$.purposes[2].consent_validity_days",
        "$.attributes[3].min",
        "$.purposes[1].categories[0]",
    ] {
        assert!(
            r.stderr.contains(&format!("  {path}: ")),
            "missing {path} in {}",
            r.stderr
        );
    }
    // Malformed JSON is an invalid policy too, with its position.
    let file = scratch("truncated-policy.json", &text[..100]);
    let r = run(&["policy", "--policy", &file]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("policy JSON, line"), "{}", r.stderr);
    // A missing file is an input error.
    assert_eq!(run(&["policy", "--policy", "/nonexistent.json"]).code, 2);
}

#[test]
fn eval_prints_counts_and_ids_like_the_library() {
    let (p, s, c) = (policy_file(), data("subjects.csv"), data("consents.jsonl"));
    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &[
            "--at",
            AT,
            "--segment",
            LAPSED_VIP,
            "--segment",
            US_RETARGET,
            "--segment",
            ACTIVE_EU,
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    for (line, (name, purpose, seg)) in lines.iter().zip([
        ("lapsed_vip", "marketing.email", LAPSED_VIP),
        (
            "us_retarget",
            "marketing.advertising.third_party",
            US_RETARGET,
        ),
        ("active_eu", "analytics.product", ACTIVE_EU),
    ]) {
        let n = library_members(seg).len();
        assert_eq!(
            *line,
            format!("segment \"{name}\" for {purpose}: {n} members at {AT}")
        );
    }

    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &["--at", AT, "--segment", LAPSED_VIP, "--ids"],
    ));
    assert_eq!(r.code, 0);
    let ids: Vec<&str> = r.stdout.lines().skip(1).map(|l| l.trim()).collect();
    let want = library_members(LAPSED_VIP);
    assert!(!want.is_empty());
    assert_eq!(ids, want);
    // In the order of the subjects file.
    let order: Vec<String> = std::fs::read_to_string(&s)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .filter(|id| want.contains(id))
        .collect();
    assert_eq!(order, want);
}

#[test]
fn eval_json_lines() {
    let (p, s, c) = (policy_file(), data("subjects.csv"), data("consents.jsonl"));
    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &[
            "--at",
            AT,
            "--segment",
            LAPSED_VIP,
            "--segment",
            ACTIVE_EU,
            "--format",
            "json",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let version = read_policy(p.as_ref()).unwrap().version().to_string();
    let objs: Vec<Json> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objs.len(), 2);
    assert_eq!(objs[0]["segment"], "lapsed_vip");
    assert_eq!(objs[0]["purpose"], "marketing.email");
    assert_eq!(objs[0]["policy_version"], version.as_str());
    assert_eq!(objs[0]["at"], AT);
    assert_eq!(objs[0]["members"], library_members(LAPSED_VIP).len());
    assert!(objs[0].get("ids").is_none());
    assert_eq!(objs[1]["segment"], "active_eu");
    assert_eq!(objs[1].as_object().unwrap().len(), 5);

    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &[
            "--at",
            AT,
            "--segment",
            ACTIVE_EU,
            "--format",
            "json",
            "--ids",
        ],
    ));
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    let ids: Vec<String> = obj["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, library_members(ACTIVE_EU));
    assert_eq!(obj["members"], ids.len());
}

#[test]
fn eval_stats_on_stderr_and_segment_files() {
    let (p, s, c) = (policy_file(), data("subjects.csv"), data("consents.jsonl"));
    let file = scratch("segment3.txt", US_RETARGET);
    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &[
            "--at",
            AT,
            "--segment",
            LAPSED_VIP,
            "--segment-file",
            &file,
            "--stats",
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 2);
    assert!(r.stdout.contains("us_retarget"));
    for want in [
        "stats: read 300 subjects",
        "imported them in",
        "rows/s",
        "lines/s",
        "peak memory",
        "stats: segment \"lapsed_vip\"",
        "stats: segment \"us_retarget\"",
        "per million subjects",
    ] {
        assert!(r.stderr.contains(want), "missing {want:?} in\n{}", r.stderr);
    }
    assert!(!r.stdout.contains("stats"));
    // No progress bar when stderr is not a terminal.
    assert!(!r.stderr.contains('['), "{}", r.stderr);
}

#[test]
fn eval_at_defaults_to_now_and_must_be_rfc3339() {
    let (p, s, c) = (policy_file(), data("subjects.csv"), data("consents.jsonl"));
    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &["--segment", ACTIVE_EU, "--format", "json"],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    let at = Timestamp::parse(obj["at"].as_str().unwrap()).unwrap();
    assert!((Timestamp::now().unix() - at.unix()).abs() < 600);

    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &["--segment", ACTIVE_EU, "--at", "yesterday"],
    ));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("RFC 3339"), "{}", r.stderr);
    // At least one segment is needed.
    assert_eq!(run(&eval_args(&p, &s, &c, &["--at", AT])).code, 2);
    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &["--at", AT, "--format", "xml", "--segment", ACTIVE_EU],
    ));
    assert_eq!(r.code, 2);
}

#[test]
fn eval_refuses_before_loading() {
    let (p, c) = (policy_file(), data("consents.jsonl"));
    // The subjects file does not exist: the refusal comes first.
    let r = run(&eval_args(
        &p,
        "/nonexistent.csv",
        &c,
        &["--at", AT, "--segment", LAPSED_VIP, "--segment", REFUSED_R2],
    ));
    assert_eq!(r.code, 1);
    assert!(r.stdout.is_empty());
    assert!(r.stderr.contains("rule: R2"), "{}", r.stderr);
    let r = run(&eval_args(
        &p,
        "/nonexistent.csv",
        &c,
        &["--at", AT, "--segment", LAPSED_VIP],
    ));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("/nonexistent.csv"), "{}", r.stderr);
}

/// Runs eval over these subjects and events; expects exit 2 and returns stderr.
fn bad_input(name: &str, subjects: &str, events: &str) -> String {
    let s = scratch(&format!("{name}.csv"), subjects);
    let c = scratch(&format!("{name}.jsonl"), events);
    let p = policy_file();
    let r = run(&eval_args(
        &p,
        &s,
        &c,
        &["--at", AT, "--segment", ACTIVE_EU],
    ));
    assert_eq!(r.code, 2, "{name}: {}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.is_empty(),
        "{name}: no partial output: {}",
        r.stdout
    );
    assert!(r.stderr.starts_with("error: "), "{}", r.stderr);
    r.stderr
}

fn grant(subject: &str) -> String {
    format!(
        r#"{{"subject":"{subject}","kind":"consent_granted","purpose":"marketing.email","at":"2026-01-01T00:00:00Z","notice_version":"v3","notice_sha256":"{SHA}","channel":"web","collector":"form"}}"#
    )
}

#[test]
fn each_class_of_bad_subjects_input() {
    let ok_row = "c-1,EU-FR,1980-01-01,2026-01-01T00:00:00Z,FR,10,2026-01-01T00:00:00Z,true";
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown-column",
            format!("{HEADER},shoe\n{ok_row},4\n"),
            ".csv:1, column 9 (shoe): unknown column \"shoe\"",
        ),
        (
            "missing-column",
            "id,jurisdiction\nc-1,EU-FR\n".into(),
            ".csv:1: missing columns birth_date, verified_at",
        ),
        (
            "field-count",
            format!("{HEADER}\n{ok_row}\nc-2,EU-FR\n"),
            ".csv:3: expected 8 fields as in the header, found 2",
        ),
        (
            "bad-date",
            format!("{HEADER}\n{}\n", ok_row.replace("1980-01-01", "01/01/1980")),
            ".csv:2, column 3 (birth_date): invalid date \"01/01/1980\": expected a date in the form YYYY-MM-DD",
        ),
        (
            "bad-time",
            format!(
                "{HEADER}\n{}\n",
                ok_row.replace("2026-01-01T00:00:00Z,FR", "2026-01-01,FR")
            ),
            ".csv:2, column 4 (verified_at): invalid time \"2026-01-01\": expected an RFC 3339 time",
        ),
        (
            "bad-category",
            format!("{HEADER}\n{}\n", ok_row.replace(",FR,", ",XX,")),
            ".csv:2, column 5 (country): \"XX\" is not a declared value of \"country\"",
        ),
        (
            "out-of-bounds",
            format!("{HEADER}\n{}\n", ok_row.replace(",10,", ",-5,")),
            ".csv:2, column 6 (total_spend): -5 is outside the declared bounds 0..=100000",
        ),
        (
            "bad-boolean",
            format!("{HEADER}\n{}\n", ok_row.replace("true", "yes")),
            ".csv:2, column 8 (newsletter): expected true or false",
        ),
        (
            "bad-jurisdiction",
            format!("{HEADER}\n{}\n", ok_row.replace("EU-FR", "JP")),
            ".csv:2, column 2 (jurisdiction): unknown jurisdiction \"JP\"",
        ),
        (
            "duplicate-id",
            format!("{HEADER}\n{ok_row}\n{ok_row}\n"),
            ".csv:3, column 1 (id): subject \"c-1\" appears on an earlier row",
        ),
        ("empty", String::new(), ".csv:1: the file is empty"),
    ];
    for (name, subjects, want) in cases {
        let err = bad_input(name, subjects, "");
        assert!(err.contains(&format!("-{name}{want}")), "{name}: {err}");
    }
}

#[test]
fn each_class_of_bad_events_input() {
    let subjects = format!(
        "{HEADER}\nc-1,EU-FR,1980-01-01,2026-01-01T00:00:00Z,FR,10,2026-01-01T00:00:00Z,true\n"
    );
    let good = grant("c-1");
    let cases: &[(&str, String, &str)] = &[
        (
            "unknown-subject",
            format!("{good}\n{}\n", grant("c-2")),
            ".jsonl:2, field `subject`: unknown subject \"c-2\"",
        ),
        (
            "unknown-purpose",
            good.replace("marketing.email", "marketing.fax"),
            ".jsonl:1, field `purpose`: unknown purpose \"marketing.fax\"",
        ),
        (
            "unknown-kind",
            good.replace("consent_granted", "consent_maybe"),
            ".jsonl:1, field `kind`: unknown event kind \"consent_maybe\": expected one of consent_granted",
        ),
        (
            "bad-event-time",
            good.replace("2026-01-01T00:00:00Z", "1 Jan 2026"),
            ".jsonl:1, field `at`: invalid time \"1 Jan 2026\"",
        ),
        (
            "malformed-json",
            format!("{good}\n\n{{\"subject\": \"c-1\"\n"),
            ".jsonl:3, column ",
        ),
        (
            "missing-field",
            good.replace(",\"channel\":\"web\"", ""),
            ".jsonl:1, column ",
        ),
        (
            "grant-without-notice",
            good.replace("\"notice_version\":\"v3\",", ""),
            ".jsonl:1, field `notice_version`: consent_granted event: a grant needs the notice version shown (R5)",
        ),
    ];
    for (name, events, want) in cases {
        let err = bad_input(name, &subjects, events);
        assert!(err.contains(&format!("-{name}{want}")), "{name}: {err}");
    }
    let err = bad_input(
        "missing-field2",
        &subjects,
        &good.replace(",\"channel\":\"web\"", ""),
    );
    assert!(err.contains("missing field `channel`"), "{err}");
}

/// Small data for explain: one member, and one subject out for each reason.
fn explain_data() -> (String, String) {
    let s = scratch(
        "explain.csv",
        &format!(
            "{HEADER}\n\
             in,EU-FR,1980-01-01,2026-11-01T00:00:00Z,FR,900,2026-01-01T00:00:00Z,\n\
             objected,EU-FR,1980-01-01,2026-11-01T00:00:00Z,FR,900,2026-01-01T00:00:00Z,\n\
             asked_nothing,EU-FR,1980-01-01,2026-11-01T00:00:00Z,FR,900,2026-01-01T00:00:00Z,\n\
             poor,EU-DE,1980-01-01,2026-11-01T00:00:00Z,DE,100,2026-01-01T00:00:00Z,\n"
        ),
    );
    let objection = r#"{"subject":"objected","kind":"objection","at":"2026-06-01T00:00:00Z","channel":"phone","collector":"agent-7"}"#;
    let c = scratch(
        "explain.jsonl",
        &[
            grant("in"),
            grant("objected"),
            objection.into(),
            grant("poor"),
        ]
        .join("\n"),
    );
    (s, c)
}

fn explain(subject: &str, format: &str) -> Run {
    let (s, c) = explain_data();
    let p = policy_file();
    run(&[
        "explain",
        "--policy",
        &p,
        "--subjects",
        &s,
        "--consents",
        &c,
        "--at",
        AT,
        "--segment",
        LAPSED_VIP,
        "--subject",
        subject,
        "--format",
        format,
    ])
}

#[test]
fn explain_in_and_out_and_why() {
    let r = explain("in", "text");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("in is IN segment \"lapsed_vip\""),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("predicate: holds"));

    let r = explain("objected", "text");
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("is OUT"), "{}", r.stdout);
    assert!(r.stdout.contains("eligible: no, R6:"), "{}", r.stdout);

    let r = explain("asked_nothing", "text");
    assert!(
        r.stdout.contains("eligible: no, R3: no consent on record"),
        "{}",
        r.stdout
    );

    let r = explain("poor", "text");
    assert!(r.stdout.contains("is OUT"));
    assert!(r.stdout.contains("eligible: yes"), "{}", r.stdout);
    assert!(
        r.stdout.contains("failed: total_spend >= 500"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("failed: country"), "{}", r.stdout);
}

#[test]
fn explain_json_and_errors() {
    let r = explain("objected", "json");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(obj["subject"], "objected");
    assert_eq!(obj["member"], false);
    assert_eq!(obj["eligibility"]["allowed"], false);
    assert_eq!(obj["eligibility"]["reason"], "objected");

    let r = explain("nobody", "text");
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("unknown subject \"nobody\""),
        "{}",
        r.stderr
    );

    let (s, c) = explain_data();
    let p = policy_file();
    let r = run(&[
        "explain",
        "--policy",
        &p,
        "--subjects",
        &s,
        "--consents",
        &c,
        "--segment",
        REFUSED_R2,
        "--subject",
        "in",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("rule: R2"));
    // --subject is required.
    let r = run(&[
        "explain",
        "--policy",
        &p,
        "--subjects",
        &s,
        "--consents",
        &c,
        "--segment",
        LAPSED_VIP,
    ]);
    assert_eq!(r.code, 2);
}

// The actor, the new commands and the audit log.

fn data_args<'a>(cmd: &'a str, rest: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        cmd.into(),
        "--policy".into(),
        policy_file(),
        "--subjects".into(),
        data("subjects.csv"),
        "--consents".into(),
        data("consents.jsonl"),
        "--at".into(),
        AT.into(),
    ];
    v.extend(rest.iter().map(|s| s.to_string()));
    v
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn help_on_the_new_commands() {
    for args in [
        vec!["export", "--help"],
        vec!["count", "--help"],
        vec!["audit", "checkpoint", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["audit", "prove", "--help"],
        vec!["audit", "public-key", "--help"],
        vec!["signal", "decode", "--help"],
        vec!["signal", "encode", "--help"],
        vec!["report", "subject", "--help"],
        vec!["report", "fairness", "--help"],
        vec!["report", "ropa", "--help"],
        vec!["report", "compliance", "--help"],
        vec!["audit", "dump", "--help"],
        vec!["check", "--help"],
        vec!["policy", "--help"],
    ] {
        let r = run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        assert!(r.stdout.contains("Usage: privseg"), "{args:?}");
        // --actor and --role appear only where they act.
        let acts = subcommand(&args).1;
        assert_eq!(r.stdout.contains("--actor"), acts, "{args:?}");
        assert_eq!(r.stdout.contains("--role"), acts, "{args:?}");
    }
    assert!(run(&["count", "--help"]).stdout.contains("--epsilon"));
    assert!(run(&["eval", "--help"]).stdout.contains("--audit-log"));
}

#[test]
fn access_is_refused_without_the_permission() {
    let args = data_args("eval", &["--segment", LAPSED_VIP]);
    // No role: loading the files (adding subjects) is refused.
    let r = run_as("ann", &[], &strs(&args));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(
        r.stderr.trim(),
        "error: access refused: actor \"ann\" lacks permission subjects"
    );
    assert!(r.stdout.is_empty());
    // An analyst may count but not see member ids.
    let r = run_as("ann", &["loader", "analyst"], &strs(&args));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(
            "access refused: actor \"ann\" lacks permission member_ids for purpose marketing.email"
        ),
        "{}",
        r.stderr
    );
    let r = run_as("ann", &["loader", "marketer"], &strs(&args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("lapsed_vip"));
    // A role the policy does not assign to the identity is refused, named.
    let r = run_as("ann", &["loader", "root"], &strs(&args));
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr.trim(),
        "error: actor \"ann\" may not take role \"root\": the policy assigns it only analyst, loader, marketer"
    );
    let r = run_as("ann", &["loader", "admin"], &strs(&args));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("may not take role \"admin\""),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // --actor only picks among the user's identities; the environment
    // names no one.
    let r = run_as("mallory", &["admin"], &strs(&args));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains(&format!(
            "operating-system user {:?} may not act as \"mallory\": the policy lets it act as ann, tester, zoe",
            login()
        )),
        "{}",
        r.stderr
    );
    let out = Command::new(bin())
        .args(with_roles(&["loader"], &strs(&args)))
        .env("USER", "tester")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "several identities in the policy (ann, tester, zoe): choose one with --actor"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With one identity, --actor may be left out.
    let single = policy_with("single.json", &[&["zoe", "loader", "marketer"]], |_| {});
    let args = strs(&data_args("eval", &["--segment", LAPSED_VIP]))
        .iter()
        .map(|a| {
            if *a == policy_file() {
                single.clone()
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = Command::new(bin())
        .args(with_roles(&["loader", "marketer"], &args))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_user_without_an_identity_may_do_nothing() {
    let other = policy_with("others.json", &[], |spec| {
        spec["actors"] =
            serde_json::json!([{"os_user": "someone-else", "id": "ann", "roles": ["admin"]}]);
    });
    let (subjects, consents) = (data("subjects.csv"), data("consents.jsonl"));
    for args in [
        vec![
            "count",
            "--policy",
            &other,
            "--subjects",
            &subjects,
            "--consents",
            &consents,
            "--segment",
            LAPSED_VIP,
        ],
        vec!["report", "ropa", "--policy", &other],
    ] {
        let r = run_as("ann", &["admin"], &args);
        assert_eq!(r.code, 1, "{args:?}");
        assert!(
            r.stderr.contains(&format!(
                "operating-system user {:?} has no identity in the policy",
                login()
            )),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn the_policy_file_must_be_an_administrators() {
    // A data command: `check` and `policy` grant nothing, so they read any file.
    let check = |path: &str| {
        run(&[
            "count",
            "--policy",
            path,
            "--subjects",
            &data("subjects.csv"),
            "--consents",
            &data("consents.jsonl"),
            "--segment",
            LAPSED_VIP,
        ])
    };
    let file = policy_with("trust.json", &[&["tester", "admin"]], |_| {});
    assert_eq!(check(&file).code, 0, "{}", check(&file).stderr);
    set_mode(&file, 0o664);
    let r = check(&file);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is writable by its group (mode 664)")
            && r.stderr
                .contains("whoever can write the policy is its administrator"),
        "{}",
        r.stderr
    );
    set_mode(&file, 0o646);
    let r = check(&file);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("writable by every user"), "{}", r.stderr);
    set_mode(&file, 0o644);
    assert_eq!(check(&file).code, 0);
    // Owned by another user (only root can give a file away).
    if login() == "root" {
        let status = Command::new("chown")
            .args(["65534", &file])
            .status()
            .unwrap();
        assert!(status.success());
        let r = check(&file);
        assert_eq!(r.code, 1);
        assert!(
            r.stderr
                .contains("is owned by user id 65534, neither root nor root"),
            "{}",
            r.stderr
        );
    }
    // Checking a draft with `policy` grants nothing, so it is not refused.
    set_mode(&file, 0o666);
    assert_eq!(run(&["policy", "--policy", &file]).code, 0);
}

fn key_file(name: &str, bytes: &[u8]) -> String {
    let path = scratch(name, "");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn export_writes_pseudonyms_never_raw_ids() {
    let key = key_file("master.key", &[7u8; 32]);
    let members = library_members(LAPSED_VIP);
    assert!(members.len() > 5);
    let args = data_args(
        "export",
        &[
            "--segment",
            LAPSED_VIP,
            "--recipient",
            "mailer",
            "--fields",
            "country,total_spend",
            "--master-key-file",
            &key,
        ],
    );
    let r = run(&strs(&args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rows: Vec<Json> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), members.len());
    for row in &rows {
        let id = row["id"].as_str().unwrap();
        assert!(id.starts_with("v1:") && id.len() == 3 + 64, "{id}");
        assert!(["FR", "DE"].contains(&row["country"].as_str().unwrap()));
        assert!(row["total_spend"].as_i64().unwrap() >= 500);
    }
    for raw in &members {
        assert!(!r.stdout.contains(raw.as_str()), "raw id {raw} exported");
    }
    assert!(
        r.stderr
            .contains(&format!("exported {} rows to mailer", members.len()))
    );
    // The same key and version give the same pseudonyms; CSV has a header.
    let mut csv_args = args.clone();
    csv_args.extend(["--format".into(), "csv".into()]);
    let r2 = run(&strs(&csv_args));
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    let mut lines = r2.stdout.lines();
    assert_eq!(lines.next(), Some("id,country,total_spend"));
    let first_id = rows[0]["id"].as_str().unwrap();
    assert!(lines.next().unwrap().starts_with(first_id));
    // Another key version, other pseudonyms.
    let mut v2 = args.clone();
    v2.extend(["--key-version".into(), "2".into()]);
    let r3 = run(&strs(&v2));
    assert_eq!(r3.code, 0, "{}", r3.stderr);
    assert!(!r3.stdout.contains(first_id));
    // A hex key file works; a short key is refused and never printed.
    let hex_key = key_file("master.hex", "07".repeat(32).as_bytes());
    let mut h = args.clone();
    let at = h.iter().position(|a| a == &key).unwrap();
    h[at] = hex_key;
    let r4 = run(&strs(&h));
    assert_eq!((r4.code, r4.stdout.as_str()), (0, r.stdout.as_str()));
    let short = key_file("short.key", b"0123456789abcdefXYZ");
    h[at] = short;
    let r5 = run(&strs(&h));
    assert_eq!(r5.code, 2, "{}", r5.stderr);
    assert!(!r5.stderr.contains("XYZ"), "{}", r5.stderr);
}

#[test]
fn export_refusals() {
    let key = key_file("master.key", &[7u8; 32]);
    let base = |recipient: &str, fields: &str| {
        data_args(
            "export",
            &[
                "--segment",
                LAPSED_VIP,
                "--recipient",
                recipient,
                "--fields",
                fields,
                "--master-key-file",
                &key,
            ],
        )
    };
    // The ad platform's agreement does not cover email marketing.
    let r = run(&strs(&base("adnet", "country")));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("export to adnet refused (R19)"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
    // A marketer may not export at all.
    let r = run_as(
        "ann",
        &["loader", "marketer"],
        &strs(&base("mailer", "country")),
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("actor \"ann\" lacks permission export to recipient mailer"),
        "{}",
        r.stderr
    );
    // A recipient the policy does not list is a mistake in the command
    // (exit 2), not a missing permission.
    let r = run(&strs(&base("nobody", "country")));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown recipient \"nobody\""),
        "{}",
        r.stderr
    );
}

#[test]
fn count_k_threshold_stricter_k_and_breakdown() {
    let members = library_members(LAPSED_VIP).len();
    assert!(members >= 11, "{members}");
    let r = run_as(
        "ann",
        &["loader", "analyst"],
        &strs(&data_args("count", &["--segment", LAPSED_VIP])),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout.trim(),
        format!("segment \"lapsed_vip\" for marketing.email at {AT}: {members} members")
    );
    // A small segment is never revealed.
    let small = r#"segment "few" for marketing.email where total_spend >= 90000"#;
    assert!(library_members(small).len() < 11);
    let r = run(&strs(&data_args("count", &["--segment", small])));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("fewer than 11 members"), "{}", r.stdout);
    let r = run(&strs(&data_args(
        "count",
        &["--segment", small, "--format", "json"],
    )));
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    // One shape: the count is null, marked suppressed, with the threshold.
    assert_eq!(obj["count"], Json::Null);
    assert_eq!(obj["suppressed"], true);
    assert_eq!(obj["threshold"], 11);
    // --k only makes it stricter.
    let big_k = (members + 1).to_string();
    let r = run(&strs(&data_args(
        "count",
        &["--segment", LAPSED_VIP, "--k", &big_k],
    )));
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("fewer than {big_k} members")));
    let r = run(&strs(&data_args(
        "count",
        &["--segment", LAPSED_VIP, "--k", "5"],
    )));
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("below the policy's k threshold 11"),
        "{}",
        r.stderr
    );
    // Breakdown by a categorical attribute.
    let r = run(&strs(&data_args(
        "count",
        &[
            "--segment",
            ACTIVE_EU,
            "--by",
            "country",
            "--format",
            "json",
        ],
    )));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(obj["by"], "country");
    let cells = obj["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 6, "five countries and (none)");
    assert_eq!(obj["total"]["count"], library_members(ACTIVE_EU).len());
    assert!(obj["total"].get("suppressed").is_none());
    for c in cells {
        // Every cell: a number, or null marked suppressed with k.
        assert!(c["value"].is_string(), "{c}");
        match c["count"].as_u64() {
            Some(n) => assert!(n >= 11, "{c}"),
            None => {
                assert_eq!(c["count"], Json::Null, "{c}");
                assert_eq!(c["suppressed"], true, "{c}");
                assert_eq!(c["threshold"], 11, "{c}");
            }
        }
    }
    // A marketer may not count analytics segments.
    let r = run_as(
        "ann",
        &["loader", "marketer"],
        &strs(&data_args("count", &["--segment", ACTIVE_EU])),
    );
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("lacks permission count for purpose analytics.product")
    );
}

/// A DP count of LAPSED_VIP (purpose marketing.email) by `actor` with
/// `roles`, keeping the audit log (and so the ledger) in `log`.
fn dp_run(policy: &str, log: &str, actor: &str, roles: &[&str], epsilon: &str) -> Run {
    let key = format!("{log}.key");
    if !Path::new(&key).exists() {
        std::fs::write(&key, [5u8; 32]).unwrap();
    }
    let args: Vec<String> = data_args(
        "count",
        &[
            "--segment",
            LAPSED_VIP,
            "--epsilon",
            epsilon,
            "--format",
            "json",
            "--audit-log",
            log,
            "--audit-key-file",
            &key,
        ],
    )
    .into_iter()
    .map(|a| {
        if a == policy_file() {
            policy.to_string()
        } else {
            a
        }
    })
    .collect();
    run_as(actor, roles, &strs(&args))
}

#[test]
fn dp_count_charges_the_policys_budget() {
    let log = scratch("dp-audit.log", "");
    std::fs::remove_file(&log).unwrap();
    let ledger = format!("{log}.budget");
    let p = policy_file();
    // The sample policy: at most 1/2 per query on marketing, 1 in all.
    let r = dp_run(&p, &log, "ann", &["loader", "analyst"], "3/4");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("above the policy's cap of 1/2"),
        "{}",
        r.stderr
    );
    assert!(!Path::new(&ledger).exists());
    let r = dp_run(&p, &log, "ann", &["loader", "analyst"], "1/2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    assert!(obj["noisy_count"].is_i64());
    // Numbers as numbers, the exact fraction beside them.
    assert_eq!(obj["budget"], "marketing");
    assert_eq!(obj["epsilon"].as_f64(), Some(0.5));
    assert_eq!(obj["epsilon_exact"], "1/2");
    assert_eq!(obj["remaining"].as_f64(), Some(0.5));
    assert_eq!(obj["remaining_exact"], "1/2");
    assert_eq!(obj["total"].as_f64(), Some(1.0));
    // Another identity with other roles spends the same budget.
    let r = dp_run(&p, &log, "tester", &["admin"], "1/2");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let saved: Json = serde_json::from_str(&std::fs::read_to_string(&ledger).unwrap()).unwrap();
    assert_eq!(
        saved["accounts"]["Acme Retail Ltd"]["marketing"]["spent"],
        "1"
    );
    let r = dp_run(&p, &log, "ann", &["loader", "analyst"], "1/100");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("budget exhausted"), "{}", r.stderr);
    // Deleting the ledger does not start it over: the audit log has the charges.
    std::fs::remove_file(&ledger).unwrap();
    let r = dp_run(&p, &log, "ann", &["loader", "analyst"], "1/100");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("shows 0 spent") && r.stderr.contains("refusing to start over"),
        "{}",
        r.stderr
    );
    assert!(!Path::new(&ledger).exists());
    // Without an audit log there is nowhere to keep the ledger.
    let r = run_as(
        "ann",
        &["loader", "analyst"],
        &strs(&data_args(
            "count",
            &["--segment", LAPSED_VIP, "--epsilon", "1/2"],
        )),
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn concurrent_dp_counts_against_one_query_of_budget_answer_once() {
    let p = policy_with("one-query.json", &[&["ann", "loader", "analyst"]], |spec| {
        spec["dp_budgets"] = serde_json::json!([
            {"purpose": "marketing", "max_epsilon": "1/2", "total": "1/2"}
        ]);
    });
    let log = scratch("dp-race.log", "");
    std::fs::remove_file(&log).unwrap();
    dp_run(&p, &log, "ann", &["loader"], "1/2"); // creates the key file; refused (no count role)
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| dp_run(&p, &log, "ann", &["loader", "analyst"], "1/2")))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let answered = runs.iter().filter(|r| r.code == 0).count();
    assert_eq!(
        answered,
        1,
        "{:?}",
        runs.iter().map(|r| &r.stderr).collect::<Vec<_>>()
    );
    for r in runs.iter().filter(|r| r.code != 0) {
        assert_eq!(r.code, 1);
        assert!(r.stderr.contains("budget exhausted"), "{}", r.stderr);
    }
    // Every process's entries are in the log, in sequence.
    let r = run(&["audit", "prove", "--log", &log, "--index", "0"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

/// Runs eval with the audit log in `log`; returns the run.
fn audited_eval(log: &str, key: &str) -> Run {
    run(&strs(&data_args(
        "eval",
        &[
            "--segment",
            LAPSED_VIP,
            "--segment",
            ACTIVE_EU,
            "--audit-log",
            log,
            "--audit-key-file",
            key,
        ],
    )))
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn audit_log_checkpoint_verify_and_prove() {
    let log = format!("{}.log", scratch("audit", ""));
    let pseud = key_file("audit.key", &[9u8; 32]);
    let seed = key_file("sign.key", &[3u8; 32]);
    assert_eq!(audited_eval(&log, &pseud).code, 0);
    let r = audited_eval(&log, &pseud);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Two runs, appended: policy, 2 validations, import, 2 evaluations each.
    let scanned = privseg::audit::FileSink::scan(&log).unwrap();
    assert_eq!(scanned.entries.len(), 12);
    let bytes = std::fs::read(&log).unwrap();
    assert!(
        !String::from_utf8_lossy(&bytes).contains("c-000"),
        "no raw ids"
    );
    // --audit-log needs its key.
    let r = run(&strs(&data_args(
        "eval",
        &["--segment", LAPSED_VIP, "--audit-log", &log],
    )));
    assert_eq!(r.code, 2);

    let cp = run(&["audit", "checkpoint", "--log", &log, "--key", &seed]);
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    let cp_json: Json = serde_json::from_str(cp.stdout.trim()).unwrap();
    assert_eq!(cp_json["tree_size"], 12);
    let cp_file = scratch("cp.json", &cp.stdout);
    let pk = run(&["audit", "public-key", "--key", &seed]);
    assert_eq!(pk.code, 0);
    assert_eq!(pk.stdout.trim().len(), 64);
    let pk_file = scratch("pk.hex", &pk.stdout);
    let verify = |log: &str| {
        run(&[
            "audit",
            "verify",
            "--log",
            log,
            "--checkpoint",
            &cp_file,
            "--public-key",
            &pk_file,
        ])
    };
    let r = verify(&log);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.starts_with("ok: the first 12 entries"),
        "{}",
        r.stdout
    );

    // An inclusion proof that checks against the checkpoint's root.
    let r = run(&["audit", "prove", "--log", &log, "--index", "5"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let proof_json: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(proof_json["root_hash"], cp_json["root_hash"]);
    let proof: privseg::audit::InclusionProof = serde_json::from_value(proof_json.clone()).unwrap();
    let leaf: [u8; 32] = hex_bytes(proof_json["leaf_hash"].as_str().unwrap())
        .try_into()
        .unwrap();
    let root: [u8; 32] = hex_bytes(cp_json["root_hash"].as_str().unwrap())
        .try_into()
        .unwrap();
    proof.verify(&leaf, &root).unwrap();
    assert!(proof.verify(&[0u8; 32], &root).is_err());
    assert_eq!(
        run(&["audit", "prove", "--log", &log, "--index", "12"]).code,
        2
    );

    // One flipped byte in the middle of the file: exit 1, naming the entry.
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    let bad = scratch("flipped.log", "");
    std::fs::write(&bad, &flipped).unwrap();
    let r = verify(&bad);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let cp = privseg::audit::Checkpoint::from_json(cp.stdout.trim()).unwrap();
    let verifier = privseg::audit::CheckpointSigner::from_seed(&[3u8; 32])
        .unwrap()
        .verifier();
    let index = privseg::audit::verify_file(&bad, &cp, &verifier)
        .unwrap()
        .first_bad_index()
        .expect("a damaged record is located");
    assert!(index < 11, "{index}: a record in the middle");
    assert!(
        r.stderr
            .contains(&format!("first bad entry: index {index}")),
        "{}",
        r.stderr
    );
    // A checkpoint checked with another key is refused.
    let other = scratch("other.hex", &"ab".repeat(32));
    let r = run(&[
        "audit",
        "verify",
        "--log",
        &log,
        "--checkpoint",
        &cp_file,
        "--public-key",
        &other,
    ]);
    assert_eq!(r.code, 1);
}

#[test]
fn signals_decode_and_encode() {
    let r = run(&["signal", "decode", "1YNN"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(obj["optOutSale"], "N");
    assert_eq!(obj["type"], "usp");
    let file = scratch("usp.json", &r.stdout);
    let r = run(&["signal", "encode", "--json", &file, "--type", "usp"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "1YNN"));

    let r = run(&["signal", "decode", "DBABTA~1YN-"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("uspv1"), "{}", r.stdout);
    let file = scratch("gpp.json", &r.stdout);
    let r = run(&["signal", "encode", "--json", &file, "--type", "gpp"]);
    assert_eq!((r.code, r.stdout.trim()), (0, "DBABTA~1YN-"));

    let tc = privseg::consent::signals::tcf::TcString::example()
        .encode()
        .unwrap();
    assert!(tc.starts_with('C'));
    let r = run(&["signal", "decode", &tc]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let file = scratch("tcf.json", &r.stdout);
    let r = run(&["signal", "encode", "--json", &file, "--type", "tcf"]);
    assert_eq!((r.code, r.stdout.trim()), (0, tc.as_str()));
    // The wrong type for the JSON, an unknown signal, a malformed one.
    assert_eq!(
        run(&["signal", "encode", "--json", &file, "--type", "usp"]).code,
        2
    );
    let r = run(&["signal", "decode", "XYZ"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("starts with C"), "{}", r.stderr);
    assert_eq!(run(&["signal", "decode", "1YQN"]).code, 2);
    // Without --type the JSON's own "type" says what to encode.
    let r = run(&["signal", "encode", "--json", &file]);
    assert_eq!((r.code, r.stdout.trim()), (0, tc.as_str()));
    // Lenient by default, --strict refuses with the rule named.
    let mut old = privseg::consent::signals::tcf::TcString::example();
    old.core.tcf_policy_version = 2;
    let old = old.encode().unwrap();
    let r = run(&["signal", "decode", &old]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("\"field\":\"TcfPolicyVersion\",\"offset\":132"),
        "{}",
        r.stdout
    );
    let r = run(&["signal", "decode", "--strict", &old]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("TcfPolicyVersion at bit 132"),
        "{}",
        r.stderr
    );
    // A header naming an absent section: an error, unless --header-only.
    assert_eq!(run(&["signal", "decode", "DBACNYA"]).code, 2);
    let r = run(&["signal", "decode", "--header-only", "DBACNYA"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("\"sectionIds\":[2,6]"), "{}", r.stdout);
    // TCF v1 is named.
    let r = run(&["signal", "decode", "BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("TCF v1 is not supported"), "{}", r.stderr);
}

#[test]
fn subject_report_and_fairness_audit() {
    let members = library_members(LAPSED_VIP);
    let args = data_args(
        "report",
        &["subject", "--subject", &members[0], "--segment", LAPSED_VIP],
    );
    // `report subject`: the subcommand comes first, then its options.
    let mut v = vec!["report".to_string(), "subject".to_string()];
    v.extend(args[1..].iter().filter(|a| *a != "subject").cloned());
    let r = run(&strs(&v));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(obj["subject"], members[0].as_str());
    assert_eq!(obj["segments"][0]["member"], true);
    let r = run_as("ann", &["loader", "analyst"], &strs(&v));
    assert_eq!(
        r.code, 0,
        "loading grants `subjects`, which the report needs"
    );
    let r = run_as("ann", &["marketer"], &strs(&v));
    assert_eq!(r.code, 1);

    let mut f = vec!["report".to_string(), "fairness".to_string()];
    f.extend(
        data_args("x", &["--segment", LAPSED_VIP, "--protected", "country"])[1..]
            .iter()
            .cloned(),
    );
    let r = run_as("ann", &["loader", "analyst"], &strs(&f));
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("lacks permission administer"),
        "{}",
        r.stderr
    );
    // The sample policy has no protected attribute.
    let r = run(&strs(&f));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("protected"), "{}", r.stderr);
}

/// A data command given a damaged or shortened audit log stops with an
/// error, moves damaged bytes aside and never empties the log.
#[test]
fn audit_log_damage_stops_data_commands() {
    let log = format!("{}.log", scratch("audit-damage", ""));
    let pseud = key_file("audit-damage.key", &[9u8; 32]);
    assert_eq!(audited_eval(&log, &pseud).code, 0);
    let bytes = std::fs::read(&log).unwrap();
    let entries = privseg::audit::FileSink::scan(&log).unwrap().entries;
    assert_eq!(entries.len(), 6);

    // The last record damaged: refused, bytes kept in a side file.
    let mut damaged = bytes.clone();
    let last = damaged.len() - 5;
    damaged[last] ^= 0x01;
    std::fs::write(&log, &damaged).unwrap();
    let r = audited_eval(&log, &pseud);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("damaged-1"), "{}", r.stderr);
    let side = std::fs::read(format!("{log}.damaged-1")).unwrap();
    assert_eq!(side, damaged[bytes.len() - side.len()..]);
    assert!(!std::fs::read(&log).unwrap().is_empty());
    // The damaged entry was sealed: the next run refuses the short log.
    let r = audited_eval(&log, &pseud);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("tampered"), "{}", r.stderr);

    // The original back: accepted again.
    std::fs::write(&log, &bytes).unwrap();
    let r = audited_eval(&log, &pseud);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // `audit verify` with the audit key: a checkpoint taken after entries
    // were cut off the end still matches, the key does not.
    let seed = key_file("audit-damage-sign.key", &[3u8; 32]);
    let full = std::fs::read(&log).unwrap();
    std::fs::write(&log, &bytes).unwrap(); // back to 6 of 12 entries
    let cp = run(&["audit", "checkpoint", "--log", &log, "--key", &seed]);
    assert_eq!(cp.code, 0, "{}", cp.stderr);
    let cp_file = scratch("audit-damage-cp.json", &cp.stdout);
    let pk = run(&["audit", "public-key", "--key", &seed]);
    let pk_file = scratch("audit-damage-pk.hex", &pk.stdout);
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "audit",
            "verify",
            "--log",
            &log,
            "--checkpoint",
            &cp_file,
            "--public-key",
            &pk_file,
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    assert_eq!(verify(&[]).code, 0);
    let r = verify(&["--audit-key-file", &pseud]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("tampered"), "{}", r.stderr);
    std::fs::write(&log, &full).unwrap();
    let r = verify(&["--audit-key-file", &pseud]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}

#[test]
fn input_errors_exit_2_and_name_the_real_cause() {
    let key = key_file("names.key", &[9u8; 32]);
    // An attribute the policy lacks among the fields: named as such.
    let r = run(&strs(&data_args(
        "export",
        &[
            "--segment",
            LAPSED_VIP,
            "--recipient",
            "mailer",
            "--fields",
            "country,shoe",
            "--master-key-file",
            &key,
        ],
    )));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown attribute \"shoe\""),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("invalid segment"), "{}", r.stderr);
    assert!(r.stdout.is_empty());
    // An unknown recipient is not a missing permission, whoever asks.
    for (actor, roles) in [("tester", &["admin"][..]), ("ann", &["loader"][..])] {
        let r = run_as(
            actor,
            roles,
            &strs(&data_args(
                "export",
                &[
                    "--segment",
                    LAPSED_VIP,
                    "--recipient",
                    "nobody",
                    "--master-key-file",
                    &key,
                ],
            )),
        );
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.contains("unknown recipient \"nobody\"") && r.stderr.contains("adnet, mailer"),
            "{}",
            r.stderr
        );
        assert!(!r.stderr.contains("permission"), "{}", r.stderr);
    }
    // Segments: an unknown attribute, an undeclared value and a syntax error
    // are input errors (2); a rule's refusal is a refusal (1).
    for (segment, code, says) in [
        (
            r#"segment "x" for marketing.email where shoe = 1"#,
            2,
            "unknown attribute",
        ),
        (
            r#"segment "x" for marketing.email where country = "XX""#,
            2,
            "XX",
        ),
        (r#"segment "x" for marketing.email where"#, 2, "expected"),
        (REFUSED_R2, 1, "rule: R2"),
    ] {
        let r = run(&["check", "--policy", &policy_file(), "--segment", segment]);
        assert_eq!(r.code, code, "{segment}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{segment}: {}", r.stderr);
        let r = run(&strs(&data_args("eval", &["--segment", segment])));
        assert_eq!(r.code, code, "{segment}: {}", r.stderr);
    }
    // An unknown --by attribute, a bad flag value.
    let r = run(&strs(&data_args(
        "count",
        &["--segment", LAPSED_VIP, "--by", "shoe"],
    )));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("shoe"), "{}", r.stderr);
    let r = run(&strs(&data_args(
        "eval",
        &["--segment", LAPSED_VIP, "--format", "yaml"],
    )));
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Options are given only where they act: check takes no actor.
    let r = Command::new(bin())
        .args(["check", "--actor", "tester", "--policy", &policy_file()])
        .args(["--segment", LAPSED_VIP])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--actor"));
}

#[test]
fn export_jsonl_has_id_first_then_the_fields_in_order() {
    let key = key_file("order.key", &[3u8; 32]);
    let r = run(&strs(&data_args(
        "export",
        &[
            "--segment",
            LAPSED_VIP,
            "--recipient",
            "mailer",
            "--fields",
            "total_spend,country",
            "--master-key-file",
            &key,
        ],
    )));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), library_members(LAPSED_VIP).len());
    for l in lines {
        assert!(l.starts_with(r#"{"id":"v1:"#), "{l}");
        let spend = l.find(r#""total_spend":"#).unwrap();
        let country = l.find(r#""country":"#).unwrap();
        assert!(spend < country, "{l}");
        let obj: Json = serde_json::from_str(l).unwrap();
        assert_eq!(obj.as_object().unwrap().len(), 3, "{l}");
    }
}

#[test]
fn policy_schema_accepts_the_sample_policies_and_rejects_mistakes() {
    let r = run(&["policy", "--schema"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let schema: Json = serde_json::from_str(&r.stdout).unwrap();
    let on_disk: Json = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/policy.schema.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert_eq!(schema, on_disk);
    let validator = jsonschema::validator_for(&schema).unwrap();
    let read =
        |p: &str| -> Json { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    for p in [
        data("policy.json"),
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/c/policy.json").to_string(),
        policy_file(),
    ] {
        let doc = read(&p);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{p}: {errors:?}");
    }
    // The example policy of docs/formats.md.
    let formats =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/formats.md")).unwrap();
    let start = formats
        .find("```json\n{\n  \"controller\"")
        .expect("example policy")
        + 8;
    let end = start + formats[start..].find("\n```").unwrap();
    let example: Json = serde_json::from_str(&formats[start..end]).unwrap();
    assert!(validator.is_valid(&example));
    // What the engine refuses as a shape, the schema refuses too.
    let mut typo = read(&data("policy.json"));
    typo["k_treshold"] = 20.into();
    assert!(!validator.is_valid(&typo));
    let mut basis = read(&data("policy.json"));
    basis["purposes"][0]["basis"] = "because".into();
    assert!(!validator.is_valid(&basis));
    let mut eps = read(&data("policy.json"));
    eps["dp_budgets"][0]["total"] = 1.into();
    assert!(!validator.is_valid(&eps));
}

#[test]
fn reports_ropa_and_compliance_as_json_and_markdown() {
    let r = run(&[
        "report",
        "ropa",
        "--policy",
        &policy_file(),
        "--format",
        "json",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(obj["controller"]["name"], "Acme Retail Ltd");
    let r = run(&[
        "report",
        "ropa",
        "--policy",
        &policy_file(),
        "--format",
        "md",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("| marketing.email |"), "{}", r.stdout);
    // Reading the audit log is a permission of its own.
    let r = run_as(
        "ann",
        &["loader", "marketer"],
        &["report", "ropa", "--policy", &policy_file()],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("lacks permission read_audit"),
        "{}",
        r.stderr
    );

    let mut args = data_args("report", &["--format", "json"]);
    args.insert(1, "compliance".into());
    let r = run(&strs(&args));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(obj["subjects"], 300, "{}", r.stdout);
    assert!(!r.stdout.contains("c-000"), "ids never appear");
}

#[test]
fn audit_dump_prints_entries_with_pseudonyms_only() {
    let log = scratch("dump.log", "");
    std::fs::remove_file(&log).unwrap();
    let key = key_file("dump.key", &[7u8; 32]);
    let r = run(&strs(&data_args(
        "explain",
        &[
            "--segment",
            LAPSED_VIP,
            "--subject",
            "c-000001",
            "--audit-log",
            &log,
            "--audit-key-file",
            &key,
        ],
    )));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&["audit", "dump", "--log", &log]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let entries: Vec<Json> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(entries.len() >= 3, "{}", r.stdout);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"].as_u64(), Some(i as u64), "{e}");
    }
    assert!(!r.stdout.contains("c-000001"), "{}", r.stdout);
    assert_eq!(run(&["audit", "dump", "--log", "/nonexistent/log"]).code, 2);
}

#[test]
fn inputs_from_stdin_gzip_and_other_delimiters() {
    use std::io::Write;
    let expected = library_members(LAPSED_VIP);
    let subjects = std::fs::read(data("subjects.csv")).unwrap();
    // gzip, recognised by content whatever the name.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&subjects).unwrap();
    let gz_path = scratch("subjects.data", "");
    std::fs::write(&gz_path, gz.finish().unwrap()).unwrap();
    // Semicolons instead of commas (no field of the sample holds one).
    let semi = scratch(
        "subjects-semi.csv",
        &String::from_utf8(subjects.clone())
            .unwrap()
            .replace(',', ";"),
    );
    let ids = |args: Vec<String>, stdin: Option<&[u8]>| -> Vec<String> {
        let mut cmd = Command::new(bin());
        cmd.args(with_actor("tester", &["admin"], &strs(&args)))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("  "))
            .map(String::from)
            .collect()
    };
    let base = data_args("eval", &["--segment", LAPSED_VIP, "--ids"]);
    let swap = |from: &str, to: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = base
            .iter()
            .map(|a| if a == from { to.to_string() } else { a.clone() })
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let subjects_path = data("subjects.csv");
    assert_eq!(ids(swap(&subjects_path, &gz_path, &[]), None), expected);
    assert_eq!(
        ids(swap(&subjects_path, "-", &[]), Some(&subjects)),
        expected
    );
    assert_eq!(
        ids(swap(&subjects_path, &semi, &["--delimiter", ";"]), None),
        expected
    );
    // Without the delimiter the file is one column: the header is wrong.
    let r = run(&strs(&swap(&subjects_path, &semi, &[])));
    assert_eq!(r.code, 2, "{}", r.stderr);
    // Both inputs cannot come from stdin.
    let both = swap(&subjects_path, "-", &[]);
    let both = swap_all(both, &data("consents.jsonl"), "-");
    let r = run(&strs(&both));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("standard input"), "{}", r.stderr);
}

fn swap_all(v: Vec<String>, from: &str, to: &str) -> Vec<String> {
    v.into_iter()
        .map(|a| if a == from { to.to_string() } else { a })
        .collect()
}

#[test]
fn fairness_report_on_the_sample_data() {
    let mut spec: Json =
        serde_json::from_str(&std::fs::read_to_string(data("policy-fairness.json")).unwrap())
            .unwrap();
    spec["actors"] = serde_json::json!([{"os_user": login(), "id": "tester", "roles": ["admin"]}]);
    let policy = scratch("fairness.json", &spec.to_string());
    set_mode(&policy, 0o644);
    let r = run(&[
        "report",
        "fairness",
        "--policy",
        &policy,
        "--subjects",
        &data("subjects-fairness.csv"),
        "--consents",
        &data("consents.jsonl"),
        "--at",
        AT,
        "--segment",
        LAPSED_VIP,
        "--protected",
        "age_band",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let obj: Json = serde_json::from_str(&r.stdout).unwrap();
    let groups: Vec<&str> = obj["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["under_30", "30_to_49", "50_and_over", "(unknown)"]);
    assert!(
        obj["groups"][2]["selected"].as_u64().is_some(),
        "{}",
        r.stdout
    );
    // A protected attribute never selects (R20).
    let r = run(&[
        "check",
        "--policy",
        &policy,
        "--segment",
        r#"segment "x" for marketing.email where age_band = "under_30""#,
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("R20"), "{}", r.stderr);
}

/// The example policy of docs/formats.md, with the actors given to the
/// user running the tests, works for every data command on the sample data.
#[test]
fn the_documented_example_policy_works_for_every_data_command() {
    let formats =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/formats.md")).unwrap();
    let start = formats
        .find("```json\n{\n  \"controller\"")
        .expect("example policy")
        + 8;
    let end = start + formats[start..].find("\n```").unwrap();
    let text = formats[start..end].replace("\"your-login\"", &format!("{:?}", login()));
    let policy = scratch("formats-policy.json", &text);
    set_mode(&policy, 0o644);
    let key = key_file("formats.key", &[4u8; 32]);
    let log = scratch("formats-audit.log", "");
    std::fs::remove_file(&log).unwrap();
    let audit_key = key_file("formats-audit.key", &[6u8; 32]);
    let audit = [
        "--audit-log",
        log.as_str(),
        "--audit-key-file",
        audit_key.as_str(),
    ];
    let members = library_members(LAPSED_VIP);
    let cases: Vec<(&[&str], Vec<&str>)> = vec![
        (&["eval"], vec!["--segment", LAPSED_VIP, "--ids"]),
        (&["count"], vec!["--segment", LAPSED_VIP]),
        (&["count"], vec!["--segment", LAPSED_VIP, "--by", "country"]),
        (
            &["count"],
            [&["--segment", LAPSED_VIP, "--epsilon", "1/2"][..], &audit].concat(),
        ),
        (
            &["explain"],
            vec!["--segment", LAPSED_VIP, "--subject", &members[0]],
        ),
        (
            &["export"],
            vec![
                "--segment",
                LAPSED_VIP,
                "--recipient",
                "mailer",
                "--fields",
                "country",
                "--master-key-file",
                &key,
            ],
        ),
        (
            &["report", "subject"],
            vec!["--subject", &members[0], "--segment", LAPSED_VIP],
        ),
        (&["report", "compliance"], audit.to_vec()),
    ];
    for (cmd, rest) in cases {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend([
            "--actor",
            "alice",
            "--role",
            "admin",
            "--policy",
            &policy,
            "--subjects",
        ]);
        let subjects = data("subjects.csv");
        let consents = data("consents.jsonl");
        args.extend([
            subjects.as_str(),
            "--consents",
            consents.as_str(),
            "--at",
            AT,
        ]);
        args.extend(rest);
        let out = Command::new(bin()).args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let r = run_as(
        "alice",
        &["admin"],
        &["report", "ropa", "--policy", &policy],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}
