//! Field references (`[log][file][path]`): the address of a value in an
//! event, parsed once at load.
//!
//! The syntax is Logstash's: a bare word names one top-level field (so
//! `log.level` is the field called `log.level`, not a path), brackets name a
//! path, and `[@metadata]` addresses the never-indexed metadata.

use super::Str;

/// A template or field reference that does not parse. `offset` is the byte
/// offset of the problem inside the text, so config errors can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SyntaxError {
    pub message: String,
    pub offset: usize,
}

impl SyntaxError {
    pub(crate) fn new(offset: usize, message: impl Into<String>) -> Self {
        SyntaxError {
            message: message.into(),
            offset,
        }
    }
}

/// Which map of the event a reference addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Fields,
    Metadata,
}

/// A parsed field reference. Its keys are [`Str`]s, so putting a value at a
/// new key shares the key instead of allocating one per event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    root: Root,
    path: Vec<Str>,
    text: String,
}

impl FieldRef {
    pub fn parse(text: &str) -> Result<Self, SyntaxError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(SyntaxError::new(0, "empty field reference"));
        }
        let mut path = Vec::new();
        if trimmed.starts_with('[') {
            let mut rest = trimmed;
            let mut offset = text.len() - text.trim_start().len();
            while !rest.is_empty() {
                let Some(inner) = rest.strip_prefix('[') else {
                    return Err(SyntaxError::new(
                        offset,
                        format!("expected '[' in field reference `{text}`"),
                    ));
                };
                let Some(end) = inner.find(']') else {
                    return Err(SyntaxError::new(
                        offset,
                        format!("unclosed '[' in field reference `{text}`"),
                    ));
                };
                let key = &inner[..end];
                if key.is_empty() || key.contains('[') {
                    return Err(SyntaxError::new(
                        offset + 1,
                        format!("empty or nested key in field reference `{text}`"),
                    ));
                }
                path.push(Str::new(key));
                rest = &inner[end + 1..];
                offset += end + 2;
            }
        } else {
            if let Some(at) = trimmed.find(['[', ']']) {
                return Err(SyntaxError::new(
                    at,
                    format!("unexpected bracket in field reference `{text}` (write `[a][b]` for a path)"),
                ));
            }
            path.push(Str::new(trimmed));
        }
        let root = if path.first().map(Str::as_str) == Some("@metadata") {
            path.remove(0);
            Root::Metadata
        } else {
            Root::Fields
        };
        if root == Root::Metadata && path.is_empty() {
            return Err(SyntaxError::new(
                0,
                "`[@metadata]` itself cannot be addressed; name a key inside it",
            ));
        }
        Ok(FieldRef {
            root,
            path,
            text: trimmed.to_owned(),
        })
    }

    pub fn root(&self) -> Root {
        self.root
    }

    /// The keys from the root down (without `@metadata`).
    pub fn path(&self) -> &[Str] {
        &self.path
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The field `keys` below this one: `[user_agent]` with `os`, `name` is
    /// `[user_agent][os][name]`, in the same root.
    pub fn child<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> FieldRef {
        let mut path = self.path.clone();
        path.extend(keys.into_iter().map(Str::new));
        let mut text = match self.root {
            Root::Metadata => "[@metadata]".to_owned(),
            Root::Fields => String::new(),
        };
        for key in &path {
            text.push('[');
            text.push_str(key);
            text.push(']');
        }
        FieldRef {
            root: self.root,
            path,
            text,
        }
    }
}

impl std::fmt::Display for FieldRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_is_the_field_its_path_names() {
        for (parent, keys, whole) in [
            ("[user_agent]", vec!["os", "name"], "[user_agent][os][name]"),
            ("source", vec!["geo"], "[source][geo]"),
            ("[@metadata][ua]", vec!["name"], "[@metadata][ua][name]"),
        ] {
            let child = FieldRef::parse(parent).unwrap().child(keys);
            let parsed = FieldRef::parse(whole).unwrap();
            assert_eq!(
                (child.root(), child.path(), child.as_str()),
                (parsed.root(), parsed.path(), whole)
            );
        }
    }

    #[test]
    fn bare_words_are_one_top_level_key() {
        let f = FieldRef::parse("log.level").unwrap();
        assert_eq!(f.path(), ["log.level"]);
        assert_eq!(f.root(), Root::Fields);
    }

    #[test]
    fn brackets_name_a_path_and_metadata_has_its_own_root() {
        let f = FieldRef::parse("[log][file][path]").unwrap();
        assert_eq!(f.path(), ["log", "file", "path"]);
        let m = FieldRef::parse("[@metadata][kafka][topic]").unwrap();
        assert_eq!(m.root(), Root::Metadata);
        assert_eq!(m.path(), ["kafka", "topic"]);
    }

    #[test]
    fn malformed_references_say_where() {
        assert_eq!(FieldRef::parse("[a][b").unwrap_err().offset, 3);
        assert!(FieldRef::parse("[]").is_err());
        assert!(FieldRef::parse("a[b]").is_err());
        assert!(FieldRef::parse("[@metadata]").is_err());
    }
}
