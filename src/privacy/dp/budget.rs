//! The privacy-budget ledger: what has been spent of each budget.
//!
//! An account is named by a *scope*, the data it protects (the policy's
//! controller, for an engine), and a *budget*, the purpose key of the
//! policy's budget. Neither is chosen by whoever queries: an engine takes
//! both from its policy, so a new actor, role or data-set name opens no new
//! account.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{DpError, Epsilon, RandomSource, Rational, noisy_count};

/// Version of the JSON budget-file layout written by [`BudgetLedger::to_json`].
/// Version 1 named accounts by actor and data-set names that callers chose;
/// such files are refused rather than reinterpreted.
const FORMAT_VERSION: u32 = 2;

/// Errors from the budget ledger.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BudgetError {
    /// Spending `requested` would exceed the remaining budget.
    #[error(
        "privacy budget exhausted for budget {budget:?} of {scope:?}: \
         requested epsilon {requested}, remaining {remaining}"
    )]
    Exhausted {
        /// The data the budget protects.
        scope: String,
        /// The budget (a purpose key).
        budget: String,
        /// Epsilon requested by the refused query.
        requested: Epsilon,
        /// Epsilon still available (unchanged by the refusal).
        remaining: Rational,
    },
    /// No budget has been set for this account.
    #[error("no privacy budget set for budget {budget:?} of {scope:?}")]
    NoBudget {
        /// The data.
        scope: String,
        /// The budget.
        budget: String,
    },
    /// The policy gives the purpose no differential-privacy budget.
    #[error(
        "the policy sets no differential-privacy budget for purpose {purpose}: \
         no noisy count can be released for it"
    )]
    NoPolicyBudget {
        /// The purpose asked for.
        purpose: String,
    },
    /// The epsilon asked for is above the policy's per-query cap.
    #[error(
        "epsilon {requested} is above the policy's cap of {cap} per query for budget {budget:?}; \
         ask for at most {cap}"
    )]
    AboveCap {
        /// The budget.
        budget: String,
        /// Epsilon asked for.
        requested: Epsilon,
        /// The cap.
        cap: Epsilon,
    },
    /// The ledger shows less spent than the audit log records: it was
    /// deleted, replaced by an older copy or edited.
    #[error(
        "the budget ledger shows {ledger_spent} spent on budget {budget:?} of {scope:?} \
         but the audit log records charges of {audit_spent}: the ledger was deleted, \
         rolled back or edited; refusing to start over (restore the ledger)"
    )]
    BehindAudit {
        /// The data.
        scope: String,
        /// The budget.
        budget: String,
        /// What the ledger says was spent.
        ledger_spent: Rational,
        /// What the audit log records.
        audit_spent: Rational,
    },
    /// A new total would be below what has already been spent.
    #[error("cannot set budget {budget:?} of {scope:?} to {total}: {spent} already spent")]
    BelowSpent {
        /// The data.
        scope: String,
        /// The budget.
        budget: String,
        /// Requested total.
        total: Epsilon,
        /// Already spent.
        spent: Rational,
    },
    /// Scope or budget name was empty.
    #[error("scope and budget names must not be empty")]
    EmptyName,
    /// The exact sum of spent epsilons no longer fits in 64-bit fractions.
    #[error("budget arithmetic overflow for budget {budget:?} of {scope:?}")]
    Overflow {
        /// The data.
        scope: String,
        /// The budget.
        budget: String,
    },
    /// The budget file could not be read, locked or written.
    #[error("budget file: {0}")]
    File(String),
}

/// One account: its total and what has been spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    total: Rational,
    spent: Rational,
}

impl Account {
    /// Total epsilon allowed (as of the last charge or setting).
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

/// What one accepted charge spent, and where the account stands after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    /// The data the budget protects.
    pub scope: String,
    /// The budget (a purpose key).
    pub budget: String,
    /// Epsilon charged.
    pub epsilon: Epsilon,
    /// Epsilon spent in all, this charge included.
    pub spent: Rational,
    /// The total budget.
    pub total: Rational,
    /// Epsilon still available.
    pub remaining: Rational,
}

#[derive(Serialize, Deserialize)]
struct LedgerFile {
    format: u32,
    /// scope -> budget -> account
    accounts: BTreeMap<String, BTreeMap<String, Account>>,
}

