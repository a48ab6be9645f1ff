//! From a [`CheckedSegment`] to a [`Plan`]: a small program of bitset
//! operations over the store's indexes and an eligibility mask.
//!
//! Compilation resolves every time bound against the evaluation time (so
//! `now - 90d` is a constant before execution), turns each term into leaves
//! over index bitmaps and bit-sliced ranges, pushes `not` down to the leaves
//! (De Morgan; a negated leaf runs as an "and not"), folds constants, drops
//! leaves whose bitmap is known empty or full, flattens nested `and`/`or`,
//! and orders the operands of an `and` by estimated selectivity (most
//! selective first) and those of an `or` the other way round, so that the
//! chunked executor can stop reading operands for a block of rows once the
//! block is decided.

use std::collections::{HashMap, HashSet};

use crate::eval::{EvalError, fresh_since};
use crate::policy::{AttrId, Policy, PurposeId};
use crate::segment::{CheckedExpr, CheckedSegment, Term};
use crate::store::{Bits, Bsi, ColumnData, Store};
use crate::timestamp::Timestamp;

/// A node of a compiled plan, in negation normal form: negation appears on
/// leaves only.
#[derive(Clone, Debug, Eq)]
pub enum PlanNode {
    /// Every row (`true`) or none.
    Const(bool),
    /// An operand bitmap ([`Plan::operand`]), or its complement.
    Bits {
        /// Operand index.
        operand: usize,
        /// Complemented?
        negated: bool,
    },
    /// A range over a bit-sliced index ([`Plan::range`]), or its complement.
    Range {
        /// Range index.
        range: usize,
        /// Complemented?
        negated: bool,
    },
    /// All of these, most selective first.
    And(Vec<PlanNode>),
    /// Any of these, least selective first.
    Or(Vec<PlanNode>),
}

// Structural equality, written out so that tests can count the node
// comparisons simplification makes (it must stay linear in the number of
// operands: a segment with 100,000 distinct terms is valid input).
impl PartialEq for PlanNode {
    fn eq(&self, other: &PlanNode) -> bool {
        #[cfg(test)]
        tests::COMPARISONS.with(|c| c.set(c.get() + 1));
        match (self, other) {
            (PlanNode::Const(a), PlanNode::Const(b)) => a == b,
            (
                PlanNode::Bits { operand, negated },
                PlanNode::Bits {
                    operand: o,
                    negated: n,
                },
            ) => operand == o && negated == n,
            (
                PlanNode::Range { range, negated },
                PlanNode::Range {
                    range: r,
                    negated: n,
                },
            ) => range == r && negated == n,
            (PlanNode::And(a), PlanNode::And(b)) | (PlanNode::Or(a), PlanNode::Or(b)) => a == b,
            _ => false,
        }
    }
}

impl std::hash::Hash for PlanNode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            PlanNode::Const(b) => b.hash(state),
            PlanNode::Bits { operand, negated } => (operand, negated).hash(state),
            PlanNode::Range { range, negated } => (range, negated).hash(state),
            PlanNode::And(xs) | PlanNode::Or(xs) => xs.hash(state),
        }
    }
}

/// A range test over a bit-sliced index: `ge <= offset <= le`, each side
/// absent when it holds for every offset.
#[derive(Clone, Debug)]
pub struct RangeTest<'a> {
    /// The index's slices, least significant first.
    pub slices: Vec<&'a [u64]>,
    /// Lower bound on the stored offset, if it excludes anything.
    pub ge: Option<u64>,
    /// Upper bound on the stored offset, if it excludes anything.
    pub le: Option<u64>,
}

impl<'a> RangeTest<'a> {
    /// The lowest slice the test needs: below the lowest set bit of the
    /// lower bound and the lowest clear bit of the upper bound, the
    /// comparison result no longer changes.
    pub fn lowest_slice(&self) -> u32 {
        let a = self.ge.map_or(64, u64::trailing_zeros);
        let b = self.le.map_or(64, u64::trailing_ones);
        a.min(b).min(self.slices.len() as u32)
    }

