//! Text form of segments: a lexer and a parser with a nesting limit whose
//! expressions are parsed with a heap stack rather than by recursion, so
//! that its native stack use does not grow with nesting.

use super::ast::{CmpOp, Expr, Literal, Segment, Span};
use super::error::{SegmentError, SegmentErrorKind as Kind};

/// The deepest nesting of parentheses and `not` the parser accepts.
pub const MAX_DEPTH: usize = 64;

/// The longest segment accepted, text or JSON, in bytes (4 MiB: room for
/// some 200,000 terms). Every stage after parsing is linear in the size,
/// so this bounds the work one segment can cause.
pub const MAX_SEGMENT_BYTES: usize = 4 << 20;

/// Refuses a segment longer than [`MAX_SEGMENT_BYTES`] before reading it.
pub(crate) fn check_size(src: &str) -> Result<(), SegmentError> {
    if src.len() > MAX_SEGMENT_BYTES {
        return Err(SegmentError::parse(
            "",
            Span::default(),
            Kind::TooLong {
                len: src.len(),
                max: MAX_SEGMENT_BYTES,
            },
        ));
    }
    Ok(())
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Dur(i64),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Dot,
    Plus,
    Minus,
    Eof,
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("`{s}`"),
        Tok::Str(s) => format!("the string {s:?}"),
        Tok::Int(i) => format!("the number {i}"),
        Tok::Dur(_) => "a duration".into(),
        Tok::Op(o) => format!("`{}`", o.as_str()),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Dot => "`.`".into(),
        Tok::Plus => "`+`".into(),
        Tok::Minus => "`-`".into(),
        Tok::Eof => "the end of the text".into(),
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn err(&self, start: usize, end: usize, kind: Kind) -> SegmentError {
        SegmentError::parse(self.src, Span { start, end }, kind)
    }

    fn tokens(mut self) -> Result<Vec<(Tok, Span)>, SegmentError> {
        let mut out = Vec::new();
        let b = self.src.as_bytes();
        loop {
            while self.pos < b.len() && (b[self.pos] as char).is_ascii_whitespace() {
                self.pos += 1;
            }
            let start = self.pos;
            if start >= b.len() {
                out.push((Tok::Eof, Span { start, end: start }));
                return Ok(out);
            }
            let tok = self.token(start)?;
            out.push((
                tok,
                Span {
                    start,
                    end: self.pos,
                },
            ));
        }
    }

    /// Reads the token that starts at `start` (not whitespace, not the end).
    fn token(&mut self, start: usize) -> Result<Tok, SegmentError> {
        if let Some(tok) = self.punctuation(start) {
            return Ok(tok);
        }
        let b = self.src.as_bytes();
        Ok(match b[start] {
            b'"' => self.string()?,
            b'-' | b'0'..=b'9' => self.number()?,
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while self.pos < b.len()
                    && (b[self.pos].is_ascii_alphanumeric() || b[self.pos] == b'_')
                {
                    self.pos += 1;
                }
                Tok::Ident(self.src[start..self.pos].to_string())
            }
            _ => {
                let ch = self.src[start..].chars().next().unwrap_or('?');
                return Err(self.err(start, start + ch.len_utf8(), Kind::UnexpectedChar(ch)));
            }
        })
    }

    /// Reads a punctuation mark or comparison operator at `start`, if one is
    /// there; otherwise leaves the position alone. A `-` before a digit is a
    /// number's sign, not punctuation.
    fn punctuation(&mut self, start: usize) -> Option<Tok> {
        let b = self.src.as_bytes();
        let c = b[start];
        Some(match c {
            b'(' => {
                self.pos += 1;
                Tok::LParen
            }
            b')' => {
                self.pos += 1;
                Tok::RParen
            }
            b',' => {
                self.pos += 1;
                Tok::Comma
            }
            b'.' => {
                self.pos += 1;
                Tok::Dot
            }
            b'+' => {
                self.pos += 1;
                Tok::Plus
            }
            b'-' if !b.get(start + 1).is_some_and(u8::is_ascii_digit) => {
                self.pos += 1;
                Tok::Minus
            }
            b'=' => {
                self.pos += 1;
                if b.get(self.pos) == Some(&b'=') {
                    self.pos += 1;
                }
                Tok::Op(CmpOp::Eq)
            }
            b'!' if b.get(start + 1) == Some(&b'=') => {
                self.pos += 2;
                Tok::Op(CmpOp::Ne)
            }
            b'<' | b'>' => {
                self.pos += 1;
                let eq = b.get(self.pos) == Some(&b'=');
                if eq {
                    self.pos += 1;
                }
                Tok::Op(match (c, eq) {
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                })
            }
            _ => return None,
        })
    }

    fn string(&mut self) -> Result<Tok, SegmentError> {
        let start = self.pos;
        self.pos += 1;
        let mut s = String::new();
        let mut chars = self.src[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(Tok::Str(s));
                }
                '\\' => {
                    let esc = chars.next().map(|(_, c)| c);
                    match esc {
                        Some('"') => s.push('"'),
                        Some('\\') => s.push('\\'),
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some('r') => s.push('\r'),
                        Some('u') => {
                            let rest = &self.src[self.pos + i + 2..];
                            let close = rest.find('}');
                            let ok = rest.starts_with('{')
                                && close.is_some_and(|c| c > 1 && c <= 7)
                                && close
                                    .and_then(|c| u32::from_str_radix(&rest[1..c], 16).ok())
                                    .and_then(char::from_u32)
                                    .map(|ch| s.push(ch))
                                    .is_some();
                            if !ok {
                                let at = self.pos + i;
                                return Err(self.err(at, at + 2, Kind::BadUnicodeEscape));
                            }
                            for _ in 0..=close.unwrap_or(0) {
                                chars.next();
                            }
                        }
                        _ => {
                            let at = self.pos + i;
                            return Err(self.err(
                                at,
                                at + 1 + esc.map_or(0, char::len_utf8),
                                Kind::UnknownEscape,
                            ));
                        }
                    }
                }
                c => s.push(c),
            }
        }
        Err(self.err(start, self.src.len(), Kind::UnterminatedString))
    }

    fn number(&mut self) -> Result<Tok, SegmentError> {
        let b = self.src.as_bytes();
        let start = self.pos;
        if b[self.pos] == b'-' {
            self.pos += 1;
        }
        while self.pos < b.len() && b[self.pos].is_ascii_digit() {
            self.pos += 1;
        }
        let digits = &self.src[start..self.pos];
        let unit = b.get(self.pos).copied();
        let mult = match unit {
            Some(b's') => Some(1),
            Some(b'm') => Some(60),
            Some(b'h') => Some(3_600),
            Some(b'd') => Some(86_400),
            Some(b'w') => Some(604_800),
            _ => None,
        };
        let unit_alone = mult.is_some()
            && !b
                .get(self.pos + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        let n: i64 = digits.parse().map_err(|_| {
            self.err(
                start,
                self.pos,
                Kind::NumberTooLarge {
                    digits: digits.to_string(),
                },
            )
        })?;
        if let (Some(m), true) = (mult, unit_alone) {
            self.pos += 1;
            if n < 0 {
                return Err(self.err(start, self.pos, Kind::NegativeDuration));
            }
            return n
                .checked_mul(m)
                .map(Tok::Dur)
                .ok_or_else(|| self.err(start, self.pos, Kind::DurationTooLarge));
        }
        if b.get(self.pos)
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
        {
            return Err(self.err(start, self.pos + 1, Kind::NumberNeedsSeparator));
        }
        Ok(Tok::Int(n))
    }
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, Span)>,
    i: usize,
    depth: usize,
}

