//! Normalisation of identifiers before pseudonymisation.
//!
//! Two spellings of the same identifier must give the same pseudonym, so every
//! identifier goes through a fixed, documented normalisation first. The rules
//! are deliberately small and predictable:
//!
//! * [`IdKind::SubjectId`]: surrounding whitespace (Unicode `White_Space`, as
//!   removed by [`str::trim`]) is removed. Nothing else changes: after the trim
//!   an id is treated as an opaque sequence of bytes. No case folding and no
//!   Unicode normalisation (NFC or otherwise) is applied, so `"Ab"` and `"ab"`,
//!   or a precomposed and a decomposed `"é"`, are different ids. Hosts whose
//!   ids are not already canonical must canonicalise them before calling in.
//! * [`IdKind::Email`]: surrounding whitespace is removed and the whole address
//!   is ASCII-lowercased (`A`-`Z` become `a`-`z`; every other character,
//!   including non-ASCII letters, is kept as it is). Lowercasing the local part
//!   is a deliberate choice: RFC 5321 allows a case-sensitive local part, but
//!   mail providers treat it case-insensitively in practice, and CRMs hold the
//!   same address in different cases. Provider-specific rules are **not**
//!   applied: Gmail's ignored dots and `+tag` suffixes are kept, so
//!   `a.b+x@gmail.com` and `ab@gmail.com` are different addresses. The address
//!   must contain an `@` with a non-empty part on each side of the last `@`,
//!   and no whitespace or control characters; beyond that it is not validated.
//!
//! Empty input (or input that is empty after trimming) is rejected. Errors
//! never echo the input, since identifiers are personal data.

use std::borrow::Cow;

use thiserror::Error;

/// The kind of identifier being normalised or pseudonymised.
///
/// The kind selects the normalisation rules and is also mixed into the
/// pseudonym, so the same string pseudonymised as a subject id and as an email
/// address gives two unrelated pseudonyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// An opaque subject or customer id, trimmed of surrounding whitespace.
    SubjectId,
    /// An email address, trimmed and ASCII-lowercased.
    Email,
}

impl IdKind {
    /// A one-byte tag for this kind, used for domain separation in pseudonyms.
    pub(crate) fn tag(self) -> u8 {
        match self {
            IdKind::SubjectId => 0x01,
            IdKind::Email => 0x02,
        }
    }
}

/// Why an identifier could not be normalised.
///
/// The messages never contain the identifier itself.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NormalizeError {
    /// The subject id was empty or only whitespace.
    #[error("subject id is empty after trimming surrounding whitespace")]
    EmptyId,
    /// The email address was empty or only whitespace.
    #[error("email address is empty after trimming surrounding whitespace")]
    EmptyEmail,
    /// The email address is not of the form `local@domain`.
    #[error("email address is invalid: {reason}")]
    InvalidEmail {
        /// What is wrong with the address (never the address itself).
        reason: &'static str,
    },
}

/// An identifier after normalisation, ready to be pseudonymised.
///
/// Borrows from the input when normalisation did not have to change any
/// character (the common case), so normalising is allocation-free for ids
/// and for emails that are already lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedId<'a> {
    kind: IdKind,
    value: Cow<'a, str>,
}

impl<'a> NormalizedId<'a> {
    /// The kind of identifier.
    pub fn kind(&self) -> IdKind {
        self.kind
    }

    /// The normalised identifier.
    pub fn as_str(&self) -> &str {
        &self.value
    }
}

/// Normalises `raw` according to the rules for `kind` (see the module docs).
///
/// ```
/// use privseg::privacy::normalize::{normalize, IdKind};
///
/// let email = normalize(IdKind::Email, "  Ann.Lee+crm@Example.COM\n").unwrap();
/// assert_eq!(email.as_str(), "ann.lee+crm@example.com");
///
/// let id = normalize(IdKind::SubjectId, " Cust-0042 ").unwrap();
/// assert_eq!(id.as_str(), "Cust-0042");
///
/// assert!(normalize(IdKind::SubjectId, "   ").is_err());
/// ```
pub fn normalize(kind: IdKind, raw: &str) -> Result<NormalizedId<'_>, NormalizeError> {
    let trimmed = raw.trim();
    let value = match kind {
        IdKind::SubjectId => {
            if trimmed.is_empty() {
                return Err(NormalizeError::EmptyId);
            }
            Cow::Borrowed(trimmed)
        }
        IdKind::Email => normalize_email(trimmed)?,
    };
    Ok(NormalizedId { kind, value })
}

