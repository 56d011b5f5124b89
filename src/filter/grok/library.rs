//! Grok pattern libraries and the expansion of `%{NAME:field:type}` into one
//! regular expression with a table of what each capture group means.
//!
//! Pure: no I/O beyond what the caller reads. Every `%{NAME}` is wrapped in a
//! non-capturing group, so alternations inside a definition stay inside it.

use std::collections::HashMap;

use crate::event::FieldRef;

/// The built-in library, written for the `regex` crate.
pub const BUILTIN: &str = include_str!("patterns.grok");

/// How a capture is converted before it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conversion {
    None,
    Int,
    Float,
}

/// One named capture of an expanded pattern.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The regex group name (`g0`, `g1`, …): field references are not valid
    /// group names, so the meaning lives here.
    pub group: String,
    pub field: FieldRef,
    pub conversion: Conversion,
}

/// A problem in a pattern; `offset` is the byte offset in the pattern text
/// the user wrote (for errors inside a library definition, the offset of the
/// reference that led there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    pub offset: usize,
    pub message: String,
}

/// Named pattern definitions.
#[derive(Debug, Clone, Default)]
pub struct Library {
    patterns: HashMap<String, String>,
}

impl Library {
    /// The built-in library.
    pub fn builtin() -> Self {
        let mut library = Library::default();
        // INVARIANT: the built-in file is well formed; a test checks it.
        let _ = library.add_file(BUILTIN);
        library
    }

    /// Adds one definition, replacing an existing one of that name.
    pub fn add(&mut self, name: &str, pattern: &str) {
        self.patterns.insert(name.to_owned(), pattern.to_owned());
    }

