//! Per-(actor, dataset) privacy-budget ledger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{DpError, Epsilon, RandomSource, Rational, noisy_count};

/// Version of the JSON budget-file layout written by [`BudgetLedger::to_json`].
const FORMAT_VERSION: u32 = 1;

/// Errors from the budget ledger.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// Spending `requested` would exceed the remaining budget.
    #[error(
        "privacy budget exhausted for actor {actor:?} on dataset {dataset:?}: \
         requested epsilon {requested}, remaining {remaining}"
    )]
    Exhausted {
        /// Who asked.
        actor: String,
        /// Which dataset.
        dataset: String,
        /// Epsilon requested by the refused query.
        requested: Epsilon,
        /// Epsilon still available (unchanged by the refusal).
        remaining: Rational,
    },
    /// No budget has been set for this actor and dataset.
    #[error("no privacy budget set for actor {actor:?} on dataset {dataset:?}")]
    NoBudget {
        /// Who asked.
        actor: String,
        /// Which dataset.
        dataset: String,
    },
    /// A new total would be below what has already been spent.
    #[error(
        "cannot set budget for actor {actor:?} on dataset {dataset:?} to {total}: {spent} already spent"
    )]
    BelowSpent {
        /// Actor.
        actor: String,
        /// Dataset.
        dataset: String,
        /// Requested total.
        total: Epsilon,
        /// Already spent.
        spent: Rational,
    },
    /// Actor or dataset name was empty.
    #[error("actor and dataset names must not be empty")]
    EmptyName,
    /// The exact sum of spent epsilons no longer fits in 64-bit fractions.
    #[error("budget arithmetic overflow for actor {actor:?} on dataset {dataset:?}")]
    Overflow {
        /// Actor.
        actor: String,
        /// Dataset.
        dataset: String,
    },
    /// The budget file could not be read or written.
    #[error("invalid budget file: {0}")]
    File(String),
}

/// One (actor, dataset) budget: its total and what has been spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    total: Rational,
    spent: Rational,
}

impl Account {
    /// Total epsilon allowed.
    pub fn total(&self) -> Rational {
        self.total
    }

    /// Epsilon spent so far.
    pub fn spent(&self) -> Rational {
        self.spent
    }

    /// Epsilon still available.
    pub fn remaining(&self) -> Rational {
        // Invariant spent <= total is kept by every constructor and mutation.
        self.total.checked_sub(self.spent).unwrap_or(Rational::ZERO)
    }
}

#[derive(Serialize, Deserialize)]
struct LedgerFile {
    format: u32,
    /// actor -> dataset -> account
    accounts: BTreeMap<String, BTreeMap<String, Account>>,
}

/// Privacy budgets per (actor, dataset), with exact rational accounting.
///
/// Serialises to JSON of the form
/// `{"format":1,"accounts":{"ACTOR":{"DATASET":{"total":"1","spent":"1/4"}}}}`
/// so a command-line tool can keep it in a budget file.
///
/// ```
/// use privseg::privacy::dp::{BudgetLedger, BudgetError, Epsilon, SplitMix64};
///
/// let mut ledger = BudgetLedger::new();
/// ledger.set_budget("analyst", "orders-2025", "1".parse().unwrap()).unwrap();
/// let mut rng = SplitMix64::new(1); // tests only
/// let eps: Epsilon = "0.5".parse().unwrap();
/// ledger.noisy_count("analyst", "orders-2025", 1200, eps, &mut rng).unwrap();
/// ledger.noisy_count("analyst", "orders-2025", 1200, eps, &mut rng).unwrap();
/// let refused = ledger.spend("analyst", "orders-2025", eps).unwrap_err();
/// assert!(matches!(refused, BudgetError::Exhausted { .. }));
///
/// let saved = ledger.to_json().unwrap();
/// assert_eq!(BudgetLedger::from_json(&saved).unwrap(), ledger);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BudgetLedger {
    accounts: BTreeMap<String, BTreeMap<String, Account>>,
}

