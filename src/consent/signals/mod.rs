//! Decoders and encoders for consent signals (IAB TCF, GPP, US Privacy, GPC).
//!
//! * [`tcf`]: TCF v2.2/v2.3 TC strings (core, DisclosedVendors,
//!   AllowedVendors, PublisherTC segments) with policy validation.
//! * [`gpp`]: GPP strings (header, `tcfeuv2`, `uspv1`, `usnat` sections;
//!   other sections kept as opaque text).
//! * [`usnat`]: the GPP US National section, versions 1 and 2.
//! * [`usp`]: the US Privacy string (`1YNN`).
//! * [`gpc`]: the `Sec-GPC` header.
//! * [`mapping`]: configurable mapping of decoded signals to privseg purpose
//!   keys, producing [`mapping::SignalDecision`]s.
//!
//! All decoders return [`SignalError`] on bad input and never panic.

pub mod bits;
pub mod error;
pub mod events;
pub mod gpc;
pub mod gpp;
pub mod mapping;
pub mod tcf;
pub mod usnat;
pub mod usp;

pub use error::{SignalError, SignalResult};
