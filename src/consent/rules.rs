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
use crate::policy::{JurisdictionId, LawfulBasis, Policy, PurposeId, Regime};
use crate::timestamp::Timestamp;
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
    /// The only grant that would decide was given below the age of digital
    /// consent: a child's own grant never counts, not even after the
    /// birthday.
    GrantedBelowAge {
        /// Age when the grant was given.
        age: u32,
        /// Age the jurisdiction requires.
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
            Denial::UnderAgeOfConsent { .. }
            | Denial::AgeUnknown { .. }
            | Denial::GrantedBelowAge { .. } => Rule::R9,
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
            Denial::GrantedBelowAge { age, required } => write!(
                f,
                "the consent on record was given at age {age}, below the age of digital consent {required}, and a child's own consent never counts, not even after the birthday"
            ),
            Denial::NoConsent => write!(f, "no consent on record"),
            Denial::ConsentRefused => write!(f, "consent was refused"),
            Denial::ConsentWithdrawn => write!(f, "consent was withdrawn"),
            Denial::ConsentExpired { expired_at } => write!(f, "consent expired at {expired_at}"),
            Denial::NoticeNotAccepted { version } if version.is_empty() => write!(
                f,
                "the opt-in names no notice version, and this purpose accepts only the versions it lists"
            ),
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
///
/// In JSON it has one shape whatever the answer, so tools read `allowed`
/// first: `{"allowed": true, "grounds": "consent"}` (with `"basis":
/// "contract"` when the grounds are a basis needing no record), or
/// `{"allowed": false, "reason": "objected", ...}` with the denial's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Eligibility {
    /// May be processed, on these grounds.
    Allowed(Grounds),
    /// May not be processed.
    Denied(Denial),
}

