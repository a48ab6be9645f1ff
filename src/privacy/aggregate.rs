//! k-thresholded counts and breakdowns with cell suppression.
//!
//! A count below the threshold `k` is never published; it is reported as
//! [`Count::FewerThan`]`(k)`. A breakdown (a segment split into labelled
//! cells) additionally applies *complementary suppression*, so a small cell
//! cannot be recovered by subtracting the published cells from the published
//! total. See [`breakdown`] for the exact rule and the module docs of
//! [`crate::privacy`] for what this does not protect against.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Default threshold: counts below 11 are not published.
pub const DEFAULT_K: u64 = 11;

/// A count as it may be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Count {
    /// The exact count, which is at least the threshold.
    Exact(u64),
    /// The count is below the given threshold `k` (it may be 0).
    FewerThan(u64),
    /// A breakdown cell withheld by suppression. No bound is given: it may be
    /// a small cell, or a larger cell withheld so that small cells cannot be
    /// derived from the total. All withheld cells of a breakdown look alike.
    Suppressed,
}

impl Count {
    /// The exact value, if published.
    pub fn exact(&self) -> Option<u64> {
        match self {
            Count::Exact(n) => Some(*n),
            _ => None,
        }
    }

    /// Whether the exact value is withheld.
    pub fn is_withheld(&self) -> bool {
        !matches!(self, Count::Exact(_))
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::Exact(n) => write!(f, "{n}"),
            Count::FewerThan(k) => write!(f, "<{k}"),
            Count::Suppressed => f.write_str("suppressed"),
        }
    }
}

/// Publishes `n` only if it is at least `k`.
///
/// With `k = 0` every count is exact (no protection).
///
/// ```
/// use privseg::privacy::aggregate::{k_threshold, Count, DEFAULT_K};
///
/// assert_eq!(k_threshold(42, DEFAULT_K), Count::Exact(42));
/// assert_eq!(k_threshold(3, DEFAULT_K), Count::FewerThan(11));
/// assert_eq!(k_threshold(0, DEFAULT_K), Count::FewerThan(11));
/// ```
pub fn k_threshold(n: u64, k: u64) -> Count {
    if n < k {
        Count::FewerThan(k)
    } else {
        Count::Exact(n)
    }
}

/// Errors building a breakdown.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// The same label appeared twice.
    #[error("duplicate breakdown label {label:?}")]
    DuplicateLabel {
        /// The repeated label.
        label: String,
    },
    /// The cells add up to more than `u64::MAX`.
    #[error("breakdown total overflows u64")]
    Overflow,
}

/// One published cell of a [`Breakdown`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// The cell's label, as supplied.
    pub label: String,
    /// The published count: [`Count::Exact`] or [`Count::Suppressed`].
    pub count: Count,
}

/// A published breakdown: cells in input order and the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breakdown {
    /// Cells in the order they were given.
    pub cells: Vec<Cell>,
    /// The total of all cells, k-thresholded.
    pub total: Count,
    /// The threshold used.
    pub k: u64,
}

impl Breakdown {
    /// The published count for `label`, if such a cell exists.
    pub fn get(&self, label: &str) -> Option<Count> {
        self.cells
            .iter()
            .find(|c| c.label == label)
            .map(|c| c.count)
    }

    /// Number of withheld cells.
    pub fn suppressed_cells(&self) -> usize {
        self.cells.iter().filter(|c| c.count.is_withheld()).count()
    }
}

