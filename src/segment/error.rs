//! Errors of parsing and validation, with a caret under the offending text.

use std::fmt;

use super::ast::{CmpOp, Literal, Span};
use crate::consent::Rule;
use crate::policy::AttrType;

/// Which stage refused the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The text or JSON is not a well-formed segment.
    Parse,
    /// The segment breaks the policy or the schema.
    Validate,
}

/// What is wrong with a segment: one variant per distinct error, with the
/// facts it is about. Its `Display` is the one-sentence message (without the
/// location, which [`SegmentError`] adds).
///
/// New variants may be added in later versions, so matches must have a
/// wildcard arm.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SegmentErrorKind {
    /// The segment is longer than [`MAX_SEGMENT_BYTES`](super::MAX_SEGMENT_BYTES).
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// The JSON form is not well-formed or not a segment.
    Json {
        /// The JSON parser's description.
        reason: String,
    },
    /// A character that starts no token.
    UnexpectedChar(char),
    /// A `\u` escape that is not `\u{HEX}` naming a character.
    BadUnicodeEscape,
    /// A backslash escape the language does not define.
    UnknownEscape,
    /// A string with no closing quote.
    UnterminatedString,
    /// An integer literal outside the 64-bit range.
    NumberTooLarge {
        /// The digits as written.
        digits: String,
    },
    /// A duration with a minus sign (write `now - 90d` instead).
    NegativeDuration,
    /// A duration whose seconds overflow 64 bits.
    DurationTooLarge,
    /// A number directly followed by a letter that is not a duration unit.
    NumberNeedsSeparator,
    /// A token other than the grammar allows here.
    Expected {
        /// What was allowed.
        expected: String,
        /// What was found.
        found: String,
    },
    /// Parentheses and `not` nested deeper than allowed.
    NestingTooDeep {
        /// The deepest nesting allowed.
        max: usize,
    },
    /// The segment declares no purpose (R1).
    MissingPurpose,
    /// The segment's purpose is not one the policy declares (R1).
    UnknownPurpose {
        /// The purpose as written.
        purpose: String,
    },
    /// An `and` or `or` (JSON form) with no operand.
    EmptyJunction,
    /// The attribute is not in the policy.
    UnknownAttribute {
        /// The attribute as written.
        attribute: String,
    },
    /// The attribute is criminal-offence data, which no segment may use (R8).
    CriminalData {
        /// The attribute.
        attribute: String,
        /// Its category.
        category: String,
        /// The segment's purpose.
        purpose: String,
    },
    /// The attribute is protected, held for fairness audits only (R20).
    ProtectedAttribute {
        /// The attribute.
        attribute: String,
        /// Its category.
        category: String,
        /// The segment's purpose.
        purpose: String,
    },
    /// The purpose may not use the attribute's category (R2).
    NotAllowedForPurpose {
        /// The attribute.
        attribute: String,
        /// Its category.
        category: String,
        /// The segment's purpose.
        purpose: String,
    },
    /// The attribute is special-category data the purpose does not
    /// explicitly allow (R7).
    SpecialCategory {
        /// The attribute.
        attribute: String,
        /// Its category.
        category: String,
        /// The segment's purpose.
        purpose: String,
    },
    /// A timestamp attribute compared with a string that is no timestamp.
    BadTimestamp {
        /// The attribute.
        attribute: String,
        /// Why the string is not a timestamp.
        reason: String,
    },
    /// A value of the wrong type for the attribute.
    WrongValueType {
        /// The attribute.
        attribute: String,
        /// Its type.
        ty: AttrType,
        /// The value it was compared with.
        value: Literal,
    },
    /// A categorical attribute compared with a value it does not declare.
    UndeclaredValue {
        /// The attribute.
        attribute: String,
        /// The value.
        value: Literal,
        /// The values the attribute declares.
        declared: Vec<String>,
    },
    /// A categorical attribute with an ordering operator.
    CategoricalOperator {
        /// The attribute.
        attribute: String,
        /// The operator.
        op: CmpOp,
    },
    /// A boolean attribute compared otherwise than `= true/false`.
    BooleanComparison {
        /// The attribute.
        attribute: String,
        /// The operator.
        op: CmpOp,
        /// The value.
        value: Literal,
    },
    /// `in` applied to an attribute that is not categorical.
    InNeedsCategorical {
        /// The attribute.
        attribute: String,
        /// Its type.
        ty: AttrType,
    },
    /// `in` with an empty list (JSON form).
    EmptyIn {
        /// The attribute.
        attribute: String,
    },
}

