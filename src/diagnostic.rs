//! Diagnostics that point into a source file: `file:line:column`, an excerpt with a caret, a hint.
//! The excerpt is drawn by annotate-snippets (what rustc and cargo use), so tabs and wide
//! characters line up and long lines are cut to the terminal's width.

use std::ops::Range;

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};
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
    /// Other places that belong to the finding (the first of two duplicates), each with a note.
    #[serde(skip)]
    pub related: Vec<(Range<usize>, String)>,
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
    /// Other places of the finding (the first of two duplicates); absent when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<RelatedPlace<'a>>,
}

/// Another place a finding points at, in the shape `--format json` prints.
#[derive(Debug, Serialize)]
pub struct RelatedPlace<'a> {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is there.
    pub note: &'a str,
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
            related: Vec::new(),
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

    /// Points also at another place, with a note (`first entry here`).
    pub fn also_at(mut self, span: Option<Range<usize>>, note: impl Into<String>) -> Self {
        if let Some(span) = span {
            self.related.push((span, note.into()));
        }
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
            related: self
                .related
                .iter()
                .map(|(span, note)| {
                    let (line, column) = line_column(source, span.start);
                    RelatedPlace { line, column, note }
                })
                .collect(),
        }
    }

    /// Renders the diagnostic without color, rustc-style:
    ///
    /// ```text
    /// error[port-clash]: host port 9090 is published twice
    ///   --> clusters/bad.toml:12:8
    ///    |
    /// 12 | port = 9090
    ///    |        ^^^^ also node1's API port
    ///    |
    ///    = hint: give every published port its own number
    /// ```
    pub fn render(&self, file: &str, source: &str) -> String {
        Renderer::plain().render(&[self.group(file, source)]) + "\n"
    }

    /// The same with styles (ANSI); print it through [`crate::terminal`], which strips them
    /// where color is off.
    pub fn render_styled(&self, file: &str, source: &str) -> String {
        Renderer::styled().render(&[self.group(file, source)]) + "\n"
    }

    fn group<'a>(&'a self, file: &'a str, source: &'a str) -> Group<'a> {
        let level = match self.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let title = level.primary_title(self.message.as_str()).id(self.code);
        let mut group = match &self.span {
            Some(span) => title.element(self.snippet(file, source, span)),
            None => title.element(Origin::path(file)),
        };
        if let Some(hint) = &self.hint {
            group = group.element(Level::HELP.with_name("hint").message(hint.as_str()));
        }
        group
    }

    /// The lines the spans touch (with the lines between folded away), each span cut to its
    /// first line, so a finding about a whole table does not print the table.
    fn snippet<'a>(
        &'a self,
        file: &'a str,
        source: &'a str,
        span: &Range<usize>,
    ) -> Snippet<'a, annotate_snippets::Annotation<'a>> {
        // Past this many bytes an underline is cut (and its line with it): the renderer trims
        // long lines to the terminal anyway, and a hostile megabyte value stays cheap to draw.
        const MAX_UNDERLINE: usize = 512;
        let to_first_line = |range: &Range<usize>| {
            let start = floor_char_boundary(source, range.start.min(source.len()));
            let line_end = source[start..]
                .find('\n')
                .map_or(source.len(), |i| start + i);
            let end = range.end.clamp(start, line_end).min(start + MAX_UNDERLINE);
            let end = floor_char_boundary(source, end);
            start..end
        };
        let primary = to_first_line(span);
        let related: Vec<(Range<usize>, &str)> = self
            .related
            .iter()
            .map(|(range, note)| (to_first_line(range), note.as_str()))
            .collect();
        let first = related
            .iter()
            .map(|(r, _)| r.start)
            .chain([primary.start])
            .min()
            .unwrap_or(0);
        let last = related
            .iter()
            .map(|(r, _)| r.end)
            .chain([primary.end])
            .max()
            .unwrap_or(0);
        let excerpt_start = source[..first].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[last..].find('\n').map_or(source.len(), |i| last + i);
        let excerpt_end = floor_char_boundary(source, line_end.min(last + MAX_UNDERLINE));
        let (line, _) = line_column(source, excerpt_start);
        let shift = |r: &Range<usize>| r.start - excerpt_start..r.end - excerpt_start;
        let mut primary_annotation = AnnotationKind::Primary.span(shift(&primary));
        if let Some(label) = &self.label {
            primary_annotation = primary_annotation.label(label.as_str());
        }
        let mut snippet = Snippet::source(&source[excerpt_start..excerpt_end])
            .line_start(line)
            .path(file)
            .fold(true)
            .annotation(primary_annotation);
        for (range, note) in &related {
            snippet = snippet.annotation(AnnotationKind::Context.span(shift(range)).label(*note));
        }
        snippet
    }
}

/// Most findings printed for one file; the rest are counted (`--format json` lists them all).
pub const MAX_PRINTED: usize = 50;

/// Renders up to [`MAX_PRINTED`] findings, each followed by a blank line, then how many more
/// there are. `styled` adds ANSI styles (for output through [`crate::terminal`]).
pub fn render_all(found: &[Diagnostic], file: &str, source: &str, styled: bool) -> String {
    let mut out = String::new();
    for diagnostic in found.iter().take(MAX_PRINTED) {
        if styled {
            out.push_str(&diagnostic.render_styled(file, source));
        } else {
            out.push_str(&diagnostic.render(file, source));
        }
        out.push('\n');
    }
    if found.len() > MAX_PRINTED {
        out.push_str(&format!(
            "… and {} more (use `--format json` for all)\n",
            found.len() - MAX_PRINTED
        ));
    }
    out
}

/// The largest char boundary at or below `index`.
fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
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

    #[test]
    fn tabs_and_wide_characters_line_up() {
        let source = "[cluster]\n\tname = \"漢字\" # x\n";
        let start = source.find('#').unwrap();
        let rendered = Diagnostic::error("x", "here")
            .at(Some(start..start + 1))
            .render("x.toml", source);
        let lines: Vec<&str> = rendered.lines().collect();
        let text = lines.iter().find(|l| l.starts_with("2 |")).unwrap();
        let caret = lines.iter().find(|l| l.contains('^')).unwrap();
        // Display columns: each CJK character is two columns wide, the tab four.
        let width = |s: &str| -> usize {
            s.chars()
                .map(|c| if c == '漢' || c == '字' { 2 } else { 1 })
                .sum()
        };
        let hash_column = width(&text[..text.find('#').unwrap()]);
        assert_eq!(caret.find('^').unwrap(), hash_column, "{rendered}");
    }

    #[test]
    fn a_related_place_is_drawn_too() {
        let source = "[[node]]\nname = \"node2\"\n\n[[node]]\nname = \"node2\"\n";
        let first = source.find("\"node2\"").unwrap();
        let second = source.rfind("\"node2\"").unwrap();
        let rendered = Diagnostic::error("duplicate-node", "node `node2` is overridden twice")
            .at(Some(second..second + 7))
            .label("second entry")
            .also_at(Some(first..first + 7), "first entry")
            .render("x.toml", source);
        assert!(rendered.contains("2 | name = \"node2\""), "{rendered}");
        assert!(rendered.contains("5 | name = \"node2\""), "{rendered}");
        assert!(
            rendered.contains("first entry") && rendered.contains("second entry"),
            "{rendered}"
        );
    }

    #[test]
    fn styled_output_has_color_and_plain_has_none() {
        let d = Diagnostic::error("x", "boom");
        assert!(d.render_styled("f", "").contains('\u{1b}'));
        assert!(!d.render("f", "").contains('\u{1b}'));
    }
}
