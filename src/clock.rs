//! The host's clock: the one source of "now" for every release.
//!
//! Eligibility (consent, objections, opt-outs, restriction, age gates) is
//! always judged as of the instant data leaves the engine, read from the
//! [`Clock`] the host gave the engine, never from a time a caller passes.
//! A caller may still choose a reference time for the predicate's relative
//! times ("bought in the 90 days before Monday"), but that time never
//! relaxes eligibility or staleness.
//!
//! The host is trusted to supply the clock (the system clock by default);
//! tests inject a [`ManualClock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::timestamp::Timestamp;

/// A source of the current instant, supplied by the host.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock (UTC, whole seconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that shows what it was last set to; clones share the instant.
/// For tests and for hosts that drive time themselves (a replay, a
/// simulation).
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn new(at: Timestamp) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(at.unix())))
    }
    /// Sets the instant it shows.
    pub fn set(&self, at: Timestamp) {
        self.0.store(at.unix(), Ordering::SeqCst);
    }
    /// Moves it forward (or back, for a negative value) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_is_shared_by_clones() {
        let t = Timestamp::parse("2026-03-01T00:00:00Z").unwrap();
        let c = ManualClock::new(t);
        let d = c.clone();
        d.advance(60);
        assert_eq!(c.now().unix(), t.unix() + 60);
        c.set(t);
        assert_eq!(d.now(), t);
    }
}