impl SegmentErrorKind {
    /// The rule the segment breaks, for a policy refusal (R1, R2, R7, R8,
    /// R20); `None` for an error in the segment itself.
    pub fn rule(&self) -> Option<Rule> {
        use SegmentErrorKind as K;
        match self {
            K::MissingPurpose | K::UnknownPurpose { .. } => Some(Rule::R1),
            K::NotAllowedForPurpose { .. } => Some(Rule::R2),
            K::SpecialCategory { .. } => Some(Rule::R7),
            K::CriminalData { .. } => Some(Rule::R8),
            K::ProtectedAttribute { .. } => Some(Rule::R20),
            _ => None,
        }
    }

    /// The attribute concerned, if any.
    pub fn attribute(&self) -> Option<&str> {
        use SegmentErrorKind as K;
        match self {
            K::UnknownAttribute { attribute }
            | K::CriminalData { attribute, .. }
            | K::ProtectedAttribute { attribute, .. }
            | K::NotAllowedForPurpose { attribute, .. }
            | K::SpecialCategory { attribute, .. }
            | K::BadTimestamp { attribute, .. }
            | K::WrongValueType { attribute, .. }
            | K::UndeclaredValue { attribute, .. }
            | K::CategoricalOperator { attribute, .. }
            | K::BooleanComparison { attribute, .. }
            | K::InNeedsCategorical { attribute, .. }
            | K::EmptyIn { attribute } => Some(attribute),
            _ => None,
        }
    }
}

/// "an integer", "a timestamp"...
pub(crate) fn article(ty: AttrType) -> String {
    match ty {
        AttrType::Integer => "an integer".into(),
        t => format!("a {}", t.as_str()),
    }
}

impl fmt::Display for SegmentErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SegmentErrorKind as K;
        // Exhaustive, so that a new kind cannot go without a message.
        match self {
            K::TooLong { .. }
            | K::Json { .. }
            | K::UnexpectedChar(_)
            | K::BadUnicodeEscape
            | K::UnknownEscape
            | K::UnterminatedString
            | K::NumberTooLarge { .. }
            | K::NegativeDuration
            | K::DurationTooLarge
            | K::NumberNeedsSeparator
            | K::Expected { .. }
            | K::NestingTooDeep { .. } => self.syntax_message(f),
            K::MissingPurpose
            | K::UnknownPurpose { .. }
            | K::EmptyJunction
            | K::UnknownAttribute { .. }
            | K::CriminalData { .. }
            | K::ProtectedAttribute { .. }
            | K::NotAllowedForPurpose { .. }
            | K::SpecialCategory { .. } => self.policy_message(f),
            K::BadTimestamp { .. }
            | K::WrongValueType { .. }
            | K::UndeclaredValue { .. }
            | K::CategoricalOperator { .. }
            | K::BooleanComparison { .. }
            | K::InNeedsCategorical { .. }
            | K::EmptyIn { .. } => self.comparison_message(f),
        }
    }
}