    /// Adds the definitions of a pattern file (`NAME pattern` per line,
    /// `#` comments). Returns the 1-based numbers of malformed lines.
    pub fn add_file(&mut self, text: &str) -> Vec<usize> {
        let mut bad = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            match line.trim_start().split_once([' ', '\t']) {
                Some((name, pattern)) if valid_name(name) => self.add(name, pattern.trim()),
                _ => bad.push(number + 1),
            }
        }
        bad
    }

    pub fn contains(&self, name: &str) -> bool {
        self.patterns.contains_key(name)
    }

    /// Expands a pattern into a regex and its captures.
    pub fn expand(&self, pattern: &str) -> Result<(String, Vec<Capture>), PatternError> {
        let mut captures = Vec::new();
        let mut out = String::with_capacity(pattern.len() * 4);
        self.expand_into(pattern, None, 0, &mut out, &mut captures)?;
        Ok((out, captures))
    }

    fn expand_into(
        &self,
        pattern: &str,
        // The offset in the user's pattern of the reference being expanded.
        origin: Option<usize>,
        depth: usize,
        out: &mut String,
        captures: &mut Vec<Capture>,
    ) -> Result<(), PatternError> {
        if depth > 64 {
            return Err(PatternError {
                offset: origin.unwrap_or(0),
                message: "grok patterns refer to each other in a loop".into(),
            });
        }
        let mut rest = pattern;
        let mut offset = 0;
        loop {
            let next_ref = rest.find("%{");
            let next_group = rest.find("(?<");
            let at = match (next_ref, next_group) {
                (None, None) => break,
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
            };
            out.push_str(&rest[..at]);
            let here = origin.unwrap_or(offset + at);
            if Some(at) == next_group {
                // Oniguruma named group `(?<field>…)`, as Logstash allows.
                let body = &rest[at + 3..];
                let Some(end) = body.find('>') else {
                    return Err(PatternError {
                        offset: here,
                        message: "unclosed `(?<name>` group".into(),
                    });
                };
                let name = &body[..end];
                if name.starts_with(['=', '!']) {
                    // Lookbehind `(?<=` / `(?<!`: left for the engine to judge.
                    out.push_str("(?<");
                    rest = &rest[at + 3..];
                    offset += at + 3;
                    continue;
                }
                let field = FieldRef::parse(name).map_err(|e| PatternError {
                    offset: here + 3 + e.offset,
                    message: e.message,
                })?;
                let group = format!("g{}", captures.len());
                out.push_str(&format!("(?P<{group}>"));
                captures.push(Capture {
                    group,
                    field,
                    conversion: Conversion::None,
                });
                let consumed = at + 3 + end + 1;
                rest = &rest[consumed..];
                offset += consumed;
                continue;
            }
            let body = &rest[at + 2..];
            let Some(end) = body.find('}') else {
                return Err(PatternError {
                    offset: here,
                    message: "unclosed `%{`".into(),
                });
            };
            let reference = &body[..end];
            let mut parts = reference.splitn(3, ':');
            let name = parts.next().unwrap_or("");
            let field = parts.next().filter(|f| !f.is_empty());
            let conversion = match parts.next() {
                None => Conversion::None,
                Some("int" | "integer" | "long") => Conversion::Int,
                Some("float" | "double") => Conversion::Float,
                Some(other) => {
                    return Err(PatternError {
                        offset: here,
                        message: format!(
                            "unknown conversion `{other}` in `%{{{reference}}}` (expected int or float)"
                        ),
                    })
                }
            };
            let Some(definition) = self.patterns.get(name) else {
                return Err(PatternError {
                    offset: here,
                    message: match origin {
                        None => format!("unknown grok pattern `{name}`"),
                        Some(_) => format!(
                            "unknown grok pattern `{name}`, used by a pattern this one refers to"
                        ),
                    },
                });
            };
            match field {
                Some(field) => {
                    let field = FieldRef::parse(field).map_err(|e| PatternError {
                        offset: here,
                        message: format!("invalid field in `%{{{reference}}}`: {}", e.message),
                    })?;
                    let group = format!("g{}", captures.len());
                    out.push_str(&format!("(?P<{group}>"));
                    captures.push(Capture {
                        group,
                        field,
                        conversion,
                    });
                }
                None => out.push_str("(?:"),
            }
            self.expand_into(definition, Some(here), depth + 1, out, captures)?;
            out.push(')');
            let consumed = at + 2 + end + 1;
            rest = &rest[consumed..];
            offset += consumed;
        }
        out.push_str(rest);
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_pattern_compiles_with_the_linear_time_engine() {
        let library = Library::builtin();
        assert!(Library::default().add_file(BUILTIN).is_empty());
        assert!(library.patterns.len() > 60);
        for name in library.patterns.keys() {
            let (regex, _) = library.expand(&format!("%{{{name}}}")).unwrap();
            regex::Regex::new(&regex).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn named_references_become_captures_with_conversions() {
        let library = Library::builtin();
        let (regex, captures) = library
            .expand("%{IP:[source][ip]} %{NUMBER:n:int} %{WORD}")
            .unwrap();
        assert_eq!(captures.len(), 2);
        assert_eq!(captures[0].field.path(), ["source", "ip"]);
        assert_eq!(captures[1].conversion, Conversion::Int);
        let re = regex::Regex::new(&regex).unwrap();
        let caps = re.captures("::1 42 x").unwrap();
        assert_eq!(&caps["g0"], "::1");
        assert_eq!(&caps["g1"], "42");
    }

    #[test]
    fn oniguruma_groups_name_fields_too() {
        let library = Library::builtin();
        let (regex, captures) = library.expand("(?<[a][b]>x+)").unwrap();
        assert_eq!(regex, "(?P<g0>x+)");
        assert_eq!(captures[0].field.path(), ["a", "b"]);
    }

    #[test]
    fn unknown_patterns_are_reported_at_their_reference() {
        let library = Library::builtin();
        let err = library.expand("x %{NOPE:a}").unwrap_err();
        assert_eq!(err.offset, 2);
        assert!(err.message.contains("NOPE"));
        let mut library = Library::builtin();
        library.add("OUTER", "%{INNER}");
        assert_eq!(library.expand("ab%{OUTER}").unwrap_err().offset, 2);
        library.add("LOOP", "%{LOOP}");
        assert!(library.expand("%{LOOP}").is_err());
    }

    #[test]
    fn pattern_files_skip_comments_and_report_malformed_lines() {
        let mut library = Library::default();
        assert_eq!(
            library.add_file("# c\n\nA [a]+\nbad-name x\nB\t%{A}\n"),
            [4]
        );
        assert!(library.contains("A") && library.contains("B"));
    }
}
