//! Validation: from an [`Segment`] to a [`CheckedSegment`], the only form
//! that can be compiled and run.

use std::sync::Arc;

use super::ast::{CmpOp, Expr, Literal, Segment, Span};
use super::error::{SegmentError, SegmentErrorKind as Kind};
use super::parse::MAX_DEPTH;
use crate::consent::DataUse;
use crate::policy::{AttrId, AttrType, Policy, PolicyVersion, PurposeId};
use crate::timestamp::Timestamp;

/// A time bound: absolute, or relative to the evaluation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bound {
    /// A fixed value (an integer, or Unix seconds).
    Abs(i64),
    /// The evaluation time plus this many seconds.
    Now(i64),
}

impl Bound {
    /// The value at evaluation time `at`.
    pub fn resolve(self, at: Timestamp) -> i64 {
        match self {
            Bound::Abs(v) => v,
            Bound::Now(off) => at.unix().saturating_add(off),
        }
    }
}

/// One predicate term over one attribute. Every term is false for a subject
/// whose value is missing or stale.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Term {
    /// A value is present and fresh.
    Has(AttrId),
    /// Categorical value among `values` (indexes of declared values); with
    /// `negated`, present and not among them.
    CatIn {
        /// Attribute.
        attr: AttrId,
        /// Declared value indexes, sorted, deduplicated.
        values: Vec<u32>,
        /// `!=` / `not in`.
        negated: bool,
    },
    /// Integer or timestamp value in `lo..=hi`; with `negated`, present and
    /// outside it.
    Range {
        /// Attribute.
        attr: AttrId,
        /// Inclusive lower bound.
        lo: Bound,
        /// Inclusive upper bound.
        hi: Bound,
        /// `!=`.
        negated: bool,
    },
    /// Boolean value equal to `value`.
    BoolIs {
        /// Attribute.
        attr: AttrId,
        /// Wanted value.
        value: bool,
    },
}

impl Term {
    /// The attribute the term reads.
    pub fn attr(&self) -> AttrId {
        match self {
            Term::Has(a) => *a,
            Term::CatIn { attr, .. } | Term::Range { attr, .. } | Term::BoolIs { attr, .. } => {
                *attr
            }
        }
    }
}

/// A typed predicate with names resolved. Cloned without recursion.
#[derive(Debug, PartialEq, Eq, Hash)]
pub enum CheckedExpr {
    /// Constant.
    Const(bool),
    /// All of these.
    And(Vec<CheckedExpr>),
    /// Any of these.
    Or(Vec<CheckedExpr>),
    /// Not this.
    Not(Box<CheckedExpr>),
    /// A term.
    Term(Term),
}

impl CheckedExpr {
    /// The same tree with each term (and constant) mapped by `leaf`, built
    /// bottom-up with a heap stack rather than by recursion, so that a deep
    /// predicate costs no native stack per level.
    fn rebuild(&self, mut leaf: impl FnMut(&CheckedExpr) -> CheckedExpr) -> CheckedExpr {
        enum Step<'e> {
            Visit(&'e CheckedExpr),
            Join { and: bool, n: usize },
            Negate,
        }
        let mut todo = vec![Step::Visit(self)];
        let mut done: Vec<CheckedExpr> = Vec::new();
        while let Some(step) = todo.pop() {
            match step {
                Step::Visit(e) => match e {
                    CheckedExpr::And(xs) | CheckedExpr::Or(xs) => {
                        let and = matches!(e, CheckedExpr::And(_));
                        todo.push(Step::Join { and, n: xs.len() });
                        todo.extend(xs.iter().rev().map(Step::Visit));
                    }
                    CheckedExpr::Not(x) => {
                        todo.push(Step::Negate);
                        todo.push(Step::Visit(x));
                    }
                    other => done.push(leaf(other)),
                },
                Step::Join { and, n } => join(&mut done, and, n),
                Step::Negate => negate(&mut done),
            }
        }
        done.pop().expect("the walk leaves the root's result")
    }
}

