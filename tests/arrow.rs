//! Arrow and Parquet inputs against the CSV and JSON Lines ones: for random
//! data (in any batch sizes, with typed or text columns) the same engine,
//! and for a bad input the same error at the same row and column, with
//! nothing loaded.
#![cfg(feature = "arrow")]

use std::sync::Arc;

use privseg::audit::{AuditLog, AuditPseudonymizer, AuditSink, MemorySink};
use privseg::consent::{ConsentEvent, EventKind};
use privseg::load::arrow::arrow_array::builder::{Int32Builder, StringBuilder};
use privseg::load::arrow::arrow_array::{ArrayRef, RecordBatch};
use privseg::load::arrow::arrow_schema::{DataType, Field, Schema, TimeUnit};
use privseg::load::{InputError, InputErrorKind, LoadError, Loader};
use privseg::policy::Policy;
use privseg::store::{KeyProvider, StaticKek};
use privseg::{Actor, Engine, Timestamp};
use proptest::prelude::*;

#[path = "../examples/arrow_load/convert.rs"]
#[allow(dead_code)]
mod convert;

const POLICY: &str = include_str!("../examples/data/policy.json");
const SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
const ATTRS: [&str; 4] = ["country", "total_spend", "last_order", "newsletter"];
const JURIS: [&str; 4] = ["EU-FR", "EU-DE", "US-CA", "EU"];
const COUNTRIES: [&str; 5] = ["FR", "DE", "ES", "IT", "US"];
const HEADER: &str =
    "id,jurisdiction,birth_date,verified_at,country,total_spend,last_order,newsletter";

fn policy() -> Arc<Policy> {
    Arc::new(Policy::from_json(POLICY).unwrap())
}

fn admin() -> Actor {
    Actor::new("test-admin", &["admin"])
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

fn day(d: u32) -> String {
    Timestamp::from_unix(t("2025-01-01T12:00:00Z").unix() + i64::from(d) * 86_400).to_string()
}

#[derive(Clone, Debug)]
struct Subject {
    id: String,
    juris: usize,
    birth: Option<u32>,
    country: Option<usize>,
    spend: Option<i64>,
    last: Option<u32>,
    news: Option<bool>,
}

#[derive(Clone, Debug)]
struct Event {
    subject: usize,
    kind: u8,
    day: u32,
    channel: u8,
    expires: Option<u32>,
}

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_row(s: &Subject) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    let any = s.country.is_some() || s.spend.is_some() || s.last.is_some() || s.news.is_some();
    format!(
        "{},{},{},{},{},{},{},{}",
        field(&s.id),
        JURIS[s.juris],
        opt(s.birth.map(|d| privseg::timestamp::format_date(
            Timestamp::from_unix(d as i64 * 86_400 * 10).date()
        ))),
        if any { day(0) } else { String::new() },
        opt(s.country.map(|c| COUNTRIES[c].to_string())),
        opt(s.spend.map(|v| v.to_string())),
        opt(s.last.map(day)),
        opt(s.news.map(|b| b.to_string())),
    )
}

fn consent_event(subjects: &[Subject], e: &Event) -> ConsentEvent {
    let (kind, purpose) = match e.kind {
        0 => (
            EventKind::ConsentGranted,
            Some("marketing.email".to_string()),
        ),
        1 => (
            EventKind::ConsentWithdrawn,
            Some("marketing.email".to_string()),
        ),
        _ => (EventKind::Gpc, None),
    };
    let grant = kind == EventKind::ConsentGranted;
    ConsentEvent {
        subject: subjects[e.subject].id.clone(),
        kind,
        purpose,
        at: t(&day(e.day)),
        notice_version: grant.then(|| "v3".to_string()),
        notice_sha256: grant.then(|| SHA.to_string()),
        channel: ["web", "app", "phone"][e.channel as usize].to_string(),
        collector: format!("form-{}", e.channel),
        expires_at: e.expires.filter(|_| grant).map(|x| t(&day(e.day + 1 + x))),
        explicit: grant && e.channel == 1,
        evidence_sha256: (e.channel == 2).then(|| SHA.to_string()),
    }
}

