//! The chunked, parallel loader against the row-by-row import: for random
//! inputs and chunk sizes, the same engine (ids, values, events,
//! evaluations), and for a bad row or line anywhere (at a chunk boundary
//! or not) the same error, at its file and line.

use std::sync::Arc;

use privseg::consent::{ConsentEvent, EventKind};
use privseg::import::SubjectRow;
use privseg::load::{InputError, LoadError, Loader};
use privseg::policy::Policy;
use privseg::store::Value;
use privseg::{Actor, Engine, Timestamp};
use proptest::prelude::*;

const POLICY: &str = include_str!("../examples/data/policy.json");
const SHA: &str = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
const ATTRS: [&str; 4] = ["country", "total_spend", "last_order", "newsletter"];
const JURIS: [&str; 4] = ["EU-FR", "EU-DE", "US-CA", "EU"];
const COUNTRIES: [&str; 5] = ["FR", "DE", "ES", "IT", "US"];

fn policy() -> Arc<Policy> {
    Arc::new(Policy::from_json(POLICY).unwrap())
}

fn admin() -> Actor {
    Actor::new("test-admin", &["admin"])
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

/// One generated subject: id, jurisdiction, birth date, and the values of
/// country, total_spend, last_order (days after 2025-01-01), newsletter.
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

/// One generated event: subject index, kind (0 grant, 1 withdraw, 2 gpc),
/// day after 2025-01-01, channel.
#[derive(Clone, Debug)]
struct Event {
    subject: usize,
    kind: u8,
    day: u32,
    channel: u8,
}

fn day(d: u32) -> String {
    Timestamp::from_unix(t("2025-01-01T12:00:00Z").unix() + i64::from(d) * 86_400).to_string()
}

fn birth(d: u32) -> String {
    privseg::timestamp::format_date(Timestamp::from_unix(d as i64 * 86_400 * 10).date())
}

/// A CSV field, quoted when it holds a delimiter, quote or line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn has_values(s: &Subject) -> bool {
    s.country.is_some() || s.spend.is_some() || s.last.is_some() || s.news.is_some()
}

fn csv_row(s: &Subject) -> String {
    let opt = |v: Option<String>| v.unwrap_or_default();
    format!(
        "{},{},{},{},{},{},{},{}",
        field(&s.id),
        JURIS[s.juris],
        opt(s.birth.map(birth)),
        if has_values(s) { day(0) } else { String::new() },
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
        expires_at: None,
        explicit: false,
        evidence_sha256: None,
    }
}

fn subject_row(s: &Subject) -> SubjectRow {
    let verified = t(&day(0));
    let mut values = Vec::new();
    if let Some(c) = s.country {
        values.push(("country".into(), Value::Str(COUNTRIES[c].into()), verified));
    }
    if let Some(v) = s.spend {
        values.push(("total_spend".into(), Value::Int(v), verified));
    }
    if let Some(d) = s.last {
        values.push(("last_order".into(), Value::Str(day(d)), verified));
    }
    if let Some(b) = s.news {
        values.push(("newsletter".into(), Value::Bool(b), verified));
    }
    SubjectRow {
        id: s.id.clone(),
        jurisdiction: JURIS[s.juris].into(),
        birth_date: s
            .birth
            .map(|d| privseg::timestamp::parse_date(&birth(d)).unwrap()),
        values,
    }
}

/// The files: header, rows (with blank lines and CRLF where asked), and
/// the events, one per line.
fn files(
    subjects: &[Subject],
    events: &[Event],
    crlf: bool,
    blank_every: usize,
) -> (String, String) {
    let eol = if crlf { "\r\n" } else { "\n" };
    let mut csv = format!(
        "id,jurisdiction,birth_date,verified_at,{}{eol}",
        ATTRS.join(",")
    );
    for (i, s) in subjects.iter().enumerate() {
        if blank_every > 0 && i % blank_every == 0 {
            csv.push_str(eol);
        }
        csv.push_str(&csv_row(s));
        csv.push_str(eol);
    }
    let mut jsonl = String::new();
    for (i, e) in events.iter().enumerate() {
        if blank_every > 0 && i % blank_every == 1 {
            jsonl.push_str(eol);
        }
        jsonl.push_str(&serde_json::to_string(&consent_event(subjects, e)).unwrap());
        jsonl.push_str(eol);
    }
    (csv, jsonl)
}

fn load(csv: &str, jsonl: &str, chunk: usize) -> Result<Engine, LoadError> {
    Loader::new(policy(), admin())
        .chunk_bytes(chunk)
        .subjects("s.csv", csv.as_bytes())?
        .events("e.jsonl", jsonl.as_bytes())?
        .finish()
        .map(|(e, _)| e)
}

fn import(subjects: &[Subject], events: &[Event]) -> Engine {
    let mut engine = Engine::new(policy());
    let rows: Vec<SubjectRow> = subjects.iter().map(subject_row).collect();
    let evs: Vec<ConsentEvent> = events.iter().map(|e| consent_event(subjects, e)).collect();
    engine.import(&admin(), &rows, &evs).unwrap();
    engine
}

/// Everything observable of the subjects: values, histories, and the
/// members of a few segments.
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

fn subject_strategy() -> impl Strategy<Value = Subject> {
    (
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
        })
}