impl Serialize for Eligibility {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Allowed {
            allowed: bool,
            grounds: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            basis: Option<LawfulBasis>,
        }
        #[derive(Serialize)]
        struct Denied<'a> {
            allowed: bool,
            #[serde(flatten)]
            denial: &'a Denial,
        }
        match self {
            Eligibility::Allowed(g) => {
                let (grounds, basis) = match *g {
                    Grounds::Basis(b) => ("basis", Some(b)),
                    Grounds::Consent => ("consent", None),
                    Grounds::ParentalConsent => ("parental_consent", None),
                    Grounds::SoftOptIn => ("soft_opt_in", None),
                    Grounds::CcpaNoOptOut => ("ccpa_no_opt_out", None),
                    Grounds::CcpaOptIn => ("ccpa_opt_in", None),
                };
                Allowed {
                    allowed: true,
                    grounds,
                    basis,
                }
                .serialize(s)
            }
            Eligibility::Denied(denial) => Denied {
                allowed: false,
                denial,
            }
            .serialize(s),
        }
    }
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
///
/// Minors (COMPLIANCE.md, "Minors, precisely"): whether a grant counts is
/// fixed by the subject's age when it was given. The subject's own grant
/// counts only if given at or above the age gate (for a GDPR consent), or
/// at 13 or over (for a Californian's sale/share opt-in); a parental consent
/// counts only if given below the gate (the GDPR age of digital consent, or
/// 13 under the CCPA). Among the decisions that count, the latest rules, and
/// a grant must be to an accepted notice version and unexpired. So a
/// parental consent carries on after the birthday until the subject decides
/// for themselves, and never overrides an adult's own decisions. An unknown
/// birth date counts as below every gate.
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
        let ccpa = regime == Regime::Ccpa;
        // Under the CCPA an opt-in the consumer gave below 13 never counts
        // (R12), not even to lift an earlier opt-out, and not after the
        // birthday either. An unknown birth date may be under 13.
        let opt = events.iter().rev().find(|e| match e.kind {
            EventKind::OptOutSaleShare | EventKind::Gpc => true,
            EventKind::OptInSaleShare => !ccpa || !below_at(s.birth_date, CCPA_PARENTAL_AGE, e.at),
            _ => false,
        });
        match opt.map(|e| e.kind) {
            Some(EventKind::OptOutSaleShare) => return Denied(Denial::OptedOut),
            Some(EventKind::Gpc) => return Denied(Denial::GlobalPrivacyControl),
            _ => {}
        }
        if ccpa {
            match age {
                Some(a) if a >= CCPA_OPT_IN_AGE => {
                    grounds = if opt.is_some() {
                        Grounds::CcpaOptIn
                    } else {
                        Grounds::CcpaNoOptOut
                    }
                }
                _ => match ccpa_minor(policy, s, events, purpose, now, age) {
                    Ok(g) => grounds = g,
                    Err(d) => return Denied(d),
                },
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
        let parent_gate = parental_gate(policy, s.jurisdiction);
        // Which grants count is fixed by the age when each was given (R9):
        // the subject's own grant only from the age gate on, a parental
        // consent only below it. An unknown birth date may be below it.
        let counts = |e: &EventRecord| match e.kind {
            EventKind::ConsentGranted => !gated || !below_at(s.birth_date, consent_age, e.at),
            EventKind::ParentalConsent => {
                parent_gate.is_some_and(|g| below_at(s.birth_date, g, e.at))
            }
            _ => true,
        };
        let latest = latest_decision(events, purpose, spec.email_channel, counts)
            .filter(|e| e.kind != EventKind::SoftOptIn || spec.email_soft_opt_in);
        let age_denial = || match age {
            Some(age) => Denial::UnderAgeOfConsent {
                age,
                required: consent_age,
            },
            None => Denial::AgeUnknown {
                required: consent_age,
            },
        };
        let decided = match latest {
            None if minor => Err(age_denial()),
            None if needs_consent || uses.special => Err(Denial::NoConsent),
            None => Err(Denial::NoEmailPermission),
            Some(e) => match e.kind {
                EventKind::ConsentRefused => Err(Denial::ConsentRefused),
                EventKind::ConsentWithdrawn => Err(Denial::ConsentWithdrawn),
                EventKind::Unsubscribe => Err(Denial::Unsubscribed),
                EventKind::SoftOptIn if uses.special => Err(Denial::NoExplicitConsent),
                EventKind::SoftOptIn => Ok(Grounds::SoftOptIn),
                kind => grant_validity(policy, s, purpose, e, now).and_then(|()| {
                    if uses.special && !e.explicit {
                        Err(Denial::NoExplicitConsent)
                    } else if kind == EventKind::ParentalConsent {
                        Ok(Grounds::ParentalConsent)
                    } else {
                        Ok(Grounds::Consent)
                    }
                }),
            },
        };
        match decided {
            Ok(g) => {
                if !matches!(grounds, Grounds::ParentalConsent | Grounds::CcpaOptIn) {
                    grounds = g;
                }
            }
            Err(d) => {
                // A grant of the subject's own, later than whatever decided,
                // would have ruled had it counted: the age is the reason.
                let ignored = events.iter().rposition(|e| {
                    e.kind == EventKind::ConsentGranted && e.purpose == Some(purpose) && !counts(e)
                });
                let ruling = latest.and_then(|l| events.iter().rposition(|e| std::ptr::eq(e, l)));
                return Denied(match (ignored, s.birth_date) {
                    (Some(i), _) if ruling.is_none_or(|r| i > r) && minor => age_denial(),
                    (Some(i), Some(b)) if ruling.is_none_or(|r| i > r) => Denial::GrantedBelowAge {
                        age: age_on(b, Timestamp::from_unix(events[i].at).date()),
                        required: consent_age,
                    },
                    _ => d,
                });
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

/// Below this age a Californian's sale/share opt-in must come from a parent.
const CCPA_PARENTAL_AGE: u32 = 13;
/// Below this age a Californian must opt in to sale and sharing.
const CCPA_OPT_IN_AGE: u32 = 16;

/// The age below which a parental consent stands in for the subject's own
/// decisions in a jurisdiction: the GDPR age of digital consent (R9), 13
/// under the CCPA (R12), and none elsewhere (`None`).
pub fn parental_gate(policy: &Policy, j: JurisdictionId) -> Option<u32> {
    match policy.jurisdiction(j).regime {
        Regime::Gdpr => policy.consent_age(j),
        Regime::Ccpa => Some(CCPA_PARENTAL_AGE),
        Regime::None => None,
    }
}

/// Was someone born on `birth` younger than `gate` years at Unix time `t`?
/// An unknown birth date may be: `true`.
fn below_at(birth: Option<Date>, gate: u32, t: i64) -> bool {
    birth.is_none_or(|b| t < birthday_instant(b, gate).unix())
}

/// R12 for a Californian under 16, or of unknown age, at `now`: the latest
/// of the opt-ins that count (the consumer's own, given at 13 or over; a
/// parent's consent to the purpose, given under 13), the opt-outs, and the
/// refusals and withdrawals of the purpose decides. A parental consent
/// still valid after the 13th birthday continues until the consumer decides
/// for themselves. The opt-in that rules must pass the consent checks:
/// notice version accepted by the purpose, within its consent validity.
fn ccpa_minor(
    policy: &Policy,
    s: &SubjectFacts<'_>,
    events: &[EventRecord],
    purpose: PurposeId,
    now: i64,
    age: Option<u32>,
) -> Result<Grounds, Denial> {
    let latest = events.iter().rev().find(|e| match e.kind {
        EventKind::OptOutSaleShare | EventKind::Gpc => true,
        EventKind::OptInSaleShare => !below_at(s.birth_date, CCPA_PARENTAL_AGE, e.at),
        EventKind::ParentalConsent => {
            e.purpose == Some(purpose) && below_at(s.birth_date, CCPA_PARENTAL_AGE, e.at)
        }
        EventKind::ConsentRefused | EventKind::ConsentWithdrawn => e.purpose == Some(purpose),
        _ => false,
    });
    let Some(e) = latest else {
        return Err(Denial::MinorWithoutOptIn {
            age,
            parental_needed: age.is_none_or(|a| a < CCPA_PARENTAL_AGE),
        });
    };
    match e.kind {
        EventKind::OptOutSaleShare => Err(Denial::OptedOut),
        EventKind::Gpc => Err(Denial::GlobalPrivacyControl),
        EventKind::ConsentRefused => Err(Denial::ConsentRefused),
        EventKind::ConsentWithdrawn => Err(Denial::ConsentWithdrawn),
        kind => {
            grant_validity(policy, s, purpose, e, now)?;
            Ok(if kind == EventKind::ParentalConsent {
                Grounds::ParentalConsent
            } else {
                Grounds::CcpaOptIn
            })
        }
    }
}

/// Is a grant (or opt-in) valid for `purpose` at `now`: given to a notice
/// version the purpose accepts, and not expired?
fn grant_validity(
    policy: &Policy,
    s: &SubjectFacts<'_>,
    purpose: PurposeId,
    e: &EventRecord,
    now: i64,
) -> Result<(), Denial> {
    let version = s.strings.get(e.notice);
    if !policy.accepts_notice(purpose, version) {
        return Err(Denial::NoticeNotAccepted {
            version: version.to_string(),
        });
    }
    let expiry = grant_expiry(policy, purpose, e);
    if now >= expiry {
        return Err(Denial::ConsentExpired {
            expired_at: Timestamp::from_unix(expiry),
        });
    }
    Ok(())
}

/// The latest event (among those given, already cut at the evaluation time)
/// that decides consent for `purpose`: grants, refusals, withdrawals,
/// parental consents, soft opt-ins and, for email purposes, unsubscribes;
/// only those `counts` keeps.
fn latest_decision(
    events: &[EventRecord],
    purpose: PurposeId,
    email: bool,
    counts: impl Fn(&EventRecord) -> bool,
) -> Option<&EventRecord> {
    events.iter().rev().find(|e| {
        let decides = match e.kind {
            EventKind::ConsentGranted
            | EventKind::ConsentRefused
            | EventKind::ConsentWithdrawn
            | EventKind::ParentalConsent
            | EventKind::SoftOptIn => e.purpose == Some(purpose),
            EventKind::Unsubscribe => email && e.purpose.is_none_or(|p| p == purpose),
            _ => false,
        };
        decides && counts(e)
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
        // A sale/share opt-in has no purpose; it is held to the consent
        // validity of each purpose it stands for (R12).
        if (e.kind.is_grant() && e.purpose == Some(purpose)) || e.kind == EventKind::OptInSaleShare
        {
            let x = grant_expiry(policy, purpose, e);
            if x > now {
                best = best.min(x);
            }
        }
    }
    if let Some(b) = s.birth_date {
        let gate = policy.consent_age(s.jurisdiction).unwrap_or(16);
        let this_year = at.date().year();
        for years in [13, 16, gate] {
            // The birthday falls in year `b.year() + years` (29 February
            // moves to 1 March of the same year): one in an earlier year
            // than `at`'s is already past, without building the date.
            if i64::from(b.year()) + i64::from(years) < i64::from(this_year) {
                continue;
            }
            let t = birthday_instant(b, years).unix();
            if t > now {
                best = best.min(t);
            }
        }
    }
    (best != i64::MAX).then(|| Timestamp::from_unix(best))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{PolicyBuilder, PurposeSpec};
    use crate::timestamp::parse_date;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn rec(
        kind: EventKind,
        purpose: Option<PurposeId>,
        at: &str,
        notice: u32,
        seq: u64,
    ) -> EventRecord {
        EventRecord {
            at: ts(at).unix(),
            seq,
            expires_at: i64::MAX,
            purpose,
            notice,
            proof: 0,
            kind,
            explicit: false,
        }
    }

    /// Recording refuses a parental consent for an adult; should one be in
    /// a history all the same (older data), it never counts.
    #[test]
    fn a_parental_consent_given_to_an_adult_never_overrides_their_decisions() {
        let p = PolicyBuilder::new("Test Ltd")
            .purpose(
                PurposeSpec::new("marketing.email", LawfulBasis::Consent)
                    .notice_versions(&["v1"])
                    .email(false),
            )
            .build()
            .unwrap();
        let email = p.purpose_id("marketing.email").unwrap();
        let mut strings = Interner::default();
        let v1 = strings.intern("v1");
        let events = [
            rec(
                EventKind::ConsentGranted,
                Some(email),
                "2026-01-01T00:00:00Z",
                v1,
                0,
            ),
            rec(
                EventKind::Unsubscribe,
                None,
                "2026-02-01T00:00:00Z",
                u32::MAX,
                1,
            ),
            rec(
                EventKind::ParentalConsent,
                Some(email),
                "2026-03-01T00:00:00Z",
                v1,
                2,
            ),
        ];
        let facts = SubjectFacts {
            jurisdiction: p.jurisdiction_id("EU-DE").unwrap(),
            birth_date: parse_date("1980-01-01").ok(),
            erased: false,
            events: &events,
            strings: &strings,
        };
        let at = ts("2026-06-01T00:00:00Z");
        assert_eq!(
            eligibility(&p, &facts, email, at, DataUse::default()),
            Eligibility::Denied(Denial::Unsubscribed)
        );
        // The same history for a child: the parental consent rules.
        let child = SubjectFacts {
            birth_date: parse_date("2014-01-01").ok(),
            ..facts
        };
        assert_eq!(
            eligibility(&p, &child, email, at, DataUse::default()),
            Eligibility::Allowed(Grounds::ParentalConsent)
        );
    }
}