fn files(subjects: &[Subject], events: &[Event]) -> (String, String) {
    let mut csv = format!("{HEADER}\n");
    for s in subjects {
        csv.push_str(&csv_row(s));
        csv.push('\n');
    }
    let mut jsonl = String::new();
    for e in events {
        jsonl.push_str(&serde_json::to_string(&consent_event(subjects, e)).unwrap());
        jsonl.push('\n');
    }
    (csv, jsonl)
}

fn load_text(csv: &str, jsonl: &str) -> Result<Engine, LoadError> {
    Loader::new(policy(), admin())
        .subjects("s.csv", csv.as_bytes())?
        .events("e.jsonl", jsonl.as_bytes())?
        .finish()
        .map(|(e, _)| e)
}

fn load_arrow(subjects: Vec<RecordBatch>, events: Vec<RecordBatch>) -> Result<Engine, LoadError> {
    Loader::new(policy(), admin())
        .subjects_arrow("s.arrow", subjects)?
        .events_arrow("e.arrow", events)?
        .finish()
        .map(|(e, _)| e)
}

fn batches(
    csv: &str,
    jsonl: &str,
    typed: bool,
    rows: usize,
) -> (Vec<RecordBatch>, Vec<RecordBatch>) {
    (
        convert::subjects(&policy(), csv.as_bytes(), typed, rows).unwrap(),
        convert::events(jsonl.as_bytes(), typed, rows).unwrap(),
    )
}

/// Everything observable of the subjects: values, histories, the members
/// of a few segments, and the audit entry of the load.
fn observe(engine: &Engine, subjects: &[Subject]) -> Vec<String> {
    let a = admin();
    let mut out = vec![format!("{} subjects", engine.subject_count())];
    for s in subjects {
        for attr in ATTRS {
            out.push(format!(
                "{} {attr} {:?}",
                s.id,
                engine.attribute(&a, &s.id, attr).unwrap()
            ));
        }
        out.push(format!("{} {:?}", s.id, engine.history(&a, &s.id).unwrap()));
    }
    let at = t("2026-06-01T00:00:00Z");
    for text in [
        r#"segment "a" for analytics.product where true"#,
        r#"segment "b" for marketing.email where total_spend >= 500 and country in ("FR", "DE")"#,
        r#"segment "c" for marketing.email where last_order < now - 30d or newsletter = true"#,
    ] {
        let seg = engine.compile(&a, text).unwrap();
        let members = engine.evaluate(&a, &seg, at).unwrap();
        out.push(format!(
            "{text}: {:?}",
            engine.member_ids(&a, &members).unwrap()
        ));
    }
    out
}

fn id_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => "[a-z]{1,3}-[0-9]{1,4}",
        1 => "[a-z]{1,2},[0-9]{1,2}",
        1 => "[a-z]{1,2}\"[0-9]{1,2}",
    ]
}

fn data() -> impl Strategy<Value = (Vec<Subject>, Vec<Event>)> {
    let subject = (
        id_strategy(),
        0..JURIS.len(),
        proptest::option::of(500u32..1500),
        proptest::option::of(0..COUNTRIES.len()),
        proptest::option::of(0i64..100_000),
        proptest::option::of(0u32..500),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(id, juris, birth, country, spend, last, news)| Subject {
            id,
            juris,
            birth,
            country,
            spend,
            last,
            news,
        });
    proptest::collection::vec(subject, 1..60)
        .prop_map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|s| seen.insert(s.id.clone()));
            v
        })
        .prop_flat_map(|subjects| {
            let n = subjects.len();
            let event = (
                0..n,
                0u8..3,
                0u32..500,
                0u8..3,
                proptest::option::of(0u32..400),
            )
                .prop_map(|(subject, kind, day, channel, expires)| Event {
                    subject,
                    kind,
                    day,
                    channel,
                    expires,
                });
            (Just(subjects), proptest::collection::vec(event, 0..90))
        })
}

fn input_error(r: Result<Engine, LoadError>) -> InputError {
    match r {
        Err(LoadError::Input(e)) => e,
        Err(other) => panic!("expected an input error, got {other}"),
        Ok(_) => panic!("expected an input error, got an engine"),
    }
}

