//! The single definition of eligibility.
//!
//! [`eligibility`] decides, for one subject, one purpose and one instant,
//! whether the subject may be processed, and if not, which rule says no.
//! Every faster path in the crate (eligibility masks, incremental updates)
//! is tested against this function.

use std::fmt;

use serde::Serialize;
use time::Date;

use super::{EventKind, EventRecord, Interner, consent_based, objection_covers};
use crate::Timestamp;
use crate::policy::{JurisdictionId, LawfulBasis, Policy, PurposeId, Regime};
use crate::timestamp::{DAY, age_on, birthday_instant};

/// A rule of COMPLIANCE.md, by its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Rule {
    R1,
    R2,
    R3,
    R4,
    R5,
    R6,
    R7,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    R16,
    R17,
    R18,
    R19,
    R20,
    R21,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a segment's data needs beyond the purpose itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DataUse {
    /// It reads a GDPR special category: explicit consent needed (R7).
    pub special: bool,
    /// It reads CCPA sensitive data: limited subjects drop out unless the
    /// purpose is necessary (R13).
    pub ccpa_sensitive: bool,
    /// The data goes to a CCPA third party, so the use is a sale or share
    /// whatever the purpose: opt-outs, GPC and the minors' rules apply
    /// (R10-R12, R19).
    pub sale_share: bool,
}

impl DataUse {
    /// Both uses together.
    pub fn union(self, other: DataUse) -> DataUse {
        DataUse {
            special: self.special || other.special,
            ccpa_sensitive: self.ccpa_sensitive || other.ccpa_sensitive,
            sale_share: self.sale_share || other.sale_share,
        }
    }
}

/// Why a subject may not be processed for a purpose.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Denial {
    /// The subject was erased.
    Erased,
    /// Processing is restricted (Art. 18).
    Restricted,
    /// The subject objected (Art. 21).
    Objected,
    /// Below the age of digital consent, with no parental consent.
    UnderAgeOfConsent {
        /// Age at the evaluation time.
        age: u32,
        /// Age the jurisdiction requires.
        required: u32,
    },
    /// No birth date: treated as a possible minor where an age gate applies.
    AgeUnknown {
        /// Age the gate requires.
        required: u32,
    },
    /// No consent on record for the purpose.
    NoConsent,
    /// The subject refused.
    ConsentRefused,
    /// The subject withdrew consent.
    ConsentWithdrawn,
    /// The consent expired.
    ConsentExpired {
        /// When it expired.
        expired_at: Timestamp,
    },
    /// The consent was given to a notice version the policy no longer accepts.
    NoticeNotAccepted {
        /// The version consented to.
        version: String,
    },
    /// Special-category data needs an explicit consent (Art. 9(2)(a)).
    NoExplicitConsent,
    /// Unsubscribed from email.
    Unsubscribed,
    /// Neither a consent nor a soft opt-in for email marketing.
    NoEmailPermission,
    /// Opted out of sale and sharing.
    OptedOut,
    /// A Global Privacy Control signal.
    GlobalPrivacyControl,
    /// A minor (or possible minor) with no opt-in to sale and sharing.
    MinorWithoutOptIn {
        /// Age, if known.
        age: Option<u32>,
        /// Whether a parent must opt in (under 13 or unknown age).
        parental_needed: bool,
    },
    /// The subject limited the use of sensitive data.
    SensitiveLimited,
}

