//! Integration tests for pseudonyms and identifier normalisation.

use privseg::privacy::normalize::IdKind;
use privseg::privacy::pseudonym::{
    Keyring, MasterSecret, Pseudonym, PseudonymError, Pseudonymizer,
};
use proptest::prelude::*;

fn master() -> MasterSecret {
    MasterSecret::from_bytes(&(0u8..32).collect::<Vec<_>>()).unwrap()
}

/// Known-answer test: values computed independently from the documented
/// construction (HKDF-SHA-256 with the documented salt and info encoding,
/// then HMAC-SHA-256 over kind tag || normalised id) with a separate HMAC
/// implementation.
#[test]
fn known_answer_vectors() {
    let p = Pseudonymizer::new(&master(), "partner-a", "newsletter", 1).unwrap();
    assert_eq!(
        p.pseudonymize(IdKind::SubjectId, "cust-42")
            .unwrap()
            .to_string(),
        "v1:8344863722973cc38f7eee56b67c93668b6d3f514741df94b687d01d535362f8"
    );
    assert_eq!(
        p.pseudonymize(IdKind::Email, " Ann@Example.COM ")
            .unwrap()
            .to_hex(),
        "8d1e40954ba892fc80cd7543dafbd90495fa5c84fe676c3a6f53a21ec91b9ae5"
    );
}

#[test]
fn stable_for_same_scope_and_version() {
    let m = master();
    let a = Pseudonymizer::new(&m, "r", "p", 4).unwrap();
    let b = Pseudonymizer::new(&m.clone(), "r", "p", 4).unwrap();
    let ring = Keyring::new(m, 4).unwrap();
    let c = ring.current("r", "p").unwrap();
    let x = a.pseudonymize(IdKind::SubjectId, "id-1").unwrap();
    assert_eq!(x, b.pseudonymize(IdKind::SubjectId, "id-1").unwrap());
    assert_eq!(x, c.pseudonymize(IdKind::SubjectId, " id-1\t").unwrap());
    assert!(a.matches(IdKind::SubjectId, "id-1", &x).unwrap());
    assert!(!a.matches(IdKind::SubjectId, "id-2", &x).unwrap());
}

#[test]
fn scope_and_version_change_the_pseudonym() {
    let m = master();
    let base = Pseudonymizer::new(&m, "r", "p", 1).unwrap();
    let x = base.pseudonymize(IdKind::SubjectId, "id").unwrap();
    for (r, p, v) in [("r", "p", 2), ("r2", "p", 1), ("r", "p2", 1)] {
        let other = Pseudonymizer::new(&m, r, p, v).unwrap();
        let y = other.pseudonymize(IdKind::SubjectId, "id").unwrap();
        assert_ne!(x.as_bytes(), y.as_bytes(), "{r} {p} {v}");
    }
    let other_master = MasterSecret::from_bytes(&[9u8; 32]).unwrap();
    let z = Pseudonymizer::new(&other_master, "r", "p", 1)
        .unwrap()
        .pseudonymize(IdKind::SubjectId, "id")
        .unwrap();
    assert_ne!(x, z);
}

#[test]
fn equality_needs_same_bytes_and_version() {
    let p = Pseudonymizer::new(&master(), "r", "p", 1)
        .unwrap()
        .pseudonymize(IdKind::SubjectId, "id")
        .unwrap();
    let mut flipped = *p.as_bytes();
    flipped[31] ^= 1;
    assert_ne!(p, Pseudonym::from_parts(1, flipped));
    assert_ne!(p, Pseudonym::from_parts(2, *p.as_bytes()));
    assert_eq!(p, Pseudonym::from_parts(1, *p.as_bytes()));
}

#[test]
fn rotation_relinks_old_to_new() {
    let mut ring = Keyring::new(master(), 1).unwrap();
    let v1 = ring
        .current("r", "p")
        .unwrap()
        .pseudonymize(IdKind::Email, "a@b.c")
        .unwrap();
    ring.rotate().unwrap();
    ring.rotate().unwrap();
    let rot = ring.rotation("r", "p", 1).unwrap();
    let (old, new) = rot.relink(IdKind::Email, "A@B.C").unwrap();
    assert_eq!(old, v1);
    assert_eq!(new.version(), 3);
    assert_eq!(
        new,
        ring.current("r", "p")
            .unwrap()
            .pseudonymize(IdKind::Email, "a@b.c")
            .unwrap()
    );
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let p = Pseudonymizer::new(&master(), "r", "p", 1).unwrap();
    assert!(matches!(
        p.pseudonymize(IdKind::SubjectId, "  "),
        Err(PseudonymError::Normalize(_))
    ));
    assert!(matches!(
        p.pseudonymize(IdKind::Email, "not-an-email"),
        Err(PseudonymError::Normalize(_))
    ));
    let err = MasterSecret::from_bytes(b"too short").unwrap_err();
    assert!(err.to_string().contains("at least 32"), "{err}");
}