/// Privacy budgets per (scope, budget), with exact rational accounting.
///
/// Serialises to JSON of the form
/// `{"format":2,"accounts":{"SCOPE":{"BUDGET":{"total":"1","spent":"1/4"}}}}`;
/// [`super::LedgerFile`] keeps it in a file shared by processes.
///
/// ```
/// use privseg::privacy::dp::{BudgetLedger, BudgetError, Epsilon};
///
/// let mut ledger = BudgetLedger::new();
/// let total: Epsilon = "1".parse().unwrap();
/// let eps: Epsilon = "0.5".parse().unwrap();
/// ledger.charge("Acme Ltd", "analytics", total, eps).unwrap();
/// let c = ledger.charge("Acme Ltd", "analytics", total, eps).unwrap();
/// assert_eq!(c.remaining, "0".parse().unwrap());
/// let refused = ledger.charge("Acme Ltd", "analytics", total, eps).unwrap_err();
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
    /// An empty ledger (every [`spend`](Self::spend) is refused until a
    /// budget is set).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the total of `(scope, budget)`, creating the account if needed.
    /// Spending so far is kept.
    ///
    /// # Errors
    /// Empty names, or a total below what is already spent.
    pub fn set_budget(
        &mut self,
        scope: &str,
        budget: &str,
        total: Epsilon,
    ) -> Result<(), BudgetError> {
        if scope.is_empty() || budget.is_empty() {
            return Err(BudgetError::EmptyName);
        }
        let total_r = Rational::from(total);
        let account = self
            .accounts
            .entry(scope.to_owned())
            .or_default()
            .entry(budget.to_owned())
            .or_insert(Account {
                total: total_r,
                spent: Rational::ZERO,
            });
        if account.spent > total_r {
            return Err(BudgetError::BelowSpent {
                scope: scope.to_owned(),
                budget: budget.to_owned(),
                total,
                spent: account.spent,
            });
        }
        account.total = total_r;
        Ok(())
    }

    /// The account of `(scope, budget)`, if one was opened.
    pub fn account(&self, scope: &str, budget: &str) -> Option<&Account> {
        self.accounts.get(scope)?.get(budget)
    }

    /// Epsilon spent on `(scope, budget)`; zero for an account never opened.
    pub fn spent(&self, scope: &str, budget: &str) -> Rational {
        self.account(scope, budget)
            .map_or(Rational::ZERO, Account::spent)
    }

    /// Every account, by scope then budget.
    pub fn accounts(&self) -> impl Iterator<Item = (&str, &str, &Account)> + '_ {
        self.accounts.iter().flat_map(|(scope, budgets)| {
            budgets
                .iter()
                .map(move |(budget, a)| (scope.as_str(), budget.as_str(), a))
        })
    }

    /// Epsilon still available for `(scope, budget)`.
    ///
    /// # Errors
    /// [`BudgetError::NoBudget`] if no budget was set.
    pub fn remaining(&self, scope: &str, budget: &str) -> Result<Rational, BudgetError> {
        self.account(scope, budget)
            .map(Account::remaining)
            .ok_or_else(|| BudgetError::NoBudget {
                scope: scope.to_owned(),
                budget: budget.to_owned(),
            })
    }

    /// Charges `epsilon` to `(scope, budget)` under the total `total` (the
    /// policy's, which wins over the total recorded before), opening the
    /// account if needed. A refused charge changes nothing.
    ///
    /// # Errors
    /// [`BudgetError::Exhausted`] when `spent + epsilon > total`; empty
    /// names; arithmetic overflow.
    pub fn charge(
        &mut self,
        scope: &str,
        budget: &str,
        total: Epsilon,
        epsilon: Epsilon,
    ) -> Result<Charge, BudgetError> {
        if scope.is_empty() || budget.is_empty() {
            return Err(BudgetError::EmptyName);
        }
        let total = Rational::from(total);
        let spent = self.spent(scope, budget);
        let overflow = || BudgetError::Overflow {
            scope: scope.to_owned(),
            budget: budget.to_owned(),
        };
        let after = spent.checked_add(epsilon.into()).ok_or_else(overflow)?;
        if after > total {
            return Err(BudgetError::Exhausted {
                scope: scope.to_owned(),
                budget: budget.to_owned(),
                requested: epsilon,
                remaining: total.checked_sub(spent).unwrap_or(Rational::ZERO),
            });
        }
        // Nothing below can fail.
        let account = Account {
            total,
            spent: after,
        };
        self.accounts
            .entry(scope.to_owned())
            .or_default()
            .insert(budget.to_owned(), account);
        Ok(Charge {
            scope: scope.to_owned(),
            budget: budget.to_owned(),
            epsilon,
            spent: after,
            total,
            remaining: account.remaining(),
        })
    }

    /// Charges `epsilon` to an account opened with
    /// [`set_budget`](Self::set_budget) and returns what remains. A refused
    /// request changes nothing.
    ///
    /// # Errors
    /// [`BudgetError::NoBudget`], or [`BudgetError::Exhausted`] naming the
    /// account, requested and remaining epsilon.
    pub fn spend(
        &mut self,
        scope: &str,
        budget: &str,
        epsilon: Epsilon,
    ) -> Result<Rational, BudgetError> {
        let account = self
            .account(scope, budget)
            .ok_or_else(|| BudgetError::NoBudget {
                scope: scope.to_owned(),
                budget: budget.to_owned(),
            })?;
        let total = account.total;
        let remaining = account.remaining();
        if Rational::from(epsilon) > remaining {
            return Err(BudgetError::Exhausted {
                scope: scope.to_owned(),
                budget: budget.to_owned(),
                requested: epsilon,
                remaining,
            });
        }
        let spent =
            account
                .spent
                .checked_add(epsilon.into())
                .ok_or_else(|| BudgetError::Overflow {
                    scope: scope.to_owned(),
                    budget: budget.to_owned(),
                })?;
        let account = Account { total, spent };
        self.accounts
            .entry(scope.to_owned())
            .or_default()
            .insert(budget.to_owned(), account);
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
        scope: &str,
        budget: &str,
        count: u64,
        epsilon: Epsilon,
        rng: &mut R,
    ) -> Result<i64, DpError> {
        if i64::try_from(count).is_err() {
            return Err(DpError::CountTooLarge { count });
        }
        self.spend(scope, budget, epsilon)?;
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
        if file.format == 1 {
            return Err(BudgetError::File(
                "format 1 kept budgets per actor and data-set name, which callers chose; \
                 it cannot be carried over to budgets per purpose"
                    .into(),
            ));
        }
        if file.format != FORMAT_VERSION {
            return Err(BudgetError::File(format!(
                "unsupported format version {} (expected {FORMAT_VERSION})",
                file.format
            )));
        }
        for (scope, budgets) in &file.accounts {
            for (budget, account) in budgets {
                if scope.is_empty() || budget.is_empty() {
                    return Err(BudgetError::File("empty scope or budget name".into()));
                }
                if account.spent > account.total {
                    return Err(BudgetError::File(format!(
                        "budget {budget:?} of {scope:?} has spent {} of a total of {}",
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
    fn charge_uses_the_given_total_and_refusal_changes_nothing() {
        let mut l = BudgetLedger::new();
        let c = l.charge("acme", "analytics", eps("1"), eps("1/3")).unwrap();
        assert_eq!(c.remaining, "2/3".parse().unwrap());
        // A lowered total applies at once; the refusal leaves the account.
        let err = l
            .charge("acme", "analytics", eps("1/2"), eps("1/4"))
            .unwrap_err();
        assert!(
            matches!(&err, BudgetError::Exhausted { remaining, .. } if *remaining == "1/6".parse().unwrap()),
            "{err}"
        );
        assert_eq!(
            l.account("acme", "analytics").unwrap().total(),
            "1".parse().unwrap()
        );
        assert_eq!(l.spent("acme", "analytics"), "1/3".parse().unwrap());
        // An exact fit is allowed; a refused first charge opens no account.
        l.charge("acme", "analytics", eps("1/2"), eps("1/6"))
            .unwrap();
        assert_eq!(l.remaining("acme", "analytics").unwrap(), Rational::ZERO);
        assert!(l.charge("acme", "ads", eps("1"), eps("2")).is_err());
        assert!(l.account("acme", "ads").is_none());
        assert_eq!(l.accounts().count(), 1);
    }

    #[test]
    fn budgets_are_separate_per_scope_and_budget() {
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
        let overspent = r#"{"format":2,"accounts":{"a":{"d":{"total":"1","spent":"2"}}}}"#;
        assert!(BudgetLedger::from_json(overspent).is_err());
        let old = r#"{"format":1,"accounts":{}}"#;
        assert!(BudgetLedger::from_json(old).is_err());
        let future = r#"{"format":3,"accounts":{}}"#;
        assert!(BudgetLedger::from_json(future).is_err());
        assert!(BudgetLedger::from_json("not json").is_err());
    }
}
