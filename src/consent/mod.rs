//! Consent events and effective-consent rules.
pub mod signals;
