//! Problems found while loading a project, each with file, line, column, a stable code and a fix.

use herald_codes::Code;
use std::fmt;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable code, explained in `docs/errors.md` (e.g. `HP003`).
    pub code: Code,
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
    /// A problem of `file`. The message is bounded by [`clip_message`]: it may quote what a file says,
    /// but never more than a short excerpt of it.
    pub fn new(code: Code, file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            file: file.into(),
            line: 0,
            column: 0,
            message: clip_message(&message.into()),
            hint: None,
            detail: None,
            warning: false,
        }
    }

    /// A problem worth knowing that does not stop the project from loading.
    pub fn warning(code: Code, file: impl Into<PathBuf>, message: impl Into<String>) -> Diagnostic {
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

/// The most characters of one quoted name or value, or of one word, that a message keeps.
pub const EXCERPT_CHARS: usize = 80;
/// The most characters of a whole message.
const MESSAGE_CHARS: usize = 600;

/// Bounds what a message can quote: each `backticked` part and each run of characters without a space
/// keeps at most [`EXCERPT_CHARS`], and the whole message at most 600 characters. Messages quote names
/// and values from the files; a file with a megabyte-long key must not make a megabyte-long error.
pub fn clip_message(message: &str) -> String {
    if message.chars().count() <= EXCERPT_CHARS {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len().min(MESSAGE_CHARS * 4));
    // Characters of the current backticked part, and of the current word.
    let mut quoted: Option<usize> = None;
    let mut word = 0usize;
    let mut total = 0usize;
    for ch in message.chars() {
        if total >= MESSAGE_CHARS {
            out.push('…');
            break;
        }
        if ch == '`' {
            quoted = if quoted.is_some() { None } else { Some(0) };
            word = 0;
            out.push(ch);
            total += 1;
            continue;
        }
        word = if ch.is_whitespace() { 0 } else { word + 1 };
        let inside = quoted.map(|n| n + 1);
        if let Some(n) = inside {
            quoted = Some(n);
        }
        let over = inside.unwrap_or(0).max(word);
        if over <= EXCERPT_CHARS {
            out.push(ch);
            total += 1;
        } else if over == EXCERPT_CHARS + 1 {
            out.push('…');
            total += 1;
        }
    }
    out
}

/// Removes the values serde quotes in its messages (`invalid type: string "…", expected …` becomes
/// `invalid type: string, expected …`): when a file is not what it should be, herald says what kind of
/// value it found and where, never the value, which may be anything the file held (a linked secret).
pub fn strip_quoted_values(message: &str) -> String {
    const MARK: &str = "string \"";
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(start) = rest.find(MARK) {
        out.push_str(&rest[..start + MARK.len() - 2]);
        // Skip the Debug-escaped string up to its closing quote.
        let body = &rest[start + MARK.len()..];
        let mut escaped = false;
        let mut end = body.len();
        for (index, ch) in body.char_indices() {
            match ch {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = index + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &body[end..];
    }
    out.push_str(rest);
    out
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
        let d = Diagnostic::new(herald_codes::HF006, "flows/a.yaml", "unknown element `sned`")
            .at(Position { line: 4, column: 7 })
            .hint("did you mean `send`?");
        assert_eq!(
            d.to_string(),
            "flows/a.yaml:4:7: error[HF006]: unknown element `sned`\n  hint: did you mean `send`?"
        );
    }

    #[test]
    fn messages_quote_at_most_a_short_excerpt() {
        let long = "k".repeat(10_000);
        let message = clip_message(&format!("unknown field `{long}`, expected one of `a`, `b`"));
        assert!(message.starts_with(&format!("unknown field `{}…`", "k".repeat(EXCERPT_CHARS))), "{message}");
        assert!(message.ends_with("expected one of `a`, `b`"), "{message}");
        let path = clip_message(&format!("elements.{long}.inputs: missing field `x`"));
        assert!(path.chars().count() < 200, "{path}");
        let words = clip_message(&"word ".repeat(10_000));
        assert!(words.chars().count() <= 601, "{}", words.chars().count());
        assert_eq!(clip_message("short `message`"), "short `message`");
    }

    #[test]
    fn serde_values_are_stripped_from_messages() {
        assert_eq!(
            strip_quoted_values(r#"invalid type: string "master-key\"with quote", expected struct FlowDef"#),
            "invalid type: string, expected struct FlowDef"
        );
        assert_eq!(
            strip_quoted_values(r#"on: invalid value: string "x", expected a boolean"#),
            "on: invalid value: string, expected a boolean"
        );
        assert_eq!(strip_quoted_values("unknown field `actoin`"), "unknown field `actoin`");
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(closest("Phne", ["Phone", "FirstName"]), Some("Phone"));
        assert_eq!(closest("to", ["destination", "source"]), None);
        assert_eq!(closest("zzzz", ["Phone"]), None);
    }
}
