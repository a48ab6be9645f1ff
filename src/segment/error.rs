//! Errors of parsing and validation, with a caret under the offending text.

use std::fmt;

use super::ast::Span;
use crate::consent::Rule;

/// Which stage refused the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The text or JSON is not a well-formed segment.
    Parse,
    /// The segment breaks the policy or the schema.
    Validate,
}

/// Why a segment could not be parsed or validated.
///
/// `Display` writes the message, and where the source is known, the line with
/// a caret under the offending text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentError {
    /// Which stage refused it.
    pub stage: Stage,
    /// The rule broken, for a policy refusal (R1, R2, R7, R8, R20).
    pub rule: Option<Rule>,
    /// One sentence on what is wrong.
    pub message: String,
    /// The attribute concerned, if any.
    pub attribute: Option<String>,
    /// The purpose concerned, if any.
    pub purpose: Option<String>,
    /// 1-based line of the offending text (0 if unknown).
    pub line: usize,
    /// 1-based column, in characters (0 if unknown).
    pub column: usize,
    /// The offending text.
    pub snippet: String,
    /// The source line and caret, ready to print (empty if unknown).
    pub caret: String,
}

impl SegmentError {
    pub(crate) fn parse(src: &str, span: Span, message: String) -> SegmentError {
        let mut e = SegmentError {
            stage: Stage::Parse,
            rule: None,
            message,
            attribute: None,
            purpose: None,
            line: 0,
            column: 0,
            snippet: String::new(),
            caret: String::new(),
        };
        e.locate(src, span);
        if src.is_empty() {
            (e.line, e.column) = (1, 1);
        }
        e
    }

    pub(crate) fn refuse(
        rule: Option<Rule>,
        message: String,
        attribute: Option<&str>,
        purpose: &str,
    ) -> SegmentError {
        SegmentError {
            stage: Stage::Validate,
            rule,
            message,
            attribute: attribute.map(Into::into),
            purpose: Some(purpose.into()),
            line: 0,
            column: 0,
            snippet: String::new(),
            caret: String::new(),
        }
    }

    /// Points the error at `span` of `src` (no-op for an empty source).
    pub(crate) fn locate(&mut self, src: &str, span: Span) {
        if src.is_empty() || span.start > src.len() {
            return;
        }
        let start = floor_char(src, span.start);
        let end = floor_char(src, span.end.clamp(start, src.len()));
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        self.line = src[..start].matches('\n').count() + 1;
        self.column = src[line_start..start].chars().count() + 1;
        self.snippet = src[start..end.min(line_end).max(start)].to_string();
        let text = &src[line_start..line_end];
        let width = self.snippet.chars().count().max(1);
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        self.caret = format!(
            "{pad} |\n{gutter} | {text}\n{pad} | {}{}",
            " ".repeat(self.column - 1),
            "^".repeat(width)
        );
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
        match self.rule {
            Some(r) => write!(f, "refused ({r}): {}", self.message)?,
            None if self.stage == Stage::Parse => write!(f, "syntax error: {}", self.message)?,
            None => write!(f, "invalid segment: {}", self.message)?,
        }
        if self.line > 0 {
            write!(
                f,
                "\n --> line {}, column {}\n{}",
                self.line, self.column, self.caret
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for SegmentError {}
