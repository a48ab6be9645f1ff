//! Pseudonyms, k-threshold and differentially private counts.
//!
//! Three self-contained building blocks for releasing customer data and
//! statistics with less risk to the people in it:
//!
//! * [`pseudonym`]: keyed HMAC-SHA-256 pseudonyms of subject ids and email
//!   addresses, with a separate key per recipient, purpose and key version,
//!   derived by HKDF-SHA-256 from one master secret supplied by the host.
//!   Identifiers are first normalised by the documented rules of
//!   [`normalize`].
//! * [`aggregate`]: counts below a threshold `k` (default [`aggregate::DEFAULT_K`]
//!   = 11) are never published exactly, and breakdowns apply complementary
//!   suppression so small cells cannot be recovered from the total.
//! * [`dp`]: ε-differentially private counts (discrete Laplace noise, sampled
//!   exactly with integer arithmetic) and a per-(actor, dataset) budget ledger.
//!
//! # Guarantees and their limits
//!
//! **Pseudonyms are still personal data.** Under GDPR Recital 26, data that
//! can be attributed to a person with additional information (here, the master
//! secret and the original ids) remains personal data. Pseudonymisation is a
//! safeguard (GDPR Art. 4(5), 25, 32), not anonymisation: consent, purpose
//! limitation, access and erasure duties still apply to pseudonymised lists.
//! What the construction does give: without the master secret, pseudonyms
//! cannot be linked to ids, and two recipients (or two purposes, or two key
//! versions) get unrelated pseudonyms for the same subject, so they cannot
//! join their lists with each other. Anyone holding the master secret (or one
//! derived key) and a candidate id can recompute its pseudonym, so the secret
//! must be kept like any other key, away from the recipients.
//!
//! **k-thresholds are not a formal privacy guarantee.** They stop a single
//! published table from showing groups smaller than `k`, and the
//! complementary suppression in [`aggregate::breakdown`] stops one table's
//! total from giving away a suppressed cell. They do *not* protect against:
//! differencing between overlapping segments or repeated queries (the count
//! of "segment A" minus the count of "segment A without Ann" reveals Ann);
//! combining several tables that share cells; background knowledge about some
//! members of a cell; or inference from the suppression pattern itself. When
//! an analyst can choose queries freely, use differential privacy instead.
//!
//! **What ε means.** A mechanism is ε-differentially private if, for any two
//! datasets that differ in one person and any set of outputs, the probability
//! of the output falling in that set changes by at most a factor `e^ε`.
//! Smaller ε means more noise and more privacy; ε = 1 bounds that factor by
//! about 2.72, ε = 0.1 by about 1.105. Costs add up: answering queries with
//! ε₁ and ε₂ about the same people is (ε₁ + ε₂)-DP, which is why the
//! [`dp::BudgetLedger`] refuses queries once the total is spent. The guarantee
//! is per person-record: if one person appears in many rows, the sensitivity
//! of a count is larger than 1 and the noise must be scaled accordingly
//! (count distinct people, not rows). Budgets are per (actor, dataset) in the
//! ledger; actors who collude, or datasets about the same people, compose, and
//! the ledger cannot see that. DP noise needs an unpredictable random source:
//! use [`dp::SystemRandomSource`], never the seeded test generator.

pub mod aggregate;
pub mod dp;
pub mod normalize;
pub mod pseudonym;