/// An open parenthesis (or the whole predicate) while it is parsed: the
/// operands of `or` done, those of the current `and`, and the `not`s waiting
/// for the next operand.
#[derive(Default)]
struct Group {
    ors: Vec<Expr>,
    ands: Vec<Expr>,
    nots: usize,
}

/// One operand as itself, several joined by `join`.
fn collapse(mut xs: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if xs.len() == 1 {
        xs.remove(0)
    } else {
        join(xs)
    }
}

fn is_keyword(s: &str) -> bool {
    crate::policy::RESERVED_WORDS.contains(&s)
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }
    fn span(&self) -> Span {
        self.toks[self.i].1
    }
    fn bump(&mut self) -> (Tok, Span) {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn err_here(&self, kind: Kind) -> SegmentError {
        let mut sp = self.span();
        if sp.start == sp.end {
            sp.end = sp.start + 1;
        }
        SegmentError::parse(self.src, sp, kind)
    }
    fn expected(&self, what: &str) -> SegmentError {
        self.err_here(Kind::Expected {
            expected: what.into(),
            found: describe(self.peek()),
        })
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }
    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.bump();
        }
        yes
    }
    fn expect_word(&mut self, w: &str) -> Result<(), SegmentError> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.expected(&format!("`{w}`")))
        }
    }
    fn expect(&mut self, t: Tok, what: &str) -> Result<(), SegmentError> {
        if *self.peek() == t {
            self.bump();
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn segment(&mut self) -> Result<Segment, SegmentError> {
        self.expect_word("segment")?;
        let name = match self.bump() {
            (Tok::Str(s), _) => s,
            _ => {
                self.i -= 1;
                return Err(self.expected("the segment's name as a quoted string"));
            }
        };
        if !self.is_word("for") {
            return Err(
                self.expected("`for` and the segment's purpose (R1: every segment declares one)")
            );
        }
        self.bump();
        let (purpose, purpose_span) = self.dotted()?;
        let predicate = if self.eat_word("where") {
            self.or()?
        } else {
            Expr::Const(true)
        };
        if *self.peek() != Tok::Eof {
            return Err(self.expected("`and`, `or` or the end of the segment"));
        }
        Ok(Segment {
            name,
            purpose,
            predicate,
            purpose_span,
        })
    }

    fn dotted(&mut self) -> Result<(String, Span), SegmentError> {
        let start = self.span();
        let mut key = match self.peek() {
            Tok::Ident(s) if !is_keyword(s) => s.clone(),
            _ => return Err(self.expected("a purpose key such as marketing.email")),
        };
        self.bump();
        let mut end = start.end;
        while *self.peek() == Tok::Dot {
            self.bump();
            match self.peek() {
                Tok::Ident(s) => {
                    key.push('.');
                    key.push_str(s);
                    end = self.span().end;
                    self.bump();
                }
                _ => return Err(self.expected("a word after `.` in the purpose key")),
            }
        }
        Ok((
            key,
            Span {
                start: start.start,
                end,
            },
        ))
    }

    fn enter(&mut self) -> Result<(), SegmentError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here(Kind::NestingTooDeep { max: MAX_DEPTH }));
        }
        Ok(())
    }

    /// `or := and ("or" and)*`, `and := unary ("and" unary)*`,
    /// `unary := "not" unary | "(" or ")" | atom`, parsed without recursion:
    /// each open parenthesis is a [`Group`] on a heap stack, so the native
    /// stack the parser needs does not grow with nesting (a host thread with
    /// a small stack parses the deepest segment the language allows).
    fn or(&mut self) -> Result<Expr, SegmentError> {
        let mut open: Vec<Group> = Vec::new();
        let mut cur = Group::default();
        'operand: loop {
            while self.is_word("not") {
                self.enter()?;
                self.bump();
                cur.nots += 1;
            }
            if *self.peek() == Tok::LParen {
                self.enter()?;
                self.bump();
                open.push(std::mem::take(&mut cur));
                continue 'operand;
            }
            let mut x = self.primary()?;
            loop {
                for _ in 0..cur.nots {
                    x = Expr::Not(Box::new(x));
                    self.depth -= 1;
                }
                cur.nots = 0;
                cur.ands.push(x);
                if self.eat_word("and") {
                    continue 'operand;
                }
                let conj = collapse(std::mem::take(&mut cur.ands), Expr::And);
                cur.ors.push(conj);
                if self.eat_word("or") {
                    continue 'operand;
                }
                let disj = collapse(std::mem::take(&mut cur.ors), Expr::Or);
                let Some(outer) = open.pop() else {
                    return Ok(disj);
                };
                self.expect(Tok::RParen, "`)`")?;
                self.depth -= 1;
                cur = outer;
                x = disj;
            }
        }
    }

    /// An operand that is neither `not` nor a parenthesised group.
    fn primary(&mut self) -> Result<Expr, SegmentError> {
        let (tok, span) = self.bump();
        let attr = match tok {
            Tok::Ident(s) if s == "true" => return Ok(Expr::Const(true)),
            Tok::Ident(s) if s == "false" => return Ok(Expr::Const(false)),
            Tok::Ident(s) if s == "has" => {
                self.expect(Tok::LParen, "`(` after has")?;
                let (a, span) = self.attr()?;
                self.expect(Tok::RParen, "`)`")?;
                return Ok(Expr::Has { attr: a, span });
            }
            Tok::Ident(s) if !is_keyword(&s) => s,
            _ => {
                self.i -= 1;
                return Err(self.expected("an attribute, `has(...)`, `not` or `(`"));
            }
        };
        match self.peek().clone() {
            Tok::Op(op) => {
                self.bump();
                let value = self.literal()?;
                Ok(Expr::Cmp {
                    attr,
                    op,
                    value,
                    span,
                })
            }
            Tok::Ident(w) if w == "in" || w == "not" => {
                self.bump();
                let negated = w == "not";
                if negated {
                    self.expect_word("in")?;
                }
                self.expect(Tok::LParen, "`(` before the list of values")?;
                let mut values = vec![self.literal()?];
                while *self.peek() == Tok::Comma {
                    self.bump();
                    values.push(self.literal()?);
                }
                self.expect(Tok::RParen, "`,` or `)`")?;
                Ok(Expr::In {
                    attr,
                    values,
                    negated,
                    span,
                })
            }
            Tok::Ident(w) if w == "between" => {
                self.bump();
                let low = self.literal()?;
                self.expect_word("and")?;
                let high = self.literal()?;
                Ok(Expr::Between {
                    attr,
                    low,
                    high,
                    span,
                })
            }
            _ => Err(self.expected(&format!(
                "a comparison (=, !=, <, <=, >, >=, in, not in, between) after `{attr}`"
            ))),
        }
    }

    fn attr(&mut self) -> Result<(String, Span), SegmentError> {
        match self.bump() {
            (Tok::Ident(s), sp) if !is_keyword(&s) => Ok((s, sp)),
            _ => {
                self.i -= 1;
                Err(self.expected("an attribute name"))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, SegmentError> {
        match self.bump() {
            (Tok::Str(s), _) => Ok(Literal::Str(s)),
            (Tok::Int(i), _) => Ok(Literal::Int(i)),
            (Tok::Ident(w), _) if w == "true" => Ok(Literal::Bool(true)),
            (Tok::Ident(w), _) if w == "false" => Ok(Literal::Bool(false)),
            (Tok::Ident(w), _) if w == "now" => {
                let sign = match self.peek() {
                    Tok::Plus => 1,
                    Tok::Minus => -1,
                    _ => return Ok(Literal::Now { now: 0 }),
                };
                self.bump();
                match self.bump() {
                    (Tok::Dur(d), _) => Ok(Literal::Now { now: sign * d }),
                    _ => {
                        self.i -= 1;
                        Err(self.expected("a duration such as 90d, 12h, 30m, 2w or 45s"))
                    }
                }
            }
            _ => {
                self.i -= 1;
                Err(self.expected("a value: a string, a number, true, false or now - 90d"))
            }
        }
    }
}

/// Parses the text form of a segment.
///
/// ```
/// let seg = privseg::segment::parse(
///     r#"segment "lapsed_vip" for marketing.email where country in ("FR", "DE") and total_spend >= 500"#,
/// ).unwrap();
/// assert_eq!(seg.purpose, "marketing.email");
/// let err = privseg::segment::parse(r#"segment "x" for marketing.email where country "FR""#).unwrap_err();
/// assert_eq!((err.line(), err.column()), (1, 47));
/// assert_eq!(err.span().map(|s| (s.start, s.end)), Some((46, 50)));
/// ```
pub fn parse(src: &str) -> Result<Segment, SegmentError> {
    check_size(src)?;
    let toks = Lexer { src, pos: 0 }.tokens()?;
    Parser {
        src,
        toks,
        i: 0,
        depth: 0,
    }
    .segment()
}

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn segments_over_the_size_limit_are_refused_before_parsing() {
        let mut text = String::from(r#"segment "s" for analytics where "#);
        while text.len() <= MAX_SEGMENT_BYTES {
            text.push_str("a = 1 and ");
        }
        text.push_str("a = 1");
        let err = parse(&text).unwrap_err();
        assert!(
            matches!(err.kind(), Kind::TooLong { len, .. } if *len == text.len()),
            "{err}"
        );
        assert!(err.message().contains("more than the"), "{err}");
        assert!(crate::segment::from_json(&text).is_err());
    }
}
