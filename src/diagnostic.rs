//! Diagnostics that point into a source file: `file:line:column`, an excerpt with a caret, a hint.

use std::fmt::Write as _;
use std::ops::Range;

use serde::Serialize;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the file is still valid.
    Warning,
    /// The file is invalid.
    Error,
}

/// One finding about a cluster file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A stable short name for the class of problem (`port-clash`).
    pub code: &'static str,
    /// What is wrong, in one sentence.
    pub message: String,
    /// Where, as a byte range into the source (None: the file as a whole).
    #[serde(skip)]
    pub span: Option<Range<usize>>,
    /// A note printed under the caret.
    pub label: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
}

/// A diagnostic located in its file, in the shape `--format json` prints.
#[derive(Debug, Serialize)]
pub struct LocatedDiagnostic<'a> {
    /// The finding.
    #[serde(flatten)]
    pub diagnostic: &'a Diagnostic,
    /// The file.
    pub file: &'a str,
    /// 1-based line, when the finding has a place.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the finding has a place.
    pub column: Option<usize>,
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = source[line_start..offset].chars().count() + 1;
    (line, column)
}

impl Diagnostic {
    /// An error with a message only.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            code,
            message: message.into(),
            span: None,
            label: None,
            hint: None,
        }
    }

    /// The same diagnostic as a warning.
    pub fn warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }

    /// Points the diagnostic at a byte range.
    pub fn at(mut self, span: Option<Range<usize>>) -> Self {
        self.span = span;
        self
    }

    /// Adds the note printed under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds the fix.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Locates the diagnostic in its file for JSON output.
    pub fn locate<'a>(&'a self, file: &'a str, source: &str) -> LocatedDiagnostic<'a> {
        let place = self.span.as_ref().map(|s| line_column(source, s.start));
        LocatedDiagnostic {
            diagnostic: self,
            file,
            line: place.map(|p| p.0),
            column: place.map(|p| p.1),
        }
    }

    /// Renders the diagnostic for a terminal, rustc-style:
    ///
    /// ```text
    /// error[port-clash]: host port 9090 is published twice
    ///  --> clusters/bad.toml:12:8
    ///    |
    /// 12 | port = 9090
    ///    |        ^^^^ also node1's API port
    ///    |
    ///    = hint: give every published port its own number
    /// ```
    pub fn render(&self, file: &str, source: &str) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{severity}[{}]: {}\n", self.code, self.message);
        let Some(span) = &self.span else {
            let _ = writeln!(out, " --> {file}");
            if let Some(hint) = &self.hint {
                let _ = writeln!(out, "  = hint: {hint}");
            }
            return out;
        };
        let (line, column) = line_column(source, span.start);
        let gutter = " ".repeat(line.to_string().len());
        let text = source.lines().nth(line - 1).unwrap_or("");
        // A span that runs past its first line is underlined to the end of that line.
        let line_rest = text.chars().count().saturating_sub(column - 1);
        let span_chars = source
            .get(span.clone())
            .map_or(1, |s| s.chars().count())
            .clamp(1, line_rest.max(1));
        let _ = writeln!(out, "{gutter}--> {file}:{line}:{column}");
        let _ = writeln!(out, "{gutter} |");
        let _ = writeln!(out, "{line} | {text}");
        let _ = write!(
            out,
            "{gutter} | {}{}",
            " ".repeat(column - 1),
            "^".repeat(span_chars)
        );
        match &self.label {
            Some(label) => {
                let _ = writeln!(out, " {label}");
            }
            None => out.push('\n'),
        }
        if let Some(hint) = &self.hint {
            let _ = writeln!(out, "{gutter} |");
            let _ = writeln!(out, "{gutter} = hint: {hint}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let source = "a = 1\nbé = 22\n";
        assert_eq!(line_column(source, 0), (1, 1));
        assert_eq!(line_column(source, source.find("22").unwrap()), (2, 6));
    }

    #[test]
    fn renders_caret_under_the_span() {
        let source = "[prometheus]\nport = 9090\n";
        let start = source.find("9090").unwrap();
        let rendered = Diagnostic::error("port-clash", "host port 9090 is published twice")
            .at(Some(start..start + 4))
            .label("also node1's API port")
            .hint("give every published port its own number")
            .render("x.toml", source);
        assert_eq!(
            rendered,
            "error[port-clash]: host port 9090 is published twice\n \
             --> x.toml:2:8\n  |\n2 | port = 9090\n  |        ^^^^ also node1's API port\n  |\n  \
             = hint: give every published port its own number\n"
        );
    }
}