impl SegmentErrorKind {
    /// The message of an error in the segment's text or JSON.
    fn syntax_message(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SegmentErrorKind as K;
        match self {
            K::TooLong { len, max } => write!(
                f,
                "the segment is {len} bytes long, more than the {max} allowed"
            ),
            K::Json { reason } => write!(f, "segment JSON: {reason}"),
            K::UnexpectedChar(ch) => write!(f, "unexpected character {ch:?}"),
            K::BadUnicodeEscape => f.write_str("bad \\u escape: expected \\u{HEX}"),
            K::UnknownEscape => {
                f.write_str("unknown escape: use \\\" \\\\ \\n \\t \\r or \\u{HEX}")
            }
            K::UnterminatedString => f.write_str("unterminated string"),
            K::NumberTooLarge { digits } => {
                write!(f, "number {digits} does not fit in 64 bits")
            }
            K::NegativeDuration => f.write_str("a duration cannot be negative"),
            K::DurationTooLarge => f.write_str("duration too large"),
            K::NumberNeedsSeparator => f.write_str(
                "a number must be followed by a space or punctuation (durations use s, m, h, d, w)",
            ),
            K::Expected { expected, found } => write!(f, "expected {expected}, found {found}"),
            K::NestingTooDeep { max } => write!(f, "nesting deeper than {max} levels"),
            // Not reached: `fmt` sends only this group's kinds here.
            _ => write!(f, "{self:?}"),
        }
    }

    /// The message of a purpose or attribute the policy refuses (or does not know).
    fn policy_message(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SegmentErrorKind as K;
        match self {
            K::MissingPurpose => f.write_str("a segment needs a declared purpose"),
            K::UnknownPurpose { purpose } => write!(
                f,
                "unknown purpose {purpose}: a segment's purpose must be one the policy declares"
            ),
            K::EmptyJunction => f.write_str("`and`/`or` needs at least one operand"),
            K::UnknownAttribute { attribute } => write!(f, "unknown attribute `{attribute}`"),
            K::CriminalData {
                attribute,
                category,
                purpose,
            } => write!(
                f,
                "attribute `{attribute}` is criminal-offence data ({category}), which no segment may use; purpose {purpose}"
            ),
            K::ProtectedAttribute {
                attribute,
                category,
                purpose,
            } => write!(
                f,
                "attribute `{attribute}` is a protected attribute ({category}), held for fairness audits only and never a predicate term; purpose {purpose}"
            ),
            K::NotAllowedForPurpose {
                attribute,
                category,
                purpose,
            } => write!(
                f,
                "purpose {purpose} may not use attribute `{attribute}` (category {category}): data minimisation"
            ),
            K::SpecialCategory {
                attribute,
                category,
                purpose,
            } => write!(
                f,
                "attribute `{attribute}` is special-category data ({category}), which purpose {purpose} does not explicitly allow"
            ),
            // Not reached: `fmt` sends only this group's kinds here.
            _ => write!(f, "{self:?}"),
        }
    }

    /// The message of a comparison the attribute's type does not allow.
    fn comparison_message(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SegmentErrorKind as K;
        match self {
            K::BadTimestamp { attribute, reason } => {
                write!(f, "`{attribute}` is a timestamp: {reason}")
            }
            K::WrongValueType {
                attribute,
                ty: AttrType::Categorical,
                value,
            } => write!(
                f,
                "`{attribute}` is categorical and cannot be compared with {value}"
            ),
            K::WrongValueType {
                attribute,
                ty,
                value,
            } => write!(
                f,
                "`{attribute}` is {} and cannot be compared with {value}",
                article(*ty)
            ),
            K::UndeclaredValue {
                attribute,
                value,
                declared,
            } => {
                write!(
                    f,
                    "{value} is not a declared value of `{attribute}` (declared: "
                )?;
                for (i, d) in declared.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{d:?}")?;
                }
                f.write_str(")")
            }
            K::CategoricalOperator { attribute, op } => write!(
                f,
                "`{attribute}` is categorical: only =, !=, in and not in apply, not {}",
                op.as_str()
            ),
            K::BooleanComparison {
                attribute,
                op,
                value,
            } => write!(
                f,
                "`{attribute}` is boolean: compare it with = true or = false, not {} {value}",
                op.as_str()
            ),
            K::InNeedsCategorical { attribute, ty } => write!(
                f,
                "`in` applies to categorical attributes; `{attribute}` is {}",
                article(*ty)
            ),
            K::EmptyIn { .. } => f.write_str("`in` needs at least one value"),
            // Not reached: `fmt` sends only this group's kinds here.
            _ => write!(f, "{self:?}"),
        }
    }
}