impl Clone for CheckedExpr {
    fn clone(&self) -> CheckedExpr {
        self.rebuild(|leaf| match leaf {
            CheckedExpr::Const(b) => CheckedExpr::Const(*b),
            CheckedExpr::Term(t) => CheckedExpr::Term(t.clone()),
            _ => unreachable!("rebuild walks and, or and not itself"),
        })
    }
}

/// A segment validated against a policy. Holding one is the proof that its
/// purpose exists (R1), that it reads only attributes the purpose may use
/// (R2), that special categories are allowed for it (R7), and that it reads
/// no criminal (R8) or protected (R20) data.
#[derive(Clone, Debug)]
pub struct CheckedSegment {
    pub(crate) name: String,
    pub(crate) purpose: PurposeId,
    pub(crate) purpose_key: String,
    pub(crate) version: PolicyVersion,
    pub(crate) expr: CheckedExpr,
    pub(crate) uses: DataUse,
    pub(crate) attrs: Vec<AttrId>,
    pub(crate) source: Arc<Segment>,
}

impl CheckedSegment {
    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its purpose.
    pub fn purpose(&self) -> PurposeId {
        self.purpose
    }
    /// Its purpose key.
    pub fn purpose_key(&self) -> &str {
        &self.purpose_key
    }
    /// The version of the policy it was validated against.
    pub fn policy_version(&self) -> PolicyVersion {
        self.version
    }
    /// The typed predicate.
    pub fn expr(&self) -> &CheckedExpr {
        &self.expr
    }
    /// What its data needs beyond the purpose (explicit consent, R13).
    pub fn data_use(&self) -> DataUse {
        self.uses
    }
    /// The attributes it reads, each once, in first-use order.
    pub fn attributes(&self) -> &[AttrId] {
        &self.attrs
    }

    /// The same segment with every relative time (`now ± N`) fixed against
    /// `reference`, so that evaluation at any instant reads the predicate
    /// as of the reference time. Eligibility and staleness still follow the
    /// evaluation instant: anchoring only moves the predicate's windows.
    pub(crate) fn anchored(&self, reference: Timestamp) -> CheckedSegment {
        let anchor = |e: &CheckedExpr| match e {
            CheckedExpr::Term(Term::Range {
                attr,
                lo,
                hi,
                negated,
            }) => CheckedExpr::Term(Term::Range {
                attr: *attr,
                lo: Bound::Abs(lo.resolve(reference)),
                hi: Bound::Abs(hi.resolve(reference)),
                negated: *negated,
            }),
            other => other.clone(),
        };
        let mut out = self.clone();
        out.expr = self.expr.rebuild(anchor);
        out
    }
    /// The syntax tree it was made from.
    pub fn ast(&self) -> &Segment {
        &self.source
    }

    /// The same segment with its members also required to be eligible for
    /// `extra` (the data uses of fields read besides the predicate, from
    /// [`check_field`]). Widening only narrows who may be selected.
    pub(crate) fn widened(&self, extra: DataUse) -> CheckedSegment {
        let mut out = self.clone();
        out.uses = self.uses.union(extra);
        out
    }
}

/// Checks that attribute `attr` may be read for `seg`'s purpose, as a term
/// of the segment would be (unknown name, R2, R7, R8, R20), and returns its
/// id and the data use reading it adds. For fields an output reads besides
/// the predicate (export fields, a breakdown's attribute).
pub(crate) fn check_field(
    policy: &Policy,
    seg: &CheckedSegment,
    attr: &str,
) -> Result<(AttrId, DataUse), SegmentError> {
    let mut c = Checker {
        policy,
        purpose: seg.purpose,
        purpose_key: &seg.purpose_key,
        src: "",
        uses: DataUse::default(),
        attrs: Vec::new(),
    };
    let id = c.attribute(attr, Span::default())?;
    Ok((id, c.uses))
}

struct Checker<'a> {
    policy: &'a Policy,
    purpose: PurposeId,
    purpose_key: &'a str,
    src: &'a str,
    uses: DataUse,
    attrs: Vec<AttrId>,
}