fn normalize_email(trimmed: &str) -> Result<Cow<'_, str>, NormalizeError> {
    if trimmed.is_empty() {
        return Err(NormalizeError::EmptyEmail);
    }
    if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(NormalizeError::InvalidEmail {
            reason: "contains whitespace or control characters",
        });
    }
    let Some(at) = trimmed.rfind('@') else {
        return Err(NormalizeError::InvalidEmail {
            reason: "missing '@'",
        });
    };
    if at == 0 {
        return Err(NormalizeError::InvalidEmail {
            reason: "empty local part before '@'",
        });
    }
    if at + 1 == trimmed.len() {
        return Err(NormalizeError::InvalidEmail {
            reason: "empty domain after '@'",
        });
    }
    if trimmed.bytes().any(|b| b.is_ascii_uppercase()) {
        Ok(Cow::Owned(trimmed.to_ascii_lowercase()))
    } else {
        Ok(Cow::Borrowed(trimmed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_trimmed_but_otherwise_opaque() {
        assert_eq!(
            normalize(IdKind::SubjectId, "\t ab C\u{3000}")
                .unwrap()
                .as_str(),
            "ab C"
        );
        // No case folding, no Unicode normalisation.
        assert_ne!(
            normalize(IdKind::SubjectId, "Ab").unwrap().as_str(),
            normalize(IdKind::SubjectId, "ab").unwrap().as_str()
        );
        assert_ne!(
            normalize(IdKind::SubjectId, "\u{e9}").unwrap().as_str(),
            normalize(IdKind::SubjectId, "e\u{301}").unwrap().as_str()
        );
    }

    #[test]
    fn empty_inputs_are_rejected() {
        assert_eq!(
            normalize(IdKind::SubjectId, ""),
            Err(NormalizeError::EmptyId)
        );
        assert_eq!(
            normalize(IdKind::SubjectId, " \n\t"),
            Err(NormalizeError::EmptyId)
        );
        assert_eq!(
            normalize(IdKind::Email, ""),
            Err(NormalizeError::EmptyEmail)
        );
        assert_eq!(
            normalize(IdKind::Email, "  "),
            Err(NormalizeError::EmptyEmail)
        );
    }

    #[test]
    fn emails_are_trimmed_and_ascii_lowercased_only() {
        assert_eq!(
            normalize(IdKind::Email, " John.Doe+Tag@GMail.com ")
                .unwrap()
                .as_str(),
            "john.doe+tag@gmail.com"
        );
        // Non-ASCII letters are left alone.
        assert_eq!(
            normalize(IdKind::Email, "ÄNN@Example.org")
                .unwrap()
                .as_str(),
            "Änn@example.org"
        );
        // Gmail dot and plus rules are not applied.
        assert_ne!(
            normalize(IdKind::Email, "a.b+x@gmail.com")
                .unwrap()
                .as_str(),
            normalize(IdKind::Email, "ab@gmail.com").unwrap().as_str()
        );
    }

    #[test]
    fn malformed_emails_are_rejected() {
        for bad in ["no-at-sign", "@example.com", "user@", "us er@example.com"] {
            assert!(
                matches!(
                    normalize(IdKind::Email, bad),
                    Err(NormalizeError::InvalidEmail { .. })
                ),
                "{bad:?} was accepted"
            );
        }
        // A quoted local part may contain '@'; only the last one splits.
        assert!(normalize(IdKind::Email, "\"a@b\"@example.com").is_ok());
    }

    #[test]
    fn unchanged_input_is_borrowed() {
        let n = normalize(IdKind::Email, "x@y.z").unwrap();
        assert!(matches!(n.value, Cow::Borrowed(_)));
        let n = normalize(IdKind::Email, "X@y.z").unwrap();
        assert!(matches!(n.value, Cow::Owned(_)));
    }

    #[test]
    fn error_messages_do_not_echo_input() {
        let err = normalize(IdKind::Email, "secret-person").unwrap_err();
        assert!(!err.to_string().contains("secret-person"));
    }
}