/// Why a segment could not be parsed or validated: what is wrong
/// ([`kind`](SegmentError::kind)), where ([`span`](SegmentError::span), a
/// byte range into [`pattern`](SegmentError::pattern)), and which stage
/// found it.
///
/// `Display` writes the message, and where the source is known, the line with
/// a caret under the offending text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentError {
    kind: SegmentErrorKind,
    stage: Stage,
    /// The segment's purpose, for a validation error.
    purpose: Option<String>,
    /// The source text the span points into (empty if unknown).
    pattern: String,
    /// Where in `pattern`, if the error points into it.
    span: Option<Span>,
    /// 1-based line and column (in characters), 0 if unknown.
    line: usize,
    column: usize,
}

impl SegmentError {
    /// A parse error at `span` of `src`. With no source (`""`), the error
    /// sits at line 1, column 1.
    pub(crate) fn parse(src: &str, span: Span, kind: SegmentErrorKind) -> SegmentError {
        let mut e = SegmentError {
            kind,
            stage: Stage::Parse,
            purpose: None,
            pattern: String::new(),
            span: None,
            line: 0,
            column: 0,
        };
        e.locate(src, span);
        if src.is_empty() {
            (e.line, e.column) = (1, 1);
        }
        e
    }

    /// A parse error of the JSON form, at a line and column of the JSON.
    pub(crate) fn json(reason: String, line: usize, column: usize) -> SegmentError {
        let mut e = SegmentError::parse("", Span::default(), SegmentErrorKind::Json { reason });
        (e.line, e.column) = (line, column);
        e
    }

    /// A validation error for a segment whose purpose is `purpose`, with no
    /// location until [`locate`](Self::locate) gives one.
    pub(crate) fn refuse(kind: SegmentErrorKind, purpose: &str) -> SegmentError {
        SegmentError {
            kind,
            stage: Stage::Validate,
            purpose: Some(purpose.into()),
            pattern: String::new(),
            span: None,
            line: 0,
            column: 0,
        }
    }

