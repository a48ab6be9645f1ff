//! The segment syntax tree: what was written, with no knowledge of a policy.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A byte range in the source text. Spans are location metadata: they take
/// no part in equality, and the JSON form has none.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

/// A whole segment: its name, its purpose and its predicate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Name, for results and the audit log.
    pub name: String,
    /// The declared purpose key (R1).
    pub purpose: String,
    /// The predicate; `{"const": true}` (everyone eligible) when absent.
    #[serde(rename = "where", default = "Expr::all")]
    pub predicate: Expr,
    /// Where the purpose was written, for error carets.
    #[serde(skip)]
    pub purpose_span: Span,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CmpOp {
    /// `=`
    #[serde(rename = "=")]
    Eq,
    /// `!=`
    #[serde(rename = "!=")]
    Ne,
    /// `<`
    #[serde(rename = "<")]
    Lt,
    /// `<=`
    #[serde(rename = "<=")]
    Le,
    /// `>`
    #[serde(rename = ">")]
    Gt,
    /// `>=`
    #[serde(rename = ">=")]
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A literal value. In JSON: a string, an integer, a boolean, or
/// `{"now": SECONDS}` for a time relative to the evaluation time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literal {
    /// `true` or `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string: a categorical value, or an RFC 3339 time.
    Str(String),
    /// `now + offset` seconds, resolved at evaluation time.
    Now {
        /// Offset in seconds (negative for the past).
        now: i64,
    },
}

/// A predicate. Cloned without recursion (see its `Clone`), so that a deep
/// predicate costs no native stack per level.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expr {
    /// `true` or `false`.
    Const(bool),
    /// All of these.
    And(Vec<Expr>),
    /// Any of these.
    Or(Vec<Expr>),
    /// Not this.
    Not(Box<Expr>),
    /// `attr OP value`.
    Cmp {
        /// Attribute name.
        attr: String,
        /// Operator.
        op: CmpOp,
        /// Value.
        value: Literal,
        /// Where the attribute was written.
        #[serde(skip)]
        span: Span,
    },
    /// `attr in (v, ...)` or `attr not in (v, ...)`.
    In {
        /// Attribute name.
        attr: String,
        /// Values.
        values: Vec<Literal>,
        /// `not in`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        negated: bool,
        /// Where the attribute was written.
        #[serde(skip)]
        span: Span,
    },
    /// `attr between low and high` (inclusive).
    Between {
        /// Attribute name.
        attr: String,
        /// Lower bound.
        low: Literal,
        /// Upper bound.
        high: Literal,
        /// Where the attribute was written.
        #[serde(skip)]
        span: Span,
    },
    /// `has(attr)`: a value is present and fresh.
    Has {
        /// Attribute name.
        attr: String,
        /// Where the attribute was written.
        #[serde(skip)]
        span: Span,
    },
}

impl Expr {
    /// The predicate that matches every eligible subject.
    pub fn all() -> Expr {
        Expr::Const(true)
    }

    fn precedence(&self) -> u8 {
        match self {
            Expr::Or(_) => 1,
            Expr::And(_) => 2,
            _ => 3,
        }
    }

    fn write_child(&self, f: &mut fmt::Formatter<'_>, parent: u8) -> fmt::Result {
        // A child of the same or lower precedence keeps its parentheses, so
        // printing and parsing again gives the same tree.
        if self.precedence() <= parent && self.precedence() < 3 {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Str(s) => {
                f.write_str("\"")?;
                for c in s.chars() {
                    match c {
                        '"' => f.write_str("\\\"")?,
                        '\\' => f.write_str("\\\\")?,
                        '\n' => f.write_str("\\n")?,
                        '\t' => f.write_str("\\t")?,
                        '\r' => f.write_str("\\r")?,
                        c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                        c => write!(f, "{c}")?,
                    }
                }
                f.write_str("\"")
            }
            Literal::Now { now: 0 } => f.write_str("now"),
            Literal::Now { now } => {
                let sign = if *now < 0 { '-' } else { '+' };
                let n = now.unsigned_abs();
                let (v, unit) = [(604_800, 'w'), (86_400, 'd'), (3_600, 'h'), (60, 'm')]
                    .into_iter()
                    .find(|(s, _)| n % s == 0)
                    .map_or((n, 's'), |(s, u)| (n / s, u));
                write!(f, "now {sign} {v}{unit}")
            }
        }
    }
}

