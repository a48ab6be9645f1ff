//! An error names each cause once: a message that includes its inner
//! error's text does not also return that error as its `source`, so a
//! printed chain (`outer: inner: ...`) never repeats a cause.

use std::error::Error;

use privseg::audit::FileSink;
use privseg::consent::signals::gpp::GppString;

/// The texts of `e` and of every error under it, outermost first.
fn chain(e: &dyn Error) -> Vec<String> {
    let mut texts = vec![e.to_string()];
    let mut next = e.source();
    while let Some(inner) = next {
        texts.push(inner.to_string());
        next = inner.source();
    }
    texts
}

/// Fails if an error's text already contains the text of an error under it.
fn assert_each_cause_once(e: &dyn Error, cause: &str) {
    let texts = chain(e);
    for (i, outer) in texts.iter().enumerate() {
        for inner in &texts[i + 1..] {
            assert!(
                !outer.contains(inner.as_str()),
                "{outer:?} repeats its cause {inner:?}"
            );
        }
    }
    let printed = texts.join(": ");
    assert_eq!(printed.matches(cause).count(), 1, "{printed}");
}

#[test]
fn audit_io_errors_name_their_cause_once() {
    let missing = std::env::temp_dir()
        .join(format!("privseg-missing-{}", std::process::id()))
        .join("audit.log");
    let err = FileSink::scan(&missing).unwrap_err();
    assert!(
        matches!(err, privseg::audit::AuditError::Io { .. }),
        "{err:?}"
    );
    let cause = match &err {
        privseg::audit::AuditError::Io { error, .. } => error.to_string(),
        _ => unreachable!(),
    };
    assert_each_cause_once(&err, &cause);
}

#[test]
fn gpp_section_errors_name_their_cause_once() {
    // Section 6 (US Privacy) with a malformed string inside.
    let err = GppString::decode("DBABTA~2YNN").unwrap_err();
    let cause = match &err {
        privseg::consent::signals::SignalError::InSection { error, .. } => error.to_string(),
        other => panic!("not a section error: {other:?}"),
    };
    assert_each_cause_once(&err, &cause);
}