/// The error, with the row of the CSV error made an Arrow row (the header
/// line is not a row) and the file names made the same.
fn as_arrow_error(mut e: InputError) -> InputError {
    e.line -= 1;
    e.file = e
        .file
        .replace("s.csv", "s.arrow")
        .replace("e.jsonl", "e.arrow");
    e
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arrow_loads_equal_the_csv_load(
        (subjects, events) in data(),
        rows in 1usize..40,
        typed in any::<bool>(),
    ) {
        let (csv, jsonl) = files(&subjects, &events);
        let reference = observe(&load_text(&csv, &jsonl).unwrap(), &subjects);
        let (s, e) = batches(&csv, &jsonl, typed, rows);
        let engine = load_arrow(s, e).unwrap();
        prop_assert_eq!(observe(&engine, &subjects), reference);
    }

    #[test]
    fn a_bad_row_gives_the_csv_error_at_its_row(
        (subjects, events) in data(),
        rows in 1usize..40,
        at in any::<prop::sample::Index>(),
        kind in 0u8..7,
    ) {
        let (csv, jsonl) = files(&subjects, &events);
        let mut lines: Vec<String> = csv.lines().map(String::from).collect();
        let k = 1 + at.index(lines.len());
        let bad = match kind {
            0 => "x-1,EU-XX,,,,,,".to_string(),
            1 => "x-2,EU-FR,1990-13-01,,,,,".into(),
            2 => format!("x-3,EU-FR,,{},,100001,,", day(0)),
            3 => format!("{},EU-FR,,,,,,", field(&subjects[0].id)),
            4 => format!("x-5,EU-FR,,{},,,,maybe", day(0)),
            5 => "x-6,EU-FR,,,XX,,,".into(),
            _ => format!("x-7,EU-FR,,{},,,yesterday,", day(0)),
        };
        lines.insert(k, bad);
        let bad_csv = lines.join("\n") + "\n";
        let expected = as_arrow_error(input_error(load_text(&bad_csv, &jsonl)));
        // Text columns carry every bad cell as it is.
        let (s, e) = batches(&bad_csv, &jsonl, false, rows);
        prop_assert_eq!(input_error(load_arrow(s, e)), expected.clone());
        // So do typed columns, for what they can hold (an integer out of
        // bounds, a repeated id, an unknown jurisdiction or value).
        if matches!(kind, 0 | 2 | 3 | 5) {
            let (s, e) = batches(&bad_csv, &jsonl, true, rows);
            prop_assert_eq!(input_error(load_arrow(s, e)), expected);
        }
    }

    #[test]
    fn a_bad_event_gives_the_jsonl_error_at_its_row(
        (subjects, events) in data(),
        rows in 1usize..40,
        at in any::<prop::sample::Index>(),
        kind in 0u8..4,
        typed in any::<bool>(),
    ) {
        let (csv, jsonl) = files(&subjects, &events);
        let mut lines: Vec<String> = jsonl.lines().map(String::from).collect();
        let k = at.index(lines.len() + 1);
        let good = consent_event(&subjects, &Event { subject: 0, kind: 2, day: 1, channel: 0, expires: None });
        let bad = match kind {
            0 => serde_json::to_string(&ConsentEvent { subject: "nobody".into(), ..good }).unwrap(),
            1 => serde_json::to_string(&ConsentEvent { purpose: Some("nothing".into()), ..good }).unwrap(),
            2 => serde_json::to_string(&good).unwrap().replace("\"gpc\"", "\"maybe\""),
            _ => serde_json::to_string(&ConsentEvent { channel: String::new(), ..good }).unwrap(),
        };
        lines.insert(k, bad);
        let bad_jsonl = lines.join("\n") + "\n";
        let mut expected = input_error(load_text(&csv, &bad_jsonl));
        expected.file = "e.arrow".into();
        let (s, e) = batches(&csv, &bad_jsonl, typed, rows);
        let got = input_error(load_arrow(s, e));
        prop_assert_eq!(got, expected);
    }
}