/// Builds a k-thresholded breakdown with primary and complementary
/// suppression.
///
/// The rule:
///
/// 1. *Primary*: every cell with a count below `k` (including 0) is withheld.
/// 2. *Complementary*: while some cell is withheld and either exactly one cell
///    is withheld or the withheld cells add up to less than `k`, the smallest
///    still-published cell (earliest in input order on ties) is withheld too.
/// 3. The total of all cells is published through [`k_threshold`].
///
/// Afterwards, whenever the total is exact, the difference between the total
/// and the published cells is either 0 with nothing withheld, or at least `k`
/// spread over at least two withheld cells. Withheld cells are all reported as
/// [`Count::Suppressed`], so primary and complementary suppressions cannot be
/// told apart from the output.
///
/// ```
/// use privseg::privacy::aggregate::{breakdown, Count};
///
/// let b = breakdown([("north", 120), ("south", 4), ("east", 30), ("west", 55)], 11).unwrap();
/// assert_eq!(b.total, Count::Exact(209));
/// assert_eq!(b.get("south"), Some(Count::Suppressed)); // below k
/// assert_eq!(b.get("east"), Some(Count::Suppressed));  // complementary
/// assert_eq!(b.get("west"), Some(Count::Exact(55)));
/// ```
///
/// # Errors
/// Duplicate labels, or a total above `u64::MAX`.
pub fn breakdown<L, I>(cells: I, k: u64) -> Result<Breakdown, AggregateError>
where
    L: Into<String>,
    I: IntoIterator<Item = (L, u64)>,
{
    let cells: Vec<(String, u64)> = cells.into_iter().map(|(l, n)| (l.into(), n)).collect();
    let mut seen = HashSet::with_capacity(cells.len());
    for (label, _) in &cells {
        if !seen.insert(label.as_str()) {
            return Err(AggregateError::DuplicateLabel {
                label: label.clone(),
            });
        }
    }
    let total = cells
        .iter()
        .try_fold(0u64, |acc, (_, n)| acc.checked_add(*n))
        .ok_or(AggregateError::Overflow)?;

    let mut withheld: Vec<bool> = cells.iter().map(|(_, n)| *n < k).collect();
    let mut withheld_count = withheld.iter().filter(|w| **w).count();
    // Cannot overflow: bounded by `total`.
    let mut withheld_sum: u64 = cells
        .iter()
        .zip(&withheld)
        .filter(|(_, w)| **w)
        .map(|((_, n), _)| *n)
        .sum();

    // Published cells, smallest first (stable sort keeps input order on ties).
    let mut order: Vec<usize> = (0..cells.len()).filter(|&i| !withheld[i]).collect();
    order.sort_by_key(|&i| cells[i].1);
    let mut next = order.into_iter();

    while withheld_count > 0 && (withheld_count == 1 || withheld_sum < k) {
        let Some(i) = next.next() else { break };
        withheld[i] = true;
        withheld_count += 1;
        withheld_sum += cells[i].1;
    }

    let out_cells = cells
        .into_iter()
        .zip(withheld)
        .map(|((label, n), w)| Cell {
            label,
            count: if w {
                Count::Suppressed
            } else {
                Count::Exact(n)
            },
        })
        .collect();
    Ok(Breakdown {
        cells: out_cells,
        total: k_threshold(total, k),
        k,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_boundary() {
        assert_eq!(k_threshold(10, 11), Count::FewerThan(11));
        assert_eq!(k_threshold(11, 11), Count::Exact(11));
        assert_eq!(k_threshold(0, 0), Count::Exact(0));
    }

    #[test]
    fn nothing_small_nothing_suppressed() {
        let b = breakdown([("a", 11), ("b", 20)], 11).unwrap();
        assert_eq!(b.suppressed_cells(), 0);
        assert_eq!(b.total, Count::Exact(31));
    }

    #[test]
    fn single_small_cell_gets_a_complement() {
        let b = breakdown([("a", 100), ("b", 3), ("c", 50), ("d", 50)], 11).unwrap();
        assert_eq!(b.get("b"), Some(Count::Suppressed));
        // The first of the two smallest published cells is taken.
        assert_eq!(b.get("c"), Some(Count::Suppressed));
        assert_eq!(b.get("d"), Some(Count::Exact(50)));
        assert_eq!(b.get("a"), Some(Count::Exact(100)));
    }

    #[test]
    fn two_tiny_cells_need_more_until_sum_reaches_k() {
        // 1 + 2 < 11, so one more cell is withheld.
        let b = breakdown([("a", 1), ("b", 2), ("c", 12), ("d", 40)], 11).unwrap();
        assert_eq!(b.suppressed_cells(), 3);
        assert_eq!(b.get("d"), Some(Count::Exact(40)));
    }

    #[test]
    fn small_total_is_thresholded() {
        let b = breakdown([("a", 4), ("b", 5)], 11).unwrap();
        assert_eq!(b.total, Count::FewerThan(11));
        assert_eq!(b.suppressed_cells(), 2);
        let empty = breakdown(Vec::<(String, u64)>::new(), 11).unwrap();
        assert_eq!(empty.total, Count::FewerThan(11));
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            breakdown([("a", 1), ("a", 2)], 11),
            Err(AggregateError::DuplicateLabel { .. })
        ));
        assert_eq!(
            breakdown([("a", u64::MAX), ("b", 1)], 11),
            Err(AggregateError::Overflow)
        );
    }

    #[test]
    fn serializes_readably() {
        let b = breakdown([("a", 20), ("b", 30)], 11).unwrap();
        let json = serde_json::to_string(&b).unwrap();
        assert!(json.contains(r#""total":{"exact":50}"#), "{json}");
        let small = serde_json::to_string(&k_threshold(2, 11)).unwrap();
        assert_eq!(small, r#"{"fewer_than":11}"#);
    }
}
