//! From decoded signals to consent events: a signal's decisions become
//! events of one subject, with the signal as the proof record (channel
//! `signal:<format>`, collector `cmp:<id>` where the signal names its CMP,
//! and the raw string's SHA-256 as evidence).

use super::mapping::{SignalDecision, SignalDecisionKind};
use crate::Timestamp;
use crate::consent::{ConsentEvent, EventKind};

/// The notice a CMP showed, which grants taken from its signals refer to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignalNotice {
    /// Notice version, as the policy lists it.
    pub version: String,
    /// SHA-256 of the notice text (64 hex digits).
    pub sha256_hex: String,
}

/// A decision that cannot become an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("signal decision {index} ({kind:?}) has no privseg purpose: map it in the signal mapping")]
pub struct UnmappedDecision {
    /// Index of the decision.
    pub index: usize,
    /// Its kind.
    pub kind: SignalDecisionKind,
}

/// Turns one subject's signal decisions into consent events. Grants,
/// refusals and objections need a purpose; opt-outs, opt-ins, GPC and
/// sensitive-data limits apply to every purpose they concern and carry none.
pub fn decisions_to_events(
    subject: &str,
    decisions: &[SignalDecision],
    notice: &SignalNotice,
) -> Result<Vec<ConsentEvent>, UnmappedDecision> {
    decisions
        .iter()
        .enumerate()
        .map(|(index, d)| {
            let (kind, needs_purpose) = match d.kind {
                SignalDecisionKind::ConsentGranted => (EventKind::ConsentGranted, true),
                SignalDecisionKind::ConsentRefused => (EventKind::ConsentRefused, true),
                SignalDecisionKind::Objection => (EventKind::Objection, false),
                SignalDecisionKind::OptOutSaleShare => (EventKind::OptOutSaleShare, false),
                SignalDecisionKind::OptInSaleShare => (EventKind::OptInSaleShare, false),
                SignalDecisionKind::LimitSensitive => (EventKind::LimitSensitive, false),
                SignalDecisionKind::Gpc => (EventKind::Gpc, false),
            };
            if needs_purpose && d.purpose.is_none() {
                return Err(UnmappedDecision {
                    index,
                    kind: d.kind,
                });
            }
            let purpose = match kind {
                EventKind::ConsentGranted | EventKind::ConsentRefused | EventKind::Objection => {
                    d.purpose.as_deref()
                }
                _ => None,
            };
            let mut e = ConsentEvent::new(subject, kind, purpose, Timestamp::from_unix(d.at));
            e.channel = format!("signal:{}", d.proof.format);
            e.collector = match d.proof.cmp_id {
                Some(id) => format!("cmp:{id}"),
                None => format!("signal:{}", d.proof.format),
            };
            if kind == EventKind::ConsentGranted {
                e.notice_version = Some(notice.version.clone());
                e.notice_sha256 = Some(notice.sha256_hex.clone());
            }
            e.evidence_sha256 = Some(d.proof.sha256_hex.clone());
            Ok(e)
        })
        .collect()
}