    /// The slices the test reads.
    pub fn used_slices(&self) -> &[&'a [u64]] {
        &self.slices[self.lowest_slice() as usize..]
    }
}

/// How an instruction combines its value into its destination register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Set,
    And,
    Or,
}

/// One instruction of the linear form the executor runs per block of words.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Op {
    Fill {
        dst: usize,
        ones: bool,
    },
    Bits {
        dst: usize,
        src: usize,
        neg: bool,
        mode: Mode,
    },
    Range {
        dst: usize,
        r: usize,
        neg: bool,
        mode: Mode,
    },
    Reg {
        dst: usize,
        src: usize,
        mode: Mode,
    },
    /// Jump to `to` if register `reg` is all zero in this block.
    SkipIfNone {
        reg: usize,
        to: usize,
    },
    /// Jump to `to` if register `reg` is all ones in this block.
    SkipIfAll {
        reg: usize,
        to: usize,
    },
}

/// A compiled segment: a program of bitset operations over borrowed index
/// words, ready to run for one evaluation time.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    pub(crate) len: usize,
    pub(crate) operands: Vec<&'a [u64]>,
    pub(crate) ranges: Vec<RangeTest<'a>>,
    pub(crate) code: Vec<Op>,
    pub(crate) regs: usize,
    root: PlanNode,
}

impl<'a> Plan<'a> {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }
    /// No rows?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Number of 64-bit words per bitset.
    pub fn words(&self) -> usize {
        self.len.div_ceil(64)
    }
    /// The simplified plan tree.
    pub fn root(&self) -> &PlanNode {
        &self.root
    }
    /// An operand bitmap's words.
    pub fn operand(&self, i: usize) -> &'a [u64] {
        self.operands[i]
    }
    /// A range test.
    pub fn range(&self, i: usize) -> &RangeTest<'a> {
        &self.ranges[i]
    }
    /// Every distinct word slice the plan reads, each once.
    pub fn inputs(&self) -> Vec<&'a [u64]> {
        type Seen = HashSet<(*const u64, usize)>;
        fn walk<'a>(p: &Plan<'a>, n: &PlanNode, out: &mut Vec<&'a [u64]>, seen: &mut Seen) {
            let mut add = |s: &'a [u64]| {
                if seen.insert((s.as_ptr(), s.len())) {
                    out.push(s);
                }
            };
            match n {
                PlanNode::Bits { operand, .. } => add(p.operands[*operand]),
                PlanNode::Range { range, .. } => {
                    for &s in p.ranges[*range].used_slices() {
                        add(s);
                    }
                }
                PlanNode::And(xs) | PlanNode::Or(xs) => {
                    for x in xs {
                        walk(p, x, out, seen);
                    }
                }
                PlanNode::Const(_) => {}
            }
        }
        let mut v = Vec::new();
        walk(self, &self.root, &mut v, &mut HashSet::new());
        v
    }
    /// An upper bound on `inputs().len()`, without looking for repeats.
    pub(crate) fn max_inputs(&self) -> usize {
        self.operands.len() + self.ranges.iter().map(|r| r.slices.len()).sum::<usize>()
    }
    /// Bytes the plan reads when it reads every input once.
    pub fn input_bytes(&self) -> usize {
        self.inputs().iter().map(|s| s.len() * 8).sum()
    }
}

/// A plan node under construction, with its estimated fraction of rows.
struct Builder<'s, 'a> {
    policy: &'s Policy,
    store: &'a Store,
    purpose: PurposeId,
    at: Timestamp,
    len: usize,
    operands: Vec<&'a [u64]>,
    /// Each operand's index, by the address and length of its words.
    operand_index: HashMap<(*const u64, usize), usize>,
    /// Known set-bit counts of the operands, where the store keeps them.
    counts: Vec<Option<u64>>,
    ranges: Vec<RangeTest<'a>>,
    range_est: Vec<f64>,
    /// Each range's index, by its index and bounds, so that equal ranges
    /// are one leaf (and `x and not x` is seen).
    range_index: HashMap<(*const Bsi, Option<u64>, Option<u64>), usize>,
}