/// Patterns in which secret bytes could show up in formatted output.
fn leak_patterns(secret: &[u8]) -> Vec<String> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        format!("{secret:?}"),
        format!("{:?}", &secret[..8]),
        secret[..8]
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hex[..16].to_string(),
        hex[..16].to_uppercase(),
        String::from_utf8_lossy(&secret[..8]).into_owned(),
    ]
}

#[test]
fn debug_never_shows_the_secret() {
    let secret = b"correct horse battery staple, 32+ bytes long".to_vec();
    let m = MasterSecret::from_bytes(&secret).unwrap();
    let mut ring = Keyring::new(m.clone(), 1).unwrap();
    ring.rotate().unwrap();
    let outputs = [
        format!("{m:?}"),
        format!("{m:#?}"),
        format!("{ring:?}"),
        format!("{ring:#?}"),
        format!("{:?}", ring.current("r", "p").unwrap()),
        format!("{:?}", ring.rotation("r", "p", 1).unwrap()),
    ];
    for out in &outputs {
        assert!(out.contains("REDACTED"), "{out}");
        for pat in leak_patterns(&secret) {
            assert!(!out.contains(&pat), "{out} contains {pat}");
        }
    }
}

proptest! {
    #[test]
    fn debug_redacts_random_secrets(secret in proptest::collection::vec(any::<u8>(), 32..64)) {
        let m = MasterSecret::from_bytes(&secret).unwrap();
        let out = format!("{m:?} {:?}", Keyring::new(m.clone(), 1).unwrap());
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        // Decimal list prefix as `{:?}` of a byte slice would print it.
        let list = secret[..6]
            .iter()
            .map(|b| b.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        prop_assert!(!out.contains(&list), "{} contains {}", out, list);
        prop_assert!(!out.contains(&hex[..12]));
    }

    #[test]
    fn two_recipients_never_match(
        id in "[ -~]{0,3}[!-~][ -~]{0,40}",
        r1 in "[a-z0-9-]{1,12}",
        r2 in "[a-z0-9-]{1,12}",
        purpose in "[a-z]{1,10}",
    ) {
        prop_assume!(r1 != r2);
        let m = master();
        let a = Pseudonymizer::new(&m, &r1, &purpose, 1).unwrap();
        let b = Pseudonymizer::new(&m, &r2, &purpose, 1).unwrap();
        let pa = a.pseudonymize(IdKind::SubjectId, &id).unwrap();
        let pb = b.pseudonymize(IdKind::SubjectId, &id).unwrap();
        prop_assert_ne!(pa.as_bytes(), pb.as_bytes());
        // Stable for the same scope.
        prop_assert_eq!(pa, a.pseudonymize(IdKind::SubjectId, &id).unwrap());
    }

    #[test]
    fn recipient_purpose_boundary_is_unambiguous(
        left in "[a-z]{1,8}", right in "[a-z]{1,8}", cut in 1usize..8,
    ) {
        // Moving characters between recipient and purpose must change the key.
        let joined = format!("{left}{right}");
        prop_assume!(cut < joined.len() && cut != left.len());
        let m = master();
        let a = Pseudonymizer::new(&m, &left, &right, 1).unwrap();
        let b = Pseudonymizer::new(&m, &joined[..cut], &joined[cut..], 1).unwrap();
        prop_assert_ne!(
            a.pseudonymize(IdKind::SubjectId, "x").unwrap().to_hex(),
            b.pseudonymize(IdKind::SubjectId, "x").unwrap().to_hex()
        );
    }

    #[test]
    fn versions_differ(id in "[a-zA-Z0-9]{1,20}", v in 1u32..1000) {
        let m = master();
        let a = Pseudonymizer::new(&m, "r", "p", v).unwrap();
        let b = Pseudonymizer::new(&m, "r", "p", v + 1).unwrap();
        prop_assert_ne!(
            a.pseudonymize(IdKind::SubjectId, &id).unwrap().to_hex(),
            b.pseudonymize(IdKind::SubjectId, &id).unwrap().to_hex()
        );
    }

    #[test]
    fn email_spellings_agree(local in "[a-zA-Z0-9.+]{1,12}", domain in "[a-zA-Z]{1,10}\\.[a-zA-Z]{2,4}") {
        let p = Pseudonymizer::new(&master(), "r", "p", 1).unwrap();
        let raw = format!("  {local}@{domain}\n");
        let lower = format!("{local}@{domain}").to_ascii_lowercase();
        prop_assert_eq!(
            p.pseudonymize(IdKind::Email, &raw).unwrap(),
            p.pseudonymize(IdKind::Email, &lower).unwrap()
        );
    }

    #[test]
    fn text_form_round_trips(bytes in proptest::array::uniform32(any::<u8>()), v in 1u32..) {
        let p = Pseudonym::from_parts(v, bytes);
        let text = p.to_string();
        prop_assert_eq!(text.parse::<Pseudonym>().unwrap(), p);
        prop_assert_eq!(p.to_hex().len(), 64);
    }
}