impl Clone for Expr {
    /// Clones bottom-up with a heap stack: a derived clone recurses once
    /// per level, more than a kilobyte of native stack each in a debug
    /// build, which a host thread with a small stack cannot afford at the
    /// deepest nesting the language allows.
    fn clone(&self) -> Expr {
        enum Step<'e> {
            Visit(&'e Expr),
            Join { and: bool, n: usize },
            Negate,
        }
        let mut todo = vec![Step::Visit(self)];
        let mut done: Vec<Expr> = Vec::new();
        while let Some(step) = todo.pop() {
            match step {
                Step::Visit(e) => match e {
                    Expr::And(xs) | Expr::Or(xs) => {
                        let and = matches!(e, Expr::And(_));
                        todo.push(Step::Join { and, n: xs.len() });
                        todo.extend(xs.iter().rev().map(Step::Visit));
                    }
                    Expr::Not(x) => {
                        todo.push(Step::Negate);
                        todo.push(Step::Visit(x));
                    }
                    Expr::Const(b) => done.push(Expr::Const(*b)),
                    Expr::Cmp {
                        attr,
                        op,
                        value,
                        span,
                    } => done.push(Expr::Cmp {
                        attr: attr.clone(),
                        op: *op,
                        value: value.clone(),
                        span: *span,
                    }),
                    Expr::In {
                        attr,
                        values,
                        negated,
                        span,
                    } => done.push(Expr::In {
                        attr: attr.clone(),
                        values: values.clone(),
                        negated: *negated,
                        span: *span,
                    }),
                    Expr::Between {
                        attr,
                        low,
                        high,
                        span,
                    } => done.push(Expr::Between {
                        attr: attr.clone(),
                        low: low.clone(),
                        high: high.clone(),
                        span: *span,
                    }),
                    Expr::Has { attr, span } => done.push(Expr::Has {
                        attr: attr.clone(),
                        span: *span,
                    }),
                },
                Step::Join { and, n } => {
                    let ys = done.split_off(done.len() - n);
                    done.push(if and { Expr::And(ys) } else { Expr::Or(ys) });
                }
                Step::Negate => {
                    let x = done.pop().expect("a negation follows its operand");
                    done.push(Expr::Not(Box::new(x)));
                }
            }
        }
        done.pop().expect("the walk leaves the root's copy")
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Const(b) => write!(f, "{b}"),
            Expr::And(xs) | Expr::Or(xs) => {
                let (word, p) = if matches!(self, Expr::And(_)) {
                    (" and ", 2)
                } else {
                    (" or ", 1)
                };
                if xs.is_empty() {
                    return write!(f, "{}", matches!(self, Expr::And(_)));
                }
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    x.write_child(f, p)?;
                }
                Ok(())
            }
            Expr::Not(x) => {
                f.write_str("not ")?;
                if x.precedence() < 3 {
                    write!(f, "({x})")
                } else {
                    write!(f, "{x}")
                }
            }
            Expr::Cmp {
                attr, op, value, ..
            } => write!(f, "{attr} {} {value}", op.as_str()),
            Expr::In {
                attr,
                values,
                negated,
                ..
            } => {
                write!(f, "{attr} {}in (", if *negated { "not " } else { "" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Expr::Between {
                attr, low, high, ..
            } => write!(f, "{attr} between {low} and {high}"),
            Expr::Has { attr, .. } => write!(f, "has({attr})"),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "segment {} for {}",
            Literal::Str(self.name.clone()),
            self.purpose
        )?;
        if self.predicate != Expr::Const(true) {
            write!(f, " where {}", self.predicate)?;
        }
        Ok(())
    }
}
