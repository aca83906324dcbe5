//! Compile and evaluation errors.

use herald_codes::Code;
use std::fmt;

/// A formula or template that cannot be compiled. `offset`/`len` are byte positions in `source`.
///
/// (`std::error::Error` is implemented by hand: thiserror would take the `source` field for the
/// error's cause.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError {
    /// Stable error code (`HX001`...), documented in docs/formulas.md.
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
    pub offset: usize,
    pub len: usize,
    pub source: String,
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CompileError {}

impl CompileError {
    pub(crate) fn new(code: Code, message: impl Into<String>, offset: usize, len: usize) -> Self {
        CompileError { code, message: message.into(), hint: None, offset, len, source: String::new() }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn with_source(mut self, src: &str) -> Self {
        self.source = src.to_string();
        self
    }

    /// 1-based line and column (in characters) of `offset`.
    pub fn line_col(&self) -> (usize, usize) {
        let off = clamp_boundary(&self.source, self.offset);
        let before = &self.source[..off];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let col = self.source[line_start..off].chars().count() + 1;
        (line, col)
    }

    /// The source line holding the problem, then a line with `^^^` under it.
    pub fn caret(&self) -> String {
        let src = &self.source;
        let off = clamp_boundary(src, self.offset);
        let line_start = src[..off].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[off..].find('\n').map_or(src.len(), |i| off + i);
        let line = src[line_start..line_end].trim_end_matches('\r');
        let mut out = String::with_capacity(line.len() * 2 + 2);
        out.push_str(line);
        out.push('\n');
        for c in src[line_start..off].chars() {
            out.push(if c == '\t' { '\t' } else { ' ' });
        }
        let end = clamp_boundary(src, self.offset.saturating_add(self.len)).min(line_end);
        let n = if end > off { src[off..end].chars().count() } else { 1 };
        for _ in 0..n.max(1) {
            out.push('^');
        }
        out
    }
}

fn clamp_boundary(s: &str, mut off: usize) -> usize {
    if off >= s.len() {
        return s.len();
    }
    while off > 0 && !s.is_char_boundary(off) {
        off -= 1;
    }
    off
}

/// A failure while evaluating a compiled formula (division by zero, an invalid date, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub message: String,
}

impl EvalError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        EvalError { message: message.into() }
    }
}
