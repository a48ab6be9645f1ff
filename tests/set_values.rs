//! `Engine::set_values`: a batch of attribute values is checked whole before
//! any is written, and a refusal names the item at fault.

mod common;

use common::{admin, adult, engine, t};
use privseg::{Actor, EngineError, Value, ValueUpdate};

fn update<'a>(subject: &'a str, attribute: &'a str, value: Value) -> ValueUpdate<'a> {
    ValueUpdate {
        subject,
        attribute,
        value,
        verified_at: t("2026-01-01T00:00:00Z"),
    }
}

#[test]
fn a_bad_item_changes_nothing_and_is_named() {
    let mut e = engine();
    adult(&mut e, "a", "EU-FR");
    adult(&mut e, "b", "EU-FR");
    let bad_items = [
        (update("b", "total_spend", Value::Int(-1)), "Value"),
        (update("nobody", "country", "FR".into()), "UnknownSubject"),
        (update("b", "no_such", Value::Int(1)), "UnknownAttribute"),
        (update("b", "country", "XX".into()), "Value"),
    ];
    for (bad, kind) in bad_items {
        let batch = [
            update("a", "country", "FR".into()),
            update("b", "total_spend", Value::Int(10)),
            bad,
        ];
        let err = e.set_values(&admin(), &batch).unwrap_err();
        assert_eq!(err.index, Some(2), "{err}");
        assert!(format!("{:?}", err.error).starts_with(kind), "{err:?}");
        assert!(err.to_string().starts_with("item 2: "), "{err}");
        for (id, attr) in [("a", "country"), ("b", "total_spend")] {
            assert_eq!(
                e.attribute(&admin(), id, attr).unwrap(),
                None,
                "{id} {attr}"
            );
        }
    }
}

#[test]
fn a_good_batch_is_written_and_later_items_win() {
    let mut e = engine();
    adult(&mut e, "a", "EU-FR");
    let batch = [
        update("a", "country", "FR".into()),
        update("a", "total_spend", Value::Int(10)),
        update("a", "country", "DE".into()),
    ];
    e.set_values(&admin(), &batch).unwrap();
    let got = |attr| e.attribute(&admin(), "a", attr).unwrap().map(|(v, _)| v);
    assert_eq!(got("country"), Some("DE".into()));
    assert_eq!(got("total_spend"), Some(Value::Int(10)));
}

#[test]
fn without_the_permission_the_whole_batch_is_refused() {
    let mut e = engine();
    adult(&mut e, "a", "EU-FR");
    let reader = Actor::new("reader", &["nobody"]);
    let err = e
        .set_values(&reader, &[update("a", "country", "FR".into())])
        .unwrap_err();
    assert_eq!(err.index, None);
    assert!(matches!(err.error, EngineError::Access(_)), "{err:?}");
    assert_eq!(e.attribute(&admin(), "a", "country").unwrap(), None);
}