impl Checker<'_> {
    fn fail(&self, span: Span, kind: Kind) -> SegmentError {
        let mut e = SegmentError::refuse(kind, self.purpose_key);
        e.locate(self.src, span);
        e
    }

    fn attribute(&mut self, name: &str, span: Span) -> Result<AttrId, SegmentError> {
        let p = self.policy;
        let Some(id) = p.attr_id(name) else {
            return Err(self.fail(
                span,
                Kind::UnknownAttribute {
                    attribute: name.into(),
                },
            ));
        };
        let spec = p.attribute(id);
        let flags = p.attribute_flags(id);
        let cat = &spec.category;
        // The facts a policy refusal names, built only when one is made.
        let facts = || (name.to_string(), cat.clone(), self.purpose_key.to_string());
        if flags.criminal {
            let (attribute, category, purpose) = facts();
            return Err(self.fail(
                span,
                Kind::CriminalData {
                    attribute,
                    category,
                    purpose,
                },
            ));
        }
        if flags.protected {
            let (attribute, category, purpose) = facts();
            return Err(self.fail(
                span,
                Kind::ProtectedAttribute {
                    attribute,
                    category,
                    purpose,
                },
            ));
        }
        let allowed = &p.purpose(self.purpose).categories;
        let covering: Vec<&String> = allowed
            .iter()
            .filter(|k| crate::policy::covers(k, cat))
            .collect();
        if covering.is_empty() {
            let (attribute, category, purpose) = facts();
            return Err(self.fail(
                span,
                Kind::NotAllowedForPurpose {
                    attribute,
                    category,
                    purpose,
                },
            ));
        }
        if flags.special {
            if !covering.iter().any(|k| p.category_flags(k).special) {
                let (attribute, category, purpose) = facts();
                return Err(self.fail(
                    span,
                    Kind::SpecialCategory {
                        attribute,
                        category,
                        purpose,
                    },
                ));
            }
            self.uses.special = true;
        }
        if flags.ccpa_sensitive {
            self.uses.ccpa_sensitive = true;
        }
        if !self.attrs.contains(&id) {
            self.attrs.push(id);
        }
        Ok(id)
    }

    /// A literal as an ordered value (integer or time) for attribute `id`.
    fn ordered(
        &self,
        attr: &str,
        id: AttrId,
        v: &Literal,
        span: Span,
    ) -> Result<Bound, SegmentError> {
        let ty = self.policy.attribute(id).ty;
        match (ty, v) {
            (AttrType::Integer, Literal::Int(i)) => Ok(Bound::Abs(*i)),
            (AttrType::Timestamp, Literal::Now { now }) => Ok(Bound::Now(*now)),
            (AttrType::Timestamp, Literal::Str(s)) => Timestamp::parse(s)
                .map(|t| Bound::Abs(t.unix()))
                .map_err(|e| {
                    self.fail(
                        span,
                        Kind::BadTimestamp {
                            attribute: attr.into(),
                            reason: e.to_string(),
                        },
                    )
                }),
            _ => Err(self.fail(
                span,
                Kind::WrongValueType {
                    attribute: attr.into(),
                    ty,
                    value: v.clone(),
                },
            )),
        }
    }

    fn cat_value(
        &self,
        attr: &str,
        id: AttrId,
        v: &Literal,
        span: Span,
    ) -> Result<u32, SegmentError> {
        match v {
            Literal::Str(s) => self.policy.value_index(id, s).ok_or_else(|| {
                self.fail(
                    span,
                    Kind::UndeclaredValue {
                        attribute: attr.into(),
                        value: v.clone(),
                        declared: self.policy.attribute(id).values.clone(),
                    },
                )
            }),
            _ => Err(self.fail(
                span,
                Kind::WrongValueType {
                    attribute: attr.into(),
                    ty: AttrType::Categorical,
                    value: v.clone(),
                },
            )),
        }
    }

    /// Checks an expression without recursion (a heap stack of steps, in
    /// the order a recursive walk would take them), so that the native
    /// stack it needs does not grow with nesting.
    fn expr(&mut self, root: &Expr, depth: usize) -> Result<CheckedExpr, SegmentError> {
        enum Step<'e> {
            Visit(&'e Expr, usize),
            Join { and: bool, n: usize },
            Negate,
        }
        let mut todo = vec![Step::Visit(root, depth)];
        let mut done: Vec<CheckedExpr> = Vec::new();
        while let Some(step) = todo.pop() {
            match step {
                Step::Visit(e, depth) => {
                    if depth > MAX_DEPTH {
                        return Err(SegmentError::refuse(
                            Kind::NestingTooDeep { max: MAX_DEPTH },
                            self.purpose_key,
                        ));
                    }
                    match e {
                        Expr::And(xs) | Expr::Or(xs) => {
                            if xs.is_empty() {
                                return Err(SegmentError::refuse(
                                    Kind::EmptyJunction,
                                    self.purpose_key,
                                ));
                            }
                            let and = matches!(e, Expr::And(_));
                            todo.push(Step::Join { and, n: xs.len() });
                            todo.extend(xs.iter().rev().map(|x| Step::Visit(x, depth + 1)));
                        }
                        Expr::Not(x) => {
                            todo.push(Step::Negate);
                            todo.push(Step::Visit(x, depth + 1));
                        }
                        leaf => done.push(self.leaf(leaf)?),
                    }
                }
                Step::Join { and, n } => join(&mut done, and, n),
                Step::Negate => negate(&mut done),
            }
        }
        Ok(done.pop().expect("the walk leaves the root's result"))
    }

    /// Checks a term (an expression that is not `and`, `or` or `not`).
    fn leaf(&mut self, e: &Expr) -> Result<CheckedExpr, SegmentError> {
        Ok(match e {
            Expr::Const(b) => CheckedExpr::Const(*b),
            Expr::And(_) | Expr::Or(_) | Expr::Not(_) => {
                unreachable!("Checker::expr walks and, or and not itself")
            }
            Expr::Has { attr, span } => CheckedExpr::Term(Term::Has(self.attribute(attr, *span)?)),
            Expr::Cmp {
                attr,
                op,
                value,
                span,
            } => CheckedExpr::Term(self.comparison(attr, *op, value, *span)?),
            Expr::In {
                attr,
                values,
                negated,
                span,
            } => CheckedExpr::Term(self.membership(attr, values, *negated, *span)?),
            Expr::Between {
                attr,
                low,
                high,
                span,
            } => {
                let id = self.attribute(attr, *span)?;
                let lo = self.ordered(attr, id, low, *span)?;
                let hi = self.ordered(attr, id, high, *span)?;
                CheckedExpr::Term(Term::Range {
                    attr: id,
                    lo,
                    hi,
                    negated: false,
                })
            }
        })
    }

    /// Checks `attr op value` against the attribute's type.
    fn comparison(
        &mut self,
        attr: &str,
        op: CmpOp,
        value: &Literal,
        span: Span,
    ) -> Result<Term, SegmentError> {
        let id = self.attribute(attr, span)?;
        let ty = self.policy.attribute(id).ty;
        Ok(match ty {
            AttrType::Categorical => match op {
                CmpOp::Eq | CmpOp::Ne => Term::CatIn {
                    attr: id,
                    values: vec![self.cat_value(attr, id, value, span)?],
                    negated: op == CmpOp::Ne,
                },
                _ => {
                    return Err(self.fail(
                        span,
                        Kind::CategoricalOperator {
                            attribute: attr.into(),
                            op,
                        },
                    ));
                }
            },
            AttrType::Boolean => match (op, value) {
                (CmpOp::Eq, Literal::Bool(b)) => Term::BoolIs {
                    attr: id,
                    value: *b,
                },
                (CmpOp::Ne, Literal::Bool(b)) => Term::BoolIs {
                    attr: id,
                    value: !*b,
                },
                _ => {
                    return Err(self.fail(
                        span,
                        Kind::BooleanComparison {
                            attribute: attr.into(),
                            op,
                            value: value.clone(),
                        },
                    ));
                }
            },
            AttrType::Integer | AttrType::Timestamp => {
                let b = self.ordered(attr, id, value, span)?;
                range_of(id, op, b)
            }
        })
    }

    /// Checks `attr [not] in (values)`: a categorical attribute and a
    /// non-empty list of its declared values.
    fn membership(
        &mut self,
        attr: &str,
        values: &[Literal],
        negated: bool,
        span: Span,
    ) -> Result<Term, SegmentError> {
        let id = self.attribute(attr, span)?;
        let ty = self.policy.attribute(id).ty;
        if ty != AttrType::Categorical {
            return Err(self.fail(
                span,
                Kind::InNeedsCategorical {
                    attribute: attr.into(),
                    ty,
                },
            ));
        }
        if values.is_empty() {
            return Err(self.fail(
                span,
                Kind::EmptyIn {
                    attribute: attr.into(),
                },
            ));
        }
        let mut vs = values
            .iter()
            .map(|v| self.cat_value(attr, id, v, span))
            .collect::<Result<Vec<_>, _>>()?;
        vs.sort_unstable();
        vs.dedup();
        Ok(Term::CatIn {
            attr: id,
            values: vs,
            negated,
        })
    }
}

