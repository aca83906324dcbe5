//! Problems found while loading a project, each with file, line, column, a stable code and a fix.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code, explained in `docs/errors.md` (e.g. `HP003`).
    pub code: &'static str,
    /// The file as the user names it, relative to the project folder.
    pub file: PathBuf,
    /// 1-based line and column; 0 when the problem belongs to the whole file.
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
    /// Extra lines shown under the message (a formula with a caret under the problem).
    pub detail: Option<String>,
    /// A warning does not stop the project from loading (codes `HWxxx`).
    pub warning: bool,
}

impl Diagnostic {
    pub fn new(code: &'static str, file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            hint: None,
            detail: None,
            warning: false,
        }
    }

    /// A problem worth knowing that does not stop the project from loading.
    pub fn warning(code: &'static str, file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic { warning: true, ..Diagnostic::new(code, file, message) }
    }

    pub fn at(mut self, position: Position) -> Diagnostic {
        self.line = position.line;
        self.column = position.column;
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    pub fn maybe_hint(mut self, hint: Option<String>) -> Diagnostic {
        self.hint = hint;
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Diagnostic {
        self.detail = Some(detail.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        let severity = if self.warning { "warning" } else { "error" };
        write!(f, ": {severity}[{}]: {}", self.code, self.message)?;
        if let Some(detail) = &self.detail {
            for line in detail.lines() {
                write!(f, "\n    {line}")?;
            }
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem of a project that failed to load; nothing of it was loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            writeln!(f, "{diagnostic}")?;
        }
        let count = self.0.len();
        write!(f, "{count} problem{} found; the project was not loaded.", if count == 1 { "" } else { "s" })
    }
}

/// 1-based position in a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// "did you mean X?" when one candidate is close enough to `wrong`.
pub fn did_you_mean<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    closest(wrong, candidates).map(|best| format!("did you mean `{best}`?"))
}

/// The candidate closest to `wrong`, if it is plausibly what was meant.
pub fn closest<'a>(wrong: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wrong_lower = wrong.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for candidate in candidates {
        let score = strsim::jaro_winkler(&wrong_lower, &candidate.to_lowercase());
        if score > best.map_or(0.0, |(s, _)| s) {
            best = Some((score, candidate));
        }
    }
    best.filter(|(score, _)| *score >= 0.8).map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_line_column_code_and_hint() {
        let d = Diagnostic::new("HF006", "flows/a.yaml", "unknown element `sned`")
            .at(Position { line: 4, column: 7 })
            .hint("did you mean `send`?");
        assert_eq!(
            d.to_string(),
            "flows/a.yaml:4:7: error[HF006]: unknown element `sned`\n  hint: did you mean `send`?"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest("Phne", ["Phone", "FirstName"]), Some("Phone"));
        assert_eq!(closest("to", ["destination", "source"]), None);
        assert_eq!(closest("zzzz", ["Phone"]), None);
    }
}
