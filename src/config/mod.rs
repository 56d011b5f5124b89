//! The toolkit a stage uses to read its own table: the validation context
//! [`ConfigCx`] (diagnostics with file, line and column; `${VAR}`; paths, field
//! references, templates and `if` conditions), `take`, the stage-list
//! reader [`stages`], and the shared setting types. It knows no stage: the
//! loader that knows them all is [`crate::pipeline`], above the stages.
//!
//! Stage tables (`[[input]]`, `[[filter]]`, `[[output]]`) are dispatched on
//! their `type` by hand instead of through a serde tagged enum, because serde
//! buffers tagged enums and loses the positions of the keys inside them; this
//! way an unknown key or a wrong type inside any stage still names its own
//! line and column.

pub mod daemon;
pub mod diagnostic;
pub mod interpolate;
pub mod stages;
pub mod types;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::condition::Condition;
use crate::event::FieldRef;
use crate::template::Template;
pub use diagnostic::{Diagnostic, Severity, Source};

/// The environment of this process, for `${VAR}`.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Validation context of one file: collects diagnostics and offers the
/// helpers stages use to compile their settings.
pub struct ConfigCx<'a> {
    pub source: &'a Source,
    /// The file's directory: relative paths resolve against it.
    pub dir: PathBuf,
    /// The pipeline's name, once known.
    pub pipeline: String,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> ConfigCx<'a> {
    pub fn new(source: &'a Source) -> Self {
        // Absolute, so that paths in events and logs do not depend on the
        // directory logpipe was started from.
        let parent = source.path().parent().unwrap_or(Path::new(""));
        let parent = if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        };
        let dir = std::fs::canonicalize(parent).unwrap_or_else(|_| parent.to_path_buf());
        ConfigCx {
            source,
            dir,
            pipeline: String::new(),
            diagnostics: Vec::new(),
        }
    }

    pub fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.source.error_at(span.start, message);
        self.diagnostics.push(d);
    }

    /// A count setting: `value`, or `default` when it is not set; a 0 is an
    /// error at its position naming `name`, and gives `None`.
    pub fn at_least_one(
        &mut self,
        value: Option<&Spanned<usize>>,
        name: &str,
        default: usize,
    ) -> Option<usize> {
        match value {
            Some(n) if *n.get_ref() == 0 => {
                self.error(&n.span(), format!("{name} must be at least 1"));
                None
            }
            Some(n) => Some(*n.get_ref()),
            None => Some(default),
        }
    }

    pub fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.source.warning_at(span.start, message);
        self.diagnostics.push(d);
    }

    /// Deserializes a TOML value, keeping the position of any error. A
    /// table reports every bad key, not only the first: serde stops at the
    /// first error, so the key it names is taken out and the rest is read
    /// again.
    pub fn de<T: DeserializeOwned>(&mut self, value: Spanned<DeValue<'_>>) -> Option<T> {
        if !matches!(value.get_ref(), DeValue::Table(_)) {
            return self.de_once(value);
        }
        let span = value.span();
        let DeValue::Table(mut table) = value.into_inner() else {
            return None;
        };
        let mut removed: Vec<String> = Vec::new();
        let mut failed = false;
        // Bounded: each round removes one key.
        for _ in 0..=table.len() {
            let attempt = Spanned::new(span.clone(), DeValue::Table(table.clone()));
            let e = match T::deserialize(ValueDeserializer::from(attempt)) {
                Ok(v) if !failed => return Some(v),
                Ok(_) => return None,
                Err(e) => e,
            };
            // A required key taken out for its own error is not missing too.
            if removed
                .iter()
                .any(|k| e.message().contains(&format!("missing field `{k}`")))
            {
                return None;
            }
            self.toml_error(&e);
            failed = true;
            let at = e.span()?;
            let culprit = table
                .iter()
                .find(|(k, v)| k.span().contains(&at.start) || v.span().contains(&at.start))
                .map(|(k, _)| k.get_ref().to_string());
            let key = culprit?;
            table.remove(key.as_str());
            removed.push(key);
        }
        None
    }

    fn de_once<T: DeserializeOwned>(&mut self, value: Spanned<DeValue<'_>>) -> Option<T> {
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                self.toml_error(&e);
                None
            }
        }
    }

    pub fn toml_error(&mut self, e: &toml::de::Error) {
        let message = e.message().trim().to_owned();
        let d = match e.span() {
            Some(span) => self.source.error_at(span.start, message),
            None => self.source.error(message),
        };
        self.diagnostics.push(d);
    }

    /// Compiles a template; an error points at the offending character.
    pub fn template(&mut self, text: &Spanned<String>) -> Option<Template> {
        match Template::parse(text.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                let at = self.source.offset_in_string(&text.span(), e.offset);
                self.diagnostics.push(self.source.error_at(at, e.message));
                None
            }
        }
    }

    /// Compiles a field reference; an error points at the offending character.
    pub fn field(&mut self, text: &Spanned<String>) -> Option<FieldRef> {
        match FieldRef::parse(text.get_ref()) {
            Ok(f) => Some(f),
            Err(e) => {
                let at = self.source.offset_in_string(&text.span(), e.offset);
                self.diagnostics.push(self.source.error_at(at, e.message));
                None
            }
        }
    }

    /// Compiles an `if` condition; an error points at the offending character.
    pub fn condition(&mut self, text: &Spanned<String>) -> Option<Condition> {
        match Condition::parse(text.get_ref()) {
            Ok(c) => Some(c),
            Err(e) => {
                let at = self.source.offset_in_string(&text.span(), e.offset);
                self.diagnostics.push(self.source.error_at(at, e.message));
                None
            }
        }
    }

    /// A path from the file, resolved against the file's directory.
    pub fn path(&self, path: &str) -> PathBuf {
        let p = Path::new(path);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }
}

/// Takes a key out of a parsed table.
pub(crate) fn take<'i>(table: &mut DeTable<'i>, key: &str) -> Option<Spanned<DeValue<'i>>> {
    table.remove(key)
}