impl BudgetLedger {
    /// An empty ledger (every query is refused until a budget is set).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the total budget for `(actor, dataset)`, creating the account if
    /// needed. Spending so far is kept.
    ///
    /// # Errors
    /// Empty names, or a total below what is already spent.
    pub fn set_budget(
        &mut self,
        actor: &str,
        dataset: &str,
        total: Epsilon,
    ) -> Result<(), BudgetError> {
        if actor.is_empty() || dataset.is_empty() {
            return Err(BudgetError::EmptyName);
        }
        let total_r = Rational::from(total);
        let account = self
            .accounts
            .entry(actor.to_owned())
            .or_default()
            .entry(dataset.to_owned())
            .or_insert(Account {
                total: total_r,
                spent: Rational::ZERO,
            });
        if account.spent > total_r {
            return Err(BudgetError::BelowSpent {
                actor: actor.to_owned(),
                dataset: dataset.to_owned(),
                total,
                spent: account.spent,
            });
        }
        account.total = total_r;
        Ok(())
    }

    /// The account for `(actor, dataset)`, if a budget was set.
    pub fn account(&self, actor: &str, dataset: &str) -> Option<&Account> {
        self.accounts.get(actor)?.get(dataset)
    }

    /// Epsilon still available for `(actor, dataset)`.
    ///
    /// # Errors
    /// [`BudgetError::NoBudget`] if no budget was set.
    pub fn remaining(&self, actor: &str, dataset: &str) -> Result<Rational, BudgetError> {
        self.account(actor, dataset)
            .map(Account::remaining)
            .ok_or_else(|| BudgetError::NoBudget {
                actor: actor.to_owned(),
                dataset: dataset.to_owned(),
            })
    }

    /// Charges `epsilon` to `(actor, dataset)` and returns what remains.
    /// A refused request changes nothing.
    ///
    /// # Errors
    /// [`BudgetError::NoBudget`], or [`BudgetError::Exhausted`] naming the
    /// actor, dataset, requested and remaining epsilon.
    pub fn spend(
        &mut self,
        actor: &str,
        dataset: &str,
        epsilon: Epsilon,
    ) -> Result<Rational, BudgetError> {
        let account = self
            .accounts
            .get_mut(actor)
            .and_then(|d| d.get_mut(dataset))
            .ok_or_else(|| BudgetError::NoBudget {
                actor: actor.to_owned(),
                dataset: dataset.to_owned(),
            })?;
        let remaining = account.remaining();
        if Rational::from(epsilon) > remaining {
            return Err(BudgetError::Exhausted {
                actor: actor.to_owned(),
                dataset: dataset.to_owned(),
                requested: epsilon,
                remaining,
            });
        }
        let spent =
            account
                .spent
                .checked_add(epsilon.into())
                .ok_or_else(|| BudgetError::Overflow {
                    actor: actor.to_owned(),
                    dataset: dataset.to_owned(),
                })?;
        account.spent = spent;
        Ok(account.remaining())
    }

    /// Charges `epsilon` and, if allowed, returns an ε-DP noisy `count`
    /// (see [`noisy_count`](super::noisy_count)). The budget is charged before
    /// sampling, so a failure of the random source still costs the budget
    /// (the safe direction).
    ///
    /// # Errors
    /// Budget refusal, count above `i64::MAX` (checked before charging), or a
    /// random source failure.
    pub fn noisy_count<R: RandomSource + ?Sized>(
        &mut self,
        actor: &str,
        dataset: &str,
        count: u64,
        epsilon: Epsilon,
        rng: &mut R,
    ) -> Result<i64, DpError> {
        if i64::try_from(count).is_err() {
            return Err(DpError::CountTooLarge { count });
        }
        self.spend(actor, dataset, epsilon)?;
        noisy_count(count, epsilon, rng)
    }

    /// Serialises the ledger as JSON (see the type docs for the layout).
    ///
    /// # Errors
    /// [`BudgetError::File`] if serialisation fails.
    pub fn to_json(&self) -> Result<String, BudgetError> {
        let file = LedgerFile {
            format: FORMAT_VERSION,
            accounts: self.accounts.clone(),
        };
        serde_json::to_string_pretty(&file).map_err(|e| BudgetError::File(e.to_string()))
    }