impl<'a> Builder<'_, 'a> {
    fn operand(&mut self, words: &'a [u64], count: Option<u64>) -> PlanNode {
        let i = *self
            .operand_index
            .entry((words.as_ptr(), words.len()))
            .or_insert_with(|| {
                self.operands.push(words);
                self.counts.push(count);
                self.operands.len() - 1
            });
        match count {
            Some(0) => PlanNode::Const(false),
            Some(c) if c as usize == self.len => PlanNode::Const(true),
            _ => PlanNode::Bits {
                operand: i,
                negated: false,
            },
        }
    }

    /// `lo <= value <= hi` over a bit-sliced index (absent rows aside).
    fn range(&mut self, bsi: &'a Bsi, lo: i64, hi: i64) -> PlanNode {
        let base = i128::from(bsi.base());
        let top = base + i128::from(bsi.max_offset());
        let (lo, hi) = (i128::from(lo).max(base), i128::from(hi).min(top));
        if lo > hi {
            return PlanNode::Const(false);
        }
        let (a, b) = ((lo - base) as u64, (hi - base) as u64);
        let test = RangeTest {
            slices: bsi.slices().collect(),
            ge: (a > 0).then_some(a),
            le: (b < bsi.max_offset()).then_some(b),
        };
        if test.ge.is_none() && test.le.is_none() {
            return PlanNode::Const(true);
        }
        let est = ((b - a) as f64 + 1.0) / (bsi.max_offset() as f64 + 1.0);
        let key = (std::ptr::from_ref(bsi), test.ge, test.le);
        let range = *self.range_index.entry(key).or_insert_with(|| {
            self.ranges.push(test);
            self.range_est.push(est.clamp(0.0, 1.0));
            self.ranges.len() - 1
        });
        PlanNode::Range {
            range,
            negated: false,
        }
    }

    /// Rows whose value of `attr` is present and fresh.
    fn fresh(&mut self, attr: AttrId) -> PlanNode {
        let col = self.store.column(attr);
        let present = self.operand(col.present().as_raw_slice(), Some(col.present_count()));
        match (
            self.policy.max_staleness(attr, self.purpose),
            col.verified_bsi(),
        ) {
            (Some(_), Some(bsi)) => {
                let since = fresh_since(self.policy, attr, self.purpose, self.at);
                let r = self.range(bsi, since, i64::MAX);
                PlanNode::And(vec![present, r])
            }
            (Some(_), None) => unreachable!("a staleness limit gives its column a verified index"),
            (None, _) => present,
        }
    }

    fn term(&mut self, t: &Term) -> PlanNode {
        let attr = t.attr();
        let fresh = self.fresh(attr);
        let store = self.store;
        let col = store.column(attr);
        let core = match (t, col.data()) {
            (Term::Has(_), _) => PlanNode::Const(true),
            (
                Term::CatIn {
                    values, negated, ..
                },
                ColumnData::Cat {
                    bitmaps, counts, ..
                },
            ) => {
                let ors = values
                    .iter()
                    .map(|&v| {
                        let v = v as usize;
                        self.operand(bitmaps[v].as_raw_slice(), Some(counts[v]))
                    })
                    .collect();
                negate_if(PlanNode::Or(ors), *negated)
            }
            (
                Term::Range {
                    lo, hi, negated, ..
                },
                ColumnData::Int { bsi, .. },
            ) => {
                let r = self.range(bsi, lo.resolve(self.at), hi.resolve(self.at));
                negate_if(r, *negated)
            }
            (Term::BoolIs { value, .. }, ColumnData::Bool { vals }) => {
                let b = self.operand(vals.as_raw_slice(), None);
                negate_if(b, !*value)
            }
            _ => unreachable!("validation ties each term to its column's type"),
        };
        PlanNode::And(vec![fresh, core])
    }

    /// The expression in negation normal form (`neg`: under an odd number
    /// of `not`s).
    fn expr(&mut self, e: &CheckedExpr, neg: bool) -> PlanNode {
        match e {
            CheckedExpr::Const(b) => PlanNode::Const(*b != neg),
            CheckedExpr::And(xs) | CheckedExpr::Or(xs) => {
                let ys = xs.iter().map(|x| self.expr(x, neg)).collect();
                if matches!(e, CheckedExpr::And(_)) != neg {
                    PlanNode::And(ys)
                } else {
                    PlanNode::Or(ys)
                }
            }
            CheckedExpr::Not(x) => self.expr(x, !neg),
            CheckedExpr::Term(t) => {
                let n = self.term(t);
                negate_if(n, neg)
            }
        }
    }

    /// Estimated fraction of rows a node holds for.
    fn estimate(&self, n: &PlanNode) -> f64 {
        let flip = |p: f64, neg: bool| if neg { 1.0 - p } else { p };
        match n {
            PlanNode::Const(b) => f64::from(u8::from(*b)),
            PlanNode::Bits { operand, negated } => {
                let p = match self.counts[*operand] {
                    Some(c) if self.len > 0 => c as f64 / self.len as f64,
                    _ => 0.5,
                };
                flip(p, *negated)
            }
            PlanNode::Range { range, negated } => flip(self.range_est[*range], *negated),
            PlanNode::And(xs) => xs.iter().map(|x| self.estimate(x)).product(),
            PlanNode::Or(xs) => 1.0 - xs.iter().map(|x| 1.0 - self.estimate(x)).product::<f64>(),
        }
    }

    /// Flattens, folds constants, removes duplicates, orders operands.
    fn simplify(&self, n: PlanNode) -> PlanNode {
        match n {
            PlanNode::And(_) | PlanNode::Or(_) => {
                let is_and = matches!(n, PlanNode::And(_));
                let (PlanNode::And(xs) | PlanNode::Or(xs)) = n else {
                    unreachable!()
                };
                let (absorb, neutral) = (!is_and, is_and);
                // Duplicates and complements are found by hashing, so that
                // an operation with n operands costs O(n), not O(n^2).
                let mut out: Vec<PlanNode> = Vec::new();
                let mut seen: HashSet<PlanNode> = HashSet::new();
                for x in xs {
                    let x = self.simplify(x);
                    let parts = match x {
                        PlanNode::And(ys) if is_and => ys,
                        PlanNode::Or(ys) if !is_and => ys,
                        y => vec![y],
                    };
                    for y in parts {
                        match y {
                            PlanNode::Const(b) if b == absorb => return PlanNode::Const(absorb),
                            PlanNode::Const(_) => {}
                            y => {
                                if seen.insert(y.clone()) {
                                    out.push(y);
                                }
                            }
                        }
                    }
                }
                // `x and not x` is empty, `x or not x` is everything.
                if out
                    .iter()
                    .any(|x| seen.contains(&negate_if(x.clone(), true)))
                {
                    return PlanNode::Const(absorb);
                }
                let mut keyed: Vec<(f64, PlanNode)> =
                    out.into_iter().map(|x| (self.estimate(&x), x)).collect();
                keyed.sort_by(|a, b| {
                    let o = a.0.total_cmp(&b.0);
                    if is_and { o } else { o.reverse() }
                });
                let mut out: Vec<PlanNode> = keyed.into_iter().map(|(_, x)| x).collect();
                match out.len() {
                    0 => PlanNode::Const(neutral),
                    1 => out.pop().expect("one operand"),
                    _ if is_and => PlanNode::And(out),
                    _ => PlanNode::Or(out),
                }
            }
            leaf => leaf,
        }
    }
}

