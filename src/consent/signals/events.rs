//! From decoded signals to consent events: a signal's decisions become
//! events of one subject, with the signal as the proof record (channel
//! `signal:<format>`, collector `cmp:<id>` where the signal names its CMP,
//! and the raw string's SHA-256 as evidence).

use super::mapping::{SignalDecision, SignalDecisionKind};
use crate::consent::{ConsentEvent, EventKind};
use crate::timestamp::Timestamp;

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

/// Why a signal string did not become consent events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalEventError {
    /// The string does not decode, or breaks a policy rule (the rule is
    /// named, with its field and bit offset): a decision is only taken from
    /// a signal that meets the rules, even though decoding alone is lenient.
    /// The message includes the signal error's, so it is not also given
    /// as the `source` (a chain would print it twice).
    #[error("signal refused: {0}")]
    Refused(super::SignalError),
    /// A decision has no privseg purpose.
    #[error(transparent)]
    Unmapped(#[from] UnmappedDecision),
}

impl From<super::SignalError> for SignalEventError {
    fn from(e: super::SignalError) -> Self {
        SignalEventError::Refused(e)
    }
}

/// Decodes a TCF, GPP or US Privacy string strictly under `opts` (minimum
/// TCF policy version, TCF v2.3 rules) and turns what it says into one
/// subject's consent events. A string that breaks a rule is refused with
/// the violation named; `at` (Unix seconds) dates the decisions of signals
/// that carry no time of their own.
pub fn signal_to_events(
    subject: &str,
    raw: &str,
    mapping: &super::mapping::SignalMapping,
    opts: &super::tcf::TcfOptions,
    notice: &SignalNotice,
    at: i64,
) -> Result<Vec<ConsentEvent>, SignalEventError> {
    use super::{SignalFormat, gpp, tcf, usp};
    let strict = tcf::TcfOptions {
        strict: true,
        ..*opts
    };
    let raw = raw.trim();
    let decisions = match SignalFormat::detect(raw)? {
        SignalFormat::Tcf => {
            let tc = tcf::TcString::decode_with(raw, &strict)?.tc;
            mapping.tcf_decisions(raw, &tc)
        }
        SignalFormat::Gpp => {
            let g = gpp::GppString::decode_with(raw, &gpp::GppOptions { tcf: strict })?.gpp;
            mapping.gpp_decisions(raw, &g, at)
        }
        SignalFormat::Usp => mapping.usp_decisions(raw, &usp::UsPrivacy::decode(raw)?, at),
    };
    Ok(decisions_to_events(subject, &decisions, notice)?)
}