    /// Reads a ledger written by [`BudgetLedger::to_json`], checking that no
    /// account has spent more than its total.
    ///
    /// # Errors
    /// [`BudgetError::File`] for malformed JSON, an unknown format version,
    /// empty names, or an account with `spent > total`.
    pub fn from_json(json: &str) -> Result<Self, BudgetError> {
        let file: LedgerFile =
            serde_json::from_str(json).map_err(|e| BudgetError::File(e.to_string()))?;
        if file.format != FORMAT_VERSION {
            return Err(BudgetError::File(format!(
                "unsupported format version {} (expected {FORMAT_VERSION})",
                file.format
            )));
        }
        for (actor, datasets) in &file.accounts {
            for (dataset, account) in datasets {
                if actor.is_empty() || dataset.is_empty() {
                    return Err(BudgetError::File("empty actor or dataset name".into()));
                }
                if account.spent > account.total {
                    return Err(BudgetError::File(format!(
                        "actor {actor:?} on dataset {dataset:?} has spent {} of a total of {}",
                        account.spent, account.total
                    )));
                }
            }
        }
        Ok(Self {
            accounts: file.accounts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(s: &str) -> Epsilon {
        s.parse().unwrap()
    }

    #[test]
    fn exhaustion_message_names_everything() {
        let mut l = BudgetLedger::new();
        l.set_budget("alice", "orders", eps("1")).unwrap();
        l.spend("alice", "orders", eps("0.75")).unwrap();
        let err = l.spend("alice", "orders", eps("0.5")).unwrap_err();
        let msg = err.to_string();
        for part in ["alice", "orders", "1/2", "1/4"] {
            assert!(msg.contains(part), "{msg}");
        }
        // Refusal changes nothing; an exact fit is still allowed.
        assert_eq!(
            l.remaining("alice", "orders").unwrap(),
            "1/4".parse().unwrap()
        );
        assert_eq!(
            l.spend("alice", "orders", eps("0.25")).unwrap(),
            Rational::ZERO
        );
    }

    #[test]
    fn budgets_are_separate_per_actor_and_dataset() {
        let mut l = BudgetLedger::new();
        l.set_budget("a", "d1", eps("1")).unwrap();
        l.set_budget("a", "d2", eps("1")).unwrap();
        l.spend("a", "d1", eps("1")).unwrap();
        assert!(l.spend("a", "d2", eps("1")).is_ok());
        assert!(matches!(
            l.spend("b", "d1", eps("0.1")),
            Err(BudgetError::NoBudget { .. })
        ));
    }

    #[test]
    fn cannot_lower_total_below_spent() {
        let mut l = BudgetLedger::new();
        l.set_budget("a", "d", eps("2")).unwrap();
        l.spend("a", "d", eps("1.5")).unwrap();
        assert!(matches!(
            l.set_budget("a", "d", eps("1")),
            Err(BudgetError::BelowSpent { .. })
        ));
        l.set_budget("a", "d", eps("3")).unwrap();
        assert_eq!(l.remaining("a", "d").unwrap(), "3/2".parse().unwrap());
        assert_eq!(l.set_budget("", "d", eps("1")), Err(BudgetError::EmptyName));
    }

    #[test]
    fn json_round_trip_and_validation() {
        let mut l = BudgetLedger::new();
        l.set_budget("a", "d", eps("1")).unwrap();
        l.spend("a", "d", eps("1/3")).unwrap();
        let json = l.to_json().unwrap();
        assert!(json.contains("\"spent\": \"1/3\""), "{json}");
        assert_eq!(BudgetLedger::from_json(&json).unwrap(), l);
        let overspent = r#"{"format":1,"accounts":{"a":{"d":{"total":"1","spent":"2"}}}}"#;
        assert!(BudgetLedger::from_json(overspent).is_err());
        let future = r#"{"format":2,"accounts":{}}"#;
        assert!(BudgetLedger::from_json(future).is_err());
        assert!(BudgetLedger::from_json("not json").is_err());
    }
}