impl Denial {
    /// The rule that denies.
    pub fn rule(&self) -> Rule {
        match self {
            Denial::Erased => Rule::R21,
            Denial::Restricted => Rule::R15,
            Denial::Objected => Rule::R6,
            Denial::UnderAgeOfConsent { .. } | Denial::AgeUnknown { .. } => Rule::R9,
            Denial::NoConsent
            | Denial::ConsentRefused
            | Denial::ConsentExpired { .. }
            | Denial::NoticeNotAccepted { .. } => Rule::R3,
            Denial::ConsentWithdrawn => Rule::R4,
            Denial::NoExplicitConsent => Rule::R7,
            Denial::Unsubscribed | Denial::NoEmailPermission => Rule::R14,
            Denial::OptedOut => Rule::R10,
            Denial::GlobalPrivacyControl => Rule::R11,
            Denial::MinorWithoutOptIn { .. } => Rule::R12,
            Denial::SensitiveLimited => Rule::R13,
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.rule())?;
        match self {
            Denial::Erased => write!(f, "the subject was erased"),
            Denial::Restricted => write!(f, "processing is restricted"),
            Denial::Objected => write!(f, "the subject objected to this processing"),
            Denial::UnderAgeOfConsent { age, required } => write!(
                f,
                "aged {age}, below the age of digital consent {required}, and no parental consent"
            ),
            Denial::AgeUnknown { required } => write!(
                f,
                "birth date unknown, so treated as possibly under {required}, and no parental consent"
            ),
            Denial::NoConsent => write!(f, "no consent on record"),
            Denial::ConsentRefused => write!(f, "consent was refused"),
            Denial::ConsentWithdrawn => write!(f, "consent was withdrawn"),
            Denial::ConsentExpired { expired_at } => write!(f, "consent expired at {expired_at}"),
            Denial::NoticeNotAccepted { version } => {
                write!(
                    f,
                    "consent was given to notice {version:?}, which is no longer accepted"
                )
            }
            Denial::NoExplicitConsent => {
                write!(f, "special-category data needs an explicit consent")
            }
            Denial::Unsubscribed => write!(f, "unsubscribed from email"),
            Denial::NoEmailPermission => write!(f, "no consent or soft opt-in for email"),
            Denial::OptedOut => write!(f, "opted out of sale and sharing"),
            Denial::GlobalPrivacyControl => write!(f, "Global Privacy Control signal"),
            Denial::MinorWithoutOptIn {
                age,
                parental_needed,
            } => {
                match age {
                    Some(a) => write!(f, "aged {a}")?,
                    None => write!(f, "birth date unknown, so treated as a minor")?,
                }
                if *parental_needed {
                    write!(f, ", and no parental opt-in to sale and sharing")
                } else {
                    write!(f, ", and no opt-in to sale and sharing")
                }
            }
            Denial::SensitiveLimited => {
                write!(f, "the subject limited the use of sensitive data")
            }
        }
    }
}

/// What made a subject eligible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grounds {
    /// The purpose's basis needs no record (contract, legal obligation...).
    Basis(LawfulBasis),
    /// A valid consent.
    Consent,
    /// A valid parental consent.
    ParentalConsent,
    /// The email soft opt-in.
    SoftOptIn,
    /// CCPA sale/share by default (no opt-out).
    CcpaNoOptOut,
    /// CCPA sale/share after an opt-in.
    CcpaOptIn,
}

/// The answer of [`eligibility`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    /// May be processed, on these grounds.
    Allowed(Grounds),
    /// May not be processed.
    Denied(Denial),
}

impl Eligibility {
    /// Is it allowed?
    pub fn is_allowed(&self) -> bool {
        matches!(self, Eligibility::Allowed(_))
    }
}

/// What [`eligibility`] knows of a subject.
#[derive(Clone, Copy, Debug)]
pub struct SubjectFacts<'a> {
    /// Resolved jurisdiction.
    pub jurisdiction: JurisdictionId,
    /// Birth date, if known.
    pub birth_date: Option<Date>,
    /// Erased (tombstone).
    pub erased: bool,
    /// History in effect order (time, then arrival).
    pub events: &'a [EventRecord],
    /// Strings the records refer to.
    pub strings: &'a Interner,
}

