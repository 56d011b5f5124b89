//! Config problems that point at the text: `path:line:col: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one file. `line` and `column` are 1-based; both are 0 when
/// the problem concerns the whole file (it cannot be read, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.line == 0 {
            write!(f, "{}: {kind}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {kind}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// The text of a config file, to turn byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        Source {
            path: path.into(),
            text: text.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let offset = (0..=offset)
            .rev()
            .find(|&o| self.text.is_char_boundary(o))
            .unwrap_or(0);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    pub fn diagnostic(
        &self,
        offset: Option<usize>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Diagnostic {
        let (line, column) = offset.map_or((0, 0), |o| self.position(o));
        Diagnostic {
            path: self.path.clone(),
            line,
            column,
            severity,
            message: message.into(),
        }
    }

    pub fn error_at(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Some(offset), Severity::Error, message)
    }

    pub fn warning_at(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Some(offset), Severity::Warning, message)
    }

    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(None, Severity::Error, message)
    }

    /// The byte offset in the file of byte `index` of a string value whose
    /// literal spans `span` (quotes included), accounting for the delimiter
    /// and simple escapes, so an error inside a string points at its character.
    pub fn offset_in_string(&self, span: &Range<usize>, index: usize) -> usize {
        let Some(raw) = self.text.get(span.clone()) else {
            return span.start;
        };
        let (delimiter, escapes) = if raw.starts_with("\"\"\"") {
            (3, true)
        } else if raw.starts_with("'''") {
            (3, false)
        } else if raw.starts_with('"') {
            (1, true)
        } else if raw.starts_with('\'') {
            (1, false)
        } else {
            return span.start;
        };
        let mut pos = delimiter;
        if delimiter == 3 {
            if raw[pos..].starts_with("\r\n") {
                pos += 2;
            } else if raw[pos..].starts_with('\n') {
                pos += 1;
            }
        }
        let bytes = raw.as_bytes();
        let mut decoded = 0;
        while decoded < index && pos < bytes.len() {
            if escapes && bytes[pos] == b'\\' {
                let width = match bytes.get(pos + 1) {
                    Some(b'u') => 6,
                    Some(b'U') => 10,
                    _ => 2,
                };
                pos += width;
                decoded += 1;
            } else {
                pos += 1;
                decoded += 1;
            }
        }
        span.start + pos.min(raw.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_character_columns() {
        let src = Source::new("p.toml", "a = 1\nbé = \"x\"\n");
        assert_eq!(src.position(0), (1, 1));
        assert_eq!(src.position(6), (2, 1));
        // After the two-byte 'é', the space is column 3.
        assert_eq!(src.position(9), (2, 3));
    }

    #[test]
    fn diagnostics_render_path_line_column() {
        let src = Source::new("pipelines/x.toml", "a = 1\nb = 2\n");
        assert_eq!(
            src.error_at(6, "unknown field `b`").to_string(),
            "pipelines/x.toml:2:1: error: unknown field `b`"
        );
        assert_eq!(
            src.error("cannot read").to_string(),
            "pipelines/x.toml: error: cannot read"
        );
    }

    #[test]
    fn offsets_inside_strings_skip_delimiters_and_escapes() {
        let text = "x = \"a\\tb-%{\"\ny = '''\nlit'''";
        let src = Source::new("p", text);
        let basic = 4..13;
        // decoded "a\tb-%{" : index 4 is '%' at raw offset 1 + 5.
        assert_eq!(src.offset_in_string(&basic, 4), 4 + 6);
        let literal_start = text.find("'''").unwrap();
        let literal = literal_start..text.len();
        assert_eq!(src.offset_in_string(&literal, 1), literal_start + 4 + 1);
    }
}
