//! Integration tests for the discrete Laplace sampler and the budget ledger.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};

use privseg::policy::{LawfulBasis, Policy, PolicyBuilder, PurposeSpec, RoleSpec};
use privseg::privacy::dp::{
    BudgetError, BudgetLedger, BudgetStore, DpError, Epsilon, LedgerFile, Rational, SplitMix64,
    SystemRandomSource, noisy_count, sample_discrete_laplace,
};
use privseg::{Actor, Engine, Timestamp};
use proptest::prelude::*;

const SAMPLES: usize = 200_000;

/// Exact pmf of the discrete Laplace with P(y) ∝ exp(-eps·|y|).
fn pmf(y: i64, eps: f64) -> f64 {
    let q = (-eps).exp();
    (1.0 - q) / (1.0 + q) * q.powi(y.unsigned_abs() as i32)
}

/// Checks `samples` against the discrete Laplace with parameter `eps`:
/// a chi-square goodness-of-fit test over the bins `<= -4`, `-3..=3`, `>= 4`
/// (8 degrees of freedom, critical value 26.12 at p = 0.001), the mean
/// (within 5 standard errors of 0) and the variance (within 3 % of
/// `2q/(1-q)^2`, q = exp(-eps)).
fn check_against(samples: &[i64], eps: f64) -> Result<(), String> {
    let n = samples.len() as f64;
    let mut observed = [0f64; 9];
    for &y in samples {
        observed[(y.clamp(-4, 4) + 4) as usize] += 1.0;
    }
    let mut expected = [0f64; 9];
    for y in -3..=3i64 {
        expected[(y + 4) as usize] = pmf(y, eps) * n;
    }
    let inner: f64 = expected.iter().sum();
    expected[0] = (n - inner) / 2.0;
    expected[8] = (n - inner) / 2.0;
    let chi2: f64 = observed
        .iter()
        .zip(&expected)
        .map(|(o, e)| (o - e) * (o - e) / e)
        .sum();
    if chi2 > 26.12 {
        return Err(format!(
            "chi-square {chi2:.1} > 26.12; observed {observed:?}, expected {expected:?}"
        ));
    }

    let q = (-eps).exp();
    let var_exact = 2.0 * q / ((1.0 - q) * (1.0 - q));
    let mean = samples.iter().map(|&y| y as f64).sum::<f64>() / n;
    let var = samples
        .iter()
        .map(|&y| (y as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    let se_mean = (var_exact / n).sqrt();
    if mean.abs() > 5.0 * se_mean {
        return Err(format!("mean {mean} too far from 0 (se {se_mean})"));
    }
    if (var - var_exact).abs() > 0.03 * var_exact {
        return Err(format!("variance {var} vs exact {var_exact}"));
    }
    Ok(())
}

fn draw(eps: Epsilon, seed: u64) -> Vec<i64> {
    let mut rng = SplitMix64::new(seed);
    (0..SAMPLES)
        .map(|_| sample_discrete_laplace(&mut rng, eps).unwrap())
        .collect()
}

#[test]
fn sampler_matches_exact_pmf() {
    // 1/2 (s = 1, t = 2), 1 (s = t = 1) and 7/10 (s = 7, t = 10).
    for (text, seed) in [("0.5", 11u64), ("1", 12), ("0.7", 13)] {
        let eps: Epsilon = text.parse().unwrap();
        let samples = draw(eps, seed);
        if let Err(e) = check_against(&samples, eps.to_f64()) {
            panic!("epsilon {text}: {e}");
        }
    }
}

#[test]
fn wrong_parameter_fails_the_same_check() {
    // Samples drawn with twice the epsilon must be rejected by the check
    // for the original epsilon, or the check above proves nothing.
    for (text, doubled) in [("0.5", "1"), ("1", "2")] {
        let eps: Epsilon = text.parse().unwrap();
        let wrong: Epsilon = doubled.parse().unwrap();
        let samples = draw(wrong, 21);
        assert!(
            check_against(&samples, eps.to_f64()).is_err(),
            "samples with epsilon {doubled} passed as epsilon {text}"
        );
    }
    // And a shifted (biased) sample fails on the mean or the histogram.
    let eps: Epsilon = "1".parse().unwrap();
    let shifted: Vec<i64> = draw(eps, 22).into_iter().map(|y| y + 1).collect();
    assert!(check_against(&shifted, 1.0).is_err());
}

#[test]
fn sampler_is_deterministic_for_a_seed() {
    let eps: Epsilon = "0.3".parse().unwrap();
    let a: Vec<i64> = {
        let mut r = SplitMix64::new(5);
        (0..100)
            .map(|_| sample_discrete_laplace(&mut r, eps).unwrap())
            .collect()
    };
    let b: Vec<i64> = {
        let mut r = SplitMix64::new(5);
        (0..100)
            .map(|_| sample_discrete_laplace(&mut r, eps).unwrap())
            .collect()
    };
    assert_eq!(a, b);
    assert!(a.iter().any(|&y| y != a[0]), "noise is constant: {a:?}");
}

#[test]
fn noisy_count_with_system_randomness() {
    let mut rng = SystemRandomSource::new();
    let eps: Epsilon = "1".parse().unwrap();
    let outs: Vec<i64> = (0..2000)
        .map(|_| noisy_count(1000, eps, &mut rng).unwrap())
        .collect();
    let mean = outs.iter().sum::<i64>() as f64 / outs.len() as f64;
    // sd of the noise is about 1.35, so the mean of 2000 draws is within 0.2.
    assert!((mean - 1000.0).abs() < 0.2, "mean {mean}");
    assert!(outs.iter().any(|&x| x != 1000));
}

#[test]
fn budget_exhaustion_refuses_queries() {
    let mut ledger = BudgetLedger::new();
    let mut rng = SplitMix64::new(1);
    let eps: Epsilon = "0.4".parse().unwrap();
    ledger
        .set_budget("analyst", "crm", "1".parse().unwrap())
        .unwrap();
    ledger
        .noisy_count("analyst", "crm", 50, eps, &mut rng)
        .unwrap();
    ledger
        .noisy_count("analyst", "crm", 50, eps, &mut rng)
        .unwrap();
    let err = ledger
        .noisy_count("analyst", "crm", 50, eps, &mut rng)
        .unwrap_err();
    match &err {
        DpError::Budget(BudgetError::Exhausted {
            scope,
            budget,
            requested,
            remaining,
        }) => {
            assert_eq!(scope, "analyst");
            assert_eq!(budget, "crm");
            assert_eq!(*requested, eps);
            assert_eq!(*remaining, "1/5".parse::<Rational>().unwrap());
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("analyst") && msg.contains("crm") && msg.contains("2/5"));
    // A smaller query still fits; then everything is refused.
    ledger
        .noisy_count("analyst", "crm", 50, "0.2".parse().unwrap(), &mut rng)
        .unwrap();
    assert!(
        ledger
            .spend("analyst", "crm", Epsilon::new(1, u32::MAX).unwrap())
            .is_err()
    );
    // An account never opened has no budget at all.
    assert!(matches!(
        ledger.noisy_count("intruder", "crm", 50, eps, &mut rng),
        Err(DpError::Budget(BudgetError::NoBudget { .. }))
    ));
}

#[test]
fn ledger_survives_a_budget_file() {
    let mut ledger = BudgetLedger::new();
    ledger.set_budget("a", "d", "2".parse().unwrap()).unwrap();
    ledger.spend("a", "d", "0.3".parse().unwrap()).unwrap();
    let dir = std::env::temp_dir().join(format!("privseg-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("budget.json");
    std::fs::write(&path, ledger.to_json().unwrap()).unwrap();
    let mut loaded = BudgetLedger::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(loaded, ledger);
    assert_eq!(
        loaded.remaining("a", "d").unwrap(),
        "17/10".parse().unwrap()
    );
    assert!(loaded.spend("a", "d", "1.8".parse().unwrap()).is_err());
    assert!(loaded.spend("a", "d", "1.7".parse().unwrap()).is_ok());
}

proptest! {
    #[test]
    fn ledger_never_overspends(
        total in (1u32..50, 1u32..20),
        requests in proptest::collection::vec((1u32..10, 1u32..20), 0..30),
    ) {
        let mut ledger = BudgetLedger::new();
        let total = Epsilon::new(total.0, total.1).unwrap();
        ledger.set_budget("a", "d", total).unwrap();
        let mut accepted = Rational::ZERO;
        for (n, d) in requests {
            let eps = Epsilon::new(n, d).unwrap();
            let before = ledger.remaining("a", "d").unwrap();
            match ledger.spend("a", "d", eps) {
                Ok(after) => {
                    prop_assert!(Rational::from(eps) <= before);
                    accepted = accepted.checked_add(eps.into()).unwrap();
                    prop_assert_eq!(after, before.checked_sub(eps.into()).unwrap());
                }
                Err(BudgetError::Exhausted { remaining, .. }) => {
                    prop_assert!(Rational::from(eps) > before);
                    prop_assert_eq!(remaining, before);
                    prop_assert_eq!(ledger.remaining("a", "d").unwrap(), before);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert!(accepted <= Rational::from(total));
        prop_assert_eq!(ledger.account("a", "d").unwrap().spent(), accepted);
    }
}

// The ledger in a file, shared by processes, and the engine's budget gate.

fn eps(s: &str) -> Epsilon {
    s.parse().unwrap()
}

/// A fresh scratch directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("privseg-dp-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn concurrent_charges_through_the_file_spend_the_budget_once() {
    let dir = scratch_dir("concurrent");
    let path = dir.join("budget.json");
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|_| {
            let (path, barrier) = (path.clone(), barrier.clone());
            std::thread::spawn(move || {
                // Each thread opens the file by its path, as a process would.
                let mut file = LedgerFile::new(path);
                barrier.wait();
                file.transact(|l| {
                    let out = l.charge("Acme", "analytics", eps("1"), eps("1"));
                    // Widen the window between reading the ledger and writing
                    // it back: without the lock every thread would read an
                    // empty ledger and all six would be charged.
                    std::thread::sleep(std::time::Duration::from_millis(30));
                    out
                })
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 1, "{results:?}");
    for r in results.iter().filter(|r| r.is_err()) {
        assert!(matches!(r, Err(BudgetError::Exhausted { .. })), "{r:?}");
    }
    let ledger = LedgerFile::new(&path).read().unwrap();
    assert_eq!(ledger.spent("Acme", "analytics"), Rational::from(eps("1")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failed_transaction_writes_nothing() {
    let dir = scratch_dir("failed");
    let mut file = LedgerFile::new(dir.join("budget.json"));
    let r: Result<(), BudgetError> = file.transact(|l| {
        l.charge("Acme", "analytics", eps("1"), eps("1/2"))?;
        Err(BudgetError::EmptyName)
    });
    assert!(r.is_err());
    assert!(!file.path().exists());
    // A file from the old layout (accounts per actor and data set) is refused.
    std::fs::write(file.path(), r#"{"format":1,"accounts":{}}"#).unwrap();
    let err = file.read().unwrap_err();
    assert!(err.to_string().contains("format 1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn dp_policy() -> Arc<Policy> {
    let counter = |name: &str| RoleSpec {
        name: name.into(),
        count: vec!["analytics".into(), "support".into()],
        ..RoleSpec::default()
    };
    Arc::new(
        PolicyBuilder::new("Acme Ltd")
            .purpose(PurposeSpec::new(
                "analytics",
                LawfulBasis::LegitimateInterests,
            ))
            .purpose(PurposeSpec::new("support", LawfulBasis::Contract))
            .role(counter("analyst"))
            .role(counter("auditor"))
            .dp_budget("analytics", eps("1/2"), eps("1"))
            .build()
            .unwrap(),
    )
}

fn at() -> Timestamp {
    Timestamp::parse("2026-03-01T00:00:00Z").unwrap()
}

/// A DP count of every subject for `analytics`, by `actor` with `role`.
fn dp(
    engine: &Engine,
    actor: &str,
    role: &str,
    epsilon: Option<&str>,
    store: &mut impl BudgetStore,
) -> Result<(i64, privseg::privacy::dp::Charge), privseg::EngineError> {
    let a = Actor::new(actor, &[role]);
    let seg = engine
        .compile(&a, r#"segment "all" for analytics"#)
        .unwrap();
    engine.dp_count(
        &a,
        &seg,
        at(),
        epsilon.map(eps),
        store,
        &mut SplitMix64::new(1),
    )
}

#[test]
fn the_policy_sets_the_cap_and_the_budget() {
    let engine = Engine::new(dp_policy());
    let mut ledger = BudgetLedger::new();
    // Above the cap: refused, nothing charged.
    let err = dp(&engine, "ann", "analyst", Some("3/4"), &mut ledger).unwrap_err();
    assert!(
        err.to_string().contains("above the policy's cap of 1/2"),
        "{err}"
    );
    assert_eq!(ledger, BudgetLedger::new());
    // Less than the cap is allowed; no epsilon spends the cap.
    let (_, c) = dp(&engine, "ann", "analyst", Some("1/4"), &mut ledger).unwrap();
    assert_eq!(
        (c.scope.as_str(), c.budget.as_str()),
        ("Acme Ltd", "analytics")
    );
    assert_eq!(c.spent, Rational::from(eps("1/4")));
    let (_, c) = dp(&engine, "ann", "analyst", None, &mut ledger).unwrap();
    assert_eq!(c.remaining, Rational::from(eps("1/4")));
    // A purpose without a budget gets no noisy count.
    let a = Actor::new("ann", &["analyst"]);
    let seg = engine.compile(&a, r#"segment "s" for support"#).unwrap();
    let err = engine
        .dp_count(&a, &seg, at(), None, &mut ledger, &mut SplitMix64::new(1))
        .unwrap_err();
    assert!(
        err.to_string().contains("no differential-privacy budget"),
        "{err}"
    );
}

#[test]
fn another_actor_or_role_does_not_get_a_new_budget() {
    let engine = Engine::new(dp_policy());
    let mut ledger = BudgetLedger::new();
    dp(&engine, "ann", "analyst", None, &mut ledger).unwrap();
    dp(&engine, "ann", "analyst", None, &mut ledger).unwrap();
    for (actor, role) in [("ann", "analyst"), ("bob", "analyst"), ("eve", "auditor")] {
        let err = dp(&engine, actor, role, Some("1/100"), &mut ledger).unwrap_err();
        assert!(
            err.to_string().contains("budget exhausted"),
            "{actor}: {err}"
        );
    }
    assert_eq!(ledger.accounts().count(), 1);
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
}

#[test]
fn a_deleted_or_rolled_back_ledger_is_refused() {
    let dir = scratch_dir("reset");
    let engine = Engine::new(dp_policy());
    let mut file = LedgerFile::new(dir.join("budget.json"));
    dp(&engine, "ann", "analyst", Some("1/4"), &mut file).unwrap();
    let old = dir.join("old.json");
    copy(file.path(), &old);
    dp(&engine, "ann", "analyst", Some("1/4"), &mut file).unwrap();

    // Deleted: the audit log records 1/2 spent, the new ledger none.
    let kept = dir.join("kept.json");
    copy(file.path(), &kept);
    std::fs::remove_file(file.path()).unwrap();
    let err = dp(&engine, "ann", "analyst", Some("1/4"), &mut file).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("shows 0 spent") && msg.contains("charges of 1/2"),
        "{msg}"
    );
    assert!(!file.path().exists(), "a refused charge starts no ledger");

    // Rolled back to an older copy: refused too.
    copy(&old, file.path());
    let err = dp(&engine, "ann", "analyst", Some("1/4"), &mut file).unwrap_err();
    assert!(err.to_string().contains("rolled back"), "{err}");

    // Restored: charging goes on where it stopped.
    copy(&kept, file.path());
    let (_, c) = dp(&engine, "ann", "analyst", Some("1/2"), &mut file).unwrap();
    assert_eq!(c.remaining, Rational::ZERO);
    std::fs::remove_dir_all(&dir).unwrap();
}