/// The sample data, as CSV/JSONL and as Parquet files written here.
#[test]
fn parquet_files_load_as_the_csv_files() {
    let dir = std::env::temp_dir().join(format!("privseg-arrow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let csv = include_str!("../examples/data/subjects.csv");
    let jsonl = include_str!("../examples/data/consents.jsonl");
    let (s, e) = batches(csv, jsonl, true, 50);
    convert::write_parquet(&dir.join("s.parquet"), &s).unwrap();
    convert::write_parquet(&dir.join("e.parquet"), &e).unwrap();
    // Engines with the same audit key, so that the import entries' keyed
    // digests can be compared.
    let keyed = || {
        let log = AuditLog::open(
            Box::new(MemorySink::new()) as Box<dyn AuditSink + Send>,
            &[7; 32],
        )
        .unwrap();
        let ids = AuditPseudonymizer::new(&[7; 32]).unwrap();
        Engine::with_audit(policy(), log, ids).unwrap()
    };
    let (from_csv, csv_stats) = Loader::with_engine(keyed(), admin())
        .subjects("s.csv", csv.as_bytes())
        .and_then(|l| l.events("e.jsonl", jsonl.as_bytes()))
        .and_then(|l| l.finish())
        .unwrap();
    let (from_pq, pq_stats) = Loader::with_engine(keyed(), admin())
        .subjects_parquet(&dir.join("s.parquet"))
        .and_then(|l| l.events_parquet(&dir.join("e.parquet")))
        .and_then(|l| l.finish())
        .unwrap();
    assert_eq!(
        (pq_stats.subjects, pq_stats.values, pq_stats.events),
        (csv_stats.subjects, csv_stats.values, csv_stats.events)
    );
    assert!(csv_stats.subjects > 100 && csv_stats.events > 100);
    let ids: Vec<Subject> = csv
        .lines()
        .skip(1)
        .map(|l| Subject {
            id: l.split(',').next().unwrap().to_string(),
            juris: 0,
            birth: None,
            country: None,
            spend: None,
            last: None,
            news: None,
        })
        .collect();
    assert_eq!(observe(&from_pq, &ids), observe(&from_csv, &ids));
    // The same audit entries: one import with the same counts and digest.
    let details = |e: &Engine| {
        let entries = e
            .with_audit_log(&admin(), |log| log.entries().unwrap())
            .unwrap();
        entries.into_iter().map(|x| x.details).collect::<Vec<_>>()
    };
    let (a, b) = (details(&from_pq), details(&from_csv));
    assert!(a.iter().any(|d| d.contains_key("import_mac")));
    assert_eq!(a, b);
    std::fs::remove_dir_all(&dir).ok();
}

fn kek() -> Arc<dyn KeyProvider> {
    Arc::new(StaticKek::new("k1", &[1; 32]).unwrap())
}

fn one_column(name: &str, array: ArrayRef) -> RecordBatch {
    let schema = Schema::new(vec![Field::new(name, array.data_type().clone(), true)]);
    RecordBatch::try_new(Arc::new(schema), vec![array]).unwrap()
}

/// Replaces (or adds) one column of a batch.
fn with_column(b: &RecordBatch, name: &str, array: ArrayRef) -> RecordBatch {
    let mut fields: Vec<Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    let mut columns = b.columns().to_vec();
    let f = Field::new(name, array.data_type().clone(), true);
    match fields.iter().position(|f| f.name() == name) {
        Some(i) => {
            fields[i] = f;
            columns[i] = array;
        }
        None => {
            fields.push(f);
            columns.push(array);
        }
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

/// Bad schemas and bad cells of each kind: the error names the column (and
/// its expected types), the CSV error where there is one, and a durable
/// store that the failed load was given is left as it was.
#[test]
fn bad_inputs_are_refused_whole_with_the_csv_error() {
    let csv = format!(
        "{HEADER}\nc-1,EU-FR,1990-01-01,{},FR,10,,true\nc-2,EU-DE,,,,,,\n",
        day(0)
    );
    let jsonl = format!(
        "{0}\n{0}\n",
        serde_json::to_string(&ConsentEvent {
            subject: "c-1".into(),
            kind: EventKind::Gpc,
            purpose: None,
            at: t(&day(1)),
            notice_version: None,
            notice_sha256: None,
            channel: "web".into(),
            collector: "form".into(),
            expires_at: None,
            explicit: false,
            evidence_sha256: None,
        })
        .unwrap()
    );
    let (s, e) = batches(&csv, &jsonl, true, 10);
    let (s, e) = (s[0].clone(), e[0].clone());
    let mut ints = Int32Builder::new();
    ints.append_value(3);
    ints.append_null();
    let ints: ArrayRef = Arc::new(ints.finish());
    let mut texts = StringBuilder::new();
    texts.append_value("x");
    texts.append_value("y");
    let texts: ArrayRef = Arc::new(texts.finish());
    let naive = one_column(
        "verified_at",
        convert::Kind::Seconds.array(&[None, None]).unwrap(),
    );
    let naive = naive
        .column(0)
        .to_data()
        .into_builder()
        .data_type(DataType::Timestamp(TimeUnit::Second, None))
        .build()
        .unwrap();
    let naive: ArrayRef = privseg::load::arrow::arrow_array::make_array(naive);

    // (subject batch, event batch, expected kind, field, message start)
    let cases: Vec<(RecordBatch, RecordBatch, InputErrorKind, &str, &str, u64)> = vec![
        (
            with_column(&s, "country", ints.clone()),
            e.clone(),
            InputErrorKind::Header,
            "country",
            "column \"country\" has type Int32: expected Utf8 or LargeUtf8",
            0,
        ),
        (
            with_column(&s, "verified_at", naive),
            e.clone(),
            InputErrorKind::Header,
            "verified_at",
            "column \"verified_at\" has type Timestamp(s): expected Timestamp (any unit, with a time zone) or Utf8 (RFC 3339)",
            0,
        ),
        (
            with_column(&s, "newsletter", texts.clone()),
            e.clone(),
            InputErrorKind::Value,
            "newsletter",
            "expected true or false, got \"x\"",
            1,
        ),
        (
            with_column(&s, "shoe_size", ints.clone()),
            e.clone(),
            InputErrorKind::Header,
            "shoe_size",
            "unknown column \"shoe_size\": expected id, jurisdiction, birth_date, verified_at or a policy attribute",
            0,
        ),
        (
            s.clone(),
            with_column(&e, "at", ints.clone()),
            InputErrorKind::Header,
            "at",
            "column \"at\" has type Int32: expected Timestamp",
            0,
        ),
        (
            s.clone(),
            with_column(&e, "colour", texts.clone()),
            InputErrorKind::Header,
            "colour",
            "unknown column \"colour\": expected an event field",
            0,
        ),
    ];
    for (i, (subjects, events, kind, field, message, line)) in cases.into_iter().enumerate() {
        let dir =
            std::env::temp_dir().join(format!("privseg-arrow-bad-{}-{i}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let engine = Engine::create(&dir, policy(), kek()).unwrap();
        let r = Loader::with_engine(engine, admin())
            .subjects_arrow("s.arrow", [subjects])
            .and_then(|l| l.events_arrow("e.arrow", [events]))
            .and_then(|l| l.finish());
        let err = input_error(r.map(|(e, _)| e));
        assert_eq!(
            (err.kind, err.field.as_deref(), err.line),
            (kind, Some(field), line),
            "{err}"
        );
        assert!(err.message.starts_with(message), "{err}");
        let reopened = Engine::open(&dir, policy(), kek()).unwrap();
        assert_eq!(reopened.subject_count(), 0);
        std::fs::remove_dir_all(&dir).ok();
    }
    // An unknown column is the CSV error, at the schema.
    let csv_err = input_error(load_text(
        &csv.replacen("newsletter", "shoe_size", 1),
        &jsonl,
    ));
    let arrow_err = input_error(load_arrow(
        vec![
            with_column(&s, "newsletter", texts.clone())
                .project(&[0, 1, 2, 3, 4, 5, 6])
                .map(|b| with_column(&b, "shoe_size", texts.clone()))
                .unwrap(),
        ],
        vec![e.clone()],
    ));
    assert_eq!(arrow_err.message, csv_err.message);
    assert_eq!(
        (arrow_err.column, arrow_err.field),
        (csv_err.column, csv_err.field)
    );
    // A null in a required event field.
    let mut subject = StringBuilder::new();
    subject.append_null();
    subject.append_value("c-1");
    let err = input_error(load_arrow(
        vec![s.clone()],
        vec![with_column(&e, "subject", Arc::new(subject.finish()))],
    ));
    assert_eq!(
        (err.kind, err.field.as_deref(), err.line),
        (InputErrorKind::Event, Some("subject"), 1)
    );
}

/// A missing column is a schema error, for subjects as in CSV, and for
/// a required event field.
#[test]
fn missing_columns_are_schema_errors() {
    let csv = format!("{HEADER}\nc-1,EU-FR,,,,,,\n");
    let jsonl = format!(
        "{{\"subject\":\"c-1\",\"kind\":\"gpc\",\"at\":\"{}\",\"channel\":\"web\",\"collector\":\"f\"}}\n",
        day(1)
    );
    let (s, e) = batches(&csv, &jsonl, true, 10);
    let (s, e) = (s[0].clone(), e[0].clone());
    let without = |b: &RecordBatch, name: &str| {
        let keep: Vec<usize> = (0..b.num_columns())
            .filter(|&i| b.schema().field(i).name() != name)
            .collect();
        b.project(&keep).unwrap()
    };
    let csv_err = input_error(load_text(
        &csv.replacen(",newsletter", "", 1).replace(",,\n", ",\n"),
        &jsonl,
    ));
    let err = input_error(load_arrow(vec![without(&s, "newsletter")], vec![e.clone()]));
    assert_eq!(
        (err.kind, err.line, &err.message),
        (InputErrorKind::Header, 0, &csv_err.message)
    );
    let err = input_error(load_arrow(vec![s.clone()], vec![without(&e, "channel")]));
    assert_eq!((err.kind, err.line), (InputErrorKind::Header, 0), "{err}");
    assert!(err.message.starts_with("missing column channel"), "{err}");
    // Optional event fields may be left out.
    let engine = load_arrow(vec![s.clone()], vec![without(&e, "purpose")]).unwrap();
    assert_eq!(engine.history(&admin(), "c-1").unwrap().len(), 1);
}

/// Every batch has the first batch's schema; rows are counted across
/// batches.
#[test]
fn batches_share_one_schema_and_count_rows_across() {
    let csv = format!("{HEADER}\nc-1,EU-FR,,,,,,\nc-2,EU-FR,,,,,,\nc-3,EU-XX,,,,,,\n");
    let typed = convert::subjects(&policy(), csv.as_bytes(), true, 2).unwrap();
    let text = convert::subjects(&policy(), csv.as_bytes(), false, 2).unwrap();
    let err = input_error(load_arrow(vec![typed[0].clone(), text[1].clone()], vec![]));
    assert_eq!((err.kind, err.line), (InputErrorKind::Header, 3), "{err}");
    assert!(err.message.contains("schema differs"), "{err}");
    let err = input_error(load_arrow(typed, vec![]));
    assert_eq!(
        (err.kind, err.line, err.field.as_deref()),
        (InputErrorKind::Jurisdiction, 3, Some("jurisdiction"))
    );
}

/// Dictionary-encoded text columns (as categorical columns often come)
/// load as plain text ones.
#[test]
fn dictionary_text_columns_load_as_text() {
    use privseg::load::arrow::arrow_array::DictionaryArray;
    use privseg::load::arrow::arrow_array::cast::AsArray;
    use privseg::load::arrow::arrow_array::types::Int8Type;
    let csv = include_str!("../examples/data/subjects.csv");
    let jsonl = include_str!("../examples/data/consents.jsonl");
    let (s, e) = batches(csv, jsonl, true, 100);
    let dict = |b: &RecordBatch, name: &str| {
        let i = b.schema().index_of(name).unwrap();
        let text = b.column(i).as_string::<i32>();
        let d: DictionaryArray<Int8Type> = text.iter().collect();
        with_column(b, name, Arc::new(d))
    };
    let s2: Vec<RecordBatch> = s
        .iter()
        .map(|b| dict(&dict(b, "country"), "jurisdiction"))
        .collect();
    let e2: Vec<RecordBatch> = e.iter().map(|b| dict(b, "kind")).collect();
    assert!(matches!(
        s2[0]
            .schema()
            .field_with_name("country")
            .unwrap()
            .data_type(),
        DataType::Dictionary(..)
    ));
    let ids: Vec<Subject> = csv
        .lines()
        .skip(1)
        .map(|l| Subject {
            id: l.split(',').next().unwrap().to_string(),
            juris: 0,
            birth: None,
            country: None,
            spend: None,
            last: None,
            news: None,
        })
        .collect();
    let plain = load_arrow(s, e).unwrap();
    let encoded = load_arrow(s2, e2).unwrap();
    assert_eq!(observe(&encoded, &ids), observe(&plain, &ids));
}