fn shift(b: Bound, by: i64) -> Bound {
    match b {
        Bound::Abs(v) => Bound::Abs(v.saturating_add(by)),
        Bound::Now(v) => Bound::Now(v.saturating_add(by)),
    }
}

fn range_of(attr: AttrId, op: CmpOp, b: Bound) -> Term {
    let (min, max) = (Bound::Abs(i64::MIN), Bound::Abs(i64::MAX));
    let (lo, hi, negated) = match op {
        CmpOp::Eq => (b, b, false),
        CmpOp::Ne => (b, b, true),
        CmpOp::Lt => (min, shift(b, -1), false),
        CmpOp::Le => (min, b, false),
        CmpOp::Gt => (shift(b, 1), max, false),
        CmpOp::Ge => (b, max, false),
    };
    // `< i64::MIN` and `> i64::MAX` saturate into a non-empty range: make
    // them empty explicitly.
    let empty = matches!(
        (op, b),
        (CmpOp::Lt, Bound::Abs(i64::MIN)) | (CmpOp::Gt, Bound::Abs(i64::MAX))
    );
    if empty {
        return Term::Range {
            attr,
            lo: max,
            hi: min,
            negated: false,
        };
    }
    Term::Range {
        attr,
        lo,
        hi,
        negated,
    }
}

