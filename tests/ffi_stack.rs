//! A segment nested as deep as the language allows is parsed, validated,
//! copied, planned and explained on a thread with a 64 KiB stack (a CRM plugin's worker
//! thread), through the Rust API (tests/c/small_stack.c does it through the
//! C ABI); one level deeper is refused with an error, never a crash.

use std::sync::Arc;

use privseg::access::Actor;
use privseg::policy::Policy;
use privseg::segment::{self, MAX_DEPTH};
use privseg::{Engine, Timestamp};

const POLICY: &str = include_str!("../examples/c/policy.json");

const STACK: usize = 64 * 1024;

/// A segment whose predicate nests `levels` parentheses (and so as many
/// `and`/`or`/`not` nodes), each level a different operator.
fn nested(levels: usize) -> String {
    let mut text = String::from(r#"segment "deep" for marketing.email where "#);
    for i in 0..levels {
        text.push_str(match i % 3 {
            0 => r#"(country = "FR" or "#,
            1 => "(total_spend >= 1 and ",
            _ => "not (",
        });
    }
    text.push_str("total_spend <= 1000");
    for _ in 0..levels {
        text.push(')');
    }
    text
}

/// The depth the parser counts: each `(` and each `not`.
fn parser_depth(levels: usize) -> usize {
    levels + (0..levels).filter(|i| i % 3 == 2).count()
}

/// The most levels of [`nested`] the language accepts.
fn max_levels() -> usize {
    (1..=MAX_DEPTH)
        .rev()
        .find(|&l| parser_depth(l) <= MAX_DEPTH)
        .unwrap()
}

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(f)
        .unwrap()
        .join()
        .expect("the thread with a 64 KiB stack died")
}

#[test]
fn the_deepest_segment_parses_on_a_64_kib_stack() {
    let levels = max_levels();
    assert!(parser_depth(levels) <= MAX_DEPTH && parser_depth(levels + 1) > MAX_DEPTH);
    let deepest = nested(levels);
    let too_deep = nested(levels + 1);
    let (ok, refused) = on_small_stack(move || {
        let ok = segment::parse(&deepest).map(|s| s.name.clone());
        let refused = segment::parse(&too_deep).map_err(|e| e.to_string());
        // The syntax trees are dropped on the small stack too.
        (ok.map_err(|e| e.to_string()), refused.map(|_| ()))
    });
    assert_eq!(ok.as_deref(), Ok("deep"));
    let refused = refused.unwrap_err();
    assert!(
        refused.contains("nesting deeper than 64 levels"),
        "{refused}"
    );
}

#[test]
fn the_deepest_segment_compiles_on_a_64_kib_stack() {
    let levels = max_levels();
    let deepest = nested(levels);
    let too_deep = nested(levels + 1);
    let policy = Arc::new(Policy::from_json(POLICY).unwrap());
    let p = policy.clone();
    let (name, copy_equal, refused) = on_small_stack(move || {
        let seg = segment::compile(&p, &deepest).expect("the deepest segment compiles");
        // A copy, as an engine makes when it anchors relative times.
        let copy = seg.clone();
        let same = copy.expr() == seg.expr();
        let refused = segment::compile(&p, &too_deep)
            .map(|_| ())
            .map_err(|e| e.to_string());
        (seg.name().to_string(), same, refused)
    });
    assert_eq!(name, "deep");
    assert!(copy_equal);
    let refused = refused.unwrap_err();
    assert!(
        refused.contains("nesting deeper than 64 levels"),
        "{refused}"
    );
    // Validated through an engine, as its actor, then evaluated, counted and
    // explained for a subject, on the small stack too.
    let text = nested(levels);
    let ok = on_small_stack(move || {
        let mut engine = Engine::new(policy);
        let actor = Actor::new("crm-sync", &["crm"]);
        engine.add_subject(&actor, "c-1", "EU-FR", None).unwrap();
        let seg = engine.compile(&actor, &text).map_err(|e| e.to_string())?;
        let at = Timestamp::from_unix(1_772_359_200);
        let members = engine
            .evaluate(&actor, &seg, at)
            .map_err(|e| e.to_string())?;
        let why = engine
            .explain(&actor, &seg, "c-1", at)
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((seg.name().to_string(), members.count(), why.member))
    });
    let (name, count, member) = ok.unwrap();
    assert_eq!(name, "deep");
    assert_eq!(count, 0);
    // c-1 gave no consent: not a member.
    assert!(!member);
}
