//! Integration tests for k-thresholds and breakdown suppression.

use privseg::privacy::aggregate::{Breakdown, Count, DEFAULT_K, breakdown, k_threshold};
use proptest::prelude::*;

/// What an observer can compute: total minus the published cells, and how
/// many cells were withheld. `None` when the total is not exact.
fn residual(b: &Breakdown) -> Option<(u64, usize)> {
    let total = b.total.exact()?;
    let published: u64 = b.cells.iter().filter_map(|c| c.count.exact()).sum();
    Some((total - published, b.suppressed_cells()))
}

#[test]
fn default_k_is_eleven() {
    assert_eq!(DEFAULT_K, 11);
    assert_eq!(k_threshold(10, DEFAULT_K), Count::FewerThan(11));
    assert_eq!(k_threshold(11, DEFAULT_K), Count::Exact(11));
}

#[test]
fn lone_small_cell_is_not_derivable_from_total() {
    // Without complementary suppression, 100 + 3 + 40 = 143 would give away 3.
    let b = breakdown([("a", 100), ("b", 3), ("c", 40)], 11).unwrap();
    let (rest, withheld) = residual(&b).unwrap();
    assert_eq!(withheld, 2);
    assert_eq!(rest, 43);
    assert_eq!(b.get("a"), Some(Count::Exact(100)));
}

#[test]
fn zero_cells_are_suppressed_too() {
    let b = breakdown([("a", 0), ("b", 50), ("c", 60)], 11).unwrap();
    assert_eq!(b.get("a"), Some(Count::Suppressed));
    let (rest, withheld) = residual(&b).unwrap();
    assert!(rest >= 11 && withheld >= 2);
}

#[test]
fn output_does_not_distinguish_primary_from_complementary() {
    let b = breakdown([("small", 2), ("big", 500), ("mid", 20)], 11).unwrap();
    assert_eq!(b.get("small"), b.get("mid"));
}

fn cells_strategy() -> impl Strategy<Value = Vec<u64>> {
    // Mix of small and large cells so both suppression paths are exercised.
    proptest::collection::vec(prop_oneof![0u64..15, 0u64..200, 0u64..5], 0..10)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn small_counts_never_revealed(cells in cells_strategy(), k in 0u64..25) {
        let labelled: Vec<(String, u64)> =
            cells.iter().enumerate().map(|(i, n)| (format!("c{i}"), *n)).collect();
        let b = breakdown(labelled, k).unwrap();
        let total: u64 = cells.iter().sum();

        // The total is k-thresholded.
        prop_assert_eq!(b.total, k_threshold(total, k));
        prop_assert_eq!(b.k, k);

        // No cell below k is ever exact; published cells are the true values.
        for (cell, &n) in b.cells.iter().zip(&cells) {
            match cell.count {
                Count::Exact(v) => {
                    prop_assert_eq!(v, n);
                    prop_assert!(n >= k, "cell {} = {} published with k = {}", cell.label, n, k);
                }
                Count::Suppressed => {}
                Count::FewerThan(_) => prop_assert!(false, "cells are Exact or Suppressed"),
            }
        }

        // Nothing can be derived from the total minus the published cells.
        if let Some((rest, withheld)) = residual(&b) {
            prop_assert!(
                withheld == 0 || (rest >= k && withheld >= 2),
                "rest {} over {} withheld cells (k = {})", rest, withheld, k
            );
            if withheld == 0 {
                prop_assert_eq!(rest, 0);
            }
        } else {
            prop_assert!(total < k);
        }
    }

    #[test]
    fn suppression_is_minimal_when_nothing_is_small(cells in proptest::collection::vec(11u64..1000, 0..8)) {
        let labelled: Vec<(String, u64)> =
            cells.iter().enumerate().map(|(i, n)| (format!("c{i}"), *n)).collect();
        let b = breakdown(labelled, 11).unwrap();
        prop_assert_eq!(b.suppressed_cells(), 0);
    }

    #[test]
    fn k_threshold_never_shows_small_counts(n in any::<u64>(), k in any::<u64>()) {
        match k_threshold(n, k) {
            Count::Exact(v) => prop_assert!(v == n && n >= k),
            Count::FewerThan(t) => prop_assert!(t == k && n < k),
            Count::Suppressed => prop_assert!(false),
        }
    }
}
