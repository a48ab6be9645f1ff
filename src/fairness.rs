//! Fairness audits (R20): selection rates of a segment across the groups of
//! a protected attribute, flagged under the four-fifths rule (29 CFR
//! 1607.4(D)), and a scan for predicate attributes that act as proxies for
//! the protected one. Protected attributes are held for these audits only:
//! validation refuses them as predicate terms.

use serde::Serialize;

use crate::access::{Actor, Permission};
use crate::audit::Operation;
use crate::audit::details::{self as entry_kind, EntryKind};
use crate::engine::{Engine, EngineError};
use crate::eval::{self, kernels};
use crate::policy::AttrId;
use crate::privacy::aggregate::breakdown;
use crate::segment::CheckedSegment;
use crate::store::{Bits, ColumnData};
use crate::timestamp::Timestamp;

/// The four-fifths rule: a group selected at under 80% of the best group's
/// rate shows adverse impact.
pub const FOUR_FIFTHS: f64 = 0.8;

/// Cramér's V at or above which a predicate attribute is flagged as a
/// possible proxy.
pub const PROXY_THRESHOLD: f64 = 0.3;

/// One protected group.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupRate {
    /// Group value (or `(unknown)`).
    pub group: String,
    /// Eligible subjects in the group: the pool the segment selects from.
    /// `None` when withheld by the small-cell rule (under the policy's k,
    /// or withheld so that another cell cannot be derived).
    pub pool: Option<u64>,
    /// Selected subjects in the group: `None` unless the pool, the selected
    /// and the not-selected cells may all be shown.
    pub selected: Option<u64>,
    /// Selection rate (`None` whenever `selected` is).
    pub rate: Option<f64>,
    /// Rate over the highest group's rate.
    pub impact_ratio: Option<f64>,
    /// Under the four-fifths rule.
    pub adverse_impact: bool,
}

/// A predicate attribute's association with the protected attribute.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProxyScore {
    /// Attribute name.
    pub attribute: String,
    /// Cramér's V over the eligible pool (0: independent, 1: determined).
    pub cramers_v: f64,
    /// At or above [`PROXY_THRESHOLD`].
    pub flagged: bool,
}

/// The result of a fairness audit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FairnessReport {
    /// Segment name.
    pub segment: String,
    /// Purpose key.
    pub purpose: String,
    /// Protected attribute audited.
    pub protected_attribute: String,
    /// Evaluation time.
    pub at: Timestamp,
    /// Groups with their rates.
    pub groups: Vec<GroupRate>,
    /// Some reported group shows adverse impact.
    pub adverse_impact: bool,
    /// Categorical predicate attributes scored as proxies.
    pub proxies: Vec<ProxyScore>,
}

fn cat_bitmaps(engine: &Engine, a: AttrId) -> Option<&[Bits]> {
    match engine.store().column(a).data() {
        ColumnData::Cat { bitmaps, .. } => Some(bitmaps),
        _ => None,
    }
}

fn and_count(a: &Bits, b: &Bits) -> u64 {
    a.as_raw_slice()
        .iter()
        .zip(b.as_raw_slice())
        .map(|(x, y)| u64::from((x & y).count_ones()))
        .sum()
}

/// Cramér's V of a contingency table.
fn cramers_v(table: &[Vec<u64>]) -> f64 {
    let rows: Vec<u64> = table.iter().map(|r| r.iter().sum()).collect();
    let cols: Vec<u64> = (0..table.first().map_or(0, Vec::len))
        .map(|j| table.iter().map(|r| r[j]).sum())
        .collect();
    let n: u64 = rows.iter().sum();
    let r = rows.iter().filter(|&&x| x > 0).count();
    let c = cols.iter().filter(|&&x| x > 0).count();
    if n == 0 || r < 2 || c < 2 {
        return 0.0;
    }
    let mut chi2 = 0.0;
    for (i, row) in table.iter().enumerate() {
        for (j, &obs) in row.iter().enumerate() {
            let exp = rows[i] as f64 * cols[j] as f64 / n as f64;
            if exp > 0.0 {
                chi2 += (obs as f64 - exp).powi(2) / exp;
            }
        }
    }
    (chi2 / (n as f64 * (r.min(c) - 1) as f64)).sqrt()
}

impl Engine {
    /// Audits a segment's selection rates across the groups of a protected
    /// attribute, at `at`. Needs the `administer` permission; recorded.
    /// Cells under the policy's k (pool, selected or not selected), and the
    /// cells withheld so that they cannot be derived from the others, are
    /// reported without figures; such groups take no part in the
    /// comparison. Eligibility is judged as of the host clock's now.
    pub fn fairness_audit(
        &self,
        actor: &Actor,
        seg: &CheckedSegment,
        at: Timestamp,
        protected: &str,
    ) -> Result<FairnessReport, EngineError> {
        self.allow(actor, Permission::Administer, Some(seg.purpose_key()))?;
        let policy = self.policy().clone();
        let pa = policy
            .attr_id(protected)
            .ok_or_else(|| EngineError::UnknownAttribute(protected.into()))?;
        let groups_bits = match cat_bitmaps(self, pa) {
            Some(bits) if policy.attribute_flags(pa).protected => bits,
            _ => return Err(EngineError::NotProtected(protected.into())),
        };
        let members = self.evaluate_ungated(seg, at)?;
        // The pool is judged at the same instant as the members.
        let pool = eval::eligibility_mask(
            &policy,
            self.store(),
            seg.purpose(),
            members.at(),
            seg.data_use(),
        );
        let counts = group_counts(
            &policy.attribute(pa).values,
            groups_bits,
            &pool,
            members.bits(),
        );
        let groups = group_rates(counts, policy.k_threshold())?;
        let proxies = self.proxy_scores(seg, &pool, groups_bits);
        let adverse = groups.iter().any(|g| g.adverse_impact);
        self.log(
            self.entry(actor.id(), Operation::ReportGenerated)
                .purpose(seg.purpose_key())
                .with_kind(EntryKind::FairnessAudit(entry_kind::FairnessAudit {
                    fairness_audit: seg.name().into(),
                    protected_attribute: protected.into(),
                    adverse_impact: adverse,
                })),
        )?;
        Ok(FairnessReport {
            segment: seg.name().into(),
            purpose: seg.purpose_key().into(),
            protected_attribute: protected.into(),
            at,
            groups,
            adverse_impact: adverse,
            proxies,
        })
    }

