//! The bulk loaders, through the library: formats, all-or-nothing loading,
//! and one test per class of bad input with its file, line and column.

use std::io::{BufReader, Read};
use std::sync::Arc;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::load::{InputError, InputErrorKind, LoadError, LoadStats, Loader, Stage};
use privseg::policy::Policy;
use privseg::store::Value;
use privseg::timestamp::parse_date;
use privseg::{Actor, Engine, Timestamp};

mod common;
use common::{At, with_test_clock};

const POLICY: &str = include_str!("../examples/data/policy.json");
const HEADER: &str =
    "id,jurisdiction,birth_date,verified_at,country,total_spend,last_order,newsletter";
const SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";

fn policy() -> Arc<Policy> {
    Arc::new(Policy::from_json(POLICY).unwrap())
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// An actor holding every permission of the sample policy.
fn admin() -> Actor {
    Actor::new("test-admin", &["admin"])
}

fn load(subjects: &str, events: &str) -> Result<(Engine, LoadStats), LoadError> {
    Loader::new(policy(), admin())
        .subjects("s.csv", subjects.as_bytes())?
        .events("e.jsonl", events.as_bytes())?
        .finish()
        .map(|(e, stats)| (with_test_clock(e), stats))
}

fn grant(subject: &str, at: &str) -> String {
    format!(
        r#"{{"subject":"{subject}","kind":"consent_granted","purpose":"marketing.email","at":"{at}","notice_version":"v3","notice_sha256":"{SHA}","channel":"web","collector":"form"}}"#
    )
}

fn plain(subject: &str, kind: &str, purpose: Option<&str>, at: &str) -> String {
    let p = purpose.map_or(String::new(), |p| format!(r#""purpose":"{p}","#));
    format!(
        r#"{{"subject":"{subject}","kind":"{kind}",{p}"at":"{at}","channel":"web","collector":"form"}}"#
    )
}

fn input_err(r: Result<(Engine, LoadStats), LoadError>) -> InputError {
    match r {
        Err(LoadError::Input(e)) => e,
        Err(other) => panic!("expected an input error, got {other}"),
        Ok(_) => panic!("expected an input error, got a loaded engine"),
    }
}

fn subjects_err(rows: &str) -> InputError {
    input_err(load(&format!("{HEADER}\n{rows}"), ""))
}

fn events_err(events: &str) -> InputError {
    let subjects = format!("{HEADER}\nc-1,EU-FR,1980-01-01,2026-01-01T00:00:00Z,FR,10,,\n");
    input_err(load(&subjects, events))
}

#[test]
fn loads_values_dates_and_events_as_the_api_would() {
    let subjects = format!(
        "{HEADER}\n\
         c-1,EU-FR,1980-05-01,2026-01-02T03:04:05Z,FR,1200,2026-01-01T00:00:00Z,true\n\
         c-2,US-CA,,2026-01-02T00:00:00+01:00,US,,,false\n\
         c-3,EU-DE,1999-12-31,,,,,\n"
    );
    let events = [
        grant("c-1", "2026-02-01T00:00:00Z"),
        plain("c-2", "gpc", None, "2026-02-02T00:00:00Z"),
    ]
    .join("\n");
    let (engine, stats) = load(&subjects, &events).unwrap();
    assert_eq!(stats.subjects, 3);
    assert_eq!(stats.values, 6);
    assert_eq!(stats.events, 2);
    assert_eq!(stats.subject_bytes, subjects.len() as u64);
    assert_eq!(stats.event_bytes, events.len() as u64);
    assert_eq!(engine.subject_count(), 3);

    let verified = t("2026-01-02T03:04:05Z");
    assert_eq!(
        engine.attribute(&admin(), "c-1", "country").unwrap(),
        Some((Value::Str("FR".into()), verified))
    );
    assert_eq!(
        engine.attribute(&admin(), "c-1", "total_spend").unwrap(),
        Some((Value::Int(1200), verified))
    );
    assert_eq!(
        engine.attribute(&admin(), "c-1", "last_order").unwrap(),
        Some((Value::Str("2026-01-01T00:00:00Z".into()), verified))
    );
    assert_eq!(
        engine.attribute(&admin(), "c-1", "newsletter").unwrap(),
        Some((Value::Bool(true), verified))
    );
    // An empty cell is a missing value; offsets are taken into account.
    assert_eq!(
        engine.attribute(&admin(), "c-2", "total_spend").unwrap(),
        None
    );
    assert_eq!(
        engine.attribute(&admin(), "c-2", "newsletter").unwrap(),
        Some((Value::Bool(false), t("2026-01-01T23:00:00Z")))
    );
    assert_eq!(engine.attribute(&admin(), "c-3", "country").unwrap(), None);

    let mut expected = ConsentEvent::grant(
        "c-1",
        "marketing.email",
        t("2026-02-01T00:00:00Z"),
        "v3",
        SHA,
    );
    expected.channel = "web".into();
    expected.collector = "form".into();
    assert_eq!(engine.history(&admin(), "c-1").unwrap(), vec![expected]);
    assert_eq!(
        engine.history(&admin(), "c-2").unwrap()[0].kind,
        EventKind::Gpc
    );
    assert!(engine.history(&admin(), "c-3").unwrap().is_empty());

    // Birth dates reach the age gate: c-3 is a minor in EU-DE, whose
    // consent does not count without a parent's.
    let events = grant("c-3", "2026-02-01T00:00:00Z");
    let subjects = subjects.replace("1999-12-31", "2014-12-31");
    let (engine, _) = load(&subjects, &events).unwrap();
    let mut reference = with_test_clock(Engine::new(policy()));
    reference
        .add_subject(
            &admin(),
            "c-3",
            "EU-DE",
            Some(parse_date("2014-12-31").unwrap()),
        )
        .unwrap();
    let mut g = ConsentEvent::grant(
        "c-3",
        "marketing.email",
        t("2026-02-01T00:00:00Z"),
        "v3",
        SHA,
    );
    g.channel = "web".into();
    reference.record(&admin(), &g).unwrap();
    let at = t("2026-03-01T00:00:00Z");
    let got = engine
        .eligibility_at(&admin(), "c-3", "marketing.email", at)
        .unwrap();
    assert!(!got.is_allowed(), "{got:?}");
    assert_eq!(
        got,
        reference
            .eligibility_at(&admin(), "c-3", "marketing.email", at)
            .unwrap()
    );
}

#[test]
fn columns_in_any_order_and_rfc4180_quoting() {
    // Quoted fields, doubled quotes and a comma inside quotes.
    let subjects = "newsletter,last_order,total_spend,country,verified_at,birth_date,jurisdiction,id\n\
                    ,,5,FR,2026-01-01T00:00:00Z,,EU-FR,\"c,1\"\n\
                    true,,7,\"DE\",2026-01-01T00:00:00Z,,EU-DE,\"c \"\"two\"\"\"\n\
                    \"\",,,,,,\"US-CA\",c-3\n";
    let (engine, _) = load(subjects, "").unwrap();
    assert_eq!(engine.subject_count(), 3);
    assert_eq!(
        engine
            .attribute(&admin(), "c,1", "total_spend")
            .unwrap()
            .unwrap()
            .0,
        Value::Int(5)
    );
    assert_eq!(
        engine
            .attribute(&admin(), "c \"two\"", "country")
            .unwrap()
            .unwrap()
            .0,
        Value::Str("DE".into())
    );
    assert_eq!(
        engine
            .attribute(&admin(), "c \"two\"", "newsletter")
            .unwrap()
            .unwrap()
            .0,
        Value::Bool(true)
    );
    // Member ids come back in the order of the file.
    let seg = engine
        .compile(
            &admin(),
            r#"segment "all" for analytics.product where true"#,
        )
        .unwrap();
    let ids: Vec<String> = engine.ids_at(&admin(), &seg, t("2026-01-02T00:00:00Z"));
    assert_eq!(ids, vec!["c,1", "c \"two\"", "c-3"]);

    // A record spanning lines is reported at the line where it starts, and
    // the lines after it are counted right.
    let e = subjects_err("c-1,EU-FR,,,,,,\n\"c-\n2\",EU-FR,,,,,,\n");
    assert_eq!((e.kind, e.line), (InputErrorKind::Id, 3));
    let e = subjects_err("c-1,EU-FR,\"\n\",,,,,\nc-2,EU-FR,,,,,,\n");
    assert_eq!((e.kind, e.line), (InputErrorKind::Date, 2));
    let e = subjects_err("c-1,EU-FR,,,,,,\"\n\"\nc-2,EU-FR,,,,,,x\n");
    assert_eq!((e.kind, e.line), (InputErrorKind::Time, 2));
    let e = subjects_err(
        "c-1,EU-FR,,2026-01-01T00:00:00Z,,,,\"\"\nc-2,EU-FR,,2026-01-01T00:00:00Z,,,,\"\nx\"\nc-3,EU-FR,,,,,,\nc-4,EU-FR,,,,,,maybe\n",
    );
    assert_eq!((e.kind, e.line), (InputErrorKind::Value, 3));
}

#[test]
fn events_apply_by_time_not_by_file_order() {
    let subjects = format!(
        "{HEADER}\n\
         a,EU-FR,1980-01-01,2026-01-01T00:00:00Z,FR,10,,\n\
         b,EU-FR,1980-01-01,2026-01-01T00:00:00Z,FR,10,,\n"
    );
    // `a`: withdrawn after the grant, but listed first. `b`: granted again later.
    let events = [
        plain(
            "a",
            "consent_withdrawn",
            Some("marketing.email"),
            "2026-03-01T00:00:00Z",
        ),
        grant("a", "2026-02-01T00:00:00Z"),
        grant("b", "2026-04-01T00:00:00Z"),
        plain(
            "b",
            "consent_withdrawn",
            Some("marketing.email"),
            "2026-03-01T00:00:00Z",
        ),
        grant("b", "2026-02-01T00:00:00Z"),
    ];
    let (engine, _) = load(&subjects, &events.join("\n")).unwrap();
    let seg = engine
        .compile(
            &admin(),
            r#"segment "fr" for marketing.email where country = "FR""#,
        )
        .unwrap();
    let members = |at: &str| -> Vec<String> { engine.ids_at(&admin(), &seg, t(at)) };
    assert_eq!(members("2026-02-15T00:00:00Z"), vec!["a", "b"]);
    assert_eq!(members("2026-03-15T00:00:00Z"), Vec::<String>::new());
    assert_eq!(members("2026-04-15T00:00:00Z"), vec!["b"]);

    // The same events through the API, in time order, give the same histories.
    let mut sorted = events.to_vec();
    sorted.sort_by_key(|l| {
        let e: ConsentEvent = serde_json::from_str(l).unwrap();
        e.at
    });
    let (again, _) = load(&subjects, &sorted.join("\n")).unwrap();
    for id in ["a", "b"] {
        let strip = |h: Vec<ConsentEvent>| -> Vec<(Timestamp, EventKind)> {
            h.into_iter().map(|e| (e.at, e.kind)).collect()
        };
        assert_eq!(
            strip(engine.history(&admin(), id).unwrap()),
            strip(again.history(&admin(), id).unwrap())
        );
    }
}

#[test]
fn the_sample_data_loads_and_matches_its_counts() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/data");
    let policy =
        Arc::new(privseg::load::read_policy(format!("{dir}/policy.json").as_ref()).unwrap());
    let (engine, stats) = privseg::load::load_files(
        policy,
        admin(),
        format!("{dir}/subjects.csv").as_ref(),
        format!("{dir}/consents.jsonl").as_ref(),
    )
    .unwrap();
    let csv_rows = std::fs::read_to_string(format!("{dir}/subjects.csv"))
        .unwrap()
        .lines()
        .count() as u64
        - 1;
    let jsonl_lines = std::fs::read_to_string(format!("{dir}/consents.jsonl"))
        .unwrap()
        .lines()
        .count() as u64;
    assert_eq!(stats.subjects, csv_rows);
    assert_eq!(stats.events, jsonl_lines);
    assert!(csv_rows >= 200, "a few hundred subjects: {csv_rows}");
    assert_eq!(engine.subject_count() as u64, csv_rows);
}

#[test]
fn small_reads_and_progress_reports() {
    let mut subjects = String::from(HEADER);
    subjects.push('\n');
    let mut events = String::new();
    for i in 0..10_000 {
        subjects.push_str(&format!(
            "c-{i},EU-FR,1980-01-01,2026-01-01T00:00:00Z,FR,{},,\n",
            i % 100
        ));
        events.push_str(&grant(&format!("c-{i}"), "2026-01-01T00:00:00Z"));
        events.push('\n');
        if i % 1000 == 0 {
            events.push('\n'); // blank lines are skipped
        }
    }
    let mut reports = Vec::new();
    let (engine, stats) = Loader::new(policy(), admin())
        .on_progress(|p| reports.push(p))
        .subjects("s.csv", BufReader::with_capacity(7, subjects.as_bytes()))
        .unwrap()
        .events("e.jsonl", BufReader::with_capacity(5, events.as_bytes()))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!((stats.subjects, stats.events), (10_000, 10_000));
    let seg = engine
        .compile(
            &admin(),
            r#"segment "s" for marketing.email where total_spend >= 50"#,
        )
        .unwrap();
    assert_eq!(
        engine
            .evaluate(&admin(), &seg, t("2026-02-01T00:00:00Z"))
            .unwrap()
            .count(),
        5_000
    );
    let last_subjects = reports
        .iter()
        .rfind(|p| p.stage == Stage::Subjects)
        .unwrap();
    assert!(last_subjects.done);
    assert_eq!(last_subjects.records, 10_000);
    assert_eq!(last_subjects.bytes, subjects.len() as u64);
    let last_events = reports.iter().rfind(|p| p.stage == Stage::Events).unwrap();
    assert_eq!((last_events.done, last_events.records), (true, 10_000));
    assert_eq!(last_events.bytes, events.len() as u64);
    // Then the import: announced, then done with every record.
    let n = reports.len();
    assert_eq!(
        (reports[n - 2].stage, reports[n - 2].done),
        (Stage::Import, false)
    );
    assert_eq!(
        (
            reports[n - 1].stage,
            reports[n - 1].done,
            reports[n - 1].records
        ),
        (Stage::Import, true, 20_000)
    );
    assert_eq!(reports[n - 1].bytes, (subjects.len() + events.len()) as u64);
    // Progress is reported along the way, not only at the end.
    assert!(reports.iter().filter(|p| !p.done).count() >= 4);
    let records: Vec<u64> = reports
        .iter()
        .filter(|p| p.stage == Stage::Events)
        .map(|p| p.records)
        .collect();
    assert!(records.windows(2).all(|w| w[0] <= w[1]));
}

/// A reader that fails after some bytes.
struct Failing(usize);
impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(b'\n');
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn read_errors_are_reported_with_the_file() {
    let r = Loader::new(policy(), admin()).events("e.jsonl", BufReader::new(Failing(100)));
    match r {
        Err(LoadError::Io { file, error }) => {
            assert_eq!(file, "e.jsonl");
            assert!(error.to_string().contains("disk on fire"));
        }
        other => panic!("{other:?}"),
    }
    let r = Loader::new(policy(), admin()).subjects_file("/nonexistent/s.csv".as_ref());
    assert!(matches!(r, Err(LoadError::Io { .. })));
    let r = privseg::load::read_policy("/nonexistent/p.json".as_ref());
    assert!(matches!(r, Err(LoadError::Io { .. })));
}

#[test]
fn a_bad_policy_file_lists_its_problems() {
    let dir = env!("CARGO_TARGET_TMPDIR");
    let path = format!("{dir}/load-bad-policy.json");
    let bad = POLICY.replace(
        "\"consent_validity_days\": 730",
        "\"consent_validity_days\": 0",
    );
    assert_ne!(bad, POLICY);
    std::fs::write(&path, bad).unwrap();
    match privseg::load::read_policy(path.as_ref()) {
        Err(LoadError::Policy { file, error }) => {
            assert_eq!(file, path);
            let paths: Vec<&str> = error.problems().iter().map(|p| p.path.as_str()).collect();
            assert_eq!(paths, vec!["$.purposes[2].consent_validity_days"]);
        }
        other => panic!("{other:?}"),
    }
}

// Each class of bad subjects input.

#[test]
fn header_problems() {
    let e = input_err(load("", ""));
    assert_eq!((e.kind, e.line), (InputErrorKind::Header, 1));

    let e = input_err(load(&format!("{HEADER},shoe_size\n"), ""));
    assert_eq!(e.kind, InputErrorKind::Header);
    assert_eq!((e.line, e.column), (1, Some(9)));
    assert_eq!(e.field.as_deref(), Some("shoe_size"));
    assert!(e.message.contains("unknown column \"shoe_size\""), "{e}");

    let e = input_err(load(&format!("{HEADER},country\n"), ""));
    assert_eq!((e.kind, e.column), (InputErrorKind::Header, Some(9)));
    assert!(e.message.contains("first as column 5"), "{e}");

    let e = input_err(load(
        "id,jurisdiction,verified_at,country,total_spend,last_order\n",
        "",
    ));
    assert_eq!(e.kind, InputErrorKind::Header);
    assert!(
        e.message.contains("missing columns birth_date, newsletter"),
        "{e}"
    );
    assert_eq!(e.to_string(), format!("s.csv:1: {}", e.message));
}

#[test]
fn row_shape_problems() {
    let e = subjects_err("c-1,EU-FR,,,,,\n");
    assert_eq!(
        (e.kind, e.line, e.column),
        (InputErrorKind::Syntax, 2, None)
    );
    assert!(
        e.message
            .contains("expected 8 fields as in the header, found 7"),
        "{e}"
    );

    let e = subjects_err("c-1,EU-FR,,,,,,\nc-2,EU-FR,,,,,,,\n");
    assert_eq!((e.kind, e.line), (InputErrorKind::Syntax, 3));

    let e = input_err(load(
        &format!("{HEADER}\nc-1,EU-FR,,,,,,\n").replace("c-1", "c-\u{1}"),
        "",
    ));
    assert_eq!((e.kind, e.column), (InputErrorKind::Id, Some(1)));

    let mut bytes = format!("{HEADER}\nc-1,EU-FR,,,,,,\n").into_bytes();
    bytes[HEADER.len() + 1] = 0xff;
    let e = match Loader::new(policy(), admin()).subjects("s.csv", &bytes[..]) {
        Err(LoadError::Input(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (e.kind, e.line, e.column),
        (InputErrorKind::Syntax, 2, Some(1))
    );
    assert!(e.message.contains("UTF-8"));
}

#[test]
fn ids_must_be_valid_and_unique() {
    let e = subjects_err("c-1,EU-FR,,,,,,\nc-2,EU-FR,,,,,,\nc-1,EU-DE,,,,,,\n");
    assert_eq!(e.kind, InputErrorKind::Id);
    assert_eq!((e.line, e.column), (4, Some(1)));
    assert_eq!(e.field.as_deref(), Some("id"));
    assert!(e.message.contains("earlier row"), "{e}");

    let e = subjects_err(",EU-FR,,,,,,\n");
    assert_eq!((e.kind, e.line), (InputErrorKind::Id, 2));
    let e = subjects_err("\" c-1\",EU-FR,,,,,,\n");
    assert_eq!(e.kind, InputErrorKind::Id);
}

#[test]
fn unknown_jurisdiction() {
    let e = subjects_err("c-1,BR,,,,,,\n");
    assert_eq!(e.kind, InputErrorKind::Jurisdiction);
    assert_eq!((e.line, e.column), (2, Some(2)));
    assert!(e.message.contains("\"BR\""), "{e}");
    assert!(e.message.contains("EU-FR"), "lists the policy's codes: {e}");
    assert_eq!(
        e.to_string(),
        format!("s.csv:2, column 2 (jurisdiction): {}", e.message)
    );
}

#[test]
fn bad_dates_and_times() {
    let e = subjects_err("c-1,EU-FR,1980-02-30,,,,,\n");
    assert_eq!(e.kind, InputErrorKind::Date);
    assert_eq!(
        (e.column, e.field.as_deref()),
        (Some(3), Some("birth_date"))
    );
    assert!(e.message.contains("YYYY-MM-DD"), "{e}");

    let e = subjects_err("c-1,EU-FR,,yesterday,FR,,,\n");
    assert_eq!(e.kind, InputErrorKind::Time);
    assert_eq!(
        (e.column, e.field.as_deref()),
        (Some(4), Some("verified_at"))
    );
    assert!(e.message.contains("RFC 3339"), "{e}");

    let e = subjects_err("c-1,EU-FR,,2026-01-01T00:00:00Z,FR,,2026-13-01,\n");
    assert_eq!(e.kind, InputErrorKind::Time);
    assert_eq!(
        (e.column, e.field.as_deref()),
        (Some(7), Some("last_order"))
    );

    // A value needs the time it was verified.
    let e = subjects_err("c-1,EU-FR,,,FR,,,\n");
    assert_eq!(e.kind, InputErrorKind::Time);
    assert_eq!(e.field.as_deref(), Some("verified_at"));
    assert!(e.message.contains("\"country\""), "{e}");
}

#[test]
fn values_outside_their_attribute() {
    let ok = "2026-01-01T00:00:00Z";
    let e = subjects_err(&format!("c-1,EU-FR,,{ok},BR,,,\n"));
    assert_eq!(e.kind, InputErrorKind::Value);
    assert_eq!((e.column, e.field.as_deref()), (Some(5), Some("country")));
    assert!(e.message.contains("\"BR\" is not a declared value"), "{e}");
    assert!(e.message.contains("FR, DE, ES, IT, US"), "{e}");

    let e = subjects_err(&format!("c-1,EU-FR,,{ok},,100001,,\n"));
    assert_eq!(e.kind, InputErrorKind::Value);
    assert_eq!(e.field.as_deref(), Some("total_spend"));
    assert!(
        e.message.contains("outside the declared bounds 0..=100000"),
        "{e}"
    );

    let e = subjects_err(&format!("c-1,EU-FR,,{ok},,12.5,,\n"));
    assert_eq!(e.kind, InputErrorKind::Value);
    assert!(e.message.contains("expected an integer"), "{e}");

    let e = subjects_err(&format!("c-1,EU-FR,,{ok},,,,yes\n"));
    assert_eq!(e.kind, InputErrorKind::Value);
    assert_eq!(
        (e.column, e.field.as_deref()),
        (Some(8), Some("newsletter"))
    );
    assert!(e.message.contains("expected true or false"), "{e}");
}

// Each class of bad events input.

#[test]
fn malformed_event_lines() {
    let e = events_err(&format!(
        "{}\n{{\"subject\": \"c-1\",",
        grant("c-1", "2026-01-01T00:00:00Z")
    ));
    assert_eq!((e.kind, e.line), (InputErrorKind::Syntax, 2));
    assert!(e.column.is_some());
    assert!(e.message.contains("malformed event"), "{e}");

    let e = events_err("\n\n[1, 2]\n");
    assert_eq!((e.kind, e.line), (InputErrorKind::Syntax, 3));

    let e = events_err(
        &grant("c-1", "2026-01-01T00:00:00Z").replace("\"channel\"", "\"colour\":1,\"channel\""),
    );
    assert_eq!(e.kind, InputErrorKind::Syntax);
    assert!(e.message.contains("unknown field `colour`"), "{e}");

    let e =
        events_err(r#"{"subject":"c-1","kind":"gpc","at":"2026-01-01T00:00:00Z","collector":"x"}"#);
    assert_eq!(e.kind, InputErrorKind::Syntax);
    assert!(e.message.contains("missing field `channel`"), "{e}");
}

#[test]
fn unknown_subject_purpose_and_kind() {
    let e = events_err(&format!(
        "{}\n{}",
        grant("c-1", "2026-01-01T00:00:00Z"),
        grant("c-9", "2026-01-01T00:00:00Z")
    ));
    assert_eq!(e.kind, InputErrorKind::UnknownSubject);
    assert_eq!((e.line, e.field.as_deref()), (2, Some("subject")));
    assert!(e.message.contains("\"c-9\""), "{e}");
    assert_eq!(
        e.to_string(),
        format!("e.jsonl:2, field `subject`: {}", e.message)
    );

    let e = events_err(&plain(
        "c-1",
        "consent_refused",
        Some("marketing.sms"),
        "2026-01-01T00:00:00Z",
    ));
    assert_eq!(e.kind, InputErrorKind::UnknownPurpose);
    assert_eq!(e.field.as_deref(), Some("purpose"));
    assert!(e.message.contains("\"marketing.sms\""), "{e}");

    let e = events_err(&plain(
        "c-1",
        "consent_given",
        Some("marketing.email"),
        "2026-01-01T00:00:00Z",
    ));
    assert_eq!(e.kind, InputErrorKind::UnknownEventKind);
    assert_eq!(e.field.as_deref(), Some("kind"));
    assert!(e.message.contains("\"consent_given\""), "{e}");
    assert!(
        e.message.contains("parental_consent"),
        "lists the kinds: {e}"
    );
}

#[test]
fn bad_event_times_and_fields() {
    let e = events_err(&plain("c-1", "gpc", None, "2026-01-01 10:00"));
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (InputErrorKind::Time, Some("at"))
    );
    assert!(e.message.contains("RFC 3339"), "{e}");

    let line = grant("c-1", "2026-01-01T00:00:00Z")
        .replace("\"channel\"", "\"expires_at\":\"soon\",\"channel\"");
    let e = events_err(&line);
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (InputErrorKind::Time, Some("expires_at"))
    );

    // A grant without its notice version (R5).
    let line = grant("c-1", "2026-01-01T00:00:00Z").replace("\"notice_version\":\"v3\",", "");
    let e = events_err(&line);
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (InputErrorKind::Event, Some("notice_version"))
    );
    assert!(e.message.starts_with("consent_granted event"), "{e}");

    // A purpose on a kind that takes none.
    let e = events_err(&plain(
        "c-1",
        "gpc",
        Some("marketing.email"),
        "2026-01-01T00:00:00Z",
    ));
    assert_eq!(
        (e.kind, e.field.as_deref()),
        (InputErrorKind::Event, Some("purpose"))
    );
}

#[test]
fn loading_is_all_or_nothing() {
    // A bad last line loses the whole load: the only way to get an engine
    // back is a loader that accepted every input.
    let mut events: Vec<String> = (0..5000)
        .map(|_| grant("c-1", "2026-01-01T00:00:00Z"))
        .collect();
    events.push(grant("nobody", "2026-01-01T00:00:00Z"));
    let e = events_err(&events.join("\n"));
    assert_eq!((e.kind, e.line), (InputErrorKind::UnknownSubject, 5001));

    let loader = Loader::new(policy(), admin())
        .subjects("s.csv", format!("{HEADER}\nc-1,EU-FR,,,,,,\n").as_bytes())
        .unwrap();
    assert_eq!(loader.stats().subjects, 1);
    let r = loader.events("e.jsonl", "{}".as_bytes());
    assert!(r.is_err());
}

#[test]
fn lines_are_counted_from_one_across_the_file() {
    let mut rows = String::new();
    for i in 0..9000 {
        rows.push_str(&format!("c-{i},EU-FR,,,,,,\n"));
    }
    rows.push_str("c-x,EU-FR,,,,,,oops\n");
    let e = subjects_err(&rows);
    assert_eq!(e.line, 9002);

    let subjects = format!("{HEADER}\nc-1,EU-FR,,,,,,\n");
    let mut events = String::new();
    for _ in 0..9000 {
        events.push_str(&plain("c-1", "gpc", None, "2026-01-01T00:00:00Z"));
        events.push_str("\r\n");
    }
    events.push_str(&plain("c-1", "gpc", None, "never"));
    let e = input_err(load(&subjects, &events));
    assert_eq!((e.line, e.kind), (9001, InputErrorKind::Time));
}

#[test]
fn one_import_one_audit_entry_and_the_actor_needs_subjects() {
    let subjects = format!("{HEADER}\nc-1,EU-FR,,,,,,\nc-2,EU-DE,,,,,,\n");
    let events = format!(
        "{}\n{}\n",
        grant("c-1", "2026-01-01T00:00:00Z"),
        grant("c-2", "2026-01-01T00:00:00Z")
    );
    let (engine, stats) = load(&subjects, &events).unwrap();
    assert_eq!((stats.subjects, stats.events), (2, 2));
    // The policy load, then the whole import.
    assert_eq!(engine.audit_len(), 2);

    let marketer = Actor::new("ann", &["marketer"]);
    let r = Loader::new(policy(), marketer)
        .subjects("s.csv", subjects.as_bytes())
        .unwrap()
        .events("e.jsonl", events.as_bytes())
        .unwrap()
        .finish();
    match r {
        Err(LoadError::Refused(e)) => assert_eq!(
            e.to_string(),
            "access refused: actor \"ann\" lacks permission subjects"
        ),
        other => panic!("expected an access refusal, got {other:?}"),
    }
}

#[test]
fn engine_checks_are_traced_to_their_file_and_line() {
    // Two subject files: the repeated id is on line 3 of the second.
    let first = format!("{HEADER}\nc-1,EU-FR,,,,,,\n");
    let second = format!("{HEADER}\nc-2,EU-FR,,,,,,\nc-1,EU-DE,,,,,,\n");
    let e = match Loader::new(policy(), admin())
        .subjects("a.csv", first.as_bytes())
        .unwrap()
        .subjects("b.csv", second.as_bytes())
        .unwrap()
        .finish()
    {
        Err(LoadError::Input(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (e.file.as_str(), e.line, e.kind),
        ("b.csv", 3, InputErrorKind::Id)
    );

    // An event for an unknown subject on line 2 of the second events file.
    let e = match Loader::new(policy(), admin())
        .subjects("s.csv", first.as_bytes())
        .unwrap()
        .events("a.jsonl", grant("c-1", "2026-01-01T00:00:00Z").as_bytes())
        .unwrap()
        .events(
            "b.jsonl",
            format!("\n{}\n", grant("c-7", "2026-01-01T00:00:00Z")).as_bytes(),
        )
        .unwrap()
        .finish()
    {
        Err(LoadError::Input(e)) => e,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        (e.file.as_str(), e.line, e.kind),
        ("b.jsonl", 2, InputErrorKind::UnknownSubject)
    );
}