/// Decides whether a subject may be processed for a purpose at an instant,
/// for a segment whose data has the given [`DataUse`].
///
/// Only events with a time at or before `at` count. Checks run in a fixed
/// order, and the first that fails is the reason: erasure (R21), restriction
/// (R15), objection (R6), sale/share opt-outs (R10, R11, everywhere), CCPA
/// minors (R12), consent, age gate, explicit consent and email permission
/// (R3, R4, R7, R9, R14), sensitive-data limits (R13).
pub fn eligibility(
    policy: &Policy,
    s: &SubjectFacts<'_>,
    purpose: PurposeId,
    at: Timestamp,
    uses: DataUse,
) -> Eligibility {
    use Eligibility::{Allowed, Denied};
    let spec = policy.purpose(purpose);
    let now = at.unix();
    let events = &s.events[..s.events.partition_point(|e| e.at <= now)];
    let regime = policy.jurisdiction(s.jurisdiction).regime;
    let age = s.birth_date.map(|b| age_on(b, at.date()));

    if s.erased {
        return Denied(Denial::Erased);
    }
    if !spec.restriction_exempt {
        let restricted = events
            .iter()
            .rev()
            .find(|e| {
                matches!(
                    e.kind,
                    EventKind::Restriction | EventKind::RestrictionLifted
                )
            })
            .is_some_and(|e| e.kind == EventKind::Restriction);
        if restricted {
            return Denied(Denial::Restricted);
        }
    }
    if events
        .iter()
        .any(|e| e.kind == EventKind::Objection && objection_covers(policy, e.purpose, purpose))
    {
        return Denied(Denial::Objected);
    }
    let mut grounds = Grounds::Basis(spec.basis);
    let sale_share = spec.ccpa_sale_share || uses.sale_share;
    if sale_share {
        let opt = events.iter().rev().find(|e| {
            matches!(
                e.kind,
                EventKind::OptOutSaleShare | EventKind::OptInSaleShare | EventKind::Gpc
            )
        });
        match opt.map(|e| e.kind) {
            Some(EventKind::OptOutSaleShare) => return Denied(Denial::OptedOut),
            Some(EventKind::Gpc) => return Denied(Denial::GlobalPrivacyControl),
            _ => {}
        }
        if regime == Regime::Ccpa {
            let opted_in = opt.is_some();
            match age {
                Some(a) if a >= 16 => {
                    grounds = if opted_in {
                        Grounds::CcpaOptIn
                    } else {
                        Grounds::CcpaNoOptOut
                    }
                }
                Some(a) if a >= 13 && opted_in => grounds = Grounds::CcpaOptIn,
                _ => {
                    // Under 13, or of unknown age: a parent must opt in, or
                    // (unknown age, or 13 to 15) the subject's own opt-in.
                    let parental = latest_decision(events, purpose, false, false)
                        .is_some_and(|e| e.kind == EventKind::ParentalConsent);
                    let own_ok = opted_in && age.is_none();
                    if parental {
                        grounds = Grounds::ParentalConsent;
                    } else if own_ok {
                        grounds = Grounds::CcpaOptIn;
                    } else {
                        return Denied(Denial::MinorWithoutOptIn {
                            age,
                            parental_needed: age.is_none_or(|a| a < 13),
                        });
                    }
                }
            }
        }
    }
    // Only a purpose that is itself a sale or share swaps its basis for the
    // CCPA opt-out model; sending other data to a third party adds the
    // opt-out checks above on top of the basis.
    let ccpa_model = regime == Regime::Ccpa && spec.ccpa_sale_share;
    let needs_consent = consent_based(policy, purpose) && !ccpa_model;
    if needs_consent || spec.email_channel || uses.special {
        let gated = regime == Regime::Gdpr && (needs_consent || uses.special);
        let consent_age = policy.consent_age(s.jurisdiction).unwrap_or(16);
        let minor = gated && age.is_none_or(|a| a < consent_age);
        let latest = latest_decision(events, purpose, minor, spec.email_channel)
            .filter(|e| e.kind != EventKind::SoftOptIn || spec.email_soft_opt_in);
        match latest.map(|e| (e.kind, e)) {
            None if minor => {
                return Denied(match age {
                    Some(age) => Denial::UnderAgeOfConsent {
                        age,
                        required: consent_age,
                    },
                    None => Denial::AgeUnknown {
                        required: consent_age,
                    },
                });
            }
            None if needs_consent || uses.special => return Denied(Denial::NoConsent),
            None => return Denied(Denial::NoEmailPermission),
            Some((EventKind::ConsentRefused, _)) => return Denied(Denial::ConsentRefused),
            Some((EventKind::ConsentWithdrawn, _)) => return Denied(Denial::ConsentWithdrawn),
            Some((EventKind::Unsubscribe, _)) => return Denied(Denial::Unsubscribed),
            Some((EventKind::SoftOptIn, _)) => {
                if uses.special {
                    return Denied(Denial::NoExplicitConsent);
                }
                grounds = Grounds::SoftOptIn;
            }
            Some((kind, e)) => {
                let version = s.strings.get(e.notice);
                if !policy.accepts_notice(purpose, version) {
                    return Denied(Denial::NoticeNotAccepted {
                        version: version.to_string(),
                    });
                }
                let expiry = grant_expiry(policy, purpose, e);
                if now >= expiry {
                    return Denied(Denial::ConsentExpired {
                        expired_at: Timestamp::from_unix(expiry),
                    });
                }
                if uses.special && !e.explicit {
                    return Denied(Denial::NoExplicitConsent);
                }
                if !matches!(grounds, Grounds::ParentalConsent | Grounds::CcpaOptIn) {
                    grounds = if kind == EventKind::ParentalConsent {
                        Grounds::ParentalConsent
                    } else {
                        Grounds::Consent
                    };
                }
            }
        }
    }
    if uses.ccpa_sensitive
        && !spec.ccpa_sensitive_necessary
        && events.iter().any(|e| e.kind == EventKind::LimitSensitive)
    {
        return Denied(Denial::SensitiveLimited);
    }
    Allowed(grounds)
}