    /// Points the error at `span` of `src` (no-op for an empty source or a
    /// span outside it).
    pub(crate) fn locate(&mut self, src: &str, span: Span) {
        if src.is_empty() || span.start > src.len() {
            return;
        }
        let start = floor_char(src, span.start);
        let end = floor_char(src, span.end.clamp(start, src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        self.line = src[..start].matches('\n').count() + 1;
        self.column = src[line_start..start].chars().count() + 1;
        self.pattern = src.to_string();
        self.span = Some(Span { start, end });
    }

    /// What is wrong.
    pub fn kind(&self) -> &SegmentErrorKind {
        &self.kind
    }

    /// Which stage refused the segment.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// The byte range of [`pattern`](Self::pattern) the error points at, if
    /// it points into the source text (not for the JSON form, nor for a
    /// refusal of the whole segment).
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// The source text the error points into; empty if the error has no
    /// location in a text form.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// The rule broken, for a policy refusal (R1, R2, R7, R8, R20).
    pub fn rule(&self) -> Option<Rule> {
        self.kind.rule()
    }

    /// One sentence on what is wrong (the kind's `Display`).
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// The attribute concerned, if any.
    pub fn attribute(&self) -> Option<&str> {
        self.kind.attribute()
    }

    /// The purpose concerned, for a validation error.
    pub fn purpose(&self) -> Option<&str> {
        self.purpose.as_deref()
    }

    /// 1-based line of the offending text (0 if unknown).
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column, in characters (0 if unknown).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The offending text: the part of the span on its first line (empty if
    /// unknown).
    pub fn snippet(&self) -> &str {
        match self.span {
            Some(sp) => {
                let line_end = self.pattern[sp.start..]
                    .find('\n')
                    .map_or(self.pattern.len(), |i| sp.start + i);
                &self.pattern[sp.start..sp.end.min(line_end).max(sp.start)]
            }
            None => "",
        }
    }

    /// The source line with a caret under the offending text, ready to
    /// print (empty if unknown).
    pub fn caret(&self) -> String {
        let Some(sp) = self.span else {
            return String::new();
        };
        let src = &self.pattern;
        let line_start = src[..sp.start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[sp.start..]
            .find('\n')
            .map_or(src.len(), |i| sp.start + i);
        let text = &src[line_start..line_end];
        let width = self.snippet().chars().count().max(1);
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        format!(
            "{pad} |\n{gutter} | {text}\n{pad} | {}{}",
            " ".repeat(self.column - 1),
            "^".repeat(width)
        )
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for SegmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule() {
            Some(r) => write!(f, "refused ({r}): {}", self.kind)?,
            None if self.stage == Stage::Parse => write!(f, "syntax error: {}", self.kind)?,
            None => write!(f, "invalid segment: {}", self.kind)?,
        }
        if self.line > 0 {
            write!(
                f,
                "\n --> line {}, column {}\n{}",
                self.line,
                self.column,
                self.caret()
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SegmentError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::segment::{from_json, parse};

    #[test]
    fn a_parse_error_has_a_kind_a_span_into_its_pattern_and_a_caret() {
        let src = "segment \"x\" for marketing.email\n  where country \"FR\"";
        let err = parse(src).unwrap_err();
        assert_eq!(
            err.kind(),
            &SegmentErrorKind::Expected {
                expected: "a comparison (=, !=, <, <=, >, >=, in, not in, between) after `country`"
                    .into(),
                found: "the string \"FR\"".into(),
            }
        );
        assert_eq!(err.stage(), Stage::Parse);
        assert_eq!(err.pattern(), src);
        let span = err.span().unwrap();
        assert_eq!(&src[span.start..span.end], "\"FR\"");
        assert_eq!((err.line(), err.column()), (2, 17));
        assert_eq!(err.snippet(), "\"FR\"");
        assert_eq!(
            err.to_string(),
            "syntax error: expected a comparison (=, !=, <, <=, >, >=, in, not in, between) \
             after `country`, found the string \"FR\"\n --> line 2, column 17\n  |\n2 |   \
             where country \"FR\"\n  |                 ^^^^"
        );
    }

    #[test]
    fn errors_without_a_text_source_have_no_span() {
        let err = from_json("{").unwrap_err();
        assert!(
            matches!(err.kind(), SegmentErrorKind::Json { .. }),
            "{err:?}"
        );
        assert_eq!(err.span(), None);
        assert_eq!(err.pattern(), "");
        assert_eq!(err.caret(), "");
        assert!(err.line() > 0);
        let err = SegmentError::refuse(SegmentErrorKind::MissingPurpose, "");
        assert_eq!(err.rule(), Some(Rule::R1));
        assert_eq!(err.span(), None);
        assert_eq!(
            err.to_string(),
            "refused (R1): a segment needs a declared purpose"
        );
    }

    #[test]
    fn policy_refusals_derive_their_rule_and_attribute_from_the_kind() {
        let kind = SegmentErrorKind::SpecialCategory {
            attribute: "ill".into(),
            category: "health".into(),
            purpose: "research".into(),
        };
        assert_eq!(kind.rule(), Some(Rule::R7));
        assert_eq!(kind.attribute(), Some("ill"));
        let kind = SegmentErrorKind::WrongValueType {
            attribute: "age".into(),
            ty: AttrType::Integer,
            value: Literal::Bool(true),
        };
        assert_eq!(kind.rule(), None);
        assert_eq!(
            kind.to_string(),
            "`age` is an integer and cannot be compared with true"
        );
    }
}