    /// How strongly each categorical attribute the segment reads is
    /// associated with the protected groups within the pool (Cramér's V).
    fn proxy_scores(&self, seg: &CheckedSegment, pool: &Bits, groups: &[Bits]) -> Vec<ProxyScore> {
        let mut proxies = Vec::new();
        for &a in seg.attributes() {
            let Some(bitmaps) = cat_bitmaps(self, a) else {
                continue;
            };
            let table: Vec<Vec<u64>> = bitmaps
                .iter()
                .map(|b| {
                    let mut in_pool = b.clone();
                    kernels::and_assign(in_pool.as_raw_mut_slice(), pool.as_raw_slice());
                    groups.iter().map(|g| and_count(&in_pool, g)).collect()
                })
                .collect();
            let v = cramers_v(&table);
            proxies.push(ProxyScore {
                attribute: self.policy().attribute(a).name.clone(),
                cramers_v: v,
                flagged: v >= PROXY_THRESHOLD,
            });
        }
        proxies
    }
}

/// A protected group's counts: its name, its pool and those selected.
struct GroupCount {
    group: String,
    pool: u64,
    selected: u64,
}

/// The counts of each value's group, then of those with no value
/// (`(unknown)`).
fn group_counts(
    values: &[String],
    groups: &[Bits],
    pool: &Bits,
    members: &Bits,
) -> Vec<GroupCount> {
    let mut known = Bits::repeat(false, pool.len());
    let mut counts = Vec::with_capacity(groups.len() + 1);
    for (value, g) in values.iter().zip(groups) {
        kernels::or_assign(known.as_raw_mut_slice(), g.as_raw_slice());
        counts.push(GroupCount {
            group: value.clone(),
            pool: and_count(pool, g),
            selected: and_count(members, g),
        });
    }
    let mut unknown = known;
    kernels::not_assign(&mut unknown);
    counts.push(GroupCount {
        group: "(unknown)".into(),
        pool: and_count(pool, &unknown),
        selected: and_count(members, &unknown),
    });
    counts
}

/// Selection rates and impact ratios of the groups whose figures may be
/// shown.
///
/// Each of the three splits of a group (its pool, those selected and those
/// not) is a cell: one under k would single out a few people's protected
/// attribute, so each split goes through the small-cell rule with
/// complementary suppression, and a group's selection is shown only when
/// all three of its cells may be.
fn group_rates(counts: Vec<GroupCount>, k: u64) -> Result<Vec<GroupRate>, EngineError> {
    let may_show = |count: fn(&GroupCount) -> u64| -> Result<Vec<bool>, EngineError> {
        let cells: Vec<(String, u64)> = counts
            .iter()
            .enumerate()
            .map(|(i, g)| (i.to_string(), count(g)))
            .collect();
        let b = breakdown(cells, k)?;
        Ok(b.cells.iter().map(|c| c.count.exact().is_some()).collect())
    };
    let pool_ok = may_show(|g| g.pool)?;
    let sel_ok = may_show(|g| g.selected)?;
    let out_ok = may_show(|g| g.pool - g.selected)?;
    let shown = |i: usize| pool_ok[i] && sel_ok[i] && out_ok[i];
    let best = counts
        .iter()
        .enumerate()
        .filter(|(i, _)| shown(*i))
        .map(|(_, g)| g.selected as f64 / g.pool as f64)
        .fold(0.0f64, f64::max);
    Ok(counts
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            if !shown(i) {
                return GroupRate {
                    group: g.group,
                    pool: pool_ok[i].then_some(g.pool),
                    selected: None,
                    rate: None,
                    impact_ratio: None,
                    adverse_impact: false,
                };
            }
            let rate = g.selected as f64 / g.pool as f64;
            let ratio = (best > 0.0).then(|| rate / best);
            GroupRate {
                group: g.group,
                pool: Some(g.pool),
                selected: Some(g.selected),
                rate: Some(rate),
                impact_ratio: ratio,
                adverse_impact: ratio.is_some_and(|r| r < FOUR_FIFTHS),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::cramers_v;

    #[test]
    fn cramers_v_bounds() {
        assert_eq!(cramers_v(&[vec![10, 0], vec![0, 10]]), 1.0);
        assert!(cramers_v(&[vec![10, 10], vec![10, 10]]).abs() < 1e-12);
        assert_eq!(cramers_v(&[vec![5, 5]]), 0.0);
    }
}