/// The latest event (among those given, already cut at the evaluation time)
/// that decides consent for `purpose`: grants, refusals, withdrawals,
/// parental consents, soft opt-ins and, for email purposes, unsubscribes.
/// A minor's own grants do not count.
fn latest_decision(
    events: &[EventRecord],
    purpose: PurposeId,
    minor: bool,
    email: bool,
) -> Option<&EventRecord> {
    events.iter().rev().find(|e| match e.kind {
        EventKind::ConsentGranted => !minor && e.purpose == Some(purpose),
        EventKind::ConsentRefused
        | EventKind::ConsentWithdrawn
        | EventKind::ParentalConsent
        | EventKind::SoftOptIn => e.purpose == Some(purpose),
        EventKind::Unsubscribe => email && e.purpose.is_none_or(|p| p == purpose),
        _ => false,
    })
}

/// When a grant stops being valid (Unix seconds; `i64::MAX` for never).
fn grant_expiry(policy: &Policy, purpose: PurposeId, e: &EventRecord) -> i64 {
    let by_policy = policy
        .purpose(purpose)
        .consent_validity_days
        .map_or(i64::MAX, |d| e.at.saturating_add(i64::from(d) * DAY));
    e.expires_at.min(by_policy)
}

/// The earliest instant after `at` at which [`eligibility`] for this subject
/// and purpose could change with no new event: the next event already on
/// record, the next expiry, or the next birthday that crosses an age gate.
/// `None` if nothing is pending. Conservative: the answer may not change then.
pub fn next_change(
    policy: &Policy,
    s: &SubjectFacts<'_>,
    purpose: PurposeId,
    at: Timestamp,
) -> Option<Timestamp> {
    let now = at.unix();
    let mut best = i64::MAX;
    for e in s.events {
        if e.at > now {
            best = best.min(e.at);
        }
        if e.kind.is_grant() && e.purpose == Some(purpose) {
            let x = grant_expiry(policy, purpose, e);
            if x > now {
                best = best.min(x);
            }
        }
    }
    if let Some(b) = s.birth_date {
        let gate = policy.consent_age(s.jurisdiction).unwrap_or(16);
        for years in [13, 16, gate] {
            let t = birthday_instant(b, years).unix();
            if t > now {
                best = best.min(t);
            }
        }
    }
    (best != i64::MAX).then(|| Timestamp::from_unix(best))
}