/// Validates a segment against a policy. `src` is the text it was parsed
/// from (for carets), or `""`.
pub fn validate(policy: &Policy, seg: &Segment, src: &str) -> Result<CheckedSegment, SegmentError> {
    if seg.purpose.trim().is_empty() {
        return Err(SegmentError::refuse(Kind::MissingPurpose, ""));
    }
    let Some(purpose) = policy.purpose_id(&seg.purpose) else {
        let mut e = SegmentError::refuse(
            Kind::UnknownPurpose {
                purpose: seg.purpose.clone(),
            },
            &seg.purpose,
        );
        e.locate(src, seg.purpose_span);
        return Err(e);
    };
    let mut c = Checker {
        policy,
        purpose,
        purpose_key: &seg.purpose,
        src,
        uses: DataUse::default(),
        attrs: Vec::new(),
    };
    let expr = c.expr(&seg.predicate, 0)?;
    Ok(CheckedSegment {
        name: seg.name.clone(),
        purpose,
        purpose_key: seg.purpose.clone(),
        version: policy.version(),
        expr,
        uses: c.uses,
        attrs: c.attrs,
        source: Arc::new(seg.clone()),
    })
}

/// An iterative walk's step: the last `n` finished operands become one
/// conjunction (`and`) or disjunction.
fn join(done: &mut Vec<CheckedExpr>, and: bool, n: usize) {
    let ys = done.split_off(done.len() - n);
    done.push(if and {
        CheckedExpr::And(ys)
    } else {
        CheckedExpr::Or(ys)
    });
}

/// An iterative walk's step: the last finished operand is negated.
fn negate(done: &mut Vec<CheckedExpr>) {
    let x = done.pop().expect("a negation follows its operand");
    done.push(CheckedExpr::Not(Box::new(x)));
}