/// The complement of a node, pushed down to its leaves (De Morgan).
fn negate_if(n: PlanNode, neg: bool) -> PlanNode {
    if !neg {
        return n;
    }
    match n {
        PlanNode::Const(b) => PlanNode::Const(!b),
        PlanNode::Bits { operand, negated } => PlanNode::Bits {
            operand,
            negated: !negated,
        },
        PlanNode::Range { range, negated } => PlanNode::Range {
            range,
            negated: !negated,
        },
        PlanNode::And(xs) => PlanNode::Or(xs.into_iter().map(|x| negate_if(x, true)).collect()),
        PlanNode::Or(xs) => PlanNode::And(xs.into_iter().map(|x| negate_if(x, true)).collect()),
    }
}

/// Compiles a segment for evaluation at `at`, ANDing in the eligibility
/// mask `mask` (whose number of set bits is `mask_count`).
///
/// # Errors
/// [`EvalError::MaskLength`] if `mask` does not have one bit per row of
/// `store`.
pub fn compile<'a>(
    policy: &Policy,
    store: &'a Store,
    seg: &CheckedSegment,
    at: Timestamp,
    mask: &'a Bits,
    mask_count: u64,
) -> Result<Plan<'a>, EvalError> {
    if mask.len() != store.len() {
        return Err(EvalError::MaskLength {
            mask: mask.len(),
            rows: store.len(),
        });
    }
    let mut b = Builder {
        policy,
        store,
        purpose: seg.purpose(),
        at,
        len: store.len(),
        operands: Vec::new(),
        operand_index: HashMap::new(),
        counts: Vec::new(),
        ranges: Vec::new(),
        range_est: Vec::new(),
        range_index: HashMap::new(),
    };
    let m = b.operand(mask.as_raw_slice(), Some(mask_count));
    let pred = b.expr(seg.expr(), false);
    let root = if b.len == 0 {
        PlanNode::Const(false)
    } else {
        b.simplify(PlanNode::And(vec![m, pred]))
    };
    let mut code = Vec::new();
    let mut regs = 1;
    gen_code(&root, 0, Mode::Set, &mut code, &mut regs);
    Ok(Plan {
        len: b.len,
        operands: b.operands,
        ranges: b.ranges,
        code,
        regs,
        root,
    })
}