/// Subjects with distinct ids and events about them.
fn data() -> impl Strategy<Value = (Vec<Subject>, Vec<Event>)> {
    proptest::collection::vec(subject_strategy(), 1..60)
        .prop_map(|mut v| {
            let mut seen = std::collections::HashSet::new();
            v.retain(|s| seen.insert(s.id.clone()));
            v
        })
        .prop_flat_map(|subjects| {
            let n = subjects.len();
            let event =
                (0..n, 0u8..3, 0u32..500, 0u8..3).prop_map(|(subject, kind, day, channel)| Event {
                    subject,
                    kind,
                    day,
                    channel,
                });
            (Just(subjects), proptest::collection::vec(event, 0..90))
        })
}

/// A bad subject row of each class the loader reports, with the class's
/// expected kind (by name).
fn bad_row(kind: u8, subjects: &[Subject]) -> String {
    match kind {
        0 => "x-1,EU-XX,,,,,,".into(),
        1 => "x-2,EU-FR,1990-13-01,,,,,".into(),
        2 => format!("x-3,EU-FR,,{},,100001,,", day(0)),
        3 => format!("{},EU-FR,,,,,,", field(&subjects[0].id)),
        4 => "x-5,EU-FR,,,".into(),
        5 => format!("x-6,EU-FR,,{},,,,maybe", day(0)),
        // A quoted line break (ids may not hold one): the record spans two
        // lines, and no chunk may be cut inside it.
        6 => "\"x-\n7\",EU-FR,,,,,,".into(),
        _ => "\"x-8,EU-FR,,,,,,".into(),
    }
}

fn load_error(r: Result<Engine, LoadError>) -> InputError {
    match r {
        Err(LoadError::Input(e)) => e,
        Err(other) => panic!("expected an input error, got {other}"),
        Ok(_) => panic!("expected an input error, got an engine"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn chunked_loads_equal_the_row_by_row_import(
        (subjects, events) in data(),
        chunk in 1usize..400,
        crlf in any::<bool>(),
        blank_every in 0usize..7,
    ) {
        let (csv, jsonl) = files(&subjects, &events, crlf, blank_every);
        let mut imported = import(&subjects, &events);
        let reference = observe(&imported, &subjects);
        let mut chunked = load(&csv, &jsonl, chunk).unwrap();
        prop_assert_eq!(&observe(&chunked, &subjects), &reference);
        // An erasure finds the subject (and only it) in the loaded ids.
        let gone = &subjects[subjects.len() / 2].id;
        imported.erase(&admin(), gone).unwrap();
        chunked.erase(&admin(), gone).unwrap();
        let rest: Vec<Subject> = subjects.iter().filter(|s| &s.id != gone).cloned().collect();
        prop_assert_eq!(observe(&chunked, &rest), observe(&imported, &rest));
        prop_assert!(chunked.attribute(&admin(), gone, "country").is_err());
        let whole = load(&csv, &jsonl, usize::MAX).unwrap();
        prop_assert_eq!(&observe(&whole, &subjects), &reference);
    }

    #[test]
    fn a_bad_row_anywhere_gives_the_same_error_at_any_chunk_size(
        (subjects, events) in data(),
        chunk in 1usize..400,
        at in any::<prop::sample::Index>(),
        kind in 0u8..8,
        crlf in any::<bool>(),
    ) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let (csv, jsonl) = files(&subjects, &events, crlf, 0);
        let mut lines: Vec<&str> = csv.split_terminator(eol).collect();
        let k = 1 + at.index(lines.len());
        let bad = bad_row(kind, &subjects);
        lines.insert(k, &bad);
        let mut bad_csv = lines.join(eol);
        bad_csv.push_str(eol);
        let whole = load_error(load(&bad_csv, &jsonl, usize::MAX));
        let chunked = load_error(load(&bad_csv, &jsonl, chunk));
        prop_assert_eq!(&chunked, &whole);
        // The bad row's own line (for a repeated id, the later of the two
        // rows; for an unclosed quote, where the record starts).
        let expected = if kind == 3 && k == 1 { 3 } else { k as u64 + 1 };
        prop_assert_eq!(whole.line, expected, "{}", whole);
        prop_assert_eq!(whole.file.as_str(), "s.csv");
    }

    #[test]
    fn a_bad_event_anywhere_gives_the_same_error_at_any_chunk_size(
        (subjects, events) in data(),
        chunk in 1usize..400,
        at in any::<prop::sample::Index>(),
        kind in 0u8..4,
    ) {
        let (csv, jsonl) = files(&subjects, &events, false, 0);
        let mut lines: Vec<String> = jsonl.lines().map(String::from).collect();
        let k = at.index(lines.len() + 1);
        let good = consent_event(&subjects, &Event { subject: 0, kind: 2, day: 1, channel: 0 });
        let bad = match kind {
            0 => serde_json::to_string(&ConsentEvent { subject: "nobody".into(), ..good }).unwrap(),
            1 => "{\"subject\": 1".into(),
            2 => serde_json::to_string(&good).unwrap().replace("2025-01-02T12:00:00Z", "soon"),
            _ => serde_json::to_string(&ConsentEvent { purpose: Some("nothing".into()), ..good }).unwrap(),
        };
        lines.insert(k, bad);
        let bad_jsonl = lines.join("\n") + "\n";
        let whole = load_error(load(&csv, &bad_jsonl, usize::MAX));
        let chunked = load_error(load(&csv, &bad_jsonl, chunk));
        prop_assert_eq!(&chunked, &whole);
        prop_assert_eq!(whole.line, k as u64 + 1, "{}", whole);
        prop_assert_eq!(whole.file.as_str(), "e.jsonl");
    }
}