/// Emits the code that computes `n` and combines it into register `dst`.
fn gen_code(n: &PlanNode, dst: usize, mode: Mode, code: &mut Vec<Op>, regs: &mut usize) {
    *regs = (*regs).max(dst + 1);
    match n {
        PlanNode::Const(b) => match (mode, *b) {
            (Mode::Set, ones) => code.push(Op::Fill { dst, ones }),
            (Mode::And, true) | (Mode::Or, false) => {}
            (Mode::And, false) => code.push(Op::Fill { dst, ones: false }),
            (Mode::Or, true) => code.push(Op::Fill { dst, ones: true }),
        },
        PlanNode::Bits { operand, negated } => code.push(Op::Bits {
            dst,
            src: *operand,
            neg: *negated,
            mode,
        }),
        PlanNode::Range { range, negated } => code.push(Op::Range {
            dst,
            r: *range,
            neg: *negated,
            mode,
        }),
        PlanNode::And(xs) | PlanNode::Or(xs) => {
            if mode != Mode::Set {
                gen_code(n, dst + 1, Mode::Set, code, regs);
                code.push(Op::Reg {
                    dst,
                    src: dst + 1,
                    mode,
                });
                return;
            }
            let is_and = matches!(n, PlanNode::And(_));
            let child_mode = if is_and { Mode::And } else { Mode::Or };
            let mut jumps = Vec::new();
            for (i, x) in xs.iter().enumerate() {
                if i == 0 {
                    gen_code(x, dst, Mode::Set, code, regs);
                    continue;
                }
                jumps.push(code.len());
                code.push(if is_and {
                    Op::SkipIfNone { reg: dst, to: 0 }
                } else {
                    Op::SkipIfAll { reg: dst, to: 0 }
                });
                gen_code(x, dst, child_mode, code, regs);
            }
            let end = code.len();
            for j in jumps {
                if let Op::SkipIfNone { to, .. } | Op::SkipIfAll { to, .. } = &mut code[j] {
                    *to = end;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Arc;

    use super::PlanNode;
    use crate::policy::{
        AttributeSpec, CategorySpec, LawfulBasis, PolicyBuilder, PurposeSpec, RoleSpec,
    };
    use crate::timestamp::Timestamp;
    use crate::{Actor, Engine};

    thread_local! {
        /// Node comparisons made on this thread.
        pub(super) static COMPARISONS: Cell<u64> = const { Cell::new(0) };
    }

    fn engine() -> (Engine, Actor, Timestamp) {
        let policy = PolicyBuilder::new("Acme Ltd")
            .category(CategorySpec::new("user.financial"))
            .attribute(AttributeSpec::integer(
                "spend",
                "user.financial",
                0,
                1_000_000,
            ))
            .purpose(
                PurposeSpec::new("analytics.product", LawfulBasis::LegitimateInterests)
                    .allow("user.financial"),
            )
            .role(RoleSpec {
                name: "crm".into(),
                subjects: true,
                member_ids: vec!["analytics".into()],
                ..RoleSpec::default()
            })
            .build()
            .unwrap();
        let crm = Actor::new("crm", &["crm"]);
        let mut e = Engine::new(Arc::new(policy));
        let t = Timestamp::parse("2026-03-01T10:00:00Z").unwrap();
        for (id, spend) in [("a", 0), ("b", 500_000), ("c", 1_000_000)] {
            let birth = crate::timestamp::parse_date("1980-05-01").ok();
            e.add_subject(&crm, id, "EU-FR", birth).unwrap();
            e.set_attribute(&crm, id, "spend", spend.into(), t).unwrap();
        }
        (e, crm, t)
    }

    fn leaves(n: &PlanNode) -> usize {
        match n {
            PlanNode::And(xs) | PlanNode::Or(xs) => xs.iter().map(leaves).sum(),
            _ => 1,
        }
    }

    /// Compiles `text` and returns the plan's number of leaves and the node
    /// comparisons compilation made.
    fn compile(text: &str) -> (usize, u64) {
        let (e, crm, t) = engine();
        let seg = e.compile(&crm, text).unwrap_or_else(|err| panic!("{err}"));
        COMPARISONS.with(|c| c.set(0));
        let n = e
            .with_plan_unreleased(&seg, t, |p| leaves(p.root()))
            .unwrap();
        (n, COMPARISONS.with(Cell::get))
    }

    fn many_terms(n: usize, join: &str) -> String {
        let terms: Vec<String> = (1..=n).map(|i| format!("spend >= {i}")).collect();
        format!(
            r#"segment "s" for analytics.product where {}"#,
            terms.join(join)
        )
    }

    /// 100,000 distinct operands of one `and`: simplification compares
    /// nodes a number of times linear in the operands (the scan it
    /// replaced made about n^2 / 2 = 5e9 comparisons, several minutes).
    #[test]
    fn distinct_operands_cost_linear_work() {
        const N: usize = 100_000;
        let (n, cmp) = compile(&many_terms(N, " and "));
        // Each term keeps its range; the mask and the presence bitmap hold
        // for every row and fold away.
        assert!(n == N, "{n} leaves");
        assert!(
            cmp < 4 * N as u64,
            "{cmp} node comparisons for {N} operands"
        );
    }

    /// The same with duplicates and a complement: `x and not x` is found,
    /// still in linear work.
    #[test]
    fn complement_among_many_operands_is_found_in_linear_work() {
        const N: usize = 100_000;
        let text = format!(
            r#"{} and not spend = 7 and spend = 7"#,
            many_terms(N, " and ")
        );
        let (e, crm, t) = engine();
        let seg = e.compile(&crm, &text).unwrap();
        COMPARISONS.with(|c| c.set(0));
        let root = e
            .with_plan_unreleased(&seg, t, |p| p.root().clone())
            .unwrap();
        let cmp = COMPARISONS.with(Cell::get);
        assert!(root == PlanNode::Const(false), "not folded to false");
        assert!(
            cmp < 4 * N as u64,
            "{cmp} node comparisons for {N} operands"
        );
    }

    #[test]
    fn duplicate_operands_are_kept_once() {
        let text = r#"segment "s" for analytics.product where spend >= 5 or spend >= 5"#;
        // The mask and the presence bitmap fold away: one range is left.
        assert_eq!(compile(text).0, 1);
        let text = r#"segment "s" for analytics.product where spend >= 5 and not spend >= 5"#;
        // `x and not x` is empty.
        assert_eq!(compile(text).0, 1);
        let (e, crm, t) = engine();
        let seg = e.compile(&crm, text).unwrap();
        let root = e
            .with_plan_unreleased(&seg, t, |p| p.root().clone())
            .unwrap();
        assert_eq!(root, PlanNode::Const(false));
    }
}
